//! What every netprobe daemon (agent, ingest) does the same way under
//! systemd: structured logs, sd-notify states and the watchdog ping; and
//! the Kafka producer both use ([`PolledProducer`]).
#![deny(missing_docs)]

pub mod polled_producer;
pub use polled_producer::PolledProducer;

use std::time::{Duration, Instant};

pub use sd_notify::NotifyState;

/// Structured logs to stderr: journald captures them under systemd (then
/// without ANSI colours and timestamps, which journald adds), a terminal
/// otherwise. `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.with_ansi(false).without_time().init();
    } else {
        builder.init();
    }
}

/// Tells systemd `state` (`Type=notify`); a no-op outside systemd.
pub fn notify(state: NotifyState) {
    let _ = sd_notify::notify(false, &[state]);
}

/// A closure to call often (at least every second) that sends WATCHDOG=1 at
/// half the unit's `WatchdogSec`, or does nothing without a watchdog.
pub fn watchdog() -> Box<dyn FnMut() + Send> {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return Box::new(|| {});
    }
    let every = Duration::from_micros(usec / 2);
    let mut last: Option<Instant> = None;
    Box::new(move || {
        if last.is_none_or(|l| l.elapsed() >= every) {
            notify(NotifyState::Watchdog);
            last = Some(Instant::now());
        }
    })
}
