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

/// Producing to the DLQ failed; retrying.
pub fn dlq_send_failed(source: &Source, error: &rdkafka::error::KafkaError, delay: Duration) {
    counter!("netprobe_ingest_dlq_send_failures_total").increment(1);
    tracing::warn!(topic = %source.topic, partition = source.partition, offset = source.offset, %error, retry_in_ms = delay.as_millis() as u64, "DLQ produce failed, retrying");
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
