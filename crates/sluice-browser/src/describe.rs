//! A policy in plain words, for a page to show before anyone picks a file. The words come from
//! the core crate (type patterns, sizes) so the page and the server's refusals never disagree.

use crate::api::{PolicyDescription, PolicyRule};
use sluice_core::sniff::describe_pattern;
use sluice_core::units::format_size;
use sluice_core::{Algorithm, Policy};

/// Describes `policy`; `checksum` is the algorithm chunks will carry, if any.
pub fn describe(policy: &Policy, checksum: Option<Algorithm>) -> PolicyDescription {
    let mut rules = Vec::new();
    let mut rule = |label: &str, text: String| rules.push(PolicyRule { label: label.into(), text });
    let mut sizes = format!("Up to {} per file", format_size(policy.max_file_size));
    match policy.min_file_size {
        0 => {}
        1 => sizes.push_str("; empty files are refused"),
        n => sizes.push_str(&format!(", at least {}", format_size(n))),
    }
    rule("Size", format!("{sizes}."));
    let types: Vec<String> = policy.allowed_types.iter().map(|p| describe_pattern(p)).collect();
    rule("Types", if types.is_empty() { "Any kind of file.".into() } else { format!("Only {}.", list(&types, "or")) });
    if !policy.allowed_extensions.is_empty() {
        let exts: Vec<String> = policy.allowed_extensions.iter().map(|e| format!(".{e}")).collect();
        rule("Names", format!("Ending in {}.", list(&exts, "or")));
    }
    if policy.max_filename_length < 255 {
        rule("Names", format!("At most {} characters.", policy.max_filename_length));
    }
    let mut batch = format!("Up to {} files at a time", policy.max_files_per_batch);
    if let Some(total) = policy.max_batch_size {
        batch.push_str(&format!(", {} in total", format_size(total)));
    }
    rule("At once", format!("{batch}."));
    let expiry = policy.upload_expiry.as_secs();
    if expiry > 0 {
        rule("Resume", format!("Unfinished uploads are kept for {} after their last piece.", period(expiry)));
    }
    if let Some(a) = checksum {
        rule("Integrity", format!("Every piece is verified with {} on arrival.", algorithm_name(a)));
    }
    let kinds = if types.is_empty() { "any type".to_string() } else { list(&types, "or") };
    let hint = format!("Up to {} each · {kinds}", format_size(policy.max_file_size));
    PolicyDescription { rules, hint }
}

/// The usual written name of a checksum algorithm: "SHA-256".
pub fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha1 => "SHA-1",
        Algorithm::Sha256 => "SHA-256",
        Algorithm::Crc32c => "CRC-32C",
    }
}

/// A period in words: 86400 → "24 hours", 172800 → "2 days".
pub fn period(secs: u64) -> String {
    let plural = |n: u64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if secs % 86_400 == 0 && secs >= 2 * 86_400 {
        plural(secs / 86_400, "day")
    } else if secs % 3600 == 0 {
        plural(secs / 3600, "hour")
    } else if secs % 60 == 0 {
        plural(secs / 60, "minute")
    } else {
        plural(secs, "second")
    }
}

/// "a, b or c".
fn list(words: &[String], last: &str) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., tail] => format!("{} {last} {tail}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_in_words() {
        let policy = Policy::from_toml(
            "min_file_size = 1\nmax_file_size = \"3 GiB\"\nallowed_types = [\"application/pdf\", \"text/plain\", \"image/*\"]\n\
             allowed_extensions = [\"pdf\", \"txt\"]\nupload_expiry = \"24h\"\nmax_batch_size = \"10 GiB\"\n",
        )
        .unwrap();
        let d = describe(&policy, Some(Algorithm::Sha256));
        let text: Vec<String> = d.rules.iter().map(|r| format!("{}: {}", r.label, r.text)).collect();
        assert_eq!(
            text,
            [
                "Size: Up to 3.0 GiB per file; empty files are refused.",
                "Types: Only PDF documents, plain text files or images.",
                "Names: Ending in .pdf or .txt.",
                "At once: Up to 100 files at a time, 10.0 GiB in total.",
                "Resume: Unfinished uploads are kept for 24 hours after their last piece.",
                "Integrity: Every piece is verified with SHA-256 on arrival.",
            ]
        );
        assert_eq!(d.hint, "Up to 3.0 GiB each · PDF documents, plain text files or images");
        let open = describe(&Policy::default(), None);
        assert!(open.rules.iter().any(|r| r.text == "Any kind of file."));
        assert!(open.hint.ends_with("· any type"), "{}", open.hint);
    }

    #[test]
    fn periods() {
        assert_eq!(period(86_400), "24 hours");
        assert_eq!(period(2 * 86_400), "2 days");
        assert_eq!(period(90), "90 seconds");
        assert_eq!(period(60), "1 minute");
    }
}
