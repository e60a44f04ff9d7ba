# shellcheck shell=bash
# scripts/bench ingest --sink null, sourced by scripts/bench after the
# messages are produced (MESSAGES, POINTS, PREFIX, BIN, INGEST_BIN, OUT,
# RUN_ID, TELEGRAF_BIN, BATCH_LINES, WRITES_IN_FLIGHT set). netprobe-ingest
# and Telegraf each read the same topics from the start in their own group
# and write to one bench_null_sink (gunzip + count lines + 204), one at a
# time. The sink's first and last write give the pipeline rate; the process
# start to the last line gives the wall rate (group join included).

null_stats() { curl -fsS "http://$NULL_ADDR/stats"; }

# null_wait EXPECTED TIMEOUT_S PID: poll the sink's line count.
null_wait() {
    local n deadline=$((SECONDS + $2))
    while :; do
        n=$(curl -fsS "http://$NULL_ADDR/count")
        [ "$n" -ge "$1" ] && return 0
        [ $SECONDS -lt $deadline ] || { log "timeout: the null sink has $n of $1 lines"; return 1; }
        kill -0 "$3" 2>/dev/null || { log "process $3 died"; return 1; }
        sleep 0.1
    done
}

# null_run NAME PID T0: wait for every point, then print one JSON object.
null_run() {
    local name=$1 pid=$2 t0=$3 sink_cpu0=$4 t1 cpu rss stats sink_cpu1
    null_wait "$POINTS" "$TIMEOUT_S" "$pid"
    t1=$(now)
    cpu=$(cpu_s "$pid"); rss=$(peak_rss_mb "$pid")
    sink_cpu1=$(cpu_s "$NULL_PID")
    stats=$(null_stats)
    kill "$pid"; wait "$pid" || true
    python3 - "$name" "$MESSAGES" "$t0" "$t1" "$cpu" "$rss" "$sink_cpu0" "$sink_cpu1" "$stats" <<'PY'
import json, sys
name, m = sys.argv[1], int(sys.argv[2])
t0, t1, cpu, rss, s0, s1 = map(float, sys.argv[3:9])
st = json.loads(sys.argv[9])
pipe_s = max((st["last_ms"] - st["first_ms"]) / 1e3, 1e-3)
print(json.dumps({name: {
    "msgs_per_s": round(m / pipe_s), "pipeline_s": round(pipe_s, 2),
    "wall_s": round(t1 - t0, 2), "msgs_per_s_wall": round(m / (t1 - t0)),
    "cpu_s": cpu, "cpu_s_per_1m_msgs": round(cpu * 1e6 / m, 2), "peak_rss_mb": rss,
    "requests": st["requests"], "lines": st["lines"], "null_sink_cpu_s": round(s1 - s0, 2)}}))
PY
}

# null_ingest NAME BINARY [RUN]: one netprobe-ingest run into the null sink.
null_ingest() {
    local name=$1 bin=$2 run=${3:-1} t0 pid sink_cpu0
    # A group of its own per run: each reads every message from the start.
    sed "s/^group_id = .*/group_id = \"netprobe-ingest-bench-null-$name-$RUN_ID-$run\"/" "$OUT/ingest-null.toml" >"$OUT/ingest-null-$name.toml"
    curl -fsS -X POST "http://$NULL_ADDR/reset"
    log "($name) $bin -> null sink"
    sink_cpu0=$(cpu_s "$NULL_PID")
    t0=$(now)
    RUST_LOG=warn "$bin" --config "$OUT/ingest-null-$name.toml" 2>"$OUT/ingest-null-$name.log" &
    pid=$!
    null_run "$name" "$pid" "$t0" "$sink_cpu0"
}

