//! The InfluxDB v2 sink: gzip-compressed line protocol to `/api/v2/write`
//! (precision ns) with a write-only token. One call is one attempt; what to
//! do next is [`crate::retry::classify`]'s decision.

use std::io::Write as _;
use std::time::Duration;

use flate2::write::GzEncoder;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};

use crate::config::InfluxSettings;
use crate::retry::{classify, parse_retry_after, Action};
use crate::Error;

/// Longest InfluxDB error text kept (it quotes the offending line whole):
/// no more of an error body is read.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest time spent reading an error body: it only feeds logs and the
/// DLQ reason, and a server that dribbles one must not hold the write.
pub const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// Result of one write attempt.
#[derive(Debug)]
pub struct Outcome {
    /// What to do next.
    pub action: Action,
    /// HTTP status, `None` when no response came (connection error, timeout).
    pub status: Option<u16>,
    /// InfluxDB's error message, or the transport error, for logs and the DLQ.
    pub message: String,
}

/// Writes line protocol to one bucket.
#[derive(Debug, Clone)]
pub struct InfluxSink {
    client: reqwest::Client,
    write_url: String,
    auth: HeaderValue,
}

impl InfluxSink {
    /// A sink for `settings` with the given token and request timeout.
    ///
    /// # Errors
    /// [`Error::Http`] when the HTTP client cannot be built; [`Error::Token`]
    /// when the token cannot be a header value.
    pub fn new(settings: &InfluxSettings, token: &str, timeout: Duration) -> Result<Self, Error> {
        let client = reqwest::Client::builder().timeout(timeout).pool_max_idle_per_host(4).build()?;
        let mut write_url = reqwest::Url::parse(&settings.url)
            .and_then(|u| u.join("api/v2/write"))
            .map_err(|e| Error::Config { path: "[influx] url".into(), message: e.to_string() })?;
        write_url
            .query_pairs_mut()
            .append_pair("org", &settings.org)
            .append_pair("bucket", &settings.bucket)
            .append_pair("precision", "ns");
        let mut auth = HeaderValue::from_str(&format!("Token {token}"))
            .map_err(|_| Error::Token { message: "token is not a valid header value".into() })?;
        auth.set_sensitive(true);
        Ok(InfluxSink { client, write_url: write_url.into(), auth })
    }

    /// Compresses and posts `lines` (newline-terminated line protocol).
    /// Never fails: every failure is an [`Outcome`] to act on.
    pub async fn write(&self, lines: &[u8]) -> Outcome {
        let body = gzip(lines);
        let response = self
            .client
            .post(&self.write_url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(CONTENT_ENCODING, "gzip")
            .body(body)
            .send()
            .await;
        match response {
            Err(e) => Outcome { action: Action::Retry(None), status: None, message: transport_error(&e) },
            Ok(r) => {
                let status = r.status();
                let retry_after = parse_retry_after(r.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()));
                let action = classify(status, retry_after);
                let message = if action == Action::Done { String::new() } else { error_text(r).await };
                Outcome { action, status: Some(status.as_u16()), message }
            }
        }
    }
}

/// The head of an error body: at most [`MAX_MESSAGE_BYTES`], read within
/// [`ERROR_BODY_TIMEOUT`], chunk by chunk so a huge or endless body is never
/// held (dropping the response then closes the connection).
async fn error_text(mut response: reqwest::Response) -> String {
    let mut head = Vec::with_capacity(256);
    let read = async {
        while head.len() < MAX_MESSAGE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk[..chunk.len().min(MAX_MESSAGE_BYTES - head.len())]),
                Ok(None) | Err(_) => break,
            }
        }
    };
    // Out of time: keep what came.
    let _ = tokio::time::timeout(ERROR_BODY_TIMEOUT, read).await;
    let text = String::from_utf8_lossy(&head);
    crate::truncate_utf8(&text, MAX_MESSAGE_BYTES).to_owned()
}

fn gzip(lines: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(lines.len() / 4 + 64), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(lines);
    enc.finish().unwrap_or_default()
}

fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}
