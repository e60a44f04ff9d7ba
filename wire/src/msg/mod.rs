//! The message envelope, one body type per probe, and decoding.
//!
//! Every message is one JSON object: the envelope fields of DESIGN.md
//! (`schema`, `probe_id`, `probe_type`, `location`, `timestamp`) next to the
//! fields of its body. Times are milliseconds as f64, units are in the names.
//!
//! Compatibility within schema 1: every field DESIGN.md lists for a kind is
//! read as listed; every field added since (`health.spool_dropped_messages`,
//! `health.instance`, `registry.instance`, and `mtr.error`, which DESIGN.md
//! covers only by its general rule) is optional with a documented default,
//! so a message written to DESIGN.md's field lists, or by an older agent
//! during a rolling upgrade, still decodes. A field that must be required
//! needs schema 2. `tests/design_fields.rs` holds every kind to this.

mod bgp;
mod dns;
mod health;
mod http;
mod icmp;
mod mtr;
mod registry;
pub mod scan;

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use bgp::{Bgp, BgpEvent, BgpSource, RpkiReason};
pub use dns::Dns;
pub use health::{FeedStatus, Health};
pub use http::Http;
pub use icmp::Icmp;
pub use mtr::{Mtr, MtrHop};
pub use registry::Registry;

use crate::{Error, ProbeId, Timestamp};

/// The message schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One wire message: the envelope plus the body of one probe type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// Message schema version, [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The publishing agent's identity.
    pub probe_id: ProbeId,
    /// Human location of the agent, e.g. `Frankfurt, DE`.
    pub location: String,
    /// When the measurement started (or, for registry and health, when the
    /// record was made).
    pub timestamp: Timestamp,
    /// The probe-type specific fields, tagged by `probe_type`.
    #[serde(flatten)]
    pub body: Body,
}

/// The probe-type specific part of a [`Message`], tagged by `probe_type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "probe_type", rename_all = "lowercase")]
pub enum Body {
    /// ICMP echo results of one run.
    Icmp(Icmp),
    /// One DNS query.
    Dns(Dns),
    /// One HTTP request.
    Http(Http),
    /// One MTR traceroute.
    Mtr(Mtr),
    /// One BGP event for a watched prefix.
    Bgp(Bgp),
    /// The agent's registry record.
    Registry(Registry),
    /// The agent's heartbeat.
    Health(Health),
}

/// The kinds of message, as written in `probe_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProbeType {
    /// ICMP echo (ping).
    Icmp,
    /// DNS resolution.
    Dns,
    /// HTTP request.
    Http,
    /// MTR traceroute.
    Mtr,
    /// BGP updates.
    Bgp,
    /// Agent registry record.
    Registry,
    /// Agent heartbeat.
    Health,
}

impl ProbeType {
    /// All kinds, in DESIGN.md order.
    pub const ALL: [ProbeType; 7] = [
        ProbeType::Icmp,
        ProbeType::Dns,
        ProbeType::Http,
        ProbeType::Mtr,
        ProbeType::Bgp,
        ProbeType::Registry,
        ProbeType::Health,
    ];

    /// The name as written in `probe_type`, e.g. `"icmp"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProbeType::Icmp => "icmp",
            ProbeType::Dns => "dns",
            ProbeType::Http => "http",
            ProbeType::Mtr => "mtr",
            ProbeType::Bgp => "bgp",
            ProbeType::Registry => "registry",
            ProbeType::Health => "health",
        }
    }
}

impl fmt::Display for ProbeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Body {
    /// Which kind of message this body makes.
    pub fn probe_type(&self) -> ProbeType {
        match self {
            Body::Icmp(_) => ProbeType::Icmp,
            Body::Dns(_) => ProbeType::Dns,
            Body::Http(_) => ProbeType::Http,
            Body::Mtr(_) => ProbeType::Mtr,
            Body::Bgp(_) => ProbeType::Bgp,
            Body::Registry(_) => ProbeType::Registry,
            Body::Health(_) => ProbeType::Health,
        }
    }

