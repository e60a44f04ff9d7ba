//! The Kafka side: consumer (group member) and DLQ producer configuration,
//! and the consumer context that reports lag and rebalances.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use crate::config::Config;
use crate::{telemetry, Error};
use netprobe_wire::Topic;

/// Callbacks librdkafka runs from the consumer's poll.
#[derive(Debug, Default, Clone, Copy)]
pub struct IngestContext;

impl ClientContext for IngestContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                // -1 marks librdkafka's internal UA partition; lag -1 = unknown.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    telemetry::consumer_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
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
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        .set("statistics.interval.ms", "5000")
        .set("fetch.wait.max.ms", "100")
        .set("queued.max.messages.kbytes", "65536");
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
pub fn dlq_producer(config: &Config) -> Result<FutureProducer, Error> {
    let mut client = config.kafka.client_config()?;
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("message.max.bytes", "10485760")
        .set("message.timeout.ms", "30000");
    client.create().map_err(|source| Error::Kafka { context: "create DLQ producer".into(), source })
}
