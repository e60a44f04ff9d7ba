//! The MRT source over HTTP(S): one update file at a URL, or an index (an
//! HTTP directory listing such as `https://data.ris.ripe.net/rrc00/2025.12/`)
//! polled for new files.
//!
//! Downloads use the agent's own HTTP stack (hyper's HTTP/1.1 connection
//! over tokio-rustls with the ring provider and the system roots, as the
//! HTTP probe), no second HTTP client. A file is streamed to a temporary
//! file (at most [`MAX_DOWNLOAD_BYTES`]) and then read like a local file,
//! decompressed by the extension of the URL's path (`.gz`, `.bz2`, else
//! raw); no `Accept-Encoding` is sent and `Content-Encoding` is ignored
//! (Apache labels `.gz` files `x-gzip`: the bytes are still the file).
//!
//! Index (a URL whose path ends in `/`): every `href` of the page that
//! resolves to a file directly under the index URL (same origin, no
//! query, no further `/`) and whose name looks like an MRT update file:
//! it starts with `updates.` or ends in `.gz`, `.bz2` or `.mrt`, and is not
//! a table dump (`bview.*`, `rib.*`), hidden (`.*`) or partial (`*.tmp`,
//! `*.part`). Like the directory source, the index is listed every
//! `poll_interval`, new names are read in name order, at start every listed
//! name is read, and the names remembered as read are bounded
//! ([`MAX_REMEMBERED_FILES`]; names no longer listed are forgotten).
//!
//! Failures: a listing or download that fails (HTTP status other than 200,
//! connect or transfer error, a body shorter than its `Content-Length`,
//! too large, timeout) is counted (`FeedHealth::fetch_errors`,
//! `netprobe_agent_bgp_mrt_fetch_errors_total{feed,stage,error_type}`) and
//! logged with the URL; a file is tried again on the next listings, at most
//! [`MAX_ATTEMPTS`] times, then skipped (remembered as read). `connected`
//! is false while the index cannot be fetched and true when it can.
//! URLs carrying credentials (`user:password@`) are refused: the location
//! is the feed's published name.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use url::{Host, Position, Url};

use super::feed::{FeedHealth, FeedTx};
use super::mrt::{collector_of, decompress, read_into_feed, MAX_REMEMBERED_FILES};

/// Largest file downloaded (512 MiB, compressed as served); a larger one
/// is a fetch error.
pub const MAX_DOWNLOAD_BYTES: u64 = 512 << 20;
/// Largest index page read (8 MiB).
pub const MAX_INDEX_BYTES: u64 = 8 << 20;
/// Bound of the TCP connect (and the TLS handshake, each).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of fetching the whole index page, redirects included.
pub const INDEX_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound of downloading one whole file, redirects included.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Downloads of one file tried before it is skipped.
pub const MAX_ATTEMPTS: u32 = 3;
/// Redirects (301, 302, 303, 307, 308) followed per fetch.
pub const MAX_REDIRECTS: u32 = 5;
/// `User-Agent` of every request.
const USER_AGENT_VALUE: &str = concat!("netprobe-agent/", env!("CARGO_PKG_VERSION"));

/// Why a fetch failed; every variant names the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered with a status other than 200.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL fetched (the last of its redirects).
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// Connect, TLS or HTTP failed, or the body ended early (truncated).
    #[error("{url}: {message}")]
    Transport {
        /// The URL fetched.
        url: String,
        /// What failed, with its causes.
        message: String,
    },
    /// The body is larger than allowed.
    #[error("{url}: larger than {limit_bytes} bytes")]
    TooLarge {
        /// The URL fetched.
        url: String,
        /// The limit.
        limit_bytes: u64,
    },
    /// No complete response in time.
    #[error("{url}: no complete response within {timeout:?}")]
    Timeout {
        /// The URL fetched.
        url: String,
        /// The bound that was reached.
        timeout: Duration,
    },
    /// The temporary file could not be written.
    #[error("{url}: cannot write {path}: {source}")]
    Io {
        /// The URL fetched.
        url: String,
        /// The temporary file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl FetchError {
    /// A bounded label for metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            FetchError::Status { .. } => "status",
            FetchError::Transport { .. } => "transport",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Timeout { .. } => "timeout",
            FetchError::Io { .. } => "io",
        }
    }
}

/// Parses an MRT `http(s)://` location: it needs a host and must not carry
/// credentials (the location is the feed's published name).
///
/// # Errors
/// Not a URL, another scheme, no host, or user info in it (the message
/// shows any password as `***`).
pub fn check_url(location: &str) -> Result<Url, String> {
    let url = Url::parse(location).map_err(|e| format!("{location:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        let mut shown = url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        return Err(format!(
            "{shown} carries credentials, which would be published as the feed's name; serve the files without them"
        ));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{location:?}: scheme must be http or https"));
    }
    if url.host().is_none() {
        return Err(format!("{location:?} has no host"));
    }
    Ok(url)
}

