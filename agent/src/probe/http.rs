//! HTTP probe: one GET or HEAD, redirects followed, with the phase timings
//! `curl -w` reports (name lookup, TCP connect, TLS handshake, time to first
//! byte, total) given as durations of each phase, plus status, body size and
//! checks, HTTP and TLS versions and the leaf certificate's expiry.
//!
//! Built on hyper's connection API rather than a client library so that each
//! phase can be timed on its own: `tokio::net::lookup_host`, `TcpStream::connect`,
//! a tokio-rustls handshake offering ALPN `h2` and `http/1.1`, then one request
//! over hyper's HTTP/1.1 or HTTP/2 connection depending on what ALPN chose.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, HOST, LOCATION, USER_AGENT};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use netprobe_wire::msg::Http;
use netprobe_wire::{ErrorClass, ProbeError, Timestamp};
use regex::Regex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use url::{Host, Position, Url};

/// Default bound of one whole request (all phases and redirects).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of redirects followed.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;
/// Bytes of the body kept for `body_contains` / `body_regex` (1 MiB); the
/// rest is read and counted but not matched.
pub const BODY_MATCH_LIMIT_BYTES: usize = 1 << 20;
/// `User-Agent` of every request: `netprobe-agent/VERSION`.
pub const USER_AGENT_VALUE: &str = concat!("netprobe-agent/", env!("CARGO_PKG_VERSION"));

/// Request method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Method {
    /// `GET`: the body is read (and counted, and matched).
    #[default]
    #[serde(rename = "GET")]
    Get,
    /// `HEAD`: no body is read; `response_bytes` is 0.
    #[serde(rename = "HEAD")]
    Head,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        })
    }
}

