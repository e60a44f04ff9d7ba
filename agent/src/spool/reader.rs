//! The spool's sequential reader: one segment file open at a time, past
//! the corrupt regions found at open.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};

use super::format::read_record;
use super::{io_err, segment_path, Pos, Record, Spool, SpoolError};

const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The sequential reader; `pos` is where the next read starts.
pub(super) struct Reader {
    pub(super) pos: Pos,
    file: BufReader<File>,
}

impl Spool {
    /// Moves the reader to `target`, within its buffer when it is already in that segment.
    pub(super) fn seek_reader(&mut self, target: Pos) -> Result<(), SpoolError> {
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
    pub(super) fn read_next(&mut self) -> Result<Option<(Record, Pos)>, SpoolError> {
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
