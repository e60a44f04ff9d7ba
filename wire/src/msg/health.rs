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
    /// first); non-zero means measurements were lost.
    pub spool_dropped_messages: u64,
    /// Whether the producer currently has a working broker connection.
    pub kafka_connected: bool,
    /// The agent instance, as in the registry record; absent (default) for
    /// a single agent. Optional within schema 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}
