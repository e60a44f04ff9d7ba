//! HTTP probe: one GET or HEAD, redirects followed, with the phase timings
//! `curl -w` reports (name lookup, TCP connect, TLS handshake, time to first
//! byte, total) given as durations of each phase, plus status, body size and
//! checks, HTTP and TLS versions and the leaf certificate's expiry.
//!
//! Built on hyper's connection API rather than a client library so that each
//! phase can be timed on its own: `tokio::net::lookup_host`, `TcpStream::connect`,
//! a tokio-rustls handshake offering ALPN `h2` and `http/1.1`, then one request
//! over hyper's HTTP/1.1 or HTTP/2 connection depending on what ALPN chose.

mod errors;
mod exchange;
pub(crate) mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION};
use netprobe_wire::msg::Http;
use netprobe_wire::{Body, ErrorClass, ProbeType};
use regex::Regex;
use rustls::ClientConfig;
use serde::Deserialize;
use url::Url;

use super::ms;
use errors::err;

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
    /// `http://` or `https://` URL; the fragment is not sent. Published as
    /// is (message, Kafka key, InfluxDB tag), so credentials in it
    /// (`user:password@`) are refused: use `basic_auth` or `headers`.
    #[serde(deserialize_with = "crate::config::tag_value")]
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
    /// Request headers, e.g. `{ "X-Api-Key" = { file = "/etc/netprobe/api.key" } }`:
    /// a value is a string or `{ file = PATH }` (read at load and on reload,
    /// trailing newline removed). Sent to the URL's origin only (not to a
    /// redirect elsewhere); never published or logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// HTTP Basic authentication (RFC 7617) for the URL's origin; never
    /// published or logged.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
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

/// A header value, inline or from a file. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Secret {
    /// The value itself.
    Value(String),
    /// A file holding the value (one line; a trailing newline is removed).
    File {
        /// The file's path.
        file: PathBuf,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Value(_) => f.write_str("Value(<redacted>)"),
            Secret::File { file } => f.debug_struct("File").field("file", file).finish(),
        }
    }
}

impl Secret {
    /// The value, read from its file if it has one.
    fn read(&self) -> Result<String, String> {
        match self {
            Secret::Value(v) => Ok(v.clone()),
            Secret::File { file } => read_secret_file(file),
        }
    }
}

/// `basic_auth = { username = "probe", password_file = "/etc/netprobe/site.password" }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name (RFC 7617: no `:`).
    pub username: String,
    /// File holding the password (not readable by others: mode without the
    /// world bits; a trailing newline is removed).
    pub password_file: PathBuf,
}

/// Reads a secret from `path`: refused when others may read it; one line,
/// trailing newline removed. The error names the file, never the content.
fn read_secret_file(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(format!("{} is world-readable; chmod o-r it", path.display()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_owned())
}

/// The URL with any password replaced by `***`, for error messages.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
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
            headers: BTreeMap::new(),
            basic_auth: None,
            compiled: CompiledCache::default(),
        }
    }

    /// The compiled regex and TLS config, cached while the keys they come
    /// from are unchanged (fields are public, so a clone may be edited).
    fn compiled(&self) -> Result<Arc<Compiled>, String> {
        if let Some(c) = self.compiled.0.get() {
            if c.key == self.compile_key() {
                return Ok(Arc::clone(c));
            }
        }
        let c = Arc::new(Compiled::new(self)?);
        // Lost race or stale entry: the fresh value is used either way.
        let _ = self.compiled.0.set(Arc::clone(&c));
        Ok(c)
    }

    fn compile_key(&self) -> CompileKey {
        CompileKey {
            body_regex: self.body_regex.clone(),
            ca_file: self.ca_file.clone(),
            headers: self.headers.clone(),
            basic_auth: self.basic_auth.clone(),
        }
    }
}

impl super::Probe for Target {
    const TYPE: ProbeType = ProbeType::Http;
    /// A connection each, with TLS state: 64 at once.
    const CONCURRENCY: usize = 64;

    fn interval(&self) -> Duration {
        self.interval
    }

    fn run_deadline(&self) -> Duration {
        self.timeout
    }

