//! JSON wire message -> line protocol in one pass, without a [`Message`]:
//! the first of [`super::render_payload`]'s paths ([`transcode`]).
//!
//! It takes what agents write of five kinds (icmp, dns, http, mtr and
//! health: 94 % of `scripts/bench`'s mix, bgp and registry being rare):
//! the keys in the order the agent's serde derive writes them, read with
//! the wire crate's own [`Scan`], so a value it accepts is one
//! `netprobe_wire::decode` accepts and reads the same. Everything else (another key order, a missing or
//! extra key, escapes, bgp and registry, a value line protocol cannot
//! carry) is declined: `None`, nothing written, and the caller decodes and
//! renders as before, which also names the error. What this path saves is
//! the message: no owned strings, no vectors (but `other_ips`), and no
//! float parsed and formatted again when its JSON text is already what
//! `Display` writes ([`display_prefix`]).
//!
//! The points are written through the same [`Direct`] writer as
//! [`super::render_message`], in [`super::layout`]'s order; the test
//! `transcode_writes_what_render_message_writes` holds the two to the same
//! bytes on the golden messages and thousands of variants.
//!
//! [`Message`]: netprobe_wire::Message

use netprobe_wire::msg::scan::Scan;
use netprobe_wire::SCHEMA_VERSION;

use super::{Direct, Emit, Join};

/// Appends the line protocol of the wire message in `text` (JSON) to `out`
/// and returns the number of lines: the bytes [`super::render_message`]
/// writes for the decoded message. `None`, with `out` as it was, when this
/// path does not take the message (see the module doc); the message may
/// still be valid.
pub fn transcode(text: &str, out: &mut Vec<u8>) -> Option<usize> {
    let start = out.len();
    let lines = message(text, out);
    if lines.is_none() {
        out.truncate(start);
    }
    lines
}

/// A float as the JSON has it: its value and its text.
type Num<'a> = (f64, &'a str);

fn message(text: &str, out: &mut Vec<u8>) -> Option<usize> {
    let mut p = Scan::new(text);
    p.ws();
    p.eat(b'{')?;
    p.key("schema", true)?;
    if p.u64()? != u64::from(SCHEMA_VERSION) {
        return None;
    }
    let probe_id = field(&mut p, "probe_id", Scan::str)?;
    let location = field(&mut p, "location", Scan::str)?;
    let timestamp = field(&mut p, "timestamp", Scan::timestamp)?;
    let kind = field(&mut p, "probe_type", Scan::str)?;
    if probe_id.is_empty() {
        return None;
    }
    let ts = timestamp.unix_nanos()?;
    let head = Head { probe_id, location };
    let mut w = Direct { out, ts, lines: 0, open: false, fields: 0, bad: false };
    match kind {
        "icmp" => icmp(&mut p, &mut w, head)?,
        "dns" => dns(&mut p, &mut w, head)?,
        "http" => http(&mut p, &mut w, head)?,
        "mtr" => mtr(&mut p, &mut w, head)?,
        "health" => health(&mut p, &mut w, head)?,
        _ => return None,
    }
    p.end_object()?;
    if !p.at_end() {
        return None;
    }
    w.finish();
    (!w.bad).then_some(w.lines)
}

/// The next key, `name` (not the first of its object), and its value.
#[inline]
fn field<'a, T>(p: &mut Scan<'a>, name: &str, value: impl FnOnce(&mut Scan<'a>) -> Option<T>) -> Option<T> {
    p.key(name, false)?;
    value(p)
}

/// The next key, `name`, and its float value or `null`.
fn nullable_num<'a>(p: &mut Scan<'a>, name: &str) -> Option<Option<Num<'a>>> {
    field(p, name, |p| p.nullable(Scan::f64_text))
}

/// The envelope's tags, which begin every point.
#[derive(Clone, Copy)]
struct Head<'a> {
    probe_id: &'a str,
    location: &'a str,
}

impl<'a> Head<'a> {
    fn begin(self, w: &mut Direct<'_>, measurement: &'static str) {
        w.begin(measurement);
        w.tag("probe_id", self.probe_id);
        w.tag("location", self.location);
    }
}

impl Direct<'_> {
    /// A float field from its JSON text: the text itself when it is what
    /// `Display` writes, else the value formatted.
    fn num(&mut self, k: &'static str, (v, text): Num<'_>) {
        match display_prefix(text) {
            Some(shown) => {
                self.field_key(k);
                self.out.extend_from_slice(shown.as_bytes());
            }
            None => self.float(k, v),
        }
    }

    fn opt_num(&mut self, k: &'static str, v: Option<Num<'_>>) {
        if let Some(v) = v {
            self.num(k, v);
        }
    }

    /// A u64 field, `None` beyond i64 (refused by `render_message`).
    fn uint64(&mut self, k: &'static str, v: u64) -> Option<()> {
        self.int(k, i64::try_from(v).ok()?);
        Some(())
    }
}

