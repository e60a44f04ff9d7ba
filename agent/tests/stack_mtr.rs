//! Against the real local Kafka: an agent with one `[[mtr]]` table (the
//! loopback, one hop) publishes `mtr.metrics` messages with the `agent`
//! principal, read back and decoded as wire `Mtr`. Needs
//! `eval "$(scripts/stack env)"` (scripts/test does it); fails without it.
//! (Ingest's writing of `mtr_path`/`mtr_hop` from such a message is
//! tested in `ingest/tests/points.rs`; an agent -> ingest -> InfluxDB
//! chain test for MTR is an open item.)

mod common;

use std::time::{Duration, Instant};

use common::config::{agent_settings, kafka, reader_at_end};
use netprobe_agent::config::Config;
use netprobe_agent::probe::mtr;
use netprobe_wire::{decode, Body, Topic};
use rdkafka::Message as _;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_publishes_mtr_results_to_kafka() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let probe_id = format!("mtr-test-{}-{nanos}", std::process::id());
    let prefix = kafka("AGENT").topic_prefix;
    let topic = Topic::Mtr.name(&prefix);
    let reader = reader_at_end(std::slice::from_ref(&topic), &format!("netprobe-test-{probe_id}"));
    let spool = tempfile::tempdir().expect("spool dir");
    let asn = env!("CARGO_MANIFEST_DIR").to_owned() + "/tests/resources/asn-example.txt";
    let table = std::sync::Arc::new(mtr::AsnTable::load(std::path::Path::new(&asn)).expect("asn table"));
    let target = mtr::Target {
        target: "127.0.0.1".into(),
        interval: Duration::from_secs(2),
        count: 2,
        max_ttl: 5,
        first_ttl: 1,
        protocol: mtr::Protocol::Icmp,
        port: None,
        round_interval: Duration::from_millis(50),
        timeout: Duration::from_millis(200),
        asn_table: Some(table),
    };
    let config = Config {
        agent: agent_settings(&probe_id, spool.path(), Duration::from_secs(600)),
        kafka: kafka("AGENT"),
        icmp: Vec::new(),
        dns: Vec::new(),
        http: Vec::new(),
        mtr: vec![target],
        bgp: Vec::new(),
    };
    let cancel = CancellationToken::new();
    let (_reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let agent = tokio::spawn(netprobe_agent::run(config, Vec::new(), reloads, cancel.clone(), || {}, || {}));

    let got = tokio::task::block_in_place(|| {
        let start = Instant::now();
        let mut got = Vec::new();
        while got.len() < 2 {
            assert!(start.elapsed() < Duration::from_secs(40), "timed out; got {got:?}");
            let Some(m) = reader.poll(Duration::from_millis(200)) else { continue };
            let m = m.expect("read");
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            if !key.starts_with(&format!("{probe_id}/")) {
                continue;
            }
            let msg = decode(m.payload().expect("payload")).expect("valid wire message");
            assert_eq!(m.topic(), topic);
            let Body::Mtr(body) = msg.body else { panic!("mtr body: {msg:?}") };
            got.push(body);
        }
        got
    });
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), agent).await;

    for m in &got {
        assert!(m.destination_reached && m.error.is_none(), "{m:?}");
        assert_eq!(m.hop_count, 1, "{m:?}");
        let hop = &m.hops[0];
        assert_eq!((hop.ip, hop.sent, hop.received, hop.asn), (Some("127.0.0.1".parse().expect("ip")), 2, 2, None));
    }
    assert_eq!(got[0].path_hash, got[1].path_hash);
}
