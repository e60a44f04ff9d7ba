//! The HTTP probe against real servers started in-process on loopback: hyper
//! HTTP/1.1 and HTTP/2 servers (TLS with a CA and leaf made at test time by
//! rcgen), raw TCP listeners for misbehaving peers, and curl as a reference.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use netprobe_agent::probe::http::{run, Method, Target};
use netprobe_agent::probe::Probe as _;
use netprobe_wire::msg::Http;
use netprobe_wire::ErrorClass;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What a test server answers.
#[derive(Clone, Debug, Default)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Wait before sending the response head (injected server delay).
    delay: Duration,
}

impl Reply {
    fn ok(body: &str) -> Self {
        Reply { status: 200, body: body.as_bytes().to_vec(), ..Reply::default() }
    }

    fn redirect(status: u16, location: &str) -> Self {
        Reply { status, headers: vec![("location", location.to_owned())], ..Reply::default() }
    }
}

type Handler = Arc<dyn Fn(&Request<Incoming>) -> Reply + Send + Sync>;

/// Starts a hyper server on 127.0.0.1 (HTTP/1.1; with TLS, HTTP/2 when ALPN
/// picks `h2`) that answers every request with `handler`.
async fn serve(
    tls: Option<Arc<ServerConfig>>,
    handler: impl Fn(&Request<Incoming>) -> Reply + Send + Sync + 'static,
) -> SocketAddr {
    let handler: Handler = Arc::new(handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            // As production servers do; without it Nagle's algorithm holds the
            // HTTP/2 response behind the client's delayed ACK (40 ms).
            tcp.set_nodelay(true).expect("TCP_NODELAY");
            let handler = Arc::clone(&handler);
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let reply = handler(&req);
                    async move {
                        // Even a zero sleep waits for the next 1 ms timer tick.
                        if !reply.delay.is_zero() {
                            tokio::time::sleep(reply.delay).await;
                        }
                        let mut resp = Response::builder().status(reply.status);
                        for (name, value) in &reply.headers {
                            resp = resp.header(*name, value);
                        }
                        Ok::<_, Infallible>(resp.body(Full::new(Bytes::from(reply.body))).expect("response"))
                    }
                });
                match tls {
                    None => {
                        let _ =
                            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                    }
                    Some(config) => {
                        let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await else { return };
                        if stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()) {
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        } else {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A raw TCP server: accepts, writes `bytes` (if any), then keeps every
/// connection open without reading or answering further.
async fn serve_raw(bytes: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut tcp, _)) = listener.accept().await {
            if !bytes.is_empty() {
                let _ = tcp.write_all(bytes).await;
            }
            held.push(tcp);
        }
    });
    addr
}

/// A test CA and a leaf for `localhost` and 127.0.0.1 signed by it.
struct TestPki {
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
    leaf: CertificateDer<'static>,
    leaf_key: Vec<u8>,
    /// The leaf's notAfter, Unix seconds.
    not_after_s: i64,
}

impl TestPki {
    fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "netprobe test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");

        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("leaf params");
        leaf_params.distinguished_name.push(DnType::CommonName, "localhost");
        // An odd second, so that a rounding or truncation error would show.
        leaf_params.not_after = rcgen::date_time_ymd(2031, 5, 17) + Duration::from_secs(12 * 3600 + 34 * 60 + 56);
        let not_after_s = leaf_params.not_after.unix_timestamp();
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = leaf_params.signed_by(&leaf_key, &Issuer::from_params(&ca_params, &ca_key)).expect("leaf cert");

        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        TestPki { _dir: dir, ca_file, leaf: leaf.der().clone(), leaf_key: leaf_key.serialize_der(), not_after_s }
    }

    /// Server settings offering the given ALPN protocols.
    fn server_config(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.clone()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone()], key)
            .expect("server cert");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

fn target(url: String) -> Target {
    Target::new(url, Duration::from_secs(30))
}

fn class(m: &Http) -> Option<ErrorClass> {
    m.error.as_ref().map(|e| e.class)
}

