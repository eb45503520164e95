//! tus 1.0 header codecs: numbers, `Upload-Metadata`, `Upload-Checksum`, `Upload-Concat`.
//!
//! Every parser here takes untrusted input and returns a [`Rejection`]
//! (`invalid_header`, `invalid_metadata`, ...) rather than panicking.

use crate::checksum::Algorithm;
use crate::policy::MAX_LENGTH;
use crate::reason::{Reason, Rejection, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The protocol version spoken (`Tus-Resumable`, `Tus-Version`).
pub const TUS_VERSION: &str = "1.0.0";
/// The extensions implemented, as listed in `Tus-Extension`.
pub const TUS_EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination,concatenation";
/// The content type of a PATCH body.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// Parses `Upload-Offset`, `Upload-Length` and similar: ASCII digits only (no
/// sign, no spaces inside), at most 2^53 - 1 so JavaScript clients stay exact.
pub fn parse_length(header: &str, value: &str) -> Result<u64> {
    let value = value.trim_matches([' ', '\t']);
    let bad = |why: &str| Rejection::new(Reason::InvalidHeader, format!("{header}: {why} (got {value:?})."));
    if value.is_empty() {
        return Err(bad("expected a number"));
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("expected a non-negative whole number"));
    }
    match value.parse::<u64>() {
        Ok(n) if n <= MAX_LENGTH => Ok(n),
        _ => Err(bad("number too large")),
    }
}

/// Parses `Upload-Defer-Length`, whose only valid value is `1`.
pub fn parse_defer_length(value: &str) -> Result<()> {
    if value.trim_matches([' ', '\t']) == "1" {
        return Ok(());
    }
    Err(Rejection::new(Reason::InvalidHeader, format!("Upload-Defer-Length must be 1 (got {value:?}).")))
}

/// Parses `Upload-Checksum: <algorithm> <base64 digest>`.
pub fn parse_checksum(value: &str) -> Result<(Algorithm, Vec<u8>)> {
    let value = value.trim_matches([' ', '\t']);
    let bad = |why: String| Rejection::new(Reason::InvalidHeader, format!("Upload-Checksum: {why}."));
    let (name, encoded) =
        value.split_once(' ').ok_or_else(|| bad("expected \"<algorithm> <base64 digest>\"".into()))?;
    let algorithm = Algorithm::from_name(name).ok_or_else(|| {
        Rejection::new(
            Reason::ChecksumAlgorithmUnsupported,
            format!("The {name:?} checksum algorithm is not supported."),
        )
    })?;
    let digest = STANDARD.decode(encoded).map_err(|e| bad(format!("the digest is not valid base64 ({e})")))?;
    if digest.len() != algorithm.digest_len() {
        return Err(bad(format!("a {algorithm} digest is {} bytes, got {}", algorithm.digest_len(), digest.len())));
    }
    Ok((algorithm, digest))
}

/// Formats an `Upload-Checksum` value.
pub fn format_checksum(algorithm: Algorithm, digest: &[u8]) -> String {
    format!("{} {}", algorithm.name(), STANDARD.encode(digest))
}

/// Parsed `Upload-Metadata`: keys in the order sent, values as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pairs: Vec<(String, Vec<u8>)>,
}

