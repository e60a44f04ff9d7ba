//! Local probe targets: an authoritative DNS server (hickory-server) for
//! `demo.netprobe.test.` and an HTTP/1.1 server, both on 127.0.0.1 with
//! free ports. Used by the end-to-end tests and `examples/local_targets.rs`
//! (the demo).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::{AAAA, MX, NS, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// The zone served by [`start_dns`].
pub const ZONE: &str = "demo.netprobe.test.";

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("valid name")
}

/// An authoritative server for [`ZONE`] (SOA, NS, `www` A x2 and AAAA, MX,
/// TXT) on UDP and TCP of one free 127.0.0.1 port; it stops when dropped.
pub struct DnsServer {
    pub addr: SocketAddr,
    _server: Server<Catalog>,
}

pub async fn start_dns() -> DnsServer {
    let origin = name(ZONE);
    let mut zone: InMemoryZoneHandler = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let ns = name(&format!("ns1.{ZONE}"));
    let www = name(&format!("www.{ZONE}"));
    let records = [
        Record::from_rdata(origin.clone(), 300, RData::SOA(SOA::new(ns.clone(), ns.clone(), 1, 3600, 600, 86400, 300))),
        Record::from_rdata(origin.clone(), 300, RData::NS(NS(ns))),
        Record::from_rdata(www.clone(), 300, RData::A(Ipv4Addr::new(192, 0, 2, 10).into())),
        Record::from_rdata(www.clone(), 300, RData::A(Ipv4Addr::new(192, 0, 2, 11).into())),
        Record::from_rdata(www, 300, RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10)))),
        Record::from_rdata(origin.clone(), 300, RData::MX(MX::new(10, name(&format!("mail.{ZONE}"))))),
        Record::from_rdata(origin.clone(), 300, RData::TXT(TXT::new(vec!["netprobe demo".to_owned()]))),
    ];
    for record in records {
        assert!(zone.upsert_mut(record, 1), "record inserted");
    }
    let (udp, tcp) = bind_udp_and_tcp().await;
    let addr = udp.local_addr().expect("local addr");
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 65_535);
    DnsServer { addr, _server: server }
}

/// A UDP socket and a TCP listener on the same free 127.0.0.1 port (a DNS
/// server's pair).
pub async fn bind_udp_and_tcp() -> (UdpSocket, TcpListener) {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let port = udp.local_addr().expect("local addr").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            return (udp, tcp);
        }
    }
}

/// An HTTP/1.1 server: `/` answers 200 with a short HTML body, `/slow`
/// the same after 200 ms, anything else 404. Runs until the runtime ends.
pub async fn start_http() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let path = String::from_utf8_lossy(&head).split_whitespace().nth(1).unwrap_or("/").to_owned();
                if path == "/slow" {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let (status, body) = match path.as_str() {
                    "/" | "/slow" => ("200 OK", "<html><body>netprobe demo target</body></html>\n"),
                    _ => ("404 Not Found", "not found\n"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}
