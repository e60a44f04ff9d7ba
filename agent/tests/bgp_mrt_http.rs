//! The BGP monitor fed MRT files over HTTP: a hyper server started by the
//! test serves an Apache-style index of the scripted story's files (see
//! `bgp_mrt.rs`), plus a listed file that is missing (404) and one whose
//! body is cut short of its `Content-Length`. The same events as from the
//! directory arrive; a single-file URL works; fetch failures are counted,
//! retried a bounded number of times, and the feed goes on.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::mrt::{by_event, owned, receive_story, story_config, summary, write_story};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use netprobe_agent::probe::bgp::feed::{FeedElem, FeedHealth};
use netprobe_agent::probe::bgp::{mrt, BgpRuntime};
use netprobe_wire::ProbeId;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A listed file that the server does not have (404).
const MISSING: &str = "updates.20261203.1403.gz";
/// A listed file whose body the server cuts in half.
const TRUNCATED: &str = "updates.20261203.1402.gz";

/// An HTTP/1.1 server of `dir` under `/rrc00/`: the index lists every file
/// of `dir` plus [`MISSING`], with sort links, a parent link and a README
/// around them; [`TRUNCATED`] is served with its full `Content-Length` but
/// half its bytes. Every requested path is logged.
struct Server {
    addr: SocketAddr,
    index_status: Arc<AtomicU16>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(dir: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let index_status = Arc::new(AtomicU16::new(200));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (status, requests) = (Arc::clone(&index_status), Arc::clone(&log));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (dir, status, requests) = (dir.clone(), Arc::clone(&status), Arc::clone(&requests));
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let path = req.uri().path().to_owned();
                        requests.lock().expect("log").push(path.clone());
                        let reply = answer(&dir, &path, status.load(Ordering::Relaxed));
                        async move { Ok::<_, Infallible>(reply) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
        Server { addr, index_status, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How often each path was requested.
    fn requests(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for p in self.log.lock().expect("log").iter() {
            *counts.entry(p.clone()).or_insert(0) += 1;
        }
        counts
    }
}

fn answer(dir: &Path, path: &str, index_status: u16) -> Response<Full<Bytes>> {
    let reply = |status: u16, body: Vec<u8>| {
        Response::builder().status(status).body(Full::new(Bytes::from(body))).expect("response")
    };
    if path == "/rrc00/" {
        if index_status != 200 {
            return reply(index_status, b"index unavailable\n".to_vec());
        }
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.push(MISSING.to_owned());
        names.sort();
        let mut html = String::from(
            "<html><head><title>Index of /rrc00</title></head><body><h1>Index of /rrc00</h1><table>\n\
             <tr><th><a href=\"?C=N;O=D\">Name</a></th><th><a href=\"?C=M;O=A\">Last modified</a></th></tr>\n\
             <tr><td><a href=\"/\">Parent Directory</a></td></tr>\n<tr><td><a href=\"README.txt\">README.txt</a></td></tr>\n",
        );
        for n in names {
            html.push_str(&format!("<tr><td><a href=\"{n}\">{n}</a></td><td>2026-12-03 14:00</td></tr>\n"));
        }
        html.push_str("</table></body></html>\n");
        return reply(200, html.into_bytes());
    }
    let Some(name) = path.strip_prefix("/rrc00/") else { return reply(404, b"not found\n".to_vec()) };
    match std::fs::read(dir.join(name)) {
        Ok(bytes) if name == TRUNCATED => {
            let full = bytes.len();
            let mut resp = reply(200, bytes[..full / 2].to_vec());
            resp.headers_mut().insert(hyper::header::CONTENT_LENGTH, full.into());
            resp
        }
        Ok(bytes) => reply(200, bytes),
        Err(_) => reply(404, b"not found\n".to_vec()),
    }
}

/// Polls `cond` every 20 ms until it holds or `within` passes.
async fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_scripted_story_arrives_through_an_http_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("rrc00");
    std::fs::create_dir(&dir).expect("mkdir");
    let t0 = 1_764_770_400.0;
    let expected = owned(&write_story(&dir, t0));
    // Listed between the story's first and second file: cut short, and
    // missing. Its update (an unrelated prefix) must never be read.
    common::mrt::write(
        &dir.join(TRUNCATED),
        &common::mrt::encode(&[common::mrt::update(t0 + 39.0, 9, "198.51.100.0/24", Some(&[65009, 64999]))]),
    );
    let server = Server::start(dir.clone()).await;
    let index = server.url("/rrc00/");
    let config = story_config(tmp.path(), &format!("source = \"mrt:{index}\"\npoll_interval = \"1h\""));
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let mut runtime =
        BgpRuntime::start(config.bgp.clone(), &ProbeId("pop-test".into()), "Test", tx, &cancel).expect("starts");

    let messages = receive_story(&mut rx, &expected, Duration::from_secs(60)).await;
    let hijack = by_event(&messages, "origin_change").first().copied();
    assert_eq!(hijack.expect("hijack").collector, "rrc00", "collector from the URL's path");

    // The story's truncated record counted as in the directory case; the
    // cut-short download never parsed (20 updates, as from the directory).
    let status = runtime.feed_status();
    assert_eq!(status[0].name, format!("mrt {index}"));
    assert_eq!((status[0].malformed, status[0].messages, status[0].live), (1, 20, true));
    // One listing (poll_interval 1h), each listed MRT file fetched once in
    // it, README and sort links never.
    let counts = server.requests();
    let want: BTreeMap<String, usize> = [
        "/rrc00/",
        "/rrc00/updates.20261203.1400.gz",
        "/rrc00/updates.20261203.1402.gz",
        "/rrc00/updates.20261203.1403.gz",
        "/rrc00/updates.20261203.1405.bz2",
        "/rrc00/updates.20261203.1410",
        "/rrc00/updates.20261203.1415.gz",
    ]
    .into_iter()
    .map(|p| (p.to_owned(), 1))
    .collect();
    assert_eq!(counts, want);
    runtime.stop();
}

#[tokio::test]
async fn a_single_file_url_is_read_once_and_the_feed_ends() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("rrc00");
    std::fs::create_dir(&dir).expect("mkdir");
    let expected = owned(&write_story(&dir, 1_764_770_400.0));
    let server = Server::start(dir.clone()).await;
    let config = story_config(
        tmp.path(),
        &format!("source = \"mrt:{}\"\npoll_interval = \"1h\"", server.url("/rrc00/updates.20261203.1400.gz")),
    );
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let mut runtime = BgpRuntime::start(config.bgp, &ProbeId("p".into()), "l", tx, &cancel).expect("starts");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // The first file's events (worked out by hand in write_story) are the
    // story's first ten; then the source ends and the channel closes.
    while let Some(msg) = tokio::time::timeout_at(deadline, rx.recv()).await.expect("in time") {
        got.push(summary(&msg));
    }
    assert_eq!(got, expected[..10]);
    let status = runtime.feed_status();
    assert_eq!((status[0].messages, status[0].malformed, status[0].live), (9, 0, false));
    assert_eq!(server.requests().into_iter().collect::<Vec<_>>(), [("/rrc00/updates.20261203.1400.gz".to_owned(), 1)]);
}

#[tokio::test]
async fn a_404_a_truncated_download_and_a_lost_index_are_counted_and_the_feed_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("rrc00");
    std::fs::create_dir(&dir).expect("mkdir");
    let good =
        |t: f64, peer: u8| common::mrt::encode(&[common::mrt::update(t, peer, "192.0.2.0/24", Some(&[65001, 64500]))]);
    common::mrt::write(&dir.join("updates.20261203.1400.gz"), &good(1.0e9, 1));
    common::mrt::write(&dir.join(TRUNCATED), &good(1.0e9 + 1.0, 2));
    let server = Server::start(dir.clone()).await;
    let (tx, mut rx) = mpsc::channel::<FeedElem>(64);
    let health = Arc::new(FeedHealth::new("mrt test"));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(mrt::run(
        server.url("/rrc00/"),
        Duration::from_millis(50),
        tx,
        Arc::clone(&health),
        cancel.clone(),
    ));

