//! netprobe-replay binary: parses the command line, loads the config, sets
//! up logging around the progress bar, runs [`netprobe_replay::run`] and
//! maps the outcome to the exit status: 0 done, 1 failed part-way (the
//! summary gives the `--start` to resume from), 2 bad arguments or config.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use netprobe_replay::progress::{LogWriter, ProgressMode};
use netprobe_replay::{Args, Config};

fn main() -> ExitCode {
    // clap prints its own errors and exits with status 2.
    let args = Args::parse();
    let usage = |e: &dyn std::fmt::Display| {
        eprintln!("netprobe-replay: {e}");
        ExitCode::from(2)
    };
    let request = match args.request(chrono::Utc::now()) {
        Ok(r) => r,
        Err(e) => return usage(&e),
    };
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(LogWriter)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netprobe-replay: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(netprobe_replay::run(config, &args.config, request, ProgressMode::detect()));
    match outcome {
        Err(e) if e.is_usage() => usage(&e),
        Err(e) => {
            eprintln!("netprobe-replay: {e}");
            ExitCode::from(1)
        }
        Ok(summary) => {
            eprint!("{summary}");
            if summary.failure.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
