//! The agent TOML config (DESIGN.md "Configuration"): `[agent]`, `[kafka]`
//! and one array of tables per probe type (`[[icmp]]`, `[[dns]]`, `[[http]]`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use netprobe_wire::KafkaSettings;
use serde::Deserialize;

use netprobe_wire::ProbeType;

use crate::probe::{self, Probe, Target};
use crate::Error;

/// Default heartbeat period (`probe.health`).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// Default registry re-publish period (`agent.registry`).
pub const DEFAULT_REGISTRY_INTERVAL: Duration = Duration::from_secs(600);

/// The registry of probe types: `table => config struct`. Each line makes
/// an `[[table]]` array in the config file, a `--only` name and a
/// concurrency limit; adding a probe type is one line here.
macro_rules! probe_types {
    ($($table:ident => $probe:ty),+ $(,)?) => {
        /// The whole agent config file.
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Config {
            /// Identity and housekeeping.
            pub agent: AgentSettings,
            /// Kafka connection (the `agent` principal).
            pub kafka: KafkaSettings,
            $(
                #[doc = concat!("The `[[", stringify!($table), "]]` tables, one target each (see its module).")]
                #[serde(default, deserialize_with = "probe_tables")]
                pub $table: Vec<$probe>,
            )+
            /// The `[[bgp]]` tables: watched prefixes. BGP is a stream, not
            /// a periodic run: see [`probe::bgp`].
            #[serde(default)]
            pub bgp: Vec<probe::bgp::Table>,
        }

        /// Every probe type this agent runs, in config order.
        pub const PROBE_TYPES: &[probe::Registered] =
            &[$(probe::Registered::of::<$probe>()),+, probe::Registered::stream(ProbeType::Bgp)];

        impl Config {
            /// Every configured target, in file order, limited to `only`
            /// when it is not empty.
            pub fn targets(&self, only: &[ProbeType]) -> Vec<Target> {
                let mut all = Vec::new();
                $(
                    if only.is_empty() || only.contains(&<$probe as Probe>::TYPE) {
                        all.extend(self.$table.iter().cloned().map(Target::from));
                    }
                )+
                all
            }

            /// The `[[bgp]]` tables, unless `only` leaves BGP out.
            pub fn bgp_tables(&self, only: &[ProbeType]) -> Vec<probe::bgp::Table> {
                if only.is_empty() || only.contains(&ProbeType::Bgp) {
                    self.bgp.clone()
                } else {
                    Vec::new()
                }
            }
        }
    };
}

probe_types! {
    icmp => probe::icmp::Target,
    dns => probe::dns::Target,
    http => probe::http::Target,
    mtr => probe::mtr::Target,
}

/// Reads one probe type's tables: a list of its config structs (each
/// module's `Deserialize` may expand one table into several targets).
fn probe_tables<'de, D, P>(d: D) -> Result<Vec<P>, D::Error>
where
    D: serde::Deserializer<'de>,
    P: Probe + Deserialize<'de>,
{
    P::tables(d)
}

/// The `[agent]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// This agent's identity, e.g. `pop-fra-01`: the first half of every
    /// message key and the `probe_id` tag of every point (a tag value: see
    /// [`tag_value`]).
    #[serde(deserialize_with = "tag_value")]
    pub probe_id: String,
    /// Human location, e.g. `Frankfurt, DE` (a tag value: see [`tag_value`]).
    #[serde(deserialize_with = "tag_value")]
    pub location: String,
    /// Directory of the on-disk spool that keeps measurements while Kafka
    /// is unreachable. Without it such measurements are lost (and counted).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Bound of the spool in bytes; beyond it the oldest messages are
    /// dropped and counted. Default 256 MiB.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
    /// Prometheus self-metrics listener, e.g. `127.0.0.1:9464`.
    #[serde(default)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How often `probe.health` is published. Default 30 s.
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How often the registry record is re-published. Default 10 min.
    #[serde(default = "default_registry", with = "humantime_serde")]
    pub registry_interval: Duration,
    /// Prefix -> origin ASN table for MTR hops (CAIDA routeviews prefix2as
    /// text, see [`probe::mtr::AsnTable`]); read at load and on SIGHUP.
    #[serde(default)]
    pub asn_table: Option<PathBuf>,
}

fn default_spool_max_bytes() -> u64 {
    crate::spool::DEFAULT_MAX_BYTES
}

