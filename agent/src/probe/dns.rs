//! DNS probe: one query, no cache, against one resolver, reported as
//! `dig @resolver name type` shows it.
//!
//! hickory-proto builds the query and parses the response; this module only
//! owns the socket and the clock. The query has RD=1 (dig's default) and an
//! EDNS(0) OPT record advertising [`EDNS_UDP_PAYLOAD`] bytes (dig 9.18's
//! default), no DNSSEC OK bit and no cookie.
//!
//! - `udp`: one datagram on a connected socket (so an ICMP port unreachable
//!   comes back as `connection_refused`). A response whose ID, QR bit, opcode
//!   or question does not match the query is ignored and the wait goes on
//!   until the timeout (as dig does); if nothing valid arrives, the error is
//!   `protocol_error` naming the last mismatch instead of `timeout`. A
//!   response with the TC bit set is discarded and the query is repeated
//!   over TCP (RFC 7766 section 5).
//! - `tcp`: a fresh connection per query, the message framed with its
//!   two-byte length (RFC 1035 section 4.2.2); a mismatching response is a
//!   `protocol_error` at once.
//!
//! `latency_ms` runs from the moment the query is handed to the socket (UDP)
//! or the TCP connection is started (TCP: a fresh connection is part of the
//! cost of every TCP query) until the whole response is read. After a TC
//! fallback it covers the whole exchange a stub resolver waits for: from the
//! UDP query to the end of the TCP response, handshake included. The
//! [`Target::timeout`] bounds that whole exchange, fallback included.
//!
//! Outcomes: NOERROR (with or without answers) and NXDOMAIN are successful
//! measurements (`error` null). Any other rcode is reported in `rcode` with
//! `error` = `unexpected_response` and message `rcode SERVFAIL` (the
//! mnemonic). No response: `rcode`/`latency_ms` null, no answers, `error`
//! set (`timeout`, `connection_refused`, `unreachable`, `protocol_error`,
//! ...).

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use netprobe_wire::msg::Dns;
use netprobe_wire::{Body, ErrorClass, ProbeError, ProbeType};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

/// Default wait for a response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// UDP payload size advertised in the query's EDNS(0) OPT record, bytes: the
/// DNS Flag Day 2020 value that dig 9.18 sends by default. A larger response
/// comes back truncated and is fetched again over TCP.
pub const EDNS_UDP_PAYLOAD: u16 = 1232;

/// Largest DNS message (the TCP length prefix is 16 bits), bytes.
const MAX_MESSAGE: usize = 65_535;

/// Transport of a DNS query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP, retried over TCP when the response is truncated (RFC 7766).
    #[default]
    Udp,
    /// TCP only.
    Tcp,
}

/// A `[[dns]]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The resolver, `IP:port`.
    pub resolver: SocketAddr,
    /// The name to ask for, e.g. `example.com` (always taken as absolute, as
    /// dig does; non-ASCII names are converted to punycode, IDNA). An
    /// InfluxDB tag value (see [`crate::config::check_tag_value`]).
    #[serde(deserialize_with = "crate::config::tag_value")]
    pub query_name: String,
    /// The record type (RFC 1035 mnemonic: `A`, `AAAA`, `MX`, ...; case does
    /// not matter). Zone transfers (`AXFR`) and `TSIG` are not queries and
    /// are rejected.
    #[serde(deserialize_with = "crate::config::tag_value")]
    pub record_type: String,
    /// How often a query is sent.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Wait for the response (the whole exchange, TCP fallback included).
    /// Default 2 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// `udp` (with TCP fallback on truncation, the default) or `tcp`.
    #[serde(default)]
    pub transport: Transport,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

impl super::Probe for Target {
    const TYPE: ProbeType = ProbeType::Dns;
    /// One socket each; a few hundred at once is far beyond any resolver
    /// list an agent watches.
    const CONCURRENCY: usize = 256;

    fn interval(&self) -> Duration {
        self.interval
    }

    fn run_deadline(&self) -> Duration {
        self.timeout
    }

