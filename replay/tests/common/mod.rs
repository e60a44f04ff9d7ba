//! Helpers for replay tests against the local stack (`scripts/stack up` and
//! `eval "$(scripts/stack env)"`): missing variables fail the test, never
//! skip it. One data set per test binary, produced once under a topic
//! prefix of its own (`scripts/stack topics PREFIX`); one fresh bucket per
//! replay.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use netprobe_wire::msg::{Dns, Health, Http, Icmp};
use netprobe_wire::{Body, KafkaSettings, Message, ProbeId, Timestamp, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

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

pub fn kafka(principal: &str, prefix: &str) -> KafkaSettings {
    let mut k = KafkaSettings::from_stack_env(principal).unwrap_or_else(|e| panic!("{e}"));
    k.topic_prefix = prefix.to_owned();
    k
}

/// Slots of the simulated day: one every 10 minutes.
pub const SLOTS: i64 = 144;
pub const SLOT_S: i64 = 600;
pub const PARTITIONS: i32 = 6;
pub const TARGETS: [&str; 2] = ["192.0.2.1", "192.0.2.2"];
pub const URL: &str = "https://example.com/health";
pub const RESOLVER: &str = "198.51.100.53:53";

/// The data set of this test binary.
#[derive(Debug)]
pub struct Fixture {
    pub prefix: String,
    /// The two agents whose messages fill the day.
    pub probes: [String; 2],
    /// First slot (24 h ago + 1 h, on a whole 10 min).
    pub t0: DateTime<Utc>,
    /// Every valid message produced, with the time it was produced at.
    pub messages: Vec<Message>,
    /// Malformed payloads produced, with their Kafka timestamp.
    pub malformed_at: Vec<DateTime<Utc>>,
}

impl Fixture {
    pub fn slot(&self, i: i64) -> DateTime<Utc> {
        self.t0 + chrono::Duration::seconds(i * SLOT_S)
    }
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// The data set, produced on first use (in its own thread: tests run
/// inside tokio runtimes).
pub fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| std::thread::spawn(make_fixture).join().expect("fixture thread"))
}

fn make_fixture() -> Fixture {
    let prefix = format!("{}.", unique("replaytest"));
    stack_topics(&prefix);
    let run = unique("r");
    let probes = [format!("replay-a-{run}"), format!("replay-b-{run}")];
    // A day that ended an hour ago: Kafka refuses timestamps far in the future
    // and keeps 7 days.
    let t0 =
        (Utc::now() - chrono::Duration::hours(25)).duration_trunc(chrono::Duration::seconds(SLOT_S)).expect("trunc");
    let mut messages = Vec::new();
    for i in 0..SLOTS {
        let ts = Timestamp(t0 + chrono::Duration::seconds(i * SLOT_S));
        for probe in &probes {
            for target in TARGETS {
                messages.push(Message::new(ProbeId(probe.clone()), "Test, XX", ts, Body::Icmp(icmp(target, i))));
            }
            messages.push(Message::new(ProbeId(probe.clone()), "Test, XX", ts, Body::Dns(dns(i))));
            messages.push(Message::new(ProbeId(probe.clone()), "Test, XX", ts, Body::Http(http(i))));
            messages.push(Message::new(ProbeId(probe.clone()), "Test, XX", ts, Body::Health(health(i))));
        }
    }
    // Malformed messages inside the day, in icmp.metrics.
    let malformed_at: Vec<DateTime<Utc>> =
        [40, 50, 100].iter().map(|&i| t0 + chrono::Duration::seconds(i * SLOT_S + 5)).collect();
    // (Kafka time, topic, key, payload), produced in time order as agents
    // would: each partition's timestamps then only grow.
    let mut records: Vec<(DateTime<Utc>, String, String, Vec<u8>)> = messages
        .iter()
        .map(|m| {
            (m.timestamp.0, Topic::for_probe_type(m.probe_type()).name(&prefix), m.key(), m.encode().expect("encode"))
        })
        .collect();
    for at in &malformed_at {
        records.push((
            *at,
            Topic::Icmp.name(&prefix),
            "bad".into(),
            b"{\"schema\": 1, \"probe_type\": \"icmp\", oops".to_vec(),
        ));
    }
    records.sort_by_key(|r| r.0);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let producer = producer("AGENT", &prefix);
        let mut sends = Vec::new();
        for (n, (at, topic, key, payload)) in records.iter().enumerate() {
            let record = FutureRecord::to(topic)
                .key(key)
                .payload(payload)
                .partition(n as i32 % PARTITIONS)
                .timestamp(at.timestamp_millis());
            sends.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
        }
        for s in sends {
            s.await.expect("delivery").map_err(|(e, _)| e).expect("delivered");
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    });
    Fixture { prefix, probes, t0, messages, malformed_at }
}

