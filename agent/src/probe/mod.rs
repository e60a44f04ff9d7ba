//! The probe types the agent runs, one module each. Every module exposes a
//! `Target` (its `[[type]]` TOML table) and `async fn run(&Target) -> Body`,
//! which never fails: a failed measurement is still a measurement, published
//! with its `error` set (DESIGN.md "Topics and messages").

pub mod dns;
pub mod http;
pub mod icmp;

use std::time::Duration;

use netprobe_wire::{Body, ProbeType};

/// Whether a measurement counts as a successful run (heartbeat counters,
/// `--health-check` exit status): no `error`, and for HTTP `success`.
pub fn succeeded(body: &Body) -> bool {
    match body {
        Body::Icmp(m) => m.error.is_none(),
        Body::Dns(m) => m.error.is_none(),
        Body::Http(m) => m.success && m.error.is_none(),
        _ => true,
    }
}

/// What probe runs share: the ICMP sockets. Create it inside the runtime
/// that runs the probes.
#[derive(Debug, Default)]
pub struct Context {
    /// ICMP sockets and their receive tasks.
    pub pinger: icmp::Pinger,
}

/// One configured target of any probe type.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// An `[[icmp]]` table.
    Icmp(icmp::Target),
    /// A `[[dns]]` table.
    Dns(dns::Target),
    /// An `[[http]]` table.
    Http(http::Target),
}

impl Target {
    /// The probe type, which picks the topic.
    pub fn probe_type(&self) -> ProbeType {
        match self {
            Target::Icmp(_) => ProbeType::Icmp,
            Target::Dns(_) => ProbeType::Dns,
            Target::Http(_) => ProbeType::Http,
        }
    }

    /// How often a run starts.
    pub fn interval(&self) -> Duration {
        match self {
            Target::Icmp(t) => t.interval,
            Target::Dns(t) => t.interval,
            Target::Http(t) => t.interval,
        }
    }

    /// The longest one run can take; the scheduler cancels a run after this
    /// (plus a grace second) and counts it as failed.
    pub fn run_deadline(&self) -> Duration {
        match self {
            Target::Icmp(t) => t.run_deadline(),
            Target::Dns(t) => t.timeout,
            Target::Http(t) => t.timeout,
        }
    }

    /// Checks what serde cannot (see each probe's `validate`).
    ///
    /// # Errors
    /// A message naming the key that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Target::Icmp(t) => t.validate(),
            Target::Dns(t) => t.validate(),
            Target::Http(t) => t.validate(),
        }
    }

    /// Human name for logs and metrics, e.g. `icmp 192.0.2.10`.
    pub fn label(&self) -> String {
        match self {
            Target::Icmp(t) => format!("icmp {}", t.target),
            Target::Dns(t) => format!("dns {} {} @{}", t.query_name, t.record_type, t.resolver),
            Target::Http(t) => format!("http {} {}", t.method, t.url),
        }
    }

    /// Runs one measurement.
    pub async fn run(&self, ctx: &Context) -> Body {
        match self {
            Target::Icmp(t) => Body::Icmp(icmp::run(t, &ctx.pinger).await),
            // Boxed: their futures are large (HTTP ~10 KB) and would size
            // every run, ICMP's (~600 B) included.
            Target::Dns(t) => Body::Dns(Box::pin(dns::run(t)).await),
            Target::Http(t) => Body::Http(Box::pin(http::run(t)).await),
        }
    }
}
