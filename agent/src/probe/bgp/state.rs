//! The BGP monitor's state machine: one pure function from route updates
//! ([`FeedElem`]) to events ([`Bgp`] bodies), the same for every source.
//!
//! No I/O and no clock: time is the update's own timestamp, so a replayed
//! MRT file classifies exactly as the live stream did.
//!
//! # What is tracked
//! Per *route prefix* (a watched prefix, or a more-specific of one) and per
//! *peer* (collector, peer address): the route the peer last announced
//! (AS path, origin, a hash of next hop and communities) or that it
//! withdrew it. Per route prefix: recent announce/withdraw transition times
//! (flap detection) and, for watched prefixes, whether enough peers carry it
//! (visibility).
//!
//! # Bounds
//! At most [`MAX_PEERS_PER_PREFIX`] peers per route prefix and
//! [`MAX_MORE_SPECIFICS`] more-specific route prefixes per watched prefix,
//! so state is bounded by watched prefixes x (1 + 256) x 4096 peers; updates
//! beyond a bound are still classified (events are emitted) but not
//! remembered, and counted in [`Counters::state_full`]. What removes
//! entries: the last announcing peer's withdrawal of a more-specific drops
//! that route prefix entirely; a withdrawal of a watched prefix keeps a
//! "withdrawn" mark for the peer (needed to tell a repeat from a
//! re-announcement and to count flaps), bounded by the peer cap; a config
//! reload starts from empty state.
//!
//! # Events per update, in this order
//! 1. exactly one of: `announce` (first sight from this peer, a
//!    re-announcement, or changed attributes other than the path),
//!    `origin_change` (origin not in `expected_origins`, or an AS_SET
//!    origin, and different from this peer's previous origin),
//!    `path_change` (same peer and origin, different AS path),
//!    `more_specific` (a more-specific of a watched prefix announced by this
//!    peer for the first time or with a new origin), `withdraw` (a peer that
//!    announced the route withdrew it); or none for an identical repeat
//!    (counted in `suppressed`) or a more-specific re-announced with the
//!    same origin (counted in `ignored`);
//! 2. `upstream_change`: `allowed_upstreams` is set, the AS right before the
//!    origin is not in it, and it differs from this peer's previous one;
//! 3. `rpki_invalid`: invalid against the VRPs (RFC 6811) and the origin
//!    differs from this peer's previous one (`valid` and `not_found`
//!    are counted, not emitted);
//! 4. `flap`: more than `flap_threshold` transitions (a withdrawal of an
//!    announced route, a re-announcement of a withdrawn one) of this route
//!    prefix, all peers together, within `flap_window`; at most once per
//!    window;
//! 5. `visibility_lost` when the number of peers carrying a watched prefix
//!    falls below `visibility_min_peers` after having reached it,
//!    `visibility_restored` when it reaches it again after a loss.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bgpkit_parser::models::{AsPathSegment, ElemType};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netprobe_wire::msg::{Bgp, BgpEvent};
use prefix_trie::PrefixMap;

use super::feed::FeedElem;
use super::rpki::{Validity, Vrps};

/// Most peers remembered per route prefix (RIS has ~1,500 peers in all).
pub const MAX_PEERS_PER_PREFIX: usize = 4096;
/// Most more-specific route prefixes remembered per watched prefix.
pub const MAX_MORE_SPECIFICS: usize = 256;
/// Most distinct collectors remembered (beyond: they share one id).
const MAX_COLLECTORS: usize = 4096;

/// What the state machine needs of one `[[bgp]]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Watch {
    /// The watched prefixes (more-specifics of them are watched too).
    pub prefixes: Vec<IpNet>,
    /// Legitimate origin ASNs.
    pub expected_origins: Vec<u32>,
    /// ASNs allowed right before the origin; empty: not checked.
    pub allowed_upstreams: Vec<u32>,
    /// Transitions per `flap_window` above which a `flap` is emitted.
    pub flap_threshold: u32,
    /// The flap window.
    pub flap_window: Duration,
    /// Peers that must carry a watched prefix for it to count as visible.
    pub visibility_min_peers: u32,
    /// VRPs for origin validation; `None`: not validated.
    pub vrps: Option<Arc<Vrps>>,
}

