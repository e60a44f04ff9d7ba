//! netprobe-ingest: consumes the probe topics and writes InfluxDB v2.
//! Only the command line exists so far.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Ingest service: Kafka probe topics -> InfluxDB v2, without loss.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Ingest config (TOML with [kafka] and [influx] tables).
    #[arg(long, value_name = "FILE", default_value = "/etc/netprobe/ingest.toml")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    eprintln!("netprobe-ingest: ingest is not implemented yet (config {})", args.config.display());
    ExitCode::from(2)
}
