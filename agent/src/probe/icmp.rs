//! ICMP echo probe (`ping -c count -i packet_interval -W timeout`).
//!
//! Echo requests (RFC 792 type 8, RFC 4443 type 128) go out on one socket
//! per address family shared by every target ([`Pinger`]); one receive task
//! per socket hands each reply to the request waiting for its sequence
//! number. RTTs are timed like iputils `ping`: the clock is read just before
//! `sendto`, and the reply's arrival is the kernel's receive timestamp
//! (`SO_TIMESTAMPNS`), so a busy agent does not inflate RTTs by the time it
//! takes to get to the reply.
//!
//! Sockets: an unprivileged ICMP socket (`SOCK_DGRAM`, allowed by
//! `net.ipv4.ping_group_range`) is tried first, then a raw socket (needs
//! `CAP_NET_RAW`). On a raw socket ICMP errors (destination unreachable,
//! time exceeded) quoting one of our requests are reported as
//! `unreachable`; on a ping socket they surface as missing replies.

use std::collections::HashMap;
use std::io::{ErrorKind, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use netprobe_wire::msg::Icmp;
use netprobe_wire::{Body, ErrorClass, ProbeError, ProbeType};
use nix::sys::socket::{self, sockopt, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType};
use serde::Deserialize;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// One ICMP target: an `[[icmp]]` table, or one address of its `targets`
/// list (see [`expand_tables`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// IP address or host name (resolved once per run); an InfluxDB tag
    /// value (see [`crate::config::check_tag_value`]).
    #[serde(deserialize_with = "crate::config::tag_value")]
    pub target: String,
    /// How often a run starts.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Echo requests per run. Default 5.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Spacing of requests within a run (`ping -i`). Default 1 s.
    #[serde(default = "default_packet_interval", with = "humantime_serde")]
    pub packet_interval: Duration,
    /// Wait for each reply (`ping -W`). Default 1 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_count() -> u32 {
    5
}

fn default_packet_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

/// An `[[icmp]]` table as written: one `target`, or a `targets` list
/// sharing the table's settings (the compact form for thousands of
/// targets).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default, deserialize_with = "crate::config::some_tag_value")]
    target: Option<String>,
    #[serde(default, deserialize_with = "crate::config::tag_values")]
    targets: Vec<String>,
    #[serde(with = "humantime_serde")]
    interval: Duration,
    #[serde(default = "default_count")]
    count: u32,
    #[serde(default = "default_packet_interval", with = "humantime_serde")]
    packet_interval: Duration,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    timeout: Duration,
}

/// Reads the `[[icmp]]` tables into one [`Target`] per address.
///
/// # Errors
/// A table with both or neither of `target` and `targets`.
fn expand_tables<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Target>, D::Error> {
    let tables = Vec::<Table>::deserialize(d)?;
    let mut out = Vec::with_capacity(tables.iter().map(|t| t.targets.len().max(1)).sum());
    for t in tables {
        let addresses = match (t.target, t.targets.is_empty()) {
            (Some(one), true) => vec![one],
            (None, false) => t.targets,
            _ => return Err(serde::de::Error::custom("an [[icmp]] table needs either `target` or `targets`")),
        };
        out.extend(addresses.into_iter().map(|target| Target {
            target,
            interval: t.interval,
            count: t.count,
            packet_interval: t.packet_interval,
            timeout: t.timeout,
        }));
    }
    Ok(out)
}

/// Echo payload bytes, as `ping`'s default `-s 56`.
const PAYLOAD_BYTES: usize = 56;

impl super::Probe for Target {
    const TYPE: ProbeType = ProbeType::Icmp;
    /// Runs are cheap (a few requests on a shared socket): 10,000 targets
    /// at once are measured by `scripts/bench agent`.
    const CONCURRENCY: usize = 20_000;
    /// Resolution is bounded by `timeout`, each request waits `timeout` at
    /// most and the requests leave on a fixed schedule: a run ends within
    /// [`Probe::run_deadline`] (plus the runtime's own lateness).
    const SELF_BOUNDED: bool = true;

    fn interval(&self) -> Duration {
        self.interval
    }