impl Metadata {
    /// Parses `key base64,key2 base64,flag`. Keys are unique, non-empty,
    /// visible ASCII; values are canonical padded base64 (possibly absent).
    pub fn parse(value: &str) -> Result<Metadata> {
        let bad = |why: String| Rejection::new(Reason::InvalidMetadata, format!("Upload-Metadata: {why}."));
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        if value.trim().is_empty() {
            return Ok(Metadata { pairs });
        }
        for item in value.split(',') {
            let item = item.trim_matches([' ', '\t']);
            let mut parts = item.split(' ');
            let key = parts.next().unwrap_or_default();
            let encoded = parts.next().unwrap_or_default();
            if parts.next().is_some() {
                return Err(bad(format!("{key:?} has more than one value")));
            }
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(format!("{key:?} is not a valid key")));
            }
            if pairs.iter().any(|(k, _)| k == key) {
                return Err(bad(format!("the key {key:?} appears twice")));
            }
            let decoded =
                STANDARD.decode(encoded).map_err(|e| bad(format!("the value of {key:?} is not valid base64 ({e})")))?;
            pairs.push((key.to_string(), decoded));
        }
        Ok(Metadata { pairs })
    }

    /// Builds metadata from pairs (keys must be valid; see [`Metadata::parse`]).
    pub fn from_pairs<K: Into<String>, V: Into<Vec<u8>>>(pairs: impl IntoIterator<Item = (K, V)>) -> Metadata {
        Metadata { pairs: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The header value for these pairs.
    pub fn encode(&self) -> String {
        let encoded: Vec<String> = self
            .pairs
            .iter()
            .map(|(k, v)| if v.is_empty() { k.clone() } else { format!("{k} {}", STANDARD.encode(v)) })
            .collect();
        encoded.join(",")
    }

    /// The raw value of a key.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }

    /// The value of a key, if present and UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The declared file name: `filename` (tus-js-client, tusd), else `name` (Uppy).
    /// A name that is present but not UTF-8 is returned lossily so checks refuse it.
    pub fn file_name(&self) -> Option<String> {
        let raw = self.get("filename").or_else(|| self.get("name"))?;
        Some(String::from_utf8_lossy(raw).into_owned())
    }

    /// All pairs in order.
    pub fn pairs(&self) -> &[(String, Vec<u8>)] {
        &self.pairs
    }
}

/// `Upload-Concat` (the concatenation extension): a partial upload, or a final upload
/// that joins the named uploads in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concat {
    /// `partial`: one part of a later final upload.
    Partial,
    /// `final;<url> <url> ...`: the uploads to join, as sent (absolute or relative URLs).
    Final(Vec<String>),
}

impl Concat {
    /// Parses `partial` or `final;URL URL...`. URLs are separated by spaces and
    /// contain none; a space after `;` is tolerated (tusd accepts it). Anything else,
    /// including a final naming no upload, is `invalid_concat`.
    pub fn parse(value: &str) -> Result<Concat> {
        let value = value.trim_matches([' ', '\t']);
        let bad = |why: &str| {
            Rejection::new(
                Reason::InvalidConcat,
                format!("Upload-Concat: {why}; expected \"partial\" or \"final;<url> <url> ...\" (got {value:?})."),
            )
        };
        if value == "partial" {
            return Ok(Concat::Partial);
        }
        let urls = value.strip_prefix("final;").ok_or_else(|| bad("unknown form"))?;
        let urls: Vec<String> = urls.split(' ').filter(|url| !url.is_empty()).map(str::to_string).collect();
        if urls.is_empty() {
            return Err(bad("a final upload names no upload"));
        }
        if let Some(url) = urls.iter().find(|url| !url.bytes().all(|b| b.is_ascii_graphic())) {
            return Err(bad(&format!("{url:?} is not a URL")));
        }
        Ok(Concat::Final(urls))
    }

    /// The header value, e.g. `final;/files/a /files/b`.
    pub fn encode(&self) -> String {
        match self {
            Concat::Partial => "partial".to_string(),
            Concat::Final(urls) => format!("final;{}", urls.join(" ")),
        }
    }
}

/// What a tus server said about itself in its `OPTIONS` answer (the clients' view: the
/// CLI's and the browser module's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// `Tus-Extension`, lowercased: `creation`, `checksum`, `termination`, `concatenation`...
    pub extensions: Vec<String>,
    /// `Tus-Checksum-Algorithm`, restricted to the algorithms Sluice computes, in the server's order.
    pub checksum_algorithms: Vec<Algorithm>,
    /// `Tus-Max-Size`.
    pub max_size: Option<u64>,
}

impl Capabilities {
    /// Parses the `OPTIONS` headers (any may be missing, e.g. hidden by CORS); an
    /// unreadable `Tus-Max-Size` counts as none.
    pub fn from_headers(extension: Option<&str>, checksum: Option<&str>, max_size: Option<&str>) -> Self {
        let list = |v: Option<&str>| -> Vec<String> {
            v.unwrap_or("").split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect()
        };
        let extensions = list(extension);
        let checksum_algorithms = if extensions.iter().any(|e| e == "checksum") {
            list(checksum).iter().filter_map(|n| Algorithm::from_name(n)).collect()
        } else {
            Vec::new()
        };
        let max_size = max_size.and_then(|v| parse_length("Tus-Max-Size", v).ok());
        Capabilities { extensions, checksum_algorithms, max_size }
    }

