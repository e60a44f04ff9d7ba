//! Which decoded messages a replay writes: the time range by the message's
//! own `timestamp` (`[start, end)`), and optionally probe ids, probe types
//! and targets. Repeated values of one kind are alternatives (OR); the kinds
//! combine with AND.

use chrono::{DateTime, Utc};
use netprobe_wire::{Body, Message, ProbeType};

/// The filters of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Accepted `probe_id`s; empty = all.
    pub probe_ids: Vec<String>,
    /// Accepted `probe_type`s; empty = all.
    pub probe_types: Vec<ProbeType>,
    /// Accepted targets ([`target_of`]); empty = all. Registry and health
    /// messages have none, so a target filter excludes them.
    pub targets: Vec<String>,
    /// First instant in range (inclusive).
    pub start: DateTime<Utc>,
    /// First instant after the range (exclusive).
    pub end: DateTime<Utc>,
}

impl Filter {
    /// Whether `msg` is to be written.
    pub fn matches(&self, msg: &Message) -> bool {
        let t = msg.timestamp.0;
        if t < self.start || t >= self.end {
            return false;
        }
        if !self.probe_ids.is_empty() && !self.probe_ids.iter().any(|p| p == msg.probe_id.as_str()) {
            return false;
        }
        if !self.probe_types.is_empty() && !self.probe_types.contains(&msg.probe_type()) {
            return false;
        }
        if !self.targets.is_empty() {
            let Some(target) = target_of(&msg.body) else { return false };
            if !self.targets.contains(&target) {
                return false;
            }
        }
        true
    }
}

/// What `--target` compares with: the icmp and mtr `target`, the http
/// `url`, the dns `resolver`, the bgp `prefix`; `None` for registry and
/// health.
pub fn target_of(body: &Body) -> Option<String> {
    match body {
        Body::Icmp(m) => Some(m.target.clone()),
        Body::Mtr(m) => Some(m.target.clone()),
        Body::Http(m) => Some(m.url.clone()),
        Body::Dns(m) => Some(m.resolver.clone()),
        Body::Bgp(m) => Some(m.prefix.to_string()),
        Body::Registry(_) | Body::Health(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(kind: &str) -> Message {
        let path = format!("{}/../wire/tests/golden/{kind}.json", env!("CARGO_MANIFEST_DIR"));
        netprobe_wire::decode(&std::fs::read(path).expect("golden")).expect("decodes")
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn all_time() -> Filter {
        Filter {
            probe_ids: vec![],
            probe_types: vec![],
            targets: vec![],
            start: at("1970-01-01T00:00:00Z"),
            end: at("2200-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn time_range_is_half_open() {
        let m = golden("icmp");
        let t = m.timestamp.0;
        let f = Filter { start: t, end: t + chrono::Duration::nanoseconds(1), ..all_time() };
        assert!(f.matches(&m), "start is inclusive");
        let f = Filter { start: t - chrono::Duration::seconds(1), end: t, ..all_time() };
        assert!(!f.matches(&m), "end is exclusive");
    }

    #[test]
    fn kinds_and_with_or_within() {
        let icmp = golden("icmp");
        let health = golden("health");
        let id = icmp.probe_id.as_str().to_owned();
        let f = Filter { probe_ids: vec!["other".into(), id.clone()], ..all_time() };
        assert!(f.matches(&icmp));
        let f = Filter { probe_ids: vec!["other".into()], ..all_time() };
        assert!(!f.matches(&icmp));
        let f = Filter { probe_types: vec![ProbeType::Icmp], probe_ids: vec![id], ..all_time() };
        assert!(f.matches(&icmp) && !f.matches(&health));
        let Body::Icmp(b) = &icmp.body else { panic!("icmp") };
        let f = Filter { targets: vec![b.target.clone()], ..all_time() };
        assert!(f.matches(&icmp) && !f.matches(&health), "health has no target");
        let dns = golden("dns");
        let Body::Dns(d) = &dns.body else { panic!("dns") };
        assert!(Filter { targets: vec![d.resolver.clone()], ..all_time() }.matches(&dns));
        let bgp = golden("bgp");
        let Body::Bgp(g) = &bgp.body else { panic!("bgp") };
        assert!(Filter { targets: vec![g.prefix.to_string()], ..all_time() }.matches(&bgp));
    }
}
