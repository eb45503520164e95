//! Sluice's shared rules: the one place where what an upload may be is decided.
//!
//! The browser module (compiled to WebAssembly) and the server both call these
//! functions, so a file refused in the browser would be refused by the server
//! for the same reason, with the same code and message. This crate does no
//! I/O and has no async runtime.
//!
//! - [`Policy`]: the rules, loaded from TOML or JSON and served as JSON.
//! - [`Policy::check_file`], [`Policy::check_append`], ...: the checks.
//! - [`sniff`]: the real type from leading bytes.
//! - [`checksum`]: incremental hashers; [`tus`]: header codecs.
//! - [`rufh`]: the IETF resumable-uploads draft's fields and per-version rules;
//!   [`repr_digest`]: the whole file's digest (RFC 9530).
//! - [`Rejection`] / [`Reason`]: the closed list of refusals with stable codes.
//!
//! ```
//! use sluice_core::{Policy, Reason};
//!
//! let policy = Policy::from_toml(r#"
//!     max_file_size = "10 MiB"
//!     allowed_types = ["application/pdf"]
//! "#).unwrap();
//! let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
//! let refused = policy.check_file(Some("report.pdf"), 2048, png).unwrap_err();
//! assert_eq!(refused.reason, Reason::TypeNotAllowed);
//! assert_eq!(refused.message, "This file is a PNG image; only PDF documents are accepted.");
//! ```

mod checks;
pub mod checksum;
pub mod chunk;
mod name;
mod policy;
mod reason;
pub mod repr_digest;
pub mod rufh;
pub mod sniff;
pub mod tus;
pub mod units;

pub use checks::Append;
pub use checksum::{Algorithm, Hasher};
pub use name::extension;
pub use policy::{ChecksumMode, Policy, MAX_LENGTH};
pub use reason::{Reason, Rejection, Result};
pub use sniff::{FileType, SNIFF_LEN};
