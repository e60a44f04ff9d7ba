//! MTR path probe (`mtr -n --report -c count`): per-hop loss and latency,
//! the path's hash (to see path changes) and each hop's origin ASN.
//!
//! The tracing itself is trippy-core (pinned `=0.13.0`: its API is marked
//! unstable, so it stays behind this module). Its tracer is blocking and
//! thread based: each run builds one tracer with its own
//! `trace_identifier` (the ICMP echo identifier that tells concurrent
//! tracers' replies apart) and runs it on the blocking pool
//! (`spawn_blocking`), so a run of seconds to minutes never holds an
//! async worker; at most [`Target::CONCURRENCY`] tracers run at once.
//!
//! Flows: ICMP traces keep one echo identifier for the whole run; UDP uses
//! the Paris strategy (fixed source and destination ports, the sequence in
//! the UDP checksum), so routers hashing the 5-tuple (ECMP) send every
//! probe of a run the same way. TCP uses trippy's classic strategy (fixed
//! destination port, the sequence in the source port): trippy offers no
//! Paris mode for TCP.
//!
//! The ASN of each hop comes from a local prefix table ([`AsnTable`],
//! `[agent] asn_table`), never from the network. Reverse DNS of hop
//! addresses (`resolve_hostnames = true`) comes from a bounded cache filled
//! in the background ([`hostnames`]): never on the run's critical path.

pub mod hostnames;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use netprobe_wire::msg::{Mtr, MtrHop};
use netprobe_wire::{Body, ErrorClass, ProbeError, ProbeType};
use prefix_trie::PrefixMap;
use serde::Deserialize;

/// The transport of the probes (`mtr` default ICMP, `mtr -u`, `mtr -T`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// ICMP echo requests (default).
    #[default]
    Icmp,
    /// UDP datagrams to `port` (default 33434), Paris flow identifiers.
    Udp,
    /// TCP SYNs to `port` (default 80).
    Tcp,
}

/// One MTR target: an `[[mtr]]` table, or one address of its `targets`
/// list.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// IP address or host name (resolved once per run); an InfluxDB tag
    /// value.
    pub target: String,
    /// How often a run starts. Default 5 min.
    pub interval: Duration,
    /// Rounds per run (`mtr -c`). Default 10.
    pub count: u32,
    /// Largest TTL probed (`mtr -m`). Default 30.
    pub max_ttl: u8,
    /// First TTL probed (`mtr -f`). Default 1.
    pub first_ttl: u8,
    /// Probe transport. Default ICMP.
    pub protocol: Protocol,
    /// Destination port for UDP (default 33434) and TCP (default 80).
    pub port: Option<u16>,
    /// Shortest duration of a round (`mtr -i`). Default 1 s.
    pub round_interval: Duration,
    /// How long a round waits for replies (late replies after the
    /// destination answered: at most 100 ms of it). Default 1 s.
    pub timeout: Duration,
    /// The `[agent] asn_table`, attached by `Config::load`.
    pub asn_table: Option<Arc<AsnTable>>,
    /// Whether hops carry reverse-DNS names (`hostname`). Default false.
    pub resolve_hostnames: bool,
    /// The resolver asked for hop names (`IP:port`). Default: the first
    /// `nameserver` of `/etc/resolv.conf`, port 53.
    pub hostname_resolver: Option<SocketAddr>,
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_count() -> u32 {
    10
}
fn default_max_ttl() -> u8 {
    30
}
fn default_first_ttl() -> u8 {
    1
}
fn default_second() -> Duration {
    Duration::from_secs(1)
}

/// An `[[mtr]]` table as written: one `target` or a `targets` list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default, deserialize_with = "crate::config::some_tag_value")]
    target: Option<String>,
    #[serde(default, deserialize_with = "crate::config::tag_values")]
    targets: Vec<String>,
    #[serde(default = "default_interval", with = "humantime_serde")]
    interval: Duration,
    #[serde(default = "default_count")]
    count: u32,
    #[serde(default = "default_max_ttl")]
    max_ttl: u8,
    #[serde(default = "default_first_ttl")]
    first_ttl: u8,
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default = "default_second", with = "humantime_serde")]
    round_interval: Duration,
    #[serde(default = "default_second", with = "humantime_serde")]
    timeout: Duration,
    #[serde(default)]
    resolve_hostnames: bool,
    #[serde(default)]
    hostname_resolver: Option<SocketAddr>,
}

