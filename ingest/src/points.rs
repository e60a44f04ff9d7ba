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

use std::borrow::Cow;
use std::io::Write as _;

use netprobe_wire::msg::{Bgp, Dns, Health, Http, Icmp, Mtr, Registry};
use netprobe_wire::{Body, Message, ProbeError, Timestamp};

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
    let mut b = PointsBuilder { msg, ts, points: Vec::with_capacity(1) };
    match &msg.body {
        Body::Icmp(m) => b.icmp(m)?,
        Body::Dns(m) => b.dns(m)?,
        Body::Http(m) => b.http(m)?,
        Body::Mtr(m) => b.mtr(m)?,
        Body::Bgp(m) => b.bgp(m)?,
        Body::Registry(m) => b.registry(m)?,
        Body::Health(m) => b.health(m)?,
    }
    for p in &b.points {
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
    Ok(b.points)
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
                    escape(x, b"\"\\", out);
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
    // Most names and values need no escape: copy them whole.
    if !s.as_bytes().iter().any(|b| specials.contains(b)) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for &b in s.as_bytes() {
        if specials.contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
}

struct PointsBuilder<'a> {
    msg: &'a Message,
    ts: i64,
    points: Vec<Point<'a>>,
}

/// Collects fields, leaving out `None`s.
#[derive(Default)]
struct Fields<'a>(Vec<(&'static str, Field<'a>)>);

impl<'a> Fields<'a> {
    fn float(mut self, k: &'static str, v: f64) -> Self {
        self.0.push((k, Field::Float(v)));
        self
    }
    fn opt_float(self, k: &'static str, v: Option<f64>) -> Self {
        match v {
            Some(v) => self.float(k, v),
            None => self,
        }
    }
    fn int(mut self, k: &'static str, v: impl Into<i64>) -> Self {
        self.0.push((k, Field::Int(v.into())));
        self
    }
    fn opt_int(self, k: &'static str, v: Option<impl Into<i64>>) -> Self {
        match v {
            Some(v) => self.int(k, v),
            None => self,
        }
    }
    fn uint(self, k: &'static str, v: u64) -> Result<Self, PointError> {
        let v = i64::try_from(v).map_err(|_| PointError::IntegerOverflow { field: k, value: v })?;
        Ok(self.int(k, v))
    }
    fn bool(mut self, k: &'static str, v: bool) -> Self {
        self.0.push((k, Field::Bool(v)));
        self
    }
    fn str(mut self, k: &'static str, v: impl Into<Cow<'a, str>>) -> Self {
        self.0.push((k, Field::Str(v.into())));
        self
    }
    fn opt_str(self, k: &'static str, v: Option<impl Into<Cow<'a, str>>>) -> Self {
        match v {
            Some(v) => self.str(k, v),
            None => self,
        }
    }
    fn error(self, e: &Option<ProbeError>) -> Self {
        self.opt_str("error", e.as_ref().map(|e| e.to_string()))
    }
}

/// DNS answers as one string field: a JSON array of strings (`["a","b"]`,
/// `[]` when none), so an answer holding `,`, `"` or `\` (TXT records) stays
/// one answer; Flux reads it back with `json.parse`. See
/// `docs/line-protocol.md`.
pub fn answers_json(answers: &[String]) -> String {
    // Serializing strings to JSON cannot fail.
    serde_json::to_string(answers).unwrap_or_default()
}

/// The `instance` tag of registry and health points, when the agent sent one.
fn instance_tag(instance: &Option<String>) -> Vec<(&'static str, Cow<'_, str>)> {
    instance.as_deref().map(|i| ("instance", Cow::Borrowed(i))).into_iter().collect()
}

fn join<T: ToString>(items: &[T], sep: &str) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(sep)
}

impl<'a> PointsBuilder<'a> {
    fn push(&mut self, measurement: &'static str, extra_tags: Vec<(&'static str, Cow<'a, str>)>, fields: Fields<'a>) {
        let mut tags = Vec::with_capacity(2 + extra_tags.len());
        tags.push(("probe_id", Cow::Borrowed(self.msg.probe_id.as_str())));
        tags.push(("location", Cow::Borrowed(self.msg.location.as_str())));
        tags.extend(extra_tags);
        self.points.push(Point { measurement, tags, fields: fields.0, timestamp_ns: self.ts });
    }

    fn icmp(&mut self, m: &'a Icmp) -> Result<(), PointError> {
        let f = Fields::default()
            .int("sent", m.sent)
            .int("received", m.received)
            .float("loss_pct", m.loss_pct)
            .opt_str("resolved_ip", m.resolved_ip.map(|ip| ip.to_string()))
            .opt_float("rtt_min_ms", m.rtt_min_ms)
            .opt_float("rtt_avg_ms", m.rtt_avg_ms)
            .opt_float("rtt_median_ms", m.rtt_median_ms)
            .opt_float("rtt_max_ms", m.rtt_max_ms)
            .opt_float("rtt_stddev_ms", m.rtt_stddev_ms)
            .opt_float("jitter_ms", m.jitter_ms)
            .error(&m.error);
        self.push("icmp", vec![("target", m.target.as_str().into())], f);
        Ok(())
    }

