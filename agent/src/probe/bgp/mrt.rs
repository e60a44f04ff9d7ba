//! The MRT source: BGP4MP update records (RFC 6396) from one file, or from
//! a directory polled for new files, decompressed by extension (`.gz`,
//! `.bz2`, anything else raw). `http(s)://` locations are handed to
//! [`super::mrt_http`], which downloads and reads through the same path.
//!
//! A record that does not parse is counted (`malformed`) and logged with
//! the file and record number, then skipped; a truncated file ends that
//! file (there is no record boundary to resume from), never the feed.

use std::collections::HashSet;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bgpkit_parser::{parse_mrt_record, Elementor, ParserError};
use netprobe_wire::msg::BgpSource;
use tokio_util::sync::CancellationToken;

use super::feed::{FeedElem, FeedHealth, FeedTx};

/// Most file names remembered as read in a polled directory (beyond it the
/// names no longer listed are forgotten first; the set only ever holds
/// names still in the directory).
pub const MAX_REMEMBERED_FILES: usize = 100_000;

/// Runs the MRT source until `shutdown` or, for a single file, its end.
/// `location` is a file, a directory, or an `http(s)://` URL (one file, or
/// an index ending in `/`; see [`super::mrt_http::run`]).
pub async fn run(
    location: String,
    poll_interval: Duration,
    tx: FeedTx,
    health: Arc<FeedHealth>,
    shutdown: CancellationToken,
) {
    if location.starts_with("http://") || location.starts_with("https://") {
        super::mrt_http::run(location, poll_interval, tx, health, shutdown).await;
        return;
    }
    let path = PathBuf::from(&location);
    if !path.is_dir() {
        health.connected.store(true, Ordering::Relaxed);
        read_blocking(path, tx.clone(), Arc::clone(&health), shutdown).await;
        // Down before the channel closes (the monitor ends when it does).
        health.connected.store(false, Ordering::Relaxed);
        drop(tx);
        return;
    }
    let mut seen: HashSet<std::ffi::OsString> = HashSet::new();
    let mut tick = tokio::time::interval(poll_interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let names = match list(&path) {
            Ok(n) => {
                health.connected.store(true, Ordering::Relaxed);
                n
            }
            Err(e) => {
                health.connected.store(false, Ordering::Relaxed);
                tracing::warn!(feed = %health.name, dir = %path.display(), error = %e, "cannot list the MRT directory");
                continue;
            }
        };
        let listed: HashSet<_> = names.iter().cloned().collect();
        seen.retain(|n| listed.contains(n));
        for name in names {
            if seen.contains(&name) || seen.len() >= MAX_REMEMBERED_FILES {
                continue;
            }
            seen.insert(name.clone());
            if !read_blocking(path.join(&name), tx.clone(), Arc::clone(&health), shutdown.clone()).await {
                return;
            }
        }
    }
    health.connected.store(false, Ordering::Relaxed);
}

/// The file names of `dir`, sorted (RIS and RouteViews names sort by
/// time), without hidden and partial (`.tmp`, `.part`) files.
fn list(dir: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let s = name.to_string_lossy();
        if s.starts_with('.') || s.ends_with(".tmp") || s.ends_with(".part") || !entry.file_type()?.is_file() {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Reads one file on the blocking pool; false when the receiver is gone.
async fn read_blocking(path: PathBuf, tx: FeedTx, health: Arc<FeedHealth>, shutdown: CancellationToken) -> bool {
    let task = tokio::task::spawn_blocking(move || read_file(&path, &tx, &health, &shutdown));
    task.await.unwrap_or(false)
}

/// The collector of a file: the `rrcNN` / `route-views*` directory in its
/// path (RIS and RouteViews archive layouts), else the file name.
pub fn collector_of(path: &Path) -> String {
    path.iter()
        .rev()
        .skip(1)
        .map(|c| c.to_string_lossy())
        .find(|c| c.starts_with("rrc") || c.starts_with("route-views"))
        .map(|c| c.into_owned())
        .unwrap_or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

/// A reader of `path` decompressing by extension.
pub fn open(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    Ok(decompress(std::fs::File::open(path)?, path.extension().and_then(|e| e.to_str())))
}

/// `raw` decompressed by the extension `ext` (`gz`, `bz2`, else as is),
/// buffered.
pub(crate) fn decompress(raw: impl Read + Send + 'static, ext: Option<&str>) -> Box<dyn Read + Send> {
    let file = BufReader::with_capacity(256 * 1024, raw);
    match ext {
        Some("gz") => Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file))),
        Some("bz2") => Box::new(BufReader::new(bzip2::read::MultiBzDecoder::new(file))),
        _ => Box::new(file),
    }
}

