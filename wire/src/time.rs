//! [`Timestamp`]: RFC 3339 UTC instants with nanosecond precision.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in UTC, written as RFC 3339 with nine fractional digits and a
/// `Z` suffix (`2026-11-23T17:31:49.123456789Z`).
///
/// Reading accepts any RFC 3339 offset and converts it to UTC. Used for the
/// envelope `timestamp` (when the measurement started) and every other time
/// field of the wire messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Timestamp(Utc::now())
    }

    /// Builds a timestamp from nanoseconds since the Unix epoch.
    pub fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(DateTime::from_timestamp_nanos(nanos))
    }

    /// Nanoseconds since the Unix epoch (the InfluxDB point timestamp).
    ///
    /// Returns `None` outside 1677-09-21..2262-04-11, the range of an `i64`.
    pub fn unix_nanos(&self) -> Option<i64> {
        self.0.timestamp_nanos_opt()
    }

    /// Whole seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.0.timestamp()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_rfc3339(|text| f.write_str(text))
    }
}

impl Timestamp {
    /// Hands the RFC 3339 form to `f`: built on the stack
    /// ([`rfc3339_nanos`]), through chrono where that declines.
    fn with_rfc3339<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match rfc3339_nanos(&self.0).as_ref().map(|text| std::str::from_utf8(text)) {
            Some(Ok(text)) => f(text),
            _ => f(&self.0.to_rfc3339_opts(SecondsFormat::Nanos, true)),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, what chrono's `to_rfc3339_opts(Nanos,
/// true)` writes, built on the stack: chrono's returns a new `String`, once
/// per published message. `None` where chrono's own form differs (a year
/// outside 0..=9999, a leap second), which the caller then asks chrono for.
fn rfc3339_nanos(t: &DateTime<Utc>) -> Option<[u8; 30]> {
    use chrono::{Datelike, Timelike};
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = Some(t.nanosecond()).filter(|n| *n < 1_000_000_000)?;
    let mut text = *b"0000-00-00T00:00:00.000000000Z";
    for (at, len, value) in [
        (0, 4, year),
        (5, 2, t.month()),
        (8, 2, t.day()),
        (11, 2, t.hour()),
        (14, 2, t.minute()),
        (17, 2, t.second()),
        (20, 9, nanos),
    ] {
        let mut v = value;
        for digit in text[at..at + len].iter_mut().rev() {
            *digit = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    Some(text)
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.with_rfc3339(|text| s.serialize_str(text))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| Timestamp(t.with_timezone(&Utc)))
            .map_err(|e| serde::de::Error::custom(format_args!("not an RFC 3339 time ({e}): {s:?}")))
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 time in UTC with sub-second precision"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nine_fraction_digits_and_z() {
        let t = Timestamp::from_unix_nanos(1_795_456_309_000_000_000);
        assert_eq!(t.to_string(), "2026-11-23T17:51:49.000000000Z");
    }

    #[test]
    fn writes_what_chrono_writes() {
        // Across the i64 nanosecond range (1677..2262), in uneven steps,
        // plus chrono's extremes (years beyond 9999 and before 0).
        let mut nanos = i64::MIN;
        let mut times: Vec<DateTime<Utc>> = Vec::new();
        while let Some(next) = nanos.checked_add(77_777_777_777_777) {
            times.push(DateTime::from_timestamp_nanos(nanos));
            nanos = next;
        }
        times.extend([DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, DateTime::UNIX_EPOCH]);
        times.extend(DateTime::from_timestamp(1_483_228_799, 1_500_000_000)); // leap second
        for t in times {
            let chrono = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
            assert_eq!(Timestamp(t).to_string(), chrono);
            assert_eq!(serde_json::to_string(&Timestamp(t)).expect("serializes"), format!("{chrono:?}"));
        }
    }

    #[test]
    fn reads_offsets_as_utc() {
        let t: Timestamp = serde_json::from_str("\"2026-11-23T18:51:49.5+01:00\"").expect("parses");
        assert_eq!(t.to_string(), "2026-11-23T17:51:49.500000000Z");
    }

    #[test]
    fn rejects_non_rfc3339() {
        let e = serde_json::from_str::<Timestamp>("\"23/11/2026\"").expect_err("must fail");
        assert!(e.to_string().contains("not an RFC 3339 time"), "{e}");
    }
}
