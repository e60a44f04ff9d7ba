//! netprobe-agent library: config, probes (one module per type), the
//! scheduler, the durable publisher (Kafka + on-disk spool), the registry
//! record and heartbeats.
#![deny(missing_docs)]

pub mod cli;
pub mod config;
mod error;
pub mod partitioner;
pub mod probe;
pub mod publisher;
pub mod registry;
pub mod run_counters;
pub mod scheduler;
pub mod spool;
mod timetable;

use std::sync::Arc;

use netprobe_wire::{Message, ProbeType};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// How long a shutdown waits for in-flight probe runs.
pub const IN_FLIGHT_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a shutdown may wait for Kafka before spooling the rest.
pub const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the agent until `cancel` fires:
///
/// - the scheduler runs `config`'s targets (limited to `only` when not
///   empty) and every result is published;
/// - the registry record at start and every `registry_interval`, a
///   heartbeat every `heartbeat_interval`;
/// - each config received on `reloads` replaces the targets (SIGHUP);
/// - `on_ready` once the spool is open and the targets are scheduled,
///   whether or not Kafka answers (the spool keeps results until it does;
///   Kafka's state is in the heartbeat and `netprobe_agent_kafka_connected`);
///   `watchdog` from the main loop (at least every second);
/// - with `only` set, the agent is the instance named by those types
///   (`icmp`, or `dns+http`): its registry record and heartbeats carry
///   `instance` and are keyed `probe_id/instance`;
/// - at the end: in-flight runs finish (up to [`IN_FLIGHT_GRACE`]) and are
///   published, queued messages get
///   [`SHUTDOWN_FLUSH`] to reach Kafka, the rest is spooled.
///
/// # Errors
/// A setup failure (spool directory, Kafka settings); once running,
/// failures are logged, counted and spooled.
pub async fn run(
    config: Config,
    only: Vec<ProbeType>,
    mut reloads: mpsc::UnboundedReceiver<Config>,
    cancel: CancellationToken,
    on_ready: impl FnOnce() + Send + 'static,
    mut watchdog: impl FnMut(),
) -> Result<(), Error> {
    // The lock is held until `run` returns.
    let (_spool_lock, spool) = match &config.agent.spool_dir {
        Some(dir) => (Some(lock_dir(dir)?), Some(spool::Spool::open(dir, config.agent.spool_max_bytes)?)),
        None => {
            tracing::warn!("no [agent] spool_dir: measurements Kafka does not take are lost");
            (None, None)
        }
    };
    let publisher = publisher::Publisher::new(&config.kafka, spool)?;
    let instance = (!only.is_empty()).then(|| only.iter().map(ProbeType::as_str).collect::<Vec<_>>().join("+"));
    let identity = registry::Identity::discover(
        &config.agent.probe_id,
        &config.agent.location,
        instance,
        config.kafka.brokers.first().map(String::as_str),
    );
    let drain = tokio::spawn(publisher.clone().drain(cancel.child_token()));

    let stats = Arc::new(run_counters::RunCounters::default());
    let (results, mut inbox) = mpsc::channel::<Message>(4096);
    let mut bgp = start_bgp(config.bgp_tables(&only), &identity, &results, &cancel)?;
    let mut scheduler = scheduler::Scheduler::new(
        identity.probe_id.clone(),
        identity.location.clone(),
        results.clone(),
        Arc::clone(&stats),
        scheduler::Limits::default(),
    );
    let targets = config.targets(&only);
    let mut available = available_types(&targets, bgp.as_ref());
    scheduler.apply(targets);
    tracing::info!(probe_id = %identity.probe_id, instance = identity.instance, targets = scheduler.len(), "agent running");
    on_ready();
    let kafka_gauge = metrics::gauge!("netprobe_agent_kafka_connected");

    let mut registry = tokio::time::interval(config.agent.registry_interval);
    let mut heartbeat = tokio::time::interval(config.agent.heartbeat_interval);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(msg) = inbox.recv() => {
                publisher.publish(&msg);
                // Whatever else is queued, without another pass through the select.
                while let Ok(msg) = inbox.try_recv() {
                    publisher.publish(&msg);
                }
            }
            Some(new) = reloads.recv() => {
                let targets = new.targets(&only);
                let tables = new.bgp_tables(&only);
                if bgp.as_ref().map_or(!tables.is_empty(), |b| b.tables() != tables.as_slice()) {
                    // New prefixes, sources or VRPs: the monitors start over.
                    if let Some(old) = bgp.take() {
                        old.stop();
                    }
                    bgp = start_bgp(tables, &identity, &results, &cancel).unwrap_or_else(|e| {
                        tracing::error!(error = %e, "BGP monitor not restarted");
                        None
                    });
                }
                available = available_types(&targets, bgp.as_ref());
                let (started, stopped) = scheduler.apply(targets);
                tracing::info!(started, stopped, targets = scheduler.len(), "config reloaded");
                publisher.publish(&identity.registry(available.clone()));
            }
            _ = registry.tick() => publisher.publish(&identity.registry(available.clone())),
            _ = heartbeat.tick() => {
                let (runs_last_hour, failures_last_hour, last_successful_run) = stats.snapshot();
                let counters = registry::Counters {
                    last_successful_run,
                    failures_last_hour,
                    runs_last_hour,
                    spool_messages: publisher.spool_messages(),
                    spool_dropped_messages: publisher.dropped_messages(),
                    feeds: bgp.as_mut().map(|b| b.feed_status()).unwrap_or_default(),
                };
                publisher.publish(&identity.health(&counters, publisher.kafka_connected()));
            }
            _ = tick.tick() => {
                watchdog();
                if let Some(b) = bgp.as_mut() {
                    b.feed_status();
                }
                kafka_gauge.set(if publisher.kafka_connected() { 1.0 } else { 0.0 });
            }
        }
    }
    // In-flight runs finish and are published (bounded); the inbox closes
    // when the last target task has ended.
    scheduler.stop();
    drop(scheduler);
    drop(bgp);
    drop(results);
    let deadline = tokio::time::Instant::now() + IN_FLIGHT_GRACE;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, inbox.recv()).await {
        publisher.publish(&msg);
    }
    let _ = drain.await;
    let flushing = publisher.clone();
    let _ = tokio::task::spawn_blocking(move || flushing.shutdown(SHUTDOWN_FLUSH)).await;
    tracing::info!(spooled = publisher.spool_messages(), "agent stopped");
    Ok(())
}

