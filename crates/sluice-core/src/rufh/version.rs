//! Interop versions and the rules that differ between them.

use super::field;
use super::problem::ProblemType;
use super::structured::{self, Malformed};
use crate::policy::MAX_LENGTH;
use crate::reason::{Reason, Rejection, Result};
use std::fmt;

/// An interop version of the draft this crate speaks: 3 (draft -01) to 8 (drafts -09 to -11).
///
/// Every method answers one rule that differs between versions, so callers never
/// compare version numbers themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InteropVersion(u8);

impl InteropVersion {
    /// Every supported version, oldest first.
    pub const ALL: [InteropVersion; 6] = [Self(3), Self(4), Self(5), Self(6), Self(7), Self(8)];
    /// The newest supported version (drafts -09 to -11).
    pub const LATEST: InteropVersion = Self(8);

    /// The version numbered `n`, if supported.
    pub fn new(n: i64) -> Option<InteropVersion> {
        Self::ALL.into_iter().find(|v| i64::from(v.0) == n)
    }

    /// The version's number, as sent in `Upload-Draft-Interop-Version`.
    pub fn number(self) -> u8 {
        self.0
    }

    /// Parses `Upload-Draft-Interop-Version` (an sf-integer; pass several field lines
    /// joined with `", "`). An integer outside 3..=8 is `unsupported_version`; anything
    /// else is `invalid_header`.
    pub fn parse(value: &str) -> Result<InteropVersion> {
        let n = structured::integer(value).map_err(|_| {
            Rejection::new(
                Reason::InvalidHeader,
                format!("{}: expected one integer (got {value:?}).", field::INTEROP_VERSION),
            )
        })?;
        Self::new(n).ok_or_else(|| {
            Rejection::new(
                Reason::UnsupportedVersion,
                format!(
                    "Interop version {n} of the resumable uploads draft is not supported; this server speaks {} to {}.",
                    Self::ALL[0],
                    Self::LATEST
                ),
            )
        })
    }

    /// From version 8, a field whose value has the wrong type is ignored rather than refused.
    fn ignores_malformed_fields(self) -> bool {
        self.0 >= 8
    }

    /// Reads a field, applying the version's rule for malformed values: `Ok(None)` when
    /// the field is absent, or malformed from version 8 on; `invalid_header` when it is
    /// malformed before version 8.
    fn read<T>(
        self,
        name: &str,
        expected: &str,
        value: Option<&str>,
        parse: impl Fn(&str) -> std::result::Result<T, Malformed>,
    ) -> Result<Option<T>> {
        let Some(value) = value else { return Ok(None) };
        match parse(value) {
            Ok(v) => Ok(Some(v)),
            Err(_) if self.ignores_malformed_fields() => Ok(None),
            Err(_) => {
                Err(Rejection::new(Reason::InvalidHeader, format!("{name}: expected {expected} (got {value:?}).")))
            }
        }
    }

