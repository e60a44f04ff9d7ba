//! The consume -> decode -> points -> write -> store-offset loop.
//!
//! Invariants:
//! - An offset is stored (and later committed by librdkafka's auto-commit,
//!   `enable.auto.offset.store=false`) only after every message up to it is
//!   written to InfluxDB or safely in the DLQ. Crashing anywhere re-delivers
//!   at most the uncommitted tail; points are idempotent, so nothing doubles.
//! - Batches are written in their own tasks ([`Writer`]), up to
//!   `writes_in_flight` at once, while the next one is consumed and
//!   rendered. A write that finishes gives its writer back at once (a slow
//!   write does not hold the others up: their points are in InfluxDB and
//!   their writers take the next batches), but offsets are stored in the
//!   order the batches were started: a finished batch keeps only its
//!   offsets until every batch before it is written. At most
//!   [`OUTSTANDING_PER_WRITER`] × `writes_in_flight` batches are between
//!   start and stored offsets.
//! - Batching follows the load, not the clock: the open batch is handed to
//!   an idle writer as soon as the consumer has nothing more fetched
//!   (librdkafka's queue is drained). While every writer is busy the batch
//!   grows, up to `batch_max_lines` / `batch_max_bytes`; `batch_timeout`
//!   only caps its age when messages never stop arriving. So at low load a
//!   message waits for no timer, and under a backlog batches are large.
//! - When a batch is acknowledged, each of its messages records the time
//!   from its Kafka timestamp to now in
//!   `netprobe_ingest_delivery_latency_seconds{topic}`.
//! - A write that fails for a reason that can pass (InfluxDB down, 5xx, 429,
//!   timeouts) is retried with backoff. Once every writer is busy and the
//!   next batch is full, the loop
//!   stops receiving, so librdkafka's bounded prefetch queue fills and
//!   fetching stops: back-pressure, memory bounded by `writes_in_flight` + 1
//!   batches and the prefetch. After [`IngestSettings::pause_after`] (10 s by
//!   default) the assigned partitions are paused and the consumer is polled
//!   again (what still arrives is held), so it stays in its group.
//! - A DLQ send that keeps failing (broker down, a missing Write ACL) is
//!   retried until Kafka takes the message, never skipped; meanwhile the
//!   partitions are paused the same way and the consumer keeps polling.
//! - The loop calls `on_tick` (the systemd watchdog ping) at least every
//!   [`TICK_INTERVAL`], from a timer, whether or not anything arrives or any
//!   write finishes: the watchdog reflects the loop being alive, not data
//!   flowing (an idle topic or an InfluxDB outage is no reason to restart).
//! - A rejected batch (400/413/422) is bisected; only the messages InfluxDB
//!   refuses on their own go to the DLQ. A message that does not decode or
//!   cannot become line protocol goes to the DLQ at once. No partition ever
//!   stalls on a bad message.
//! - librdkafka refuses to store offsets of partitions no longer assigned,
//!   so a revoked partition's offsets are never committed by this process.
//!
//! Shutdown (cancel): the batches in flight and then the open one are written
//! within [`SHUTDOWN_TIMEOUT`], stored offsets are committed and the consumer
//! closed within [`crate::consumer::CLOSE_TIMEOUT`] (off the runtime's
//! workers), then `run` returns. What could not be written in time stays
//! uncommitted and is re-delivered.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message as _, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::batch::{Batch, Source};
use crate::config::IngestSettings;
use crate::consumer::IngestContext;
use crate::dlq::{Cancelled, Dlq};
use crate::points::{render_payload, RenderError};
use crate::telemetry;
use crate::writer::Writer;

/// How long a shutdown may spend writing the last batches.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the loop may stop receiving, waiting for a write, before it
/// pauses the partitions and polls again (librdkafka's `max.poll.interval.ms`
/// is 300 s by default); less when `[ingest] max_poll_interval` is short
/// ([`IngestSettings::pause_after`]). Pausing drops librdkafka's prefetch and
/// resuming costs about a second, so a write that is merely slow must not
/// trigger it.
pub const PAUSE_AFTER: Duration = Duration::from_secs(10);

/// The longest time between two `on_tick` calls while the loop runs.
/// `netprobe_service::watchdog` pings at half of `WatchdogSec`, so a ping is
/// late by at most this much.
pub const TICK_INTERVAL: Duration = Duration::from_millis(500);