    /// Whether the server lists this extension.
    pub fn has(&self, extension: &str) -> bool {
        self.extensions.iter().any(|e| e == extension)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_strict() {
        assert_eq!(parse_length("Upload-Offset", "0"), Ok(0));
        assert_eq!(parse_length("Upload-Offset", " 42 "), Ok(42));
        assert_eq!(parse_length("Upload-Length", "9007199254740991"), Ok(MAX_LENGTH));
        for bad in ["", "-1", "+1", "1.5", "1e3", "0x10", "9007199254740992", "99999999999999999999999", "1 2", "١"] {
            let err = parse_length("Upload-Length", bad).expect_err(bad);
            assert_eq!(err.reason, Reason::InvalidHeader);
        }
    }

    #[test]
    fn metadata_round_trip() {
        let m = Metadata::parse("filename d29ybGQucGRm,is_confidential, filetype YXBwbGljYXRpb24vcGRm").unwrap();
        assert_eq!(m.get_str("filename"), Some("world.pdf"));
        assert_eq!(m.get("is_confidential"), Some(&b""[..]));
        assert_eq!(m.get_str("filetype"), Some("application/pdf"));
        assert_eq!(m.file_name().as_deref(), Some("world.pdf"));
        assert_eq!(Metadata::parse(&m.encode()).unwrap(), m);
        assert_eq!(Metadata::parse("").unwrap(), Metadata::default());
        assert_eq!(Metadata::parse("name eC5wbmc=").unwrap().file_name().as_deref(), Some("x.png"));
    }

    #[test]
    fn metadata_refusals() {
        for bad in [
            "filename d29ybGQucGRm,filename YQ==",
            "filename not*base64",
            "filename d29ybGQucGRm=",
            "filename YQ",
            "a YQ== YQ==",
            ",a YQ==",
            "a YQ==,",
            "k\u{e9}y YQ==",
            "a\u{1}b YQ==",
        ] {
            let err = Metadata::parse(bad).expect_err(bad);
            assert_eq!(err.reason, Reason::InvalidMetadata, "{bad}");
        }
    }

    #[test]
    fn checksums() {
        let (alg, d) = parse_checksum("sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=").unwrap();
        assert_eq!(alg, Algorithm::Sha1);
        assert_eq!(format_checksum(alg, &d), "sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(parse_checksum("md5 AAAA").unwrap_err().reason, Reason::ChecksumAlgorithmUnsupported);
        for bad in ["sha1", "sha1 !!!", "sha1 AAAA", "", "sha1  qZk+NkcGgWq6PiVxeFDCbJzQ2J0="] {
            assert_eq!(parse_checksum(bad).unwrap_err().reason, Reason::InvalidHeader, "{bad}");
        }
        assert!(parse_defer_length("1").is_ok());
        assert!(parse_defer_length("0").is_err());
    }

    #[test]
    fn concat_partial_and_final() {
        assert_eq!(Concat::parse("partial"), Ok(Concat::Partial));
        assert_eq!(Concat::parse(" partial "), Ok(Concat::Partial));
        let urls = |list: &[&str]| Concat::Final(list.iter().map(|u| u.to_string()).collect());
        assert_eq!(Concat::parse("final;/files/a /files/b"), Ok(urls(&["/files/a", "/files/b"])));
        assert_eq!(Concat::parse("final; /files/a"), Ok(urls(&["/files/a"])), "tusd accepts a space after ';'");
        assert_eq!(
            Concat::parse("final;http://host:8080/files/a  https://h/files/b?x=1"),
            Ok(urls(&["http://host:8080/files/a", "https://h/files/b?x=1"]))
        );
        assert_eq!(Concat::parse("final;a b").unwrap().encode(), "final;a b");
        assert_eq!(Concat::Partial.encode(), "partial");
    }

    #[test]
    fn concat_refusals() {
        for bad in [
            "",
            "Partial",
            "partial;x",
            "final",
            "final;",
            "final; ",
            "final:a",
            "final;a\tb",
            "final;a\u{7f}",
            "final;caf\u{e9}",
            "finale;a",
        ] {
            assert_eq!(Concat::parse(bad).unwrap_err().reason, Reason::InvalidConcat, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn concat_never_panics_and_round_trips(text in "\\PC{0,60}") {
            if let Ok(concat) = Concat::parse(&text) {
                proptest::prop_assert_eq!(Concat::parse(&concat.encode()), Ok(concat));
            }
        }

        #[test]
        fn concat_final_round_trips(urls in proptest::collection::vec("[!-~]{1,20}", 1..6)) {
            let concat = Concat::Final(urls);
            proptest::prop_assert_eq!(Concat::parse(&concat.encode()), Ok(concat));
        }
    }
}
