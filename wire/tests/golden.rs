//! Golden JSON for every message kind: the exact bytes agents write, read
//! back into the same value. `NETPROBE_BLESS=1 cargo test` rewrites the files
//! after an intended change (review the diff: it is the wire contract).

use std::net::IpAddr;
use std::path::PathBuf;

use netprobe_wire::msg::{Bgp, BgpEvent, BgpSource, Dns, Health, Http, Icmp, Mtr, MtrHop, Registry};
use netprobe_wire::{decode, Body, ErrorClass, Message, ProbeError, ProbeType, Timestamp, Ttl};

fn ts(s: &str) -> Timestamp {
    serde_json::from_value(serde_json::Value::String(s.into())).expect("valid timestamp")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("valid ip")
}

fn message(body: Body) -> Message {
    Message::new("pop-fra-01".into(), "Frankfurt, DE", ts("2026-11-23T17:31:49.123456789Z"), body)
}

/// One realistic message per kind.
fn fixtures() -> Vec<Message> {
    vec![
        message(Body::Icmp(Icmp {
            target: "192.0.2.10".into(),
            resolved_ip: Some(ip("192.0.2.10")),
            sent: 5,
            received: 4,
            loss_pct: 20.0,
            rtt_min_ms: Some(11.204),
            rtt_avg_ms: Some(11.532),
            rtt_median_ms: Some(11.49),
            rtt_max_ms: Some(11.947),
            rtt_stddev_ms: Some(0.271),
            jitter_ms: Some(0.314),
            error: None,
        })),
        message(Body::Dns(Dns {
            resolver: "192.0.2.53:53".into(),
            query_name: "example.com".into(),
            record_type: "A".into(),
            rcode: Some("NOERROR".into()),
            latency_ms: Some(2.75),
            answers: vec!["192.0.2.80".into(), "192.0.2.81".into()],
            answer_count: 2,
            error: None,
        })),
        message(Body::Http(Http {
            url: "https://example.com/".into(),
            method: "GET".into(),
            status_code: Some(200),
            success: true,
            dns_ms: Some(1.5),
            connect_ms: Some(10.25),
            tls_ms: Some(21.0),
            ttfb_ms: Some(35.125),
            total_ms: Some(70.5),
            response_bytes: Some(1256),
            http_version: Some("HTTP/2".into()),
            tls_version: Some("TLSv1.3".into()),
            cert_not_after: Some(ts("2027-01-15T23:59:59Z")),
            redirects: 1,
            error: None,
        })),
        message(Body::Mtr(Mtr {
            target: "192.0.2.10".into(),
            destination_reached: true,
            hop_count: 2,
            path_hash: "5f1c0a9e7d3b2a14".into(),
            hops: vec![
                MtrHop {
                    ttl: Ttl(1),
                    ip: None,
                    other_ips: Vec::new(),
                    hostname: None,
                    asn: None,
                    sent: 10,
                    received: 0,
                    loss_pct: 100.0,
                    rtt_last_ms: None,
                    rtt_avg_ms: None,
                    rtt_best_ms: None,
                    rtt_worst_ms: None,
                    rtt_stddev_ms: None,
                },
                MtrHop {
                    ttl: Ttl(2),
                    ip: Some(ip("192.0.2.10")),
                    other_ips: Vec::new(),
                    hostname: Some("target.example.net".into()),
                    asn: Some(64500),
                    sent: 10,
                    received: 10,
                    loss_pct: 0.0,
                    rtt_last_ms: Some(11.5),
                    rtt_avg_ms: Some(11.6),
                    rtt_best_ms: Some(11.2),
                    rtt_worst_ms: Some(12.25),
                    rtt_stddev_ms: Some(0.3),
                },
            ],
            error: None,
        })),
        message(Body::Bgp(Bgp {
            event: BgpEvent::OriginChange,
            prefix: "192.0.2.0/24".parse().expect("prefix"),
            origin_asn: Some(64666),
            expected_origins: vec![64500],
            as_path: vec![3333, 1299, 64666],
            peer_ip: ip("2001:db8::1"),
            peer_asn: 3333,
            collector: "rrc00".into(),
            next_hop: Some(ip("2001:db8::1")),
            communities: vec!["3333:100".into(), "64666:1:2".into()],
            source: BgpSource::RisLive,
            watched_prefix: None,
            origin_expected: None,
            peers_visible: None,
            rpki_reason: None,
        })),
        message(Body::Registry(Registry {
            ip: Some(ip("198.51.100.7")),
            hostname: "pop-fra-01.netprobe.example".into(),
            available_metrics: vec![ProbeType::Icmp, ProbeType::Dns, ProbeType::Http],
            version: "0.1.0".into(),
            uptime_s: 3600,
            started_at: ts("2026-11-23T16:31:49.5Z"),
            os: "Linux 6.1.0 (Debian 12)".into(),
            instance: Some("icmp".into()),
        })),
        message(Body::Health(Health {
            last_successful_run: Some(ts("2026-11-23T17:31:40Z")),
            uptime_s: 3600,
            failures_last_hour: 3,
            runs_last_hour: 720,
            spool_messages: 0,
            spool_dropped_messages: 0,
            kafka_connected: true,
            feeds: Vec::new(),
            instance: Some("icmp".into()),
        })),
    ]
}

