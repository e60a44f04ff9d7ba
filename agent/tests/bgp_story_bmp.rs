//! The BGP monitor fed by BMP from a real BGP implementation, through the
//! agent's real path (config `source = "bmp:ADDR"`, `BgpRuntime`, BMP
//! station, state machine): GoBGP (gobgpd v3, built by scripts/test into
//! ~/.cache/netprobe/gobgp-*/bin, or `NETPROBE_GOBGP_BIN`).
//!
//! Two gobgpd run on loopback: `origin` (AS 64500, 127.0.0.2) originates
//! routes with `gobgp global rib add/del`; `router` (AS 64512, 127.0.0.3)
//! peers with it and reports its pre-policy Adj-RIB-In over BMP to the
//! agent's station. The watched prefix is 198.51.100.0/24 with expected
//! origin AS 64500. The test makes the origin announce it, prepend (path
//! change), announce it with origin AS 64666 behind it (origin change),
//! return to itself, add a more-specific, withdraw the /24, then stop
//! (Peer Down: the station withdraws the /25 the peer still had), and
//! checks each event against what it told GoBGP, in order, nothing else.
//!
//! An eBGP speaker prepends its own AS: `aspath X` given to `origin`
//! reaches the router as `64500 X`, and without `aspath` as `64500`.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::gobgp::{free_port, start_routers, Gobgpd};
use netprobe_agent::probe::bgp::BgpRuntime;
use netprobe_agent::Config;
use netprobe_wire::msg::{Bgp, BgpSource};
use netprobe_wire::{Body, Message, ProbeId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);
const WATCHED: &str = "198.51.100.0/24";
const MORE_SPECIFIC: &str = "198.51.100.128/25";
const ORIGIN_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OWNER: u32 = 64500;
const HIJACKER: u32 = 64666;

