//! netprobe-replay: a bounded ingest that re-writes a filtered time range
//! of the Kafka topics (or re-drives `ingest.dlq`) into InfluxDB v2, or to
//! line protocol.
//!
//! Parts, one module each: [`cli`] (arguments -> [`cli::Request`]),
//! [`config`] (the TOML file), [`plan`] (start and stop offset per
//! partition), [`filter`], [`engine`] (the loop), [`write`] (one batch to
//! InfluxDB or a file, with ingest's sink and retry policy), [`progress`]
//! and [`summary`]. Decoding and line protocol are ingest's
//! (`netprobe_ingest::points`), so replayed points are the points ingest
//! writes.
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod engine;
mod error;
pub mod filter;
pub mod plan;
pub mod progress;
pub mod summary;
pub mod write;

pub use cli::{Args, Request};
pub use config::Config;
pub use engine::run;
pub use error::Error;
pub use progress::ProgressMode;
pub use summary::{Failure, Summary};
