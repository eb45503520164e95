//! When to try again and how long to wait.
//!
//! A failure is judged by the server's reason code when it sent one
//! ([`Reason::is_transient`], the rule every Sluice client shares), and by the
//! status class otherwise (tusd, `@tus/server` and other servers send no code).
//! Delays grow exponentially with jitter; a server's `Retry-After` wins.

use crate::error::Error;
use sluice_core::Reason;
use std::time::{Duration, SystemTime};

/// What to do after a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transient: wait, re-read the offset, try again.
    Retry,
    /// The server's offset is not ours (409): re-read it and continue at once.
    Resync,
    /// A refusal that trying again will not change.
    Stop,
}

/// Classifies a failure: by its reason code when it is one of the core's, by status otherwise.
pub fn classify(err: &Error) -> Verdict {
    match err.reason() {
        Some(Reason::OffsetMismatch | Reason::UploadInterrupted) => Verdict::Resync,
        Some(reason) if reason.is_transient() => Verdict::Retry,
        Some(_) => Verdict::Stop,
        None => classify_status(err.status),
    }
}

/// Classifies by HTTP status alone (`None`: no answer, a network error).
pub fn classify_status(status: Option<u16>) -> Verdict {
    match status {
        None => Verdict::Retry,
        Some(409) => Verdict::Resync,
        // 460: the chunk arrived damaged; sending it again may well succeed.
        Some(408 | 423 | 429 | 460) => Verdict::Retry,
        Some(501 | 505) => Verdict::Stop,
        Some(s) if s >= 500 => Verdict::Retry,
        Some(_) => Verdict::Stop,
    }
}

/// Backoff settings: delay = min(max, base * 2^attempt), jittered to a random
/// point in its upper half so clients that failed together do not return together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Longest computed delay (a `Retry-After` may be longer, up to an hour).
    pub max: Duration,
    /// Consecutive failures tolerated before giving up; any progress resets the count.
    pub max_retries: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(500), max: Duration::from_secs(20), max_retries: 10 }
    }
}

/// Longest `Retry-After` honoured: a bogus header must not park an upload forever.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Backoff {
    /// The delay before retry number `attempt` (0-based); `unit` is random in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(MAX_RETRY_AFTER);
        }
        let exp = self.base.saturating_mul(1u32 << attempt.min(20));
        let capped = exp.min(self.max);
        capped / 2 + capped.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

/// A random number in `[0, 1)` for jitter.
pub fn jitter() -> f64 {
    getrandom::u64().map_or(0.5, |n| (n >> 11) as f64 / (1u64 << 53) as f64)
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, code: &str) -> Error {
        Error { status: Some(status), ..Error::new(code, "") }
    }

    #[test]
    fn reason_codes_decide_before_statuses() {
        assert_eq!(classify(&answered(503, "server_busy")), Verdict::Retry);
        assert_eq!(classify(&answered(429, "too_many_uploads")), Verdict::Retry);
        assert_eq!(classify(&answered(423, "upload_locked")), Verdict::Retry);
        assert_eq!(classify(&answered(409, "upload_interrupted")), Verdict::Resync);
        assert_eq!(classify(&answered(409, "offset_mismatch")), Verdict::Resync);
        // A 5xx whose code says a retry cannot help is not retried...
        assert_eq!(classify(&answered(507, "storage_full")), Verdict::Stop);
        assert_eq!(classify(&answered(500, "internal_error")), Verdict::Stop);
        assert_eq!(classify(&answered(413, "file_too_large")), Verdict::Stop);
        // ...while a code this version does not know falls back to the status.
        assert_eq!(classify(&answered(503, "some_future_code")), Verdict::Retry);
        assert_eq!(classify(&answered(400, "some_future_code")), Verdict::Stop);
        assert_eq!(classify(&Error::new(crate::error::code::NETWORK_ERROR, "")), Verdict::Retry);
    }

    #[test]
    fn statuses_of_servers_without_codes() {
        for s in [408, 423, 429, 460, 500, 502, 503, 504] {
            assert_eq!(classify_status(Some(s)), Verdict::Retry, "{s}");
        }
        assert_eq!(classify_status(Some(409)), Verdict::Resync);
        for s in [400, 401, 403, 404, 410, 413, 415, 501] {
            assert_eq!(classify_status(Some(s)), Verdict::Stop, "{s}");
        }
    }

    #[test]
    fn delays_grow_are_capped_and_jittered() {
        let b = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(1), max_retries: 5 };
        assert_eq!(b.delay(0, 0.0, None), Duration::from_millis(50));
        assert_eq!(b.delay(0, 1.0, None), Duration::from_millis(100));
        assert_eq!(b.delay(2, 1.0, None), Duration::from_millis(400));
        assert_eq!(b.delay(10, 1.0, None), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX, 0.0, None), Duration::from_millis(500));
        assert_eq!(b.delay(0, 0.3, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(b.delay(0, 0.3, Some(Duration::from_secs(1 << 40))), MAX_RETRY_AFTER);
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:09 GMT", now), Some(Duration::from_secs(9)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
