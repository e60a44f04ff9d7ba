//! Reads a message back from Kafka by its position, for the DLQ: a batch
//! keeps only each message's line protocol and position, not its payload
//! (that copy was 40 % of a batch's memory, ~9 MB of peak RSS with two
//! writes in flight, `scripts/bench ingest --sink null`), so when InfluxDB
//! refuses one message the original key and payload are fetched again
//! from its partition — its offset is not stored yet, so it is still there
//! unless retention deleted it in between.
//!
//! One consumer that never joins a group, created on the first refusal
//! and kept (a bisected batch can refuse many messages): each read assigns
//! the one partition at the offset, polls until that message arrives, and
//! unassigns, so nothing is prefetched between reads. librdkafka's calls
//! block, so each attempt runs on the blocking pool; attempts are retried
//! with backoff until the message comes or `cancel` fires (a down broker
//! delays the DLQ, it never drops the message).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::batch::Source;
use crate::dlq::Cancelled;
use crate::retry::Backoff;

/// How long one attempt polls for the message before it is retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// First delay before retrying a failed read.
pub const INITIAL_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between read retries.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(10);

/// A message read back: its Kafka key and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refetched {
    /// The message at the offset, unchanged.
    Found {
        /// Its key, `None` when it had none.
        key: Option<Vec<u8>>,
        /// Its payload (empty for a null payload).
        payload: Vec<u8>,
    },
    /// The offset is no longer in the partition (deleted by retention or
    /// compaction); the reason says what Kafka answered.
    Gone(String),
}

/// Reads single messages back by (topic, partition, offset).
pub struct Refetch(Arc<Reader>);

/// What an attempt on the blocking pool needs: the settings, and the
/// consumer made from them on first use.
struct Reader {
    config: ClientConfig,
    consumer: Mutex<Option<BaseConsumer>>,
}

impl std::fmt::Debug for Refetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refetch").finish_non_exhaustive()
    }
}

impl Refetch {
    /// A reader connecting with `config` (the `[kafka]` client settings).
    /// librdkafka's consumer needs a `group_id` even for assign(); this one
    /// never joins or commits to it (ingest's own group: the principal has
    /// its ACL already).
    pub fn new(mut config: ClientConfig, group_id: &str) -> Self {
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // An offset below the log start is an error, not a jump.
            .set("auto.offset.reset", "error")
            .set("queued.max.messages.kbytes", "1024")
            .set("fetch.wait.max.ms", "100");
        Refetch(Arc::new(Reader { config, consumer: Mutex::new(None) }))
    }

    /// The key and payload of the message at `source`, retried with backoff
    /// while Kafka cannot answer.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first.
    pub async fn message(&self, source: &Source, cancel: &CancellationToken) -> Result<Refetched, Cancelled> {
        let mut backoff = Backoff::new(INITIAL_RETRY_BACKOFF, MAX_RETRY_BACKOFF);
        loop {
            let (reader, at) = (self.0.clone(), source.clone());
            let attempt = tokio::task::spawn_blocking(move || reader.read(&at));
            let outcome = tokio::select! {
                joined = attempt => joined.unwrap_or_else(|e| Err(format!("read task failed: {e}"))),
                _ = cancel.cancelled() => return Err(Cancelled),
            };
            match outcome {
                Ok(found) => return Ok(found),
                Err(error) => {
                    let delay = backoff.delay(None);
                    tracing::warn!(%source, error, retry_in_ms = delay.as_millis() as u64, "cannot read a refused message back for the DLQ; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return Err(Cancelled),
                    }
                }
            }
        }
    }
}

impl Drop for Refetch {
    /// Closing a librdkafka consumer can block while brokers are away: on a
    /// thread of its own, never on a runtime worker.
    fn drop(&mut self) {
        let consumer = self.0.consumer.lock().map(|mut c| c.take()).unwrap_or(None);
        if let Some(consumer) = consumer {
            let _ = std::thread::Builder::new().name("refetch-close".into()).spawn(move || drop(consumer));
        }
    }
}

impl Reader {
    /// One attempt: assign, poll for at most [`ATTEMPT_TIMEOUT`], unassign.
    /// `Err` for what a retry can fix.
    fn read(&self, at: &Source) -> Result<Refetched, String> {
        let mut slot = self.consumer.lock().map_err(|_| "refetch consumer poisoned".to_string())?;
        let consumer = match &mut *slot {
            Some(consumer) => consumer,
            empty => empty.insert(self.config.create().map_err(|e| format!("create consumer: {e}"))?),
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&at.topic, at.partition, Offset::Offset(at.offset))
            .map_err(|e| format!("partition list: {e}"))?;
        consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
        let found = poll_for(consumer, at);
        let _ = consumer.unassign();
        found
    }
}

fn poll_for(consumer: &BaseConsumer, at: &Source) -> Result<Refetched, String> {
    let deadline = Instant::now() + ATTEMPT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no message within {} s", ATTEMPT_TIMEOUT.as_secs()));
        }
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Ok(m)) if m.topic() != &*at.topic || m.partition() != at.partition => {}
            Some(Ok(m)) if m.offset() == at.offset => {
                return Ok(Refetched::Found {
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or_default().to_vec(),
                })
            }
            Some(Ok(m)) if m.offset() > at.offset => {
                return Ok(Refetched::Gone(format!("the partition continues at offset {}", m.offset())))
            }
            Some(Ok(_)) => {}
            Some(Err(KafkaError::MessageConsumption(code))) if is_gone(code) => {
                return Ok(Refetched::Gone(format!("Kafka answered {code}")))
            }
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
}

/// The offset is outside the partition's log (auto.offset.reset = error).
fn is_gone(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset)
}