fn default_heartbeat() -> Duration {
    DEFAULT_HEARTBEAT_INTERVAL
}

fn default_registry() -> Duration {
    DEFAULT_REGISTRY_INTERVAL
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and, from the TOML parser, the line,
    /// column and key; or a rule that does not hold.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let fail = |message: String| Error::Config { path: path.to_owned(), message };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        if let Some(table) = &config.agent.asn_table {
            let table = std::sync::Arc::new(
                probe::mtr::AsnTable::load(table).map_err(|e| fail(format!("[agent] asn_table: {e}")))?,
            );
            for target in &mut config.mtr {
                target.asn_table = Some(std::sync::Arc::clone(&table));
            }
        }
        probe::bgp::config::finish(&mut config.bgp).map_err(fail)?;
        let a = &config.agent;
        if a.heartbeat_interval.is_zero() || a.registry_interval.is_zero() {
            return Err(fail("[agent] heartbeat_interval and registry_interval must be > 0".into()));
        }
        for target in config.targets(&[]) {
            let at = |m: String| fail(format!("[[{}]] {}: {m}", target.probe_type().as_str(), target.label()));
            if target.interval().is_zero() {
                return Err(at("interval must be > 0".into()));
            }
            target.validate().map_err(at)?;
        }
        Ok(config)
    }
}

/// Checks a string that becomes an InfluxDB tag value (probe_id, location,
/// targets): not empty, no line break, no trailing backslash, which InfluxDB
/// 2.x line protocol cannot carry (DESIGN.md "InfluxDB schema"). Ingest
/// would send every message carrying such a value to the DLQ.
///
/// # Errors
/// A message saying which rule the value breaks.
pub fn check_tag_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("must not be empty".into())
    } else if value.contains(['\n', '\r']) {
        Err("must not contain a line break (InfluxDB tags cannot carry it)".into())
    } else if value.ends_with('\\') {
        Err("must not end with a backslash (InfluxDB 2.x tags cannot carry it)".into())
    } else {
        Ok(())
    }
}

/// Deserializes a string checked by [`check_tag_value`]; the TOML parser
/// adds the file position and key to the error.
///
/// # Errors
/// The rule the value breaks.
pub fn tag_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    check_tag_value(&value).map_err(|e| serde::de::Error::custom(format!("{value:?} {e}")))?;
    Ok(value)
}

/// [`tag_value`] for an optional key.
///
/// # Errors
/// The rule the value breaks.
pub fn some_tag_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    tag_value(d).map(Some)
}

