//! When to try again and how long to wait: exponential backoff with jitter,
//! overridden by a server's `Retry-After`. Pure logic, tested natively.

use sluice_core::Reason;

/// What to do after a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transient: wait and try again (no answer, or a reason core calls transient).
    Retry,
    /// The server's offset is not ours (`offset_mismatch`): re-read it and continue.
    Resync,
    /// A refusal that will not change by trying again.
    Stop,
}

/// Decides after a failed request. `reason` is the server's reason code (or the one its status
/// means, see [`crate::http::Reply::error`]); `None` with no answer at all is a network error.
/// Core's [`Reason::is_transient`] decides, so `507 storage_full` stops at once while
/// `503 server_busy` waits its `Retry-After`.
pub fn decide(answered: bool, reason: Option<Reason>) -> Verdict {
    match reason {
        _ if !answered => Verdict::Retry,
        Some(Reason::OffsetMismatch) => Verdict::Resync,
        Some(r) if r.is_transient() => Verdict::Retry,
        _ => Verdict::Stop,
    }
}

/// Backoff settings: delay = min(max, base * 2^attempt), then jittered to a
/// random point in its upper half, so clients that failed together do not
/// come back together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// First delay in milliseconds.
    pub base_ms: f64,
    /// Longest computed delay in milliseconds.
    pub max_ms: f64,
    /// Consecutive failures tolerated before giving up (reset by any progress).
    pub max_retries: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base_ms: 500.0, max_ms: 20_000.0, max_retries: 10 }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based); `unit` is a random
    /// number in `[0, 1)`. `retry_after_ms`, when the server sent one, wins
    /// (capped at an hour so a bogus header cannot park an upload forever).
    pub fn delay_ms(&self, attempt: u32, unit: f64, retry_after_ms: Option<f64>) -> f64 {
        if let Some(ms) = retry_after_ms {
            return ms.clamp(0.0, 3_600_000.0);
        }
        let exp = self.base_ms * 2f64.powi(attempt.min(30) as i32);
        let capped = exp.min(self.max_ms);
        capped / 2.0 + capped / 2.0 * unit.clamp(0.0, 1.0)
    }
}

/// Parses `Retry-After`: delay-seconds, or an HTTP-date (needs `now_ms`, Unix ms).
pub fn parse_retry_after(value: &str, now_unix_ms: f64, parse_date: impl Fn(&str) -> Option<f64>) -> Option<f64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs as f64 * 1000.0);
    }
    parse_date(value).map(|at| (at - now_unix_ms).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_decide_not_statuses() {
        assert_eq!(decide(false, None), Verdict::Retry, "no answer: network error");
        for r in [Reason::ServerBusy, Reason::UploadLocked, Reason::ChecksumMismatch, Reason::TooManyUploads] {
            assert_eq!(decide(true, Some(r)), Verdict::Retry, "{r}");
        }
        assert_eq!(decide(true, Some(Reason::OffsetMismatch)), Verdict::Resync);
        for r in [Reason::StorageFull, Reason::FileTooLarge, Reason::UploadGone, Reason::Internal] {
            assert_eq!(decide(true, Some(r)), Verdict::Stop, "{r}");
        }
        assert_eq!(decide(true, None), Verdict::Stop, "an unknown answer is not retried blindly");
    }

    #[test]
    fn delays_grow_are_capped_and_jittered() {
        let b = Backoff { base_ms: 100.0, max_ms: 1000.0, max_retries: 5 };
        assert_eq!(b.delay_ms(0, 0.0, None), 50.0);
        assert_eq!(b.delay_ms(0, 1.0, None), 100.0);
        assert_eq!(b.delay_ms(2, 1.0, None), 400.0);
        assert_eq!(b.delay_ms(10, 1.0, None), 1000.0);
        assert_eq!(b.delay_ms(10, 0.0, None), 500.0);
        assert_eq!(b.delay_ms(u32::MAX, 0.5, None), 750.0);
        assert_eq!(b.delay_ms(0, 0.3, Some(7000.0)), 7000.0);
        assert_eq!(b.delay_ms(0, 0.3, Some(1e12)), 3_600_000.0);
    }

    #[test]
    fn retry_after_forms() {
        let no_date = |_: &str| None;
        assert_eq!(parse_retry_after("3", 0.0, no_date), Some(3000.0));
        assert_eq!(parse_retry_after(" 0 ", 0.0, no_date), Some(0.0));
        assert_eq!(parse_retry_after("soon", 0.0, no_date), None);
        let date = |_: &str| Some(10_000.0);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 4_000.0, date), Some(6000.0));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 20_000.0, date), Some(0.0));
    }
}
