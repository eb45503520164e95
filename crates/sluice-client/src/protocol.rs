//! The upload operations, independent of the wire protocol that carries them.
//!
//! [`crate::upload`] drives uploads through [`Wire`] only; each protocol is a
//! module that implements the operations (`tus` today). A second protocol
//! (the IETF resumable-uploads draft) is a new variant and module here, chosen
//! at discovery, with nothing above this layer changing.

use crate::error::Result;
use crate::http::Http;
use crate::tus::{self, Kind, Status};
use sluice_core::tus::Metadata;
use sluice_core::Algorithm;
use url::Url;

/// A wire protocol the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// tus 1.0.0 (creation, checksum, termination, concatenation).
    Tus1,
}

/// The operations an upload needs, bound to an endpoint and a protocol.
#[derive(Clone)]
pub(crate) struct Wire {
    pub http: Http,
    pub endpoint: Url,
    pub protocol: Protocol,
}

impl Wire {
    /// Creates an upload of `length` bytes; returns its absolute URL.
    pub async fn create(&self, length: u64, metadata: &Metadata, kind: Kind) -> Result<String> {
        match self.protocol {
            Protocol::Tus1 => tus::create(&self.http, &self.endpoint, length, metadata, kind).await,
        }
    }

    /// Joins finished partial uploads, in order, into one; returns its URL.
    pub async fn join(&self, parts: &[String], metadata: &Metadata) -> Result<String> {
        match self.protocol {
            Protocol::Tus1 => tus::create_final(&self.http, &self.endpoint, parts, metadata).await,
        }
    }

    /// Where an upload stands.
    pub async fn status(&self, url: &str) -> Result<Status> {
        match self.protocol {
            Protocol::Tus1 => tus::head(&self.http, url).await,
        }
    }

    /// Appends `body` at `offset`; returns the new offset.
    pub async fn append(
        &self,
        url: &str,
        offset: u64,
        body: reqwest::Body,
        checksum: Option<(Algorithm, &[u8])>,
    ) -> Result<u64> {
        match self.protocol {
            Protocol::Tus1 => tus::patch(&self.http, url, offset, body, checksum).await,
        }
    }

    /// Ends an upload and frees what the server holds for it.
    pub async fn terminate(&self, url: &str) -> Result<()> {
        match self.protocol {
            Protocol::Tus1 => tus::terminate(&self.http, url).await,
        }
    }
}