    /// What was measured, the second half of the message key: the ICMP/MTR
    /// target, `resolver/query_name/record_type` for DNS, the URL for HTTP,
    /// the prefix for BGP; `None` for registry and health (keyed by agent).
    pub fn target(&self) -> Option<String> {
        match self {
            Body::Icmp(m) => Some(m.target.clone()),
            Body::Dns(m) => Some(format!("{}/{}/{}", m.resolver, m.query_name, m.record_type)),
            Body::Http(m) => Some(m.url.clone()),
            Body::Mtr(m) => Some(m.target.clone()),
            Body::Bgp(m) => Some(m.prefix.to_string()),
            Body::Registry(m) => m.instance.clone(),
            Body::Health(m) => m.instance.clone(),
        }
    }

    /// The systemd template instance a registry or health body names
    /// (`icmp` for `netprobe-agent@icmp`); `None` for every other kind and
    /// for an agent run as one unit.
    pub fn instance(&self) -> Option<&str> {
        match self {
            Body::Registry(m) => m.instance.as_deref(),
            Body::Health(m) => m.instance.as_deref(),
            _ => None,
        }
    }
}

impl Message {
    /// A schema-[`SCHEMA_VERSION`] message.
    pub fn new(probe_id: ProbeId, location: impl Into<String>, timestamp: Timestamp, body: Body) -> Self {
        Message { schema: SCHEMA_VERSION, probe_id, location: location.into(), timestamp, body }
    }

    /// Which kind of message this is.
    pub fn probe_type(&self) -> ProbeType {
        self.body.probe_type()
    }

    /// The Kafka message key: `probe_id/target`; for registry and health
    /// `probe_id/instance` when the body names its template instance, else
    /// `probe_id` alone. So one target's results stay ordered on one
    /// partition, and the compacted registry keeps one record per agent
    /// instance.
    pub fn key(&self) -> String {
        let mut key = String::new();
        self.key_into(&mut key);
        key
    }

    /// [`Message::key`] written into `out` (cleared first), so a publisher
    /// can reuse one buffer for every message.
    pub fn key_into(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.clear();
        out.push_str(&self.probe_id.0);
        let second = match &self.body {
            Body::Icmp(m) => Some(m.target.as_str()),
            Body::Http(m) => Some(m.url.as_str()),
            Body::Mtr(m) => Some(m.target.as_str()),
            Body::Registry(_) | Body::Health(_) => self.body.instance(),
            Body::Dns(m) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "/{}/{}/{}", m.resolver, m.query_name, m.record_type);
                return;
            }
            Body::Bgp(m) => {
                let _ = write!(out, "/{}", m.prefix);
                return;
            }
        };
        if let Some(second) = second {
            out.push('/');
            out.push_str(second);
        }
    }

    /// The JSON bytes of this message.
    ///
    /// # Errors
    /// [`Error::Encode`] when the message would not read back as itself: a
    /// float field is NaN or infinite (JSON cannot carry those, and serde_json
    /// would silently write `null`), or `schema` is not [`SCHEMA_VERSION`].
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        self.encode_into(&mut bytes)?;
        Ok(bytes)
    }

    /// [`Message::encode`] into `out` (cleared first), so a publisher can
    /// reuse one buffer for every message instead of growing a new one.
    ///
    /// # Errors
    /// As [`Message::encode`]; `out` is then empty.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        if self.schema != SCHEMA_VERSION || !self.body.floats_finite() {
            return Err(Error::Encode(format!(
                "{} message from {} does not read back as itself (NaN or infinite float, or schema {} != {SCHEMA_VERSION})",
                self.probe_type(),
                self.probe_id,
                self.schema
            )));
        }
        if let Err(e) = serde_json::to_writer(&mut *out, self) {
            out.clear();
            return Err(Error::Encode(e.to_string()));
        }
        // Tests (debug builds) hold `floats_finite` to the full round trip,
        // so a float field added without it is caught there.
        debug_assert!(decode(out).is_ok_and(|back| back == *self), "{self:?} does not read back as itself");
        Ok(())
    }
}

