//! The server's secret: keys ids derived from client-supplied identifiers
//! (Flow.js chunks), so that they can be neither guessed nor steered.
//!
//! Configured with `--secret` / `SLUICE_SECRET` (hex or base64, at least 32
//! bytes: every instance sharing uploads must have the same one), else kept in
//! the data directory (`secret.key`, created on first start).

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;

/// Shortest accepted secret, in bytes.
pub(crate) const MIN_LEN: usize = 32;

/// At least 32 bytes of key; `Debug` never shows them.
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// A fresh random secret.
    pub fn random() -> io::Result<Secret> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Secret::from_bytes(bytes))
    }

    /// A configured secret: hex, or base64 (standard or URL-safe, padded or not), of at least
    /// `MIN_LEN` bytes.
    pub fn parse(text: &str) -> Result<Secret, String> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        use base64::Engine as _;
        let text = text.trim();
        let hex = (text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
            (0..text.len()).step_by(2).filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect::<Vec<u8>>()
        });
        let bytes = hex
            .or_else(|| [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(text).ok()))
            .ok_or("the secret must be hex or base64")?;
        if bytes.len() < MIN_LEN {
            return Err(format!("the secret must be at least {MIN_LEN} bytes (it is {})", bytes.len()));
        }
        Ok(Secret(bytes.into_boxed_slice()))
    }

    /// The secret kept at `path`, created (mode 0600) if missing, so derived
    /// ids stay stable across restarts.
    pub fn load_or_create(path: &Path) -> io::Result<Secret> {
        match std::fs::File::open(path) {
            Ok(mut file) => {
                let mut bytes = [0u8; 32];
                file.read_exact(&mut bytes)?;
                Ok(Secret::from_bytes(bytes))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                use std::os::unix::fs::OpenOptionsExt;
                let secret = Secret::random()?;
                let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
                file.write_all(&secret.0)?;
                file.sync_all()?;
                Ok(secret)
            }
            Err(e) => Err(e),
        }
    }

    /// A secret from given bytes (tests, or a configured key).
    pub fn from_bytes(bytes: [u8; 32]) -> Secret {
        Secret(Box::new(bytes))
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_secret_is_stable_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = Secret::load_or_create(&path).unwrap();
        let again = Secret::load_or_create(&path).unwrap();
        assert_eq!(first.bytes(), again.bytes());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(format!("{first:?}"), "Secret(..)");
        assert_ne!(Secret::random().unwrap().bytes(), first.bytes());
    }

    #[test]
    fn a_configured_secret_is_hex_or_base64_of_32_bytes_or_more() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        assert_eq!(Secret::parse(hex).unwrap().bytes()[..2], [0x00, 0x11]);
        let bytes: Vec<u8> = (0..48).collect();
        use base64::Engine as _;
        for engine in [base64::engine::general_purpose::STANDARD, base64::engine::general_purpose::URL_SAFE_NO_PAD] {
            assert_eq!(Secret::parse(&engine.encode(&bytes)).unwrap().bytes(), &bytes[..]);
        }
        assert!(Secret::parse(&hex[..62]).unwrap_err().contains("at least 32 bytes"), "31 bytes of hex");
        assert!(Secret::parse("not a secret!").is_err());
        assert!(Secret::parse("").is_err());
    }
}
