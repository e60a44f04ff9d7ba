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

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Default bound of a spool: 256 MiB of segment files.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default size of one segment file: 4 MiB (capped at a quarter of the bound).
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Largest record body (topic, key and payload with their lengths) accepted: 16 MiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

const HEADER_BYTES: usize = 8;
const MIN_BODY_BYTES: usize = 4;
const MAX_TOPIC_BYTES: usize = 249;
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
const READ_BUFFER_BYTES: usize = 64 * 1024;
const CURSOR_FILE: &str = "cursor";
const CURSOR_TMP_FILE: &str = "cursor.tmp";
const CURSOR_BYTES: usize = 20;
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

/// The sequential reader; `pos` is where the next read starts.
struct Reader {
    pos: Pos,
    file: BufReader<File>,
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

    /// Moves the reader to `target`, within its buffer when it is already in that segment.
    fn seek_reader(&mut self, target: Pos) -> Result<(), SpoolError> {
        let path = segment_path(&self.dir, target.seq);
        if let Some(reader) = self.reader.as_mut().filter(|reader| reader.pos.seq == target.seq) {
            if reader.pos.offset != target.offset {
                let delta = target.offset as i64 - reader.pos.offset as i64;
                if let Err(source) = reader.file.seek_relative(delta) {
                    self.reader = None;
                    return Err(SpoolError::Io { op: "seek", path, source });
                }
                reader.pos = target;
            }
            return Ok(());
        }
        self.reader = None;
        let file = File::open(&path).map_err(io_err("open", &path))?;
        let mut file = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        file.seek(SeekFrom::Start(target.offset)).map_err(io_err("seek", &path))?;
        self.reader = Some(Reader { pos: target, file });
        Ok(())
    }

    /// The record at the reader's position (past skipped regions and segment ends) and the
    /// position after it; `None` at the end of the spool. The buffer must have been flushed.
    fn read_next(&mut self) -> Result<Option<(Record, Pos)>, SpoolError> {
        loop {
            let Some(pos) = self.reader.as_ref().map(|reader| reader.pos) else { return Ok(None) };
            if let Some(skip) = self.skips.iter().find(|skip| skip.seq == pos.seq && skip.start == pos.offset) {
                self.seek_reader(Pos { seq: pos.seq, offset: skip.end })?;
                continue;
            }
            let Some(segment_bytes) = self.segment(pos.seq).map(|segment| segment.bytes) else { return Ok(None) };
            if pos.offset >= segment_bytes {
                match self.next_seq(pos.seq) {
                    Some(seq) => self.seek_reader(Pos { seq, offset: 0 })?,
                    None => return Ok(None),
                }
                continue;
            }
            let result = match self.reader.as_mut() {
                Some(reader) => read_record(&mut reader.file, segment_bytes - pos.offset),
                None => return Ok(None),
            };
            return match result {
                Ok(Some((record, size))) => {
                    let end = Pos { seq: pos.seq, offset: pos.offset + size };
                    if let Some(reader) = self.reader.as_mut() {
                        reader.pos = end;
                    }
                    Ok(Some((record, end)))
                }
                Ok(None) => {
                    self.reader = None;
                    Err(SpoolError::Corrupt { path: segment_path(&self.dir, pos.seq), offset: pos.offset })
                }
                Err(source) => {
                    self.reader = None;
                    Err(SpoolError::Io { op: "read", path: segment_path(&self.dir, pos.seq), source })
                }
            };
        }
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

/// Validates `record` and returns its encoded size in bytes (header included).
fn encoded_len(record: &Record) -> Result<usize, SpoolError> {
    let refuse = |reason| Err(SpoolError::InvalidRecord { topic: record.topic.clone(), reason });
    if !valid_topic(record.topic.as_bytes()) {
        return refuse("topic must be 1 to 249 bytes of [A-Za-z0-9._-]");
    }
    if record.key.len() > usize::from(u16::MAX) {
        return refuse("key longer than 65535 bytes");
    }
    let body = MIN_BODY_BYTES + record.topic.len() + record.key.len() + record.payload.len();
    if body > MAX_BODY_BYTES {
        return refuse("record larger than the spool's 16 MiB limit");
    }
    Ok(HEADER_BYTES + body)
}

/// Appends the encoded record to `out`; `record` must have passed [`encoded_len`].
fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    let body_len = MIN_BODY_BYTES + record.topic.len() + record.key.len() + record.payload.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(record.topic.len() as u16).to_le_bytes());
    out.extend_from_slice(record.topic.as_bytes());
    out.extend_from_slice(&(record.key.len() as u16).to_le_bytes());
    out.extend_from_slice(record.key.as_bytes());
    out.extend_from_slice(&record.payload);
    let crc = crc32fast::hash(&out[start + HEADER_BYTES..]);
    out[start + 4..start + HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
}

fn valid_topic(topic: &[u8]) -> bool {
    (1..=MAX_TOPIC_BYTES).contains(&topic.len())
        && topic.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Splits a body into topic, key and payload; `None` when it is not well formed.
fn parse_body(body: &[u8]) -> Option<(&str, &str, &[u8])> {
    fn take(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let len = usize::from(u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]));
        Some((bytes.get(2..2 + len)?, bytes.get(2 + len..)?))
    }
    let (topic, rest) = take(body)?;
    if !valid_topic(topic) {
        return None;
    }
    let (key, payload) = take(rest)?;
    Some((std::str::from_utf8(topic).ok()?, std::str::from_utf8(key).ok()?, payload))
}

