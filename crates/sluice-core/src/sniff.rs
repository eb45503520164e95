//! The file's real type, from its leading bytes.
//!
//! Binary formats are recognised by their magic bytes with the `infer` crate.
//! Formats without magic bytes are handled like this, the same on both ends:
//!
//! - leading bytes that are valid UTF-8 with no control characters other than
//!   tab, newline, carriage return and form feed sniff as **`text/plain`**; a
//!   text file whose name ends in `.csv`, `.tsv`, `.json`, `.md` or `.txt` is
//!   refined to that text type (`text/csv`, ...). The extension only refines
//!   *within* text: a binary named `.csv` is never text.
//! - an empty file sniffs as `inode/x-empty` (it has no type);
//! - anything else is `application/octet-stream`.
//!
//! Both ends sniff exactly the first `min(SNIFF_LEN, file size)` bytes, so
//! they always reach the same verdict.

/// How many leading bytes the sniffer looks at.
pub const SNIFF_LEN: usize = 8192;

/// The MIME type given to an empty file.
pub const EMPTY_TYPE: &str = "inode/x-empty";
/// The MIME type given to unrecognised binary content.
pub const UNKNOWN_TYPE: &str = "application/octet-stream";
/// The MIME type given to unrecognised text content.
pub const TEXT_TYPE: &str = "text/plain";

/// Text types refined from a text file's extension.
const TEXT_BY_EXTENSION: &[(&str, &str, &str)] = &[
    ("csv", "text/csv", "CSV file"),
    ("tsv", "text/tab-separated-values", "TSV file"),
    ("json", "application/json", "JSON file"),
    ("md", "text/markdown", "Markdown file"),
    ("txt", "text/plain", "text file"),
];

/// A sniffed file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileType {
    /// MIME type, e.g. `image/png`.
    pub mime: &'static str,
    /// Words for people, e.g. `PNG image`.
    pub label: &'static str,
    /// Whether this is text recognised without magic bytes (so `text/plain`
    /// patterns also accept it).
    pub is_text: bool,
}

/// Sniffs the type of a file from its leading bytes (see the module docs).
///
/// `name` is only used to refine plain text; pass `None` when unknown.
pub fn sniff(leading: &[u8], name: Option<&str>) -> FileType {
    let leading = &leading[..leading.len().min(SNIFF_LEN)];
    if leading.is_empty() {
        return FileType { mime: EMPTY_TYPE, label: "empty file", is_text: false };
    }
    if let Some(kind) = infer::get(leading) {
        return FileType { mime: kind.mime_type(), label: label_for(kind), is_text: false };
    }
    if looks_like_text(leading) {
        let ext = name.and_then(crate::name::extension);
        let refined = ext.and_then(|e| TEXT_BY_EXTENSION.iter().find(|(x, _, _)| *x == e));
        let (mime, label) = refined.map(|(_, m, l)| (*m, *l)).unwrap_or((TEXT_TYPE, "text file"));
        return FileType { mime, label, is_text: true };
    }
    FileType { mime: UNKNOWN_TYPE, label: "file of unknown type", is_text: false }
}

impl FileType {
    /// Whether an `allowed_types` pattern (`type/subtype`, `type/*`, `*/*`)
    /// accepts this type. Refined text types also match `text/plain`.
    pub fn matches(&self, pattern: &str) -> bool {
        mime_matches(pattern, self.mime) || (self.is_text && mime_matches(pattern, TEXT_TYPE))
    }
}

fn mime_matches(pattern: &str, mime: &str) -> bool {
    let pattern = pattern.trim();
    if pattern == "*" || pattern == "*/*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(top) => mime.split('/').next().is_some_and(|t| t.eq_ignore_ascii_case(top)),
        None => pattern.eq_ignore_ascii_case(mime),
    }
}

/// UTF-8 (a sequence cut at the very end is fine) without binary control bytes.
fn looks_like_text(bytes: &[u8]) -> bool {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => true,
        // Cut mid-character by the SNIFF_LEN window: fine if the rest is valid.
        Err(e) => e.error_len().is_none(),
    };
    valid && !bytes.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c) || b == 0x7f)
}

