//! The raw InfluxDB write ceiling for `scripts/bench ingest`: posts a file of
//! pre-rendered line protocol in batches of N lines (gzip, through the same
//! sink, with as many requests at once as netprobe-ingest's
//! `writes_in_flight`) and reports the time until InfluxDB accepted the last
//! batch.
//!
//! Usage: bench_raw_write LINES_FILE BUCKET BATCH_LINES IN_FLIGHT (InfluxDB
//! from `scripts/stack env`, token NETPROBE_INFLUX_TOKEN_FILE).

use std::sync::Arc;
use std::time::{Duration, Instant};

use netprobe_ingest::config::InfluxSettings;
use netprobe_ingest::retry::Action;
use netprobe_ingest::sink::InfluxSink;
use tokio::task::JoinSet;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (eval \"$(scripts/stack env)\")"))
}

/// Byte ranges of consecutive `batch_lines`-line batches of `text`.
fn batches(text: &[u8], batch_lines: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut lines) = (0, 0);
    for (i, _) in text.iter().enumerate().filter(|(_, &b)| b == b'\n') {
        lines += 1;
        if lines == batch_lines {
            out.push(start..i + 1);
            (start, lines) = (i + 1, 0);
        }
    }
    if start < text.len() {
        out.push(start..text.len());
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_raw_write LINES_FILE BUCKET BATCH_LINES IN_FLIGHT";
    let path = args.next().expect(usage);
    let bucket = args.next().expect(usage);
    let batch_lines: usize = args.next().and_then(|n| n.parse().ok()).expect(usage);
    let in_flight: usize = args.next().and_then(|n| n.parse().ok()).expect(usage);
    let settings = InfluxSettings {
        url: env("NETPROBE_INFLUX_URL"),
        org: env("NETPROBE_INFLUX_ORG"),
        bucket,
        token_file: None,
        token_credential: None,
    };
    let token = std::fs::read_to_string(env("NETPROBE_INFLUX_TOKEN_FILE")).expect("token");
    let sink = InfluxSink::new(&settings, token.trim(), Duration::from_secs(60)).expect("sink");
    let text = Arc::new(std::fs::read(&path).expect("lines file"));
    let ranges = batches(&text, batch_lines);
    let count = ranges.len();
    let started = Instant::now();
    let mut writes = JoinSet::new();
    for (n, range) in ranges.into_iter().enumerate() {
        if writes.len() == in_flight.max(1) {
            writes.join_next().await.expect("a write").expect("no panic");
        }
        let (sink, text) = (sink.clone(), text.clone());
        writes.spawn(async move {
            // What can pass (InfluxDB restarting, 5xx, 429, a timeout) is
            // retried like ingest does, for up to 2 minutes; a refusal is reported.
            let started = Instant::now();
            let mut backoff = Duration::from_millis(100);
            loop {
                let outcome = sink.write(&text[range.clone()]).await;
                match outcome.action {
                    Action::Done => break,
                    Action::Retry(after) if started.elapsed() < Duration::from_secs(120) => {
                        eprintln!("bench_raw_write: batch {n}: {outcome:?}; retrying");
                        tokio::time::sleep(after.unwrap_or(backoff)).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                    _ => {
                        eprintln!("bench_raw_write: batch {n} not written: {outcome:?}");
                        std::process::exit(1);
                    }
                }
            }
        });
    }
    while let Some(done) = writes.join_next().await {
        done.expect("no panic");
    }
    println!("{{\"batches\": {count}, \"write_s\": {:.3}}}", started.elapsed().as_secs_f64());
}
