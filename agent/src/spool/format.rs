//! The spool's record format (see the module doc of [`super`]): encoding,
//! validation, and the scan that recovers a segment after a crash.

use std::io::{self, Read};

use super::{Record, SpoolError, MAX_BODY_BYTES};

pub(super) const HEADER_BYTES: usize = 8;
const MIN_BODY_BYTES: usize = 4;
const MAX_TOPIC_BYTES: usize = 249;

/// Validates `record` and returns its encoded size in bytes (header included).
pub(super) fn encoded_len(record: &Record) -> Result<usize, SpoolError> {
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
pub(super) fn encode(record: &Record, out: &mut Vec<u8>) {
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

pub(super) fn valid_topic(topic: &[u8]) -> bool {
    (1..=MAX_TOPIC_BYTES).contains(&topic.len())
        && topic.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Splits a body into topic, key and payload; `None` when it is not well formed.
pub(super) fn parse_body(body: &[u8]) -> Option<(&str, &str, &[u8])> {
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
pub(super) fn header_len(data: &[u8], at: usize) -> Option<usize> {
    let header = data.get(at..at.checked_add(HEADER_BYTES)?)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    (MIN_BODY_BYTES..=MAX_BODY_BYTES).contains(&len).then_some(len)
}

/// Size of the valid record at `data[at..]` (header included), `None` when there is none.
pub(super) fn record_len_at(data: &[u8], at: usize) -> Option<usize> {
    let len = header_len(data, at)?;
    let body = data.get(at + HEADER_BYTES..at + HEADER_BYTES + len)?;
    parse_body(body)?;
    let crc = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
    (crc32fast::hash(body) == crc).then_some(HEADER_BYTES + len)
}

/// Reads one record of at most `limit` bytes; `Ok(None)` when it is not valid.
pub(super) fn read_record(file: &mut impl Read, limit: u64) -> io::Result<Option<(Record, u64)>> {
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
pub(super) struct Scan {
    /// Length of the segment once an invalid tail is cut off.
    pub(super) end: u64,
    /// Valid records.
    pub(super) records: u64,
    /// Corrupt regions `(start, end)` followed by a valid record.
    pub(super) skips: Vec<(u64, u64)>,
    /// Valid records that start before `from`.
    pub(super) acked: u64,
    /// Start of the first valid record at or after `from`, else `end`.
    pub(super) cursor: u64,
}

/// Validates a whole segment; `from` is the stored cursor offset in it (0 if elsewhere).
pub(super) fn scan(data: &[u8], from: u64) -> Scan {
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
}
