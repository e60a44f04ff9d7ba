//! Helpers for tests against the local stack (`scripts/stack up` and
//! `eval "$(scripts/stack env)"`). Missing variables fail the test with a
//! message saying how to get the stack: stack tests never skip.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use netprobe_ingest::config::{Config, InfluxSettings, IngestSettings};
use netprobe_wire::{KafkaSettings, Message, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message as _, Offset, TopicPartitionList};

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the local stack. Run scripts/test, or \
             `scripts/stack up && eval \"$(scripts/stack env)\"` before cargo test"
        )
    })
}

/// A name no other test run uses.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// The stack's settings for `principal`; fails (never skips) without the stack.
pub fn kafka(principal: &str) -> KafkaSettings {
    KafkaSettings::from_stack_env(principal).unwrap_or_else(|e| panic!("{e}"))
}

pub fn prefix() -> String {
    std::env::var("NETPROBE_KAFKA_TOPIC_PREFIX").unwrap_or_default()
}

/// An ingest config for the stack with a consumer group that starts at the
/// current end of every probe topic (see [`fresh_group`]).
pub fn ingest_config(group_id: String) -> Config {
    Config {
        kafka: kafka("INGEST"),
        influx: InfluxSettings {
            url: env("NETPROBE_INFLUX_URL"),
            org: env("NETPROBE_INFLUX_ORG"),
            bucket: env("NETPROBE_INFLUX_BUCKET"),
            token_file: Some(PathBuf::from(env("NETPROBE_INFLUX_WRITE_TOKEN_FILE"))),
            token_credential: None,
        },
        ingest: IngestSettings {
            group_id,
            batch_timeout: Duration::from_millis(200),
            retry_max_backoff: Duration::from_secs(2),
            ..IngestSettings::default()
        },
    }
}

/// The same config as a TOML file, for the binary.
pub fn ingest_config_toml(config: &Config) -> String {
    let k = &config.kafka;
    let i = &config.influx;
    format!(
        "[kafka]\nbrokers = {:?}\nusername = {:?}\npassword_file = {:?}\nca_file = {:?}\ntopic_prefix = {:?}\n\n\
         [influx]\nurl = {:?}\norg = {:?}\nbucket = {:?}\ntoken_file = {:?}\n\n\
         [ingest]\ngroup_id = {:?}\nbatch_timeout = \"200ms\"\nretry_max_backoff = \"2s\"\n",
        k.brokers,
        k.username,
        k.password_file.as_ref().expect("password file"),
        k.ca_file,
        k.topic_prefix,
        i.url,
        i.org,
        i.bucket,
        i.token_file.as_ref().expect("token file"),
        config.ingest.group_id,
    )
}

/// High watermarks of every partition of `topics`.
pub fn end_offsets(principal: &str, topics: &[Topic]) -> TopicPartitionList {
    let consumer: BaseConsumer = kafka(principal).client_config().expect("config").create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let name = t.name(&prefix());
        let md = consumer.fetch_metadata(Some(&name), Duration::from_secs(30)).expect("metadata");
        for p in md.topics()[0].partitions() {
            let (_, high) = consumer.fetch_watermarks(&name, p.id(), Duration::from_secs(30)).expect("watermarks");
            tpl.add_partition_offset(&name, p.id(), Offset::Offset(high)).expect("offset");
        }
    }
    tpl
}

/// A new consumer group (under the ingest ACL prefix) whose committed
/// offsets are the current ends of the probe topics, so ingest in that
/// group reads only what the test produces next.
pub fn fresh_group(tag: &str) -> String {
    let group = unique(&format!("netprobe-ingest-test-{tag}"));
    let tpl = end_offsets("INGEST", &Topic::PROBE_TOPICS);
    let consumer: BaseConsumer =
        kafka("INGEST").client_config().expect("config").set("group.id", &group).create().expect("consumer");
    consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync).expect("commit start offsets");
    group
}

pub fn producer() -> FutureProducer {
    kafka("AGENT")
        .client_config()
        .expect("config")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.max.bytes", "10485760")
        .create()
        .expect("agent producer")
}

/// Produces wire messages to their topics; panics on a delivery failure.
pub async fn produce(producer: &FutureProducer, msgs: &[Message]) {
    let sends = msgs.iter().map(|m| {
        let topic = Topic::for_probe_type(m.probe_type()).name(&prefix());
        let payload = m.encode().expect("encode");
        let key = m.key();
        async move { produce_raw(producer, &topic, key.as_bytes(), &payload).await }
    });
    futures_join_all(sends).await;
}

/// Produces one message; what a fresh or restarting broker refuses for a
/// moment (see [`is_transient`]) is sent again for up to 60 s, anything
/// else fails the test naming the topic.
pub async fn produce_raw(producer: &FutureProducer, topic: &str, key: &[u8], payload: &[u8]) {
    let started = Instant::now();
    loop {
        match producer.send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(60)).await {
            Ok(_) => return,
            Err((e, _)) if is_transient(&e) && started.elapsed() < Duration::from_secs(60) => {
                eprintln!("produce to {topic}: {e}; retrying (transient)");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err((e, _)) => panic!("produce to {topic}: {e} (after {:?})", started.elapsed()),
        }
    }
}

/// Refusals that pass on their own: an ACL or topic just created and not yet
/// applied by the broker, a partition without a leader yet, a broker restarting.
pub fn is_transient(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::TopicAuthorizationFailed
                | C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::NotEnoughReplicas
                | C::RequestTimedOut
                | C::MessageTimedOut
                | C::AllBrokersDown
        )
    )
}

