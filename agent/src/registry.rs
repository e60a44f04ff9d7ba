//! The agent's registry record and heartbeat (DESIGN.md `registry` and
//! `health` messages), built from host facts and the agent's counters.

use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::time::Instant;

use netprobe_wire::msg::{Health, Registry};
use netprobe_wire::{Body, Message, ProbeId, ProbeType, Timestamp};

/// What the agent knows about itself, fixed at start.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `probe_id` of every message.
    pub probe_id: ProbeId,
    /// `location` of every message.
    pub location: String,
    /// Host name (`/proc/sys/kernel/hostname`).
    pub hostname: String,
    /// Operating system, e.g. `Debian GNU/Linux 12 (bookworm), Linux 6.1.0`.
    pub os: String,
    /// Source address towards the first broker (no packet is sent to find it).
    pub ip: Option<IpAddr>,
    /// When the agent started.
    pub started_at: Timestamp,
    /// This agent's instance among several with one `probe_id` on a host
    /// (`netprobe-agent@icmp`: `icmp`); it keys the registry record and the
    /// heartbeats, so instances do not overwrite each other.
    pub instance: Option<String>,
    started: Instant,
}

impl Identity {
    /// Reads host facts; `broker` (`host:port`) picks the reported address.
    pub fn discover(probe_id: &str, location: &str, instance: Option<String>, broker: Option<&str>) -> Self {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).ok();
        let pretty = read("/etc/os-release").and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
        });
        let kernel = read("/proc/sys/kernel/osrelease").map(|k| format!("Linux {k}"));
        let os = [pretty, kernel].into_iter().flatten().collect::<Vec<_>>().join(", ");
        Identity {
            probe_id: ProbeId(probe_id.to_owned()),
            location: location.to_owned(),
            hostname: read("/proc/sys/kernel/hostname").unwrap_or_default(),
            os,
            ip: broker.and_then(source_ip),
            started_at: Timestamp::now(),
            instance,
            started: Instant::now(),
        }
    }

    /// Whole seconds since start.
    pub fn uptime_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The `agent.registry` record now.
    pub fn registry(&self, available_metrics: Vec<ProbeType>) -> Message {
        self.message(Body::Registry(Registry {
            ip: self.ip,
            hostname: self.hostname.clone(),
            available_metrics,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: self.uptime_s(),
            started_at: self.started_at,
            os: self.os.clone(),
            instance: self.instance.clone(),
        }))
    }

    /// A `probe.health` heartbeat now, from the agent's counters.
    pub fn health(&self, counters: &Counters, kafka_connected: bool) -> Message {
        self.message(Body::Health(Health {
            last_successful_run: counters.last_successful_run,
            uptime_s: self.uptime_s(),
            failures_last_hour: counters.failures_last_hour,
            runs_last_hour: counters.runs_last_hour,
            spool_messages: counters.spool_messages,
            spool_dropped_messages: counters.spool_dropped_messages,
            kafka_connected,
            feeds: counters.feeds.clone(),
            instance: self.instance.clone(),
        }))
    }

    fn message(&self, body: Body) -> Message {
        Message::new(self.probe_id.clone(), self.location.clone(), Timestamp::now(), body)
    }
}

/// The agent's run and spool counters reported in heartbeats.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// When a probe run last succeeded.
    pub last_successful_run: Option<Timestamp>,
    /// Probe runs that failed in the last hour.
    pub failures_last_hour: u32,
    /// Probe runs in the last hour.
    pub runs_last_hour: u32,
    /// Messages waiting in the spool.
    pub spool_messages: u64,
    /// Messages lost since start (spool bound, or no spool yet).
    pub spool_dropped_messages: u64,
    /// The BGP feeds and whether each is live.
    pub feeds: Vec<netprobe_wire::msg::FeedStatus>,
}

/// The local address the kernel would use towards `broker` (UDP connect
/// sends nothing).
fn source_ip(broker: &str) -> Option<IpAddr> {
    let target = broker.to_socket_addrs().ok()?.next()?;
    let bind = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_and_health_carry_identity_and_counters() {
        let id = Identity::discover("pop-test", "Loopback, LO", None, Some("127.0.0.1:9"));
        assert_eq!(id.ip, Some("127.0.0.1".parse().expect("ip")));
        assert!(!id.hostname.is_empty() && id.os.contains("Linux"), "{id:?}");
        let reg = id.registry(vec![ProbeType::Icmp]);
        assert_eq!(reg.key(), "pop-test");
        let Body::Registry(r) = &reg.body else { panic!("registry body") };
        assert_eq!(r.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(r.available_metrics, vec![ProbeType::Icmp]);
        let feed =
            netprobe_wire::msg::FeedStatus { name: "mrt /srv/rrc00".into(), live: false, messages: 3, malformed: 1 };
        let counters =
            Counters { runs_last_hour: 7, spool_dropped_messages: 2, feeds: vec![feed.clone()], ..Counters::default() };
        let Body::Health(h) = id.health(&counters, true).body else { panic!("health body") };
        assert_eq!((h.runs_last_hour, h.spool_dropped_messages, h.kafka_connected), (7, 2, true));
        assert_eq!(h.feeds, [feed]);
    }

    #[test]
    fn an_instance_keys_its_own_registry_record_and_heartbeats() {
        let icmp = Identity::discover("pop-test", "Loopback, LO", Some("icmp".into()), None);
        let dns = Identity::discover("pop-test", "Loopback, LO", Some("dns".into()), None);
        assert_eq!(icmp.registry(vec![ProbeType::Icmp]).key(), "pop-test/icmp");
        assert_eq!(dns.health(&Counters::default(), true).key(), "pop-test/dns");
        let Body::Registry(r) = &icmp.registry(vec![ProbeType::Icmp]).body else { panic!("registry body") };
        assert_eq!((r.instance.as_deref(), r.available_metrics.as_slice()), (Some("icmp"), &[ProbeType::Icmp][..]));
    }
}
