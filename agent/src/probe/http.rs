//! HTTP probe: one request with per-phase timings (`curl -w`). SKELETON:
//! implemented on branch `http`.

use std::path::PathBuf;
use std::time::Duration;

use netprobe_wire::msg::Http;
use serde::Deserialize;

/// Default bound of one whole request (all phases and redirects).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of redirects followed.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;

/// Request method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Method {
    /// `GET`: the body is read (and counted, and matched).
    #[default]
    #[serde(rename = "GET")]
    Get,
    /// `HEAD`.
    #[serde(rename = "HEAD")]
    Head,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        })
    }
}

/// An `[[http]]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `http://` or `https://` URL.
    pub url: String,
    /// `GET` (default) or `HEAD`.
    #[serde(default)]
    pub method: Method,
    /// How often a request is made.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Bound of the whole exchange. Default 10 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Statuses that count as success. Default `[200]`.
    #[serde(default = "default_expect_status")]
    pub expect_status: Vec<u16>,
    /// Redirects followed at most (0: none). Default 5.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// The body must contain this substring (GET only).
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The body must match this regular expression (GET only, `regex` crate syntax).
    #[serde(default)]
    pub body_regex: Option<String>,
    /// PEM file of CA certificates trusted instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_expect_status() -> Vec<u16> {
    vec![200]
}

fn default_max_redirects() -> u32 {
    DEFAULT_MAX_REDIRECTS
}

impl Target {
    /// Checks what serde cannot (URL scheme, regex syntax, CA file readable).
    ///
    /// # Errors
    /// A message naming the key that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Makes one request (following redirects) and reports the timings.
pub async fn run(target: &Target) -> Http {
    let _ = target;
    unimplemented!("http probe")
}
