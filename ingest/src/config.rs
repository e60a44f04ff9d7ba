//! The ingest TOML config: `[kafka]` (wire's settings), `[influx]` and
//! `[ingest]`, validated at load with errors naming file, line and key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netprobe_wire::KafkaSettings;
use serde::Deserialize;

use crate::Error;

/// Environment variable read when `[influx] token_file` is not set.
pub const INFLUX_TOKEN_ENV: &str = "NETPROBE_INFLUX_TOKEN";
/// Default consumer group; the stack's ACLs allow groups with this prefix.
pub const DEFAULT_GROUP_ID: &str = "netprobe-ingest";
/// Default batch size bound, lines.
pub const DEFAULT_BATCH_MAX_LINES: usize = 5000;
/// Default batch size bound, bytes of uncompressed line protocol.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Default batch age bound.
pub const DEFAULT_BATCH_TIMEOUT: Duration = Duration::from_secs(1);
/// Default first retry delay after a failed write.
pub const DEFAULT_RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Default longest retry delay.
pub const DEFAULT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Default per-request timeout of InfluxDB writes.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of batches written at once.
pub const DEFAULT_WRITES_IN_FLIGHT: usize = 4;
/// Default `max_poll_interval` (librdkafka's `max.poll.interval.ms` default).
pub const DEFAULT_MAX_POLL_INTERVAL: Duration = Duration::from_secs(300);
/// The consumer's session timeout (`session.timeout.ms`); librdkafka
/// refuses a `max_poll_interval` below it.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole ingest config file.
///
/// ```toml
/// [kafka]
/// brokers = ["127.0.0.1:9093"]
/// username = "ingest"
/// password_file = "/etc/netprobe/kafka.password"
/// ca_file = "/etc/netprobe/ca.pem"
///
/// [influx]
/// url = "http://127.0.0.1:8086"
/// org = "netprobe"
/// bucket = "probes"
/// token_file = "/etc/netprobe/influx.token"
///
/// [ingest]                      # optional, defaults shown
/// group_id = "netprobe-ingest"
/// batch_max_lines = 5000
/// batch_timeout = "1s"
/// metrics_listen = "127.0.0.1:9465"
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Kafka connection (the `ingest` principal).
    pub kafka: KafkaSettings,
    /// Where points are written.
    pub influx: InfluxSettings,
    /// Batching, retries and the consumer group.
    #[serde(default)]
    pub ingest: IngestSettings,
}

/// The `[influx]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxSettings {
    /// Base URL, e.g. `http://127.0.0.1:8086`.
    pub url: String,
    /// Organization name.
    pub org: String,
    /// Bucket name.
    pub bucket: String,
    /// File holding a token with write access to the bucket (not
    /// world-readable). When neither this nor `token_credential` is set,
    /// [`INFLUX_TOKEN_ENV`] is read.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Name of the systemd credential holding the token, read from
    /// `$CREDENTIALS_DIRECTORY/NAME` (the unit has
    /// `LoadCredentialEncrypted=NAME:PATH`). Exclusive with `token_file`.
    #[serde(default)]
    pub token_credential: Option<String>,
}

