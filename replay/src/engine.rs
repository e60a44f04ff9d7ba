//! The replay loop: plan the partitions ([`crate::plan`]), `assign()` them
//! at their start offsets (no consumer group, nothing committed, so the live
//! ingest is not disturbed), then read -> decode -> filter -> points ->
//! batch -> write until every partition reached its stop offset.
//!
//! Invariants:
//! - Decoding and points are ingest's (`netprobe_wire::decode`,
//!   `netprobe_ingest::points`): a replayed message lands exactly as ingest
//!   would have written it, on the same series and timestamp, so it
//!   overwrites itself.
//! - A malformed message (does not decode, cannot become points) is counted
//!   and listed, never stops the replay. For `ingest.dlq` the original
//!   payload is decoded again and its DLQ headers name where it came from.
//! - Up to `writes_in_flight` batches are written at once. When one is
//!   given up on (see [`crate::write`]), or Kafka delivers nothing for
//!   `kafka_stall_timeout`, or SIGINT/SIGTERM arrives, the replay stops and
//!   the [`Failure`] carries a `--start` from which every message not known
//!   to be written is read again: the earliest message timestamp among the
//!   unwritten batches and, per unfinished partition, the Kafka timestamp of
//!   the last message read minus the late grace (never before `--start`).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use netprobe_ingest::batch::{Batch, Source};
use netprobe_ingest::dlq::headers;
use netprobe_ingest::points::{points, render};
use netprobe_ingest::retry::Backoff;
use netprobe_ingest::sink::InfluxSink;
use netprobe_wire::Topic;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message as _, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;

use crate::cli::{Output, Request};
use crate::config::Config;
use crate::plan::{plan, PartitionPlan};
use crate::progress::{Progress, ProgressMode};
use crate::summary::{Failure, Problem, Stats, Summary, LISTED_PROBLEMS};
use crate::write::{write_influx, write_lines, WriteFailure, WriteReport};
use crate::Error;

/// The `group.id` librdkafka needs for `assign()`; never joined, nothing committed.
pub const REPLAY_GROUP_ID: &str = "netprobe-replay-unjoined";

/// A batch with the earliest message timestamp in it (for the resume hint).
#[derive(Debug, Default)]
struct Pending {
    batch: Batch,
    min_ts: Option<DateTime<Utc>>,
}

type Written = (Pending, Backoff, Result<WriteReport, WriteFailure>);

/// Where the points go while running.
enum Sink {
    Influx(InfluxSink),
    Lines(Box<dyn Write + Send>),
    DryRun,
}

