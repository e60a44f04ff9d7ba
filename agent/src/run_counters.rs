//! Run counters of the last hour for the heartbeat (`runs_last_hour`,
//! `failures_last_hour`, `last_successful_run`): 60 one-minute buckets, so
//! memory stays constant whatever the run rate.

use std::sync::Mutex;
use std::time::Instant;

use netprobe_wire::Timestamp;

const BUCKETS: usize = 60;

/// Thread-safe run counters over a sliding hour.
#[derive(Debug)]
pub struct RunCounters {
    start: Instant,
    inner: Mutex<Inner>,
    skipped: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Inner {
    /// `(minute since start, runs, failures)` per bucket.
    buckets: [(u64, u32, u32); BUCKETS],
    last_success: Option<Timestamp>,
}

impl Default for RunCounters {
    fn default() -> Self {
        let inner = Inner { buckets: [(0, 0, 0); BUCKETS], last_success: None };
        RunCounters { start: Instant::now(), inner: Mutex::new(inner), skipped: Default::default() }
    }
}

impl RunCounters {
    /// Counts one run: `Some(start time)` when it succeeded, `None` when it failed.
    pub fn record(&self, success: Option<Timestamp>) {
        let minute = self.start.elapsed().as_secs() / 60;
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = &mut inner.buckets[(minute % BUCKETS as u64) as usize];
        if bucket.0 != minute {
            *bucket = (minute, 0, 0);
        }
        bucket.1 += 1;
        if success.is_none() {
            bucket.2 += 1;
        }
        if success.is_some() && success > inner.last_success {
            inner.last_success = success;
        }
    }

    /// Counts `n` slots skipped because a run overran its interval.
    pub fn record_skipped(&self, n: u64) {
        self.skipped.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Slots skipped since start.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `(runs, failures, last successful run)` of the last hour.
    pub fn snapshot(&self) -> (u32, u32, Option<Timestamp>) {
        let minute = self.start.elapsed().as_secs() / 60;
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let recent = inner.buckets.iter().filter(|b| b.0 + (BUCKETS as u64) > minute && b.1 > 0);
        let (runs, failures) = recent.fold((0, 0), |(r, f), b| (r + b.1, f + b.2));
        (runs, failures, inner.last_success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_runs_failures_and_last_success() {
        let stats = RunCounters::default();
        let t = Timestamp::now();
        stats.record(Some(t));
        stats.record(None);
        stats.record(Some(t));
        assert_eq!(stats.snapshot(), (3, 1, Some(t)));
    }
}
