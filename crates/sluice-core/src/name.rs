//! File names as the client declares them.
//!
//! A declared name is only ever metadata: storage never uses it as a path.
//! It is still checked, because a policy may restrict extensions and because a
//! name with control characters or separators is a sign of a hostile client.

/// The lowercase extension of a file name (`"Photo.JPG"` → `"jpg"`); `None`
/// when there is none (`"README"`, `".bashrc"`, `"name."`).
pub fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

/// Why a name is malformed, independent of policy limits; `None` if fine.
pub(crate) fn malformation(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("The file name is empty.");
    }
    if name == "." || name == ".." {
        return Some("The file name cannot be \".\" or \"..\".");
    }
    if name.contains(['/', '\\']) {
        return Some("The file name cannot contain a path separator (/ or \\).");
    }
    if name.chars().any(char::is_control) {
        return Some("The file name cannot contain control characters.");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(extension("Photo.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension("archive.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension("README"), None);
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("name."), None);
    }

    #[test]
    fn malformed_names() {
        for bad in ["", ".", "..", "../etc/passwd", "a\\b", "nul\0byte", "tab\there", "bell\x07"] {
            assert!(malformation(bad).is_some(), "{bad:?} should be refused");
        }
        for good in ["report.pdf", "été.png", "a b c.txt", "CON", "日本語.csv"] {
            assert_eq!(malformation(good), None, "{good:?} should pass");
        }
    }
}
