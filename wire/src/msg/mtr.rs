//! One MTR traceroute: the path and per-hop statistics, as `mtr --report`.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ProbeError, Ttl};

/// One traceroute run to one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Mtr {
    /// The configured target: an IP address or a host name.
    pub target: String,
    /// Whether the target itself answered.
    pub destination_reached: bool,
    /// Number of hops up to the target or the last responding TTL.
    pub hop_count: u32,
    /// Stable hash (lowercase hex) of the ordered hop IP list, so a path
    /// change shows as a new value.
    pub path_hash: String,
    /// Hops in TTL order.
    pub hops: Vec<MtrHop>,
    /// `null` on success; why the run failed otherwise. Not in DESIGN.md's
    /// mtr field list (its general rule on `error` applies), so optional:
    /// absent reads as `null`.
    #[serde(default)]
    pub error: Option<ProbeError>,
}

/// Statistics of one hop (one TTL) of a traceroute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MtrHop {
    /// The TTL of the probes answered by this hop.
    pub ttl: Ttl,
    /// The responding address; `null` when nothing answered (`???`). When
    /// several addresses answered this TTL in one run (ECMP, a path
    /// change), the one that answered most.
    pub ip: Option<IpAddr>,
    /// The other addresses that answered this TTL in the same run, most
    /// replies first (ties: lowest address first); `ip` is not among them.
    /// Added within schema 1 (after DESIGN.md's field list), so optional:
    /// absent reads as empty (one responder, or an agent that does not
    /// report it), and an empty list is not written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_ips: Vec<IpAddr>,
    /// Reverse DNS name of `ip`, when it has one.
    pub hostname: Option<String>,
    /// Origin ASN of `ip`, when known.
    pub asn: Option<u32>,
    /// Probes sent with this TTL.
    pub sent: u32,
    /// Probes answered.
    pub received: u32,
    /// Share of probes without an answer, 0.0..=100.0.
    pub loss_pct: f64,
    /// RTT of the last answered probe, ms.
    pub rtt_last_ms: Option<f64>,
    /// Mean RTT, ms.
    pub rtt_avg_ms: Option<f64>,
    /// Smallest RTT, ms.
    pub rtt_best_ms: Option<f64>,
    /// Largest RTT, ms.
    pub rtt_worst_ms: Option<f64>,
    /// Population standard deviation of the RTTs, ms.
    pub rtt_stddev_ms: Option<f64>,
}
