//! The benchmark's message mix, shared by `bench_produce` (what goes to
//! Kafka) and `bench_decode` (the same messages decoded in process).

use netprobe_wire::msg::{Bgp, BgpEvent, BgpSource, Dns, Health, Http, Icmp, Mtr, MtrHop, Registry};
use netprobe_wire::{Body, Message, ProbeId, ProbeType, Timestamp, Ttl};

/// The timestamp of message 0 (ns), when no span is asked for.
pub const BASE_NS: i64 = 1_790_000_000_000_000_000;

/// Message `i`: 40 % icmp, 20 % dns, 20 % http, 5 % mtr (8 hops), 5 % bgp,
/// 9 % health, 1 % registry, from 200 agents over 50 targets each.
pub fn message(i: u64, ts_ns: i64) -> Message {
    let agent = i % 200;
    let target = (i / 200) % 50;
    let probe_id = ProbeId(format!("pop-{agent:03}"));
    let location = format!("City {agent}, XX");
    let ts = Timestamp::from_unix_nanos(ts_ns);
    let x = (i % 97) as f64;
    let body = match i % 100 {
        0..=39 => Body::Icmp(Icmp {
            target: format!("192.0.2.{target}"),
            resolved_ip: Some(format!("192.0.2.{target}").parse().expect("ip")),
            sent: 5,
            received: 5 - i.is_multiple_of(7) as u32,
            loss_pct: if i.is_multiple_of(7) { 20.0 } else { 0.0 },
            rtt_min_ms: Some(10.0 + x * 0.1),
            rtt_avg_ms: Some(11.0 + x * 0.1),
            rtt_median_ms: Some(11.0 + x * 0.1),
            rtt_max_ms: Some(13.0 + x * 0.1),
            rtt_stddev_ms: Some(0.8),
            jitter_ms: Some(0.4),
            error: None,
        }),
        40..=59 => Body::Dns(Dns {
            resolver: format!("198.51.100.{}:53", target % 4),
            query_name: format!("host{target}.example.com"),
            record_type: "A".into(),
            rcode: Some("NOERROR".into()),
            latency_ms: Some(2.0 + x * 0.05),
            answers: vec![format!("203.0.113.{target}")],
            answer_count: 1,
            error: None,
        }),
        60..=79 => Body::Http(Http {
            url: format!("https://site{target}.example.com/health"),
            method: "GET".into(),
            status_code: Some(200),
            success: true,
            dns_ms: Some(1.2),
            connect_ms: Some(10.0 + x * 0.1),
            tls_ms: Some(20.0 + x * 0.1),
            ttfb_ms: Some(35.0 + x * 0.1),
            total_ms: Some(60.0 + x * 0.1),
            response_bytes: Some(1024 + i % 512),
            http_version: Some("HTTP/2".into()),
            tls_version: Some("TLSv1.3".into()),
            cert_not_after: Some(Timestamp::from_unix_nanos(1_800_000_000_000_000_000)),
            redirects: 0,
            error: None,
        }),
        80..=84 => Body::Mtr(Mtr {
            target: format!("192.0.2.{target}"),
            destination_reached: true,
            hop_count: 8,
            path_hash: format!("{:016x}", target * 7919),
            hops: (1..=8u8)
                .map(|ttl| MtrHop {
                    ttl: Ttl(ttl),
                    ip: Some(format!("10.{ttl}.0.{target}").parse().expect("ip")),
                    other_ips: Vec::new(),
                    hostname: Some(format!("hop{ttl}.example.net")),
                    asn: Some(64500 + u32::from(ttl)),
                    sent: 10,
                    received: 10,
                    loss_pct: 0.0,
                    rtt_last_ms: Some(f64::from(ttl) * 1.5),
                    rtt_avg_ms: Some(f64::from(ttl) * 1.5),
                    rtt_best_ms: Some(f64::from(ttl) * 1.4),
                    rtt_worst_ms: Some(f64::from(ttl) * 1.9),
                    rtt_stddev_ms: Some(0.2),
                })
                .collect(),
            error: None,
        }),
        85..=89 => Body::Bgp(Bgp {
            event: BgpEvent::Announce,
            prefix: format!("203.0.{}.0/24", target).parse().expect("prefix"),
            origin_asn: Some(64500),
            expected_origins: vec![64500],
            as_path: vec![3333, 1299, 64500],
            peer_ip: "2001:db8::1".parse().expect("ip"),
            peer_asn: 3333,
            collector: "rrc00".into(),
            next_hop: Some("2001:db8::1".parse().expect("ip")),
            communities: vec!["3333:100".into()],
            source: BgpSource::RisLive,
            watched_prefix: None,
            origin_expected: None,
            peers_visible: None,
            rpki_reason: None,
        }),
        90..=98 => Body::Health(Health {
            last_successful_run: Some(ts),
            uptime_s: i,
            failures_last_hour: 0,
            runs_last_hour: 720,
            spool_messages: 0,
            spool_dropped_messages: 0,
            kafka_connected: true,
            feeds: Vec::new(),
            instance: None,
        }),
        _ => Body::Registry(Registry {
            ip: Some("198.51.100.7".parse().expect("ip")),
            hostname: format!("pop-{agent:03}.example.net"),
            available_metrics: vec![ProbeType::Icmp, ProbeType::Dns, ProbeType::Http],
            version: "0.1.0".into(),
            uptime_s: i,
            started_at: Timestamp::from_unix_nanos(BASE_NS),
            os: "Linux 6.1.0".into(),
            instance: None,
        }),
    };
    Message::new(probe_id, location, ts, body)
}
