//! Runs every target on its own interval and hands each result to a sink.
//!
//! One clock task keeps every target's next slot in a timetable
//! (`timetable.rs`) and spawns a task per run only when a slot is due, so
//! an idle target costs a few hundred bytes, not a task (10,000 targets:
//! scripts/bench agent).
//! It wakes at most every `CLOCK_SLACK` under load, starting every slot
//! due by then.
//!
//! - Each target starts at a random phase within its first interval, so a
//!   thousand targets with the same interval do not fire together.
//! - Runs of one target never overlap: a slot that comes while the
//!   previous run is still going is skipped (counted in
//!   `netprobe_agent_skipped_runs_total`), never stacked.
//! - At most [`Limits`] runs of one probe type are in flight at once.
//! - Each run is bounded by the target's run deadline plus one second; a
//!   run abandoned there is still published, as the probe type's
//!   `abandoned` result (error class `timeout`). Self-bounded probe types
//!   (ICMP) keep their deadline themselves, without a timer per run.
//! - [`Scheduler::apply`] replaces the target set (SIGHUP): new targets
//!   start, removed ones stop after their in-flight run is published,
//!   unchanged ones keep their schedule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netprobe_wire::{Message, ProbeId, ProbeType, Timestamp};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::probe::{Context, Target};
use crate::run_counters::RunCounters;
use crate::timetable::Timetable;

/// Concurrent runs allowed per probe type; by default each registered
/// type's [`Probe::CONCURRENCY`](crate::probe::Probe::CONCURRENCY).
#[derive(Clone, Debug)]
pub struct Limits(HashMap<ProbeType, usize>);

impl Default for Limits {
    fn default() -> Self {
        Limits(crate::config::PROBE_TYPES.iter().map(|t| (t.probe_type, t.concurrency)).collect())
    }
}

/// Slots due this close after the clock wakes start in the same wake-up:
/// the clock wakes at most 50 times a second however many targets it
/// runs, and no run starts more than this early. Each wake-up of the
/// runtime (epoll, timers, the tasks it wakes) cost the agent more than
/// the runs it started: at 1,000 runs/s, 20 ms instead of 5 ms took
/// `scripts/bench agent` from ~45 to ~30 µs per probe (docs/agent.md).
const CLOCK_SLACK: Duration = Duration::from_millis(20);

/// Grace added to a target's run deadline before a run is abandoned.
const RUN_GRACE: Duration = Duration::from_secs(1);

/// The running target set.
#[derive(Debug)]
pub struct Scheduler {
    /// To the clock task; `None` once stopped.
    clock: Option<mpsc::UnboundedSender<Command>>,
    /// Label -> running targets with their clock ids (for reload diffs).
    running: HashMap<String, Vec<(Target, u64)>>,
    next_id: u64,
}

/// A change of the target set, for the clock task.
#[derive(Debug)]
enum Command {
    Start(u64, Target),
    Stop(u64),
}

#[derive(Debug)]
struct Shared {
    ctx: Context,
    probe_id: ProbeId,
    location: String,
    sink: mpsc::Sender<Message>,
    stats: Arc<RunCounters>,
    permits: HashMap<ProbeType, Arc<Semaphore>>,
    /// Per probe type, looked up once rather than per run.
    counters: HashMap<ProbeType, TypeCounters>,
}

/// `netprobe_agent_runs_total` and `netprobe_agent_failures_total` of one probe type.
#[derive(Debug)]
struct TypeCounters {
    runs: metrics::Counter,
    failures: metrics::Counter,
}

impl TypeCounters {
    fn new(t: ProbeType) -> Self {
        TypeCounters {
            runs: metrics::counter!("netprobe_agent_runs_total", "probe_type" => t.as_str()),
            failures: metrics::counter!("netprobe_agent_failures_total", "probe_type" => t.as_str()),
        }
    }
}