    /// The last request leaves after `(count - 1) * packet_interval`, its
    /// reply may take `timeout`, and name resolution gets up to `timeout` too.
    fn run_deadline(&self) -> Duration {
        self.packet_interval * self.count.saturating_sub(1) + self.timeout * 2
    }

    fn validate(&self) -> Result<(), String> {
        if self.target.trim().is_empty() {
            return Err("target must not be empty".into());
        }
        if !(1..=10_000).contains(&self.count) {
            return Err(format!("count must be 1..=10000, not {}", self.count));
        }
        if self.timeout.is_zero() || self.packet_interval.is_zero() {
            return Err("timeout and packet_interval must be > 0".into());
        }
        let deadline = super::Probe::run_deadline(self);
        if deadline > self.interval + self.timeout {
            return Err(format!(
                "(count - 1) * packet_interval + timeout ({:?}) does not fit in interval ({:?})",
                deadline - self.timeout,
                self.interval
            ));
        }
        Ok(())
    }

    fn label(&self) -> String {
        format!("icmp {}", self.target)
    }

    async fn run(&self, ctx: &super::Context) -> Body {
        Body::Icmp(run(self, &ctx.pinger).await)
    }

    fn abandoned(&self, after: Duration) -> Body {
        Body::Icmp(Icmp { error: Some(super::abandoned_error(after)), ..nothing_sent(&self.target) })
    }

    fn succeeded(body: &Body) -> bool {
        matches!(body, Body::Icmp(m) if m.error.is_none())
    }

    fn tables<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Self>, D::Error> {
        expand_tables(d)
    }
}

/// Sends `count` echo requests to `target` through `pinger` and reports
/// the statistics `ping` prints. Never fails: resolution, permission and
/// total loss are reported in `error`.
pub async fn run(target: &Target, pinger: &Pinger) -> Icmp {
    let mut out = nothing_sent(&target.target);
    let fail = |class, message: String| Some(ProbeError { class, message });
    let ip = match resolve(&target.target, target.timeout).await {
        Ok(ip) => ip,
        Err(e) => {
            out.error = fail(ErrorClass::DnsFailure, e);
            return out;
        }
    };
    out.resolved_ip = Some(ip);
    let socket = match pinger.socket(ip) {
        Ok(s) => s,
        Err(e) => {
            out.error = fail(ErrorClass::PermissionDenied, e);
            return out;
        }
    };

    let start = tokio::time::Instant::now();
    let mut replies = Replies::default();
    // Requests in send order; each leaves the socket's in-flight map when
    // it is dropped: answered, timed out, or the run abandoned. Requests
    // whose timeout passes are settled between sends, so a long run keeps
    // only `timeout / packet_interval` of them in the map, not `count`.
    let mut waiting = std::collections::VecDeque::new();
    for i in 0..target.count {
        let send_at = start + target.packet_interval * i;
        // Also what timed out already, should the runtime be running late.
        replies.settle(&mut waiting, target.timeout, send_at.max(tokio::time::Instant::now())).await;
        // A timer for a time already past still costs the runtime a
        // wake-up: the first request of a run goes out at once.
        if send_at > tokio::time::Instant::now() {
            tokio::time::sleep_until(send_at).await;
        }
        match socket.send(ip) {
            Ok(w) => waiting.push_back(w),
            Err(e) => {
                out.error = fail(ErrorClass::Unreachable, format!("sendto {ip}: {e}"));
                break;
            }
        }
        out.sent += 1;
    }
    replies.settle(&mut waiting, target.timeout, tokio::time::Instant::now() + target.timeout).await;
    let Replies { rtts_ms, unreachable } = replies;
    fill_stats(&mut out, &rtts_ms);
    if out.received == 0 && out.error.is_none() {
        out.error = match unreachable {
            Some(why) => fail(ErrorClass::Unreachable, format!("{ip}: {why}")),
            None => fail(
                ErrorClass::Timeout,
                format!("no reply from {ip} to {} echo requests within {:?}", out.sent, target.timeout),
            ),
        };
    }
    out
}

/// What came back for the requests of one run.
#[derive(Default)]
struct Replies {
    /// RTTs of the echo replies, in send order.
    rtts_ms: Vec<f64>,
    /// The last ICMP error quoting one of the requests.
    unreachable: Option<String>,
}

