//! The Kafka side: consumer (group member) and DLQ producer configuration,
//! the consumer context that reports lag and rebalances, and the bounded
//! final commit and close of the consumer.

use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::{telemetry, Error};
use netprobe_wire::Topic;

/// Callbacks librdkafka runs from the consumer's poll.
#[derive(Debug, Default, Clone, Copy)]
pub struct IngestContext;

impl ClientContext for IngestContext {
    /// Reads only what ingest reports from librdkafka's statistics JSON
    /// (rdkafka's full `Statistics` type does not follow every librdkafka
    /// release, and a mismatch would silently drop the lag metric).
    fn stats_raw(&self, json: &[u8]) {
        let stats: LagStats = match serde_json::from_slice(json) {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "unreadable librdkafka statistics"),
        };
        let mut fetchq_bytes = 0;
        for (topic, t) in &stats.topics {
            for p in t.partitions.values() {
                fetchq_bytes += p.fetchq_size;
                // -1 marks librdkafka's internal UA partition; lag -1 = unknown.
                if p.partition >= 0 && p.consumer_lag >= 0 {
                    telemetry::consumer_lag(topic, p.partition, p.consumer_lag);
                }
            }
        }
        telemetry::fetch_queue(fetchq_bytes);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "librdkafka error");
    }
}

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions revoked; committing stored offsets");
                // Everything stored was written; commit it before the
                // partitions move. Unwritten messages are re-read by the new owner.
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(error = %e, "commit on revoke (nothing stored)");
                }
            }
            Rebalance::Assign(tpl) => tracing::info!(partitions = tpl.count(), "partitions assigned"),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// The part of librdkafka's statistics JSON (STATISTICS.md) ingest uses.
#[derive(serde::Deserialize)]
struct LagStats {
    #[serde(default)]
    topics: std::collections::HashMap<String, TopicStats>,
}

#[derive(serde::Deserialize)]
struct TopicStats {
    #[serde(default)]
    partitions: std::collections::HashMap<String, PartitionStats>,
}

#[derive(serde::Deserialize)]
struct PartitionStats {
    partition: i32,
    #[serde(default = "unknown")]
    consumer_lag: i64,
    #[serde(default)]
    fetchq_size: u64,
}

fn unknown() -> i64 {
    -1
}

/// Creates the consumer and subscribes it to the seven probe topics.
///
/// # Errors
/// [`Error::Wire`] for unusable `[kafka]` settings, [`Error::Kafka`] when
/// librdkafka refuses the configuration or the subscription.
pub fn subscribe(config: &Config) -> Result<StreamConsumer<IngestContext>, Error> {
    let mut client = config.kafka.client_config()?;
    client
        .set("group.id", &config.ingest.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", crate::config::SESSION_TIMEOUT.as_millis().to_string())
        .set("max.poll.interval.ms", config.ingest.max_poll_interval.as_millis().to_string())
        .set("heartbeat.interval.ms", "3000")
        .set("statistics.interval.ms", "5000")
        .set("fetch.wait.max.ms", "100")
        // Prefetch bound per partition; with 42 partitions it sets peak RSS
        // on a backlog (scripts/bench: 16 MB -> 325 MB, 4 MB -> 113 MB,
        // 1 MB -> 52 MB). 256 KB with 256 KB fetches keeps the whole process
        // under 64 MB with four writes in flight (`--sink null`, A/B against
        // 512 KB: peak 57.5-62.7 MB against 62.6-69.9 MB, same msgs/s).
        .set("queued.max.messages.kbytes", "256")
        .set("max.partition.fetch.bytes", "262144")
        // A partition over that bound is fetched again after this pause;
        // librdkafka's default (1 s) halves throughput with a small bound.
        .set("fetch.queue.backoff.ms", "10");
    let consumer: StreamConsumer<IngestContext> = client
        .create_with_context(IngestContext)
        .map_err(|source| Error::Kafka { context: "create consumer".into(), source })?;
    let topics: Vec<String> = Topic::PROBE_TOPICS.iter().map(|t| t.name(&config.kafka.topic_prefix)).collect();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .map_err(|source| Error::Kafka { context: format!("subscribe to {}", names.join(", ")), source })?;
    Ok(consumer)
}

/// Creates the DLQ producer (idempotent, acks=all, large messages allowed).
///
/// # Errors
/// As [`subscribe`].
pub fn dlq_producer(config: &Config) -> Result<crate::dlq::DlqProducer, Error> {
    let mut client = config.kafka.client_config()?;
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("message.max.bytes", "10485760")
        .set("message.timeout.ms", "30000");
    netprobe_service::PolledProducer::create(&client, crate::dlq::DlqDelivery)
        .map_err(|source| Error::Kafka { context: "create DLQ producer".into(), source })
}

/// How long the final commit plus the consumer's close may take at shutdown.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

/// Commits the stored offsets and closes `consumer` (revoke, leave the
/// group), waiting at most `timeout`; the consumer is dropped on its own
/// thread, never on a runtime worker.
///
/// Both are synchronous librdkafka calls, and the close has no bound of its
/// own: rdkafka's `Drop` polls until librdkafka reports the consumer closed.
/// With an offset stored and the broker unreachable, the commit waits ~11 s
/// for the coordinator and the close then until the broker is back
/// (measured: 113 s for a 113 s outage); others have seen it wait forever
/// (rust-rdkafka issue 509, librdkafka issue 4884). Run on a tokio worker,
/// such a wait blocks the worker; with ingest's two workers (or a test's) a
/// second one stops the timers too, so no timeout fires, and dropping the
/// runtime waits for the blocked worker. Past `timeout` the close is left
/// running on its thread and logged: nothing is lost (what was not committed is re-delivered to the
/// partitions' next owner once the group coordinator expires this member,
/// after the session timeout), and the process exits.
pub async fn commit_and_close(consumer: Arc<StreamConsumer<IngestContext>>, timeout: Duration) {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let started = Instant::now();
    let spawned = std::thread::Builder::new().name("consumer-close".into()).spawn(move || {
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final commit (nothing stored, or no assignment)");
        }
        drop(consumer);
        let _ = done_tx.send(());
    });
    if let Err(e) = spawned {
        // No thread to spare: close here, unbounded, rather than not at all.
        return tracing::warn!(error = %e, "cannot spawn the consumer-close thread");
    }
    match tokio::time::timeout(timeout, done_rx).await {
        Ok(_) => tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "consumer closed"),
        Err(_) => tracing::warn!(
            timeout_s = timeout.as_secs(),
            "consumer close did not finish in time; left behind (uncommitted offsets are re-delivered \
             to the partitions' next owner after the session timeout)"
        ),
    }
}
