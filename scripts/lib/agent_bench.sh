# shellcheck shell=bash
# `scripts/bench agent`: netprobe-agent and fping probing the same targets
# at the same rate, one after the other, on one machine. Sourced by
# scripts/bench, which provides $here, $repo, $OUT, log, now and the stack;
# needs root (network namespace, raw ICMP sockets).
#
# Targets: TARGETS addresses of 10.99.0.0/18 (at most 16382), all local in
# the network namespace $NS, whose `local` route makes every address of the
# prefix answer ICMP echo without one `ip addr add` each. The host routes
# the prefix into the namespace over a veth pair; the veth's packet counters
# give both tools the same independent count of echo requests and replies.
#
# Each tool runs DURATION_S seconds. CPU (utime + stime of every thread,
# /proc/PID/stat), the veth counters and, for the agent, its Prometheus
# counters are read at the end of the first probe interval (the agent's
# targets start at random phases within it; fping's first round is denser)
# and at the end: CPU per probe is measured over that steady window. Peak
# RSS is VmHWM (/proc/PID/status) at the end, i.e. over the whole run.

AB_NS=npbench
AB_VETH_HOST=npb-h
AB_VETH_NS=npb-n
AB_LINK_HOST=10.98.0.1
AB_LINK_NS=10.98.0.2
AB_PREFIX=10.99.0.0/18
AB_MAX_TARGETS=16382
AB_INTERVAL_S=10
AB_TIMEOUT_MS=1000
AB_METRICS=127.0.0.1:9465
AB_LOCK=/run/netprobe-bench-agent.lock
# fping sends a whole round FPING_ROUND_SHARE of the period, then waits
# for each target's period (-p): its rate is then set by -p alone, exactly
# TARGETS per period (-i 1 ms for 10,000 targets gives only ~91% of it:
# fping's inter-packet gap is a minimum that each send overshoots).
AB_FPING_ROUND_SHARE=0.8
# Agent-then-fping pairs per run (NETPROBE_BENCH_AGENT_ROUNDS).
AB_ROUNDS=${NETPROBE_BENCH_AGENT_ROUNDS:-1}

ab_pids=()   # processes this bench started and has not reaped yet
ab_tmp=
ab_net=0     # 1 once the namespace exists

ab_teardown() {
    local pid
    for pid in "${ab_pids[@]}"; do
        if kill "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; fi
    done
    if [ "$ab_net" = 1 ]; then
        ip route del "$AB_PREFIX" 2>/dev/null || true
        ip link del "$AB_VETH_HOST" 2>/dev/null || true
        ip netns del "$AB_NS" 2>/dev/null || true
    fi
    [ -z "$ab_tmp" ] || rm -rf "$ab_tmp"
}

ab_net_up() {
    # Leftovers of a run that was killed (the lock says none is running).
    ip route del "$AB_PREFIX" 2>/dev/null || true
    ip link del "$AB_VETH_HOST" 2>/dev/null || true
    ip netns del "$AB_NS" 2>/dev/null || true
    ab_net=1
    log "namespace $AB_NS: $AB_PREFIX local, routed from the host over $AB_VETH_HOST"
    ip netns add "$AB_NS"
    ip link add "$AB_VETH_HOST" type veth peer name "$AB_VETH_NS" netns "$AB_NS"
    ip addr add "$AB_LINK_HOST/30" dev "$AB_VETH_HOST"
    ip link set "$AB_VETH_HOST" up
    ip -n "$AB_NS" link set lo up
    ip -n "$AB_NS" addr add "$AB_LINK_NS/30" dev "$AB_VETH_NS"
    ip -n "$AB_NS" link set "$AB_VETH_NS" up
    ip -n "$AB_NS" route add local "$AB_PREFIX" dev lo table local
    ip route add "$AB_PREFIX" via "$AB_LINK_NS" dev "$AB_VETH_HOST"
    local a
    for a in "$(head -n1 "$ab_tmp/targets.txt")" "$(tail -n1 "$ab_tmp/targets.txt")"; do
        ping -c1 -W1 -q "$a" >/dev/null || die "no echo reply from $a through $AB_VETH_HOST"
    done
    log "first and last target answer ping"
}

