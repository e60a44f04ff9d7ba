//! Against the real local Kafka: the agent probes real local targets
//! (loopback ICMP, an in-process DNS server, an in-process HTTP server),
//! publishes every result plus its registry record and heartbeats with the
//! `agent` principal, and a reader decodes them back as wire messages. A
//! SIGHUP-style reload swaps targets without stopping the others. Needs
//! `eval "$(scripts/stack env)"` (scripts/test does it); fails without it.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use netprobe_agent::config::Config;
use netprobe_agent::probe::{dns, http, icmp};
use netprobe_wire::{decode, Body, Message, ProbeType, Timestamp, Topic};
use rdkafka::consumer::Consumer as _;
use rdkafka::Message as _;
use tokio_util::sync::CancellationToken;

/// Messages of our probe_id read so far, by kind.
type Seen = HashMap<ProbeType, Vec<Message>>;

use common::config::{agent_settings, kafka, reader_at_end};

fn icmp_target(addr: &str) -> icmp::Target {
    icmp::Target {
        target: addr.into(),
        interval: Duration::from_secs(1),
        count: 3,
        packet_interval: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_every_probe_type_registry_and_heartbeats_and_reloads() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let probe_id = format!("agent-test-{}-{nanos}", std::process::id());
    let prefix = kafka("AGENT").topic_prefix;
    let kinds = [Topic::Icmp, Topic::Dns, Topic::Http, Topic::Registry, Topic::Health];
    let topics: Vec<String> = kinds.iter().map(|t| t.name(&prefix)).collect();
    let reader = reader_at_end(&topics, &format!("netprobe-test-{probe_id}"));

    let dns_server = common::targets::start_dns().await;
    let http_addr = common::targets::start_http().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let dns_target = dns::Target {
        resolver: dns_server.addr,
        query_name: format!("www.{}", common::targets::ZONE),
        record_type: "A".into(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        transport: dns::Transport::Udp,
    };
    let config = Config {
        agent: agent_settings(&probe_id, spool.path(), Duration::from_millis(300)),
        kafka: kafka("AGENT"),
        icmp: vec![icmp_target("127.0.0.1")],
        dns: vec![dns_target],
        http: vec![http::Target::new(format!("http://{http_addr}/"), Duration::from_secs(1))],
        mtr: Vec::new(),
        bgp: Vec::new(),
    };
    let cancel = CancellationToken::new();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let agent = tokio::spawn(netprobe_agent::run(
        config.clone(),
        Vec::new(),
        reloads,
        cancel.clone(),
        move || {
            let _ = ready_tx.send(());
        },
        || {},
    ));
    tokio::time::timeout(Duration::from_secs(30), ready_rx).await.expect("ready within 30 s").expect("ready");

    let mut seen: Seen = HashMap::new();
    // Topic -> partitions our messages arrived on.
    let partitions = std::cell::RefCell::new(HashMap::<String, std::collections::BTreeSet<i32>>::new());
    let poll_until = |seen: &mut Seen, done: &dyn Fn(&Seen) -> bool| {
        let start = Instant::now();
        while !done(seen) {
            let counts: Vec<_> = seen.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
            assert!(start.elapsed() < Duration::from_secs(40), "timed out; got {counts:?}");
            let Some(m) = reader.poll(Duration::from_millis(200)) else { continue };
            let m = m.expect("read");
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            if key != probe_id && !key.starts_with(&format!("{probe_id}/")) {
                continue;
            }
            let msg = decode(m.payload().expect("payload")).expect("valid wire message");
            assert_eq!(Topic::for_probe_type(msg.probe_type()).name(&prefix), m.topic(), "topic of {msg:?}");
            assert_eq!(key, msg.key(), "key");
            partitions.borrow_mut().entry(m.topic().to_owned()).or_default().insert(m.partition());
            seen.entry(msg.probe_type()).or_default().push(msg);
        }
    };
    let all_kinds = |s: &Seen| {
        [ProbeType::Icmp, ProbeType::Dns, ProbeType::Http, ProbeType::Health]
            .iter()
            .all(|k| s.get(k).is_some_and(|v| v.len() >= 2))
            && s.contains_key(&ProbeType::Registry)
    };
    tokio::task::block_in_place(|| poll_until(&mut seen, &all_kinds));

    let Body::Icmp(i) = &seen[&ProbeType::Icmp][0].body else { unreachable!() };
    assert_eq!((i.sent, i.received, i.resolved_ip), (3, 3, Some("127.0.0.1".parse().expect("ip"))), "{i:?}");
    let Body::Dns(d) = &seen[&ProbeType::Dns][0].body else { unreachable!() };
    assert_eq!((d.rcode.as_deref(), d.answer_count), (Some("NOERROR"), 2), "{d:?}");
    let mut answers = d.answers.clone();
    answers.sort();
    assert_eq!(answers, ["192.0.2.10", "192.0.2.11"]);
    let Body::Http(h) = &seen[&ProbeType::Http][0].body else { unreachable!() };
    assert_eq!((h.status_code, h.success), (Some(200), true), "{h:?}");
    let Body::Registry(r) = &seen[&ProbeType::Registry][0].body else { unreachable!() };
    assert_eq!(r.available_metrics, [ProbeType::Dns, ProbeType::Http, ProbeType::Icmp]);
    assert_eq!(r.ip, Some("127.0.0.1".parse().expect("ip")), "source address towards the loopback broker");
    let Body::Health(hb) = &seen[&ProbeType::Health].last().expect("health").body else { unreachable!() };
    assert!(hb.kafka_connected && hb.runs_last_hour > 0, "{hb:?}");
    assert_eq!((hb.spool_messages, hb.spool_dropped_messages), (0, 0));
    // One partition per topic for the whole agent: murmur2 of the probe_id,
    // the partition a Java producer picks for the key `probe_id`.
    for (topic, parts) in partitions.borrow().iter() {
        let meta = reader.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
        let count = i32::try_from(meta.topics()[0].partitions().len()).expect("partition count");
        let want = netprobe_agent::partitioner::partition_of(probe_id.as_bytes(), count);
        assert_eq!(parts.iter().copied().collect::<Vec<_>>(), [want], "partitions of {topic} ({count} in all)");
    }

    // Reload: drop HTTP, add ICMP to ::1; the other targets keep running.
    let mut reloaded = config.clone();
    reloaded.http.clear();
    reloaded.icmp.push(icmp_target("::1"));
    reload_tx.send(reloaded).expect("agent takes reloads");
    let reloaded_at = Timestamp::now();
    seen.clear();
    let after_reload = |s: &Seen| {
        let v6 = s.get(&ProbeType::Icmp).is_some_and(|v| v.iter().any(|m| m.key().ends_with("/::1")));
        v6 && s.get(&ProbeType::Dns).is_some_and(|v| v.len() >= 3)
    };
    tokio::task::block_in_place(|| poll_until(&mut seen, &after_reload));
    let late_http = seen.get(&ProbeType::Http).into_iter().flatten().filter(|m| m.timestamp > reloaded_at).count();
    assert_eq!(late_http, 0, "the removed HTTP target stopped");
    let Body::Registry(r) = &seen[&ProbeType::Registry][0].body else { panic!("registry re-published on reload") };
    assert_eq!(r.available_metrics, [ProbeType::Dns, ProbeType::Icmp]);

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(20), agent).await.expect("stops").expect("no panic").expect("ok");
}

/// The binary under SIGHUP: a bad file is refused with file, line and key
/// and the agent keeps running; a good one adds a target. Its Prometheus
/// endpoint counts the runs. Then SIGTERM exits 0.
#[test]
fn sighup_reloads_the_file_and_keeps_running_on_a_bad_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, log) = (dir.path().join("agent.toml"), dir.path().join("agent.log"));
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr");
    let head = format!(
        "[agent]\nprobe_id = \"sighup-{}\"\nlocation = \"l\"\nspool_dir = {:?}\nmetrics_listen = \"{metrics}\"\n\n{}\n",
        std::process::id(),
        dir.path().join("spool"),
        common::config::kafka_table(),
    );
    let ping = |t: &str| format!("[[icmp]]\ntarget = {t:?}\ninterval = \"1s\"\ncount = 1\ntimeout = \"500ms\"\n");
    std::fs::write(&config, format!("{head}{}", ping("127.0.0.1"))).expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_netprobe-agent"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("agent starts");
    let pid = child.id().to_string();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait_for = |needle: &str| {
        let start = Instant::now();
        while !read_log().contains(needle) {
            assert!(start.elapsed() < Duration::from_secs(30), "no {needle:?} in the log:\n{}", read_log());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let hup = || assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    wait_for("agent running");

    std::fs::write(&config, format!("{head}{}cuont = 2\n", ping("127.0.0.1"))).expect("bad config");
    hup();
    wait_for("reload refused");
    let refused = read_log();
    assert!(refused.contains("agent.toml") && refused.contains("cuont") && refused.contains("line"), "{refused}");

    std::fs::write(&config, format!("{head}{}{}", ping("127.0.0.1"), ping("::1"))).expect("good config");
    hup();
    wait_for("config reloaded");
    assert!(read_log().contains("started=1 stopped=0"), "one target added, none stopped:\n{}", read_log());
    assert!(child.try_wait().expect("status").is_none(), "still running");

    // Self-metrics: runs of the ICMP targets are counted.
    let start = Instant::now();
    loop {
        let body = std::process::Command::new("curl").args(["-fsS", &format!("http://{metrics}/metrics")]).output();
        let body = body.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        if body.contains("netprobe_agent_runs_total{probe_type=\"icmp\"}") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no run counter on {metrics}:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    }

    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", read_log());
}

/// A run in flight at shutdown is finished and published: every request
/// the server saw becomes a message in the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_publishes_the_run_in_flight() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let probe_id = format!("inflight-{}-{nanos}", std::process::id());
    let prefix = kafka("AGENT").topic_prefix;
    let reader = reader_at_end(&[Topic::Http.name(&prefix)], &format!("netprobe-test-{probe_id}"));

    // Answers 1 s after each request; reports each request as it arrives.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let _ = seen_tx.send(());
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
            });
        }
    });
    let spool = tempfile::tempdir().expect("spool dir");
    let mut target = http::Target::new(format!("http://{addr}/"), Duration::from_secs(2));
    target.timeout = Duration::from_secs(5);
    let config = Config {
        agent: agent_settings(&probe_id, spool.path(), Duration::from_secs(600)),
        kafka: kafka("AGENT"),
        icmp: Vec::new(),
        dns: Vec::new(),
        http: vec![target],
        mtr: Vec::new(),
        bgp: Vec::new(),
    };
    let cancel = CancellationToken::new();
    let (_reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let agent = tokio::spawn(netprobe_agent::run(config, Vec::new(), reloads, cancel.clone(), || {}, || {}));
    tokio::time::timeout(Duration::from_secs(10), seen_rx.recv()).await.expect("a request within 10 s");
    cancel.cancel(); // the run is in flight: the server answers in 1 s
    tokio::time::timeout(Duration::from_secs(30), agent).await.expect("stops").expect("no panic").expect("ok");
    let mut requests = 1;
    while seen_rx.try_recv().is_ok() {
        requests += 1;
    }

    let published = tokio::task::block_in_place(|| {
        let mut n = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) && n < requests {
            let Some(m) = reader.poll(Duration::from_millis(200)) else { continue };
            let m = m.expect("read");
            if m.key().is_some_and(|k| k.starts_with(probe_id.as_bytes())) {
                let msg = decode(m.payload().expect("payload")).expect("valid wire message");
                let Body::Http(h) = msg.body else { panic!("http") };
                assert_eq!(h.status_code, Some(200), "the in-flight run completed: {h:?}");
                n += 1;
            }
        }
        n
    });
    assert_eq!(published, requests, "every run the server saw was published");
}
