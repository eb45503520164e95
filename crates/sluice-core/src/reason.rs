//! The closed list of refusals, with stable machine-readable codes.
//!
//! Every refusal anywhere in Sluice (browser check, server check, protocol
//! error) is a [`Rejection`]: one [`Reason`] plus a human message. The code
//! string of a reason is public interface: the server sends it in its JSON
//! error body and the browser module maps it back with [`Reason::from_code`].

use std::fmt;

macro_rules! reasons {
    ($($variant:ident => $code:literal, $doc:literal;)*) => {
        /// Why something was refused. The set is closed and each code is stable.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reason {
            $(#[doc = $doc] $variant,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The stable code, e.g. `"file_too_large"`.
            pub fn code(self) -> &'static str {
                match self { $(Reason::$variant => $code,)* }
            }

            /// Parses a code sent by a server; `None` for a code this version does not know.
            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $($code => Some(Reason::$variant),)* _ => None }
            }
        }
    };
}

reasons! {
    FileTooLarge => "file_too_large", "The file (or its declared length) exceeds `max_file_size`.";
    FileTooSmall => "file_too_small", "The file is smaller than `min_file_size`.";
    ChunkTooLarge => "chunk_too_large", "One request carries more than `max_chunk_size` bytes.";
    ExceedsUploadLength => "exceeds_upload_length", "Data would run past the upload's declared length.";
    OffsetMismatch => "offset_mismatch", "The request's `Upload-Offset` is not the upload's current offset.";
    TypeNotAllowed => "type_not_allowed", "The type sniffed from the file's leading bytes is not in `allowed_types`.";
    ExtensionNotAllowed => "extension_not_allowed", "The file name's extension is not in `allowed_extensions`.";
    FilenameRequired => "filename_required", "The policy needs a file name (to check its extension) and none was given.";
    FilenameTooLong => "filename_too_long", "The file name is longer than `max_filename_length`.";
    InvalidFilename => "invalid_filename", "The file name is empty, `.`/`..`, or holds a path separator or control character.";
    TooManyFiles => "too_many_files", "A batch holds more files than `max_files_per_batch`.";
    BatchTooLarge => "batch_too_large", "A batch's total size exceeds `max_batch_size`.";
    ChecksumMismatch => "checksum_mismatch", "The chunk's bytes do not match its `Upload-Checksum`.";
    ChecksumRequired => "checksum_required", "The policy requires `Upload-Checksum` on every chunk.";
    ChecksumAlgorithmUnsupported => "checksum_algorithm_unsupported", "The checksum algorithm is not one the server accepts.";
    InvalidHeader => "invalid_header", "A protocol header is missing, malformed, duplicated or out of range.";
    InvalidMetadata => "invalid_metadata", "`Upload-Metadata` is malformed: bad base64, a bad or duplicate key.";
    MetadataTooLarge => "metadata_too_large", "`Upload-Metadata` is longer than `max_metadata_size`.";
    UploadLengthRequired => "upload_length_required", "Neither `Upload-Length` nor `Upload-Defer-Length: 1` was given.";
    UnsupportedVersion => "unsupported_version", "`Tus-Resumable` names a protocol version the server does not speak.";
    InvalidContentType => "invalid_content_type", "A PATCH body is not `application/offset+octet-stream`.";
    UploadNotFound => "upload_not_found", "No upload has this id (or it is not yours).";
    UploadGone => "upload_gone", "The upload was terminated or expired.";
    UploadLocked => "upload_locked", "Another request holds the upload and did not let go in time.";
    UploadInterrupted => "upload_interrupted", "A newer request for the same upload took over; what arrived was kept.";
    IncompleteBody => "incomplete_body", "The request body ended (connection closed or failed) before all of it arrived.";
    UploadIncomplete => "upload_incomplete", "The upload is not finished, so it cannot be downloaded.";
    InvalidMultipart => "invalid_multipart", "A multipart/form-data body is malformed (no boundary, a part without headers, bad framing).";
    RequestTooLarge => "request_too_large", "A form's declared `Content-Length` exceeds what its files and fields may add up to.";
    TooManyFields => "too_many_fields", "A form has more text fields than `max_form_fields`.";
    FieldTooLarge => "field_too_large", "A form's text field is longer than `max_form_field_size`.";
    PartHeaderTooLarge => "part_header_too_large", "A multipart part's headers exceed the parser's 64 KiB buffer.";
    Unauthorized => "unauthorized", "A valid bearer token is required (missing, malformed, forged or expired).";
    RefusedByHook => "refused_by_hook", "The application's pre-create hook refused this upload.";
    HookUnavailable => "hook_unavailable", "The application's pre-create hook could not be reached in time; retry later.";
    ServerBusy => "server_busy", "The server's memory budget for uploads is in use; retry after `Retry-After` seconds.";
    TooManyUploads => "too_many_uploads", "This client already has as many uploads in flight as allowed; retry later.";
    IdleTimeout => "idle_timeout", "The request body stalled for longer than the idle timeout; what arrived was kept.";
    StorageFull => "storage_full", "The server has no room for this upload now; what arrived before was kept.";
    InvalidPolicy => "invalid_policy", "A policy document is malformed or inconsistent.";
    MethodNotAllowed => "method_not_allowed", "The HTTP method is not supported on this route.";
    BackendUnavailable => "backend_unavailable", "The object store or database behind the server cannot be reached; retry after `Retry-After` seconds. Nothing acknowledged was lost.";
    DigestMismatch => "digest_mismatch", "The whole file's bytes do not match the digest the client declared for it; the upload was not accepted.";
    InvalidConcat => "invalid_concat", "`Upload-Concat` is malformed, or names an upload that cannot be joined.";
    PartNotFinished => "part_not_finished", "A final upload names a partial upload that is not finished yet.";
    NotAPartial => "not_a_partial", "A final upload names an upload that was not created as a partial one.";
    FinalUploadImmutable => "final_upload_immutable", "A final (concatenated) upload cannot receive bytes of its own.";
    UploadCompleted => "upload_completed", "The upload is already complete; it takes no more bytes.";
    InconsistentLength => "inconsistent_upload_length", "The request's length indications disagree with each other or with the upload's recorded length.";
    TooManyOpenUploads => "too_many_open_uploads", "This client has as many unfinished uploads, or declared-but-unsent bytes, as allowed; finish or cancel some first.";
    RangeNotSatisfiable => "range_not_satisfiable", "A download's `Range` names no byte of the file.";
    RateLimited => "rate_limited", "This client creates uploads faster than allowed; retry after `Retry-After` seconds.";
    Internal => "internal_error", "The server failed; the detail is in its log.";
}

