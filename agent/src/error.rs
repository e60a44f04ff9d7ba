//! The agent library's error type.

use std::path::PathBuf;

/// What stops the agent from starting.
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
    /// The `[kafka]` settings are unusable (password file, ...).
    #[error(transparent)]
    Wire(#[from] netprobe_wire::Error),
    /// The spool directory cannot be opened.
    #[error(transparent)]
    Spool(#[from] crate::spool::SpoolError),
    /// The spool directory is locked by another agent (or cannot be locked).
    #[error("spool lock {}: {message}", path.display())]
    SpoolLocked {
        /// The lock file.
        path: PathBuf,
        /// Why it cannot be taken.
        message: String,
    },
    /// A `[[bgp]]` source cannot start (e.g. not built in this version).
    #[error("BGP monitor: {0}")]
    Bgp(String),
    /// librdkafka refused to create the producer.
    #[error("Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

impl Error {
    /// Whether starting again later can succeed without a config change.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Error::Kafka(_))
    }
}
