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
    /// The configured (watched) prefix this event belongs to: for a
    /// `more_specific` the covering watched prefix, otherwise `prefix`
    /// itself. Added within schema 1: absent (not written) in messages of
    /// agents that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub watched_prefix: Option<IpNet>,
    /// For `more_specific`: whether the more-specific's origin is one of
    /// `expected_origins` (a de-aggregation by the owner rather than a
    /// sub-prefix hijack). Added within schema 1; absent for other events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_expected: Option<bool>,
    /// For `visibility_lost` / `visibility_restored`: how many collector
    /// peers carry the prefix after this update. Added within schema 1;
    /// absent for other events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers_visible: Option<u32>,
    /// For `rpki_invalid`: why the route is invalid (RFC 6811). Added within
    /// schema 1; absent for other events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpki_reason: Option<RpkiReason>,
}

/// Why a route is RPKI-invalid (RFC 6811 section 2): a covering VRP exists
/// but none matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RpkiReason {
    /// No covering VRP names the route's origin AS (or the origin is an
    /// AS_SET, which matches no VRP).
    Origin,
    /// A covering VRP names the origin AS but the prefix is longer than its
    /// `maxLength`.
    MaxLength,
}

impl RpkiReason {
    /// The reason as written on the wire, e.g. `"max_length"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RpkiReason::Origin => "origin",
            RpkiReason::MaxLength => "max_length",
        }
    }
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
    /// Same peer, same origin, different AS path.
    PathChange,
    /// The AS right before the origin is not in the configured
    /// `allowed_upstreams` (added within schema 1).
    UpstreamChange,
    /// Fewer than `visibility_min_peers` collector peers still carry the
    /// prefix (added within schema 1).
    VisibilityLost,
    /// At least `visibility_min_peers` peers carry the prefix again after a
    /// `visibility_lost` (added within schema 1).
    VisibilityRestored,
    /// The announcement is RPKI-invalid against the configured VRPs, RFC
    /// 6811 (added within schema 1; see `rpki_reason`).
    RpkiInvalid,
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
    /// Every event, in declaration order.
    pub const ALL: [BgpEvent; 10] = [
        BgpEvent::Announce,
        BgpEvent::Withdraw,
        BgpEvent::OriginChange,
        BgpEvent::MoreSpecific,
        BgpEvent::Flap,
        BgpEvent::PathChange,
        BgpEvent::UpstreamChange,
        BgpEvent::VisibilityLost,
        BgpEvent::VisibilityRestored,
        BgpEvent::RpkiInvalid,
    ];

    /// The event as written on the wire, e.g. `"origin_change"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BgpEvent::Announce => "announce",
            BgpEvent::Withdraw => "withdraw",
            BgpEvent::OriginChange => "origin_change",
            BgpEvent::MoreSpecific => "more_specific",
            BgpEvent::Flap => "flap",
            BgpEvent::PathChange => "path_change",
            BgpEvent::UpstreamChange => "upstream_change",
            BgpEvent::VisibilityLost => "visibility_lost",
            BgpEvent::VisibilityRestored => "visibility_restored",
            BgpEvent::RpkiInvalid => "rpki_invalid",
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
