//! The consume -> decode -> points -> write -> store-offset loop.
//!
//! Invariants:
//! - An offset is stored (and later committed by librdkafka's auto-commit,
//!   `enable.auto.offset.store=false`) only after every message up to it is
//!   written to InfluxDB or safely in the DLQ. Crashing anywhere re-delivers
//!   at most the uncommitted tail; points are idempotent, so nothing doubles.
//! - A write that fails for a reason that can pass (InfluxDB down, 5xx, 429,
//!   timeouts) is retried with backoff while the assigned partitions are
//!   paused: back-pressure, memory bounded by one batch plus what librdkafka
//!   had prefetched. The consumer keeps polling, so it stays in its group.
//! - A rejected batch (400/413/422) is bisected; only the messages InfluxDB
//!   refuses on their own go to the DLQ. A message that does not decode or
//!   cannot become line protocol goes to the DLQ at once. No partition ever
//!   stalls on a bad message.
//! - librdkafka refuses to store offsets of partitions no longer assigned,
//!   so a revoked partition's offsets are never committed by this process.
//!
//! Shutdown (cancel): the batch is flushed within `shutdown_timeout`, stored
//! offsets are committed synchronously, then `run` returns. What could not be
//! flushed in time stays uncommitted and is re-delivered.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message as _, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::batch::{Batch, Source};
use crate::config::IngestSettings;
use crate::consumer::IngestContext;
use crate::dlq::{Cancelled, Dlq};
use crate::points::{points, render};
use crate::retry::{Action, Backoff};
use crate::sink::InfluxSink;
use crate::telemetry;

/// How long a shutdown may spend flushing the last batch.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The running pipeline of one ingest process.
pub struct Pipeline {
    consumer: StreamConsumer<IngestContext>,
    sink: InfluxSink,
    dlq: Dlq,
    settings: IngestSettings,
    batch: Batch,
    backoff: Backoff,
    /// Messages received while paused, processed after the flush.
    held: VecDeque<OwnedMessage>,
    paused: bool,
    /// Interned topic names with their consumed-messages counter.
    topics: HashMap<String, (Arc<str>, metrics::Counter)>,
    on_tick: Box<dyn FnMut() + Send>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline over a subscribed consumer. `on_tick` is called from every
    /// turn of the loop (the systemd watchdog ping).
    pub fn new(
        consumer: StreamConsumer<IngestContext>,
        sink: InfluxSink,
        dlq: Dlq,
        settings: IngestSettings,
        on_tick: Box<dyn FnMut() + Send>,
    ) -> Self {
        let backoff = Backoff::new(settings.retry_initial_backoff, settings.retry_max_backoff);
        Pipeline {
            consumer,
            sink,
            dlq,
            settings,
            batch: Batch::default(),
            backoff,
            held: VecDeque::new(),
            paused: false,
            topics: HashMap::new(),
            on_tick,
        }
    }

