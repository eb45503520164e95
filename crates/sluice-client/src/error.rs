//! The one error type: a stable code and a message meant for a person.
//!
//! Codes are the core crate's [`Reason`] codes whenever the server sent one (or
//! the client's own check refused the file), so a script sees the same word the
//! server and the browser use; [`code`] lists the few only a client can meet.

use sluice_core::{Reason, Rejection};
use std::fmt;
use std::time::Duration;

/// Codes a client meets that are not refusals by a policy.
pub mod code {
    /// The server could not be reached, or the connection broke (after every retry).
    pub const NETWORK_ERROR: &str = "network_error";
    /// The server answered with something a tus 1.0 server would not send.
    pub const UNEXPECTED_RESPONSE: &str = "unexpected_response";
    /// Reading the file failed (missing, unreadable, or changed while uploading).
    pub const READ_ERROR: &str = "read_error";
    /// The options are invalid (a malformed endpoint, zero parts...).
    pub const INVALID_OPTIONS: &str = "invalid_options";
    /// The server does not offer what the options ask for (a checksum algorithm, concatenation).
    pub const UNSUPPORTED: &str = "unsupported";
}

/// An error with a stable `code`, a message, and what the server said when it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Stable machine-readable code, e.g. `file_too_large` or `network_error`.
    pub code: String,
    /// Plain words for a person.
    pub message: String,
    /// The HTTP status, when a server answered.
    pub status: Option<u16>,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl Error {
    /// An error with a client-side code (see [`code`]).
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Error { code: code.to_string(), message: message.into(), status: None, retry_after: None }
    }

    /// The core reason, when the code is one of the core crate's.
    pub fn reason(&self) -> Option<Reason> {
        Reason::from_code(&self.code)
    }

    pub(crate) fn network(url: &str, err: &reqwest::Error) -> Self {
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            detail = format!("{detail}: {s}");
            source = s.source();
        }
        Error::new(code::NETWORK_ERROR, format!("{url}: {detail}"))
    }

    pub(crate) fn read(path: &std::path::Path, err: &std::io::Error) -> Self {
        Error::new(code::READ_ERROR, format!("{}: {err}", path.display()))
    }

    pub(crate) fn unexpected(message: impl Into<String>) -> Self {
        Error::new(code::UNEXPECTED_RESPONSE, message)
    }
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Self {
        Error::new(r.reason.code(), r.message)
    }
}

impl fmt::Display for Error {
    /// `code: message`, the form `sluice upload` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