pub fn icmp(target: &str, i: i64) -> Icmp {
    Icmp {
        target: target.to_owned(),
        resolved_ip: Some(target.parse().expect("ip")),
        sent: 5,
        received: 5,
        loss_pct: 0.0,
        rtt_min_ms: Some(1.0),
        rtt_avg_ms: Some(1.5 + i as f64 / 1000.0),
        rtt_median_ms: Some(1.5),
        rtt_max_ms: Some(2.0),
        rtt_stddev_ms: Some(0.1),
        jitter_ms: Some(0.05),
        error: None,
    }
}

fn dns(i: i64) -> Dns {
    Dns {
        resolver: RESOLVER.into(),
        query_name: "example.com".into(),
        record_type: "A".into(),
        rcode: Some("NOERROR".into()),
        latency_ms: Some(3.0 + i as f64 / 100.0),
        answers: vec!["192.0.2.80".into()],
        answer_count: 1,
        error: None,
    }
}

fn http(i: i64) -> Http {
    Http {
        url: URL.into(),
        method: "GET".into(),
        status_code: Some(200),
        success: true,
        dns_ms: Some(1.0),
        connect_ms: Some(2.0),
        tls_ms: Some(3.0),
        ttfb_ms: Some(4.0),
        total_ms: Some(5.0 + i as f64),
        response_bytes: Some(1234),
        http_version: Some("HTTP/1.1".into()),
        tls_version: Some("TLSv1.3".into()),
        cert_not_after: None,
        redirects: 0,
        error: None,
    }
}

fn health(i: i64) -> Health {
    Health {
        last_successful_run: None,
        uptime_s: 100 + i as u64,
        failures_last_hour: 0,
        runs_last_hour: 6,
        spool_messages: 0,
        spool_dropped_messages: 0,
        kafka_connected: true,
        feeds: Vec::new(),
        instance: None,
    }
}

