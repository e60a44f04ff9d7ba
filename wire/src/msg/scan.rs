//! A hand-written reader for the messages agents write, the first of
//! [`super::decode`]'s paths: one pass over the JSON text straight into the
//! message structs, without serde's visitor machinery (a quarter of the
//! ingest's CPU per message went to it).
//!
//! It reads what the agent writes and declines (`None`) everything else,
//! which the serde paths behind it then read or refuse with a named error:
//! the envelope keys first, then `probe_type`, then the body's keys of an
//! icmp, dns, http, mtr or health message (bgp and registry, 6 % of the
//! traffic, go to serde); strings without escapes or control characters;
//! numbers in JSON's grammar. It declines on an unknown or repeated key, a
//! missing required field, an integer field written as a float or a
//! negative number, a value out of its type's range and anything that is
//! not JSON. Values are converted as serde converts them: floats correctly
//! rounded (serde_json's `float_roundtrip`, as `str::parse`), addresses and
//! times through the same `FromStr` / `parse_from_rfc3339`, an unknown
//! error class as [`ErrorClass::Other`], a missing optional field as
//! `None` (or its `#[serde(default)]`). So a message this path reads
//! decodes exactly as the checked path reads it; the tests in
//! `super::tests` and `tests/roundtrip.rs` hold it to that.
//!
//! [`Scan`], the cursor, is public for readers that go from the same JSON
//! straight to another form (ingest's line protocol transcoder): reading
//! a value with it accepts exactly what [`super::decode`] accepts for a
//! field of that type, and gives the same value.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::{Body, Dns, Health, Http, Icmp, Message, Mtr, MtrHop, SCHEMA_VERSION};
use crate::{ErrorClass, ProbeError, ProbeId, Timestamp, Ttl};

/// Reads one message, or `None` when this path does not take it.
pub(super) fn decode(text: &str) -> Option<Message> {
    let mut p = Scan::new(text);
    p.ws();
    p.eat(b'{')?;
    let mut first = true;
    let (mut schema, mut probe_id, mut location, mut timestamp) = (None, None, None, None);
    while let Some(key) = p.next_key(&mut first)? {
        match key {
            "schema" => once(&mut schema, p.u64()?)?,
            "probe_id" => once(&mut probe_id, p.string()?)?,
            "location" => once(&mut location, p.string()?)?,
            "timestamp" => once(&mut timestamp, p.timestamp()?)?,
            "probe_type" => {
                let kind = p.str()?;
                if schema? != u64::from(SCHEMA_VERSION) {
                    return None;
                }
                let (probe_id, location, timestamp) = (probe_id?, location?, timestamp?);
                let body = match kind {
                    "icmp" => Body::Icmp(icmp(&mut p)?),
                    "dns" => Body::Dns(dns(&mut p)?),
                    "http" => Body::Http(http(&mut p)?),
                    "mtr" => Body::Mtr(mtr(&mut p)?),
                    "health" => Body::Health(health(&mut p)?),
                    _ => return None,
                };
                p.ws();
                if p.i != p.b.len() {
                    return None;
                }
                return Some(Message {
                    schema: SCHEMA_VERSION,
                    probe_id: ProbeId(probe_id),
                    location,
                    timestamp,
                    body,
                });
            }
            _ => return None,
        }
    }
    None
}

