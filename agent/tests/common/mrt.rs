//! Writes MRT update files (BGP4MP, RFC 6396) with bgpkit-parser's
//! `MrtUpdatesEncoder`, and the scripted story the BGP tests replay.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use bgpkit_parser::encoder::MrtUpdatesEncoder;
use bgpkit_parser::models::{AsPath, Asn, BgpElem, ElemType, NetworkPrefix, Origin};

/// The watched prefix of the story.
pub const WATCHED: &str = "192.0.2.0/24";
/// Its expected origin.
pub const OWNER: u32 = 64500;
/// The hijacker.
pub const HIJACKER: u32 = 64666;

/// One update: peer 10.0.0.`peer` (AS 65000 + peer) at `t` seconds.
pub fn update(t: f64, peer: u8, prefix: &str, path: Option<&[u32]>) -> BgpElem {
    let peer_ip = IpAddr::from([10, 0, 0, peer]);
    BgpElem {
        timestamp: t,
        elem_type: if path.is_some() { ElemType::ANNOUNCE } else { ElemType::WITHDRAW },
        peer_ip,
        peer_asn: Asn::new_32bit(65000 + u32::from(peer)),
        prefix: NetworkPrefix::new(prefix.parse().expect("prefix"), None),
        next_hop: path.map(|_| peer_ip),
        as_path: path.map(AsPath::from_sequence),
        origin: path.map(|_| Origin::IGP),
        ..Default::default()
    }
}

/// The MRT bytes of `elems`.
pub fn encode(elems: &[BgpElem]) -> Vec<u8> {
    let mut enc = MrtUpdatesEncoder::new();
    for e in elems {
        enc.process_elem(e);
    }
    enc.export_bytes().expect("encodes").to_vec()
}

/// Writes `bytes` to `path`, gzip- or bzip2-compressed by its extension.
pub fn write(path: &Path, bytes: &[u8]) {
    let file = std::fs::File::create(path).expect("create MRT file");
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => {
            let mut w = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            w.write_all(bytes).expect("write");
            w.finish().expect("finish gz");
        }
        Some("bz2") => {
            let mut w = bzip2::write::BzEncoder::new(file, bzip2::Compression::fast());
            w.write_all(bytes).expect("write");
            w.finish().expect("finish bz2");
        }
        _ => {
            let mut file = file;
            file.write_all(bytes).expect("write");
        }
    }
}

/// One expected event: (event, prefix, peer, origin).
pub type Expected = (&'static str, &'static str, u8, Option<u32>);