pub fn producer(principal: &str, prefix: &str) -> FutureProducer {
    kafka(principal, prefix)
        .client_config()
        .expect("config")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// `scripts/stack topics PREFIX`: topics and ACLs under `prefix`.
pub fn stack_topics(prefix: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/stack");
    let out = Command::new(script).args(["topics", prefix]).output().expect("run scripts/stack topics");
    assert!(
        out.status.success(),
        "scripts/stack topics {prefix} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // ACLs reach the broker asynchronously: wait until each principal sees
    // the topics it is allowed to (polled, 60 s deadline).
    for (principal, topic) in [("AGENT", Topic::Icmp), ("REPLAY", Topic::Dlq), ("INGEST", Topic::Dlq)] {
        let name = topic.name(prefix);
        let consumer: BaseConsumer =
            kafka(principal, prefix).client_config().expect("config").create().expect("client");
        let started = std::time::Instant::now();
        loop {
            let visible = consumer
                .fetch_metadata(Some(&name), Duration::from_secs(10))
                .is_ok_and(|md| md.topics().iter().any(|t| t.name() == name && t.error().is_none()));
            if visible {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{principal} cannot see {name} after 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Produces a DLQ record as ingest does (ingest principal, DLQ headers).
pub async fn produce_dlq(prefix: &str, source: (&str, i32, i64), class: &str, reason: &str, payload: &[u8]) {
    use netprobe_ingest::dlq::headers as h;
    let producer = producer("INGEST", prefix);
    let partition = source.1.to_string();
    let offset = source.2.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header { key: h::SOURCE_TOPIC, value: Some(source.0) })
        .insert(Header { key: h::SOURCE_PARTITION, value: Some(&partition) })
        .insert(Header { key: h::SOURCE_OFFSET, value: Some(&offset) })
        .insert(Header { key: h::ERROR_CLASS, value: Some(class) })
        .insert(Header { key: h::REASON, value: Some(reason) })
        .insert(Header { key: h::GROUP_ID, value: Some("netprobe-ingest") });
    let topic = Topic::Dlq.name(prefix);
    producer
        .send(FutureRecord::to(&topic).key("k").payload(payload).headers(headers), Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .expect("DLQ produce");
}

// ---------------------------------------------------------------- InfluxDB

fn token() -> String {
    std::fs::read_to_string(env("NETPROBE_INFLUX_TOKEN_FILE")).expect("token file").trim().to_owned()
}

async fn influx(method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", env("NETPROBE_INFLUX_URL")))
        .header("Authorization", format!("Token {}", token()));
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(serde_json::to_vec(&b).expect("json"));
    }
    let resp = req.send().await.expect("InfluxDB answers");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    assert!(status.is_success(), "{path}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// Creates an empty bucket with a unique name; returns the name.
pub async fn fresh_bucket(tag: &str) -> String {
    let name = unique(&format!("replay-{tag}"));
    let orgs = influx(reqwest::Method::GET, &format!("/api/v2/orgs?org={}", env("NETPROBE_INFLUX_ORG")), None).await;
    let org_id = orgs["orgs"][0]["id"].as_str().expect("org id").to_owned();
    influx(
        reqwest::Method::POST,
        "/api/v2/buckets",
        Some(serde_json::json!({"orgID": org_id, "name": name, "retentionRules": []})),
    )
    .await;
    name
}

/// Posts line protocol to `bucket` (the oracle for `--output lp`).
pub async fn write_lp(bucket: &str, lines: Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/v2/write?org={}&bucket={bucket}&precision=ns",
            env("NETPROBE_INFLUX_URL"),
            env("NETPROBE_INFLUX_ORG")
        ))
        .header("Authorization", format!("Token {}", token()))
        .body(lines)
        .send()
        .await
        .expect("write");
    let status = resp.status();
    assert!(status.is_success(), "write: {status}: {}", resp.text().await.unwrap_or_default());
}

/// Runs a Flux query; rows as column -> value.
pub async fn flux(query: &str) -> Vec<HashMap<String, String>> {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/query?org={}", env("NETPROBE_INFLUX_URL"), env("NETPROBE_INFLUX_ORG")))
        .header("Authorization", format!("Token {}", token()))
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

/// A point as the tests compare them: measurement, probe_id, its series
/// tag (target, url or resolver; empty for health), time in ns.
pub type PointKey = (String, String, String, i64);

/// The field every point of a measurement has, and its series tag.
const KEY_FIELDS: [(&str, &str, &str); 4] = [
    ("icmp", "sent", "target"),
    ("dns", "answer_count", "resolver"),
    ("http", "success", "url"),
    ("probe_health", "uptime_s", ""),
];

/// Every point in `bucket`.
pub async fn points_in(bucket: &str) -> BTreeSet<PointKey> {
    let mut out = BTreeSet::new();
    for (measurement, field, tag) in KEY_FIELDS {
        let rows = flux(&format!(
            r#"from(bucket: "{bucket}") |> range(start: 0) |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}")"#
        ))
        .await;
        for r in rows {
            let time = DateTime::parse_from_rfc3339(&r["_time"]).expect("time").with_timezone(&Utc);
            let tag_value = if tag.is_empty() { String::new() } else { r[tag].clone() };
            out.insert((
                measurement.to_owned(),
                r["probe_id"].clone(),
                tag_value,
                time.timestamp_nanos_opt().expect("ns"),
            ));
        }
    }
    out
}

/// Every row of every field in `bucket`, without the query's own columns
/// (for comparing two buckets value by value).
pub async fn rows_in(bucket: &str) -> BTreeSet<Vec<(String, String)>> {
    let rows = flux(&format!(r#"from(bucket: "{bucket}") |> range(start: 0)"#)).await;
    rows.into_iter()
        .map(|r| {
            let mut kv: Vec<(String, String)> = r
                .into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "" | "result" | "table" | "_start" | "_stop"))
                .collect();
            kv.sort();
            kv
        })
        .collect()
}

/// The points `messages` make, as [`points_in`] sees them.
pub fn expected<'a>(messages: impl IntoIterator<Item = &'a Message>) -> BTreeSet<PointKey> {
    messages
        .into_iter()
        .map(|m| {
            let (measurement, tag) = match &m.body {
                Body::Icmp(b) => ("icmp", b.target.clone()),
                Body::Dns(b) => ("dns", b.resolver.clone()),
                Body::Http(b) => ("http", b.url.clone()),
                Body::Health(_) => ("probe_health", String::new()),
                other => panic!("not in the data set: {other:?}"),
            };
            (measurement.to_owned(), m.probe_id.0.clone(), tag, m.timestamp.unix_nanos().expect("ns"))
        })
        .collect()
}

// ---------------------------------------------------------------- the binary

/// A replay config for `bucket` (or `[influx]` left out when `None`), with
/// `extra` appended (a `[replay]` table).
pub fn config_file(dir: &Path, prefix: &str, influx_url: Option<&str>, bucket: &str, extra: &str) -> PathBuf {
    let k = kafka("REPLAY", prefix);
    let mut text = format!(
        "[kafka]\nbrokers = {:?}\nusername = {:?}\npassword_file = {:?}\nca_file = {:?}\ntopic_prefix = {:?}\n\n",
        k.brokers,
        k.username,
        k.password_file.as_ref().expect("password file"),
        k.ca_file,
        k.topic_prefix,
    );
    if let Some(url) = influx_url {
        text.push_str(&format!(
            "[influx]\nurl = {url:?}\norg = {:?}\nbucket = {bucket:?}\ntoken_file = {:?}\n\n",
            env("NETPROBE_INFLUX_ORG"),
            env("NETPROBE_INFLUX_TOKEN_FILE"),
        ));
    }
    text.push_str(extra);
    let path = dir.join(format!("{}.toml", unique("replay")));
    std::fs::write(&path, text).expect("write config");
    path
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_netprobe-replay")
}

/// Runs the binary to completion (in a blocking thread).
pub async fn replay(config: &Path, args: &[String]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("--config").arg(config).args(args).env("RUST_LOG", "info");
    tokio::task::spawn_blocking(move || cmd.output().expect("run netprobe-replay")).await.expect("join")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The counters of the summary line: `key=value` pairs after `replay ...:`.
pub fn summary_counts(stderr: &str) -> HashMap<String, f64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("replay done") || l.starts_with("replay FAILED"))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().expect("number")))
        .collect()
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
