//! An InfluxDB error body is read only up to a bound: a local HTTP server
//! answers a write with 500 and a body that never ends (fast or dribbling);
//! the write outcome comes back promptly with the head of the body, and the
//! client stopped reading (the server could write only what the socket
//! buffers hold before the client closed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netprobe_ingest::config::InfluxSettings;
use netprobe_ingest::retry::Action;
use netprobe_ingest::sink::{InfluxSink, MAX_MESSAGE_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the server sends its endless error body.
#[derive(Clone, Copy)]
enum Body {
    /// 64 KiB chunks as fast as the socket takes them.
    Flood,
    /// 8 bytes every 50 ms.
    Dribble,
}

/// Serves one connection: reads the request head, answers 500 with a
/// chunked body that never ends; returns the bytes of body written when the
/// client closed.
async fn serve_endless_error(listener: TcpListener, body: Body, written: Arc<AtomicU64>) {
    let (mut stream, _) = listener.accept().await.expect("accept");
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.expect("read request");
        assert!(n > 0, "client closed before sending its request");
        request.extend_from_slice(&buf[..n]);
    }
    let head =
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let chunk = match body {
        Body::Flood => vec![b'x'; 64 * 1024],
        Body::Dribble => vec![b'x'; 8],
    };
    let framed = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.clone(), b"\r\n".to_vec()].concat();
    loop {
        if stream.write_all(&framed).await.is_err() {
            return;
        }
        written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if let Body::Dribble = body {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn write_against(body: Body) -> (netprobe_ingest::sink::Outcome, Duration, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let written = Arc::new(AtomicU64::new(0));
    let server = tokio::spawn(serve_endless_error(listener, body, written.clone()));
    let settings = InfluxSettings {
        url: format!("http://{addr}"),
        org: "o".into(),
        bucket: "b".into(),
        token_file: None,
        token_credential: None,
    };
    // The request timeout is long: the bound must come from the body read.
    let sink = InfluxSink::new(&settings, "token", Duration::from_secs(120)).expect("sink");
    let start = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(20), sink.write(b"m f=1i 1\n"))
        .await
        .expect("the write outcome must come back without reading the whole body");
    let elapsed = start.elapsed();
    // The client dropped the connection: the server's next write fails.
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("the client closed the connection")
        .expect("server task");
    (outcome, elapsed, written.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_error_body_is_cut_at_the_bound() {
    let (outcome, elapsed, written) = write_against(Body::Flood).await;
    assert_eq!(outcome.status, Some(500));
    assert!(matches!(outcome.action, Action::Retry(_)), "{:?}", outcome.action);
    assert_eq!(outcome.message, "x".repeat(MAX_MESSAGE_BYTES), "the head of the body, cut at the bound");
    // Loopback moves GB/s: reading on for even a second would show here.
    assert!(written < 64 * 1024 * 1024, "the client kept reading: {written} bytes served in {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_error_body_is_cut_at_the_time_bound() {
    let (outcome, elapsed, _) = write_against(Body::Dribble).await;
    assert_eq!(outcome.status, Some(500));
    assert!(matches!(outcome.action, Action::Retry(_)), "{:?}", outcome.action);
    // 8 bytes per 50 ms for the 2 s read bound: some head, never the bound.
    assert!(!outcome.message.is_empty() && outcome.message.len() < MAX_MESSAGE_BYTES, "{:?}", outcome.message);
    assert!(outcome.message.bytes().all(|b| b == b'x'), "{:?}", outcome.message);
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}
