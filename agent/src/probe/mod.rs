//! The probe types the agent runs, one module each, behind one interface.
//!
//! A probe type is a config struct (its `[[type]]` TOML table) that
//! implements [`Probe`]: it validates itself, says how often and how long
//! it runs, and runs into a wire [`Body`]. A run never fails: a failed
//! measurement is still a measurement, published with its `error` set
//! (DESIGN.md "Topics and messages"). The registry of probe types is the
//! `probe_types!` list in `config.rs`: adding a type is its wire message,
//! its module here and one line there.

pub mod bgp;
pub mod dns;
pub mod http;
pub mod icmp;
pub mod mtr;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use netprobe_wire::{Body, ProbeType};

/// One probe type: an `[[type]]` table that validates itself and runs.
pub trait Probe: Clone + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// The probe type, which picks the topic and the metrics label.
    const TYPE: ProbeType;
    /// Runs of this type allowed in flight at once (all targets together).
    const CONCURRENCY: usize;
    /// Whether every run ends within [`Probe::run_deadline`] by its own
    /// timeouts, so the scheduler need not bound it with a timer of its
    /// own (one timer per run saved). Default `false`.
    const SELF_BOUNDED: bool = false;

    /// How often a run starts.
    fn interval(&self) -> Duration;

    /// The longest one run can take; the scheduler abandons a run after this
    /// plus a grace second and publishes [`Probe::abandoned`] instead.
    fn run_deadline(&self) -> Duration;

    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A message that starts with the key that is wrong.
    fn validate(&self) -> Result<(), String>;

    /// Human name for logs, e.g. `icmp 192.0.2.10`; also identifies the
    /// target across reloads together with equality.
    fn label(&self) -> String;

    /// Runs one measurement (see each module for what it measures).
    fn run(&self, ctx: &Context) -> impl Future<Output = Body> + Send;

    /// The result published for a run abandoned after `after`: error class
    /// `timeout`, nothing measured.
    fn abandoned(&self, after: Duration) -> Body;

    /// Whether `body` (a result of this type) counts as a successful run:
    /// heartbeat counters, `--health-check` exit status.
    fn succeeded(body: &Body) -> bool;

    /// Reads this type's `[[table]]` array from the config file. The
    /// default reads one target per table; a type may expand a table into
    /// several (ICMP's `targets = [...]`).
    ///
    /// # Errors
    /// The deserializer's error, which names the file position and key.
    fn tables<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Self>, D::Error>
    where
        Self: serde::Deserialize<'de>,
    {
        serde::Deserialize::deserialize(d)
    }
}

/// What probe runs share: the ICMP sockets. Create it inside the runtime
/// that runs the probes.
#[derive(Debug, Default)]
pub struct Context {
    /// ICMP sockets and their receive tasks.
    pub pinger: icmp::Pinger,
}

/// A boxed run future (type-erased [`Probe::run`]).
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Body> + Send + 'a>>;

/// [`Probe`] without its static parts, so targets of every type share one
/// list. Implemented for every [`Probe`].
trait DynProbe: fmt::Debug + Send + Sync {
    fn probe_type(&self) -> ProbeType;
    fn self_bounded(&self) -> bool;
    fn interval(&self) -> Duration;
    fn run_deadline(&self) -> Duration;
    fn validate(&self) -> Result<(), String>;
    fn label(&self) -> String;
    fn run<'a>(&'a self, ctx: &'a Context) -> RunFuture<'a>;
    fn abandoned(&self, after: Duration) -> Body;
    fn succeeded(&self, body: &Body) -> bool;
    fn as_any(&self) -> &dyn Any;
    fn eq_any(&self, other: &dyn Any) -> bool;
}

impl<P: Probe> DynProbe for P {
    fn probe_type(&self) -> ProbeType {
        P::TYPE
    }
    fn self_bounded(&self) -> bool {
        P::SELF_BOUNDED
    }
    fn interval(&self) -> Duration {
        Probe::interval(self)
    }
    fn run_deadline(&self) -> Duration {
        Probe::run_deadline(self)
    }
    fn validate(&self) -> Result<(), String> {
        Probe::validate(self)
    }
    fn label(&self) -> String {
        Probe::label(self)
    }
    fn run<'a>(&'a self, ctx: &'a Context) -> RunFuture<'a> {
        // Boxed: futures differ in size (HTTP ~10 KB, ICMP ~600 B), and a
        // run lives in its own task anyway.
        Box::pin(Probe::run(self, ctx))
    }
    fn abandoned(&self, after: Duration) -> Body {
        Probe::abandoned(self, after)
    }
    fn succeeded(&self, body: &Body) -> bool {
        P::succeeded(body)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn eq_any(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<P>() == Some(self)
    }
}

/// One configured target of any probe type: a cheap, shared handle.
#[derive(Clone, Debug)]
pub struct Target(Arc<dyn DynProbe>);

impl<P: Probe> From<P> for Target {
    fn from(probe: P) -> Self {
        Target(Arc::new(probe))
    }
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.eq_any(other.0.as_any())
    }
}

