//! A network namespace joined to the host by a veth pair, for probes that
//! must cross a real (virtual) link: `ip netns`, `ip link`, `nft`.

use std::net::Ipv4Addr;
use std::process::Command;

/// Runs a command and panics with its stderr when it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace `np<tag>` holding `10.<a>.<b>.2/24` on its end of a veth
/// pair; the host end has `.1`. Removed on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    pub host_if: String,
    pub host_ip: Ipv4Addr,
    pub peer_ip: Ipv4Addr,
}

impl Netns {
    pub fn new(tag: &str, subnet: u8) -> Netns {
        let pid = std::process::id();
        let name = format!("np{tag}{pid}");
        let host_if = format!("nph{tag}{}", pid % 100_000);
        let peer_if = format!("npp{tag}{}", pid % 100_000);
        let b = (pid % 250) as u8;
        let host_ip = Ipv4Addr::new(10, subnet, b, 1);
        let peer_ip = Ipv4Addr::new(10, subnet, b, 2);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        sh("ip", &["netns", "add", &name]);
        let ns = Netns { name, host_if, host_ip, peer_ip };
        sh("ip", &["link", "add", &ns.host_if, "type", "veth", "peer", "name", &peer_if]);
        sh("ip", &["link", "set", &peer_if, "netns", &ns.name]);
        sh("ip", &["addr", "add", &format!("{host_ip}/24"), "dev", &ns.host_if]);
        sh("ip", &["link", "set", &ns.host_if, "up"]);
        ns.exec(&["ip", "addr", "add", &format!("{peer_ip}/24"), "dev", &peer_if]);
        ns.exec(&["ip", "link", "set", &peer_if, "up"]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// Loads an nftables ruleset inside the namespace.
    pub fn nft(&self, ruleset: &str) {
        let path = std::env::temp_dir().join(format!("{}.nft", self.name));
        std::fs::write(&path, ruleset).expect("write ruleset");
        self.exec(&["nft", "-f", path.to_str().expect("utf-8 path")]);
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// Two routers joined to the host: host -> r1 (a `Netns`) -> r2, where the
/// target is r2's address; the host routes r2's subnet via r1. Removed on
/// drop.
pub struct TwoHops {
    pub r1: Netns,
    r2: String,
    /// r2's address, the trace's target.
    pub target: Ipv4Addr,
    subnet: String,
}

impl TwoHops {
    /// r1 is `Netns::new(tag, a)`; r2's subnet is `10.<b>.<pid % 250>.0/24`.
    pub fn new(tag: &str, a: u8, b_subnet: u8) -> TwoHops {
        let r1 = Netns::new(tag, a);
        let b = (std::process::id() % 250) as u8;
        let r2 = format!("np{tag}2{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &r2]).output();
        sh("ip", &["netns", "add", &r2]);
        let (r1_side, r2_side) = (format!("10.{b_subnet}.{b}.1"), format!("10.{b_subnet}.{b}.2"));
        r1.exec(&["ip", "link", "add", "to-r2", "type", "veth", "peer", "name", "to-r1", "netns", &r2]);
        r1.exec(&["ip", "addr", "add", &format!("{r1_side}/24"), "dev", "to-r2"]);
        r1.exec(&["ip", "link", "set", "to-r2", "up"]);
        r1.exec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        r1.exec(&["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"]);
        let in_r2 = |args: &[&str]| {
            let mut full = vec!["netns", "exec", r2.as_str()];
            full.extend_from_slice(args);
            sh("ip", &full)
        };
        in_r2(&["ip", "addr", "add", &format!("{r2_side}/24"), "dev", "to-r1"]);
        in_r2(&["ip", "link", "set", "to-r1", "up"]);
        in_r2(&["ip", "link", "set", "lo", "up"]);
        in_r2(&["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"]);
        in_r2(&["ip", "route", "add", "default", "via", &r1_side]);
        let subnet = format!("10.{b_subnet}.{b}.0/24");
        sh("ip", &["route", "add", &subnet, "via", &r1.peer_ip.to_string(), "dev", &r1.host_if]);
        TwoHops { r1, r2, target: r2_side.parse().expect("ip"), subnet }
    }
}

impl Drop for TwoHops {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["route", "del", &self.subnet]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.r2]).output();
    }
}