    /// Checks what serde cannot: the record type is a known query type, the
    /// name is a valid domain name, the resolver port and the durations are
    /// not zero. Errors name the key, e.g.
    /// `record_type: unknown record type "AX"`.
    fn validate(&self) -> Result<(), String> {
        self.question()?;
        if self.resolver.port() == 0 {
            return Err(format!("resolver: port 0 in {}", self.resolver));
        }
        if self.interval.is_zero() {
            return Err("interval: must be greater than 0".to_owned());
        }
        if self.timeout.is_zero() {
            return Err("timeout: must be greater than 0".to_owned());
        }
        Ok(())
    }

    fn label(&self) -> String {
        format!("dns {} {} @{}", self.query_name, self.record_type, self.resolver)
    }

    async fn run(&self, _: &super::Context) -> Body {
        Body::Dns(run(self).await)
    }

    fn abandoned(&self, after: Duration) -> Body {
        Body::Dns(Dns { error: Some(super::abandoned_error(after)), ..unanswered(self) })
    }

    fn succeeded(body: &Body) -> bool {
        matches!(body, Body::Dns(m) if m.error.is_none())
    }
}

impl Target {
    /// The parsed name (absolute) and record type.
    fn question(&self) -> Result<(Name, RecordType), String> {
        let record_type = self
            .record_type
            .to_ascii_uppercase()
            .parse::<RecordType>()
            .map_err(|_| format!("record_type: unknown record type {:?}", self.record_type))?;
        if matches!(record_type, RecordType::AXFR | RecordType::IXFR | RecordType::TSIG | RecordType::OPT) {
            return Err(format!("record_type: {record_type} is not a query type this probe sends"));
        }
        let mut name = Name::from_utf8(&self.query_name)
            .map_err(|e| format!("query_name: invalid domain name {:?}: {e}", self.query_name))?;
        name.set_fqdn(true);
        Ok((name, record_type))
    }
}

/// A result for `target` before any response: no rcode, no answers.
fn unanswered(target: &Target) -> Dns {
    Dns {
        resolver: target.resolver.to_string(),
        query_name: target.query_name.clone(),
        record_type: target.record_type.clone(),
        rcode: None,
        latency_ms: None,
        answers: Vec::new(),
        answer_count: 0,
        error: None,
    }
}

/// Sends one query and reports what came back (see the module doc for the
/// transports, the timing and the error classes). Never fails: a failure is
/// a measurement with `error` set; returns within [`Target::timeout`] (plus
/// scheduling noise). `record_type` is reported as its upper-case mnemonic;
/// a target that fails [`Target::validate`] gives class `other` with the
/// validation message.
pub async fn run(target: &Target) -> Dns {
    let mut dns = unanswered(target);
    let (name, record_type) = match target.question() {
        Ok(question) => question,
        Err(message) => {
            dns.error = Some(error(ErrorClass::Other, message));
            return dns;
        }
    };
    dns.record_type = record_type.to_string();
    match exchange(target, name, record_type).await {
        Ok((response, latency)) => {
            let rcode = rcode_mnemonic(response.metadata.response_code);
            if !matches!(response.metadata.response_code, ResponseCode::NoError | ResponseCode::NXDomain) {
                dns.error = Some(error(ErrorClass::UnexpectedResponse, format!("rcode {rcode}")));
            }
            dns.rcode = Some(rcode);
            dns.latency_ms = Some(super::ms(latency));
            dns.answers = response.answers.iter().map(|record| presentation(&record.data)).collect();
            dns.answer_count = u32::try_from(dns.answers.len()).unwrap_or(u32::MAX);
        }
        Err(e) => dns.error = Some(e),
    }
    dns
}

/// One query over the configured transport, bounded by the timeout: the
/// matching response and the time it took.
async fn exchange(target: &Target, name: Name, record_type: RecordType) -> Result<(Message, Duration), ProbeError> {
    let deadline = Instant::now() + target.timeout;
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name, record_type));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_UDP_PAYLOAD);
    query.set_edns(edns);
    let wire = query.to_vec().map_err(|e| error(ErrorClass::Other, format!("cannot encode the query: {e}")))?;
    let resolver = target.resolver;
    let timed_out = || error(ErrorClass::Timeout, format!("no response from {resolver} within {:?}", target.timeout));

    let started = Instant::now();
    if target.transport == Transport::Udp {
        let response = udp_exchange(resolver, &query, &wire, deadline, &timed_out).await?;
        if !response.metadata.truncation {
            return Ok((response, started.elapsed()));
        }
    }
    match timeout_at(deadline, tcp_exchange(resolver, &query, &wire)).await {
        Ok(Ok(response)) => Ok((response, started.elapsed())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(timed_out()),
    }
}

