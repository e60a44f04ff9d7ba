//! The agent TOML config (DESIGN.md "Configuration"): `[agent]`, `[kafka]`
//! and one array of tables per probe type (`[[icmp]]`, `[[dns]]`, `[[http]]`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use netprobe_wire::KafkaSettings;
use serde::Deserialize;

use crate::probe::{self, Target};
use crate::Error;

/// Default heartbeat period (`probe.health`).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// Default registry re-publish period (`agent.registry`).
pub const DEFAULT_REGISTRY_INTERVAL: Duration = Duration::from_secs(600);

/// The whole agent config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Identity and housekeeping.
    pub agent: AgentSettings,
    /// Kafka connection (the `agent` principal).
    pub kafka: KafkaSettings,
    /// ICMP echo targets; a table with `targets = [...]` gives one per
    /// address, with the table's settings.
    #[serde(default, deserialize_with = "probe::icmp::expand_tables")]
    pub icmp: Vec<probe::icmp::Target>,
    /// DNS queries.
    #[serde(default)]
    pub dns: Vec<probe::dns::Target>,
    /// HTTP requests.
    #[serde(default)]
    pub http: Vec<probe::http::Target>,
}

/// The `[agent]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// This agent's identity, e.g. `pop-fra-01`: the first half of every
    /// message key and the `probe_id` tag of every point.
    pub probe_id: String,
    /// Human location, e.g. `Frankfurt, DE`.
    pub location: String,
    /// Directory of the on-disk spool that keeps measurements while Kafka
    /// is unreachable. Without it such measurements are lost (and counted).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Bound of the spool in bytes; beyond it the oldest messages are
    /// dropped and counted. Default 256 MiB.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
    /// Prometheus self-metrics listener, e.g. `127.0.0.1:9464`.
    #[serde(default)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How often `probe.health` is published. Default 30 s.
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How often the registry record is re-published. Default 10 min.
    #[serde(default = "default_registry", with = "humantime_serde")]
    pub registry_interval: Duration,
}

fn default_spool_max_bytes() -> u64 {
    crate::spool::DEFAULT_MAX_BYTES
}

fn default_heartbeat() -> Duration {
    DEFAULT_HEARTBEAT_INTERVAL
}

fn default_registry() -> Duration {
    DEFAULT_REGISTRY_INTERVAL
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and, from the TOML parser, the line,
    /// column and key; or a rule that does not hold.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let fail = |message: String| Error::Config { path: path.to_owned(), message };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let config: Config = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        let a = &config.agent;
        if a.probe_id.is_empty() || a.probe_id.contains(['\n', '\r']) || a.probe_id.ends_with('\\') {
            return Err(fail(
                "[agent] probe_id must be non-empty, without line breaks and not end with a backslash \
                 (InfluxDB 2.x tags cannot carry those)"
                    .into(),
            ));
        }
        if a.heartbeat_interval.is_zero() || a.registry_interval.is_zero() {
            return Err(fail("[agent] heartbeat_interval and registry_interval must be > 0".into()));
        }
        for target in config.targets(&[]) {
            let at = |m: String| fail(format!("[[{}]] {}: {m}", target.probe_type().as_str(), target.label()));
            if target.interval().is_zero() {
                return Err(at("interval must be > 0".into()));
            }
            target.validate().map_err(at)?;
        }
        Ok(config)
    }

    /// Every configured target, in file order, limited to `only` when it
    /// is not empty.
    pub fn targets(&self, only: &[netprobe_wire::ProbeType]) -> Vec<Target> {
        let all = (self.icmp.iter().cloned().map(Target::Icmp))
            .chain(self.dns.iter().cloned().map(Target::Dns))
            .chain(self.http.iter().cloned().map(Target::Http));
        all.filter(|t| only.is_empty() || only.contains(&t.probe_type())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, Error> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(&path)
    }

    #[test]
    fn shipped_example_parses_with_defaults() {
        let text = include_str!("../agent.example.toml");
        let config = load(text).expect("example parses");
        assert_eq!(config.agent.probe_id, "pop-fra-01");
        assert_eq!(config.agent.heartbeat_interval, DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(config.agent.registry_interval, DEFAULT_REGISTRY_INTERVAL);
        assert_eq!(config.targets(&[]).len(), 3);
        assert_eq!(config.targets(&[netprobe_wire::ProbeType::Dns]).len(), 1);
        assert_eq!(config.icmp[0].count, 5);
    }

    #[test]
    fn icmp_table_with_a_target_list_gives_one_target_each() {
        let config = load(
            "[agent]\nprobe_id = \"p\"\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\nusername = \"agent\"\n\
             ca_file = \"/ca\"\n[[icmp]]\ntargets = [\"192.0.2.1\", \"192.0.2.2\"]\ninterval = \"10s\"\ncount = 2\n",
        )
        .expect("parses");
        let targets: Vec<_> = config.icmp.iter().map(|t| (t.target.as_str(), t.count)).collect();
        assert_eq!(targets, [("192.0.2.1", 2), ("192.0.2.2", 2)]);
        let both = load(
            "[agent]\nprobe_id = \"p\"\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\nusername = \"agent\"\n\
             ca_file = \"/ca\"\n[[icmp]]\ntarget = \"192.0.2.1\"\ntargets = [\"192.0.2.2\"]\ninterval = \"10s\"\n",
        )
        .expect_err("target and targets together");
        assert!(both.to_string().contains("either `target` or `targets`"), "{both}");
    }

    #[test]
    fn probe_table_rule_names_its_table() {
        let err = load(
            "[agent]\nprobe_id = \"p\"\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\nusername = \"agent\"\n\
             ca_file = \"/ca\"\n[[icmp]]\ntarget = \"192.0.2.1\"\ninterval = \"10s\"\n\
             [[icmp]]\ntarget = \"192.0.2.2\"\ninterval = \"1s\"\ncount = 5\n",
        )
        .expect_err("5 requests 1 s apart do not fit a 1 s interval");
        assert!(err.to_string().contains("[[icmp]] icmp 192.0.2.2") && err.to_string().contains("interval"), "{err}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = load("[agent]\nprobe_id = \"p\"\nlocation = \"l\"\nheartbeat = \"5s\"\n").expect_err("unknown key");
        let text = err.to_string();
        assert!(text.contains("agent.toml") && text.contains("line 4") && text.contains("heartbeat"), "{text}");
    }

    #[test]
    fn probe_id_influxdb_cannot_carry_is_refused() {
        let err = load(
            "[agent]\nprobe_id = 'a\\'\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\nusername = \"agent\"\nca_file = \"/ca\"\n",
        )
        .expect_err("trailing backslash");
        assert!(err.to_string().contains("backslash"), "{err}");
    }
}