/// One `[[mtr]]` table with a single `target` (the `targets` form goes
/// through [`super::Probe::tables`]).
impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut all = expand::<D::Error>(vec![Table::deserialize(d)?])?;
        match all.len() {
            1 => Ok(all.remove(0)),
            _ => Err(serde::de::Error::custom("one [[mtr]] table with a single `target` expected")),
        }
    }
}

fn expand_tables<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Target>, D::Error> {
    expand(Vec::<Table>::deserialize(d)?)
}

fn expand<E: serde::de::Error>(tables: Vec<Table>) -> Result<Vec<Target>, E> {
    let mut out = Vec::new();
    for t in tables {
        let addresses = match (t.target, t.targets.is_empty()) {
            (Some(one), true) => vec![one],
            (None, false) => t.targets,
            _ => return Err(E::custom("an [[mtr]] table needs either `target` or `targets`")),
        };
        out.extend(addresses.into_iter().map(|target| Target {
            target,
            interval: t.interval,
            count: t.count,
            max_ttl: t.max_ttl,
            first_ttl: t.first_ttl,
            protocol: t.protocol,
            port: t.port,
            round_interval: t.round_interval,
            timeout: t.timeout,
            asn_table: None,
            resolve_hostnames: t.resolve_hostnames,
            hostname_resolver: t.hostname_resolver,
        }));
    }
    Ok(out)
}

/// Late replies are waited for this long after the destination answered
/// (capped by `timeout`).
const GRACE: Duration = Duration::from_millis(100);

/// trippy's wait for one reply for TCP traces: trippy notices a TCP
/// connection to the destination only when that wait ends, so it bounds how
/// late the destination's reply is seen (TCP RTTs read up to this high).
const TCP_READ_TIMEOUT: Duration = Duration::from_millis(10);
/// Bounds of trippy's wait for one reply for ICMP and UDP traces.
const READ_TIMEOUT_MIN: Duration = Duration::from_millis(10);
const READ_TIMEOUT_MAX: Duration = Duration::from_millis(100);

impl Target {
    /// The longest one round can take.
    fn round_max(&self) -> Duration {
        self.round_interval.max(self.timeout)
    }

    /// How long trippy's loop waits for one reply before it checks the
    /// round's end and sends the next probe (it sends one probe per turn).
    /// A reply ends the wait at once, so this does not touch RTTs of ICMP
    /// and UDP traces; it paces sends past silent hops and is how late a
    /// round may end. Each wait is a wake-up of the tracer thread: at
    /// 10 ms a 1 s round was ~100 `select` calls whatever the path, most
    /// of the agent's CPU under `scripts/bench mtr`. So it is as long as
    /// lets every TTL be sent within one round even if all are silent
    /// (`round_max / TTLs`), within 10..=100 ms (33 ms for the defaults);
    /// TCP keeps [`TCP_READ_TIMEOUT`].
    fn read_timeout(&self) -> Duration {
        if self.protocol == Protocol::Tcp {
            return TCP_READ_TIMEOUT;
        }
        let ttls = u32::from(self.max_ttl - self.first_ttl) + 1;
        (self.round_max() / ttls).clamp(READ_TIMEOUT_MIN, READ_TIMEOUT_MAX)
    }
}

impl super::Probe for Target {
    const TYPE: ProbeType = ProbeType::Mtr;
    /// One blocking tracer thread each (see the module doc).
    const CONCURRENCY: usize = 4;

    fn interval(&self) -> Duration {
        self.interval
    }

    /// `count` rounds of at most `max(round_interval, timeout)` each, plus
    /// per round the grace a late reply near the round's end may add and
    /// the tracer's poll granularity, plus `timeout` for name resolution.
    fn run_deadline(&self) -> Duration {
        (self.round_max() + GRACE.min(self.timeout) + self.read_timeout()) * self.count + self.timeout
    }

