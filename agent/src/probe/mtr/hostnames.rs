//! Reverse DNS of MTR hop addresses (`resolve_hostnames = true`), off the
//! run's critical path: a run takes what the cache already knows and asks
//! for the rest in the background, so a hop whose name is not yet known is
//! published with `hostname = null` and later runs carry it.
//!
//! The cache is bounded in entries ([`CAPACITY`]) and in time: a name is
//! fresh for [`POSITIVE_TTL`], an address without a PTR record for
//! [`NEGATIVE_TTL`], a failed lookup (timeout, SERVFAIL) for
//! [`FAILURE_TTL`]. An expired name is still served while it is looked up
//! again (so a hop's name does not blink to `null` once an hour); entries
//! expired for longer than [`STALE_FOR`] are swept at most once a minute,
//! and when the cache is full the entry that expires first makes room. So
//! on an agent running for a year the cache holds at most [`CAPACITY`]
//! entries, each at most `POSITIVE_TTL + STALE_FOR` old, and addresses no
//! longer on any path are gone within a day.
//!
//! The lookup itself is the DNS probe's exchange (hickory-proto, UDP with
//! TCP fallback) of a `PTR` query for the `in-addr.arpa` / `ip6.arpa` name.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;

use crate::probe::dns;

/// Entries the cache holds at most (resolver, address pairs).
pub const CAPACITY: usize = 4096;
/// How long a name found is fresh.
pub const POSITIVE_TTL: Duration = Duration::from_secs(3600);
/// How long "no PTR record" (NXDOMAIN or an empty answer) is kept.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(600);
/// How long a failed lookup (timeout, refused, SERVFAIL) is kept.
pub const FAILURE_TTL: Duration = Duration::from_secs(60);
/// How long after its expiry an entry is still served (while it is
/// refreshed) before the sweep removes it.
pub const STALE_FOR: Duration = Duration::from_secs(24 * 3600);
/// Wait for one PTR response.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Lookups in flight at once (the rest wait their turn).
const MAX_IN_FLIGHT: usize = 16;
/// How often expired entries are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

type Key = (SocketAddr, IpAddr);

#[derive(Debug)]
struct Entry {
    name: Option<String>,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    pending: HashSet<Key>,
    last_sweep: Option<Instant>,
}

/// Reverse-DNS cache of hop names (see the module doc); one per process
/// ([`HostnameCache::global`]), shared by every MTR target.
#[derive(Debug)]
pub struct HostnameCache {
    inner: Mutex<Inner>,
    capacity: usize,
    slots: Arc<tokio::sync::Semaphore>,
}