/// An `[[http]]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `http://` or `https://` URL. Userinfo and fragment are not sent.
    pub url: String,
    /// `GET` (default) or `HEAD`.
    #[serde(default)]
    pub method: Method,
    /// How often a request is made.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Bound of the whole exchange: every phase of every hop and the body.
    /// Default 10 s; reaching it is error class `timeout`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Statuses (100-599) that count as success. Default `[200]`.
    #[serde(default = "default_expect_status")]
    pub expect_status: Vec<u16>,
    /// Redirects (301, 302, 303, 307, 308 with `Location`) followed at most.
    /// Default 5. A further redirect is error `protocol_error` "too many
    /// redirects" unless its status is in `expect_status`, in which case it is
    /// the final response: `max_redirects = 0, expect_status = [301]` checks
    /// that a URL redirects.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// The body must contain this substring (GET only; matched against the
    /// first [`BODY_MATCH_LIMIT_BYTES`], invalid UTF-8 replaced by U+FFFD).
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The body must match this regular expression (GET only, `regex` crate
    /// syntax, same bytes as `body_contains`).
    #[serde(default)]
    pub body_regex: Option<String>,
    /// PEM file of CA certificates trusted instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The compiled regex and TLS settings, built once on first use.
    #[serde(skip)]
    compiled: CompiledCache,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_expect_status() -> Vec<u16> {
    vec![200]
}

fn default_max_redirects() -> u32 {
    DEFAULT_MAX_REDIRECTS
}

impl Target {
    /// A target with every optional key at its default (GET, 10 s timeout,
    /// expect 200, 5 redirects, no body check, system roots).
    pub fn new(url: impl Into<String>, interval: Duration) -> Self {
        Target {
            url: url.into(),
            method: Method::Get,
            interval,
            timeout: DEFAULT_TIMEOUT,
            expect_status: default_expect_status(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
            body_contains: None,
            body_regex: None,
            ca_file: None,
            compiled: CompiledCache::default(),
        }
    }

    /// Checks what serde cannot: `url` parses with an http/https scheme and a
    /// host, `timeout` is positive, `expect_status` holds HTTP statuses, body
    /// checks are only set with GET, `body_regex` compiles, `ca_file` is
    /// readable and holds at least one PEM certificate.
    ///
    /// # Errors
    /// A message that starts with the key that is wrong, e.g. `ca_file: ...`.
    pub fn validate(&self) -> Result<(), String> {
        let url = Url::parse(&self.url).map_err(|e| format!("url: {:?} is not a URL: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url: scheme must be http or https, not {:?}", url.scheme()));
        }
        if url.host().is_none() {
            return Err(format!("url: {:?} has no host", self.url));
        }
        if self.timeout.is_zero() {
            return Err("timeout: must be greater than 0".to_owned());
        }
        if self.expect_status.is_empty() {
            return Err("expect_status: must list at least one status".to_owned());
        }
        if let Some(s) = self.expect_status.iter().find(|s| !(100..=599).contains(*s)) {
            return Err(format!("expect_status: {s} is not an HTTP status (100-599)"));
        }
        if self.method == Method::Head {
            for (key, set) in
                [("body_contains", self.body_contains.is_some()), ("body_regex", self.body_regex.is_some())]
            {
                if set {
                    return Err(format!("{key}: needs method GET (a HEAD response has no body)"));
                }
            }
        }
        self.compiled().map(|_| ())
    }

    /// The compiled regex and TLS config, cached while the keys they come
    /// from are unchanged (fields are public, so a clone may be edited).
    fn compiled(&self) -> Result<Arc<Compiled>, String> {
        if let Some(c) = self.compiled.0.get() {
            if c.body_regex == self.body_regex && c.ca_file == self.ca_file {
                return Ok(Arc::clone(c));
            }
        }
        let c = Arc::new(Compiled::new(self.body_regex.as_deref(), self.ca_file.as_deref())?);
        // Lost race or stale entry: the fresh value is used either way.
        let _ = self.compiled.0.set(Arc::clone(&c));
        Ok(c)
    }
}

/// What a target's keys compile to, with the keys it was built from.
#[derive(Debug)]
struct Compiled {
    body_regex: Option<String>,
    ca_file: Option<PathBuf>,
    regex: Option<Regex>,
    /// TLS settings trusting `ca_file`; `None`: the system roots.
    tls: Option<Arc<ClientConfig>>,
}

impl Compiled {
    fn new(body_regex: Option<&str>, ca_file: Option<&Path>) -> Result<Self, String> {
        let regex = body_regex.map(Regex::new).transpose().map_err(|e| format!("body_regex: {e}"))?;
        let tls = ca_file
            .map(|path| {
                let roots = read_ca_file(path).map_err(|e| format!("ca_file: {}: {e}", path.display()))?;
                client_config(roots).map_err(|e| format!("ca_file: {}: {e}", path.display()))
            })
            .transpose()?;
        Ok(Compiled { body_regex: body_regex.map(str::to_owned), ca_file: ca_file.map(Path::to_path_buf), regex, tls })
    }
}

/// Cache of [`Compiled`]; derived from the other fields, so it never makes
/// two targets unequal.
#[derive(Clone, Debug, Default)]
struct CompiledCache(OnceLock<Arc<Compiled>>);

impl PartialEq for CompiledCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Reads a PEM file of CA certificates into a root store.
fn read_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("bad PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("bad certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(roots)
}

/// TLS 1.2/1.3 client settings (ring) with ALPN `h2`, `http/1.1`.
fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Client settings trusting the system roots (rustls-native-certs), loaded
/// once per process.
fn system_client_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!(%error, "cannot load a system CA certificate");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
            tracing::debug!(added, ignored, "system CA certificates loaded");
            client_config(roots).map_err(|e| format!("TLS settings: {e}"))
        })
        .clone()
}

