//! Publishes wire messages to Kafka with an idempotent producer (acks=all,
//! lz4, a few ms of linger), key `probe_id/target`.
//!
//! Not yet durable: a message whose delivery fails is logged and counted as
//! lost. The on-disk spool of DESIGN.md ("Delivery guarantees") comes with
//! the probes (issue #3).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netprobe_wire::{KafkaSettings, Message, Topic};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::Error;

/// How long one message may wait for delivery (librdkafka `message.timeout.ms`).
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The agent's Kafka producer.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    prefix: String,
    connected: Arc<AtomicBool>,
    lost: Arc<AtomicU64>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl Publisher {
    /// A producer for `settings` (the `agent` principal).
    ///
    /// # Errors
    /// [`Error::Wire`] for unusable settings, [`Error::Kafka`] when librdkafka
    /// refuses the configuration.
    pub fn new(settings: &KafkaSettings) -> Result<Self, Error> {
        let producer: FutureProducer = settings
            .client_config()?
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("message.timeout.ms", MESSAGE_TIMEOUT.as_millis().to_string())
            .create()?;
        Ok(Publisher {
            producer,
            prefix: settings.topic_prefix.clone(),
            connected: Arc::new(AtomicBool::new(false)),
            lost: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Sends one message and waits for Kafka's acknowledgement. A failure is
    /// logged and counted; it returns `false`.
    pub async fn publish(&self, msg: &Message) -> bool {
        let topic = Topic::for_probe_type(msg.probe_type()).name(&self.prefix);
        let key = msg.key();
        let payload = match msg.encode() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, %topic, "message not publishable");
                self.lost.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        };
        match self.producer.send(FutureRecord::to(&topic).key(&key).payload(&payload), MESSAGE_TIMEOUT).await {
            Ok(d) => {
                self.connected.store(true, Ordering::Relaxed);
                tracing::debug!(%topic, key, partition = d.partition, offset = d.offset, "published");
                true
            }
            Err((e, _)) => {
                self.connected.store(false, Ordering::Relaxed);
                self.lost.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%topic, key, error = %e, "delivery failed; message lost (no spool yet)");
                false
            }
        }
    }

    /// Whether the last delivery succeeded.
    pub fn kafka_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Messages lost since start.
    pub fn lost_messages(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for queued messages to be delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "producer flush incomplete at shutdown");
        }
    }
}
