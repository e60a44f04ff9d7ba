//! Publishes wire messages to Kafka with an idempotent producer (acks=all,
//! lz4, [`LINGER`]), key `probe_id/target`, one partition per agent and
//! topic ([`ByAgent`]), and keeps what Kafka does not take in the on-disk
//! [`Spool`] (DESIGN.md "Delivery guarantees").
//!
//! - A message whose delivery fails (broker down, network cut, message
//!   timeout, queue full, purge at shutdown) is appended to the spool from
//!   librdkafka's delivery callback.
//! - While the broker is known to be down (all brokers down, or the last
//!   delivery failed) new messages go straight to the spool, so none waits
//!   in librdkafka's memory, where a `kill -9` would lose it.
//! - [`Publisher::drain`] re-sends the spool oldest first in batches and
//!   acknowledges only the delivered prefix, so nothing spooled is lost;
//!   some may arrive twice (at-least-once; points are idempotent).
//! - Every spool operation (append, fsync, read, acknowledge) runs off the
//!   async runtime: appends on the `netprobe-spool` thread in arrival
//!   order, fsyncs and re-send reads in `spawn_blocking`; the runtime only
//!   reads counters. A slow disk delays the spool, never a probe's clock.
//! - Each spooled message is written to the kernel as soon as the spool
//!   thread takes it (normally within microseconds; behind an fsync of a
//!   slow disk, after it) and the spool is fsynced every [`SYNC_INTERVAL`].
//!   What a `kill -9` loses: the messages librdkafka holds in memory while
//!   the broker is up (at most [`MESSAGE_TIMEOUT`] worth; they are not yet
//!   in the spool, as the spool keeps only what Kafka did not take) and
//!   those queued for the spool thread at that instant. A power cut loses at
//!   most [`SYNC_INTERVAL`] of spooled messages as well.
//!
//! Without a `spool_dir` undeliverable messages are counted as dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use netprobe_service::PolledProducer;
use netprobe_wire::{KafkaSettings, Message, ProbeType, Topic};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig};
use rdkafka::ClientContext;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::partitioner::ByAgent;
use crate::spool::{Record, Spool};
use crate::Error;

/// How long one message may wait in librdkafka (`message.timeout.ms`)
/// before it is handed to the spool.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the producer gathers messages into one request
/// (`linger.ms`): at 1,000 results/s, 5 ms made librdkafka's TLS sends
/// most of the agent's CPU (scripts/bench agent).
pub const LINGER: Duration = Duration::from_millis(100);
/// How often the spool is fsynced and checked for messages to re-send.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(500);
/// While the broker is down, how often one spooled message is tried.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Spooled messages re-sent per round.
const DRAIN_BATCH: usize = 1000;
/// The agent's Kafka producer and spool.
#[derive(Clone)]
pub struct Publisher {
    producer: PolledProducer<Delivery, ByAgent>,
    prefix: String,
    /// Full topic name per probe type (built once, not per message).
    topics: [(ProbeType, String); ProbeType::ALL.len()],
    shared: Arc<Shared>,
    /// Key and payload of the message being published, reused (librdkafka
    /// copies both), so encoding allocates nothing once they have grown.
    scratch: Arc<Mutex<(String, Vec<u8>)>>,
}

/// Work for the spool thread.
enum Job {
    /// Append a message Kafka did not take.
    Keep(Record, String),
    /// Answer once every earlier job is done.
    Barrier(mpsc::SyncSender<()>),
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// State shared with librdkafka's callbacks and the spool thread.
#[derive(Debug)]
struct Shared {
    spool: Option<Mutex<Spool>>,
    /// To the spool thread (`None` without a spool).
    jobs: Option<mpsc::Sender<Job>>,
    /// The spool's length and drop count as of its last operation, so the
    /// runtime never waits for the spool's lock.
    spool_len: AtomicU64,
    spool_dropped: AtomicU64,
    connected: AtomicBool,
    /// Messages lost without a spool (or when the spool fails).
    lost: AtomicU64,
}

impl Shared {
    /// Runs `f` on the spool (blocking: never call it on the runtime).
    fn with_spool<R>(&self, f: impl FnOnce(&mut Spool) -> R) -> Option<R> {
        let mut spool = self.spool.as_ref()?.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = f(&mut spool);
        self.spool_len.store(spool.len(), Ordering::Relaxed);
        self.spool_dropped.store(spool.dropped(), Ordering::Relaxed);
        Some(result)
    }