    /// The field that says whether a request completes the upload: `Upload-Incomplete`
    /// in version 3, `Upload-Complete` from version 4.
    pub fn complete_field(self) -> &'static str {
        if self.0 == 3 {
            field::UPLOAD_INCOMPLETE
        } else {
            field::UPLOAD_COMPLETE
        }
    }

    /// Reads the value of [`complete_field`](Self::complete_field) as "is the upload
    /// complete": `?1`/`?0`, inverted for version 3's `Upload-Incomplete`.
    pub fn read_complete(self, value: Option<&str>) -> Result<Option<bool>> {
        let flag = self.read(self.complete_field(), "?0 or ?1", value, structured::boolean)?;
        Ok(flag.map(|flag| if self.0 == 3 { !flag } else { flag }))
    }

    /// The completeness field and its value that say `complete` (inverted for version 3).
    pub fn render_complete(self, complete: bool) -> (&'static str, &'static str) {
        let flag = if self.0 == 3 { !complete } else { complete };
        (self.complete_field(), if flag { "?1" } else { "?0" })
    }

    /// What an append without the completeness field means: `Some(true)`, it completes
    /// the upload, through version 7; `None` from version 8, where the field is required.
    pub fn default_complete(self) -> Option<bool> {
        (self.0 <= 7).then_some(true)
    }

    /// Whether an upload whose bytes reach its known length is complete without a `?1`:
    /// through version 6, as tusd serves it and as tus-js-client 4.3.1 needs (its last
    /// chunk read from a file says `?0`); from version 7 only `?1` completes an upload.
    pub fn completes_at_length(self) -> bool {
        self.0 <= 6
    }

    /// Reads `Upload-Offset` (or another size field named `name`): a non-negative
    /// sf-integer no larger than [`MAX_LENGTH`].
    pub fn read_size(self, name: &str, value: Option<&str>) -> Result<Option<u64>> {
        let Some(n) = self.read(name, "a non-negative integer", value, structured::integer)? else {
            return Ok(None);
        };
        match u64::try_from(n) {
            Ok(n) if n <= MAX_LENGTH => Ok(Some(n)),
            _ => Err(Rejection::new(Reason::InvalidHeader, format!("{name}: {n} is not a valid size."))),
        }
    }

    /// The media type an append's content must have: `application/partial-upload` from
    /// version 6, none before.
    pub fn append_content_type(self) -> Option<&'static str> {
        (self.0 >= 6).then_some(super::PARTIAL_UPLOAD)
    }

    /// Whether the version defines `Upload-Limit` (version 6 on).
    pub fn has_upload_limit(self) -> bool {
        self.0 >= 6
    }

    /// The `Upload-Limit` key for the upload's remaining lifetime in seconds: `expires`
    /// in version 6, `max-age` from 7; `None` where there is no `Upload-Limit`.
    pub fn lifetime_key(self) -> Option<&'static str> {
        match self.0 {
            0..=5 => None,
            6 => Some("expires"),
            _ => Some("max-age"),
        }
    }

    /// Fields an offset retrieval (HEAD) must not carry, refused with 400 through
    /// version 6; version 7 dropped the rule.
    pub fn fields_refused_on_head(self) -> &'static [&'static str] {
        match self.0 {
            3 => &[field::UPLOAD_OFFSET, field::UPLOAD_INCOMPLETE],
            4 | 5 => &[field::UPLOAD_OFFSET, field::UPLOAD_COMPLETE],
            6 => &[field::UPLOAD_OFFSET, field::UPLOAD_COMPLETE, field::UPLOAD_LENGTH],
            _ => &[],
        }
    }

    /// Fields a cancellation (DELETE) must not carry, refused with 400 through version 6.
    pub fn fields_refused_on_delete(self) -> &'static [&'static str] {
        match self.0 {
            3 => &[field::UPLOAD_OFFSET, field::UPLOAD_INCOMPLETE],
            4..=6 => &[field::UPLOAD_OFFSET, field::UPLOAD_COMPLETE],
            _ => &[],
        }
    }

    /// Whether the version defines a problem type: mismatching offset from 6,
    /// completed upload in 6 to 8 (the editor's copy after -11 removed it), inconsistent
    /// length from 7.
    pub fn has_problem(self, problem: ProblemType) -> bool {
        match problem {
            ProblemType::MismatchingOffset => self.0 >= 6,
            ProblemType::CompletedUpload => (6..=8).contains(&self.0),
            ProblemType::InconsistentLength => self.0 >= 7,
        }
    }

    /// The problem type that describes a refusal for `reason`, if this version has one.
    pub fn problem_type(self, reason: Reason) -> Option<ProblemType> {
        let problem = match reason {
            Reason::OffsetMismatch => ProblemType::MismatchingOffset,
            Reason::UploadCompleted => ProblemType::CompletedUpload,
            Reason::InconsistentLength => ProblemType::InconsistentLength,
            _ => return None,
        };
        self.has_problem(problem).then_some(problem)
    }

    /// How an append to an upload that is already complete is refused. Version 8
    /// (drafts -10, -11) treats content as an inconsistent length and an empty append
    /// as `410 Gone` with the completed-upload problem; earlier versions refuse it as
    /// `upload_completed` (400), with the completed-upload problem from version 6.
    pub fn completed_append(self, has_content: bool) -> (Reason, Option<ProblemType>) {
        match (self.0, has_content) {
            (8.., true) => (Reason::InconsistentLength, Some(ProblemType::InconsistentLength)),
            (8.., false) => (Reason::UploadGone, Some(ProblemType::CompletedUpload)),
            _ => (Reason::UploadCompleted, self.problem_type(Reason::UploadCompleted)),
        }
    }
}

