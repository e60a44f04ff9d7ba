# shellcheck shell=bash
# scripts/bench latency, sourced by scripts/bench (stack up, env, BIN,
# INGEST_BIN, OUT, TELEGRAF_BIN, influx/fresh_bucket/count_points set).
# For each consumer, alone: fresh topics under bench-lat., a fresh bucket,
# the consumer started in a new group, one warm-up message produced and
# awaited (group joined, first write done), then LAT_RATE messages/s for
# LAT_SECONDS while latency_poll.py polls InfluxDB every 100 ms.
# NETPROBE_BENCH_LAT_INGEST_EXTRA: more [ingest] lines for (a) (e.g.
# "writes_in_flight = 4"); NETPROBE_BENCH_LAT_ONLY=ingest skips Telegraf.

LAT_PREFIX=bench-lat.

# lat_run NAME: the consumer is running (pid in LAT_PID); bucket bench_lat.
lat_run() {
    local name=$1 probe_id produced deadline result
    probe_id="lat-$name-$(date +%s)"
    log "($name) warm-up: one message, waiting until it is visible"
    NETPROBE_BENCH_PREFIX=$LAT_PREFIX "$BIN/examples/bench_latency_produce" 0 1 "warmup-$probe_id" >/dev/null
    deadline=$((SECONDS + 120))
    until [ "$(count_points bench_lat)" -ge 1 ]; do
        [ $SECONDS -lt $deadline ] || { log "($name) warm-up message not visible after 120 s"; return 1; }
        kill -0 "$LAT_PID" 2>/dev/null || { log "($name) consumer died"; return 1; }
        sleep 0.2
    done
    rm -f "$OUT/latency-produced.json"
    : >"$OUT/latency-times.txt"
    log "($name) producing $LAT_RATE msgs/s for $LAT_SECONDS s"
    ( NETPROBE_BENCH_PREFIX=$LAT_PREFIX NETPROBE_BENCH_TIMES_FILE=$OUT/latency-times.txt \
        "$BIN/examples/bench_latency_produce" "$LAT_SECONDS" "$LAT_RATE" "$probe_id" \
        >"$OUT/latency-produced.json.tmp" && mv "$OUT/latency-produced.json.tmp" "$OUT/latency-produced.json" ) &
    local producer=$!
    result=$(INFLUX_HEADER="$SECRETS/influx-operator.header" python3 "$here/lib/latency_poll.py" bench_lat "$probe_id" \
        $((LAT_SECONDS * LAT_RATE)) "$OUT/latency-produced.json" 30 "$OUT/latency-times.txt")
    wait "$producer"
    produced=$(cat "$OUT/latency-produced.json")
    log "($name) $result (producer: $produced)"
    LAT_RESULT=$(python3 -c 'import json,sys; r=json.loads(sys.argv[2]); r["producer"]=json.loads(sys.argv[3]); print(json.dumps({sys.argv[1]: r}))' \
        "$name" "$result" "$produced")
}

lat_fresh() {
    "$here/stack" topics "$LAT_PREFIX" --recreate >/dev/null
    fresh_bucket bench_lat
}

bench_latency() {
    local results=() run_id
    run_id=$(date +%s)
    # ------------------------------------------------------------ (a) netprobe-ingest
    lat_fresh
    cat >"$OUT/ingest-latency.toml" <<EOT
[kafka]
brokers = ["$NETPROBE_KAFKA_BROKERS"]
username = "$NETPROBE_KAFKA_INGEST_USER"
password_file = "$NETPROBE_KAFKA_INGEST_PASSWORD_FILE"
ca_file = "$NETPROBE_KAFKA_CA"
topic_prefix = "$LAT_PREFIX"

[influx]
url = "$NETPROBE_INFLUX_URL"
org = "$NETPROBE_INFLUX_ORG"
bucket = "bench_lat"
token_file = "$NETPROBE_INFLUX_TOKEN_FILE"

[ingest]
group_id = "netprobe-ingest-bench-lat-$run_id"
metrics_listen = "127.0.0.1:9479"
${NETPROBE_BENCH_LAT_INGEST_EXTRA:-}
EOT
    log "(a) netprobe-ingest ($INGEST_BIN), shipped defaults"
    RUST_LOG=warn "$INGEST_BIN" --config "$OUT/ingest-latency.toml" 2>"$OUT/ingest-latency.log" &
    LAT_PID=$!
    lat_run netprobe_ingest
    results+=("$LAT_RESULT")
    curl -fsS http://127.0.0.1:9479/metrics | grep -E '^netprobe_ingest_(delivery_latency|batch_write)_seconds' \
        >"$OUT/ingest-latency-histogram.txt" || true
    kill "$LAT_PID"; wait "$LAT_PID" || true

    # ------------------------------------------------------------ (b, c) Telegraf
    local profile
    local profiles=(defaults fast)
    [ "${NETPROBE_BENCH_LAT_ONLY:-}" != ingest ] || profiles=()
    for profile in "${profiles[@]}"; do
        lat_fresh
        NETPROBE_TELEGRAF_BUCKET=bench_lat python3 "$here/lib/telegraf_conf.py" "$LAT_PREFIX" \
            "netprobe-ingest-bench-lat-telegraf-$profile-$run_id" 100 "$profile" >"$OUT/telegraf-latency-$profile.conf"
        log "(telegraf_$profile) Telegraf $TELEGRAF_VERSION"
        NETPROBE_KAFKA_PASSWORD=$(cat "$NETPROBE_KAFKA_INGEST_PASSWORD_FILE") \
            NETPROBE_INFLUX_TOKEN=$(cat "$NETPROBE_INFLUX_TOKEN_FILE") \
            "$TELEGRAF_BIN" --config "$OUT/telegraf-latency-$profile.conf" >"$OUT/telegraf-latency-$profile.log" 2>&1 &
        LAT_PID=$!
        lat_run "telegraf_$profile"
        results+=("$LAT_RESULT")
        kill "$LAT_PID"; wait "$LAT_PID" || true
    done

    python3 - "$LAT_SECONDS" "$LAT_RATE" "${results[@]}" <<'PY' | tee "$OUT/latency-results.json"
import json, sys
r = {"seconds": int(sys.argv[1]), "rate_per_s": int(sys.argv[2])}
for x in sys.argv[3:]:
    r.update(json.loads(x))
a = r["netprobe_ingest"]
for t in ("telegraf_defaults", "telegraf_fast"):
    if t in r and a["p99_s"] and r[t]["p99_s"]:
        r[f"p99_ratio_{t}_over_ingest"] = round(r[t]["p99_s"] / a["p99_s"], 2)
        r[f"p50_ratio_{t}_over_ingest"] = round(r[t]["p50_s"] / a["p50_s"], 2)
print(json.dumps(r, indent=2))
PY
}
