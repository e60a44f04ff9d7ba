//! The DNS probe against a real authoritative server (hickory-server, UDP and
//! TCP on 127.0.0.1, an in-memory zone `test.example.`), compared with what
//! `dig` (/usr/bin/dig) reports from the same server; plus silent, closed and
//! misbehaving UDP peers the test owns.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{AAAA, CNAME, MX, NS, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;
use netprobe_agent::probe::dns::{run, Target, Transport, EDNS_UDP_PAYLOAD};
use netprobe_agent::probe::Probe as _;
use netprobe_wire::msg::Dns;
use netprobe_wire::ErrorClass;
use serde::Deserialize;
use tokio::net::UdpSocket;

const ZONE: &str = "test.example.";
/// TXT records of `big.test.example.`: 6 records of 2 strings of 200 bytes,
/// about 2.5 KB, more than the probe's EDNS payload (and dig's).
const BIG_RECORDS: usize = 6;

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("valid name")
}

/// The zone: SOA, NS, www A/AAAA, MX, TXT, a CNAME, TXT with bytes that need
/// escaping, and a TXT set too big for one UDP response.
fn zone() -> InMemoryZoneHandler {
    let origin = name(ZONE);
    let mut zone: InMemoryZoneHandler = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = SOA::new(name("ns1.test.example."), name("admin.test.example."), 1, 3600, 600, 86400, 300);
    let mut records = vec![
        Record::from_rdata(origin.clone(), 300, RData::SOA(soa)),
        Record::from_rdata(origin.clone(), 300, RData::NS(NS(name("ns1.test.example.")))),
        Record::from_rdata(name("ns1.test.example."), 300, RData::A(Ipv4Addr::new(192, 0, 2, 53).into())),
        Record::from_rdata(name("www.test.example."), 300, RData::A(Ipv4Addr::new(192, 0, 2, 1).into())),
        Record::from_rdata(name("www.test.example."), 300, RData::A(Ipv4Addr::new(192, 0, 2, 2).into())),
        Record::from_rdata(
            name("www.test.example."),
            300,
            RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
        ),
        Record::from_rdata(origin.clone(), 300, RData::MX(MX::new(10, name("mail.test.example.")))),
        Record::from_rdata(origin.clone(), 300, RData::MX(MX::new(20, name("mail2.test.example.")))),
        Record::from_rdata(origin.clone(), 300, RData::TXT(TXT::new(vec!["v=spf1 -all".to_owned()]))),
        Record::from_rdata(name("alias.test.example."), 300, RData::CNAME(CNAME(name("www.test.example.")))),
        Record::from_rdata(
            name("escapes.test.example."),
            300,
            RData::TXT(TXT::from_bytes(vec![b"say \"hi\" \\ ; done", b"tab\there \xc3\xa9"])),
        ),
    ];
    for i in 0..BIG_RECORDS {
        let first = format!("{i}a{}", "x".repeat(198));
        let second = format!("{i}b{}", "y".repeat(198));
        records.push(Record::from_rdata(name("big.test.example."), 300, RData::TXT(TXT::new(vec![first, second]))));
    }
    for record in records {
        assert!(zone.upsert_mut(record, 1), "record inserted");
    }
    zone
}

/// The authoritative server on 127.0.0.1, UDP and TCP on the same free port;
/// it stops when dropped (the server's tasks live in its JoinSet).
struct AuthServer {
    addr: SocketAddr,
    _server: Server<Catalog>,
}

async fn start_server() -> AuthServer {
    let (udp, tcp) = common::targets::bind_udp_and_tcp().await;
    let addr = udp.local_addr().expect("local addr");
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&name(ZONE)), vec![std::sync::Arc::new(zone())]);
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 65_535);
    AuthServer { addr, _server: server }
}

fn target(resolver: SocketAddr, query_name: &str, record_type: &str, transport: Transport) -> Target {
    Target {
        resolver,
        query_name: query_name.to_owned(),
        record_type: record_type.to_owned(),
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(2),
        transport,
    }
}

/// `dig @addr name type ARGS`, stdout. Runs on a blocking thread so the
/// in-process server keeps answering.
async fn dig(addr: SocketAddr, query_name: &str, record_type: &str, args: &[&str]) -> String {
    let mut command = Command::new("/usr/bin/dig");
    command
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), query_name, record_type, "+time=2", "+tries=1"])
        .args(args);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("dig thread")
        .expect("dig runs (dnsutils installed)");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// What `dig +short` prints: one RDATA per line, comment lines dropped.
