//! The agent binary with Kafka unreachable (a broker address where nothing
//! listens): it must still become ready, keep measuring on time and spool
//! every result. Kafka settings come from the stack (CA, password file);
//! only the broker address is dead.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netprobe_agent::spool::Spool;
use netprobe_wire::{Body, Message};

/// An agent config: `[agent]` with a spool in `dir`, Kafka at a dead
/// address, then `tables`.
fn write_config(dir: &Path, tables: &str) -> PathBuf {
    let kafka = common::config::kafka_table();
    let brokers_line = kafka.lines().find(|l| l.starts_with("brokers")).expect("brokers line").to_owned();
    let kafka = kafka.replace(&brokers_line, "brokers = [\"127.0.0.1:1\"]");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nprobe_id = \"offline\"\nlocation = \"Loopback, LO\"\nspool_dir = {:?}\nheartbeat_interval = \"1s\"\n\n{kafka}\n{tables}",
            dir.join("spool")
        ),
    )
    .expect("config");
    config
}

/// Kills the agent if the test fails before it stops it.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &Path, env: &[(&str, &Path)]) -> Agent {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netprobe-agent"));
    cmd.arg("--config").arg(config).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Agent(cmd.spawn().expect("agent starts"))
}

/// SIGTERM and wait for exit 0 (the shutdown spools what Kafka did not take).
fn stop(mut agent: Agent) {
    let pid = agent.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = agent.0.wait().expect("exits");
    assert!(status.success(), "exit after SIGTERM: {status}");
}

/// Every message in the spool of `dir`.
fn spooled(dir: &Path) -> Vec<Message> {
    let mut spool = Spool::open(&dir.join("spool"), 1 << 30).expect("spool opens");
    let records = spool.peek(usize::MAX).expect("spool reads");
    records.iter().map(|r| netprobe_wire::decode(&r.payload).expect("a wire message")).collect()
}

/// Regression (hardening issue, fault 6): READY used to wait for Kafka, so
/// with a broker outage at boot systemd failed and restarted the agent in a
/// loop although the spool exists for exactly this.
#[test]
fn ready_without_kafka_and_the_heartbeat_says_kafka_is_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "[[icmp]]\ntarget = \"127.0.0.1\"\ninterval = \"1s\"\ncount = 1\ntimeout = \"500ms\"\n",
    );
    let socket_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&socket_path).expect("notify socket");
    notify.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let agent = start(&config, &[("NOTIFY_SOCKET", &socket_path)]);
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(n) = notify.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "READY=1") {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no READY=1 within 15 s while Kafka is down");
    }
    // Heartbeats every second and a ping a second go straight to the spool
    // once librdkafka reports the broker down: wait for a few KB of them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while spooled_bytes(dir.path()) < 3000 {
        assert!(Instant::now() < deadline, "under 3 KB spooled within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    stop(agent);
    let health: Vec<_> = spooled(dir.path())
        .into_iter()
        .filter_map(|m| match m.body {
            Body::Health(h) => Some(h),
            _ => None,
        })
        .collect();
    let down = health.iter().filter(|h| !h.kafka_connected).count();
    assert!(down >= 2, "heartbeats say Kafka is down: {health:?}");
}

/// Bytes in the spool's segment files of `dir` (written through to the
/// kernel as each record is spooled).
fn spooled_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir.join("spool")) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// An LD_PRELOAD shim that makes every fsync/fdatasync take 200 ms longer,
/// as on a saturated disk.
fn slow_sync_shim(dir: &Path) -> PathBuf {
    let source = dir.join("slowsync.c");
    std::fs::write(
        &source,
        "#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <time.h>\n\
         static void delay(void) { struct timespec t = {0, 200000000}; nanosleep(&t, 0); }\n\
         int fsync(int fd) { static int (*real)(int); if (!real) real = dlsym(RTLD_NEXT, \"fsync\"); delay(); return real(fd); }\n\
         int fdatasync(int fd) { static int (*real)(int); if (!real) real = dlsym(RTLD_NEXT, \"fdatasync\"); delay(); return real(fd); }\n",
    )
    .expect("shim source");
    let shim = dir.join("slowsync.so");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&shim)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("cc runs");
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    shim
}

/// The 90th percentile of `values`.
fn p90(mut values: Vec<f64>) -> f64 {
    assert!(values.len() >= 20, "too few results: {}", values.len());
    values.sort_by(f64::total_cmp);
    values[values.len() * 9 / 10]
}

/// (DNS latency_ms, HTTP ttfb_ms) of every spooled result.
fn latencies(messages: &[Message]) -> (Vec<f64>, Vec<f64>) {
    let mut dns = Vec::new();
    let mut http = Vec::new();
    for m in messages {
        match &m.body {
            Body::Dns(d) => dns.extend(d.latency_ms),
            Body::Http(h) => http.extend(h.ttfb_ms),
            _ => {}
        }
    }
    (dns, http)
}

/// An HTTP/1.1 server on 127.0.0.1 that answers every request with 200
/// after `delay`, one connection at a time per task.
async fn slow_http_server(delay: Duration) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
            });
        }
    });
    addr
}

/// Regression (hardening issue, fault 3): spool appends and the periodic
/// fsync ran on the agent's only runtime thread, so during a Kafka outage a
/// slow disk delayed every DNS and HTTP measurement by up to the fsync time.
/// Two agents measure the same loopback targets (DNS, and HTTP answering in
/// 100 ms) during the same outage, one with fsyncs slowed by 200 ms: their
/// 90th percentiles stay within 5 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_disk_during_an_outage_does_not_delay_measurements() {
    let dns = common::targets::start_dns().await;
    // A response that takes 100 ms: a run is in flight half of its 200 ms
    // interval, so a runtime blocked by an fsync would delay most of them.
    let http = slow_http_server(Duration::from_millis(100)).await;
    let tables = format!(
        "[[dns]]\nresolver = \"{}\"\nquery_name = \"www.{}\"\nrecord_type = \"A\"\ninterval = \"200ms\"\n\n\
         [[http]]\nurl = \"http://{http}/\"\ninterval = \"200ms\"\n",
        dns.addr,
        common::targets::ZONE
    );
    let (fast_dir, slow_dir) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let shim = slow_sync_shim(slow_dir.path());
    let fast = start(&write_config(fast_dir.path(), &tables), &[]);
    let slow = start(&write_config(slow_dir.path(), &tables), &[("LD_PRELOAD", &shim)]);
    // Long enough for ~60 runs per target, every one of them during the outage.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (fast_dir_path, slow_dir_path) = (fast_dir.path().to_owned(), slow_dir.path().to_owned());
    tokio::task::spawn_blocking(move || {
        stop(fast);
        stop(slow);
        let (fast_dns, fast_http) = latencies(&spooled(&fast_dir_path));
        let (slow_dns, slow_http) = latencies(&spooled(&slow_dir_path));
        let (fd, sd, fh, sh) = (p90(fast_dns), p90(slow_dns), p90(fast_http), p90(slow_http));
        eprintln!("p90 DNS latency {fd:.3} ms vs {sd:.3} ms with slow fsync; HTTP TTFB {fh:.3} ms vs {sh:.3} ms");
        assert!(sd <= fd + 5.0, "DNS p90 {sd:.3} ms with a slow disk vs {fd:.3} ms");
        assert!(sh <= fh + 5.0, "HTTP p90 {sh:.3} ms with a slow disk vs {fh:.3} ms");
    })
    .await
    .expect("checks");
}