impl Reason {
    /// Whether the same request may succeed if sent again later, unchanged (after
    /// `Retry-After` when the server sent one). Every client (the browser module, the
    /// CLI, the page) decides its retries here, by reason rather than by status.
    ///
    /// `storage_full` is *not* transient: a disk does not empty itself on a retry
    /// schedule. `checksum_mismatch` is: the bytes were damaged on the way.
    pub fn is_transient(self) -> bool {
        use Reason::*;
        matches!(
            self,
            ServerBusy
                | TooManyUploads
                | HookUnavailable
                | UploadLocked
                | UploadInterrupted
                | IncompleteBody
                | IdleTimeout
                | ChecksumMismatch
                | BackendUnavailable
                | RateLimited
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refusal: a stable [`Reason`] and a message meant for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The machine-readable reason.
    pub reason: Reason,
    /// A plain-words explanation, e.g. "This file is 5.0 GiB; the limit is 4.0 GiB."
    pub message: String,
}

impl Rejection {
    /// A rejection with the given reason and message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Rejection { reason, message: message.into() }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.reason.code())
    }
}

impl std::error::Error for Rejection {}

/// Shorthand for results whose error is a [`Rejection`].
pub type Result<T, E = Rejection> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &reason in Reason::ALL {
            assert!(seen.insert(reason.code()), "duplicate code {}", reason.code());
            assert_eq!(Reason::from_code(reason.code()), Some(reason));
            assert!(reason.code().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(Reason::from_code("no_such_code"), None);
    }

    #[test]
    fn transient_reasons_are_the_ones_a_retry_can_fix() {
        assert!(Reason::ServerBusy.is_transient());
        assert!(Reason::BackendUnavailable.is_transient());
        assert!(Reason::ChecksumMismatch.is_transient());
        assert!(!Reason::StorageFull.is_transient(), "a full disk is not retried on a schedule");
        assert!(!Reason::FileTooLarge.is_transient());
        assert!(
            !Reason::DigestMismatch.is_transient(),
            "the whole file is wrong: resending the same bytes cannot help"
        );
    }
}