/// What a write task hands back: the writer, the batch (its buffers are
/// reused) and whether it was written.
type Written = (Writer, Batch, Result<(), Cancelled>);

/// The running pipeline of one ingest process.
pub struct Pipeline {
    /// Shared with the loop's local handle, so a message borrowed from it
    /// (no copy out of librdkafka) can be handled with `&mut self`.
    consumer: Arc<StreamConsumer<IngestContext>>,
    /// Idle writers (the others are owned by write tasks).
    writers: Vec<Writer>,
    /// The batches started and whose offsets are not stored yet, oldest first.
    in_flight: VecDeque<InFlight>,
    /// A batch was not written (shutdown ran out of time): no offset is
    /// stored any more.
    failed: bool,
    /// Ends write retries; fired only when a shutdown runs out of time.
    stop_writes: CancellationToken,
    dlq: Arc<Dlq>,
    settings: IngestSettings,
    /// The batch being filled.
    batch: Batch,
    /// Empty batches whose buffers are reused.
    spares: Vec<Batch>,
    /// Messages received while paused, processed after the write.
    held: VecDeque<OwnedMessage>,
    /// Since when the loop has stopped receiving (batch full, write in flight).
    stalled_since: Option<Instant>,
    paused: bool,
    /// Interned topic names with their metric handles.
    topics: HashMap<String, TopicHandles>,
    /// The topic of the last message (messages come in runs per partition),
    /// checked before the map.
    last_topic: Option<TopicHandles>,
    on_tick: Box<dyn FnMut() + Send>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline over a subscribed consumer, writing with up to
    /// `writers.len()` batches in flight. `on_tick` is called on every turn
    /// of the loop and at least every [`TICK_INTERVAL`] (the systemd watchdog
    /// ping).
    pub fn new(
        consumer: StreamConsumer<IngestContext>,
        writers: Vec<Writer>,
        dlq: Arc<Dlq>,
        settings: IngestSettings,
        on_tick: Box<dyn FnMut() + Send>,
    ) -> Self {
        Pipeline {
            consumer: Arc::new(consumer),
            writers,
            in_flight: VecDeque::new(),
            failed: false,
            stop_writes: CancellationToken::new(),
            dlq,
            settings,
            batch: Batch::default(),
            spares: Vec::new(),
            held: VecDeque::new(),
            stalled_since: None,
            paused: false,
            topics: HashMap::new(),
            last_topic: None,
            on_tick,
        }
    }