/// Body length from the header at `data[at..]`, if plausible.
fn header_len(data: &[u8], at: usize) -> Option<usize> {
    let header = data.get(at..at.checked_add(HEADER_BYTES)?)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    (MIN_BODY_BYTES..=MAX_BODY_BYTES).contains(&len).then_some(len)
}

/// Size of the valid record at `data[at..]` (header included), `None` when there is none.
fn record_len_at(data: &[u8], at: usize) -> Option<usize> {
    let len = header_len(data, at)?;
    let body = data.get(at + HEADER_BYTES..at + HEADER_BYTES + len)?;
    parse_body(body)?;
    let crc = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
    (crc32fast::hash(body) == crc).then_some(HEADER_BYTES + len)
}

/// Reads one record of at most `limit` bytes; `Ok(None)` when it is not valid.
fn read_record(file: &mut impl Read, limit: u64) -> io::Result<Option<(Record, u64)>> {
    let mut header = [0; HEADER_BYTES];
    file.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if !(MIN_BODY_BYTES..=MAX_BODY_BYTES).contains(&len) || (HEADER_BYTES + len) as u64 > limit {
        return Ok(None);
    }
    let mut body = vec![0; len];
    file.read_exact(&mut body)?;
    if crc32fast::hash(&body) != u32::from_le_bytes([header[4], header[5], header[6], header[7]]) {
        return Ok(None);
    }
    Ok(parse_body(&body).map(|(topic, key, payload)| {
        let record = Record { topic: topic.to_owned(), key: key.to_owned(), payload: payload.to_vec() };
        (record, (HEADER_BYTES + len) as u64)
    }))
}

/// What [`scan`] found in one segment.
#[derive(Debug, PartialEq, Eq)]
struct Scan {
    /// Length of the segment once an invalid tail is cut off.
    end: u64,
    /// Valid records.
    records: u64,
    /// Corrupt regions `(start, end)` followed by a valid record.
    skips: Vec<(u64, u64)>,
    /// Valid records that start before `from`.
    acked: u64,
    /// Start of the first valid record at or after `from`, else `end`.
    cursor: u64,
}

/// Validates a whole segment; `from` is the stored cursor offset in it (0 if elsewhere).
fn scan(data: &[u8], from: u64) -> Scan {
    let mut out = Scan { end: data.len() as u64, records: 0, skips: Vec::new(), acked: 0, cursor: data.len() as u64 };
    let mut cursor = None;
    let mut at = 0;
    while at < data.len() {
        if let Some(size) = record_len_at(data, at) {
            if (at as u64) < from {
                out.acked += 1;
            } else if cursor.is_none() {
                cursor = Some(at as u64);
            }
            out.records += 1;
            at += size;
            continue;
        }
        // Trust the length when a valid record (or the end) follows; else look for the next one.
        let by_length = header_len(data, at)
            .map(|len| at + HEADER_BYTES + len)
            .filter(|&next| next == data.len() || (next < data.len() && record_len_at(data, next).is_some()));
        match by_length.or_else(|| (at + 1..data.len()).find(|&next| record_len_at(data, next).is_some())) {
            Some(next) => {
                out.skips.push((at as u64, next as u64));
                at = next;
            }
            None => {
                out.end = at as u64;
                break;
            }
        }
    }
    out.cursor = cursor.unwrap_or(out.end);
    out
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

/// The stored cursor; `None` when missing or corrupt (logged).
fn read_cursor(dir: &Path) -> Result<Option<Pos>, SpoolError> {
    let path = dir.join(CURSOR_FILE);
    let data = match fs::read(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SpoolError::Io { op: "read", path, source: e }),
    };
    let field = |range: std::ops::Range<usize>| data.get(range).and_then(|bytes| bytes.try_into().ok());
    match (data.len() == CURSOR_BYTES, field(0..8), field(8..16), data.get(16..20)) {
        (true, Some(seq), Some(offset), Some(crc)) if crc32fast::hash(&data[..16]).to_le_bytes() == crc => {
            Ok(Some(Pos { seq: u64::from_le_bytes(seq), offset: u64::from_le_bytes(offset) }))
        }
        _ => {
            tracing::warn!(file = %path.display(), "spool: corrupt cursor ignored; resending from the oldest segment");
            Ok(None)
        }
    }
}

