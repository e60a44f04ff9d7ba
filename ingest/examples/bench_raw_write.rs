//! The raw InfluxDB write ceiling for `scripts/bench ingest`: posts a file of
//! pre-rendered line protocol in batches of N lines (gzip, one request at a
//! time, as netprobe-ingest writes) through the same sink, and reports the
//! time until InfluxDB accepted the last batch.
//!
//! Usage: bench_raw_write LINES_FILE BUCKET BATCH_LINES (InfluxDB from
//! `scripts/stack env`, token NETPROBE_INFLUX_TOKEN_FILE).

use std::time::{Duration, Instant};

use netprobe_ingest::config::InfluxSettings;
use netprobe_ingest::retry::Action;
use netprobe_ingest::sink::InfluxSink;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (eval \"$(scripts/stack env)\")"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_raw_write LINES_FILE BUCKET BATCH_LINES";
    let path = args.next().expect(usage);
    let bucket = args.next().expect(usage);
    let batch_lines: usize = args.next().and_then(|n| n.parse().ok()).expect(usage);
    let settings =
        InfluxSettings { url: env("NETPROBE_INFLUX_URL"), org: env("NETPROBE_INFLUX_ORG"), bucket, token_file: None };
    let token = std::fs::read_to_string(env("NETPROBE_INFLUX_TOKEN_FILE")).expect("token");
    let sink = InfluxSink::new(&settings, token.trim(), Duration::from_secs(60)).expect("sink");
    let text = std::fs::read(&path).expect("lines file");
    let started = Instant::now();
    let mut batches = 0;
    let mut start = 0;
    while start < text.len() {
        // The end of the batch_lines-th line from `start`.
        let mut end = start;
        for _ in 0..batch_lines {
            match text[end..].iter().position(|&b| b == b'\n') {
                Some(i) => end += i + 1,
                None => {
                    end = text.len();
                    break;
                }
            }
            if end >= text.len() {
                break;
            }
        }
        let outcome = sink.write(&text[start..end]).await;
        assert_eq!(outcome.action, Action::Done, "batch {batches} refused: {outcome:?}");
        batches += 1;
        start = end;
    }
    println!("{{\"batches\": {batches}, \"write_s\": {:.3}}}", started.elapsed().as_secs_f64());
}
