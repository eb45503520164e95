//! The checks both ends run: the browser before sending, the server on arrival.

use crate::checksum::Algorithm;
use crate::name;
use crate::policy::{ChecksumMode, Policy};
use crate::reason::{Reason, Rejection, Result};
use crate::sniff::{self, FileType};
use crate::units::format_size;

/// Where an append (one PATCH, or the body of a creation) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Append {
    /// The upload's current offset (what the server holds).
    pub upload_offset: u64,
    /// The offset the request says it starts at (`Upload-Offset`).
    pub request_offset: u64,
    /// The request's body length, when declared (`Content-Length`).
    pub chunk_len: Option<u64>,
    /// The upload's total length, when known.
    pub upload_length: Option<u64>,
}

impl Policy {
    /// Checks a file's declared or actual size against `min/max_file_size`.
    pub fn check_size(&self, size: u64) -> Result<()> {
        if size > self.max_file_size {
            return Err(Rejection::new(
                Reason::FileTooLarge,
                format!("This file is {}; the limit is {}.", format_size(size), format_size(self.max_file_size)),
            ));
        }
        if size < self.min_file_size {
            return Err(Rejection::new(
                Reason::FileTooSmall,
                format!(
                    "This file is {}; files must be at least {}.",
                    format_size(size),
                    format_size(self.min_file_size)
                ),
            ));
        }
        Ok(())
    }

    /// Checks a declared file name: well-formed, not too long, allowed extension.
    /// `None` (no name given) passes unless the policy restricts extensions.
    pub fn check_name(&self, file_name: Option<&str>) -> Result<()> {
        let Some(file_name) = file_name else {
            if self.allowed_extensions.is_empty() {
                return Ok(());
            }
            return Err(Rejection::new(
                Reason::FilenameRequired,
                format!("A file name is needed to check its extension; accepted: {}.", self.extension_list()),
            ));
        };
        if let Some(problem) = name::malformation(file_name) {
            return Err(Rejection::new(Reason::InvalidFilename, problem));
        }
        let chars = file_name.chars().count();
        if chars > self.max_filename_length as usize {
            return Err(Rejection::new(
                Reason::FilenameTooLong,
                format!("The file name is {chars} characters long; the limit is {}.", self.max_filename_length),
            ));
        }
        if self.allowed_extensions.is_empty() {
            return Ok(());
        }
        let ext = name::extension(file_name);
        if ext.as_ref().is_some_and(|e| self.allowed_extensions.contains(e)) {
            return Ok(());
        }
        let what = match ext {
            Some(e) => format!("Files ending in .{e} are not accepted"),
            None => "Files without an extension are not accepted".to_string(),
        };
        Err(Rejection::new(Reason::ExtensionNotAllowed, format!("{what}; accepted: {}.", self.extension_list())))
    }

    /// Sniffs the type from the file's leading bytes (its first
    /// `min(SNIFF_LEN, size)` bytes) and checks it against `allowed_types`.
    pub fn check_type(&self, leading: &[u8], file_name: Option<&str>) -> Result<FileType> {
        let kind = sniff::sniff(leading, file_name);
        if self.allowed_types.is_empty() || self.allowed_types.iter().any(|p| kind.matches(p)) {
            return Ok(kind);
        }
        let accepted: Vec<String> = self.allowed_types.iter().map(|p| sniff::describe_pattern(p)).collect();
        Err(Rejection::new(
            Reason::TypeNotAllowed,
            format!("This file is {} {}; only {} are accepted.", article(kind.label), kind.label, or_list(&accepted)),
        ))
    }

    /// Every check a whole file gets: name, size, then type from its leading bytes.
    pub fn check_file(&self, file_name: Option<&str>, size: u64, leading: &[u8]) -> Result<FileType> {
        self.check_name(file_name)?;
        self.check_size(size)?;
        let sniff_len = sniff::SNIFF_LEN.min(usize::try_from(size).unwrap_or(usize::MAX));
        self.check_type(&leading[..leading.len().min(sniff_len)], file_name)
    }

