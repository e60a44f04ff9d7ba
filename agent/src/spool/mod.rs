//! The agent's on-disk spool: measurements whose delivery failed wait here, in order, until the
//! broker is back (DESIGN.md "Delivery guarantees"). Bounded in bytes, survives restarts and
//! `kill -9`, and never drops anything without counting it.
//!
//! # Files
//!
//! One spool directory (one [`Spool`] at a time; two processes must not share a directory) holds:
//!
//! - segment files `NNNNNNNNNNNNNNNNNNNN.seg` (20-digit zero-padded sequence number), append-only,
//!   oldest first. A new segment starts when the next record would take the current one past the
//!   segment size ([`DEFAULT_SEGMENT_BYTES`], at most a quarter of the bound), so every segment
//!   holds at least one record. Records follow each other with no padding:
//!
//!   ```text
//!   record = u32 LE body length | u32 LE CRC-32 (IEEE, crc32fast) of the body | body
//!   body   = u16 LE topic length | topic | u16 LE key length | key | payload
//!   ```
//!
//!   topic: 1 to 249 bytes of `[A-Za-z0-9._-]` (Kafka's rule); key: UTF-8; body at most
//!   [`MAX_BODY_BYTES`].
//! - `cursor`, 20 bytes: `u64 LE segment number | u64 LE byte offset | u32 LE CRC-32 of those 16
//!   bytes`: where the first unacknowledged record starts. It is replaced atomically (write
//!   `cursor.tmp`, fdatasync, rename, fsync the directory).
//!
//! # Invariants
//!
//! - Records come back from [`Spool::peek`] in push order; only [`Spool::ack`] removes them, or
//!   the bound drops them and counts them in [`Spool::dropped`].
//! - [`Spool::push`] only buffers (64 KiB); [`Spool::sync`] makes every pushed record durable.
//!   A segment is fdatasynced before the next one is created, and the directory is fsynced after
//!   a creation, so only the newest segment can hold unsynced data.
//! - [`Spool::ack`] writes the cursor durably before it deletes the segments it emptied; data is
//!   never rewritten. Segments older than the cursor's are deleted on open.
//! - After each push, while the segments exceed `max_bytes` the oldest segment is deleted and its
//!   unacknowledged records are counted as dropped; disk use stays within `max_bytes` plus one
//!   segment.
//!
//! # Recovery (on open)
//!
//! Every segment is read once (one segment in memory at a time) and each record is checked:
//! length, CRC, body shape. A corrupt region followed by a valid record (bit rot) is skipped,
//! logged with file and offsets, and counted as one dropped record. An invalid tail (a write torn
//! by a crash, garbage) is truncated, logged, and counted as one dropped record. A missing or
//! corrupt cursor restarts from the oldest segment: duplicates rather than loss (ingest writes
//! are idempotent).

mod cursor;
mod format;
mod reader;

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cursor::{read_cursor, write_cursor, CURSOR_TMP_FILE};
use format::{encode, encoded_len, scan};
use reader::Reader;

/// Default bound of a spool: 256 MiB of segment files.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default size of one segment file: 4 MiB (capped at a quarter of the bound).
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Largest record body (topic, key and payload with their lengths) accepted: 16 MiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

const WRITE_BUFFER_BYTES: usize = 64 * 1024;
const SEGMENT_SUFFIX: &str = ".seg";

/// One spooled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Kafka topic: 1 to 249 bytes of `[A-Za-z0-9._-]`.
    pub topic: String,
    /// Message key (`probe_id/target`), at most 65535 bytes.
    pub key: String,
    /// Message value (the JSON measurement).
    pub payload: Vec<u8>,
}

/// What can go wrong in the spool. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file operation failed (`op` is what was attempted: read, write, fsync, ...).
    #[error("spool: cannot {op} {}: {source}", path.display())]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A record validated at open no longer reads back (the file changed behind the spool's
    /// back). Reopening the spool skips it and counts it as dropped.
    #[error("spool: record at {}:{offset} changed on disk since open; reopen the spool", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record in the segment.
        offset: u64,
    },
    /// The record cannot be stored (bad topic, key or size); nothing was written.
    #[error("spool: record for topic {topic:?} not spooled: {reason}")]
    InvalidRecord {
        /// The record's topic.
        topic: String,
        /// Why it was refused.
        reason: &'static str,
    },
}

