//! The command line of `netprobe-ingest`: [`Args`] for the binary, and
//! [`command`] for the man page and shell completions generated from it.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};

/// Ingest service: Kafka probe topics -> InfluxDB v2, without loss.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Ingest config (TOML with [kafka], [influx] and optional [ingest] tables).
    #[arg(long, value_name = "FILE", default_value = "/etc/netprobe/ingest.toml")]
    pub config: PathBuf,
}

/// The clap command of `netprobe-ingest` (what `--help`, the man page and
/// the shell completions show).
pub fn command() -> clap::Command {
    Args::command()
}