    fn validate(&self) -> Result<(), String> {
        if self.target.trim().is_empty() {
            return Err("target must not be empty".into());
        }
        if !(1..=10_000).contains(&self.count) {
            return Err(format!("count must be 1..=10000, not {}", self.count));
        }
        if self.first_ttl == 0 || self.first_ttl > self.max_ttl || self.max_ttl > trippy_core::MAX_TTL {
            return Err(format!(
                "first_ttl ({}) and max_ttl ({}) must satisfy 1 <= first_ttl <= max_ttl <= {}",
                self.first_ttl,
                self.max_ttl,
                trippy_core::MAX_TTL
            ));
        }
        if self.timeout.is_zero() || self.round_interval.is_zero() {
            return Err("timeout and round_interval must be > 0".into());
        }
        if self.port.is_some() && self.protocol == Protocol::Icmp {
            return Err("port is for protocol = \"udp\" or \"tcp\" only".into());
        }
        if self.port == Some(0) {
            return Err("port must be 1..=65535".into());
        }
        let deadline = self.round_max() * self.count;
        if deadline > self.interval {
            return Err(format!(
                "count * max(round_interval, timeout) ({deadline:?}) does not fit in interval ({:?})",
                self.interval
            ));
        }
        Ok(())
    }

    fn label(&self) -> String {
        format!("mtr {}", self.target)
    }

    async fn run(&self, _ctx: &super::Context) -> Body {
        Body::Mtr(run(self).await)
    }

    fn abandoned(&self, after: Duration) -> Body {
        Body::Mtr(Mtr { error: Some(super::abandoned_error(after)), ..nothing(&self.target) })
    }

    fn succeeded(body: &Body) -> bool {
        matches!(body, Body::Mtr(m) if m.error.is_none())
    }

    fn tables<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Self>, D::Error> {
        expand_tables(d)
    }
}

/// A result before anything was traced.
fn nothing(target: &str) -> Mtr {
    Mtr {
        target: target.to_owned(),
        destination_reached: false,
        hop_count: 0,
        path_hash: path_hash(&[]),
        hops: Vec::new(),
        error: None,
    }
}

/// Trace identifiers handed out to tracers (ICMP echo identifier), one per
/// run so concurrent tracers never take each other's replies. Starts at a
/// process-specific value so two agents on one host rarely collide.
fn next_trace_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = (std::process::id() as u16).wrapping_mul(7919);
    // 0 means "none" to trippy; skip it.
    loop {
        let id = base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
        if id != 0 {
            return id;
        }
    }
}

/// Traces `target` for `count` rounds. Never fails: resolution, permission
/// and tracer errors are reported in `error`.
pub async fn run(target: &Target) -> Mtr {
    let mut out = nothing(&target.target);
    let fail = |class, message: String| Some(ProbeError { class, message });
    let ip = match super::icmp::resolve(&target.target, target.timeout).await {
        Ok(ip) => ip,
        Err(e) => {
            out.error = fail(ErrorClass::DnsFailure, e);
            return out;
        }
    };
    let t = target.clone();
    let traced = tokio::task::spawn_blocking(move || trace(&t, ip)).await;
    match traced {
        Ok(Ok(mut m)) => {
            m.target = target.target.clone();
            if target.resolve_hostnames {
                let resolver = target.hostname_resolver.unwrap_or_else(hostnames::system_resolver);
                let answered: Vec<&mut MtrHop> = m.hops.iter_mut().filter(|h| h.ip.is_some()).collect();
                let ips: Vec<IpAddr> = answered.iter().filter_map(|h| h.ip).collect();
                let names = hostnames::HostnameCache::global().names(resolver, &ips);
                for (hop, name) in answered.into_iter().zip(names) {
                    hop.hostname = name;
                }
            }
            m
        }
        Ok(Err(e)) => {
            out.error = Some(e);
            out
        }
        Err(e) => {
            out.error = fail(ErrorClass::Other, format!("tracer thread for {ip}: {e}"));
            out
        }
    }
}

/// Whether a trippy error is the kernel refusing a raw socket.
fn is_permission(e: &trippy_core::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("operation not permitted") || text.contains("permission denied")
}

