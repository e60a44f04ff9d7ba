//! A batch of line protocol with, per Kafka message, where it came from and
//! which bytes it rendered to, so a rejected batch can be bisected down to
//! the messages InfluxDB refuses and offsets stored only for what is done.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Kafka message's position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset of the message.
    pub offset: i64,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]@{}", self.topic, self.partition, self.offset)
    }
}

/// One consumed message in a batch.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where it came from (the DLQ reads its key and payload back from
    /// there, [`crate::refetch`]).
    pub source: Source,
    /// Its line protocol in [`Batch::lines`]; empty for a message already
    /// resolved (sent to the DLQ on decode).
    pub range: Range<usize>,
    /// Number of lines (points) it rendered to.
    pub line_count: usize,
    /// The Kafka message timestamp (CreateTime set by the producer, or
    /// LogAppendTime), Unix ms; `None` when the message has none.
    pub kafka_ts_ms: Option<i64>,
}

/// Line protocol waiting to be written, and where each message came from
/// (not its payload: [`crate::refetch`]). Lines share one buffer: a batch is
/// two allocations, not one per message.
#[derive(Debug, Default)]
pub struct Batch {
    lines: Vec<u8>,
    entries: Vec<Entry>,
    line_count: usize,
    opened: Option<Instant>,
}

impl Batch {
    /// Adds a message whose points `render` appends to the line buffer;
    /// `kafka_ts_ms` is its Kafka timestamp (Unix ms), for the delivery
    /// latency.
    pub fn push(
        &mut self,
        source: Source,
        kafka_ts_ms: Option<i64>,
        line_count: usize,
        render: impl FnOnce(&mut Vec<u8>),
    ) {
        let rendered: Result<(), std::convert::Infallible> = self.try_push(source, kafka_ts_ms, |out| {
            render(out);
            Ok(line_count)
        });
        let Ok(()) = rendered;
    }

    /// Adds a message whose points `render` appends to the line buffer,
    /// returning how many lines it wrote; when `render` fails (leaving the
    /// buffer as it was) nothing is added and its error is returned.
    pub fn try_push<E>(
        &mut self,
        source: Source,
        kafka_ts_ms: Option<i64>,
        render: impl FnOnce(&mut Vec<u8>) -> Result<usize, E>,
    ) -> Result<(), E> {
        let start = self.lines.len();
        let line_count = render(&mut self.lines)?;
        self.opened.get_or_insert_with(Instant::now);
        self.line_count += line_count;
        self.entries.push(Entry { source, range: start..self.lines.len(), line_count, kafka_ts_ms });
        Ok(())
    }

    /// Adds a message that is already resolved (in the DLQ): it has no
    /// lines, but its offset may be stored only in order with the others.
    pub fn push_resolved(&mut self, source: Source) {
        self.opened.get_or_insert_with(Instant::now);
        let at = self.lines.len();
        self.entries.push(Entry { source, range: at..at, line_count: 0, kafka_ts_ms: None });
    }

    /// Whether the batch reached `max_lines` or `max_bytes`.
    pub fn is_full(&self, max_lines: usize, max_bytes: usize) -> bool {
        self.line_count >= max_lines || self.lines.len() >= max_bytes
    }

    /// When the batch must be written at the latest; `None` when empty.
    pub fn deadline(&self, timeout: Duration) -> Option<Instant> {
        self.opened.map(|t| t + timeout)
    }

    /// Whether no message is in the batch.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of lines (points).
    pub fn line_count(&self) -> usize {
        self.line_count
    }

    /// The messages in consumption order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The line protocol of the entries at `range` (indices into
    /// [`Batch::entries`]): one slice, as entries render in order.
    ///
    /// # Panics
    /// When `range` is not within the entries, as slicing does.
    pub fn lines_of(&self, range: Range<usize>) -> &[u8] {
        if range.is_empty() {
            return &[];
        }
        &self.lines[self.entries[range.start].range.start..self.entries[range.end - 1].range.end]
    }

    /// The offset to commit per partition: one past the highest offset in
    /// the batch (Kafka's convention: the next message to read).
    pub fn next_offsets(&self) -> BTreeMap<(Arc<str>, i32), i64> {
        let mut next = BTreeMap::new();
        for e in &self.entries {
            let slot = next.entry((e.source.topic.clone(), e.source.partition)).or_insert(i64::MIN);
            *slot = (*slot).max(e.source.offset + 1);
        }
        next
    }

    /// Empties the batch, keeping its buffers' capacity.
    pub fn clear(&mut self) {
        self.lines.clear();
        self.entries.clear();
        self.line_count = 0;
        self.opened = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(topic: &str, partition: i32, offset: i64) -> Source {
        Source { topic: topic.into(), partition, offset }
    }

    #[test]
    fn next_offsets_are_one_past_the_highest_per_partition() {
        let mut b = Batch::default();
        b.push(src("icmp.metrics", 0, 7), None, 1, |out| out.extend_from_slice(b"a v=1 1\n"));
        b.push(src("icmp.metrics", 0, 8), None, 1, |out| out.extend_from_slice(b"a v=2 2\n"));
        b.push_resolved(src("icmp.metrics", 0, 9));
        b.push(src("dns.metrics", 3, 41), None, 1, |out| out.extend_from_slice(b"d v=1 1\n"));
        let next = b.next_offsets();
        assert_eq!(next.get(&("icmp.metrics".into(), 0)), Some(&10));
        assert_eq!(next.get(&("dns.metrics".into(), 3)), Some(&42));
        assert_eq!(b.line_count(), 3);
        assert_eq!(b.lines_of(1..2), b"a v=2 2\n");
        assert_eq!(b.lines_of(0..4), b"a v=1 1\na v=2 2\nd v=1 1\n");
        assert_eq!(b.lines_of(2..3), b"", "resolved messages have no lines");
        assert_eq!(b.lines_of(1..1), b"");
    }

    #[test]
    fn full_by_lines_or_bytes_and_deadline_from_first_push() {
        let mut b = Batch::default();
        assert_eq!(b.deadline(Duration::from_secs(1)), None);
        b.push(src("t", 0, 0), None, 2, |out| out.extend_from_slice(b"0123456789"));
        assert!(b.deadline(Duration::from_secs(1)).is_some());
        assert!(b.is_full(2, 1000) && b.is_full(100, 10) && !b.is_full(3, 11));
        b.clear();
        assert!(b.is_empty() && b.deadline(Duration::from_secs(1)).is_none());
    }
}
