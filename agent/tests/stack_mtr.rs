//! Against the real local Kafka: an agent with one `[[mtr]]` table (the
//! loopback, one hop) publishes `mtr.metrics` messages with the `agent`
//! principal, read back and decoded as wire `Mtr`. Needs
//! `eval "$(scripts/stack env)"` (scripts/test does it); fails without it.
//! The second test follows such a message on through an in-process ingest
//! into InfluxDB (`mtr_path` and `mtr_hop` points, read back with Flux).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::config::{agent_settings, kafka, reader_at_end};
use netprobe_agent::config::Config;
use netprobe_agent::probe::mtr;
use netprobe_wire::{decode, Body, Timestamp, Topic};
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
        resolve_hostnames: false,
        hostname_resolver: None,
    };
    let (cancel, agent) = start_agent(&probe_id, spool.path(), target);

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

/// Helpers of ingest's stack tests (in-process ingest config, Flux).
#[path = "../../ingest/tests/common/stack.rs"]
mod ingest_stack;

/// Agent -> Kafka -> ingest -> InfluxDB: an agent with one `[[mtr]]` table
/// traces a two-hop path of namespaces and publishes to `mtr.metrics`; an
/// in-process ingest (its own consumer group) writes one `mtr_path` point
/// and one `mtr_hop` point per hop, read back with Flux. Expected values:
/// the topology (hop addresses, hop count), the ASN table written here,
/// and the published message (exact RTTs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtr_results_land_in_influxdb_as_path_and_hop_points() {
    let net = common::netns::TwoHops::new("mte", 231, 232);
    let probe_id = ingest_stack::unique("mtr-e2e");
    let topic = Topic::Mtr.name(&kafka("AGENT").topic_prefix);
    let reader = reader_at_end(std::slice::from_ref(&topic), &format!("netprobe-test-{probe_id}"));
    let group = ingest_stack::fresh_group("mtr-e2e");
    let ingest_cancel = CancellationToken::new();
    let ingest = {
        let (config, c) = (ingest_stack::ingest_config(group), ingest_cancel.clone());
        tokio::spawn(async move { netprobe_ingest::run(config, c, || {}, Box::new(|| {})).await.expect("ingest runs") })
    };

    let dir = tempfile::tempdir().expect("dir");
    // r1's host-facing address is in 10.231.0.0/16, r2 in a /24 of
    // 10.232.0.0/16 with a more specific entry.
    let b = (std::process::id() % 250) as u8;
    let asn_path = dir.path().join("asn.txt");
    std::fs::write(&asn_path, format!("10.231.0.0\t16\t64531\n10.232.0.0\t16\t64500\n10.232.{b}.0\t24\t64532\n"))
        .expect("asn table");
    let target = mtr::Target {
        target: net.target.to_string(),
        interval: Duration::from_secs(3),
        count: 3,
        max_ttl: 8,
        first_ttl: 1,
        protocol: mtr::Protocol::Icmp,
        port: None,
        round_interval: Duration::from_millis(50),
        timeout: Duration::from_millis(300),
        asn_table: Some(std::sync::Arc::new(mtr::AsnTable::load(&asn_path).expect("asn table"))),
        resolve_hostnames: false,
        hostname_resolver: None,
    };
    let (cancel, agent) = start_agent(&probe_id, dir.path(), target);

    // The first published run, as the agent sent it.
    let msg = tokio::task::block_in_place(|| {
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < Duration::from_secs(60), "no mtr message for {probe_id}");
            let Some(m) = reader.poll(Duration::from_millis(200)) else { continue };
            let m = m.expect("read");
            if m.key().is_some_and(|k| k.starts_with(format!("{probe_id}/").as_bytes())) {
                break decode(m.payload().expect("payload")).expect("valid wire message");
            }
        }
    });
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), agent).await;
    let Body::Mtr(sent) = &msg.body else { panic!("mtr body: {msg:?}") };
    let r1: std::net::IpAddr = net.r1.peer_ip.into();
    let hops: Vec<Option<std::net::IpAddr>> = sent.hops.iter().map(|h| h.ip).collect();
    assert_eq!(hops, vec![Some(r1), Some(net.target.into())], "{sent:?}");

    // Every field of this run's points, as Flux returns them.
    let query = format!(
        r#"from(bucket: "{}") |> range(start: 0) |> filter(fn: (r) => r.probe_id == {} and r._time == time(v: "{}"))"#,
        ingest_stack::env("NETPROBE_INFLUX_BUCKET"),
        ingest_stack::flux_string(&probe_id),
        msg.timestamp
    );
    type Fields = BTreeMap<(String, String, String), String>;
    let rows: Fields = ingest_stack::poll("mtr points in InfluxDB", Duration::from_secs(90), || async {
        let rows = ingest_stack::flux(&query).await;
        let got: Fields = rows
            .iter()
            .map(|r| {
                let ttl = r.get("ttl").cloned().unwrap_or_default();
                ((r["_measurement"].clone(), ttl, r["_field"].clone()), r["_value"].clone())
            })
            .collect();
        // mtr_path: 3 fields; each hop: sent, received, loss_pct,
        // other_ip_count, ip, asn and 5 RTTs = 11.
        (got.len() >= 3 + 2 * 11).then_some(got)
    })
    .await;
    ingest_cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), ingest).await;

    let f = |m: &str, ttl: &str, field: &str| rows.get(&(m.to_owned(), ttl.to_owned(), field.to_owned())).cloned();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(f("mtr_path", "", "destination_reached"), s("true"), "{rows:#?}");
    assert_eq!(f("mtr_path", "", "hop_count"), s("2"));
    assert_eq!(f("mtr_path", "", "path_hash"), Some(sent.path_hash.clone()));
    let ttls: std::collections::BTreeSet<&str> =
        rows.keys().filter(|(m, _, _)| m == "mtr_hop").map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(ttls.into_iter().collect::<Vec<_>>(), ["1", "2"], "one mtr_hop point per hop");
    for (ttl, ip, asn) in [("1", r1.to_string(), "64531"), ("2", net.target.to_string(), "64532")] {
        assert_eq!(f("mtr_hop", ttl, "ip"), Some(ip), "ttl {ttl}");
        assert_eq!(f("mtr_hop", ttl, "asn"), s(asn), "ttl {ttl}");
        assert_eq!(f("mtr_hop", ttl, "sent"), s("3"), "ttl {ttl}");
        assert_eq!(f("mtr_hop", ttl, "received"), s("3"), "ttl {ttl}");
        assert_eq!(f("mtr_hop", ttl, "loss_pct"), s("0"), "ttl {ttl}");
        assert_eq!(f("mtr_hop", ttl, "other_ip_count"), s("0"), "ttl {ttl}");
        let hop = &sent.hops[ttl.parse::<usize>().expect("ttl") - 1];
        let avg: f64 = f("mtr_hop", ttl, "rtt_avg_ms").expect("rtt_avg_ms").parse().expect("float");
        assert_eq!(Some(avg), hop.rtt_avg_ms, "ttl {ttl}: stored as published");
        assert!(avg > 0.0 && avg < 50.0, "ttl {ttl}: {avg} ms on a veth path");
    }
}