/// Runs one tracer on the current thread (blocking) and turns its final
/// state into the wire message.
fn trace(target: &Target, ip: IpAddr) -> Result<Mtr, ProbeError> {
    use trippy_core::{Builder, MultipathStrategy, Port, PortDirection, PrivilegeMode};
    let trace_id = next_trace_id();
    let mut builder = Builder::new(ip)
        .privilege_mode(PrivilegeMode::Privileged)
        .trace_identifier(trace_id)
        .max_rounds(Some(target.count as usize))
        .first_ttl(target.first_ttl)
        .max_ttl(target.max_ttl)
        .min_round_duration(target.round_interval)
        .max_round_duration(target.round_max())
        .grace_duration(GRACE.min(target.timeout))
        .read_timeout(target.read_timeout())
        .max_samples(target.count as usize)
        .max_flows(64);
    // Source port for UDP Paris: fixed per run, derived from the trace id.
    let src_port = Port(33_000 + (trace_id % 16_000));
    builder = match target.protocol {
        Protocol::Icmp => builder.protocol(trippy_core::Protocol::Icmp),
        Protocol::Udp => builder
            .protocol(trippy_core::Protocol::Udp)
            .multipath_strategy(MultipathStrategy::Paris)
            .port_direction(PortDirection::FixedBoth(src_port, Port(target.port.unwrap_or(33_434)))),
        Protocol::Tcp => builder
            .protocol(trippy_core::Protocol::Tcp)
            .multipath_strategy(MultipathStrategy::Classic)
            .port_direction(PortDirection::FixedDest(Port(target.port.unwrap_or(80)))),
    };
    let error = |e: trippy_core::Error| {
        if is_permission(&e) {
            ProbeError {
                class: ErrorClass::PermissionDenied,
                message: format!(
                    "mtr {ip}: {e}: raw sockets need CAP_NET_RAW (the systemd unit grants it: \
                     AmbientCapabilities=CAP_NET_RAW)"
                ),
            }
        } else {
            ProbeError { class: ErrorClass::Other, message: format!("mtr {ip}: {e}") }
        }
    };
    let tracer = builder.build().map_err(error)?;
    tracer.run().map_err(error)?;
    let state = tracer.snapshot();
    if let Some(e) = state.error() {
        let class = if e.to_ascii_lowercase().contains("not permitted") {
            ErrorClass::PermissionDenied
        } else {
            ErrorClass::Other
        };
        return Err(ProbeError { class, message: format!("mtr {ip}: {e} (raw sockets need CAP_NET_RAW)") });
    }
    let hops: Vec<Hop> = state
        .hops()
        .iter()
        .map(|h| Hop {
            ttl: h.ttl(),
            addrs: h.addrs_with_counts().map(|(a, n)| (*a, *n)).collect(),
            sent: h.total_sent(),
            received: h.total_recv(),
            last_ms: h.last_ms(),
            avg_ms: h.avg_ms(),
            best_ms: h.best_ms(),
            worst_ms: h.worst_ms(),
            stddev_ms: h.stddev_ms(),
        })
        .collect();
    Ok(summarize(&target.target, ip, &hops, target.asn_table.as_deref()))
}

/// One hop as the tracer left it (trippy's `Hop`, kept to what we report).
#[derive(Clone, Debug)]
struct Hop {
    ttl: u8,
    /// Responding addresses with how many replies each.
    addrs: Vec<(IpAddr, usize)>,
    sent: usize,
    received: usize,
    last_ms: Option<f64>,
    avg_ms: f64,
    best_ms: Option<f64>,
    worst_ms: Option<f64>,
    /// Sample standard deviation (n - 1).
    stddev_ms: f64,
}

