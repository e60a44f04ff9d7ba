//! The fresh-stack case of `scripts/stack` (issue 15, part 4): once
//! `scripts/stack topics PREFIX --recreate` returns, every principal can use
//! the new topics on its first try — the agent produces to each probe topic,
//! ingest consumes them in its group, commits and writes the DLQ, replay
//! reads everything — with no retry in between. Before the stack waited for
//! the ACLs to be in effect, a first produce right after it could fail with
//! TopicAuthorizationFailed (the first `scripts/bench ingest` on a fresh
//! machine did).

mod common;

use std::time::{Duration, Instant};

use common::stack::{fresh_topics, kafka, unique};
use netprobe_wire::Topic;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message as _, Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;

fn producer(principal: &str) -> FutureProducer {
    kafka(principal)
        .client_config()
        .expect("config")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}

/// One send, no retry of ours: librdkafka fails TopicAuthorizationFailed at once.
async fn produce_once(producer: &FutureProducer, who: &str, topic: &str) {
    let payload = format!("fresh-stack check from {who}");
    producer
        .send(FutureRecord::to(topic).key(who).payload(&payload), Duration::from_secs(30))
        .await
        .unwrap_or_else(|(e, _)| panic!("{who}: first produce to {topic} right after `stack topics` failed: {e}"));
}

/// Polls `consumer` until `want` messages arrived; any consumer error fails,
/// except, for replay, the refused group-coordinator lookup: replay assigns
/// partitions, never joins a group and has no group ACL on purpose (as
/// netprobe-replay's `ReplayContext` does).
fn consume(consumer: &BaseConsumer, who: &str, want: usize) -> Vec<String> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < want {
        assert!(start.elapsed() < Duration::from_secs(60), "{who}: {} of {want} messages within 60 s", got.len());
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => got.push(m.topic().to_owned()),
            Some(Err(e))
                if who == "replay"
                    && e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::GroupAuthorizationFailed) => {}
            Some(Err(e)) => panic!("{who}: consumer error right after `stack topics`: {e}"),
        }
    }
    got.sort();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_topics_work_for_every_principal_on_the_first_try() {
    let (prefix, _cleanup) = fresh_topics("fresh");

    let probe_topics: Vec<String> = Topic::PROBE_TOPICS.iter().map(|t| t.name(&prefix)).collect();
    let dlq = Topic::Dlq.name(&prefix);

    // agent: Write on every probe topic.
    let agent = producer("AGENT");
    for topic in &probe_topics {
        produce_once(&agent, "agent", topic).await;
    }
    // ingest: Write on the DLQ.
    produce_once(&producer("INGEST"), "ingest", &dlq).await;

    // ingest: Read on the probe topics in a group under its prefix, and commit.
    let group = unique("netprobe-ingest-test-fresh");
    let ingest: BaseConsumer = kafka("INGEST")
        .client_config()
        .expect("config")
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("ingest consumer");
    let names: Vec<&str> = probe_topics.iter().map(String::as_str).collect();
    ingest.subscribe(&names).expect("subscribe");
    let mut want = probe_topics.clone();
    want.sort();
    assert_eq!(consume(&ingest, "ingest", probe_topics.len()), want, "ingest reads one message per probe topic");
    ingest.commit_consumer_state(CommitMode::Sync).expect("ingest commits its offsets");

    // replay: Read on the probe topics and the DLQ, assigned, no group commits.
    let replay: BaseConsumer = kafka("REPLAY")
        .client_config()
        .expect("config")
        .set("group.id", "netprobe-replay-unjoined")
        .set("enable.auto.commit", "false")
        .create()
        .expect("replay consumer");
    let mut tpl = TopicPartitionList::new();
    for topic in probe_topics.iter().chain([&dlq]) {
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
        }
    }
    replay.assign(&tpl).expect("assign");
    let mut want: Vec<String> = probe_topics.iter().chain([&dlq]).cloned().collect();
    want.sort();
    assert_eq!(consume(&replay, "replay", want.len()), want, "replay reads every topic and the DLQ");
}