async fn dig_short(addr: SocketAddr, query_name: &str, record_type: &str, args: &[&str]) -> Vec<String> {
    let args: Vec<&str> = args.iter().copied().chain(["+short"]).collect();
    dig(addr, query_name, record_type, &args)
        .await
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with(";;"))
        .map(str::to_owned)
        .collect()
}

/// The `status:` of dig's header section, e.g. `NOERROR`.
async fn dig_status(addr: SocketAddr, query_name: &str, record_type: &str) -> String {
    let out = dig(addr, query_name, record_type, &[]).await;
    let status = regex::Regex::new(r"status: ([A-Z0-9]+)").expect("regex");
    status.captures(&out).unwrap_or_else(|| panic!("no status in dig output:\n{out}"))[1].to_owned()
}

/// Asserts an answered measurement: rcode, a positive finite latency, the
/// count matching the answers, and the error.
fn assert_answered(dns: &Dns, rcode: &str) {
    assert_eq!(dns.rcode.as_deref(), Some(rcode), "{dns:?}");
    let latency_ms = dns.latency_ms.expect("latency for an answered query");
    assert!(latency_ms > 0.0 && latency_ms.is_finite() && latency_ms < 2000.0, "latency_ms {latency_ms}");
    assert_eq!(dns.answer_count as usize, dns.answers.len());
}

