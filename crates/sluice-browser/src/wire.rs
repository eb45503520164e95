//! The requests an upload makes, in the protocol its client speaks: tus 1.0 ([`tus`]) or
//! the IETF resumable-uploads draft ([`ietf`]). The upload loop is the same for both.

use crate::http::{Failure, Pending, Reply};
use crate::{ietf, tus};
use sluice_core::checksum::to_hex;
use sluice_core::tus::{Concat, Metadata};
use web_sys::{AbortSignal, Blob};

/// The protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// tus 1.0 (the default; any tus server).
    #[default]
    Tus,
    /// The IETF resumable-uploads draft, at [`ietf::VERSION`].
    Ietf,
}

/// What a creation request declares.
pub struct Creation<'a> {
    /// The upload's length.
    pub length: u64,
    /// `filename`, `filetype` and the page's own pairs.
    pub metadata: &'a Metadata,
    /// The whole file's SHA-256, verified by the server when the upload completes.
    pub sha256: Option<&'a [u8; 32]>,
    /// A tus partial upload (`Upload-Concat: partial`), to be joined by a final one.
    pub partial: bool,
}

impl Protocol {
    /// `POST endpoint`: creates the upload (the caller reads `Location`).
    pub async fn create(self, endpoint: &str, creation: &Creation<'_>) -> Result<Reply, Failure> {
        match self {
            Protocol::Tus => {
                // tus has no field for the whole file's digest: Sluice reads the `sha256` key.
                let mut pairs = creation.metadata.pairs().to_vec();
                if let Some(digest) = creation.sha256 {
                    pairs.push(("sha256".into(), to_hex(digest).into_bytes()));
                }
                let concat = creation.partial.then_some(Concat::Partial);
                tus::create(endpoint, creation.length, &Metadata::from_pairs(pairs), concat.as_ref()).await
            }
            Protocol::Ietf => ietf::create(endpoint, creation.length, creation.metadata, creation.sha256).await,
        }
    }

    /// `HEAD url`: the upload's offset.
    pub async fn head(self, url: &str, signal: Option<&AbortSignal>) -> Result<Reply, Failure> {
        match self {
            Protocol::Tus => tus::head(url, signal).await,
            Protocol::Ietf => ietf::head(url, signal).await,
        }
    }

    /// Starts `PATCH url` with `chunk` at `offset`; `last` is the chunk that ends the upload.
    pub fn patch<'a>(
        self,
        url: &str,
        offset: u64,
        chunk: Blob,
        checksum: Option<String>,
        last: bool,
        signal: Option<&'a AbortSignal>,
    ) -> Result<Pending<'a>, Failure> {
        match self {
            Protocol::Tus => tus::patch(url, offset, chunk, checksum, signal),
            Protocol::Ietf => ietf::patch(url, offset, chunk, last, signal),
        }
    }

    /// `DELETE url`, when the server supports it (`termination` for tus; always in the draft).
    pub async fn terminate(self, url: &str, caps: &tus::Capabilities) {
        match self {
            Protocol::Tus if caps.has("termination") => drop(tus::terminate(url).await),
            Protocol::Tus => {}
            Protocol::Ietf => drop(ietf::cancel(url).await),
        }
    }

    /// Whether the upload a 2xx reply describes is complete, given its offset: at its
    /// length in tus; as the reply says in the draft, where the client completes it.
    pub fn is_complete(self, reply: &Reply, offset: u64, length: u64) -> bool {
        match self {
            Protocol::Tus => offset == length,
            Protocol::Ietf => ietf::is_complete(reply).unwrap_or(offset == length),
        }
    }
}
