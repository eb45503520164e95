//! Speed and ETA of acknowledged bytes, over a sliding window. Pure logic.

use std::collections::VecDeque;

/// Measures the rate at which the server acknowledges bytes.
#[derive(Debug, Clone)]
pub struct Meter {
    window_ms: f64,
    /// (time in ms, acknowledged bytes) samples, oldest first.
    samples: VecDeque<(f64, u64)>,
}

impl Meter {
    /// A meter averaging over the last `window_ms` milliseconds.
    pub fn new(window_ms: f64) -> Self {
        Meter { window_ms, samples: VecDeque::new() }
    }

    /// Forgets the history (after a pause: idle time is not slowness).
    pub fn reset(&mut self) {
        self.samples.clear();
    }

    /// Records that `acked` bytes are acknowledged at time `now_ms`.
    pub fn record(&mut self, now_ms: f64, acked: u64) {
        self.samples.push_back((now_ms, acked));
        while self.samples.len() > 2 && self.samples.front().is_some_and(|&(t, _)| now_ms - t > self.window_ms) {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the window (0 until two samples exist).
    pub fn bytes_per_second(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, b0)), Some(&(t1, b1))) if t1 > t0 && b1 >= b0 => (b1 - b0) as f64 * 1000.0 / (t1 - t0),
            _ => 0.0,
        }
    }

    /// Seconds until `total` at the current speed; `None` while unknown.
    pub fn eta_seconds(&self, total: u64) -> Option<f64> {
        let acked = self.samples.back()?.1;
        if acked >= total {
            return Some(0.0);
        }
        let speed = self.bytes_per_second();
        (speed > 0.0).then(|| (total - acked) as f64 / speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_and_eta() {
        let mut m = Meter::new(5000.0);
        assert_eq!(m.bytes_per_second(), 0.0);
        assert_eq!(m.eta_seconds(100), None);
        m.record(0.0, 0);
        m.record(1000.0, 1000);
        assert_eq!(m.bytes_per_second(), 1000.0);
        assert_eq!(m.eta_seconds(3000), Some(2.0));
        m.record(2000.0, 3000);
        assert_eq!(m.eta_seconds(3000), Some(0.0));
    }

    #[test]
    fn old_samples_leave_the_window() {
        let mut m = Meter::new(1000.0);
        m.record(0.0, 0);
        m.record(10_000.0, 100);
        m.record(10_500.0, 600);
        m.record(11_000.0, 1100);
        assert_eq!(m.bytes_per_second(), 1000.0);
        m.reset();
        assert_eq!(m.bytes_per_second(), 0.0);
    }
}
