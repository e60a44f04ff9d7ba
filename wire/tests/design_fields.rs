//! Messages written to DESIGN.md's field lists alone ("Topics and messages")
//! decode: a field added within schema 1 is optional with a documented
//! default, so agents of different versions publish side by side during a
//! rolling upgrade. The JSON below is written by hand from DESIGN.md, not
//! from the types; the expected values are what DESIGN.md says the defaults
//! are (`spool_dropped_messages` 0, no instance, no mtr error).

use netprobe_wire::msg::{BgpEvent, BgpSource};
use netprobe_wire::schema::message_schema;
use netprobe_wire::{decode, Body, ProbeType};
use serde_json::Value;

/// DESIGN.md's envelope fields.
const ENVELOPE: [&str; 5] = ["schema", "probe_id", "probe_type", "location", "timestamp"];

/// DESIGN.md's field list per kind (mtr's `hops` items separately).
fn design_fields(kind: ProbeType) -> &'static [&'static str] {
    match kind {
        ProbeType::Icmp => &[
            "target",
            "resolved_ip",
            "sent",
            "received",
            "loss_pct",
            "rtt_min_ms",
            "rtt_avg_ms",
            "rtt_median_ms",
            "rtt_max_ms",
            "rtt_stddev_ms",
            "jitter_ms",
            "error",
        ],
        ProbeType::Dns => {
            &["resolver", "query_name", "record_type", "rcode", "latency_ms", "answers", "answer_count", "error"]
        }
        ProbeType::Http => &[
            "url",
            "method",
            "status_code",
            "success",
            "dns_ms",
            "connect_ms",
            "tls_ms",
            "ttfb_ms",
            "total_ms",
            "response_bytes",
            "http_version",
            "tls_version",
            "cert_not_after",
            "redirects",
            "error",
        ],
        ProbeType::Mtr => &["target", "destination_reached", "hop_count", "path_hash", "hops"],
        ProbeType::Bgp => &[
            "event",
            "prefix",
            "origin_asn",
            "expected_origins",
            "as_path",
            "peer_ip",
            "peer_asn",
            "collector",
            "next_hop",
            "communities",
            "source",
        ],
        ProbeType::Registry => &["ip", "hostname", "available_metrics", "version", "uptime_s", "started_at", "os"],
        ProbeType::Health => &[
            "last_successful_run",
            "uptime_s",
            "failures_last_hour",
            "runs_last_hour",
            "spool_messages",
            "kafka_connected",
        ],
    }
}

const MTR_HOP_FIELDS: [&str; 12] = [
    "ttl",
    "ip",
    "hostname",
    "asn",
    "sent",
    "received",
    "loss_pct",
    "rtt_last_ms",
    "rtt_avg_ms",
    "rtt_best_ms",
    "rtt_worst_ms",
    "rtt_stddev_ms",
];

const HEAD: &str =
    r#""schema": 1, "probe_id": "pop-fra-01", "location": "Frankfurt, DE", "timestamp": "2026-11-23T17:31:49.123Z""#;

