//! RIPE RIS Live client: a websocket stream of BGP updates from the RIS
//! route collectors (<https://ris-live.ripe.net/manual/>).
//!
//! One connection subscribes once per watched prefix with
//! `{"type":"ris_subscribe","data":{"prefix":P,"moreSpecific":true,"type":"UPDATE"}}`,
//! so the server sends every UPDATE for the prefix and its more-specifics.
//! Each `ris_message` becomes one [`FeedElem`] per announced or withdrawn
//! prefix (bgpkit-parser's `parse_ris_live_message_iter`), with the
//! collector (`data.host`, e.g. `rrc00`).
//!
//! Robustness:
//! - a frame that is not JSON, or a `ris_message` bgpkit-parser rejects, is
//!   counted in [`FeedHealth::malformed`] and logged with a bounded excerpt,
//!   then skipped; the connection stays up;
//! - `ris_error` from the server is logged (it usually names a bad
//!   subscription);
//! - a websocket ping goes out every [`RisLiveOptions::ping_interval`]
//!   (30 s); the server's pong keeps the feed live
//!   ([`FeedHealth::saw_keepalive`]), so a watched prefix with no update
//!   for hours is not a stale feed. A connection that delivers neither a
//!   message nor a pong for [`RisLiveOptions::stale_after`] (5 minutes) is
//!   stale: it is closed and a new one made;
//! - after a drop (close, error, stale, failed connect) the client waits an
//!   exponential backoff with jitter (1 s doubling to 60 s; reset once a
//!   connection delivered a frame), reconnects and subscribes again.
//!
//! TLS (`wss://`) uses rustls with the ring provider and the system roots
//! (or only the CAs of [`RisLiveOptions::ca_file`], e.g. for a private
//! relay).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bgpkit_parser::parse_ris_live_message_iter;
use futures_util::{SinkExt, StreamExt};
use netprobe_wire::msg::BgpSource;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;
use tokio_util::sync::CancellationToken;

use super::feed::{FeedElem, FeedHealth, FeedTx};

/// Longest excerpt of a bad frame written to the log, in bytes.
pub const LOG_EXCERPT_BYTES: usize = 200;

/// Timers of the client. [`run`] uses the defaults; tests shorten them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RisLiveOptions {
    /// PEM file of the CAs trusted for `wss://` instead of the system
    /// roots (default none: system roots).
    pub ca_file: Option<PathBuf>,
    /// A connection that delivers no frame for this long is closed and
    /// replaced (default 5 minutes).
    pub stale_after: Duration,
    /// How often a websocket ping is sent (default 30 s).
    pub ping_interval: Duration,
    /// How long the TCP + TLS + websocket handshake may take (default 30 s).
    pub connect_timeout: Duration,
    /// First wait before reconnecting (default 1 s); doubles per failed try.
    pub backoff_initial: Duration,
    /// Longest wait before reconnecting (default 60 s).
    pub backoff_max: Duration,
}

impl Default for RisLiveOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            stale_after: Duration::from_secs(300),
            ping_interval: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// Streams RIS Live updates for `prefixes` (and their more-specifics) from
/// `url` (`ws://` or `wss://`) into `tx` until `shutdown` is cancelled or
/// the receiver is dropped, reconnecting after every drop. `health` follows
/// the connection: `connected`, `reconnects` (successful reconnections
/// after a drop), `messages` (every text frame), `malformed`.
pub async fn run(
    url: String,
    prefixes: Vec<ipnet::IpNet>,
    tx: FeedTx,
    health: Arc<FeedHealth>,
    shutdown: CancellationToken,
) {
    run_with(url, prefixes, tx, health, shutdown, RisLiveOptions::default()).await;
}