    /// Runs until `cancel` fires, then writes what it has (bounded) and commits.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut written_so_far = Ok(());
        let mut tick = ticker();
        // The loop's own handle: a message borrowed from it does not borrow `self`.
        let consumer = Arc::clone(&self.consumer);
        'outer: loop {
            (self.on_tick)();
            while !self.is_full() {
                let Some(m) = self.held.pop_front() else { break };
                if self.handle(m, &cancel).await.is_err() {
                    break 'outer;
                }
            }
            if self.is_full() {
                if self.can_write() {
                    self.start_write();
                    continue;
                }
                self.stalled_since.get_or_insert_with(Instant::now);
            }
            let deadline = if self.can_write() { self.batch.deadline(self.settings.batch_timeout) } else { None };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                // Back to the top, which calls on_tick.
                _ = tick.tick() => {}
                (i, written) = wait_any(&mut self.in_flight) => {
                    written_so_far = self.finish_write(i, written);
                    if written_so_far.is_err() {
                        break;
                    }
                }
                _ = sleep_until(deadline) => self.start_write(),
                _ = sleep_until(self.stalled_since.map(|t| t + self.settings.pause_after())), if !self.paused => self.set_paused(true),
                m = consumer.recv(), if self.paused || !self.is_full() => match m {
                    Ok(m) if self.is_full() => self.hold(m.detach()),
                    Ok(m) => {
                        let failed = self.take(&m);
                        drop(m);
                        if self.resolve(failed, &cancel).await.is_err() || self.drain(&cancel).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "Kafka consumer error"),
                },
                // Batching by load: nothing more is fetched right now and a
                // writer is idle, so the batch goes now; it grows only while
                // every writer is busy (the size and age bounds above stay
                // as caps).
                _ = std::future::ready(()), if !self.batch.is_empty() && self.can_write() => self.start_write(),
            }
        }
        drop(consumer);
        self.shutdown(written_so_far).await;
    }

    /// Writes the batches in flight and the open one, unless a batch before
    /// them was not written (`result`): offsets are never stored past it.
    async fn shutdown(mut self, mut result: Result<(), Cancelled>) {
        let timer = {
            let stop = self.stop_writes.clone();
            tokio::spawn(async move {
                tokio::time::sleep(SHUTDOWN_TIMEOUT).await;
                stop.cancel();
            })
        };
        // Messages received but not batched are simply not stored.
        self.held.clear();
        loop {
            if result.is_ok() && !self.batch.is_empty() && self.can_write() {
                self.start_write();
            }
            if !self.in_flight.iter().any(|b| matches!(b, InFlight::Writing(_))) {
                break;
            }
            let (i, written) = wait_any(&mut self.in_flight).await;
            // After an unwritten batch, later ones do not store offsets
            // (`failed`), whatever they return.
            let r = self.finish_write(i, written);
            if result.is_ok() {
                result = r;
            }
        }
        match result {
            Ok(()) => tracing::info!("last batches written"),
            Err(Cancelled) => tracing::warn!(
                timeout_s = SHUTDOWN_TIMEOUT.as_secs(),
                "last batch not written in time; it stays uncommitted and will be re-delivered"
            ),
        }
        timer.abort();
        crate::consumer::commit_and_close(self.consumer, crate::consumer::CLOSE_TIMEOUT).await;
        tracing::info!("ingest stopped");
    }

    fn is_full(&self) -> bool {
        self.batch.is_full(self.settings.batch_max_lines, self.settings.batch_max_bytes)
    }

    /// Whether a write can start: a writer is idle and fewer than
    /// [`OUTSTANDING_PER_WRITER`] × `writes_in_flight` batches wait for
    /// their offsets to be stored.
    fn can_write(&self) -> bool {
        !self.writers.is_empty()
            && self.in_flight.len() < OUTSTANDING_PER_WRITER * self.settings.writes_in_flight.max(1)
    }

    /// Hands the open batch to a write task. Only called with a writer idle.
    fn start_write(&mut self) {
        let Some(mut writer) = self.writers.pop() else {
            return tracing::error!("a write started with every writer busy");
        };
        let batch = std::mem::replace(&mut self.batch, self.spares.pop().unwrap_or_default());
        let stop = self.stop_writes.clone();
        self.in_flight.push_back(InFlight::Writing(tokio::spawn(async move {
            let result = writer.write(&batch, &stop).await;
            (writer, batch, result)
        })));
    }

    /// Takes back what the write task of `in_flight[i]` returned: its writer
    /// is idle again, its messages' delivery latency is recorded (their
    /// points are in InfluxDB), its buffers are reused; its offsets are
    /// kept until every batch started before it is done, then stored in
    /// order. `Err` once a batch was not written (nothing after it is
    /// stored).
    fn finish_write(&mut self, i: usize, (writer, mut batch, result): Written) -> Result<(), Cancelled> {
        self.writers.push(writer);
        self.stalled_since = None;
        if result.is_ok() {
            self.record_delivery(&batch);
            if self.paused {
                self.set_paused(false);
            }
        }
        let next = batch.next_offsets();
        batch.clear();
        self.spares.push(batch);
        self.in_flight[i] = InFlight::Done { next, result };
        while let Some(InFlight::Done { .. }) = self.in_flight.front() {
            let Some(InFlight::Done { next, result }) = self.in_flight.pop_front() else { unreachable!("matched") };
            if result.is_err() {
                self.failed = true;
            }
            if self.failed {
                return Err(Cancelled);
            }
            self.store_offsets(&next);
        }
        if self.failed {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Keeps a message that arrived while paused: prefetched before the
    /// pause, or from a partition assigned since (which is paused now).
    fn hold(&mut self, m: OwnedMessage) {
        self.held.push_back(m);
        self.set_paused(true);
    }

    /// The interned name of `name`, counting one message consumed from it.
    fn consumed_from(&mut self, name: &str) -> Arc<str> {
        match &self.last_topic {
            Some(last) if &*last.name == name => {}
            _ => {
                let handles = self.topics.entry(name.to_owned()).or_insert_with(|| TopicHandles::new(name)).clone();
                self.last_topic = Some(handles);
            }
        }
        let Some(last) = &self.last_topic else { unreachable!("set above") };
        last.consumed.increment(1);
        last.name.clone()
    }

    /// Records the delivery latency of every message of `batch` that
    /// rendered to points: Kafka timestamp -> now (its write acknowledged).
    fn record_delivery(&mut self, batch: &Batch) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // Entries come in runs of one partition: look the topic up per run.
        let mut current: Option<&TopicHandles> = None;
        for e in batch.entries() {
            let Some(ts_ms) = e.kafka_ts_ms.filter(|_| e.line_count > 0) else { continue };
            let handles = match current {
                Some(h) if Arc::ptr_eq(&h.name, &e.source.topic) => h,
                _ => match self.topics.get(&*e.source.topic) {
                    Some(h) => {
                        current = Some(h);
                        h
                    }
                    None => continue,
                },
            };
            // A producer clock ahead of ours counts as 0, not negative.
            handles.delivery_latency.record((now_ms - ts_ms).max(0) as f64 / 1e3);
        }
    }

    /// Decodes one message into the batch, or sends it to the DLQ.
    async fn handle(&mut self, m: OwnedMessage, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let failed = self.take(&m);
        self.resolve(failed, cancel).await
    }

    /// Renders `m`'s points (borrowed from librdkafka, never copied: the
    /// batch keeps its position, [`crate::refetch`]) straight into the batch
    /// with [`crate::points::render_payload`]. When it
    /// cannot be written, returns a copy of it with the error class and
    /// reason, for [`Pipeline::resolve`].
    fn take<M: rdkafka::Message>(&mut self, m: &M) -> Option<Failed> {
        let source = Source { topic: self.consumed_from(m.topic()), partition: m.partition(), offset: m.offset() };
        let Some(payload) = m.payload() else {
            // A tombstone (compacted agent.registry): nothing to write.
            self.batch.push_resolved(source);
            return None;
        };
        let source_again = source.clone();
        let kafka_ts_ms = m.timestamp().to_millis();
        let (class, reason) = match self.batch.try_push(source, kafka_ts_ms, |out| render_payload(payload, out)) {
            Ok(()) => return None,
            Err(RenderError::Decode(e)) => (e.class(), e.to_string()),
            Err(e @ RenderError::Point(_)) => ("invalid_point", e.to_string()),
        };
        Some(Failed { source: source_again, message: to_owned(m), class, reason })
    }

    /// Sends a message [`Pipeline::take`] could not write to the DLQ, then
    /// marks it resolved in the batch (its offset is stored in order).
    async fn resolve(&mut self, failed: Option<Failed>, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let Some(Failed { source, message: m, class, reason }) = failed else { return Ok(()) };
        self.send_to_dlq(&source, m.key(), m.payload().unwrap_or_default(), class, &reason, cancel).await?;
        self.batch.push_resolved(source);
        Ok(())
    }

    /// Takes the messages librdkafka has already fetched, without waiting
    /// and without a turn of the loop's `select!` (timers, ticks) for each,
    /// until none is ready, the batch is full or [`DRAIN_MAX`] were taken.
    async fn drain(&mut self, cancel: &CancellationToken) -> Result<(), Cancelled> {
        for _ in 0..DRAIN_MAX {
            if self.is_full() {
                break;
            }
            let consumer = Arc::clone(&self.consumer);
            let failed = match poll_once(consumer.recv()) {
                None => break,
                Some(Ok(m)) => self.take(&m),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Kafka consumer error");
                    break;
                }
            };
            self.resolve(failed, cancel).await?;
        }
        Ok(())
    }

    /// Sends one message to the DLQ (retried until Kafka takes it) while
    /// the loop stays alive: `on_tick` keeps being called, and once the send
    /// has taken [`IngestSettings::pause_after`] the partitions are paused
    /// and the consumer is polled (what arrives is held), so a DLQ that
    /// refuses for hours (a missing ACL) costs neither the watchdog nor the
    /// group membership. Resumes afterwards unless a write stalls too.
    async fn send_to_dlq(
        &mut self,
        source: &Source,
        key: Option<&[u8]>,
        payload: &[u8],
        class: &str,
        reason: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let dlq = self.dlq.clone();
        let send = dlq.send(source, key, payload, class, reason, cancel);
        tokio::pin!(send);
        let started = Instant::now();
        let mut tick = ticker();
        let mut paused_here = false;
        loop {
            tokio::select! {
                biased;
                sent = &mut send => {
                    if paused_here && self.paused && self.stalled_since.is_none() {
                        self.set_paused(false);
                    }
                    return sent;
                }
                _ = tick.tick() => {
                    (self.on_tick)();
                    if !self.paused && started.elapsed() >= self.settings.pause_after() {
                        self.set_paused(true);
                        paused_here = true;
                    }
                }
                m = self.consumer.recv(), if self.paused => match m {
                    Ok(m) => self.held.push_back(m.detach()),
                    Err(e) => tracing::warn!(error = %e, "Kafka consumer error"),
                },
            }
        }
    }

    fn set_paused(&mut self, pause: bool) {
        let assignment = match self.consumer.assignment() {
            Ok(a) => a,
            Err(e) => return tracing::warn!(error = %e, "cannot read the assignment"),
        };
        let result = if pause { self.consumer.pause(&assignment) } else { self.consumer.resume(&assignment) };
        match result {
            Ok(()) if self.paused == pause => {}
            Ok(()) => {
                self.paused = pause;
                telemetry::consumption_paused(pause, assignment.count());
            }
            Err(e) => tracing::warn!(error = %e, pause, "cannot pause/resume partitions"),
        }
    }

    fn store_offsets(&self, next: &NextOffsets) {
        let mut tpl = TopicPartitionList::with_capacity(next.len());
        for ((topic, partition), offset) in next {
            if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
                tracing::warn!(error = %e, %topic, partition, "bad offset");
            }
        }
        match self.consumer.store_offsets(&tpl) {
            Ok(()) => telemetry::offsets_stored(next.len()),
            // Partitions revoked since their messages were consumed: the new
            // owner re-reads them; storing here would be wrong anyway.
            Err(e) => tracing::info!(error = %e, "offsets not stored (partitions revoked?)"),
        }
    }
}

