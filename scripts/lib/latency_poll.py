"""Latency poller of `scripts/bench latency`: asks InfluxDB every 100 ms which
ICMP points of PROBE_ID became visible in BUCKET and records, per point, the
time the answer came back minus the point's time (the produce time the
producer stamped, ns). Stops when EXPECTED points were seen, or TIMEOUT_S
after the producer's end (file DONE_FILE exists).
The producer appends each produce time to TIMES_FILE; each poll asks for
the points from the oldest one not seen yet, so a late point is found
whenever it shows. The visible time is
when the answer came back (an upper bound: the point may have been visible
up to one query earlier); `poll_s_p50`/`poll_s_max` say how long the queries
took. Prints JSON: count, p50/p90/p99/max in seconds.

Usage: latency_poll.py BUCKET PROBE_ID EXPECTED DONE_FILE TIMEOUT_S TIMES_FILE
(InfluxDB from `scripts/stack env`, operator header file INFLUX_HEADER).
"""
import calendar
import csv
import io
import json
import os
import sys
import time
import urllib.request

bucket, probe_id, expected, done_file, timeout_s, times_path = (sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4],
                                                               float(sys.argv[5]), sys.argv[6])
raw_known = {}
url = f"{os.environ['NETPROBE_INFLUX_URL']}/api/v2/query?org={os.environ['NETPROBE_INFLUX_ORG']}"
with open(os.environ["INFLUX_HEADER"]) as f:
    name, value = f.read().strip().split(":", 1)
headers = {name.strip(): value.strip(), "Content-Type": "application/vnd.flux", "Accept": "application/csv"}
POLL_S = 0.1


def rfc3339_ns(s):
    """2026-12-03T14:30:01.123456789Z -> Unix ns, exactly."""
    base, _, frac = s.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int((frac + "000000000")[:9])


def visible_since(start_ns):
    q = (f'from(bucket: "{bucket}") |> range(start: time(v: {start_ns}), stop: 2100-01-01T00:00:00Z) '
         f'|> filter(fn: (r) => r._measurement == "icmp" and r._field == "sent" and r.probe_id == "{probe_id}") '
         f'|> keep(columns: ["_time"])')
    req = urllib.request.Request(url, data=q.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
    # Raw _time strings: only the new ones are parsed (the poller must stay
    # far cheaper than the 100 ms it aims for).
    return [row["_time"] for row in csv.DictReader(io.StringIO(text)) if row.get("_time")]


seen = {}
unseen = set()
max_seen = 0
poll_s = []
deadline = None
times_file = open(times_path)
pending_line = ""
while len(seen) < expected:
    t_query = time.time()
    # Produce times written so far: the points still awaited.
    chunk = times_file.read()
    if chunk:
        lines = (pending_line + chunk).split("\n")
        pending_line = lines.pop()
        unseen.update(int(x) for x in lines if x and int(x) not in seen)
    # From the oldest point not seen yet (or the newest seen): every point
    # is looked for until it shows, however late it is.
    start_ns = min(unseen) if unseen else max_seen + 1
    times = visible_since(start_ns) if unseen else []
    now_ns = time.time_ns()
    poll_s.append(time.time() - t_query)
    for raw in times:
        t = rfc3339_ns(raw) if raw not in raw_known else raw_known[raw]
        raw_known[raw] = t
        if t in unseen:
            unseen.discard(t)
            seen[t] = now_ns - t
            max_seen = max(max_seen, t)
    if deadline is None and os.path.exists(done_file):
        deadline = time.time() + timeout_s
    if deadline is not None and time.time() > deadline:
        break
    time.sleep(max(0.0, POLL_S - (time.time() - t_query)))
lat = sorted(v / 1e9 for v in seen.values())


def pct(p):
    return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 3) if lat else None


print(json.dumps({"expected": expected, "seen": len(lat), "never_seen": expected - len(lat),
                  "poll_s_p50": round(sorted(poll_s)[len(poll_s) // 2], 3) if poll_s else None,
                  "poll_s_max": round(max(poll_s), 3) if poll_s else None,
                  "p50_s": pct(50), "p90_s": pct(90), "p99_s": pct(99), "max_s": round(lat[-1], 3) if lat else None}))
