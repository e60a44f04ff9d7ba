//! Ingest against the real stack: every kind lands exactly, re-ingesting
//! changes nothing, poison goes to the DLQ while good messages land, a
//! second process can join mid-stream, and escaping holds on the real server.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use common::msgs::{golden_set, icmp_seq};
use common::stack::*;
use netprobe_ingest::points::{points, render, Field};
use netprobe_ingest::retry::Action;
use netprobe_ingest::sink::InfluxSink;
use netprobe_wire::{Message, Timestamp, Topic};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(90);

/// Starts an in-process ingest; cancel the token to stop it.
fn start_ingest(group: &str) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info").try_init();
    let cancel = CancellationToken::new();
    let config = ingest_config(group.to_owned());
    let c = cancel.clone();
    let handle = tokio::spawn(async move {
        netprobe_ingest::run(config, c, || {}, Box::new(|| {})).await.expect("ingest runs");
    });
    (cancel, handle)
}

async fn stop(ingest: (CancellationToken, tokio::task::JoinHandle<()>)) {
    ingest.0.cancel();
    tokio::time::timeout(Duration::from_secs(30), ingest.1).await.expect("ingest stops in time").expect("no panic");
}

/// (measurement, tags, field) -> expected value as Flux prints it.
fn expected_rows(msg: &Message) -> BTreeMap<(String, BTreeMap<String, String>, String), String> {
    let mut out = BTreeMap::new();
    for p in points(msg).expect("valid") {
        let tags: BTreeMap<String, String> =
            p.tags.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for (k, v) in &p.fields {
            let value = match v {
                Field::Float(x) => x.to_string(),
                Field::Int(x) => x.to_string(),
                Field::Bool(x) => x.to_string(),
                Field::Str(x) => x.to_string(),
            };
            out.insert((p.measurement.to_owned(), tags.clone(), k.to_string()), value);
        }
    }
    out
}

const TAG_COLUMNS: [&str; 11] = [
    "probe_id",
    "location",
    "target",
    "resolver",
    "query_name",
    "record_type",
    "url",
    "method",
    "ttl",
    "prefix",
    "instance",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_lands_with_every_field_and_reingest_changes_nothing() {
    let probe_id = unique("e2e-kinds");
    let msgs = golden_set(&probe_id);
    let mut want = BTreeMap::new();
    for m in &msgs {
        want.extend(expected_rows(m));
    }
    let group = fresh_group("kinds");
    let ingest = start_ingest(&group);
    produce(&producer(), &msgs).await;

    let rows = poll("all points of every kind", DEADLINE, || async {
        let rows = points_of(&probe_id).await;
        (rows.len() >= want.len()).then_some(rows)
    })
    .await;
    let ts = msgs[0].timestamp;
    let mut got = BTreeMap::new();
    for r in &rows {
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        for c in TAG_COLUMNS.iter().chain(["event"].iter()) {
            if let Some(v) = r.get(*c).filter(|v| !v.is_empty()) {
                tags.insert(c.to_string(), v.clone());
            }
        }
        let time: Timestamp = serde_json::from_value(serde_json::Value::String(r["_time"].clone())).expect("_time");
        assert_eq!(time, ts, "point time is the message timestamp, in ns");
        got.insert((r["_measurement"].clone(), tags, r["_field"].clone()), r["_value"].clone());
    }
    assert_eq!(got.len(), want.len(), "one row per expected field");
    for (key, want_value) in &want {
        let got_value = got.get(key).unwrap_or_else(|| panic!("missing {key:?}"));
        match (want_value.parse::<f64>(), got_value.parse::<f64>()) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{key:?}"),
            _ => assert_eq!(got_value, want_value, "{key:?}"),
        }
    }
    stop(ingest).await;

    // Re-ingest the same messages through a new group: no new points.
    let group = fresh_group("kinds-again");
    let ingest = start_ingest(&group);
    produce(&producer(), &msgs).await;
    let end = end_offsets("INGEST", &Topic::PROBE_TOPICS);
    wait_committed(&group, &end).await;
    stop(ingest).await;
    assert_eq!(points_of(&probe_id).await.len(), want.len(), "re-ingesting added rows");
}

