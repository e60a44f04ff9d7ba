//! Internal events: each function logs (tracing, structured fields) and
//! counts (metrics, Prometheus names `netprobe_ingest_<name>_<unit>`) one
//! occurrence, so logs and metrics never disagree. Labels are bounded:
//! topic, partition, error class, HTTP status class.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use crate::batch::Source;

/// The counter of messages consumed from `topic`: registered once per
/// topic and kept by the caller, so the per-message path does not build a
/// labelled key each time.
pub fn consumed_counter(topic: &str) -> metrics::Counter {
    counter!("netprobe_ingest_messages_consumed_total", "topic" => topic.to_owned())
}

/// Name of the delivery latency histogram: Kafka message timestamp ->
/// InfluxDB acknowledged the batch holding it, seconds, by topic.
pub const DELIVERY_LATENCY: &str = "netprobe_ingest_delivery_latency_seconds";

/// Bucket boundaries of [`DELIVERY_LATENCY`], seconds: 1 ms .. 60 s, about
/// three per decade, so 100 ms, 250 ms, 500 ms and 1 s are exact edges.
pub const DELIVERY_LATENCY_BUCKETS_S: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0];

/// The delivery latency histogram of `topic`: registered once per topic and
/// kept by the caller, like [`consumed_counter`].
pub fn delivery_latency(topic: &str) -> metrics::Histogram {
    histogram!(DELIVERY_LATENCY, "topic" => topic.to_owned())
}

/// A batch was accepted by InfluxDB.
pub fn batch_written(lines: usize, bytes: usize, elapsed: Duration) {
    counter!("netprobe_ingest_points_written_total").increment(lines as u64);
    counter!("netprobe_ingest_batches_written_total").increment(1);
    histogram!("netprobe_ingest_batch_write_seconds").record(elapsed.as_secs_f64());
    tracing::debug!(lines, bytes, elapsed_ms = elapsed.as_secs_f64() * 1e3, "batch written");
}

/// A write failed and will be retried after `delay`.
pub fn write_retry(status: Option<u16>, message: &str, lines: usize, delay: Duration) {
    let class = match status {
        None => "transport",
        Some(401 | 403 | 404) => "auth_or_bucket",
        Some(429) => "throttled",
        Some(s) if s >= 500 => "server",
        Some(_) => "other",
    };
    counter!("netprobe_ingest_write_retries_total", "class" => class).increment(1);
    if class == "auth_or_bucket" {
        tracing::error!(
            status,
            error = message,
            lines,
            retry_in_ms = delay.as_millis() as u64,
            "InfluxDB refuses the token or bucket; fix the config, retrying"
        );
    } else {
        tracing::warn!(
            status,
            error = message,
            lines,
            retry_in_ms = delay.as_millis() as u64,
            "InfluxDB write failed, retrying"
        );
    }
}

/// InfluxDB rejected a batch (400/413/422); it is being bisected.
pub fn batch_split(status: Option<u16>, message: &str, messages: usize) {
    counter!("netprobe_ingest_batch_splits_total").increment(1);
    tracing::warn!(
        status,
        error = message,
        messages,
        "InfluxDB rejected a batch; bisecting it to find the bad messages"
    );
}

/// A message went to the DLQ.
pub fn dlq_sent(source: &Source, class: &str, reason: &str) {
    counter!("netprobe_ingest_dlq_messages_total", "class" => class.to_owned()).increment(1);
    tracing::warn!(topic = %source.topic, partition = source.partition, offset = source.offset, class, reason, "message sent to the DLQ");
}

/// Why a DLQ send failed, as the bounded `error_type` label of
/// `netprobe_ingest_dlq_send_failures_total`.
pub fn dlq_error_type(error: &rdkafka::error::KafkaError) -> &'static str {
    use rdkafka::error::RDKafkaErrorCode as C;
    match error.rdkafka_error_code() {
        Some(
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::TransactionalIdAuthorizationFailed,
        ) => "authorization",
        Some(C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition) => "unknown_topic",
        Some(C::MessageTimedOut | C::RequestTimedOut | C::OperationTimedOut) => "timeout",
        Some(C::AllBrokersDown | C::BrokerTransportFailure | C::BrokerNotAvailable) => "broker_down",
        Some(C::MessageSizeTooLarge | C::InvalidMessageSize) => "message_size",
        Some(C::QueueFull) => "queue_full",
        _ => "other",
    }
}

/// Producing `source` to the DLQ `dlq_topic` failed; retrying after `delay`.
/// An authorization failure is logged as an error naming the missing ACL:
/// nothing behind this message is stored until an operator grants it.
pub fn dlq_send_failed(source: &Source, dlq_topic: &str, error: &rdkafka::error::KafkaError, delay: Duration) {
    let error_type = dlq_error_type(error);
    counter!("netprobe_ingest_dlq_send_failures_total", "error_type" => error_type).increment(1);
    let retry_in_ms = delay.as_millis() as u64;
    if error_type == "authorization" || error_type == "unknown_topic" {
        tracing::error!(
            dlq_topic,
            topic = %source.topic,
            partition = source.partition,
            offset = source.offset,
            %error,
            error_type,
            retry_in_ms,
            "the ingest principal cannot write the DLQ topic: grant it Write and Describe on it (and create the topic); \
             this partition is stalled at this offset until then, nothing is skipped"
        );
    } else {
        tracing::warn!(dlq_topic, topic = %source.topic, partition = source.partition, offset = source.offset, %error, error_type, retry_in_ms, "DLQ produce failed, retrying");
    }
}

/// One DLQ send that has failed at least once and is being retried: while
/// it lives, it counts in the gauge `netprobe_ingest_dlq_sends_failing`.
#[derive(Debug)]
pub struct DlqSendFailing(());

impl DlqSendFailing {
    /// Counts one more failing send.
    pub fn start() -> Self {
        gauge!("netprobe_ingest_dlq_sends_failing").increment(1.0);
        DlqSendFailing(())
    }
}

impl Drop for DlqSendFailing {
    fn drop(&mut self) {
        gauge!("netprobe_ingest_dlq_sends_failing").decrement(1.0);
    }
}

/// Offsets were stored for commit.
pub fn offsets_stored(partitions: usize) {
    counter!("netprobe_ingest_offset_stores_total").increment(1);
    tracing::trace!(partitions, "offsets stored");
}

/// Consumer lag of one partition, from librdkafka statistics.
pub fn consumer_lag(topic: &str, partition: i32, lag: i64) {
    gauge!("netprobe_ingest_consumer_lag_messages", "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(lag as f64);
}

/// Bytes librdkafka holds prefetched for this consumer.
pub fn fetch_queue(bytes: u64) {
    gauge!("netprobe_ingest_fetch_queue_bytes").set(bytes as f64);
}

/// Consumption of the assigned partitions was paused (a write stalled for
/// [`crate::pipeline::PAUSE_AFTER`]) or resumed. Gauge: 1 while paused.
pub fn consumption_paused(paused: bool, partitions: usize) {
    gauge!("netprobe_ingest_consumption_paused").set(if paused { 1.0 } else { 0.0 });
    tracing::info!(partitions, paused, "consumption {}", if paused { "paused" } else { "resumed" });
}