/// Runs curl with `-s -o /dev/null` plus `args` and returns what its `-w`
/// format printed.
async fn curl(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "--max-time", "10"])
            .args(&args)
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl {args:?} failed: {out:?}");
        String::from_utf8(out.stdout).expect("curl output is UTF-8")
    })
    .await
    .expect("curl task")
}

/// What `curl -w '%{http_code} %{size_download} %{http_version}'` prints
/// for the same exchange.
fn as_curl_prints(m: &Http) -> String {
    format!(
        "{} {} {}",
        m.status_code.expect("status_code"),
        m.response_bytes.expect("response_bytes"),
        m.http_version.as_deref().expect("http_version").trim_start_matches("HTTP/")
    )
}

#[tokio::test]
async fn get_200_reports_status_bytes_version_and_phases() {
    let body = "hello, probe\n".repeat(1000);
    let served = body.clone();
    let addr = serve(None, move |_| Reply::ok(&served)).await;

    let m = run(&target(format!("http://127.0.0.1:{}/", addr.port()))).await;
    assert_eq!(m.error, None);
    assert!(m.success);
    assert_eq!(m.status_code, Some(200));
    assert_eq!(m.response_bytes, Some(body.len() as u64));
    assert_eq!(m.http_version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(m.method, "GET");
    assert_eq!(m.redirects, 0);
    assert_eq!(m.dns_ms, None, "no lookup for an IP literal");
    assert!(m.connect_ms.expect("connect_ms") > 0.0);
    assert!(m.ttfb_ms.expect("ttfb_ms") > 0.0);
    let total = m.total_ms.expect("total_ms");
    assert!(total >= m.connect_ms.unwrap_or_default() + m.ttfb_ms.unwrap_or_default());
    assert_eq!((m.tls_ms, m.tls_version, m.cert_not_after), (None, None, None));

    let m = run(&target(format!("http://localhost:{}/", addr.port()))).await;
    assert_eq!(m.error, None);
    assert!(m.dns_ms.expect("dns_ms for a name") > 0.0);
    assert_eq!(m.status_code, Some(200));
}

#[tokio::test]
async fn status_not_in_expect_status_is_unexpected_response() {
    let addr = serve(None, |_| Reply { status: 404, body: b"not here".to_vec(), ..Reply::default() }).await;
    let m = run(&target(format!("http://127.0.0.1:{}/missing", addr.port()))).await;
    assert!(!m.success);
    assert_eq!(m.status_code, Some(404));
    assert_eq!(class(&m), Some(ErrorClass::UnexpectedResponse));
    assert_eq!(m.response_bytes, Some(8), "the body of an unexpected status is still counted");

    let mut t = target(format!("http://127.0.0.1:{}/missing", addr.port()));
    t.expect_status = vec![200, 404];
    let m = run(&t).await;
    assert!(m.success, "{:?}", m.error);
}

/// /a -301 absolute-> /b -302 relative path-> /c -303 absolute path-> /final?x=1
async fn redirect_chain_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let port = Arc::new(Mutex::new(0u16));
    let port_in_handler = Arc::clone(&port);
    let addr = serve(None, move |req| {
        log.lock().expect("lock").push(req.uri().to_string());
        let port = *port_in_handler.lock().expect("lock");
        match req.uri().path() {
            "/a" => Reply::redirect(301, &format!("http://127.0.0.1:{port}/b")),
            "/b" => Reply::redirect(302, "c"),
            "/c" => Reply::redirect(303, "/final?x=1"),
            "/final" => Reply::ok("arrived"),
            _ => Reply { status: 500, ..Reply::default() },
        }
    })
    .await;
    *port.lock().expect("lock") = addr.port();
    (addr, seen)
}

#[tokio::test]
async fn redirect_chain_of_three_hops_is_followed() {
    let (addr, seen) = redirect_chain_server().await;
    let url = format!("http://127.0.0.1:{}/a", addr.port());
    let m = run(&target(url.clone())).await;
    assert_eq!(m.error, None);
    assert!(m.success);
    assert_eq!(m.redirects, 3);
    assert_eq!(m.status_code, Some(200));
    assert_eq!(m.response_bytes, Some(7));
    assert_eq!(m.url, url, "the configured URL is reported, not the final one");
    assert_eq!(*seen.lock().expect("lock"), ["/a", "/b", "/c", "/final?x=1"]);
}