/// [`run`] with explicit timers.
pub async fn run_with(
    url: String,
    prefixes: Vec<ipnet::IpNet>,
    tx: FeedTx,
    health: Arc<FeedHealth>,
    shutdown: CancellationToken,
    options: RisLiveOptions,
) {
    let subscriptions: Vec<String> = prefixes.iter().map(|p| subscribe_message(*p)).collect();
    let mut backoff = Backoff::new(options.backoff_initial, options.backoff_max);
    let mut ever_connected = false;
    loop {
        let mut session = Session {
            url: &url,
            subscriptions: &subscriptions,
            tx: &tx,
            health: &health,
            options: &options,
            delivered: false,
            ever_connected,
        };
        let end = tokio::select! {
            () = shutdown.cancelled() => End::Shutdown,
            end = session.run() => end,
        };
        if health.connected.swap(false, Ordering::Relaxed) {
            ever_connected = true;
        }
        if session.delivered {
            backoff.reset();
        }
        match end {
            End::Shutdown => {
                tracing::debug!(feed = %health.name, "RIS Live client stopped");
                return;
            }
            End::ReceiverGone => {
                tracing::debug!(feed = %health.name, "RIS Live client stopped: the state machine is gone");
                return;
            }
            End::Dropped(why) => {
                let wait = backoff.next_wait();
                tracing::warn!(feed = %health.name, reason = %why, retry_in_ms = wait.as_millis() as u64,
                               "RIS Live connection lost; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = sleep(wait) => {}
                }
            }
        }
    }
}

/// How a connection ended.
enum End {
    Shutdown,
    ReceiverGone,
    Dropped(String),
}

/// One websocket connection.
struct Session<'a> {
    url: &'a str,
    subscriptions: &'a [String],
    tx: &'a FeedTx,
    health: &'a FeedHealth,
    options: &'a RisLiveOptions,
    /// Whether this connection delivered at least one frame.
    delivered: bool,
    /// Whether an earlier connection was up (this one is a reconnection).
    ever_connected: bool,
}

impl Session<'_> {
    async fn run(&mut self) -> End {
        let connector = match ws_connector(self.url, self.options.ca_file.as_deref()) {
            Ok(c) => c,
            Err(e) => return End::Dropped(e),
        };
        let connect = tokio_tungstenite::connect_async_tls_with_config(self.url, None, false, connector);
        let mut ws = match timeout(self.options.connect_timeout, connect).await {
            Err(_) => {
                return End::Dropped(format!(
                    "connect to {} timed out after {:?}",
                    self.url, self.options.connect_timeout
                ))
            }
            Ok(Err(e)) => return End::Dropped(format!("connect to {}: {e}", self.url)),
            Ok(Ok((ws, _response))) => ws,
        };
        for s in self.subscriptions {
            if let Err(e) = ws.send(Message::text(s.clone())).await {
                return End::Dropped(format!("sending ris_subscribe to {}: {e}", self.url));
            }
        }
        self.health.connected.store(true, Ordering::Relaxed);
        if self.ever_connected {
            self.health.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(feed = %self.health.name, subscriptions = self.subscriptions.len(), "RIS Live connected and subscribed");

        let mut last_frame = Instant::now();
        let mut ping =
            tokio::time::interval_at(Instant::now() + self.options.ping_interval, self.options.ping_interval);
        loop {
            tokio::select! {
                () = sleep_until(last_frame + self.options.stale_after) => {
                    tracing::warn!(feed = %self.health.name, after_s = self.options.stale_after.as_secs(),
                                   "RIS Live feed stale: no message and no pong; closing the connection");
                    // Best effort: the peer may be gone.
                    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
                    return End::Dropped(format!("no message and no pong for {:?}", self.options.stale_after));
                }
                _ = ping.tick() => {
                    if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                        return End::Dropped(format!("ping: {e}"));
                    }
                }
                frame = ws.next() => {
                    let frame = match frame {
                        None => return End::Dropped("connection closed".to_owned()),
                        Some(Err(e)) => return End::Dropped(format!("reading: {e}")),
                        Some(Ok(f)) => f,
                    };
                    match frame {
                        Message::Text(text) => {
                            last_frame = Instant::now();
                            self.delivered = true;
                            self.health.saw_message();
                            if !self.handle_text(text.as_str()).await {
                                return End::ReceiverGone;
                            }
                        }
                        Message::Binary(bytes) => {
                            last_frame = Instant::now();
                            self.delivered = true;
                            self.health.saw_message();
                            self.malformed("binary frame", &String::from_utf8_lossy(&bytes));
                        }
                        Message::Close(close) => {
                            return End::Dropped(match close {
                                Some(c) => format!("server closed: {} {}", c.code, c.reason),
                                None => "server closed".to_owned(),
                            });
                        }
                        Message::Pong(_) => {
                            last_frame = Instant::now();
                            self.health.saw_keepalive();
                        }
                        Message::Ping(_) | Message::Frame(_) => {}
                    }
                }
            }
        }
    }

    /// Handles one text frame; false when the receiver is gone.
    async fn handle_text(&self, text: &str) -> bool {
        let envelope: Envelope = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                self.malformed(&format!("not RIS Live JSON ({e})"), text);
                return true;
            }
        };
        match envelope.kind.as_str() {
            "ris_message" => {}
            "ris_error" => {
                let message = envelope.data.and_then(|d| d.message).unwrap_or_default();
                tracing::warn!(feed = %self.health.name, error = %excerpt(&message), "RIS Live server error");
                return true;
            }
            other => {
                tracing::debug!(feed = %self.health.name, kind = other, "RIS Live message ignored");
                return true;
            }
        }
        let collector = envelope.data.and_then(|d| d.host).unwrap_or_default();
        let elems = match parse_ris_live_message_iter(text) {
            Ok(elems) => elems,
            Err(e) => {
                self.malformed(&format!("unparsable ris_message ({})", excerpt(&e.to_string())), text);
                return true;
            }
        };
        for elem in elems {
            let item = FeedElem { elem, collector: collector.clone(), source: BgpSource::RisLive };
            if self.tx.send(item).await.is_err() {
                return false;
            }
        }
        true
    }

    fn malformed(&self, what: &str, text: &str) {
        let total = self.health.malformed.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(feed = %self.health.name, malformed_total = total, excerpt = %excerpt(text),
                       "RIS Live: {what}; skipped");
    }
}

