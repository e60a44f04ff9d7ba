//! BMP station (BGP Monitoring Protocol, RFC 7854): the operator's routers
//! connect to it over TCP and report the routes they receive from their
//! BGP peers.
//!
//! Framing: each message starts with the 6-byte common header (version 3,
//! 32-bit length including the header, type); the station reads exactly
//! that many bytes and hands the message to bgpkit-parser's BMP module.
//!
//! What becomes a [`FeedElem`] (collector = the router's IP address, source
//! [`BgpSource::Bmp`]):
//! - Route Monitoring: the encapsulated BGP UPDATE, one elem per announced
//!   or withdrawn prefix, with the peer's address, ASN and BGP ID from the
//!   per-peer header and its timestamp (the station's clock when the router
//!   sends 0). Pre- and post-policy Adj-RIB-In and Loc-RIB (RFC 9069) are
//!   all passed on; a router reporting both pre- and post-policy sends each
//!   route twice, which the state machine's dedup absorbs. Adj-RIB-Out
//!   (RFC 8671, the O flag) describes what the router sends, not what it
//!   hears, and is skipped.
//! - Peer Down: RFC 7854 does not make the router withdraw the routes a
//!   peer had, but they are gone from its RIB. The station remembers the
//!   prefixes each (router, peer) currently announces (up to
//!   [`BmpOptions::tracked_routes_per_router`] per router connection) and
//!   on Peer Down sends a withdrawal for each, so visibility and withdraw
//!   events follow. Beyond the limit the synthesized withdrawals are
//!   incomplete (logged once per connection).
//! - The router's TCP session closing is *not* a withdrawal: monitoring is
//!   lost, not the routes; when the router reconnects it replays its
//!   tables (RFC 7854 section 5) and the dedup absorbs the repeats.
//!   `connected` in [`FeedHealth`] is whether at least one router is
//!   connected; `reconnects` counts connections from a router address seen
//!   before.
//! - Initiation, Peer Up, Termination: logged. Statistics, Route
//!   Mirroring and message types newer than RFC 7854: skipped.
//!
//! Bad input never stops the station: a message with a wrong version or an
//! absurd length (under 6 bytes or over [`BmpOptions::max_message_bytes`])
//! cannot be framed, so it is counted in [`FeedHealth::malformed`] and that
//! router's connection is closed; a well-framed message bgpkit-parser
//! rejects is counted and skipped. Other routers are unaffected. At most
//! [`BmpOptions::max_routers`] connections are served at once; more are
//! refused (closed at once, logged).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgpkit_parser::models::{ElemType, NetworkPrefix};
use bgpkit_parser::parser::bmp::messages::{BmpMessageBody, BmpPerPeerHeader, PerPeerFlags};
use bgpkit_parser::{parse_bmp_msg, BgpElem, Elementor};
use bytes::Bytes;
use netprobe_wire::msg::BgpSource;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::feed::{FeedElem, FeedHealth, FeedTx};

/// BMP's common header: version (1), message length (4), type (1).
pub const COMMON_HEADER_BYTES: usize = 6;

/// The only BMP version (RFC 7854).
pub const BMP_VERSION: u8 = 3;

/// Limits of the station. [`run`] uses the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BmpOptions {
    /// Router connections served at once (default 64).
    pub max_routers: usize,
    /// Longest BMP message accepted, header included (default 1 MiB: a
    /// Peer Up carries two BGP OPENs and a Route Monitoring one UPDATE of at
    /// most 64 KiB with RFC 8654 extended messages).
    pub max_message_bytes: u32,
    /// Routes remembered per router connection to synthesize withdrawals
    /// on Peer Down (default 100,000: about 5 MB).
    pub tracked_routes_per_router: usize,
    /// Only prefixes equal to or more specific than one of these are passed
    /// on and tracked; empty passes everything (default).
    pub watch: Vec<ipnet::IpNet>,
}