/// Runs one replay of `request` with `config` (read from `config_path`,
/// named in errors) until its range is done or it fails part-way.
///
/// # Errors
/// [`Error`] when the replay cannot start (bad settings, unknown topic,
/// Kafka unreachable while planning). A replay that started and then failed
/// returns `Ok` with [`Summary::failure`] set.
pub async fn run(
    config: Config,
    config_path: &Path,
    request: Request,
    progress: ProgressMode,
) -> Result<Summary, Error> {
    let started = Instant::now();
    let settings = config.replay.clone();
    let sink = match &request.output {
        Output::Influx { bucket } => {
            let mut influx = config.influx(config_path)?.clone();
            if let Some(b) = bucket {
                influx.bucket = b.clone();
            }
            let token = influx.token()?;
            tracing::info!(url = %influx.url, bucket = %influx.bucket, "writing to InfluxDB");
            Sink::Influx(InfluxSink::new(&influx, &token, settings.write_timeout)?)
        }
        Output::LineProtocol(Some(path)) => {
            let file = std::fs::File::create(path).map_err(|source| Error::Output { path: path.clone(), source })?;
            Sink::Lines(Box::new(std::io::BufWriter::with_capacity(1 << 20, file)))
        }
        Output::LineProtocol(None) => {
            Sink::Lines(Box::new(std::io::BufWriter::with_capacity(1 << 20, std::io::stdout())))
        }
        Output::DryRun => Sink::DryRun,
    };
    let consumer: StreamConsumer<ReplayContext> = config
        .kafka
        .client_config()?
        // librdkafka's assign() needs a group id. It is never joined or
        // committed to; librdkafka still looks up its coordinator, which the
        // replay principal may not (no group ACL): see ReplayContext.
        .set("group.id", REPLAY_GROUP_ID)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        // The same prefetch bounds as ingest: they keep memory flat.
        .set("queued.max.messages.kbytes", "512")
        .set("max.partition.fetch.bytes", "262144")
        .set("fetch.queue.backoff.ms", "10")
        .create_with_context(ReplayContext)
        .map_err(|source| Error::Kafka { context: "create consumer".into(), source })?;
    let prefix = config.kafka.topic_prefix.clone();
    let topics: Vec<(String, Topic)> = request.topics.iter().map(|t| (t.name(&prefix), *t)).collect();
    let filter = request.filter.clone();
    let plans = tokio::task::block_in_place(|| plan(&consumer, &topics, filter.start, filter.end, request.late_grace))?;
    let plans = Arc::new(plans);
    let total: i64 = plans.iter().map(PartitionPlan::total).sum();
    let open = plans.iter().filter(|p| !p.done.load(Ordering::Relaxed)).count();
    tracing::info!(
        start = %crate::summary::rfc3339(filter.start),
        end = %crate::summary::rfc3339(filter.end),
        partitions = plans.len(),
        partitions_in_range = open,
        messages_to_scan = total,
        "replay planned"
    );
    let mut tpl = TopicPartitionList::new();
    for p in plans.iter().filter(|p| !p.done.load(Ordering::Relaxed)) {
        tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.start))
            .map_err(|source| Error::Kafka { context: format!("assign {}[{}]", p.topic, p.partition), source })?;
    }
    if tpl.count() > 0 {
        consumer.assign(&tpl).map_err(|source| Error::Kafka { context: "assign partitions".into(), source })?;
    }
    let stats = Arc::new(Stats::default());
    let reporter = Progress::start(progress, stats.clone(), plans.clone());
    let mut replay = Replay {
        consumer,
        plans: plans.clone(),
        index: index(&plans),
        open,
        stats: stats.clone(),
        filter,
        late_grace: request.late_grace,
        settings,
        sink,
        batch: Pending::default(),
        backoffs: Vec::new(),
        in_flight: VecDeque::new(),
        failed_min_ts: None,
        malformed: Vec::new(),
        refused: Arc::new(Mutex::new(Vec::new())),
        matched_points: 0,
        rate: request.max_rate.map(|r| (Instant::now(), 0u64, f64::from(r.get()))),
        last_message: Instant::now(),
        topic_names: HashMap::new(),
    };
    for _ in 0..replay.settings.writes_in_flight {
        replay.backoffs.push(Backoff::new(replay.settings.retry_initial_backoff, replay.settings.retry_max_backoff));
    }
    let failure = replay.run_loop().await;
    reporter.finish();
    let end = replay.filter.end;
    let refused = replay.refused.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(Summary {
        counts: stats.snapshot(),
        malformed: replay.malformed,
        refused,
        elapsed: started.elapsed(),
        dry_run: matches!(replay.sink, Sink::DryRun),
        matched_points: replay.matched_points,
        end,
        failure,
    })
}

/// Full topic name -> partition id -> index in the plans.
fn index(plans: &[PartitionPlan]) -> HashMap<Arc<str>, Vec<Option<usize>>> {
    let mut index: HashMap<Arc<str>, Vec<Option<usize>>> = HashMap::new();
    for (i, p) in plans.iter().enumerate() {
        let slots = index.entry(p.topic.clone()).or_default();
        let at = p.partition.max(0) as usize;
        if slots.len() <= at {
            slots.resize(at + 1, None);
        }
        slots[at] = Some(i);
    }
    index
}