    /// Checks a whole drop: how many files and their total size.
    pub fn check_batch(&self, sizes: &[u64]) -> Result<()> {
        if sizes.len() > self.max_files_per_batch as usize {
            return Err(Rejection::new(
                Reason::TooManyFiles,
                format!(
                    "{} files were chosen; at most {} can be uploaded at once.",
                    sizes.len(),
                    self.max_files_per_batch
                ),
            ));
        }
        let total = sizes.iter().fold(0u64, |a, &s| a.saturating_add(s));
        match self.max_batch_size {
            Some(max) if total > max => Err(Rejection::new(
                Reason::BatchTooLarge,
                format!("These files add up to {}; the limit is {} at once.", format_size(total), format_size(max)),
            )),
            _ => Ok(()),
        }
    }

    /// Checks an append from its headers alone and returns how many body bytes
    /// it may carry at most (the cap for a body of undeclared length).
    pub fn check_append(&self, a: Append) -> Result<u64> {
        if a.request_offset != a.upload_offset {
            return Err(Rejection::new(
                Reason::OffsetMismatch,
                format!(
                    "The upload is at byte {}, but the request starts at byte {}.",
                    a.upload_offset, a.request_offset
                ),
            ));
        }
        let limit = a.upload_length.unwrap_or(self.max_file_size);
        let room = limit.saturating_sub(a.upload_offset).min(self.max_chunk_size);
        let Some(len) = a.chunk_len else { return Ok(room) };
        if len > self.max_chunk_size {
            return Err(Rejection::new(
                Reason::ChunkTooLarge,
                format!(
                    "One request may carry at most {}; this one carries {}.",
                    format_size(self.max_chunk_size),
                    format_size(len)
                ),
            ));
        }
        let end = a.upload_offset.checked_add(len);
        if end.is_none_or(|end| end > limit) {
            return Err(match a.upload_length {
                Some(total) => Rejection::new(
                    Reason::ExceedsUploadLength,
                    format!("This data would run past the upload's length of {total} bytes."),
                ),
                None => Rejection::new(
                    Reason::FileTooLarge,
                    format!("This data would take the file past the limit of {}.", format_size(self.max_file_size)),
                ),
            });
        }
        Ok(len)
    }

    /// Checks a request's checksum algorithm (`None` = no checksum sent).
    pub fn check_checksum(&self, algorithm: Option<Algorithm>) -> Result<()> {
        match algorithm {
            None if self.checksum == ChecksumMode::Required => Err(Rejection::new(
                Reason::ChecksumRequired,
                format!("Every chunk must carry a checksum ({}).", self.algorithm_list()),
            )),
            Some(alg) if !self.checksum_algorithms.contains(&alg) => Err(Rejection::new(
                Reason::ChecksumAlgorithmUnsupported,
                format!("The {alg} checksum is not accepted; accepted: {}.", self.algorithm_list()),
            )),
            _ => Ok(()),
        }
    }

    /// The `Tus-Checksum-Algorithm` list: `"sha256,crc32c,sha1"`.
    pub fn algorithm_list(&self) -> String {
        self.checksum_algorithms.iter().map(|a| a.name()).collect::<Vec<_>>().join(",")
    }

    fn extension_list(&self) -> String {
        self.allowed_extensions.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(", ")
    }
}

/// "a" or "an" for a label such as "PNG image" or "MP4 video".
fn article(label: &str) -> &'static str {
    let first_word = label.split(' ').next().unwrap_or("");
    let acronym = first_word.len() > 1 && first_word.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let first = first_word.chars().next().unwrap_or('x').to_ascii_uppercase();
    let vowel_sound = if acronym { "AEFHILMNORSX".contains(first) } else { "AEIOU".contains(first) };
    if vowel_sound {
        "an"
    } else {
        "a"
    }
}

fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn policy(toml: &str) -> Policy {
        Policy::from_toml(toml).unwrap()
    }

    fn reason<T: std::fmt::Debug>(r: Result<T>) -> Reason {
        r.expect_err("expected a rejection").reason
    }

    #[test]
    fn sizes_at_and_across_limits() {
        let p = policy("max_file_size = 100\nmin_file_size = 10");
        assert!(p.check_size(100).is_ok() && p.check_size(10).is_ok());
        assert_eq!(reason(p.check_size(101)), Reason::FileTooLarge);
        assert_eq!(reason(p.check_size(9)), Reason::FileTooSmall);
        assert_eq!(
            policy("max_file_size = \"4 GiB\"").check_size(5 << 30).unwrap_err().message,
            "This file is 5.0 GiB; the limit is 4.0 GiB."
        );
    }

    #[test]
    fn names_and_extensions() {
        let p = policy("allowed_extensions = [\"pdf\", \"png\"]\nmax_filename_length = 12");
        assert!(p.check_name(Some("a.PDF")).is_ok());
        assert_eq!(reason(p.check_name(Some("a.exe"))), Reason::ExtensionNotAllowed);
        assert_eq!(reason(p.check_name(Some("README"))), Reason::ExtensionNotAllowed);
        assert_eq!(reason(p.check_name(None)), Reason::FilenameRequired);
        assert_eq!(reason(p.check_name(Some("../a.pdf"))), Reason::InvalidFilename);
        assert!(p.check_name(Some("12345678.pdf")).is_ok());
        assert_eq!(reason(p.check_name(Some("123456789.pdf"))), Reason::FilenameTooLong);
        assert!(Policy::default().check_name(None).is_ok());
        assert_eq!(
            p.check_name(Some("x.exe")).unwrap_err().message,
            "Files ending in .exe are not accepted; accepted: .pdf, .png."
        );
    }

    #[test]
    fn type_is_judged_from_bytes_with_a_plain_message() {
        let p = policy("allowed_types = [\"application/pdf\"]");
        let err = p.check_file(Some("report.pdf"), 1000, PNG).unwrap_err();
        assert_eq!(err.reason, Reason::TypeNotAllowed);
        assert_eq!(err.message, "This file is a PNG image; only PDF documents are accepted.");
        let p = policy("allowed_types = [\"image/*\", \"video/mp4\"]");
        assert_eq!(p.check_type(PNG, None).unwrap().mime, "image/png");
        assert_eq!(
            p.check_type(b"hello", None).unwrap_err().message,
            "This file is a text file; only images or MP4 videos are accepted."
        );
        assert_eq!(reason(p.check_type(b"", None)), Reason::TypeNotAllowed);
    }

    #[test]
    fn batches() {
        let p = policy("max_files_per_batch = 2\nmax_batch_size = 100");
        assert!(p.check_batch(&[50, 50]).is_ok());
        assert_eq!(reason(p.check_batch(&[1, 1, 1])), Reason::TooManyFiles);
        assert_eq!(reason(p.check_batch(&[50, 51])), Reason::BatchTooLarge);
        assert_eq!(reason(p.check_batch(&[u64::MAX, u64::MAX])), Reason::BatchTooLarge);
    }

    #[test]
    fn appends() {
        let p = policy("max_file_size = 1000\nmax_chunk_size = 100");
        let at = |upload_offset, request_offset, chunk_len, upload_length| Append {
            upload_offset,
            request_offset,
            chunk_len,
            upload_length,
        };
        assert_eq!(p.check_append(at(0, 0, Some(100), Some(500))), Ok(100));
        assert_eq!(p.check_append(at(450, 450, None, Some(500))), Ok(50));
        assert_eq!(p.check_append(at(0, 0, None, None)), Ok(100));
        assert_eq!(reason(p.check_append(at(10, 0, Some(1), Some(500)))), Reason::OffsetMismatch);
        assert_eq!(reason(p.check_append(at(0, 0, Some(101), Some(500)))), Reason::ChunkTooLarge);
        assert_eq!(reason(p.check_append(at(450, 450, Some(51), Some(500)))), Reason::ExceedsUploadLength);
        assert_eq!(reason(p.check_append(at(950, 950, Some(51), None))), Reason::FileTooLarge);
        assert_eq!(p.check_append(at(500, 500, Some(0), Some(500))), Ok(0));
    }

    #[test]
    fn checksums() {
        let p = policy("checksum = \"required\"\nchecksum_algorithms = [\"sha256\"]");
        assert_eq!(reason(p.check_checksum(None)), Reason::ChecksumRequired);
        assert_eq!(reason(p.check_checksum(Some(Algorithm::Sha1))), Reason::ChecksumAlgorithmUnsupported);
        assert!(p.check_checksum(Some(Algorithm::Sha256)).is_ok());
        assert!(Policy::default().check_checksum(None).is_ok());
        assert_eq!(Policy::default().algorithm_list(), "sha1,sha256,crc32c");
    }

    #[test]
    fn articles() {
        assert_eq!(article("PNG image"), "a");
        assert_eq!(article("MP4 video"), "an");
        assert_eq!(article("SVG image"), "an");
        assert_eq!(article("office document"), "an");
        assert_eq!(article("text file"), "a");
    }
}
