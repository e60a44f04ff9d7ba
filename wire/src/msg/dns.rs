//! One DNS query against one resolver, as `dig @resolver name type` reports it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ProbeError;

/// One DNS query (no cache) and its answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Dns {
    /// The resolver queried, `IP:port` (`[v6]:port` for IPv6).
    pub resolver: String,
    /// The name asked for, e.g. `example.com`.
    pub query_name: String,
    /// The record type asked for, e.g. `A`, `AAAA`, `MX` (RFC 1035 mnemonics).
    pub record_type: String,
    /// The response code (RFC 1035 / RFC 6895 mnemonic: `NOERROR`,
    /// `NXDOMAIN`, `SERVFAIL`, `REFUSED`, ...); `null` when no response came.
    pub rcode: Option<String>,
    /// Time from sending the query to receiving the response, ms; `null`
    /// when no response came.
    pub latency_ms: Option<f64>,
    /// Answer records in presentation format (the RDATA, as `dig +short`).
    pub answers: Vec<String>,
    /// Number of answer records.
    pub answer_count: u32,
    /// `null` on success; why the query failed otherwise.
    pub error: Option<ProbeError>,
}
