//! The on-disk spool against real files: order, reopen, torn tails, corruption, the byte bound,
//! a real `kill -9` of a writer process, and a random sequence checked against a model.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netprobe_agent::spool::{Record, Spool, DEFAULT_MAX_BYTES};

const TOPIC: &str = "icmp.metrics";
const PAYLOAD_BYTES: usize = 400;
/// Encoded size of `record(i)`: header 8, topic 2 + 12, key 2 + 19, payload 400.
const RECORD_BYTES: u64 = 8 + 2 + 12 + 2 + 19 + PAYLOAD_BYTES as u64;

/// A 400-byte JSON measurement numbered `i`.
fn record(i: u64) -> Record {
    let head = format!("{{\"seq\":{i:010},\"pad\":\"");
    let pad = "x".repeat(PAYLOAD_BYTES - head.len() - 2);
    Record { topic: TOPIC.into(), key: format!("pop-fra-01/{i:08}"), payload: format!("{head}{pad}\"}}").into() }
}

/// The number in a record made by [`record`] or [`sized_record`].
fn seq(r: &Record) -> u64 {
    let text = std::str::from_utf8(&r.payload).expect("utf-8 payload");
    text[7..17].parse().expect("sequence number")
}

/// A record numbered `i` whose payload length depends on `i` (10 to 609 bytes).
fn sized_record(i: u64) -> Record {
    let head = format!("{{\"seq\":{i:010}");
    let pad = "y".repeat((i * 7919 % 600) as usize);
    Record { topic: "dns.metrics".into(), key: format!("k{i}"), payload: format!("{head}{pad}").into() }
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(seq).collect()
}

fn push_range(spool: &mut Spool, range: std::ops::Range<u64>) {
    for i in range {
        spool.push(&record(i)).expect("push");
    }
}

/// Everything waiting, oldest first (without acknowledging).
fn all(spool: &mut Spool) -> Vec<u64> {
    seqs(&spool.peek(usize::MAX).expect("peek"))
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn disk_bytes(dir: &Path) -> u64 {
    segment_files(dir).iter().map(|p| fs::metadata(p).expect("metadata").len()).sum()
}

fn last_segment(dir: &Path) -> PathBuf {
    segment_files(dir).pop().expect("a segment file")
}

#[test]
fn spool_is_send_and_debug() {
    fn check<T: Send + std::fmt::Debug>() {}
    check::<Spool>();
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES).expect("open");
    assert!(format!("{spool:?}").contains("len: 0"));
}

#[test]
fn push_then_peek_and_ack_in_chunks_keeps_order_and_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 16 * 1024).expect("open");
    assert!(spool.is_empty());
    push_range(&mut spool, 0..1000);
    assert_eq!((spool.len(), spool.bytes()), (1000, 1000 * RECORD_BYTES));
    spool.sync().expect("sync");
    assert_eq!(disk_bytes(dir.path()), spool.bytes());
    assert!(segment_files(dir.path()).len() > 20, "16 KiB segments roll");

    // Peeking twice without an ack returns the same records.
    assert_eq!(seqs(&spool.peek(5).expect("peek")), vec![0, 1, 2, 3, 4]);
    assert_eq!(seqs(&spool.peek(5).expect("peek")), vec![0, 1, 2, 3, 4]);

    let mut next = 0;
    while !spool.is_empty() {
        let batch = seqs(&spool.peek(97).expect("peek"));
        assert_eq!(batch, (next..(next + 97).min(1000)).collect::<Vec<_>>());
        // Acknowledge the batch in two parts.
        spool.ack(40).expect("ack");
        spool.ack(batch.len() - 40.min(batch.len())).expect("ack");
        next += batch.len() as u64;
        assert_eq!(spool.len(), 1000 - next);
        assert_eq!(spool.bytes(), disk_bytes(dir.path()), "acked segments are deleted");
    }
    assert_eq!(next, 1000);
    assert_eq!(segment_files(dir.path()).len(), 1, "only the active segment remains");
    assert!(spool.bytes() <= 16 * 1024);
    assert_eq!(spool.dropped(), 0);
    assert!(spool.peek(10).expect("peek").is_empty());
}

#[test]
fn ack_without_peek_and_beyond_the_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 4096).expect("open");
    push_range(&mut spool, 0..50);
    spool.ack(23).expect("ack");
    assert_eq!(all(&mut spool), (23..50).collect::<Vec<_>>());
    spool.ack(1000).expect("ack");
    assert!(spool.is_empty());
    push_range(&mut spool, 50..55);
    assert_eq!(all(&mut spool), (50..55).collect::<Vec<_>>());
}