#[tokio::test]
async fn more_redirects_than_max_redirects_is_protocol_error() {
    let (addr, seen) = redirect_chain_server().await;
    let mut t = target(format!("http://127.0.0.1:{}/a", addr.port()));
    t.max_redirects = 1;
    let m = run(&t).await;
    assert!(!m.success);
    assert_eq!(class(&m), Some(ErrorClass::ProtocolError));
    assert!(m.error.as_ref().is_some_and(|e| e.message.contains("too many redirects")), "{:?}", m.error);
    assert_eq!(m.redirects, 1);
    assert_eq!(m.status_code, Some(302), "the redirect that was not followed");
    assert_eq!(*seen.lock().expect("lock"), ["/a", "/b"]);
}

#[tokio::test]
async fn redirect_with_an_expected_status_is_the_final_response() {
    let (addr, _) = redirect_chain_server().await;
    let mut t = target(format!("http://127.0.0.1:{}/a", addr.port()));
    t.max_redirects = 0;
    t.expect_status = vec![301];
    let m = run(&t).await;
    assert_eq!(m.error, None);
    assert!(m.success);
    assert_eq!((m.redirects, m.status_code), (0, Some(301)));
}

#[tokio::test]
async fn delayed_response_head_adds_the_delay_to_ttfb() {
    const DELAY: Duration = Duration::from_millis(300);
    let addr = serve(None, |req| Reply {
        delay: if req.uri().path() == "/slow" { DELAY } else { Duration::ZERO },
        ..Reply::ok("x")
    })
    .await;
    let mut fast_ttfb_ms = f64::MAX;
    for _ in 0..3 {
        let m = run(&target(format!("http://127.0.0.1:{}/fast", addr.port()))).await;
        assert_eq!(m.error, None);
        fast_ttfb_ms = fast_ttfb_ms.min(m.ttfb_ms.expect("ttfb_ms"));
    }
    let slow = run(&target(format!("http://127.0.0.1:{}/slow", addr.port()))).await;
    assert_eq!(slow.error, None);
    let slow_ttfb_ms = slow.ttfb_ms.expect("ttfb_ms");
    eprintln!("ttfb fast {fast_ttfb_ms:.3} ms, slow {slow_ttfb_ms:.3} ms, connect {:?} ms", slow.connect_ms);
    // A timer never fires early, so the slow TTFB holds the whole delay;
    // the fast one may differ from the slow one's own overhead by noise.
    let delay_ms = DELAY.as_secs_f64() * 1000.0;
    assert!(slow_ttfb_ms >= delay_ms, "slow TTFB {slow_ttfb_ms} ms < the server's delay");
    assert!(slow_ttfb_ms - fast_ttfb_ms >= delay_ms - 10.0, "fast {fast_ttfb_ms} ms, slow {slow_ttfb_ms} ms");
    assert!(slow.connect_ms.expect("connect_ms") < delay_ms, "the delay is not in connect");
    assert!(slow.total_ms.expect("total_ms") >= slow_ttfb_ms);
}

#[tokio::test]
async fn https_with_the_test_ca_over_http2() {
    let pki = TestPki::new();
    let addr = serve(Some(pki.server_config(&[b"h2", b"http/1.1"])), |_| Reply::ok("secure")).await;
    for host in ["127.0.0.1", "localhost"] {
        let mut t = target(format!("https://{host}:{}/", addr.port()));
        t.ca_file = Some(pki.ca_file.clone());
        t.validate().expect("valid target");
        let m = run(&t).await;
        eprintln!("{host}: {}", serde_json::to_string(&m).expect("JSON"));
        assert_eq!(m.error, None, "{host}");
        assert!(m.success);
        assert_eq!(m.status_code, Some(200));
        assert_eq!(m.http_version.as_deref(), Some("HTTP/2"));
        assert_eq!(m.tls_version.as_deref(), Some("TLSv1.3"));
        assert!(m.tls_ms.expect("tls_ms") > 0.0);
        assert_eq!(m.response_bytes, Some(6));
        let not_after = m.cert_not_after.expect("cert_not_after");
        assert_eq!(not_after.unix_seconds(), pki.not_after_s);
        assert_eq!(not_after.to_string(), "2031-05-17T12:34:56.000000000Z");
    }
}