impl fmt::Display for InteropVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: i64) -> InteropVersion {
        InteropVersion::new(n).unwrap()
    }

    #[test]
    fn detection_accepts_three_to_eight_only() {
        for n in 3..=8 {
            assert_eq!(InteropVersion::parse(&n.to_string()).unwrap().number(), n as u8);
        }
        assert_eq!(InteropVersion::parse(" 6;x=1 ").unwrap(), v(6), "sf-integer with a parameter");
        for unsupported in ["2", "9", "0", "-6", "999999999999999"] {
            assert_eq!(InteropVersion::parse(unsupported).unwrap_err().reason, Reason::UnsupportedVersion);
        }
        for bad in ["", "six", "6.0", "?1", "\"6\"", "6, 6", "06x", "1000000000000000"] {
            assert_eq!(InteropVersion::parse(bad).unwrap_err().reason, Reason::InvalidHeader, "{bad:?}");
        }
        assert_eq!(InteropVersion::parse("06").unwrap(), v(6), "leading zeros are a valid sf-integer");
    }

    #[test]
    fn completeness_field_is_inverted_for_version_3() {
        assert_eq!(v(3).complete_field(), "Upload-Incomplete");
        assert_eq!(v(3).read_complete(Some("?0")), Ok(Some(true)));
        assert_eq!(v(3).read_complete(Some("?1")), Ok(Some(false)));
        assert_eq!(v(3).render_complete(true), ("Upload-Incomplete", "?0"));
        for n in 4..=8 {
            assert_eq!(v(n).complete_field(), "Upload-Complete");
            assert_eq!(v(n).read_complete(Some("?1")), Ok(Some(true)));
            assert_eq!(v(n).read_complete(Some("?0")), Ok(Some(false)));
            assert_eq!(v(n).render_complete(false), ("Upload-Complete", "?0"));
        }
        for version in InteropVersion::ALL {
            assert_eq!(version.read_complete(None), Ok(None));
            for complete in [true, false] {
                let (_, value) = version.render_complete(complete);
                assert_eq!(version.read_complete(Some(value)), Ok(Some(complete)));
            }
        }
    }

    #[test]
    fn malformed_fields_are_refused_before_8_and_ignored_from_8() {
        for bad in ["1", "true", "?2", "", "?1, ?0"] {
            for n in 3..=7 {
                assert_eq!(v(n).read_complete(Some(bad)).unwrap_err().reason, Reason::InvalidHeader, "{n} {bad:?}");
            }
            assert_eq!(v(8).read_complete(Some(bad)), Ok(None), "{bad:?}");
        }
        for bad in ["?1", "1.0", "abc", "\"5\"", "1 2"] {
            assert_eq!(v(7).read_size("Upload-Offset", Some(bad)).unwrap_err().reason, Reason::InvalidHeader);
            assert_eq!(v(8).read_size("Upload-Offset", Some(bad)), Ok(None), "{bad:?}");
        }
        // A negative size is an integer, the right type, with a wrong value: refused by all.
        for version in InteropVersion::ALL {
            assert_eq!(version.read_size("Upload-Length", Some("-1")).unwrap_err().reason, Reason::InvalidHeader);
            assert_eq!(version.read_size("Upload-Length", Some("1234")), Ok(Some(1234)));
            assert_eq!(version.read_size("Upload-Length", None), Ok(None));
        }
    }

    #[test]
    fn version_dependent_rules() {
        let table: Vec<_> = InteropVersion::ALL
            .iter()
            .map(|&v| {
                (
                    v.number(),
                    v.append_content_type().is_some(),
                    v.lifetime_key(),
                    v.fields_refused_on_head().len(),
                    v.default_complete(),
                    v.completes_at_length(),
                )
            })
            .collect();
        assert_eq!(
            table,
            [
                (3, false, None, 2, Some(true), true),
                (4, false, None, 2, Some(true), true),
                (5, false, None, 2, Some(true), true),
                (6, true, Some("expires"), 3, Some(true), true),
                (7, true, Some("max-age"), 0, Some(true), false),
                (8, true, Some("max-age"), 0, None, false),
            ]
        );
        assert_eq!(v(6).fields_refused_on_head(), ["Upload-Offset", "Upload-Complete", "Upload-Length"]);
        assert_eq!(v(3).fields_refused_on_delete(), ["Upload-Offset", "Upload-Incomplete"]);
        assert!(v(7).fields_refused_on_delete().is_empty());
    }

    #[test]
    fn problem_types_exist_per_version() {
        use ProblemType::*;
        let has = |n, p| v(n).has_problem(p);
        assert!(!has(5, MismatchingOffset) && has(6, MismatchingOffset) && has(8, MismatchingOffset));
        assert!(!has(5, CompletedUpload) && has(6, CompletedUpload) && has(8, CompletedUpload));
        assert!(!has(6, InconsistentLength) && has(7, InconsistentLength));
        assert_eq!(v(5).problem_type(Reason::OffsetMismatch), None);
        assert_eq!(v(6).problem_type(Reason::OffsetMismatch), Some(MismatchingOffset));
        assert_eq!(v(6).problem_type(Reason::InconsistentLength), None);
        assert_eq!(v(7).problem_type(Reason::InconsistentLength), Some(InconsistentLength));
        assert_eq!(v(8).problem_type(Reason::FileTooLarge), None);
    }

    #[test]
    fn append_to_a_completed_upload_per_version() {
        assert_eq!(v(3).completed_append(true), (Reason::UploadCompleted, None));
        assert_eq!(v(6).completed_append(true), (Reason::UploadCompleted, Some(ProblemType::CompletedUpload)));
        assert_eq!(v(7).completed_append(false), (Reason::UploadCompleted, Some(ProblemType::CompletedUpload)));
        assert_eq!(v(8).completed_append(true), (Reason::InconsistentLength, Some(ProblemType::InconsistentLength)));
        assert_eq!(v(8).completed_append(false), (Reason::UploadGone, Some(ProblemType::CompletedUpload)));
    }
}