impl Body {
    /// Whether every float is finite: JSON cannot carry NaN or infinity
    /// (serde_json would write `null`, which reads back as a missing value).
    fn floats_finite(&self) -> bool {
        fn finite(values: &[Option<f64>]) -> bool {
            values.iter().flatten().all(|v| v.is_finite())
        }
        match self {
            Body::Icmp(m) => finite(&[
                Some(m.loss_pct),
                m.rtt_min_ms,
                m.rtt_avg_ms,
                m.rtt_median_ms,
                m.rtt_max_ms,
                m.rtt_stddev_ms,
                m.jitter_ms,
            ]),
            Body::Dns(m) => finite(&[m.latency_ms]),
            Body::Http(m) => finite(&[m.dns_ms, m.connect_ms, m.tls_ms, m.ttfb_ms, m.total_ms]),
            Body::Mtr(m) => m.hops.iter().all(|h| {
                finite(&[Some(h.loss_pct), h.rtt_last_ms, h.rtt_avg_ms, h.rtt_best_ms, h.rtt_worst_ms, h.rtt_stddev_ms])
            }),
            Body::Bgp(_) | Body::Registry(_) | Body::Health(_) => true,
        }
    }
}

/// Reads one wire message from JSON bytes.
///
/// The schema version is checked first, so a message of another version
/// fails as [`Error::UnsupportedSchema`] rather than on a field it lacks.
///
/// # Errors
/// [`Error::Syntax`], [`Error::MissingField`], [`Error::InvalidField`],
/// [`Error::UnsupportedSchema`] or [`Error::UnknownProbeType`], each naming
/// the field or position.
///
/// A message as agents write it is read by a hand-written reader in one
/// pass (`scan`), the rest of the valid ones by `decode_fast_str`; only when
/// both decline does the checked path below run, which finds the error to
/// report. All three read the same structs the same way (tested).
pub fn decode(bytes: &[u8]) -> Result<Message, Error> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Some(m) = scan::decode(text) {
            return Ok(m);
        }
        if let Some(m) = decode_fast_str(text) {
            return Ok(m);
        }
    }
    decode_checked(bytes)
}

/// Reads a valid message in one pass, without serde's buffering of the
/// flattened, internally tagged body (an allocation per key and value, half
/// of ingest's CPU): the envelope keys, which the agent writes first, then
/// `probe_type`, then the rest of the object read straight into that kind's
/// body struct. `None` on any error and on anything unusual (a key before
/// `probe_type` that is not an envelope key, an escaped key, an envelope key
/// after it); [`decode_checked`] then decides and names the error. Both read
/// the same structs, so a message either path accepts decodes the same.
///
/// [`decode`] checks the payload's UTF-8 once, whole (`from_utf8`'s ASCII
/// fast path), and this parses it as `&str`: serde_json then skips its
/// check of every string (a fifth of the decode). Not UTF-8: the checked
/// path names the error as before.
fn decode_fast_str(text: &str) -> Option<Message> {
    let mut de = serde_json::Deserializer::from_str(text);
    let message = serde::Deserializer::deserialize_map(&mut de, fast::MessageVisitor).ok()?;
    de.end().ok()?;
    Some(message)
}

mod fast {
    use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
    use serde::Deserialize as _;

    use super::{Bgp, Body, Dns, Health, Http, Icmp, Message, Mtr, ProbeType, Registry, SCHEMA_VERSION};
    use crate::{ProbeId, Timestamp};

    const ENVELOPE: [&str; 5] = ["schema", "probe_id", "location", "timestamp", "probe_type"];

    pub(super) struct MessageVisitor;

