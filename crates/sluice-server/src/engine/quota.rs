//! What one client may hold open, and how fast it may create: a creation flood from
//! one client gets `429` with a reason while everyone else carries on.
//!
//! - At most `max_open_uploads` unfinished uploads per client, and at most
//!   `max_open_bytes` declared-but-unreceived bytes over them (counted by the record
//!   store, so the caps are cluster-wide when records are shared). Finishing,
//!   terminating or expiring an upload gives its share back.
//! - A token bucket per client: `creations_per_second` sustained, `creation_burst` at
//!   once. Per instance (each instance refills its own buckets).
//!
//! A client is its token subject when authorization is on, else its address.

use crate::error::{Error, Result};
use crate::store::OpenUsage;
use sluice_core::units::format_size;
use sluice_core::Reason;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The caps (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quotas {
    /// Unfinished uploads per client.
    pub max_open_uploads: u64,
    /// Declared-but-unreceived bytes per client.
    pub max_open_bytes: u64,
    /// Creations per second per client, sustained.
    pub creations_per_second: f64,
    /// Creations per client at once.
    pub creation_burst: f64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas { max_open_uploads: 1000, max_open_bytes: 1 << 40, creations_per_second: 20.0, creation_burst: 200.0 }
    }
}

/// Buckets of clients that created recently; forgotten once full again.
#[derive(Debug, Default)]
pub(crate) struct CreationBuckets(Mutex<HashMap<String, (f64, Instant)>>);

/// Buckets past this many clients are pruned of full ones.
const PRUNE_AT: usize = 10_000;

impl CreationBuckets {
    /// Takes one creation from `client`'s bucket, or says how long to wait.
    pub(crate) fn take(&self, client: &str, quotas: &Quotas) -> Result<()> {
        let now = Instant::now();
        let mut buckets = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * quotas.creations_per_second < quotas.creation_burst
            });
        }
        let (tokens, at) = buckets.entry(client.to_string()).or_insert((quotas.creation_burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * quotas.creations_per_second).min(quotas.creation_burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - *tokens) / quotas.creations_per_second).ceil().max(1.0) as u64;
        Err(Error::new(
            Reason::RateLimited,
            format!(
                "This client creates uploads faster than {} per second; retry shortly.",
                quotas.creations_per_second
            ),
        )
        .with_header("retry-after", wait))
    }
}

impl Quotas {
    /// Refuses a creation of `length` more declared bytes past a client's caps.
    pub(crate) fn check_open(&self, usage: OpenUsage, length: u64) -> Result<()> {
        if usage.uploads >= self.max_open_uploads {
            return Err(Error::new(
                Reason::TooManyOpenUploads,
                format!(
                    "This client has {} unfinished uploads, the most allowed; finish or cancel some first.",
                    usage.uploads
                ),
            )
            .with_header("retry-after", 60));
        }
        if usage.unreceived.saturating_add(length) > self.max_open_bytes {
            return Err(Error::new(
                Reason::TooManyOpenUploads,
                format!(
                    "This client's unfinished uploads still expect {}; with this one it would pass the {} allowed.",
                    format_size(usage.unreceived),
                    format_size(self.max_open_bytes)
                ),
            )
            .with_header("retry-after", 60));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let quotas = Quotas { creations_per_second: 1.0, creation_burst: 3.0, ..Quotas::default() };
        let buckets = CreationBuckets::default();
        for _ in 0..3 {
            buckets.take("a", &quotas).unwrap();
        }
        let refused = buckets.take("a", &quotas).unwrap_err();
        assert_eq!(refused.reason(), Reason::RateLimited);
        assert!(refused.headers().iter().any(|(name, value)| name == "retry-after" && value == "1"));
        buckets.take("b", &quotas).expect("another client has its own bucket");
    }

    #[test]
    fn open_uploads_and_bytes_are_capped() {
        let quotas = Quotas { max_open_uploads: 2, max_open_bytes: 100, ..Quotas::default() };
        quotas.check_open(OpenUsage { uploads: 1, unreceived: 50 }, 50).unwrap();
        let too_many = quotas.check_open(OpenUsage { uploads: 2, unreceived: 0 }, 1).unwrap_err();
        assert_eq!(too_many.reason(), Reason::TooManyOpenUploads);
        let too_much = quotas.check_open(OpenUsage { uploads: 1, unreceived: 60 }, 41).unwrap_err();
        assert_eq!(too_much.reason(), Reason::TooManyOpenUploads);
    }
}
