//! MTR probe over a topology of network namespaces built in the test:
//! client -> r1 -> r2 -> r3 -> target (and r1 -> r4 -> r3 as a second
//! path), compared with Debian's `mtr -n --json` over the same topology
//! in the same test (and r1 -> {r2, r4} as equal-cost multipath for the
//! ECMP case). The agent runs as `netprobe-agent --health-check`
//! inside the client namespace, so the tracer's packets never leave the
//! namespaces.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use common::netns::sh;
use netprobe_wire::msg::Mtr;
use netprobe_wire::ErrorClass;

/// The namespaces of one topology; removed on drop.
struct Topology {
    names: BTreeMap<&'static str, String>,
    /// Third octet shared by every link subnet (`10.21x.<b>.0/24`).
    b: u8,
}

impl Topology {
    fn ns(&self, node: &str) -> &str {
        &self.names[node]
    }

    fn exec(&self, node: &str, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", self.ns(node)];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// Address `host` on link `link` (subnet `10.<210 + link>.<b>.0/24`).
    fn addr(&self, link: u8, host: u8) -> String {
        format!("10.{}.{}.{host}", 210 + link, self.b)
    }

    fn nft(&self, node: &str, ruleset: &str) {
        let path = std::env::temp_dir().join(format!("{}.nft", self.ns(node)));
        std::fs::write(&path, ruleset).expect("write ruleset");
        self.exec(node, &["nft", "-f", path.to_str().expect("utf-8")]);
        let _ = std::fs::remove_file(path);
    }

    /// Links (link number, node a with host .1, node b with host .2 or .3):
    /// 0 client-r1, 1 r1-r2, 2 r2-r3, 3 r3-target, 4 r1-r4, 5 r4-r3.
    fn new(tag: &str) -> Topology {
        let pid = std::process::id();
        let b = (pid % 250) as u8;
        let nodes = ["client", "r1", "r2", "r3", "r4", "target"];
        let names: BTreeMap<&'static str, String> =
            nodes.iter().map(|n| (*n, format!("m{tag}{}{pid}", &n[..2]))).collect();
        for name in names.values() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
            sh("ip", &["netns", "add", name]);
        }
        let t = Topology { names, b };
        // (link, a, a's host, b, b's host)
        let links: [(u8, &str, u8, &str, u8); 6] = [
            (0, "r1", 1, "client", 2),
            (1, "r1", 1, "r2", 2),
            (2, "r2", 1, "r3", 2),
            (3, "r3", 1, "target", 2),
            (4, "r1", 1, "r4", 2),
            (5, "r4", 1, "r3", 3),
        ];
        for (link, a, ha, bn, hb) in links {
            let (ia, ib) = (format!("l{link}a"), format!("l{link}b"));
            sh("ip", &["link", "add", &ia, "netns", t.ns(a), "type", "veth", "peer", "name", &ib, "netns", t.ns(bn)]);
            t.exec(a, &["ip", "addr", "add", &format!("{}/24", t.addr(link, ha)), "dev", &ia]);
            t.exec(bn, &["ip", "addr", "add", &format!("{}/24", t.addr(link, hb)), "dev", &ib]);
            t.exec(a, &["ip", "link", "set", &ia, "up"]);
            t.exec(bn, &["ip", "link", "set", &ib, "up"]);
        }
        for n in nodes {
            t.exec(n, &["ip", "link", "set", "lo", "up"]);
            // ICMP errors (time exceeded, port unreachable) unthrottled.
            t.exec(n, &["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"]);
            t.exec(n, &["sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0"]);
            if n.starts_with('r') {
                t.exec(n, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
            }
        }
        let route = |n: &str, dst: &str, via: String| t.exec(n, &["ip", "route", "add", dst, "via", &via]);
        route("client", "default", t.addr(0, 1));
        route("target", "default", t.addr(3, 1));
        for link in [2, 3, 5] {
            route("r1", &format!("{}/24", t.addr(link, 0)), t.addr(1, 2));
        }
        route("r2", "default", t.addr(1, 1));
        route("r2", &format!("{}/24", t.addr(3, 0)), t.addr(2, 2));
        route("r3", "default", t.addr(2, 1));
        route("r4", "default", t.addr(4, 1));
        route("r4", &format!("{}/24", t.addr(3, 0)), t.addr(5, 3));
        t
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in self.names.values() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// `netprobe-agent --health-check` with one `[[mtr]]` table (`extra` are
/// more keys) inside the client namespace: (exit success, the result).
fn agent_mtr(t: &Topology, dir: &Path, extra: &str, setpriv: bool) -> (bool, Mtr) {
    let config = dir.join("agent.toml");
    let asn = env!("CARGO_MANIFEST_DIR").to_owned() + "/tests/resources/asn-example.txt";
    std::fs::write(
        &config,
        format!(
            "[agent]\nprobe_id = \"mtr\"\nlocation = \"l\"\nasn_table = \"{asn}\"\n[kafka]\nbrokers = [\"127.0.0.1:1\"]\n\
             username = \"agent\"\nca_file = \"/nonexistent\"\n[[mtr]]\ntarget = \"{}\"\ninterval = \"1h\"\n{extra}\n",
            t.addr(3, 2)
        ),
    )
    .expect("config");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", t.ns("client")]);
    if setpriv {
        cmd.args(["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw", "--"]);
    }
    let out = cmd
        .arg(env!("CARGO_BIN_EXE_netprobe-agent"))
        .arg("--config")
        .arg(&config)
        .arg("--health-check")
        .output()
        .expect("agent runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let msg = netprobe_wire::decode(stdout.trim().as_bytes())
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    let netprobe_wire::Body::Mtr(mtr) = msg.body else { panic!("mtr result: {stdout}") };
    (out.status.success(), mtr)
}

/// `mtr -n --json` in the client namespace: (host, avg RTT ms, RTT
/// standard deviation ms) per hub.
fn reference_mtr(t: &Topology, count: u32) -> Vec<(String, f64, f64)> {
    let out = t.exec("client", &["mtr", "-n", "--json", "-c", &count.to_string(), "-i", "0.05", &t.addr(3, 2)]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    json["report"]["hubs"]
        .as_array()
        .unwrap_or_else(|| panic!("no hubs: {out}"))
        .iter()
        .map(|h| {
            let host = h["host"].as_str().expect("host").to_owned();
            (host, h["Avg"].as_f64().expect("Avg"), h["StDev"].as_f64().expect("StDev"))
        })
        .collect()
}

fn ips(m: &Mtr) -> Vec<Option<IpAddr>> {
    m.hops.iter().map(|h| h.ip).collect()
}

fn ip(s: String) -> Option<IpAddr> {
    Some(s.parse().expect("ip"))
}

/// Fast rounds: `count` rounds of about 50 ms on these sub-ms links.
fn rounds(count: u32) -> String {
    format!("count = {count}\nround_interval = \"10ms\"\ntimeout = \"50ms\"\n")
}

#[test]
fn mtr_over_a_namespace_topology() {
    let t = Topology::new("a");
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = vec![ip(t.addr(0, 1)), ip(t.addr(1, 2)), ip(t.addr(2, 2)), ip(t.addr(3, 2))];

    // 1. Hop list and RTTs against mtr.
    let (ok, clean) = agent_mtr(&t, dir.path(), &rounds(20), false);
    assert!(ok, "{clean:?}");
    assert_eq!(ips(&clean), expected, "{clean:?}");
    assert!(clean.destination_reached && clean.hop_count == 4 && clean.error.is_none(), "{clean:?}");
    let reference = reference_mtr(&t, 20);
    let theirs: Vec<Option<IpAddr>> = reference.iter().map(|(h, ..)| ip(h.clone())).collect();
    assert_eq!(ips(&clean), theirs, "mtr: {reference:?}");
    let rtts: Vec<(f64, f64)> =
        clean.hops.iter().zip(&reference).map(|(h, (_, avg, _))| (h.rtt_avg_ms.expect("avg"), *avg)).collect();
    eprintln!("avg RTT per hop (ours, mtr) ms: {rtts:.4?}; mtr: {reference:?}");
    for (((ours, avg), hop), (_, _, their_sd)) in rtts.iter().zip(&clean.hops).zip(&reference) {
        // KNOWN DEVIATION (open item, docs/agent.md "MTR: TTL 1 RTT"):
        // the first probe of a round reads ~0.1 ms high on these 0.07 ms
        // links (cause not confirmed); TTL 1 gets 0.2 ms, the other hops
        // the max(20 %, 0.1 ms). Both averages are of 20 samples:
        // one slow reply (a busy core) moves an average by 1/20 of its
        // delay, so the bound is also never below 4 standard errors of the
        // difference of the two averages (seen: mtr 0.163 ms against
        // 0.09 at the hops around it, while ours read 0.057).
        let floor = if hop.ttl.0 == 1 { 0.2 } else { 0.1 };
        let our_sd = hop.rtt_stddev_ms.expect("stddev");
        let four_se = 4.0 * ((our_sd.powi(2) + their_sd.powi(2)) / 20.0).sqrt();
        let tolerance = (avg * 0.2).max(floor).max(four_se);
        assert!(
            (ours - avg).abs() <= tolerance,
            "ttl {:?}: avg {ours:.4} ms vs mtr {avg:.4} ms; all {rtts:.4?}",
            hop.ttl
        );
        assert_eq!((hop.sent, hop.received, hop.loss_pct), (20, 20, 0.0), "{hop:?}");
    }
    // ASNs from tests/resources/asn-example.txt: 10.210.0.0/15 -> 64510
    // (links 0 and 1), 10.212.0.0/16 -> 64512, and the longer
    // 10.213.<b>.0/24 is not in it, so 10.208.0.0/12 -> 64500.
    let asns: Vec<Option<u32>> = clean.hops.iter().map(|h| h.asn).collect();
    assert_eq!(asns, vec![Some(64510), Some(64510), Some(64512), Some(64500)], "{clean:?}");

    // 2. The path hash is stable on an unchanged path...
    let (_, again) = agent_mtr(&t, dir.path(), &rounds(3), false);
    assert_eq!(again.path_hash, clean.path_hash, "{again:?}");
    // ...and changes when r1 routes the target through r4.
    t.exec("r1", &["ip", "route", "replace", &format!("{}/24", t.addr(3, 0)), "via", &t.addr(4, 2)]);
    let (_, moved) = agent_mtr(&t, dir.path(), &rounds(3), false);
    assert_eq!(ips(&moved), vec![ip(t.addr(0, 1)), ip(t.addr(4, 2)), ip(t.addr(2, 2)), ip(t.addr(3, 2))]);
    assert_ne!(moved.path_hash, clean.path_hash);
    t.exec("r1", &["ip", "route", "replace", &format!("{}/24", t.addr(3, 0)), "via", &t.addr(1, 2)]);

    // 3. A silent router: r2 sends no time exceeded at all.
    t.nft("r2", "table inet mtrtest {\n chain mtr_out {\n type filter hook output priority 0;\n icmp type time-exceeded drop\n }\n}\n");
    let (_, silent) = agent_mtr(&t, dir.path(), &rounds(5), false);
    assert_eq!(ips(&silent), vec![expected[0], None, expected[2], expected[3]], "{silent:?}");
    assert!(silent.destination_reached, "{silent:?}");
    assert_eq!((silent.hops[1].received, silent.hops[1].loss_pct), (0, 100.0));
    t.exec("r2", &["nft", "delete", "table", "inet", "mtrtest"]);

    // 4. Loss at an intermediate hop only: r2 drops 30 % of the time
    // exceeded it originates. 400 rounds: sd = sqrt(.3 * .7 / 400) = 2.3 pp,
    // so +-10 pp is 4.4 sd (and 3 % for a 0 % hop is far above noise).
    let n = 400;
    t.nft(
        "r2",
        "table inet mtrtest {\n chain mtr_out {\n type filter hook output priority 0;\n \
         icmp type time-exceeded numgen random mod 100 < 30 drop\n }\n}\n",
    );
    let (_, lossy) = agent_mtr(&t, dir.path(), &rounds(n), false);
    let loss: Vec<f64> = lossy.hops.iter().map(|h| h.loss_pct).collect();
    assert_eq!(loss.len(), 4, "{lossy:?}");
    assert!((loss[1] - 30.0).abs() <= 10.0 && loss[2] < 3.0 && loss[3] < 3.0, "loss {loss:?}");
    t.exec("r2", &["nft", "delete", "table", "inet", "mtrtest"]);

    // 5. Loss on the path: r2 drops 20 % of the echo requests it forwards,
    // so r3 and the target lose them (sd at 400 rounds 2.0 pp: +-10 pp is
    // 5 sd); r2 itself (TTL 2 expires there) does not.
    t.nft(
        "r2",
        "table inet mtrtest {\n chain mtr_fwd {\n type filter hook forward priority 0;\n \
         icmp type echo-request numgen random mod 100 < 20 drop\n }\n}\n",
    );
    let (_, forward) = agent_mtr(&t, dir.path(), &rounds(n), false);
    let loss: Vec<f64> = forward.hops.iter().map(|h| h.loss_pct).collect();
    assert_eq!(loss.len(), 4, "{forward:?}");
    assert!(loss[1] < 3.0 && (loss[2] - 20.0).abs() <= 10.0 && (loss[3] - 20.0).abs() <= 10.0, "loss {loss:?}");
    t.exec("r2", &["nft", "delete", "table", "inet", "mtrtest"]);
    eprintln!(
        "loss at r2 only: {:?}; forwarded loss: {loss:?}",
        lossy.hops.iter().map(|h| h.loss_pct).collect::<Vec<_>>()
    );

    // 6. UDP (Paris) and TCP reach the target too (TCP: a RST from the
    // closed port is the target's answer).
    for proto in ["protocol = \"udp\"\n", "protocol = \"tcp\"\nport = 80\n"] {
        let (ok, m) = agent_mtr(&t, dir.path(), &(rounds(3) + proto), false);
        assert!(ok && m.destination_reached, "{proto}: {m:?}");
        assert_eq!(ips(&m), expected, "{proto}: {m:?}");
    }

    // 7. Two equal-cost paths: r1 spreads flows to the target over r2 and
    // r4 by their 5-tuple (multipath route, L4 hash policy). In Paris mode
    // (ICMP: one echo id per run; UDP: fixed ports) every TTL of a run has
    // exactly one responder. TCP is classic (the sequence is the source
    // port), so its probes take both paths: TTL 2 is answered by r2 and r4,
    // the one seen most is `ip`, the other is counted in `other_ips` — the
    // check that the multipath route really spreads flows. With 20 probes
    // at TTL 2 all taking one path has probability 2 * 2^-20.
    let (r2, r4) = (t.addr(1, 2), t.addr(4, 2));
    t.exec("r1", &["sysctl", "-q", "-w", "net.ipv4.fib_multipath_hash_policy=1"]);
    t.exec(
        "r1",
        &[
            "ip",
            "route",
            "replace",
            &format!("{}/24", t.addr(3, 0)),
            "nexthop",
            "via",
            &r2,
            "weight",
            "1",
            "nexthop",
            "via",
            &r4,
            "weight",
            "1",
        ],
    );
    for proto in ["", "protocol = \"udp\"\n"] {
        let (ok, m) = agent_mtr(&t, dir.path(), &(rounds(20) + proto), false);
        assert!(ok && m.destination_reached, "{proto}: {m:?}");
        assert_eq!(m.hops.len(), 4, "{proto}: {m:?}");
        assert!(
            m.hops.iter().all(|h| h.other_ips.is_empty() && h.received == 20),
            "{proto}: one responder per TTL: {m:?}"
        );
        assert!([ip(r2.clone()), ip(r4.clone())].contains(&m.hops[1].ip), "{proto}: {m:?}");
    }
    let (ok, spread) = agent_mtr(&t, dir.path(), &(rounds(20) + "protocol = \"tcp\"\nport = 80\n"), false);
    assert!(ok && spread.destination_reached, "{spread:?}");
    let ttl2 = &spread.hops[1];
    let mut both: Vec<Option<IpAddr>> =
        std::iter::once(ttl2.ip).chain(ttl2.other_ips.iter().copied().map(Some)).collect();
    both.sort();
    let mut want = vec![ip(r2.clone()), ip(r4.clone())];
    want.sort();
    assert_eq!(both, want, "TTL 2 answered by r2 and r4: {spread:?}");
    assert_eq!(ttl2.received, 20, "{ttl2:?}");
    assert!(spread.hops.iter().enumerate().all(|(i, h)| i == 1 || h.other_ips.is_empty()), "{spread:?}");
    eprintln!("ECMP, TCP classic: ttl 2 ip {:?}, other_ips {:?}", ttl2.ip, ttl2.other_ips);
    t.exec("r1", &["ip", "route", "replace", &format!("{}/24", t.addr(3, 0)), "via", &r2]);

    // 8. Without CAP_NET_RAW: permission_denied naming the capability.
    let (ok, denied) = agent_mtr(&t, dir.path(), &rounds(2), true);
    assert!(!ok, "{denied:?}");
    let error = denied.error.expect("error");
    assert_eq!(error.class, ErrorClass::PermissionDenied, "{}", error.message);
    assert!(error.message.contains("CAP_NET_RAW"), "{}", error.message);
}
