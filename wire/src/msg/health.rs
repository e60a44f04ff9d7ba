//! The agent heartbeat: published every 30 s; Grafana alerts when it stops.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// One heartbeat of an agent on the `probe.health` topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// When a probe run last succeeded; `null` before the first success.
    pub last_successful_run: Option<Timestamp>,
    /// Seconds since the agent started.
    pub uptime_s: u64,
    /// Probe runs that failed in the last hour.
    pub failures_last_hour: u32,
    /// Probe runs in the last hour.
    pub runs_last_hour: u32,
    /// Messages waiting in the on-disk spool.
    pub spool_messages: u64,
    /// Messages the spool bound dropped since the agent started (oldest
    /// first); non-zero means measurements were lost. Added within schema 1
    /// (after DESIGN.md's field list), so optional: absent reads as 0, the
    /// value of an agent that does not report it.
    #[serde(default)]
    pub spool_dropped_messages: u64,
    /// Whether the producer currently has a working broker connection.
    pub kafka_connected: bool,
    /// The systemd template instance that sent this heartbeat, e.g. `icmp`
    /// for `netprobe-agent@icmp`: several instances with one `probe_id` keep
    /// separate health series (ingest tags `probe_health` points with it)
    /// and message keys (`probe_id/instance`). Optional within schema 1:
    /// absent (not written) for an agent run as one unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The BGP feeds of this agent (`[[bgp]]` sources) and whether each is
    /// live: connected and delivered a message within the last 5 minutes.
    /// Optional within schema 1: absent (not written) for an agent without
    /// BGP feeds or one that predates it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feeds: Vec<FeedStatus>,
}

/// The liveness of one BGP feed in a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FeedStatus {
    /// The feed, e.g. `ris-live wss://ris-live.ripe.net/v1/ws/`,
    /// `mrt /var/lib/netprobe/mrt`, `bmp 0.0.0.0:11019`.
    pub name: String,
    /// Connected and a message within the last 5 minutes.
    pub live: bool,
    /// Messages received since the agent started.
    pub messages: u64,
    /// Messages that could not be parsed since the agent started.
    pub malformed: u64,
}