/// What Rust's `Display` writes for the `f64` a JSON number reads as, when
/// that is a prefix of the number's text: no exponent, at most 9 integer
/// digits and at most 6 decimals once trailing zeros are cut (`12.500` ->
/// `12.5`, `3.0` -> `3`, `-0.0` -> `-0`). Such a decimal is below 2^30,
/// where one ulp is at most 2^-23 (< 1.2 * 10^-7), so every other decimal
/// of at most 6 places is more than an ulp away and reads as another
/// `f64`: it is the shortest that reads back, which is what `Display`
/// writes (the same argument as `fmt_f64`'s). Agents' milliseconds have
/// at most 6 decimals (whole nanoseconds, `netprobe_agent::probe::ms`).
/// `None` for everything else, which is formatted from the value.
fn display_prefix(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let sign = usize::from(b.first() == Some(&b'-'));
    let point = b.iter().position(|&c| c == b'.').unwrap_or(b.len());
    if point - sign > 9 || b.iter().any(|&c| c == b'e' || c == b'E') {
        return None;
    }
    let mut end = b.len();
    while end > point + 1 && b[end - 1] == b'0' {
        end -= 1;
    }
    if end == point + 1 {
        end = point;
    }
    (end.saturating_sub(point + 1) <= 6).then(|| &text[..end])
}

fn icmp<'a>(p: &mut Scan<'a>, w: &mut Direct<'_>, head: Head<'a>) -> Option<()> {
    let target = field(p, "target", Scan::str)?;
    let resolved_ip = field(p, "resolved_ip", |p| p.nullable(Scan::ip))?;
    let sent = field(p, "sent", Scan::u32)?;
    let received = field(p, "received", Scan::u32)?;
    let loss_pct = field(p, "loss_pct", Scan::f64_text)?;
    let rtt_min_ms = nullable_num(p, "rtt_min_ms")?;
    let rtt_avg_ms = nullable_num(p, "rtt_avg_ms")?;
    let rtt_median_ms = nullable_num(p, "rtt_median_ms")?;
    let rtt_max_ms = nullable_num(p, "rtt_max_ms")?;
    let rtt_stddev_ms = nullable_num(p, "rtt_stddev_ms")?;
    let jitter_ms = nullable_num(p, "jitter_ms")?;
    let error = field(p, "error", Scan::error)?;
    head.begin(w, "icmp");
    w.tag("target", target);
    w.int("sent", sent.into());
    w.int("received", received.into());
    w.num("loss_pct", loss_pct);
    w.ip("resolved_ip", resolved_ip);
    w.opt_num("rtt_min_ms", rtt_min_ms);
    w.opt_num("rtt_avg_ms", rtt_avg_ms);
    w.opt_num("rtt_median_ms", rtt_median_ms);
    w.opt_num("rtt_max_ms", rtt_max_ms);
    w.opt_num("rtt_stddev_ms", rtt_stddev_ms);
    w.opt_num("jitter_ms", jitter_ms);
    w.error(&error);
    Some(())
}

fn dns<'a>(p: &mut Scan<'a>, w: &mut Direct<'_>, head: Head<'a>) -> Option<()> {
    let resolver = field(p, "resolver", Scan::str)?;
    let query_name = field(p, "query_name", Scan::str)?;
    let record_type = field(p, "record_type", Scan::str)?;
    let rcode = field(p, "rcode", |p| p.nullable(Scan::str))?;
    let latency_ms = nullable_num(p, "latency_ms")?;
    let answers = field(p, "answers", answers)?;
    let answer_count = field(p, "answer_count", Scan::u32)?;
    let error = field(p, "error", Scan::error)?;
    head.begin(w, "dns");
    w.tag("resolver", resolver);
    w.tag("query_name", query_name);
    w.tag("record_type", record_type);
    w.int("answer_count", answer_count.into());
    w.opt_str("rcode", rcode);
    w.opt_num("latency_ms", latency_ms);
    w.str("answers", answers);
    w.error(&error);
    Some(())
}

/// The `answers` array's own text when it is what `answers_json` writes:
/// strings (no escapes, so serde_json writes them as they are) with no
/// whitespace between them.
fn answers<'a>(p: &mut Scan<'a>) -> Option<&'a str> {
    let start = p.pos();
    p.eat(b'[')?;
    if p.eat(b']').is_none() {
        loop {
            p.str()?;
            if p.eat(b',').is_none() {
                p.eat(b']')?;
                break;
            }
        }
    }
    p.since(start)
}