/// Replaces the cursor file atomically and durably.
fn write_cursor(dir: &Path, pos: Pos) -> Result<(), SpoolError> {
    let mut data = [0; CURSOR_BYTES];
    data[..8].copy_from_slice(&pos.seq.to_le_bytes());
    data[8..16].copy_from_slice(&pos.offset.to_le_bytes());
    let crc = crc32fast::hash(&data[..16]);
    data[16..].copy_from_slice(&crc.to_le_bytes());
    let tmp = dir.join(CURSOR_TMP_FILE);
    let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(&data).map_err(io_err("write", &tmp))?;
    file.sync_data().map_err(io_err("fdatasync", &tmp))?;
    let path = dir.join(CURSOR_FILE);
    fs::rename(&tmp, &path).map_err(io_err("rename to", &path))?;
    sync_dir(dir)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Record {
        Record { topic: "icmp.metrics".into(), key: format!("pop-{i}/t"), payload: format!("{{\"n\":{i}}}").into() }
    }

    fn encoded(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encoded_len(r).expect("valid record");
            encode(r, &mut out);
        }
        out
    }

    #[test]
    fn encoding_matches_the_documented_layout() {
        let r = Record { topic: "t".into(), key: "k".into(), payload: b"xy".to_vec() };
        let out = encoded(std::slice::from_ref(&r));
        let body = [1, 0, b't', 1, 0, b'k', b'x', b'y'];
        assert_eq!(out[..4], 8u32.to_le_bytes());
        assert_eq!(out[4..8], crc32fast::hash(&body).to_le_bytes());
        assert_eq!(out[8..], body);
        assert_eq!(encoded_len(&r).expect("valid"), out.len());
        assert_eq!(record_len_at(&out, 0), Some(out.len()));
    }

    #[test]
    fn invalid_records_are_refused() {
        let mut r = record(0);
        r.topic = "bad topic".into();
        assert!(matches!(encoded_len(&r), Err(SpoolError::InvalidRecord { .. })));
        r.topic = String::new();
        assert!(matches!(encoded_len(&r), Err(SpoolError::InvalidRecord { .. })));
        let mut r = record(0);
        r.key = "k".repeat(70_000);
        assert!(matches!(encoded_len(&r), Err(SpoolError::InvalidRecord { .. })));
    }

    #[test]
    fn scan_counts_records_and_places_the_cursor() {
        let data = encoded(&[record(0), record(1), record(2)]);
        let first = record_len_at(&data, 0).expect("valid") as u64;
        let s = scan(&data, first);
        assert_eq!((s.records, s.acked, s.cursor, s.end), (3, 1, first, data.len() as u64));
        assert!(s.skips.is_empty());
        // A cursor inside a record snaps to the next record start.
        assert_eq!(scan(&data, first + 3).cursor, first + record_len_at(&data, first as usize).expect("valid") as u64);
    }

    #[test]
    fn scan_skips_a_record_with_a_corrupt_length_by_resynchronising() {
        let mut data = encoded(&[record(0), record(1), record(2)]);
        let first = record_len_at(&data, 0).expect("valid");
        let second = record_len_at(&data, first).expect("valid");
        data[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let s = scan(&data, 0);
        assert_eq!(s.records, 2);
        assert_eq!(s.skips, vec![(first as u64, (first + second) as u64)]);
        assert_eq!(s.end, data.len() as u64);
    }

    #[test]
    fn scan_cuts_zeroes_and_garbage_at_the_tail() {
        let mut data = encoded(&[record(0), record(1)]);
        let valid = data.len() as u64;
        data.extend_from_slice(&[0; 4096]);
        assert_eq!(scan(&data, 0).end, valid);
        let mut rng = fastrand::Rng::with_seed(7);
        data.truncate(valid as usize);
        data.extend((0..100_000).map(|_| rng.u8(..)));
        let s = scan(&data, 0);
        assert_eq!((s.records, s.end), (2, valid));
    }

    #[test]
    fn cursor_file_round_trips_and_rejects_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pos = Pos { seq: 42, offset: 4242 };
        write_cursor(dir.path(), pos).expect("write cursor");
        assert_eq!(read_cursor(dir.path()).expect("read"), Some(pos));
        let path = dir.path().join(CURSOR_FILE);
        let mut data = fs::read(&path).expect("read");
        data[3] ^= 1;
        fs::write(&path, data).expect("write");
        assert_eq!(read_cursor(dir.path()).expect("read"), None);
    }
}
