//! The `[[bgp]]` table: watched prefixes, their expected origins and the
//! feed that delivers updates (DESIGN.md "Configuration", issue 11).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::rpki::Vrps;
use super::state::Watch;

/// Default `flap_threshold`: transitions per window.
pub const DEFAULT_FLAP_THRESHOLD: u32 = 10;
/// Default `flap_window`.
pub const DEFAULT_FLAP_WINDOW: Duration = Duration::from_secs(600);
/// Default `visibility_min_peers`.
pub const DEFAULT_VISIBILITY_MIN_PEERS: u32 = 3;
/// Default `poll_interval` of an MRT directory or URL.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(300);
/// Default `ris_live_url`: the public RIPE RIS Live endpoint.
pub const DEFAULT_RIS_LIVE_URL: &str = "wss://ris-live.ripe.net/v1/ws/?client=netprobe";

/// Where a table's updates come from (`source = ...`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// `"ris-live"`: the RIS Live websocket at `url` (`ris_live_url`).
    RisLive {
        /// The websocket URL.
        url: String,
    },
    /// `"mrt:PATH_OR_URL"`: one MRT updates file (`.gz`, `.bz2` or raw), or
    /// a directory or `http(s)://` URL ending in `/` polled for new files.
    Mrt {
        /// The file, directory or URL.
        location: String,
        /// How often a directory or URL is listed again.
        poll_interval: Duration,
    },
    /// `"bmp:ADDR"`: a BMP station (RFC 7854) listening on `listen`.
    Bmp {
        /// The TCP address routers connect to.
        listen: SocketAddr,
    },
}

impl Source {
    /// Human name, e.g. `ris-live wss://...`, `mrt /var/lib/mrt`, `bmp 0.0.0.0:11019`.
    pub fn name(&self) -> String {
        match self {
            Source::RisLive { url } => format!("ris-live {url}"),
            Source::Mrt { location, .. } => format!("mrt {location}"),
            Source::Bmp { listen } => format!("bmp {listen}"),
        }
    }
}

/// One `[[bgp]]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawTable")]
pub struct Table {
    /// `prefix` or `prefixes`: the watched prefixes; more-specifics of them
    /// are watched too.
    pub prefixes: Vec<IpNet>,
    /// `expected_origins`: ASNs allowed to originate them (not empty).
    pub expected_origins: Vec<u32>,
    /// `source`, with `ris_live_url` / `poll_interval`.
    pub source: Source,
    /// `flap_threshold`: more transitions than this within `flap_window`
    /// make a flap. Default 10.
    pub flap_threshold: u32,
    /// `flap_window`. Default 10 min.
    pub flap_window: Duration,
    /// `visibility_min_peers`: fewer peers carrying a watched prefix is a
    /// visibility loss. Default 3.
    pub visibility_min_peers: u32,
    /// `vrp_file`: VRP JSON (rpki-client or Routinator) for RPKI origin
    /// validation; re-read on SIGHUP. Default none: no validation.
    pub vrp_file: Option<PathBuf>,
    /// `allowed_upstreams`: ASNs allowed right before the origin; default
    /// empty: not checked.
    pub allowed_upstreams: Vec<u32>,
    /// The VRPs read from `vrp_file` (by `Config::load`).
    pub vrps: Option<Arc<Vrps>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    prefix: Option<IpNet>,
    #[serde(default)]
    prefixes: Option<Vec<IpNet>>,
    expected_origins: Vec<u32>,
    source: String,
    #[serde(default)]
    ris_live_url: Option<String>,
    #[serde(default, with = "humantime_serde")]
    poll_interval: Option<Duration>,
    #[serde(default)]
    flap_threshold: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    flap_window: Option<Duration>,
    #[serde(default)]
    visibility_min_peers: Option<u32>,
    #[serde(default)]
    vrp_file: Option<PathBuf>,
    #[serde(default)]
    allowed_upstreams: Vec<u32>,
}

impl TryFrom<RawTable> for Table {
    type Error = String;