fn http<'a>(p: &mut Scan<'a>, w: &mut Direct<'_>, head: Head<'a>) -> Option<()> {
    let url = field(p, "url", Scan::str)?;
    let method = field(p, "method", Scan::str)?;
    let status_code = field(p, "status_code", |p| p.nullable(|p| p.u64().and_then(|n| u16::try_from(n).ok())))?;
    let success = field(p, "success", Scan::bool)?;
    let dns_ms = nullable_num(p, "dns_ms")?;
    let connect_ms = nullable_num(p, "connect_ms")?;
    let tls_ms = nullable_num(p, "tls_ms")?;
    let ttfb_ms = nullable_num(p, "ttfb_ms")?;
    let total_ms = nullable_num(p, "total_ms")?;
    let response_bytes = field(p, "response_bytes", |p| p.nullable(Scan::u64))?;
    let http_version = field(p, "http_version", |p| p.nullable(Scan::str))?;
    let tls_version = field(p, "tls_version", |p| p.nullable(Scan::str))?;
    let cert_not_after = field(p, "cert_not_after", |p| p.nullable(Scan::timestamp))?;
    let redirects = field(p, "redirects", Scan::u32)?;
    let error = field(p, "error", Scan::error)?;
    head.begin(w, "http");
    w.tag("url", url);
    w.tag("method", method);
    w.bool("success", success);
    w.int("redirects", redirects.into());
    w.opt_num("dns_ms", dns_ms);
    w.opt_num("connect_ms", connect_ms);
    w.opt_num("tls_ms", tls_ms);
    w.opt_num("ttfb_ms", ttfb_ms);
    w.opt_num("total_ms", total_ms);
    w.opt_str("http_version", http_version);
    w.opt_str("tls_version", tls_version);
    w.error(&error);
    w.opt_int("status_code", status_code);
    w.opt_int("cert_not_after", cert_not_after.map(|t| t.unix_seconds()));
    if let Some(n) = response_bytes {
        w.uint64("response_bytes", n)?;
    }
    Some(())
}

/// The `mtr_path` point comes first in the line protocol, but its `error`
/// comes after the hops in the JSON: the hop lines are written as they are
/// read, then the path line, which is then rotated in front of them.
fn mtr<'a>(p: &mut Scan<'a>, w: &mut Direct<'_>, head: Head<'a>) -> Option<()> {
    let target = field(p, "target", Scan::str)?;
    let destination_reached = field(p, "destination_reached", Scan::bool)?;
    let hop_count = field(p, "hop_count", Scan::u32)?;
    let path_hash = field(p, "path_hash", Scan::str)?;
    p.key("hops", false)?;
    let hops_at = w.out.len();
    p.eat(b'[')?;
    if p.eat(b']').is_none() {
        loop {
            p.ws();
            hop(p, w, head, target)?;
            p.ws();
            if p.eat(b',').is_none() {
                p.eat(b']')?;
                break;
            }
        }
    }
    w.end();
    let error = field(p, "error", Scan::error)?;
    let path_at = w.out.len();
    head.begin(w, "mtr_path");
    w.tag("target", target);
    w.bool("destination_reached", destination_reached);
    w.int("hop_count", hop_count.into());
    w.str("path_hash", path_hash);
    w.error(&error);
    w.end();
    let path_len = w.out.len() - path_at;
    w.out[hops_at..].rotate_right(path_len);
    Some(())
}

