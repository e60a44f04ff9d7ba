//! RIS Live client against a local websocket server speaking the RIS Live
//! protocol (<https://ris-live.ripe.net/manual/>): subscriptions, a
//! scripted story of UPDATEs (announcements, an AS_SET origin,
//! communities, a more-specific, a withdrawal, IPv6 with an RFC 2545
//! next-hop pair), malformed frames in the middle, a dropped connection
//! (the client reconnects and subscribes again), a stale connection (no
//! message: closed and replaced, pings sent meanwhile) and shutdown.
//!
//! The expected elems are written by hand from the JSON the server sends.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgpkit_parser::models::{AsPath, AsPathSegment, Asn, Community, ElemType, MetaCommunity};
use futures_util::{SinkExt, StreamExt};
use netprobe_agent::probe::bgp::feed::{FeedElem, FeedHealth};
use netprobe_agent::probe::bgp::ris_live::{self, RisLiveOptions};
use netprobe_wire::msg::BgpSource;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(20);

type Ws = WebSocketStream<TcpStream>;

async fn accept(listener: &TcpListener) -> Ws {
    let (stream, _) =
        tokio::time::timeout(DEADLINE, listener.accept()).await.expect("client connects in time").expect("accept");
    tokio_tungstenite::accept_async(stream).await.expect("websocket handshake")
}

/// The next text frame from the client (pings are skipped and counted).
async fn next_text(ws: &mut Ws, pings: &mut usize) -> String {
    loop {
        let frame = tokio::time::timeout(DEADLINE, ws.next()).await.expect("client frame in time");
        match frame.expect("connection open").expect("frame") {
            Message::Text(t) => return t.as_str().to_owned(),
            Message::Ping(_) => *pings += 1,
            other => panic!("unexpected frame from the client: {other:?}"),
        }
    }
}

/// Reads one subscription per watched prefix and checks each.
async fn expect_subscriptions(ws: &mut Ws) {
    let mut pings = 0;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(serde_json::from_str::<Value>(&next_text(ws, &mut pings).await).expect("subscribe is JSON"));
    }
    let expected = vec![
        json!({"type": "ris_subscribe", "data": {"prefix": "198.51.100.0/24", "moreSpecific": true, "type": "UPDATE"}}),
        json!({"type": "ris_subscribe", "data": {"prefix": "2001:db8::/32", "moreSpecific": true, "type": "UPDATE"}}),
    ];
    assert_eq!(got, expected);
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.expect("server send");
}

/// A RIS Live UPDATE frame.
fn update(host: &str, peer: &str, peer_asn: u32, body: Value) -> String {
    let mut data = json!({
        "timestamp": 1_700_000_000.25, "peer": peer, "peer_asn": peer_asn.to_string(),
        "id": "test-0001", "host": host, "type": "UPDATE",
    });
    for (k, v) in body.as_object().expect("object") {
        data[k] = v.clone();
    }
    json!({"type": "ris_message", "data": data}).to_string()
}

/// What the test checks of one elem, spelled independently of the client.
#[derive(Debug, PartialEq)]
struct Seen {
    kind: ElemType,
    prefix: String,
    peer_ip: IpAddr,
    peer_asn: u32,
    as_path: Option<AsPath>,
    origins: Option<Vec<u32>>,
    next_hop: Option<IpAddr>,
    communities: Option<Vec<MetaCommunity>>,
    collector: String,
}

fn seen(f: &FeedElem) -> Seen {
    assert_eq!(f.source, BgpSource::RisLive);
    Seen {
        kind: f.elem.elem_type,
        prefix: f.elem.prefix.prefix.to_string(),
        peer_ip: f.elem.peer_ip,
        peer_asn: f.elem.peer_asn.to_u32(),
        as_path: f.elem.as_path.clone(),
        origins: f.elem.origin_asns.as_ref().map(|v| v.iter().map(|a| a.to_u32()).collect()),
        next_hop: f.elem.next_hop,
        communities: f.elem.communities.clone(),
        collector: f.collector.clone(),
    }
}

fn community(asn: u32, value: u16) -> MetaCommunity {
    MetaCommunity::Plain(Community::Custom(Asn::new_32bit(asn), value))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

async fn recv_n(rx: &mut mpsc::Receiver<FeedElem>, n: usize) -> Vec<Seen> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} elems arrived: {out:#?}", out.len()));
        out.push(seen(&e.expect("channel open")));
    }
    out
}

async fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Timers scaled down for tests: pings every 200 ms, stale after
/// `stale_after`, reconnects within 100 ms.
fn fast_options(stale_after: Duration) -> RisLiveOptions {
    RisLiveOptions {
        ca_file: None,
        stale_after,
        ping_interval: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(5),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(100),
    }
}

