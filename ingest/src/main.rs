//! netprobe-ingest binary: command line, config, logging, signals, systemd
//! notification and the metrics listener around [`netprobe_ingest::run`].

use std::process::ExitCode;

use clap::Parser;
use netprobe_ingest::cli::Args;
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's malloc: the loop allocates and frees a few
/// strings per message (the decoded message's text fields), which glibc's
/// malloc/free served at ~4 % of the CPU (docs/ingest.md, "The pipeline's
/// own ceiling").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    netprobe_service::init_logging();
    let config = match netprobe_ingest::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ingest failed");
            ExitCode::from(1)
        }
    }
}

async fn serve(config: netprobe_ingest::Config) -> Result<(), netprobe_ingest::Error> {
    if let Some(addr) = config.ingest.metrics_listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(netprobe_ingest::telemetry::DELIVERY_LATENCY.into()),
                &netprobe_ingest::telemetry::DELIVERY_LATENCY_BUCKETS_S,
            )
            .map_err(|e| netprobe_ingest::Error::Metrics { addr, message: e.to_string() })?
            .install()
            .map_err(|e| netprobe_ingest::Error::Metrics { addr, message: e.to_string() })?;
    }
    let cancel = CancellationToken::new();
    tokio::spawn(stop_on_signal(cancel.clone()));
    let on_ready = || {
        netprobe_service::notify(netprobe_service::NotifyState::Ready);
    };
    netprobe_ingest::run(config, cancel, on_ready, netprobe_service::watchdog()).await
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
    tracing::info!("stopping: flushing the last batch and committing offsets");
    netprobe_service::notify(netprobe_service::NotifyState::Stopping);
    cancel.cancel();
}