impl Scheduler {
    /// A scheduler with no targets; results go to `sink` as wire messages
    /// stamped with `probe_id` and `location`.
    pub fn new(
        probe_id: ProbeId,
        location: String,
        sink: mpsc::Sender<Message>,
        stats: Arc<RunCounters>,
        limits: Limits,
    ) -> Self {
        let counters = limits.0.keys().map(|&t| (t, TypeCounters::new(t))).collect();
        let permits = limits.0.into_iter().map(|(t, n)| (t, Arc::new(Semaphore::new(n.max(1))))).collect();
        let shared = Arc::new(Shared { ctx: Context::default(), probe_id, location, sink, stats, permits, counters });
        let (clock, commands) = mpsc::unbounded_channel();
        tokio::spawn(clock_loop(shared, commands));
        Scheduler { clock: Some(clock), running: HashMap::new(), next_id: 0 }
    }

    /// Makes `targets` the running set: starts new ones, stops removed ones
    /// (after their in-flight run), keeps unchanged ones on their schedule.
    /// Returns `(started, stopped)`.
    pub fn apply(&mut self, targets: Vec<Target>) -> (usize, usize) {
        let Some(clock) = &self.clock else { return (0, 0) };
        let mut next: HashMap<String, Vec<(Target, u64)>> = HashMap::new();
        let mut started = 0;
        for target in targets {
            let label = target.label();
            let kept = self.running.get_mut(&label).and_then(|old| {
                let i = old.iter().position(|(t, _)| *t == target)?;
                Some(old.swap_remove(i))
            });
            let entry = kept.unwrap_or_else(|| {
                started += 1;
                self.next_id += 1;
                let _ = clock.send(Command::Start(self.next_id, target.clone()));
                (target, self.next_id)
            });
            // Almost every label has one target: no spare capacity.
            next.entry(label).or_insert_with(|| Vec::with_capacity(1)).push(entry);
        }
        let mut stopped = 0;
        for (_, id) in self.running.drain().flat_map(|(_, v)| v) {
            let _ = clock.send(Command::Stop(id));
            stopped += 1;
        }
        self.running = next;
        (started, stopped)
    }

    /// Number of running targets.
    pub fn len(&self) -> usize {
        self.running.values().map(Vec::len).sum()
    }

    /// Whether no target runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every target after its in-flight run; the sink closes once
    /// the last run has been handed over.
    pub fn stop(&mut self) {
        // Closing the channel ends the clock task; runs in flight go on.
        self.clock = None;
        self.running.clear();
    }
}

/// A target as the clock keeps it.
struct Slot {
    target: Target,
    /// The target's interval (read once, not per slot).
    interval: Duration,
    next: Instant,
    /// Set while a run is in flight.
    busy: Arc<AtomicBool>,
}

/// The clock: starts a run for every due slot whose target is not busy,
/// skips (and counts) the others, until the scheduler stops.
async fn clock_loop(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    let mut due = Timetable::default();
    // One timer, moved only when the earliest slot changes: registering a
    // new timer earlier than the driver's next wake costs a wake-up of its
    // own (an eventfd write and an extra epoll_wait), once per run.
    let sleep = tokio::time::sleep_until(Instant::now());
    tokio::pin!(sleep);
    loop {
        let wake = due.next_due();
        if let Some(at) = wake.filter(|at| *at != sleep.deadline()) {
            sleep.as_mut().reset(at);
        }
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { return };
                // Every change queued with it too (a start or reload sends
                // one per target), so the timetable sorts once per batch:
                // 10,000 targets cost ~1 ms, not ~170 ms of sorts, one per target.
                for command in std::iter::once(command).chain(std::iter::from_fn(|| commands.try_recv().ok())) {
                    match command {
                        Command::Start(id, target) => {
                            let interval = target.interval();
                            let next = Instant::now() + interval.mul_f64(fastrand::f64());
                            slots.insert(id, Slot { target, interval, next, busy: Arc::new(AtomicBool::new(false)) });
                            due.push(interval, next, id);
                        }
                        Command::Stop(id) => {
                            slots.remove(&id);
                        }
                    }
                }
            }
            () = &mut sleep, if wake.is_some() => {
                let now = Instant::now();
                // Slots due within CLOCK_SLACK start together.
                while let Some((at, id)) = due.pop_due(now + CLOCK_SLACK) {
                    // Stopped targets leave stale timetable entries behind.
                    let Some(slot) = slots.get_mut(&id).filter(|s| s.next == at) else { continue };
                    let interval = slot.interval;
                    // Slots already behind us (the run overran, or the clock was late) are skipped.
                    let behind = now.saturating_duration_since(at).as_nanos() / interval.as_nanos().max(1);
                    let mut skipped = u64::try_from(behind).unwrap_or(u64::MAX);
                    if slot.busy.swap(true, Ordering::AcqRel) {
                        skipped += 1;
                    } else {
                        tokio::spawn(run(slot.target.clone(), Arc::clone(&shared), Arc::clone(&slot.busy)));
                    }
                    if skipped > 0 {
                        let type_label = slot.target.probe_type().as_str();
                        shared.stats.record_skipped(skipped);
                        metrics::counter!("netprobe_agent_skipped_runs_total", "probe_type" => type_label).increment(skipped);
                        tracing::debug!(target = %slot.target.label(), skipped, "run overran its interval; slots skipped");
                    }
                    slot.next = at + interval * u32::try_from(behind + 1).unwrap_or(u32::MAX);
                    due.push(interval, slot.next, id);
                }
            }
        }
    }
}

