//! netprobe-ingest: Kafka probe topics -> InfluxDB v2, without loss.
//!
//! Stages, one module each: [`consumer`] (group membership, lag),
//! [`points`] (wire message -> line protocol), [`batch`], [`sink`] (HTTP
//! write) with [`retry`] (what a response means) and [`writer`] (one batch
//! until done), [`dlq`] (what can never be written) with [`refetch`] (a
//! refused message read back by position) and [`pipeline`] (the
//! loop and its delivery invariants).
#![deny(missing_docs)]

pub mod batch;
pub mod cli;
pub mod config;
pub mod consumer;
pub mod dlq;
mod error;
pub mod pipeline;
pub mod points;
pub mod refetch;
pub mod retry;
pub mod sink;
pub mod telemetry;
pub mod writer;

use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// Builds every part from `config` and runs until `cancel` fires.
/// `on_ready` is called once the consumer is subscribed (sd-notify READY);
/// `on_tick` on every loop turn and at least every
/// [`pipeline::TICK_INTERVAL`], idle or not (sd-notify WATCHDOG).
///
/// # Errors
/// A setup failure ([`Error`]); once running, failures are retried, logged
/// and counted, never returned.
pub async fn run(
    config: Config,
    cancel: CancellationToken,
    on_ready: impl FnOnce(),
    on_tick: Box<dyn FnMut() + Send>,
) -> Result<(), Error> {
    config.validate().map_err(|message| Error::Config { path: "config".into(), message })?;
    let token = config.influx.token()?;
    let sink = sink::InfluxSink::new(&config.influx, &token, config.ingest.write_timeout)?;
    let dlq = std::sync::Arc::new(dlq::Dlq::new(
        consumer::dlq_producer(&config)?,
        config.dlq_topic(),
        config.ingest.group_id.clone(),
    ));
    let refetch = std::sync::Arc::new(refetch::Refetch::new(config.kafka.client_config()?, &config.ingest.group_id));
    let consumer = consumer::subscribe(&config)?;
    tracing::info!(group = %config.ingest.group_id, influx = %config.influx.url, bucket = %config.influx.bucket, "ingest running");
    on_ready();
    let backoff = retry::Backoff::new(config.ingest.retry_initial_backoff, config.ingest.retry_max_backoff);
    let writers = (0..config.ingest.writes_in_flight)
        .map(|_| writer::Writer::new(sink.clone(), dlq.clone(), refetch.clone(), backoff.clone()))
        .collect();
    pipeline::Pipeline::new(consumer, writers, dlq, config.ingest, on_tick).run(cancel).await;
    Ok(())
}

/// `s` cut to at most `max` bytes on a character boundary (error texts from
/// InfluxDB or serde can quote whole multi-megabyte lines).
pub(crate) fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
