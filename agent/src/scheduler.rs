//! Runs every target on its own interval and hands each result to a sink.
//!
//! - Each target starts at a random phase within its first interval, so a
//!   thousand targets with the same interval do not fire together.
//! - Runs of one target never overlap: a run that outlasts its interval
//!   makes the scheduler skip the slots it missed (counted in
//!   `netprobe_agent_skipped_runs_total`) and start on the next free slot.
//! - At most [`Limits`] runs of one probe type are in flight at once.
//! - Each run is bounded by the target's run deadline plus one second.
//! - [`Scheduler::apply`] replaces the target set (SIGHUP): new targets
//!   start, removed ones stop after their in-flight run is published,
//!   unchanged ones keep their schedule.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use netprobe_wire::{Message, ProbeId, ProbeType, Timestamp};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::probe::{self, Context, Target};
use crate::stats::RunStats;

/// Concurrent runs allowed per probe type.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// ICMP runs in flight.
    pub icmp: usize,
    /// DNS queries in flight.
    pub dns: usize,
    /// HTTP requests in flight.
    pub http: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { icmp: 20_000, dns: 256, http: 64 }
    }
}

/// Grace added to a target's run deadline before a run is abandoned.
const RUN_GRACE: Duration = Duration::from_secs(1);

/// The running target set.
#[derive(Debug)]
pub struct Scheduler {
    shared: Arc<Shared>,
    running: HashMap<String, Vec<(Target, CancellationToken)>>,
}

#[derive(Debug)]
struct Shared {
    ctx: Context,
    probe_id: ProbeId,
    location: String,
    sink: mpsc::Sender<Message>,
    stats: Arc<RunStats>,
    permits: HashMap<ProbeType, Arc<Semaphore>>,
}

impl Scheduler {
    /// A scheduler with no targets; results go to `sink` as wire messages
    /// stamped with `probe_id` and `location`.
    pub fn new(
        probe_id: ProbeId,
        location: String,
        sink: mpsc::Sender<Message>,
        stats: Arc<RunStats>,
        limits: Limits,
    ) -> Self {
        let permits = [(ProbeType::Icmp, limits.icmp), (ProbeType::Dns, limits.dns), (ProbeType::Http, limits.http)]
            .into_iter()
            .map(|(t, n)| (t, Arc::new(Semaphore::new(n.max(1)))))
            .collect();
        let shared = Shared { ctx: Context::default(), probe_id, location, sink, stats, permits };
        Scheduler { shared: Arc::new(shared), running: HashMap::new() }
    }

    /// Makes `targets` the running set: starts new ones, stops removed ones
    /// (after their in-flight run), keeps unchanged ones on their schedule.
    /// Returns `(started, stopped)`.
    pub fn apply(&mut self, targets: Vec<Target>) -> (usize, usize) {
        let mut next: HashMap<String, Vec<(Target, CancellationToken)>> = HashMap::new();
        let mut started = 0;
        for target in targets {
            let label = target.label();
            let kept = self.running.get_mut(&label).and_then(|old| {
                let i = old.iter().position(|(t, _)| *t == target)?;
                Some(old.swap_remove(i))
            });
            let entry = kept.unwrap_or_else(|| {
                started += 1;
                let cancel = CancellationToken::new();
                tokio::spawn(target_loop(target.clone(), Arc::clone(&self.shared), cancel.clone()));
                (target, cancel)
            });
            // Almost every label has one target; `push` on an empty Vec
            // would reserve four (10,000 targets: 7 MB, three quarters unused).
            next.entry(label).or_insert_with(|| Vec::with_capacity(1)).push(entry);
        }
        let mut stopped = 0;
        for (_, cancel) in self.running.drain().flat_map(|(_, v)| v) {
            cancel.cancel();
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

    /// Stops every target after its in-flight run.
    pub fn stop(&mut self) {
        self.apply(Vec::new());
    }
}

/// One target's schedule: wait for its slot, run, publish, repeat.
async fn target_loop(target: Target, shared: Arc<Shared>, cancel: CancellationToken) {
    let interval = target.interval();
    let probe_type = target.probe_type();
    let type_label = probe_type.as_str();
    let phase = interval.mul_f64(fastrand::f64());
    let mut slot = Instant::now() + phase;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(slot) => {}
        }
        let permit = match shared.permits.get(&probe_type) {
            Some(s) => Arc::clone(s).acquire_owned().await.ok(),
            None => None,
        };
        let timestamp = Timestamp::now();
        // Boxed: inline, the run's future would size every target's task
        // for its whole life, not only while a run is in flight.
        let run = Box::pin(target.run(&shared.ctx));
        let outcome = tokio::time::timeout(target.run_deadline() + RUN_GRACE, run).await;
        drop(permit);
        metrics::counter!("netprobe_agent_runs_total", "probe_type" => type_label).increment(1);
        match outcome {
            Ok(body) => {
                let ok = probe::succeeded(&body);
                shared.stats.record(ok.then_some(timestamp));
                if !ok {
                    metrics::counter!("netprobe_agent_failures_total", "probe_type" => type_label).increment(1);
                }
                // Capacity first, then the message: a `send(msg)` future
                // held the message across the wait and made every task
                // ~800 B larger.
                let Ok(slot) = shared.sink.reserve().await else {
                    return; // the publisher is gone: shutting down
                };
                slot.send(Message::new(shared.probe_id.clone(), shared.location.clone(), timestamp, body));
            }
            Err(_) => {
                shared.stats.record(None);
                metrics::counter!("netprobe_agent_failures_total", "probe_type" => type_label).increment(1);
                tracing::error!(target = %target.label(), deadline = ?target.run_deadline() + RUN_GRACE, "run abandoned");
            }
        }
        slot += interval;
        let now = Instant::now();
        if slot < now {
            let behind = now.duration_since(slot);
            let missed = behind.as_nanos() / interval.as_nanos().max(1) + 1;
            slot += interval * u32::try_from(missed).unwrap_or(u32::MAX);
            let missed = u64::try_from(missed).unwrap_or(u64::MAX);
            shared.stats.record_skipped(missed);
            metrics::counter!("netprobe_agent_skipped_runs_total", "probe_type" => type_label).increment(missed);
            tracing::warn!(target = %target.label(), missed, "run overran its interval; slots skipped");
        }
    }
}

/// Runs every target once, concurrently, and returns the messages in
/// target order (`--health-check`). A run that outlasts its deadline is
/// logged and left out.
pub async fn run_once(targets: &[Target], probe_id: &ProbeId, location: &str) -> Vec<Message> {
    let ctx = Arc::new(Context::default());
    let mut set = tokio::task::JoinSet::new();
    for (i, target) in targets.iter().cloned().enumerate() {
        let ctx = Arc::clone(&ctx);
        set.spawn(async move {
            let timestamp = Timestamp::now();
            let outcome = tokio::time::timeout(target.run_deadline() + RUN_GRACE, target.run(&ctx)).await;
            if outcome.is_err() {
                tracing::error!(target = %target.label(), "run abandoned");
            }
            (i, timestamp, outcome.ok())
        });
    }
    let mut done: Vec<_> = set.join_all().await;
    done.sort_by_key(|(i, ..)| *i);
    done.into_iter()
        .filter_map(|(_, timestamp, body)| Some(Message::new(probe_id.clone(), location.to_owned(), timestamp, body?)))
        .collect()
}
