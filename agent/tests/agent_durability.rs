//! Durability of the real binary: Kafka stopped (`scripts/stack down
//! kafka`), the agent measures for 60 s, is killed with SIGKILL, restarted,
//! then Kafka started: every measurement slot of the window arrives (at
//! least once), per target, in the topic. Needs the stack; fails without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netprobe_wire::{decode, Timestamp, Topic};
use rdkafka::Message as _;

mod common;

use common::config::{kafka, reader_at_end};

fn stack(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/stack");
    let status = Command::new(&script).args(args).status().expect("scripts/stack runs");
    assert!(status.success(), "scripts/stack {args:?} failed");
}

/// Starts Kafka again however the test ends.
struct KafkaBack;
impl Drop for KafkaBack {
    fn drop(&mut self) {
        stack(&["up", "kafka"]);
    }
}

/// The agent process, killed if the test fails before stopping it.
struct Agent(Child);
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_agent(config: &Path, log: &Path) -> Agent {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_netprobe-agent"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Agent)
        .expect("netprobe-agent starts")
}

/// Length of the broker outage.
const OUTAGE_S: u64 = 60;
const TARGETS: [&str; 2] = ["127.0.0.1", "::1"];

#[test]
fn kafka_down_60s_and_sigkill_lose_no_measurement() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let probe_id = format!("durability-{}-{nanos}", std::process::id());
    let k = kafka("AGENT");
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, log) = (dir.path().join("agent.toml"), dir.path().join("agent.log"));
    let icmp: String = TARGETS
        .iter()
        .map(|t| format!("[[icmp]]\ntarget = {t:?}\ninterval = \"1s\"\ncount = 1\ntimeout = \"500ms\"\n"))
        .collect();
    std::fs::write(
        &config,
        format!(
            "[agent]\nprobe_id = {probe_id:?}\nlocation = \"Loopback, LO\"\nspool_dir = {:?}\nheartbeat_interval = \"5s\"\n\n{}\n{icmp}",
            dir.path().join("spool"),
            common::config::kafka_table(),
        ),
    )
    .expect("config");

    let topic = Topic::Icmp.name(&k.topic_prefix);
    let reader = reader_at_end(&[topic], &format!("netprobe-test-{probe_id}"));
    let mut seen: [BTreeSet<Timestamp>; 2] = [BTreeSet::new(), BTreeSet::new()];
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let read = |seen: &mut [BTreeSet<Timestamp>; 2], until: &dyn Fn(&[BTreeSet<Timestamp>; 2]) -> bool, limit| {
        let start = Instant::now();
        while !until(seen) {
            let have: Vec<_> = seen.iter().map(BTreeSet::len).collect();
            assert!(start.elapsed() < limit, "timed out reading; have {have:?}; agent log:\n{}", agent_log());
            let Some(m) = reader.poll(Duration::from_millis(200)) else { continue };
            let Ok(m) = m else { continue }; // broker restarting
            let msg = decode(m.payload().unwrap_or_default()).expect("valid wire message");
            if msg.probe_id.as_str() != probe_id {
                continue;
            }
            let key = msg.key();
            let i = TARGETS.iter().position(|t| key.ends_with(&format!("/{t}"))).expect("one of our targets");
            seen[i].insert(msg.timestamp);
        }
    };

    let mut agent = spawn_agent(&config, &log);
    read(&mut seen, &|s| s.iter().all(|t| t.len() >= 2), Duration::from_secs(60));

    let down_at = Timestamp::now();
    stack(&["down", "kafka"]);
    let _restore = KafkaBack;
    // The scenario: the agent measures for 60 s with no broker.
    std::thread::sleep(Duration::from_secs(OUTAGE_S));
    assert!(agent.0.try_wait().expect("status").is_none(), "agent died:\n{}", agent_log());
    agent.0.kill().expect("SIGKILL");
    agent.0.wait().expect("reaped");
    let killed_at = Timestamp::now();
    let mut agent = spawn_agent(&config, &log);
    let restarted_at = Timestamp::now();
    stack(&["up", "kafka"]);
    let up_at = Timestamp::now();

    // Everything measured from before the outage to after Kafka is back.
    let covers = |s: &[BTreeSet<Timestamp>; 2]| s.iter().all(|t| t.last().is_some_and(|l| *l > up_at));
    read(&mut seen, &covers, Duration::from_secs(120));
    let secs = |a: &Timestamp, b: &Timestamp| (b.unix_nanos().expect("ns") - a.unix_nanos().expect("ns")) as f64 / 1e9;
    // A restart takes the process start plus a new random phase (< 1 interval).
    let restart_gap = secs(&killed_at, &restarted_at) + 5.0;
    for (target, stamps) in TARGETS.iter().zip(&seen) {
        let in_outage = stamps.iter().filter(|t| **t > down_at && **t < killed_at).count();
        let expected = secs(&down_at, &killed_at).floor() as usize - 1;
        assert!(
            in_outage >= expected,
            "{target}: {in_outage} of {expected} measurements from the outage arrived\n{}",
            agent_log()
        );
        let stamps: Vec<_> = stamps.iter().collect();
        for w in stamps.windows(2) {
            let gap = secs(w[0], w[1]);
            let spans_restart = *w[0] < restarted_at && *w[1] > killed_at;
            // Slots are 1 s apart; a run may start late on busy cores, so
            // two neighbours can be up to ~1.9 s apart without a slot
            // missing. Missing slots are caught by the count above.
            let allowed = if spans_restart { restart_gap } else { 1.9 };
            assert!(
                gap <= allowed,
                "{target}: gap of {gap:.3} s between {} and {} (allowed {allowed:.1} s)",
                w[0],
                w[1]
            );
        }
    }
    let pid = agent.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = agent.0.wait().expect("exits");
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", agent_log());
}
