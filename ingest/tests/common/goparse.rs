//! A test oracle: how InfluxDB OSS 2.x reads one line of line protocol,
//! ported from its Go parser (`models/points.go`, v2.9.1: `scanLine`,
//! `scanTagsValue`, `unescapeTag`, `scanFieldValue`, `unescapeStringField`).
//! The `influxdb-line-protocol` crate's parser differs from it on
//! backslashes in tags (it unescapes `\\`, InfluxDB 2.x does not).

#![allow(dead_code)]

/// A parsed line: measurement, tags, fields (string fields unescaped, other
/// values raw) and timestamp.
#[derive(Debug, PartialEq)]
pub struct GoLine {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, String)>,
    pub timestamp: i64,
}

/// Index of the first of `stops` at or after `i` not preceded by `\`.
fn scan_unescaped(b: &[u8], mut i: usize, stops: &[u8]) -> usize {
    while i < b.len() {
        if stops.contains(&b[i]) && (i == 0 || b[i - 1] != b'\\') {
            return i;
        }
        i += 1;
    }
    i
}

fn unescape_tag(raw: &[u8]) -> String {
    let s = String::from_utf8(raw.to_vec()).expect("utf-8");
    s.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=")
}

fn unescape_string_field(raw: &[u8]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && i + 1 < raw.len() && (raw[i + 1] == b'\\' || raw[i + 1] == b'"') {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8")
}

/// Parses one line (without its trailing newline).
pub fn parse(line: &str) -> GoLine {
    let b = line.as_bytes();
    let end = scan_unescaped(b, 0, b",  ");
    let measurement = unescape_tag(&b[..end]);
    let mut i = end;
    let mut tags = Vec::new();
    while i < b.len() && b[i] == b',' {
        let k_end = scan_unescaped(b, i + 1, b"=");
        let v_end = scan_unescaped(b, k_end + 1, b", ");
        tags.push((unescape_tag(&b[i + 1..k_end]), unescape_tag(&b[k_end + 1..v_end])));
        i = v_end;
    }
    assert_eq!(b.get(i), Some(&b' '), "no field set in {line:?}");
    i += 1;
    let mut fields = Vec::new();
    loop {
        let k_end = scan_unescaped(b, i, b"=");
        let key = unescape_tag(&b[i..k_end]);
        // scanFieldValue
        let start = k_end + 1;
        let mut j = start;
        let mut quoted = false;
        while j < b.len() {
            if b[j] == b'\\' && j + 1 < b.len() && (b[j + 1] == b'"' || b[j + 1] == b'\\') {
                j += 2;
                continue;
            }
            if b[j] == b'"' {
                quoted = !quoted;
            } else if !quoted && (b[j] == b',' || b[j] == b' ') {
                break;
            }
            j += 1;
        }
        let raw = &b[start..j];
        let value = if raw.first() == Some(&b'"') {
            unescape_string_field(&raw[1..raw.len() - 1])
        } else {
            String::from_utf8(raw.to_vec()).expect("utf-8")
        };
        fields.push((key, value));
        i = j + 1;
        if b.get(j) != Some(&b',') {
            break;
        }
    }
    let timestamp = line[i..].parse().unwrap_or_else(|e| panic!("timestamp in {line:?}: {e}"));
    GoLine { measurement, tags, fields, timestamp }
}
