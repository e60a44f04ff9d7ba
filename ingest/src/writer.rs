//! Writes one batch to InfluxDB until it is done: retried with backoff while
//! InfluxDB cannot take it, bisected when it refuses part of it (the refused
//! messages go to the DLQ). The pipeline runs one [`Writer::write`] at a time
//! in its own task, so the next batch is consumed and rendered meanwhile.
//! A refused message's key and payload are read back from Kafka for the
//! DLQ ([`Refetch`]): batches keep only line protocol and positions.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::batch::Batch;
use crate::dlq::{Cancelled, Dlq};
use crate::refetch::{Refetch, Refetched};
use crate::retry::{Action, Backoff};
use crate::sink::InfluxSink;
use crate::telemetry;

/// The write side of the pipeline: sink, DLQ for refused messages (read
/// back through `refetch`), backoff state carried from one batch to the next.
#[derive(Debug)]
pub struct Writer {
    sink: InfluxSink,
    dlq: Arc<Dlq>,
    refetch: Arc<Refetch>,
    backoff: Backoff,
}

impl Writer {
    /// A writer posting through `sink`.
    pub fn new(sink: InfluxSink, dlq: Arc<Dlq>, refetch: Arc<Refetch>, backoff: Backoff) -> Self {
        Writer { sink, dlq, refetch, backoff }
    }

    /// Writes every line of `batch`, or sends the messages InfluxDB refuses
    /// on their own (400/413/422 after bisection) to the DLQ. Returns only
    /// when every message is written or in the DLQ.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first: then none of the batch's
    /// offsets may be stored (it is re-delivered; points are idempotent).
    pub async fn write(&mut self, batch: &Batch, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let entries = batch.entries();
        // Ranges of entries still to write; a refused range is split in two.
        let mut pending = Vec::new();
        pending.push(0..entries.len());
        while let Some(range) = pending.pop() {
            let lines = batch.lines_of(range.clone());
            if lines.is_empty() {
                continue;
            }
            let line_count: usize = entries[range.clone()].iter().map(|e| e.line_count).sum();
            loop {
                let started = Instant::now();
                let outcome = self.sink.write(lines).await;
                match outcome.action {
                    Action::Done => {
                        self.backoff.reset();
                        telemetry::batch_written(line_count, lines.len(), started.elapsed());
                        break;
                    }
                    Action::Retry(retry_after) => {
                        let delay = self.backoff.delay(retry_after);
                        telemetry::write_retry(outcome.status, &outcome.message, line_count, delay);
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = cancel.cancelled() => return Err(Cancelled),
                        }
                    }
                    Action::Split if range.len() == 1 => {
                        let e = &entries[range.start];
                        let mut reason =
                            format!("InfluxDB answered {}: {}", outcome.status.unwrap_or(0), outcome.message.trim());
                        let (key, payload) = match self.refetch.message(&e.source, cancel).await? {
                            Refetched::Found { key, payload } => (key, payload),
                            Refetched::Gone(why) => {
                                tracing::warn!(source = %e.source, why, "refused message no longer in Kafka; DLQ record without payload");
                                reason = format!("{reason} (payload no longer in Kafka: {why})");
                                (None, Vec::new())
                            }
                        };
                        self.dlq.send(&e.source, key.as_deref(), &payload, "influx_rejected", &reason, cancel).await?;
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
}
