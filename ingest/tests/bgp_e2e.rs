//! End to end with the local stack (issue 11): an agent with a `[[bgp]]`
//! table fed an MRT file publishes `bgp.updates`; ingest stores the `bgp`
//! points; Flux reads them back. Needs `eval "$(scripts/stack env)"`
//! (scripts/test does it); fails without it.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use bgpkit_parser::encoder::MrtUpdatesEncoder;
use bgpkit_parser::models::{AsPath, Asn, BgpElem, ElemType, NetworkPrefix, Origin};
use common::stack::*;
use netprobe_agent::config::{AgentSettings, Config};
use netprobe_agent::probe::bgp::{Source, Table};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(120);

fn announce(t: f64, peer: u8, prefix: &str, path: &[u32]) -> BgpElem {
    let peer_ip = IpAddr::from([10, 0, 0, peer]);
    BgpElem {
        timestamp: t,
        elem_type: ElemType::ANNOUNCE,
        peer_ip,
        peer_asn: Asn::new_32bit(65000 + u32::from(peer)),
        prefix: NetworkPrefix::new(prefix.parse().expect("prefix"), None),
        next_hop: Some(peer_ip),
        as_path: Some(AsPath::from_sequence(path)),
        origin: Some(Origin::IGP),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fed_an_mrt_file_lands_bgp_points_in_influxdb() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info").try_init();
    let probe_id = unique("bgp-e2e");
    let group = fresh_group("bgp");
    let ingest_cancel = CancellationToken::new();
    let ingest = {
        let config = ingest_config(group);
        let c = ingest_cancel.clone();
        tokio::spawn(async move { netprobe_ingest::run(config, c, || {}, Box::new(|| {})).await.expect("ingest runs") })
    };

    // Three updates a minute ago: the owner, a hijack, a more-specific.
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() - 60) as f64;
    let mut enc = MrtUpdatesEncoder::new();
    enc.process_elem(&announce(t0, 1, "192.0.2.0/24", &[65001, 3356, 64500]));
    enc.process_elem(&announce(t0 + 1.0, 2, "192.0.2.0/24", &[65002, 64666]));
    enc.process_elem(&announce(t0 + 2.0, 3, "192.0.2.128/25", &[65003, 174, 64500]));
    let file = dir.path().join("updates.mrt");
    std::fs::write(&file, enc.export_bytes().expect("encodes")).expect("write MRT");

    let config = Config {
        agent: AgentSettings {
            probe_id: probe_id.clone(),
            location: "Loopback, LO".into(),
            spool_dir: Some(dir.path().join("spool")),
            spool_max_bytes: 1 << 20,
            metrics_listen: None,
            heartbeat_interval: Duration::from_secs(600),
            registry_interval: Duration::from_secs(600),
            asn_table: None,
        },
        kafka: kafka("AGENT"),
        icmp: Vec::new(),
        dns: Vec::new(),
        http: Vec::new(),
        mtr: Vec::new(),
        bgp: vec![Table {
            prefixes: vec!["192.0.2.0/24".parse().expect("prefix")],
            expected_origins: vec![64500],
            source: Source::Mrt { location: file.display().to_string(), poll_interval: Duration::from_secs(300) },
            flap_threshold: 10,
            flap_window: Duration::from_secs(600),
            visibility_min_peers: 3,
            vrp_file: None,
            allowed_upstreams: Vec::new(),
            vrps: None,
        }],
    };
    let agent_cancel = CancellationToken::new();
    let (_reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let agent = tokio::spawn(netprobe_agent::run(config, Vec::new(), reloads, agent_cancel.clone(), || {}, || {}));

    let query = format!(
        r#"from(bucket: "{}") |> range(start: 0) |> filter(fn: (r) => r.probe_id == {} and r._measurement == "bgp" and r._field == "origin_asn")"#,
        env("NETPROBE_INFLUX_BUCKET"),
        flux_string(&probe_id)
    );
    let rows = poll("three bgp points", DEADLINE, || async {
        let rows = flux(&query).await;
        (rows.len() >= 3).then_some(rows)
    })
    .await;
    let mut got: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| (r["_time"].clone(), r["event"].clone(), r["prefix"].clone(), r["_value"].clone()))
        .collect();
    got.sort();
    let time = |s: u64| {
        let t = netprobe_wire::Timestamp::from_unix_nanos((t0 as i64 + s as i64) * 1_000_000_000);
        t.to_string().replace(".000000000Z", "Z")
    };
    assert_eq!(
        got,
        [
            (time(0), "announce".into(), "192.0.2.0/24".into(), "64500".into()),
            (time(1), "origin_change".into(), "192.0.2.0/24".into(), "64666".into()),
            (time(2), "more_specific".into(), "192.0.2.128/25".into(), "64500".into()),
        ]
    );
    let extra = flux(&format!(
        r#"from(bucket: "{}") |> range(start: 0) |> filter(fn: (r) => r.probe_id == {} and r._measurement == "bgp" and (r._field == "origin_expected" or r._field == "as_path" or r._field == "source"))"#,
        env("NETPROBE_INFLUX_BUCKET"),
        flux_string(&probe_id)
    ))
    .await;
    let mut fields: Vec<(String, String, String)> =
        extra.iter().map(|r| (r["event"].clone(), r["_field"].clone(), r["_value"].clone())).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            ("announce".into(), "as_path".into(), "65001 3356 64500".into()),
            ("announce".into(), "source".into(), "mrt".into()),
            ("more_specific".into(), "as_path".into(), "65003 174 64500".into()),
            ("more_specific".into(), "origin_expected".into(), "true".into()),
            ("more_specific".into(), "source".into(), "mrt".into()),
            ("origin_change".into(), "as_path".into(), "65002 64666".into()),
            ("origin_change".into(), "source".into(), "mrt".into()),
        ]
    );
    agent_cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), agent).await;
    ingest_cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), ingest).await;
}
