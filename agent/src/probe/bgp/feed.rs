//! What a BGP source hands the state machine, and the health of each feed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bgpkit_parser::BgpElem;
use netprobe_wire::msg::BgpSource;

/// One route update from a feed: an announcement or withdrawal of one
/// prefix as seen from one peer.
#[derive(Clone, Debug)]
pub struct FeedElem {
    /// The update as bgpkit-parser decodes it.
    pub elem: BgpElem,
    /// The route collector: RIS Live `host` (e.g. `rrc00`), the MRT
    /// file's collector, or for BMP the monitored router's address.
    pub collector: String,
    /// Which kind of feed it came from.
    pub source: BgpSource,
}

/// The channel a source sends on; the state machine's task receives.
pub type FeedTx = tokio::sync::mpsc::Sender<FeedElem>;

/// Liveness and error counters of one feed, shared with the heartbeat
/// and the metrics endpoint.
#[derive(Debug)]
pub struct FeedHealth {
    /// Human name, e.g. `ris-live wss://ris-live.ripe.net/v1/ws/`, `bmp 0.0.0.0:11019`.
    pub name: String,
    /// Whether the feed's connection (websocket, BMP session) is up.
    pub connected: AtomicBool,
    /// Messages received (before filtering).
    pub messages: AtomicU64,
    /// Messages that could not be parsed (counted and logged, then skipped).
    pub malformed: AtomicU64,
    /// Reconnections made after a drop.
    pub reconnects: AtomicU64,
    /// Fetches that failed (MRT over HTTP: an index or file that could not
    /// be downloaded, by status, transport error, truncation or size).
    pub fetch_errors: AtomicU64,
    last_message: Mutex<Option<Instant>>,
}

impl FeedHealth {
    /// A feed named `name`, not connected, nothing seen.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            connected: AtomicBool::new(false),
            messages: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            fetch_errors: AtomicU64::new(0),
            last_message: Mutex::new(None),
        }
    }
    /// Records that a message arrived now.
    pub fn saw_message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        *self.last_message.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
    /// Whether nothing arrived for `after` (a feed that never delivered counts as stale).
    pub fn is_stale(&self, now: Instant, after: Duration) -> bool {
        match *self.last_message.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(t) => now.saturating_duration_since(t) >= after,
            None => true,
        }
    }
}
// ---- items below this line may differ between branches ----

impl FeedHealth {
    /// Records that the feed's connection answered a keepalive now (a
    /// websocket pong): the feed is alive though nothing was published for
    /// its prefixes, which a quiet prefix can be for hours. Not counted in
    /// [`FeedHealth::messages`].
    pub fn saw_keepalive(&self) {
        *self.last_message.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}