/// Makes one request (following redirects) and reports the timings.
///
/// Never fails: a failure is a measurement with `error` set (classes:
/// `dns_failure`, `connection_refused`, `unreachable`, `permission_denied`,
/// `tls_error`, `timeout`, `protocol_error` for malformed HTTP or too many
/// redirects, `unexpected_response` for a status not in `expect_status` or a
/// body check that failed, with `status_code` set).
///
/// Each hop uses a new connection. `dns_ms`, `connect_ms`, `tls_ms`,
/// `ttfb_ms`, `http_version`, `tls_version`, `cert_not_after` and
/// `response_bytes` describe the last request of the redirect chain;
/// `total_ms` is the whole run, all hops and the body included. A phase that
/// did not happen or did not complete is `null`; on a timeout the phases
/// completed so far are kept. `ttfb_ms` runs from the start of the request
/// (for HTTP/2 including the connection preface) until the response head is
/// parsed. `response_bytes` counts the body as delivered (chunked framing
/// removed; no `Accept-Encoding` is sent, so it is not compressed) like
/// curl's `size_download`; it is 0 for HEAD.
pub async fn run(target: &Target) -> Http {
    // Settings are loaded (once) before the clock starts, so that reading
    // the CA file or the system roots never counts as network time.
    let compiled = target.compiled();
    if target.ca_file.is_none() && target.url.starts_with("https:") {
        let _ = system_client_config();
    }
    let started = Instant::now();
    let mut out = Http {
        url: target.url.clone(),
        method: target.method.to_string(),
        status_code: None,
        success: false,
        dns_ms: None,
        connect_ms: None,
        tls_ms: None,
        ttfb_ms: None,
        total_ms: None,
        response_bytes: None,
        http_version: None,
        tls_version: None,
        cert_not_after: None,
        redirects: 0,
        error: None,
    };
    let mut phase = Phase::Start;
    let result = match compiled {
        Ok(compiled) => tokio::time::timeout(target.timeout, exchange(target, &compiled, &mut out, &mut phase)).await,
        Err(e) => Ok(Err(err(ErrorClass::Other, e))),
    };
    out.total_ms = Some(ms(started.elapsed()));
    match result {
        Ok(Ok(())) => out.success = true,
        Ok(Err(e)) => out.error = Some(e),
        Err(_) => {
            out.error = Some(err(
                ErrorClass::Timeout,
                format!("no complete response within {:?} (timed out {phase})", target.timeout),
            ))
        }
    }
    out
}

/// Where a run is, for the timeout message.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Start,
    Dns,
    Connect,
    Tls,
    Head,
    Body,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Start => "before the first request",
            Phase::Dns => "in name lookup",
            Phase::Connect => "in TCP connect",
            Phase::Tls => "in TLS handshake",
            Phase::Head => "waiting for the response head",
            Phase::Body => "reading the body",
        })
    }
}

/// The redirect chain and the checks of the final response.
async fn exchange(target: &Target, compiled: &Compiled, out: &mut Http, phase: &mut Phase) -> Result<(), ProbeError> {
    let mut url = Url::parse(&target.url).map_err(|e| err(ErrorClass::Other, format!("url: {e}")))?;
    loop {
        clear_phases(out);
        let (response, _connection) = request(&url, target.method, compiled.tls.as_ref(), out, phase).await?;
        let status = response.status();
        out.status_code = Some(status.as_u16());
        if let Some(next) = redirect(&url, &response)? {
            if out.redirects < target.max_redirects {
                out.redirects += 1;
                url = next;
                continue;
            }
            if !target.expect_status.contains(&status.as_u16()) {
                return Err(err(
                    ErrorClass::ProtocolError,
                    format!("too many redirects: more than {} (next: {next})", target.max_redirects),
                ));
            }
        }
        let body = match target.method {
            Method::Get => {
                *phase = Phase::Body;
                read_body(response.into_body(), out).await?
            }
            Method::Head => {
                out.response_bytes = Some(0);
                Vec::new()
            }
        };
        if !target.expect_status.contains(&status.as_u16()) {
            return Err(err(
                ErrorClass::UnexpectedResponse,
                format!("status {} not in expect_status {:?}", status.as_u16(), target.expect_status),
            ));
        }
        return check_body(target, compiled, &body);
    }
}

fn clear_phases(out: &mut Http) {
    out.status_code = None;
    out.dns_ms = None;
    out.connect_ms = None;
    out.tls_ms = None;
    out.ttfb_ms = None;
    out.response_bytes = None;
    out.http_version = None;
    out.tls_version = None;
    out.cert_not_after = None;
}

