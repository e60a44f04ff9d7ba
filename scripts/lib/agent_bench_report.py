"""Report of `scripts/bench agent`: a table on stdout and a JSON file.

Arguments: DIR FPING_LOG SECONDS TARGETS INTERVAL_S FPING_GAP_MS OUT_JSON.
DIR holds key=value readings agent.t0, agent.t1, fping.t0, fping.t1 (taken
at the end of the first interval and at the end of the run); FPING_LOG is
fping's stderr with its -s totals.
"""
import json
import os
import re
import sys

TICKS = os.sysconf("SC_CLK_TCK")


def reading(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k:
                out[k] = float(v)
    return out


def window(d, name):
    a, b = reading(f"{d}/{name}.t0"), reading(f"{d}/{name}.t1")
    secs = b["time"] - a["time"]
    sent = b["wire_tx"] - a["wire_tx"]
    recv = b["wire_rx"] - a["wire_rx"]
    cpu = (b["cpu_ticks"] - a["cpu_ticks"]) / TICKS
    r = {
        "window_s": round(secs, 2),
        "probes_sent": int(sent),
        "probes_per_s": round(sent / secs, 1),
        "cpu_s": round(cpu, 2),
        "cpu_pct_of_core": round(100 * cpu / secs, 2),
        "cpu_us_per_probe": round(1e6 * cpu / sent, 2) if sent else None,
        "peak_rss_mb": round(b["hwm_kb"] / 1024, 1),
        "rss_at_end_mb": round(b["rss_kb"] / 1024, 1),
        "wire_loss_pct": round(100 * (1 - recv / sent), 3) if sent else None,
    }
    return r, a, b


def fping_totals(path):
    text = open(path).read()

    def grab(pattern):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None

    return {
        "sent": grab(r"(\d+) ICMP Echos sent"),
        "received": grab(r"(\d+) ICMP Echo Replies received"),
        "elapsed_s": grab(r"([\d.]+) sec \(elapsed real time\)"),
    }


def main():
    d, fping_log, seconds, targets, interval_s, gap_ms, out_json = sys.argv[1:]
    seconds, targets, interval_s = int(seconds), int(targets), int(interval_s)

    agent, a0, a1 = window(d, "agent")
    runs = a1["runs"] - a0["runs"]
    failures = a1["failures"] - a0["failures"]
    agent.update({
        "runs": int(runs),
        "failures": int(failures),
        "loss_pct": round(100 * failures / runs, 3) if runs else None,
        "skipped_runs": int(a1["skipped"] - a0["skipped"]),
        "published": int(a1["delivered"] - a0["delivered"]),
        "published_whole_run": int(a1["delivered"]),
        "spooled_whole_run": int(a1["spooled"]),
        "lost_whole_run": int(a1["lost"]),
    })

    fping, _, _ = window(d, "fping")
    t = fping_totals(fping_log)
    fping.update({
        "gap_ms": float(gap_ms),
        "period_ms": interval_s * 1000,
        "sent_whole_run": int(t["sent"] or 0),
        "received_whole_run": int(t["received"] or 0),
        "elapsed_s": t["elapsed_s"],
        "probes_per_s_whole_run": round(t["sent"] / t["elapsed_s"], 1) if t["sent"] and t["elapsed_s"] else None,
        "loss_pct": round(100 * (1 - t["received"] / t["sent"]), 3) if t["sent"] else None,
    })

    cpu_ratio = (agent["cpu_us_per_probe"] / fping["cpu_us_per_probe"]
                 if agent["cpu_us_per_probe"] and fping["cpu_us_per_probe"] else None)
    rss_ratio = agent["peak_rss_mb"] / fping["peak_rss_mb"] if fping["peak_rss_mb"] else None
    result = {
        "seconds": seconds,
        "targets": targets,
        "interval_s": interval_s,
        "nominal_probes_per_s": round(targets / interval_s, 1),
        "netprobe_agent": agent,
        "fping": fping,
        "cpu_per_probe_ratio_agent_over_fping": round(cpu_ratio, 2) if cpu_ratio else None,
        "peak_rss_ratio_agent_over_fping": round(rss_ratio, 2) if rss_ratio else None,
        # Issue #15: the agent also encodes and publishes every result over SASL_SSL.
        "goal_cpu_per_probe_within_1_25x_fping": cpu_ratio is not None and cpu_ratio <= 1.25,
        "goal_peak_rss_under_32_mb": agent["peak_rss_mb"] < 32,
    }
    with open(out_json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")

    print(f"{targets} targets every {interval_s} s ({targets / interval_s:.0f} probes/s nominal), "
          f"{seconds} s per tool; steady window = after the first {interval_s} s")
    cols = ["tool", "seconds", "probes sent", "probes/s", "CPU-s", "CPU % core", "CPU us/probe",
            "peak RSS MB", "loss %"]
    rows = [[name, r["window_s"], r["probes_sent"], r["probes_per_s"], r["cpu_s"], r["cpu_pct_of_core"],
             r["cpu_us_per_probe"], r["peak_rss_mb"], r["loss_pct"]]
            for name, r in (("netprobe-agent", agent), ("fping", fping))]
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
    for row in [cols] + rows:
        print("  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths))))
    print(f"agent: {agent['runs']} runs, {agent['failures']} failed, {agent['skipped_runs']} skipped, "
          f"{agent['published']} published in the window; whole run: {agent['published_whole_run']} "
          f"published, {agent['spooled_whole_run']} spooled, {agent['lost_whole_run']} lost")
    print(f"fping -p {fping['period_ms']} -i {gap_ms}: whole run {fping['sent_whole_run']} sent, "
          f"{fping['received_whole_run']} received in {fping['elapsed_s']} s "
          f"({fping['probes_per_s_whole_run']}/s incl. the denser first round)")
    print(f"wire loss (veth counters): agent {agent['wire_loss_pct']} %, fping {fping['wire_loss_pct']} %")
    print(f"ratios agent/fping: CPU per probe {result['cpu_per_probe_ratio_agent_over_fping']}, "
          f"peak RSS {result['peak_rss_ratio_agent_over_fping']}")
    print(f"goals: CPU per probe <= 1.25x fping: {'met' if result['goal_cpu_per_probe_within_1_25x_fping'] else 'NOT met'}; "
          f"peak RSS < 32 MB: {'met' if result['goal_peak_rss_under_32_mb'] else 'NOT met'}")
    print(f"results: {out_json}")


if __name__ == "__main__":
    main()
