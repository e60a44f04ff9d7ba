//! Writing one batch: to InfluxDB through ingest's sink with ingest's
//! retry classification and backoff (`netprobe_ingest::retry`), but giving
//! up after `retry_give_up_after` (a replay is run by an operator, who
//! needs an answer, and can resume) and, with no DLQ to write to, listing
//! the messages InfluxDB refuses on their own instead of dead-lettering
//! them; or as line protocol to a file or stdout.

use std::io::Write;
use std::time::{Duration, Instant};

use netprobe_ingest::batch::Batch;
use netprobe_ingest::retry::{Action, Backoff};
use netprobe_ingest::sink::InfluxSink;

use crate::summary::Problem;

/// What a finished write did.
#[derive(Debug, Default)]
pub struct WriteReport {
    /// Messages whose points were written.
    pub messages: u64,
    /// Points written.
    pub points: u64,
    /// Messages InfluxDB refused on their own.
    pub refused: Vec<Problem>,
}

/// A write given up on.
#[derive(Debug, Clone)]
pub struct WriteFailure {
    /// In words: status, InfluxDB's message, how long it was retried.
    pub cause: String,
}

/// Writes every line of `batch`: retried with `backoff` (honouring
/// `Retry-After`) while InfluxDB cannot take it, bisected when it refuses
/// part of it (400/413/422) down to the single messages it refuses.
///
/// # Errors
/// [`WriteFailure`] when a part of the batch was retried for `give_up_after`
/// without success. Parts written before stay written.
pub async fn write_influx(
    sink: &InfluxSink,
    backoff: &mut Backoff,
    give_up_after: Duration,
    batch: &Batch,
) -> Result<WriteReport, WriteFailure> {
    let entries = batch.entries();
    let mut report = WriteReport::default();
    // Ranges of entries still to write; a refused range is split in two.
    let mut pending = Vec::new();
    pending.push(0..entries.len());
    while let Some(range) = pending.pop() {
        let lines = batch.lines_of(range.clone());
        if lines.is_empty() {
            continue;
        }
        let first_attempt = Instant::now();
        loop {
            let outcome = sink.write(lines).await;
            match outcome.action {
                Action::Done => {
                    backoff.reset();
                    report.messages += range.len() as u64;
                    report.points += entries[range.clone()].iter().map(|e| e.line_count as u64).sum::<u64>();
                    break;
                }
                Action::Retry(retry_after) => {
                    let status = outcome.status.map_or("no response".to_owned(), |s| format!("HTTP {s}"));
                    let message = outcome.message.trim();
                    if first_attempt.elapsed() >= give_up_after {
                        return Err(WriteFailure {
                            cause: format!(
                                "InfluxDB write failed for {} s ({status}: {message}); giving up",
                                give_up_after.as_secs()
                            ),
                        });
                    }
                    let delay = backoff.delay(retry_after).min(give_up_after.saturating_sub(first_attempt.elapsed()));
                    tracing::warn!(
                        status = outcome.status,
                        error = message,
                        lines = entries[range.clone()].iter().map(|e| e.line_count).sum::<usize>(),
                        retry_in_ms = delay.as_millis() as u64,
                        "InfluxDB write failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Action::Split if range.len() == 1 => {
                    let e = &entries[range.start];
                    let reason =
                        format!("InfluxDB answered {}: {}", outcome.status.unwrap_or(0), outcome.message.trim());
                    tracing::warn!(source = %e.source, reason, "InfluxDB refused a message; not written");
                    report.refused.push(Problem {
                        source: e.source.to_string(),
                        origin: None,
                        class: "influx_rejected".into(),
                        reason,
                    });
                    break;
                }
                Action::Split => {
                    let mid = range.start + range.len() / 2;
                    pending.push(mid..range.end);
                    pending.push(range.start..mid);
                    break;
                }
            }
        }
    }
    Ok(report)
}

/// Appends the line protocol of `batch` to `out`.
///
/// # Errors
/// The I/O error (a closed pipe, a full disk).
pub fn write_lines(out: &mut dyn Write, batch: &Batch) -> std::io::Result<WriteReport> {
    let entries = batch.entries();
    out.write_all(batch.lines_of(0..entries.len()))?;
    Ok(WriteReport {
        messages: entries.len() as u64,
        points: entries.iter().map(|e| e.line_count as u64).sum(),
        refused: Vec::new(),
    })
}