/// What the state machine counted besides events (exported as metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Updates processed.
    pub updates: u64,
    /// Updates for prefixes neither watched nor more-specific of one.
    pub unrelated: u64,
    /// Identical repeats of a peer's announcement, and withdrawals from a
    /// peer that did not announce the route.
    pub suppressed: u64,
    /// Re-announcements of a more-specific with the same origin.
    pub ignored: u64,
    /// Announcements RPKI-valid.
    pub rpki_valid: u64,
    /// Announcements with no covering VRP.
    pub rpki_not_found: u64,
    /// Announcements RPKI-invalid.
    pub rpki_invalid: u64,
    /// Updates not remembered because a bound was reached.
    pub state_full: u64,
}

/// The origin of a route.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Origin {
    /// The last AS of an AS_SEQUENCE (or the peer's AS for an empty path).
    As(u32),
    /// The path ends in an AS_SET: no single origin (RFC 6811's NONE).
    Set(Box<[u32]>),
}

/// One peer's announced route, as much as the classification needs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Route {
    path: Box<[u32]>,
    origin: Origin,
    upstream: Option<u32>,
    /// Hash of next hop and communities (repeat detection).
    attrs: u64,
}

#[derive(Clone, Debug)]
enum PeerState {
    Announced(Route),
    Withdrawn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Visibility {
    /// `visibility_min_peers` not reached yet since the start.
    Unknown,
    Visible,
    Lost,
}

#[derive(Debug)]
struct PrefixState {
    peers: HashMap<(u32, IpAddr), PeerState>,
    announced: u32,
    transitions: VecDeque<f64>,
    quiet_until: f64,
    visibility: Visibility,
}

impl PrefixState {
    fn new() -> Self {
        PrefixState {
            peers: HashMap::new(),
            announced: 0,
            transitions: VecDeque::new(),
            quiet_until: f64::NEG_INFINITY,
            visibility: Visibility::Unknown,
        }
    }
}

/// The state machine for the watches of one source.
#[derive(Debug)]
pub struct Monitor {
    watches: Vec<Arc<Watch>>,
    v4: PrefixMap<Ipv4Net, usize>,
    v6: PrefixMap<Ipv6Net, usize>,
    routes: HashMap<IpNet, PrefixState>,
    more_specifics: HashMap<IpNet, usize>,
    collectors: HashMap<String, u32>,
    counters: Counters,
}

impl Monitor {
    /// A monitor of `watches` with empty state. A prefix in several watches
    /// belongs to the first (config validation refuses that anyway).
    pub fn new(watches: Vec<Watch>) -> Self {
        let (mut v4, mut v6) = (PrefixMap::new(), PrefixMap::new());
        for (i, w) in watches.iter().enumerate() {
            for p in &w.prefixes {
                match p.trunc() {
                    IpNet::V4(p) => {
                        v4.entry(p).or_insert(i);
                    }
                    IpNet::V6(p) => {
                        v6.entry(p).or_insert(i);
                    }
                }
            }
        }
        Monitor {
            watches: watches.into_iter().map(Arc::new).collect(),
            v4,
            v6,
            routes: HashMap::new(),
            more_specifics: HashMap::new(),
            collectors: HashMap::new(),
            counters: Counters::default(),
        }
    }

    /// What was counted so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Route prefixes held (watched prefixes seen plus more-specifics).
    pub fn route_prefixes(&self) -> usize {
        self.routes.len()
    }

    /// The watched prefix covering `prefix` most specifically, and its watch.
    fn lookup(&self, prefix: &IpNet) -> Option<(IpNet, usize)> {
        match prefix {
            IpNet::V4(p) => self.v4.get_lpm(p).map(|(w, i)| (IpNet::V4(*w), *i)),
            IpNet::V6(p) => self.v6.get_lpm(p).map(|(w, i)| (IpNet::V6(*w), *i)),
        }
    }

    fn collector_id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.collectors.get(name) {
            return *id;
        }
        if self.collectors.len() >= MAX_COLLECTORS {
            return u32::MAX;
        }
        let id = self.collectors.len() as u32;
        self.collectors.insert(name.to_owned(), id);
        id
    }

