//! The server's secret: keys ids derived from client-supplied identifiers
//! (Flow.js chunks), so that they can be neither guessed nor steered.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;

/// 32 random bytes; `Debug` never shows them.
#[derive(Clone)]
pub struct Secret([u8; 32]);

impl Secret {
    /// A fresh random secret.
    pub fn random() -> io::Result<Secret> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Secret(bytes))
    }

    /// The secret kept at `path`, created (mode 0600) if missing, so derived
    /// ids stay stable across restarts.
    pub fn load_or_create(path: &Path) -> io::Result<Secret> {
        match std::fs::File::open(path) {
            Ok(mut file) => {
                let mut bytes = [0u8; 32];
                file.read_exact(&mut bytes)?;
                Ok(Secret(bytes))
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
        Secret(bytes)
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
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
}