impl HostnameCache {
    /// An empty cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> HostnameCache {
        HostnameCache {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// The process's cache.
    pub fn global() -> &'static Arc<HostnameCache> {
        static CACHE: OnceLock<Arc<HostnameCache>> = OnceLock::new();
        CACHE.get_or_init(|| Arc::new(HostnameCache::new(CAPACITY)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names known for `ips` now (never waits for the network), and
    /// starts a background lookup (on the current tokio runtime) for every
    /// address not known or expired and not already being looked up.
    pub fn names(self: &Arc<Self>, resolver: SocketAddr, ips: &[IpAddr]) -> Vec<Option<String>> {
        let now = Instant::now();
        let mut start = Vec::new();
        let names = {
            let mut inner = self.lock();
            ips.iter()
                .map(|ip| {
                    let key = (resolver, *ip);
                    let (name, fresh) = match inner.entries.get(&key) {
                        Some(e) => (e.name.clone(), e.expires > now),
                        None => (None, false),
                    };
                    if !fresh && inner.pending.insert(key) {
                        start.push(key);
                    }
                    name
                })
                .collect()
        };
        for key in start {
            let cache = Arc::clone(self);
            tokio::spawn(async move {
                let _slot = cache.slots.acquire().await;
                let (name, ttl) = match lookup(key.0, key.1, LOOKUP_TIMEOUT).await {
                    Ok(Some(name)) => (Some(name), POSITIVE_TTL),
                    Ok(None) => (None, NEGATIVE_TTL),
                    Err(e) => {
                        tracing::debug!(ip = %key.1, resolver = %key.0, error = %e, "mtr hop reverse DNS failed");
                        (None, FAILURE_TTL)
                    }
                };
                cache.store(key, name, ttl, Instant::now());
            });
        }
        names
    }

    /// Records a lookup's result (and ends its pending state); sweeps and
    /// evicts to stay within the bounds.
    fn store(&self, key: Key, name: Option<String>, ttl: Duration, now: Instant) {
        let mut inner = self.lock();
        inner.pending.remove(&key);
        // A failed refresh keeps the name it had (stale) until STALE_FOR.
        let name = match (name, inner.entries.get(&key)) {
            (None, Some(old)) if ttl == FAILURE_TTL => old.name.clone(),
            (name, _) => name,
        };
        if inner.last_sweep.is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY) {
            inner.entries.retain(|_, e| e.expires + STALE_FOR > now);
            inner.last_sweep = Some(now);
        }
        if !inner.entries.contains_key(&key) && inner.entries.len() >= self.capacity {
            if let Some(first) = inner.entries.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| *k) {
                inner.entries.remove(&first);
            }
        }
        inner.entries.insert(key, Entry { name, expires: now + ttl });
    }
}

/// One PTR lookup of `ip` at `resolver`: the name without its final dot,
/// `None` when there is no PTR record (NXDOMAIN or no answer). With several
/// answers (a CNAME chain of a classless delegation, RFC 2317), the last.
///
/// # Errors
/// The DNS probe's error message (timeout, refused, an rcode other than
/// NOERROR/NXDOMAIN).
pub async fn lookup(resolver: SocketAddr, ip: IpAddr, timeout: Duration) -> Result<Option<String>, String> {
    let target = dns::Target {
        resolver,
        query_name: Name::from(ip).to_ascii(),
        record_type: "PTR".into(),
        interval: Duration::from_secs(3600),
        timeout,
        transport: dns::Transport::Udp,
    };
    let answer = dns::run(&target).await;
    if let Some(e) = answer.error {
        return Err(e.message);
    }
    Ok(answer.answers.last().map(|a| a.trim_end_matches('.').to_owned()).filter(|a| !a.is_empty()))
}

/// The first `nameserver` of `/etc/resolv.conf` on port 53 (the system's
/// resolver), else 127.0.0.1:53 as the C library assumes; read once.
pub fn system_resolver() -> SocketAddr {
    static RESOLVER: OnceLock<SocketAddr> = OnceLock::new();
    *RESOLVER.get_or_init(|| {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|rest| rest.trim().split('%').next()?.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .next()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 53)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(last: u8) -> Key {
        (SocketAddr::from(([127, 0, 0, 1], 53)), IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn full_cache_evicts_the_entry_expiring_first_and_sweeps_long_expired_ones() {
        let cache = HostnameCache::new(3);
        let t0 = Instant::now();
        cache.store(key(1), Some("a".into()), POSITIVE_TTL, t0);
        cache.store(key(2), None, NEGATIVE_TTL, t0);
        cache.store(key(3), Some("c".into()), POSITIVE_TTL, t0);
        cache.store(key(4), Some("d".into()), POSITIVE_TTL, t0);
        let held: HashSet<Key> = cache.lock().entries.keys().copied().collect();
        assert_eq!(held, [key(1), key(3), key(4)].into_iter().collect(), "the negative entry expired first");
        // A year later one store sweeps every entry expired for over a day.
        let later = t0 + Duration::from_secs(365 * 24 * 3600);
        cache.store(key(5), Some("e".into()), POSITIVE_TTL, later);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_failed_refresh_keeps_the_old_name() {
        let cache = HostnameCache::new(8);
        let t0 = Instant::now();
        cache.store(key(1), Some("a".into()), POSITIVE_TTL, t0);
        cache.store(key(1), None, FAILURE_TTL, t0 + POSITIVE_TTL);
        assert_eq!(cache.lock().entries[&key(1)].name.as_deref(), Some("a"));
        cache.store(key(1), None, NEGATIVE_TTL, t0 + POSITIVE_TTL);
        assert_eq!(cache.lock().entries[&key(1)].name, None, "NXDOMAIN replaces it");
    }
}
