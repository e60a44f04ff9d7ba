//! Small value types shared by several messages: identities, TTLs, errors.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An agent's identity, e.g. `pop-fra-01`. Any string is carried as is:
/// escaping for line protocol is the ingest's job.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ProbeId(pub String);

impl ProbeId {
    /// The identity as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProbeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ProbeId {
    fn from(s: &str) -> Self {
        ProbeId(s.to_owned())
    }
}

/// An IP time-to-live (hop limit in IPv6), 1..=255 in a traceroute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Ttl(pub u8);

/// Machine-readable class of a failed measurement.
///
/// Unknown classes written by a newer agent read as [`ErrorClass::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// No answer within the configured timeout.
    Timeout,
    /// The target's name could not be resolved.
    DnsFailure,
    /// The peer refused the TCP connection (RST).
    ConnectionRefused,
    /// The TLS handshake or certificate verification failed.
    TlsError,
    /// No route, or an ICMP unreachable came back.
    Unreachable,
    /// The agent lacks a privilege (CAP_NET_RAW, ping_group_range).
    PermissionDenied,
    /// The peer answered, but not in a way the protocol allows.
    ProtocolError,
    /// The answer arrived but did not match the expectation (status, body).
    UnexpectedResponse,
    /// Anything else.
    #[serde(other)]
    Other,
}

impl ErrorClass {
    /// The class as written on the wire, e.g. `"connection_refused"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::DnsFailure => "dns_failure",
            ErrorClass::ConnectionRefused => "connection_refused",
            ErrorClass::TlsError => "tls_error",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::PermissionDenied => "permission_denied",
            ErrorClass::ProtocolError => "protocol_error",
            ErrorClass::UnexpectedResponse => "unexpected_response",
            ErrorClass::Other => "other",
        }
    }
}

/// Why a measurement failed. A failed probe is still a measurement: it is
/// published with this in its `error` field (which is `null` on success).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeError {
    /// Machine-readable class, for grouping and alerting.
    pub class: ErrorClass,
    /// Human-readable detail, e.g. `no reply within 1s`.
    pub message: String,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class.as_str(), self.message)
    }
}
