//! The command line of `netprobe-agent`: [`Args`] for the binary, and
//! [`command`] for the man page and shell completions generated from it.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use netprobe_wire::ProbeType;

/// Probe agent: runs the configured probes and publishes each result to Kafka.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Agent config (TOML, see DESIGN.md "Configuration").
    #[arg(long, value_name = "FILE", default_value = "/etc/netprobe/agent.toml")]
    pub config: PathBuf,
    /// Run every configured probe once, print the wire JSON (one object per
    /// line), exit 1 if any failed. Needs no Kafka.
    #[arg(long)]
    pub health_check: bool,
    /// Limit to these probe types (comma-separated: icmp,dns,http).
    /// With it, the agent is the instance named by these types (`icmp`,
    /// `dns+http`): its registry record and heartbeats carry `instance`.
    #[arg(long, value_delimiter = ',', value_name = "TYPES", value_parser = crate::probe::parse_probe_type)]
    pub only: Vec<ProbeType>,
}

/// The clap command of `netprobe-agent` (what `--help`, the man page and
/// the shell completions show).
pub fn command() -> clap::Command {
    Args::command()
}
