//! The real binary under a real watchdog deadline: `NOTIFY_SOCKET` points at
//! a datagram socket this test reads and `WATCHDOG_USEC` asks for a ping
//! every 2 s (half the 4 s period). WATCHDOG=1 must keep arriving, with no
//! gap as long as the period, while the topics are idle and through an
//! InfluxDB outage longer than the period (every writer busy retrying, the
//! next batch full, the partitions paused). InfluxDB itself stays up: the
//! ingest writes through a TCP proxy this test cuts.
//!
//! The same run checks group membership past `max.poll.interval.ms`: with
//! `max_poll_interval = "12s"`, an outage of 30 s keeps the paused consumer
//! in its group (no rebalance, no max-poll error), and everything produced
//! is written once the proxy is back.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::msgs::icmp_seq;
use common::stack::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The watchdog period given to the ingest (`WatchdogSec`).
const PERIOD: Duration = Duration::from_secs(4);
/// The consumer's `max.poll.interval.ms` for this test.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(12);

/// A TCP proxy in front of the real InfluxDB. While cut, it closes every
/// open connection and every new one at once: InfluxDB is "down" for the
/// ingest only.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (cut, _) = watch::channel(false);
        let cut_rx = cut.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let mut cut = cut_rx.clone();
                if *cut.borrow() {
                    continue; // dropped: closed at once
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Proxy { addr, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// Everything sent to the notify socket, with arrival times.
type Notes = Arc<Mutex<Vec<(Instant, String)>>>;

fn listen_notify(socket: UnixDatagram) -> Notes {
    let notes: Notes = Arc::default();
    let out = notes.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with the test process (the socket lives as long as this thread).
        while let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            out.lock().expect("lock").push((Instant::now(), text));
        }
    });
    notes
}

fn pings_since(notes: &Notes, since: Instant) -> Vec<Instant> {
    notes
        .lock()
        .expect("lock")
        .iter()
        .filter(|(t, text)| *t >= since && text.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect()
}

/// The longest time without a ping from `since` to `until`.
fn longest_gap(notes: &Notes, since: Instant, until: Instant) -> Duration {
    let mut last = since;
    let mut longest = Duration::ZERO;
    for t in pings_since(notes, since).into_iter().chain([until]) {
        longest = longest.max(t.saturating_duration_since(last));
        last = t;
    }
    longest
}

/// State and member count of `group`, as the broker describes it.
fn group_state(group: &str) -> (String, usize) {
    let client: BaseConsumer = kafka("ADMIN").client_config().expect("config").create().expect("admin client");
    let list = client.fetch_group_list(Some(group), Duration::from_secs(30)).expect("describe group");
    let g = list.groups().first().expect("the group exists");
    (g.state().to_owned(), g.members().len())
}

fn log_of(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn terminate(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let start = Instant::now();
    while child.try_wait().expect("status").is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_pings_while_idle_and_through_an_influxdb_outage() {
    let probe_id = unique("e2e-watchdog");
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let notes = listen_notify(UnixDatagram::bind(&socket_path).expect("bind notify socket"));
    let proxy =
        Proxy::start(env("NETPROBE_INFLUX_URL").trim_start_matches("http://").trim_end_matches('/').into()).await;

    let group = fresh_group("watchdog");
    let mut config = ingest_config(group.clone());
    config.influx.url = format!("http://{}", proxy.addr);
    let toml = ingest_config_toml(&config)
        + &format!("batch_max_lines = 20\nmax_poll_interval = \"{}s\"\n", MAX_POLL_INTERVAL.as_secs());
    let config_path = dir.path().join("ingest.toml");
    std::fs::write(&config_path, toml).expect("config");
    let log = dir.path().join("ingest.log");
    // sd-notify 0.4 (like systemd, which always sets it) wants WATCHDOG_PID
    // to be the service's pid: a shell sets it to its own and execs.
    let mut child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_netprobe-ingest"))
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", PERIOD.as_micros().to_string())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("netprobe-ingest starts");

    let ready = poll("READY=1 on the notify socket", Duration::from_secs(60), || {
        let ready =
            notes.lock().expect("lock").iter().find(|(_, n)| n.lines().any(|l| l == "READY=1")).map(|(t, _)| *t);
        assert!(child.try_wait().expect("status").is_none(), "ingest exited:\n{}", log_of(&log));
        async move { ready }
    })
    .await;

    // Idle: nothing produced for 3 periods.
    tokio::time::sleep(3 * PERIOD).await;
    let idle_end = Instant::now();
    let idle_gap = longest_gap(&notes, ready, idle_end);

    // Outage: every connection to InfluxDB closed for 30 s (> 7 periods,
    // > max_poll_interval). 200 messages fill 10 batches of 20 lines: both
    // writers retry, the next batch is full, the loop stalls and pauses.
    proxy.set_cut(true);
    let outage_start = Instant::now();
    let producer = producer();
    let total = 200u64;
    let msgs: Vec<_> = (0..total).map(|seq| icmp_seq(&probe_id, &format!("192.0.2.{}", seq % 6), seq)).collect();
    produce(&producer, &msgs).await;
    // Past the pause (4 s after the stall) plus max_poll_interval, with
    // nothing new arriving: membership must hold on polling alone.
    while outage_start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(child.try_wait().expect("status").is_none(), "ingest exited:\n{}", log_of(&log));
    }
    let (state, members) = group_state(&group);
    proxy.set_cut(false);
    let outage_end = Instant::now();
    let outage_gap = longest_gap(&notes, idle_end, outage_end);
    let log_text = log_of(&log);
    assert!(
        log_text.contains("consumption paused") || log_text.contains("paused=true"),
        "the outage paused consumption:\n{log_text}"
    );

    let started = Instant::now();
    loop {
        let stored = count_points(&probe_id, "icmp", "sent").await;
        if stored == total {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "stored {stored} of {total} after the outage; log:\n{}",
            log_of(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let end = Instant::now();
    let after_gap = longest_gap(&notes, outage_end, end);
    // Read before stopping: the stop itself revokes the partitions.
    let log_text = log_of(&log);
    terminate(&mut child);

    eprintln!("longest gaps without WATCHDOG=1: idle {idle_gap:?}, outage {outage_gap:?}, after {after_gap:?}; group {state} with {members} member(s)");
    assert!(idle_gap < PERIOD, "idle: {idle_gap:?} without WATCHDOG=1 (period {PERIOD:?}); log:\n{log_text}");
    assert!(outage_gap < PERIOD, "outage: {outage_gap:?} without WATCHDOG=1 (period {PERIOD:?}); log:\n{log_text}");
    assert!(after_gap < PERIOD, "after the outage: {after_gap:?} without WATCHDOG=1; log:\n{log_text}");
    assert_eq!((state.as_str(), members), ("Stable", 1), "the paused consumer stays in its group; log:\n{log_text}");
    assert_eq!(log_text.matches("partitions revoked").count(), 0, "no rebalance during the outage; log:\n{log_text}");
    assert!(
        !log_text.to_lowercase().contains("max.poll") && !log_text.contains("maximum poll interval"),
        "log:\n{log_text}"
    );
}