impl Default for BmpOptions {
    fn default() -> Self {
        Self { max_routers: 64, max_message_bytes: 1 << 20, tracked_routes_per_router: 100_000, watch: Vec::new() }
    }
}

/// Listens on `listen` and serves BMP routers until `shutdown` is cancelled
/// or the receiver of `tx` is dropped.
///
/// # Errors
/// Binding `listen` fails (address in use, permission). Nothing a router
/// sends is an error of the station.
pub async fn run(
    listen: SocketAddr,
    tx: FeedTx,
    health: Arc<FeedHealth>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    run_with(listen, tx, health, shutdown, BmpOptions::default()).await
}

/// [`run`] with explicit limits.
///
/// # Errors
/// As [`run`].
pub async fn run_with(
    listen: SocketAddr,
    tx: FeedTx,
    health: Arc<FeedHealth>,
    shutdown: CancellationToken,
    options: BmpOptions,
) -> io::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("BMP station: cannot listen on {listen}: {e}")))?;
    serve(listener, tx, health, shutdown, options).await;
    Ok(())
}

/// Serves BMP routers on an already bound `listener` (tests bind port 0)
/// until `shutdown` is cancelled or the receiver of `tx` is dropped.
pub async fn serve(
    listener: TcpListener,
    tx: FeedTx,
    health: Arc<FeedHealth>,
    shutdown: CancellationToken,
    options: BmpOptions,
) {
    /// Router addresses remembered for the reconnect counter.
    const KNOWN_ROUTERS_MAX: usize = 4096;
    let options = Arc::new(options);
    let stop = shutdown.child_token();
    let mut connections: JoinSet<()> = JoinSet::new();
    let mut known_routers: HashSet<IpAddr> = HashSet::new();
    tracing::info!(feed = %health.name, listen = ?listener.local_addr().ok(), "BMP station listening");
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tx.closed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {
                health.connected.store(!connections.is_empty(), Ordering::Relaxed);
            }
            accepted = listener.accept() => {
                let (stream, router) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and the like: wait a little rather than spin.
                        tracing::warn!(feed = %health.name, error = %e, "BMP station: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if connections.len() >= options.max_routers {
                    tracing::warn!(feed = %health.name, %router, max_routers = options.max_routers,
                                   "BMP station: too many routers connected; connection refused");
                    drop(stream);
                    continue;
                }
                if !known_routers.insert(router.ip()) {
                    health.reconnects.fetch_add(1, Ordering::Relaxed);
                } else if known_routers.len() > KNOWN_ROUTERS_MAX {
                    known_routers.clear();
                }
                health.connected.store(true, Ordering::Relaxed);
                tracing::info!(feed = %health.name, %router, "BMP router connected");
                let conn = Connection::new(router, tx.clone(), Arc::clone(&health), Arc::clone(&options));
                let stop = stop.clone();
                connections.spawn(async move {
                    let end = tokio::select! {
                        () = stop.cancelled() => "station stopping".to_owned(),
                        end = conn.serve(stream) => end,
                    };
                    tracing::info!(%router, reason = %end, "BMP router disconnected");
                });
            }
        }
    }
    stop.cancel();
    while connections.join_next().await.is_some() {}
    health.connected.store(false, Ordering::Relaxed);
}

/// The peer a route was heard from, as the per-peer header names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PeerKey {
    distinguisher: u64,
    ip: IpAddr,
}

/// One router's BMP session.
#[derive(Debug)]
struct Connection {
    router: SocketAddr,
    collector: String,
    tx: FeedTx,
    health: Arc<FeedHealth>,
    options: Arc<BmpOptions>,
    /// Prefixes each peer currently announces (for Peer Down).
    routes: HashMap<PeerKey, (BgpElemPeer, HashSet<NetworkPrefix>)>,
    tracked: usize,
    over_limit_logged: bool,
}