/// `[agent] asn_table` is re-read on SIGHUP: the binary traces 127.0.0.1
/// every second with a table mapping 127.0.0.0/8 to AS64601; the file
/// gains a more specific 127.0.0.1/32 -> AS64602, SIGHUP, and every run
/// that starts after the reload carries AS64602.
#[test]
fn sighup_rereads_the_asn_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, log, table) =
        (dir.path().join("agent.toml"), dir.path().join("agent.log"), dir.path().join("asn.txt"));
    let probe_id = format!("mtr-sighup-{}-{}", std::process::id(), Timestamp::now().unix_seconds());
    let topic = Topic::Mtr.name(&kafka("AGENT").topic_prefix);
    let reader = reader_at_end(std::slice::from_ref(&topic), &format!("netprobe-test-{probe_id}"));
    std::fs::write(&table, "127.0.0.0\t8\t64601\n").expect("table");
    std::fs::write(
        &config,
        format!(
            "[agent]\nprobe_id = {probe_id:?}\nlocation = \"l\"\nspool_dir = {:?}\nasn_table = {table:?}\n\n{}\n\
             [[mtr]]\ntarget = \"127.0.0.1\"\ninterval = \"1s\"\ncount = 1\nmax_ttl = 4\nround_interval = \"50ms\"\ntimeout = \"200ms\"\n",
            dir.path().join("spool"),
            common::config::kafka_table(),
        ),
    )
    .expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_netprobe-agent"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("agent starts");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // (run start in ns, ASN of the one hop) of our next message.
    let next = |deadline: Instant| -> (i64, Option<u32>) {
        loop {
            assert!(Instant::now() < deadline, "no mtr message in time; log:\n{}", read_log());
            let Some(m) = reader.poll(Duration::from_millis(200)) else { continue };
            let m = m.expect("read");
            if !m.key().is_some_and(|k| k.starts_with(format!("{probe_id}/").as_bytes())) {
                continue;
            }
            let msg = decode(m.payload().expect("payload")).expect("valid wire message");
            let Body::Mtr(body) = &msg.body else { panic!("mtr body: {msg:?}") };
            assert_eq!(body.hops.len(), 1, "{body:?}");
            return (msg.timestamp.unix_nanos().expect("ns"), body.hops[0].asn);
        }
    };
    let (_, asn) = next(Instant::now() + Duration::from_secs(40));
    assert_eq!(asn, Some(64601));

    std::fs::write(&table, "127.0.0.0\t8\t64601\n127.0.0.1\t32\t64602\n").expect("new table");
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    let start = Instant::now();
    while !read_log().contains("config reloaded") {
        assert!(start.elapsed() < Duration::from_secs(30), "no reload in the log:\n{}", read_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let reloaded = Timestamp::now().unix_nanos().expect("ns");
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut after = Vec::new();
    while after.len() < 2 {
        let (at, asn) = next(deadline);
        if at > reloaded {
            after.push(asn);
        }
    }
    assert_eq!(after, vec![Some(64602), Some(64602)], "runs started after the reload; log:\n{}", read_log());

    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", read_log());
}

/// Starts an in-process agent (`agent` principal, spool in `spool`) whose
/// only probe is `target`; cancel the token to stop it.
fn start_agent(
    probe_id: &str,
    spool: &std::path::Path,
    target: mtr::Target,
) -> (CancellationToken, tokio::task::JoinHandle<Result<(), netprobe_agent::Error>>) {
    let config = Config {
        agent: agent_settings(probe_id, spool, Duration::from_secs(600)),
        kafka: kafka("AGENT"),
        icmp: Vec::new(),
        dns: Vec::new(),
        http: Vec::new(),
        mtr: vec![target],
        bgp: Vec::new(),
    };
    let cancel = CancellationToken::new();
    let (reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let run = netprobe_agent::run(config, Vec::new(), reloads, cancel.clone(), || {}, || {});
    // The reload sender lives as long as the agent, as in main.rs.
    let agent = tokio::spawn(async move {
        let _reload_tx = reload_tx;
        run.await
    });
    (cancel, agent)
}