impl Replies {
    /// Waits for the oldest requests whose timeout passes by `until` and
    /// records them; the rest stay in `waiting`.
    async fn settle(
        &mut self,
        waiting: &mut std::collections::VecDeque<Waiting>,
        timeout: Duration,
        until: tokio::time::Instant,
    ) {
        while let Some(w) = waiting.front_mut() {
            let deadline = w.sent_at + timeout;
            if deadline > until {
                return;
            }
            match tokio::time::timeout_at(deadline, &mut w.reply).await {
                Ok(Ok(Reply::Echo(rx))) => {
                    let rtt = rx.duration_since(w.sent_wall).unwrap_or_else(|_| w.sent_at.elapsed());
                    if rtt <= timeout {
                        self.rtts_ms.push(super::ms(rtt));
                    }
                }
                Ok(Ok(Reply::Unreachable(why))) => self.unreachable = Some(why),
                Ok(Err(_)) | Err(_) => {}
            }
            waiting.pop_front();
        }
    }
}

/// A result for `target` before any request went out: 100 % loss, so a
/// loss panel shows a target that cannot be measured as down, with the
/// `error` saying why.
fn nothing_sent(target: &str) -> Icmp {
    Icmp {
        target: target.to_owned(),
        resolved_ip: None,
        sent: 0,
        received: 0,
        loss_pct: 100.0,
        rtt_min_ms: None,
        rtt_avg_ms: None,
        rtt_median_ms: None,
        rtt_max_ms: None,
        rtt_stddev_ms: None,
        jitter_ms: None,
        error: None,
    }
}

/// `received`, `loss_pct` and the RTT statistics from the RTTs of the
/// replies in send order. Nothing sent is 100 % loss.
fn fill_stats(out: &mut Icmp, rtts_ms: &[f64]) {
    out.received = rtts_ms.len() as u32;
    out.loss_pct = if out.sent > 0 { f64::from(out.sent - out.received) * 100.0 / f64::from(out.sent) } else { 100.0 };
    if rtts_ms.is_empty() {
        return;
    }
    let n = rtts_ms.len() as f64;
    let avg = rtts_ms.iter().sum::<f64>() / n;
    let mut sorted = rtts_ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] };
    let variance = rtts_ms.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n;
    out.rtt_min_ms = sorted.first().copied();
    out.rtt_max_ms = sorted.last().copied();
    out.rtt_avg_ms = Some(avg);
    out.rtt_median_ms = Some(median);
    out.rtt_stddev_ms = Some(variance.sqrt());
    if rtts_ms.len() > 1 {
        let diffs = rtts_ms.windows(2).map(|w| (w[1] - w[0]).abs());
        out.jitter_ms = Some(diffs.sum::<f64>() / (n - 1.0));
    }
}

/// An IP literal as is; a name through the system resolver, first address.
pub(crate) async fn resolve(target: &str, timeout: Duration) -> Result<IpAddr, String> {
    if let Ok(ip) = target.parse::<IpAddr>() {
        return Ok(ip);
    }
    let lookup = tokio::net::lookup_host((target, 0));
    match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().map(|a| a.ip()).ok_or_else(|| format!("{target}: no address")),
        Ok(Err(e)) => Err(format!("{target}: {e}")),
        Err(_) => Err(format!("{target}: no answer from the resolver within {timeout:?}")),
    }
}

/// The ICMP sockets of one agent (one per address family, opened on first
/// use) and their receive tasks. Create it inside the tokio runtime that
/// runs the probes; dropping it stops the receive tasks.
#[derive(Debug, Default)]
pub struct Pinger {
    v4: OnceLock<Result<Arc<EchoSocket>, String>>,
    v6: OnceLock<Result<Arc<EchoSocket>, String>>,
}

impl Pinger {
    /// A pinger with no socket open yet.
    pub fn new() -> Self {
        Pinger::default()
    }

    fn socket(&self, ip: IpAddr) -> Result<Arc<EchoSocket>, String> {
        let cell = if ip.is_ipv4() { &self.v4 } else { &self.v6 };
        cell.get_or_init(|| EchoSocket::open(ip.is_ipv6())).clone()
    }