    fn try_from(r: RawTable) -> Result<Self, String> {
        let prefixes = match (r.prefix, r.prefixes) {
            (Some(p), None) => vec![p],
            (None, Some(ps)) if !ps.is_empty() => ps,
            (None, Some(_)) => return Err("prefixes: must not be empty".into()),
            (None, None) => return Err("missing key `prefix` (or `prefixes`)".into()),
            (Some(_), Some(_)) => return Err("either `prefix` or `prefixes`, not both".into()),
        };
        for p in &prefixes {
            if p.trunc() != *p {
                return Err(format!("prefix: {p} has host bits set (did you mean {}?)", p.trunc()));
            }
        }
        if r.expected_origins.is_empty() {
            return Err("expected_origins: must name at least one ASN".into());
        }
        let source = if r.source == "ris-live" {
            if r.poll_interval.is_some() {
                return Err("poll_interval: only for source \"mrt:...\"".into());
            }
            Source::RisLive { url: r.ris_live_url.clone().unwrap_or_else(|| DEFAULT_RIS_LIVE_URL.to_owned()) }
        } else if let Some(location) = r.source.strip_prefix("mrt:") {
            if location.is_empty() {
                return Err("source: \"mrt:\" needs a file, directory or URL".into());
            }
            let poll_interval = r.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL);
            if poll_interval.is_zero() {
                return Err("poll_interval: must be > 0".into());
            }
            if location.starts_with("http://") || location.starts_with("https://") {
                super::mrt_http::check_url(location).map_err(|e| format!("source: {e}"))?;
            }
            Source::Mrt { location: location.to_owned(), poll_interval }
        } else if let Some(addr) = r.source.strip_prefix("bmp:") {
            let listen = addr
                .parse()
                .map_err(|e| format!("source: {addr:?} is not a listen address like 0.0.0.0:11019 ({e})"))?;
            Source::Bmp { listen }
        } else {
            return Err(format!(
                "source: {:?} is not \"ris-live\", \"mrt:PATH_OR_URL\" or \"bmp:LISTEN_ADDR\"",
                r.source
            ));
        };
        if r.ris_live_url.is_some() && !matches!(source, Source::RisLive { .. }) {
            return Err("ris_live_url: only for source \"ris-live\"".into());
        }
        if let Some(url) = &r.ris_live_url {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(format!("ris_live_url: {url:?} is not a ws:// or wss:// URL"));
            }
        }
        if matches!(source, Source::Bmp { .. }) && r.poll_interval.is_some() {
            return Err("poll_interval: only for source \"mrt:...\"".into());
        }
        let flap_threshold = r.flap_threshold.unwrap_or(DEFAULT_FLAP_THRESHOLD);
        if flap_threshold == 0 {
            return Err("flap_threshold: must be > 0".into());
        }
        let flap_window = r.flap_window.unwrap_or(DEFAULT_FLAP_WINDOW);
        if flap_window.is_zero() {
            return Err("flap_window: must be > 0".into());
        }
        let visibility_min_peers = r.visibility_min_peers.unwrap_or(DEFAULT_VISIBILITY_MIN_PEERS);
        if visibility_min_peers == 0 {
            return Err("visibility_min_peers: must be > 0".into());
        }
        Ok(Table {
            prefixes,
            expected_origins: r.expected_origins,
            source,
            flap_threshold,
            flap_window,
            visibility_min_peers,
            vrp_file: r.vrp_file,
            allowed_upstreams: r.allowed_upstreams,
            vrps: None,
        })
    }
}

impl Table {
    /// What the state machine needs of this table.
    pub fn watch(&self) -> Watch {
        Watch {
            prefixes: self.prefixes.clone(),
            expected_origins: self.expected_origins.clone(),
            allowed_upstreams: self.allowed_upstreams.clone(),
            flap_threshold: self.flap_threshold,
            flap_window: self.flap_window,
            visibility_min_peers: self.visibility_min_peers,
            vrps: self.vrps.clone(),
        }
    }

    /// Human name for logs, e.g. `bgp 192.0.2.0/24`.
    pub fn label(&self) -> String {
        let ps: Vec<String> = self.prefixes.iter().map(ToString::to_string).collect();
        format!("bgp {}", ps.join(","))
    }
}

/// Reads the VRP files of `tables` and checks rules across tables: a
/// prefix is watched once per source.
///
/// # Errors
/// A message naming the table (`[[bgp]] #N bgp PREFIX`) and the key.
pub fn finish(tables: &mut [Table]) -> Result<(), String> {
    let mut seen: std::collections::HashSet<(Source, IpNet)> = std::collections::HashSet::new();
    for (i, t) in tables.iter_mut().enumerate() {
        let label = t.label();
        let at = |m: String| format!("[[bgp]] #{} {label}: {m}", i + 1);
        if let Some(path) = &t.vrp_file {
            let vrps = Vrps::load(path).map_err(|e| at(format!("vrp_file: {e}")))?;
            t.vrps = Some(Arc::new(vrps));
        }
        for p in &t.prefixes {
            if !seen.insert((t.source.clone(), *p)) {
                return Err(at(format!("prefix: {p} is already watched by another [[bgp]] table with this source")));
            }
        }
    }
    Ok(())
}
