//! Wire message -> InfluxDB line protocol, per the schema of DESIGN.md.
//!
//! One point per message (mtr: one `mtr_path` point plus one `mtr_hop` point
//! per hop). Every point has the tags `probe_id` and `location`; the
//! timestamp is the message timestamp in ns, so re-ingesting a message
//! overwrites its points instead of duplicating them. Bounded values are
//! tags, everything else fields; absent (`null`) values are left out.
//! Registry and health points carry an `instance` tag when the agent names
//! its systemd template instance, so instances sharing a `probe_id` keep
//! separate series. DNS `answers` is one string field holding a JSON array
//! ([`answers_json`]).
//!
//! Lines are written in the dialect InfluxDB OSS 2.x actually parses (Go,
//! `models/points.go`, v2.9.1), which differs from the line-protocol page and
//! from the `influxdb-line-protocol` crate's builder on one point: tag values
//! have no escape for `\`. So tag keys and values escape only `,`, `=` and
//! space with a backslash and leave backslashes alone; string fields escape
//! `\` and `"`. See `docs/line-protocol.md`.
//!
//! What InfluxDB 2.x cannot carry is refused here first: a line break in a
//! tag value, a tag value ending in `\` (the scanner would read the next
//! separator as escaped), an empty `probe_id`, a non-finite float, an
//! integer beyond i64 or a timestamp beyond i64 ns.
//!
//! Three forms write the same bytes: [`points`] then [`render`] (the
//! reference, with every check), [`render_message`] (from a decoded
//! message, no `Point`s), and [`transcode`] (from the JSON text, no
//! message); the ingest loop calls [`render_payload`], which takes the
//! last and falls back to the second.

use std::borrow::Cow;
use std::fmt::Display;
use std::io::Write as _;
use std::net::IpAddr;

use netprobe_wire::msg::{Bgp, Dns, Health, Http, Icmp, Mtr, Registry};
use netprobe_wire::{Body, Message, ProbeError, Timestamp};

mod transcode;

pub use transcode::transcode;

/// Why a message cannot become points. The message goes to the DLQ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointError {
    /// A tag value holds `\n` or `\r`, which line protocol cannot escape.
    #[error("tag `{tag}` contains a line break, which line protocol cannot carry")]
    LineBreakInTag {
        /// The tag key.
        tag: &'static str,
    },
    /// A tag value ends with `\`: InfluxDB 2.x would read the following
    /// separator as escaped, so no line can carry it.
    #[error("tag `{tag}` ends with a backslash, which InfluxDB 2.x line protocol cannot carry")]
    TrailingBackslashInTag {
        /// The tag key.
        tag: &'static str,
    },
    /// `probe_id` is empty; every point must carry it.
    #[error("probe_id is empty")]
    EmptyProbeId,
    /// A float field is NaN or infinite.
    #[error("field `{field}` is not a finite number")]
    NonFinite {
        /// The field key.
        field: &'static str,
    },
    /// An integer field does not fit line protocol's i64.
    #[error("field `{field}` = {value} exceeds the i64 range of line protocol integers")]
    IntegerOverflow {
        /// The field key.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// The timestamp is outside 1677..2262, the i64 nanosecond range.
    #[error("timestamp {0} is outside the i64 nanosecond range")]
    TimestampOutOfRange(Timestamp),
}

/// A field value of a point, typed as line protocol types it.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    /// `1.5` (float)
    Float(f64),
    /// `5i` (signed 64-bit integer)
    Int(i64),
    /// `true`
    Bool(bool),
    /// `"text"`
    Str(Cow<'a, str>),
}

/// One point before rendering: measurement, tags, fields, timestamp (ns).
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    /// Measurement name, e.g. `icmp`.
    pub measurement: &'static str,
    /// Tags in order; empty values are left out when rendering.
    pub tags: Vec<(&'static str, Cow<'a, str>)>,
    /// Fields in order; at least one.
    pub fields: Vec<(&'static str, Field<'a>)>,
    /// Unix nanoseconds.
    pub timestamp_ns: i64,
}