/// Takes an exclusive lock on `dir/lock` for the life of the process, so
/// two agents never share one spool (flock(2); released when the process
/// ends, however it ends).
fn lock_dir(dir: &std::path::Path) -> Result<nix::fcntl::Flock<std::fs::File>, Error> {
    let path = dir.join("lock");
    let fail = |message: String| Error::SpoolLocked { path: path.clone(), message };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| fail(e.to_string()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| fail(format!("{e}: another agent uses this spool_dir; give each agent its own")))
}

/// Starts the BGP monitors of `tables` (none without tables).
fn start_bgp(
    tables: Vec<probe::bgp::Table>,
    identity: &registry::Identity,
    results: &mpsc::Sender<Message>,
    cancel: &CancellationToken,
) -> Result<Option<probe::bgp::BgpRuntime>, Error> {
    if tables.is_empty() {
        return Ok(None);
    }
    let n = tables.len();
    let runtime =
        probe::bgp::BgpRuntime::start(tables, &identity.probe_id, &identity.location, results.clone(), cancel)
            .map_err(Error::Bgp)?;
    tracing::info!(tables = n, "BGP monitor running");
    Ok(Some(runtime))
}

/// The probe types among `targets` (and BGP when it runs), for the
/// registry record.
fn available_types(targets: &[probe::Target], bgp: Option<&probe::bgp::BgpRuntime>) -> Vec<ProbeType> {
    let mut types: Vec<ProbeType> = targets.iter().map(probe::Target::probe_type).collect();
    if bgp.is_some() {
        types.push(ProbeType::Bgp);
    }
    types.sort_by_key(|t| t.as_str());
    types.dedup();
    types
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_spool_dir_is_locked_by_one_agent_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = super::lock_dir(dir.path()).expect("first lock");
        let err = super::lock_dir(dir.path()).expect_err("second lock refused");
        assert!(err.to_string().contains("another agent uses this spool_dir"), "{err}");
        drop(first);
        super::lock_dir(dir.path()).expect("free again once the first is gone");
    }
}