    /// Classifies one update; returns its events in the order of the
    /// module doc (none for most updates).
    pub fn process(&mut self, fe: &FeedElem) -> Vec<Bgp> {
        self.counters.updates += 1;
        let prefix = fe.elem.prefix.prefix.trunc();
        let Some((watched, wi)) = self.lookup(&prefix) else {
            self.counters.unrelated += 1;
            return Vec::new();
        };
        let peer = (self.collector_id(&fe.collector), fe.elem.peer_ip);
        match fe.elem.elem_type {
            ElemType::ANNOUNCE => self.announce(fe, prefix, watched, wi, peer),
            ElemType::WITHDRAW => self.withdraw(fe, prefix, watched, wi, peer),
        }
    }

    /// The state of `prefix`, created unless a bound forbids it.
    fn route_state(&mut self, prefix: IpNet, watched: IpNet) -> Option<&mut PrefixState> {
        if !self.routes.contains_key(&prefix) {
            if prefix != watched {
                let n = self.more_specifics.entry(watched).or_insert(0);
                if *n >= MAX_MORE_SPECIFICS {
                    self.counters.state_full += 1;
                    return None;
                }
                *n += 1;
            }
            self.routes.insert(prefix, PrefixState::new());
        }
        self.routes.get_mut(&prefix)
    }

    fn announce(&mut self, fe: &FeedElem, prefix: IpNet, watched: IpNet, wi: usize, peer: (u32, IpAddr)) -> Vec<Bgp> {
        let route = route_of(fe);
        let exact = prefix == watched;
        let watch = Arc::clone(&self.watches[wi]);
        let mut full = false;
        let prev = match self.route_state(prefix, watched) {
            Some(state) => state.peers.get(&peer).cloned(),
            None => {
                full = true;
                None
            }
        };
        let prev_route = match &prev {
            Some(PeerState::Announced(r)) => Some(r),
            _ => None,
        };
        if prev_route == Some(&route) {
            self.counters.suppressed += 1;
            return Vec::new();
        }
        let expected = origin_expected(&route.origin, &watch.expected_origins);
        let same_origin = prev_route.is_some_and(|r| r.origin == route.origin);
        let ev = |event| Event { event, fe, prefix, watched, route: Some(&route), watch: &watch };
        let mut out = Vec::new();
        if exact {
            if same_origin && prev_route.is_some_and(|r| r.path != route.path) {
                out.push(ev(BgpEvent::PathChange).build());
            } else if same_origin || expected {
                out.push(ev(BgpEvent::Announce).build());
            } else {
                out.push(ev(BgpEvent::OriginChange).build());
            }
        } else if !same_origin {
            let mut b = ev(BgpEvent::MoreSpecific).build();
            b.origin_expected = Some(expected);
            out.push(b);
        } else {
            self.counters.ignored += 1;
        }
        if !watch.allowed_upstreams.is_empty() {
            if let Some(up) = route.upstream {
                if !watch.allowed_upstreams.contains(&up) && prev_route.is_none_or(|r| r.upstream != route.upstream) {
                    out.push(ev(BgpEvent::UpstreamChange).build());
                }
            }
        }
        if let Some(vrps) = &watch.vrps {
            let origin = match route.origin {
                Origin::As(a) => Some(a),
                Origin::Set(_) => None,
            };
            match vrps.validate(&prefix, origin) {
                Validity::Valid => self.counters.rpki_valid += 1,
                Validity::NotFound => self.counters.rpki_not_found += 1,
                Validity::Invalid(reason) => {
                    self.counters.rpki_invalid += 1;
                    if !same_origin {
                        let mut b = ev(BgpEvent::RpkiInvalid).build();
                        b.rpki_reason = Some(reason);
                        out.push(b);
                    }
                }
            }
        }
        if full {
            return out;
        }
        let t = fe.elem.timestamp;
        let Some(state) = self.routes.get_mut(&prefix) else { return out };
        if !state.peers.contains_key(&peer) && state.peers.len() >= MAX_PEERS_PER_PREFIX {
            self.counters.state_full += 1;
            return out;
        }
        let was_withdrawn = matches!(prev, Some(PeerState::Withdrawn));
        if prev_route.is_none() {
            state.announced += 1;
        }
        state.peers.insert(peer, PeerState::Announced(route.clone()));
        if was_withdrawn && transition(state, t, &watch) {
            out.push(ev(BgpEvent::Flap).build());
        }
        if exact {
            if let Some(e) = visibility(state, &watch) {
                let mut b = ev(e).build();
                b.peers_visible = Some(state.announced);
                out.push(b);
            }
        }
        out
    }