#[tokio::test]
async fn https_server_without_h2_is_http11() {
    let pki = TestPki::new();
    for alpn in [&[b"http/1.1".as_slice()][..], &[]] {
        let addr = serve(Some(pki.server_config(alpn)), |_| Reply::ok("secure")).await;
        let mut t = target(format!("https://127.0.0.1:{}/", addr.port()));
        t.ca_file = Some(pki.ca_file.clone());
        let m = run(&t).await;
        assert_eq!(m.error, None);
        assert_eq!(m.http_version.as_deref(), Some("HTTP/1.1"), "server ALPN {alpn:?}");
        assert_eq!(m.tls_version.as_deref(), Some("TLSv1.3"));
    }
}

#[tokio::test]
async fn https_with_system_roots_rejects_the_test_ca() {
    let pki = TestPki::new();
    let addr = serve(Some(pki.server_config(&[b"h2"])), |_| Reply::ok("secure")).await;
    let m = run(&target(format!("https://localhost:{}/", addr.port()))).await;
    assert!(!m.success);
    assert_eq!(class(&m), Some(ErrorClass::TlsError), "{:?}", m.error);
    assert!(m.connect_ms.is_some(), "TCP connected before TLS failed");
    assert_eq!((m.tls_ms, m.status_code, m.ttfb_ms), (None, None, None));
}

#[tokio::test]
async fn closed_port_is_connection_refused() {
    let (_held, closed) = common::ports::closed_tcp();
    let m = run(&target(format!("http://{closed}/"))).await;
    assert!(!m.success);
    assert_eq!(class(&m), Some(ErrorClass::ConnectionRefused), "{:?}", m.error);
    assert_eq!((m.status_code, m.connect_ms), (None, None));
}

#[tokio::test]
async fn silent_server_times_out_with_the_phases_so_far() {
    let addr = serve_raw(b"").await;
    let mut t = target(format!("http://127.0.0.1:{}/", addr.port()));
    t.timeout = Duration::from_millis(500);
    let start = Instant::now();
    let m = run(&t).await;
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(2), "run took {elapsed:?}");
    assert_eq!(class(&m), Some(ErrorClass::Timeout), "{:?}", m.error);
    assert!(m.total_ms.expect("total_ms") >= 500.0);
    assert!(m.connect_ms.is_some(), "connect completed before the timeout");
    assert_eq!((m.ttfb_ms, m.status_code), (None, None));
}

#[tokio::test]
async fn malformed_response_is_protocol_error() {
    let addr = serve_raw(b"this is not HTTP\r\n\r\n").await;
    let m = run(&target(format!("http://127.0.0.1:{}/", addr.port()))).await;
    assert_eq!(class(&m), Some(ErrorClass::ProtocolError), "{:?}", m.error);
    assert_eq!(m.status_code, None);
}

#[tokio::test]
async fn unresolvable_name_is_dns_failure() {
    // RFC 6761: `.invalid` never resolves.
    let mut t = target("http://netprobe-test.invalid/".to_owned());
    t.timeout = Duration::from_secs(8);
    let m = run(&t).await;
    assert_eq!(class(&m), Some(ErrorClass::DnsFailure), "{:?}", m.error);
    assert_eq!((m.dns_ms, m.connect_ms), (None, None));
}

#[tokio::test]
async fn body_contains_and_body_regex() {
    let addr = serve(None, |_| Reply::ok("<html>status: healthy, build 4711</html>")).await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let check = |contains: Option<&str>, regex: Option<&str>| {
        let mut t = target(url.clone());
        t.body_contains = contains.map(str::to_owned);
        t.body_regex = regex.map(str::to_owned);
        t.validate().expect("valid target");
        t
    };
    for (contains, regex, matches) in [
        (Some("healthy"), None, true),
        (Some("degraded"), None, false),
        (None, Some(r"build \d+"), true),
        (None, Some(r"build [a-z]+"), false),
        (Some("healthy"), Some(r"^<html>"), true),
        (Some("healthy"), Some(r"^status"), false),
    ] {
        let m = run(&check(contains, regex)).await;
        assert_eq!(m.success, matches, "{contains:?} {regex:?}: {:?}", m.error);
        assert_eq!(m.status_code, Some(200));
        if !matches {
            assert_eq!(class(&m), Some(ErrorClass::UnexpectedResponse));
        }
    }
}

