//! netprobe-agent library: config, publisher, registry record and
//! heartbeats. Probes, the scheduler and the disk spool come with issue #3.
#![deny(missing_docs)]

pub mod config;
mod error;
pub mod probe;
pub mod publisher;
pub mod registry;
pub mod spool;

use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// How long a shutdown may wait for queued messages.
pub const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// Publishes the registry record at start and every `registry_interval`,
/// and a heartbeat every `heartbeat_interval`, until `cancel` fires; then
/// flushes the producer (bounded by [`SHUTDOWN_FLUSH`]).
///
/// # Errors
/// A setup failure; once running, delivery failures are logged and counted.
pub async fn run(config: Config, cancel: CancellationToken, on_ready: impl FnOnce()) -> Result<(), Error> {
    let publisher = publisher::Publisher::new(&config.kafka)?;
    let identity = registry::Identity::discover(
        &config.agent.probe_id,
        &config.agent.location,
        config.kafka.brokers.first().map(String::as_str),
    );
    tracing::info!(probe_id = %identity.probe_id, ip = ?identity.ip, "agent running (registry and heartbeats; no probes yet)");
    let mut registry = tokio::time::interval(config.agent.registry_interval);
    let mut heartbeat = tokio::time::interval(config.agent.heartbeat_interval);
    let mut ready = Some(on_ready);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = registry.tick() => {
                if publisher.publish(&identity.registry(Vec::new())).await {
                    if let Some(f) = ready.take() {
                        f();
                    }
                }
            }
            _ = heartbeat.tick() => {
                let counters = registry::Counters { spool_dropped_messages: publisher.lost_messages(), ..Default::default() };
                publisher.publish(&identity.health(&counters, publisher.kafka_connected())).await;
            }
        }
    }
    publisher.flush(SHUTDOWN_FLUSH);
    tracing::info!("agent stopped");
    Ok(())
}
