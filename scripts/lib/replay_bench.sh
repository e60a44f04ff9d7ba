# shellcheck shell=bash
# `scripts/bench replay [MESSAGES]`, sourced by scripts/bench after the stack
# is up, the release binaries are built and its helpers (fresh_bucket,
# count_points, influx, json, cpu_s, peak_rss_mb, log, now) are defined.
#
# MESSAGES (bench_produce's mix) spread evenly over the 24 h before now,
# message timestamp and Kafka CreateTime alike, in topics under
# `bench-replay.`; each run into an empty bucket, one at a time:
# (a) netprobe-ingest in a new consumer group: the baseline, timed until its
#     points-written counter (metrics endpoint) reaches the expected points;
# (b) netprobe-replay over the whole 24 h; (c) netprobe-replay over 1 h in
#     the middle of the day. Replay is timed to its exit (every write is
#     acknowledged by then), peak RSS and CPU from GNU time; the points in
#     each bucket are counted afterwards and must match.

bench_replay() {
    local prefix=bench-replay. metrics_port=9479 t0 pid
    RUN_ID=$(date +%s)
    log "recreating topics under prefix $prefix"
    "$here/stack" topics "$prefix" --recreate
    log "producing $MESSAGES messages spread over the last 24 h"
    local before_s
    before_s=$(date +%s)
    EXPECTED_JSON=$(NETPROBE_BENCH_PREFIX=$prefix NETPROBE_BENCH_SPAN_S=86400 \
        "$BIN/examples/bench_produce" "$MESSAGES" -)
    POINTS=$(echo "$EXPECTED_JSON" | json 'd["points"]')
    log "expecting $POINTS points: $EXPECTED_JSON"
    # Every message is in [before - 24 h, before); the range starts a minute earlier.
    local start_24h end_24h start_1h end_1h
    start_24h=$(date -u -d "@$((before_s - 86400 - 60))" +%Y-%m-%dT%H:%M:%SZ)
    end_24h=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    start_1h=$(date -u -d "@$((before_s - 12 * 3600))" +%Y-%m-%dT%H:%M:%SZ)
    end_1h=$(date -u -d "@$((before_s - 11 * 3600))" +%Y-%m-%dT%H:%M:%SZ)

    # ------------------------------------------------ (a) netprobe-ingest
    fresh_bucket bench_replay_ingest
    cat >"$OUT/replay-ingest.toml" <<EOF
[kafka]
brokers = ["$NETPROBE_KAFKA_BROKERS"]
username = "$NETPROBE_KAFKA_INGEST_USER"
password_file = "$NETPROBE_KAFKA_INGEST_PASSWORD_FILE"
ca_file = "$NETPROBE_KAFKA_CA"
topic_prefix = "$prefix"

[influx]
url = "$NETPROBE_INFLUX_URL"
org = "$NETPROBE_INFLUX_ORG"
bucket = "bench_replay_ingest"
token_file = "$NETPROBE_INFLUX_TOKEN_FILE"

[ingest]
group_id = "netprobe-ingest-bench-replay-$RUN_ID"
batch_max_lines = $BATCH_LINES
writes_in_flight = $WRITES_IN_FLIGHT
metrics_listen = "127.0.0.1:$metrics_port"
EOF
    log "(a) netprobe-ingest over all of it (baseline)"
    t0=$(now)
    RUST_LOG=warn "$BIN/netprobe-ingest" --config "$OUT/replay-ingest.toml" 2>"$OUT/replay-ingest.log" &
    pid=$!
    local written=0 deadline=$((SECONDS + 900))
    while [ "${written:-0}" -lt "$POINTS" ]; do
        kill -0 "$pid" 2>/dev/null || die "netprobe-ingest died; see $OUT/replay-ingest.log"
        [ $SECONDS -lt $deadline ] || die "ingest: $written of $POINTS points after 900 s"
        sleep 0.2
        written=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null |
            awk '/^netprobe_ingest_points_written_total/ {printf "%d", $2}')
    done
    A_S=$(echo "$(now) - $t0" | bc -l)
    A_CPU=$(cpu_s "$pid"); A_RSS=$(peak_rss_mb "$pid")
    kill "$pid"; wait "$pid" || true
    A_POINTS=$(count_points bench_replay_ingest)

    # ------------------------------------------------ (b), (c) netprobe-replay
    cat >"$OUT/replay.toml" <<EOF