#[tokio::test]
async fn head_reads_no_body() {
    let addr = serve(None, |_| Reply::ok("a body that HEAD must not get")).await;
    let mut t = target(format!("http://127.0.0.1:{}/", addr.port()));
    t.method = Method::Head;
    let m = run(&t).await;
    assert_eq!(m.error, None);
    assert!(m.success);
    assert_eq!(m.method, "HEAD");
    assert_eq!(m.status_code, Some(200));
    assert_eq!(m.response_bytes, Some(0));
}

#[tokio::test]
async fn curl_agrees_on_status_bytes_version_and_redirects() {
    const W: &str = "%{http_code} %{size_download} %{http_version}";
    // Larger than the 1 MiB kept for matching: every byte is still counted.
    let body = vec![b'z'; 1_500_000];
    let served = body.clone();
    let addr = serve(None, move |_| Reply { body: served.clone(), ..Reply::ok("") }).await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let m = run(&target(url.clone())).await;
    let c = curl(vec!["-w".into(), W.into(), url]).await;
    eprintln!("plain: probe {:?}, curl {c:?}", as_curl_prints(&m));
    assert_eq!(as_curl_prints(&m), c);
    assert_eq!(m.response_bytes, Some(body.len() as u64));

    let (addr, _) = redirect_chain_server().await;
    let url = format!("http://127.0.0.1:{}/a", addr.port());
    let m = run(&target(url.clone())).await;
    let c = curl(vec!["-L".into(), "-w".into(), format!("{W} %{{num_redirects}}"), url]).await;
    eprintln!("redirects: probe {:?} {}, curl {c:?}", as_curl_prints(&m), m.redirects);
    assert_eq!(format!("{} {}", as_curl_prints(&m), m.redirects), c);

    let pki = TestPki::new();
    let addr = serve(Some(pki.server_config(&[b"h2", b"http/1.1"])), |_| Reply::ok("secure")).await;
    let url = format!("https://localhost:{}/", addr.port());
    let mut t = target(url.clone());
    t.ca_file = Some(pki.ca_file.clone());
    let m = run(&t).await;
    let ca = pki.ca_file.display().to_string();
    let c = curl(vec!["--cacert".into(), ca, "-w".into(), W.into(), url]).await;
    eprintln!("https: probe {:?}, curl {c:?}", as_curl_prints(&m));
    assert_eq!(as_curl_prints(&m), c);
}

#[test]
fn toml_table_takes_the_defaults() {
    #[derive(serde::Deserialize)]
    struct File {
        http: Vec<Target>,
    }
    let file: File = toml::from_str("[[http]]\nurl = \"https://example.com/\"\ninterval = \"30s\"\n").expect("parse");
    let t = &file.http[0];
    assert_eq!(t, &Target::new("https://example.com/", Duration::from_secs(30)));
    assert_eq!(t.timeout, Duration::from_secs(10));
    assert_eq!(t.expect_status, [200]);
    assert_eq!(t.max_redirects, 5);
    assert_eq!(t.method, Method::Get);
    t.validate().expect("valid");
    assert!(toml::from_str::<File>("[[http]]\nurl = \"x\"\ninterval = \"1s\"\nbogus = 1\n").is_err());
}