/// What reading one file found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileStats {
    /// MRT records parsed.
    pub records: u64,
    /// Records that did not parse (a truncated end counts as one).
    pub malformed: u64,
    /// Route updates (prefixes announced or withdrawn) sent.
    pub elems: u64,
}

/// Reads every record of one MRT file and calls `each` with each update;
/// `each` returns false to stop. Bad records are counted and logged.
///
/// # Errors
/// The file cannot be opened.
pub fn for_each_elem(path: &Path, each: impl FnMut(bgpkit_parser::BgpElem) -> bool) -> std::io::Result<FileStats> {
    let reader = open(path)?;
    Ok(for_each_elem_in(reader, &path.display().to_string(), each))
}

/// [`for_each_elem`] over an open (decompressed) `reader`; `what` names it
/// in logs (a path or URL).
pub(crate) fn for_each_elem_in(
    mut reader: impl Read,
    what: &str,
    mut each: impl FnMut(bgpkit_parser::BgpElem) -> bool,
) -> FileStats {
    let mut elementor = Elementor::new();
    let mut stats = FileStats::default();
    loop {
        match parse_mrt_record(&mut reader) {
            Ok(record) => {
                stats.records += 1;
                for elem in elementor.record_to_elems(record) {
                    stats.elems += 1;
                    if !each(elem) {
                        return stats;
                    }
                }
            }
            Err(e) => match e.error {
                ParserError::EofExpected => return stats,
                ParserError::IoError(_) | ParserError::EofError(_) | ParserError::OversizedRecord { .. } => {
                    stats.malformed += 1;
                    tracing::warn!(file = %what, record = stats.records + 1, error = %e.error,
                        "MRT file ends in a truncated or unreadable record; rest of the file skipped");
                    return stats;
                }
                other => {
                    stats.malformed += 1;
                    tracing::warn!(file = %what, record = stats.records + stats.malformed, error = %other,
                        "MRT record skipped: does not parse");
                }
            },
        }
    }
}

/// Reads one file into the feed; false when the receiver is gone or on
/// shutdown.
fn read_file(path: &Path, tx: &FeedTx, health: &FeedHealth, shutdown: &CancellationToken) -> bool {
    match open(path) {
        Ok(reader) => read_into_feed(reader, &path.display().to_string(), &collector_of(path), tx, health, shutdown),
        Err(e) => {
            health.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(feed = %health.name, file = %path.display(), error = %e, "cannot read the MRT file");
            true
        }
    }
}

/// Reads every update of an open (decompressed) MRT `reader` into the
/// feed as coming from `collector`; `what` (a path or URL) names it in
/// logs. False when the receiver is gone or on shutdown.
pub(crate) fn read_into_feed(
    reader: impl Read,
    what: &str,
    collector: &str,
    tx: &FeedTx,
    health: &FeedHealth,
    shutdown: &CancellationToken,
) -> bool {
    let mut open = true;
    let stats = for_each_elem_in(reader, what, |elem| {
        health.saw_message();
        if shutdown.is_cancelled() {
            open = false;
            return false;
        }
        let fe = FeedElem { elem, collector: collector.to_owned(), source: BgpSource::Mrt };
        open = tx.blocking_send(fe).is_ok();
        open
    });
    health.malformed.fetch_add(stats.malformed, Ordering::Relaxed);
    tracing::info!(feed = %health.name, file = %what, records = stats.records,
        updates = stats.elems, malformed = stats.malformed, "MRT file read");
    open
}