    impl<'de> Visitor<'de> for MessageVisitor {
        type Value = Message;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a wire message")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
            let (mut schema, mut probe_id, mut location, mut timestamp) = (None, None, None, None);
            while let Some(key) = map.next_key::<&'de str>()? {
                match key {
                    "schema" if schema.is_none() => schema = Some(map.next_value::<u32>()?),
                    "probe_id" if probe_id.is_none() => probe_id = Some(map.next_value::<ProbeId>()?),
                    "location" if location.is_none() => location = Some(map.next_value::<String>()?),
                    "timestamp" if timestamp.is_none() => timestamp = Some(map.next_value::<Timestamp>()?),
                    "probe_type" => {
                        let kind: ProbeType = map.next_value()?;
                        let (Some(schema), Some(probe_id), Some(location), Some(timestamp)) =
                            (schema, probe_id, location, timestamp)
                        else {
                            return Err(de::Error::custom("envelope incomplete before probe_type"));
                        };
                        if schema != SCHEMA_VERSION {
                            return Err(de::Error::custom("other schema"));
                        }
                        let rest = de::value::MapAccessDeserializer::new(BodyKeys(map));
                        let body = match kind {
                            ProbeType::Icmp => Body::Icmp(Icmp::deserialize(rest)?),
                            ProbeType::Dns => Body::Dns(Dns::deserialize(rest)?),
                            ProbeType::Http => Body::Http(Http::deserialize(rest)?),
                            ProbeType::Mtr => Body::Mtr(Mtr::deserialize(rest)?),
                            ProbeType::Bgp => Body::Bgp(Bgp::deserialize(rest)?),
                            ProbeType::Registry => Body::Registry(Registry::deserialize(rest)?),
                            ProbeType::Health => Body::Health(Health::deserialize(rest)?),
                        };
                        return Ok(Message { schema, probe_id, location, timestamp, body });
                    }
                    _ => return Err(de::Error::custom("not for the fast path")),
                }
            }
            Err(de::Error::custom("no probe_type"))
        }
    }

    /// The rest of the object after `probe_type`, for the body struct: an
    /// envelope key there (a duplicate) is an error, as in the checked path.
    struct BodyKeys<A>(A);

    impl<'de, A: MapAccess<'de>> MapAccess<'de> for BodyKeys<A> {
        type Error = A::Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
            match self.0.next_key::<&'de str>()? {
                None => Ok(None),
                Some(k) if ENVELOPE.contains(&k) => Err(de::Error::custom("envelope key after probe_type")),
                Some(k) => seed.deserialize(de::value::BorrowedStrDeserializer::new(k)).map(Some),
            }
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
            self.0.next_value_seed(seed)
        }
    }
}

/// The checked path of [`decode`]: schema first, then the whole message
/// with the path of a bad field.
fn decode_checked(bytes: &[u8]) -> Result<Message, Error> {
    #[derive(Deserialize)]
    struct Head {
        schema: Option<serde_json::Number>,
        probe_type: Option<String>,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(|e| map_json_error(e, String::new()))?;
    match head.schema.as_ref().map(|n| n.as_u64()) {
        None => return Err(Error::MissingField { field: "schema".into() }),
        Some(Some(v)) if v == u64::from(SCHEMA_VERSION) => {}
        Some(Some(v)) => return Err(Error::UnsupportedSchema { found: v, supported: SCHEMA_VERSION }),
        Some(None) => {
            return Err(Error::InvalidField { path: "schema".into(), message: "not a non-negative integer".into() })
        }
    }
    let probe_type = match head.probe_type {
        None => return Err(Error::MissingField { field: "probe_type".into() }),
        Some(t) => ProbeType::ALL.into_iter().find(|k| k.as_str() == t).ok_or(Error::UnknownProbeType { found: t })?,
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        match map_json_error(e.into_inner(), path) {
            Error::InvalidField { path, message } if path.is_empty() => {
                diagnose_body(bytes, probe_type).unwrap_or(Error::InvalidField { path: "(body)".into(), message })
            }
            other => other,
        }
    })
}

/// Finds the path of an invalid body field. The fast path above cannot see
/// it: serde buffers a flattened body, losing the path. Runs only on errors.
fn diagnose_body(bytes: &[u8], probe_type: ProbeType) -> Option<Error> {
    fn path_of<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<Error> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let e = serde_path_to_error::deserialize::<_, T>(de).err()?;
        let path = e.path().to_string();
        Some(map_json_error(e.into_inner(), path))
    }
    match probe_type {
        ProbeType::Icmp => path_of::<Icmp>(bytes),
        ProbeType::Dns => path_of::<Dns>(bytes),
        ProbeType::Http => path_of::<Http>(bytes),
        ProbeType::Mtr => path_of::<Mtr>(bytes),
        ProbeType::Bgp => path_of::<Bgp>(bytes),
        ProbeType::Registry => path_of::<Registry>(bytes),
        ProbeType::Health => path_of::<Health>(bytes),
    }
}

