//! The IETF draft "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload),
//! interop versions 3 to 8: its field codecs and every rule that differs between versions.
//!
//! A request speaks the draft when it carries `Upload-Draft-Interop-Version` with a
//! version this crate knows; [`InteropVersion`] then answers each version-dependent
//! question (which completeness field, which media type on append, which problem
//! types exist, ...). The fields are RFC 9651 structured fields, parsed strictly:
//! a malformed value is an `invalid_header` refusal, except from version 8, where a
//! value of the wrong type makes the receiver ignore the field.
//!
//! ```
//! use sluice_core::rufh::{field, InteropVersion};
//!
//! let v3 = InteropVersion::parse("3").unwrap();
//! assert_eq!(v3.complete_field(), field::UPLOAD_INCOMPLETE);
//! // Version 3 says "incomplete: yes" where later versions say "complete: no".
//! assert_eq!(v3.read_complete(Some("?1")), Ok(Some(false)));
//! assert_eq!(v3.render_complete(false), (field::UPLOAD_INCOMPLETE, "?1"));
//!
//! let v6 = InteropVersion::parse("6").unwrap();
//! assert_eq!(v6.append_content_type(), Some("application/partial-upload"));
//! ```

mod limit;
mod problem;
pub(crate) mod structured;
mod version;

pub use limit::UploadLimit;
pub use problem::{Problem, ProblemType};
pub use version::InteropVersion;

/// The names of the draft's fields, as sent.
pub mod field {
    /// The interop version of the draft a request or response speaks (sf-integer).
    pub const INTEROP_VERSION: &str = "Upload-Draft-Interop-Version";
    /// Whether the request carries the upload's last bytes (sf-boolean; version 4 on).
    pub const UPLOAD_COMPLETE: &str = "Upload-Complete";
    /// Version 3's completeness field, with the opposite meaning (sf-boolean).
    pub const UPLOAD_INCOMPLETE: &str = "Upload-Incomplete";
    /// Bytes of the upload received so far, or where an append starts (sf-integer).
    pub const UPLOAD_OFFSET: &str = "Upload-Offset";
    /// The whole upload's length (sf-integer).
    pub const UPLOAD_LENGTH: &str = "Upload-Length";
    /// The server's limits (Dictionary of sf-integers; version 6 on).
    pub const UPLOAD_LIMIT: &str = "Upload-Limit";
}

/// The media type an append's content must have from version 6.
pub const PARTIAL_UPLOAD: &str = "application/partial-upload";
/// The media type of an RFC 9457 problem details body.
pub const PROBLEM_JSON: &str = "application/problem+json";