/// Sets `slot` once: a repeated key is an error for serde's derived
/// structs, so this path declines it.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// The cursor over the JSON text of one message. Every method returns
/// `None` on anything it does not take (the message is then the serde
/// paths' to read or refuse), leaving the cursor wherever it stopped.
#[derive(Debug)]
pub struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// A cursor at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Scan { text, b: text.as_bytes(), i: 0 }
    }

    /// Skips JSON whitespace.
    #[inline]
    pub fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Steps over the byte `c`.
    #[inline]
    pub fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    fn word(&mut self, w: &[u8]) -> bool {
        if self.b[self.i..].starts_with(w) {
            self.i += w.len();
            true
        } else {
            false
        }
    }

    /// In an object (after its `{`): the next key with the cursor on its
    /// value, `Some(None)` after the closing `}`.
    #[inline]
    fn next_key(&mut self, first: &mut bool) -> Option<Option<&'a str>> {
        self.ws();
        if std::mem::take(first) {
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(None);
            }
        } else {
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    return Some(None);
                }
                _ => return None,
            }
        }
        let key = self.str()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(Some(key))
    }

    /// Where the cursor is, a byte offset into the text.
    pub fn pos(&self) -> usize {
        self.i
    }

    /// The text from byte offset `start` (an earlier [`Scan::pos`]) to the cursor.
    pub fn since(&self, start: usize) -> Option<&'a str> {
        self.text.get(start..self.i)
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// The next key of an object, which must be `name`, with the cursor
    /// left on its value: after the object's `{` when `first`, else after
    /// the previous value (then a `,` comes first). An escaped key is not
    /// `name` (keys are plain ASCII).
    #[inline]
    pub fn key(&mut self, name: &str, first: bool) -> Option<()> {
        self.ws();
        if !first {
            self.eat(b',')?;
            self.ws();
        }
        let n = name.len();
        let quoted = self.b.get(self.i..self.i + n + 2)?;
        if quoted[0] != b'"' || &quoted[1..=n] != name.as_bytes() || quoted[n + 1] != b'"' {
            return None;
        }
        self.i += n + 2;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }

    /// [`Scan::key`] for a key that may be absent: `false`, with the
    /// cursor where it was, when the next key is not `name`.
    pub fn key_if(&mut self, name: &str, first: bool) -> bool {
        let at = self.i;
        let found = self.key(name, first).is_some();
        if !found {
            self.i = at;
        }
        found
    }

    /// After the last value of an object: its `}`.
    pub fn end_object(&mut self) -> Option<()> {
        self.ws();
        self.eat(b'}')
    }

    /// A string without escapes or control characters, borrowed.
    #[inline]
    pub fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let end = string_end(self.b, start)?;
        self.i = end;
        self.eat(b'"')?;
        // `"` is ASCII, so both ends are on character boundaries.
        self.text.get(start..end)
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    /// `null` -> `Some(None)`, else `value`.
    #[inline]
    pub fn nullable<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.word(b"null") {
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    /// `true` or `false`.
    pub fn bool(&mut self) -> Option<bool> {
        if self.word(b"true") {
            Some(true)
        } else if self.word(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// A non-negative integer in JSON's grammar (no sign, no leading zero,
    /// no fraction or exponent), as serde_json reads it into an unsigned
    /// field.
    #[inline]
    pub fn u64(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let len = self.i - start;
        if len == 0 || (len > 1 && self.b[start] == b'0') || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(n)
    }

    /// [`Scan::u64`] in `u32`'s range.
    pub fn u32(&mut self) -> Option<u32> {
        self.u64().and_then(|n| u32::try_from(n).ok())
    }

    /// A number in JSON's grammar, correctly rounded (serde_json with
    /// `float_roundtrip` and `str::parse` both are); out of range declines
    /// (serde_json refuses it).
    ///
    /// What probes write (`11.204`: at most 15 digits, no exponent) is
    /// computed as `m / 10^k` with `m < 2^53` and `k <= 22`: both exact in
    /// binary, so the one IEEE division is the correctly rounded value
    /// (Clinger's fast path). Everything else goes through `str::parse`.
    #[inline]
    pub fn f64(&mut self) -> Option<f64> {
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
            1e19, 1e20, 1e21, 1e22,
        ];
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let int_start = self.i;
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let int_end = self.i;
        let mut frac = int_end..int_end;
        if self.peek() == Some(b'.') {
            self.i += 1;
            let from = self.i;
            self.digits1()?;
            frac = from..self.i;
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            exponent = true;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits1()?;
        }
        let digit_count = (int_end - int_start) + frac.len();
        if !exponent && digit_count <= 15 {
            // At most 15 digits: m < 10^15 < 2^53.
            let mut m: u64 = 0;
            for &d in self.b[int_start..int_end].iter().chain(&self.b[frac.clone()]) {
                m = m * 10 + u64::from(d - b'0');
            }
            let v = m as f64 / POW10[frac.len()];
            return Some(if negative { -v } else { v });
        }
        let v: f64 = self.text.get(start..self.i)?.parse().ok()?;
        v.is_finite().then_some(v)
    }

    /// [`Scan::f64`] with the number's text as written.
    #[inline]
    pub fn f64_text(&mut self) -> Option<(f64, &'a str)> {
        let start = self.i;
        let v = self.f64()?;
        Some((v, self.since(start)?))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn digits1(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    /// As [`Timestamp`]'s `Deserialize`.
    pub fn timestamp(&mut self) -> Option<Timestamp> {
        let s = self.str()?;
        utc_timestamp(s).or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| Timestamp(t.with_timezone(&Utc))))
    }

    /// As `IpAddr`'s `Deserialize` (human-readable: `FromStr`).
    pub fn ip(&mut self) -> Option<IpAddr> {
        self.str()?.parse().ok()
    }

    /// `[item, ...]`.
    pub fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.eat(b'[')?;
        self.ws();
        let mut out = Vec::new();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(out);
        }
        loop {
            out.push(item(self)?);
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b']' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    /// An `error` value: `null` or `{"class": ..., "message": ...}`.
    pub fn error(&mut self) -> Option<Option<ProbeError>> {
        self.nullable(|p| {
            p.eat(b'{')?;
            let mut first = true;
            let (mut class, mut message) = (None, None);
            while let Some(key) = p.next_key(&mut first)? {
                match key {
                    "class" => once(&mut class, error_class(p.str()?))?,
                    "message" => once(&mut message, p.string()?)?,
                    _ => return None,
                }
            }
            Some(ProbeError { class: class?, message: message? })
        })
    }
}

/// Where the string starting at `start` ends: the first `"`, `\\` or
/// control character, 8 bytes at a time (the usual bit tricks: a byte
/// equal to `c` is a zero byte of `w ^ c`, `(x - 0x01..) & !x & 0x80..`
/// flags zero bytes, `(w - 0x20..) & !w & 0x80..` bytes below 0x20; the
/// lowest flag of each is exact, so the lowest of all is the first match).
#[inline]
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = start;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGHS;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|n| i + n)
}

