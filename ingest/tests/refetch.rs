//! `refetch`: a message InfluxDB refused is read back from Kafka by its
//! position for the DLQ (batches keep no payloads). Against the stack: on
//! topics of its own (`scripts/stack topics`), the ingest principal reads
//! back exactly the key and payload the agent principal produced, and an
//! offset that retention already deleted (admin DeleteRecords) comes back
//! as gone, not as a wait.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::stack::{fresh_topics, kafka, unique};
use netprobe_ingest::batch::Source;
use netprobe_ingest::refetch::{Refetch, Refetched};
use netprobe_wire::Topic;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_read_back_unchanged_or_reported_gone() {
    let (prefix, _cleanup) = fresh_topics("refetch");
    let topic = Topic::Icmp.name(&prefix);

    let agent: FutureProducer = kafka("AGENT")
        .client_config()
        .expect("config")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    // (key, payload, offset); the middle one has no key.
    let mut sent = Vec::new();
    for (i, key) in [Some("k0"), None, Some("k2")].into_iter().enumerate() {
        let payload = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(1000 * i));
        let mut record = FutureRecord::to(&topic).partition(0).payload(&payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        let offset = agent.send(record, DEADLINE).await.unwrap_or_else(|(e, _)| panic!("produce: {e}")).offset;
        sent.push((key.map(|k| k.as_bytes().to_vec()), payload.into_bytes(), offset));
    }

    let group = unique("netprobe-ingest-test-refetch");
    let refetch = Arc::new(Refetch::new(kafka("INGEST").client_config().expect("config"), &group));
    let cancel = CancellationToken::new();
    let at = |offset| Source { topic: topic.as_str().into(), partition: 0, offset };
    // Out of order, as bisection finds them.
    for i in [2, 0, 1] {
        let (key, payload, offset) = &sent[i];
        let got = tokio::time::timeout(DEADLINE, refetch.message(&at(*offset), &cancel))
            .await
            .expect("read back within the deadline")
            .expect("not cancelled");
        assert_eq!(got, Refetched::Found { key: key.clone(), payload: payload.clone() }, "message {i}");
    }

    // Retention deletes the first two.
    let admin: AdminClient<DefaultClientContext> =
        kafka("ADMIN").client_config().expect("config").create().expect("admin client");
    let mut before = TopicPartitionList::new();
    before.add_partition_offset(&topic, 0, Offset::Offset(sent[2].2)).expect("tpl");
    admin.delete_records(&before, &AdminOptions::new()).await.expect("DeleteRecords");

    let got = tokio::time::timeout(DEADLINE, refetch.message(&at(sent[0].2), &cancel))
        .await
        .expect("an answer within the deadline")
        .expect("not cancelled");
    assert!(matches!(got, Refetched::Gone(_)), "a deleted offset is gone: {got:?}");
    let (key, payload, offset) = &sent[2];
    let got = refetch.message(&at(*offset), &cancel).await.expect("not cancelled");
    assert_eq!(got, Refetched::Found { key: key.clone(), payload: payload.clone() }, "the one left");

    // Shut down while Kafka has nothing at the offset: cancelled, not stuck.
    let waiting = {
        let (refetch, cancel, source) = (refetch.clone(), cancel.clone(), at(offset + 100));
        tokio::spawn(async move { refetch.message(&source, &cancel).await })
    };
    cancel.cancel();
    let got = tokio::time::timeout(DEADLINE, waiting).await.expect("cancel ends the read").expect("task");
    assert!(got.is_err(), "cancelled: {got:?}");
}