fn map_json_error(e: serde_json::Error, path: String) -> Error {
    use serde_json::error::Category;
    let message = e.to_string();
    // serde_json appends " at line L column C"; keep the message without it.
    let detail = message.rsplit_once(" at line ").map_or(message.as_str(), |(d, _)| d).to_owned();
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            Error::Syntax { line: e.line(), column: e.column(), message: detail }
        }
        Category::Data => match between(&detail, "missing field `", "`") {
            Some(field) => Error::MissingField { field: field.to_owned() },
            None => Error::InvalidField { path: if path == "." { String::new() } else { path }, message: detail },
        },
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(start)?;
    rest.split_once(end).map(|(inner, _)| inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`decode_fast_str`] of raw bytes (`None` when not UTF-8, as in
    /// [`decode`]).
    fn decode_fast(bytes: &[u8]) -> Option<Message> {
        decode_fast_str(std::str::from_utf8(bytes).ok()?)
    }

    /// JSON text of `map` with the envelope keys first, in the order the
    /// agent writes them (the fast path's case), then the others.
    fn agent_order(map: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by_key(|k| fast_rank(k));
        let fields: Vec<String> =
            keys.iter().map(|k| format!("{}:{}", serde_json::json!(k), map[k.as_str()])).collect();
        format!("{{{}}}", fields.join(",")).into_bytes()
    }

    fn fast_rank(k: &str) -> usize {
        ["schema", "probe_id", "location", "timestamp", "probe_type"].iter().position(|e| *e == k).unwrap_or(5)
    }

    /// The golden messages and variants of them (fields dropped, retyped,
    /// duplicated, moved, unknown ones added, envelope values broken), in
    /// the agent's key order and sorted: whatever the fast path accepts,
    /// the checked path accepts and reads the same.
    #[test]
    fn fast_path_agrees_with_the_checked_path() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let (mut cases, mut fast, mut scan) = (0, 0, 0);
        for entry in std::fs::read_dir(&dir).expect("golden dir") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("golden file");
            let value: serde_json::Value = serde_json::from_str(&text).expect("golden json");
            let serde_json::Value::Object(map) = value else { panic!("{} is not an object", path.display()) };
            let golden = agent_order(&map);
            assert!(decode_fast(&golden).is_some(), "{} in agent order takes the fast path", path.display());
            let kind = map["probe_type"].as_str().expect("probe_type");
            let scanned = ["icmp", "dns", "http", "mtr", "health"].contains(&kind);
            assert_eq!(
                scan::decode(std::str::from_utf8(&golden).expect("utf-8")).is_some(),
                scanned,
                "{} in agent order takes the scan path",
                path.display()
            );
            let mut variants = vec![text.clone().into_bytes(), golden.clone()];
            let mut maps = vec![];
            for key in map.keys() {
                let mut m = map.clone();
                m.remove(key);
                maps.push(m);
                for bad in [
                    serde_json::json!("x"),
                    serde_json::json!(1.5),
                    serde_json::json!(null),
                    serde_json::json!([]),
                    serde_json::json!(-1),
                    serde_json::json!(300),
                    serde_json::json!(70000),
                    serde_json::json!(5_000_000_000u64),
                    serde_json::json!(u64::MAX),
                    serde_json::json!(true),
                    serde_json::json!({}),
                    serde_json::json!("a\"b\\c\n"),
                    serde_json::json!("2026-11-23T17:31:49+01:00"),
                    serde_json::json!("::1"),
                    serde_json::json!({"class": "timeout", "message": "m"}),
                    serde_json::json!({"class": "new_class", "message": "m"}),
                    serde_json::json!({"class": "timeout"}),
                    serde_json::json!([{"ttl": 1}]),
                ] {
                    let mut m = map.clone();
                    m.insert(key.clone(), bad);
                    maps.push(m);
                }
            }
            let mut m = map.clone();
            m.insert("unknown_extra".into(), serde_json::json!({"a": [1, 2]}));
            maps.push(m);
            for m in &maps {
                variants.push(serde_json::to_vec(m).expect("json"));
                variants.push(agent_order(m));
            }
            let body = String::from_utf8(golden).expect("utf-8");
            let open = &body[..body.len() - 1];
            variants.push(format!("{{\"probe_type\":\"icmp\",{}", &body[1..]).into_bytes());
            variants.push(format!("{{\"schema\":2,{}", &body[1..]).into_bytes());
            variants.push(body.replacen("\"schema\":1", "\"schema\":1.0", 1).into_bytes());
            variants.push(body.replacen("\"schema\":1", "\"schema\":2", 1).into_bytes());
            variants.push(format!("{open},\"location\":\"again\"}}").into_bytes());
            variants.push(format!("{open},\"probe_type\":\"dns\"}}").into_bytes());
            variants.push(format!("{open},\"unknown_late\":[1]}}").into_bytes());
            variants.push(format!("{open}}} trailing").into_bytes());
            variants.push(body.replacen("\"probe_id\"", "\"probe\\u005fid\"", 1).into_bytes());
            // Numbers, literals and layout the scan path reads or declines.
            for (from, to) in [
                (":1,", ":1.0,"),
                (":1,", ":1e0,"),
                (":1,", ":01,"),
                (":1,", ":-0,"),
                (":0,", ":-0,"),
                (":0,", ":0.0,"),
                (":10,", ":1E1,"),
                (":10,", ":10 ,"),
                (".0,", ".0e400,"),
                (".0,", ".00001e-3,"),
                (".0,", ".,"),
                ("5,", "5e+0,"),
                (",", " , "),
                (":", " : "),
                (":null", ":nul"),
                (":true", ":tru"),
                (":\"", ":\"\\u0041"),
                ("\"", "\"\t"),
                ("{", "{ \n"),
                ("}", "} "),
                ("\"error\":null", "\"error\":{\"message\":\"m\",\"class\":\"timeout\"}"),
                ("\"error\":null", "\"error\":{\"class\":\"x\",\"class\":\"y\",\"message\":\"m\"}"),
                ("\"error\":null", "\"error\":{\"class\":\"x\",\"message\":\"m\",\"more\":1}"),
                ("\"hops\":[", "\"hops\":[ "),
                ("\"other_ips\":[", "\"other_ips\":[\"::1\","),
                ("\"feeds\":[", "\"feeds\":[{\"name\":\"ris\",\"live\":true,\"messages\":1,\"malformed\":0}"),
                ("\"answers\":[", "\"answers\":[\"a\\\"b\","),
            ] {
                variants.push(body.replacen(from, to, 1).into_bytes());
                variants.push(body.replace(from, to).into_bytes());
            }
            variants.push(format!("{open},\"ttl\":1}}").into_bytes());
            // Every body key repeated at the end (serde's derive refuses a repeat).
            for (k, v) in map.iter().filter(|(k, _)| fast_rank(k) == 5) {
                variants.push(format!("{open},{}:{v}}}", serde_json::json!(k)).into_bytes());
            }
            variants.push(
                serde_json::to_vec_pretty(
                    &serde_json::from_slice::<serde_json::Value>(&body.clone().into_bytes()).expect("json"),
                )
                .expect("json"),
            );
            // Not UTF-8 inside a string: the fast path declines (checked whole).
            let mut not_utf8 = body.clone().into_bytes();
            let at = body.find("pop-").expect("a probe id") + 1;
            not_utf8[at] = 0xff;
            assert!(decode_fast(&not_utf8).is_none() && decode_checked(&not_utf8).is_err());
            variants.push(not_utf8);
            for v in variants {
                let checked = decode_checked(&v).ok();
                if let Some(scanned) = std::str::from_utf8(&v).ok().and_then(scan::decode) {
                    scan += 1;
                    assert_eq!(Some(scanned), checked, "scan path: {}", String::from_utf8_lossy(&v));
                }
                let got = decode_fast(&v);
                // The fast path may decline (the checked path then decides),
                // never accept what the checked path refuses or read it otherwise.
                if got.is_some() {
                    fast += 1;
                    assert_eq!(got, checked, "{}", String::from_utf8_lossy(&v));
                }
                cases += 1;
            }
        }
        assert!(
            cases > 200 && fast > 50 && scan > 50,
            "{cases} cases, {fast} on the fast path, {scan} on the scan path"
        );
    }
}