/// The `[ingest]` table. Every key is optional.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Kafka consumer group; ingest processes in one group share the
    /// partitions. Default [`DEFAULT_GROUP_ID`].
    pub group_id: String,
    /// A batch is written as soon as the consumer has nothing more fetched
    /// and a writer is idle; while every writer is busy it grows, and is
    /// written at the latest when it holds this many lines. Default 5000.
    pub batch_max_lines: usize,
    /// ... or this many bytes of line protocol. Default 8 MiB.
    pub batch_max_bytes: usize,
    /// ... or when its first line is this old (messages arriving without a
    /// pause, a writer idle). Default 1 s.
    #[serde(with = "humantime_serde")]
    pub batch_timeout: Duration,
    /// First delay before retrying a failed write; doubles up to
    /// `retry_max_backoff`, with ±25 % jitter. Default 200 ms.
    #[serde(with = "humantime_serde")]
    pub retry_initial_backoff: Duration,
    /// Longest delay between write retries. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub retry_max_backoff: Duration,
    /// Timeout of one write request. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Batches written at once (each adds one batch of memory); they finish
    /// in order, so offsets are stored in order. Default
    /// [`DEFAULT_WRITES_IN_FLIGHT`].
    pub writes_in_flight: usize,
    /// Prometheus self-metrics listener (`host:port`); none when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// Longest time the consumer may go without polling before librdkafka
    /// leaves the group (`max.poll.interval.ms`); at least the 10 s session
    /// timeout. A write or DLQ send stalled for a third of it (at most 10 s,
    /// [`crate::pipeline::PAUSE_AFTER`]) pauses the partitions and polls
    /// again, so a stall never costs the group membership. Default 5 min.
    #[serde(with = "humantime_serde")]
    pub max_poll_interval: Duration,
    /// The dead-letter topic; default `[kafka] topic_prefix` + `ingest.dlq`.
    /// The ingest principal needs Write and Describe on it.
    pub dlq_topic: Option<String>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            group_id: DEFAULT_GROUP_ID.into(),
            batch_max_lines: DEFAULT_BATCH_MAX_LINES,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            batch_timeout: DEFAULT_BATCH_TIMEOUT,
            retry_initial_backoff: DEFAULT_RETRY_INITIAL_BACKOFF,
            retry_max_backoff: DEFAULT_RETRY_MAX_BACKOFF,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            writes_in_flight: DEFAULT_WRITES_IN_FLIGHT,
            metrics_listen: None,
            max_poll_interval: DEFAULT_MAX_POLL_INTERVAL,
            dlq_topic: None,
        }
    }
}

impl IngestSettings {
    /// How long the loop may stop polling (a stalled write or DLQ send)
    /// before it pauses the partitions and polls again: a third of
    /// `max_poll_interval`, at most [`crate::pipeline::PAUSE_AFTER`].
    pub fn pause_after(&self) -> Duration {
        crate::pipeline::PAUSE_AFTER.min(self.max_poll_interval / 3)
    }
}

impl Config {
    /// The dead-letter topic: `[ingest] dlq_topic`, or the prefixed `ingest.dlq`.
    pub fn dlq_topic(&self) -> String {
        self.ingest.dlq_topic.clone().unwrap_or_else(|| netprobe_wire::Topic::Dlq.name(&self.kafka.topic_prefix))
    }

    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and, from the TOML parser, the line,
    /// column and key; or a cross-field rule that does not hold.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config { path: path.to_owned(), message: e.to_string() })?;
        let config: Config =
            toml::from_str(&text).map_err(|e| Error::Config { path: path.to_owned(), message: e.to_string() })?;
        config.validate().map_err(|message| Error::Config { path: path.to_owned(), message })?;
        Ok(config)
    }

    /// Checks the rules across fields that TOML types cannot express.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let i = &self.ingest;
        if i.batch_max_lines == 0 || i.batch_max_bytes == 0 || i.writes_in_flight == 0 {
            return Err("[ingest] batch_max_lines, batch_max_bytes and writes_in_flight must be > 0".into());
        }
        if i.max_poll_interval < SESSION_TIMEOUT {
            return Err(format!(
                "[ingest] max_poll_interval must be >= the {} s session timeout",
                SESSION_TIMEOUT.as_secs()
            ));
        }
        if i.batch_timeout.is_zero() {
            return Err("[ingest] batch_timeout must be > 0".into());
        }
        if i.retry_initial_backoff.is_zero() || i.retry_initial_backoff > i.retry_max_backoff {
            return Err("[ingest] retry_initial_backoff must be > 0 and <= retry_max_backoff".into());
        }
        if !(self.influx.url.starts_with("http://") || self.influx.url.starts_with("https://")) {
            return Err(format!("[influx] url {:?} must start with http:// or https://", self.influx.url));
        }
        Ok(())
    }
}