    /// Hands a message Kafka did not take to the spool thread, or counts it
    /// lost without a spool. Never blocks.
    fn keep(&self, topic: &str, key: &[u8], payload: &[u8], why: &dyn std::fmt::Display) {
        let record = Record {
            topic: topic.to_owned(),
            key: String::from_utf8_lossy(key).into_owned(),
            payload: payload.to_vec(),
        };
        let why = why.to_string();
        match &self.jobs {
            Some(jobs) => {
                if let Err(mpsc::SendError(Job::Keep(record, why))) = jobs.send(Job::Keep(record, why)) {
                    self.count_lost(&record, &why, "the spool thread has stopped");
                }
            }
            None => self.count_lost(&record, &why, "no spool_dir configured"),
        }
    }

    /// Appends `record` to the spool (on the spool thread).
    fn append(&self, record: &Record, why: &str) {
        let appended = self.with_spool(|spool| {
            spool.push(record)?;
            // A failed write leaves the record in the spool's buffer, to be
            // written at the next flush or sync: spooled, not lost.
            if let Err(e) = spool.flush() {
                tracing::warn!(topic = record.topic, key = record.key, error = %e, "spooled message not written yet; retried at the next sync");
            }
            Ok::<(), crate::spool::SpoolError>(())
        });
        match appended {
            Some(Ok(())) => {
                metrics::counter!("netprobe_agent_spooled_messages_total").increment(1);
                tracing::debug!(topic = record.topic, key = record.key, reason = why, "message spooled");
            }
            Some(Err(e)) => self.count_lost(record, why, &e.to_string()),
            None => self.count_lost(record, why, "no spool_dir configured"),
        }
    }

    fn count_lost(&self, record: &Record, why: &str, error: &str) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("netprobe_agent_lost_messages_total").increment(1);
        tracing::error!(topic = record.topic, key = record.key, reason = why, error, "message lost");
    }
}

/// The spool thread: appends what Kafka did not take, in arrival order,
/// until every [`Publisher`] is gone (the channel closes with them).
fn spool_thread(shared: std::sync::Weak<Shared>, jobs: mpsc::Receiver<Job>) {
    for job in jobs {
        let Some(shared) = shared.upgrade() else { return };
        match job {
            Job::Keep(record, why) => shared.append(&record, &why),
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// What a produced message carries to its delivery callback.
#[derive(Debug)]
enum Opaque {
    /// A new measurement, produced at this instant.
    Live(Instant),
    /// A spooled message being re-sent; the drain waits for the outcome.
    Resend(oneshot::Sender<bool>),
}

/// librdkafka callbacks: delivery reports and client errors.
struct Delivery {
    shared: Arc<Shared>,
    /// `netprobe_agent_delivery_seconds`, looked up once, not per message.
    delivery_s: metrics::Histogram,
}

impl ClientContext for Delivery {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            // librdkafka repeats this while the brokers stay down: log the change only.
            if self.shared.connected.swap(false, Ordering::Relaxed) {
                tracing::warn!(reason, "all Kafka brokers are down; spooling measurements");
            }
            return;
        }
        // librdkafka logs transport failures itself (rate-limited).
        tracing::debug!(%error, reason, "Kafka client error");
    }
}

impl ProducerContext<ByAgent> for Delivery {
    type DeliveryOpaque = Box<Opaque>;

    fn get_custom_partitioner(&self) -> Option<&ByAgent> {
        Some(&ByAgent)
    }

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Box<Opaque>) {
        let ok = result.is_ok();
        if ok {
            self.shared.connected.store(true, Ordering::Relaxed);
        }
        match (*opaque, result) {
            (Opaque::Live(at), Ok(_)) => self.delivery_s.record(at.elapsed().as_secs_f64()),
            (Opaque::Live(_), Err((e, m))) => {
                self.shared.connected.store(false, Ordering::Relaxed);
                self.shared.keep(m.topic(), m.key().unwrap_or_default(), m.payload().unwrap_or_default(), e);
            }
            (Opaque::Resend(done), _) => {
                let _ = done.send(ok);
            }
        }
    }
}

