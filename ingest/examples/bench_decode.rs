//! The ingest loop's own work per message, in process and without Kafka:
//! `bench_produce`'s mix encoded as agents encode it, then decoded
//! (`netprobe_wire::decode`) and rendered to line protocol
//! (`render_message`) into one reused buffer, as the loop does for each
//! message it takes. Prints CPU ns per message (this thread's, from
//! `/proc/thread-self/schedstat`, so other work on the machine does not
//! count) for decode alone, for decode plus render, and for
//! `render_payload` (what the loop calls: the JSON -> line protocol
//! transcoder, decode plus render for what it declines), the best of
//! ROUNDS passes.
//!
//! Usage: bench_decode [MESSAGES (default 200000)] [ROUNDS (default 7)]

use std::hint::black_box;

use netprobe_ingest::points::{render_message, render_payload};

#[path = "common/mix.rs"]
mod mix;

/// CPU time of this thread so far, seconds (Linux schedstat, ns).
fn thread_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("/proc/thread-self/schedstat");
    let ns: u64 = stat.split_whitespace().next().and_then(|n| n.parse().ok()).expect("schedstat: CPU ns first");
    ns as f64 / 1e9
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().map_or(200_000, |c| c.parse().expect("MESSAGES: a number"));
    let rounds: u32 = args.next().map_or(7, |c| c.parse().expect("ROUNDS: a number"));
    let payloads: Vec<Vec<u8>> =
        (0..count).map(|i| mix::message(i, mix::BASE_NS + i as i64 * 1_000).encode().expect("encode")).collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(8 << 20);
    let (mut decode_best, mut both_best, mut payload_best) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let started = thread_cpu_s();
        for p in &payloads {
            black_box(netprobe_wire::decode(black_box(p)).expect("decodes"));
        }
        decode_best = decode_best.min(thread_cpu_s() - started);
        let started = thread_cpu_s();
        let mut lines = 0;
        for p in &payloads {
            let msg = netprobe_wire::decode(black_box(p)).expect("decodes");
            lines += render_message(&msg, &mut out).expect("renders");
            if out.len() > 8 << 20 {
                out.clear();
            }
        }
        black_box(lines);
        both_best = both_best.min(thread_cpu_s() - started);
        let started = thread_cpu_s();
        for p in &payloads {
            lines += render_payload(black_box(p), &mut out).expect("renders");
            if out.len() > 8 << 20 {
                out.clear();
            }
        }
        black_box(lines);
        payload_best = payload_best.min(thread_cpu_s() - started);
    }
    let per = |s: f64| s * 1e9 / count as f64;
    println!(
        "{{\"messages\": {count}, \"payload_bytes_avg\": {}, \"decode_ns_per_msg\": {:.0}, \"decode_render_ns_per_msg\": {:.0}, \"render_ns_per_msg\": {:.0}, \"render_payload_ns_per_msg\": {:.0}}}",
        bytes / count as usize,
        per(decode_best),
        per(both_best),
        per(both_best - decode_best),
        per(payload_best)
    );
}
