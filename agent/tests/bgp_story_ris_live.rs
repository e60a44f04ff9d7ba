//! The BGP monitor fed by RIS Live: the scripted story of `bgp_mrt.rs`
//! (common/mrt.rs `write_story`) replayed as RIS Live `ris_message`
//! UPDATE frames by a local websocket server speaking the RIS Live protocol
//! (<https://ris-live.ripe.net/manual/>), through the agent's real path
//! (config, `BgpRuntime`, RIS Live client, state machine). It must yield
//! exactly the events `write_story` worked out by hand, in order.
//!
//! The story's updates are read back from the MRT files `write_story`
//! writes, with bgpkit-parser directly (not the agent's MRT source), so the
//! two tests replay the same story by construction. Where the MRT story has
//! a truncated record, the server sends a truncated JSON frame.
//!
//! Mid-story (after the first file, with the hijack still in place) the
//! server drops the TCP connection without a close frame; the client must
//! reconnect and subscribe again. The new connection first replays the
//! routes the peers hold at that point (what a relay or a collector
//! restart may resend): identical repeats, which the state machine must
//! suppress, so no event is lost or duplicated.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bgpkit_parser::models::{AsPathSegment, BgpElem, Community, ElemType, MetaCommunity, Origin};
use bgpkit_parser::{parse_mrt_record, Elementor};
use common::mrt::{by_event, check_story_fields, owned, receive_story, story_config, write_story, WATCHED};
use futures_util::{SinkExt, StreamExt};
use netprobe_agent::probe::bgp::BgpRuntime;
use netprobe_wire::msg::BgpSource;
use netprobe_wire::{Body, ProbeId};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);
/// The RIS collector every frame names (the MRT story's directory).
const HOST: &str = "rrc00";

/// One MRT file of the story: its updates, and whether it ends in a
/// record that does not parse (the truncated one).
struct StoryFile {
    elems: Vec<BgpElem>,
    truncated: bool,
}

/// The story's files in name order (the order the MRT source reads them),
/// decoded with bgpkit-parser.
fn read_story(dir: &Path) -> Vec<StoryFile> {
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("list story").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let file = std::fs::File::open(path).expect("open story file");
            let mut reader: Box<dyn Read> = match path.extension().and_then(|e| e.to_str()) {
                Some("gz") => Box::new(flate2::read::GzDecoder::new(file)),
                Some("bz2") => Box::new(bzip2::read::BzDecoder::new(file)),
                _ => Box::new(file),
            };
            let mut elementor = Elementor::new();
            let mut elems = Vec::new();
            loop {
                match parse_mrt_record(&mut reader) {
                    Ok(record) => elems.extend(elementor.record_to_elems(record)),
                    Err(e) if matches!(e.error, bgpkit_parser::ParserError::EofExpected) => {
                        break StoryFile { elems, truncated: false }
                    }
                    Err(_) => break StoryFile { elems, truncated: true },
                }
            }
        })
        .collect()
}

/// The RIS Live `ris_message` UPDATE frame of one update, as the manual
/// describes it: `path` (AS_SET as a nested array), `origin`, `community`
/// as `[asn, value]` pairs, `announcements` with `next_hop` and
/// `prefixes`, or `withdrawals`.
fn ris_frame(e: &BgpElem, id: usize) -> String {
    let mut data = json!({
        "timestamp": e.timestamp, "peer": e.peer_ip.to_string(), "peer_asn": e.peer_asn.to_u32().to_string(),
        "id": format!("story-{id}"), "host": HOST, "type": "UPDATE",
    });
    let prefix = e.prefix.prefix.to_string();
    match e.elem_type {
        ElemType::ANNOUNCE => {
            let path: Vec<Value> = e
                .as_path
                .as_ref()
                .expect("an announcement has a path")
                .iter_segments()
                .flat_map(|seg| match seg {
                    AsPathSegment::AsSequence(v) => v.iter().map(|a| json!(a.to_u32())).collect::<Vec<_>>(),
                    AsPathSegment::AsSet(v) => vec![json!(v.iter().map(|a| a.to_u32()).collect::<Vec<_>>())],
                    other => panic!("no confederation segments in the story: {other:?}"),
                })
                .collect();
            data["path"] = json!(path);
            data["origin"] = json!(match e.origin.expect("origin attribute") {
                Origin::IGP => "IGP",
                Origin::EGP => "EGP",
                Origin::INCOMPLETE => "INCOMPLETE",
            });
            if let Some(cs) = &e.communities {
                let pairs: Vec<Value> = cs
                    .iter()
                    .map(|c| match c {
                        MetaCommunity::Plain(Community::Custom(asn, v)) => json!([asn.to_u32(), v]),
                        other => panic!("only plain communities in the story: {other:?}"),
                    })
                    .collect();
                data["community"] = json!(pairs);
            }
            let next_hop = e.next_hop.expect("an announcement has a next hop").to_string();
            data["announcements"] = json!([{"next_hop": next_hop, "prefixes": [prefix]}]);
            data["withdrawals"] = json!([]);
        }
        ElemType::WITHDRAW => {
            data["withdrawals"] = json!([prefix]);
        }
    }
    json!({"type": "ris_message", "data": data}).to_string()
}

type Ws = WebSocketStream<TcpStream>;

async fn accept(listener: &TcpListener, what: &str) -> Ws {
    let (stream, _) = tokio::time::timeout(DEADLINE, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("{what}: the client did not connect within {DEADLINE:?}"))
        .expect("accept");
    tokio_tungstenite::accept_async(stream).await.expect("websocket handshake")
}