fn watched() -> Vec<ipnet::IpNet> {
    vec!["198.51.100.0/24".parse().expect("net"), "2001:db8::/32".parse().expect("net")]
}

#[tokio::test]
async fn story_malformed_frames_reconnect_and_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/v1/ws/", listener.local_addr().expect("addr"));
    let (tx, mut rx) = mpsc::channel(64);
    let health = Arc::new(FeedHealth::new(format!("ris-live {url}")));
    let shutdown = CancellationToken::new();
    let client = tokio::spawn(ris_live::run(url, watched(), tx, Arc::clone(&health), shutdown.clone()));

    // First connection: subscriptions, the story, malformed frames, a drop.
    let mut ws = accept(&listener).await;
    expect_subscriptions(&mut ws).await;
    poll_until("connected", || health.connected.load(Ordering::Relaxed)).await;
    let story = [
        update(
            "rrc00",
            "192.0.2.1",
            64496,
            json!({
            "path": [64496, 64500], "origin": "IGP", "community": [[64500, 100], [64496, 7]],
            "announcements": [{"next_hop": "192.0.2.1", "prefixes": ["198.51.100.0/24"]}], "withdrawals": []}),
        ),
        r#"{"type":"ris_message","data":{"timestamp":1700000000.5,"peer":"192.0.2.1""#.to_owned(),
        update(
            "rrc01",
            "192.0.2.2",
            64497,
            json!({
            "path": [64497, [64501, 64502]], "origin": "INCOMPLETE",
            "announcements": [{"next_hop": "192.0.2.2", "prefixes": ["198.51.100.0/24"]}]}),
        ),
        update(
            "rrc00",
            "192.0.2.1",
            64496,
            json!({
            "path": [64496, 64666], "origin": "IGP", "community": [[64666, 1]],
            "announcements": [{"next_hop": "192.0.2.1", "prefixes": ["198.51.100.128/25"]}]}),
        ),
        update(
            "rrc00",
            "192.0.2.1",
            64496,
            json!({
            "path": [64496, 64500], "origin": "IGP",
            "announcements": [{"next_hop": "192.0.2.1", "prefixes": ["not-a-prefix"]}]}),
        ),
        json!({"type": "ris_error", "data": {"message": "Unknown subscription parameter"}}).to_string(),
        update("rrc00", "192.0.2.1", 64496, json!({"withdrawals": ["198.51.100.128/25"]})),
    ];
    for frame in &story {
        send(&mut ws, frame).await;
    }
    let first = recv_n(&mut rx, 4).await;
    assert_eq!(
        first,
        vec![
            Seen {
                kind: ElemType::ANNOUNCE,
                prefix: "198.51.100.0/24".into(),
                peer_ip: ip("192.0.2.1"),
                peer_asn: 64496,
                as_path: Some(AsPath::from_segments(vec![AsPathSegment::sequence([64496, 64500])])),
                origins: Some(vec![64500]),
                next_hop: Some(ip("192.0.2.1")),
                communities: Some(vec![community(64500, 100), community(64496, 7)]),
                collector: "rrc00".into()
            },
            Seen {
                kind: ElemType::ANNOUNCE,
                prefix: "198.51.100.0/24".into(),
                peer_ip: ip("192.0.2.2"),
                peer_asn: 64497,
                as_path: Some(AsPath::from_segments(vec![
                    AsPathSegment::sequence([64497]),
                    AsPathSegment::set([64501, 64502])
                ])),
                origins: Some(vec![64501, 64502]),
                next_hop: Some(ip("192.0.2.2")),
                communities: None,
                collector: "rrc01".into()
            },
            Seen {
                kind: ElemType::ANNOUNCE,
                prefix: "198.51.100.128/25".into(),
                peer_ip: ip("192.0.2.1"),
                peer_asn: 64496,
                as_path: Some(AsPath::from_segments(vec![AsPathSegment::sequence([64496, 64666])])),
                origins: Some(vec![64666]),
                next_hop: Some(ip("192.0.2.1")),
                communities: Some(vec![community(64666, 1)]),
                collector: "rrc00".into()
            },
            Seen {
                kind: ElemType::WITHDRAW,
                prefix: "198.51.100.128/25".into(),
                peer_ip: ip("192.0.2.1"),
                peer_asn: 64496,
                as_path: None,
                origins: None,
                next_hop: None,
                communities: None,
                collector: "rrc00".into()
            },
        ]
    );
    assert_eq!(health.malformed.load(Ordering::Relaxed), 2, "the truncated frame and the bad prefix");
    assert_eq!(health.messages.load(Ordering::Relaxed), story.len() as u64);
    assert_eq!(health.reconnects.load(Ordering::Relaxed), 0);
    drop(ws); // the server drops the TCP connection without a close frame

    // Second connection: the client is back and subscribed again.
    let mut ws = accept(&listener).await;
    expect_subscriptions(&mut ws).await;
    poll_until("reconnect counted", || health.reconnects.load(Ordering::Relaxed) == 1).await;
    assert!(health.connected.load(Ordering::Relaxed));
    send(
        &mut ws,
        &update(
            "rrc00",
            "2001:db8::1",
            64496,
            json!({
        "path": [64496, 64500], "origin": "IGP",
        "announcements": [{"next_hop": "2001:db8::1,fe80::1", "prefixes": ["2001:db8:1::/48"]}]}),
        ),
    )
    .await;
    let second = recv_n(&mut rx, 1).await;
    assert_eq!(
        second,
        vec![Seen {
            kind: ElemType::ANNOUNCE,
            prefix: "2001:db8:1::/48".into(),
            peer_ip: ip("2001:db8::1"),
            peer_asn: 64496,
            as_path: Some(AsPath::from_segments(vec![AsPathSegment::sequence([64496, 64500])])),
            origins: Some(vec![64500]),
            next_hop: Some(ip("2001:db8::1")),
            communities: None,
            collector: "rrc00".into()
        }]
    );
    assert_eq!(health.messages.load(Ordering::Relaxed), story.len() as u64 + 1);
    assert!(!health.is_stale(Instant::now(), Duration::from_secs(60)));

    shutdown.cancel();
    tokio::time::timeout(DEADLINE, client).await.expect("client stops on shutdown").expect("client task");
    assert!(!health.connected.load(Ordering::Relaxed));
    assert!(rx.try_recv().is_err(), "no elem beyond the story");
}

