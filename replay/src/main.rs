//! netprobe-replay: re-ingests a filtered time range from Kafka into
//! InfluxDB v2. Only the command line exists so far.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Replay: backfill a time range from Kafka into InfluxDB v2.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Replay config (TOML with [kafka] and [influx] tables).
    #[arg(long, value_name = "FILE", default_value = "/etc/netprobe/replay.toml")]
    config: PathBuf,
    /// Start of the range, RFC 3339.
    #[arg(long)]
    from: Option<String>,
    /// End of the range, RFC 3339.
    #[arg(long)]
    to: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    eprintln!("netprobe-replay: replay is not implemented yet (config {})", args.config.display());
    ExitCode::from(2)
}