#[test]
fn validate_names_the_wrong_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").expect("write");
    let pki = TestPki::new();
    let case = |key: &'static str, edit: &dyn Fn(&mut Target)| {
        let mut t = target("https://example.com/".to_owned());
        edit(&mut t);
        (t, key)
    };
    let cases = [
        case("url:", &|t| t.url = "ftp://example.com/".into()),
        case("url:", &|t| t.url = "not a url".into()),
        case("timeout:", &|t| t.timeout = Duration::ZERO),
        case("expect_status:", &|t| t.expect_status = vec![]),
        case("expect_status:", &|t| t.expect_status = vec![200, 999]),
        case("body_regex:", &|t| t.body_regex = Some("(unclosed".into())),
        case("body_contains:", &|t| {
            t.method = Method::Head;
            t.body_contains = Some("x".into());
        }),
        case("ca_file:", &|t| t.ca_file = Some(dir.path().join("missing.pem"))),
        case("ca_file:", &|t| t.ca_file = Some(empty.clone())),
    ];
    for (t, key) in cases {
        let e = t.validate().expect_err(key);
        assert!(e.starts_with(key), "{e:?} should start with {key:?}");
    }
    let (t, _) = case("", &|t| {
        t.ca_file = Some(pki.ca_file.clone());
        t.body_regex = Some("ok".into());
    });
    t.validate().expect("valid");
}

/// What the `Authorization` and `X-Api-Key` headers of each request were.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

fn recording(seen: &Seen, reply: Reply) -> impl Fn(&Request<Incoming>) -> Reply + Send + Sync + 'static {
    let seen = Arc::clone(seen);
    move |req| {
        let header = |name: &str| req.headers().get(name).map(|v| v.to_str().expect("ASCII").to_owned());
        seen.lock().expect("lock").push((header("authorization"), header("x-api-key")));
        reply.clone()
    }
}

/// Regression (hardening issue, fault 5): operators of authenticated
/// endpoints get `basic_auth` and `headers` (a value may come from a file),
/// sent to the configured origin only and never published.
#[tokio::test]
async fn basic_auth_and_file_headers_reach_the_origin_and_nothing_else() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let (password, key) = (dir.path().join("site.password"), dir.path().join("api.key"));
    std::fs::write(&password, "pa:ss word\n").expect("password");
    std::fs::write(&key, "k-123\n").expect("key");
    for f in [&password, &key] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    // Oracle for RFC 7617: coreutils base64 of "user:password".
    let encoded = std::process::Command::new("base64").arg("-w0").arg("-").stdin_bytes(b"probe:pa:ss word");

    let elsewhere_seen = Seen::default();
    let elsewhere = serve(None, recording(&elsewhere_seen, Reply::ok("elsewhere"))).await;
    let origin_seen = Seen::default();
    let origin =
        serve(None, recording(&origin_seen, Reply::redirect(302, &format!("http://{elsewhere}/landing")))).await;

    let mut t = target(format!("http://{origin}/start"));
    t.basic_auth = Some(netprobe_agent::probe::http::BasicAuth { username: "probe".into(), password_file: password });
    t.headers.insert("X-Api-Key".into(), netprobe_agent::probe::http::Secret::File { file: key });
    t.validate().expect("valid");
    let m = run(&t).await;
    assert_eq!((m.error.clone(), m.status_code, m.redirects), (None, Some(200), 1), "{m:?}");
    assert_eq!(
        origin_seen.lock().expect("lock").as_slice(),
        &[(Some(format!("Basic {encoded}")), Some("k-123".to_owned()))],
        "the origin gets both"
    );
    assert_eq!(elsewhere_seen.lock().expect("lock").as_slice(), &[(None, None)], "another origin gets neither");

    let published = serde_json::to_string(&m).expect("json");
    let debug = format!("{t:?}");
    for secret in ["pa:ss word", "k-123", encoded.as_str()] {
        assert!(!published.contains(secret) && !debug.contains(secret), "{secret} leaked: {published} / {debug}");
    }
}

/// `Command::output` with `input` on stdin, trimmed stdout.
trait StdinBytes {
    fn stdin_bytes(&mut self, input: &[u8]) -> String;
}

impl StdinBytes for std::process::Command {
    fn stdin_bytes(&mut self, input: &[u8]) -> String {
        use std::io::Write as _;
        let mut child =
            self.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().expect("spawn");
        child.stdin.take().expect("stdin").write_all(input).expect("write");
        let out = child.wait_with_output().expect("output");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
    }
}
