//! GoBGP (gobgpd v3, built by scripts/test into
//! ~/.cache/netprobe/gobgp-*/bin, or `NETPROBE_GOBGP_BIN`) for the BMP
//! tests: a daemon handle and the two-router topology on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);
/// The GoBGP release scripts/lib/install.sh builds.
pub const GOBGP_VERSION: &str = "v3.37.0";
/// Router ID of the `origin` daemon (its BMP peer BGP ID).
pub const ORIGIN_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

pub fn gobgp_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NETPROBE_GOBGP_BIN") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/netprobe").join(format!("gobgp-{GOBGP_VERSION}")).join("bin")
}

pub fn gobgp_tool(name: &str) -> PathBuf {
    let path = gobgp_bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} missing: scripts/test builds GoBGP {GOBGP_VERSION} there (or set NETPROBE_GOBGP_BIN)",
        path.display()
    );
    path
}

/// A free TCP port on `ip` (bound then released; gobgpd binds it next).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).expect("bind").local_addr().expect("addr").port()
}

/// A gobgpd process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Gobgpd {
    child: Child,
    name: &'static str,
    api_port: u16,
    log: PathBuf,
}

impl Gobgpd {
    pub fn start(dir: &Path, name: &'static str, config: &str) -> Self {
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
    pub fn cli(&self, args: &[&str]) -> String {
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `gobgp global rib -a ipv4 add PREFIX [aspath PATH] origin igp`.
    pub fn add(&self, prefix: &str, aspath: Option<&str>) {
        let mut args = vec!["global", "rib", "-a", "ipv4", "add", prefix];
        if let Some(p) = aspath {
            args.extend(["aspath", p]);
        }
        args.extend(["origin", "igp"]);
        self.cli(&args);
    }

    pub fn wait_api(&self) {
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

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- {} log (last lines) ---\n{}", self.name, lines[lines.len().saturating_sub(30)..].join("\n"))
    }

    /// Stops the daemon the way an operator does (SIGTERM: it closes its
    /// BGP sessions with a NOTIFICATION) and waits for it.
    pub fn stop(&mut self) {
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

/// Starts `origin` (AS 64500 on 127.0.0.2, passive) and `router` (AS
/// 64512 on 127.0.0.3, peering with it and reporting pre-policy Adj-RIB-In
/// over BMP to `station`).
pub fn start_routers(dir: &Path, station: SocketAddr) -> (Gobgpd, Gobgpd) {
    let origin_port = free_port("127.0.0.2");
    let origin = Gobgpd::start(
        dir,
        "origin",
        &format!(
            r#"
[global.config]
  as = 64500
  router-id = "{ORIGIN_ID}"
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
    peer-as = 64500
  [neighbors.transport.config]
    remote-port = {origin_port}
    local-address = "127.0.0.3"
  [neighbors.timers.config]
    connect-retry = 1
[[bmp-servers]]
  [bmp-servers.config]
    address = "127.0.0.1"
    port = {}
    route-monitoring-policy = "pre-policy"
"#,
            station.port()
        ),
    );
    (origin, router)
}
