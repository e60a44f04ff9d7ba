//! ICMP probe against real targets: loopback, and a network namespace
//! behind a veth pair where nftables drops 10 % of echo requests; RTTs
//! compared with iputils `ping` on the same path in the same test.

mod common;

use std::time::Duration;

use common::netns::{sh, Netns};
use netprobe_agent::probe::icmp::{run, Pinger, Target};
use netprobe_wire::ErrorClass;

fn target(addr: &str, count: u32, packet_interval: Duration) -> Target {
    Target {
        target: addr.into(),
        interval: Duration::from_secs(3600),
        count,
        packet_interval,
        timeout: Duration::from_secs(1),
    }
}

/// Median of the per-reply `time=` values `ping` prints.
fn ping_median_ms(addr: &str, count: u32) -> f64 {
    let out = sh("ping", &["-n", "-c", &count.to_string(), "-i", "0.01", "-W", "1", addr]);
    let mut rtts: Vec<f64> = out
        .lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.trim_end_matches(" ms").parse().ok())
        .collect();
    assert!(rtts.len() as u32 > count / 2, "ping got too few replies:\n{out}");
    rtts.sort_by(f64::total_cmp);
    rtts[rtts.len() / 2]
}

#[tokio::test]
async fn loopback_answers_every_request() {
    let pinger = Pinger::new();
    let r = run(&target("127.0.0.1", 5, Duration::from_millis(20)), &pinger).await;
    assert_eq!((r.sent, r.received, r.loss_pct), (5, 5, 0.0), "{r:?}");
    assert!(r.error.is_none(), "{r:?}");
    let (min, max) = (r.rtt_min_ms.expect("min"), r.rtt_max_ms.expect("max"));
    assert!(min > 0.0 && min <= max && max < 1000.0, "{r:?}");
    assert!(r.jitter_ms.is_some() && r.rtt_stddev_ms.is_some(), "{r:?}");

    let v6 = run(&target("::1", 3, Duration::from_millis(20)), &pinger).await;
    assert_eq!((v6.sent, v6.received), (3, 3), "{v6:?}");

    let named = run(&target("localhost", 2, Duration::from_millis(20)), &pinger).await;
    assert_eq!(named.received, 2, "{named:?}");
    assert!(named.resolved_ip.expect("resolved").is_loopback(), "{named:?}");
}

#[tokio::test]
async fn unresolvable_name_is_an_error_not_a_panic() {
    let pinger = Pinger::new();
    let r = run(&target("no-such-host.invalid", 2, Duration::from_millis(20)), &pinger).await;
    assert_eq!(r.error.as_ref().map(|e| e.class), Some(ErrorClass::DnsFailure), "{r:?}");
    assert_eq!((r.sent, r.resolved_ip), (0, None));
    assert_eq!(r.loss_pct, 100.0, "a target that cannot be measured is down, not lossless: {r:?}");
}

#[tokio::test]
async fn loss_and_rtt_through_a_lossy_veth_match_ping() {
    let ns = Netns::new("icmp", 201);
    let peer = ns.peer_ip.to_string();
    let pinger = Pinger::new();

    // Clean path first: RTT median against ping's, same path, same test.
    let clean = run(&target(&peer, 200, Duration::from_millis(5)), &pinger).await;
    assert_eq!(clean.received, 200, "{clean:?}");
    let ours = clean.rtt_median_ms.expect("median");
    let theirs = ping_median_ms(&peer, 200);
    let tolerance = (theirs * 0.2).max(0.1);
    assert!(
        (ours - theirs).abs() <= tolerance,
        "median RTT {ours:.4} ms vs ping {theirs:.4} ms (tolerance {tolerance:.4})"
    );

    // 10 % of echo requests dropped at random in the namespace.
    ns.nft(
        "table inet netprobe_test {\n chain input {\n  type filter hook input priority 0;\n  \
         icmp type echo-request numgen random mod 10 0 drop\n }\n}\n",
    );
    let lossy = run(&target(&peer, 1000, Duration::from_millis(2)), &pinger).await;
    assert_eq!(lossy.sent, 1000);
    // Binomial: sd = sqrt(1000 * 0.1 * 0.9) / 10 = 0.95 pp; 4 sd = 3.8 pp.
    assert!((lossy.loss_pct - 10.0).abs() <= 4.0, "loss {} % over 1000 (expected 10 +- 4)", lossy.loss_pct);
    assert!(lossy.error.is_none(), "partial loss is a measurement, not an error: {lossy:?}");

    // Every request dropped: a timeout, with no RTT statistics.
    ns.nft("flush ruleset\ntable inet netprobe_test {\n chain input {\n  type filter hook input priority 0;\n  icmp type echo-request drop\n }\n}\n");
    let mut silent = target(&peer, 2, Duration::from_millis(20));
    silent.timeout = Duration::from_millis(300);
    let r = run(&silent, &pinger).await;
    assert_eq!((r.sent, r.received, r.loss_pct), (2, 0, 100.0), "{r:?}");
    assert_eq!(r.error.as_ref().map(|e| e.class), Some(ErrorClass::Timeout), "{r:?}");
    assert!(r.rtt_median_ms.is_none() && r.jitter_ms.is_none());
    eprintln!("clean median {ours:.4} ms (ping {theirs:.4} ms); lossy loss {} %", lossy.loss_pct);
}