/// The part of a server frame read before bgpkit-parser: its type and, for
/// `ris_message`, the collector; for `ris_error`, the message.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    data: Option<EnvelopeData>,
}

#[derive(Deserialize)]
struct EnvelopeData {
    host: Option<String>,
    message: Option<String>,
}

/// The `ris_subscribe` frame for `prefix` and its more-specifics, UPDATE
/// messages only.
pub fn subscribe_message(prefix: ipnet::IpNet) -> String {
    serde_json::json!({
        "type": "ris_subscribe",
        "data": { "prefix": prefix.to_string(), "moreSpecific": true, "type": "UPDATE" }
    })
    .to_string()
}

/// At most [`LOG_EXCERPT_BYTES`] of `text` (cut on a character boundary),
/// with `…` when cut.
pub fn excerpt(text: &str) -> String {
    if text.len() <= LOG_EXCERPT_BYTES {
        return text.to_owned();
    }
    let mut end = LOG_EXCERPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The TLS connector for `wss://` (rustls, ring; the CAs of `ca_file` or
/// the system roots); `None` for plain `ws://`.
fn ws_connector(url: &str, ca_file: Option<&std::path::Path>) -> Result<Option<Connector>, String> {
    if !url.starts_with("wss://") {
        return Ok(None);
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: cannot read: {e}", path.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("ca_file {}: bad PEM: {e}", path.display()))?;
            roots.add(cert).map_err(|e| format!("ca_file {}: bad certificate: {e}", path.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("ca_file {}: holds no PEM certificate", path.display()));
        }
        return Ok(Some(Connector::Rustls(tls_config(roots)?)));
    }
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!(%error, "cannot load a system CA certificate");
            }
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(loaded.certs);
            tls_config(roots)
        })
        .clone()?;
    Ok(Some(Connector::Rustls(config)))
}

/// TLS 1.2/1.3 client settings (ring) trusting `roots`; no ALPN (the
/// websocket upgrade is HTTP/1.1).
fn tls_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Exponential backoff with jitter: each wait is drawn from [w/2, w] where
/// w doubles from `initial` up to `max`.
#[derive(Debug)]
struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, current: initial }
    }

    fn reset(&mut self) {
        self.current = self.initial;
    }

    fn next_wait(&mut self) -> Duration {
        let w = self.current.min(self.max);
        self.current = (self.current * 2).min(self.max);
        w.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let caps = [1, 2, 4, 8, 16, 32, 60, 60, 60];
        for cap in caps {
            let w = b.next_wait();
            let cap = Duration::from_secs(cap);
            assert!(w >= cap / 2 && w <= cap, "wait {w:?} outside [{:?}, {cap:?}]", cap / 2);
        }
        b.reset();
        assert!(b.next_wait() <= Duration::from_secs(1));
    }

    #[test]
    fn excerpt_is_bounded_and_cut_on_a_char_boundary() {
        let long = "é".repeat(300);
        let e = excerpt(&long);
        assert!(e.len() <= LOG_EXCERPT_BYTES + "…".len());
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }
}
