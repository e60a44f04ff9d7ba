//! Agent configs for tests against the local stack.

use std::path::Path;
use std::time::Duration;

use netprobe_agent::config::AgentSettings;
use netprobe_wire::KafkaSettings;

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
    }
}