impl Publisher {
    /// A producer for `settings` (the `agent` principal) and, with
    /// `spool`, the spool that keeps what Kafka does not take.
    ///
    /// # Errors
    /// [`Error::Wire`] for unusable settings, [`Error::Kafka`] when librdkafka
    /// refuses the configuration.
    pub fn new(settings: &KafkaSettings, spool: Option<Spool>) -> Result<Self, Error> {
        let (jobs, queue) = mpsc::channel();
        let has_spool = spool.is_some();
        let shared = Arc::new(Shared {
            spool_len: AtomicU64::new(spool.as_ref().map_or(0, Spool::len)),
            spool_dropped: AtomicU64::new(spool.as_ref().map_or(0, Spool::dropped)),
            spool: spool.map(Mutex::new),
            jobs: has_spool.then_some(jobs),
            connected: AtomicBool::new(true),
            lost: AtomicU64::new(0),
        });
        if has_spool {
            let thread_shared = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name("netprobe-spool".into())
                .spawn(move || spool_thread(thread_shared, queue))
                .map_err(|e| {
                    Error::Spool(crate::spool::SpoolError::Io {
                        op: "start the spool thread for",
                        path: "spool".into(),
                        source: e,
                    })
                })?;
        }
        let mut config = settings.client_config()?;
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", LINGER.as_millis().to_string())
            .set("message.timeout.ms", MESSAGE_TIMEOUT.as_millis().to_string());
        let producer = PolledProducer::create(
            &config,
            Delivery {
                shared: Arc::clone(&shared),
                delivery_s: metrics::histogram!("netprobe_agent_delivery_seconds"),
            },
        )?;
        let topics = ProbeType::ALL.map(|t| (t, Topic::for_probe_type(t).name(&settings.topic_prefix)));
        Ok(Publisher { producer, prefix: settings.topic_prefix.clone(), topics, shared, scratch: Arc::default() })
    }