/// Builds the points of one message. Validates everything line protocol
/// cannot carry; see [`PointError`].
pub fn points(msg: &Message) -> Result<Vec<Point<'_>>, PointError> {
    if msg.probe_id.as_str().is_empty() {
        return Err(PointError::EmptyProbeId);
    }
    let ts = msg.timestamp.unix_nanos().ok_or(PointError::TimestampOutOfRange(msg.timestamp))?;
    let mut collect = Collect { ts, points: Vec::with_capacity(1) };
    layout(msg, &mut collect)?;
    for p in &collect.points {
        for (tag, value) in &p.tags {
            if value.contains(['\n', '\r']) {
                return Err(PointError::LineBreakInTag { tag });
            }
            if value.ends_with('\\') {
                return Err(PointError::TrailingBackslashInTag { tag });
            }
        }
        for (field, value) in &p.fields {
            if matches!(value, Field::Float(f) if !f.is_finite()) {
                return Err(PointError::NonFinite { field });
            }
        }
    }
    Ok(collect.points)
}

/// Why a payload cannot become line protocol; either way the message goes
/// to the DLQ with this reason.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Not a wire message (the error names the field and what is wrong).
    #[error(transparent)]
    Decode(#[from] netprobe_wire::Error),
    /// A wire message whose points line protocol cannot carry.
    #[error(transparent)]
    Point(#[from] PointError),
}

/// Appends the line protocol of the wire message in `payload` (JSON, see
/// DESIGN.md) to `out` and returns how many lines it wrote: the bytes of
/// [`render_message`] of the decoded message. Messages as agents write
/// them go straight from JSON to line protocol (`transcode`, no message
/// built); the rest are decoded with `netprobe_wire::decode` and rendered.
/// On error `out` is left as it was.
pub fn render_payload(payload: &[u8], out: &mut Vec<u8>) -> Result<usize, RenderError> {
    if let Some(lines) = std::str::from_utf8(payload).ok().and_then(|text| transcode::transcode(text, out)) {
        return Ok(lines);
    }
    let msg = netprobe_wire::decode(payload)?;
    Ok(render_message(&msg, out)?)
}

/// Appends the line protocol of `msg`'s points to `out` and returns how
/// many lines it wrote: the bytes of `render(&points(msg)?, out)`, written
/// straight from the message without building [`Point`]s (no vector per
/// point, no owned string per formatted value). On error `out` is left as
/// it was and the error is the one [`points`] returns (its checks run only
/// then, on the rare message that fails).
pub fn render_message(msg: &Message, out: &mut Vec<u8>) -> Result<usize, PointError> {
    let start = out.len();
    let ok = !msg.probe_id.as_str().is_empty() && msg.timestamp.unix_nanos().is_some();
    if ok {
        let ts = msg.timestamp.unix_nanos().unwrap_or_default();
        let mut w = Direct { out, ts, lines: 0, open: false, fields: 0, bad: false };
        if layout(msg, &mut w).is_ok() && !w.bad {
            return Ok(w.lines);
        }
    }
    out.truncate(start);
    // Same checks as `points`, in its order, so the error is the same.
    match points(msg) {
        Err(e) => Err(e),
        // Unreachable as long as `Direct` checks what `points` checks; if it
        // ever disagrees, the points decide.
        Ok(pts) => {
            render(&pts, out);
            Ok(pts.len())
        }
    }
}

/// Appends the line protocol of `points` to `out` (one line each, `\n`
/// terminated). Points must come from [`points`], which validated them.
pub fn render(points: &[Point<'_>], out: &mut Vec<u8>) {
    for p in points {
        escape(p.measurement, b", ", out);
        for (k, v) in p.tags.iter().filter(|(_, v)| !v.is_empty()) {
            out.push(b',');
            escape(k, TAG_SPECIALS, out);
            out.push(b'=');
            escape(v, TAG_SPECIALS, out);
        }
        for (i, (k, v)) in p.fields.iter().enumerate() {
            out.push(if i == 0 { b' ' } else { b',' });
            escape(k, TAG_SPECIALS, out);
            out.push(b'=');
            // Writing into a Vec cannot fail.
            let _ = match v {
                // Display: shortest round-trip form, never an exponent.
                Field::Float(x) => write!(out, "{x}"),
                Field::Int(x) => write!(out, "{x}i"),
                Field::Bool(x) => write!(out, "{x}"),
                Field::Str(x) => {
                    out.push(b'"');
                    escape(x, STR_SPECIALS, out);
                    out.push(b'"');
                    Ok(())
                }
            };
        }
        let _ = writeln!(out, " {}", p.timestamp_ns);
    }
}

/// Characters escaped in tag keys, tag values and field keys (Go's
/// `tagEscapeCodes`); a backslash is written as is.
const TAG_SPECIALS: &[u8] = b",= ";

fn escape(s: &str, specials: &[u8], out: &mut Vec<u8>) {
    escape_bytes(s.as_bytes(), specials, out);
}

fn escape_bytes(s: &[u8], specials: &[u8], out: &mut Vec<u8>) {
    match specials {
        TAG_SPECIALS => escape_tag(s, out),
        STR_SPECIALS => escape_str(s, out),
        _ => escape_with(s, |b| specials.contains(&b), out),
    }
}

/// [`escape`] with [`TAG_SPECIALS`].
#[inline]
fn escape_tag(s: &[u8], out: &mut Vec<u8>) {
    escape_with(s, |b| matches!(b, b',' | b'=' | b' '), out);
}

/// [`escape`] with [`STR_SPECIALS`].
#[inline]
fn escape_str(s: &[u8], out: &mut Vec<u8>) {
    escape_with(s, |b| matches!(b, b'"' | b'\\'), out);
}

/// Copies `s` to `out` with a `\` before every byte `special` picks, in
/// runs between them (most values have none and are one copy).
#[inline]
fn escape_with(s: &[u8], special: impl Fn(u8) -> bool, out: &mut Vec<u8>) {
    let mut run = 0;
    for (i, &b) in s.iter().enumerate() {
        if special(b) {
            out.extend_from_slice(&s[run..i]);
            out.push(b'\\');
            run = i;
        }
    }
    out.extend_from_slice(&s[run..]);
}

/// Characters escaped in string field values.
const STR_SPECIALS: &[u8] = b"\"\\";

/// Where [`layout`] sends a message's points: [`Collect`] builds [`Point`]s,
/// [`Direct`] writes line protocol. A point is `begin`, its tags, its fields
/// (at least one), in the order they appear in the line.
trait Emit<'a> {
    /// Starts a point of `measurement`.
    fn begin(&mut self, measurement: &'static str);
    /// A tag; left out when empty.
    fn tag(&mut self, k: &'static str, v: &'a str);
    /// A tag whose value is `v` formatted.
    fn tag_fmt(&mut self, k: &'static str, v: &dyn Display);
    /// A float field.
    fn float(&mut self, k: &'static str, v: f64);
    /// An integer field.
    fn int(&mut self, k: &'static str, v: i64);
    /// A boolean field.
    fn bool(&mut self, k: &'static str, v: bool);
    /// A string field borrowed from the message.
    fn str(&mut self, k: &'static str, v: &'a str);
    /// A string field that is `v` formatted.
    fn str_fmt(&mut self, k: &'static str, v: &dyn Display);
    /// A string field built by the caller.
    fn string(&mut self, k: &'static str, v: String);

    fn opt_float(&mut self, k: &'static str, v: Option<f64>) {
        if let Some(v) = v {
            self.float(k, v);
        }
    }
    fn opt_int(&mut self, k: &'static str, v: Option<impl Into<i64>>) {
        if let Some(v) = v {
            self.int(k, v.into());
        }
    }
    fn uint(&mut self, k: &'static str, v: u64) -> Result<(), PointError> {
        let v = i64::try_from(v).map_err(|_| PointError::IntegerOverflow { field: k, value: v })?;
        self.int(k, v);
        Ok(())
    }
    fn opt_str(&mut self, k: &'static str, v: Option<&'a str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }
    fn opt_str_fmt(&mut self, k: &'static str, v: Option<impl Display>) {
        if let Some(v) = v {
            self.str_fmt(k, &v);
        }
    }
    /// An address field, as `Display` writes it.
    fn ip(&mut self, k: &'static str, v: Option<IpAddr>) {
        self.opt_str_fmt(k, v);
    }
    fn error(&mut self, e: &Option<ProbeError>) {
        self.opt_str_fmt("error", e.as_ref());
    }
    /// After the last point of a message.
    fn finish(&mut self) {}
}

/// Builds [`Point`]s (the reference form: [`points`] and its checks).
struct Collect<'a> {
    ts: i64,
    points: Vec<Point<'a>>,
}

impl<'a> Collect<'a> {
    fn last(&mut self) -> &mut Point<'a> {
        self.points.last_mut().expect("begin comes first")
    }
}

impl<'a> Emit<'a> for Collect<'a> {
    fn begin(&mut self, measurement: &'static str) {
        self.points.push(Point { measurement, tags: Vec::with_capacity(4), fields: Vec::new(), timestamp_ns: self.ts });
    }
    fn tag(&mut self, k: &'static str, v: &'a str) {
        self.last().tags.push((k, Cow::Borrowed(v)));
    }
    fn tag_fmt(&mut self, k: &'static str, v: &dyn Display) {
        self.last().tags.push((k, Cow::Owned(v.to_string())));
    }
    fn float(&mut self, k: &'static str, v: f64) {
        self.last().fields.push((k, Field::Float(v)));
    }
    fn int(&mut self, k: &'static str, v: i64) {
        self.last().fields.push((k, Field::Int(v)));
    }
    fn bool(&mut self, k: &'static str, v: bool) {
        self.last().fields.push((k, Field::Bool(v)));
    }
    fn str(&mut self, k: &'static str, v: &'a str) {
        self.last().fields.push((k, Field::Str(Cow::Borrowed(v))));
    }
    fn str_fmt(&mut self, k: &'static str, v: &dyn Display) {
        self.last().fields.push((k, Field::Str(Cow::Owned(v.to_string()))));
    }
    fn string(&mut self, k: &'static str, v: String) {
        self.last().fields.push((k, Field::Str(Cow::Owned(v))));
    }
}

/// Writes line protocol as [`render`] does, checking what [`points`] checks
/// (`bad` set on a line break or trailing `\` in a tag, a non-finite float).
/// Measurement names and keys are this module's constants, none of which
/// needs escaping: they are copied as they are (the golden and property
/// tests hold the output to `render`'s, which escapes them).
struct Direct<'o> {
    out: &'o mut Vec<u8>,
    ts: i64,
    /// Lines finished.
    lines: usize,
    /// Whether a point is begun and not yet ended.
    open: bool,
    /// Fields written in the open point.
    fields: usize,
    bad: bool,
}

impl Direct<'_> {
    fn end(&mut self) {
        if std::mem::take(&mut self.open) {
            self.out.push(b' ');
            let mut digits = [0u8; 20];
            self.out.extend_from_slice(fmt_i64(self.ts, &mut digits));
            self.out.push(b'\n');
            self.lines += 1;
        }
    }

    fn field_key(&mut self, k: &'static str) {
        self.out.push(if self.fields == 0 { b' ' } else { b',' });
        self.fields += 1;
        self.out.extend_from_slice(k.as_bytes());
        self.out.push(b'=');
    }

    /// Appends `v` formatted, starting at the end of `out`, and returns
    /// where it starts (escaped afterwards in place when needed).
    fn append_fmt(&mut self, v: &dyn Display) -> usize {
        let at = self.out.len();
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{v}");
        at
    }

    /// Escapes `out[at..]` in place with `specials`.
    fn escape_tail(&mut self, at: usize, specials: &[u8]) {
        if self.out[at..].iter().any(|b| specials.contains(b)) {
            let raw = self.out.split_off(at);
            // Formatted from `Display`, so UTF-8; escape works on bytes anyway.
            escape_bytes(&raw, specials, self.out);
        }
    }
}

impl<'a> Emit<'a> for Direct<'_> {
    fn begin(&mut self, measurement: &'static str) {
        // The previous point ends where the next begins; `layout` ends the last.
        self.end();
        self.open = true;
        self.fields = 0;
        self.out.extend_from_slice(measurement.as_bytes());
    }
    fn tag(&mut self, k: &'static str, v: &'a str) {
        self.bad |= bad_tag(v.as_bytes());
        if !v.is_empty() {
            self.out.push(b',');
            self.out.extend_from_slice(k.as_bytes());
            self.out.push(b'=');
            escape_tag(v.as_bytes(), self.out);
        }
    }
    fn tag_fmt(&mut self, k: &'static str, v: &dyn Display) {
        let comma = self.out.len();
        self.out.push(b',');
        self.out.extend_from_slice(k.as_bytes());
        self.out.push(b'=');
        let at = self.append_fmt(v);
        self.bad |= bad_tag(&self.out[at..]);
        if self.out.len() == at {
            self.out.truncate(comma);
        } else {
            self.escape_tail(at, TAG_SPECIALS);
        }
    }
    fn float(&mut self, k: &'static str, v: f64) {
        self.bad |= !v.is_finite();
        self.field_key(k);
        if v.is_finite() {
            fmt_f64(v, self.out);
        }
    }
    fn int(&mut self, k: &'static str, v: i64) {
        self.field_key(k);
        let mut digits = [0u8; 20];
        self.out.extend_from_slice(fmt_i64(v, &mut digits));
        self.out.push(b'i');
    }
    fn bool(&mut self, k: &'static str, v: bool) {
        self.field_key(k);
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
    }
    fn str(&mut self, k: &'static str, v: &str) {
        self.field_key(k);
        self.out.push(b'"');
        escape_str(v.as_bytes(), self.out);
        self.out.push(b'"');
    }
    fn str_fmt(&mut self, k: &'static str, v: &dyn Display) {
        self.field_key(k);
        self.out.push(b'"');
        let at = self.append_fmt(v);
        self.escape_tail(at, STR_SPECIALS);
        self.out.push(b'"');
    }
    fn string(&mut self, k: &'static str, v: String) {
        self.str(k, &v);
    }
    fn ip(&mut self, k: &'static str, v: Option<IpAddr>) {
        match v {
            // `a.b.c.d` in decimal is what `Display` writes for IPv4 (and
            // needs no escaping); IPv6 goes through `Display`.
            Some(IpAddr::V4(a)) => {
                self.field_key(k);
                self.out.push(b'"');
                let mut digits = [0u8; 20];
                for (i, octet) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.out.push(b'.');
                    }
                    self.out.extend_from_slice(fmt_i64(octet.into(), &mut digits));
                }
                self.out.push(b'"');
            }
            other => self.opt_str_fmt(k, other),
        }
    }
    fn finish(&mut self) {
        self.end();
    }
}