/// One request on a new connection, up to the response head. The returned
/// guard keeps the connection task alive (and aborts it when dropped).
async fn request(
    url: &Url,
    method: Method,
    custom_tls: Option<&Arc<ClientConfig>>,
    out: &mut Http,
    phase: &mut Phase,
) -> Result<(Response<Incoming>, AbortOnDrop), ProbeError> {
    let host = url.host().ok_or_else(|| err(ErrorClass::Other, format!("{url} has no host")))?;
    let port = url.port_or_known_default().ok_or_else(|| err(ErrorClass::Other, format!("{url} has no port")))?;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        other => return Err(err(ErrorClass::ProtocolError, format!("unsupported scheme {other:?} in {url}"))),
    };

    *phase = Phase::Dns;
    let addrs: Vec<SocketAddr> = match &host {
        Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
        Host::Domain(name) => {
            let start = Instant::now();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((*name, port))
                .await
                .map_err(|e| err(ErrorClass::DnsFailure, format!("cannot resolve {name}: {e}")))?
                .collect();
            if addrs.is_empty() {
                return Err(err(ErrorClass::DnsFailure, format!("{name} has no address")));
            }
            out.dns_ms = Some(ms(start.elapsed()));
            addrs
        }
    };

    *phase = Phase::Connect;
    let start = Instant::now();
    let tcp = connect(&addrs).await?;
    out.connect_ms = Some(ms(start.elapsed()));
    // Small writes (the request head) must not wait for an ACK.
    let _ = tcp.set_nodelay(true);

    let req = build_request(url, method)?;
    if !https {
        return send(tcp, false, req, out, phase).await;
    }

    *phase = Phase::Tls;
    let config = match custom_tls {
        Some(c) => Arc::clone(c),
        None => system_client_config().map_err(|e| err(ErrorClass::Other, e))?,
    };
    let server_name = match host {
        Host::Domain(name) => ServerName::try_from(name.to_owned())
            .map_err(|e| err(ErrorClass::TlsError, format!("{name:?} is not a TLS server name: {e}")))?,
        Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(ip).into()),
        Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(ip).into()),
    };
    let start = Instant::now();
    let tls = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| err(ErrorClass::TlsError, format!("TLS handshake: {}", chain(&e))))?;
    out.tls_ms = Some(ms(start.elapsed()));
    let session = tls.get_ref().1;
    out.tls_version = session.protocol_version().map(tls_version_name);
    out.cert_not_after = session.peer_certificates().and_then(|c| c.first()).and_then(not_after);
    let h2 = session.alpn_protocol() == Some(b"h2".as_slice());
    send(tls, h2, req, out, phase).await
}

/// Tries the addresses in resolver order; the error of the last one counts.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, ProbeError> {
    let mut last = err(ErrorClass::Other, "no address to connect to".to_owned());
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = err(io_class(&e), format!("connect to {addr}: {e}")),
        }
    }
    Err(last)
}

/// The request with an absolute URI (fragment dropped) and `Host`, which
/// [`send`] adapts to the protocol; `User-Agent`, `Accept: */*`, no body, no
/// `Accept-Encoding`.
fn build_request(url: &Url, method: Method) -> Result<Request<Empty<Bytes>>, ProbeError> {
    let mut authority = url.host_str().unwrap_or_default().to_owned();
    if let Some(port) = url.port() {
        authority = format!("{authority}:{port}");
    }
    let method = match method {
        Method::Get => hyper::Method::GET,
        Method::Head => hyper::Method::HEAD,
    };
    Request::builder()
        .method(method)
        .uri(&url[..Position::AfterQuery])
        .header(HOST, authority)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "*/*")
        .body(Empty::new())
        .map_err(|e| err(ErrorClass::Other, format!("cannot build a request for {url}: {e}")))
}