fn golden_path(t: ProbeType) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{t}.json"))
}

#[test]
fn every_kind_matches_its_golden_json_both_ways() {
    let bless = std::env::var_os("NETPROBE_BLESS").is_some();
    let fixtures = fixtures();
    assert_eq!(fixtures.len(), ProbeType::ALL.len(), "one fixture per kind");
    for msg in fixtures {
        let path = golden_path(msg.probe_type());
        let value = serde_json::to_value(&msg).expect("serializes");
        let written = serde_json::to_string_pretty(&value).expect("pretty") + "\n";
        if bless {
            std::fs::write(&path, &written).expect("write golden");
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(written, golden, "{} differs from what {} messages serialize to", path.display(), msg.probe_type());
        assert_eq!(decode(golden.as_bytes()).expect("golden decodes"), msg);
        assert_eq!(decode(&msg.encode().expect("encodes")).expect("decodes"), msg);
    }
}

#[test]
fn kafka_keys_are_probe_id_slash_target_written_by_hand() {
    let want = [
        (ProbeType::Icmp, "pop-fra-01/192.0.2.10"),
        (ProbeType::Dns, "pop-fra-01/192.0.2.53:53/example.com/A"),
        (ProbeType::Http, "pop-fra-01/https://example.com/"),
        (ProbeType::Mtr, "pop-fra-01/192.0.2.10"),
        (ProbeType::Bgp, "pop-fra-01/192.0.2.0/24"),
        (ProbeType::Registry, "pop-fra-01/icmp"),
        (ProbeType::Health, "pop-fra-01/icmp"),
    ];
    // One key buffer and one payload buffer for every message, as the
    // agent's publisher reuses them: leftovers of a longer message never leak.
    let mut key = String::from("left over from an earlier, much longer key");
    let mut payload = b"{\"left over\": \"from an earlier, much longer payload\"}".repeat(20);
    for msg in fixtures() {
        let kind = msg.probe_type();
        let expected = want.iter().find(|(k, _)| *k == kind).map(|(_, key)| *key).expect("a key per kind");
        assert_eq!(msg.key(), expected, "{kind}");
        msg.key_into(&mut key);
        assert_eq!(key, expected, "{kind}: key_into a used buffer");
        msg.encode_into(&mut payload).expect("encodes");
        assert_eq!(payload, msg.encode().expect("encodes"), "{kind}: encode_into a used buffer");
    }
}

#[test]
fn failed_probe_is_still_a_message_with_an_error_class() {
    let msg = message(Body::Icmp(Icmp {
        target: "unresolvable.invalid".into(),
        resolved_ip: None,
        sent: 0,
        received: 0,
        loss_pct: 100.0,
        rtt_min_ms: None,
        rtt_avg_ms: None,
        rtt_median_ms: None,
        rtt_max_ms: None,
        rtt_stddev_ms: None,
        jitter_ms: None,
        error: Some(ProbeError { class: ErrorClass::DnsFailure, message: "NXDOMAIN".into() }),
    }));
    let json: serde_json::Value = serde_json::from_slice(&msg.encode().expect("encodes")).expect("json");
    assert_eq!(json["error"], serde_json::json!({"class": "dns_failure", "message": "NXDOMAIN"}));
    assert_eq!(json["rtt_avg_ms"], serde_json::Value::Null);
    assert_eq!(json["probe_type"], "icmp");
}

#[test]
fn keys_keep_one_target_on_one_partition() {
    let keys: Vec<String> = fixtures().iter().map(Message::key).collect();
    assert_eq!(
        keys,
        [
            "pop-fra-01/192.0.2.10",
            "pop-fra-01/192.0.2.53:53/example.com/A",
            "pop-fra-01/https://example.com/",
            "pop-fra-01/192.0.2.10",
            "pop-fra-01/192.0.2.0/24",
            "pop-fra-01/icmp",
            "pop-fra-01/icmp",
        ]
    );
}

#[test]
fn non_finite_floats_are_refused_not_written_as_null() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut msg = fixtures().remove(0);
        if let Body::Icmp(icmp) = &mut msg.body {
            icmp.loss_pct = bad;
        }
        let err = msg.encode().expect_err("must refuse");
        assert!(err.to_string().contains("NaN or infinite"), "{err}");
    }
}
