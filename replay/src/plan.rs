//! Where each partition's replay starts and stops, looked up once before
//! reading: the start is the first offset whose Kafka timestamp is at or
//! after `--start` (`offsets_for_times`), the stop the first offset at or
//! after `--end` + grace, or the high watermark taken now, whichever comes
//! first. A partition whose start is not below its stop has nothing in
//! range and is never fetched.
//!
//! Kafka timestamps bound the message timestamps from above (a message is
//! produced after its measurement started), so every message whose own
//! timestamp is in range lies at or after the start offset. Messages that
//! reached Kafka more than the grace after `--end` are not read. For
//! `ingest.dlq` the stop is the high watermark alone: a message may be
//! dead-lettered any time after it was produced.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use netprobe_wire::Topic;

use crate::Error;

/// Timeout of each planning request to Kafka.
pub const PLAN_TIMEOUT: Duration = Duration::from_secs(30);

/// One partition's part of the replay and how far it got.
#[derive(Debug)]
pub struct PartitionPlan {
    /// Full topic name (with prefix).
    pub topic: Arc<str>,
    /// Which topic it is.
    pub kind: Topic,
    /// Partition id.
    pub partition: i32,
    /// First offset to read.
    pub start: i64,
    /// First offset not to read.
    pub stop: i64,
    /// Next offset to handle (starts at `start`).
    pub position: AtomicI64,
    /// Kafka timestamp (ms) of the last message handled; `i64::MIN` before.
    pub last_kafka_ms: AtomicI64,
    /// Whether every offset below `stop` was handled.
    pub done: AtomicBool,
}

impl PartitionPlan {
    /// Messages in range left to read.
    pub fn remaining(&self) -> i64 {
        (self.stop - self.position.load(Ordering::Relaxed)).max(0)
    }

    /// Messages in range.
    pub fn total(&self) -> i64 {
        (self.stop - self.start).max(0)
    }
}

/// Plans the replay of `topics` (full names with their kind) for
/// `[start, end + grace)` by Kafka timestamp.
///
/// # Errors
/// [`Error::UnknownTopic`] when a topic does not exist; [`Error::Kafka`]
/// when metadata or offsets cannot be had.
pub fn plan<C: ConsumerContext + 'static, K: Consumer<C>>(
    consumer: &K,
    topics: &[(String, Topic)],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    late_grace: Duration,
) -> Result<Vec<PartitionPlan>, Error> {
    let mut partitions = Vec::new();
    for (name, kind) in topics {
        let md = consumer.fetch_metadata(Some(name), PLAN_TIMEOUT).map_err(|source| match source {
            KafkaError::MetadataFetch(
                code @ (RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::TopicAuthorizationFailed),
            ) => Error::UnknownTopic { topic: name.clone(), message: code.to_string() },
            source => Error::Kafka { context: format!("metadata of {name}"), source },
        })?;
        let Some(t) = md.topics().iter().find(|t| t.name() == name) else {
            return Err(Error::UnknownTopic { topic: name.clone(), message: "not in the metadata".into() });
        };
        if let Some(e) = t.error() {
            return Err(Error::UnknownTopic { topic: name.clone(), message: RDKafkaErrorCode::from(e).to_string() });
        }
        if t.partitions().is_empty() {
            return Err(Error::UnknownTopic { topic: name.clone(), message: "no partitions".into() });
        }
        for p in t.partitions() {
            partitions.push((Arc::<str>::from(name.as_str()), *kind, p.id()));
        }
    }
    let start_ms = start.timestamp_millis();
    let stop_ms = end.timestamp_millis().saturating_add(late_grace.as_millis().min(i64::MAX as u128) as i64);
    let lookup = |ms: i64, which: &str, only: &dyn Fn(Topic) -> bool| -> Result<TopicPartitionList, Error> {
        let mut tpl = TopicPartitionList::new();
        for (topic, kind, p) in &partitions {
            if only(*kind) {
                tpl.add_partition_offset(topic, *p, Offset::Offset(ms))
                    .map_err(|source| Error::Kafka { context: format!("offset of {topic}[{p}]"), source })?;
            }
        }
        if tpl.count() == 0 {
            return Ok(tpl);
        }
        consumer
            .offsets_for_times(tpl, PLAN_TIMEOUT)
            .map_err(|source| Error::Kafka { context: format!("offsets for {which}"), source })
    };
    let starts = lookup(start_ms, "--start", &|_| true)?;
    let ends = lookup(stop_ms, "--end + grace", &|k| k != Topic::Dlq)?;
    let mut plans = Vec::with_capacity(partitions.len());
    for (topic, kind, p) in partitions {
        let (_, high) = consumer
            .fetch_watermarks(&topic, p, PLAN_TIMEOUT)
            .map_err(|source| Error::Kafka { context: format!("watermarks of {topic}[{p}]"), source })?;
        let found = |tpl: &TopicPartitionList| -> Result<Option<i64>, Error> {
            let Some(e) = tpl.find_partition(&topic, p) else { return Ok(None) };
            e.error().map_err(|source| Error::Kafka { context: format!("offsets of {topic}[{p}]"), source })?;
            Ok(match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
        };
        // No message at or after the time: nothing there (start) / read to
        // the high watermark (stop).
        let start = found(&starts)?.unwrap_or(high);
        let stop = found(&ends)?.unwrap_or(high).min(high);
        plans.push(PartitionPlan {
            topic,
            kind,
            partition: p,
            start,
            stop,
            position: AtomicI64::new(start),
            last_kafka_ms: AtomicI64::new(i64::MIN),
            done: AtomicBool::new(start >= stop),
        });
    }
    Ok(plans)
}