#[tokio::test]
async fn a_silent_connection_is_stale_pinged_then_replaced() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/v1/ws/", listener.local_addr().expect("addr"));
    let (tx, _rx) = mpsc::channel(8);
    let health = Arc::new(FeedHealth::new("ris-live stale test"));
    assert!(health.is_stale(Instant::now(), Duration::from_secs(3600)), "a feed that never delivered is stale");
    let shutdown = CancellationToken::new();
    let stale_after = Duration::from_secs(1);
    let options = fast_options(stale_after);
    let client = tokio::spawn(ris_live::run_with(url, watched(), tx, Arc::clone(&health), shutdown.clone(), options));

    let mut ws = accept(&listener).await;
    expect_subscriptions(&mut ws).await;
    // One frame, then a server that neither sends nor reads: the client's
    // pings go unanswered (no pong without a read), so its stale clock
    // runs from this frame.
    let last_sent = Instant::now();
    send(&mut ws, r#"{"type":"pong","data":null}"#).await;
    let mut ws2 = accept(&listener).await;
    assert!(
        last_sent.elapsed() >= stale_after,
        "replaced {:?} after the last frame, before the stale limit",
        last_sent.elapsed()
    );
    // What the client sent on the abandoned connection: pings, then its close.
    let mut pings = 0;
    loop {
        match tokio::time::timeout(DEADLINE, ws.next()).await.expect("old connection readable") {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(other)) => panic!("unexpected frame: {other:?}"),
        }
    }
    assert!(pings >= 2, "pings every 200 ms over a 1 s silence, got {pings}");
    expect_subscriptions(&mut ws2).await;
    poll_until("reconnect counted", || health.reconnects.load(Ordering::Relaxed) == 1).await;
    assert!(health.is_stale(Instant::now(), stale_after), "the last message is older than the stale limit");
    assert_eq!(health.messages.load(Ordering::Relaxed), 1);
    assert_eq!(health.malformed.load(Ordering::Relaxed), 0);

    shutdown.cancel();
    tokio::time::timeout(DEADLINE, client).await.expect("client stops on shutdown").expect("client task");
}

