//! One HTTP request with per-phase timings, as `curl -w` reports them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ProbeError, Timestamp};

/// One HTTP request and its response.
///
/// Phase times are durations of each phase (not cumulative as curl's
/// `time_*`): `dns_ms` name lookup, `connect_ms` TCP handshake, `tls_ms`
/// TLS handshake, `ttfb_ms` from request sent to first response byte;
/// `total_ms` is the whole exchange including redirects. A phase that did
/// not happen (TLS on `http://`, DNS for an IP literal) is `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Http {
    /// The requested URL.
    pub url: String,
    /// `GET` or `HEAD`.
    pub method: String,
    /// Final HTTP status; `null` when no response came.
    pub status_code: Option<u16>,
    /// Whether the final status matched the configured expectation (and the
    /// body matcher, when configured).
    pub success: bool,
    /// Name lookup, ms.
    pub dns_ms: Option<f64>,
    /// TCP connect, ms.
    pub connect_ms: Option<f64>,
    /// TLS handshake, ms.
    pub tls_ms: Option<f64>,
    /// Request sent to first response byte, ms.
    pub ttfb_ms: Option<f64>,
    /// Whole exchange, ms.
    pub total_ms: Option<f64>,
    /// Body bytes received.
    pub response_bytes: Option<u64>,
    /// Protocol of the final response, e.g. `HTTP/1.1`, `HTTP/2`.
    pub http_version: Option<String>,
    /// Negotiated TLS version, e.g. `TLSv1.3`; `null` without TLS.
    pub tls_version: Option<String>,
    /// `notAfter` of the leaf certificate; `null` without TLS.
    pub cert_not_after: Option<Timestamp>,
    /// Redirects followed.
    pub redirects: u32,
    /// `null` on success; why the request failed otherwise.
    pub error: Option<ProbeError>,
}