/// Most messages [`Pipeline::drain`] takes in one go, so the watchdog tick
/// and finished writes are looked at between runs.
const DRAIN_MAX: usize = 10_000;

/// `fut`'s output if it is ready on the first poll; `None` (and `fut`
/// dropped) otherwise.
fn poll_once<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// A message that cannot be written, on its way to the DLQ.
struct Failed {
    source: Source,
    /// A copy: the borrowed original is released before the DLQ send.
    message: OwnedMessage,
    class: &'static str,
    reason: String,
}

/// A copy of `m` with what the DLQ sends (key, payload, position).
fn to_owned<M: rdkafka::Message>(m: &M) -> OwnedMessage {
    OwnedMessage::new(
        m.payload().map(<[u8]>::to_vec),
        m.key().map(<[u8]>::to_vec),
        m.topic().to_owned(),
        m.timestamp(),
        m.partition(),
        m.offset(),
        None,
    )
}

/// An interned topic name with the metric handles of its messages.
#[derive(Clone)]
struct TopicHandles {
    name: Arc<str>,
    consumed: metrics::Counter,
    delivery_latency: metrics::Histogram,
}

impl TopicHandles {
    fn new(name: &str) -> Self {
        TopicHandles {
            name: Arc::from(name),
            consumed: telemetry::consumed_counter(name),
            delivery_latency: telemetry::delivery_latency(name),
        }
    }
}

