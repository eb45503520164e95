//! The one error type: a stable code (the core crate's reason codes, plus a
//! few that only a client can meet) and a message meant for a person.

use sluice_core::{Reason, Rejection};
use std::fmt;
use wasm_bindgen::JsValue;

/// Codes a client meets that are not refusals by a policy. Everything else
/// uses the core crate's [`Reason`] codes, so the browser shows the same code
/// the server would send.
pub mod code {
    /// The upload was cancelled by the page.
    pub const CANCELLED: &str = "cancelled";
    /// The server could not be reached (after every retry).
    pub const NETWORK_ERROR: &str = "network_error";
    /// The server answered with something a tus 1.0 server would not send.
    pub const UNEXPECTED_RESPONSE: &str = "unexpected_response";
    /// Reading the file failed (removed, changed or unreadable).
    pub const READ_ERROR: &str = "read_error";
    /// The options passed by the page are invalid.
    pub const INVALID_OPTIONS: &str = "invalid_options";
}

/// An error with a stable `code`, a message, and the HTTP status when a server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Stable machine-readable code, e.g. `file_too_large` or `network_error`.
    pub code: String,
    /// Plain words for a person.
    pub message: String,
    /// The HTTP status the server answered with, if any.
    pub status: Option<u16>,
}

impl Error {
    /// An error with a client-side code (see [`code`]).
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Error { code: code.to_string(), message: message.into(), status: None }
    }

    /// The core reason: the code when it is one of the core crate's, else what the HTTP
    /// status means (see [`crate::http::reason_for_status`]).
    pub fn reason(&self) -> Option<Reason> {
        Reason::from_code(&self.code).or_else(|| self.status.and_then(crate::http::reason_for_status))
    }

    /// Converts to a JS `Error` carrying `code` (and `status`) properties.
    pub fn to_js(&self) -> JsValue {
        let err = js_sys::Error::new(&self.message);
        err.set_name("SluiceError");
        let value: JsValue = err.into();
        crate::js::set(&value, "code", self.code.as_str());
        if let Some(status) = self.status {
            crate::js::set(&value, "status", status);
        }
        value
    }
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Self {
        Error { code: r.reason.code().to_string(), message: r.message, status: None }
    }
}

impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        e.to_js()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