    fn withdraw(&mut self, fe: &FeedElem, prefix: IpNet, watched: IpNet, wi: usize, peer: (u32, IpAddr)) -> Vec<Bgp> {
        let exact = prefix == watched;
        let watch = &self.watches[wi];
        let Some(state) = self.routes.get_mut(&prefix) else {
            self.counters.suppressed += 1;
            return Vec::new();
        };
        if !matches!(state.peers.get(&peer), Some(PeerState::Announced(_))) {
            self.counters.suppressed += 1;
            return Vec::new();
        }
        state.peers.insert(peer, PeerState::Withdrawn);
        state.announced -= 1;
        let ev = |event| Event { event, fe, prefix, watched, route: None, watch };
        let mut out = vec![ev(BgpEvent::Withdraw).build()];
        if transition(state, fe.elem.timestamp, watch) {
            out.push(ev(BgpEvent::Flap).build());
        }
        if exact {
            if let Some(e) = visibility(state, watch) {
                let mut b = ev(e).build();
                b.peers_visible = Some(state.announced);
                out.push(b);
            }
        } else if state.announced == 0 {
            self.routes.remove(&prefix);
            if let Some(n) = self.more_specifics.get_mut(&watched) {
                *n = n.saturating_sub(1);
            }
        }
        out
    }
}

/// Records a transition at `t`; whether it makes a flap (more than the
/// threshold within the window, at most once per window).
fn transition(state: &mut PrefixState, t: f64, watch: &Watch) -> bool {
    let window = watch.flap_window.as_secs_f64();
    state.transitions.push_back(t);
    while state.transitions.front().is_some_and(|&first| first <= t - window) {
        state.transitions.pop_front();
    }
    while state.transitions.len() > watch.flap_threshold as usize + 1 {
        state.transitions.pop_front();
    }
    if state.transitions.len() > watch.flap_threshold as usize && t >= state.quiet_until {
        state.quiet_until = t + window;
        return true;
    }
    false
}

/// The visibility event the current peer count makes, if any.
fn visibility(state: &mut PrefixState, watch: &Watch) -> Option<BgpEvent> {
    let enough = state.announced >= watch.visibility_min_peers;
    match (state.visibility, enough) {
        (Visibility::Unknown, true) => {
            state.visibility = Visibility::Visible;
            None
        }
        (Visibility::Visible, false) => {
            state.visibility = Visibility::Lost;
            Some(BgpEvent::VisibilityLost)
        }
        (Visibility::Lost, true) => {
            state.visibility = Visibility::Visible;
            Some(BgpEvent::VisibilityRestored)
        }
        _ => None,
    }
}

fn origin_expected(origin: &Origin, expected: &[u32]) -> bool {
    match origin {
        Origin::As(a) => expected.contains(a),
        Origin::Set(_) => false,
    }
}