# ab_snapshot PID FILE [agent]: one reading as key=value lines.
ab_snapshot() {
    local pid=$1 file=$2
    kill -0 "$pid" 2>/dev/null || die "process $pid died; see $OUT/agent-bench-*.log"
    {
        echo "time=$(now)"
        awk '{print "cpu_ticks=" $14 + $15}' "/proc/$pid/stat"
        awk '/^VmHWM/ {print "hwm_kb=" $2} /^VmRSS/ {print "rss_kb=" $2}' "/proc/$pid/status"
        echo "wire_tx=$(cat "/sys/class/net/$AB_VETH_HOST/statistics/tx_packets")"
        echo "wire_rx=$(cat "/sys/class/net/$AB_VETH_HOST/statistics/rx_packets")"
        if [ "${3:-}" = agent ]; then
            curl -fsS "http://$AB_METRICS/metrics" | awk '
                function put(k) { v[k] += $NF }
                /^netprobe_agent_runs_total\{.*probe_type="icmp"/ { put("runs") }
                /^netprobe_agent_failures_total\{.*probe_type="icmp"/ { put("failures") }
                /^netprobe_agent_skipped_runs_total\{.*probe_type="icmp"/ { put("skipped") }
                /^netprobe_agent_delivery_seconds_count/ { put("delivered") }
                /^netprobe_agent_spooled_messages_total/ { put("spooled") }
                /^netprobe_agent_lost_messages_total/ { put("lost") }
                END { n = split("runs failures skipped delivered spooled lost", k, " ")
                      for (i = 1; i <= n; i++) print k[i] "=" (v[k[i]] + 0) }'
        fi
    } >"$file"
}

ab_sleep_until() { # ab_sleep_until EPOCH_SECONDS
    local d
    d=$(echo "$1 - $(now)" | bc -l)
    if [ "$(echo "$d > 0" | bc -l)" = 1 ]; then sleep "$d"; fi
}

# ab_measure NAME PID START [agent]: readings at START + interval and at
# START + DURATION_S into $ab_tmp/NAME.t0 and NAME.t1.
ab_measure() {
    ab_sleep_until "$(echo "$3 + $AB_INTERVAL_S" | bc -l)"
    ab_snapshot "$2" "$ab_tmp/$1.t0" "${4:-}"
    ab_sleep_until "$(echo "$3 + $DURATION_S" | bc -l)"
    ab_snapshot "$2" "$ab_tmp/$1.t1" "${4:-}"
}

bench_agent() {
    [ "$(id -u)" = 0 ] || die "scripts/bench agent needs root (network namespace, raw ICMP sockets)"
    if ! [[ "$DURATION_S" =~ ^[0-9]+$ ]] || [ "$DURATION_S" -le $((AB_INTERVAL_S * 2)) ]; then
        die "SECONDS must be an integer > $((AB_INTERVAL_S * 2)) (the first ${AB_INTERVAL_S} s are not measured)"
    fi
    if ! [[ "$TARGETS" =~ ^[0-9]+$ ]] || [ "$TARGETS" -lt 1 ] || [ "$TARGETS" -gt $AB_MAX_TARGETS ]; then
        die "TARGETS must be 1..$AB_MAX_TARGETS (addresses of $AB_PREFIX)"
    fi
    command -v fping >/dev/null || die "fping not found (apt-get install fping)"
    local port=${AB_METRICS##*:}
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "port $port (agent metrics) is taken"

    exec 9>"$AB_LOCK"
    flock -n 9 || die "another scripts/bench agent is running (lock $AB_LOCK)"
    ab_tmp=$(mktemp -d /tmp/netprobe-bench-agent.XXXXXX)
    trap ab_teardown EXIT
    trap 'exit 130' INT TERM

    awk -v n="$TARGETS" 'BEGIN { for (i = 1; i <= n; i++) printf "10.99.%d.%d\n", int(i / 256), i % 256 }' \
        >"$ab_tmp/targets.txt"
    ab_net_up

    "$here/stack" up kafka
    eval "$("$here/stack" env)"
    log "topics and ACLs under prefix $PREFIX"
    "$here/stack" topics "$PREFIX"
    log "building netprobe-agent (release)"
    cargo build --release --locked -p netprobe-agent -q
    # A private copy: the shared target dir may be rebuilt by other work meanwhile.
    cp "$CARGO_TARGET_DIR/release/netprobe-agent" "$ab_tmp/netprobe-agent"

    mkdir -p "$ab_tmp/spool"
    {
        cat <<EOF
# Generated by scripts/bench agent.
[agent]
probe_id = "bench"
location = "bench"
spool_dir = "$ab_tmp/spool"
metrics_listen = "$AB_METRICS"

[kafka]
brokers = ["$NETPROBE_KAFKA_BROKERS"]
username = "$NETPROBE_KAFKA_AGENT_USER"
password_file = "$NETPROBE_KAFKA_AGENT_PASSWORD_FILE"
ca_file = "$NETPROBE_KAFKA_CA"
topic_prefix = "$PREFIX"
EOF
        # One table, every address in its `targets` list (the compact form).
        printf '\n[[icmp]]\ninterval = "%ss"\ncount = 1\ntimeout = "%sms"\ntargets = [\n' "$AB_INTERVAL_S" "$AB_TIMEOUT_MS"
        awk '{ printf "  \"%s\",\n", $1 }' "$ab_tmp/targets.txt"
        printf ']\n'
    } >"$ab_tmp/agent.toml"
    cp "$ab_tmp/agent.toml" "$OUT/agent-bench.toml"

    # Each tool runs alone in its own window, so the machine's load swings
    # move single ratios (1.16x-1.66x in one afternoon): with ROUNDS > 1 the
    # pair runs again and the median of the rounds' ratios is reported.
    local round start pid period_ms=$((AB_INTERVAL_S * 1000)) gap_ms
    gap_ms=$(echo "scale=3; $AB_FPING_ROUND_SHARE * $period_ms / $TARGETS" | bc -l | sed 's/^\./0./')
    rm -f "$OUT"/agent-results-round-*.json
    for round in $(seq "$AB_ROUNDS"); do
        [ "$AB_ROUNDS" = 1 ] || log "round $round of $AB_ROUNDS"
        # ------------------------------------------------------------ (a) agent
        log "(a) netprobe-agent: $TARGETS targets every ${AB_INTERVAL_S} s for $DURATION_S s"
        start=$(now)
        RUST_LOG=warn "$ab_tmp/netprobe-agent" --config "$ab_tmp/agent.toml" 2>"$OUT/agent-bench-agent.log" &
        pid=$!
        ab_pids=("$pid")
        ab_measure agent "$pid" "$start" agent
        kill -TERM "$pid"
        wait "$pid" || log "netprobe-agent exited with status $?"
        ab_pids=()

        # ------------------------------------------------------------ (b) fping
        log "(b) fping -l -p $period_ms -i $gap_ms -t $AB_TIMEOUT_MS: same targets for $DURATION_S s"
        start=$(now)
        # -Q longer than the run: no per-reply lines (fping 5.1 prints them in
        # loop mode even with -q) and no interval summaries; SIGINT prints totals.
        fping -l -Q $((DURATION_S + 3600)) -s -p "$period_ms" -i "$gap_ms" -t "$AB_TIMEOUT_MS" \
            -f "$ab_tmp/targets.txt" >"$OUT/agent-bench-fping.out" 2>"$OUT/agent-bench-fping.log" &
        pid=$!
        ab_pids=("$pid")
        ab_measure fping "$pid" "$start"
        kill -INT "$pid"
        wait "$pid" || true   # fping exits non-zero when any target missed a reply
        ab_pids=()
        python3 "$here/lib/agent_bench_report.py" "$ab_tmp" "$OUT/agent-bench-fping.log" \
            "$DURATION_S" "$TARGETS" "$AB_INTERVAL_S" "$gap_ms" "$OUT/agent-results-round-$round.json"
    done
    python3 - "$OUT/agent-results.json" "$OUT"/agent-results-round-*.json <<'PY'
import json, statistics, sys
paths = sorted(sys.argv[2:], key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))
rounds = [json.load(open(p)) for p in paths]
ratios = [r["cpu_per_probe_ratio_agent_over_fping"] for r in rounds]
median = round(statistics.median(ratios), 2)
out = dict(rounds[-1])
out["rounds"] = rounds
out["cpu_per_probe_ratio_rounds"] = ratios
out["cpu_per_probe_ratio_agent_over_fping"] = median
out["goal_cpu_per_probe_within_1_25x_fping"] = median <= 1.25
json.dump(out, open(sys.argv[1], "w"), indent=2)
if len(rounds) > 1:
    print(f"rounds: CPU per probe ratios {ratios}; median {median}"
          f" ({'met' if median <= 1.25 else 'NOT met'}: goal <= 1.25x)")
    print(f"results: {sys.argv[1]}")
PY
}