/// A position in the spool: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    seq: u64,
    offset: u64,
}

/// One segment file: its number, its length (buffered bytes included) and its valid records.
#[derive(Debug, Clone, Copy)]
struct Segment {
    seq: u64,
    bytes: u64,
    records: u64,
}

/// A corrupt region found at open, skipped when reading.
#[derive(Debug, Clone, Copy)]
struct Skip {
    seq: u64,
    start: u64,
    end: u64,
}

/// A bounded, crash-safe FIFO of [`Record`]s in a directory (the format is in the module doc).
///
/// Synchronous: from async code call it under a mutex in `spawn_blocking`. Dropping it flushes and
/// fdatasyncs what was pushed (errors are logged).
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Full segments, oldest first; the cursor is in the first one, or in `active` if empty.
    sealed: VecDeque<Segment>,
    /// The segment being appended to.
    active: Segment,
    file: File,
    wbuf: Vec<u8>,
    unsynced: bool,
    reader: Option<Reader>,
    /// Start of the first unacknowledged record (or any position before it with nothing valid
    /// in between).
    cursor: Pos,
    /// Records of the first segment that lie before the cursor.
    acked_in_front: u64,
    skips: Vec<Skip>,
    len: u64,
    bytes: u64,
    dropped: u64,
    /// Records removed (acknowledged or dropped) since open: index of the first unacknowledged.
    head: u64,
    /// Index `ack(n)` counts from: `head` as of the last peek or ack.
    ack_base: u64,
    /// End positions of the records from `head` on that the last peek read.
    peeked: VecDeque<Pos>,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, recovering what a crash left, with segments of
    /// [`DEFAULT_SEGMENT_BYTES`]. `max_bytes` bounds the segment files (see [`Spool::push`]).
    ///
    /// # Errors
    /// [`SpoolError::Io`] when the directory or a file cannot be created, read, truncated or
    /// synced. Corrupt or torn records are not errors: they are logged, skipped and counted.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        Self::open_with(dir, max_bytes, DEFAULT_SEGMENT_BYTES)
    }

    /// [`Spool::open`] with a chosen segment size in bytes (capped at `max_bytes / 4`, at least 1).
    ///
    /// # Errors
    /// As [`Spool::open`].
    pub fn open_with(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        remove_if_exists(&dir.join(CURSOR_TMP_FILE))?;
        let stored = read_cursor(dir)?;
        let mut seqs = list_segments(dir)?;
        let mut cursor = Pos { seq: seqs.first().copied().unwrap_or(0), offset: 0 };
        if let Some(stored) = stored {
            // Segments before the cursor's are fully acknowledged: a crash hit between writing
            // the cursor and deleting them.
            for &seq in seqs.iter().filter(|&&seq| seq < stored.seq) {
                remove_if_exists(&segment_path(dir, seq))?;
            }
            seqs.retain(|&seq| seq >= stored.seq);
            cursor = match seqs.first() {
                Some(&first) if first == stored.seq => stored,
                // The cursor's segment was dropped by the bound.
                Some(&first) => Pos { seq: first, offset: 0 },
                None => Pos { seq: stored.seq, offset: 0 },
            };
        }

        let mut segments = VecDeque::with_capacity(seqs.len());
        let (mut skips, mut dropped, mut acked_in_front) = (Vec::new(), 0, 0);
        for seq in seqs {
            let path = segment_path(dir, seq);
            let data = fs::read(&path).map_err(io_err("read", &path))?;
            let from = if seq == cursor.seq { cursor.offset } else { 0 };
            let scan = scan(&data, from);
            for &(start, end) in &scan.skips {
                tracing::warn!(file = %path.display(), offset = start, bytes = end - start, "spool: corrupt record skipped");
                skips.push(Skip { seq, start, end });
            }
            dropped += scan.skips.len() as u64;
            if scan.end < data.len() as u64 {
                tracing::warn!(file = %path.display(), offset = scan.end, bytes = data.len() as u64 - scan.end,
                    "spool: torn or corrupt tail truncated");
                truncate(&path, scan.end)?;
                dropped += 1;
            }
            if seq == cursor.seq {
                cursor.offset = scan.cursor;
                acked_in_front = scan.acked;
            }
            segments.push_back(Segment { seq, bytes: scan.end, records: scan.records });
        }
        let active = match segments.pop_back() {
            Some(segment) => segment,
            None => {
                let path = segment_path(dir, cursor.seq);
                File::create(&path).map_err(io_err("create", &path))?;
                sync_dir(dir)?;
                Segment { seq: cursor.seq, bytes: 0, records: 0 }
            }
        };
        let active_path = segment_path(dir, active.seq);
        let file = OpenOptions::new().append(true).open(&active_path).map_err(io_err("open", &active_path))?;
        let all = segments.iter().chain(std::iter::once(&active));
        let (records, bytes) = all.fold((0, 0), |(r, b), s| (r + s.records, b + s.bytes));
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: segment_bytes.min(max_bytes / 4).max(1),
            sealed: segments,
            active,
            file,
            wbuf: Vec::with_capacity(WRITE_BUFFER_BYTES),
            unsynced: false,
            reader: None,
            cursor,
            acked_in_front,
            skips,
            len: records - acked_in_front,
            bytes,
            dropped,
            head: 0,
            ack_base: 0,
            peeked: VecDeque::new(),
        };
        let (pops, acked) = spool.plan_advance(0);
        spool.remove_front(pops, acked);
        tracing::info!(dir = %dir.display(), records = spool.len, bytes = spool.bytes, dropped, "spool opened");
        Ok(spool)
    }

    /// Appends one record (buffered; durable after [`Spool::sync`]). Then, while the segment
    /// files exceed `max_bytes`, deletes the oldest segment and counts its unacknowledged records
    /// in [`Spool::dropped`] (the newest segment is never deleted).
    ///
    /// # Errors
    /// [`SpoolError::InvalidRecord`] (bad topic, key over 65535 bytes, body over
    /// [`MAX_BODY_BYTES`]); [`SpoolError::Io`] when writing out the buffer or starting a segment
    /// fails. On error the record was not added and the spool stays consistent.
    pub fn push(&mut self, record: &Record) -> Result<(), SpoolError> {
        let size = encoded_len(record)?;
        if !self.wbuf.is_empty() && self.wbuf.len() + size > WRITE_BUFFER_BYTES {
            self.flush_buf()?;
        }
        if self.active.bytes > 0 && self.active.bytes + size as u64 > self.segment_bytes {
            self.roll()?;
        }
        encode(record, &mut self.wbuf);
        self.active.bytes += size as u64;
        self.active.records += 1;
        self.bytes += size as u64;
        self.len += 1;
        self.unsynced = true;
        self.enforce_bound();
        Ok(())
    }

    /// Hands every pushed record to the kernel (no fsync): they survive a
    /// kill of the process, not a power cut.
    ///
    /// # Errors
    /// [`SpoolError::Io`] when the write fails; the bytes stay buffered.
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        self.flush_buf()
    }

    /// Makes every pushed record durable (flush + fdatasync). Cheap when nothing was pushed.
    ///
    /// # Errors
    /// [`SpoolError::Io`] when the write or fdatasync fails; unwritten bytes stay buffered and
    /// the next call retries.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.flush_buf()?;
        if self.unsynced {
            let path = || segment_path(&self.dir, self.active.seq);
            self.file.sync_data().map_err(|source| SpoolError::Io { op: "fdatasync", path: path(), source })?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Up to `max` oldest unacknowledged records, oldest first, without removing them. Reads on
    /// from the cursor (no rescan); a following [`Spool::ack`] counts from the first record
    /// returned here.
    ///
    /// # Errors
    /// [`SpoolError::Io`] on a failed read or buffer flush; [`SpoolError::Corrupt`] when a record
    /// changed on disk since open (reopen to skip it).
    pub fn peek(&mut self, max: usize) -> Result<Vec<Record>, SpoolError> {
        self.flush_buf()?;
        self.ack_base = self.head;
        self.peeked.clear();
        let want = usize::try_from(self.len).unwrap_or(usize::MAX).min(max);
        let mut records = Vec::with_capacity(want.min(4096));
        self.seek_reader(self.cursor)?;
        while records.len() < want {
            let Some((record, end)) = self.read_next()? else { break };
            records.push(record);
            self.peeked.push_back(end);
        }
        Ok(records)
    }

    /// Acknowledges (removes) the `n` oldest records; durable when it returns (the cursor file is
    /// replaced and fsynced; emptied segments are deleted).
    ///
    /// `n` counts from the first record of the last [`Spool::peek`] (or the end of the last ack):
    /// records the bound dropped in between are not acknowledged again, so acknowledging what a
    /// peek returned never removes records that were not sent. `n` beyond the spool's length
    /// acknowledges everything.
    ///
    /// # Errors
    /// [`SpoolError::Io`] when reading or writing the cursor fails (then nothing was
    /// acknowledged); [`SpoolError::Corrupt`] as for [`Spool::peek`].
    pub fn ack(&mut self, n: usize) -> Result<(), SpoolError> {
        let target = self.ack_base.saturating_add(n as u64).min(self.head + self.len);
        let count = target.saturating_sub(self.head);
        if count == 0 {
            self.ack_base = target;
            return Ok(());
        }
        let end = match usize::try_from(count - 1).ok().and_then(|i| self.peeked.get(i)) {
            Some(&end) => end,
            None => self.skip_records(count)?,
        };
        let (pops, acked) = self.plan_advance(count);
        let front = self.sealed.get(pops).unwrap_or(&self.active).seq;
        let cursor = if end.seq < front { Pos { seq: front, offset: 0 } } else { end };
        write_cursor(&self.dir, cursor)?;
        self.cursor = cursor;
        self.head += count;
        self.len -= count;
        self.ack_base = target;
        let known = self.peeked.len().min(usize::try_from(count).unwrap_or(usize::MAX));
        self.peeked.drain(..known);
        self.remove_front(pops, acked);
        Ok(())
    }

    /// Unacknowledged records.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no record waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the segment files (acknowledged records of partly acknowledged segments and
    /// records still in the write buffer included; the 20-byte cursor file not).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records dropped by the bound or found corrupt since `open` (each corrupt region and each
    /// torn tail counts as one record).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Writes the buffer to the active segment (no fsync). On error, what was written is removed
    /// from the buffer and the rest stays for the next attempt, so the file stays a prefix of the
    /// record stream.
    fn flush_buf(&mut self) -> Result<(), SpoolError> {
        let mut written = 0;
        let result = loop {
            if written == self.wbuf.len() {
                break Ok(());
            }
            match self.file.write(&self.wbuf[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.wbuf.drain(..written);
        result.map_err(|source| SpoolError::Io { op: "write", path: segment_path(&self.dir, self.active.seq), source })
    }

    /// Syncs the active segment and starts the next one.
    fn roll(&mut self) -> Result<(), SpoolError> {
        self.sync()?;
        let seq = self.active.seq + 1;
        let path = segment_path(&self.dir, seq);
        let file = OpenOptions::new().append(true).create_new(true).open(&path).map_err(io_err("create", &path))?;
        sync_dir(&self.dir)?;
        self.file = file;
        let full = std::mem::replace(&mut self.active, Segment { seq, bytes: 0, records: 0 });
        self.sealed.push_back(full);
        Ok(())
    }

    /// Deletes the oldest segments while over the bound, counting their unacknowledged records.
    fn enforce_bound(&mut self) {
        while self.bytes > self.max_bytes {
            let Some(oldest) = self.sealed.pop_front() else { break };
            let lost = oldest.records - self.acked_in_front;
            self.acked_in_front = 0;
            self.len -= lost;
            self.head += lost;
            self.dropped += lost;
            self.bytes -= oldest.bytes;
            let stale = self.peeked.len().min(usize::try_from(lost).unwrap_or(usize::MAX));
            self.peeked.drain(..stale);
            self.forget_segment(oldest.seq);
            self.cursor = Pos { seq: self.sealed.front().unwrap_or(&self.active).seq, offset: 0 };
            let path = segment_path(&self.dir, oldest.seq);
            tracing::warn!(file = %path.display(), dropped = lost, max_bytes = self.max_bytes,
                "spool: over its bound, oldest segment dropped");
            if let Err(error) = fs::remove_file(&path) {
                tracing::error!(file = %path.display(), %error, "spool: cannot delete a dropped segment");
            }
        }
    }

    /// How acknowledging `count` more records moves the front: the number of sealed segments it
    /// empties (empty ones included) and the acknowledged records of the new first segment.
    fn plan_advance(&self, count: u64) -> (usize, u64) {
        let (mut remaining, mut acked, mut pops) = (count, self.acked_in_front, 0);
        for segment in &self.sealed {
            let unacked = segment.records - acked;
            if remaining < unacked {
                break;
            }
            remaining -= unacked;
            acked = 0;
            pops += 1;
        }
        (pops, acked + remaining)
    }

    /// Deletes the `pops` oldest (fully acknowledged) segments; `acked` records of the new first
    /// segment are acknowledged.
    fn remove_front(&mut self, pops: usize, acked: u64) {
        for segment in self.sealed.drain(..pops).collect::<Vec<_>>() {
            self.bytes -= segment.bytes;
            self.forget_segment(segment.seq);
            let path = segment_path(&self.dir, segment.seq);
            if let Err(error) = fs::remove_file(&path) {
                tracing::error!(file = %path.display(), %error, "spool: cannot delete an acknowledged segment");
            }
        }
        self.acked_in_front = acked;
        let front = self.sealed.front().unwrap_or(&self.active).seq;
        if self.cursor.seq < front {
            self.cursor = Pos { seq: front, offset: 0 };
        }
    }

    fn forget_segment(&mut self, seq: u64) {
        self.skips.retain(|skip| skip.seq != seq);
        if self.reader.as_ref().is_some_and(|reader| reader.pos.seq == seq) {
            self.reader = None;
        }
    }

    /// Reads past `count` records from the cursor (reusing what the last peek read) and returns
    /// the end of the last one.
    fn skip_records(&mut self, count: u64) -> Result<Pos, SpoolError> {
        self.flush_buf()?;
        let (mut end, known) = match self.peeked.back() {
            Some(&end) => (end, self.peeked.len() as u64),
            None => (self.cursor, 0),
        };
        self.seek_reader(end)?;
        for _ in known..count {
            match self.read_next()? {
                Some((_, next)) => end = next,
                None => return Err(SpoolError::Corrupt { path: segment_path(&self.dir, end.seq), offset: end.offset }),
            }
        }
        Ok(end)
    }

    fn segment(&self, seq: u64) -> Option<&Segment> {
        if seq == self.active.seq {
            return Some(&self.active);
        }
        let index = self.sealed.binary_search_by_key(&seq, |segment| segment.seq).ok()?;
        self.sealed.get(index)
    }

    fn next_seq(&self, seq: u64) -> Option<u64> {
        self.sealed.iter().chain(std::iter::once(&self.active)).map(|segment| segment.seq).find(|&next| next > seq)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Err(error) = self.sync() {
            tracing::error!(%error, "spool: cannot sync on close; unsynced records may be lost");
        }
    }
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .field("segment_bytes", &self.segment_bytes)
            .field("segments", &(self.sealed.len() + 1))
            .field("cursor", &self.cursor)
            .field("len", &self.len)
            .field("bytes", &self.bytes)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
}

/// Segment numbers in `dir`, ascending; other files are ignored.
fn list_segments(dir: &Path) -> Result<Vec<u64>, SpoolError> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let name = entry.map_err(io_err("list", dir))?.file_name();
        let Some(stem) = name.to_str().and_then(|name| name.strip_suffix(SEGMENT_SUFFIX)) else { continue };
        if stem.len() == 20 && stem.bytes().all(|c| c.is_ascii_digit()) {
            if let Ok(seq) = stem.parse() {
                seqs.push(seq);
            }
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

fn truncate(path: &Path, len: u64) -> Result<(), SpoolError> {
    let file = OpenOptions::new().write(true).open(path).map_err(io_err("open", path))?;
    file.set_len(len).map_err(io_err("truncate", path))?;
    file.sync_all().map_err(io_err("fsync", path))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync", dir))
}

fn remove_if_exists(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(SpoolError::Io { op: "delete", path: path.into(), source: e })
        }
        _ => Ok(()),
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io { op, path: path.to_path_buf(), source }
}