/// `netprobe-agent --health-check` for one ICMP target, inside `ns`,
/// without CAP_NET_RAW: (exit success, the one result).
fn health_check_without_cap_net_raw(ns: &Netns, dir: &std::path::Path) -> (bool, netprobe_wire::msg::Icmp) {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        "[agent]\nprobe_id = \"unpriv\"\nlocation = \"l\"\n[kafka]\nbrokers = [\"127.0.0.1:1\"]\nusername = \"agent\"\n\
         ca_file = \"/nonexistent\"\n[[icmp]]\ntarget = \"127.0.0.1\"\ninterval = \"10s\"\ncount = 3\npacket_interval = \"50ms\"\n",
    )
    .expect("config");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw", "--"])
        .arg(env!("CARGO_BIN_EXE_netprobe-agent"))
        .arg("--config")
        .arg(&config)
        .arg("--health-check")
        .output()
        .expect("agent runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let msg = netprobe_wire::decode(stdout.trim().as_bytes()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let netprobe_wire::Body::Icmp(icmp) = msg.body else { panic!("icmp result: {stdout}") };
    (out.status.success(), icmp)
}

#[test]
fn without_cap_net_raw_uses_unprivileged_sockets_or_names_both_options() {
    // ping_group_range is per network namespace: set it only in ours.
    let ns = Netns::new("unpr", 202);
    let dir = tempfile::tempdir().expect("tempdir");
    ns.exec(&["sysctl", "-q", "-w", "net.ipv4.ping_group_range=1 0"]);
    let (ok, denied) = health_check_without_cap_net_raw(&ns, dir.path());
    assert!(!ok, "{denied:?}");
    let error = denied.error.expect("error");
    assert_eq!(error.class, ErrorClass::PermissionDenied);
    assert_eq!((denied.sent, denied.loss_pct), (0, 100.0), "nothing sent is 100 % loss");
    assert!(error.message.contains("ping_group_range") && error.message.contains("CAP_NET_RAW"), "{}", error.message);

    ns.exec(&["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"]);
    let (ok, unprivileged) = health_check_without_cap_net_raw(&ns, dir.path());
    assert!(ok, "{unprivileged:?}");
    assert_eq!((unprivileged.sent, unprivileged.received), (3, 3), "{unprivileged:?}");
}

/// Regression (hardening issue, fault 1): requests that time out used to
/// stay in the socket's in-flight map forever; after 65,536 of them `send`
/// spun for a free sequence number, hanging the agent's only thread.
#[test]
fn seventy_thousand_unanswered_requests_leave_the_pinger_working() {
    let ns = Netns::new("hole", 203);
    ns.nft("table inet netprobe_test {\n chain input {\n  type filter hook input priority 0;\n  icmp type echo-request drop\n }\n}\n");
    let peer = ns.peer_ip.to_string();
    let (done, outcome) = std::sync::mpsc::channel();
    // Its own thread and runtime: a hung pinger must fail the test, not hang it.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let pinger = std::sync::Arc::new(Pinger::new());
            let mut hole = target(&peer, 9_000, Duration::from_micros(500));
            hole.timeout = Duration::from_millis(20);
            let mut runs = tokio::task::JoinSet::new();
            for _ in 0..9 {
                let (pinger, hole) = (std::sync::Arc::clone(&pinger), hole.clone());
                runs.spawn(async move { run(&hole, &pinger).await });
            }
            let mut most_pending = 0;
            let mut sent = 0;
            loop {
                tokio::select! {
                    r = runs.join_next() => match r {
                        Some(r) => sent += r.expect("run").sent,
                        None => break,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(50)) => most_pending = most_pending.max(pinger.pending()),
                }
            }
            let live = run(&target("127.0.0.1", 3, Duration::from_millis(10)), &pinger).await;
            let _ = done.send((sent, most_pending, pinger.pending(), live));
        });
    });
    let (sent, most_pending, pending_after, live) =
        outcome.recv_timeout(Duration::from_secs(120)).expect("the pinger finished (a hang means the map filled up)");
    // 81,000 attempted; a burst may meet ENOBUFS, which ends that run early.
    assert!(sent > 70_000, "only {sent} requests sent: the sequence space was never exhausted");
    assert_eq!((live.sent, live.received), (3, 3), "a live target still answers: {live:?}");
    // 9 runs x 2,000 requests/s x 20 ms timeout = 360 waiting; far below 65,536.
    assert!(most_pending < 10_000, "{most_pending} requests waiting at once");
    assert_eq!(pending_after, 0, "every entry left the map");
}