/// Runs the MRT source for an `http(s)://` `location` until `shutdown`:
/// an index (path ending in `/`) is listed every `poll_interval`; a single
/// file is read once (tried at most [`MAX_ATTEMPTS`] times,
/// `poll_interval` apart) and then the source ends. See the module doc.
pub async fn run(
    location: String,
    poll_interval: Duration,
    tx: FeedTx,
    health: Arc<FeedHealth>,
    shutdown: CancellationToken,
) {
    let url = match check_url(&location) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(feed = %health.name, error = %e, "MRT URL refused; the feed stays down");
            return;
        }
    };
    if url.path().ends_with('/') {
        run_index(url, poll_interval, &tx, &health, &shutdown).await;
    } else {
        for attempt in 1..=MAX_ATTEMPTS {
            match fetch_and_read(&url, &tx, &health, &shutdown).await {
                Ok(_) => break,
                Err(e) => {
                    health.connected.store(false, Ordering::Relaxed);
                    failed(&health, "file", &e);
                    if attempt == MAX_ATTEMPTS {
                        tracing::warn!(feed = %health.name, url = %url, attempts = attempt, "MRT file skipped: download failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(poll_interval) => {}
            }
        }
    }
    // Down before the channel closes (the monitor ends when it does).
    health.connected.store(false, Ordering::Relaxed);
    drop(tx);
}

/// Lists the index every `poll_interval` and reads new files; returns on
/// shutdown or when the receiver is gone.
async fn run_index(
    url: Url,
    poll_interval: Duration,
    tx: &FeedTx,
    health: &Arc<FeedHealth>,
    shutdown: &CancellationToken,
) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut attempts: HashMap<String, u32> = HashMap::new();
    let mut tick = tokio::time::interval(poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let listing = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = fetch_index(&url) => r,
        };
        let names = match listing {
            Ok(n) => {
                health.connected.store(true, Ordering::Relaxed);
                n
            }
            Err(e) => {
                health.connected.store(false, Ordering::Relaxed);
                failed(health, "index", &e);
                continue;
            }
        };
        let listed: HashSet<&String> = names.iter().collect();
        seen.retain(|n| listed.contains(n));
        attempts.retain(|n, _| listed.contains(n));
        for name in &names {
            if seen.contains(name) || seen.len() >= MAX_REMEMBERED_FILES {
                continue;
            }
            let Ok(file_url) = url.join(name) else {
                seen.insert(name.clone());
                continue;
            };
            match fetch_and_read(&file_url, tx, health, shutdown).await {
                Ok(true) => {
                    seen.insert(name.clone());
                    attempts.remove(name);
                }
                Ok(false) => return,
                Err(e) => {
                    failed(health, "file", &e);
                    let n = attempts.entry(name.clone()).or_insert(0);
                    *n += 1;
                    if *n >= MAX_ATTEMPTS {
                        tracing::warn!(feed = %health.name, url = %file_url, attempts = *n,
                            "MRT file skipped: download failed");
                        attempts.remove(name);
                        seen.insert(name.clone());
                    }
                }
            }
        }
    }
}

/// Counts and logs a failed fetch.
fn failed(health: &FeedHealth, stage: &'static str, e: &FetchError) {
    health.fetch_errors.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("netprobe_agent_bgp_mrt_fetch_errors_total", "feed" => health.name.clone(),
        "stage" => stage, "error_type" => e.error_type())
    .increment(1);
    tracing::warn!(feed = %health.name, stage, error_type = e.error_type(), error = %e, "MRT fetch failed");
}

/// The MRT update file names an index page lists (see the module doc),
/// sorted, as they appear in its URLs (percent-encoded).
pub fn index_names(base: &Url, html: &str) -> Vec<String> {
    // ASCII lowercasing keeps byte offsets, so positions carry over.
    let lower = html.to_ascii_lowercase();
    let mut names = BTreeSet::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find("href") {
        at += i + 4;
        let rest = html[at..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else { continue };
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest.split(|c: char| c.is_ascii_whitespace() || c == '>').next().unwrap_or(""),
        };
        let Ok(target) = base.join(value) else { continue };
        if target.query().is_some() || target.origin() != base.origin() {
            continue;
        }
        let Some(name) = target.path().strip_prefix(base.path()) else { continue };
        if !name.is_empty() && !name.contains('/') && looks_like_updates(name) {
            names.insert(name.to_owned());
        }
    }
    names.into_iter().collect()
}