    /// Echo requests waiting for a reply, both address families (also the
    /// gauge `netprobe_agent_icmp_pending_requests`). Bounded by the
    /// requests whose timeout has not passed: an entry leaves when its reply
    /// comes, its timeout passes or its run ends.
    pub fn pending(&self) -> usize {
        [self.v4.get(), self.v6.get()].into_iter().flatten().flatten().map(|s| s.lock().pending.len()).sum()
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        for socket in [self.v4.get(), self.v6.get()].into_iter().flatten().flatten() {
            socket.stop.cancel();
        }
    }
}

/// What came back for one request.
#[derive(Debug)]
enum Reply {
    /// An echo reply, with the kernel's receive time.
    Echo(SystemTime),
    /// An ICMP error quoting the request.
    Unreachable(String),
}

/// One request in flight; dropping it removes its entry from the socket's
/// in-flight map (a no-op when the reply already took it).
struct Waiting {
    sent_at: tokio::time::Instant,
    sent_wall: SystemTime,
    reply: oneshot::Receiver<Reply>,
    socket: Arc<EchoSocket>,
    seq: u16,
    id: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.socket.take_if(self.seq, self.id);
    }
}

/// One ICMP socket, the requests in flight on it, keyed by sequence number.
#[derive(Debug)]
struct EchoSocket {
    fd: UdpSocket,
    v6: bool,
    /// Raw socket: we pick the identifier, see IP headers (v4) and errors.
    raw: bool,
    ident: u16,
    state: Mutex<InFlight>,
    stop: tokio_util::sync::CancellationToken,
    pending_gauge: metrics::Gauge,
}

#[derive(Debug, Default)]
struct InFlight {
    next_seq: u16,
    /// Identifies a request across sequence-number reuse.
    next_id: u64,
    pending: HashMap<u16, Pending>,
}

/// A request waiting for its reply.
#[derive(Debug)]
struct Pending {
    id: u64,
    ip: IpAddr,
    tx: oneshot::Sender<Reply>,
}

/// Requests one socket can have in flight: its sequence-number space.
const MAX_IN_FLIGHT: usize = 1 << 16;