/// Sends `wire` in one datagram and waits until `deadline` for a response
/// that matches `query`, skipping strays.
async fn udp_exchange(
    resolver: SocketAddr,
    query: &Message,
    wire: &[u8],
    deadline: Instant,
    timed_out: &(dyn Fn() -> ProbeError + Sync),
) -> Result<Message, ProbeError> {
    let local: IpAddr = if resolver.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let socket = UdpSocket::bind((local, 0)).await.map_err(|e| io_error(&e, "bind a UDP socket for", resolver))?;
    // Connected: the kernel drops datagrams from other addresses and reports
    // an ICMP port unreachable as ECONNREFUSED on the next receive.
    socket.connect(resolver).await.map_err(|e| io_error(&e, "connect UDP to", resolver))?;
    socket.send(wire).await.map_err(|e| io_error(&e, "send the query to", resolver))?;

    let mut buf = vec![0; MAX_MESSAGE];
    let mut mismatch = None;
    loop {
        let len = match timeout_at(deadline, socket.recv(&mut buf)).await {
            Ok(Ok(len)) => len,
            Ok(Err(e)) => return Err(io_error(&e, "receive the response from", resolver)),
            Err(_) => {
                return Err(match mismatch {
                    Some(why) => error(ErrorClass::ProtocolError, format!("no matching response: last one {why}")),
                    None => timed_out(),
                })
            }
        };
        match parse_response(query, &buf[..len]) {
            Ok(response) => return Ok(response),
            Err(why) => mismatch = Some(why),
        }
    }
}

/// Sends `wire` over a new TCP connection and reads one response.
async fn tcp_exchange(resolver: SocketAddr, query: &Message, wire: &[u8]) -> Result<Message, ProbeError> {
    let mut stream = TcpStream::connect(resolver).await.map_err(|e| io_error(&e, "connect TCP to", resolver))?;
    let len = u16::try_from(wire.len()).map_err(|_| error(ErrorClass::Other, "query longer than 65535 bytes"))?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    stream.write_all(&framed).await.map_err(|e| io_error(&e, "send the query to", resolver))?;
    let mut len = [0; 2];
    stream.read_exact(&mut len).await.map_err(|e| io_error(&e, "read the response length from", resolver))?;
    let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.map_err(|e| io_error(&e, "read the response from", resolver))?;
    parse_response(query, &buf).map_err(|why| error(ErrorClass::ProtocolError, format!("response {why}")))
}

/// Decodes `bytes` and checks it answers `query`: QR=1, same ID and opcode,
/// the same question (the question may be missing when the rcode is an
/// error, as in a FORMERR).
///
/// # Errors
/// What does not match, e.g. `has ID 17, the query 4242`.
fn parse_response(query: &Message, bytes: &[u8]) -> Result<Message, String> {
    let response = Message::from_vec(bytes).map_err(|e| format!("cannot be decoded: {e}"))?;
    let (got, want) = (&response.metadata, &query.metadata);
    if got.message_type != MessageType::Response {
        return Err("is not a response (QR=0)".to_owned());
    }
    if got.id != want.id {
        return Err(format!("has ID {}, the query {}", got.id, want.id));
    }
    if got.op_code != OpCode::Query {
        return Err(format!("has opcode {:?}", got.op_code));
    }
    let question_ok = match response.queries.as_slice() {
        [] => got.response_code != ResponseCode::NoError,
        [q] => query.queries.first().is_some_and(|asked| {
            q.name() == asked.name() && q.query_type() == asked.query_type() && q.query_class() == DNSClass::IN
        }),
        _ => false,
    };
    if !question_ok {
        let questions: Vec<String> =
            response.queries.iter().map(|q| format!("{} {}", q.name(), q.query_type())).collect();
        return Err(format!("has question [{}], not the one asked", questions.join(", ")));
    }
    Ok(response)
}

/// The response code as dig prints it in `status:` (IANA "DNS RCODEs"
/// registry mnemonics, RFC 6895); an unassigned code as its number.
fn rcode_mnemonic(code: ResponseCode) -> String {
    let name = match u16::from(code) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        other => return other.to_string(),
    };
    name.to_owned()
}

