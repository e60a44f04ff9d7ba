//! Against the real local Kafka (`scripts/stack up`): the agent and ingest
//! principals exchange a wire message over SASL_SSL, and what the ACLs and
//! authentication must refuse is refused.
//!
//! These tests need `eval "$(scripts/stack env)"`; without it they fail with
//! a message saying so (scripts/test sets it up).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netprobe_wire::msg::Health;
use netprobe_wire::{decode, Body, KafkaSettings, Message, Timestamp, Topic};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Message as _, Offset, TopicPartitionList};

const DEADLINE: Duration = Duration::from_secs(30);

/// The stack's settings for `principal`; fails (never skips) without the stack.
fn settings(principal: &str) -> KafkaSettings {
    KafkaSettings::from_stack_env(principal).unwrap_or_else(|e| panic!("{e}"))
}

fn config(principal: &str) -> ClientConfig {
    settings(principal).client_config().expect("client config from the stack's settings")
}

fn heartbeat(probe_id: &str) -> Message {
    Message::new(
        probe_id.into(),
        "Loopback, LO",
        Timestamp::now(),
        Body::Health(Health {
            last_successful_run: Some(Timestamp::now()),
            uptime_s: 1,
            failures_last_hour: 0,
            runs_last_hour: 1,
            spool_messages: 0,
            spool_dropped_messages: 0,
            kafka_connected: true,
            feeds: Vec::new(),
            instance: None,
        }),
    )
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    format!("stack-test-{tag}-{}-{nanos}", std::process::id())
}

/// One error librdkafka reported: its code and reason.
type Reported = (Option<RDKafkaErrorCode>, String);

/// Records what librdkafka reports through the error callback.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<Reported>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().expect("lock").push((error.rdkafka_error_code(), reason.to_owned()));
    }
}

impl ConsumerContext for Errors {}

impl Errors {
    /// Polls `consumer` (which serves the callbacks) until `pred` holds for a
    /// recorded error or the deadline passes; returns everything recorded.
    fn wait_for(&self, consumer: &BaseConsumer<Errors>, pred: impl Fn(&Reported) -> bool) -> Vec<Reported> {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            let _ = consumer.poll(Duration::from_millis(200));
            if self.0.lock().expect("lock").iter().any(&pred) {
                break;
            }
        }
        self.0.lock().expect("lock").clone()
    }
}

#[tokio::test]
async fn agent_produces_and_ingest_consumes_over_sasl_ssl() {
    let topic = Topic::Health.name(&settings("AGENT").topic_prefix);
    let sent = heartbeat(&unique("exchange"));
    let producer: FutureProducer = config("AGENT")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("agent producer");
    let payload = sent.encode().expect("encode");
    let key = sent.key();
    let (partition, offset) = producer
        .send(FutureRecord::to(&topic).key(&key).payload(&payload), DEADLINE)
        .await
        .map(|d| (d.partition, d.offset))
        .unwrap_or_else(|(e, _)| panic!("agent could not produce to {topic}: {e}"));

    let consumer: StreamConsumer = config("INGEST")
        .set("group.id", "netprobe-ingest-stack-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("ingest consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, partition, Offset::Offset(offset)).expect("offset");
    consumer.assign(&tpl).expect("assign");
    let received = tokio::time::timeout(DEADLINE, consumer.recv())
        .await
        .expect("message within the deadline")
        .expect("ingest may read the probe topic");
    assert_eq!(received.key(), Some(key.as_bytes()));
    assert_eq!(decode(received.payload().expect("payload")).expect("valid wire message"), sent);
}

#[tokio::test]
async fn ingest_cannot_produce_to_a_probe_topic() {
    let topic = Topic::Icmp.name(&settings("INGEST").topic_prefix);
    let producer: FutureProducer =
        config("INGEST").set("message.timeout.ms", "20000").create().expect("ingest producer");
    let msg = heartbeat(&unique("deny-produce"));
    let payload = msg.encode().expect("encode");
    let result = producer.send(FutureRecord::to(&topic).key("k").payload(&payload), DEADLINE).await;
    match result {
        Err((e, _)) => assert_eq!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::TopicAuthorizationFailed), "{e}"),
        Ok(d) => panic!("ingest wrote to {topic} (partition {}, offset {})", d.partition, d.offset),
    }
}

#[test]
fn agent_cannot_consume_a_probe_topic() {
    let topic = Topic::Icmp.name(&settings("AGENT").topic_prefix);
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> = config("AGENT")
        .set("group.id", "netprobe-agent-stack-test")
        .set("enable.auto.commit", "false")
        .create_with_context(errors.clone())
        .expect("agent consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning).expect("offset");
    consumer.assign(&tpl).expect("assign");
    // The group is refused too (GroupAuthorizationFailed may come first);
    // what matters is that the fetch from the topic is refused.
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        assert!(start.elapsed() < DEADLINE, "no topic authorization failure within {DEADLINE:?}; saw {seen:?}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::TopicAuthorizationFailed) => break,
            Some(Err(e)) => seen.push(e),
            Some(Ok(m)) => panic!("agent consumed {topic} offset {}", m.offset()),
            None => {}
        }
    }
}

#[test]
fn wrong_password_fails_with_authentication_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wrong.password");
    std::fs::write(&path, "not-the-password\n").expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let mut s = settings("AGENT");
    s.password_file = Some(path);
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> =
        s.client_config().expect("config").create_with_context(errors.clone()).expect("consumer");
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10));
    assert!(metadata.is_err(), "metadata fetched with a wrong password");
    let seen = errors.wait_for(&consumer, |(code, _)| *code == Some(RDKafkaErrorCode::Authentication));
    let auth = seen.iter().find(|(code, _)| *code == Some(RDKafkaErrorCode::Authentication));
    let (_, reason) = auth.unwrap_or_else(|| panic!("no authentication error reported; saw {seen:?}"));
    assert!(reason.contains("Authentication failed"), "reason: {reason}");
}

#[test]
fn plaintext_client_cannot_talk_to_the_sasl_ssl_port() {
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> = ClientConfig::new()
        .set("bootstrap.servers", settings("AGENT").brokers.join(","))
        .set("security.protocol", "PLAINTEXT")
        .create_with_context(errors.clone())
        .expect("plaintext consumer");
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10));
    assert!(metadata.is_err(), "a plaintext client got metadata from the SASL_SSL listener");
    let seen = errors.wait_for(&consumer, |(code, _)| code.is_some());
    assert!(
        seen.iter().any(|(code, _)| matches!(
            code,
            Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
        )),
        "expected a transport failure, saw {seen:?}"
    );
}
