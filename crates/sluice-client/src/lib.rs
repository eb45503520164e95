//! Sluice's upload client: resumable uploads from Rust programs and from the
//! `sluice upload` command, with the same checks as the server and the browser.
//!
//! - [`Client::connect`] asks the endpoint what it supports (`OPTIONS`) and
//!   fetches its policy (`GET /policy`; a server without one gets a policy
//!   derived from `OPTIONS`).
//! - [`Client::open`] checks a file with `sluice-core`, reading at most its first
//!   8 KiB: a refused file costs no request.
//! - [`Client::upload`] creates (or resumes) the upload and streams the file in
//!   chunks through a fixed buffer, with a checksum per chunk when the server
//!   takes one, retrying transient failures with backoff that honours
//!   `Retry-After` and the server's reason codes. With [`Options::parts`] above 1
//!   and a server that offers concatenation, parts go up in parallel and are joined.
//! - Resumption across runs: the state directory remembers each file's upload
//!   by a fingerprint of its content, so running the same upload again goes on
//!   from the server's offset.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sluice_client::Error> {
//! use sluice_client::{Client, Options};
//!
//! let client = Client::connect("http://127.0.0.1:8080/files/", Options::default()).await?;
//! let file = client.open("backup.tar".as_ref()).await?;   // refused here if the policy says no
//! let done = client.upload(&file, &()).await?;
//! println!("{} -> {}", file.path.display(), done.url);
//! # Ok(()) }
//! ```
//!
//! The wire protocol is tus 1.0; [`Protocol`] is the seam for another.

#[cfg(feature = "cli")]
pub mod cli;
mod client;
mod error;
mod http;
mod protocol;
pub mod retry;
mod source;
pub mod state;
mod tus;
mod upload;

pub use client::{
    choose_checksum, policy_from_capabilities, ChecksumChoice, Client, Options, Progress, Uploaded, DEFAULT_CHUNK_SIZE,
};
pub use error::{code, Error, Result};
pub use protocol::Protocol;
pub use source::{expand, LocalFile};
pub use tus::{Capabilities, Status};
pub use upload::{plan_parts, MIN_PART_SIZE};