#[tokio::test]
async fn noerror_answers_equal_digs_for_a_aaaa_mx_txt_cname() {
    let server = start_server().await;
    let cases = [
        ("www.test.example", "A", vec!["192.0.2.1", "192.0.2.2"]),
        ("www.test.example", "AAAA", vec!["2001:db8::1"]),
        ("test.example", "MX", vec!["10 mail.test.example.", "20 mail2.test.example."]),
        ("test.example", "TXT", vec![r#""v=spf1 -all""#]),
        ("alias.test.example", "CNAME", vec!["www.test.example."]),
        ("escapes.test.example", "TXT", vec![r#""say \"hi\" \\ ; done" "tab\009here \195\169""#]),
    ];
    for (query_name, record_type, expected) in cases {
        for transport in [Transport::Udp, Transport::Tcp] {
            let dns = run(&target(server.addr, query_name, record_type, transport)).await;
            assert_answered(&dns, "NOERROR");
            assert_eq!(dns.error, None, "{query_name} {record_type} {transport:?}");
            assert_eq!(dns.answers, expected, "{query_name} {record_type} {transport:?}");
            assert_eq!(dns.resolver, server.addr.to_string());
            assert_eq!((dns.query_name.as_str(), dns.record_type.as_str()), (query_name, record_type));
        }
        assert_eq!(
            dig_short(server.addr, query_name, record_type, &[]).await,
            expected,
            "dig {query_name} {record_type}"
        );
        assert_eq!(dig_status(server.addr, query_name, record_type).await, "NOERROR");
    }
}

#[tokio::test]
async fn a_query_for_a_cname_returns_the_chain_like_dig() {
    let server = start_server().await;
    let dns = run(&target(server.addr, "alias.test.example", "A", Transport::Udp)).await;
    assert_answered(&dns, "NOERROR");
    assert_eq!(dns.answers, dig_short(server.addr, "alias.test.example", "A", &[]).await);
    assert_eq!(dns.answers[0], "www.test.example.", "{:?}", dns.answers);
}

#[tokio::test]
async fn nxdomain_is_a_successful_measurement_and_dig_agrees() {
    let server = start_server().await;
    for transport in [Transport::Udp, Transport::Tcp] {
        let dns = run(&target(server.addr, "missing.test.example", "A", transport)).await;
        assert_answered(&dns, "NXDOMAIN");
        assert_eq!(dns.error, None);
        assert!(dns.answers.is_empty(), "{:?}", dns.answers);
    }
    assert_eq!(dig_status(server.addr, "missing.test.example", "A").await, "NXDOMAIN");
    assert!(dig_short(server.addr, "missing.test.example", "A", &[]).await.is_empty());
}

#[tokio::test]
async fn nodata_is_noerror_without_answers() {
    let server = start_server().await;
    let dns = run(&target(server.addr, "www.test.example", "MX", Transport::Udp)).await;
    assert_answered(&dns, "NOERROR");
    assert_eq!((dns.error, dns.answer_count), (None, 0));
    assert_eq!(dig_status(server.addr, "www.test.example", "MX").await, "NOERROR");
}

#[tokio::test]
async fn refused_is_reported_with_its_rcode_as_unexpected_response() {
    let server = start_server().await;
    // Outside every zone of the server: an authoritative-only server refuses.
    let dns = run(&target(server.addr, "example.org", "A", Transport::Udp)).await;
    assert_eq!(dig_status(server.addr, "example.org", "A").await, "REFUSED");
    assert_answered(&dns, "REFUSED");
    let error = dns.error.expect("error for REFUSED");
    assert_eq!((error.class, error.message.as_str()), (ErrorClass::UnexpectedResponse, "rcode REFUSED"));
}

#[tokio::test]
async fn truncated_udp_response_falls_back_to_tcp_and_returns_every_answer() {
    let server = start_server().await;
    // Precondition: over UDP with the probe's EDNS payload the set really is truncated.
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut query = Message::query();
    query.add_query(Query::query(name("big.test.example."), RecordType::TXT));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_UDP_PAYLOAD);
    query.set_edns(edns);
    socket.send_to(&query.to_vec().expect("encode"), server.addr).await.expect("send");
    let mut buf = vec![0; 65_535];
    let len = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .expect("server answers")
        .expect("recv");
    let udp = Message::from_vec(&buf[..len]).expect("decode");
    assert!(udp.metadata.truncation, "UDP response of {len} bytes is not truncated");
    assert!(udp.answers.len() < BIG_RECORDS);

    let expected = dig_short(server.addr, "big.test.example", "TXT", &[]).await;
    assert_eq!(expected.len(), BIG_RECORDS, "dig: {expected:?}");
    assert_eq!(dig_short(server.addr, "big.test.example", "TXT", &["+tcp"]).await, expected);
    for transport in [Transport::Udp, Transport::Tcp] {
        let dns = run(&target(server.addr, "big.test.example", "TXT", transport)).await;
        assert_answered(&dns, "NOERROR");
        assert_eq!(dns.error, None, "{transport:?}");
        assert_eq!(dns.answer_count as usize, BIG_RECORDS, "{transport:?}");
        assert_eq!(dns.answers, expected, "{transport:?}");
    }
}

#[tokio::test]
async fn silent_resolver_is_a_timeout_within_the_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut t = target(silent.local_addr().expect("addr"), "www.test.example", "A", Transport::Udp);
    t.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let dns = run(&t).await;
    let elapsed = started.elapsed();
    let error = dns.error.expect("error");
    assert_eq!(error.class, ErrorClass::Timeout, "{error}");
    assert_eq!((dns.rcode, dns.latency_ms, dns.answers.len(), dns.answer_count), (None, None, 0, 0));
    assert!(elapsed >= t.timeout && elapsed < t.timeout + Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test]
async fn closed_udp_port_is_connection_refused() {
    // Linux answers a datagram to a closed loopback port with ICMP port
    // unreachable, which a connected UDP socket reports as ECONNREFUSED.
    let (_held, port) = common::ports::closed_udp();
    let started = Instant::now();
    let dns = run(&target(port, "www.test.example", "A", Transport::Udp)).await;
    let error = dns.error.expect("error");
    assert_eq!(error.class, ErrorClass::ConnectionRefused, "{error}");
    assert!(started.elapsed() < Duration::from_secs(1), "refusal took {:?}", started.elapsed());
    assert_eq!((dns.rcode, dns.latency_ms), (None, None));
}

#[tokio::test]
async fn closed_tcp_port_is_connection_refused() {
    let (_held, port) = common::ports::closed_tcp();
    let dns = run(&target(port, "www.test.example", "A", Transport::Tcp)).await;
    let error = dns.error.expect("error");
    assert_eq!(error.class, ErrorClass::ConnectionRefused, "{error}");
    assert_eq!((dns.rcode, dns.latency_ms), (None, None));
}

/// What a rogue peer sends back for one query.
type Reply = fn(&Message) -> Vec<Message>;

/// A UDP peer that answers each query with the datagrams `reply` makes.
async fn rogue_server(reply: Reply) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut buf = vec![0; 65_535];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let query = Message::from_vec(&buf[..len]).expect("query decodes");
            for response in reply(&query) {
                socket.send_to(&response.to_vec().expect("encode"), from).await.expect("send");
            }
        }
    });
    (addr, task)
}

/// A correct answer to `query`: its ID and question, one A record.
fn answer(query: &Message) -> Message {
    let mut response = Message::response(query.metadata.id, OpCode::Query);
    response.add_queries(query.queries.clone());
    let asked = query.queries[0].name().clone();
    response.add_answer(Record::from_rdata(asked, 60, RData::A(Ipv4Addr::new(192, 0, 2, 7).into())));
    response
}