/// Appends finite `v` as `write!("{v}")` does (Rust's `Display`: the
/// shortest digits that read back as `v`, never an exponent, `-0` for
/// negative zero), without `fmt` for what probes send: whole numbers below
/// 2^53, and numbers below 2^32 with at most 4 decimals (`11.204` ms).
/// For those, `n / 10^k == v` is exact IEEE arithmetic, so it proves the
/// decimal `n·10^-k` reads back as `v`; it is the shortest such decimal
/// (k is tried from 0 up) and the only one with k decimals (10^-4 is wider
/// than an ulp below 2^32), which is what `Display` writes. Everything
/// else goes through `Display`. (`ryu` gives the same digits except on
/// ties, so it is not used.)
fn fmt_f64(v: f64, out: &mut Vec<u8>) {
    const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0; // 2^53
    const SHORT_DECIMALS: f64 = 4_294_967_296.0; // 2^32
    const POW10: [f64; 5] = [1.0, 10.0, 100.0, 1_000.0, 10_000.0];
    let mut digits = [0u8; 20];
    if v == 0.0 && v.is_sign_negative() {
        out.extend_from_slice(b"-0");
        return;
    }
    // Truncating casts rather than `fract`/`round`, which are libm calls
    // on baseline x86-64: exact below 2^53.
    if v.abs() < EXACT_INTEGERS && (v as i64) as f64 == v {
        out.extend_from_slice(fmt_i64(v as i64, &mut digits));
        return;
    }
    if v.abs() < SHORT_DECIMALS {
        for (k, scale) in POW10.iter().enumerate().skip(1) {
            let x = v * scale;
            // |x| < 2^32 * 10^4 < 2^53: `x - t` is exact. Rounded half away
            // from zero; whichever neighbour it picks, only an `n` with
            // `n / scale == v` is written (the proof needs nothing more).
            let t = x as i64;
            let r = x - t as f64;
            let n = if r >= 0.5 {
                t + 1
            } else if r <= -0.5 {
                t - 1
            } else {
                t
            };
            if n as f64 / scale == v {
                if n < 0 {
                    out.push(b'-');
                }
                let text = fmt_i64(n.unsigned_abs() as i64, &mut digits);
                // Left-pad to more than k digits: 0.05 is n = 5, k = 2 -> "005".
                let zeros = (k + 1).saturating_sub(text.len());
                let mut padded = [b'0'; 24];
                padded[zeros..zeros + text.len()].copy_from_slice(text);
                let padded = &padded[..zeros + text.len()];
                let point = padded.len() - k;
                out.extend_from_slice(&padded[..point]);
                out.push(b'.');
                out.extend_from_slice(&padded[point..]);
                return;
            }
        }
    }
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{v}");
}

