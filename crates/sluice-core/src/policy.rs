//! The upload policy: what the server accepts, published at `GET /policy`.
//!
//! A policy file is TOML or JSON. Every key is optional; a missing key takes
//! the default shown by [`Policy::default`]. Sizes are bytes or strings such as
//! `"4 GiB"`; durations are seconds or strings such as `"24h"`.
//!
//! ```toml
//! max_file_size = "4 GiB"
//! min_file_size = 1
//! max_chunk_size = "64 MiB"
//! allowed_types = ["image/*", "application/pdf"]
//! allowed_extensions = ["png", "jpg", "pdf"]
//! max_filename_length = 255
//! checksum = "optional"              # or "required"
//! checksum_algorithms = ["sha256", "crc32c", "sha1"]
//! upload_expiry = "24h"
//! max_form_files = 20                # multipart forms (POST /upload)
//! max_form_fields = 100
//! max_form_field_size = "64 KiB"
//! ```
//!
//! The policy is served as JSON with sizes in bytes and `upload_expiry` in
//! seconds; that JSON parses back into the same policy.

use crate::checksum::Algorithm;
use crate::reason::{Reason, Rejection, Result};
use crate::units::{Size, Span};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Whether chunks must carry an `Upload-Checksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumMode {
    /// Checksums are verified when sent, not required.
    #[default]
    Optional,
    /// Every request carrying data must send `Upload-Checksum`.
    Required,
}

/// The rules every upload is held to, on both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyFile")]
pub struct Policy {
    /// Largest file accepted, in bytes.
    pub max_file_size: u64,
    /// Smallest file accepted, in bytes.
    pub min_file_size: u64,
    /// Most bytes one request (one chunk) may carry. Defaults to `max_file_size`.
    pub max_chunk_size: u64,
    /// MIME patterns (`image/png`, `image/*`) checked against the sniffed type; empty = any.
    pub allowed_types: Vec<String>,
    /// Lowercase extensions without the dot; empty = any.
    pub allowed_extensions: Vec<String>,
    /// Longest file name accepted, in characters.
    pub max_filename_length: u32,
    /// Whether per-chunk checksums are required.
    pub checksum: ChecksumMode,
    /// Checksum algorithms the server accepts, preferred first.
    pub checksum_algorithms: Vec<Algorithm>,
    /// Incomplete uploads older than this are removed. Serialised as seconds.
    #[serde(serialize_with = "as_seconds")]
    pub upload_expiry: Duration,
    /// Longest `Upload-Metadata` header accepted, in bytes.
    pub max_metadata_size: u64,
    /// Most files one drop (batch) may hold.
    pub max_files_per_batch: u32,
    /// Largest total size of one drop; `None` = no limit beyond per-file ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batch_size: Option<u64>,
    /// Most files one multipart form request may carry.
    pub max_form_files: u32,
    /// Most text fields one multipart form request may carry.
    pub max_form_fields: u32,
    /// Longest text field of a multipart form, in bytes.
    pub max_form_field_size: u64,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_file_size: 4 << 30,
            min_file_size: 0,
            max_chunk_size: 4 << 30,
            allowed_types: Vec::new(),
            allowed_extensions: Vec::new(),
            max_filename_length: 255,
            checksum: ChecksumMode::Optional,
            checksum_algorithms: Algorithm::ALL.to_vec(),
            upload_expiry: Duration::from_secs(24 * 3600),
            max_metadata_size: 4096,
            max_files_per_batch: 100,
            max_batch_size: None,
            max_form_files: 20,
            max_form_fields: 100,
            max_form_field_size: 64 << 10,
        }
    }
}

/// The policy as written in a file: every key optional, no unknown keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    max_file_size: Option<Size>,
    min_file_size: Option<Size>,
    max_chunk_size: Option<Size>,
    allowed_types: Option<Vec<String>>,
    allowed_extensions: Option<Vec<String>>,
    max_filename_length: Option<u32>,
    checksum: Option<ChecksumMode>,
    checksum_algorithms: Option<Vec<Algorithm>>,
    upload_expiry: Option<Span>,
    max_metadata_size: Option<Size>,
    max_files_per_batch: Option<u32>,
    max_batch_size: Option<Size>,
    max_form_files: Option<u32>,
    max_form_fields: Option<u32>,
    max_form_field_size: Option<Size>,
}

impl TryFrom<PolicyFile> for Policy {
    type Error = Rejection;

    fn try_from(f: PolicyFile) -> Result<Policy> {
        let d = Policy::default();
        let max_file_size = f.max_file_size.map_or(d.max_file_size, |s| s.0);
        let policy = Policy {
            max_file_size,
            min_file_size: f.min_file_size.map_or(d.min_file_size, |s| s.0),
            max_chunk_size: f.max_chunk_size.map_or(max_file_size, |s| s.0),
            allowed_types: f.allowed_types.unwrap_or_default(),
            allowed_extensions: f
                .allowed_extensions
                .unwrap_or_default()
                .iter()
                .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
                .collect(),
            max_filename_length: f.max_filename_length.unwrap_or(d.max_filename_length),
            checksum: f.checksum.unwrap_or_default(),
            checksum_algorithms: f.checksum_algorithms.unwrap_or(d.checksum_algorithms),
            upload_expiry: f.upload_expiry.map_or(d.upload_expiry, |s| s.0),
            max_metadata_size: f.max_metadata_size.map_or(d.max_metadata_size, |s| s.0),
            max_files_per_batch: f.max_files_per_batch.unwrap_or(d.max_files_per_batch),
            max_batch_size: f.max_batch_size.map(|s| s.0),
            max_form_files: f.max_form_files.unwrap_or(d.max_form_files),
            max_form_fields: f.max_form_fields.unwrap_or(d.max_form_fields),
            max_form_field_size: f.max_form_field_size.map_or(d.max_form_field_size, |s| s.0),
        };
        policy.validate()?;
        Ok(policy)
    }
}

/// Longest `upload_expiry` accepted: 100 years (file times plus it must not overflow).
const MAX_EXPIRY: Duration = Duration::from_secs(100 * 365 * 24 * 3600 + 25 * 24 * 3600);

/// Largest length tus headers may carry: JavaScript clients handle integers up to 2^53 exactly.
pub const MAX_LENGTH: u64 = (1 << 53) - 1;

impl Policy {
    /// Parses a TOML policy document.
    pub fn from_toml(text: &str) -> Result<Policy> {
        toml::from_str(text).map_err(|e| invalid(e.to_string()))
    }

    /// Parses a JSON policy document (the form `GET /policy` serves).
    pub fn from_json(text: &str) -> Result<Policy> {
        serde_json::from_str(text).map_err(|e| invalid(e.to_string()))
    }

    /// The policy as JSON, as served at `GET /policy`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("a policy always serialises"))
    }

    /// Checks that the policy is consistent; parsing already does this.
    pub fn validate(&self) -> Result<()> {
        if self.max_file_size > MAX_LENGTH {
            return Err(invalid(format!("max_file_size must be at most {MAX_LENGTH} bytes")));
        }
        if self.min_file_size > self.max_file_size {
            return Err(invalid("min_file_size is larger than max_file_size"));
        }
        if self.max_chunk_size == 0 {
            return Err(invalid("max_chunk_size must be at least 1 byte"));
        }
        if self.max_filename_length == 0 {
            return Err(invalid("max_filename_length must be at least 1"));
        }
        if self.max_files_per_batch == 0 {
            return Err(invalid("max_files_per_batch must be at least 1"));
        }
        if self.max_form_files == 0 {
            return Err(invalid("max_form_files must be at least 1"));
        }
        if self.upload_expiry.is_zero() {
            return Err(invalid("upload_expiry must be longer than zero"));
        }
        // Served (and so read back by the browser) in whole seconds: a
        // fraction would make the two ends disagree ("500ms" would serve as 0).
        if self.upload_expiry.subsec_nanos() != 0 {
            return Err(invalid("upload_expiry must be a whole number of seconds"));
        }
        // File times plus the expiry must stay representable.
        if self.upload_expiry > MAX_EXPIRY {
            return Err(invalid("upload_expiry must be at most 100 years"));
        }
        if self.checksum == ChecksumMode::Required && self.checksum_algorithms.is_empty() {
            return Err(invalid("checksum = \"required\" needs at least one checksum algorithm"));
        }
        for pattern in &self.allowed_types {
            if !valid_type_pattern(pattern) {
                return Err(invalid(format!(
                    "allowed_types entry {pattern:?} is not a MIME type such as \"image/png\" or \"image/*\""
                )));
            }
        }
        for ext in &self.allowed_extensions {
            if ext.is_empty() || !ext.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(invalid(format!("allowed_extensions entry {ext:?} is not an extension such as \"pdf\"")));
            }
        }
        Ok(())
    }
}

fn valid_type_pattern(p: &str) -> bool {
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    match p.split_once('/') {
        Some(("*", "*")) => true,
        Some((top, "*")) => token(top),
        Some((top, sub)) => token(top) && token(sub),
        None => p == "*",
    }
}

fn invalid(message: impl Into<String>) -> Rejection {
    Rejection::new(Reason::InvalidPolicy, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_is_the_default_policy() {
        assert_eq!(Policy::from_toml("").unwrap(), Policy::default());
        assert_eq!(Policy::from_json("{}").unwrap(), Policy::default());
    }

    #[test]
    fn every_public_key_loads_from_toml() {
        let p = Policy::from_toml(
            r#"
            max_file_size = "2 GiB"
            min_file_size = 1
            max_chunk_size = "8 MiB"
            allowed_types = ["image/*", "application/pdf"]
            allowed_extensions = [".PNG", "pdf"]
            max_filename_length = 100
            checksum = "required"
            checksum_algorithms = ["sha256"]
            upload_expiry = "2h"
            max_metadata_size = "1 KiB"
            max_files_per_batch = 5
            max_batch_size = "10 GiB"
            max_form_files = 3
            max_form_fields = 7
            max_form_field_size = "1 KiB"
            "#,
        )
        .unwrap();
        assert_eq!(p.max_file_size, 2 << 30);
        assert_eq!(p.min_file_size, 1);
        assert_eq!(p.max_chunk_size, 8 << 20);
        assert_eq!(p.allowed_types, ["image/*", "application/pdf"]);
        assert_eq!(p.allowed_extensions, ["png", "pdf"]);
        assert_eq!(p.max_filename_length, 100);
        assert_eq!(p.checksum, ChecksumMode::Required);
        assert_eq!(p.checksum_algorithms, [Algorithm::Sha256]);
        assert_eq!(p.upload_expiry, Duration::from_secs(7200));
        assert_eq!(p.max_metadata_size, 1024);
        assert_eq!(p.max_files_per_batch, 5);
        assert_eq!(p.max_batch_size, Some(10 << 30));
        assert_eq!((p.max_form_files, p.max_form_fields, p.max_form_field_size), (3, 7, 1024));
    }

    #[test]
    fn served_json_round_trips() {
        let p = Policy::from_toml("max_file_size = \"1 GiB\"\nallowed_types = [\"image/*\"]\nupload_expiry = \"90m\"")
            .unwrap();
        let json = p.to_json();
        assert!(json.contains("\"upload_expiry\":5400"), "{json}");
        assert!(json.contains("\"max_file_size\":1073741824"), "{json}");
        assert_eq!(Policy::from_json(&json).unwrap(), p);
    }

    #[test]
    fn sub_second_and_huge_expiries_are_refused_not_served_wrong() {
        // Found writing the policy round-trip fuzz target: "500ms" loaded, was served as
        // 0 seconds, and that JSON no longer parsed; an expiry near u64::MAX seconds
        // made `modified_at + upload_expiry` overflow (a panic) in the server.
        for bad in ["upload_expiry = \"500ms\"", "upload_expiry = \"1s 500ms\"", "upload_expiry = 18446744073709551615"]
        {
            let err = Policy::from_toml(bad).expect_err(bad);
            assert_eq!(err.reason, Reason::InvalidPolicy, "{bad}: {err}");
        }
        assert_eq!(
            Policy::from_json("{\"upload_expiry\": 18446744073709551615}").unwrap_err().reason,
            Reason::InvalidPolicy
        );
        let p = Policy::from_toml("upload_expiry = \"100years\"").unwrap();
        assert_eq!(Policy::from_json(&p.to_json()).unwrap(), p);
        assert!(std::time::SystemTime::now().checked_add(p.upload_expiry).is_some());
    }

    #[test]
    fn chunk_size_defaults_to_file_size() {
        let p = Policy::from_toml("max_file_size = 1000").unwrap();
        assert_eq!(p.max_chunk_size, 1000);
    }

    #[test]
    fn bad_documents_are_refused_with_invalid_policy() {
        for bad in [
            "max_file_size = -1",
            "max_file_size = \"huge\"",
            "min_file_size = 10\nmax_file_size = 5",
            "max_chunk_size = 0",
            "allowed_types = [\"png\"]",
            "allowed_types = [\"image/\"]",
            "allowed_extensions = [\"\"]",
            "allowed_extensions = [\"p/df\"]",
            "checksum = \"sometimes\"",
            "checksum = \"required\"\nchecksum_algorithms = []",
            "checksum_algorithms = [\"md5\"]",
            "upload_expiry = \"0s\"",
            "upload_expiry = \"whenever\"",
            "max_file_size = \"16 PiB\"",
            "max_form_files = 0",
            "unknown_key = 1",
            "max_file_size = ",
        ] {
            let err = Policy::from_toml(bad).expect_err(bad);
            assert_eq!(err.reason, Reason::InvalidPolicy, "{bad}: {err}");
        }
        assert_eq!(Policy::from_json("[]").unwrap_err().reason, Reason::InvalidPolicy);
    }
}
