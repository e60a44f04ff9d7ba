//! The null sink of `scripts/bench ingest --sink null`: a minimal InfluxDB v2
//! write endpoint that both netprobe-ingest and Telegraf write to, so only
//! the pipelines differ. `POST /api/v2/write` reads the body, gunzips it when
//! `Content-Encoding: gzip`, counts its lines and answers 204; `GET /count`
//! answers the lines counted so far (text), `GET /stats` the lines, requests,
//! body bytes and when the first and the last write arrived (Unix ms) as
//! JSON; `POST /reset` zeroes them; `GET /ping` and `GET /health` answer
//! 204/200 for clients that probe the server first. Nothing is stored or
//! checked beyond the line count.
//!
//! Usage: bench_null_sink ADDR  (e.g. `127.0.0.1:0`); prints the bound
//! address on stdout, then serves until killed. Hyper on a two-thread tokio
//! runtime: a request costs one gunzip and a byte count, far below either
//! pipeline's cost per line (the bench reports this process's CPU too).

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// What the sink counted since it started.
#[derive(Debug, Default)]
struct Counts {
    lines: AtomicU64,
    requests: AtomicU64,
    body_bytes: AtomicU64,
    /// Unix ms of the first write since the start or reset; 0 before.
    first_ms: AtomicU64,
    /// Unix ms of the last write.
    last_ms: AtomicU64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Lines of line protocol in `text`: newline-terminated ones plus a last
/// one without a newline; blank lines are not counted.
fn count_lines(text: &[u8]) -> u64 {
    text.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count() as u64
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn handle(req: Request<Incoming>, counts: Arc<Counts>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/api/v2/write") => {
            let gzip = req.headers().get(hyper::header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes() == b"gzip");
            let body = req.into_body().collect().await?.to_bytes();
            counts.body_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            let lines = if gzip {
                let mut text = Vec::with_capacity(body.len() * 6);
                if let Err(e) = flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut text) {
                    return Ok(reply(StatusCode::BAD_REQUEST, format!("{{\"message\":\"bad gzip body: {e}\"}}")));
                }
                count_lines(&text)
            } else {
                count_lines(&body)
            };
            counts.lines.fetch_add(lines, Ordering::Relaxed);
            counts.requests.fetch_add(1, Ordering::Relaxed);
            let now = now_ms();
            let _ = counts.first_ms.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            counts.last_ms.fetch_max(now, Ordering::Relaxed);
            Ok(reply(StatusCode::NO_CONTENT, Bytes::new()))
        }
        (&Method::GET, "/count") => Ok(reply(StatusCode::OK, counts.lines.load(Ordering::Relaxed).to_string())),
        (&Method::GET, "/stats") => Ok(reply(
            StatusCode::OK,
            format!(
                "{{\"lines\":{},\"requests\":{},\"body_bytes\":{},\"first_ms\":{},\"last_ms\":{}}}",
                counts.lines.load(Ordering::Relaxed),
                counts.requests.load(Ordering::Relaxed),
                counts.body_bytes.load(Ordering::Relaxed),
                counts.first_ms.load(Ordering::Relaxed),
                counts.last_ms.load(Ordering::Relaxed)
            ),
        )),
        (&Method::POST, "/reset") => {
            for c in [&counts.lines, &counts.requests, &counts.body_bytes, &counts.first_ms, &counts.last_ms] {
                c.store(0, Ordering::Relaxed);
            }
            Ok(reply(StatusCode::NO_CONTENT, Bytes::new()))
        }
        (_, "/ping") => Ok(reply(StatusCode::NO_CONTENT, Bytes::new())),
        (_, "/health") => Ok(reply(StatusCode::OK, "{\"status\":\"pass\"}")),
        _ => Ok(reply(StatusCode::NOT_FOUND, "{\"message\":\"not found\"}")),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let addr: SocketAddr = std::env::args().nth(1).and_then(|a| a.parse().ok()).expect("usage: bench_null_sink ADDR");
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    println!("{}", listener.local_addr().expect("local address"));
    let counts = Arc::new(Counts::default());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept on {addr}: {e}");
                continue;
            }
        };
        let counts = counts.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, counts.clone()));
            if let Err(e) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                eprintln!("connection: {e}");
            }
        });
    }
}