    fn dns(&mut self, m: &'a Dns) -> Result<(), PointError> {
        let f = Fields::default()
            .int("answer_count", m.answer_count)
            .opt_str("rcode", m.rcode.as_deref())
            .opt_float("latency_ms", m.latency_ms)
            .str("answers", answers_json(&m.answers))
            .error(&m.error);
        let tags = vec![
            ("resolver", m.resolver.as_str().into()),
            ("query_name", m.query_name.as_str().into()),
            ("record_type", m.record_type.as_str().into()),
        ];
        self.push("dns", tags, f);
        Ok(())
    }

    fn http(&mut self, m: &'a Http) -> Result<(), PointError> {
        let f = Fields::default()
            .bool("success", m.success)
            .int("redirects", m.redirects)
            .opt_float("dns_ms", m.dns_ms)
            .opt_float("connect_ms", m.connect_ms)
            .opt_float("tls_ms", m.tls_ms)
            .opt_float("ttfb_ms", m.ttfb_ms)
            .opt_float("total_ms", m.total_ms)
            .opt_str("http_version", m.http_version.as_deref())
            .opt_str("tls_version", m.tls_version.as_deref())
            .error(&m.error);
        let f = f
            .opt_int("status_code", m.status_code)
            .opt_int("cert_not_after", m.cert_not_after.map(|t| t.unix_seconds()));
        let f = match m.response_bytes {
            Some(n) => f.uint("response_bytes", n)?,
            None => f,
        };
        self.push("http", vec![("url", m.url.as_str().into()), ("method", m.method.as_str().into())], f);
        Ok(())
    }

    fn mtr(&mut self, m: &'a Mtr) -> Result<(), PointError> {
        let f = Fields::default()
            .bool("destination_reached", m.destination_reached)
            .int("hop_count", m.hop_count)
            .str("path_hash", m.path_hash.as_str())
            .error(&m.error);
        self.push("mtr_path", vec![("target", m.target.as_str().into())], f);
        for hop in &m.hops {
            let f = Fields::default()
                .int("sent", hop.sent)
                .int("received", hop.received)
                .float("loss_pct", hop.loss_pct)
                .int("other_ip_count", u32::try_from(hop.other_ips.len()).unwrap_or(u32::MAX))
                .opt_str("ip", hop.ip.map(|ip| ip.to_string()))
                .opt_str("other_ips", (!hop.other_ips.is_empty()).then(|| join(&hop.other_ips, ",")))
                .opt_str("hostname", hop.hostname.as_deref())
                .opt_float("rtt_last_ms", hop.rtt_last_ms)
                .opt_float("rtt_avg_ms", hop.rtt_avg_ms)
                .opt_float("rtt_best_ms", hop.rtt_best_ms)
                .opt_float("rtt_worst_ms", hop.rtt_worst_ms)
                .opt_float("rtt_stddev_ms", hop.rtt_stddev_ms)
                .opt_int("asn", hop.asn);
            self.push("mtr_hop", vec![("target", m.target.as_str().into()), ("ttl", hop.ttl.0.to_string().into())], f);
        }
        Ok(())
    }

    fn bgp(&mut self, m: &'a Bgp) -> Result<(), PointError> {
        let f = Fields::default()
            .int("peer_asn", m.peer_asn)
            .str("peer_ip", m.peer_ip.to_string())
            .str("collector", m.collector.as_str())
            .str("expected_origins", join(&m.expected_origins, ","))
            .str("as_path", join(&m.as_path, " "))
            .str("communities", m.communities.join(" "))
            .str("source", m.source.as_str())
            .opt_str("next_hop", m.next_hop.map(|ip| ip.to_string()))
            .opt_int("origin_asn", m.origin_asn)
            .opt_str("watched_prefix", m.watched_prefix.map(|p| p.to_string()))
            .opt_int("peers_visible", m.peers_visible)
            .opt_str("rpki_reason", m.rpki_reason.map(|r| r.as_str()));
        let f = match m.origin_expected {
            Some(expected) => f.bool("origin_expected", expected),
            None => f,
        };
        self.push("bgp", vec![("prefix", m.prefix.to_string().into()), ("event", m.event.as_str().into())], f);
        Ok(())
    }

    fn registry(&mut self, m: &'a Registry) -> Result<(), PointError> {
        let f = Fields::default()
            .str("hostname", m.hostname.as_str())
            .str("available_metrics", join(&m.available_metrics, ","))
            .str("version", m.version.as_str())
            .uint("uptime_s", m.uptime_s)?
            .str("started_at", m.started_at.to_string())
            .str("os", m.os.as_str())
            .opt_str("ip", m.ip.map(|ip| ip.to_string()));
        self.push("agent_registry", instance_tag(&m.instance), f);
        Ok(())
    }

    fn health(&mut self, m: &'a Health) -> Result<(), PointError> {
        let f = Fields::default()
            .uint("uptime_s", m.uptime_s)?
            .int("failures_last_hour", m.failures_last_hour)
            .int("runs_last_hour", m.runs_last_hour)
            .uint("spool_messages", m.spool_messages)?
            .uint("spool_dropped_messages", m.spool_dropped_messages)?
            .bool("kafka_connected", m.kafka_connected)
            .opt_int("last_successful_run", m.last_successful_run.map(|t| t.unix_seconds()));
        self.push("probe_health", instance_tag(&m.instance), f);
        Ok(())
    }
}
