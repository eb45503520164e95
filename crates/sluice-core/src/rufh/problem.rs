//! RFC 9457 problem details, with the draft's problem types.

use crate::reason::{Reason, Rejection};
use serde::{Deserialize, Serialize};

/// The problem types the draft registers (each exists in some versions only; see
/// [`InteropVersion::has_problem`](super::InteropVersion::has_problem)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemType {
    /// The append's `Upload-Offset` is not the upload's offset (409, with
    /// `expected-offset` and `provided-offset`).
    MismatchingOffset,
    /// The upload is complete and takes no more content.
    CompletedUpload,
    /// The request's length indications disagree with each other or with the upload.
    InconsistentLength,
}

const TYPE_BASE: &str = "https://iana.org/assignments/http-problem-types#";

impl ProblemType {
    /// Every problem type.
    pub const ALL: [ProblemType; 3] =
        [ProblemType::MismatchingOffset, ProblemType::CompletedUpload, ProblemType::InconsistentLength];

    /// The type URI, e.g. `https://iana.org/assignments/http-problem-types#mismatching-upload-offset`.
    pub fn uri(self) -> String {
        format!("{TYPE_BASE}{}", self.fragment())
    }

    fn fragment(self) -> &'static str {
        match self {
            ProblemType::MismatchingOffset => "mismatching-upload-offset",
            ProblemType::CompletedUpload => "completed-upload",
            ProblemType::InconsistentLength => "inconsistent-upload-length",
        }
    }

    /// The problem type a type URI names, if it is one of the draft's.
    pub fn from_uri(uri: &str) -> Option<ProblemType> {
        let fragment = uri.strip_prefix(TYPE_BASE)?;
        Self::ALL.into_iter().find(|p| p.fragment() == fragment)
    }

    /// A short summary that does not change between occurrences.
    pub fn title(self) -> &'static str {
        match self {
            ProblemType::MismatchingOffset => "offset from request does not match offset of resource",
            ProblemType::CompletedUpload => "upload is already completed",
            ProblemType::InconsistentLength => "inconsistent length values for upload",
        }
    }
}

/// An RFC 9457 problem details body (`application/problem+json`).
///
/// Besides the standard members it carries Sluice's reason `code`, so a client maps
/// it like any other Sluice error, and for a mismatching offset the
/// `expected-offset` / `provided-offset` members the draft defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The type URI; `about:blank` when the problem has no type beyond its status.
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    /// A short summary of the type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The HTTP status of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong this time, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Sluice's reason code, e.g. `offset_mismatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The offset the server expected (mismatching offset only).
    #[serde(rename = "expected-offset", default, skip_serializing_if = "Option::is_none")]
    pub expected_offset: Option<u64>,
    /// The offset the request gave (mismatching offset only).
    #[serde(rename = "provided-offset", default, skip_serializing_if = "Option::is_none")]
    pub provided_offset: Option<u64>,
}

fn about_blank() -> String {
    "about:blank".to_string()
}

impl Problem {
    /// The problem for a refusal sent with `status`: of type `kind` when the version has
    /// one for it, else `about:blank`, whose title is the status's reason phrase
    /// (`status_text`).
    pub fn new(kind: Option<ProblemType>, rejection: &Rejection, status: u16, status_text: &str) -> Problem {
        Problem {
            kind: kind.map_or_else(about_blank, ProblemType::uri),
            title: Some(kind.map_or_else(|| status_text.to_string(), |kind| kind.title().to_string())),
            status: Some(status),
            detail: Some(rejection.message.clone()),
            code: Some(rejection.reason.code().to_string()),
            expected_offset: None,
            provided_offset: None,
        }
    }

    /// Adds the offsets of a mismatching-offset problem.
    pub fn with_offsets(mut self, expected: u64, provided: u64) -> Problem {
        self.expected_offset = Some(expected);
        self.provided_offset = Some(provided);
        self
    }

    /// The draft's problem type, if the body names one.
    pub fn problem_type(&self) -> Option<ProblemType> {
        ProblemType::from_uri(&self.kind)
    }

    /// The Sluice reason, if the body carries a known code.
    pub fn reason(&self) -> Option<Reason> {
        self.code.as_deref().and_then(Reason::from_code)
    }

    /// The body as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("a problem always serialises"))
    }

    /// Parses a problem details body; `None` when it is not one.
    pub fn from_json(body: &str) -> Option<Problem> {
        serde_json::from_str(body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mismatching_offset_body_has_the_drafts_members() {
        let rejection = Rejection::new(Reason::OffsetMismatch, "The upload is at 100 bytes, not 200.");
        let problem =
            Problem::new(Some(ProblemType::MismatchingOffset), &rejection, 409, "Conflict").with_offsets(100, 200);
        let value: serde_json::Value = serde_json::from_str(&problem.to_json()).unwrap();
        assert_eq!(
            value,
            json!({
                "type": "https://iana.org/assignments/http-problem-types#mismatching-upload-offset",
                "title": "offset from request does not match offset of resource",
                "status": 409,
                "detail": "The upload is at 100 bytes, not 200.",
                "code": "offset_mismatch",
                "expected-offset": 100,
                "provided-offset": 200,
            })
        );
        let back = Problem::from_json(&problem.to_json()).unwrap();
        assert_eq!(back, problem);
        assert_eq!(back.problem_type(), Some(ProblemType::MismatchingOffset));
        assert_eq!(back.reason(), Some(Reason::OffsetMismatch));
    }

    #[test]
    fn untyped_problems_are_about_blank_with_the_status_phrase() {
        let rejection = Rejection::new(Reason::FileTooLarge, "too big");
        let problem = Problem::new(None, &rejection, 413, "Payload Too Large");
        assert_eq!(problem.kind, "about:blank");
        assert_eq!(problem.title.as_deref(), Some("Payload Too Large"));
        assert!(!problem.to_json().contains("offset"));
        assert_eq!(problem.problem_type(), None);
        // A body with only a type (or nothing) still parses; the type defaults per RFC 9457.
        assert_eq!(Problem::from_json("{}").unwrap().kind, "about:blank");
        assert_eq!(Problem::from_json("[1]"), None);
        assert_eq!(Problem::from_json("{\"expected-offset\": -1}"), None);
    }

    #[test]
    fn type_uris_round_trip() {
        for p in ProblemType::ALL {
            assert_eq!(ProblemType::from_uri(&p.uri()), Some(p));
        }
        assert_eq!(ProblemType::from_uri("https://iana.org/assignments/http-problem-types#other"), None);
        assert_eq!(ProblemType::from_uri("completed-upload"), None);
    }
}