struct Replay {
    consumer: StreamConsumer<ReplayContext>,
    plans: Arc<Vec<PartitionPlan>>,
    index: HashMap<Arc<str>, Vec<Option<usize>>>,
    /// Partitions not done.
    open: usize,
    stats: Arc<Stats>,
    filter: crate::filter::Filter,
    late_grace: Duration,
    settings: crate::config::ReplaySettings,
    sink: Sink,
    batch: Pending,
    /// Backoff states of idle writers (one per write that may be in flight).
    backoffs: Vec<Backoff>,
    /// Writes in flight, oldest first, with their batch's earliest timestamp.
    in_flight: VecDeque<(Option<DateTime<Utc>>, JoinHandle<Written>)>,
    /// Earliest timestamp of a batch whose write failed.
    failed_min_ts: Option<DateTime<Utc>>,
    malformed: Vec<Problem>,
    refused: Arc<Mutex<Vec<Problem>>>,
    matched_points: u64,
    /// Pacing of `--max-rate`: since when, how many, per second.
    rate: Option<(Instant, u64, f64)>,
    last_message: Instant,
    topic_names: HashMap<String, Arc<str>>,
}

impl Replay {
    fn is_full(&self) -> bool {
        self.batch.batch.is_full(self.settings.batch_max_lines, self.settings.batch_max_bytes)
    }

    /// Reads until every partition is done; returns why it stopped early.
    async fn run_loop(&mut self) -> Option<Failure> {
        let stop = shutdown_signal();
        tokio::pin!(stop);
        let cause: Option<String> = loop {
            if self.open == 0 {
                break None;
            }
            if self.is_full() && !self.backoffs.is_empty() {
                if let Err(cause) = self.start_write() {
                    break Some(cause);
                }
                continue;
            }
            let deadline =
                if self.backoffs.is_empty() { None } else { self.batch.batch.deadline(self.settings.batch_timeout) };
            let stall = self.last_message + self.settings.kafka_stall_timeout;
            tokio::select! {
                biased;
                _ = &mut stop => break Some("interrupted by a signal".into()),
                written = wait(&mut self.in_flight), if !self.in_flight.is_empty() => {
                    if let Err(cause) = self.finish_write(written) {
                        break Some(cause);
                    }
                }
                _ = sleep_until(deadline) => {
                    if let Err(cause) = self.start_write() {
                        break Some(cause);
                    }
                }
                _ = tokio::time::sleep_until(stall.into()) => {
                    break Some(format!(
                        "no message from Kafka for {} s with {} partitions unfinished",
                        self.settings.kafka_stall_timeout.as_secs(),
                        self.open
                    ));
                }
                m = self.consumer.recv(), if !self.is_full() => match m {
                    Ok(m) => {
                        let m = m.detach();
                        self.handle(&m).await
                    }
                    Err(e) if is_group_denied(&e) => tracing::debug!(error = %e, "group coordinator (not used)"),
                    Err(e) => tracing::warn!(error = %e, "Kafka consumer error"),
                },
            }
        };
        // Done reading (or failed): write what is left, unless failed.
        let cause = match cause {
            Some(c) => Some(c),
            None => self.drain().await,
        };
        let cause = cause?;
        Some(self.failure(cause))
    }

    /// Writes the open batch and waits for every write in flight.
    async fn drain(&mut self) -> Option<String> {
        loop {
            if !self.batch.batch.is_empty() && !self.backoffs.is_empty() {
                if let Err(cause) = self.start_write() {
                    return Some(cause);
                }
            }
            if self.in_flight.is_empty() {
                break;
            }
            let written = wait(&mut self.in_flight).await;
            if let Err(cause) = self.finish_write(written) {
                return Some(cause);
            }
        }
        if let Sink::Lines(out) = &mut self.sink {
            if let Err(e) = out.flush() {
                return Some(format!("line protocol output: {e}"));
            }
        }
        None
    }

