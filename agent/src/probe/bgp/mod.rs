//! The BGP monitor (`[[bgp]]` tables): watches prefixes in a stream of route
//! updates from RIPE RIS Live, MRT files or BMP, and publishes events
//! (hijacks, more-specifics, path changes, flaps, visibility, RPKI) as `bgp`
//! messages on `bgp.updates`. See `docs/bgp.md`.
//!
//! Unlike the other probe types BGP is a stream, not a periodic run: the
//! agent starts one monitor task per distinct source next to the scheduler
//! ([`BgpRuntime`]); each source sends [`feed::FeedElem`]s to it, the pure
//! state machine ([`state::Monitor`]) classifies them, and the events go
//! through the same publisher and spool as every measurement.

pub mod bmp;
pub mod config;
pub mod feed;
pub mod mrt;
pub mod mrt_http;
pub mod ris_live;
pub mod rpki;
pub mod state;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netprobe_wire::msg::FeedStatus;
use netprobe_wire::{Body, Message, ProbeId, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::{Source, Table};
use feed::{FeedElem, FeedHealth};

/// A feed that delivered nothing for this long is stale (metric and log).
pub const FEED_STALE_AFTER: Duration = Duration::from_secs(300);

/// Updates a source may queue ahead of the state machine.
const FEED_QUEUE: usize = 4096;

/// The running BGP monitors of an agent: one per distinct source, each with
/// its source task and its state machine task.
#[derive(Debug)]
pub struct BgpRuntime {
    tables: Vec<Table>,
    cancel: CancellationToken,
    feeds: Vec<Feed>,
}

#[derive(Debug)]
struct Feed {
    health: Arc<FeedHealth>,
    stale_after: Duration,
    was_live: Option<bool>,
}

impl BgpRuntime {
    /// Starts a monitor per distinct source of `tables`, publishing events
    /// as messages of `probe_id`/`location` on `results`. Stops when
    /// `parent` is cancelled or on [`BgpRuntime::stop`].
    ///
    /// # Errors
    /// A source this build cannot run, named with its table.
    pub fn start(
        tables: Vec<Table>,
        probe_id: &ProbeId,
        location: &str,
        results: mpsc::Sender<Message>,
        parent: &CancellationToken,
    ) -> Result<Self, String> {
        let cancel = parent.child_token();
        let mut by_source: BTreeMap<Source, Vec<&Table>> = BTreeMap::new();
        for t in &tables {
            by_source.entry(t.source.clone()).or_default().push(t);
        }
        let mut feeds = Vec::new();
        for (source, tables) in by_source {
            let health = Arc::new(FeedHealth::new(source.name()));
            let (tx, rx) = mpsc::channel::<FeedElem>(FEED_QUEUE);
            let token = cancel.clone();
            let stale_after = match &source {
                Source::Mrt { poll_interval, .. } => FEED_STALE_AFTER.max(*poll_interval * 2),
                _ => FEED_STALE_AFTER,
            };
            // The one place that maps a source to its task.
            match source.clone() {
                Source::Mrt { location, poll_interval } => {
                    tokio::spawn(mrt::run(location, poll_interval, tx, Arc::clone(&health), token));
                }
                Source::RisLive { url } => {
                    let prefixes = tables.iter().flat_map(|t| t.prefixes.iter().copied()).collect();
                    tokio::spawn(ris_live::run(url, prefixes, tx, Arc::clone(&health), token));
                }
                Source::Bmp { listen } => {
                    // Only watched prefixes (and their more-specifics) are passed on and tracked.
                    let watch = tables.iter().flat_map(|t| t.prefixes.iter().copied()).collect();
                    let options = bmp::BmpOptions { watch, ..bmp::BmpOptions::default() };
                    let feed = Arc::clone(&health);
                    tokio::spawn(async move {
                        if let Err(e) = bmp::run_with(listen, tx, feed, token, options).await {
                            tracing::error!(%listen, error = %e, "BMP station cannot listen; the feed stays down");
                        }
                    });
                }
            }
            let monitor = state::Monitor::new(tables.iter().map(|t| t.watch()).collect());
            tokio::spawn(classify(
                monitor,
                rx,
                results.clone(),
                probe_id.clone(),
                location.to_owned(),
                health.name.clone(),
                cancel.clone(),
            ));
            feeds.push(Feed { health, stale_after, was_live: None });
        }
        Ok(BgpRuntime { tables, cancel, feeds })
    }

    /// The tables this runtime watches (to tell whether a reload changed them).
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// Stops every source and monitor (queued updates are dropped).
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// The liveness of each feed now (connected and a message within
    /// [`FEED_STALE_AFTER`]); logs feeds that became stale or live again
    /// and sets `netprobe_agent_bgp_feed_live{feed}`.
    pub fn feed_status(&mut self) -> Vec<FeedStatus> {
        let now = Instant::now();
        self.feeds
            .iter_mut()
            .map(|f| {
                let h = &f.health;
                let live = h.connected.load(Ordering::Relaxed) && !h.is_stale(now, f.stale_after);
                if f.was_live.is_some_and(|was| was != live) || (f.was_live.is_none() && live) {
                    if live {
                        tracing::info!(feed = %h.name, "BGP feed live");
                    } else {
                        tracing::warn!(feed = %h.name, stale_after_s = f.stale_after.as_secs(),
                            connected = h.connected.load(Ordering::Relaxed), "BGP feed stale: no message");
                    }
                }
                f.was_live = Some(live);
                metrics::gauge!("netprobe_agent_bgp_feed_live", "feed" => h.name.clone()).set(if live {
                    1.0
                } else {
                    0.0
                });
                FeedStatus {
                    name: h.name.clone(),
                    live,
                    messages: h.messages.load(Ordering::Relaxed),
                    malformed: h.malformed.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

impl Drop for BgpRuntime {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The state machine task of one source: classifies every update and
/// publishes its events; ends when the source ends (all senders dropped),
/// on `cancel`, or when the agent's inbox is closed. On shutdown, updates
/// still queued are dropped (a stream resumes where the feed is).
async fn classify(
    mut monitor: state::Monitor,
    mut rx: mpsc::Receiver<FeedElem>,
    results: mpsc::Sender<Message>,
    probe_id: ProbeId,
    location: String,
    feed: String,
    cancel: CancellationToken,
) {
    let mut exported = state::Counters::default();
    loop {
        let fe = tokio::select! {
            _ = cancel.cancelled() => break,
            fe = rx.recv() => match fe {
                Some(fe) => fe,
                None => break,
            },
        };
        let at = timestamp_of(fe.elem.timestamp);
        for event in monitor.process(&fe) {
            metrics::counter!("netprobe_agent_bgp_events_total", "event" => event.event.as_str()).increment(1);
            let msg = Message::new(probe_id.clone(), location.clone(), at, Body::Bgp(event));
            if results.send(msg).await.is_err() {
                return;
            }
        }
        if monitor.counters().updates.is_multiple_of(1024) {
            export(&feed, monitor.counters(), &mut exported);
        }
    }
    export(&feed, monitor.counters(), &mut exported);
}

/// Adds what changed since `last` to the `netprobe_agent_bgp_*_total` counters.
fn export(feed: &str, now: &state::Counters, last: &mut state::Counters) {
    let pairs = [
        ("netprobe_agent_bgp_updates_total", now.updates, last.updates),
        ("netprobe_agent_bgp_unrelated_updates_total", now.unrelated, last.unrelated),
        ("netprobe_agent_bgp_suppressed_updates_total", now.suppressed, last.suppressed),
        ("netprobe_agent_bgp_ignored_updates_total", now.ignored, last.ignored),
        ("netprobe_agent_bgp_state_full_updates_total", now.state_full, last.state_full),
    ];
    for (name, n, l) in pairs {
        metrics::counter!(name, "feed" => feed.to_owned()).increment(n - l);
    }
    for (state, n, l) in [
        ("valid", now.rpki_valid, last.rpki_valid),
        ("invalid", now.rpki_invalid, last.rpki_invalid),
        ("not_found", now.rpki_not_found, last.rpki_not_found),
    ] {
        metrics::counter!("netprobe_agent_bgp_rpki_total", "feed" => feed.to_owned(), "state" => state)
            .increment(n - l);
    }
    *last = now.clone();
}

/// An update's timestamp (seconds since the epoch, as MRT and RIS Live
/// give it) as a message timestamp.
fn timestamp_of(seconds: f64) -> Timestamp {
    // MRT and RIS Live carry microseconds; rounding there keeps f64 noise
    // out of the nanoseconds (the point's identity in InfluxDB).
    let micros = (seconds * 1e6).round();
    if micros.is_finite() && micros >= 0.0 && micros < (i64::MAX / 1000) as f64 {
        Timestamp::from_unix_nanos(micros as i64 * 1000)
    } else {
        Timestamp::now()
    }
}
