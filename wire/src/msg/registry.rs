//! The agent registry record: who an agent is and what it runs.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ProbeType, Timestamp};

/// The record an agent publishes at start and every 10 minutes to the
/// compacted `agent.registry` topic (key = `probe_id`, or
/// `probe_id/instance` when [`Registry::instance`] is set, so each template
/// instance keeps its own record).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Registry {
    /// The agent's primary address; `null` when it has none to report.
    pub ip: Option<IpAddr>,
    /// The host name of the agent's machine.
    pub hostname: String,
    /// The probe types this agent runs.
    pub available_metrics: Vec<ProbeType>,
    /// netprobe-agent version, e.g. `0.1.0`.
    pub version: String,
    /// Seconds since the agent started.
    pub uptime_s: u64,
    /// When the agent started.
    pub started_at: Timestamp,
    /// Operating system and kernel, e.g. `Linux 6.1.0 (Debian 12)`.
    pub os: String,
    /// The systemd template instance that runs `available_metrics`, e.g.
    /// `icmp` for `netprobe-agent@icmp`: several instances with one
    /// `probe_id` keep separate records (key `probe_id/instance`; ingest tags
    /// `agent_registry` points with it). Optional within schema 1: absent
    /// (`None`, not written) for an agent run as one unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}
