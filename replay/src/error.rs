//! The replay library's error type: what stops a replay from starting.
//! A replay that started and then failed is not an error but a
//! [`crate::Summary`] with a [`crate::Failure`] (it has a resume point).

use std::path::PathBuf;

/// Why a replay cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad command-line argument (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The config file cannot be read or is invalid (exit status 2).
    #[error("config {}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with line and key where known; one line.
        message: String,
    },
    /// Kafka or InfluxDB settings unusable (password or token file, ...),
    /// exit status 2.
    #[error(transparent)]
    Settings(#[from] netprobe_wire::Error),
    /// The InfluxDB side cannot be set up (token file, URL), exit status 2.
    #[error(transparent)]
    Influx(#[from] netprobe_ingest::Error),
    /// A topic does not exist on the brokers (exit status 2).
    #[error("topic {topic} does not exist on the brokers, or the principal may not read it (check [kafka] topic_prefix): {message}")]
    UnknownTopic {
        /// The full topic name.
        topic: String,
        /// What the broker said.
        message: String,
    },
    /// Kafka refused a request while planning the replay (exit status 1).
    #[error("Kafka {context}: {source}")]
    Kafka {
        /// What was being done, with topic and partition.
        context: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The line-protocol output file cannot be created (exit status 2).
    #[error("--out {}: {source}", path.display())]
    Output {
        /// The `--out` file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the arguments or the config are at fault (exit status 2)
    /// rather than the environment (exit status 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, Error::Kafka { .. })
    }
}