#[tokio::test]
async fn mismatching_responses_are_ignored_then_reported_as_protocol_error() {
    let cases: [(&str, Reply); 3] = [
        ("ID", |q| {
            let mut r = answer(q);
            r.metadata.id = q.metadata.id.wrapping_add(1);
            vec![r]
        }),
        ("question", |q| {
            let mut r = answer(q);
            r.queries = vec![Query::query(Name::from_ascii("other.example.").expect("name"), RecordType::A)];
            vec![r]
        }),
        ("QR", |q| {
            let mut r = answer(q);
            r.metadata.message_type = MessageType::Query;
            vec![r]
        }),
    ];
    for (what, reply) in cases {
        let (addr, task) = rogue_server(reply).await;
        let mut t = target(addr, "www.test.example", "A", Transport::Udp);
        t.timeout = Duration::from_millis(300);
        let dns = run(&t).await;
        let error = dns.error.expect("error");
        assert_eq!(error.class, ErrorClass::ProtocolError, "{what}: {error}");
        assert_eq!((dns.rcode, dns.latency_ms), (None, None), "{what}");
        task.abort();
    }
}

#[tokio::test]
async fn a_stray_datagram_before_the_answer_is_skipped() {
    let (addr, task) = rogue_server(|q| {
        let mut stray = answer(q);
        stray.metadata.id = q.metadata.id.wrapping_add(1);
        vec![stray, answer(q)]
    })
    .await;
    let dns = run(&target(addr, "www.test.example", "A", Transport::Udp)).await;
    assert_answered(&dns, "NOERROR");
    assert_eq!((dns.error, dns.answers), (None, vec!["192.0.2.7".to_owned()]));
    task.abort();
}

#[derive(Debug, Deserialize)]
struct ConfigFile {
    dns: Vec<Target>,
}

#[test]
fn dns_table_parses_with_defaults() {
    let file: ConfigFile = toml::from_str(
        r#"
        [[dns]]
        resolver = "192.0.2.53:53"
        query_name = "example.com"
        record_type = "A"
        interval = "30s"

        [[dns]]
        resolver = "[2001:db8::53]:5353"
        query_name = "example.com"
        record_type = "mx"
        interval = "1m"
        timeout = "500ms"
        transport = "tcp"
        "#,
    )
    .expect("parses");
    let [first, second] = &file.dns[..] else { panic!("two tables: {file:?}") };
    assert_eq!(first.resolver, "192.0.2.53:53".parse::<SocketAddr>().expect("addr"));
    assert_eq!((first.interval, first.timeout), (Duration::from_secs(30), Duration::from_secs(2)));
    assert_eq!(first.transport, Transport::Udp);
    assert_eq!((second.timeout, second.transport), (Duration::from_millis(500), Transport::Tcp));
    assert_eq!(first.validate(), Ok(()));
    assert_eq!(second.validate(), Ok(()));

    let unknown_key = r#"
        [[dns]]
        resolver = "192.0.2.53:53"
        query_name = "example.com"
        record_type = "A"
        interval = "30s"
        retries = 3
    "#;
    let error = toml::from_str::<ConfigFile>(unknown_key).expect_err("unknown key").to_string();
    assert!(error.contains("retries"), "{error}");
}

#[test]
fn validate_names_the_wrong_key() {
    let base = target("192.0.2.53:53".parse().expect("addr"), "example.com", "A", Transport::Udp);
    let cases = [
        (Target { record_type: "AX".to_owned(), ..base.clone() }, "record_type"),
        (Target { record_type: "AXFR".to_owned(), ..base.clone() }, "record_type"),
        (Target { query_name: "bad..name".to_owned(), ..base.clone() }, "query_name"),
        (Target { timeout: Duration::ZERO, ..base.clone() }, "timeout"),
        (Target { resolver: "192.0.2.53:0".parse().expect("addr"), ..base.clone() }, "resolver"),
    ];
    for (bad, key) in cases {
        let error = bad.validate().expect_err(key);
        assert!(error.starts_with(&format!("{key}:")), "{key}: {error}");
    }
}

#[tokio::test]
async fn an_unknown_record_type_is_a_measurement_error_not_a_panic() {
    let mut t = target("127.0.0.1:9".parse().expect("addr"), "example.com", "NOPE", Transport::Udp);
    t.timeout = Duration::from_millis(100);
    let dns = run(&t).await;
    let error = dns.error.expect("error");
    assert!(error.message.contains("record_type"), "{error}");
    assert_eq!(dns.rcode, None);
}
