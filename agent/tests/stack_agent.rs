//! Against the real local Kafka: the agent publishes its registry record
//! and heartbeats with the `agent` principal, and they read back as valid
//! wire messages. Needs `eval "$(scripts/stack env)"` (scripts/test does it).

use std::time::{Duration, Instant};

use netprobe_agent::config::{AgentSettings, Config};
use netprobe_wire::{decode, Body, KafkaSettings, Message, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

/// The stack's settings for `principal`; fails (never skips) without the stack.
fn kafka(principal: &str) -> KafkaSettings {
    KafkaSettings::from_stack_env(principal).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_registry_and_heartbeats() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let probe_id = format!("agent-test-{}-{nanos}", std::process::id());
    let prefix = kafka("AGENT").topic_prefix;
    let topics = [Topic::Registry.name(&prefix), Topic::Health.name(&prefix)];

    // Start reading at the current end of both topics.
    let reader: BaseConsumer = kafka("ADMIN")
        .client_config()
        .expect("config")
        .set("group.id", format!("netprobe-test-{probe_id}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for t in &topics {
        let md = reader.fetch_metadata(Some(t), Duration::from_secs(30)).expect("metadata");
        for p in md.topics()[0].partitions() {
            let (_, high) = reader.fetch_watermarks(t, p.id(), Duration::from_secs(30)).expect("watermarks");
            tpl.add_partition_offset(t, p.id(), Offset::Offset(high)).expect("offset");
        }
    }
    reader.assign(&tpl).expect("assign");

    let config = Config {
        agent: AgentSettings {
            probe_id: probe_id.clone(),
            location: "Loopback, LO".into(),
            spool_dir: None,
            metrics_listen: None,
            heartbeat_interval: Duration::from_millis(300),
            registry_interval: Duration::from_secs(600),
        },
        kafka: kafka("AGENT"),
        icmp: Vec::new(),
        dns: Vec::new(),
        http: Vec::new(),
    };
    let cancel = CancellationToken::new();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let agent = tokio::spawn(netprobe_agent::run(config, cancel.clone(), move || {
        let _ = ready_tx.send(());
    }));
    tokio::time::timeout(Duration::from_secs(30), ready_rx).await.expect("ready within 30 s").expect("ready");

    let mut registry: Vec<Message> = Vec::new();
    let mut health: Vec<Message> = Vec::new();
    let start = Instant::now();
    while registry.is_empty() || health.len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(30), "got {} registry, {} health", registry.len(), health.len());
        let Some(m) = reader.poll(Duration::from_millis(200)) else { continue };
        let m = m.expect("read");
        if m.key() != Some(probe_id.as_bytes()) {
            continue;
        }
        let msg = decode(m.payload().expect("payload")).expect("valid wire message");
        match msg.body {
            Body::Registry(_) => registry.push(msg),
            Body::Health(_) => health.push(msg),
            _ => panic!("unexpected {msg:?}"),
        }
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(20), agent).await.expect("stops").expect("no panic").expect("ok");

    let Body::Registry(r) = &registry[0].body else { unreachable!() };
    assert_eq!(registry[0].location, "Loopback, LO");
    assert_eq!(r.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(r.ip, Some("127.0.0.1".parse().expect("ip")), "source address towards the loopback broker");
    let Body::Health(h) = &health.last().expect("health").body else { unreachable!() };
    assert!(h.kafka_connected, "heartbeat after successful deliveries says connected");
    assert_eq!(h.spool_dropped_messages, 0);
    assert!(health.windows(2).all(|w| w[0].timestamp < w[1].timestamp), "heartbeats in order");
}