    /// Queues one message for Kafka, or spools it while the broker is
    /// down. Never blocks on the network; the outcome arrives through the
    /// delivery callback.
    pub fn publish(&self, msg: &Message) {
        let probe_type = msg.probe_type();
        let Some((_, topic)) = self.topics.iter().find(|(t, _)| *t == probe_type) else { return };
        let mut scratch = self.scratch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (key, payload) = &mut *scratch;
        msg.key_into(key);
        match msg.encode_into(payload) {
            Ok(()) => {}
            Err(e) => {
                // A NaN cannot be carried by JSON; this is a bug in a probe.
                self.shared.lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, %topic, key = key.as_str(), "message not encodable; dropped");
                return;
            }
        };
        if !self.kafka_connected() && self.shared.spool.is_some() {
            self.shared.keep(topic, key.as_bytes(), payload, &"broker down");
            return;
        }
        let record = BaseRecord::with_opaque_to(topic, Box::new(Opaque::Live(Instant::now())))
            .key(key.as_str())
            .payload(payload.as_slice());
        if let Err((e, record)) = self.producer.send(record) {
            self.shared.keep(topic, key.as_bytes(), record.payload.unwrap_or_default(), &e);
        }
    }

    /// Whether the broker took the last message (or has not failed yet).
    pub fn kafka_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Messages waiting in the spool (as of its last operation; never
    /// waits for the disk).
    pub fn spool_messages(&self) -> u64 {
        self.shared.spool_len.load(Ordering::Relaxed)
    }

    /// Messages lost since start: dropped by the spool bound, found
    /// corrupt in the spool, or undeliverable without a spool.
    pub fn dropped_messages(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed) + self.shared.spool_dropped.load(Ordering::Relaxed)
    }

    /// Runs `f` on the spool in the blocking pool (off the runtime).
    async fn on_spool<R: Send + 'static>(&self, f: impl FnOnce(&mut Spool) -> R + Send + 'static) -> Option<R> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.with_spool(f)).await.ok().flatten()
    }

    /// Until `cancel`: fsyncs the spool every [`SYNC_INTERVAL`], and re-sends
    /// spooled messages in order while the broker is up, trying one every
    /// [`PROBE_INTERVAL`] while it is down.
    pub async fn drain(self, cancel: CancellationToken) {
        if self.shared.spool.is_none() {
            return;
        }
        let sync = async {
            loop {
                self.sync().await;
                metrics::gauge!("netprobe_agent_spool_messages").set(self.spool_messages() as f64);
                tokio::time::sleep(SYNC_INTERVAL).await;
            }
        };
        let resend = async {
            let mut last_try = Instant::now() - PROBE_INTERVAL;
            loop {
                let up = self.kafka_connected();
                let resent = if self.spool_messages() > 0 && (up || last_try.elapsed() >= PROBE_INTERVAL) {
                    last_try = Instant::now();
                    self.resend(if up { DRAIN_BATCH } else { 1 }).await
                } else {
                    0
                };
                if resent < DRAIN_BATCH {
                    tokio::time::sleep(SYNC_INTERVAL).await;
                }
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = sync => {}
            _ = resend => {}
        }
    }

    /// Re-sends up to `max` of the oldest spooled messages and acknowledges
    /// the delivered prefix. Returns how many were acknowledged.
    async fn resend(&self, max: usize) -> usize {
        let batch = match self.on_spool(move |s| s.peek(max)).await {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                tracing::error!(error = %e, "reading the spool");
                return 0;
            }
            None => return 0,
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        for r in &batch {
            let (done, outcome) = oneshot::channel();
            let record =
                BaseRecord::with_opaque_to(&r.topic, Box::new(Opaque::Resend(done))).key(&r.key).payload(&r.payload);
            if self.producer.send(record).is_err() {
                break; // queue full: the rest next round
            }
            outcomes.push(outcome);
        }
        let mut delivered = 0;
        for outcome in outcomes {
            match outcome.await {
                Ok(true) => delivered += 1,
                _ => break,
            }
        }
        // Later messages of the batch may be in Kafka too; they are re-sent
        // (duplicates, never gaps).
        if delivered > 0 {
            if let Some(Err(e)) = self.on_spool(move |s| s.ack(delivered)).await {
                tracing::error!(error = %e, "acknowledging re-sent spool messages");
            }
            self.shared.connected.store(true, Ordering::Relaxed);
            tracing::info!(delivered, left = self.spool_messages(), "re-sent spooled messages");
        }
        delivered
    }

    async fn sync(&self) {
        if let Some(Err(e)) = self.on_spool(Spool::sync).await {
            tracing::error!(error = %e, "fsync of the spool failed");
        }
    }

    /// At shutdown (blocking; call it from `spawn_blocking`): waits up to
    /// `timeout` for queued messages, spools what is still queued or in
    /// flight, and fsyncs the spool once the spool thread has written it.
    pub fn shutdown(&self, timeout: Duration) {
        if self.producer.flush(timeout).is_err() {
            let queued = self.producer.in_flight_count();
            tracing::warn!(queued, "Kafka did not take every message in time; spooling the rest");
            self.producer.purge(PurgeConfig::default().queue().inflight());
            // Serves the purge's delivery reports, which spool the messages.
            let _ = self.producer.flush(Duration::from_secs(1));
        }
        if let Some(jobs) = &self.shared.jobs {
            let (done, barrier) = mpsc::sync_channel(1);
            if jobs.send(Job::Barrier(done)).is_ok() {
                let _ = barrier.recv();
            }
        }
        if let Some(Err(e)) = self.shared.with_spool(Spool::sync) {
            tracing::error!(error = %e, "fsync of the spool failed");
        }
    }
}
