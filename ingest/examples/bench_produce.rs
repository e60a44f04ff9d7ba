//! Benchmark input for `scripts/bench ingest`: produces N wire messages (a
//! realistic mix of kinds) to the probe topics under a prefix with the agent
//! principal, writes the same messages as pre-rendered line protocol to a
//! file (for the raw-write ceiling; grouped by topic), and prints the
//! expected point count per measurement as JSON.
//!
//! Usage: bench_produce COUNT LINES_FILE  (Kafka settings from `scripts/stack env`,
//! topic prefix from NETPROBE_BENCH_PREFIX). LINES_FILE `-` writes no lines.
//! With NETPROBE_BENCH_SPAN_S set (`scripts/bench replay`), the messages are
//! spread evenly over the SPAN_S seconds before now, message timestamp and
//! Kafka CreateTime alike; otherwise they are 1 µs apart from a fixed base.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netprobe_ingest::points::{points, render};
use netprobe_wire::{KafkaSettings, Timestamp, Topic};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message as _;

#[path = "common/mix.rs"]
mod mix;
use mix::{message, BASE_NS};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (eval \"$(scripts/stack env)\")"))
}

/// How long a refusal that passes on its own (see [`is_transient`]) is retried.
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Refusals a fresh stack gives for a moment: an ACL or topic just created
/// and not yet applied by the broker, a partition without a leader yet, a
/// broker restarting.
fn is_transient(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::TopicAuthorizationFailed
                | C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::NotEnoughReplicas
                | C::NotEnoughReplicasAfterAppend
                | C::RequestTimedOut
                | C::MessageTimedOut
                | C::BrokerTransportFailure
                | C::AllBrokersDown
        )
    )
}

/// Reports what cannot be retried (or no longer) and exits non-zero.
fn fail(what: std::fmt::Arguments<'_>) -> ! {
    eprintln!("bench_produce: {what}");
    std::process::exit(1)
}

/// Waits for one delivery; re-sends a message refused for a transient reason
/// for up to [`RETRY_FOR`] (with 100 ms .. 2 s backoff), and exits with the
/// topic and error for anything else.
async fn delivered(producer: &FutureProducer, mut delivery: DeliveryFuture) {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let (e, msg) = match delivery.await {
            Ok(Ok(_)) => return,
            Ok(Err(failed)) => failed,
            Err(_) => fail(format_args!("the producer dropped a delivery report")),
        };
        if !is_transient(&e) || started.elapsed() >= RETRY_FOR {
            fail(format_args!(
                "delivery to {} partition {} failed after {:.1} s: {e}",
                msg.topic(),
                msg.partition(),
                started.elapsed().as_secs_f64()
            ));
        }
        eprintln!("bench_produce: {}: {e}; retrying (transient)", msg.topic());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
        let payload = msg.payload().unwrap_or_default();
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(msg.topic()).payload(payload);
        if let Some(key) = msg.key() {
            record = record.key(key);
        }
        if let Some(ms) = msg.timestamp().to_millis() {
            record = record.timestamp(ms);
        }
        delivery = match producer.send_result(record) {
            Ok(d) => d,
            Err((e, _)) => fail(format_args!("re-send to {} failed: {e}", msg.topic())),
        };
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().and_then(|c| c.parse().ok()).expect("usage: bench_produce COUNT LINES_FILE");
    let lines_path = PathBuf::from(args.next().expect("usage: bench_produce COUNT LINES_FILE"));
    let prefix = env("NETPROBE_BENCH_PREFIX");
    let write_lines = lines_path.as_os_str() != "-";
    // (first timestamp, ns between messages, whether CreateTime follows it)
    let (base_ns, step_ns, set_create_time) = match std::env::var("NETPROBE_BENCH_SPAN_S") {
        Ok(span) => {
            let span_ns = span.parse::<i64>().expect("NETPROBE_BENCH_SPAN_S: seconds") * 1_000_000_000;
            let now_ns = Timestamp::now().unix_nanos().expect("now");
            (now_ns - span_ns, span_ns / count.max(1) as i64, true)
        }
        Err(_) => (BASE_NS, 1_000, false),
    };
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
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    // Topics and ACLs just made (`stack topics --recreate`) reach the broker
    // asynchronously: wait until this principal sees every topic.
    for t in Topic::PROBE_TOPICS {
        let name = t.name(&prefix);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !producer
            .client()
            .fetch_metadata(Some(&name), Duration::from_secs(5))
            .is_ok_and(|md| md.topics().iter().any(|x| x.name() == name && x.error().is_none()))
        {
            assert!(Instant::now() < deadline, "{name} not writable after 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Lines per topic, written one topic after the other: batches then hold
    // one measurement, as batches of a consumer catching up do.
    let mut lines: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut expected: BTreeMap<&'static str, u64> = BTreeMap::new();
    let started = Instant::now();
    let mut inflight = Vec::with_capacity(10_000);
    let mut buf = Vec::new();
    for i in 0..count {
        let ts_ns = base_ns + i as i64 * step_ns;
        let msg = message(i, ts_ns);
        let pts = points(&msg).expect("valid");
        for p in &pts {
            *expected.entry(p.measurement).or_default() += 1;
        }
        let topic = Topic::for_probe_type(msg.probe_type()).name(&prefix);
        if write_lines {
            buf.clear();
            render(&pts, &mut buf);
            lines.entry(topic.clone()).or_default().extend_from_slice(&buf);
        }
        let payload = msg.encode().expect("encode");
        let key = msg.key();
        // send_result enqueues now; the futures complete from delivery reports.
        let mut record = FutureRecord::to(&topic).key(&key).payload(&payload);
        if set_create_time {
            record = record.timestamp(ts_ns / 1_000_000);
        }
        let delivery = producer.send_result(record).map_err(|(e, _)| e).expect("enqueue");
        inflight.push(delivery);
        if inflight.len() == 10_000 {
            for d in inflight.drain(..) {
                delivered(&producer, d).await;
            }
        }
    }
    for d in inflight {
        delivered(&producer, d).await;
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    if write_lines {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&lines_path).expect("lines file"));
        for topic_lines in lines.values() {
            file.write_all(topic_lines).expect("write lines");
        }
        file.flush().expect("flush lines");
    }
    let total: u64 = expected.values().sum();
    eprintln!("produced {count} messages ({total} points) in {:.1} s", started.elapsed().as_secs_f64());
    let per: Vec<String> = expected.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
    println!("{{\"messages\": {count}, \"points\": {total}, \"per_measurement\": {{{}}}}}", per.join(", "));
}
