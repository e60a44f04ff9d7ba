//! A librdkafka producer served by one polling thread that sleeps while
//! nothing happens.
//!
//! rdkafka's `ThreadedProducer` (0.39) calls `BaseProducer::poll(100 ms)`
//! in a loop. That `poll` converts the time left to whole milliseconds
//! (`Duration::as_millis`, which truncates), so during the last
//! millisecond of every call it asks librdkafka to wait 0 ms, again and
//! again, until the deadline passes: about 1 ms of spinning per 100 ms,
//! 1 % of a core for an idle agent. `perf record` on the agent under
//! `scripts/bench mtr` put 47 % of the agent's CPU in that loop
//! (`rdkafka::util::Deadline::elapsed` and `clock_gettime`).
//!
//! Here the thread polls for [`POLL_PERIOD`] per call instead: delivery
//! reports still arrive as soon as librdkafka queues them (the wait ends
//! on the first event), only the spin at the end of each call becomes 100
//! times rarer. The thread stops within [`POLL_PERIOD`] after the last
//! handle is dropped, and the producer (librdkafka's purge and flush on
//! drop) is dropped on that thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::producer::{BaseProducer, NoCustomPartitioner, Partitioner, ProducerContext};
use rdkafka::ClientConfig;

/// How long one `poll` call waits when no event arrives.
pub const POLL_PERIOD: Duration = Duration::from_secs(10);

/// A [`BaseProducer`] and its polling thread. Derefs to the producer;
/// clones share both. `P` is the context's custom partitioner, if any.
pub struct PolledProducer<C: ProducerContext<P> + 'static, P: Partitioner + Send + Sync + 'static = NoCustomPartitioner>
{
    producer: Arc<BaseProducer<C, P>>,
    stop: Arc<StopOnDrop>,
}

impl<C: ProducerContext<P> + 'static, P: Partitioner + Send + Sync + 'static> std::fmt::Debug for PolledProducer<C, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolledProducer").finish_non_exhaustive()
    }
}

impl<C: ProducerContext<P> + 'static, P: Partitioner + Send + Sync + 'static> Clone for PolledProducer<C, P> {
    fn clone(&self) -> Self {
        PolledProducer { producer: Arc::clone(&self.producer), stop: Arc::clone(&self.stop) }
    }
}

/// Tells the polling thread to stop when the last handle goes.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl<C: ProducerContext<P> + 'static, P: Partitioner + Send + Sync + 'static> PolledProducer<C, P> {
    /// Creates the producer from `config` and starts its polling thread
    /// (named `rdkafka-poll`).
    ///
    /// # Errors
    /// librdkafka's refusal of the configuration; a failure to start the
    /// thread is reported as `KafkaError::ClientCreation`.
    pub fn create(config: &ClientConfig, context: C) -> rdkafka::error::KafkaResult<Self> {
        let producer = Arc::new(BaseProducer::from_config_and_context(config, context)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_producer, thread_stop) = (Arc::clone(&producer), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("rdkafka-poll".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    thread_producer.poll(POLL_PERIOD);
                }
            })
            .map_err(|e| rdkafka::error::KafkaError::ClientCreation(format!("polling thread: {e}")))?;
        Ok(PolledProducer { producer, stop: Arc::new(StopOnDrop(stop)) })
    }
}

impl<C: ProducerContext<P> + 'static, P: Partitioner + Send + Sync + 'static> std::ops::Deref for PolledProducer<C, P> {
    type Target = BaseProducer<C, P>;

    fn deref(&self) -> &BaseProducer<C, P> {
        &self.producer
    }
}
