//! The scheduler against real targets: random phases, runs of one target
//! never overlapping (overruns skip slots and are counted), and a reload
//! that keeps unchanged targets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netprobe_agent::probe::{http, icmp, Target};
use netprobe_agent::run_counters::RunCounters;
use netprobe_agent::scheduler::{Limits, Scheduler};
use netprobe_wire::{Message, ProbeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn scheduler() -> (Scheduler, mpsc::Receiver<Message>, Arc<RunCounters>) {
    let (tx, rx) = mpsc::channel(1024);
    let stats = Arc::new(RunCounters::default());
    let s = Scheduler::new(ProbeId("sched-test".into()), "Loopback".into(), tx, Arc::clone(&stats), Limits::default());
    (s, rx, stats)
}

async fn next(rx: &mut mpsc::Receiver<Message>) -> Message {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a result within 10 s").expect("open")
}

fn ping(addr: &str, interval: Duration) -> Target {
    Target::from(ping_target(addr, interval))
}

fn ping_target(addr: &str, interval: Duration) -> icmp::Target {
    icmp::Target {
        target: addr.into(),
        interval,
        count: 1,
        packet_interval: Duration::from_millis(10),
        timeout: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn first_runs_are_spread_over_the_interval() {
    let (mut s, mut rx, _) = scheduler();
    let targets: Vec<Target> = (0..40).map(|i| ping(&format!("127.0.0.{}", i + 1), Duration::from_secs(2))).collect();
    assert_eq!(s.apply(targets), (40, 0));
    let mut first = Vec::new();
    for _ in 0..40 {
        first.push(next(&mut rx).await.timestamp.unix_nanos().expect("ns"));
    }
    let spread_ms = (first.iter().max().expect("max") - first.iter().min().expect("min")) / 1_000_000;
    assert!(spread_ms > 1000, "40 first runs within {spread_ms} ms of each other: no random phase?");
    s.stop();
}

#[tokio::test]
async fn overrunning_runs_are_skipped_and_counted_never_stacked() {
    // Answers after 700 ms; counts connections open at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, m) = (Arc::clone(&open), Arc::clone(&most));
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (o, m) = (Arc::clone(&o), Arc::clone(&m));
            tokio::spawn(async move {
                m.fetch_max(o.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                tokio::time::sleep(Duration::from_millis(700)).await;
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let mut slow = http::Target::new(format!("http://{addr}/"), Duration::from_millis(300));
    slow.timeout = Duration::from_secs(5);
    let (mut s, mut rx, stats) = scheduler();
    s.apply(vec![Target::from(slow)]);
    let mut stamps = Vec::new();
    for _ in 0..4 {
        stamps.push(next(&mut rx).await.timestamp.unix_nanos().expect("ns"));
    }
    s.stop();
    assert_eq!(most.load(Ordering::SeqCst), 1, "runs of one target overlapped");
    for w in stamps.windows(2) {
        assert!(w[1] - w[0] >= 700_000_000, "next run started {} ms after the previous", (w[1] - w[0]) / 1_000_000);
    }
    assert!(stats.skipped() >= 3, "each 700 ms run over a 300 ms interval skips slots: {}", stats.skipped());
}

#[tokio::test]
async fn reload_keeps_unchanged_targets_and_stops_removed_ones() {
    let (mut s, _rx, _) = scheduler();
    let a = ping("127.0.0.1", Duration::from_secs(60));
    let b = ping("::1", Duration::from_secs(60));
    assert_eq!(s.apply(vec![a.clone(), b.clone()]), (2, 0));
    assert_eq!(s.apply(vec![a.clone(), b.clone()]), (0, 0), "same config: nothing restarts");
    let faster = Target::from(icmp::Target {
        interval: Duration::from_secs(30),
        ..ping_target("127.0.0.1", Duration::from_secs(60))
    });
    assert_eq!(s.apply(vec![faster, b]), (1, 1), "a changed target is replaced");
    assert_eq!(s.len(), 2);
    s.stop();
    assert!(s.is_empty());
}

/// A probe type defined outside the agent, through the public interface:
/// its run never finishes.
#[derive(Clone, Debug, PartialEq)]
struct Stuck;

impl netprobe_agent::probe::Probe for Stuck {
    const TYPE: netprobe_wire::ProbeType = netprobe_wire::ProbeType::Icmp;
    const CONCURRENCY: usize = 1;

    fn interval(&self) -> Duration {
        Duration::from_millis(300)
    }
    fn run_deadline(&self) -> Duration {
        Duration::from_millis(100)
    }
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    fn label(&self) -> String {
        "icmp stuck".into()
    }
    async fn run(&self, _: &netprobe_agent::probe::Context) -> netprobe_wire::Body {
        std::future::pending().await
    }
    fn abandoned(&self, after: Duration) -> netprobe_wire::Body {
        netprobe_wire::Body::Icmp(netprobe_wire::msg::Icmp {
            target: "stuck".into(),
            resolved_ip: None,
            sent: 0,
            received: 0,
            loss_pct: 100.0,
            rtt_min_ms: None,
            rtt_avg_ms: None,
            rtt_median_ms: None,
            rtt_max_ms: None,
            rtt_stddev_ms: None,
            jitter_ms: None,
            error: Some(netprobe_wire::ProbeError {
                class: netprobe_wire::ErrorClass::Timeout,
                message: format!("abandoned after {after:?}"),
            }),
        })
    }
    fn succeeded(_: &netprobe_wire::Body) -> bool {
        false
    }
}

/// Regression (hardening issue, fault 10): a run abandoned at its deadline
/// was logged and counted but never published, so the target vanished from
/// the dashboards instead of showing as failing.
#[tokio::test]
async fn a_run_abandoned_at_its_deadline_is_published_as_a_timeout() {
    let (mut s, mut rx, stats) = scheduler();
    s.apply(vec![Target::from(Stuck)]);
    let msg = next(&mut rx).await;
    let netprobe_wire::Body::Icmp(icmp) = &msg.body else { panic!("{msg:?}") };
    let error = icmp.error.as_ref().expect("error");
    assert_eq!(error.class, netprobe_wire::ErrorClass::Timeout, "{error}");
    // Deadline 100 ms plus the scheduler's grace second.
    assert!(error.message.contains("1.1s"), "{error}");
    assert!(stats.snapshot().1 >= 1, "counted as a failure");

    let once = netprobe_agent::scheduler::run_once(&[Target::from(Stuck)], &ProbeId("once".into()), "l").await;
    assert_eq!(once.len(), 1, "--health-check prints the abandoned run too");
}