    /// Checks what serde cannot: `url` parses with an http/https scheme and a
    /// host and carries no credentials, `timeout` is positive,
    /// `expect_status` holds HTTP statuses, body checks are only set with
    /// GET, `body_regex` compiles, `ca_file` is readable and holds at least
    /// one PEM certificate, header names and values are valid and their
    /// files readable, `basic_auth`'s password file is readable. Errors
    /// start with the key that is wrong, e.g. `ca_file: ...`, and never
    /// quote a secret.
    fn validate(&self) -> Result<(), String> {
        let url = Url::parse(&self.url).map_err(|e| format!("url: not a URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "url: {} carries credentials, which would be published with every result; \
                 use basic_auth = {{ username, password_file }} or headers instead",
                redacted(&url)
            ));
        }
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

    /// `http GET URL`, any password in the URL shown as `***`.
    fn label(&self) -> String {
        let url = Url::parse(&self.url).map_or_else(|_| self.url.clone(), |u| redacted(&u));
        format!("http {} {url}", self.method)
    }

    async fn run(&self, _: &super::Context) -> Body {
        Body::Http(run(self).await)
    }

    fn abandoned(&self, after: Duration) -> Body {
        let mut out = nothing_yet(self);
        out.error = Some(super::abandoned_error(after));
        Body::Http(out)
    }

    fn succeeded(body: &Body) -> bool {
        matches!(body, Body::Http(m) if m.success && m.error.is_none())
    }
}

/// The keys a [`Compiled`] is built from.
#[derive(Debug, Clone, PartialEq)]
struct CompileKey {
    body_regex: Option<String>,
    ca_file: Option<PathBuf>,
    headers: BTreeMap<String, Secret>,
    basic_auth: Option<BasicAuth>,
}

/// What a target's keys compile to, with the keys it was built from.
#[derive(Debug)]
struct Compiled {
    key: CompileKey,
    regex: Option<Regex>,
    /// TLS settings trusting `ca_file`; `None`: the system roots.
    tls: Option<Arc<ClientConfig>>,
    /// `headers` and `basic_auth` as request headers (marked sensitive).
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Compiled {
    fn new(target: &Target) -> Result<Self, String> {
        let key = target.compile_key();
        let regex = key.body_regex.as_deref().map(Regex::new).transpose().map_err(|e| format!("body_regex: {e}"))?;
        let tls = key
            .ca_file
            .as_deref()
            .map(|path| {
                let roots = tls::read_ca_file(path).map_err(|e| format!("ca_file: {}: {e}", path.display()))?;
                tls::client_config(roots).map_err(|e| format!("ca_file: {}: {e}", path.display()))
            })
            .transpose()?;
        let mut headers = Vec::with_capacity(key.headers.len() + 1);
        for (name, secret) in &key.headers {
            let name_ = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers: {name:?} is not a header name"))?;
            let value = secret.read().map_err(|e| format!("headers: {name}: {e}"))?;
            headers.push((name_, sensitive(&value).ok_or_else(|| format!("headers: {name}: not a header value"))?));
        }
        if let Some(auth) = &key.basic_auth {
            if auth.username.contains(':') {
                return Err("basic_auth: username must not contain ':' (RFC 7617)".to_owned());
            }
            let password = read_secret_file(&auth.password_file).map_err(|e| format!("basic_auth: {e}"))?;
            let token = base64(format!("{}:{password}", auth.username).as_bytes());
            let value = sensitive(&format!("Basic {token}")).ok_or("basic_auth: not a header value")?;
            headers.push((AUTHORIZATION, value));
        }
        Ok(Compiled { key, regex, tls, headers })
    }
}

/// A header value marked sensitive (HTTP/2 never indexes it).
fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Standard base64 with padding (RFC 4648 section 4), for Basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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
        let _ = tls::system_client_config();
    }
    let started = Instant::now();
    let mut out = nothing_yet(target);
    let mut phase = Phase::Start;
    let result = match compiled {
        Ok(compiled) => {
            tokio::time::timeout(target.timeout, exchange::exchange(target, &compiled, &mut out, &mut phase)).await
        }
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

/// A result for `target` before anything happened.
fn nothing_yet(target: &Target) -> Http {
    Http {
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
    }
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