/// Per partition, the offset to store once a batch and all before it are written.
type NextOffsets = std::collections::BTreeMap<(Arc<str>, i32), i64>;

/// Batches between start and stored offsets, per writer: finished batches
/// wait (as offsets only) behind a slow one at most this deep.
pub const OUTSTANDING_PER_WRITER: usize = 4;

/// A started batch: being written, or written and waiting for the batches
/// before it (only its offsets kept).
enum InFlight {
    Writing(JoinHandle<Written>),
    Done { next: NextOffsets, result: Result<(), Cancelled> },
}

/// The first write to finish, with its index in `in_flight`; pending
/// forever when none is being written.
async fn wait_any(in_flight: &mut VecDeque<InFlight>) -> (usize, Written) {
    std::future::poll_fn(|cx| {
        for (i, slot) in in_flight.iter_mut().enumerate() {
            if let InFlight::Writing(handle) = slot {
                if let std::task::Poll::Ready(joined) = std::future::Future::poll(std::pin::Pin::new(handle), cx) {
                    return std::task::Poll::Ready(match joined {
                        Ok(written) => (i, written),
                        // The task only ends early by panicking: a bug, surfaced as one.
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    });
                }
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// A timer firing every [`TICK_INTERVAL`]; missed ticks are not caught up.
fn ticker() -> tokio::time::Interval {
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
