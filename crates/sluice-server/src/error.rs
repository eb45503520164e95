//! The server's one error type and its one mapping to HTTP.
//!
//! Refusals carry a core [`Reason`]; the status for each reason is decided in
//! [`status_for`] and nowhere else. The body is always
//! `{"code": "<reason code>", "message": "<plain words>"}`. Storage and I/O
//! failures are logged with their detail and answered with a generic 500.

use crate::store::StoreError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use sluice_core::{Reason, Rejection};
use std::fmt;

/// A request failed: a refusal to explain, or an internal failure to log.
#[derive(Debug)]
pub struct Error {
    rejection: Rejection,
    detail: Option<String>,
    headers: Vec<(HeaderName, String)>,
}

impl Error {
    /// A refusal with a reason and a message for people.
    pub fn new(reason: Reason, message: impl Into<String>) -> Error {
        Rejection::new(reason, message).into()
    }

    /// An internal failure: `detail` goes to the log, the client sees a generic 500.
    pub fn internal(detail: impl fmt::Display) -> Error {
        Error {
            rejection: Rejection::new(Reason::Internal, "The server could not complete the request."),
            detail: Some(detail.to_string()),
            headers: Vec::new(),
        }
    }

    /// Adds a header to the error response (e.g. `Tus-Max-Size`, `Location`).
    pub fn with_header(mut self, name: &'static str, value: impl fmt::Display) -> Error {
        self.headers.push((HeaderName::from_static(name), value.to_string()));
        self
    }

    /// The reason for this error.
    pub fn reason(&self) -> Reason {
        self.rejection.reason
    }

    /// The refusal (reason and plain-words message), for front-ends that render errors
    /// their own way (problem details for the IETF draft).
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// Headers the response must carry (`Retry-After`, `Location`, ...).
    pub fn headers(&self) -> &[(HeaderName, String)] {
        &self.headers
    }
}

impl From<Rejection> for Error {
    fn from(rejection: Rejection) -> Error {
        Error { rejection, detail: None, headers: Vec::new() }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::NotFound => Error::new(Reason::UploadNotFound, "No upload has this id."),
            StoreError::Gone => Error::new(Reason::UploadGone, "This upload was terminated or has expired."),
            StoreError::OffsetMismatch { actual } => {
                Error::new(Reason::OffsetMismatch, format!("The upload is at byte {actual}."))
            }
            StoreError::Fenced => {
                Error::new(Reason::UploadInterrupted, "A newer request took over this upload; resume from its offset.")
            }
            StoreError::Full => {
                Error::new(Reason::StorageFull, "The server ran out of storage space; what arrived before was kept.")
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "backend unavailable");
                Error::new(
                    Reason::BackendUnavailable,
                    "The server's storage cannot be reached right now; nothing acknowledged was lost. Retry shortly.",
                )
                .with_header("retry-after", crate::admission::RETRY_AFTER_SECS)
            }
            StoreError::Partial { cause, .. } => Error::from(*cause),
            StoreError::Exists => Error::internal("storage: an upload with this id exists already"),
            StoreError::Io(e) => Error::internal(format!("storage: {e}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.rejection.reason),
            None => self.rejection.fmt(f),
        }
    }
}

/// The HTTP status for each reason: the one place this is decided.
pub fn status_for(reason: Reason) -> StatusCode {
    use Reason::*;
    let code = match reason {
        FileTooLarge | ChunkTooLarge | ExceedsUploadLength | BatchTooLarge | RequestTooLarge | FieldTooLarge => 413,
        TypeNotAllowed | ExtensionNotAllowed | InvalidContentType => 415,
        FileTooSmall | FilenameRequired | FilenameTooLong | InvalidFilename | TooManyFiles | TooManyFields => 422,
        OffsetMismatch | UploadInterrupted | UploadIncomplete => 409,
        ChecksumMismatch | DigestMismatch => 460,
        FinalUploadImmutable => 403,
        ChecksumRequired
        | ChecksumAlgorithmUnsupported
        | InvalidHeader
        | InvalidMetadata
        | UploadLengthRequired
        | IncompleteBody
        | InvalidMultipart
        | InvalidPolicy
        | InvalidConcat
        | PartNotFinished
        | NotAPartial
        | UploadCompleted
        | InconsistentLength => 400,
        MetadataTooLarge | PartHeaderTooLarge => 431,
        UnsupportedVersion => 412,
        UploadNotFound => 404,
        UploadGone => 410,
        UploadLocked => 423,
        MethodNotAllowed => 405,
        RangeNotSatisfiable => 416,
        Unauthorized => 401,
        RefusedByHook => 403,
        IdleTimeout => 408,
        TooManyUploads | TooManyOpenUploads | RateLimited => 429,
        ServerBusy | HookUnavailable | BackendUnavailable => 503,
        StorageFull => 507,
        _ => 500,
    };
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status_for(self.rejection.reason)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match &self.detail {
            Some(detail) => tracing::error!(reason = %self.rejection.reason, %detail, "request failed"),
            None => tracing::debug!(reason = %self.rejection.reason, message = %self.rejection.message, "refused"),
        }
        let mut response = HttpResponse::build(status);
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.insert_header((name.clone(), value));
            }
        }
        let mut response = response.json(serde_json::json!({
            "code": self.rejection.reason.code(),
            "message": self.rejection.message,
        }));
        response.extensions_mut().insert(self.rejection.reason);
        response
    }
}

/// Shorthand for handler results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_deliberate_status() {
        for &reason in Reason::ALL {
            let status = status_for(reason);
            if reason == Reason::Internal {
                assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            } else if matches!(
                reason,
                Reason::ServerBusy | Reason::StorageFull | Reason::HookUnavailable | Reason::BackendUnavailable
            ) {
                assert!(status.is_server_error(), "{reason} maps to {status}");
            } else {
                assert!(status.is_client_error(), "{reason} maps to {status}");
            }
        }
        assert_eq!(status_for(Reason::ChecksumMismatch).as_u16(), 460);
    }
}
