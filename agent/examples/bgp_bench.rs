//! `scripts/bench bgp` helper: writes a synthetic MRT updates file, and
//! runs the agent's BGP classification path over one (or parsing alone,
//! the baseline measured side by side).
//!
//! ```text
//! bgp_bench gen FILE.gz UPDATES PREFIXES   # 10.x.y.0/24 prefixes, 200 peers, 10% withdrawals
//! bgp_bench classify FILE WATCHED          # parse + state machine, the first WATCHED prefixes watched
//! bgp_bench parse FILE                     # parse only (same reader, same decompression)
//! ```
//! Prints one JSON line: updates, events, seconds.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bgpkit_parser::encoder::MrtUpdatesEncoder;
use bgpkit_parser::models::{AsPath, Asn, BgpElem, ElemType, NetworkPrefix, Origin};
use netprobe_agent::probe::bgp::feed::FeedElem;
use netprobe_agent::probe::bgp::mrt;
use netprobe_agent::probe::bgp::state::{Monitor, Watch};
use netprobe_wire::msg::BgpSource;

fn prefix(i: u32) -> ipnet::IpNet {
    format!("10.{}.{}.0/24", i / 256, i % 256).parse().expect("prefix")
}

fn gen(file: &Path, updates: u32, prefixes: u32) {
    let out = std::fs::File::create(file).expect("create");
    let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(out), flate2::Compression::fast());
    let mut rng = fastrand::Rng::with_seed(11);
    let mut enc = MrtUpdatesEncoder::new();
    let t0 = 1_764_770_400.0;
    for i in 0..updates {
        let peer = rng.u8(1..=200);
        let p = rng.u32(0..prefixes);
        let origin = if rng.u8(0..100) == 0 { 64666 } else { 64500 + p % 1000 };
        let path = [65000 + u32::from(peer), [3356, 174, 1299, 2914][rng.usize(0..4)], origin];
        let peer_ip = IpAddr::from([10, 255, 0, peer]);
        let announce = rng.u8(0..10) != 0;
        let e = BgpElem {
            timestamp: t0 + f64::from(i) * 0.001,
            elem_type: if announce { ElemType::ANNOUNCE } else { ElemType::WITHDRAW },
            peer_ip,
            peer_asn: Asn::new_32bit(65000 + u32::from(peer)),
            prefix: NetworkPrefix::new(prefix(p), None),
            next_hop: announce.then_some(peer_ip),
            as_path: announce.then(|| AsPath::from_sequence(path)),
            origin: announce.then_some(Origin::IGP),
            ..Default::default()
        };
        enc.process_elem(&e);
        if i % 10_000 == 9_999 {
            gz.write_all(&enc.export_bytes().expect("encode")).expect("write");
        }
    }
    gz.write_all(&enc.export_bytes().expect("encode")).expect("write");
    gz.finish().expect("finish").flush().expect("flush");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).unwrap_or_else(|| panic!("usage: see the module doc of bgp_bench.rs"));
    let start = Instant::now();
    let (mut updates, mut events) = (0u64, 0u64);
    match arg(1).as_str() {
        "gen" => {
            gen(Path::new(arg(2)), arg(3).parse().expect("updates"), arg(4).parse().expect("prefixes"));
        }
        "parse" => {
            let stats = mrt::for_each_elem(Path::new(arg(2)), |e| {
                std::hint::black_box(&e);
                true
            })
            .expect("read");
            updates = stats.elems;
        }
        "classify" => {
            let watched: u32 = arg(3).parse().expect("watched");
            let watch = Watch {
                prefixes: (0..watched).map(prefix).collect(),
                // The generator originates prefix p from 64500 + p % 1000.
                expected_origins: (64500..64500 + watched).collect(),
                allowed_upstreams: Vec::new(),
                flap_threshold: 10,
                flap_window: Duration::from_secs(600),
                visibility_min_peers: 3,
                vrps: None,
            };
            let mut monitor = Monitor::new(vec![watch]);
            let stats = mrt::for_each_elem(Path::new(arg(2)), |elem| {
                let fe = FeedElem { elem, collector: "rrc00".into(), source: BgpSource::Mrt };
                events += monitor.process(&fe).len() as u64;
                true
            })
            .expect("read");
            updates = stats.elems;
        }
        other => panic!("unknown mode {other:?}"),
    }
    println!(
        "{{\"mode\": \"{}\", \"updates\": {updates}, \"events\": {events}, \"seconds\": {:.3}}}",
        arg(1),
        start.elapsed().as_secs_f64()
    );
}