/// The agent config: the watched /24, expected origin 64500, fed by a BMP
/// station on 127.0.0.1:`port`.
fn config(dir: &Path, port: u16) -> Config {
    let text = format!(
        "[agent]\nprobe_id = \"pop-test\"\nlocation = \"Test\"\n[kafka]\nbrokers = [\"127.0.0.1:9\"]\n\
         username = \"agent\"\nca_file = \"/ca\"\n[[bgp]]\nprefix = \"{WATCHED}\"\nexpected_origins = [{OWNER}]\n\
         source = \"bmp:127.0.0.1:{port}\"\n"
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write config");
    Config::load(&path).expect("config loads")
}

/// What the test checks of one event, spelled independently of the agent.
#[derive(Debug, PartialEq)]
struct Seen {
    event: String,
    prefix: String,
    peer_ip: IpAddr,
    peer_asn: u32,
    origin_asn: Option<u32>,
    as_path: Vec<u32>,
    next_hop: Option<IpAddr>,
    collector: String,
    source: BgpSource,
    watched_prefix: Option<String>,
    expected_origins: Vec<u32>,
}

fn seen(b: &Bgp) -> Seen {
    Seen {
        event: b.event.as_str().to_owned(),
        prefix: b.prefix.to_string(),
        peer_ip: b.peer_ip,
        peer_asn: b.peer_asn,
        origin_asn: b.origin_asn,
        as_path: b.as_path.clone(),
        next_hop: b.next_hop,
        collector: b.collector.clone(),
        source: b.source,
        watched_prefix: b.watched_prefix.map(|p| p.to_string()),
        expected_origins: b.expected_origins.clone(),
    }
}

/// An event about a route `origin` announced with `path` as the router
/// hears it (eBGP: next hop the origin's address).
fn route_event(event: &str, prefix: &str, path: &[u32]) -> Seen {
    Seen {
        event: event.to_owned(),
        prefix: prefix.to_owned(),
        peer_ip: IpAddr::V4(ORIGIN_IP),
        peer_asn: OWNER,
        origin_asn: path.last().copied(),
        as_path: path.to_vec(),
        next_hop: Some(IpAddr::V4(ORIGIN_IP)),
        // The router's BMP connection comes from the loopback's primary address.
        collector: "127.0.0.1".to_owned(),
        source: BgpSource::Bmp,
        watched_prefix: Some(WATCHED.to_owned()),
        expected_origins: vec![OWNER],
    }
}

fn withdraw_event(prefix: &str) -> Seen {
    Seen { origin_asn: None, as_path: Vec::new(), next_hop: None, ..route_event("withdraw", prefix, &[]) }
}

/// The next event (within the deadline), with the daemons' logs on timeout.
async fn next_event(rx: &mut mpsc::Receiver<Message>, what: &str, logs: &[&Gobgpd]) -> Bgp {
    match tokio::time::timeout(DEADLINE, rx.recv()).await {
        Ok(Some(Message { body: Body::Bgp(b), .. })) => b,
        Ok(Some(other)) => panic!("not a bgp message while waiting for {what}: {other:?}"),
        Ok(None) => panic!("the monitor stopped while waiting for {what}"),
        Err(_) => {
            let logs: Vec<String> = logs.iter().map(|g| g.log_tail()).collect();
            panic!("no event for {what} within {DEADLINE:?}\n{}", logs.join("\n"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gobgp_over_bmp_yields_announce_path_origin_more_specific_and_withdraw_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port("127.0.0.1");
    let config = config(dir.path(), port);
    let (tx, mut rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let mut runtime =
        BgpRuntime::start(config.bgp.clone(), &ProbeId("pop-test".into()), "Test", tx, &cancel).expect("starts");
    let (mut origin, router) = start_routers(dir.path(), SocketAddr::from(([127, 0, 0, 1], port)));
    let logs = [&origin, &router];

    // The router connects and reports (Initiation, Peer Up): the feed is live.
    let start = Instant::now();
    while !runtime.feed_status()[0].live {
        assert!(start.elapsed() < DEADLINE, "the BMP feed is not live: {:?}\n{}", runtime.feed_status(), {
            router.log_tail()
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(runtime.feed_status()[0].name, format!("bmp 127.0.0.1:{port}"));

    // 1. The owner announces the /24: first sight, expected origin.
    origin.add(WATCHED, None);
    let b = next_event(&mut rx, "the announcement", &logs).await;
    assert_eq!(seen(&b), route_event("announce", WATCHED, &[OWNER]));
    assert_eq!(b.peer_ip, IpAddr::V4(ORIGIN_IP));

    // 2. It prepends itself once: same origin, longer path.
    origin.add(WATCHED, Some("64500"));
    let b = next_event(&mut rx, "the prepended path", &logs).await;
    assert_eq!(seen(&b), route_event("path_change", WATCHED, &[OWNER, OWNER]));

    // 3. The /24 now ends in AS 64666 (announced behind the owner's
    // session): an unexpected origin.
    origin.add(WATCHED, Some("64666"));
    let b = next_event(&mut rx, "the new origin", &logs).await;
    assert_eq!(seen(&b), route_event("origin_change", WATCHED, &[OWNER, HIJACKER]));

    // 4. Back to the owner: an announcement again (expected origin).
    origin.add(WATCHED, None);
    let b = next_event(&mut rx, "the route back to the owner", &logs).await;
    assert_eq!(seen(&b), route_event("announce", WATCHED, &[OWNER]));

    // 5. A more-specific of the watched prefix from the owner.
    origin.add(MORE_SPECIFIC, None);
    let b = next_event(&mut rx, "the more-specific", &logs).await;
    assert_eq!(seen(&b), route_event("more_specific", MORE_SPECIFIC, &[OWNER]));
    assert_eq!(b.origin_expected, Some(true));

    // 6. The /24 is withdrawn.
    origin.cli(&["global", "rib", "-a", "ipv4", "del", WATCHED]);
    let b = next_event(&mut rx, "the withdrawal", &logs).await;
    assert_eq!(seen(&b), withdraw_event(WATCHED));

    // 7. The owner stops: Peer Down; the station withdraws the /25 it had.
    origin.stop();
    let b = next_event(&mut rx, "the Peer Down withdrawal", &[&router]).await;
    assert_eq!(seen(&b), withdraw_event(MORE_SPECIFIC));

    // Nothing else: every update above was classified (one ordered task)
    // before the last event; after stop the channel closes empty.
    let status = runtime.feed_status();
    assert!(status[0].live, "{status:?}");
    assert_eq!(status[0].malformed, 0);
    assert!(status[0].messages >= 9, "initiation, peer up, 6 route monitoring, peer down: {status:?}");
    runtime.stop();
    let end = tokio::time::timeout(DEADLINE, rx.recv()).await.expect("the monitor ends on stop");
    assert!(end.is_none(), "no event beyond the story: {end:?}");
    drop(router);
}
