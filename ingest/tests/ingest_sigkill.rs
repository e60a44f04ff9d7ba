//! The real binary killed with SIGKILL three times under load and
//! restarted: produced == stored (at-least-once, idempotent points).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::msgs::icmp_seq;
use common::stack::*;

fn spawn_ingest(config: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_netprobe-ingest"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("netprobe-ingest starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_under_load_loses_nothing() {
    let probe_id = unique("e2e-sigkill");
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("ingest.toml");
    let log = dir.path().join("ingest.log");
    std::fs::write(&config_path, ingest_config_toml(&ingest_config(fresh_group("sigkill")))).expect("config");
    let mut child = spawn_ingest(&config_path, &log);
    let producer = producer();
    let start = Instant::now();
    let mut seq = 0u64;
    let mut kills = 0;
    // 40 messages/s for 30 s; SIGKILL at 6, 12 and 18 s, restarting at once.
    while start.elapsed() < Duration::from_secs(30) {
        produce(&producer, &[icmp_seq(&probe_id, &format!("198.51.100.{}", seq % 12), seq)]).await;
        seq += 1;
        if kills < 3 && start.elapsed() >= Duration::from_secs(6 * (kills + 1)) {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            kills += 1;
            child = spawn_ingest(&config_path, &log);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(kills, 3);
    let produced = seq;
    let deadline = Duration::from_secs(120);
    let started = Instant::now();
    loop {
        let stored = count_points(&probe_id, "icmp", "sent").await;
        if stored == produced {
            break;
        }
        assert!(
            child.try_wait().expect("status").is_none(),
            "ingest exited; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            started.elapsed() < deadline,
            "stored {stored} of {produced} after {deadline:?}; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A clean stop: SIGTERM flushes and exits 0 within the shutdown bound.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let stop = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("status") {
            break s;
        }
        assert!(stop.elapsed() < Duration::from_secs(30), "no exit within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
}
