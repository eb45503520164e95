//! Whole-file SHA-256, computed as bytes arrive: the hash state is kept in the record
//! between requests (and restarts), so verifying a client's declared digest at
//! completion never reads the file again.

use super::Engine;
use crate::error::{Error, Result};
use crate::store::UploadRecord;
use futures_util::StreamExt;
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};
use sluice_core::checksum::to_hex;
use sluice_core::Reason;

/// The state to continue hashing an upload from, if its digest is wanted and its state
/// covers every byte received (a fresh state at byte 0).
pub(super) fn resume(record: &UploadRecord, wanted: bool) -> Option<Sha256> {
    if !wanted && record.expected_sha256.is_none() {
        return None;
    }
    match &record.hash_state {
        _ if record.offset == 0 => Some(Sha256::new()),
        Some(bytes) => Sha256::deserialize(bytes.as_slice().try_into().ok()?).ok(),
        None => None,
    }
}

/// Keeps `state` in the record if it covers exactly the bytes stored, else drops it
/// (completion then hashes the file once).
pub(super) fn keep(record: &mut UploadRecord, state: Option<Sha256>, covers_stored: bool) {
    record.hash_state = state.filter(|_| covers_stored).map(|state| state.serialize().to_vec());
}

impl Engine {
    /// At completion: the file's SHA-256 from the kept state (or by reading it once),
    /// checked against the client's declaration. A mismatch removes the upload and is
    /// refused with `digest_mismatch`.
    pub(super) async fn settle_digest(&self, record: &mut UploadRecord) -> Result<()> {
        let wanted = record.expected_sha256.is_some() || record.hash_state.is_some();
        if !wanted {
            return Ok(());
        }
        let state =
            record.hash_state.take().and_then(|bytes| Sha256::deserialize(bytes.as_slice().try_into().ok()?).ok());
        let digest = match state {
            Some(state) => to_hex(&state.finalize()),
            None => self.hash_stored(record).await?,
        };
        if let Some(expected) = &record.expected_sha256 {
            if !expected.eq_ignore_ascii_case(&digest) {
                self.remove(&record.id).await?;
                self.metrics.terminated.inc();
                return Err(Error::new(
                    Reason::DigestMismatch,
                    format!("The file's SHA-256 is {digest}, not the {expected} declared for it; it was not accepted."),
                ));
            }
        }
        record.sha256 = Some(digest);
        Ok(())
    }

    async fn hash_stored(&self, record: &UploadRecord) -> Result<String> {
        let mut hasher = Sha256::new();
        let mut bytes = self.bytes.read(&record.id, 0..record.offset).await?;
        while let Some(chunk) = bytes.next().await {
            hasher.update(&chunk.map_err(Error::internal)?);
        }
        Ok(to_hex(&hasher.finalize()))
    }
}
