//! What a replay did: live counters ([`Stats`], read by the progress
//! output) and the final [`Summary`] with the messages that could not be
//! written and, after a failure, the `--start` to resume from.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// How many malformed or refused messages the summary lists (the log has all).
pub const LISTED_PROBLEMS: usize = 10;

/// Counters updated while replaying.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages read within the planned offsets.
    pub scanned: AtomicU64,
    /// Messages that decoded and passed the filters.
    pub matched: AtomicU64,
    /// Matched messages whose points were written (InfluxDB accepted them,
    /// or they are in the line-protocol output).
    pub written: AtomicU64,
    /// Points written.
    pub points: AtomicU64,
    /// Messages that do not decode or cannot become points.
    pub malformed: AtomicU64,
    /// Messages InfluxDB refused on their own (400/422 after bisection).
    pub refused: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Counts {
    pub scanned: u64,
    pub matched: u64,
    pub written: u64,
    pub points: u64,
    pub malformed: u64,
    pub refused: u64,
}

impl Stats {
    /// The counters now.
    pub fn snapshot(&self) -> Counts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            scanned: get(&self.scanned),
            matched: get(&self.matched),
            written: get(&self.written),
            points: get(&self.points),
            malformed: get(&self.malformed),
            refused: get(&self.refused),
        }
    }
}

/// A message that was not written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it was read: `topic[partition]@offset`.
    pub source: String,
    /// For a DLQ message: where it was first consumed, from its headers.
    pub origin: Option<String>,
    /// Short class: a decode error class, `invalid_point`, `influx_rejected`.
    pub class: String,
    /// The reason in words.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(origin) = &self.origin {
            write!(f, " (dead-lettered from {origin})")?;
        }
        write!(f, ": {}: {}", self.class, self.reason)
    }
}

/// Why a replay stopped before the end of its range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong.
    pub cause: String,
    /// A `--start` from which a new replay (same `--end` and filters)
    /// completes the range; it may rewrite some points, which is harmless.
    pub resume_from: DateTime<Utc>,
}

/// The outcome of a replay.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Final counters.
    pub counts: Counts,
    /// The first [`LISTED_PROBLEMS`] malformed messages.
    pub malformed: Vec<Problem>,
    /// The first [`LISTED_PROBLEMS`] messages InfluxDB refused.
    pub refused: Vec<Problem>,
    /// Wall time.
    pub elapsed: Duration,
    /// Whether nothing was written on purpose (`--dry-run`).
    pub dry_run: bool,
    /// Points the matched messages make (written or, in a dry run, not).
    pub matched_points: u64,
    /// The requested `--end` (for the resume hint).
    pub end: DateTime<Utc>,
    /// Set when the replay stopped part-way.
    pub failure: Option<Failure>,
}

/// RFC 3339 UTC, sub-seconds only when present.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let status = match (&self.failure, self.dry_run) {
            (Some(_), _) => "replay FAILED part-way",
            (None, true) => "replay done (dry run, nothing written)",
            (None, false) => "replay done",
        };
        writeln!(
            f,
            "{status}: scanned={} matched={} written={} points={} matched_points={} malformed={} refused={} seconds={:.1}",
            c.scanned,
            c.matched,
            c.written,
            c.points,
            self.matched_points,
            c.malformed,
            c.refused,
            self.elapsed.as_secs_f64()
        )?;
        for (what, list, total) in [("malformed", &self.malformed, c.malformed), ("refused", &self.refused, c.refused)]
        {
            for p in list {
                writeln!(f, "  {what}: {p}")?;
            }
            if total > list.len() as u64 {
                writeln!(f, "  ... and {} more {what} messages (see the log)", total - list.len() as u64)?;
            }
        }
        if let Some(failure) = &self.failure {
            writeln!(f, "  cause: {}", failure.cause)?;
            writeln!(
                f,
                "  resume with: --start {} --end {} (and the same other arguments)",
                rfc3339(failure.resume_from),
                rfc3339(self.end)
            )?;
        }
        Ok(())
    }
}
