//! The dead-letter queue: messages ingest can never write go to
//! `ingest.dlq` unchanged (same key and payload), with headers saying where
//! they came from and why. Sending retries until Kafka confirms delivery, so
//! the source offset is stored only once the message is safe in the DLQ.
//!
//! A DLQ that refuses (broker down, topic missing, no Write ACL for the
//! ingest principal) is retried with backoff capped at [`MAX_RETRY_BACKOFF`]
//! forever: skipping would lose the message, and its partition cannot move
//! on without it. Every failure counts
//! `netprobe_ingest_dlq_send_failures_total{error_type}` (bounded:
//! `authorization`, `unknown_topic`, `timeout`, `broker_down`,
//! `message_size`, `queue_full`, `other`), the gauge
//! `netprobe_ingest_dlq_sends_failing` counts the sends being retried, and authorization failures are logged as errors
//! naming the DLQ topic and the missing ACL. The pipeline keeps its group
//! membership and watchdog meanwhile (see `pipeline`).

use std::time::Duration;

use netprobe_service::PolledProducer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::batch::Source;
use crate::retry::Backoff;
use crate::{telemetry, truncate_utf8};

/// Header names on DLQ messages.
pub mod headers {
    /// Topic the message was consumed from.
    pub const SOURCE_TOPIC: &str = "source_topic";
    /// Its partition (decimal).
    pub const SOURCE_PARTITION: &str = "source_partition";
    /// Its offset (decimal).
    pub const SOURCE_OFFSET: &str = "source_offset";
    /// Short machine-readable class: `syntax`, `missing_field`, `invalid_field`,
    /// `unsupported_schema`, `unknown_probe_type`, `invalid_point`,
    /// `influx_rejected`.
    pub const ERROR_CLASS: &str = "error_class";
    /// Human-readable reason, e.g. `missing required field \`sent\``, at
    /// most [`super::MAX_REASON_BYTES`] (InfluxDB quotes whole lines).
    pub const REASON: &str = "reason";
    /// The consumer group of the ingest that sent it.
    pub const GROUP_ID: &str = "group_id";
    /// Present when the payload had to be cut to fit the DLQ topic: the
    /// original size in bytes (the whole message stays at its source offset).
    pub const TRUNCATED_FROM_BYTES: &str = "truncated_from_bytes";
}

/// Longest `reason` header kept, bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// Payload kept when the whole message cannot go to the DLQ, bytes.
pub const TRUNCATED_PAYLOAD_BYTES: usize = 64 * 1024;
/// First delay before retrying a failed DLQ send.
pub const INITIAL_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between DLQ send retries (one error log line per attempt).
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(10);

/// The DLQ's producer: librdkafka's delivery report of each message goes
/// to the oneshot it was sent with ([`PolledProducer`]: rdkafka's
/// `FutureProducer` polls through `ThreadedProducer`, whose polling thread
/// spins ~1 % of a core even while nothing is sent).
pub type DlqProducer = PolledProducer<DlqDelivery>;

/// Routes each DLQ delivery report to the send waiting for it.
#[derive(Debug, Default, Clone, Copy)]
pub struct DlqDelivery;

impl ClientContext for DlqDelivery {}

impl ProducerContext for DlqDelivery {
    type DeliveryOpaque = Box<oneshot::Sender<Result<(), KafkaError>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiting: Self::DeliveryOpaque) {
        // The send may have been cancelled (shutdown): nobody is waiting.
        let _ = waiting.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// Sends undeliverable messages to the DLQ topic.
pub struct Dlq {
    producer: DlqProducer,
    topic: String,
    group_id: String,
}

impl std::fmt::Debug for Dlq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dlq").field("topic", &self.topic).finish_non_exhaustive()
    }
}

/// Sending was abandoned because ingest is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl Dlq {
    /// A DLQ writing to `topic` through `producer` for consumer group `group_id`.
    pub fn new(producer: DlqProducer, topic: String, group_id: String) -> Self {
        Dlq { producer, topic, group_id }
    }

    /// Sends one message to the DLQ and waits for Kafka's acknowledgement,
    /// retrying with backoff (a down broker delays, never drops).
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first; the source offset must then
    /// not be stored.
    pub async fn send(
        &self,
        source: &Source,
        key: Option<&[u8]>,
        payload: &[u8],
        class: &str,
        reason: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let partition = source.partition.to_string();
        let offset = source.offset.to_string();
        let reason = truncate_utf8(reason, MAX_REASON_BYTES);
        let original_size = payload.len().to_string();
        let mut payload = payload;
        let mut truncated = false;
        let mut backoff = Backoff::new(INITIAL_RETRY_BACKOFF, MAX_RETRY_BACKOFF);
        // Counts this send in `netprobe_ingest_dlq_sends_failing` from its
        // first failure until it returns.
        let mut failing = None;
        loop {
            let mut headers = OwnedHeaders::new()
                .insert(Header { key: headers::SOURCE_TOPIC, value: Some(source.topic.as_bytes()) })
                .insert(Header { key: headers::SOURCE_PARTITION, value: Some(partition.as_bytes()) })
                .insert(Header { key: headers::SOURCE_OFFSET, value: Some(offset.as_bytes()) })
                .insert(Header { key: headers::ERROR_CLASS, value: Some(class.as_bytes()) })
                .insert(Header { key: headers::REASON, value: Some(reason.as_bytes()) })
                .insert(Header { key: headers::GROUP_ID, value: Some(self.group_id.as_bytes()) });
            if truncated {
                headers = headers
                    .insert(Header { key: headers::TRUNCATED_FROM_BYTES, value: Some(original_size.as_bytes()) });
            }
            let (delivered, delivery) = oneshot::channel();
            let mut record = BaseRecord::<[u8], [u8], _>::with_opaque_to(&self.topic, Box::new(delivered))
                .payload(payload)
                .headers(headers);
            if let Some(key) = key {
                record = record.key(key);
            }
            let sent = match self.producer.send(record) {
                Err((e, _)) => Err(e),
                Ok(()) => tokio::select! {
                    r = delivery => r.unwrap_or(Err(KafkaError::Canceled)),
                    _ = cancel.cancelled() => return Err(Cancelled),
                },
            };
            match sent {
                Ok(()) => {
                    telemetry::dlq_sent(source, class, reason);
                    return Ok(());
                }
                // Too large for the DLQ topic: retrying cannot help, and a
                // stuck DLQ would stall the partition. Keep the head; the
                // whole message stays at its source offset.
                Err(e)
                    if !truncated
                        && e.rdkafka_error_code().is_some_and(|c| {
                            matches!(c, RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize)
                        }) =>
                {
                    tracing::warn!(%source, bytes = payload.len(), error = %e, "message too large for the DLQ; sending its first {TRUNCATED_PAYLOAD_BYTES} bytes");
                    payload = &payload[..payload.len().min(TRUNCATED_PAYLOAD_BYTES)];
                    truncated = true;
                }
                Err(e) => {
                    let delay = backoff.delay(None);
                    telemetry::dlq_send_failed(source, &self.topic, &e, delay);
                    failing.get_or_insert_with(telemetry::DlqSendFailing::start);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return Err(Cancelled),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasons_are_cut_on_a_char_boundary() {
        assert_eq!(crate::truncate_utf8("abc", 10), "abc");
        assert_eq!(crate::truncate_utf8("aé", 2), "a");
        assert_eq!(crate::truncate_utf8(&"x".repeat(5000), 1024).len(), 1024);
    }
}