#[test]
fn reopen_after_sync_keeps_unacknowledged_records_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 8192).expect("open");
    push_range(&mut spool, 0..300);
    spool.sync().expect("sync");
    spool.peek(120).expect("peek");
    spool.ack(120).expect("ack");
    drop(spool);
    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 8192).expect("reopen");
    assert_eq!(spool.len(), 180);
    assert_eq!(spool.dropped(), 0);
    assert_eq!(all(&mut spool), (120..300).collect::<Vec<_>>());
    assert_eq!(spool.bytes(), disk_bytes(dir.path()));
}

#[test]
fn reopen_after_drop_without_sync_keeps_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES).expect("open");
    push_range(&mut spool, 0..100);
    spool.ack(10).expect("ack");
    drop(spool);
    let mut spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES).expect("reopen");
    assert_eq!(all(&mut spool), (10..100).collect::<Vec<_>>());
}

#[test]
fn crash_without_flush_keeps_every_synced_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES).expect("open");
    push_range(&mut spool, 0..500);
    spool.sync().expect("sync");
    push_range(&mut spool, 500..510);
    // No Drop: the write buffer is lost as in a crash.
    std::mem::forget(spool);
    let mut spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES).expect("reopen");
    assert_eq!(all(&mut spool), (0..500).collect::<Vec<_>>());
}

/// Writes 50 records and syncs, damages the last segment, and checks that open keeps the
/// `expect_kept` first records, counts one drop, and that records pushed after the recovery
/// survive another reopen.
fn torn_tail_case(damage: impl FnOnce(&Path), expect_kept: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 8192).expect("open");
    push_range(&mut spool, 0..50);
    spool.sync().expect("sync");
    drop(spool);
    damage(&last_segment(dir.path()));

    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 8192).expect("open after damage");
    assert_eq!(all(&mut spool), (0..expect_kept).collect::<Vec<_>>());
    assert_eq!(spool.dropped(), 1);
    push_range(&mut spool, 100..120);
    drop(spool);

    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 8192).expect("second reopen");
    assert_eq!(spool.dropped(), 0, "the tail was truncated, nothing left to skip");
    let expected: Vec<u64> = (0..expect_kept).chain(100..120).collect();
    assert_eq!(all(&mut spool), expected);
    assert_eq!(spool.bytes(), disk_bytes(dir.path()));
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new().append(true).open(path).expect("open segment").write_all(bytes).expect("append");
}

#[test]
fn torn_tail_with_a_partial_record_is_truncated() {
    torn_tail_case(
        |path| {
            let data = fs::read(path).expect("read");
            append(path, &data[..RECORD_BYTES as usize / 2]);
        },
        50,
    );
}

#[test]
fn torn_tail_with_random_garbage_is_truncated() {
    let mut rng = fastrand::Rng::with_seed(11);
    let garbage: Vec<u8> = (0..10_000).map(|_| rng.u8(..)).collect();
    torn_tail_case(|path| append(path, &garbage), 50);
}

#[test]
fn torn_tail_with_zeroes_is_truncated() {
    torn_tail_case(|path| append(path, &[0; 8192]), 50);
}

#[test]
fn file_truncated_in_the_middle_of_the_last_record_loses_only_that_record() {
    torn_tail_case(
        |path| {
            let len = fs::metadata(path).expect("metadata").len();
            OpenOptions::new().write(true).open(path).expect("open").set_len(len - 100).expect("truncate");
        },
        49,
    );
}

/// Writes 40 records in 4 KiB segments (9 per segment), damages record `victim` with `damage`
/// (given the segment file and the record's offset in it), and checks only that record is lost.
fn corrupt_record_case(victim: u64, damage: impl FnOnce(&Path, u64)) {
    let per_segment = 4096 / RECORD_BYTES;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 4096).expect("open");
    push_range(&mut spool, 0..40);
    drop(spool);
    let files = segment_files(dir.path());
    let file = &files[(victim / per_segment) as usize];
    damage(file, (victim % per_segment) * RECORD_BYTES);

    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 4096).expect("open after damage");
    let expected: Vec<u64> = (0..40).filter(|&i| i != victim).collect();
    assert_eq!(spool.len(), 39);
    assert_eq!(spool.dropped(), 1);
    assert_eq!(all(&mut spool), expected);
    // Acknowledging across the skipped record works and survives a reopen.
    spool.ack((victim + 2) as usize).expect("ack");
    push_range(&mut spool, 40..42);
    drop(spool);
    let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, 4096).expect("reopen");
    let expected: Vec<u64> = expected.into_iter().skip(victim as usize + 2).chain(40..42).collect();
    assert_eq!(all(&mut spool), expected);
}

fn flip_payload_byte(path: &Path, offset: u64) {
    let mut data = fs::read(path).expect("read");
    data[(offset + RECORD_BYTES - 10) as usize] ^= 0x20;
    fs::write(path, data).expect("write");
}

