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

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netprobe_agent::probe::bgp::BgpRuntime;
use netprobe_agent::Config;
use netprobe_wire::msg::{Bgp, BgpSource};
use netprobe_wire::{Body, Message, ProbeId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);
const GOBGP_VERSION: &str = "v3.37.0";
const WATCHED: &str = "198.51.100.0/24";
const MORE_SPECIFIC: &str = "198.51.100.128/25";
const ORIGIN_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OWNER: u32 = 64500;
const HIJACKER: u32 = 64666;

fn gobgp_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NETPROBE_GOBGP_BIN") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/netprobe").join(format!("gobgp-{GOBGP_VERSION}")).join("bin")
}

fn gobgp_tool(name: &str) -> PathBuf {
    let path = gobgp_bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} missing: scripts/test builds GoBGP {GOBGP_VERSION} there (or set NETPROBE_GOBGP_BIN)",
        path.display()
    );
    path
}

/// A free TCP port on `ip` (bound then released; the next user binds it).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).expect("bind").local_addr().expect("addr").port()
}

/// A gobgpd process, killed when dropped.
struct Gobgpd {
    child: Child,
    name: &'static str,
    api_port: u16,
    log: PathBuf,
}

impl Gobgpd {
    fn start(dir: &Path, name: &'static str, config: &str) -> Self {
        let conf = dir.join(format!("{name}.toml"));
        std::fs::write(&conf, config).expect("write gobgpd config");
        let log = dir.join(format!("{name}.log"));
        let api_port = free_port("127.0.0.1");
        let child = Command::new(gobgp_tool("gobgpd"))
            .arg("-f")
            .arg(&conf)
            .arg(format!("--api-hosts=127.0.0.1:{api_port}"))
            .args(["--pprof-disable", "--log-plain", "--log-level=debug"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(std::fs::File::create(dir.join(format!("{name}.stderr"))).expect("log file"))
            .spawn()
            .expect("start gobgpd");
        let g = Self { child, name, api_port, log };
        g.wait_api();
        g
    }

    /// Runs the gobgp CLI against this daemon; panics with its output on failure.
    fn cli(&self, args: &[&str]) {
        let out = Command::new(gobgp_tool("gobgp"))
            .args(["-u", "127.0.0.1", "-p", &self.api_port.to_string()])
            .args(args)
            .output()
            .expect("run gobgp");
        assert!(
            out.status.success(),
            "gobgp {args:?} on {}: {}{}\n{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
    }

    /// `gobgp global rib -a ipv4 add PREFIX [aspath PATH] origin igp`.
    fn add(&self, prefix: &str, aspath: Option<&str>) {
        let mut args = vec!["global", "rib", "-a", "ipv4", "add", prefix];
        if let Some(p) = aspath {
            args.extend(["aspath", p]);
        }
        args.extend(["origin", "igp"]);
        self.cli(&args);
    }

    fn wait_api(&self) {
        let start = Instant::now();
        loop {
            let ok = Command::new(gobgp_tool("gobgp"))
                .args(["-u", "127.0.0.1", "-p", &self.api_port.to_string(), "global"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "gobgpd {} API not up\n{}", self.name, self.log_tail());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- {} log (last lines) ---\n{}", self.name, lines[lines.len().saturating_sub(30)..].join("\n"))
    }

    /// Stops the daemon the way an operator does (SIGTERM: it closes its
    /// BGP sessions with a NOTIFICATION) and waits for it.
    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gobgpd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `origin` (AS 64500 on 127.0.0.2, passive) and `router` (AS 64512 on
/// 127.0.0.3, peering with it and reporting pre-policy Adj-RIB-In over BMP
/// to 127.0.0.1:`station_port`).
fn start_routers(dir: &Path, station_port: u16) -> (Gobgpd, Gobgpd) {
    let origin_port = free_port("127.0.0.2");
    let origin = Gobgpd::start(
        dir,
        "origin",
        &format!(
            r#"
[global.config]
  as = {OWNER}
  router-id = "192.0.2.10"
  port = {origin_port}
  local-address-list = ["127.0.0.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.3"
    peer-as = 64512
  [neighbors.transport.config]
    passive-mode = true
    local-address = "127.0.0.2"
"#
        ),
    );
    let router = Gobgpd::start(
        dir,
        "router",
        &format!(
            r#"
[global.config]
  as = 64512
  router-id = "192.0.2.12"
  port = -1
  local-address-list = ["127.0.0.3"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.2"
    peer-as = {OWNER}
  [neighbors.transport.config]
    remote-port = {origin_port}
    local-address = "127.0.0.3"
  [neighbors.timers.config]
    connect-retry = 1
[[bmp-servers]]
  [bmp-servers.config]
    address = "127.0.0.1"
    port = {station_port}
    route-monitoring-policy = "pre-policy"
"#
        ),
    );
    (origin, router)
}

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
    let (mut origin, router) = start_routers(dir.path(), port);
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