impl EchoSocket {
    fn open(v6: bool) -> Result<Arc<EchoSocket>, String> {
        let (family, proto) =
            if v6 { (AddressFamily::Inet6, SockProtocol::IcmpV6) } else { (AddressFamily::Inet, SockProtocol::Icmp) };
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let (fd, raw) = match socket::socket(family, SockType::Datagram, flags, proto) {
            Ok(fd) => (fd, false),
            Err(dgram) => match socket::socket(family, SockType::Raw, flags, proto) {
                Ok(fd) => (fd, true),
                Err(raw) => {
                    return Err(format!(
                        "cannot open an ICMP socket: unprivileged ({dgram}; allow the agent's group in \
                         net.ipv4.ping_group_range) or raw ({raw}; grant CAP_NET_RAW)"
                    ))
                }
            },
        };
        socket::setsockopt(&fd, sockopt::ReceiveTimestampns, &true).map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
        // tokio's UdpSocket is a readiness wrapper for any datagram-like
        // descriptor; only its readiness and `try_io` are used here.
        let fd = UdpSocket::from_std(std::net::UdpSocket::from(fd))
            .map_err(|e| format!("registering the ICMP socket: {e}"))?;
        let socket = Arc::new(EchoSocket {
            fd,
            v6,
            raw,
            ident: fastrand::u16(..),
            state: Mutex::new(InFlight { next_seq: fastrand::u16(..), ..InFlight::default() }),
            stop: tokio_util::sync::CancellationToken::new(),
            pending_gauge: metrics::gauge!("netprobe_agent_icmp_pending_requests", "family" => if v6 { "ipv6" } else { "ipv4" }),
        });
        let receiver = Arc::clone(&socket);
        tokio::spawn(async move {
            tokio::select! {
                _ = receiver.stop.cancelled() => {}
                e = receiver.receive_loop() => tracing::error!(error = %e, "ICMP receive loop ended"),
            }
        });
        Ok(socket)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends one echo request to `ip`; the reply arrives in the returned
    /// [`Waiting`], which leaves the in-flight map when dropped.
    ///
    /// # Errors
    /// `sendto` failed, or all 65,536 sequence numbers are in flight.
    fn send(self: &Arc<Self>, ip: IpAddr) -> std::io::Result<Waiting> {
        let (tx, rx) = oneshot::channel();
        let (seq, id) = {
            let mut state = self.lock();
            if state.pending.len() >= MAX_IN_FLIGHT {
                return Err(std::io::Error::other("all 65,536 ICMP sequence numbers are waiting for replies"));
            }
            // Terminates: at least one sequence number is free.
            let mut seq = state.next_seq;
            while state.pending.contains_key(&seq) {
                seq = seq.wrapping_add(1);
            }
            let id = state.next_id;
            state.next_id += 1;
            state.next_seq = seq.wrapping_add(1);
            state.pending.insert(seq, Pending { id, ip, tx });
            self.pending_gauge.set(state.pending.len() as f64);
            (seq, id)
        };
        let packet = echo_request(self.v6, self.ident, seq);
        let addr = socket::SockaddrStorage::from(SocketAddr::new(ip, 0));
        let sent_wall = SystemTime::now();
        let sent_at = tokio::time::Instant::now();
        // From here on the entry leaves the map when `waiting` is dropped.
        let waiting = Waiting { sent_at, sent_wall, reply: rx, socket: Arc::clone(self), seq, id };
        socket::sendto(self.fd.as_raw_fd(), &packet, &addr, MsgFlags::empty())?;
        Ok(waiting)
    }

    /// Removes the request `seq` if it is still request `id`.
    fn take_if(&self, seq: u16, id: u64) {
        let mut state = self.lock();
        if state.pending.get(&seq).is_some_and(|p| p.id == id) {
            state.pending.remove(&seq);
            self.pending_gauge.set(state.pending.len() as f64);
        }
    }

    /// Reads every datagram, matching replies to requests, until the socket fails.
    async fn receive_loop(&self) -> std::io::Error {
        let mut buf = [0u8; 1500];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        loop {
            if let Err(e) = self.fd.readable().await {
                return e;
            }
            let got = self.fd.try_io(Interest::READABLE, || {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = socket::recvmsg::<socket::SockaddrStorage>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::empty(),
                )?;
                let rx = msg.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|m| match m {
                        ControlMessageOwned::ScmTimestampns(ts) => Some(
                            SystemTime::UNIX_EPOCH
                                + Duration::new(
                                    ts.tv_sec().try_into().unwrap_or(0),
                                    ts.tv_nsec().try_into().unwrap_or(0),
                                ),
                        ),
                        _ => None,
                    })
                });
                let from = msg.address.and_then(|a| match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
                    (Some(v4), _) => Some(IpAddr::V4(v4.ip())),
                    (_, Some(v6)) => Some(IpAddr::V6(v6.ip())),
                    _ => None,
                });
                Ok((msg.bytes, rx.unwrap_or_else(SystemTime::now), from))
            });
            match got {
                Ok((len, rx, from)) => self.dispatch(&buf[..len], rx, from),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => tracing::debug!(error = %e, "ICMP recvmsg"),
            }
        }
    }

    /// Hands one received datagram to the request it answers, if any.
    fn dispatch(&self, datagram: &[u8], rx: SystemTime, from: Option<IpAddr>) {
        let Some(parsed) = parse(datagram, self.v6, self.raw) else { return };
        if self.raw && parsed.ident != self.ident {
            return;
        }
        let mut state = self.lock();
        let Some(pending) = state.pending.get(&parsed.seq) else { return };
        let reply = match parsed.error {
            None if from == Some(pending.ip) => Reply::Echo(rx),
            // Same sequence number from another host: not ours.
            None => return,
            Some(why) => Reply::Unreachable(format!("{why} from {}", from.map_or("?".into(), |f| f.to_string()))),
        };
        if let Some(pending) = state.pending.remove(&parsed.seq) {
            self.pending_gauge.set(state.pending.len() as f64);
            drop(state);
            let _ = pending.tx.send(reply);
        }
    }
}