impl Target {
    /// The probe type, which picks the topic.
    pub fn probe_type(&self) -> ProbeType {
        self.0.probe_type()
    }

    /// How often a run starts.
    pub fn interval(&self) -> Duration {
        self.0.interval()
    }

    /// Whether a run ends within its deadline on its own ([`Probe::SELF_BOUNDED`]).
    pub fn self_bounded(&self) -> bool {
        self.0.self_bounded()
    }

    /// The longest one run can take ([`Probe::run_deadline`]).
    pub fn run_deadline(&self) -> Duration {
        self.0.run_deadline()
    }

    /// Checks what serde cannot ([`Probe::validate`]).
    ///
    /// # Errors
    /// A message naming the key that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.0.validate()
    }

    /// Human name for logs, e.g. `icmp 192.0.2.10`.
    pub fn label(&self) -> String {
        self.0.label()
    }

    /// Runs one measurement.
    pub fn run<'a>(&'a self, ctx: &'a Context) -> RunFuture<'a> {
        self.0.run(ctx)
    }

    /// The result of a run abandoned after `after` ([`Probe::abandoned`]).
    pub fn abandoned(&self, after: Duration) -> Body {
        self.0.abandoned(after)
    }

    /// Whether `body`, a result of this target, is a successful run.
    pub fn succeeded(&self, body: &Body) -> bool {
        self.0.succeeded(body)
    }

    /// The target as its probe type's config struct, if it is one.
    pub fn downcast_ref<P: Probe>(&self) -> Option<&P> {
        self.0.as_any().downcast_ref()
    }
}

/// A registered probe type (built by `probe_types!` in `config.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Registered {
    /// Its type.
    pub probe_type: ProbeType,
    /// Its default concurrency ([`Probe::CONCURRENCY`]).
    pub concurrency: usize,
}

impl Registered {
    /// The registry entry of `P`.
    pub const fn of<P: Probe>() -> Self {
        Registered { probe_type: P::TYPE, concurrency: P::CONCURRENCY }
    }

    /// A stream type (BGP): no periodic runs, so no run concurrency.
    pub const fn stream(probe_type: ProbeType) -> Self {
        Registered { probe_type, concurrency: 0 }
    }
}

/// The registered probe type named `name` (as in `--only icmp,dns`).
///
/// # Errors
/// A message listing the types this agent runs.
pub fn parse_probe_type(name: &str) -> Result<ProbeType, String> {
    let types = crate::config::PROBE_TYPES;
    types.iter().map(|t| t.probe_type).find(|t| t.as_str() == name).ok_or_else(|| {
        let known: Vec<&str> = types.iter().map(|t| t.probe_type.as_str()).collect();
        format!("unknown probe type {name:?} (this agent runs {})", known.join(", "))
    })
}

/// A `ProbeError` of class `timeout` for a run abandoned after `after`.
pub(crate) fn abandoned_error(after: Duration) -> netprobe_wire::ProbeError {
    netprobe_wire::ProbeError {
        class: netprobe_wire::ErrorClass::Timeout,
        message: format!("run abandoned: not finished within its deadline of {after:?}"),
    }
}

/// A measured duration in milliseconds, as the wire's `_ms` fields carry
/// it: the nearest `f64` to the duration's exact nanosecond count / 10^6,
/// so it prints as that decimal (`47.123` for 47,123,000 ns; at most six
/// decimals; exact below 10^9 ms, 11.5 days, i.e. for every probe's
/// duration). `as_secs_f64() * 1e3` rounds twice and prints its error
/// (`0.047123000000000004`): noise in the data, and longer to encode,
/// store and transcode.
pub fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

#[cfg(test)]
mod ms_tests {
    use std::time::Duration;

    /// The oracle: the decimal of `ns / 10^6` written with integer
    /// arithmetic, trailing zeros cut.
    fn decimal(ns: u64) -> String {
        let (int, frac) = (ns / 1_000_000, ns % 1_000_000);
        if frac == 0 {
            return int.to_string();
        }
        format!("{int}.{frac:06}").trim_end_matches('0').to_owned()
    }

    #[test]
    fn milliseconds_print_as_the_exact_nanosecond_decimal() {
        let mut ns: Vec<u64> = vec![0, 1, 999, 1_000, 47_123, 47_123_000, 999_999, 1_000_000, 86_400_000_000_000];
        // A fixed-seed LCG: every scale from 1 ns to a day.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..100_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ns.push((x >> 11) % 10u64.pow((x % 14) as u32 + 1));
        }
        for n in ns {
            assert_eq!(super::ms(Duration::from_nanos(n)).to_string(), decimal(n), "{n} ns");
        }
    }
}