/// Waits until `group` has committed at least `end` on every partition.
async fn wait_committed(group: &str, end: &rdkafka::TopicPartitionList) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer =
        kafka("INGEST").client_config().expect("config").set("group.id", group).create().expect("consumer");
    poll("offsets committed to the end", DEADLINE, || {
        let committed = consumer.committed_offsets(end.clone(), Duration::from_secs(10)).expect("committed");
        let done = end.elements().iter().all(|e| {
            let c = committed.find_partition(e.topic(), e.partition()).map(|c| c.offset());
            matches!((c, e.offset()), (Some(rdkafka::Offset::Offset(c)), rdkafka::Offset::Offset(want)) if c >= want)
        });
        async move { done.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dlq_and_every_good_message_lands() {
    let good_id = unique("e2e-poison-good");
    let dlq_start = end_offsets("ADMIN", &[Topic::Dlq]);
    let group = fresh_group("poison");
    let ingest = start_ingest(&group);
    let group_for_dlq = group.clone();
    let producer = producer();
    let icmp_topic = Topic::Icmp.name(&prefix());

    let golden_icmp = serde_json::to_value(&golden_set(&good_id)[0]).expect("json");
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = golden_icmp.clone();
        edit(&mut v);
        serde_json::to_vec(&v).expect("json")
    };
    let huge = "x".repeat(5 * 1024 * 1024);
    // (key, payload, expected error_class)
    let bad: Vec<(String, Vec<u8>, &str)> = vec![
        (
            format!("{good_id}/bad/truncated"),
            br#"{"schema":1,"probe_id":"p","probe_type":"icmp","loc"#.to_vec(),
            "syntax",
        ),
        (format!("{good_id}/bad/wrong-type"), with(&|v| v["sent"] = "five".into()), "invalid_field"),
        (format!("{good_id}/bad/schema-2"), with(&|v| v["schema"] = 2.into()), "unsupported_schema"),
        (
            format!("{good_id}/bad/nan"),
            String::from_utf8(with(&|_| {}))
                .expect("utf-8")
                .replace("\"loss_pct\":20.0", "\"loss_pct\":NaN")
                .into_bytes(),
            "syntax",
        ),
        (
            format!("{good_id}/bad/infinity"),
            String::from_utf8(with(&|_| {}))
                .expect("utf-8")
                .replace("\"loss_pct\":20.0", "\"loss_pct\":Infinity")
                .into_bytes(),
            "syntax",
        ),
        (
            format!("{good_id}/bad/newline-probe-id"),
            with(&|v| v["probe_id"] = "evil\nicmp,probe_id=x sent=1i".into()),
            "invalid_point",
        ),
        (format!("{good_id}/bad/5mb-target"), with(&|v| v["target"] = huge.clone().into()), "influx_rejected"),
        (format!("{good_id}/bad/empty"), Vec::new(), "syntax"),
    ];
    let injection_targets =
        ["a,b=c d\"x", "t\\\\ op", "x\" ,y=1 2", "'; DROP MEASUREMENT icmp; --", "${jndi:ldap://x}"];
    let mut good = Vec::new();
    for (i, target) in injection_targets.iter().enumerate() {
        good.push(icmp_seq(&good_id, target, i as u64));
    }
    for i in 0..40 {
        good.push(icmp_seq(&good_id, "127.0.0.1", 100 + i));
    }
    // Interleave: a bad one after every few good ones.
    let mut bad_iter = bad.iter();
    for (i, m) in good.iter().enumerate() {
        produce(&producer, std::slice::from_ref(m)).await;
        if i % 5 == 4 {
            if let Some((key, payload, _)) = bad_iter.next() {
                produce_raw(&producer, &icmp_topic, key.as_bytes(), payload).await;
            }
        }
    }
    for (key, payload, _) in bad_iter {
        produce_raw(&producer, &icmp_topic, key.as_bytes(), payload).await;
    }

    let want = good.len() as u64;
    poll("every good message stored", DEADLINE, || async {
        (count_points(&good_id, "icmp", "sent").await == want).then_some(())
    })
    .await;
    for target in injection_targets {
        let rows = flux(&format!(
            r#"from(bucket: "{}") |> range(start: 0) |> filter(fn: (r) => r.probe_id == {} and r.target == {} and r._field == "sent")"#,
            env("NETPROBE_INFLUX_BUCKET"),
            flux_string(&good_id),
            flux_string(target)
        ))
        .await;
        assert_eq!(rows.len(), 1, "target {target:?} must land exactly as sent");
    }
    let bad_count = bad.len();
    let dlq = poll("every bad message in the DLQ", DEADLINE, || {
        let records = read_dlq(&dlq_start);
        // Ingests of other tests read these topics too, and concurrent runs of
        // this test produce the same poison: count only ours (group and key).
        let ours: Vec<_> = records
            .into_iter()
            .filter(|r| {
                r.headers.get("group_id") == Some(&group_for_dlq)
                    && r.key.as_deref().is_some_and(|k| k.starts_with(good_id.as_bytes()))
            })
            .collect();
        async move { (ours.len() >= bad_count).then_some(ours) }
    })
    .await;
    stop(ingest).await;
    assert_eq!(dlq.len(), bad.len(), "each bad message exactly once in the DLQ");
    for (key, payload, class) in &bad {
        let r =
            dlq.iter().find(|r| r.key.as_deref() == Some(key.as_bytes())).unwrap_or_else(|| panic!("{key} not in DLQ"));
        assert_eq!(r.headers.get("error_class").map(String::as_str), Some(*class), "{key}: {:?}", r.headers);
        assert!(!r.headers["reason"].is_empty(), "{key} has a reason");
        assert_eq!(r.headers.get("source_topic"), Some(&icmp_topic), "{key}");
        assert!(r.headers["source_offset"].parse::<i64>().is_ok(), "{key}");
        if r.headers.contains_key("truncated_from_bytes") {
            assert_eq!(r.headers["truncated_from_bytes"], payload.len().to_string(), "{key}");
            assert!(payload.starts_with(&r.payload), "{key}: truncated payload is the head of the original");
        } else {
            assert_eq!(&r.payload, payload, "{key}: payload kept unchanged");
        }
    }
}

/// This test once hung (>10 min, on 2 busy cores; not reproduced since in
/// 20 runs under CPU load). The only unbounded waits on its path were the
/// stopped ingests' final commit and consumer close, synchronous on a
/// runtime worker; with an offset stored and the broker unreachable they
/// block until it is back (measured: 113 s for a 113 s outage). A blocked
/// worker outlives a failing test too (dropping the runtime waits for it),
/// and with both workers blocked no timer fires. Ingest now commits and
/// closes off the workers within 15 s; each step here has its own deadline,
/// and a watchdog thread outside the runtime names the step should the
/// runtime itself stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_joining_mid_stream_loses_nothing() {
    let watchdog = Watchdog::start("a_second_process_joining_mid_stream_loses_nothing");
    let probe_id = unique("e2e-join");
    let group = watchdog.step_sync("fresh consumer group", Duration::from_secs(60), || fresh_group("join"));
    let first = start_ingest(&group);
    let producer = producer();
    let total = 600u64;
    let second = watchdog
        .step("produce 600 messages, the second ingest joining at 200", Duration::from_secs(180), async {
            let mut second = None;
            for seq in 0..total {
                let target = format!("10.0.0.{}", seq % 24); // spread over partitions
                produce(&producer, &[icmp_seq(&probe_id, &target, seq)]).await;
                if seq == total / 3 {
                    second = Some(start_ingest(&group));
                }
                if seq.is_multiple_of(50) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            second.expect("second started")
        })
        .await;
    watchdog
        .step("produced == stored", DEADLINE + Duration::from_secs(30), async {
            poll("produced == stored", DEADLINE, || async {
                (count_points(&probe_id, "icmp", "sent").await == total).then_some(())
            })
            .await
        })
        .await;
    watchdog.step("stop the first ingest", Duration::from_secs(45), stop(first)).await;
    watchdog.step("stop the second ingest", Duration::from_secs(45), stop(second)).await;
}

/// Deadlines per step of a test, enforced twice: by a tokio timeout (a
/// failure naming the step) and by a thread outside the runtime that ends
/// the process naming the step 15 s later, for when the runtime itself is
/// stuck and no timer fires.
struct Watchdog {
    test: &'static str,
    /// The running step and its deadline; `None` once the test is done.
    current: std::sync::Arc<std::sync::Mutex<Option<(String, std::time::Instant)>>>,
}

impl Watchdog {
    fn start(test: &'static str) -> Watchdog {
        let current = std::sync::Arc::new(std::sync::Mutex::new(None::<(String, std::time::Instant)>));
        let watched = std::sync::Arc::downgrade(&current);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let Some(current) = watched.upgrade() else { return };
            let late = current.lock().expect("lock").as_ref().and_then(|(step, deadline)| {
                (std::time::Instant::now() > *deadline + Duration::from_secs(15)).then(|| step.clone())
            });
            if let Some(step) = late {
                eprintln!("{test}: step `{step}` hung past its deadline and the async runtime is stuck; exiting");
                std::process::exit(101);
            }
        });
        Watchdog { test, current }
    }

    fn arm(&self, step: &str, deadline: Duration) {
        *self.current.lock().expect("lock") = Some((step.to_owned(), std::time::Instant::now() + deadline));
    }

    async fn step<T>(&self, step: &str, deadline: Duration, work: impl Future<Output = T>) -> T {
        self.arm(step, deadline);
        let out = tokio::time::timeout(deadline, work)
            .await
            .unwrap_or_else(|_| panic!("{}: step `{step}` not done within {deadline:?}", self.test));
        *self.current.lock().expect("lock") = None;
        out
    }

    fn step_sync<T>(&self, step: &str, deadline: Duration, work: impl FnOnce() -> T) -> T {
        self.arm(step, deadline);
        let out = work();
        *self.current.lock().expect("lock") = None;
        out
    }
}