/// `YYYY-MM-DDTHH:MM:SS[.f]Z` (1 to 9 fraction digits, seconds below 60),
/// what agents write; `None` for every other form, which
/// `parse_from_rfc3339` then reads (so the result is always chrono's).
fn utc_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let nanos = match (b[19], b.len()) {
        (b'Z', 20) => 0,
        (b'.', 22..=30) if b[b.len() - 1] == b'Z' => {
            let digits = b.len() - 21;
            num(20..20 + digits)? * 10u32.pow(9 - digits as u32)
        }
        _ => return None,
    };
    if second >= 60 {
        return None;
    }
    let t = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_nano_opt(hour, minute, second, nanos)?
        .and_utc();
    Some(Timestamp(t))
}

/// As [`ErrorClass`]'s derived `Deserialize` (`#[serde(other)]`).
fn error_class(s: &str) -> ErrorClass {
    match s {
        "timeout" => ErrorClass::Timeout,
        "dns_failure" => ErrorClass::DnsFailure,
        "connection_refused" => ErrorClass::ConnectionRefused,
        "tls_error" => ErrorClass::TlsError,
        "unreachable" => ErrorClass::Unreachable,
        "permission_denied" => ErrorClass::PermissionDenied,
        "protocol_error" => ErrorClass::ProtocolError,
        "unexpected_response" => ErrorClass::UnexpectedResponse,
        _ => ErrorClass::Other,
    }
}

