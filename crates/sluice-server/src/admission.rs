//! Admission control: a memory budget for upload buffers and a cap per client.
//!
//! Every append holds its storage backend's write buffers for as long as it
//! streams (`Storage::append_memory`, 256 KiB for the file system) plus the
//! buffers actix keeps for a streaming connection ([`CONNECTION_BUFFERS`]).
//! The budget is a number of such appends; when it is in use, a new append is answered
//! `503 server_busy` with `Retry-After` instead of allocating past it. One
//! client ([`ClientId`]: its address, resolved through trusted proxies) may
//! hold at most `max_per_client` appends (`429 too_many_uploads`), so one
//! client cannot take the whole budget.

use crate::client::ClientId;
use crate::error::{Error, Result};
use sluice_core::Reason;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What actix-http holds for one request streaming at full speed, measured
/// (`cargo xtask bench`, the 256-client scenario): its read buffer (up to
/// 128 KiB of data, grown by doubling), its 32 KiB payload queue, and the chunk
/// being written. Not configurable in actix-http 3, so it is charged here.
pub(crate) const CONNECTION_BUFFERS: u64 = 384 << 10;

/// Seconds a refused client is told to wait.
pub(crate) const RETRY_AFTER_SECS: u32 = 1;

/// The budget and the per-client counts.
pub struct Admission {
    budget_bytes: u64,
    budget: Arc<Semaphore>,
    slots: u32,
    bytes_per_slot: u64,
    max_per_client: u32,
    clients: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// One admitted append; gives its share back on drop.
pub struct Permit {
    _budget: OwnedSemaphorePermit,
    client: Option<IpAddr>,
    clients: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Admission {
    /// A budget of `budget_bytes` for appends that each hold `bytes_per_append`
    /// of storage buffers plus [`CONNECTION_BUFFERS`] (at least one append
    /// always fits), and `max_per_client` per address.
    pub fn new(budget_bytes: u64, bytes_per_append: u64, max_per_client: u32) -> Admission {
        let bytes_per_slot = bytes_per_append + CONNECTION_BUFFERS;
        let slots =
            u32::try_from(budget_bytes / bytes_per_slot).unwrap_or(u32::MAX).clamp(1, Semaphore::MAX_PERMITS as u32);
        Admission {
            budget_bytes: budget_bytes.max(bytes_per_slot),
            budget: Arc::new(Semaphore::new(slots as usize)),
            slots,
            bytes_per_slot,
            max_per_client: max_per_client.max(1),
            clients: Arc::default(),
        }
    }

    /// Admits one append from `client`, or refuses with 429 or 503 (+ `Retry-After`).
    /// A client without an address (in-process tests) has no per-client cap.
    pub fn admit(&self, client: &ClientId) -> Result<Permit> {
        let client = client.ip();
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ip) = client {
            if clients.get(&ip).copied().unwrap_or(0) >= self.max_per_client {
                return Err(Error::new(
                    Reason::TooManyUploads,
                    format!("At most {} uploads per client may be in flight at once.", self.max_per_client),
                )
                .with_header("retry-after", RETRY_AFTER_SECS));
            }
        }
        let Ok(budget) = self.budget.clone().try_acquire_owned() else {
            return Err(Error::new(
                Reason::ServerBusy,
                "The server is at its memory budget for uploads; retry shortly.",
            )
            .with_header("retry-after", RETRY_AFTER_SECS));
        };
        if let Some(ip) = client {
            *clients.entry(ip).or_default() += 1;
        }
        Ok(Permit { _budget: budget, client, clients: self.clients.clone() })
    }

    /// Appends admitted right now.
    pub fn in_flight(&self) -> u64 {
        u64::from(self.slots) - self.budget.available_permits() as u64
    }

    /// Bytes of the budget in use right now.
    pub fn bytes_in_use(&self) -> u64 {
        self.in_flight() * self.bytes_per_slot
    }

    /// The whole budget in bytes, as configured (at least one append).
    pub fn budget_bytes(&self) -> u64 {
        self.budget_bytes
    }

    /// Whether no append could be admitted now.
    pub fn is_exhausted(&self) -> bool {
        self.budget.available_permits() == 0
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(ip) = self.client else { return };
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = clients.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                clients.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_admits_exactly_its_size() {
        let admission = Admission::new(4 << 20, (1 << 20) - CONNECTION_BUFFERS, 100);
        let held: Vec<_> = (0..4).map(|_| admission.admit(&ClientId::default()).unwrap()).collect();
        assert_eq!(admission.bytes_in_use(), 4 << 20);
        let refused = admission.admit(&ClientId::default()).err().unwrap();
        assert_eq!(refused.reason(), Reason::ServerBusy);
        drop(held);
        assert_eq!(admission.in_flight(), 0);
        assert!(admission.admit(&ClientId::default()).is_ok());
    }

    #[test]
    fn one_client_cannot_take_everything() {
        let admission = Admission::new(100 << 20, 1 << 20, 2);
        let ip: IpAddr = "127.0.0.7".parse().unwrap();
        let a = admission.admit(&ClientId::from_ip(ip)).unwrap();
        let _b = admission.admit(&ClientId::from_ip(ip)).unwrap();
        assert_eq!(admission.admit(&ClientId::from_ip(ip)).err().unwrap().reason(), Reason::TooManyUploads);
        assert!(
            admission.admit(&ClientId::from_ip("127.0.0.8".parse().unwrap())).is_ok(),
            "other clients are unaffected"
        );
        drop(a);
        assert!(admission.admit(&ClientId::from_ip(ip)).is_ok());
    }

    #[test]
    fn a_tiny_budget_still_admits_one() {
        assert!(Admission::new(0, 1 << 20, 1).admit(&ClientId::default()).is_ok());
    }
}