/// The route an announcement carries.
fn route_of(fe: &FeedElem) -> Route {
    let e = &fe.elem;
    let mut path = Vec::new();
    let mut last_is_set = None;
    if let Some(p) = &e.as_path {
        for seg in p.iter_segments() {
            match seg {
                AsPathSegment::AsSequence(v) => {
                    path.extend(v.iter().map(|a| a.to_u32()));
                    last_is_set = Some(None);
                }
                AsPathSegment::AsSet(v) => {
                    let set: Vec<u32> = v.iter().map(|a| a.to_u32()).collect();
                    path.extend(&set);
                    last_is_set = Some(Some(set));
                }
                // Confederation segments are not part of the path (RFC 5065).
                AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => {}
            }
        }
    }
    let ends_in_sequence = matches!(last_is_set, Some(None));
    let origin = match last_is_set {
        Some(Some(mut set)) => {
            set.sort_unstable();
            Origin::Set(set.into())
        }
        Some(None) => Origin::As(*path.last().unwrap_or(&e.peer_asn.to_u32())),
        None => Origin::As(e.peer_asn.to_u32()),
    };
    let upstream = match origin {
        Origin::As(o) if ends_in_sequence => path.iter().rev().find(|&&a| a != o).copied(),
        _ => None,
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    e.next_hop.hash(&mut h);
    if let Some(cs) = &e.communities {
        for c in cs {
            c.to_string().hash(&mut h);
        }
    }
    Route { path: path.into(), origin, upstream, attrs: h.finish() }
}

struct Event<'a> {
    event: BgpEvent,
    fe: &'a FeedElem,
    prefix: IpNet,
    watched: IpNet,
    route: Option<&'a Route>,
    watch: &'a Watch,
}

