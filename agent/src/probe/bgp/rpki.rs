//! Route origin validation (RFC 6811) against validated ROA payloads (VRPs)
//! exported as JSON by rpki-client (`-j`) or Routinator (`--format json`).
//!
//! Both write `{"roas": [{"prefix": "192.0.2.0/24", "maxLength": 24,
//! "asn": 64500}, ...]}`; `asn` is a number (rpki-client) or a string
//! `"AS64500"` (Routinator). Other keys (`ta`, `expires`, `metadata`,
//! `aspas`, ...) are ignored.

use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use serde::Deserialize;

/// The result of validating one route (RFC 6811 section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// A covering VRP matches origin and length.
    Valid,
    /// Some VRP covers the prefix but none matches; why.
    Invalid(netprobe_wire::msg::RpkiReason),
    /// No VRP covers the prefix.
    NotFound,
}

/// A set of VRPs indexed by prefix for covering lookups.
#[derive(Clone, Debug, Default)]
pub struct Vrps {
    v4: PrefixMap<Ipv4Net, Vec<(u32, u8)>>,
    v6: PrefixMap<Ipv6Net, Vec<(u32, u8)>>,
    len: usize,
    digest: u64,
}

impl PartialEq for Vrps {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.digest == other.digest
    }
}

#[derive(Deserialize)]
struct File {
    roas: Vec<Roa>,
}