/// [`tag_value`] for every string of a list (`targets = [...]`).
///
/// # Errors
/// The first value that breaks a rule, quoted.
pub fn tag_values<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values = Vec::<String>::deserialize(d)?;
    for v in &values {
        check_tag_value(v).map_err(|e| serde::de::Error::custom(format!("targets: {v:?} {e}")))?;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, Error> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(&path)
    }

    #[test]
    fn shipped_example_parses_with_defaults() {
        let text = include_str!("../agent.example.toml");
        let config = load(text).expect("example parses");
        assert_eq!(config.agent.probe_id, "pop-fra-01");
        assert_eq!(config.agent.heartbeat_interval, DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(config.agent.registry_interval, DEFAULT_REGISTRY_INTERVAL);
        assert_eq!(config.targets(&[]).len(), 4);
        assert_eq!(config.bgp.len(), 1);
        assert_eq!(config.targets(&[netprobe_wire::ProbeType::Dns]).len(), 1);
        assert_eq!(config.icmp[0].count, 5);
        let mtr = &config.mtr[0];
        assert_eq!(
            (mtr.interval, mtr.count, mtr.first_ttl, mtr.max_ttl, mtr.protocol, mtr.port),
            (Duration::from_secs(300), 10, 1, 30, probe::mtr::Protocol::Icmp, None)
        );
        assert_eq!((mtr.round_interval, mtr.timeout), (Duration::from_secs(1), Duration::from_secs(1)));
    }

    #[test]
    fn bgp_table_defaults_and_sources() {
        let config = load(include_str!("../agent.example.toml")).expect("example parses");
        let t = &config.bgp[0];
        assert_eq!(t.prefixes, ["192.0.2.0/24".parse::<ipnet::IpNet>().expect("prefix")]);
        assert_eq!((t.flap_threshold, t.flap_window, t.visibility_min_peers), (10, Duration::from_secs(600), 3));
        assert_eq!(
            t.source,
            probe::bgp::Source::RisLive { url: "wss://ris-live.ripe.net/v1/ws/?client=netprobe".into() }
        );
        assert!(t.allowed_upstreams.is_empty() && t.vrps.is_none());
        let config = load(&format!(
            "{HEAD}[[bgp]]\nprefixes = [\"192.0.2.0/24\", \"2001:db8::/32\"]\nexpected_origins = [1]\n\
             source = \"mrt:/srv/rrc00\"\npoll_interval = \"1m\"\n[[bgp]]\nprefix = \"198.51.100.0/24\"\n\
             expected_origins = [2]\nsource = \"bmp:[::]:11019\"\n"
        ))
        .expect("parses");
        assert_eq!(
            config.bgp[0].source,
            probe::bgp::Source::Mrt { location: "/srv/rrc00".into(), poll_interval: Duration::from_secs(60) }
        );
        assert_eq!(config.bgp[1].source, probe::bgp::Source::Bmp { listen: "[::]:11019".parse().expect("addr") });
        assert_eq!(config.bgp_tables(&[ProbeType::Icmp]).len(), 0);
        assert_eq!(config.bgp_tables(&[ProbeType::Bgp]).len(), 2);
    }

    #[test]
    fn bad_bgp_tables_name_file_line_and_key() {
        let t = |body: &str| format!("{HEAD}[[bgp]]\nexpected_origins = [64500]\n{body}");
        let cases = [
            (t("prefix = \"192.0.2.1/24\"\nsource = \"ris-live\"\n"), "line 8", "host bits"),
            (t("prefix = \"192.0.2.0/24\"\nsource = \"rislive\"\n"), "line 8", "source"),
            (t("prefix = \"192.0.2.0/24\"\nsource = \"bmp:nowhere\"\n"), "line 8", "source"),
            (
                t("prefix = \"192.0.2.0/24\"\nsource = \"ris-live\"\npoll_interval = \"1m\"\n"),
                "line 8",
                "poll_interval",
            ),
            (t("prefix = \"192.0.2.0/24\"\nsource = \"ris-live\"\nflap_window = \"0s\"\n"), "line 8", "flap_window"),
            (
                t("prefix = \"192.0.2.0/24\"\nsource = \"ris-live\"\nvisibility_min_peer = 2\n"),
                "line 12",
                "visibility_min_peer",
            ),
            (t("source = \"ris-live\"\n"), "line 8", "prefix"),
            (
                t("prefix = \"192.0.2.0/24\"\nsource = \"mrt:https://u:pw@example.net/rrc00/\"\n"),
                "line 8",
                "carries credentials",
            ),
            (
                format!("{HEAD}[[bgp]]\nprefix = \"192.0.2.0/24\"\nexpected_origins = []\nsource = \"ris-live\"\n"),
                "line 8",
                "expected_origins",
            ),
        ];
        for (text, line, key) in cases {
            let err = load(&text).expect_err(key).to_string();
            assert!(err.contains("agent.toml") && err.contains(line) && err.contains(key), "{key}: {err}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let vrps = dir.path().join("vrps.json");
        std::fs::write(&vrps, "{\"roas\": [\n{\"asn\": 1, \"prefix\": \"x\", \"maxLength\": 24}]}").expect("write");
        let err = load(&t(&format!("prefix = \"192.0.2.0/24\"\nsource = \"ris-live\"\nvrp_file = {vrps:?}\n")))
            .expect_err("bad VRP file")
            .to_string();
        assert!(err.contains("vrp_file") && err.contains("vrps.json:2:"), "{err}");
        let twice = format!(
            "{HEAD}[[bgp]]\nprefix = \"192.0.2.0/24\"\nexpected_origins = [1]\nsource = \"ris-live\"\n\
             [[bgp]]\nprefix = \"192.0.2.0/24\"\nexpected_origins = [2]\nsource = \"ris-live\"\n"
        );
        let err = load(&twice).expect_err("same prefix twice").to_string();
        assert!(err.contains("[[bgp]] #2") && err.contains("already watched"), "{err}");
    }

    #[test]
    fn asn_table_is_attached_to_mtr_targets_and_a_bad_one_names_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = dir.path().join("prefix2as.txt");
        std::fs::write(&table, "192.0.2.0\t24\t64496\n").expect("write");
        let text = |path: &Path| {
            format!(
                "[agent]\nprobe_id = \"p\"\nlocation = \"l\"\nasn_table = {path:?}\n[kafka]\nbrokers = [\"b:1\"]\n\
                 username = \"agent\"\nca_file = \"/ca\"\n[[mtr]]\ntarget = \"192.0.2.1\"\n"
            )
        };
        let config = load(&text(&table)).expect("parses");
        let attached = config.mtr[0].asn_table.as_ref().expect("table attached");
        assert_eq!(attached.lookup("192.0.2.77".parse().expect("ip")), Some(64496));

        std::fs::write(&table, "192.0.2.0\t24\t64496\n192.0.2.0\tx\t1\n").expect("write");
        let err = load(&text(&table)).expect_err("bad line").to_string();
        assert!(err.contains("asn_table") && err.contains("prefix2as.txt:2"), "{err}");
    }

    #[test]
    fn mtr_tables_expand_targets_and_reject_bad_keys() {
        const HEAD: &str = "[agent]\nprobe_id = \"p\"\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\n\
                            username = \"agent\"\nca_file = \"/ca\"\n";
        let config =
            load(&format!("{HEAD}[[mtr]]\ntargets = [\"192.0.2.1\", \"192.0.2.2\"]\nprotocol = \"udp\"\nport = 53\n"))
                .expect("parses");
        let got: Vec<_> = config.mtr.iter().map(|t| (t.target.as_str(), t.protocol, t.port)).collect();
        assert_eq!(
            got,
            [("192.0.2.1", probe::mtr::Protocol::Udp, Some(53)), ("192.0.2.2", probe::mtr::Protocol::Udp, Some(53))]
        );
        assert!(config.mtr.iter().all(|t| !t.resolve_hostnames && t.hostname_resolver.is_none()), "defaults");
        let config = load(&format!(
            "{HEAD}[[mtr]]\ntarget = \"192.0.2.1\"\nresolve_hostnames = true\nhostname_resolver = \"127.0.0.1:5353\"\n"
        ))
        .expect("parses");
        assert!(config.mtr[0].resolve_hostnames);
        assert_eq!(config.mtr[0].hostname_resolver, Some("127.0.0.1:5353".parse().expect("addr")));
        for (bad, key) in [
            ("[[mtr]]\ntarget = \"x\"\nport = 80\n", "port"),
            ("[[mtr]]\ntarget = \"x\"\nmax_ttl = 0\n", "max_ttl"),
            ("[[mtr]]\ntarget = \"x\"\ncount = 400\ninterval = \"1m\"\n", "interval"),
            ("[[mtr]]\ntarget = \"x\"\nprotocol = \"sctp\"\n", "sctp"),
            ("[[mtr]]\ntarget = \"x\"\nhostname_resolver = \"dns.example\"\n", "hostname_resolver"),
        ] {
            let err = load(&format!("{HEAD}{bad}")).expect_err(bad).to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn icmp_table_with_a_target_list_gives_one_target_each() {
        let config = load(
            "[agent]\nprobe_id = \"p\"\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\nusername = \"agent\"\n\
             ca_file = \"/ca\"\n[[icmp]]\ntargets = [\"192.0.2.1\", \"192.0.2.2\"]\ninterval = \"10s\"\ncount = 2\n",
        )
        .expect("parses");
        let targets: Vec<_> = config.icmp.iter().map(|t| (t.target.as_str(), t.count)).collect();
        assert_eq!(targets, [("192.0.2.1", 2), ("192.0.2.2", 2)]);
        let both = load(
            "[agent]\nprobe_id = \"p\"\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\nusername = \"agent\"\n\
             ca_file = \"/ca\"\n[[icmp]]\ntarget = \"192.0.2.1\"\ntargets = [\"192.0.2.2\"]\ninterval = \"10s\"\n",
        )
        .expect_err("target and targets together");
        assert!(both.to_string().contains("either `target` or `targets`"), "{both}");
    }

    #[test]
    fn probe_table_rule_names_its_table() {
        let err = load(
            "[agent]\nprobe_id = \"p\"\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\nusername = \"agent\"\n\
             ca_file = \"/ca\"\n[[icmp]]\ntarget = \"192.0.2.1\"\ninterval = \"10s\"\n\
             [[icmp]]\ntarget = \"192.0.2.2\"\ninterval = \"1s\"\ncount = 5\n",
        )
        .expect_err("5 requests 1 s apart do not fit a 1 s interval");
        assert!(err.to_string().contains("[[icmp]] icmp 192.0.2.2") && err.to_string().contains("interval"), "{err}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = load("[agent]\nprobe_id = \"p\"\nlocation = \"l\"\nheartbeat = \"5s\"\n").expect_err("unknown key");
        let text = err.to_string();
        assert!(text.contains("agent.toml") && text.contains("line 4") && text.contains("heartbeat"), "{text}");
    }

    const HEAD: &str = "[agent]\nprobe_id = \"p\"\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\nusername = \"agent\"\nca_file = \"/ca\"\n";

    /// Regression (hardening issue, fault 8): only probe_id was checked; a
    /// location or target InfluxDB cannot carry sent every message to the DLQ.
    #[test]
    fn every_string_that_becomes_a_tag_is_checked_naming_line_and_key() {
        let cases = [
            ("[agent]\nprobe_id = \"p\"\nlocation = 'Frankfurt\\'\n", "line 3", "location", "backslash"),
            (&format!("{HEAD}[[icmp]]\ntarget = \"a\\nb\"\ninterval = \"10s\"\n"), "line 9", "target", "line break"),
            (&format!("{HEAD}[[icmp]]\ntargets = [\"192.0.2.1\", 'x\\']\ninterval = \"10s\"\n"), "line 9", "targets", "backslash"),
            (
                &format!("{HEAD}[[dns]]\nresolver = \"127.0.0.1:53\"\nquery_name = 'a.example\\'\nrecord_type = \"A\"\ninterval = \"10s\"\n"),
                "line 10",
                "query_name",
                "backslash",
            ),
            (&format!("{HEAD}[[http]]\nurl = \"\"\ninterval = \"10s\"\n"), "line 9", "url", "empty"),
        ];
        for (text, line, key, rule) in cases {
            let err = load(text).expect_err(key).to_string();
            assert!(
                err.contains("agent.toml") && err.contains(line) && err.contains(key) && err.contains(rule),
                "{key}: {err}"
            );
        }
    }

    /// Regression (hardening issue, fault 5): userinfo in a URL was
    /// published verbatim (message, Kafka key, InfluxDB tag, logs).
    #[test]
    fn credentials_in_an_http_url_are_refused_without_echoing_the_password() {
        let err = load(&format!("{HEAD}[[http]]\nurl = \"https://probe:s3cret@example.com/\"\ninterval = \"10s\"\n"))
            .expect_err("userinfo refused")
            .to_string();
        assert!(err.contains("credentials") && err.contains("basic_auth") && !err.contains("s3cret"), "{err}");
    }

    #[test]
    fn basic_auth_and_header_files_are_read_at_load_and_must_be_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let password = dir.path().join("site.password");
        std::fs::write(&password, "pw\n").expect("password");
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let table = format!(
            "{HEAD}[[http]]\nurl = \"https://example.com/\"\ninterval = \"10s\"\n\
             basic_auth = {{ username = \"probe\", password_file = {password:?} }}\n"
        );
        let err = load(&table).expect_err("world-readable").to_string();
        assert!(err.contains("world-readable") && err.contains("site.password"), "{err}");
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        load(&table).expect("private password file");
        let missing = format!(
            "{HEAD}[[http]]\nurl = \"https://example.com/\"\ninterval = \"10s\"\n\
             headers = {{ \"X-Api-Key\" = {{ file = \"/nonexistent/key\" }} }}\n"
        );
        let err = load(&missing).expect_err("missing header file").to_string();
        assert!(err.contains("headers: X-Api-Key") && err.contains("/nonexistent/key"), "{err}");
    }

    #[test]
    fn probe_id_influxdb_cannot_carry_is_refused() {
        let err = load(
            "[agent]\nprobe_id = 'a\\'\nlocation = \"l\"\n[kafka]\nbrokers = [\"b:1\"]\nusername = \"agent\"\nca_file = \"/ca\"\n",
        )
        .expect_err("trailing backslash");
        assert!(err.to_string().contains("backslash"), "{err}");
    }
}
