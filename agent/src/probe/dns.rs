//! DNS probe: one query, no cache, against one resolver (`dig @resolver name
//! type`). SKELETON: implemented on branch `dns`.

use std::net::SocketAddr;
use std::time::Duration;

use netprobe_wire::msg::Dns;
use serde::Deserialize;

/// Default wait for a response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Transport of a DNS query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP, retried over TCP when the response is truncated (RFC 7766).
    #[default]
    Udp,
    /// TCP only.
    Tcp,
}

/// A `[[dns]]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The resolver, `IP:port`.
    pub resolver: SocketAddr,
    /// The name to ask for.
    pub query_name: String,
    /// The record type (RFC 1035 mnemonic: `A`, `AAAA`, `MX`, ...).
    pub record_type: String,
    /// How often a query is sent.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Wait for the response. Default 2 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// `udp` (with TCP fallback on truncation, the default) or `tcp`.
    #[serde(default)]
    pub transport: Transport,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

impl Target {
    /// Checks what serde cannot (record type known, ...).
    ///
    /// # Errors
    /// A message naming the key that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Sends one query and reports what came back.
pub async fn run(target: &Target) -> Dns {
    let _ = target;
    unimplemented!("dns probe")
}
