"""Latency poller of `scripts/bench latency`: asks InfluxDB every 100 ms which
ICMP points of PROBE_ID became visible in BUCKET and records, per point, the
time the answer came back minus the point's time (the produce time the
producer stamped, ns). Stops when EXPECTED points were seen, or TIMEOUT_S
after the producer's end (file DONE_FILE exists); a final full query finds
points the 3 s sliding window missed (counted as `late`, visible time = the
final query). Prints JSON: count, p50/p90/p99/max in seconds.

Usage: latency_poll.py BUCKET PROBE_ID EXPECTED DONE_FILE TIMEOUT_S
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

bucket, probe_id, expected, done_file, timeout_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
url = f"{os.environ['NETPROBE_INFLUX_URL']}/api/v2/query?org={os.environ['NETPROBE_INFLUX_ORG']}"
with open(os.environ["INFLUX_HEADER"]) as f:
    name, value = f.read().strip().split(":", 1)
headers = {name.strip(): value.strip(), "Content-Type": "application/vnd.flux", "Accept": "application/csv"}
POLL_S = 0.1
WINDOW_NS = 3_000_000_000


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
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        t = row.get("_time")
        if t:
            out.append(rfc3339_ns(t))
    return out


seen = {}
max_seen = 0
deadline = None
late = 0
while len(seen) < expected:
    t_query = time.time()
    times = visible_since(max(max_seen - WINDOW_NS, 0))
    now_ns = time.time_ns()
    for t in times:
        if t not in seen:
            seen[t] = now_ns - t
            max_seen = max(max_seen, t)
    if deadline is None and os.path.exists(done_file):
        deadline = time.time() + timeout_s
    if deadline is not None and time.time() > deadline:
        break
    time.sleep(max(0.0, POLL_S - (time.time() - t_query)))
if len(seen) < expected:
    now_ns = time.time_ns()
    for t in visible_since(0):
        if t not in seen:
            seen[t] = now_ns - t
            late += 1
lat = sorted(v / 1e9 for v in seen.values())


def pct(p):
    return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 3) if lat else None


print(json.dumps({"expected": expected, "seen": len(lat), "late_beyond_window": late,
                  "p50_s": pct(50), "p90_s": pct(90), "p99_s": pct(99), "max_s": round(lat[-1], 3) if lat else None}))
