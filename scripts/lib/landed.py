"""Summarises a Flux annotated-CSV answer (stdin) per measurement: number of
series (distinct tag sets), points (distinct series + time) and the last
value of each field. Used by scripts/demo."""
import csv
import sys
from collections import defaultdict

META = {"", "result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}
# Annotated CSV: one header per table; tables are separated by blank lines.
rows = []
for table in sys.stdin.read().replace("\r\n", "\n").split("\n\n"):
    rows += [r for r in csv.DictReader(line for line in table.splitlines() if line.strip()) if r.get("_measurement")]
stats = defaultdict(lambda: {"series": set(), "points": set(), "last": {}})
for r in rows:
    tags = tuple(sorted((k, v) for k, v in r.items() if k not in META and v))
    s = stats[r["_measurement"]]
    s["series"].add(tags)
    s["points"].add((tags, r["_time"]))
    s["last"][r["_field"]] = r["_value"]
if not stats:
    sys.exit("nothing landed: see the logs")
print(f"{'measurement':<16} {'series':>6} {'points':>6}  last values")
for name, s in sorted(stats.items()):
    last = ", ".join(f"{k}={v}" for k, v in sorted(s["last"].items()))
    print(f"{name:<16} {len(s['series']):>6} {len(s['points']):>6}  {last[:110]}")