/// An echo request: type, code 0, checksum, identifier, sequence number
/// (RFC 792 / RFC 4443 §4.1) and [`PAYLOAD_BYTES`] of payload. The ICMPv6
/// checksum is left to the kernel (it needs the IPv6 pseudo-header).
fn echo_request(v6: bool, ident: u16, seq: u16) -> [u8; 8 + PAYLOAD_BYTES] {
    let mut p = [0u8; 8 + PAYLOAD_BYTES];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A received ICMP message that may concern one of our requests.
#[derive(Debug, PartialEq)]
struct Parsed {
    ident: u16,
    seq: u16,
    /// `None` for an echo reply; the ICMP error otherwise.
    error: Option<&'static str>,
}

/// Parses an echo reply, or an ICMP error quoting an echo request. A raw
/// IPv4 socket delivers the IP header first; ICMPv6 and ping sockets do not.
fn parse(datagram: &[u8], v6: bool, raw: bool) -> Option<Parsed> {
    let icmp = if raw && !v6 { datagram.get(usize::from(datagram.first()? & 0x0f) * 4..)? } else { datagram };
    let ids =
        |m: &[u8]| Some((u16::from_be_bytes([*m.get(4)?, *m.get(5)?]), u16::from_be_bytes([*m.get(6)?, *m.get(7)?])));
    let (echo_reply, request, unreachable, time_exceeded) = if v6 { (129, 128, 1, 3) } else { (0, 8, 3, 11) };
    let kind = *icmp.first()?;
    if kind == echo_reply {
        let (ident, seq) = ids(icmp)?;
        return Some(Parsed { ident, seq, error: None });
    }
    let error = if kind == unreachable {
        "destination unreachable"
    } else if kind == time_exceeded {
        "time exceeded"
    } else {
        return None;
    };
    // The error quotes the offending IP header and the first 8 bytes of our request.
    let quoted = icmp.get(8..)?;
    let inner = if v6 { quoted.get(40..)? } else { quoted.get(usize::from(quoted.first()? & 0x0f) * 4..)? };
    if *inner.first()? != request {
        return None;
    }
    let (ident, seq) = ids(inner)?;
    Some(Parsed { ident, seq, error: Some(error) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_request_verifies_to_zero() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&p), 0);
        assert_eq!((p[0], &p[4..8]), (8, &[0x12, 0x34, 0, 7][..]));
    }

    #[test]
    fn parses_replies_and_quoted_errors() {
        let mut reply = echo_request(false, 9, 42);
        reply[0] = 0;
        assert_eq!(parse(&reply, false, false), Some(Parsed { ident: 9, seq: 42, error: None }));
        let mut ip = vec![0x45u8];
        ip.resize(20, 0);
        let with_header = [ip.clone(), reply.to_vec()].concat();
        assert_eq!(parse(&with_header, false, true), Some(Parsed { ident: 9, seq: 42, error: None }));
        let error = [ip.clone(), vec![3, 1, 0, 0, 0, 0, 0, 0], ip, echo_request(false, 9, 43)[..8].to_vec()].concat();
        assert_eq!(
            parse(&error, false, true),
            Some(Parsed { ident: 9, seq: 43, error: Some("destination unreachable") })
        );
        assert_eq!(parse(&echo_request(true, 1, 2), true, true), None, "our own request is not a reply");
    }

    #[test]
    fn statistics_match_ping_definitions() {
        let mut out = Icmp { sent: 4, ..nothing_sent("t") };
        fill_stats(&mut out, &[1.0, 3.0, 2.0]);
        assert_eq!((out.received, out.loss_pct), (3, 25.0));
        assert_eq!(
            (out.rtt_min_ms, out.rtt_max_ms, out.rtt_avg_ms, out.rtt_median_ms),
            (Some(1.0), Some(3.0), Some(2.0), Some(2.0))
        );
        let stddev = out.rtt_stddev_ms.expect("stddev");
        assert!((stddev - (2.0f64 / 3.0).sqrt()).abs() < 1e-12, "{stddev}");
        assert_eq!(out.jitter_ms, Some(1.5), "(|3-1| + |2-3|) / 2");
    }
}