fn break_length(path: &Path, offset: u64) {
    let mut data = fs::read(path).expect("read");
    data[offset as usize..offset as usize + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    fs::write(path, data).expect("write");
}

#[test]
fn crc_mismatch_in_the_middle_of_a_full_segment_skips_only_that_record() {
    corrupt_record_case(13, flip_payload_byte);
}

#[test]
fn crc_mismatch_in_the_middle_of_the_last_segment_skips_only_that_record() {
    corrupt_record_case(38, flip_payload_byte);
}

#[test]
fn corrupt_length_in_the_middle_of_a_segment_skips_only_that_record() {
    corrupt_record_case(20, break_length);
}

#[test]
fn corrupt_cursor_resends_from_the_oldest_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES).expect("open");
    push_range(&mut spool, 0..10);
    spool.ack(4).expect("ack");
    drop(spool);
    fs::write(dir.path().join("cursor"), b"garbage").expect("write cursor");
    let mut spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES).expect("reopen");
    assert_eq!(all(&mut spool), (0..10).collect::<Vec<_>>(), "duplicates rather than loss");
}

#[test]
fn bound_drops_the_oldest_and_counts_them_exactly() {
    let (max, segment) = (32 * 1024, 4096);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open_with(dir.path(), max, segment).expect("open");
    push_range(&mut spool, 0..20);
    spool.peek(5).expect("peek");
    spool.ack(5).expect("ack");
    for i in 20..1000 {
        spool.push(&record(i)).expect("push");
        assert!(spool.bytes() <= max + segment, "bytes {} over bound + one segment", spool.bytes());
    }
    let kept = all(&mut spool);
    assert_eq!(spool.len(), kept.len() as u64);
    assert_eq!(spool.dropped() + spool.len() + 5, 1000, "every record is acked, dropped or kept");
    assert_eq!(kept, (1000 - spool.len()..1000).collect::<Vec<_>>(), "the newest are all kept");
    assert!(spool.bytes() > max - segment, "the bound is used");
    spool.sync().expect("sync");
    assert_eq!(spool.bytes(), disk_bytes(dir.path()));
    let (len, dropped) = (spool.len(), spool.dropped());
    drop(spool);

    let mut spool = Spool::open_with(dir.path(), max, segment).expect("reopen");
    assert_eq!((spool.len(), spool.dropped()), (len, 0));
    assert_eq!(all(&mut spool), kept);
    assert!(dropped > 900);
}

#[test]
fn ack_after_the_bound_dropped_peeked_records_removes_only_sent_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open_with(dir.path(), 32 * 1024, 4096).expect("open");
    let per_segment = 4096 / RECORD_BYTES;
    push_range(&mut spool, 0..20);
    assert_eq!(seqs(&spool.peek(10).expect("peek")), (0..10).collect::<Vec<_>>());
    // While records 0..10 are "in flight", the bound drops the oldest segment (0..9).
    let mut next = 20;
    while spool.dropped() == 0 {
        spool.push(&record(next)).expect("push");
        next += 1;
    }
    assert_eq!(spool.dropped(), per_segment);
    spool.ack(10).expect("ack");
    // Only record 9 was both sent and still there.
    assert_eq!(seqs(&spool.peek(1).expect("peek")), vec![10]);
    assert_eq!(spool.len(), next - 10);
}

const WRITER_DIR_ENV: &str = "NETPROBE_SPOOL_TEST_WRITER_DIR";
const WRITER_NEXT_ENV: &str = "NETPROBE_SPOOL_TEST_WRITER_NEXT";
const WRITER_SEGMENT_BYTES: u64 = 64 * 1024;
/// Records each writer round makes durable before it is killed.
const ROUND_RECORDS: u64 = 4000;

/// Child mode of the kill test: pushes records numbered from `next` (or after the last waiting
/// one), syncs in random batches, acknowledges up to half of what waits now and then, and at
/// random moments (mid-batch too) prints `state <durable> <acked>`: every record below
/// `durable` was synced, every record below `acked` was acknowledged durably.
fn crash_writer(dir: &Path, next: u64) -> ! {
    let mut spool = Spool::open_with(dir, DEFAULT_MAX_BYTES, WRITER_SEGMENT_BYTES).expect("open");
    let mut rng = fastrand::Rng::with_seed(next);
    let first = spool.peek(1).expect("peek").first().map_or(next, seq);
    let (mut next, mut durable, mut acked) = (first + spool.len(), first + spool.len(), first);
    loop {
        for _ in 0..rng.u64(1..300) {
            spool.push(&record(next)).expect("push");
            next += 1;
            if rng.u8(0..64) == 0 {
                println!("state {durable} {acked}");
            }
        }
        spool.sync().expect("sync");
        durable = next;
        if rng.u8(0..4) == 0 {
            let batch = spool.peek((spool.len() / 2) as usize).expect("peek");
            spool.ack(batch.len()).expect("ack");
            acked += batch.len() as u64;
        }
    }
}