/// The wire message from the tracer's hops: each hop's address is the one
/// that answered most (ties: the lowest address), the others that answered
/// that TTL go to `other_ips`, most replies first; hops after the destination are dropped, trailing
/// silent hops of a trace that did not reach it are cut to one.
fn summarize(target: &str, ip: IpAddr, hops: &[Hop], asn: Option<&AsnTable>) -> Mtr {
    let end = match hops.iter().position(|h| h.addrs.iter().any(|(a, _)| *a == ip)) {
        Some(i) => i + 1,
        None => hops.iter().rposition(|h| !h.addrs.is_empty()).map_or(hops.len().min(1), |i| (i + 2).min(hops.len())),
    };
    let destination_reached = hops[..end].iter().any(|h| h.addrs.iter().any(|(a, _)| *a == ip));
    let out_hops: Vec<MtrHop> = hops[..end]
        .iter()
        .map(|h| {
            let mut by_count = h.addrs.clone();
            by_count.sort_by(|(a, n), (b, m)| m.cmp(n).then(a.cmp(b)));
            let mut responders = by_count.into_iter().map(|(a, _)| a);
            let ip = responders.next();
            let other_ips: Vec<IpAddr> = responders.collect();
            let received = h.received as u32;
            let n = received as f64;
            let answered = received > 0;
            MtrHop {
                ttl: netprobe_wire::Ttl(h.ttl),
                ip,
                other_ips,
                hostname: None,
                asn: ip.and_then(|ip| asn.and_then(|t| t.lookup(ip))),
                sent: h.sent as u32,
                received,
                loss_pct: if h.sent > 0 { (h.sent - h.received) as f64 * 100.0 / h.sent as f64 } else { 100.0 },
                rtt_last_ms: if answered { h.last_ms } else { None },
                rtt_avg_ms: answered.then_some(h.avg_ms),
                rtt_best_ms: if answered { h.best_ms } else { None },
                rtt_worst_ms: if answered { h.worst_ms } else { None },
                // trippy gives the sample deviation; the wire carries the
                // population one.
                rtt_stddev_ms: answered.then(|| if received > 1 { h.stddev_ms * ((n - 1.0) / n).sqrt() } else { 0.0 }),
            }
        })
        .collect();
    let hop_ips: Vec<Option<IpAddr>> = out_hops.iter().map(|h| h.ip).collect();
    let last_responding = out_hops.iter().rposition(|h| h.ip.is_some()).map_or(0, |i| i + 1);
    Mtr {
        target: target.to_owned(),
        destination_reached,
        hop_count: last_responding as u32,
        path_hash: path_hash(&hop_ips),
        error: if destination_reached {
            None
        } else {
            Some(ProbeError {
                class: ErrorClass::Unreachable,
                message: format!("{ip} did not answer; last responding hop at position {last_responding}"),
            })
        },
        hops: out_hops,
    }
}

/// The path hash (documented in docs/agent.md "MTR"): 64-bit FNV-1a over
/// the UTF-8 text of the hop list, each hop's address (`Display`: dotted
/// quad, RFC 5952 IPv6) or `*` for a silent hop, joined with `,`; 16
/// lowercase hex digits.
pub fn path_hash(hops: &[Option<IpAddr>]) -> String {
    let text: Vec<String> = hops.iter().map(|h| h.map_or_else(|| "*".to_owned(), |ip| ip.to_string())).collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.join(",").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Prefix -> origin ASN, CAIDA routeviews prefix2as text format: one
/// `prefix<TAB>length<TAB>asn` line each; a multi-origin `a_b` and an AS
/// set `a,b` give their first ASN. Lookups are longest-prefix matches.
#[derive(Debug)]
pub struct AsnTable {
    v4: PrefixMap<Ipv4Net, u32>,
    v6: PrefixMap<Ipv6Net, u32>,
    /// Hash of the file's text, so equal files give equal tables (a reload
    /// with an unchanged table keeps its targets).
    digest: u64,
    /// Entries read.
    pub len: usize,
}

impl PartialEq for AsnTable {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest && self.len == other.len
    }
}