    /// Runs until `cancel` fires, then flushes (bounded) and commits.
    pub async fn run(mut self, cancel: CancellationToken) {
        'outer: loop {
            (self.on_tick)();
            while let Some(m) = self.held.pop_front() {
                if self.handle(m, &cancel).await.is_err() {
                    break 'outer;
                }
            }
            if self.batch.is_full(self.settings.batch_max_lines, self.settings.batch_max_bytes) {
                if self.flush(&cancel).await.is_err() {
                    break;
                }
                continue;
            }
            let deadline = self.batch.deadline(self.settings.batch_timeout);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = sleep_until(deadline) => {
                    if self.flush(&cancel).await.is_err() {
                        break;
                    }
                }
                m = self.consumer.recv() => match m {
                    Ok(m) => {
                        let m = m.detach();
                        if self.handle(m, &cancel).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "Kafka consumer error"),
                },
            }
        }
        self.shutdown().await;
    }

    async fn shutdown(mut self) {
        let flush_cancel = CancellationToken::new();
        let timer = {
            let t = flush_cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(SHUTDOWN_TIMEOUT).await;
                t.cancel();
            })
        };
        // Messages already received but not batched are simply not stored.
        self.held.clear();
        match self.flush(&flush_cancel).await {
            Ok(()) => tracing::info!("final batch flushed"),
            Err(Cancelled) => tracing::warn!(
                timeout_s = SHUTDOWN_TIMEOUT.as_secs(),
                "final batch not written in time; it stays uncommitted and will be re-delivered"
            ),
        }
        timer.abort();
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final commit (nothing stored, or no assignment)");
        }
        tracing::info!("ingest stopped");
    }

    /// The interned name of `name`, counting one message consumed from it.
    fn consumed_from(&mut self, name: &str) -> Arc<str> {
        if !self.topics.contains_key(name) {
            self.topics.insert(name.to_owned(), (Arc::from(name), telemetry::consumed_counter(name)));
        }
        let (topic, consumed) = &self.topics[name];
        consumed.increment(1);
        topic.clone()
    }

    /// Decodes one message into the batch, or sends it to the DLQ.
    async fn handle(&mut self, m: OwnedMessage, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let source = Source { topic: self.consumed_from(m.topic()), partition: m.partition(), offset: m.offset() };
        let Some(payload) = m.payload() else {
            // A tombstone (compacted agent.registry): nothing to write.
            self.batch.push_resolved(source);
            return Ok(());
        };
        let failure = match netprobe_wire::decode(payload) {
            Err(e) => Some((e.class(), e.to_string())),
            Ok(msg) => match points(&msg) {
                Err(e) => Some(("invalid_point", e.to_string())),
                Ok(pts) => {
                    self.batch.push(source.clone(), m.key(), payload, pts.len(), |out| render(&pts, out));
                    None
                }
            },
        };
        if let Some((class, reason)) = failure {
            self.dlq.send(&source, m.key(), payload, class, &reason, cancel).await?;
            self.batch.push_resolved(source);
        }
        Ok(())
    }

    /// Writes the batch (retrying, bisecting), then stores its offsets.
    async fn flush(&mut self, cancel: &CancellationToken) -> Result<(), Cancelled> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let result = self.write_all(&batch, cancel).await;
        if result.is_ok() {
            self.store_offsets(&batch);
            if self.paused {
                self.set_paused(false);
            }
        }
        // On Cancelled the batch is dropped unstored: it will be re-delivered.
        self.batch = batch;
        self.batch.clear();
        result
    }

    async fn write_all(&mut self, batch: &Batch, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let entries = batch.entries();
        // Ranges of entries still to write; a rejected range is split in two.
        let mut pending = Vec::new();
        pending.push(0..entries.len());
        while let Some(range) = pending.pop() {
            let lines = batch.lines_of(&entries[range.clone()]);
            if lines.is_empty() {
                continue;
            }
            let line_count: usize = entries[range.clone()].iter().map(|e| e.line_count).sum();
            loop {
                let started = Instant::now();
                let outcome = self.sink.write(&lines).await;
                match outcome.action {
                    Action::Done => {
                        self.backoff.reset();
                        telemetry::batch_written(line_count, lines.len(), started.elapsed());
                        break;
                    }
                    Action::Retry(retry_after) => {
                        let delay = self.backoff.delay(retry_after);
                        telemetry::write_retry(outcome.status, &outcome.message, line_count, delay);
                        self.wait_polling(delay, cancel).await?;
                    }
                    Action::Split if range.len() == 1 => {
                        let e = &entries[range.start];
                        let reason =
                            format!("InfluxDB answered {}: {}", outcome.status.unwrap_or(0), outcome.message.trim());
                        self.dlq
                            .send(&e.source, e.key.as_deref(), &e.payload, "influx_rejected", &reason, cancel)
                            .await?;
                        break;
                    }
                    Action::Split => {
                        telemetry::batch_split(outcome.status, &outcome.message, range.len());
                        let mid = range.start + range.len() / 2;
                        pending.push(mid..range.end);
                        pending.push(range.start..mid);
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits `delay` while keeping the consumer polled (group membership,
    /// rebalances) with its partitions paused.
    async fn wait_polling(&mut self, delay: Duration, cancel: &CancellationToken) -> Result<(), Cancelled> {
        if !self.paused {
            self.set_paused(true);
        }
        let until = tokio::time::Instant::now() + delay;
        loop {
            (self.on_tick)();
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(()),
                _ = cancel.cancelled() => return Err(Cancelled),
                m = self.consumer.recv() => {
                    if let Ok(m) = m {
                        self.held.push_back(m.detach());
                        // Partitions assigned during the pause are not paused yet.
                        if self.held.len() >= self.settings.batch_max_lines {
                            self.set_paused(true);
                        }
                    }
                }
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
            Ok(()) => {
                self.paused = pause;
                tracing::info!(
                    partitions = assignment.count(),
                    paused = pause,
                    "consumption {}",
                    if pause { "paused" } else { "resumed" }
                );
            }
            Err(e) => tracing::warn!(error = %e, pause, "cannot pause/resume partitions"),
        }
    }

    fn store_offsets(&self, batch: &Batch) {
        let next = batch.next_offsets();
        let mut tpl = TopicPartitionList::with_capacity(next.len());
        for ((topic, partition), offset) in &next {
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