/// Writes the story into `dir` as four files (gz, bz2, a raw one truncated
/// in its second record, and a last gz) starting at `t0`; returns the
/// events it must produce, in order, worked out by hand from docs/bgp.md's
/// rules (watched 192.0.2.0/24 from AS64500, allowed upstreams 3356 and
/// 174, visibility_min_peers 3, flap_threshold 4 within 60 s, a VRP
/// 192.0.2.0/24-24 AS64500).
pub fn write_story(dir: &Path, t0: f64) -> Vec<Expected> {
    let w = WATCHED;
    let ms = "192.0.2.128/25";
    let other = "198.51.100.0/24";
    let a = |t: f64, peer: u8, prefix: &str, path: &[u32]| update(t0 + t, peer, prefix, Some(path));
    let wd = |t: f64, peer: u8, prefix: &str| update(t0 + t, peer, prefix, None);
    // 1: normal announcements, a repeat, an unrelated prefix, the hijack,
    // a more-specific, a path change.
    let first = vec![
        a(0.0, 1, w, &[65001, 3356, OWNER]),
        a(1.0, 2, w, &[65002, 174, OWNER]),
        a(2.0, 3, w, &[65003, 3356, OWNER]),
        a(3.0, 4, w, &[65004, 3356, OWNER]),
        a(4.0, 1, w, &[65001, 3356, OWNER]),
        a(5.0, 1, other, &[65001, 64999]),
        a(10.0, 2, w, &[65002, HIJACKER]),
        a(20.0, 3, ms, &[65003, 3356, OWNER]),
        a(30.0, 4, w, &[65004, 174, OWNER]),
    ];
    // 2: the hijack ends, withdrawals below the visibility threshold, a
    // flap burst, visibility restored.
    let second = vec![
        a(40.0, 2, w, &[65002, 174, OWNER]),
        wd(50.0, 4, w),
        wd(60.0, 3, w),
        wd(70.0, 1, w),
        a(71.0, 1, w, &[65001, 3356, OWNER]),
        wd(72.0, 1, w),
        a(73.0, 1, w, &[65001, 3356, OWNER]),
        wd(74.0, 2, other),
        a(80.0, 3, w, &[65003, 3356, OWNER]),
    ];
    // 3: one good record, then a truncated one.
    let mut third = encode(&[a(90.0, 4, w, &[65004, 174, OWNER])]);
    let cut = encode(&[a(91.0, 5, w, &[65005, 3356, OWNER])]);
    third.extend_from_slice(&cut[..cut.len() - 7]);
    // 4: the last word (a first announcement from a fifth peer).
    let fourth = vec![a(100.0, 5, w, &[65005, 3356, OWNER])];
    write(&dir.join("updates.20261203.1400.gz"), &encode(&first));
    write(&dir.join("updates.20261203.1405.bz2"), &encode(&second));
    write(&dir.join("updates.20261203.1410"), &third);
    write(&dir.join("updates.20261203.1415.gz"), &encode(&fourth));
    vec![
        ("announce", w, 1, Some(OWNER)),
        ("announce", w, 2, Some(OWNER)),
        ("announce", w, 3, Some(OWNER)),
        ("announce", w, 4, Some(OWNER)),
        // peer 2 hears the hijacker directly: its upstream 65002 is not allowed
        ("origin_change", w, 2, Some(HIJACKER)),
        ("upstream_change", w, 2, Some(HIJACKER)),
        ("rpki_invalid", w, 2, Some(HIJACKER)),
        ("more_specific", ms, 3, Some(OWNER)),
        ("rpki_invalid", ms, 3, Some(OWNER)),
        ("path_change", w, 4, Some(OWNER)),
        ("announce", w, 2, Some(OWNER)),
        ("withdraw", w, 4, None),
        ("withdraw", w, 3, None),
        ("visibility_lost", w, 3, None),
        ("withdraw", w, 1, None),
        ("announce", w, 1, Some(OWNER)),
        // transitions at 50, 60, 70, 71, 72: five within 60 s, more than 4
        ("withdraw", w, 1, None),
        ("flap", w, 1, None),
        ("announce", w, 1, Some(OWNER)),
        ("announce", w, 3, Some(OWNER)),
        ("visibility_restored", w, 3, Some(OWNER)),
        ("announce", w, 4, Some(OWNER)),
        ("announce", w, 5, Some(OWNER)),
    ]
}

/// The VRPs of the story: 192.0.2.0/24 up to /24 by AS64500.
const STORY_VRPS: &str = r#"{"roas": [{"asn": "AS64500", "prefix": "192.0.2.0/24", "maxLength": 24, "ta": "test"}]}"#;

