//! Resume after reload: a file's fingerprint maps to its upload URL in
//! `localStorage`.
//!
//! The fingerprint is name, size, modification time and endpoint, plus a
//! SHA-256 of the leading bytes, so a different file that happens to share
//! name, size and time is not appended to the wrong upload.

use crate::check::FileInfo;
use sluice_core::checksum::to_hex;
use sluice_core::Algorithm;

/// Prefix of every key this crate writes to `localStorage`.
pub const KEY_PREFIX: &str = "sluice:v1:";

/// The storage key for a file about to be sent to `endpoint`.
pub fn key(endpoint: &str, info: &FileInfo, leading: &[u8]) -> String {
    let mut h = Algorithm::Sha256.hasher();
    h.update(leading);
    let lead = to_hex(&h.finalize());
    format!(
        "{KEY_PREFIX}{endpoint}|{}|{}|{}|{}",
        info.name.as_deref().unwrap_or(""),
        info.size,
        info.last_modified.map_or(-1.0, |t| t),
        &lead[..32],
    )
}

/// What a stored key says about its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Remembered {
    /// The full `localStorage` key.
    pub key: String,
    /// The file's name (empty for a plain `Blob`).
    pub name: String,
    /// The file's size.
    pub size: u64,
    /// The file's modification time (Unix ms), if it had one.
    pub last_modified: Option<f64>,
}

/// Reads a key written by [`key`] for `endpoint`; `None` for anyone else's key.
pub fn parse(endpoint: &str, key: &str) -> Option<Remembered> {
    let rest = key.strip_prefix(KEY_PREFIX)?.strip_prefix(endpoint)?.strip_prefix('|')?;
    // The name may hold `|`: take the other fields from the right.
    let mut fields = rest.rsplitn(4, '|');
    let _lead = fields.next()?;
    let mtime: f64 = fields.next()?.parse().ok()?;
    let size: u64 = fields.next()?.parse().ok()?;
    let name = fields.next()?.to_string();
    let last_modified = (mtime >= 0.0).then_some(mtime);
    Some(Remembered { key: key.to_string(), name, size, last_modified })
}

/// `localStorage`, when the page has one (not in workers, not when blocked).
pub struct Store(Option<web_sys::Storage>);

impl Store {
    /// Opens `localStorage`; every operation is a no-op when it is unavailable.
    pub fn open(enabled: bool) -> Store {
        let storage = enabled.then(|| web_sys::window()?.local_storage().ok().flatten()).flatten();
        Store(storage)
    }

    /// The upload URL stored for `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.as_ref()?.get_item(key).ok().flatten()
    }

    /// Remembers `url` for `key` (a full storage is not an error: resume is best effort).
    pub fn set(&self, key: &str, url: &str) {
        if let Some(s) = &self.0 {
            let _ = s.set_item(key, url);
        }
    }

    /// Every key this crate stored for `endpoint`, with its upload URL.
    pub fn remembered(&self, endpoint: &str) -> Vec<(Remembered, String)> {
        let Some(s) = &self.0 else { return Vec::new() };
        let n = s.length().unwrap_or(0);
        let keys: Vec<String> = (0..n).filter_map(|i| s.key(i).ok().flatten()).collect();
        keys.iter().filter_map(|k| Some((parse(endpoint, k)?, s.get_item(k).ok().flatten()?))).collect()
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &str) {
        if let Some(s) = &self.0 {
            let _ = s.remove_item(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_bytes_tell_files_apart() {
        let info =
            FileInfo { name: Some("a.pdf".into()), size: 10, last_modified: Some(5.0), browser_type: String::new() };
        let a = key("http://x/files/", &info, b"%PDF-1.7 one");
        let b = key("http://x/files/", &info, b"%PDF-1.7 two");
        assert_ne!(a, b);
        assert!(a.starts_with("sluice:v1:http://x/files/|a.pdf|10|5|"));
        assert_ne!(a, key("http://y/files/", &info, b"%PDF-1.7 one"));
    }

    #[test]
    fn keys_read_back() {
        let info =
            FileInfo { name: Some("a|b.pdf".into()), size: 10, last_modified: Some(5.0), browser_type: String::new() };
        let k = key("http://x/files/", &info, b"lead");
        let r = parse("http://x/files/", &k).unwrap();
        assert_eq!((r.name.as_str(), r.size, r.last_modified), ("a|b.pdf", 10, Some(5.0)));
        assert_eq!(parse("http://y/files/", &k), None, "another endpoint's key");
        let blob = FileInfo { name: None, size: 3, last_modified: None, browser_type: String::new() };
        let r = parse("http://x/files/", &key("http://x/files/", &blob, b"")).unwrap();
        assert_eq!((r.name.as_str(), r.last_modified), ("", None));
        assert_eq!(parse("http://x/files/", "sluice:v1:http://x/files/|junk"), None);
    }
}