/// The peer fields a synthesized withdrawal carries.
#[derive(Clone, Copy, Debug)]
struct BgpElemPeer {
    asn: bgpkit_parser::models::Asn,
    bgp_id: std::net::Ipv4Addr,
}

impl Connection {
    fn new(router: SocketAddr, tx: FeedTx, health: Arc<FeedHealth>, options: Arc<BmpOptions>) -> Self {
        Self {
            router,
            collector: router.ip().to_string(),
            tx,
            health,
            options,
            routes: HashMap::new(),
            tracked: 0,
            over_limit_logged: false,
        }
    }

    /// Reads messages until the router closes, sends garbage or the
    /// receiver is gone; returns why it ended.
    async fn serve(mut self, stream: TcpStream) -> String {
        let mut reader = BufReader::with_capacity(64 * 1024, stream);
        loop {
            let mut header = [0u8; COMMON_HEADER_BYTES];
            match reader.read_exact(&mut header).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return "closed by the router".to_owned(),
                Err(e) => return format!("read error: {e}"),
            }
            let version = header[0];
            let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
            if version != BMP_VERSION {
                return self.unframeable(format!("version {version}, expected {BMP_VERSION}"), &header);
            }
            if (length as usize) < COMMON_HEADER_BYTES || length > self.options.max_message_bytes {
                return self.unframeable(
                    format!(
                        "message length {length} outside [{COMMON_HEADER_BYTES}, {}]",
                        self.options.max_message_bytes
                    ),
                    &header,
                );
            }
            let mut message = vec![0u8; length as usize];
            message[..COMMON_HEADER_BYTES].copy_from_slice(&header);
            if let Err(e) = reader.read_exact(&mut message[COMMON_HEADER_BYTES..]).await {
                return format!("truncated message ({length} bytes announced): {e}");
            }
            self.health.saw_message();
            if !self.handle(message).await {
                return "the state machine is gone".to_owned();
            }
        }
    }

    /// Counts a message that cannot be framed; the connection ends.
    fn unframeable(&self, why: String, header: &[u8]) -> String {
        let total = self.health.malformed.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(feed = %self.health.name, router = %self.router, malformed_total = total,
                       header_hex = %hex(header), "BMP: {why}; closing the connection");
        format!("garbage: {why}")
    }

    /// Handles one framed message; false when the receiver is gone.
    async fn handle(&mut self, message: Vec<u8>) -> bool {
        let kind = message[COMMON_HEADER_BYTES - 1];
        if kind > 6 {
            tracing::debug!(router = %self.router, kind, "BMP message type not handled; skipped");
            return true;
        }
        let length = message.len();
        let mut data = Bytes::from(message);
        let parsed = match parse_bmp_msg(&mut data) {
            Ok(m) => m,
            Err(e) => {
                let total = self.health.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(feed = %self.health.name, router = %self.router, kind, length, malformed_total = total,
                               error = %e, "BMP: message not parsable; skipped");
                return true;
            }
        };
        match (parsed.message_body, parsed.per_peer_header) {
            (BmpMessageBody::RouteMonitoring(rm), Some(peer)) => {
                if is_adj_rib_out(&peer) {
                    return true;
                }
                let timestamp = timestamp_or_now(peer.timestamp);
                let elems = Elementor::bgp_to_elems(rm.bgp_message, timestamp, &peer.peer_ip, &peer.peer_asn);
                for mut elem in elems {
                    if !self.watched(&elem) {
                        continue;
                    }
                    elem.peer_bgp_id = Some(peer.peer_bgp_id);
                    self.track(&peer, &elem);
                    if !self.send(elem).await {
                        return false;
                    }
                }
            }
            (BmpMessageBody::PeerDownNotification(down), Some(peer)) => {
                let key = PeerKey { distinguisher: peer.peer_distinguisher, ip: peer.peer_ip };
                let Some((who, prefixes)) = self.routes.remove(&key) else {
                    tracing::info!(router = %self.router, peer = %peer.peer_ip, reason = ?down.reason,
                                   "BMP peer down (no routes held)");
                    return true;
                };
                self.tracked -= prefixes.len();
                tracing::info!(router = %self.router, peer = %peer.peer_ip, reason = ?down.reason,
                               withdrawn = prefixes.len(), "BMP peer down: its routes are withdrawn");
                let timestamp = timestamp_or_now(peer.timestamp);
                for prefix in prefixes {
                    let elem = BgpElem {
                        timestamp,
                        elem_type: ElemType::WITHDRAW,
                        peer_ip: peer.peer_ip,
                        peer_asn: who.asn,
                        peer_bgp_id: Some(who.bgp_id),
                        prefix,
                        // Spelled out: BgpElem::default() has next hop 0.0.0.0.
                        next_hop: None,
                        as_path: None,
                        origin_asns: None,
                        origin: None,
                        local_pref: None,
                        med: None,
                        communities: None,
                        atomic: false,
                        aggr_asn: None,
                        aggr_ip: None,
                        only_to_customer: None,
                        unknown: None,
                        deprecated: None,
                    };
                    if !self.send(elem).await {
                        return false;
                    }
                }
            }
            (BmpMessageBody::PeerUpNotification(_), Some(peer)) => {
                tracing::info!(router = %self.router, peer = %peer.peer_ip, peer_asn = %peer.peer_asn, "BMP peer up");
            }
            (BmpMessageBody::InitiationMessage(init), _) => {
                let info: Vec<String> = init.tlvs.iter().map(|t| format!("{:?}={}", t.info_type, t.info)).collect();
                tracing::info!(router = %self.router, info = %info.join(", "), "BMP session initiated");
            }
            (BmpMessageBody::TerminationMessage(term), _) => {
                tracing::info!(router = %self.router, info = ?term, "BMP session terminated by the router");
            }
            _ => {}
        }
        true
    }

    fn watched(&self, elem: &BgpElem) -> bool {
        self.options.watch.is_empty() || self.options.watch.iter().any(|w| w.contains(&elem.prefix.prefix))
    }

    /// Remembers (announce) or forgets (withdraw) the route for Peer Down.
    fn track(&mut self, peer: &BmpPerPeerHeader, elem: &BgpElem) {
        let key = PeerKey { distinguisher: peer.peer_distinguisher, ip: peer.peer_ip };
        match elem.elem_type {
            ElemType::ANNOUNCE => {
                if self.tracked >= self.options.tracked_routes_per_router {
                    if !self.over_limit_logged {
                        self.over_limit_logged = true;
                        tracing::warn!(router = %self.router, limit = self.options.tracked_routes_per_router,
                                       "BMP: route tracking limit reached; Peer Down withdrawals will be incomplete \
                                        (set a watch list to track only the watched prefixes)");
                    }
                    return;
                }
                let entry = self
                    .routes
                    .entry(key)
                    .or_insert_with(|| (BgpElemPeer { asn: peer.peer_asn, bgp_id: peer.peer_bgp_id }, HashSet::new()));
                if entry.1.insert(elem.prefix) {
                    self.tracked += 1;
                }
            }
            ElemType::WITHDRAW => {
                if let Some(entry) = self.routes.get_mut(&key) {
                    if entry.1.remove(&elem.prefix) {
                        self.tracked -= 1;
                    }
                }
            }
        }
    }

    async fn send(&self, elem: BgpElem) -> bool {
        let item = FeedElem { elem, collector: self.collector.clone(), source: BgpSource::Bmp };
        self.tx.send(item).await.is_ok()
    }
}

fn is_adj_rib_out(peer: &BmpPerPeerHeader) -> bool {
    matches!(peer.peer_flags, PerPeerFlags::PeerFlags(f) if f.is_adj_rib_out())
}

/// The per-peer header's timestamp, or now when the router sent 0.
fn timestamp_or_now(timestamp: f64) -> f64 {
    if timestamp > 0.0 {
        return timestamp;
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