    /// The failure with its resume point: every batch not known written
    /// (the one that failed was already folded in), every partition unfinished.
    fn failure(&mut self, cause: String) -> Failure {
        let mut resume = self.filter.end;
        let mut fold = |t: Option<DateTime<Utc>>| {
            if let Some(t) = t {
                resume = resume.min(t);
            }
        };
        fold(self.failed_min_ts.take());
        fold(self.batch.min_ts);
        for (min_ts, handle) in self.in_flight.drain(..) {
            // Whether it got written or not is unknown: count it unwritten.
            handle.abort();
            fold(min_ts);
        }
        let grace = chrono::Duration::from_std(self.late_grace).unwrap_or_default();
        for p in self.plans.iter().filter(|p| !p.done.load(Ordering::Relaxed)) {
            let last = p.last_kafka_ms.load(Ordering::Relaxed);
            if last == i64::MIN {
                fold(Some(self.filter.start));
            } else {
                fold(DateTime::from_timestamp_millis(last).map(|t| t - grace));
            }
        }
        let floored = resume.duration_trunc(chrono::Duration::seconds(1)).unwrap_or(resume);
        let resume_from = floored.max(self.filter.start);
        Failure { cause, resume_from }
    }

    /// Hands the open batch to a write (a task for InfluxDB; in place for
    /// line protocol; nothing for a dry run).
    fn start_write(&mut self) -> Result<(), String> {
        if self.batch.batch.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.batch);
        match &mut self.sink {
            Sink::DryRun => Ok(()),
            Sink::Lines(out) => match write_lines(out.as_mut(), &pending.batch) {
                Ok(report) => {
                    self.count_written(report);
                    Ok(())
                }
                Err(e) => {
                    self.failed_min_ts = pending.min_ts;
                    Err(format!("line protocol output: {e}"))
                }
            },
            Sink::Influx(sink) => {
                let Some(mut backoff) = self.backoffs.pop() else {
                    self.batch = pending;
                    return Ok(());
                };
                let sink = sink.clone();
                let give_up = self.settings.retry_give_up_after;
                let min_ts = pending.min_ts;
                self.in_flight.push_back((
                    min_ts,
                    tokio::spawn(async move {
                        let result = write_influx(&sink, &mut backoff, give_up, &pending.batch).await;
                        (pending, backoff, result)
                    }),
                ));
                Ok(())
            }
        }
    }

    fn finish_write(&mut self, (pending, backoff, result): Written) -> Result<(), String> {
        self.backoffs.push(backoff);
        match result {
            Ok(report) => {
                self.count_written(report);
                Ok(())
            }
            Err(WriteFailure { cause }) => {
                self.failed_min_ts = pending.min_ts;
                Err(cause)
            }
        }
    }

    fn count_written(&mut self, report: WriteReport) {
        self.stats.written.fetch_add(report.messages, Ordering::Relaxed);
        self.stats.points.fetch_add(report.points, Ordering::Relaxed);
        if !report.refused.is_empty() {
            self.stats.refused.fetch_add(report.refused.len() as u64, Ordering::Relaxed);
            if let Ok(mut list) = self.refused.lock() {
                let room = LISTED_PROBLEMS.saturating_sub(list.len());
                list.extend(report.refused.into_iter().take(room));
            }
        }
    }

    fn mark_done(&mut self, i: usize) {
        let p = &self.plans[i];
        if p.done.swap(true, Ordering::Relaxed) {
            return;
        }
        self.open -= 1;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&p.topic, p.partition);
        // Stop fetching past the stop offset; what is prefetched is dropped.
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::debug!(error = %e, topic = %p.topic, partition = p.partition, "pause");
        }
        tracing::debug!(topic = %p.topic, partition = p.partition, stop = p.stop, "partition done");
    }

    fn interned(&mut self, name: &str) -> Arc<str> {
        if let Some(t) = self.topic_names.get(name) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(name);
        self.topic_names.insert(name.to_owned(), t.clone());
        t
    }

    /// One message: count it, decode, filter, batch.
    async fn handle(&mut self, m: &OwnedMessage) {
        self.last_message = Instant::now();
        let slot = self.index.get(m.topic()).and_then(|v| v.get(m.partition().max(0) as usize).copied().flatten());
        let Some(i) = slot else { return };
        let (stop, done) = (self.plans[i].stop, self.plans[i].done.load(Ordering::Relaxed));
        let offset = m.offset();
        if done {
            return;
        }
        if offset >= stop {
            self.mark_done(i);
            return;
        }
        let p = &self.plans[i];
        p.position.store(offset + 1, Ordering::Relaxed);
        if let Some(ms) = m.timestamp().to_millis() {
            p.last_kafka_ms.store(ms, Ordering::Relaxed);
        }
        let is_dlq = p.kind == Topic::Dlq;
        self.stats.scanned.fetch_add(1, Ordering::Relaxed);
        if offset + 1 >= stop {
            self.mark_done(i);
        }
        // A tombstone (compacted agent.registry): nothing to write.
        let Some(payload) = m.payload() else { return };
        let source = Source { topic: self.interned(m.topic()), partition: m.partition(), offset };
        let msg = match netprobe_wire::decode(payload) {
            Ok(msg) => msg,
            Err(e) => return self.malformed(&source, m, is_dlq, e.class(), e.to_string()),
        };
        if !self.filter.matches(&msg) {
            return;
        }
        let pts = match points(&msg) {
            Ok(pts) => pts,
            Err(e) => return self.malformed(&source, m, is_dlq, "invalid_point", e.to_string()),
        };
        self.stats.matched.fetch_add(1, Ordering::Relaxed);
        self.matched_points += pts.len() as u64;
        self.pace().await;
        if matches!(self.sink, Sink::DryRun) {
            return;
        }
        let ts = msg.timestamp.0;
        self.batch.min_ts = Some(self.batch.min_ts.map_or(ts, |t| t.min(ts)));
        self.batch.batch.push(source, None, pts.len(), |out| render(&pts, out));
    }

    /// Sleeps as long as `--max-rate` asks.
    async fn pace(&mut self) {
        let Some((since, count, per_s)) = &mut self.rate else { return };
        let due = *since + Duration::from_secs_f64(*count as f64 / *per_s);
        *count += 1;
        if due > Instant::now() + Duration::from_millis(2) {
            tokio::time::sleep_until(due.into()).await;
        }
    }

    fn malformed(&mut self, source: &Source, m: &OwnedMessage, is_dlq: bool, class: &str, reason: String) {
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        let origin = if is_dlq { dlq_origin(m) } else { None };
        tracing::warn!(%source, origin, class, reason, "malformed message; not written");
        if self.malformed.len() < LISTED_PROBLEMS {
            self.malformed.push(Problem { source: source.to_string(), origin, class: class.into(), reason });
        }
    }
}

