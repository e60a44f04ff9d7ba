//! netprobe-agent binary: command line, config, logging, signals and
//! systemd notification around [`netprobe_agent::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

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
    init_logging();
    let config = match netprobe_agent::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::from(2);
        }
    };
    if args.health_check {
        // No probe types exist yet, so there is nothing to run or print.
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    let cancel = CancellationToken::new();
    let result = runtime.block_on(async {
        tokio::spawn(stop_on_signal(cancel.clone()));
        let on_ready = || {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        };
        netprobe_agent::run(config, cancel, on_ready).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "agent failed");
            ExitCode::from(1)
        }
    }
}

async fn stop_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    cancel.cancel();
}

/// Structured logs to stderr (journald captures them under systemd, where
/// ANSI colours and timestamps are left out). `RUST_LOG` filters.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.with_ansi(false).without_time().init();
    } else {
        builder.init();
    }
}