bench_null_sink() {
    local t0 pid b sink_cpu0
    rm -f "$OUT/null-sink.addr"
    "$BIN/examples/bench_null_sink" 127.0.0.1:0 >"$OUT/null-sink.addr" 2>"$OUT/null-sink.log" &
    NULL_PID=$!
    # shellcheck disable=SC2064
    trap "kill $NULL_PID 2>/dev/null || true" EXIT
    local deadline=$((SECONDS + 10))
    until grep -q ':[0-9]' "$OUT/null-sink.addr" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { log "bench_null_sink did not start: $(cat "$OUT/null-sink.log")"; exit 1; }
        sleep 0.1
    done
    NULL_ADDR=$(head -1 "$OUT/null-sink.addr")
    log "null sink on $NULL_ADDR (pid $NULL_PID)"

    # ------------------------------------------------------------ (a) netprobe-ingest
    cat >"$OUT/ingest-null.toml" <<EOF
[kafka]
brokers = ["$NETPROBE_KAFKA_BROKERS"]
username = "$NETPROBE_KAFKA_INGEST_USER"
password_file = "$NETPROBE_KAFKA_INGEST_PASSWORD_FILE"
ca_file = "$NETPROBE_KAFKA_CA"
topic_prefix = "$PREFIX"

[influx]
url = "http://$NULL_ADDR"
org = "bench"
bucket = "null"
token_file = "$NETPROBE_INFLUX_TOKEN_FILE"

[ingest]
group_id = "netprobe-ingest-bench-null-$RUN_ID"
batch_max_lines = $BATCH_LINES
writes_in_flight = $WRITES_IN_FLIGHT
EOF
    # Runs alternate (baseline, this build, baseline, ...) so load from other
    # work on the machine falls on both; every run is kept in "runs".
    local i r runs=() repeat=${NETPROBE_BENCH_NULL_REPEAT:-1}
    for ((i = 1; i <= repeat; i++)); do
        if [ -n "${NETPROBE_BENCH_BASELINE_BIN:-}" ]; then
            r=$(null_ingest netprobe_ingest_baseline "$NETPROBE_BENCH_BASELINE_BIN" "$i")
            log "$r"
            runs+=("$r")
        fi
        r=$(null_ingest netprobe_ingest "$INGEST_BIN" "$i")
        log "$r"
        runs+=("$r")
    done

    # ------------------------------------------------------------ (b) Telegraf
    b='{}'
    if [ "${NETPROBE_BENCH_NULL_TELEGRAF:-1}" != 0 ]; then
        NETPROBE_INFLUX_URL="http://$NULL_ADDR" NETPROBE_TELEGRAF_BUCKET=null python3 "$here/lib/telegraf_conf.py" \
            "$PREFIX" "netprobe-ingest-bench-null-telegraf-$RUN_ID" "$BATCH_LINES" >"$OUT/telegraf-null.conf"
        curl -fsS -X POST "http://$NULL_ADDR/reset"
        log "(b) Telegraf $TELEGRAF_VERSION -> null sink"
        sink_cpu0=$(cpu_s "$NULL_PID")
        t0=$(now)
        NETPROBE_KAFKA_PASSWORD=$(cat "$NETPROBE_KAFKA_INGEST_PASSWORD_FILE") \
            NETPROBE_INFLUX_TOKEN=$(cat "$NETPROBE_INFLUX_TOKEN_FILE") \
            "$TELEGRAF_BIN" --config "$OUT/telegraf-null.conf" >"$OUT/telegraf-null.log" 2>&1 &
        pid=$!
        b=$(null_run telegraf "$pid" "$t0" "$sink_cpu0")
        log "$b"
    fi

    python3 - "$MESSAGES" "$POINTS" "$b" "${runs[@]}" <<'PY' | tee "$OUT/ingest-null-results.json"
import json, sys
m, pts = int(sys.argv[1]), int(sys.argv[2])
r = {"messages": m, "points": pts, "sink": "null", "runs": []}
r.update(json.loads(sys.argv[3]))
for run in sys.argv[4:]:
    (name, v), = json.loads(run).items()
    r["runs"].append({"name": name, **v})
# Per binary: its fastest run (the one least slowed by other work), and the
# median CPU-s per 1M over its runs (CPU is less sensitive to load).
for name in ("netprobe_ingest", "netprobe_ingest_baseline"):
    mine = [x for x in r["runs"] if x["name"] == name]
    if not mine:
        continue
    best = max(mine, key=lambda x: x["msgs_per_s"])
    r[name] = {k: v for k, v in best.items() if k != "name"}
    cpus = sorted(x["cpu_s_per_1m_msgs"] for x in mine)
    r[name]["median_cpu_s_per_1m_msgs"] = cpus[len(cpus) // 2]
    r[name]["runs"] = len(mine)
a = r["netprobe_ingest"]
if "telegraf" in r:
    b = r["telegraf"]
    r["ratio_msgs_per_s_a_over_b"] = round(a["msgs_per_s"] / b["msgs_per_s"], 2)
    r["ratio_msgs_per_s_wall_a_over_b"] = round(a["msgs_per_s_wall"] / b["msgs_per_s_wall"], 2)
    r["ratio_cpu_b_over_a"] = round(b["cpu_s"] / a["cpu_s"], 2) if a["cpu_s"] else None
    r["ratio_rss_b_over_a"] = round(b["peak_rss_mb"] / a["peak_rss_mb"], 2) if a["peak_rss_mb"] else None
if "netprobe_ingest_baseline" in r:
    a0 = r["netprobe_ingest_baseline"]
    r["ratio_msgs_per_s_a_over_baseline"] = round(a["msgs_per_s"] / a0["msgs_per_s"], 2)
    r["ratio_cpu_baseline_over_a"] = round(a0["median_cpu_s_per_1m_msgs"] / a["median_cpu_s_per_1m_msgs"], 2)
    if "telegraf" in r:
        r["ratio_msgs_per_s_baseline_over_b"] = round(a0["msgs_per_s"] / r["telegraf"]["msgs_per_s"], 2)
print(json.dumps(r, indent=2))
PY
}