/// Runs the writer until it reports `ROUND_RECORDS` more durable records, SIGKILLs it, and
/// returns the last `(durable, acked)` it reported.
fn run_and_kill_writer(dir: &Path, next: u64) -> (u64, u64) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "kill_9_during_writes_keeps_every_synced_record_in_order", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(WRITER_DIR_ENV, dir)
        .env(WRITER_NEXT_ENV, next.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(state) = line.strip_prefix("state ") else { continue };
            let (durable, acked) = state.split_once(' ').expect("two numbers");
            if tx.send((durable.parse::<u64>().expect("durable"), acked.parse::<u64>().expect("acked"))).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut state = (0, 0);
    while state.0 < next + ROUND_RECORDS {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(reported) => state = reported,
            Err(e) => {
                let _ = child.kill();
                panic!("writer stopped reporting at {state:?}: {e}");
            }
        }
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap the writer");
    // Lines written before the kill are true as well; the reader ends at EOF.
    while let Ok(reported) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        state = reported;
    }
    state
}

#[test]
fn kill_9_during_writes_keeps_every_synced_record_in_order() {
    if let Some(dir) = std::env::var_os(WRITER_DIR_ENV) {
        let next = std::env::var(WRITER_NEXT_ENV).expect("next").parse().expect("number");
        crash_writer(Path::new(&dir), next);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut next = 0;
    for round in 0..3 {
        let (durable, acked) = run_and_kill_writer(dir.path(), next);
        let mut spool = Spool::open_with(dir.path(), DEFAULT_MAX_BYTES, WRITER_SEGMENT_BYTES).expect("reopen");
        let kept = all(&mut spool);
        let (first, end) = (kept[0], kept[kept.len() - 1] + 1);
        assert_eq!(kept, (first..end).collect::<Vec<_>>(), "round {round}: in order, no gap");
        assert!(first >= acked, "round {round}: acknowledged record {first} came back (acked {acked})");
        assert!(end >= durable, "round {round}: synced records lost: kept up to {end}, synced {durable}");
        // Writes carry whole records, but SIGKILL can still cut a write short between pages.
        assert!(spool.dropped() <= 1, "round {round}: at most the torn tail record");
        eprintln!("kill -9 round {round}: durable {durable} acked {acked}; recovered {first}..{end}");
        next = end;
    }
}

/// Random push / peek / ack / sync / reopen against a VecDeque model, with a small bound so the
/// drop-oldest path runs too.
#[test]
fn random_operations_match_a_queue_model() {
    let (max, segment) = (48 * 1024, 4096);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut spool = Spool::open_with(dir.path(), max, segment).expect("open");
    let mut model: VecDeque<Record> = VecDeque::new();
    // `head` = records removed since open, `ack_base` = where ack(n) counts from.
    let (mut head, mut ack_base, mut seen_dropped, mut next) = (0u64, 0u64, 0u64, 0u64);
    let mut reopens = 0;
    for step in 0..3000 {
        match rng.u8(0..100) {
            0..=39 => {
                for _ in 0..rng.u64(1..40) {
                    let r = sized_record(next);
                    next += 1;
                    spool.push(&r).expect("push");
                    model.push_back(r);
                    let lost = spool.dropped() - seen_dropped;
                    seen_dropped = spool.dropped();
                    model.drain(..lost as usize);
                    head += lost;
                }
            }
            40..=59 => {
                let max = rng.usize(0..80);
                let got = spool.peek(max).expect("peek");
                let want: Vec<Record> = model.iter().take(max).cloned().collect();
                assert_eq!(got, want, "step {step}: peek({max})");
                ack_base = head;
            }
            60..=84 => {
                let n = rng.u64(0..60);
                let target = (ack_base + n).min(head + model.len() as u64);
                let count = target.saturating_sub(head);
                model.drain(..count as usize);
                head += count;
                ack_base = target;
                spool.ack(n as usize).expect("ack");
            }
            85..=89 => spool.sync().expect("sync"),
            _ => {
                drop(spool);
                spool = Spool::open_with(dir.path(), max, segment).expect("reopen");
                assert_eq!(spool.dropped(), 0, "step {step}: nothing corrupt after a clean close");
                (head, ack_base, seen_dropped) = (0, 0, 0);
                reopens += 1;
            }
        }
        assert_eq!(spool.len(), model.len() as u64, "step {step}: len");
        assert!(spool.bytes() <= max + segment + 700, "step {step}: bytes {}", spool.bytes());
    }
    assert!(reopens > 100 && next > 10_000, "the sequence exercised reopen ({reopens}) and the bound ({next})");
    let got = spool.peek(usize::MAX).expect("peek");
    assert_eq!(got, model.into_iter().collect::<Vec<_>>());
}
