//! Upload ids: 128 random bits, as 32 lowercase hex digits.
//!
//! Ids come from the operating system's random source, never from the client,
//! so they cannot be guessed, collide or traverse paths. [`UploadId::parse`]
//! accepts only the exact form [`UploadId::random`] produces.

use std::fmt;

/// The id of one upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh id with 128 bits from the OS random source.
    pub fn random() -> std::io::Result<UploadId> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(UploadId(sluice_core::checksum::to_hex(&bytes)))
    }

    /// The id made of these 128 bits (ids derived with a server secret).
    pub fn from_bits(bits: [u8; 16]) -> UploadId {
        UploadId(sluice_core::checksum::to_hex(&bits))
    }

    /// Parses an id from a URL segment or file name; `None` unless it is exactly
    /// 32 lowercase hex digits.
    pub fn parse(text: &str) -> Option<UploadId> {
        let ok = text.len() == 32 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| UploadId(text.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for UploadId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for UploadId {
    /// Only the exact form parses (see [`UploadId::parse`]), from any source.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UploadId, D::Error> {
        let text = String::deserialize(d)?;
        UploadId::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("not an upload id: {text:?}")))
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_parse_and_differ() {
        let a = UploadId::random().unwrap();
        let b = UploadId::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(UploadId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn only_the_exact_form_parses() {
        for bad in [
            "",
            "..",
            "../../etc/passwd",
            "%2e%2e",
            "0123456789abcdef0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
        ] {
            assert_eq!(UploadId::parse(bad), None, "{bad}");
        }
        assert!(UploadId::parse("0123456789abcdef0123456789abcdef").is_some());
    }
}