/// Whether line protocol cannot carry `v` as a tag value (see [`PointError`]).
fn bad_tag(v: &[u8]) -> bool {
    v.last() == Some(&b'\\') || v.iter().any(|&b| b == b'\n' || b == b'\r')
}

/// `v` in decimal, in `buf`: the digits `write!("{v}")` gives, without `fmt`.
fn fmt_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    // Two digits per division.
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    if v < 0 {
        // 19 digits at most for |i64::MIN|, so there is room for the sign.
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// DNS answers as one string field: a JSON array of strings (`["a","b"]`,
/// `[]` when none), so an answer holding `,`, `"` or `\` (TXT records) stays
/// one answer; Flux reads it back with `json.parse`. See
/// `docs/line-protocol.md`.
pub fn answers_json(answers: &[String]) -> String {
    // Serializing strings to JSON cannot fail.
    serde_json::to_string(answers).unwrap_or_default()
}

/// `items` formatted with `sep` between them, without a `Vec` of strings.
struct Join<'t, T>(&'t [T], &'static str);

impl<T: Display> Display for Join<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(self.1)?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

/// The points of one message, in line order, sent to `e` (one layout for
/// both [`points`] and [`render_message`], so they cannot drift apart).
fn layout<'a, E: Emit<'a>>(msg: &'a Message, e: &mut E) -> Result<(), PointError> {
    let begin = |e: &mut E, measurement| {
        e.begin(measurement);
        e.tag("probe_id", msg.probe_id.as_str());
        e.tag("location", msg.location.as_str());
    };
    match &msg.body {
        Body::Icmp(m) => icmp(m, e, &begin),
        Body::Dns(m) => dns(m, e, &begin),
        Body::Http(m) => http(m, e, &begin)?,
        Body::Mtr(m) => mtr(m, e, &begin),
        Body::Bgp(m) => bgp(m, e, &begin),
        Body::Registry(m) => registry(m, e, &begin)?,
        Body::Health(m) => health(m, e, &begin)?,
    }
    e.finish();
    Ok(())
}

type Begin<'f, E> = &'f dyn Fn(&mut E, &'static str);

fn icmp<'a, E: Emit<'a>>(m: &'a Icmp, e: &mut E, begin: Begin<'_, E>) {
    begin(e, "icmp");
    e.tag("target", &m.target);
    e.int("sent", m.sent.into());
    e.int("received", m.received.into());
    e.float("loss_pct", m.loss_pct);
    e.ip("resolved_ip", m.resolved_ip);
    e.opt_float("rtt_min_ms", m.rtt_min_ms);
    e.opt_float("rtt_avg_ms", m.rtt_avg_ms);
    e.opt_float("rtt_median_ms", m.rtt_median_ms);
    e.opt_float("rtt_max_ms", m.rtt_max_ms);
    e.opt_float("rtt_stddev_ms", m.rtt_stddev_ms);
    e.opt_float("jitter_ms", m.jitter_ms);
    e.error(&m.error);
}

fn dns<'a, E: Emit<'a>>(m: &'a Dns, e: &mut E, begin: Begin<'_, E>) {
    begin(e, "dns");
    e.tag("resolver", &m.resolver);
    e.tag("query_name", &m.query_name);
    e.tag("record_type", &m.record_type);
    e.int("answer_count", m.answer_count.into());
    e.opt_str("rcode", m.rcode.as_deref());
    e.opt_float("latency_ms", m.latency_ms);
    e.string("answers", answers_json(&m.answers));
    e.error(&m.error);
}

fn http<'a, E: Emit<'a>>(m: &'a Http, e: &mut E, begin: Begin<'_, E>) -> Result<(), PointError> {
    begin(e, "http");
    e.tag("url", &m.url);
    e.tag("method", &m.method);
    e.bool("success", m.success);
    e.int("redirects", m.redirects.into());
    e.opt_float("dns_ms", m.dns_ms);
    e.opt_float("connect_ms", m.connect_ms);
    e.opt_float("tls_ms", m.tls_ms);
    e.opt_float("ttfb_ms", m.ttfb_ms);
    e.opt_float("total_ms", m.total_ms);
    e.opt_str("http_version", m.http_version.as_deref());
    e.opt_str("tls_version", m.tls_version.as_deref());
    e.error(&m.error);
    e.opt_int("status_code", m.status_code);
    e.opt_int("cert_not_after", m.cert_not_after.map(|t| t.unix_seconds()));
    if let Some(n) = m.response_bytes {
        e.uint("response_bytes", n)?;
    }
    Ok(())
}

fn mtr<'a, E: Emit<'a>>(m: &'a Mtr, e: &mut E, begin: Begin<'_, E>) {
    begin(e, "mtr_path");
    e.tag("target", &m.target);
    e.bool("destination_reached", m.destination_reached);
    e.int("hop_count", m.hop_count.into());
    e.str("path_hash", &m.path_hash);
    e.error(&m.error);
    for hop in &m.hops {
        begin(e, "mtr_hop");
        e.tag("target", &m.target);
        e.tag_fmt("ttl", &hop.ttl.0);
        e.int("sent", hop.sent.into());
        e.int("received", hop.received.into());
        e.float("loss_pct", hop.loss_pct);
        e.int("other_ip_count", u32::try_from(hop.other_ips.len()).unwrap_or(u32::MAX).into());
        e.ip("ip", hop.ip);
        e.opt_str_fmt("other_ips", (!hop.other_ips.is_empty()).then_some(Join(&hop.other_ips, ",")));
        e.opt_str("hostname", hop.hostname.as_deref());
        e.opt_float("rtt_last_ms", hop.rtt_last_ms);
        e.opt_float("rtt_avg_ms", hop.rtt_avg_ms);
        e.opt_float("rtt_best_ms", hop.rtt_best_ms);
        e.opt_float("rtt_worst_ms", hop.rtt_worst_ms);
        e.opt_float("rtt_stddev_ms", hop.rtt_stddev_ms);
        e.opt_int("asn", hop.asn);
    }
}

fn bgp<'a, E: Emit<'a>>(m: &'a Bgp, e: &mut E, begin: Begin<'_, E>) {
    begin(e, "bgp");
    e.tag_fmt("prefix", &m.prefix);
    e.tag("event", m.event.as_str());
    e.int("peer_asn", m.peer_asn.into());
    e.str_fmt("peer_ip", &m.peer_ip);
    e.str("collector", &m.collector);
    e.str_fmt("expected_origins", &Join(&m.expected_origins, ","));
    e.str_fmt("as_path", &Join(&m.as_path, " "));
    e.str_fmt("communities", &Join(&m.communities, " "));
    e.str("source", m.source.as_str());
    e.opt_str_fmt("next_hop", m.next_hop);
    e.opt_int("origin_asn", m.origin_asn);
    e.opt_str_fmt("watched_prefix", m.watched_prefix);
    e.opt_int("peers_visible", m.peers_visible);
    e.opt_str("rpki_reason", m.rpki_reason.map(|r| r.as_str()));
    if let Some(expected) = m.origin_expected {
        e.bool("origin_expected", expected);
    }
}

fn registry<'a, E: Emit<'a>>(m: &'a Registry, e: &mut E, begin: Begin<'_, E>) -> Result<(), PointError> {
    begin(e, "agent_registry");
    if let Some(i) = &m.instance {
        e.tag("instance", i);
    }
    e.str("hostname", &m.hostname);
    e.str_fmt("available_metrics", &Join(&m.available_metrics, ","));
    e.str("version", &m.version);
    e.uint("uptime_s", m.uptime_s)?;
    e.str_fmt("started_at", &m.started_at);
    e.str("os", &m.os);
    e.ip("ip", m.ip);
    Ok(())
}

fn health<'a, E: Emit<'a>>(m: &'a Health, e: &mut E, begin: Begin<'_, E>) -> Result<(), PointError> {
    begin(e, "probe_health");
    if let Some(i) = &m.instance {
        e.tag("instance", i);
    }
    e.uint("uptime_s", m.uptime_s)?;
    e.int("failures_last_hour", m.failures_last_hour.into());
    e.int("runs_last_hour", m.runs_last_hour.into());
    e.uint("spool_messages", m.spool_messages)?;
    e.uint("spool_dropped_messages", m.spool_dropped_messages)?;
    e.bool("kafka_connected", m.kafka_connected);
    e.opt_int("last_successful_run", m.last_successful_run.map(|t| t.unix_seconds()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(v: f64) -> String {
        let mut out = Vec::new();
        fmt_f64(v, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    /// `fmt_i64` writes what `Display` writes, on the extremes, every
    /// power of ten's neighbours and random values.
    #[test]
    fn integers_are_written_as_display_writes_them() {
        let mut values = vec![0, 1, -1, 9, 10, 99, 100, 101, i64::MAX, i64::MIN, i64::MIN + 1];
        let mut p = 1i64;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1, -p]);
            p = next;
        }
        let mut rng = fastrand::Rng::with_seed(15);
        values.extend((0..100_000).map(|_| rng.i64(..) >> rng.u32(0..63)));
        for v in values {
            let mut digits = [0u8; 20];
            assert_eq!(fmt_i64(v, &mut digits), v.to_string().as_bytes(), "{v}");
        }
    }

    /// IPv4 fields are written as `Display` writes the address.
    #[test]
    fn ipv4_fields_are_written_as_display_writes_them() {
        let mut rng = fastrand::Rng::with_seed(15);
        for bits in [0u32, u32::MAX, 0x0a00_0001, 0xc000_0201].into_iter().chain((0..10_000).map(|_| rng.u32(..))) {
            let a = IpAddr::from(std::net::Ipv4Addr::from(bits));
            let mut out = Vec::new();
            let mut d = Direct { out: &mut out, ts: 0, lines: 0, open: true, fields: 0, bad: false };
            d.ip("ip", Some(a));
            assert_eq!(String::from_utf8(out).expect("ascii"), format!(" ip=\"{a}\""));
        }
    }

    /// `fmt_f64` writes what `Display` writes (the oracle: the standard
    /// library's formatting, which `render` uses), on edge cases and on
    /// random bit patterns across the whole range.
    #[test]
    fn floats_are_written_as_display_writes_them() {
        let edges = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.2,
            0.3,
            1.5,
            20.0,
            100.0,
            11.49,
            0.271,
            1e-7,
            1.5e-7,
            123456.789,
            1e15,
            1e16,
            1e21,
            1.5e20,
            9_007_199_254_740_992.0,
            9_007_199_254_740_993.0,
            4_503_599_627_370_495.5,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            2.2250738585072014e-308,
            0.000_123,
            1.0e-5,
            999_999.999,
        ];
        for v in edges {
            assert_eq!(direct(v), format!("{v}"), "{v:e}");
        }
        let mut rng = fastrand::Rng::with_seed(15);
        let mut checked = 0;
        while checked < 300_000 {
            let v = f64::from_bits(rng.u64(..));
            if v.is_finite() {
                assert_eq!(direct(v), format!("{v}"), "bits {:#x}", v.to_bits());
                checked += 1;
            }
            // Values as probes send them: milliseconds with a few decimals.
            let ms = f64::from(rng.u32(..10_000_000)) / 1000.0;
            assert_eq!(direct(ms), format!("{ms}"));
        }
    }
}
