//! netprobe-agent binary: command line, config, logging, signals (SIGTERM,
//! SIGHUP reload) and systemd notification around [`netprobe_agent::run`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use netprobe_agent::cli::Args;
use netprobe_agent::{scheduler, Config};
use netprobe_service::{notify, NotifyState};
use netprobe_wire::ProbeType;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's malloc: every probe run is a tokio task,
/// whose cell is a cache-line-aligned allocation that glibc serves through
/// its slow `memalign` path (`malloc_consolidate`, `unlink_chunk` in the
/// profile; docs/agent.md "Cost per probe").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    netprobe_service::init_logging();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    if args.health_check {
        return runtime.block_on(health_check(&config, &args.only));
    }
    let result = runtime.block_on(async {
        if let Some(addr) = config.agent.metrics_listen {
            if let Err(e) = metrics_exporter_prometheus::PrometheusBuilder::new().with_http_listener(addr).install() {
                tracing::error!(%addr, error = %e, "cannot serve metrics");
                return Err(ExitCode::from(1));
            }
        }
        let cancel = CancellationToken::new();
        let (reload_tx, reloads) = mpsc::unbounded_channel();
        tokio::spawn(handle_signals(args.config.clone(), reload_tx, cancel.clone()));
        let on_ready = || {
            notify(NotifyState::Ready);
        };
        netprobe_agent::run(config, args.only, reloads, cancel, on_ready, netprobe_service::watchdog()).await.map_err(
            |e| {
                tracing::error!(error = %e, "agent failed");
                ExitCode::from(1)
            },
        )
    });
    result.err().unwrap_or(ExitCode::SUCCESS)
}

/// `--health-check`: every target once; JSON lines on stdout; exit 1 when
/// any run failed or did not finish.
async fn health_check(config: &Config, only: &[ProbeType]) -> ExitCode {
    let targets = config.targets(only);
    let probe_id = netprobe_wire::ProbeId(config.agent.probe_id.clone());
    let messages = scheduler::run_once(&targets, &probe_id, &config.agent.location).await;
    let mut ok = true;
    // BGP is a stream, not a run: check that each feed can start.
    for table in config.bgp_tables(only) {
        match &table.source {
            netprobe_agent::probe::bgp::Source::Mrt { location, .. }
                if !location.contains("://") && !std::path::Path::new(location).exists() =>
            {
                ok = false;
                tracing::error!(table = table.label(), %location, "MRT source does not exist");
            }
            source => tracing::info!(
                table = table.label(),
                feed = source.name(),
                "BGP is a stream: not run by --health-check"
            ),
        }
    }
    for (target, msg) in targets.iter().zip(&messages) {
        ok &= target.succeeded(&msg.body);
        match msg.encode() {
            Ok(json) => println!("{}", String::from_utf8_lossy(&json)),
            Err(e) => {
                ok = false;
                tracing::error!(error = %e, "result not encodable");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// SIGTERM/SIGINT stop the agent; SIGHUP re-reads the config and sends it
/// on `reloads` (a bad config is logged with file, line and key, and the
/// running one kept).
async fn handle_signals(path: PathBuf, reloads: mpsc::UnboundedSender<Config>, cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(&path, &reloads),
        }
    }
    tracing::info!("stopping: flushing to Kafka, spooling the rest");
    notify(NotifyState::Stopping);
    cancel.cancel();
}

fn reload(path: &Path, reloads: &mpsc::UnboundedSender<Config>) {
    notify(NotifyState::Reloading);
    match Config::load(path) {
        Ok(config) => {
            let _ = reloads.send(config);
        }
        Err(e) => tracing::error!(error = %e, "reload refused; keeping the running config"),
    }
    notify(NotifyState::Ready);
}
