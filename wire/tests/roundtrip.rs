//! Property test: every message survives encode -> decode unchanged, for
//! arbitrary strings (quotes, backslashes, newlines, non-ASCII), addresses,
//! finite floats and timestamps.

use std::net::IpAddr;

use ipnet::IpNet;
use netprobe_wire::msg::{
    Bgp, BgpEvent, BgpSource, Dns, FeedStatus, Health, Http, Icmp, Mtr, MtrHop, Registry, RpkiReason,
};
use netprobe_wire::{decode, Body, ErrorClass, Message, ProbeError, ProbeId, ProbeType, Timestamp, Ttl};
use proptest::prelude::*;

fn ms() -> impl Strategy<Value = f64> {
    prop_oneof![0.0..10_000.0f64, Just(0.0), proptest::num::f64::NORMAL.prop_map(f64::abs)]
}

fn opt_ms() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of(ms())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z,= \"\\\\\n\t]{0,12}"]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    // 1970..2200, nanosecond resolution
    (0i64..7_258_118_400_000_000_000).prop_map(Timestamp::from_unix_nanos)
}

fn error() -> impl Strategy<Value = Option<ProbeError>> {
    let class = prop_oneof![
        Just(ErrorClass::Timeout),
        Just(ErrorClass::DnsFailure),
        Just(ErrorClass::ConnectionRefused),
        Just(ErrorClass::TlsError),
        Just(ErrorClass::Unreachable),
        Just(ErrorClass::PermissionDenied),
        Just(ErrorClass::ProtocolError),
        Just(ErrorClass::UnexpectedResponse),
        Just(ErrorClass::Other),
    ];
    proptest::option::of((class, text()).prop_map(|(class, message)| ProbeError { class, message }))
}

fn icmp() -> impl Strategy<Value = Body> {
    (
        (text(), proptest::option::of(any::<IpAddr>()), any::<u32>(), any::<u32>(), 0.0..=100.0f64),
        (opt_ms(), opt_ms(), opt_ms(), opt_ms(), opt_ms(), opt_ms(), error()),
    )
        .prop_map(|((target, resolved_ip, sent, received, loss_pct), (min, avg, med, max, sd, jit, error))| {
            Body::Icmp(Icmp {
                target,
                resolved_ip,
                sent,
                received,
                loss_pct,
                rtt_min_ms: min,
                rtt_avg_ms: avg,
                rtt_median_ms: med,
                rtt_max_ms: max,
                rtt_stddev_ms: sd,
                jitter_ms: jit,
                error,
            })
        })
}

fn dns() -> impl Strategy<Value = Body> {
    (
        text(),
        text(),
        text(),
        proptest::option::of(text()),
        opt_ms(),
        proptest::collection::vec(text(), 0..4),
        any::<u32>(),
        error(),
    )
        .prop_map(|(resolver, query_name, record_type, rcode, latency_ms, answers, answer_count, error)| {
            Body::Dns(Dns { resolver, query_name, record_type, rcode, latency_ms, answers, answer_count, error })
        })
}

fn http() -> impl Strategy<Value = Body> {
    (
        (text(), text(), proptest::option::of(any::<u16>()), any::<bool>(), opt_ms(), opt_ms(), opt_ms(), opt_ms()),
        (opt_ms(), proptest::option::of(any::<u64>()), proptest::option::of(text()), proptest::option::of(text())),
        (proptest::option::of(timestamp()), any::<u32>(), error()),
    )
        .prop_map(
            |(
                (url, method, status_code, success, dns_ms, connect_ms, tls_ms, ttfb_ms),
                (total_ms, response_bytes, http_version, tls_version),
                (cert_not_after, redirects, error),
            )| {
                Body::Http(Http {
                    url,
                    method,
                    status_code,
                    success,
                    dns_ms,
                    connect_ms,
                    tls_ms,
                    ttfb_ms,
                    total_ms,
                    response_bytes,
                    http_version,
                    tls_version,
                    cert_not_after,
                    redirects,
                    error,
                })
            },
        )
}

fn hop() -> impl Strategy<Value = MtrHop> {
    (
        (
            any::<u8>(),
            proptest::option::of(any::<IpAddr>()),
            proptest::option::of(text()),
            proptest::option::of(any::<u32>()),
            proptest::collection::vec(any::<IpAddr>(), 0..3),
        ),
        (any::<u32>(), any::<u32>(), 0.0..=100.0f64),
        (opt_ms(), opt_ms(), opt_ms(), opt_ms(), opt_ms()),
    )
        .prop_map(
            |((ttl, ip, hostname, asn, other_ips), (sent, received, loss_pct), (last, avg, best, worst, sd))| MtrHop {
                ttl: Ttl(ttl),
                ip,
                other_ips,
                hostname,
                asn,
                sent,
                received,
                loss_pct,
                rtt_last_ms: last,
                rtt_avg_ms: avg,
                rtt_best_ms: best,
                rtt_worst_ms: worst,
                rtt_stddev_ms: sd,
            },
        )
}