    let peer = |fe: &FeedElem| fe.elem.peer_ip.to_string();
    let first = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("in time").expect("elem");
    assert_eq!((peer(&first), first.collector.as_str()), ("10.0.0.1".to_owned(), "rrc00"));
    // Two failing files, three attempts each, then skipped.
    let errors = || health.fetch_errors.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(30), "six fetch errors", || errors() >= 6).await;
    let listings = server.requests()["/rrc00/"];
    wait_until(Duration::from_secs(30), "three more listings", || server.requests()["/rrc00/"] >= listings + 3).await;
    assert_eq!(errors(), 6, "no attempt after the third");
    let counts = server.requests();
    assert_eq!(
        (
            counts["/rrc00/updates.20261203.1400.gz"],
            counts[&format!("/rrc00/{TRUNCATED}")],
            counts[&format!("/rrc00/{MISSING}")]
        ),
        (1, 3, 3)
    );
    assert!(health.connected.load(Ordering::Relaxed), "index reachable: connected");
    assert!(rx.try_recv().is_err(), "the truncated file was never parsed");

    // The index fails: counted, feed down; back: up, and a new file is read.
    server.index_status.store(503, Ordering::Relaxed);
    wait_until(Duration::from_secs(30), "feed down", || !health.connected.load(Ordering::Relaxed)).await;
    assert!(errors() > 6);
    common::mrt::write(&dir.join("updates.20261203.1420.gz"), &good(1.0e9 + 2.0, 3));
    server.index_status.store(200, Ordering::Relaxed);
    let next = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("in time").expect("elem");
    assert_eq!(peer(&next), "10.0.0.3");
    assert!(health.connected.load(Ordering::Relaxed));
    assert_eq!(health.messages.load(Ordering::Relaxed), 2);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(30), task).await.expect("ends on shutdown").expect("no panic");
}
