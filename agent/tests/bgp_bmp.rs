//! BMP station against a real BGP implementation: GoBGP (gobgpd v3, built
//! by scripts/test into ~/.cache/netprobe/gobgp-*/bin). Two gobgpd run on
//! loopback: `origin` (AS 64500, 127.0.0.2) originates routes with
//! `gobgp global rib add/del`; `router` (AS 64512, 127.0.0.3) peers with
//! it and reports its pre-policy Adj-RIB-In over BMP to the station. The
//! test announces, changes, adds a more-specific, withdraws, then stops
//! `origin` (Peer Down: the station withdraws what the peer still had),
//! and checks each elem against what it told GoBGP. Garbage connections
//! before and during the session are counted and closed while the router
//! keeps being served.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgpkit_parser::models::{AsPath, AsPathSegment, Asn, Community, ElemType, MetaCommunity};
use common::gobgp::{start_routers, Gobgpd, ORIGIN_ID};
use netprobe_agent::probe::bgp::bmp::{self, BmpOptions};
use netprobe_agent::probe::bgp::feed::{FeedElem, FeedHealth};
use netprobe_wire::msg::BgpSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

/// What the test checks of one elem, spelled independently of the station.
#[derive(Debug, PartialEq)]
struct Seen {
    kind: ElemType,
    prefix: String,
    peer_ip: IpAddr,
    peer_asn: u32,
    peer_bgp_id: Option<Ipv4Addr>,
    as_path: Option<AsPath>,
    origins: Option<Vec<u32>>,
    next_hop: Option<IpAddr>,
    communities: Option<Vec<MetaCommunity>>,
    collector: String,
}

fn seen(f: &FeedElem) -> Seen {
    assert_eq!(f.source, BgpSource::Bmp);
    Seen {
        kind: f.elem.elem_type,
        prefix: f.elem.prefix.prefix.to_string(),
        peer_ip: f.elem.peer_ip,
        peer_asn: f.elem.peer_asn.to_u32(),
        peer_bgp_id: f.elem.peer_bgp_id,
        as_path: f.elem.as_path.clone(),
        origins: f.elem.origin_asns.as_ref().map(|v| v.iter().map(|a| a.to_u32()).collect()),
        next_hop: f.elem.next_hop,
        communities: f.elem.communities.clone(),
        collector: f.collector.clone(),
    }
}

const ORIGIN_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn announce(prefix: &str, path: &[u32], community: Option<(u32, u16)>) -> Seen {
    Seen {
        kind: ElemType::ANNOUNCE,
        prefix: prefix.to_owned(),
        peer_ip: IpAddr::V4(ORIGIN_IP),
        peer_asn: 64500,
        peer_bgp_id: Some(ORIGIN_ID),
        as_path: Some(AsPath::from_segments(vec![AsPathSegment::sequence(path)])),
        origins: Some(vec![*path.last().expect("path")]),
        // eBGP: the origin daemon sets itself as next hop.
        next_hop: Some(IpAddr::V4(ORIGIN_IP)),
        communities: community.map(|(a, v)| vec![MetaCommunity::Plain(Community::Custom(Asn::new_32bit(a), v))]),
        collector: "127.0.0.1".to_owned(),
    }
}

fn withdraw(prefix: &str) -> Seen {
    Seen {
        kind: ElemType::WITHDRAW,
        prefix: prefix.to_owned(),
        peer_ip: IpAddr::V4(ORIGIN_IP),
        peer_asn: 64500,
        peer_bgp_id: Some(ORIGIN_ID),
        as_path: None,
        origins: None,
        next_hop: None,
        communities: None,
        collector: "127.0.0.1".to_owned(),
    }
}

async fn next_elem(rx: &mut mpsc::Receiver<FeedElem>, what: &str, logs: &[&Gobgpd]) -> Seen {
    match tokio::time::timeout(DEADLINE, rx.recv()).await {
        Ok(Some(e)) => seen(&e),
        Ok(None) => panic!("station stopped while waiting for {what}"),
        Err(_) => {
            let logs: Vec<String> = logs.iter().map(|g| g.log_tail()).collect();
            panic!("no elem for {what} within {DEADLINE:?}\n{}", logs.join("\n"))
        }
    }
}

async fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP connection to the station from `from` (so it is not mistaken for
/// the router's address).
async fn connect_from(from: Ipv4Addr, station: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).expect("bind source");
    socket.connect(station).await.expect("connect to the station")
}

/// Waits until the station closes `stream` (EOF or reset).
async fn expect_closed(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("{what}: the station sent {n} bytes"),
        Err(_) => panic!("{what}: the station did not close the connection"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gobgp_announce_change_withdraw_peer_down_and_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind station");
    let station = listener.local_addr().expect("addr");
    let (tx, mut rx) = mpsc::channel(256);
    let health = Arc::new(FeedHealth::new(format!("bmp {station}")));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(bmp::serve(listener, tx, Arc::clone(&health), shutdown.clone(), BmpOptions::default()));

    // Garbage before any router: an HTTP request is not BMP version 3.
    let mut junk = connect_from(Ipv4Addr::new(127, 0, 0, 5), station).await;
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    expect_closed(&mut junk, "HTTP on the BMP port").await;
    assert_eq!(health.malformed.load(Ordering::Relaxed), 1);

    let (mut origin, router) = start_routers(dir.path(), station);
    poll_until("the router's BMP session", || health.connected.load(Ordering::Relaxed)).await;

    // Announce.
    origin.cli(&[
        "global",
        "rib",
        "-a",
        "ipv4",
        "add",
        "198.51.100.0/24",
        "aspath",
        "64501",
        "community",
        "64500:100",
        "origin",
        "igp",
    ]);
    assert_eq!(
        next_elem(&mut rx, "the announcement", &[&origin, &router]).await,
        announce("198.51.100.0/24", &[64500, 64501], Some((64500, 100)))
    );

    // Garbage while the router is connected: a well-framed message that is
    // not a valid Route Monitoring (skipped, connection kept), then an
    // absurd length (connection closed). The router is unaffected.
    let mut junk = connect_from(Ipv4Addr::new(127, 0, 0, 6), station).await;
    junk.write_all(&[3, 0, 0, 0, 10, 0, 0xde, 0xad, 0xbe, 0xef]).await.expect("write");
    poll_until("the unparsable message counted", || health.malformed.load(Ordering::Relaxed) == 2).await;
    junk.write_all(&[3, 0xff, 0xff, 0xff, 0xff, 0]).await.expect("write");
    expect_closed(&mut junk, "a 4 GiB BMP message").await;
    assert_eq!(health.malformed.load(Ordering::Relaxed), 3);

    // Change: same prefix, new path and community (an implicit replace).
    origin.cli(&[
        "global",
        "rib",
        "-a",
        "ipv4",
        "add",
        "198.51.100.0/24",
        "aspath",
        "64502 64501",
        "community",
        "64500:200",
        "origin",
        "igp",
    ]);
    assert_eq!(
        next_elem(&mut rx, "the changed route", &[&origin, &router]).await,
        announce("198.51.100.0/24", &[64500, 64502, 64501], Some((64500, 200)))
    );

    // A more-specific from another origin AS.
    origin.cli(&["global", "rib", "-a", "ipv4", "add", "198.51.100.128/25", "aspath", "64666", "origin", "igp"]);
    assert_eq!(
        next_elem(&mut rx, "the more-specific", &[&origin, &router]).await,
        announce("198.51.100.128/25", &[64500, 64666], None)
    );

    // Withdraw.
    origin.cli(&["global", "rib", "-a", "ipv4", "del", "198.51.100.0/24"]);
    assert_eq!(next_elem(&mut rx, "the withdrawal", &[&origin, &router]).await, withdraw("198.51.100.0/24"));

    // Peer Down: the origin stops; the router reports the peer down and the
    // station withdraws the route the peer still had (the /25).
    origin.stop();
    assert_eq!(
        next_elem(&mut rx, "the Peer Down withdrawal", &[&origin, &router]).await,
        withdraw("198.51.100.128/25")
    );

    assert!(health.connected.load(Ordering::Relaxed), "the router is still connected");
    assert!(health.messages.load(Ordering::Relaxed) >= 7, "initiation, peer up, 4 route monitoring, peer down");
    assert_eq!(health.malformed.load(Ordering::Relaxed), 3);
    assert_eq!(health.reconnects.load(Ordering::Relaxed), 0);

    shutdown.cancel();
    tokio::time::timeout(DEADLINE, server).await.expect("station stops on shutdown").expect("station task");
    assert!(!health.connected.load(Ordering::Relaxed));
    assert!(rx.recv().await.is_none(), "no elem beyond the story; channel closed after shutdown");
    drop(router);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_and_bind_errors_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind station");
    let station = listener.local_addr().expect("addr");
    let (tx, _rx) = mpsc::channel(8);
    let health = Arc::new(FeedHealth::new("bmp limit test"));
    let shutdown = CancellationToken::new();
    let options = BmpOptions { max_routers: 1, ..BmpOptions::default() };
    let server = tokio::spawn(bmp::serve(listener, tx.clone(), Arc::clone(&health), shutdown.clone(), options));

    let _first = connect_from(Ipv4Addr::new(127, 0, 0, 7), station).await;
    poll_until("first router connected", || health.connected.load(Ordering::Relaxed)).await;
    let mut second = connect_from(Ipv4Addr::new(127, 0, 0, 8), station).await;
    expect_closed(&mut second, "a connection over max_routers").await;

    // Binding an address in use is the one error run() returns.
    let err = bmp::run(station, tx, Arc::new(FeedHealth::new("bmp dup")), shutdown.clone())
        .await
        .expect_err("address in use");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&station.to_string()), "{err}");

    shutdown.cancel();
    tokio::time::timeout(DEADLINE, server).await.expect("station stops").expect("station task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_list_filters_and_peer_down_tracking_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind station");
    let station = listener.local_addr().expect("addr");
    let (tx, mut rx) = mpsc::channel(256);
    let health = Arc::new(FeedHealth::new(format!("bmp {station}")));
    let shutdown = CancellationToken::new();
    let options = BmpOptions {
        watch: vec!["198.51.100.0/24".parse().expect("net")],
        tracked_routes_per_router: 1,
        ..BmpOptions::default()
    };
    let server = tokio::spawn(bmp::serve(listener, tx, Arc::clone(&health), shutdown.clone(), options));
    let (mut origin, router) = start_routers(dir.path(), station);
    poll_until("the router's BMP session", || health.connected.load(Ordering::Relaxed)).await;

    // Unwatched: not passed on (the next elem is the watched /24).
    origin.cli(&["global", "rib", "-a", "ipv4", "add", "203.0.113.0/24", "aspath", "64777", "origin", "igp"]);
    origin.cli(&["global", "rib", "-a", "ipv4", "add", "198.51.100.0/24", "aspath", "64501", "origin", "igp"]);
    assert_eq!(
        next_elem(&mut rx, "the watched /24", &[&origin, &router]).await,
        announce("198.51.100.0/24", &[64500, 64501], None)
    );
    origin.cli(&["global", "rib", "-a", "ipv4", "add", "198.51.100.128/25", "aspath", "64666", "origin", "igp"]);
    assert_eq!(
        next_elem(&mut rx, "the watched /25", &[&origin, &router]).await,
        announce("198.51.100.128/25", &[64500, 64666], None)
    );

    // Peer Down: only the one tracked route (limit 1) is withdrawn.
    origin.stop();
    assert_eq!(next_elem(&mut rx, "the Peer Down withdrawal", &[&origin, &router]).await, withdraw("198.51.100.0/24"));

    shutdown.cancel();
    tokio::time::timeout(DEADLINE, server).await.expect("station stops on shutdown").expect("station task");
    assert!(rx.recv().await.is_none(), "nothing else: the unwatched prefix and the untracked /25 stay out");
    drop(router);
}