/// The body keys of an icmp message (the rest of the envelope's object).
fn icmp(p: &mut Scan<'_>) -> Option<Icmp> {
    let mut first = false;
    let (mut target, mut resolved_ip, mut sent, mut received, mut loss_pct) = (None, None, None, None, None);
    let (mut rtt_min_ms, mut rtt_avg_ms, mut rtt_median_ms, mut rtt_max_ms) = (None, None, None, None);
    let (mut rtt_stddev_ms, mut jitter_ms, mut error) = (None, None, None);
    while let Some(key) = p.next_key(&mut first)? {
        match key {
            "target" => once(&mut target, p.string()?)?,
            "resolved_ip" => once(&mut resolved_ip, p.nullable(Scan::ip)?)?,
            "sent" => once(&mut sent, p.u32()?)?,
            "received" => once(&mut received, p.u32()?)?,
            "loss_pct" => once(&mut loss_pct, p.f64()?)?,
            "rtt_min_ms" => once(&mut rtt_min_ms, p.nullable(Scan::f64)?)?,
            "rtt_avg_ms" => once(&mut rtt_avg_ms, p.nullable(Scan::f64)?)?,
            "rtt_median_ms" => once(&mut rtt_median_ms, p.nullable(Scan::f64)?)?,
            "rtt_max_ms" => once(&mut rtt_max_ms, p.nullable(Scan::f64)?)?,
            "rtt_stddev_ms" => once(&mut rtt_stddev_ms, p.nullable(Scan::f64)?)?,
            "jitter_ms" => once(&mut jitter_ms, p.nullable(Scan::f64)?)?,
            "error" => once(&mut error, p.error()?)?,
            _ => return None,
        }
    }
    Some(Icmp {
        target: target?,
        resolved_ip: resolved_ip.flatten(),
        sent: sent?,
        received: received?,
        loss_pct: loss_pct?,
        rtt_min_ms: rtt_min_ms.flatten(),
        rtt_avg_ms: rtt_avg_ms.flatten(),
        rtt_median_ms: rtt_median_ms.flatten(),
        rtt_max_ms: rtt_max_ms.flatten(),
        rtt_stddev_ms: rtt_stddev_ms.flatten(),
        jitter_ms: jitter_ms.flatten(),
        error: error.flatten(),
    })
}

fn dns(p: &mut Scan<'_>) -> Option<Dns> {
    let mut first = false;
    let (mut resolver, mut query_name, mut record_type, mut rcode) = (None, None, None, None);
    let (mut latency_ms, mut answers, mut answer_count, mut error) = (None, None, None, None);
    while let Some(key) = p.next_key(&mut first)? {
        match key {
            "resolver" => once(&mut resolver, p.string()?)?,
            "query_name" => once(&mut query_name, p.string()?)?,
            "record_type" => once(&mut record_type, p.string()?)?,
            "rcode" => once(&mut rcode, p.nullable(Scan::string)?)?,
            "latency_ms" => once(&mut latency_ms, p.nullable(Scan::f64)?)?,
            "answers" => once(&mut answers, p.array(Scan::string)?)?,
            "answer_count" => once(&mut answer_count, p.u32()?)?,
            "error" => once(&mut error, p.error()?)?,
            _ => return None,
        }
    }
    Some(Dns {
        resolver: resolver?,
        query_name: query_name?,
        record_type: record_type?,
        rcode: rcode.flatten(),
        latency_ms: latency_ms.flatten(),
        answers: answers?,
        answer_count: answer_count?,
        error: error.flatten(),
    })
}

