//! ICMP echo probe (`ping -c count -i packet_interval -W timeout`).

use std::time::Duration;

use netprobe_wire::msg::Icmp;
use serde::Deserialize;

/// A `[[icmp]]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// IP address or host name (resolved once per run).
    pub target: String,
    /// How often a run starts.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Echo requests per run. Default 5.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Spacing of requests within a run (`ping -i`). Default 1 s.
    #[serde(default = "default_packet_interval", with = "humantime_serde")]
    pub packet_interval: Duration,
    /// Wait for each reply (`ping -W`). Default 1 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_count() -> u32 {
    5
}

fn default_packet_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

impl Target {
    /// The longest a run can take: the last request leaves after
    /// `(count - 1) * packet_interval`, its reply may take `timeout`, and
    /// name resolution gets up to `timeout` too.
    pub fn run_deadline(&self) -> Duration {
        self.packet_interval * self.count.saturating_sub(1) + self.timeout * 2
    }

    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A message naming the key that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Sends `count` echo requests and reports the statistics.
pub async fn run(target: &Target) -> Icmp {
    let _ = target;
    unimplemented!("icmp probe")
}
