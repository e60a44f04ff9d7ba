//! One BGP event for a watched prefix (RIPE RIS Live, MRT dumps or BMP).

use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One BGP event seen by a route collector for a watched prefix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bgp {
    /// What happened.
    pub event: BgpEvent,
    /// The prefix announced or withdrawn, e.g. `192.0.2.0/24`.
    #[schemars(with = "String")]
    pub prefix: IpNet,
    /// Last ASN of the AS path; `null` for a withdrawal.
    pub origin_asn: Option<u32>,
    /// The origins configured as legitimate for the watched prefix.
    pub expected_origins: Vec<u32>,
    /// The AS path, collector peer first, origin last (AS_SETs flattened).
    pub as_path: Vec<u32>,
    /// The collector's BGP peer that sent the update.
    pub peer_ip: IpAddr,
    /// That peer's ASN.
    pub peer_asn: u32,
    /// The route collector, e.g. `rrc00`.
    pub collector: String,
    /// NEXT_HOP of an announcement.
    pub next_hop: Option<IpAddr>,
    /// Communities as `asn:value` (RFC 1997) or `asn:value1:value2` (large,
    /// RFC 8092).
    pub communities: Vec<String>,
    /// Where the update came from.
    pub source: BgpSource,
}

/// Classification of a BGP update against the watched prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BgpEvent {
    /// The prefix was announced with an expected origin.
    Announce,
    /// The prefix was withdrawn.
    Withdraw,
    /// The prefix was announced with an origin not in `expected_origins`.
    OriginChange,
    /// A more specific prefix of the watched one was announced.
    MoreSpecific,
    /// Announce/withdraw alternated faster than the flap threshold.
    Flap,
    /// Same origin, different AS path.
    PathChange,
}

/// The feed a BGP event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BgpSource {
    /// RIPE RIS Live websocket stream.
    RisLive,
    /// MRT dump files (RFC 6396).
    Mrt,
    /// BGP Monitoring Protocol (RFC 7854).
    Bmp,
}

impl BgpEvent {
    /// The event as written on the wire, e.g. `"origin_change"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BgpEvent::Announce => "announce",
            BgpEvent::Withdraw => "withdraw",
            BgpEvent::OriginChange => "origin_change",
            BgpEvent::MoreSpecific => "more_specific",
            BgpEvent::Flap => "flap",
            BgpEvent::PathChange => "path_change",
        }
    }
}

impl BgpSource {
    /// The source as written on the wire, e.g. `"ris-live"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BgpSource::RisLive => "ris-live",
            BgpSource::Mrt => "mrt",
            BgpSource::Bmp => "bmp",
        }
    }
}
