//! What to do after an InfluxDB write answered (or did not): the
//! classification is kept apart from the HTTP call so it can be tested and
//! read on its own.
//!
//! - 2xx: written.
//! - 400 Bad Request, 422 Unprocessable Entity (a bad line, a field type
//!   conflict) and 413 Payload Too Large: [`Action::Split`]; the batch is
//!   bisected until the offending messages are alone, those go to the DLQ,
//!   the rest is written. Retrying the same batch would never succeed.
//! - 429, 5xx, timeouts and connection errors: [`Action::Retry`] with
//!   backoff, honouring `Retry-After`.
//! - 401, 403, 404 (token or bucket wrong): also [`Action::Retry`]: nothing
//!   can be written until an operator fixes it, and dropping would lose data.
//!   They are logged as errors on every attempt.

use std::time::Duration;

use reqwest::StatusCode;

/// The decision after one write attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// InfluxDB accepted every point.
    Done,
    /// Try the same batch again after a delay (`Some` = what `Retry-After` asked).
    Retry(Option<Duration>),
    /// The batch holds something InfluxDB will never accept: bisect it.
    Split,
}

/// Classifies an HTTP status of `POST /api/v2/write`.
pub fn classify(status: StatusCode, retry_after: Option<Duration>) -> Action {
    match status.as_u16() {
        200..=299 => Action::Done,
        400 | 413 | 422 => Action::Split,
        _ => Action::Retry(retry_after),
    }
}

/// Parses a `Retry-After` header given in seconds (RFC 9110 §10.2.3; the
/// HTTP-date form is not used by InfluxDB and is ignored).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Exponential backoff with ±25 % jitter, bounded by `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubles per attempt, never beyond `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, next: initial }
    }

    /// The delay before the next attempt; `retry_after`, when the server
    /// sent one, wins (capped at `max`).
    pub fn delay(&mut self, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max);
        }
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(0.75 + fastrand::f64() * 0.5).min(self.max)
    }

    /// Back to `initial` after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_actions() {
        let s = |c| StatusCode::from_u16(c).expect("status");
        assert_eq!(classify(s(204), None), Action::Done);
        for c in [400, 413, 422] {
            assert_eq!(classify(s(c), None), Action::Split, "{c}");
        }
        for c in [401, 403, 404, 408, 429, 500, 502, 503, 504] {
            assert!(matches!(classify(s(c), None), Action::Retry(_)), "{c}");
        }
        assert_eq!(classify(s(429), Some(Duration::from_secs(3))), Action::Retry(Some(Duration::from_secs(3))));
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<Duration> = (0..6).map(|_| b.delay(None)).collect();
        assert!(d[0] >= Duration::from_millis(75) && d[0] <= Duration::from_millis(125), "{d:?}");
        assert!(d[1] >= Duration::from_millis(150) && d[1] <= Duration::from_millis(250), "{d:?}");
        assert!(d[5] <= Duration::from_secs(1) && d[5] >= Duration::from_millis(750), "{d:?}");
        assert_eq!(b.delay(Some(Duration::from_secs(60))), Duration::from_secs(1), "Retry-After capped at max");
        b.reset();
        assert!(b.delay(None) <= Duration::from_millis(125));
    }
}