/// The agent config every story test uses: the watched /24 (origin 64500,
/// upstreams 3356 and 174, flaps over 4 in 60 s, the story's VRPs written
/// into `dir`), fed by `source_lines` (`source = ...` and its keys).
pub fn story_config(dir: &Path, source_lines: &str) -> netprobe_agent::Config {
    std::fs::write(dir.join("vrps.json"), STORY_VRPS).expect("write VRPs");
    let text = format!(
        "[agent]\nprobe_id = \"pop-test\"\nlocation = \"Test\"\n[kafka]\nbrokers = [\"127.0.0.1:9\"]\n\
         username = \"agent\"\nca_file = \"/ca\"\n[[bgp]]\nprefix = \"192.0.2.0/24\"\nexpected_origins = [64500]\n\
         {source_lines}\nallowed_upstreams = [3356, 174]\nflap_threshold = 4\n\
         flap_window = \"60s\"\nvrp_file = \"{}\"\n",
        dir.join("vrps.json").display()
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write config");
    netprobe_agent::Config::load(&path).expect("config loads")
}

/// (event, prefix, peer's last octet, origin) of a message.
pub type Summary = (String, String, u8, Option<u32>);

/// The [`Summary`] of a `bgp` message.
pub fn summary(msg: &netprobe_wire::Message) -> Summary {
    let netprobe_wire::Body::Bgp(b) = &msg.body else { panic!("not a bgp message: {msg:?}") };
    let IpAddr::V4(peer) = b.peer_ip else { panic!("v4 peer") };
    (b.event.as_str().to_owned(), b.prefix.to_string(), peer.octets()[3], b.origin_asn)
}

/// `Expected` rows as [`Summary`] values.
pub fn owned(e: &[Expected]) -> Vec<Summary> {
    e.iter().map(|(ev, p, peer, o)| (ev.to_string(), p.to_string(), *peer, *o)).collect()
}

/// Receives messages from `rx` until the story's last expected event
/// arrives (its last update: by then every earlier one was classified, in
/// one ordered task), within `within`; checks their summaries against
/// `expected` and that nothing follows. Returns the messages.
pub async fn receive_story(
    rx: &mut tokio::sync::mpsc::Receiver<netprobe_wire::Message>,
    expected: &[Summary],
    within: std::time::Duration,
) -> Vec<netprobe_wire::Message> {
    let mut got = Vec::new();
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while got.last() != expected.last() {
        let msg = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out; so far {got:#?}"))
            .expect("channel open");
        got.push(summary(&msg));
        messages.push(msg);
    }
    assert_eq!(got, expected);
    assert!(rx.try_recv().is_err(), "no event after the last one");
    messages
}

/// The `bgp` bodies among `messages` whose event is `event`.
pub fn by_event<'a>(messages: &'a [netprobe_wire::Message], event: &str) -> Vec<&'a netprobe_wire::msg::Bgp> {
    messages
        .iter()
        .filter_map(|m| match &m.body {
            netprobe_wire::Body::Bgp(b) if b.event.as_str() == event => Some(b),
            _ => None,
        })
        .collect()
}

/// The story's fields beyond the summary, by hand, whatever the source:
/// the hijack's AS path, collector, expected origins and time (t0 + 10 s
/// with t0 2025-12-03T14:00:00Z), the RPKI reasons, the more-specific's
/// verdict and the visibility counts.
pub fn check_story_fields(messages: &[netprobe_wire::Message]) {
    let hijack = by_event(messages, "origin_change")[0];
    assert_eq!((hijack.as_path.as_slice(), hijack.collector.as_str()), (&[65002, HIJACKER][..], "rrc00"));
    assert_eq!(hijack.expected_origins, [OWNER]);
    let invalid: Vec<_> =
        by_event(messages, "rpki_invalid").iter().map(|b| b.rpki_reason.map(|r| r.as_str())).collect();
    assert_eq!(invalid, [Some("origin"), Some("max_length")]);
    assert_eq!(by_event(messages, "more_specific")[0].origin_expected, Some(true));
    assert_eq!(by_event(messages, "visibility_lost")[0].peers_visible, Some(2));
    assert_eq!(by_event(messages, "visibility_restored")[0].peers_visible, Some(3));
    // Message time is the update's time.
    let hijack_msg =
        messages.iter().find(|m| matches!(&m.body, netprobe_wire::Body::Bgp(b) if b.event.as_str() == "origin_change"));
    assert_eq!(hijack_msg.expect("hijack").timestamp.to_string(), "2025-12-03T14:00:10.000000000Z");
}