fn label_for(kind: infer::Type) -> &'static str {
    // A few common ones by name; the rest by matcher family.
    match kind.mime_type() {
        "image/png" => "PNG image",
        "image/jpeg" => "JPEG image",
        "image/gif" => "GIF image",
        "image/webp" => "WebP image",
        "image/svg+xml" => "SVG image",
        "application/pdf" => "PDF document",
        "application/zip" => "ZIP archive",
        "application/gzip" => "gzip archive",
        "application/x-tar" => "tar archive",
        "application/x-7z-compressed" => "7-Zip archive",
        "video/mp4" => "MP4 video",
        "audio/mpeg" => "MP3 audio file",
        "application/x-executable" | "application/vnd.microsoft.portable-executable" => "program",
        _ => match kind.matcher_type() {
            infer::MatcherType::Image => "image",
            infer::MatcherType::Video => "video",
            infer::MatcherType::Audio => "audio file",
            infer::MatcherType::Archive => "archive",
            infer::MatcherType::Doc => "office document",
            infer::MatcherType::Book => "e-book",
            infer::MatcherType::Font => "font",
            infer::MatcherType::App => "program",
            infer::MatcherType::Text => "text file",
            infer::MatcherType::Custom => "file",
        },
    }
}

/// Plural words for an `allowed_types` pattern: `"image/*"` → "images".
pub fn describe_pattern(pattern: &str) -> String {
    const KNOWN: &[(&str, &str)] = &[
        ("image/*", "images"),
        ("video/*", "videos"),
        ("audio/*", "audio files"),
        ("text/*", "text files"),
        ("application/pdf", "PDF documents"),
        ("image/png", "PNG images"),
        ("image/jpeg", "JPEG images"),
        ("image/gif", "GIF images"),
        ("image/webp", "WebP images"),
        ("text/plain", "plain text files"),
        ("text/csv", "CSV files"),
        ("application/json", "JSON files"),
        ("application/zip", "ZIP archives"),
        ("video/mp4", "MP4 videos"),
        ("application/octet-stream", "unrecognised binary files"),
    ];
    let pattern = pattern.trim();
    KNOWN
        .iter()
        .find(|(p, _)| p.eq_ignore_ascii_case(pattern))
        .map(|(_, words)| (*words).to_string())
        .unwrap_or_else(|| format!("{pattern} files"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";

    #[test]
    fn binary_types_come_from_magic_bytes_not_names() {
        assert_eq!(sniff(PNG, Some("report.pdf")).mime, "image/png");
        assert_eq!(sniff(PNG, None).label, "PNG image");
        assert_eq!(sniff(PDF, Some("x.png")).mime, "application/pdf");
    }

    #[test]
    fn text_is_recognised_and_refined_by_extension_only_within_text() {
        assert_eq!(sniff(b"a,b\n1,2\n", Some("data.csv")).mime, "text/csv");
        assert_eq!(sniff(b"a,b\n1,2\n", Some("DATA.CSV")).mime, "text/csv");
        assert_eq!(sniff(b"hello\n", Some("notes")).mime, "text/plain");
        assert_eq!(sniff("h\u{e9}llo".as_bytes(), None).mime, "text/plain");
        assert_eq!(sniff(b"\x00\x01\x02garbage", Some("data.csv")).mime, UNKNOWN_TYPE);
        assert_eq!(sniff(b"", Some("a.txt")).mime, EMPTY_TYPE);
    }

    #[test]
    fn utf8_cut_by_the_window_is_still_text() {
        let mut text = "a".repeat(SNIFF_LEN - 1).into_bytes();
        text.extend_from_slice("\u{e9}".as_bytes()); // 2 bytes: the window cuts it
        assert!(text.len() > SNIFF_LEN);
        assert_eq!(sniff(&text, None).mime, TEXT_TYPE);
    }

    #[test]
    fn patterns() {
        let png = sniff(PNG, None);
        assert!(png.matches("image/*") && png.matches("IMAGE/PNG") && png.matches("*/*"));
        assert!(!png.matches("image/jpeg") && !png.matches("application/*"));
        let csv = sniff(b"a,b\n", Some("x.csv"));
        assert!(csv.matches("text/csv") && csv.matches("text/plain") && csv.matches("text/*"));
        assert_eq!(describe_pattern("image/*"), "images");
        assert_eq!(describe_pattern("application/x-foo"), "application/x-foo files");
    }
}
