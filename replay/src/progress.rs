//! Progress output on stderr: an indicatif bar when stderr is a terminal
//! (messages scanned against the planned total with rate and ETA, matched
//! and written per second, the partitions furthest from their end offset),
//! a plain log line every [`LOG_EVERY`] otherwise. [`LogWriter`] routes
//! tracing output around the bar so log lines do not tear it.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::PartitionPlan;
use crate::summary::{Counts, Stats};

/// Interval of the plain progress line when stderr is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);
/// Refresh interval of the bar.
const BAR_EVERY: Duration = Duration::from_millis(200);
/// Partitions named on the bar's second line.
const SHOWN_PARTITIONS: usize = 3;

/// The bar being drawn, if any, so [`LogWriter`] can print around it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif bar (stderr is a terminal).
    Bar,
    /// A log line every [`LOG_EVERY`].
    Log,
    /// Nothing.
    Off,
}

impl ProgressMode {
    /// [`ProgressMode::Bar`] when stderr is a terminal, else [`ProgressMode::Log`].
    pub fn detect() -> ProgressMode {
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Log
        }
    }
}

/// The running progress reporter; [`Progress::finish`] stops it.
#[derive(Debug)]
pub struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts reporting `stats` against `plans` in `mode`.
    pub fn start(mode: ProgressMode, stats: Arc<Stats>, plans: Arc<Vec<PartitionPlan>>) -> Progress {
        let total: i64 = plans.iter().map(PartitionPlan::total).sum();
        match mode {
            ProgressMode::Off => Progress { task: None, bar: None },
            ProgressMode::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total.max(0) as u64), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} scanned ({per_sec}, ETA {eta})\n  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                set_active(Some(bar.clone()));
                let task = tokio::spawn(run_bar(bar.clone(), stats, plans));
                Progress { task: Some(task), bar: Some(bar) }
            }
            ProgressMode::Log => Progress { task: Some(tokio::spawn(run_log(stats, plans, total))), bar: None },
        }
    }

    /// Stops the reporter and clears the bar.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            set_active(None);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_active(bar: Option<ProgressBar>) {
    if let Ok(mut active) = ACTIVE_BAR.lock() {
        *active = bar;
    }
}

/// Rates between two snapshots.
struct Rates {
    last: Counts,
    at: Instant,
}

impl Rates {
    fn per_s(&mut self, now: Counts) -> (f64, f64, f64) {
        let dt = self.at.elapsed().as_secs_f64().max(1e-3);
        let r = (
            (now.scanned - self.last.scanned) as f64 / dt,
            (now.matched - self.last.matched) as f64 / dt,
            (now.written - self.last.written) as f64 / dt,
        );
        self.last = now;
        self.at = Instant::now();
        r
    }
}

/// `topic[p] position/stop` of the unfinished partitions furthest behind.
fn behind(plans: &[PartitionPlan]) -> (usize, String) {
    let mut open: Vec<&PartitionPlan> = plans.iter().filter(|p| !p.done.load(Ordering::Relaxed)).collect();
    open.sort_by_key(|p| std::cmp::Reverse(p.remaining()));
    let shown: Vec<String> = open
        .iter()
        .take(SHOWN_PARTITIONS)
        .map(|p| format!("{}[{}] {}/{}", p.topic, p.partition, p.position.load(Ordering::Relaxed), p.stop))
        .collect();
    (open.len(), shown.join(", "))
}

async fn run_bar(bar: ProgressBar, stats: Arc<Stats>, plans: Arc<Vec<PartitionPlan>>) {
    let mut rates = Rates { last: Counts::default(), at: Instant::now() };
    let mut tick = tokio::time::interval(BAR_EVERY);
    let mut shown_rates = (0.0, 0.0);
    let mut last_rate_at = Instant::now();
    loop {
        tick.tick().await;
        let c = stats.snapshot();
        if last_rate_at.elapsed() >= Duration::from_secs(1) {
            let (_, matched, written) = rates.per_s(c);
            shown_rates = (matched, written);
            last_rate_at = Instant::now();
        }
        let (open, names) = behind(&plans);
        bar.set_position(c.scanned);
        bar.set_message(format!(
            "matched {} ({:.0}/s), written {} ({:.0}/s), malformed {}; partitions open {}/{}{}{}",
            c.matched,
            shown_rates.0,
            c.written,
            shown_rates.1,
            c.malformed,
            open,
            plans.len(),
            if names.is_empty() { "" } else { ": " },
            names
        ));
    }
}

async fn run_log(stats: Arc<Stats>, plans: Arc<Vec<PartitionPlan>>, total: i64) {
    let started = Instant::now();
    let mut rates = Rates { last: Counts::default(), at: Instant::now() };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + LOG_EVERY, LOG_EVERY);
    loop {
        tick.tick().await;
        let c = stats.snapshot();
        let (scanned_per_s, matched_per_s, written_per_s) = rates.per_s(c);
        let (open, behind) = behind(&plans);
        let avg = c.scanned as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let left = (total - c.scanned as i64).max(0) as f64;
        let eta_s = if avg > 0.0 { (left / avg).round() as u64 } else { 0 };
        tracing::info!(
            scanned = c.scanned,
            total,
            matched = c.matched,
            written = c.written,
            malformed = c.malformed,
            scanned_per_s = scanned_per_s.round() as u64,
            matched_per_s = matched_per_s.round() as u64,
            written_per_s = written_per_s.round() as u64,
            partitions_open = open,
            eta_s,
            behind,
            "progress"
        );
    }
}

/// A tracing writer to stderr that hides the progress bar while a line is
/// printed (`tracing_subscriber::fmt().with_writer(LogWriter)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

/// One log event's buffer, printed on drop.
#[derive(Debug, Default)]
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let bar = ACTIVE_BAR.lock().ok().and_then(|b| b.clone());
        let print = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine::default()
    }
}
