//! ICMP echo (ping) results of one run, matching iputils `ping` statistics.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ProbeError;

/// One run of `count` ICMP echo requests to one target.
///
/// RTT statistics cover the replies received and are `null` when none came
/// back. `rtt_stddev_ms` is the population standard deviation (iputils'
/// `mdev`); `jitter_ms` is the mean absolute difference of consecutive RTTs
/// (mtr's jitter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Icmp {
    /// The configured target: an IP address or a host name.
    pub target: String,
    /// The address actually probed (the target, or what its name resolved to
    /// for this run); `null` when resolution failed.
    pub resolved_ip: Option<IpAddr>,
    /// Echo requests sent.
    pub sent: u32,
    /// Echo replies received within the timeout.
    pub received: u32,
    /// Share of requests without a reply, 0.0..=100.0.
    pub loss_pct: f64,
    /// Smallest RTT, ms.
    pub rtt_min_ms: Option<f64>,
    /// Mean RTT, ms.
    pub rtt_avg_ms: Option<f64>,
    /// Median RTT, ms.
    pub rtt_median_ms: Option<f64>,
    /// Largest RTT, ms.
    pub rtt_max_ms: Option<f64>,
    /// Population standard deviation of the RTTs, ms.
    pub rtt_stddev_ms: Option<f64>,
    /// Mean absolute difference of consecutive RTTs, ms; `null` with fewer
    /// than two replies.
    pub jitter_ms: Option<f64>,
    /// `null` on success; why the run failed otherwise.
    pub error: Option<ProbeError>,
}