fn hop<'a>(p: &mut Scan<'a>, w: &mut Direct<'_>, head: Head<'a>, target: &'a str) -> Option<()> {
    p.eat(b'{')?;
    p.key("ttl", true)?;
    let ttl = p.u64().and_then(|n| u8::try_from(n).ok())?;
    let ip = field(p, "ip", |p| p.nullable(Scan::ip))?;
    let other_ips = if p.key_if("other_ips", false) { p.array(Scan::ip)? } else { Vec::new() };
    let hostname = field(p, "hostname", |p| p.nullable(Scan::str))?;
    let asn = field(p, "asn", |p| p.nullable(Scan::u32))?;
    let sent = field(p, "sent", Scan::u32)?;
    let received = field(p, "received", Scan::u32)?;
    let loss_pct = field(p, "loss_pct", Scan::f64_text)?;
    let rtt_last_ms = nullable_num(p, "rtt_last_ms")?;
    let rtt_avg_ms = nullable_num(p, "rtt_avg_ms")?;
    let rtt_best_ms = nullable_num(p, "rtt_best_ms")?;
    let rtt_worst_ms = nullable_num(p, "rtt_worst_ms")?;
    let rtt_stddev_ms = nullable_num(p, "rtt_stddev_ms")?;
    p.end_object()?;
    head.begin(w, "mtr_hop");
    w.tag("target", target);
    w.tag_fmt("ttl", &ttl);
    w.int("sent", sent.into());
    w.int("received", received.into());
    w.num("loss_pct", loss_pct);
    w.int("other_ip_count", i64::try_from(other_ips.len()).ok()?);
    w.ip("ip", ip);
    w.opt_str_fmt("other_ips", (!other_ips.is_empty()).then_some(Join(&other_ips, ",")));
    w.opt_str("hostname", hostname);
    w.opt_num("rtt_last_ms", rtt_last_ms);
    w.opt_num("rtt_avg_ms", rtt_avg_ms);
    w.opt_num("rtt_best_ms", rtt_best_ms);
    w.opt_num("rtt_worst_ms", rtt_worst_ms);
    w.opt_num("rtt_stddev_ms", rtt_stddev_ms);
    w.opt_int("asn", asn);
    Some(())
}

/// Health without feeds (a BGP agent's heartbeat has them; it is declined).
fn health<'a>(p: &mut Scan<'a>, w: &mut Direct<'_>, head: Head<'a>) -> Option<()> {
    let last_successful_run = field(p, "last_successful_run", |p| p.nullable(Scan::timestamp))?;
    let uptime_s = field(p, "uptime_s", Scan::u64)?;
    let failures_last_hour = field(p, "failures_last_hour", Scan::u32)?;
    let runs_last_hour = field(p, "runs_last_hour", Scan::u32)?;
    let spool_messages = field(p, "spool_messages", Scan::u64)?;
    let spool_dropped_messages = field(p, "spool_dropped_messages", Scan::u64)?;
    let kafka_connected = field(p, "kafka_connected", Scan::bool)?;
    let instance = if p.key_if("instance", false) { p.nullable(Scan::str)? } else { None };
    head.begin(w, "probe_health");
    if let Some(i) = instance {
        w.tag("instance", i);
    }
    w.uint64("uptime_s", uptime_s)?;
    w.int("failures_last_hour", failures_last_hour.into());
    w.int("runs_last_hour", runs_last_hour.into());
    w.uint64("spool_messages", spool_messages)?;
    w.uint64("spool_dropped_messages", spool_dropped_messages)?;
    w.bool("kafka_connected", kafka_connected);
    w.opt_int("last_successful_run", last_successful_run.map(|t| t.unix_seconds()));
    Some(())
}

#[cfg(test)]
mod tests {
    use super::display_prefix;

    /// The prefix, when given, is what `Display` writes for the number
    /// (the oracle: std's `Display` of std's parse), on edge cases and
    /// random decimals of every length and scale.
    #[test]
    fn display_prefix_is_what_display_writes() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "0.000",
            "1",
            "1.0",
            "1.50",
            "12.5000",
            "0.0001",
            "0.00010",
            "0.00001",
            "123456789",
            "123456789.1234",
            "1234567890",
            "999999999.9999",
            "999999999.999999",
            "999999999.9999999",
            "0.000001",
            "0.0000001",
            "0.123456",
            "47.123",
            "0.047123000000000004",
            "-999999999.9999",
            "4294967295.5",
            "1e3",
            "1.5E2",
            "0.30000000000000004",
            "11.204",
            "20.000",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut seed: u64 = 11;
        let mut next = move || {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for _ in 0..300_000 {
            let int_digits = 1 + next() % 11;
            let mut s: String = (0..int_digits).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
            let trimmed = s.trim_start_matches('0');
            s = if trimmed.is_empty() { "0".into() } else { trimmed.into() };
            let decimals = next() % 8;
            if decimals > 0 {
                s.push('.');
                s.extend((0..decimals).map(|_| char::from(b'0' + (next() % 10) as u8)));
            }
            if next() % 4 == 0 {
                s.insert(0, '-');
            }
            cases.push(s);
            cases.push(format!("{}", (next() % 100_000_000) as f64 / 1000.0));
        }
        let mut taken = 0;
        for c in &cases {
            let v: f64 = c.parse().expect("a JSON number");
            if let Some(shown) = display_prefix(c) {
                taken += 1;
                assert_eq!(shown, v.to_string(), "{c}");
            }
        }
        assert!(taken > 300_000, "{taken} of {} written from their text", cases.len());
    }
}