/// The consumer's librdkafka callbacks: errors logged, except the refused
/// coordinator lookup of the never-joined [`REPLAY_GROUP_ID`] (the replay
/// principal has no group ACL, on purpose).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayContext;

impl rdkafka::ClientContext for ReplayContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if is_group_denied(&error) {
            tracing::debug!(%error, reason, "group coordinator lookup refused (not used)");
        } else {
            tracing::warn!(%error, reason, "librdkafka error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReplayContext {}

fn is_group_denied(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed)
}

/// `topic[partition]@offset` from a DLQ message's headers, when present.
fn dlq_origin(m: &OwnedMessage) -> Option<String> {
    let h = m.headers()?;
    let get = |key: &str| {
        h.iter().find(|x| x.key == key).and_then(|x| x.value).map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let topic = get(headers::SOURCE_TOPIC)?;
    let partition = get(headers::SOURCE_PARTITION).unwrap_or_else(|| "?".into());
    let offset = get(headers::SOURCE_OFFSET).unwrap_or_else(|| "?".into());
    let class = get(headers::ERROR_CLASS).map(|c| format!(", first as {c}")).unwrap_or_default();
    Some(format!("{topic}[{partition}]@{offset}{class}"))
}

/// The result of the oldest write in flight (cancel-safe).
async fn wait(in_flight: &mut VecDeque<(Option<DateTime<Utc>>, JoinHandle<Written>)>) -> Written {
    let Some((_, handle)) = in_flight.front_mut() else { return std::future::pending().await };
    let joined = handle.await;
    in_flight.pop_front();
    match joined {
        Ok(written) => written,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