/// Keeps a spawned task alive; aborts it when dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// HTTP/1.1 or HTTP/2 over `io`; times the request up to the response head.
async fn send<I>(
    io: I,
    h2: bool,
    mut req: Request<Empty<Bytes>>,
    out: &mut Http,
    phase: &mut Phase,
) -> Result<(Response<Incoming>, AbortOnDrop), ProbeError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    *phase = Phase::Head;
    let io = TokioIo::new(io);
    let start = Instant::now();
    let (response, connection) = if h2 {
        // HTTP/2 carries the authority in the URI (`:authority`), not `Host`.
        req.headers_mut().remove(HOST);
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.map_err(http_error)?;
        let connection = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        (sender.send_request(req).await.map_err(http_error)?, connection)
    } else {
        // HTTP/1.1 sends the origin form (`/path?query`) plus `Host`.
        let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        *req.uri_mut() = path.parse().map_err(|e| err(ErrorClass::Other, format!("request target {path:?}: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(http_error)?;
        let connection = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        (sender.send_request(req).await.map_err(http_error)?, connection)
    };
    out.ttfb_ms = Some(ms(start.elapsed()));
    out.http_version = Some(version_name(response.version()).to_owned());
    Ok((response, connection))
}

/// The next URL when `response` is a redirect with a `Location` (relative
/// references resolved against `url`, RFC 3986 section 5).
fn redirect(url: &Url, response: &Response<Incoming>) -> Result<Option<Url>, ProbeError> {
    let redirect_statuses = [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ];
    if !redirect_statuses.contains(&response.status()) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(LOCATION) else {
        return Ok(None);
    };
    let location =
        location.to_str().map_err(|_| err(ErrorClass::ProtocolError, "Location header is not ASCII".to_owned()))?;
    let next =
        url.join(location).map_err(|e| err(ErrorClass::ProtocolError, format!("bad Location {location:?}: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(err(ErrorClass::ProtocolError, format!("redirect to unsupported URL {next}")));
    }
    Ok(Some(next))
}

/// Reads the whole body, counting every byte into `out.response_bytes` as it
/// arrives and keeping the first [`BODY_MATCH_LIMIT_BYTES`].
async fn read_body(mut body: Incoming, out: &mut Http) -> Result<Vec<u8>, ProbeError> {
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    out.response_bytes = Some(0);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(http_error)?;
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
            out.response_bytes = Some(total);
            let room = BODY_MATCH_LIMIT_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(kept)
}

fn check_body(target: &Target, compiled: &Compiled, body: &[u8]) -> Result<(), ProbeError> {
    let text = String::from_utf8_lossy(body);
    if let Some(needle) = &target.body_contains {
        if !text.contains(needle.as_str()) {
            return Err(err(ErrorClass::UnexpectedResponse, format!("body does not contain {needle:?}")));
        }
    }
    if let Some(regex) = &compiled.regex {
        if !regex.is_match(&text) {
            return Err(err(ErrorClass::UnexpectedResponse, format!("body does not match {:?}", regex.as_str())));
        }
    }
    Ok(())
}

/// `notAfter` of a DER certificate, to the second.
fn not_after(der: &CertificateDer<'_>) -> Option<Timestamp> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let seconds = cert.validity().not_after.timestamp();
    Some(Timestamp::from_unix_nanos(seconds.checked_mul(1_000_000_000)?))
}

fn tls_version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

fn version_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "unknown",
    }
}

/// Class of a socket error (`connect(2)` errno mapped by std).
fn io_class(e: &io::Error) -> ErrorClass {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorClass::ConnectionRefused,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable | io::ErrorKind::NetworkDown => {
            ErrorClass::Unreachable
        }
        io::ErrorKind::PermissionDenied => ErrorClass::PermissionDenied,
        io::ErrorKind::TimedOut => ErrorClass::Timeout,
        _ => ErrorClass::Other,
    }
}

/// A hyper error: a socket error keeps its class, anything else (parse
/// errors, a connection closed before the response completed, HTTP/2 stream
/// errors) is `protocol_error`.
fn http_error(e: hyper::Error) -> ProbeError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    let mut class = ErrorClass::ProtocolError;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            class = io_class(io);
            break;
        }
        source = s.source();
    }
    err(class, chain(&e))
}

/// An error and its sources, joined with `: `.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    message
}

fn err(class: ErrorClass, message: String) -> ProbeError {
    ProbeError { class, message }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_errors_map_to_classes() {
        let class = |errno| io_class(&io::Error::from_raw_os_error(errno));
        assert_eq!(class(111), ErrorClass::ConnectionRefused); // ECONNREFUSED
        assert_eq!(class(113), ErrorClass::Unreachable); // EHOSTUNREACH
        assert_eq!(class(101), ErrorClass::Unreachable); // ENETUNREACH
        assert_eq!(class(13), ErrorClass::PermissionDenied); // EACCES
        assert_eq!(class(110), ErrorClass::Timeout); // ETIMEDOUT
    }
}