fn mtr() -> impl Strategy<Value = Body> {
    (text(), any::<bool>(), any::<u32>(), "[0-9a-f]{16}", proptest::collection::vec(hop(), 0..5), error()).prop_map(
        |(target, destination_reached, hop_count, path_hash, hops, error)| {
            Body::Mtr(Mtr { target, destination_reached, hop_count, path_hash, hops, error })
        },
    )
}

fn prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<std::net::Ipv4Addr>(), 0u8..=32).prop_map(|(a, l)| IpNet::new(a.into(), l).expect("valid").trunc()),
        (any::<std::net::Ipv6Addr>(), 0u8..=128).prop_map(|(a, l)| IpNet::new(a.into(), l).expect("valid").trunc()),
    ]
}

fn bgp() -> impl Strategy<Value = Body> {
    let event = proptest::sample::select(BgpEvent::ALL.to_vec());
    let reason = proptest::option::of(prop_oneof![Just(RpkiReason::Origin), Just(RpkiReason::MaxLength)]);
    let source = prop_oneof![Just(BgpSource::RisLive), Just(BgpSource::Mrt), Just(BgpSource::Bmp)];
    (
        (event, prefix(), proptest::option::of(any::<u32>()), proptest::collection::vec(any::<u32>(), 0..3)),
        (proptest::collection::vec(any::<u32>(), 0..6), any::<IpAddr>(), any::<u32>(), text()),
        (proptest::option::of(any::<IpAddr>()), proptest::collection::vec(text(), 0..3), source),
        (
            proptest::option::of(prefix()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<u32>()),
            reason,
        ),
    )
        .prop_map(
            |(
                (event, prefix, origin_asn, expected_origins),
                (as_path, peer_ip, peer_asn, collector),
                (next_hop, communities, source),
                (watched_prefix, origin_expected, peers_visible, rpki_reason),
            )| {
                Body::Bgp(Bgp {
                    event,
                    prefix,
                    origin_asn,
                    expected_origins,
                    as_path,
                    peer_ip,
                    peer_asn,
                    collector,
                    next_hop,
                    communities,
                    source,
                    watched_prefix,
                    origin_expected,
                    peers_visible,
                    rpki_reason,
                })
            },
        )
}

fn registry() -> impl Strategy<Value = Body> {
    (
        proptest::option::of(any::<IpAddr>()),
        text(),
        proptest::sample::subsequence(ProbeType::ALL.to_vec(), 0..=7),
        text(),
        any::<u64>(),
        timestamp(),
        text(),
        proptest::option::of(text()),
    )
        .prop_map(|(ip, hostname, available_metrics, version, uptime_s, started_at, os, instance)| {
            Body::Registry(Registry { ip, hostname, available_metrics, version, uptime_s, started_at, os, instance })
        })
}

fn health() -> impl Strategy<Value = Body> {
    (
        proptest::option::of(timestamp()),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        proptest::option::of(text()),
        proptest::collection::vec((text(), any::<bool>(), any::<u64>(), any::<u64>()), 0..3),
    )
        .prop_map(|(last, uptime_s, failures, runs, spool, dropped, connected, instance, feeds)| {
            Body::Health(Health {
                last_successful_run: last,
                uptime_s,
                failures_last_hour: failures,
                runs_last_hour: runs,
                spool_messages: spool,
                spool_dropped_messages: dropped,
                kafka_connected: connected,
                feeds: feeds
                    .into_iter()
                    .map(|(name, live, messages, malformed)| FeedStatus { name, live, messages, malformed })
                    .collect(),
                instance,
            })
        })
}

fn message() -> impl Strategy<Value = Message> {
    // Boxed: the unboxed strategy type is deep enough to overflow a debug
    // build's test-thread stack.
    let body = prop_oneof![
        icmp().boxed(),
        dns().boxed(),
        http().boxed(),
        mtr().boxed(),
        bgp().boxed(),
        registry().boxed(),
        health().boxed()
    ];
    (text(), text(), timestamp(), body)
        .prop_map(|(probe_id, location, timestamp, body)| Message::new(ProbeId(probe_id), location, timestamp, body))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_message_round_trips_through_json(msg in message()) {
        let bytes = msg.encode().expect("finite message encodes");
        prop_assert_eq!(decode(&bytes).expect("decodes"), msg);
    }
}
