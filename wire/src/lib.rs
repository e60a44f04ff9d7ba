//! netprobe-wire: the contract of everything that crosses Kafka.
//!
//! - [`Message`]: one JSON object per measurement, the envelope of
//!   `shared/DESIGN.md` (schema, probe_id, probe_type, location, timestamp)
//!   with one [`Body`] per probe type; [`decode`] and [`Message::encode`].
//! - [`Topic`]: topic names (with a configurable prefix) and message keys.
//! - [`KafkaSettings`]: the `[kafka]` TOML table of every netprobe config,
//!   turned into a SASL_SSL (SCRAM-SHA-512) client configuration.
//!
//! - [`credential_path`]: where a systemd credential named in a config is.
//!
//! Apart from reading the Kafka password in [`KafkaSettings::client_config`],
//! this crate does no I/O.
#![deny(missing_docs)]

mod credential;
mod error;
mod kafka;
pub mod msg;
pub mod schema;
mod time;
mod topic;
mod types;

pub use credential::{credential_path, CREDENTIALS_DIRECTORY_ENV};
pub use error::Error;
pub use kafka::{KafkaSettings, PASSWORD_ENV};
pub use msg::{decode, Body, Message, ProbeType, SCHEMA_VERSION};
pub use time::Timestamp;
pub use topic::Topic;
pub use types::{ErrorClass, ProbeError, ProbeId, Ttl};