/// Reads the client's one subscription (the one watched prefix) and
/// checks it against the manual's `ris_subscribe`.
async fn expect_subscription(ws: &mut Ws, what: &str) {
    let text = loop {
        let frame = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{what}: no subscription within {DEADLINE:?}"));
        match frame.expect("connection open").expect("frame") {
            WsMessage::Text(t) => break t.as_str().to_owned(),
            WsMessage::Ping(_) => {}
            other => panic!("{what}: unexpected frame from the client: {other:?}"),
        }
    };
    let got: Value = serde_json::from_str(&text).expect("subscribe is JSON");
    assert_eq!(
        got,
        json!({"type": "ris_subscribe", "data": {"prefix": WATCHED, "moreSpecific": true, "type": "UPDATE"}}),
        "{what}"
    );
}

/// Sends text frames, counting them.
struct Server {
    sent: u64,
}

impl Server {
    async fn send(&mut self, ws: &mut Ws, text: String) {
        ws.send(WsMessage::text(text)).await.expect("server send");
        self.sent += 1;
    }
}

#[tokio::test]
async fn the_scripted_story_over_ris_live_with_a_reconnect_yields_exactly_its_events() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("rrc00");
    std::fs::create_dir(&dir).expect("mkdir");
    let t0 = 1_764_770_400.0;
    let expected = owned(&write_story(&dir, t0));
    let files = read_story(&dir);
    // What write_story documents: four files, the third ends truncated.
    assert_eq!(
        files.iter().map(|f| (f.elems.len(), f.truncated)).collect::<Vec<_>>(),
        [(9, false), (9, false), (1, true), (1, false)]
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/v1/ws/?client=netprobe-test", listener.local_addr().expect("addr"));
    let config = story_config(tmp.path(), &format!("source = \"ris-live\"\nris_live_url = \"{url}\""));
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let mut runtime =
        BgpRuntime::start(config.bgp.clone(), &ProbeId("pop-test".into()), "Test", tx, &cancel).expect("starts");

    let mut server = Server { sent: 0 };
    let mut id = 0;
    let mut next_id = || {
        id += 1;
        id
    };

    // First connection: the first file (normal announcements, the hijack,
    // a more-specific, a path change), then the connection drops.
    let mut ws = accept(&listener, "first connection").await;
    expect_subscription(&mut ws, "first subscription").await;
    for e in &files[0].elems {
        server.send(&mut ws, ris_frame(e, next_id())).await;
    }
    // No close frame: the TCP connection just ends (after the frames sent,
    // which the client reads before the end of stream).
    drop(ws);

    // Second connection: subscribed again, then the routes the peers hold
    // now (the last announcement of each peer and prefix) resent, then the
    // rest of the story.
    let mut ws = accept(&listener, "reconnection").await;
    expect_subscription(&mut ws, "second subscription after the drop").await;
    let mut held: Vec<&BgpElem> = Vec::new();
    let mut at: HashMap<(IpAddr, String), usize> = HashMap::new();
    for e in &files[0].elems {
        let key = (e.peer_ip, e.prefix.prefix.to_string());
        match (e.elem_type, at.get(&key)) {
            (ElemType::ANNOUNCE, Some(&i)) => held[i] = e,
            (ElemType::ANNOUNCE, None) => {
                at.insert(key, held.len());
                held.push(e);
            }
            (ElemType::WITHDRAW, _) => panic!("the first file withdraws nothing"),
        }
    }
    assert_eq!(held.len(), 6, "peers 1-4 on the /24, peer 3 on the /25, peer 1 on the unrelated prefix");
    for e in held {
        server.send(&mut ws, ris_frame(e, next_id())).await;
    }
    for file in &files[1..] {
        for e in &file.elems {
            server.send(&mut ws, ris_frame(e, next_id())).await;
        }
        if file.truncated {
            // The MRT story's truncated record (peer 5 at t0 + 91 s), cut
            // short as a frame: counted as malformed, skipped.
            let mut cut = files[3].elems[0].clone();
            cut.timestamp = t0 + 91.0;
            let frame = ris_frame(&cut, next_id());
            server.send(&mut ws, frame[..frame.len() - 7].to_owned()).await;
        }
    }

    // The story ends with peer 5's first announcement.
    let messages = receive_story(&mut rx, &expected, DEADLINE).await;
    check_story_fields(&messages);
    let hijack = by_event(&messages, "origin_change")[0];
    assert_eq!((hijack.peer_asn, hijack.next_hop), (65002, Some(IpAddr::from([10, 0, 0, 2]))));
    for m in &messages {
        let Body::Bgp(b) = &m.body else { unreachable!() };
        assert_eq!((b.source, b.collector.as_str()), (BgpSource::RisLive, HOST), "{b:?}");
    }

    // Every frame was counted, the cut one as malformed; the feed is live.
    let status = runtime.feed_status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].name, format!("ris-live {url}"));
    assert_eq!(server.sent, 9 + 6 + 9 + 1 + 1 + 1);
    assert_eq!((status[0].messages, status[0].malformed, status[0].live), (server.sent, 1, true));

    runtime.stop();
    // The client closes its connection on shutdown (it does not reconnect).
    let end = tokio::time::timeout(DEADLINE, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => break,
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                Some(Ok(other)) => panic!("unexpected frame after the story: {other:?}"),
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the client did not close its connection on stop");
    let closed = tokio::time::timeout(DEADLINE, rx.recv()).await.expect("the monitor ends on stop");
    assert!(closed.is_none(), "no event after stop: {closed:?}");
}
