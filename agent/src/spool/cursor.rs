//! The spool's cursor file: where the first unacknowledged record starts,
//! replaced atomically (see the module doc of [`super`]).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::{io_err, sync_dir, Pos, SpoolError};

const CURSOR_FILE: &str = "cursor";
pub(super) const CURSOR_TMP_FILE: &str = "cursor.tmp";
const CURSOR_BYTES: usize = 20;

/// The stored cursor; `None` when missing or corrupt (logged).
pub(super) fn read_cursor(dir: &Path) -> Result<Option<Pos>, SpoolError> {
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
pub(super) fn write_cursor(dir: &Path, pos: Pos) -> Result<(), SpoolError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