/// One run of `target`: permit, measure (bounded), publish, then `busy` off.
async fn run(target: Target, shared: Arc<Shared>, busy: Arc<AtomicBool>) {
    let probe_type = target.probe_type();
    let permit = match shared.permits.get(&probe_type) {
        Some(s) => Arc::clone(s).acquire_owned().await.ok(),
        None => None,
    };
    let timestamp = Timestamp::now();
    let body = measure(&target, &shared.ctx).await;
    drop(permit);
    let ok = target.succeeded(&body);
    shared.stats.record(ok.then_some(timestamp));
    let unlisted;
    let counters = match shared.counters.get(&probe_type) {
        Some(c) => c,
        None => {
            unlisted = TypeCounters::new(probe_type);
            &unlisted
        }
    };
    counters.runs.increment(1);
    if !ok {
        counters.failures.increment(1);
    }
    let msg = Message::new(shared.probe_id.clone(), shared.location.clone(), timestamp, body);
    // An error means the publisher is gone: shutting down. Waiting for room
    // is rare (the publisher never blocks): that future is boxed, so it does
    // not grow every run's task.
    if let Err(mpsc::error::TrySendError::Full(msg)) = shared.sink.try_send(msg) {
        let _ = Box::pin(shared.sink.send(msg)).await;
    }
    busy.store(false, Ordering::Release);
}

/// Runs `target` once within its deadline plus [`RUN_GRACE`]; a run that
/// does not finish in time is abandoned and reported as
/// [`Target::abandoned`] (error class `timeout`), so it is still published.
/// A self-bounded probe type ([`crate::probe::Probe::SELF_BOUNDED`]) keeps
/// its deadline itself and runs without the extra timer.
async fn measure(target: &Target, ctx: &Context) -> netprobe_wire::Body {
    if target.self_bounded() {
        return target.run(ctx).await;
    }
    let deadline = target.run_deadline() + RUN_GRACE;
    match tokio::time::timeout(deadline, target.run(ctx)).await {
        Ok(body) => body,
        Err(_) => {
            tracing::error!(target = %target.label(), ?deadline, "run abandoned");
            target.abandoned(deadline)
        }
    }
}

/// Runs every target once, concurrently, and returns the messages in
/// target order (`--health-check`); a run that outlasts its deadline is
/// reported as abandoned.
pub async fn run_once(targets: &[Target], probe_id: &ProbeId, location: &str) -> Vec<Message> {
    let ctx = Arc::new(Context::default());
    let mut set = tokio::task::JoinSet::new();
    for (i, target) in targets.iter().cloned().enumerate() {
        let ctx = Arc::clone(&ctx);
        set.spawn(async move {
            let timestamp = Timestamp::now();
            (i, timestamp, measure(&target, &ctx).await)
        });
    }
    let mut done: Vec<_> = set.join_all().await;
    done.sort_by_key(|(i, ..)| *i);
    done.into_iter()
        .map(|(_, timestamp, body)| Message::new(probe_id.clone(), location.to_owned(), timestamp, body))
        .collect()
}