async fn futures_join_all<F: Future<Output = ()>>(futs: impl IntoIterator<Item = F>) {
    let handles: Vec<_> = futs.into_iter().collect();
    for f in handles {
        f.await;
    }
}

/// Runs a Flux query with the all-access token; rows as column -> value.
pub async fn flux(query: &str) -> Vec<HashMap<String, String>> {
    let token = std::fs::read_to_string(env("NETPROBE_INFLUX_TOKEN_FILE")).expect("token file");
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/query?org={}", env("NETPROBE_INFLUX_URL"), env("NETPROBE_INFLUX_ORG")))
        .header("Authorization", format!("Token {}", token.trim()))
        .header("Content-Type", "application/vnd.flux")
        .header("Accept", "application/csv")
        .body(query.to_owned())
        .send()
        .await
        .expect("InfluxDB answers queries");
    let status = resp.status();
    let body = resp.text().await.expect("body");
    assert!(status.is_success(), "query failed ({status}): {body}\n{query}");
    let mut rows = Vec::new();
    // Annotated CSV: tables separated by blank lines, each with a header.
    for table in body.split("\r\n\r\n").filter(|t| !t.trim().is_empty()) {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(table.as_bytes());
        let headers = reader.headers().expect("header").clone();
        for record in reader.records() {
            let record = record.expect("csv record");
            rows.push(headers.iter().zip(record.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect());
        }
    }
    rows
}

/// Every point of `probe_id` (one row per field), over all time.
pub async fn points_of(probe_id: &str) -> Vec<HashMap<String, String>> {
    flux(&format!(
        r#"from(bucket: "{}") |> range(start: 0) |> filter(fn: (r) => r.probe_id == {})"#,
        env("NETPROBE_INFLUX_BUCKET"),
        flux_string(probe_id)
    ))
    .await
}

/// Number of distinct timestamps of `measurement` for `probe_id`.
pub async fn count_points(probe_id: &str, measurement: &str, field: &str) -> u64 {
    let rows = flux(&format!(
        r#"from(bucket: "{}") |> range(start: 0) |> filter(fn: (r) => r.probe_id == {} and r._measurement == "{measurement}" and r._field == "{field}") |> group() |> count()"#,
        env("NETPROBE_INFLUX_BUCKET"),
        flux_string(probe_id)
    ))
    .await;
    rows.first().and_then(|r| r.get("_value")).map_or(0, |v| v.parse().expect("count"))
}

/// A Flux string literal.
pub fn flux_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Polls `check` until it returns `Some` or `deadline` passes.
pub async fn poll<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "{what}: not within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A DLQ message as the tests see it.
#[derive(Debug)]
pub struct DlqRecord {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// Reads the DLQ (admin principal) from `from` to its current end.
pub fn read_dlq(from: &TopicPartitionList) -> Vec<DlqRecord> {
    let consumer: BaseConsumer = kafka("ADMIN")
        .client_config()
        .expect("config")
        .set("group.id", unique("netprobe-test-dlq-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let end = end_offsets("ADMIN", &[Topic::Dlq]);
    let mut remaining: usize = 0;
    for e in end.elements() {
        let start = from
            .find_partition(e.topic(), e.partition())
            .and_then(|s| match s.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(0);
        if let Offset::Offset(high) = e.offset() {
            remaining += (high - start).max(0) as usize;
        }
    }
    consumer.assign(from).expect("assign");
    let mut out = Vec::new();
    let start = Instant::now();
    while out.len() < remaining {
        assert!(start.elapsed() < Duration::from_secs(60), "DLQ read stalled at {}/{remaining}", out.len());
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("DLQ message");
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(DlqRecord {
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
    }
    out
}

/// The shared stack's state directory: `NETPROBE_STACK_DIR` from
/// `scripts/stack env`, else the directory holding `pki/ca.pem`.
pub fn stack_dir() -> PathBuf {
    match std::env::var("NETPROBE_STACK_DIR") {
        Ok(d) => d.into(),
        Err(_) => {
            let ca = PathBuf::from(env("NETPROBE_KAFKA_CA"));
            ca.parent().and_then(|p| p.parent()).expect("NETPROBE_KAFKA_CA is STATE/pki/ca.pem").to_owned()
        }
    }
}

/// Runs `scripts/stack ARGS` against the shared stack; (success, stderr).
pub fn stack(args: &[&str]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/stack");
    let out = Command::new(&script)
        .args(args)
        .env("NETPROBE_STACK_DIR", stack_dir())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Deletes the test's topics and their ACLs, also when the test fails.
pub struct DeleteTopics(pub String);

impl Drop for DeleteTopics {
    fn drop(&mut self) {
        let (ok, stderr) = stack(&["topics", &self.0, "--delete"]);
        if !ok {
            eprintln!("cleanup: scripts/stack topics {} --delete failed:\n{stderr}", self.0);
        }
    }
}

/// Probe topics and ACLs of their own under a fresh prefix (`scripts/stack
/// topics PREFIX --recreate`, which returns once every principal can use
/// them); deleted when the guard drops, also when the test fails.
pub fn fresh_topics(tag: &str) -> (String, DeleteTopics) {
    let prefix = format!("{}.", unique(tag));
    let (ok, stderr) = stack(&["topics", &prefix, "--recreate"]);
    let cleanup = DeleteTopics(prefix.clone());
    assert!(ok, "scripts/stack topics {prefix} --recreate failed:\n{stderr}");
    (prefix, cleanup)
}