impl Event<'_> {
    fn build(&self) -> Bgp {
        let e = &self.fe.elem;
        let (origin_asn, as_path, next_hop, communities) = match self.route {
            Some(r) => (
                match r.origin {
                    Origin::As(a) => Some(a),
                    Origin::Set(_) => None,
                },
                r.path.to_vec(),
                e.next_hop,
                e.communities.iter().flatten().map(ToString::to_string).collect(),
            ),
            None => (None, Vec::new(), None, Vec::new()),
        };
        Bgp {
            event: self.event,
            prefix: self.prefix,
            origin_asn,
            expected_origins: self.watch.expected_origins.clone(),
            as_path,
            peer_ip: e.peer_ip,
            peer_asn: e.peer_asn.to_u32(),
            collector: self.fe.collector.clone(),
            next_hop,
            communities,
            source: self.fe.source,
            watched_prefix: Some(self.watched),
            origin_expected: None,
            peers_visible: None,
            rpki_reason: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgpkit_parser::models::{AsPath, Asn, BgpElem, Community, MetaCommunity, NetworkPrefix};
    use netprobe_wire::msg::{BgpSource, RpkiReason};

    const WATCHED: &str = "192.0.2.0/24";

    fn watch() -> Watch {
        Watch {
            prefixes: vec![WATCHED.parse().expect("prefix")],
            expected_origins: vec![64500],
            allowed_upstreams: Vec::new(),
            flap_threshold: 10,
            flap_window: Duration::from_secs(600),
            visibility_min_peers: 3,
            vrps: None,
        }
    }

    /// An update from peer 10.0.0.`peer` (AS 65000 + peer) at `t` seconds.
    fn elem(t: f64, peer: u8, prefix: &str, path: Option<AsPath>) -> FeedElem {
        let mut e = BgpElem {
            timestamp: t,
            elem_type: if path.is_some() { ElemType::ANNOUNCE } else { ElemType::WITHDRAW },
            peer_ip: IpAddr::from([10, 0, 0, peer]),
            peer_asn: Asn::from(65000 + u32::from(peer)),
            prefix: NetworkPrefix::new(prefix.parse().expect("prefix"), None),
            ..Default::default()
        };
        if path.is_some() {
            e.next_hop = Some(e.peer_ip);
        }
        e.as_path = path;
        FeedElem { elem: e, collector: "rrc00".into(), source: BgpSource::Mrt }
    }

    fn ann(t: f64, peer: u8, prefix: &str, path: &[u32]) -> FeedElem {
        elem(t, peer, prefix, Some(AsPath::from_sequence(path)))
    }

    fn wd(t: f64, peer: u8, prefix: &str) -> FeedElem {
        elem(t, peer, prefix, None)
    }

    /// (event, prefix, origin) of each event.
    fn run(m: &mut Monitor, e: FeedElem) -> Vec<(&'static str, String, Option<u32>)> {
        m.process(&e).into_iter().map(|b| (b.event.as_str(), b.prefix.to_string(), b.origin_asn)).collect()
    }

    fn one(event: &'static str, prefix: &str, origin: Option<u32>) -> Vec<(&'static str, String, Option<u32>)> {
        vec![(event, prefix.to_owned(), origin)]
    }

    #[test]
    fn announce_withdraw_and_repeats_suppressed() {
        let mut m = Monitor::new(vec![watch()]);
        assert_eq!(run(&mut m, ann(1.0, 1, WATCHED, &[65001, 3356, 64500])), one("announce", WATCHED, Some(64500)));
        assert_eq!(run(&mut m, ann(2.0, 1, WATCHED, &[65001, 3356, 64500])), vec![]);
        assert_eq!(run(&mut m, wd(3.0, 1, WATCHED)), one("withdraw", WATCHED, None));
        assert_eq!(run(&mut m, wd(4.0, 1, WATCHED)), vec![]);
        assert_eq!(run(&mut m, wd(4.5, 2, WATCHED)), vec![], "a peer that never announced it");
        assert_eq!(run(&mut m, ann(5.0, 1, WATCHED, &[65001, 3356, 64500])), one("announce", WATCHED, Some(64500)));
        assert_eq!(m.counters().suppressed, 3);
        assert_eq!(m.counters().updates, 6);
    }

    #[test]
    fn an_announcement_carries_the_update_fields() {
        let mut m = Monitor::new(vec![watch()]);
        let mut e = ann(1.5, 7, WATCHED, &[65007, 3356, 64500]);
        e.elem.communities = Some(vec![MetaCommunity::Plain(Community::Custom(Asn::from(65007), 100))]);
        let got = m.process(&e);
        assert_eq!(got.len(), 1);
        let b = &got[0];
        assert_eq!(b.as_path, [65007, 3356, 64500]);
        assert_eq!((b.peer_ip, b.peer_asn), (IpAddr::from([10, 0, 0, 7]), 65007));
        assert_eq!((b.collector.as_str(), b.source), ("rrc00", BgpSource::Mrt));
        assert_eq!(b.next_hop, Some(IpAddr::from([10, 0, 0, 7])));
        assert_eq!(b.communities, ["65007:100"]);
        assert_eq!(b.expected_origins, [64500]);
        assert_eq!(b.watched_prefix, Some(WATCHED.parse().expect("prefix")));
        // A changed community is not a repeat: announce again.
        e.elem.communities = None;
        assert_eq!(run(&mut m, e), one("announce", WATCHED, Some(64500)));
    }

    #[test]
    fn origin_change_for_an_unexpected_origin_and_an_as_set() {
        let mut m = Monitor::new(vec![watch()]);
        assert_eq!(run(&mut m, ann(1.0, 1, WATCHED, &[65001, 64500])), one("announce", WATCHED, Some(64500)));
        assert_eq!(run(&mut m, ann(2.0, 1, WATCHED, &[65001, 64666])), one("origin_change", WATCHED, Some(64666)));
        // Same hijacker, other path: a path change of this peer's route.
        assert_eq!(run(&mut m, ann(3.0, 1, WATCHED, &[65001, 174, 64666])), one("path_change", WATCHED, Some(64666)));
        // Back to the owner.
        assert_eq!(run(&mut m, ann(4.0, 1, WATCHED, &[65001, 64500])), one("announce", WATCHED, Some(64500)));
        // AS_SET origin {64500, 64501}: no single origin.
        let set =
            AsPath::from_segments(vec![AsPathSegment::sequence([65002, 3356]), AsPathSegment::set([64501, 64500])]);
        let got = m.process(&elem(5.0, 2, WATCHED, Some(set)));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].event, got[0].origin_asn), (BgpEvent::OriginChange, None));
        assert_eq!(got[0].as_path, [65002, 3356, 64501, 64500]);
    }

    #[test]
    fn more_specific_says_whether_the_origin_is_expected() {
        let mut m = Monitor::new(vec![watch()]);
        let got = m.process(&ann(1.0, 1, "192.0.2.0/25", &[65001, 64500]));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].event, got[0].origin_expected), (BgpEvent::MoreSpecific, Some(true)));
        let got = m.process(&ann(2.0, 1, "192.0.2.128/25", &[65001, 64666]));
        assert_eq!(
            (got[0].event, got[0].origin_expected, got[0].origin_asn),
            (BgpEvent::MoreSpecific, Some(false), Some(64666))
        );
        assert_eq!(got[0].watched_prefix, Some(WATCHED.parse().expect("prefix")));
        // Same origin, other path: no event, counted.
        assert_eq!(run(&mut m, ann(3.0, 1, "192.0.2.0/25", &[65001, 3356, 64500])), vec![]);
        assert_eq!(m.counters().ignored, 1);
        assert_eq!(run(&mut m, wd(4.0, 1, "192.0.2.0/25")), one("withdraw", "192.0.2.0/25", None));
        assert_eq!(m.route_prefixes(), 1, "the withdrawn more-specific is forgotten");
        // Less specific and unrelated prefixes are no business of ours.
        assert_eq!(run(&mut m, ann(5.0, 1, "192.0.0.0/16", &[65001, 64666])), vec![]);
        assert_eq!(run(&mut m, ann(6.0, 1, "198.51.100.0/24", &[65001, 64666])), vec![]);
        assert_eq!(m.counters().unrelated, 2);
    }

    #[test]
    fn path_change_and_upstream_change() {
        let mut w = watch();
        w.allowed_upstreams = vec![3356, 174];
        let mut m = Monitor::new(vec![w]);
        assert_eq!(run(&mut m, ann(1.0, 1, WATCHED, &[65001, 3356, 64500])), one("announce", WATCHED, Some(64500)));
        assert_eq!(
            run(&mut m, ann(2.0, 1, WATCHED, &[65001, 1299, 174, 64500])),
            one("path_change", WATCHED, Some(64500))
        );
        // Upstream 64999 before a prepended origin.
        let got = run(&mut m, ann(3.0, 1, WATCHED, &[65001, 64999, 64500, 64500]));
        assert_eq!(
            got,
            vec![("path_change", WATCHED.into(), Some(64500)), ("upstream_change", WATCHED.into(), Some(64500))]
        );
        // Another path through the same disallowed upstream: no second upstream_change.
        assert_eq!(
            run(&mut m, ann(4.0, 1, WATCHED, &[65001, 2914, 64999, 64500])),
            one("path_change", WATCHED, Some(64500))
        );
        // A first announcement from another peer through it: this peer's change.
        assert_eq!(
            run(&mut m, ann(5.0, 2, WATCHED, &[65002, 64999, 64500])),
            vec![("announce", WATCHED.into(), Some(64500)), ("upstream_change", WATCHED.into(), Some(64500))]
        );
        // The peer directly connected to the origin has no upstream to check.
        assert_eq!(run(&mut m, ann(6.0, 3, WATCHED, &[64500])), one("announce", WATCHED, Some(64500)));
    }

    #[test]
    fn flap_once_per_window() {
        let mut w = watch();
        w.flap_threshold = 3;
        w.flap_window = Duration::from_secs(60);
        w.visibility_min_peers = 1;
        let mut m = Monitor::new(vec![w]);
        let path = [65001, 64500];
        let mut events = Vec::new();
        // t=0 first sight (no transition), then W A W A at 10, 20, 30, 40:
        // the 4th transition is more than 3 within 60 s.
        for (i, t) in
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 55.0, 59.0, 75.0, 95.0, 100.0, 101.0, 102.0].iter().enumerate()
        {
            let e = if i.is_multiple_of(2) { ann(*t, 1, WATCHED, &path) } else { wd(*t, 1, WATCHED) };
            for (ev, _, _) in run(&mut m, e) {
                if ev == "flap" {
                    events.push(*t);
                }
            }
        }
        // Flap at 40 (transitions 10,20,30,40); quiet during [40, 100); at
        // 100 the window (40, 100] holds 50,55,59,75,95,100: flap again, and
        // not at 101 and 102 (quiet until 160).
        assert_eq!(events, [40.0, 100.0]);
    }

    #[test]
    fn visibility_lost_and_restored() {
        let mut m = Monitor::new(vec![watch()]);
        let path = |p: u32| [65000 + p, 64500];
        for p in 1..=2u8 {
            assert_eq!(
                run(&mut m, ann(f64::from(p), p, WATCHED, &path(p.into()))),
                one("announce", WATCHED, Some(64500))
            );
        }
        assert_eq!(run(&mut m, wd(2.5, 2, WATCHED)), one("withdraw", WATCHED, None), "never visible yet: no loss");
        assert_eq!(run(&mut m, ann(2.6, 2, WATCHED, &path(2))), one("announce", WATCHED, Some(64500)));
        assert_eq!(run(&mut m, ann(3.0, 3, WATCHED, &path(3))), one("announce", WATCHED, Some(64500)));
        let got = m.process(&wd(4.0, 3, WATCHED));
        let got: Vec<_> = got.iter().map(|b| (b.event, b.peers_visible)).collect();
        assert_eq!(got, [(BgpEvent::Withdraw, None), (BgpEvent::VisibilityLost, Some(2))]);
        assert_eq!(run(&mut m, wd(5.0, 1, WATCHED)), one("withdraw", WATCHED, None), "already lost");
        assert_eq!(run(&mut m, ann(6.0, 1, WATCHED, &path(1))), one("announce", WATCHED, Some(64500)));
        let got = m.process(&ann(7.0, 3, WATCHED, &path(3)));
        let got: Vec<_> = got.iter().map(|b| (b.event, b.peers_visible)).collect();
        assert_eq!(got, [(BgpEvent::Announce, None), (BgpEvent::VisibilityRestored, Some(3))]);
    }

    #[test]
    fn rpki_invalid_emitted_valid_and_not_found_counted() {
        let mut vrps = Vrps::default();
        vrps.insert(WATCHED.parse().expect("prefix"), 64500, 24);
        let mut w = watch();
        w.prefixes.push("198.51.100.0/24".parse().expect("prefix"));
        w.vrps = Some(Arc::new(vrps));
        let mut m = Monitor::new(vec![w]);
        assert_eq!(run(&mut m, ann(1.0, 1, WATCHED, &[65001, 64500])), one("announce", WATCHED, Some(64500)));
        let got = m.process(&ann(2.0, 2, WATCHED, &[65002, 64666]));
        let got: Vec<_> = got.iter().map(|b| (b.event, b.rpki_reason)).collect();
        assert_eq!(got, [(BgpEvent::OriginChange, None), (BgpEvent::RpkiInvalid, Some(RpkiReason::Origin))]);
        let got = m.process(&ann(3.0, 1, "192.0.2.0/25", &[65001, 64500]));
        let got: Vec<_> = got.iter().map(|b| (b.event, b.origin_expected, b.rpki_reason)).collect();
        assert_eq!(
            got,
            [(BgpEvent::MoreSpecific, Some(true), None), (BgpEvent::RpkiInvalid, None, Some(RpkiReason::MaxLength))]
        );
        assert_eq!(
            run(&mut m, ann(4.0, 1, "198.51.100.0/24", &[65001, 64500])),
            one("announce", "198.51.100.0/24", Some(64500))
        );
        let c = m.counters();
        assert_eq!((c.rpki_valid, c.rpki_invalid, c.rpki_not_found), (1, 2, 1));
    }

    #[test]
    fn more_specifics_beyond_the_bound_are_classified_not_remembered() {
        let mut w = watch();
        w.prefixes = vec!["10.0.0.0/8".parse().expect("prefix")];
        let mut m = Monitor::new(vec![w]);
        let n = MAX_MORE_SPECIFICS + 10;
        let mut events = 0;
        for i in 0..n {
            let p = format!("10.{}.{}.0/24", i / 256, i % 256);
            events += m.process(&ann(1.0, 1, &p, &[65001, 64500])).len();
        }
        assert_eq!(events, n);
        assert_eq!(m.route_prefixes(), MAX_MORE_SPECIFICS);
        assert_eq!(m.counters().state_full, 10);
    }

    #[test]
    fn peers_are_told_apart_by_collector() {
        let mut m = Monitor::new(vec![watch()]);
        let a = ann(1.0, 1, WATCHED, &[65001, 64500]);
        let mut b = a.clone();
        b.collector = "rrc01".into();
        assert_eq!(run(&mut m, a), one("announce", WATCHED, Some(64500)));
        assert_eq!(run(&mut m, b), one("announce", WATCHED, Some(64500)));
    }
}