/// `wss://` through rustls (ring) to a local TLS websocket server whose
/// certificate is signed by a test CA given as `ca_file`; then the same
/// server with the system roots only: refused, nothing delivered.
#[tokio::test]
async fn wss_with_a_private_ca_and_an_untrusted_server() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "netprobe RIS Live test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca = ca_params.self_signed(&ca_key).expect("CA cert");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &Issuer::from_params(&ca_params, &ca_key))
        .expect("leaf cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write CA");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server cert");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("wss://localhost:{}/v1/ws/", listener.local_addr().expect("addr").port());
    let (tx, mut rx) = mpsc::channel(8);
    let health = Arc::new(FeedHealth::new(format!("ris-live {url}")));
    let shutdown = CancellationToken::new();
    let options = RisLiveOptions { ca_file: Some(ca_file), ..RisLiveOptions::default() };
    let client =
        tokio::spawn(ris_live::run_with(url.clone(), watched(), tx, Arc::clone(&health), shutdown.clone(), options));

    let (tcp, _) = tokio::time::timeout(DEADLINE, listener.accept()).await.expect("client connects").expect("accept");
    let tls = acceptor.accept(tcp).await.expect("TLS handshake with the client");
    let mut ws = tokio_tungstenite::accept_async(tls).await.expect("websocket handshake");
    let mut pings = 0;
    let mut got = Vec::new();
    for _ in 0..2 {
        let text = loop {
            match tokio::time::timeout(DEADLINE, ws.next()).await.expect("frame in time").expect("open").expect("frame")
            {
                Message::Text(t) => break t.as_str().to_owned(),
                Message::Ping(_) => pings += 1,
                other => panic!("unexpected frame {other:?}"),
            }
        };
        got.push(serde_json::from_str::<Value>(&text).expect("JSON"));
    }
    assert_eq!(
        got,
        vec![
            json!({"type": "ris_subscribe", "data": {"prefix": "198.51.100.0/24", "moreSpecific": true, "type": "UPDATE"}}),
            json!({"type": "ris_subscribe", "data": {"prefix": "2001:db8::/32", "moreSpecific": true, "type": "UPDATE"}}),
        ]
    );
    assert_eq!(pings, 0, "no ping within the first 30 s");
    let frame = update(
        "rrc21",
        "192.0.2.9",
        64499,
        json!({
        "path": [64499, 64500], "origin": "IGP",
        "announcements": [{"next_hop": "192.0.2.9", "prefixes": ["198.51.100.0/24"]}]}),
    );
    ws.send(Message::text(frame)).await.expect("send");
    assert_eq!(
        recv_n(&mut rx, 1).await,
        vec![Seen {
            kind: ElemType::ANNOUNCE,
            prefix: "198.51.100.0/24".into(),
            peer_ip: ip("192.0.2.9"),
            peer_asn: 64499,
            as_path: Some(AsPath::from_segments(vec![AsPathSegment::sequence([64499, 64500])])),
            origins: Some(vec![64500]),
            next_hop: Some(ip("192.0.2.9")),
            communities: None,
            collector: "rrc21".into()
        }]
    );
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, client).await.expect("client stops").expect("client task");

    // The same server, but the client trusts only the system roots.
    let (tx, mut rx) = mpsc::channel(8);
    let health = Arc::new(FeedHealth::new("ris-live untrusted"));
    let shutdown = CancellationToken::new();
    let client = tokio::spawn(ris_live::run(url, watched(), tx, Arc::clone(&health), shutdown.clone()));
    let (tcp, _) = tokio::time::timeout(DEADLINE, listener.accept()).await.expect("client connects").expect("accept");
    assert!(acceptor.accept(tcp).await.is_err(), "the client must reject a certificate from an unknown CA");
    assert!(!health.connected.load(Ordering::Relaxed));
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, client).await.expect("client stops").expect("client task");
    assert!(rx.try_recv().is_err(), "nothing delivered");
    assert_eq!(health.reconnects.load(Ordering::Relaxed), 0);
}

/// A watched prefix can be quiet for hours: a connection that answers the
/// client's pings stays up and the feed live, though no message arrives
/// for several times the stale limit.
#[tokio::test]
async fn a_quiet_prefix_on_a_live_connection_is_not_stale() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/v1/ws/", listener.local_addr().expect("addr"));
    let (tx, _rx) = mpsc::channel(8);
    let health = Arc::new(FeedHealth::new("ris-live quiet test"));
    let shutdown = CancellationToken::new();
    let stale_after = Duration::from_secs(1);
    let options = fast_options(stale_after);
    let client = tokio::spawn(ris_live::run_with(url, watched(), tx, Arc::clone(&health), shutdown.clone(), options));
    let mut ws = accept(&listener).await;
    expect_subscriptions(&mut ws).await;
    // Read (which answers each ping with a pong) for 3 x the stale limit,
    // sending nothing; the client must neither close nor reconnect.
    let quiet = Instant::now() + 3 * stale_after;
    let mut pings = 0;
    while Instant::now() < quiet {
        match tokio::time::timeout_at(tokio::time::Instant::from_std(quiet), ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(other) => panic!("the client closed or sent {other:?} on a live, quiet connection"),
        }
    }
    assert!(pings >= 10, "pings every 200 ms over 3 s, got {pings}");
    assert!(tokio::time::timeout(Duration::from_millis(100), listener.accept()).await.is_err(), "no second connection");
    assert_eq!(health.reconnects.load(Ordering::Relaxed), 0);
    assert!(health.connected.load(Ordering::Relaxed));
    assert!(!health.is_stale(Instant::now(), stale_after), "pongs keep the quiet feed live");
    assert_eq!(health.messages.load(Ordering::Relaxed), 0, "pongs are not messages");
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, client).await.expect("client stops on shutdown").expect("client task");
}
