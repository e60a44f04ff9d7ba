//! Spool throughput on this machine's disk (a measurement, not a test):
//! 200,000 records of 400 bytes pushed with a sync every 1000, drained with
//! peek/ack in batches of 1000, then a recovery scan of a full spool.
//! `cargo run --release -p netprobe-agent --example spool_throughput`

use std::time::Instant;

use netprobe_agent::spool::{Record, Spool, DEFAULT_MAX_BYTES};

const N: usize = 200_000;
const PAYLOAD_BYTES: usize = 400;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let record = Record {
        topic: "icmp.metrics".into(),
        key: "pop-fra-01/192.0.2.10".into(),
        payload: vec![b'x'; PAYLOAD_BYTES],
    };
    let mut spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES)?;
    let rate = |start: Instant| N as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for i in 0..N {
        spool.push(&record)?;
        if i % 1000 == 999 {
            spool.sync()?;
        }
    }
    println!("push + sync every 1000: {:.0} records/s", rate(start));
    let start = Instant::now();
    while !spool.is_empty() {
        let n = spool.peek(1000)?.len();
        spool.ack(n)?;
    }
    println!("peek + ack by 1000:     {:.0} records/s", rate(start));
    for _ in 0..N {
        spool.push(&record)?;
    }
    drop(spool);
    let start = Instant::now();
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES)?;
    println!("recovery scan of {} records ({} MiB): {:?}", spool.len(), spool.bytes() >> 20, start.elapsed());
    Ok(())
}