impl InfluxSettings {
    /// The write token, from `token_file`, the systemd credential
    /// `token_credential` or [`INFLUX_TOKEN_ENV`].
    ///
    /// # Errors
    /// [`Error::Token`] when the file is missing, empty or world-readable,
    /// both `token_file` and `token_credential` are set, or no source is set;
    /// [`Error::Wire`] ([`netprobe_wire::Error::Credential`]) when the
    /// credential cannot be located (`$CREDENTIALS_DIRECTORY` unset).
    pub fn token(&self) -> Result<String, Error> {
        use std::os::unix::fs::PermissionsExt;
        let credential_path;
        let path = match (&self.token_file, &self.token_credential) {
            (Some(_), Some(_)) => {
                return Err(Error::Token {
                    message: "set either [influx] token_file or token_credential, not both".into(),
                })
            }
            (Some(path), None) => path,
            (None, Some(name)) => {
                credential_path = netprobe_wire::credential_path("token_credential", name)?;
                &credential_path
            }
            (None, None) => {
                return std::env::var(INFLUX_TOKEN_ENV).ok().filter(|t| !t.is_empty()).ok_or_else(|| Error::Token {
                    message: format!("set [influx] token_file or token_credential, or {INFLUX_TOKEN_ENV}"),
                })
            }
        };
        let fail = |message: String| Error::Token { message: format!("{}: {message}", path.display()) };
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        if meta.permissions().mode() & 0o004 != 0 {
            return Err(fail("world-readable; run chmod o-rwx on it".into()));
        }
        let token = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?.trim().to_owned();
        if token.is_empty() {
            return Err(fail("file is empty".into()));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, Error> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ingest.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(&path)
    }

    #[test]
    fn shipped_example_parses_and_states_the_defaults() {
        let config = load(include_str!("../ingest.example.toml")).expect("example parses");
        let d = IngestSettings::default();
        let i = &config.ingest;
        assert_eq!(
            (i.batch_max_lines, i.batch_max_bytes, i.batch_timeout, i.retry_initial_backoff, i.retry_max_backoff),
            (d.batch_max_lines, d.batch_max_bytes, d.batch_timeout, d.retry_initial_backoff, d.retry_max_backoff)
        );
        assert_eq!(
            (i.group_id.as_str(), i.write_timeout, i.writes_in_flight, i.max_poll_interval, &i.dlq_topic),
            (d.group_id.as_str(), d.write_timeout, d.writes_in_flight, d.max_poll_interval, &d.dlq_topic)
        );
        assert_eq!(config.dlq_topic(), "ingest.dlq");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = include_str!("../ingest.example.toml").replace("batch_timeout", "batch_timout");
        let err = load(&text).expect_err("typo");
        let msg = err.to_string();
        assert!(msg.contains("ingest.toml") && msg.contains("batch_timout") && msg.contains("line 21"), "{msg}");
    }

    #[test]
    fn cross_field_rules_are_checked() {
        let text = include_str!("../ingest.example.toml")
            .replace("retry_initial_backoff = \"200ms\"", "retry_initial_backoff = \"1m\"");
        let err = load(&text).expect_err("initial > max");
        assert!(err.to_string().contains("retry_initial_backoff"), "{err}");
        let text = include_str!("../ingest.example.toml").replace("writes_in_flight = 4", "writes_in_flight = 0");
        let err = load(&text).expect_err("no writer");
        assert!(err.to_string().contains("writes_in_flight"), "{err}");
        let text =
            include_str!("../ingest.example.toml").replace("max_poll_interval = \"5m\"", "max_poll_interval = \"9s\"");
        let err = load(&text).expect_err("below the session timeout");
        assert!(err.to_string().contains("max_poll_interval"), "{err}");
    }
}
