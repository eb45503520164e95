//! Incremental checksums for the algorithms Sluice accepts.
//!
//! `sha1` is the one tus 1.0 makes mandatory for the checksum extension;
//! `sha256` is the strong choice; `crc32c` is the fast one (hardware-assisted
//! on x86-64). Names are the tus `Upload-Checksum` names.

use serde::{Deserialize, Serialize};
use sha1::Digest as _;
use std::fmt;

/// A checksum algorithm, named as in `Tus-Checksum-Algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// SHA-1 (20-byte digest); mandatory in tus.
    Sha1,
    /// SHA-256 (32-byte digest).
    Sha256,
    /// CRC-32C, Castagnoli (4-byte digest, big-endian).
    Crc32c,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Crc32c];

    /// The tus name: `"sha1"`, `"sha256"`, `"crc32c"`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Crc32c => "crc32c",
        }
    }

    /// The algorithm with this tus name (exact, lowercase).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Length in bytes of this algorithm's digest.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Crc32c => 4,
        }
    }

    /// A fresh incremental hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Crc32c => Hasher::Crc32c(0),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An incremental hasher; feed it with [`Hasher::update`], then [`Hasher::finalize`].
#[derive(Clone)]
pub enum Hasher {
    /// SHA-1 state.
    Sha1(sha1::Sha1),
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// CRC-32C running value.
    Crc32c(u32),
}

impl Hasher {
    /// Adds bytes to the running digest.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha1(_) => Algorithm::Sha1,
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Crc32c(_) => Algorithm::Crc32c,
        }
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Crc32c(crc) => crc.to_be_bytes().to_vec(),
        }
    }
}

/// Lowercase hex of a digest, as `sha256sum` prints it.
pub fn to_hex(digest: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_hex(alg: Algorithm, parts: &[&[u8]]) -> String {
        let mut h = alg.hasher();
        for p in parts {
            h.update(p);
        }
        let d = h.finalize();
        assert_eq!(d.len(), alg.digest_len());
        to_hex(&d)
    }

    #[test]
    fn known_vectors() {
        assert_eq!(digest_hex(Algorithm::Sha1, &[b"abc"]), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            digest_hex(Algorithm::Sha256, &[b"abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // CRC-32C check value from RFC 3720.
        assert_eq!(digest_hex(Algorithm::Crc32c, &[b"123456789"]), "e3069283");
    }

    #[test]
    fn incremental_equals_one_shot() {
        for alg in Algorithm::ALL {
            assert_eq!(digest_hex(alg, &[b"hello ", b"", b"world"]), digest_hex(alg, &[b"hello world"]));
        }
    }

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(Algorithm::from_name("md5"), None);
        assert_eq!(Algorithm::from_name("SHA1"), None);
    }
}
