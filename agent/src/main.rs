//! netprobe-agent: measures the network (ICMP, DNS, HTTP, MTR, BGP) and
//! publishes the results to Kafka. Only the command line exists so far.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Probe agent: runs the configured probes and publishes each result to Kafka.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Agent config (TOML, see DESIGN.md "Configuration").
    #[arg(long, value_name = "FILE", default_value = "/etc/netprobe/agent.toml")]
    config: PathBuf,
    /// Run every configured probe once, print the wire JSON, exit 1 if any failed.
    #[arg(long)]
    health_check: bool,
    /// Limit to these probe types (comma-separated: icmp,dns,http,mtr,bgp).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    only: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    eprintln!("netprobe-agent: probing is not implemented yet (config {})", args.config.display());
    ExitCode::from(2)
}