[kafka]
brokers = ["$NETPROBE_KAFKA_BROKERS"]
username = "$NETPROBE_KAFKA_REPLAY_USER"
password_file = "$NETPROBE_KAFKA_REPLAY_PASSWORD_FILE"
ca_file = "$NETPROBE_KAFKA_CA"
topic_prefix = "$prefix"

[influx]
url = "$NETPROBE_INFLUX_URL"
org = "$NETPROBE_INFLUX_ORG"
bucket = "unused"
token_file = "$NETPROBE_INFLUX_TOKEN_FILE"

[replay]
batch_max_lines = $BATCH_LINES
writes_in_flight = $WRITES_IN_FLIGHT
EOF
    run_replay() { # run_replay NAME BUCKET START END -> NAME.time (s maxrss_kb user_s sys_s), NAME.log
        fresh_bucket "$2"
        log "($1) netprobe-replay --start $3 --end $4"
        RUST_LOG=warn /usr/bin/time -f "%e %M %U %S" -o "$OUT/$1.time" \
            "$BIN/netprobe-replay" --config "$OUT/replay.toml" --bucket "$2" --start "$3" --end "$4" \
            2>"$OUT/$1.log" || die "netprobe-replay failed; see $OUT/$1.log"
        tail -n 5 "$OUT/$1.log" >&2
    }
    run_replay replay-24h bench_replay_24h "$start_24h" "$end_24h"
    B_POINTS=$(count_points bench_replay_24h)
    run_replay replay-1h bench_replay_1h "$start_1h" "$end_1h"
    C_POINTS=$(count_points bench_replay_1h)

    python3 - "$MESSAGES" "$POINTS" "$A_S" "$A_CPU" "$A_RSS" "$A_POINTS" "$B_POINTS" "$C_POINTS" \
        "$OUT/replay-24h.time" "$OUT/replay-24h.log" "$OUT/replay-1h.time" "$OUT/replay-1h.log" <<'PY' |
import json, re, sys
m, pts = int(sys.argv[1]), int(sys.argv[2])
a_s, a_cpu, a_rss = map(float, sys.argv[3:6])
a_pts, b_pts, c_pts = map(int, sys.argv[6:9])
def run(time_file, log_file):
    s, rss_kb, user, sys_ = open(time_file).read().split()[-4:]
    line = next(l for l in open(log_file) if l.startswith("replay "))
    c = dict(kv.split("=") for kv in re.findall(r"\w+=[\d.]+", line))
    return {"seconds": float(s), "peak_rss_mb": round(int(rss_kb) / 1024, 1), "cpu_s": round(float(user) + float(sys_), 2),
            "scanned": int(c["scanned"]), "written": int(c["written"]), "points": int(c["points"])}
b = run(sys.argv[9], sys.argv[10])
c = run(sys.argv[11], sys.argv[12])
b["msgs_per_s"] = round(b["scanned"] / b["seconds"])
r = {
    "messages": m, "points": pts,
    "netprobe_ingest": {"seconds": round(a_s, 1), "msgs_per_s": round(m / a_s), "cpu_s": a_cpu, "peak_rss_mb": a_rss,
                        "points_in_bucket": a_pts},
    "replay_24h": dict(b, points_in_bucket=b_pts),
    "replay_1h": dict(c, points_in_bucket=c_pts),
    "ratio_1h_over_24h_time": round(c["seconds"] / b["seconds"], 3),
    "ratio_replay_over_ingest_throughput": round(b["msgs_per_s"] / (m / a_s), 2),
    "checks": {"ingest_all_points": a_pts == pts, "replay_24h_all_points": b_pts == pts and b["points"] == pts,
               "replay_1h_points_match_summary": c_pts == c["points"]},
}
print(json.dumps(r, indent=2))
PY
        tee "$OUT/replay-results.json"
    # The buckets hold millions of points of a shared InfluxDB: drop them.
    local name id
    for name in bench_replay_ingest bench_replay_24h bench_replay_1h; do
        id=$(influx GET "/api/v2/buckets?name=$name&orgID=$ORG_ID" | json 'd["buckets"][0]["id"] if d["buckets"] else ""')
        [ -z "$id" ] || influx DELETE "/api/v2/buckets/$id" >/dev/null
    done
}
