//! Input of `scripts/bench latency`: ICMP wire messages produced at a steady
//! RATE per second for SECONDS, each stamped with its produce time (the
//! message timestamp, in ns, unique per message, and so the point's time in
//! InfluxDB; Kafka CreateTime is the same instant in ms). The latency poller
//! reads the produce time back from each point's `_time`.
//!
//! Usage: bench_latency_produce SECONDS RATE PROBE_ID (Kafka settings from
//! `scripts/stack env`, agent principal; topic prefix from
//! NETPROBE_BENCH_PREFIX; `linger.ms` from NETPROBE_BENCH_LINGER_MS, default
//! 5). SECONDS 0 produces one message. With NETPROBE_BENCH_TIMES_FILE set,
//! each produce time (ns) is appended there, one line each, flushed every
//! 100 messages, so the poller knows which points it still waits for. Prints
//! `{"produced": N, "first_ns": .., "last_ns": .., "behind_max_ms": ..}` when
//! every message is acknowledged (`behind_max_ms`: how late the producer
//! ever ran against its schedule).

use std::time::{Duration, Instant};

use netprobe_wire::msg::Icmp;
use netprobe_wire::{Body, KafkaSettings, Message, ProbeId, Timestamp, Topic};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (eval \"$(scripts/stack env)\")"))
}

fn message(probe_id: &str, i: u64, ts_ns: i64) -> Message {
    let target = format!("192.0.2.{}", i % 50);
    let body = Body::Icmp(Icmp {
        resolved_ip: Some(target.parse().expect("ip")),
        target,
        sent: 5,
        received: 5,
        loss_pct: 0.0,
        rtt_min_ms: Some(10.0),
        rtt_avg_ms: Some(11.0),
        rtt_median_ms: Some(11.0),
        rtt_max_ms: Some(13.0),
        rtt_stddev_ms: Some(0.8),
        jitter_ms: Some(0.4),
        error: None,
    });
    Message::new(ProbeId(probe_id.to_owned()), "Bench, XX", Timestamp::from_unix_nanos(ts_ns), body)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let usage = "usage: bench_latency_produce SECONDS RATE PROBE_ID";
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).expect(usage);
    let rate: u64 = args.next().and_then(|s| s.parse().ok()).filter(|r| *r > 0).expect(usage);
    let probe_id = args.next().expect(usage);
    let prefix = env("NETPROBE_BENCH_PREFIX");
    let linger_ms = std::env::var("NETPROBE_BENCH_LINGER_MS").unwrap_or_else(|_| "5".into());
    let settings = KafkaSettings {
        brokers: vec![env("NETPROBE_KAFKA_BROKERS")],
        username: env("NETPROBE_KAFKA_AGENT_USER"),
        password_file: Some(env("NETPROBE_KAFKA_AGENT_PASSWORD_FILE").into()),
        password_credential: None,
        ca_file: env("NETPROBE_KAFKA_CA").into(),
        topic_prefix: prefix.clone(),
    };
    let producer: FutureProducer = settings
        .client_config()
        .expect("config")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", &linger_ms)
        .create()
        .expect("producer");
    let topic = Topic::Icmp.name(&prefix);
    let count = (seconds * rate).max(1);
    let step = Duration::from_nanos(1_000_000_000 / rate);
    let started = Instant::now();
    let (mut first_ns, mut last_ns, mut behind_max) = (0i64, 0i64, Duration::ZERO);
    let mut inflight = Vec::with_capacity(count as usize);
    let mut times = std::env::var_os("NETPROBE_BENCH_TIMES_FILE")
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("times file")));
    for i in 0..count {
        let due = started + step * i as u32;
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        } else {
            behind_max = behind_max.max(now - due);
        }
        // Unique per message: the point's time identifies it.
        let ts_ns = Timestamp::now().unix_nanos().expect("now").max(last_ns + 1);
        if i == 0 {
            first_ns = ts_ns;
        }
        last_ns = ts_ns;
        let msg = message(&probe_id, i, ts_ns);
        let payload = msg.encode().expect("encode");
        let key = msg.key();
        let record = FutureRecord::to(&topic).key(&key).payload(&payload).timestamp(ts_ns / 1_000_000);
        inflight.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
        if let Some(out) = times.as_mut() {
            use std::io::Write as _;
            writeln!(out, "{ts_ns}").expect("times file");
            if i % 100 == 99 || i + 1 == count {
                out.flush().expect("times file");
            }
        }
    }
    for d in inflight {
        d.await.expect("delivery report").map_err(|(e, _)| e).expect("delivered");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    println!(
        "{{\"produced\": {count}, \"first_ns\": {first_ns}, \"last_ns\": {last_ns}, \"behind_max_ms\": {:.1}}}",
        behind_max.as_secs_f64() * 1e3
    );
}
