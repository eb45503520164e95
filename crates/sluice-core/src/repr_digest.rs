//! RFC 9530 `Repr-Digest`: the whole representation's digest, e.g.
//! `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`.
//!
//! Only `sha-256` is read; members for other algorithms are ignored, as the RFC
//! lets a receiver do. A malformed field is refused rather than ignored: a client
//! that sends a digest wants it checked.

use crate::reason::{Reason, Rejection, Result};
use crate::rufh::structured;

/// The field's name.
pub const FIELD: &str = "Repr-Digest";
/// The algorithm key read and written.
const SHA_256: &str = "sha-256";

/// Reads the SHA-256 digest from a `Repr-Digest` value: `Ok(None)` when the field
/// names only other algorithms; `invalid_header` when it is not a Dictionary or its
/// `sha-256` member is not a 32-byte byte sequence.
pub fn parse_sha256(value: &str) -> Result<Option<[u8; 32]>> {
    let bad = |why: &str| Rejection::new(Reason::InvalidHeader, format!("{FIELD}: {why} (got {value:?})."));
    let dictionary = structured::dictionary(value).map_err(|_| bad("expected sha-256=:<base64>:"))?;
    let Some(entry) = dictionary.get(SHA_256) else { return Ok(None) };
    let bytes = structured::member_item(entry)
        .and_then(|item| item.as_byte_sequence())
        .ok_or_else(|| bad("the sha-256 value must be a byte sequence, :<base64>:"))?;
    let digest: [u8; 32] = bytes.try_into().map_err(|_| bad("a SHA-256 digest is 32 bytes"))?;
    Ok(Some(digest))
}

/// The `Repr-Digest` value for a SHA-256 digest.
pub fn format_sha256(digest: &[u8; 32]) -> String {
    use base64::Engine as _;
    format!("{SHA_256}=:{}:", base64::engine::general_purpose::STANDARD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // SHA-256 of `{"hello": "world"}`, the example of RFC 9530 section 3.
    const EXAMPLE: &str = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";

    #[test]
    fn reads_the_rfc_example() {
        use sha2::Digest as _;
        let digest = parse_sha256(EXAMPLE).unwrap().unwrap();
        let expected: [u8; 32] = sha2::Sha256::digest(b"{\"hello\": \"world\"}").into();
        assert_eq!(digest, expected);
        assert_eq!(format_sha256(&digest), EXAMPLE);
    }

    #[test]
    fn other_algorithms_are_ignored_and_malformed_values_refused() {
        let sha512 =
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
        assert_eq!(parse_sha256(sha512), Ok(None));
        assert!(parse_sha256(&format!("{sha512}, {EXAMPLE}")).unwrap().is_some());
        assert!(parse_sha256(&format!("{EXAMPLE};note=1")).unwrap().is_some(), "parameters are ignored");
        for bad in [
            "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
            "sha-256=:AAAA:",
            "sha-256=:not base64:",
            "sha-256=\"x\"",
            "sha-256=(:AAAA:)",
            "sha-256",
            "SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
            "",
        ] {
            let result = parse_sha256(bad);
            if bad.is_empty() {
                assert_eq!(result, Ok(None), "an empty Dictionary names no algorithm");
                continue;
            }
            assert_eq!(result.unwrap_err().reason, Reason::InvalidHeader, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(digest in proptest::array::uniform32(any::<u8>())) {
            prop_assert_eq!(parse_sha256(&format_sha256(&digest)), Ok(Some(digest)));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,120}") {
            let _ = parse_sha256(&text);
        }

        #[test]
        fn parse_never_panics_on_digest_like_text(text in "sha-[0-9]{3}=:[A-Za-z0-9+/=]{0,60}:(;[a-z]=[0-9])?(, [a-z-]{1,8}=:[A-Za-z0-9+/=]{0,12}:)?") {
            let _ = parse_sha256(&text);
        }
    }
}
