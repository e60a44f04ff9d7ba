//! One HTTP exchange with each phase timed on its own: name lookup, TCP
//! connect, TLS handshake, request to response head (TTFB), body; redirects
//! followed on new connections.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue, ACCEPT, HOST, LOCATION, USER_AGENT};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use netprobe_wire::msg::Http;
use netprobe_wire::{ErrorClass, ProbeError};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use url::{Host, Position, Url};

use super::errors::{chain, err, http_error, io_class};
use super::tls::{not_after, system_client_config, tls_version_name};
use super::{ms, Compiled, Method, Phase, Target, USER_AGENT_VALUE};

/// The redirect chain and the checks of the final response.
pub(super) async fn exchange(
    target: &Target,
    compiled: &Compiled,
    out: &mut Http,
    phase: &mut Phase,
) -> Result<(), ProbeError> {
    let mut url = Url::parse(&target.url).map_err(|e| err(ErrorClass::Other, format!("url: {e}")))?;
    let origin = url.origin();
    // Only a body matcher needs the body; otherwise it is counted, not kept.
    let keep_body = target.body_contains.is_some() || compiled.regex.is_some();
    loop {
        clear_phases(out);
        // Credentials go to the configured origin only, as curl does on redirects.
        let headers = if url.origin() == origin { compiled.headers.as_slice() } else { &[] };
        let (response, _connection) = request(&url, target.method, headers, compiled.tls.as_ref(), out, phase).await?;
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
                read_body(response.into_body(), out, keep_body).await?
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
    headers: &[(HeaderName, HeaderValue)],
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

    let req = build_request(url, method, headers)?;
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
/// `Accept-Encoding`; then the target's own `headers` (credentials).
fn build_request(
    url: &Url,
    method: Method,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<Request<Empty<Bytes>>, ProbeError> {
    let mut authority = url.host_str().unwrap_or_default().to_owned();
    if let Some(port) = url.port() {
        authority = format!("{authority}:{port}");
    }
    let method = match method {
        Method::Get => hyper::Method::GET,
        Method::Head => hyper::Method::HEAD,
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(&url[..Position::AfterQuery])
        .header(HOST, authority)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "*/*");
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder.body(Empty::new()).map_err(|e| err(ErrorClass::Other, format!("cannot build a request for {url}: {e}")))
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
/// arrives and, with `keep`, keeping the first
/// [`BODY_MATCH_LIMIT_BYTES`](super::BODY_MATCH_LIMIT_BYTES).
async fn read_body(mut body: Incoming, out: &mut Http, keep: bool) -> Result<Vec<u8>, ProbeError> {
    let limit = if keep { super::BODY_MATCH_LIMIT_BYTES } else { 0 };
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    out.response_bytes = Some(0);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(http_error)?;
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
            out.response_bytes = Some(total);
            let room = limit.saturating_sub(kept.len());
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
