//! Kafka topic names (DESIGN.md "Topics and messages"), with a prefix.

use std::fmt;

use crate::ProbeType;

/// A netprobe Kafka topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `icmp.metrics`
    Icmp,
    /// `dns.metrics`
    Dns,
    /// `http.metrics`
    Http,
    /// `mtr.metrics`
    Mtr,
    /// `bgp.updates`
    Bgp,
    /// `agent.registry` (compacted, key = probe_id)
    Registry,
    /// `probe.health`
    Health,
    /// `ingest.dlq`: messages ingest could not write, reason in a header.
    Dlq,
}

impl Topic {
    /// The seven topics agents write and ingest reads.
    pub const PROBE_TOPICS: [Topic; 7] =
        [Topic::Icmp, Topic::Dns, Topic::Http, Topic::Mtr, Topic::Bgp, Topic::Registry, Topic::Health];

    /// The topic a message of this type goes to.
    pub fn for_probe_type(t: ProbeType) -> Topic {
        match t {
            ProbeType::Icmp => Topic::Icmp,
            ProbeType::Dns => Topic::Dns,
            ProbeType::Http => Topic::Http,
            ProbeType::Mtr => Topic::Mtr,
            ProbeType::Bgp => Topic::Bgp,
            ProbeType::Registry => Topic::Registry,
            ProbeType::Health => Topic::Health,
        }
    }

    /// The name without prefix, e.g. `icmp.metrics`.
    pub fn base_name(&self) -> &'static str {
        match self {
            Topic::Icmp => "icmp.metrics",
            Topic::Dns => "dns.metrics",
            Topic::Http => "http.metrics",
            Topic::Mtr => "mtr.metrics",
            Topic::Bgp => "bgp.updates",
            Topic::Registry => "agent.registry",
            Topic::Health => "probe.health",
            Topic::Dlq => "ingest.dlq",
        }
    }

    /// The full name: `prefix` (the `[kafka] topic_prefix`, often empty or
    /// ending in `.`) followed by the base name.
    pub fn name(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.base_name())
    }

    /// The topic whose full name under `prefix` is `name`, if any.
    pub fn from_name(prefix: &str, name: &str) -> Option<Topic> {
        let base = name.strip_prefix(prefix)?;
        Topic::PROBE_TOPICS.into_iter().chain([Topic::Dlq]).find(|t| t.base_name() == base)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_design_with_prefix() {
        assert_eq!(Topic::Icmp.name(""), "icmp.metrics");
        assert_eq!(Topic::Registry.name("staging."), "staging.agent.registry");
        assert_eq!(Topic::from_name("staging.", "staging.bgp.updates"), Some(Topic::Bgp));
        assert_eq!(Topic::from_name("staging.", "bgp.updates"), None);
    }

    #[test]
    fn every_probe_type_has_its_topic() {
        for t in ProbeType::ALL {
            assert!(Topic::PROBE_TOPICS.contains(&Topic::for_probe_type(t)));
        }
    }
}