fn http(p: &mut Scan<'_>) -> Option<Http> {
    let mut first = false;
    let (mut url, mut method, mut status_code, mut success) = (None, None, None, None);
    let (mut dns_ms, mut connect_ms, mut tls_ms, mut ttfb_ms, mut total_ms) = (None, None, None, None, None);
    let (mut response_bytes, mut http_version, mut tls_version) = (None, None, None);
    let (mut cert_not_after, mut redirects, mut error) = (None, None, None);
    while let Some(key) = p.next_key(&mut first)? {
        match key {
            "url" => once(&mut url, p.string()?)?,
            "method" => once(&mut method, p.string()?)?,
            "status_code" => once(&mut status_code, p.nullable(|p| p.u64().and_then(|n| u16::try_from(n).ok()))?)?,
            "success" => once(&mut success, p.bool()?)?,
            "dns_ms" => once(&mut dns_ms, p.nullable(Scan::f64)?)?,
            "connect_ms" => once(&mut connect_ms, p.nullable(Scan::f64)?)?,
            "tls_ms" => once(&mut tls_ms, p.nullable(Scan::f64)?)?,
            "ttfb_ms" => once(&mut ttfb_ms, p.nullable(Scan::f64)?)?,
            "total_ms" => once(&mut total_ms, p.nullable(Scan::f64)?)?,
            "response_bytes" => once(&mut response_bytes, p.nullable(Scan::u64)?)?,
            "http_version" => once(&mut http_version, p.nullable(Scan::string)?)?,
            "tls_version" => once(&mut tls_version, p.nullable(Scan::string)?)?,
            "cert_not_after" => once(&mut cert_not_after, p.nullable(Scan::timestamp)?)?,
            "redirects" => once(&mut redirects, p.u32()?)?,
            "error" => once(&mut error, p.error()?)?,
            _ => return None,
        }
    }
    Some(Http {
        url: url?,
        method: method?,
        status_code: status_code.flatten(),
        success: success?,
        dns_ms: dns_ms.flatten(),
        connect_ms: connect_ms.flatten(),
        tls_ms: tls_ms.flatten(),
        ttfb_ms: ttfb_ms.flatten(),
        total_ms: total_ms.flatten(),
        response_bytes: response_bytes.flatten(),
        http_version: http_version.flatten(),
        tls_version: tls_version.flatten(),
        cert_not_after: cert_not_after.flatten(),
        redirects: redirects?,
        error: error.flatten(),
    })
}

fn mtr(p: &mut Scan<'_>) -> Option<Mtr> {
    let mut first = false;
    let (mut target, mut destination_reached, mut hop_count) = (None, None, None);
    let (mut path_hash, mut hops, mut error) = (None, None, None);
    while let Some(key) = p.next_key(&mut first)? {
        match key {
            "target" => once(&mut target, p.string()?)?,
            "destination_reached" => once(&mut destination_reached, p.bool()?)?,
            "hop_count" => once(&mut hop_count, p.u32()?)?,
            "path_hash" => once(&mut path_hash, p.string()?)?,
            "hops" => once(&mut hops, p.array(hop)?)?,
            "error" => once(&mut error, p.error()?)?,
            _ => return None,
        }
    }
    Some(Mtr {
        target: target?,
        destination_reached: destination_reached?,
        hop_count: hop_count?,
        path_hash: path_hash?,
        hops: hops?,
        // `#[serde(default)]`: absent is `None` too.
        error: error.flatten(),
    })
}

fn hop(p: &mut Scan<'_>) -> Option<MtrHop> {
    p.eat(b'{')?;
    let mut first = true;
    let (mut ttl, mut ip, mut other_ips, mut hostname, mut asn) = (None, None, None, None, None);
    let (mut sent, mut received, mut loss_pct) = (None, None, None);
    let (mut rtt_last_ms, mut rtt_avg_ms, mut rtt_best_ms, mut rtt_worst_ms, mut rtt_stddev_ms) =
        (None, None, None, None, None);
    while let Some(key) = p.next_key(&mut first)? {
        match key {
            "ttl" => once(&mut ttl, p.u64().and_then(|n| u8::try_from(n).ok())?)?,
            "ip" => once(&mut ip, p.nullable(Scan::ip)?)?,
            "other_ips" => once(&mut other_ips, p.array(Scan::ip)?)?,
            "hostname" => once(&mut hostname, p.nullable(Scan::string)?)?,
            "asn" => once(&mut asn, p.nullable(Scan::u32)?)?,
            "sent" => once(&mut sent, p.u32()?)?,
            "received" => once(&mut received, p.u32()?)?,
            "loss_pct" => once(&mut loss_pct, p.f64()?)?,
            "rtt_last_ms" => once(&mut rtt_last_ms, p.nullable(Scan::f64)?)?,
            "rtt_avg_ms" => once(&mut rtt_avg_ms, p.nullable(Scan::f64)?)?,
            "rtt_best_ms" => once(&mut rtt_best_ms, p.nullable(Scan::f64)?)?,
            "rtt_worst_ms" => once(&mut rtt_worst_ms, p.nullable(Scan::f64)?)?,
            "rtt_stddev_ms" => once(&mut rtt_stddev_ms, p.nullable(Scan::f64)?)?,
            _ => return None,
        }
    }
    Some(MtrHop {
        ttl: Ttl(ttl?),
        ip: ip.flatten(),
        // `#[serde(default)]`: absent is empty.
        other_ips: other_ips.unwrap_or_default(),
        hostname: hostname.flatten(),
        asn: asn.flatten(),
        sent: sent?,
        received: received?,
        loss_pct: loss_pct?,
        rtt_last_ms: rtt_last_ms.flatten(),
        rtt_avg_ms: rtt_avg_ms.flatten(),
        rtt_best_ms: rtt_best_ms.flatten(),
        rtt_worst_ms: rtt_worst_ms.flatten(),
        rtt_stddev_ms: rtt_stddev_ms.flatten(),
    })
}

