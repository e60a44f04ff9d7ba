//! Scale out (issue 15, part 5): three netprobe-ingest processes (the real
//! binary) in one consumer group share the 7 × 6 partitions; one is killed
//! with SIGKILL while messages keep arriving on every partition of the ICMP
//! topic; the two left take over its partitions and, at the end, produced ==
//! stored (distinct points counted by Flux: re-delivered messages land on the
//! same series and timestamp and collapse), every partition's committed
//! offset reaches its end and nothing of the group is in the DLQ.
//!
//! Oracles are outside ingest: the broker's view of the group (members and
//! their assignments, decoded from DescribeGroups), the broker's high
//! watermarks and committed offsets, and InfluxDB's count of points.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::msgs::icmp_seq;
use common::stack::*;
use netprobe_wire::Topic;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

const PROCESSES: usize = 3;
/// Every probe topic has this many partitions (scripts/stack).
const PARTITIONS: i32 = 6;

/// An ingest process and its log file.
struct Ingest {
    child: Child,
    log: PathBuf,
}

impl Ingest {
    fn spawn(config: &Path, log: PathBuf) -> Ingest {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_netprobe-ingest"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("netprobe-ingest starts");
        Ingest { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("status") {
            panic!("ingest {} exited ({status}); log:\n{}", self.child.id(), self.log_text());
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The group's members as the broker sees them: (member id, partitions).
fn members(group: &str) -> Vec<(String, BTreeSet<(String, i32)>)> {
    let consumer: BaseConsumer = kafka("ADMIN").client_config().expect("config").create().expect("consumer");
    let list = consumer.fetch_group_list(Some(group), Duration::from_secs(10)).expect("describe group");
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else { return Vec::new() };
    if info.state() != "Stable" {
        return Vec::new();
    }
    info.members()
        .iter()
        .map(|m| (m.id().to_owned(), m.assignment().map(decode_assignment).unwrap_or_default()))
        .collect()
}

/// Decodes a classic consumer-protocol assignment (Kafka's
/// `ConsumerProtocolAssignment`: version i16, [topic string, [partition
/// i32]], user data bytes; big-endian, strings with an i16 length).
fn decode_assignment(bytes: &[u8]) -> BTreeSet<(String, i32)> {
    let mut at = 0usize;
    let mut take = |n: usize| {
        let s = &bytes[at..at + n];
        at += n;
        s
    };
    let i16_at = |b: &[u8]| i16::from_be_bytes([b[0], b[1]]);
    let i32_at = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let mut out = BTreeSet::new();
    if bytes.len() < 6 {
        return out;
    }
    let _version = i16_at(take(2));
    let topics = i32_at(take(4));
    for _ in 0..topics {
        let len = i16_at(take(2)) as usize;
        let topic = String::from_utf8(take(len).to_vec()).expect("topic name");
        let n = i32_at(take(4));
        for _ in 0..n {
            out.insert((topic.clone(), i32_at(take(4))));
        }
    }
    out
}

/// Every partition of the probe topics.
fn all_partitions() -> BTreeSet<(String, i32)> {
    Topic::PROBE_TOPICS.iter().flat_map(|t| (0..PARTITIONS).map(move |p| (t.name(&prefix()), p))).collect()
}

/// Polls (blocking, on its own thread) until the group is stable with
/// `count` members, each owning partitions, all partitions covered.
async fn wait_members(group: &str, count: usize, deadline: Duration) -> Vec<(String, BTreeSet<(String, i32)>)> {
    let all = all_partitions();
    poll(&format!("group {group} stable with {count} members covering all partitions"), deadline, || {
        let group = group.to_owned();
        let all = all.clone();
        async move {
            let m = tokio::task::spawn_blocking(move || members(&group)).await.expect("describe");
            let covered: BTreeSet<_> = m.iter().flat_map(|(_, a)| a.iter().cloned()).collect();
            (m.len() == count && m.iter().all(|(_, a)| !a.is_empty()) && covered == all).then_some(m)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_one_killed_under_load_lose_nothing() {
    let probe_id = unique("e2e-scale");
    let dir = tempfile::tempdir().expect("tempdir");
    let dlq_start = end_offsets("ADMIN", &[Topic::Dlq]);
    let group = fresh_group("scale");
    let config_path = dir.path().join("ingest.toml");
    std::fs::write(&config_path, ingest_config_toml(&ingest_config(group.clone()))).expect("config");
    let mut ingests: Vec<Ingest> =
        (0..PROCESSES).map(|i| Ingest::spawn(&config_path, dir.path().join(format!("ingest-{i}.log")))).collect();

    let before = wait_members(&group, PROCESSES, Duration::from_secs(90)).await;
    for (id, a) in &before {
        eprintln!("member {id}: {} partitions", a.len());
    }

    // Produce continuously: up to 300 messages/s over 24 targets, so every ICMP
    // partition gets traffic, until told to stop.
    let produced = Arc::new(AtomicU64::new(0));
    let icmp_partitions = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let producer_task = {
        let (produced, icmp_partitions, stop, probe_id) =
            (produced.clone(), icmp_partitions.clone(), stop.clone(), probe_id.clone());
        tokio::spawn(async move {
            let producer = producer();
            let topic = Topic::Icmp.name(&prefix());
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // 30 at once (enqueued together), then their delivery reports.
                let mut deliveries = Vec::new();
                for _ in 0..30 {
                    let m = icmp_seq(&probe_id, &format!("203.0.113.{}", seq % 24), seq);
                    seq += 1;
                    let (key, payload) = (m.key(), m.encode().expect("encode"));
                    let record = FutureRecord::to(&topic).key(&key).payload(&payload);
                    deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
                }
                for d in deliveries {
                    let delivery =
                        d.await.expect("delivery report").unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"));
                    icmp_partitions.lock().expect("lock").insert(delivery.partition);
                    produced.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Under load: kill one process once traffic has flowed for a while.
    produced_by(&produced, 1000, Duration::from_secs(60)).await;
    let mut victim = ingests.remove(1);
    let killed_pid = victim.child.id();
    victim.child.kill().expect("SIGKILL");
    victim.child.wait().expect("reaped");
    let killed_at = Instant::now();
    let at_kill = produced.load(Ordering::Relaxed);
    eprintln!("SIGKILLed ingest {killed_pid} after {at_kill} messages");

    // The two left own every partition (after the session timeout expires
    // the dead member), while messages keep coming.
    let after = wait_members(&group, PROCESSES - 1, Duration::from_secs(90)).await;
    let takeover_s = killed_at.elapsed().as_secs_f64();
    for (id, a) in &after {
        eprintln!("member {id}: {} partitions", a.len());
    }
    produced_by(&produced, at_kill + 1000, Duration::from_secs(60)).await;
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(120), producer_task)
        .await
        .expect("producer stops within 120 s")
        .expect("producer task");
    let produced = produced.load(Ordering::Relaxed);
    let partitions_used = icmp_partitions.lock().expect("lock").clone();
    assert_eq!(partitions_used.len(), PARTITIONS as usize, "traffic on every ICMP partition: {partitions_used:?}");

    // produced == stored, the two survivors alive throughout.
    let started = Instant::now();
    let deadline = Duration::from_secs(120);
    loop {
        let stored = count_points(&probe_id, "icmp", "sent").await;
        if stored == produced {
            break;
        }
        assert!(stored < produced, "stored {stored} > produced {produced}: points did not collapse");
        for i in &mut ingests {
            i.assert_running();
        }
        assert!(started.elapsed() < deadline, "stored {stored} of {produced} after {deadline:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stored_s = killed_at.elapsed().as_secs_f64();

    // Every ICMP partition committed to its end by the group.
    let end = end_offsets("INGEST", &[Topic::Icmp]);
    let committed_consumer: BaseConsumer =
        kafka("INGEST").client_config().expect("config").set("group.id", &group).create().expect("consumer");
    poll("group committed every ICMP partition to its end", Duration::from_secs(60), || {
        let committed = committed_consumer.committed_offsets(end.clone(), Duration::from_secs(10)).expect("committed");
        let done = behind(&end, &committed).is_empty();
        async move { done.then_some(()) }
    })
    .await;

    // Nothing of this group in the DLQ.
    let ours: Vec<_> = read_dlq(&dlq_start).into_iter().filter(|r| r.headers.get("group_id") == Some(&group)).collect();
    assert!(ours.is_empty(), "DLQ holds {} messages of group {group}: {:?}", ours.len(), ours[0].headers);

    // A clean stop of the two left: SIGTERM, exit 0.
    for i in &mut ingests {
        let pid = i.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    }
    for i in &mut ingests {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = i.child.try_wait().expect("status") {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "no exit within 30 s of SIGTERM; log:\n{}", i.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(status.success(), "exit after SIGTERM: {status}; log:\n{}", i.log_text());
    }
    eprintln!(
        "scale-out: {produced} produced == stored; kill -> 2 members own all 42 partitions in {takeover_s:.1} s, \
         -> all stored in {stored_s:.1} s"
    );
}

/// Waits until the producer task has `n` messages delivered.
async fn produced_by(produced: &AtomicU64, n: u64, deadline: Duration) {
    poll(&format!("{n} messages produced"), deadline, || async {
        (produced.load(Ordering::Relaxed) >= n).then_some(())
    })
    .await;
}

/// Partitions of `end` whose committed offset is below the end.
fn behind(end: &TopicPartitionList, committed: &TopicPartitionList) -> Vec<String> {
    end.elements()
        .iter()
        .filter_map(|e| {
            let c = committed.find_partition(e.topic(), e.partition()).map(|c| c.offset());
            match (c, e.offset()) {
                (Some(Offset::Offset(c)), Offset::Offset(want)) if c >= want => None,
                (c, want) => Some(format!("{}[{}] committed {c:?} < {want:?}", e.topic(), e.partition())),
            }
        })
        .collect()
}
