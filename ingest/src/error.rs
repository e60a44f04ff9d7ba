//! The ingest library's error type.

use std::path::PathBuf;

/// Everything that stops ingest from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config file cannot be read or is invalid.
    #[error("config {}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with line and key where the TOML parser knows them.
        message: String,
    },
    /// The InfluxDB token cannot be had.
    #[error("InfluxDB token: {message}")]
    Token {
        /// What is wrong.
        message: String,
    },
    /// The `[kafka]` settings are unusable (password file, ...).
    #[error(transparent)]
    Wire(#[from] netprobe_wire::Error),
    /// librdkafka refused to create or drive a client.
    #[error("Kafka {context}: {source}")]
    Kafka {
        /// What was being done, e.g. `subscribe to icmp.metrics, ...`.
        context: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The metrics listener could not start.
    #[error("metrics listener on {addr}: {message}")]
    Metrics {
        /// The configured `metrics_listen`.
        addr: std::net::SocketAddr,
        /// Why.
        message: String,
    },
}

impl Error {
    /// Whether starting again later can succeed without a config change.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Error::Kafka { .. } | Error::Metrics { .. })
    }
}
