//! tus header codecs: `Upload-Length`/`Upload-Offset`, `Upload-Defer-Length`,
//! `Upload-Checksum`, `Upload-Metadata` and `Upload-Concat` never panic on any text, and every
//! value they accept re-encodes to text that parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::tus::{format_checksum, parse_checksum, parse_defer_length, parse_length, Concat, Metadata};
use sluice_core::MAX_LENGTH;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    if let Ok(n) = parse_length("Upload-Length", text) {
        assert!(n <= MAX_LENGTH);
        assert_eq!(parse_length("Upload-Length", &n.to_string()), Ok(n));
    }
    let _ = parse_defer_length(text);

    if let Ok((algorithm, digest)) = parse_checksum(text) {
        assert_eq!(digest.len(), algorithm.digest_len());
        let again = format_checksum(algorithm, &digest);
        assert_eq!(parse_checksum(&again), Ok((algorithm, digest)), "{again:?}");
    }

    if let Ok(metadata) = Metadata::parse(text) {
        let encoded = metadata.encode();
        assert_eq!(Metadata::parse(&encoded).as_ref(), Ok(&metadata), "{text:?} -> {encoded:?}");
        for (key, _) in metadata.pairs() {
            assert!(!key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic() && b != b','));
        }
        let _ = metadata.file_name();
    }

    match Concat::parse(text) {
        Ok(concat) => {
            if let Concat::Final(urls) = &concat {
                assert!(!urls.is_empty());
                assert!(urls.iter().all(|url| !url.is_empty() && url.bytes().all(|b| b.is_ascii_graphic())));
            }
            let encoded = concat.encode();
            assert_eq!(Concat::parse(&encoded), Ok(concat), "{text:?} -> {encoded:?}");
        }
        Err(rejection) => assert_eq!(rejection.reason, sluice_core::Reason::InvalidConcat),
    }

    // Encode -> parse from pairs built out of the raw bytes: keys are cut to
    // what a key may be (visible ASCII, no comma), values are any bytes.
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    for piece in data.split(|&b| b == 0xff) {
        let (key, value) = piece.split_at(piece.len().min(6));
        let key: String = key.iter().filter(|b| b.is_ascii_graphic() && **b != b',').map(|&b| b as char).collect();
        if key.is_empty() || pairs.iter().any(|(k, _)| *k == key) {
            continue;
        }
        pairs.push((key, value.to_vec()));
    }
    let built = Metadata::from_pairs(pairs);
    assert_eq!(Metadata::parse(&built.encode()), Ok(built));
});
