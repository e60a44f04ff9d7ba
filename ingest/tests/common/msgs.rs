//! Wire messages for tests: the golden set under a given probe_id, and a
//! stream of ICMP results with distinct timestamps.

#![allow(dead_code)]

use netprobe_wire::msg::Icmp;
use netprobe_wire::{decode, Body, Message, ProbeId, ProbeType, Timestamp};

/// The seven golden messages of `wire/tests/golden`, as agent `probe_id`.
pub fn golden_set(probe_id: &str) -> Vec<Message> {
    ProbeType::ALL
        .iter()
        .map(|kind| {
            let path = format!("{}/../wire/tests/golden/{kind}.json", env!("CARGO_MANIFEST_DIR"));
            let mut m = decode(&std::fs::read(&path).expect("golden file")).expect("golden decodes");
            m.probe_id = ProbeId(probe_id.to_owned());
            m
        })
        .collect()
}

/// ICMP result number `seq` of a stream: timestamps 1 ms apart from a fixed
/// base so each is its own point.
pub fn icmp_seq(probe_id: &str, target: &str, seq: u64) -> Message {
    let ts = 1_795_000_000_000_000_000 + seq as i64 * 1_000_000;
    Message::new(
        ProbeId(probe_id.to_owned()),
        "Loopback, LO",
        Timestamp::from_unix_nanos(ts),
        Body::Icmp(Icmp {
            target: target.to_owned(),
            resolved_ip: Some("127.0.0.1".parse().expect("ip")),
            sent: 5,
            received: 5,
            loss_pct: 0.0,
            rtt_min_ms: Some(0.02),
            rtt_avg_ms: Some(0.03 + seq as f64 * 1e-6),
            rtt_median_ms: Some(0.03),
            rtt_max_ms: Some(0.05),
            rtt_stddev_ms: Some(0.01),
            jitter_ms: Some(0.005),
            error: None,
        }),
    )
}