/// One record's RDATA in presentation format, as `dig +short` prints it:
/// `192.0.2.1`, `10 mail.example.com.`, `"text" "more"`, `target.`. Names
/// are absolute and ASCII (punycode). Types other than A, AAAA, CNAME, NS,
/// PTR, MX, TXT, SOA and SRV use hickory-proto's rendering, which may differ
/// from dig's.
fn presentation(rdata: &RData) -> String {
    match rdata {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(aaaa) => aaaa.0.to_string(),
        RData::CNAME(name) => name.0.to_ascii(),
        RData::NS(name) => name.0.to_ascii(),
        RData::PTR(name) => name.0.to_ascii(),
        RData::MX(mx) => format!("{} {}", mx.preference, mx.exchange.to_ascii()),
        RData::TXT(txt) => txt.txt_data.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(" "),
        // dig prints the RFC 1035 32-bit fields unsigned; hickory keeps some as i32.
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            soa.mname.to_ascii(),
            soa.rname.to_ascii(),
            soa.serial,
            soa.refresh as u32,
            soa.retry as u32,
            soa.expire as u32,
            soa.minimum
        ),
        RData::SRV(srv) => format!("{} {} {} {}", srv.priority, srv.weight, srv.port, srv.target.to_ascii()),
        other => {
            let mut text = String::new();
            // OPT has no presentation format and makes Display fail.
            if write!(text, "{other}").is_err() {
                text = format!("{other:?}");
            }
            text
        }
    }
}

/// A TXT character-string in double quotes with BIND's escaping (as dig):
/// `"` and `\` get a backslash, bytes outside 0x20..=0x7e become `\DDD`
/// (decimal, RFC 1035 section 5.1).
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\{byte:03}");
            }
        }
    }
    out.push('"');
    out
}

fn error(class: ErrorClass, message: impl Into<String>) -> ProbeError {
    ProbeError { class, message: message.into() }
}

/// Classifies a socket error: refused (RST, or ICMP port unreachable on
/// UDP), unreachable (no route, ICMP host/net unreachable), permission
/// denied, other.
fn io_error(e: &io::Error, doing: &str, resolver: SocketAddr) -> ProbeError {
    let class = match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorClass::ConnectionRefused,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => ErrorClass::Unreachable,
        io::ErrorKind::PermissionDenied => ErrorClass::PermissionDenied,
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => ErrorClass::ProtocolError,
        _ => ErrorClass::Other,
    };
    error(class, format!("cannot {doing} {resolver}: {e}"))
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::{CNAME, MX, SOA, TXT};

    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("valid name")
    }

    #[test]
    fn presentation_matches_dig_short() {
        assert_eq!(presentation(&RData::A(Ipv4Addr::new(192, 0, 2, 1).into())), "192.0.2.1");
        assert_eq!(presentation(&RData::AAAA("2001:db8::1".parse::<Ipv6Addr>().expect("v6").into())), "2001:db8::1");
        assert_eq!(presentation(&RData::MX(MX::new(10, name("mail.example.com.")))), "10 mail.example.com.");
        assert_eq!(presentation(&RData::CNAME(CNAME(name("target.example.")))), "target.example.");
        assert_eq!(
            presentation(&RData::SOA(SOA::new(name("ns1.example."), name("admin.example."), 7, 3600, 600, 86400, 300))),
            "ns1.example. admin.example. 7 3600 600 86400 300"
        );
        let txt = TXT::from_bytes(vec![b"v=spf1 -all", b"second"]);
        assert_eq!(presentation(&RData::TXT(txt)), r#""v=spf1 -all" "second""#);
    }

    #[test]
    fn txt_escapes_like_bind() {
        assert_eq!(quoted(b"say \"hi\" \\ bye"), r#""say \"hi\" \\ bye""#);
        assert_eq!(quoted(b"tab\there\x7f\xc3\xa9"), r#""tab\009here\127\195\169""#);
        assert_eq!(quoted(b""), r#""""#);
    }

    #[test]
    fn rcode_mnemonics_are_digs() {
        assert_eq!(rcode_mnemonic(ResponseCode::NoError), "NOERROR");
        assert_eq!(rcode_mnemonic(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_mnemonic(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_mnemonic(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_mnemonic(ResponseCode::BADSIG), "BADVERS");
        assert_eq!(rcode_mnemonic(ResponseCode::Unknown(12)), "12");
    }
}