impl AsnTable {
    /// Reads a prefix2as file.
    ///
    /// # Errors
    /// The file and line that cannot be read or parsed.
    pub fn load(path: &Path) -> Result<AsnTable, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}:{e}", path.display()))
    }

    /// Parses prefix2as text (see the type doc); `#` lines and blank lines
    /// are skipped.
    ///
    /// # Errors
    /// `LINE: what is wrong`.
    pub fn parse(text: &str) -> Result<AsnTable, String> {
        let mut table = AsnTable { v4: PrefixMap::new(), v6: PrefixMap::new(), digest: 0, len: 0 };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |m: &str| format!("{}: {m}: {line:?}", i + 1);
            let mut fields = line.split(['\t', ' ']).filter(|f| !f.is_empty());
            let (Some(prefix), Some(len), Some(asn)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(at("expected prefix<TAB>length<TAB>asn"));
            };
            let addr: IpAddr = prefix.parse().map_err(|_| at("bad prefix"))?;
            let len: u8 = len.parse().map_err(|_| at("bad length"))?;
            let first = asn.split(['_', ',']).next().unwrap_or_default();
            let asn: u32 = first.parse().map_err(|_| at("bad asn"))?;
            match addr {
                IpAddr::V4(a) => {
                    let net = Ipv4Net::new(a, len).map_err(|_| at("length > 32"))?.trunc();
                    table.v4.insert(net, asn);
                }
                IpAddr::V6(a) => {
                    let net = Ipv6Net::new(a, len).map_err(|_| at("length > 128"))?.trunc();
                    table.v6.insert(net, asn);
                }
            }
            table.len += 1;
        }
        let mut h = DefaultHasher::new();
        text.hash(&mut h);
        table.digest = h.finish();
        Ok(table)
    }

    /// The origin ASN of the longest prefix holding `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => self.v4.get_lpm(&Ipv4Net::from(a)).map(|(_, asn)| *asn),
            IpAddr::V6(a) => self.v6.get_lpm(&Ipv6Net::from(a)).map(|(_, asn)| *asn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_hash_is_fnv1a_of_the_joined_hop_list() {
        // FNV-1a 64 of "" is the offset basis; of "a" is af63dc4c8601ec8c
        // (reference values from the FNV spec's test vectors).
        assert_eq!(path_hash(&[]), "cbf29ce484222325");
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        // Computed independently (Python, FNV-1a 64 of "10.0.0.1,*").
        assert_eq!(path_hash(&[Some(a), None]), "023ea0ec29c4ac5b");
        assert_ne!(path_hash(&[Some(a), None]), path_hash(&[None, Some(a)]));
    }

    fn hop(ttl: u8, addrs: &[(&str, usize)], sent: usize) -> Hop {
        let received = addrs.iter().map(|(_, n)| n).sum();
        Hop {
            ttl,
            addrs: addrs.iter().map(|(a, n)| (a.parse().expect("ip"), *n)).collect(),
            sent,
            received,
            last_ms: Some(1.0),
            avg_ms: 1.0,
            best_ms: Some(1.0),
            worst_ms: Some(1.0),
            stddev_ms: 0.0,
        }
    }

    /// What trippy's snapshot gives for a TTL answered by several routers
    /// (`Hop::addrs_with_counts`, in first-seen order): the one seen most is
    /// `ip`, the others are listed most replies first, ties by address.
    #[test]
    fn several_responders_at_one_ttl_report_the_most_seen_and_list_the_others() {
        let hops = [
            hop(1, &[("10.0.0.1", 10)], 10),
            hop(2, &[("10.0.2.2", 3), ("10.0.4.2", 5), ("10.0.9.2", 2)], 10),
            hop(3, &[("10.0.7.2", 5), ("10.0.6.2", 5)], 10),
            hop(4, &[("192.0.2.1", 10)], 10),
        ];
        let m = summarize("t", "192.0.2.1".parse().expect("ip"), &hops, None);
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        let got: Vec<(Option<IpAddr>, Vec<IpAddr>)> = m.hops.iter().map(|h| (h.ip, h.other_ips.clone())).collect();
        assert_eq!(
            got,
            vec![
                (Some(ip("10.0.0.1")), vec![]),
                (Some(ip("10.0.4.2")), vec![ip("10.0.2.2"), ip("10.0.9.2")]),
                (Some(ip("10.0.6.2")), vec![ip("10.0.7.2")]),
                (Some(ip("192.0.2.1")), vec![]),
            ]
        );
        assert_eq!((m.hops[1].received, m.hops[1].loss_pct), (10, 0.0), "every responder's replies count");
        // The hash is over the reported (most seen) addresses only.
        assert_eq!(
            m.path_hash,
            path_hash(&[Some(ip("10.0.0.1")), Some(ip("10.0.4.2")), Some(ip("10.0.6.2")), Some(ip("192.0.2.1"))])
        );
    }

    #[test]
    fn asn_table_longest_prefix_and_multi_origin() {
        let t = AsnTable::parse("10.0.0.0\t8\t64500\n10.1.0.0\t16\t64501_64502\n2001:db8::\t32\t64503,64504\n")
            .expect("parse");
        assert_eq!(t.lookup("10.2.3.4".parse().expect("ip")), Some(64500));
        assert_eq!(t.lookup("10.1.3.4".parse().expect("ip")), Some(64501));
        assert_eq!(t.lookup("2001:db8::1".parse().expect("ip")), Some(64503));
        assert_eq!(t.lookup("192.0.2.1".parse().expect("ip")), None);
        assert!(AsnTable::parse("10.0.0.0\t33\t1\n").expect_err("length 33").starts_with("1: "));
    }
}
