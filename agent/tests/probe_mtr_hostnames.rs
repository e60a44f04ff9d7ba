//! MTR `resolve_hostnames = true`: hop names come from reverse DNS (PTR) at
//! a local authoritative server (hickory-server) the test starts, through
//! the agent's cache, never on the run's critical path. The trace runs
//! from the host over two namespaces (host -> r1 -> r2 = target), so the
//! agent reaches the server on 127.0.0.1.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::rdata::{NS, PTR, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;
use netprobe_agent::probe::mtr;

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("valid name")
}

/// An authoritative server for `10.in-addr.arpa.` with one PTR record per
/// `(address, name)`; stops when dropped.
async fn ptr_server(records: &[(Ipv4Addr, &str)]) -> (std::net::SocketAddr, Server<Catalog>) {
    let origin = name("10.in-addr.arpa.");
    let mut zone: InMemoryZoneHandler = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let ns = name("ns1.hops.test.");
    let soa = SOA::new(ns.clone(), ns.clone(), 1, 3600, 600, 86400, 300);
    assert!(zone.upsert_mut(Record::from_rdata(origin.clone(), 300, RData::SOA(soa)), 1));
    assert!(zone.upsert_mut(Record::from_rdata(origin.clone(), 300, RData::NS(NS(ns))), 1));
    for (ip, host) in records {
        let record = Record::from_rdata(Name::from(IpAddr::V4(*ip)), 300, RData::PTR(PTR(name(host))));
        assert!(zone.upsert_mut(record, 1), "PTR for {ip}");
    }
    let (udp, tcp) = common::targets::bind_udp_and_tcp().await;
    let addr = udp.local_addr().expect("local addr");
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 65_535);
    (addr, server)
}

fn target(ip: Ipv4Addr, resolver: std::net::SocketAddr) -> mtr::Target {
    mtr::Target {
        target: ip.to_string(),
        interval: Duration::from_secs(60),
        count: 2,
        max_ttl: 8,
        first_ttl: 1,
        protocol: mtr::Protocol::Icmp,
        port: None,
        round_interval: Duration::from_millis(20),
        timeout: Duration::from_millis(300),
        asn_table: None,
        resolve_hostnames: true,
        hostname_resolver: Some(resolver),
    }
}

fn names(m: &netprobe_wire::msg::Mtr) -> Vec<Option<String>> {
    m.hops.iter().map(|h| h.hostname.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_names_come_from_reverse_dns_in_the_background_and_are_cached() {
    let net = common::netns::TwoHops::new("mth", 233, 234);
    let r1 = net.r1.peer_ip;
    let (resolver, server) = ptr_server(&[(r1, "r1.hops.test."), (net.target, "target.hops.test.")]).await;
    let t = target(net.target, resolver);

    // 1. The first run does not wait for DNS: the names are not known yet.
    let first = mtr::run(&t).await;
    let ips: Vec<Option<IpAddr>> = first.hops.iter().map(|h| h.ip).collect();
    assert_eq!(ips, vec![Some(r1.into()), Some(net.target.into())], "{first:?}");
    assert_eq!(names(&first), vec![None, None], "{first:?}");

    // 2. A later run carries the names the server holds (no final dot).
    let want = vec![Some("r1.hops.test".to_owned()), Some("target.hops.test".to_owned())];
    let start = Instant::now();
    loop {
        let m = mtr::run(&t).await;
        if names(&m) == want {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "names not known after 20 s: {m:?}");
    }

    // 3. They come from the cache: with the server gone they stay.
    drop(server);
    let cached = mtr::run(&t).await;
    assert_eq!(names(&cached), want, "{cached:?}");

    // 4. A resolver that never answers (a bound UDP socket nobody reads)
    // does not slow the run down: the lookups wait up to 2 s in the
    // background, the run returns without the names well before that.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let t = target(net.target, silent.local_addr().expect("addr"));
    let start = Instant::now();
    let m = mtr::run(&t).await;
    let took = start.elapsed();
    assert_eq!(names(&m), vec![None, None], "{m:?}");
    assert!(m.destination_reached, "{m:?}");
    assert!(took < mtr::hostnames::LOOKUP_TIMEOUT, "run took {took:?}: it waited for DNS");
    eprintln!("run with a silent resolver took {took:?}");
}
