//! netprobe-replay against the real stack: a simulated day of messages
//! (message timestamps and Kafka CreateTime alike) across every partition,
//! replayed with each filter into fresh buckets and compared point by point
//! with what the data set says; dry run, line-protocol output, DLQ
//! re-drive, bad input, InfluxDB failing mid-replay, progress output.

mod common;

use std::time::{Duration, Instant};

use common::*;
use netprobe_wire::{Body, Message, ProbeType};

/// [T1, T2): slots 36..72 of the day; a message sits exactly on each.
fn range(f: &Fixture) -> (String, String) {
    (rfc3339(f.slot(36)), rfc3339(f.slot(72)))
}

fn in_range(f: &Fixture, m: &Message) -> bool {
    m.timestamp.0 >= f.slot(36) && m.timestamp.0 < f.slot(72)
}

fn target(m: &Message) -> Option<&str> {
    match &m.body {
        Body::Icmp(b) => Some(&b.target),
        Body::Http(b) => Some(&b.url),
        Body::Dns(b) => Some(&b.resolver),
        _ => None,
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_alone_and_combined_writes_exactly_the_range_and_a_second_replay_adds_nothing() {
    let f = fixture();
    let (t1, t2) = range(f);
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b] = &f.probes;
    type Pick = Box<dyn Fn(&Message) -> bool>;
    let cases: Vec<(&str, Vec<String>, Pick)> = vec![
        ("none", vec![], Box::new(|_| true)),
        ("probe", args(&["--probe-id", a]), Box::new(move |m| m.probe_id.0 == *a)),
        ("type", args(&["--metric-type", "icmp", "--metric-type", "http"]), {
            Box::new(|m| matches!(m.probe_type(), ProbeType::Icmp | ProbeType::Http))
        }),
        ("target", args(&["--target", TARGETS[1], "--target", RESOLVER]), {
            Box::new(|m| matches!(target(m), Some(t) if t == TARGETS[1] || t == RESOLVER))
        }),
        ("combined", args(&["--probe-id", b, "--metric-type", "icmp", "--target", TARGETS[0]]), {
            let b = b.clone();
            Box::new(move |m| m.probe_id.0 == b && m.probe_type() == ProbeType::Icmp && target(m) == Some(TARGETS[0]))
        }),
    ];
    for (name, filter_args, pick) in cases {
        let bucket = fresh_bucket(name).await;
        let config = config_file(dir.path(), &f.prefix, Some(&env("NETPROBE_INFLUX_URL")), &bucket, "");
        let mut argv = args(&["--start", &t1, "--end", &t2]);
        argv.extend(filter_args.clone());
        let out = replay(&config, &argv).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        let want = expected(f.messages.iter().filter(|m| in_range(f, m) && pick(m)));
        assert!(!want.is_empty(), "{name}: the case selects something");
        let got = points_in(&bucket).await;
        assert_eq!(got.len(), want.len(), "{name}: point count");
        assert_eq!(got, want, "{name}: exactly the expected points");
        let c = summary_counts(&err);
        assert_eq!(c["matched"] as usize, want.len(), "{name}: {err}");
        assert_eq!(c["written"] as usize, want.len(), "{name}: {err}");
        // Two malformed payloads lie in [T1, T2) by Kafka time (slots 40, 50).
        assert_eq!(c["malformed"], 2.0, "{name}: {err}");
        if name == "none" {
            // The boundaries, checked on their own.
            let t1_ns = f.slot(36).timestamp_nanos_opt().expect("ns");
            let t2_ns = f.slot(72).timestamp_nanos_opt().expect("ns");
            assert!(got.iter().any(|p| p.3 == t1_ns), "a message at T1 is included");
            assert!(!got.iter().any(|p| p.3 >= t2_ns), "a message at T2 is excluded");
            // A second replay of the same range adds nothing.
            let out = replay(&config, &argv).await;
            assert_eq!(out.status.code(), Some(0), "second replay: {}", stderr(&out));
            assert_eq!(points_in(&bucket).await, want, "the second replay overwrote, not added");
            assert_eq!(summary_counts(&stderr(&out))["written"] as usize, want.len());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing_with_the_same_counts_and_lp_output_equals_a_direct_replay() {
    let f = fixture();
    let (t1, t2) = range(f);
    let dir = tempfile::tempdir().expect("tempdir");
    let direct = fresh_bucket("direct").await;
    let config = config_file(dir.path(), &f.prefix, Some(&env("NETPROBE_INFLUX_URL")), &direct, "");
    let argv = args(&["--start", &t1, "--end", &t2]);
    let out = replay(&config, &argv).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let real = summary_counts(&stderr(&out));

    let dry = fresh_bucket("dry").await;
    let mut dry_argv = argv.clone();
    dry_argv.extend(args(&["--dry-run", "--bucket", &dry]));
    let out = replay(&config, &dry_argv).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let counted = summary_counts(&stderr(&out));
    for key in ["scanned", "matched", "matched_points", "malformed"] {
        assert_eq!(counted[key], real[key], "{key}: dry run counts like the real replay");
    }
    assert_eq!(counted["written"], 0.0);
    assert!(points_in(&dry).await.is_empty(), "dry run wrote nothing");

    // --output lp to a file, and to stdout, posted to InfluxDB's write API.
    let lp_path = dir.path().join("out.lp");
    let mut lp_argv = argv.clone();
    lp_argv.extend(args(&["--output", "lp", "--out", lp_path.to_str().expect("path")]));
    let out = replay(&config, &lp_argv).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = std::fs::read(&lp_path).expect("lp file");
    let mut stdout_argv = argv.clone();
    stdout_argv.extend(args(&["--output", "lp"]));
    let out = replay(&config, &stdout_argv).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut sorted_file: Vec<&[u8]> = lines.split(|&b| b == b'\n').collect();
    let mut sorted_stdout: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
    sorted_file.sort();
    sorted_stdout.sort();
    assert_eq!(sorted_file, sorted_stdout, "stdout carries the same lines as --out");
    let from_lp = fresh_bucket("lp").await;
    write_lp(&from_lp, lines).await;
    let (a, b) = (rows_in(&direct).await, rows_in(&from_lp).await);
    assert!(!a.is_empty());
    assert_eq!(a, b, "line protocol posted by hand = direct replay, field by field");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_redrive_writes_what_passes_now_and_lists_what_still_fails() {
    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = unique("replay-dlq");
    let now = chrono::Utc::now();
    let ts = netprobe_wire::Timestamp(now - chrono::Duration::minutes(30));
    // Refused under an old rule (say, a target format ingest no longer rejects).
    let good = Message::new(netprobe_wire::ProbeId(probe.clone()), "Test, XX", ts, Body::Icmp(icmp("192.0.2.9", 7)));
    let icmp_topic = netprobe_wire::Topic::Icmp.name(&f.prefix);
    produce_dlq(
        &f.prefix,
        (&icmp_topic, 2, 17),
        "invalid_field",
        "invalid field `target`: old rule",
        &good.encode().expect("encode"),
    )
    .await;
    produce_dlq(&f.prefix, (&icmp_topic, 3, 18), "syntax", "expected value at line 1", b"{not json").await;
    let bucket = fresh_bucket("dlq").await;
    let config = config_file(dir.path(), &f.prefix, Some(&env("NETPROBE_INFLUX_URL")), &bucket, "");
    let out = replay(&config, &args(&["--topics", "ingest.dlq", "--start", "2h"])).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(points_in(&bucket).await, expected([&good]), "the now-valid message is written, nothing else");
    let c = summary_counts(&err);
    assert_eq!((c["written"], c["malformed"]), (1.0, 1.0), "{err}");
    let listed = err.lines().find(|l| l.trim_start().starts_with("malformed:")).unwrap_or_else(|| panic!("{err}"));
    assert!(
        listed.contains(&format!("dead-lettered from {icmp_topic}[3]@18")) && listed.contains("syntax"),
        "still-bad message listed with origin and reason: {listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_one_line_error_and_exit_2() {
    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = env("NETPROBE_INFLUX_URL");
    let good = config_file(dir.path(), &f.prefix, Some(&url), "unused", "");
    let wrong_prefix = config_file(dir.path(), "no-such-prefix.", Some(&url), "unused", "");
    let missing_key = dir.path().join("missing.toml");
    let text = std::fs::read_to_string(&good).expect("config");
    std::fs::write(&missing_key, text.lines().filter(|l| !l.starts_with("brokers")).collect::<Vec<_>>().join("\n"))
        .expect("write");
    let no_influx = config_file(dir.path(), &f.prefix, None, "", "");
    let cases: Vec<(&std::path::Path, Vec<String>, &str)> = vec![
        (&good, args(&["--start", "last tuesday"]), "--start \"last tuesday\""),
        (&good, args(&["--start", "2h", "--topics", "icmp.metrics,tcp.metrics"]), "unknown topic \"tcp.metrics\""),
        (&good, args(&["--start", "1h", "--end", "2h"]), "is not after --start"),
        (&missing_key, args(&["--start", "1h"]), "missing field `brokers`"),
        (&no_influx, args(&["--start", "1h"]), "missing table [influx]"),
        (
            &wrong_prefix,
            args(&["--start", "1h", "--topics", "dns.metrics"]),
            "no-such-prefix.dns.metrics does not exist",
        ),
    ];
    for (config, argv, want) in cases {
        let out = replay(config, &argv).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("netprobe-replay:")).collect();
        assert_eq!(lines.len(), 1, "{argv:?}: one error line: {err}");
        assert!(lines[0].contains(want), "{argv:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_failing_mid_replay_exits_1_with_a_resume_hint_that_completes_the_range() {
    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = fresh_bucket("outage").await;
    // InfluxDB behind a server of the test's own that passes 5 writes on and
    // then answers 503 to everything, as a stopped InfluxDB behind a proxy would.
    let gate = Gate::start(env("NETPROBE_INFLUX_URL"), 5).await;
    let extra = "[replay]\nbatch_max_lines = 40\nwrites_in_flight = 1\nretry_initial_backoff = \"100ms\"\n\
                 retry_max_backoff = \"500ms\"\nretry_give_up_after = \"2s\"\n";
    let config = config_file(dir.path(), &f.prefix, Some(&gate.url), &bucket, extra);
    let (start, end) = (rfc3339(f.slot(0)), rfc3339(f.slot(SLOTS)));
    let out = replay(&config, &args(&["--start", &start, "--end", &end])).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(gate.passed() == 5 && gate.refused() > 0, "the outage happened mid-replay: {err}");
    let hint =
        err.lines().find_map(|l| l.trim().strip_prefix("resume with: --start ")).unwrap_or_else(|| panic!("{err}"));
    let mut words = hint.split_whitespace();
    let resume = words.next().expect("time").to_owned();
    assert_eq!((words.next(), words.next()), (Some("--end"), Some(end.as_str())), "{hint}");
    let written_before = points_in(&bucket).await;
    let all = expected(f.messages.iter());
    assert!(!written_before.is_empty() && written_before.len() < all.len(), "part-way: {}", written_before.len());
    // Resume straight at InfluxDB, as the hint says.
    let direct = config_file(dir.path(), &f.prefix, Some(&env("NETPROBE_INFLUX_URL")), &bucket, "");
    let out = replay(&direct, &args(&["--start", &resume, "--end", &end])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(points_in(&bucket).await, all, "the resumed replay completed the range");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_a_bar_in_a_terminal_and_log_lines_otherwise_and_max_rate_paces() {
    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_file(dir.path(), &f.prefix, Some(&env("NETPROBE_INFLUX_URL")), "unused", "");
    let (t1, t2) = range(f);
    // 36 slots x 2 icmp targets x 2 probes = 144 matches at 24/s: >= 6 s.
    let matches = 144.0;
    let rate = 24.0;
    let argv = args(&["--start", &t1, "--end", &t2, "--metric-type", "icmp", "--dry-run", "--max-rate", "24"]);

    // Without a terminal: plain lines every 5 s, no escape sequences.
    let started = Instant::now();
    let out = replay(&config, &argv).await;
    let elapsed = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(summary_counts(&err)["matched"], matches, "{err}");
    assert!(elapsed >= Duration::from_secs_f64((matches - 1.0) / rate), "--max-rate paces: {elapsed:?}");
    let progress: Vec<&str> = err.lines().filter(|l| l.contains("progress") && l.contains("scanned=")).collect();
    assert!(!progress.is_empty() && progress[0].contains("eta_s="), "a progress line: {err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\r'), "no terminal control: {err:?}");

    // In a pseudo-terminal (util-linux `script`): the bar, redrawn in place.
    let mut cmdline = format!("{} --config {}", bin(), config.display());
    for a in &argv {
        cmdline.push_str(&format!(" '{a}'"));
    }
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-q", "-e", "-c", &cmdline, "/dev/null"])
            .env("TERM", "xterm")
            .env("RUST_LOG", "info")
            .output()
            .expect("run script(1)")
    })
    .await
    .expect("join");
    let tty = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{tty}");
    assert!(tty.contains("scanned (") && tty.contains("ETA"), "bar drawn: {tty:?}");
    assert!(tty.contains("matched ") && tty.contains("partitions open"), "second line: {tty:?}");
    assert!(tty.contains("\u{1b}["), "redrawn with cursor control: {tty:?}");
    assert!(!tty.lines().any(|l| l.contains(" progress ") && l.contains("scanned=")), "no plain lines: {tty:?}");
    assert!(tty.contains("replay done"), "summary: {tty:?}");
}

/// An HTTP server in front of InfluxDB that forwards the first `pass`
/// requests and answers 503 afterwards.
struct Gate {
    url: String,
    passed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Gate {
    async fn start(upstream: String, pass: usize) -> Gate {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        use http_body_util::{BodyExt, Full};
        use hyper::body::Bytes;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let passed = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let (p, r) = (passed.clone(), refused.clone());
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (p, r, client, upstream) = (p.clone(), r.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (p, r, client, upstream) = (p.clone(), r.clone(), client.clone(), upstream.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let admitted =
                                p.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < pass).then_some(n + 1));
                            if admitted.is_err() {
                                r.fetch_add(1, Ordering::SeqCst);
                                return Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(503)
                                        .body(Full::new(Bytes::from_static(b"{\"message\":\"gate closed\"}")))
                                        .expect("response"),
                                );
                            }
                            let uri = format!("{upstream}{}", parts.uri.path_and_query().map_or("", |x| x.as_str()));
                            let mut fwd = client.request(parts.method.clone(), uri).body(body);
                            for (k, v) in &parts.headers {
                                if k != hyper::header::HOST && k != hyper::header::CONTENT_LENGTH {
                                    fwd = fwd.header(k, v);
                                }
                            }
                            let resp = fwd.send().await.expect("upstream InfluxDB");
                            let status = resp.status().as_u16();
                            let bytes = resp.bytes().await.unwrap_or_default();
                            Ok(hyper::Response::builder().status(status).body(Full::new(bytes)).expect("response"))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Gate { url, passed, refused }
    }

    fn passed(&self) -> usize {
        self.passed.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }
}