/// Whether a listed file name looks like an MRT update file.
fn looks_like_updates(name: &str) -> bool {
    let skipped = name.starts_with('.')
        || name.starts_with("bview.")
        || name.starts_with("rib.")
        || name.ends_with(".tmp")
        || name.ends_with(".part");
    !skipped && (name.starts_with("updates.") || [".gz", ".bz2", ".mrt"].iter().any(|e| name.ends_with(e)))
}

/// Fetches and parses the index page.
async fn fetch_index(url: &Url) -> Result<Vec<String>, FetchError> {
    let mut page = Vec::new();
    tokio::time::timeout(INDEX_TIMEOUT, download(url, MAX_INDEX_BYTES, &mut page, Path::new("(memory)")))
        .await
        .map_err(|_| FetchError::Timeout { url: url.to_string(), timeout: INDEX_TIMEOUT })??;
    Ok(index_names(url, &String::from_utf8_lossy(&page)))
}

/// Downloads one file to a temporary file and reads it into the feed.
/// `Ok(false)` when the receiver is gone or on shutdown.
async fn fetch_and_read(
    url: &Url,
    tx: &FeedTx,
    health: &Arc<FeedHealth>,
    shutdown: &CancellationToken,
) -> Result<bool, FetchError> {
    let tmp = TempFile::new();
    let io_err = |source| FetchError::Io { url: url.to_string(), path: tmp.0.clone(), source };
    let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&tmp.0).await.map_err(io_err)?;
    let fetched = tokio::select! {
        _ = shutdown.cancelled() => return Ok(false),
        r = tokio::time::timeout(DOWNLOAD_TIMEOUT, download(url, MAX_DOWNLOAD_BYTES, &mut file, &tmp.0)) => r,
    };
    let bytes = fetched.map_err(|_| FetchError::Timeout { url: url.to_string(), timeout: DOWNLOAD_TIMEOUT })??;
    drop(file);
    health.connected.store(true, Ordering::Relaxed);
    tracing::debug!(feed = %health.name, url = %url, bytes, "MRT file downloaded");
    let path = Path::new(url.path());
    let collector = collector_of(path);
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_owned);
    let what = url.to_string();
    let (tx, health, shutdown) = (tx.clone(), Arc::clone(health), shutdown.clone());
    let read = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&tmp.0).map_err(|source| FetchError::Io {
            url: what.clone(),
            path: tmp.0.clone(),
            source,
        })?;
        // Unlinked now: the open file is read, nothing is left behind.
        drop(tmp);
        Ok(read_into_feed(decompress(file, ext.as_deref()), &what, &collector, &tx, &health, &shutdown))
    });
    read.await.unwrap_or(Ok(false))
}

/// Streams the 200 body of `url` (redirects followed) into `sink`, at most
/// `limit_bytes`; returns the bytes written. `path` names the sink in
/// errors.
async fn download(
    url: &Url,
    limit_bytes: u64,
    sink: &mut (impl AsyncWrite + Unpin),
    path: &Path,
) -> Result<u64, FetchError> {
    let (response, url, _connection) = get(url).await?;
    let u = url.to_string();
    if response.status() != StatusCode::OK {
        return Err(FetchError::Status { url: u, status: response.status().as_u16() });
    }
    let declared = response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit_bytes) {
        return Err(FetchError::TooLarge { url: u, limit_bytes });
    }
    let mut body = response.into_body();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| FetchError::Transport { url: u.clone(), message: format!("body: {}", chain(&e)) })?;
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
            if total > limit_bytes {
                return Err(FetchError::TooLarge { url: u, limit_bytes });
            }
            sink.write_all(data).await.map_err(|source| FetchError::Io {
                url: u.clone(),
                path: path.to_owned(),
                source,
            })?;
        }
    }
    sink.flush().await.map_err(|source| FetchError::Io { url: u.clone(), path: path.to_owned(), source })?;
    Ok(total)
}

/// GET `url`, following redirects, up to the response head; with the URL
/// finally fetched and the connection guard.
async fn get(url: &Url) -> Result<(Response<Incoming>, Url, AbortOnDrop), FetchError> {
    let mut url = url.clone();
    let mut redirects = 0;
    loop {
        let (response, guard) = request(&url).await?;
        let redirect = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
        let location = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
        match location {
            Some(location) if redirect && redirects < MAX_REDIRECTS => {
                let next = url.join(&location).map_err(|e| FetchError::Transport {
                    url: url.to_string(),
                    message: format!("bad Location {location:?}: {e}"),
                })?;
                check_url(next.as_str())
                    .map_err(|e| FetchError::Transport { url: url.to_string(), message: format!("redirect: {e}") })?;
                redirects += 1;
                url = next;
            }
            _ => return Ok((response, url, guard)),
        }
    }
}