#[derive(Deserialize)]
struct Roa {
    prefix: IpNet,
    #[serde(rename = "maxLength")]
    max_length: u8,
    asn: Asn,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Asn {
    Number(u32),
    Text(String),
}

impl Vrps {
    /// Reads a VRP JSON file.
    ///
    /// # Errors
    /// A message naming the file and, for bad JSON, the line and column;
    /// for a bad entry its index in `roas`.
    pub fn load(path: &Path) -> Result<Vrps, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}:{e}", path.display()))
    }

    /// Parses VRP JSON (see the module doc).
    ///
    /// # Errors
    /// `line:column: message` for bad JSON, `roas[i]: message` for a bad entry.
    pub fn parse(json: &[u8]) -> Result<Vrps, String> {
        let file: File = serde_json::from_slice(json).map_err(|e| format!("{}:{}: {e}", e.line(), e.column()))?;
        let mut vrps = Vrps::default();
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        for (i, roa) in file.roas.into_iter().enumerate() {
            let asn = match roa.asn {
                Asn::Number(n) => n,
                Asn::Text(t) => t
                    .strip_prefix("AS")
                    .or_else(|| t.strip_prefix("as"))
                    .unwrap_or(&t)
                    .parse()
                    .map_err(|_| format!(" roas[{i}].asn: {t:?} is not an AS number"))?,
            };
            let prefix = roa.prefix.trunc();
            if roa.max_length < prefix.prefix_len() || roa.max_length > prefix.max_prefix_len() {
                return Err(format!(
                    " roas[{i}].maxLength: {} outside {}..={} for {prefix}",
                    roa.max_length,
                    prefix.prefix_len(),
                    prefix.max_prefix_len()
                ));
            }
            std::hash::Hash::hash(&(prefix, asn, roa.max_length), &mut digest);
            vrps.insert(prefix, asn, roa.max_length);
        }
        vrps.digest = std::hash::Hasher::finish(&digest);
        Ok(vrps)
    }

    /// Adds one VRP.
    pub fn insert(&mut self, prefix: IpNet, asn: u32, max_length: u8) {
        let entry = (asn, max_length);
        match prefix.trunc() {
            IpNet::V4(p) => self.v4.entry(p).or_default().push(entry),
            IpNet::V6(p) => self.v6.entry(p).or_default().push(entry),
        }
        self.len += 1;
    }

    /// How many VRPs the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no VRP.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Validates `prefix` announced with `origin` (`None` when the origin
    /// is an AS_SET or the path is empty: RFC 6811's NONE, which matches no
    /// VRP).
    pub fn validate(&self, prefix: &IpNet, origin: Option<u32>) -> Validity {
        let len = prefix.prefix_len();
        let mut covered = false;
        let mut asn_matched = false;
        let mut check = |entries: &Vec<(u32, u8)>| {
            for &(asn, max_length) in entries {
                covered = true;
                if Some(asn) == origin && asn != 0 {
                    if len <= max_length {
                        return true;
                    }
                    asn_matched = true;
                }
            }
            false
        };
        let valid = match prefix {
            IpNet::V4(p) => self.v4.cover(p).any(|(_, e)| check(e)),
            IpNet::V6(p) => self.v6.cover(p).any(|(_, e)| check(e)),
        };
        if valid {
            Validity::Valid
        } else if !covered {
            Validity::NotFound
        } else if asn_matched {
            Validity::Invalid(netprobe_wire::msg::RpkiReason::MaxLength)
        } else {
            Validity::Invalid(netprobe_wire::msg::RpkiReason::Origin)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netprobe_wire::msg::RpkiReason;

    fn p(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    /// The JSON shapes of rpki-client 9 (`-j`, numeric asn, metadata) and
    /// Routinator 0.14 (`--format json`, "AS" strings), as they write them.
    #[test]
    fn reads_rpki_client_and_routinator_json() {
        let rpki_client = br#"{"metadata": {"buildmachine": "x", "roas": 2},
            "roas": [{"asn": 64500, "prefix": "192.0.2.0/24", "maxLength": 24, "ta": "ripe", "expires": 1},
                     {"asn": 64501, "prefix": "2001:db8::/32", "maxLength": 48, "ta": "arin", "expires": 1}],
            "aspas": []}"#;
        let routinator = br#"{"metadata": {"generated": 1}, "roas": [
            {"asn": "AS64500", "prefix": "192.0.2.0/24", "maxLength": 24, "ta": "ripe"},
            {"asn": "AS64501", "prefix": "2001:db8::/32", "maxLength": 48, "ta": "arin"}]}"#;
        for json in [&rpki_client[..], &routinator[..]] {
            let v = Vrps::parse(json).expect("parses");
            assert_eq!(v.len(), 2);
            assert_eq!(v.validate(&p("192.0.2.0/24"), Some(64500)), Validity::Valid);
            assert_eq!(v.validate(&p("2001:db8:1::/48"), Some(64501)), Validity::Valid);
            assert_eq!(v.validate(&p("2001:db8:1::/49"), Some(64501)), Validity::Invalid(RpkiReason::MaxLength));
        }
        assert_eq!(Vrps::parse(rpki_client), Vrps::parse(routinator));
    }

    /// RFC 6811 section 2's rules, case by case.
    #[test]
    fn rfc6811_valid_invalid_not_found() {
        let mut v = Vrps::default();
        v.insert(p("198.51.100.0/22"), 64500, 23);
        v.insert(p("198.51.100.0/24"), 64501, 24);
        v.insert(p("203.0.113.0/24"), 0, 24); // AS0: nobody may originate
        let cases = [
            ("198.51.100.0/22", Some(64500), Validity::Valid),
            ("198.51.102.0/23", Some(64500), Validity::Valid),
            ("198.51.100.0/24", Some(64501), Validity::Valid), // the second VRP matches
            ("198.51.101.0/24", Some(64500), Validity::Invalid(RpkiReason::MaxLength)),
            ("198.51.100.0/22", Some(64666), Validity::Invalid(RpkiReason::Origin)),
            ("198.51.100.0/22", None, Validity::Invalid(RpkiReason::Origin)), // AS_SET origin
            ("198.51.96.0/20", Some(64500), Validity::NotFound),              // less specific: not covered
            ("192.0.2.0/24", Some(64500), Validity::NotFound),
            ("203.0.113.0/24", Some(0), Validity::Invalid(RpkiReason::Origin)),
            ("203.0.113.0/24", Some(64500), Validity::Invalid(RpkiReason::Origin)),
        ];
        for (prefix, origin, want) in cases {
            assert_eq!(v.validate(&p(prefix), origin), want, "{prefix} from {origin:?}");
        }
    }

    #[test]
    fn bad_entries_are_named() {
        let err = Vrps::parse(
            br#"{"roas": [{"asn": 1, "prefix": "192.0.2.0/24", "maxLength": 24},
            {"asn": "ASx", "prefix": "192.0.2.0/24", "maxLength": 24}]}"#,
        )
        .expect_err("bad asn");
        assert!(err.contains("roas[1].asn") && err.contains("ASx"), "{err}");
        let err = Vrps::parse(br#"{"roas": [{"asn": 1, "prefix": "192.0.2.0/24", "maxLength": 16}]}"#)
            .expect_err("short maxLength");
        assert!(err.contains("roas[0].maxLength"), "{err}");
        let err = Vrps::parse(b"{\"roas\": [\n{\"asn\": 1, \"prefix\": \"192.0.2.0/99\", \"maxLength\": 24}]}")
            .expect_err("bad prefix");
        assert!(err.starts_with("2:"), "{err}");
    }
}
