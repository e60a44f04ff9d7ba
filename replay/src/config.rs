//! The replay TOML config: `[kafka]` (wire's settings, the `replay`
//! principal), `[influx]` (ingest's settings; needed only to write to
//! InfluxDB) and an optional `[replay]` table. Errors name the file, the
//! line and the key, on one line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netprobe_ingest::config::InfluxSettings;
use netprobe_wire::KafkaSettings;
use serde::Deserialize;

use crate::Error;

/// Default batch size bound, lines.
pub const DEFAULT_BATCH_MAX_LINES: usize = 5000;
/// Default batch size bound, bytes of line protocol.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Default age bound of a batch before it is written.
pub const DEFAULT_BATCH_TIMEOUT: Duration = Duration::from_secs(1);
/// Default number of batches written at once.
pub const DEFAULT_WRITES_IN_FLIGHT: usize = 2;
/// Default per-request timeout of InfluxDB writes.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default first retry delay after a failed write.
pub const DEFAULT_RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Default longest retry delay.
pub const DEFAULT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Default time a write keeps being retried before the replay gives up.
pub const DEFAULT_RETRY_GIVE_UP_AFTER: Duration = Duration::from_secs(5 * 60);
/// Default time without any message from Kafka before the replay gives up.
pub const DEFAULT_KAFKA_STALL_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The whole replay config file (see `replay/replay.example.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Kafka connection (the `replay` principal).
    pub kafka: KafkaSettings,
    /// Where points are written; required unless `--output lp` or `--dry-run`.
    #[serde(default)]
    pub influx: Option<InfluxSettings>,
    /// Batching and retries.
    #[serde(default)]
    pub replay: ReplaySettings,
}

/// The `[replay]` table. Every key is optional.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySettings {
    /// A batch is written when it holds this many lines. Default 5000.
    pub batch_max_lines: usize,
    /// ... or this many bytes of line protocol. Default 8 MiB.
    pub batch_max_bytes: usize,
    /// ... or when its first line is this old. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub batch_timeout: Duration,
    /// Batches written at once. Default 2.
    pub writes_in_flight: usize,
    /// Timeout of one write request. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// First delay before retrying a failed write; doubles up to
    /// `retry_max_backoff` with ±25 % jitter (ingest's backoff). Default 200 ms.
    #[serde(with = "humantime_serde")]
    pub retry_initial_backoff: Duration,
    /// Longest delay between write retries. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub retry_max_backoff: Duration,
    /// How long one batch is retried (InfluxDB down, 5xx, 429, 401/403/404)
    /// before the replay stops with exit status 1 and a resume hint.
    /// Default 5 min.
    #[serde(with = "humantime_serde")]
    pub retry_give_up_after: Duration,
    /// How long the replay waits for a message from Kafka before it stops
    /// with exit status 1 and a resume hint. Default 5 min.
    #[serde(with = "humantime_serde")]
    pub kafka_stall_timeout: Duration,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            batch_max_lines: DEFAULT_BATCH_MAX_LINES,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            batch_timeout: DEFAULT_BATCH_TIMEOUT,
            writes_in_flight: DEFAULT_WRITES_IN_FLIGHT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            retry_initial_backoff: DEFAULT_RETRY_INITIAL_BACKOFF,
            retry_max_backoff: DEFAULT_RETRY_MAX_BACKOFF,
            retry_give_up_after: DEFAULT_RETRY_GIVE_UP_AFTER,
            kafka_stall_timeout: DEFAULT_KAFKA_STALL_TIMEOUT,
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, the line and the key (one line).
    pub fn load(path: &Path) -> Result<Config, Error> {
        let fail = |message: String| Error::Config { path: path.to_owned(), message };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let config: Config = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let message = e.message().replace('\n', " ");
            fail(match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            })
        })?;
        config.validate().map_err(fail)?;
        Ok(config)
    }

    /// Checks the rules across fields that TOML types cannot express.
    ///
    /// # Errors
    /// The rule that does not hold, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let r = &self.replay;
        if r.batch_max_lines == 0 || r.batch_max_bytes == 0 || r.writes_in_flight == 0 {
            return Err("[replay] batch_max_lines, batch_max_bytes and writes_in_flight must be > 0".into());
        }
        if r.batch_timeout.is_zero() || r.write_timeout.is_zero() || r.kafka_stall_timeout.is_zero() {
            return Err("[replay] batch_timeout, write_timeout and kafka_stall_timeout must be > 0".into());
        }
        if r.retry_initial_backoff.is_zero() || r.retry_initial_backoff > r.retry_max_backoff {
            return Err("[replay] retry_initial_backoff must be > 0 and <= retry_max_backoff".into());
        }
        if let Some(influx) = &self.influx {
            if !(influx.url.starts_with("http://") || influx.url.starts_with("https://")) {
                return Err(format!("[influx] url {:?} must start with http:// or https://", influx.url));
            }
        }
        Ok(())
    }

    /// The `[influx]` table, which writing to InfluxDB needs.
    ///
    /// # Errors
    /// [`Error::Config`] when the table is missing.
    pub fn influx(&self, path: &Path) -> Result<&InfluxSettings, Error> {
        self.influx.as_ref().ok_or_else(|| Error::Config {
            path: PathBuf::from(path),
            message: "missing table [influx] (needed unless --output lp or --dry-run)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, Error> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("replay.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(&path)
    }

    #[test]
    fn shipped_example_parses_and_states_the_defaults() {
        let config = load(include_str!("../replay.example.toml")).expect("example parses");
        let d = ReplaySettings::default();
        let r = &config.replay;
        assert_eq!(
            (r.batch_max_lines, r.batch_max_bytes, r.batch_timeout, r.writes_in_flight, r.write_timeout),
            (d.batch_max_lines, d.batch_max_bytes, d.batch_timeout, d.writes_in_flight, d.write_timeout)
        );
        assert_eq!(
            (r.retry_initial_backoff, r.retry_max_backoff, r.retry_give_up_after, r.kafka_stall_timeout),
            (d.retry_initial_backoff, d.retry_max_backoff, d.retry_give_up_after, d.kafka_stall_timeout)
        );
        assert_eq!(config.kafka.username, "replay");
        assert!(config.influx.is_some());
    }

    #[test]
    fn errors_are_one_line_with_file_line_and_key() {
        let text = include_str!("../replay.example.toml").replace("retry_max_backoff", "retry_max_bakoff");
        let msg = load(&text).expect_err("typo").to_string();
        assert!(msg.contains("replay.toml") && msg.contains("retry_max_bakoff") && msg.contains("line "), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        let text = include_str!("../replay.example.toml").replace("brokers =", "# brokers =");
        let msg = load(&text).expect_err("missing").to_string();
        assert!(msg.contains("missing field `brokers`") && !msg.contains('\n'), "{msg}");
    }
}
