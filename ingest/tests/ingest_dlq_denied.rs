//! A DLQ the ingest principal may not write (no ACL on the topic, as the
//! real broker enforces it): the poison message is retried, never skipped;
//! the failure is counted as `error_type="authorization"`; the group's
//! offset is not committed past it; the loop stays alive (ticks) and in its group past
//! `max.poll.interval.ms`. A second run with the DLQ the principal may write
//! sends the poison there and writes everything behind it: nothing lost.
//! Its own test binary: it installs the metrics recorder.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::msgs::icmp_seq;
use common::stack::*;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use netprobe_wire::Topic;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

/// The value of one metric line (`name{labels}` exactly as rendered), 0 when absent.
fn metric(handle: &PrometheusHandle, name_and_labels: &str) -> f64 {
    handle
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix(name_and_labels))
        .filter_map(|rest| rest.strip_prefix(' '))
        .map(|v| v.parse::<f64>().expect("metric value"))
        .sum()
}

/// Seconds since the process's first tick, as the last tick saw them.
fn ticker(origin: Instant) -> (Arc<AtomicU64>, Box<dyn FnMut() + Send>) {
    let last_ms = Arc::new(AtomicU64::new(0));
    let out = last_ms.clone();
    (last_ms, Box::new(move || out.store(origin.elapsed().as_millis() as u64, Ordering::Relaxed)))
}

fn group_state(group: &str) -> (String, usize) {
    let client: BaseConsumer = kafka("ADMIN").client_config().expect("config").create().expect("admin client");
    let list = client.fetch_group_list(Some(group), Duration::from_secs(30)).expect("describe group");
    let g = list.groups().first().expect("the group exists");
    (g.state().to_owned(), g.members().len())
}

fn committed(group: &str, topic: &str, partition: i32) -> Option<i64> {
    let consumer: BaseConsumer =
        kafka("INGEST").client_config().expect("config").set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let c = consumer.committed_offsets(tpl, Duration::from_secs(30)).expect("committed offsets");
    match c.find_partition(topic, partition).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => Some(o),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dlq_without_write_acl_stalls_loudly_and_loses_nothing() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info").try_init();
    let metrics = PrometheusBuilder::new().install_recorder().expect("metrics recorder");
    let probe_id = unique("e2e-dlq-denied");
    let dlq_start = end_offsets("ADMIN", &[Topic::Dlq]);
    let group = fresh_group("dlq-denied");
    let icmp_topic = Topic::Icmp.name(&prefix());

    // One key: poison first, then good messages, all on one partition.
    let key = format!("{probe_id}/192.0.2.1");
    let producer = producer();
    let poison = br#"{"schema":1,"probe_id":"p","probe_type":"icmp","#.to_vec();
    let delivery = producer
        .send(rdkafka::producer::FutureRecord::to(&icmp_topic).key(&key).payload(&poison), Duration::from_secs(60))
        .await
        .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    let (partition, poison_offset) = (delivery.partition, delivery.offset);
    let good: Vec<_> = (0..5).map(|seq| icmp_seq(&probe_id, "192.0.2.1", seq)).collect();
    produce(&producer, &good).await;
    // The partition's end after the good messages (others may add more).
    let end = end_offsets("INGEST", &[Topic::Icmp])
        .find_partition(&icmp_topic, partition)
        .and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .expect("end offset");

    // A DLQ topic with no ACL for the ingest principal.
    let origin = Instant::now();
    let (last_tick_ms, on_tick) = ticker(origin);
    let mut config = ingest_config(group.clone());
    config.ingest.dlq_topic = Some(unique("netprobe-test-no-acl"));
    config.ingest.max_poll_interval = Duration::from_secs(12);
    let cancel = CancellationToken::new();
    let ingest = {
        let c = cancel.clone();
        tokio::spawn(async move { netprobe_ingest::run(config, c, || {}, on_tick).await.expect("runs") })
    };
    let denied = r#"netprobe_ingest_dlq_send_failures_total{error_type="authorization"}"#;
    poll("an authorization failure counted", Duration::from_secs(90), || async {
        (metric(&metrics, denied) >= 1.0).then_some(())
    })
    .await;
    let stall_seen = Instant::now();
    // Past max_poll_interval (12 s) with the send still refused.
    while stall_seen.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ticked_ms_ago = origin.elapsed().as_millis() as u64 - last_tick_ms.load(Ordering::Relaxed);
    let failures = metric(&metrics, denied);
    let failing = metric(&metrics, "netprobe_ingest_dlq_sends_failing");
    let paused = metric(&metrics, "netprobe_ingest_consumption_paused");
    let commit = committed(&group, &icmp_topic, partition);
    let (state, members) = group_state(&group);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(30), ingest).await.expect("stops in time").expect("no panic");

    assert!(failures >= 2.0, "retried, not given up: {failures} failures");
    assert!(failing >= 1.0, "a DLQ send counted as failing: {failing}");
    assert_eq!(paused, 1.0, "partitions paused behind the stalled DLQ send");
    assert!(ticked_ms_ago < 2_000, "the loop ticks while the DLQ refuses ({ticked_ms_ago} ms since the last tick)");
    // (Other ingest groups on the shared topics may write our good messages
    // meanwhile; what this group did shows in its committed offset.)
    assert!(
        commit.is_none_or(|c| c <= poison_offset),
        "offset committed past the poison while it is not safe: {commit:?} > {poison_offset}"
    );
    assert_eq!((state.as_str(), members), ("Stable", 1), "still in the group past max.poll.interval.ms");

    // The operator grants the ACL (here: the DLQ the principal may write).
    let ingest = {
        let config = ingest_config(group.clone());
        let c = CancellationToken::new();
        let c2 = c.clone();
        (c2, tokio::spawn(async move { netprobe_ingest::run(config, c, || {}, Box::new(|| {})).await.expect("runs") }))
    };
    poll("every good message behind the poison written", Duration::from_secs(90), || async {
        (count_points(&probe_id, "icmp", "sent").await == good.len() as u64).then_some(())
    })
    .await;
    let ours = poll("the poison in the DLQ", Duration::from_secs(90), || {
        // Ours: this group and this key (a concurrent run of this test on the
        // shared topics produces the same poison, which this group reads too).
        let ours: Vec<_> = read_dlq(&dlq_start)
            .into_iter()
            .filter(|r| r.headers.get("group_id") == Some(&group) && r.key.as_deref() == Some(key.as_bytes()))
            .collect();
        async move { (!ours.is_empty()).then_some(ours) }
    })
    .await;
    poll("the group committed past every good message", Duration::from_secs(90), || {
        let c = committed(&group, &icmp_topic, partition);
        async move { c.is_some_and(|c| c >= end).then_some(()) }
    })
    .await;
    ingest.0.cancel();
    tokio::time::timeout(Duration::from_secs(30), ingest.1).await.expect("stops in time").expect("no panic");
    assert_eq!(ours.len(), 1, "the poison once in the DLQ");
    assert_eq!(ours[0].payload, poison);
    assert_eq!(ours[0].headers["source_offset"], poison_offset.to_string());
}