/// One HTTP/1.1 GET on a new connection (TLS for `https`), up to the
/// response head.
async fn request(url: &Url) -> Result<(Response<Incoming>, AbortOnDrop), FetchError> {
    let transport = |message: String| FetchError::Transport { url: url.to_string(), message };
    let port = url.port_or_known_default().ok_or_else(|| transport("no port".to_owned()))?;
    let host = url.host().ok_or_else(|| transport("no host".to_owned()))?;
    let connect = async {
        match &host {
            Host::Domain(name) => TcpStream::connect((*name, port)).await,
            Host::Ipv4(ip) => TcpStream::connect(SocketAddr::new(IpAddr::V4(*ip), port)).await,
            Host::Ipv6(ip) => TcpStream::connect(SocketAddr::new(IpAddr::V6(*ip), port)).await,
        }
    };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| transport(format!("connect: no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| transport(format!("connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let mut authority = url.host_str().unwrap_or_default().to_owned();
    if let Some(port) = url.port() {
        authority = format!("{authority}:{port}");
    }
    let req = Request::get(&url[Position::BeforePath..Position::AfterQuery])
        .header(HOST, authority)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|e| transport(format!("cannot build the request: {e}")))?;
    if url.scheme() != "https" {
        return send(tcp, req).await.map_err(transport);
    }
    let config = tls_config().map_err(&transport)?;
    let server_name = match host {
        Host::Domain(name) => {
            ServerName::try_from(name.to_owned()).map_err(|e| transport(format!("not a TLS server name: {e}")))?
        }
        Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(ip).into()),
        Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(ip).into()),
    };
    let tls = tokio::time::timeout(CONNECT_TIMEOUT, TlsConnector::from(config).connect(server_name, tcp))
        .await
        .map_err(|_| transport(format!("TLS handshake: no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| transport(format!("TLS handshake: {}", chain(&e))))?;
    send(tls, req).await.map_err(transport)
}

/// HTTP/1.1 over `io`, up to the response head.
async fn send<I>(io: I, req: Request<Empty<Bytes>>) -> Result<(Response<Incoming>, AbortOnDrop), String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| chain(&e))?;
    let guard = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let response = sender.send_request(req).await.map_err(|e| chain(&e))?;
    Ok((response, guard))
}

/// The system roots' TLS settings of the HTTP probe, with ALPN `http/1.1`
/// only (this client speaks HTTP/1.1); built once per process.
fn tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut config = (*crate::probe::http::tls::system_client_config()?).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
}

/// An error and its sources, joined with `: `.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
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

/// Keeps the connection task alive; aborts it when dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A temporary download file, removed when dropped.
#[derive(Debug)]
struct TempFile(PathBuf);

impl TempFile {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempFile(std::env::temp_dir().join(format!("netprobe-mrt-{}-{n}.download", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apache_index_lists_update_files_only() {
        let base = Url::parse("https://data.ris.ripe.net/rrc00/2025.12/").expect("url");
        let html = r#"<html><body><h1>Index of /rrc00/2025.12</h1><table>
            <tr><th><a href="?C=N;O=D">Name</a></th></tr>
            <tr><td><a href="/rrc00/">Parent Directory</a></td></tr>
            <tr><td><a href="bview.20251201.0000.gz">bview.20251201.0000.gz</a></td></tr>
            <tr><td><a href="updates.20251201.0005.gz">updates.20251201.0005.gz</a></td></tr>
            <tr><td><A HREF='updates.20251201.0000.gz'>x</A></td></tr>
            <tr><td><a href=updates.20251201.0010.bz2>x</a></td></tr>
            <tr><td><a href="https://data.ris.ripe.net/rrc00/2025.12/updates.20251201.0015.gz">abs</a></td></tr>
            <tr><td><a href="https://elsewhere.example/rrc00/2025.12/updates.x.gz">other host</a></td></tr>
            <tr><td><a href="sub/updates.20251201.0020.gz">deeper</a></td></tr>
            <tr><td><a href="README.txt">README.txt</a></td></tr>
            <tr><td><a href="updates.20251201.0025.gz.part">partial</a></td></tr>
            <tr><td><a href="capture.mrt">raw</a></td></tr>
            <tr><td><a href="updates.20251201.0005.gz">again</a></td></tr>
            </table></body></html>"#;
        assert_eq!(
            index_names(&base, html),
            [
                "capture.mrt",
                "updates.20251201.0000.gz",
                "updates.20251201.0005.gz",
                "updates.20251201.0010.bz2",
                "updates.20251201.0015.gz"
            ]
        );
    }

    #[test]
    fn urls_with_credentials_are_refused_without_echoing_the_password() {
        let e = check_url("https://user:s3cret@example.net/rrc00/").expect_err("refused");
        assert!(e.contains("credentials") && !e.contains("s3cret"), "{e}");
        assert!(check_url("ftp://example.net/x.gz").is_err());
        assert!(check_url("https://data.ris.ripe.net/rrc00/2025.12/").is_ok());
    }
}
