//! Agent configs for tests against the local stack.

use std::path::Path;
use std::time::Duration;

use netprobe_agent::config::AgentSettings;
use netprobe_wire::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// The stack's settings for `principal`; fails (never skips) without the stack.
pub fn kafka(principal: &str) -> KafkaSettings {
    KafkaSettings::from_stack_env(principal).unwrap_or_else(|e| panic!("{e}"))
}

/// The `[kafka]` table of the stack's `agent` principal, as TOML.
pub fn kafka_table() -> String {
    let k = kafka("AGENT");
    format!(
        "[kafka]\nbrokers = {:?}\nusername = {:?}\npassword_file = {:?}\nca_file = {:?}\ntopic_prefix = {:?}\n",
        k.brokers,
        k.username,
        k.password_file.as_ref().expect("password file"),
        k.ca_file,
        k.topic_prefix,
    )
}

/// `[agent]` settings with a 1 MiB spool in `spool`, no metrics listener.
pub fn agent_settings(probe_id: &str, spool: &Path, heartbeat: Duration) -> AgentSettings {
    AgentSettings {
        probe_id: probe_id.to_owned(),
        location: "Loopback, LO".into(),
        spool_dir: Some(spool.to_owned()),
        spool_max_bytes: 1 << 20,
        metrics_listen: None,
        heartbeat_interval: heartbeat,
        registry_interval: Duration::from_secs(600),
        asn_table: None,
    }
}

/// A reader positioned at the current end of `topics`.
pub fn reader_at_end(topics: &[String], group: &str) -> BaseConsumer {
    let reader: BaseConsumer = kafka("ADMIN")
        .client_config()
        .expect("config")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let md = reader.fetch_metadata(Some(t), Duration::from_secs(30)).expect("metadata");
        for p in md.topics()[0].partitions() {
            let (_, high) = reader.fetch_watermarks(t, p.id(), Duration::from_secs(30)).expect("watermarks");
            tpl.add_partition_offset(t, p.id(), Offset::Offset(high)).expect("offset");
        }
    }
    reader.assign(&tpl).expect("assign");
    reader
}