/// One message per kind with exactly DESIGN.md's fields, by hand.
fn hand_written(kind: ProbeType) -> String {
    let body = match kind {
        ProbeType::Icmp => {
            r#""probe_type": "icmp", "target": "192.0.2.10", "resolved_ip": "192.0.2.10", "sent": 5, "received": 5,
            "loss_pct": 0.0, "rtt_min_ms": 1.0, "rtt_avg_ms": 1.5, "rtt_median_ms": 1.5, "rtt_max_ms": 2.0,
            "rtt_stddev_ms": 0.25, "jitter_ms": 0.5, "error": null"#
        }
        ProbeType::Dns => {
            r#""probe_type": "dns", "resolver": "192.0.2.53:53", "query_name": "example.com", "record_type": "TXT",
            "rcode": "NOERROR", "latency_ms": 2.5, "answers": ["\"v=spf1 a,b\""], "answer_count": 1, "error": null"#
        }
        ProbeType::Http => {
            r#""probe_type": "http", "url": "https://example.com/", "method": "GET", "status_code": 200,
            "success": true, "dns_ms": 1.0, "connect_ms": 2.0, "tls_ms": 3.0, "ttfb_ms": 4.0, "total_ms": 10.0,
            "response_bytes": 1256, "http_version": "HTTP/2", "tls_version": "TLSv1.3",
            "cert_not_after": "2027-01-15T23:59:59Z", "redirects": 0, "error": null"#
        }
        ProbeType::Mtr => {
            r#""probe_type": "mtr", "target": "192.0.2.10", "destination_reached": true, "hop_count": 1,
            "path_hash": "5f1c0a9e7d3b2a14", "hops": [{"ttl": 1, "ip": "192.0.2.10", "hostname": null,
            "asn": 64500, "sent": 10, "received": 10, "loss_pct": 0.0, "rtt_last_ms": 1.0, "rtt_avg_ms": 1.0,
            "rtt_best_ms": 1.0, "rtt_worst_ms": 1.0, "rtt_stddev_ms": 0.0}]"#
        }
        ProbeType::Bgp => {
            r#""probe_type": "bgp", "event": "announce", "prefix": "192.0.2.0/24", "origin_asn": 64500,
            "expected_origins": [64500], "as_path": [3333, 64500], "peer_ip": "2001:db8::1", "peer_asn": 3333,
            "collector": "rrc00", "next_hop": "2001:db8::1", "communities": ["3333:100"], "source": "ris-live""#
        }
        ProbeType::Registry => {
            r#""probe_type": "registry", "ip": "198.51.100.7", "hostname": "pop-fra-01", "available_metrics":
            ["icmp", "dns"], "version": "0.1.0", "uptime_s": 60, "started_at": "2026-11-23T17:30:49Z",
            "os": "Linux 6.1.0""#
        }
        ProbeType::Health => {
            r#""probe_type": "health", "last_successful_run": "2026-11-23T17:31:40Z", "uptime_s": 60,
            "failures_last_hour": 0, "runs_last_hour": 12, "spool_messages": 0, "kafka_connected": true"#
        }
    };
    format!("{{{HEAD}, {body}}}")
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

#[test]
fn the_hand_written_messages_hold_exactly_designs_fields() {
    for kind in ProbeType::ALL {
        let v: Value = serde_json::from_str(&hand_written(kind)).expect("hand-written JSON parses");
        let mut got = keys(&v);
        let mut want: Vec<String> = ENVELOPE.iter().chain(design_fields(kind)).map(|s| s.to_string()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{kind}");
        if kind == ProbeType::Mtr {
            let mut got = keys(&v["hops"][0]);
            let mut want: Vec<String> = MTR_HOP_FIELDS.iter().map(|s| s.to_string()).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "mtr hop");
        }
    }
}

#[test]
fn a_message_with_designs_fields_alone_decodes_with_the_documented_defaults() {
    for kind in ProbeType::ALL {
        let json = hand_written(kind);
        let msg = decode(json.as_bytes()).unwrap_or_else(|e| panic!("{kind} written to DESIGN.md: {e}"));
        assert_eq!(msg.probe_type(), kind);
        assert_eq!(msg.probe_id.as_str(), "pop-fra-01");
        match &msg.body {
            Body::Health(h) => {
                assert_eq!(h.spool_dropped_messages, 0, "documented default");
                assert_eq!(h.instance, None);
                assert_eq!(msg.key(), "pop-fra-01", "no instance: key = probe_id");
            }
            Body::Registry(r) => {
                assert_eq!(r.instance, None);
                assert_eq!(msg.key(), "pop-fra-01");
            }
            Body::Mtr(m) => {
                assert_eq!(m.error, None);
                assert!(m.hops[0].other_ips.is_empty(), "documented default: no other responders");
            }
            Body::Dns(d) => assert_eq!(d.answers, ["\"v=spf1 a,b\""]),
            Body::Bgp(b) => assert_eq!((b.event, b.source), (BgpEvent::Announce, BgpSource::RisLive)),
            Body::Icmp(_) | Body::Http(_) => {}
        }
    }
}

/// The generated schemas (what `docs/schema` publishes) require no field
/// beyond DESIGN.md's lists: a field added later without a default fails here.
#[test]
fn no_field_beyond_designs_lists_is_required() {
    fn required(v: &Value) -> Vec<String> {
        v.get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    }
    for kind in ProbeType::ALL {
        let schema = message_schema(kind);
        let defs = schema["$defs"].as_object().expect("$defs");
        let mut req = required(&schema);
        req.extend(required(&schema["allOf"][0]));
        let name = schema["allOf"][0]["$ref"].as_str().and_then(|r| r.strip_prefix("#/$defs/")).expect("$ref");
        req.extend(required(&defs[name]));
        for field in req {
            assert!(
                ENVELOPE.contains(&field.as_str()) || design_fields(kind).contains(&field.as_str()),
                "{kind}: `{field}` is required but not in DESIGN.md's list: give it a default"
            );
        }
        if let Some(hop) = defs.get("MtrHop") {
            for field in required(hop) {
                assert!(MTR_HOP_FIELDS.contains(&field.as_str()), "mtr hop: `{field}` required beyond DESIGN.md");
            }
        }
    }
}
