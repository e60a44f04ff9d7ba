# shellcheck shell=bash
# scripts/bench bgp: the agent's BGP classification path (MRT reader +
# state machine, release build) against parsing alone, on one generated MRT
# updates file of BGP_UPDATES (default 1,000,000) updates over
# BGP_PREFIXES (10,000) prefixes with BGP_WATCHED (100) watched.
# Runs, side by side in this run: (a) `bgp_bench parse` (bgpkit-parser
# through the agent's reader, the baseline), (b) `bgp_bench classify`,
# (c) Debian's bgpdump -m on the same file when installed (text output to
# /dev/null; a reference, not the baseline: it formats every update).
# Wall and CPU seconds and peak RSS from GNU time. -> bench/bgp-results.json

bench_bgp() {
    local dir bin file
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' RETURN
    log "building bgp_bench (release)"
    cargo build --release --locked -p netprobe-agent --example bgp_bench >&2
    bin=$CARGO_TARGET_DIR/release/examples/bgp_bench
    file=$NETPROBE_CACHE/bgp-bench-${BGP_UPDATES}-${BGP_PREFIXES}.mrt.gz
    if [ ! -s "$file" ]; then
        log "generating $file"
        "$bin" gen "$file.tmp" "$BGP_UPDATES" "$BGP_PREFIXES" >/dev/null
        mv "$file.tmp" "$file"
    fi
    run() { # NAME CMD...: one JSON object of wall_s, cpu_s, max_rss_kb
        local name=$1; shift
        /usr/bin/time -f '%e %U %S %M' -o "$dir/$name.time" "$@" >"$dir/$name.out"
        read -r wall user sys rss <"$dir/$name.time"
        printf '{"run": "%s", "wall_s": %s, "cpu_s": %s, "max_rss_kb": %s, "out": %s}\n' \
            "$name" "$wall" "$(echo "$user + $sys" | bc)" "$rss" \
            "$(head -c 300 "$dir/$name.out" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')"
    }
    {
        run parse "$bin" parse "$file"
        run classify "$bin" classify "$file" "$BGP_WATCHED"
        if command -v bgpdump >/dev/null; then
            /usr/bin/time -f '%e %U %S %M' -o "$dir/bgpdump.time" bgpdump -m "$file" >/dev/null 2>&1 || true
            read -r wall user sys rss <"$dir/bgpdump.time"
            printf '{"run": "bgpdump -m", "wall_s": %s, "cpu_s": %s, "max_rss_kb": %s}\n' \
                "$wall" "$(echo "$user + $sys" | bc)" "$rss"
        fi
    } >"$dir/runs.jsonl"
    python3 - "$dir/runs.jsonl" "$OUT/bgp-results.json" "$BGP_UPDATES" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
by = {r["run"]: r for r in runs}
updates = int(sys.argv[3])
p, c = by["parse"], by["classify"]
result = {
    "updates": updates,
    "runs": runs,
    "classify_updates_per_s": round(updates / c["wall_s"]) if c["wall_s"] else None,
    "parse_updates_per_s": round(updates / p["wall_s"]) if p["wall_s"] else None,
    "cpu_ratio_classify_over_parse": round(c["cpu_s"] / p["cpu_s"], 3) if p["cpu_s"] else None,
    "rss_over_parse_mb": round((c["max_rss_kb"] - p["max_rss_kb"]) / 1024, 1),
    "goal": "cpu ratio <= 1.5, rss over parse <= 32 MB",
}
json.dump(result, open(sys.argv[2], "w"), indent=2)
print(f"{'run':<12} {'wall_s':>8} {'cpu_s':>8} {'rss_MB':>8}")
for r in runs:
    print(f"{r['run']:<12} {r['wall_s']:>8} {r['cpu_s']:>8.2f} {r['max_rss_kb']/1024:>8.1f}")
print(f"classify: {result['classify_updates_per_s']} updates/s; CPU x{result['cpu_ratio_classify_over_parse']} "
      f"of parsing alone; +{result['rss_over_parse_mb']} MB RSS over it")
PY
}
