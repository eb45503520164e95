//! What every draft response shares: the interop version echoed, the completeness
//! field, `Upload-Limit`, and refusals rendered as problem details.

use crate::engine::{Engine, Finish};
use crate::error::Error;
use crate::protocol::tus::headers;
use crate::store::UploadRecord;
use actix_web::body::BoxBody;
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use sluice_core::rufh::{field, InteropVersion, Problem, ProblemType, UploadLimit, PROBLEM_JSON};
use sluice_core::{Policy, Reason};
use std::time::SystemTime;

/// A refusal on its way to becoming problem details.
pub(super) struct Refusal {
    error: Error,
    /// The problem type, when the version's default for the reason is not the one.
    kind: Option<Option<ProblemType>>,
    /// `expected-offset` and `provided-offset` of a mismatching offset.
    offsets: Option<(u64, u64)>,
    headers: Vec<(HeaderName, String)>,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Refusal {
        Refusal { error, kind: None, offsets: None, headers: Vec::new() }
    }
}

impl From<sluice_core::Rejection> for Refusal {
    fn from(rejection: sluice_core::Rejection) -> Refusal {
        Error::from(rejection).into()
    }
}

impl Refusal {
    /// Uses this problem type (or none) whatever the reason's default.
    pub(super) fn typed(mut self, kind: Option<ProblemType>) -> Refusal {
        self.kind = Some(kind);
        self
    }

    /// Adds the offsets of a mismatching-offset problem.
    pub(super) fn offsets(mut self, expected: u64, provided: u64) -> Refusal {
        self.offsets = Some((expected, provided));
        self
    }

    /// Adds a header to the response.
    pub(super) fn header(mut self, name: &'static str, value: impl ToString) -> Refusal {
        self.headers.push((HeaderName::from_static(name), value.to_string()));
        self
    }

    /// The response: the status and headers the error maps to (and its log line), with
    /// a problem details body typed for `version` when it has a type for the reason.
    pub(super) fn render(self, version: Option<InteropVersion>) -> HttpResponse {
        let kind = self.kind.unwrap_or_else(|| version.and_then(|v| v.problem_type(self.error.reason())));
        let rejection = self.error.rejection().clone();
        let mut response = self.error.error_response();
        let status = response.status();
        let mut problem = Problem::new(kind, &rejection, status.as_u16(), status.canonical_reason().unwrap_or(""));
        if let Some((expected, provided)) = self.offsets {
            problem = problem.with_offsets(expected, provided);
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response.set_body(BoxBody::new(problem.to_json()))
    }
}

/// Shorthand for draft handler results.
pub(super) type Answer = Result<HttpResponse, Refusal>;

/// The request's interop version (refused with 412 or 400 when it is not one spoken here).
pub(super) fn version(req: &HttpRequest) -> Result<InteropVersion, Refusal> {
    let value = headers::single(req, field::INTEROP_VERSION)?.unwrap_or_default();
    Ok(InteropVersion::parse(value)?)
}

/// The response, refusals rendered, with the interop version echoed.
pub(super) fn finish(version: InteropVersion, answer: Answer) -> HttpResponse {
    let mut response = answer.unwrap_or_else(|refusal| refusal.render(Some(version)));
    response.headers_mut().insert(
        HeaderName::from_static("upload-draft-interop-version"),
        HeaderValue::from(u16::from(version.number())),
    );
    response
}

/// The draft answers 404 for an upload that is unknown, expired or cancelled alike
/// (tus tells the last two apart with 410).
pub(super) fn unknown(error: Error) -> Error {
    if error.reason() == Reason::UploadGone {
        return Error::new(Reason::UploadNotFound, error.rejection().message.clone());
    }
    error
}

/// When an append completes its upload: now on `?1`; on `?0` at its length through
/// version 6, never from 7.
pub(super) fn finish_when(version: InteropVersion, complete: bool) -> Finish {
    match (complete, version.completes_at_length()) {
        (true, _) => Finish::Now,
        (false, true) => Finish::AtLength,
        (false, false) => Finish::Later,
    }
}

/// Reads one of the draft's size fields (`Upload-Offset`, `Upload-Length`).
pub(super) fn size(req: &HttpRequest, version: InteropVersion, name: &str) -> Result<Option<u64>, Refusal> {
    Ok(version.read_size(name, headers::single(req, name)?)?)
}

/// Reads the version's completeness field.
pub(super) fn complete(req: &HttpRequest, version: InteropVersion) -> Result<Option<bool>, Refusal> {
    Ok(version.read_complete(headers::single(req, version.complete_field())?)?)
}

/// Adds the completeness field.
pub(super) fn complete_header(response: &mut HttpResponseBuilder, version: InteropVersion, complete: bool) {
    response.insert_header(version.render_complete(complete));
}

/// The `Upload-Limit` value for `version` (none before 6): the caller's policy, and for
/// an unfinished upload the seconds it has left.
pub(super) fn limit(
    version: InteropVersion,
    policy: &Policy,
    engine: &Engine,
    record: Option<&UploadRecord>,
) -> Option<String> {
    let mut limit = UploadLimit::from_policy(policy);
    if let Some(record) = record {
        limit.max_age = (!record.is_complete()).then(|| {
            let left = engine.expires_at(record).duration_since(SystemTime::now()).unwrap_or_default();
            left.as_secs()
        });
    }
    limit.render(version)
}

/// Adds `Upload-Limit` (see [`limit`]).
pub(super) fn limit_header(
    response: &mut HttpResponseBuilder,
    version: InteropVersion,
    policy: &Policy,
    engine: &Engine,
    record: Option<&UploadRecord>,
) {
    if let Some(value) = limit(version, policy, engine, record) {
        response.insert_header((field::UPLOAD_LIMIT, value));
    }
}