/// Health bodies with feeds (a BGP agent's) go to serde: this path takes
/// only an empty or absent `feeds`.
fn health(p: &mut Scan<'_>) -> Option<Health> {
    let mut first = false;
    let (mut last_successful_run, mut uptime_s, mut failures_last_hour, mut runs_last_hour) = (None, None, None, None);
    let (mut spool_messages, mut spool_dropped_messages, mut kafka_connected) = (None, None, None);
    let (mut instance, mut feeds) = (None, None);
    while let Some(key) = p.next_key(&mut first)? {
        match key {
            "last_successful_run" => once(&mut last_successful_run, p.nullable(Scan::timestamp)?)?,
            "uptime_s" => once(&mut uptime_s, p.u64()?)?,
            "failures_last_hour" => once(&mut failures_last_hour, p.u32()?)?,
            "runs_last_hour" => once(&mut runs_last_hour, p.u32()?)?,
            "spool_messages" => once(&mut spool_messages, p.u64()?)?,
            "spool_dropped_messages" => once(&mut spool_dropped_messages, p.u64()?)?,
            "kafka_connected" => once(&mut kafka_connected, p.bool()?)?,
            "instance" => once(&mut instance, p.nullable(Scan::string)?)?,
            "feeds" => once(&mut feeds, p.array(|_| None::<()>)?)?,
            _ => return None,
        }
    }
    Some(Health {
        last_successful_run: last_successful_run.flatten(),
        uptime_s: uptime_s?,
        failures_last_hour: failures_last_hour?,
        runs_last_hour: runs_last_hour?,
        spool_messages: spool_messages?,
        // `#[serde(default)]` on the three below.
        spool_dropped_messages: spool_dropped_messages.unwrap_or_default(),
        kafka_connected: kafka_connected?,
        instance: instance.flatten(),
        feeds: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::{string_end, utc_timestamp, Scan, Timestamp};

    /// Agents' timestamps read as chrono's `parse_from_rfc3339` reads them
    /// (the oracle), and every other form left to it: random instants
    /// 1970..2200 with 0 to 9 fraction digits, and broken variants.
    #[test]
    fn timestamps_read_as_chrono_reads_them() {
        let chrono_reads =
            |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| Timestamp(t.with_timezone(&chrono::Utc)));
        let mut rng_state: u64 = 7;
        let mut next = move || {
            rng_state ^= rng_state >> 12;
            rng_state ^= rng_state << 25;
            rng_state ^= rng_state >> 27;
            rng_state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let mut cases = vec![
            "2026-11-23T17:31:49.123456789Z".to_string(),
            "2026-11-23T17:31:49Z".into(),
            "2026-11-23T17:31:60Z".into(),
            "2026-11-23T17:31:59.999999999Z".into(),
            "2026-02-29T00:00:00Z".into(),
            "2024-02-29T00:00:00Z".into(),
            "2026-13-01T00:00:00Z".into(),
            "2026-11-31T00:00:00Z".into(),
            "2026-11-23T24:00:00Z".into(),
            "2026-11-23t17:31:49Z".into(),
            "2026-11-23 17:31:49Z".into(),
            "2026-11-23T17:31:49z".into(),
            "2026-11-23T17:31:49.Z".into(),
            "2026-11-23T17:31:49.1234567891Z".into(),
            "2026-11-23T17:31:49+01:00".into(),
            "2026-11-23T17:31:49.5-00:30".into(),
            "+2026-11-23T17:31:49Z".into(),
            "2026-1-23T17:31:49Z".into(),
            "0000-01-01T00:00:00Z".into(),
            "9999-12-31T23:59:59.999999999Z".into(),
        ];
        for _ in 0..100_000 {
            let nanos = (next() % 7_258_118_400_000_000_000) as i64;
            let t = chrono::DateTime::from_timestamp_nanos(nanos);
            let digits = (next() % 10) as usize;
            let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            if digits > 0 {
                s.push_str(&format!(".{:09}", t.timestamp_subsec_nanos())[..=digits]);
            }
            s.push('Z');
            cases.push(s);
        }
        let mut fast = 0;
        for s in &cases {
            if let Some(t) = utc_timestamp(s) {
                fast += 1;
                assert_eq!(Some(t), chrono_reads(s), "{s}");
            }
        }
        assert!(fast > 90_000, "{fast} read without chrono's parser");
    }

    /// The word-at-a-time search finds what a byte loop finds.
    #[test]
    fn string_end_finds_the_first_quote_backslash_or_control() {
        let alphabet = b"ab\"\\\x00\x1f\x20\x7f\x80\xff\xc3";
        let mut state: u64 = 3;
        for _ in 0..50_000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (state >> 59) as usize + 1;
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let r = state.rotate_left(i as u32 * 7);
                    if r.is_multiple_of(5) {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    } else {
                        b'a' + (r % 26) as u8
                    }
                })
                .collect();
            for start in 0..bytes.len() {
                let want = bytes[start..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|n| start + n);
                assert_eq!(string_end(&bytes, start), want, "{bytes:?} from {start}");
            }
        }
    }

    fn scan_f64(text: &str) -> Option<f64> {
        let mut p = Scan::new(text);
        p.f64().filter(|_| p.i == text.len())
    }

    /// Numbers read as serde_json reads them into an `f64` field (the
    /// oracle: serde_json itself), bit for bit (the sign of zero too), on
    /// edge cases and random decimals of every length and scale.
    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1",
            "-1",
            "0.1",
            "11.204",
            "20.0",
            "100",
            "1e5",
            "1E-5",
            "-2.5e+3",
            "123456789012345",
            "1234567890123456",
            "0.000000000000001",
            "9007199254740993",
            "1e308",
            "1e309",
            "-1e400",
            "4.9e-324",
            "1e-400",
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "0x10",
            "NaN",
            "Infinity",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "0.30000000000000004",
            "99499009386908.62",
            "1.7976931348623157e308",
            "2.2250738585072014e-308",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut seed: u64 = 15;
        let mut next = move || {
            // xorshift64*: deterministic, no dependency.
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for _ in 0..200_000 {
            let digits = 1 + next() % 20;
            let mut s: String = (0..digits).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
            let s_trim = s.trim_start_matches('0');
            s = if s_trim.is_empty() { "0".into() } else { s_trim.into() };
            let point = next() % (s.len() as u64 + 1);
            if point > 0 && (point as usize) < s.len() {
                s.insert((s.len() - point as usize).max(1), '.');
            }
            if next() % 2 == 0 {
                s.insert(0, '-');
            }
            cases.push(s);
            cases.push(f64::from_bits(next()).to_string());
            cases.push(format!("{}", (next() % 10_000_000) as f64 / 1000.0));
        }
        for c in &cases {
            let want = serde_json::from_str::<f64>(c).ok();
            let got = scan_f64(c);
            match (got, want) {
                (Some(g), Some(w)) => assert_eq!(g.to_bits(), w.to_bits(), "{c}: {g} vs serde_json {w}"),
                // Declining is always allowed; reading what serde_json refuses is not.
                (Some(g), None) => panic!("{c}: read as {g}, serde_json refuses it"),
                (None, _) => {}
            }
        }
    }
}