#[tokio::test]
async fn arbitrary_strings_land_exactly_in_influxdb() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let sink = InfluxSink::new(
        &ingest_config(String::new()).influx,
        &{ std::fs::read_to_string(env("NETPROBE_INFLUX_WRITE_TOKEN_FILE")).expect("token").trim().to_owned() },
        Duration::from_secs(30),
    )
    .expect("sink");
    let probe_id = unique("e2e-strings");
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::prop_oneof![proptest::arbitrary::any::<String>(), "[a-c ,=\"\\\\]{1,10}"];
    let mut lines = Vec::new();
    let mut targets = Vec::new();
    for seq in 0..300 {
        let target = strategy.new_tree(&mut runner).expect("value").current();
        let msg = icmp_seq(&probe_id, &target, seq);
        match points(&msg) {
            Ok(p) => {
                render(&p, &mut lines);
                targets.push((seq, target));
            }
            Err(_) => assert!(target.contains(['\n', '\r']) || target.ends_with('\\'), "{target:?} refused"),
        }
    }
    let outcome = sink.write(&lines).await;
    assert_eq!(outcome.action, Action::Done, "{outcome:?}");
    let rows = poll("all points queryable", DEADLINE, || async {
        let rows = flux(&format!(
            r#"from(bucket: "{}") |> range(start: 0) |> filter(fn: (r) => r.probe_id == {} and r._field == "sent")"#,
            env("NETPROBE_INFLUX_BUCKET"),
            flux_string(&probe_id)
        ))
        .await;
        (rows.len() >= targets.iter().filter(|(_, t)| !t.is_empty()).count()).then_some(rows)
    })
    .await;
    for (seq, target) in &targets {
        let ts = icmp_seq(&probe_id, target, *seq).timestamp;
        let row = rows
            .iter()
            .find(|r| {
                serde_json::from_value::<Timestamp>(serde_json::Value::String(r["_time"].clone())).ok() == Some(ts)
            })
            .unwrap_or_else(|| panic!("point {seq} ({target:?}) missing"));
        assert_eq!(row.get("target").map(String::as_str).unwrap_or(""), target.as_str(), "seq {seq}");
    }
}
