//! Property tests of the shared rules: chunk plans cover a file exactly once,
//! appends never move an offset backwards or past the length, header codecs
//! round-trip, policies survive being served, and `check_file` (what both ends
//! call) is deterministic and is exactly name, then size, then type.

#![allow(clippy::unwrap_used)]

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use sluice_core::chunk::plan;
use sluice_core::tus::{format_checksum, parse_checksum, parse_length, Metadata};
use sluice_core::{Algorithm, Append, Policy, Reason, MAX_LENGTH, SNIFF_LEN};

/// Leading bytes worth sniffing: known magic numbers, text, binary, empty.
fn leading_bytes() -> impl Strategy<Value = Vec<u8>> {
    let magic: Vec<&'static [u8]> = vec![
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        b"%PDF-1.7\n",
        b"\xff\xd8\xff\xe0\0\x10JFIF\0",
        b"GIF89a",
        b"PK\x03\x04",
        b"\x1f\x8b\x08",
        b"\0\0\0\x18ftypmp42",
        b"a,b\n1,2\n",
        b"{\"k\": 1}",
        b"",
    ];
    (prop::sample::select(magic), vec(any::<u8>(), 0..64), any::<bool>()).prop_map(|(head, tail, text_tail)| {
        let mut bytes = head.to_vec();
        if text_tail {
            bytes.extend(tail.iter().map(|b| b'a' + b % 26));
        } else {
            bytes.extend(tail);
        }
        bytes
    })
}

fn file_names() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "report.pdf",
            "photo.PNG",
            "data.csv",
            "notes.txt",
            "README",
            ".bashrc",
            "../etc/passwd",
            "a\\b.png",
            "nul\0.png",
            "CON",
            "été.png",
            "",
            "x.exe",
        ])
        .prop_map(|n| Some(n.to_string())),
        "[a-zA-Z0-9 ._-]{0,20}".prop_map(Some),
    ]
}

/// Policies built as an operator would write them, then loaded.
fn policies() -> impl Strategy<Value = Policy> {
    let types = prop::sample::subsequence(
        vec!["image/*", "application/pdf", "text/plain", "text/csv", "video/mp4", "*/*", "application/zip"],
        0..4,
    );
    let exts = prop::sample::subsequence(vec!["png", "pdf", "csv", "txt", "jpg"], 0..3);
    (0u64..2_000, 0u64..100, 1u32..40, types, exts).prop_map(|(max, min, name_len, types, exts)| {
        let quote = |items: Vec<&str>| items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ");
        Policy::from_toml(&format!(
            "max_file_size = {}\nmin_file_size = {}\nmax_filename_length = {name_len}\n\
             allowed_types = [{}]\nallowed_extensions = [{}]",
            max + min,
            min,
            quote(types),
            quote(exts)
        ))
        .unwrap()
    })
}

proptest! {
    #[test]
    fn chunk_plans_cover_the_rest_of_a_file_exactly_once_in_order(
        total in 0u64..200_000,
        offset in 0u64..250_000,
        chunk_size in 0u64..70_000,
    ) {
        let step = chunk_size.max(1);
        let mut next = offset.min(total);
        for range in plan(offset, total, chunk_size) {
            prop_assert_eq!(range.start, next, "contiguous, in order");
            prop_assert!(range.end > range.start, "never empty");
            prop_assert!(range.end - range.start <= step, "never larger than a chunk");
            prop_assert!(range.end - range.start == step || range.end == total, "only the last chunk is short");
            next = range.end;
        }
        prop_assert_eq!(next, total.max(offset.min(total)), "ends exactly at the end of the file");
    }

    #[test]
    fn chunk_plans_near_u64_max_do_not_overflow(total in any::<u64>(), offset in any::<u64>(), shift in 0u32..64) {
        let chunk_size = (total >> shift).max(total / 64);
        let ranges: Vec<_> = plan(offset, total, chunk_size).take(200).collect();
        let covered: u128 = ranges.iter().map(|r| u128::from(r.end - r.start)).sum();
        if ranges.len() < 200 {
            prop_assert_eq!(covered, u128::from(total - offset.min(total)));
        }
        prop_assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn appends_never_move_an_offset_backwards_or_past_the_length(
        max_file in 1u64..10_000,
        max_chunk in 1u64..5_000,
        length in prop::option::of(0u64..12_000),
        steps in vec((prop::option::of(0u64..6_000), 0u64..3, any::<bool>()), 1..40),
    ) {
        let policy = Policy::from_toml(&format!("max_file_size = {max_file}\nmax_chunk_size = {max_chunk}")).unwrap();
        let limit = length.unwrap_or(max_file);
        let mut offset = 0u64;
        for (chunk_len, skew, ahead) in steps {
            // Mostly at the right offset; sometimes a stale or a future one.
            let request_offset = if ahead { offset + skew } else { offset.saturating_sub(skew) };
            let a = Append { upload_offset: offset, request_offset, chunk_len, upload_length: length };
            match policy.check_append(a) {
                Ok(allowed) => {
                    prop_assert_eq!(request_offset, offset);
                    prop_assert!(allowed <= max_chunk);
                    if let Some(len) = chunk_len {
                        prop_assert_eq!(allowed, len, "a declared length is allowed whole or not at all");
                    }
                    let end = offset.checked_add(allowed).unwrap();
                    prop_assert!(end <= limit, "{offset} + {allowed} passes {limit}");
                    prop_assert!(end >= offset);
                    offset = end;
                }
                Err(refusal) => {
                    let expected = if request_offset != offset {
                        vec![Reason::OffsetMismatch]
                    } else {
                        vec![Reason::ChunkTooLarge, Reason::ExceedsUploadLength, Reason::FileTooLarge]
                    };
                    prop_assert!(expected.contains(&refusal.reason), "{refusal:?}");
                }
            }
        }
    }

    #[test]
    fn check_append_holds_for_any_numbers(
        upload_offset in any::<u64>(),
        same in any::<bool>(),
        request_offset in any::<u64>(),
        chunk_len in prop::option::of(any::<u64>()),
        upload_length in prop::option::of(any::<u64>()),
    ) {
        let policy = Policy::default();
        let request_offset = if same { upload_offset } else { request_offset };
        let a = Append { upload_offset, request_offset, chunk_len, upload_length };
        if let Ok(allowed) = policy.check_append(a) {
            let limit = upload_length.unwrap_or(policy.max_file_size);
            prop_assert_eq!(request_offset, upload_offset);
            prop_assert!(allowed == 0 || upload_offset.checked_add(allowed).is_some_and(|end| end <= limit));
        }
    }

    #[test]
    fn metadata_encodes_and_parses_back(
        pairs in btree_map("[!-+\\--~]{1,12}", vec(any::<u8>(), 0..40), 0..8),
    ) {
        let metadata = Metadata::from_pairs(pairs);
        let encoded = metadata.encode();
        prop_assert_eq!(Metadata::parse(&encoded).unwrap(), metadata);
    }

    #[test]
    fn parsed_metadata_reencodes_to_the_same_pairs(text in "[ -~]{0,60}") {
        if let Ok(metadata) = Metadata::parse(&text) {
            prop_assert_eq!(Metadata::parse(&metadata.encode()).unwrap(), metadata);
        }
    }

    #[test]
    fn lengths_and_checksums_round_trip(n in 0..=MAX_LENGTH, over in (MAX_LENGTH + 1).., digest in vec(any::<u8>(), 32)) {
        prop_assert_eq!(parse_length("Upload-Offset", &n.to_string()), Ok(n));
        prop_assert_eq!(parse_length("Upload-Offset", &over.to_string()).unwrap_err().reason, Reason::InvalidHeader);
        for algorithm in Algorithm::ALL {
            let digest = digest[..algorithm.digest_len()].to_vec();
            let header = format_checksum(algorithm, &digest);
            prop_assert_eq!(parse_checksum(&header), Ok((algorithm, digest)));
        }
    }

    #[test]
    fn policies_survive_being_served(
        max in 1u64..(1 << 40),
        chunk in prop::option::of(1u64..(1 << 40)),
        expiry_secs in 1u64..(10 * 365 * 86_400),
        expiry_ms in 0u64..1000,
        batch in prop::option::of(any::<u32>()),
    ) {
        let mut toml = format!("max_file_size = {max}\nupload_expiry = \"{expiry_secs}s {expiry_ms}ms\"\n");
        if let Some(chunk) = chunk {
            toml.push_str(&format!("max_chunk_size = {chunk}\n"));
        }
        if let Some(batch) = batch {
            toml.push_str(&format!("max_batch_size = {batch}\n"));
        }
        match Policy::from_toml(&toml) {
            // What the server serves at /policy is what the browser loads back.
            Ok(policy) => prop_assert_eq!(Policy::from_json(&policy.to_json()).unwrap(), policy),
            // Only a fraction of a second is refused: it could not be served exactly.
            Err(refusal) => {
                prop_assert!(expiry_ms != 0, "{toml}: {refusal:?}");
                prop_assert_eq!(refusal.reason, Reason::InvalidPolicy);
            }
        }
    }

    #[test]
    fn check_file_is_deterministic_and_is_name_then_size_then_type(
        policy in policies(),
        name in file_names(),
        size in prop_oneof![0u64..3_000, Just(u64::MAX), 0u64..(SNIFF_LEN as u64 * 2)],
        leading in leading_bytes(),
    ) {
        let name = name.as_deref();
        let verdict = policy.check_file(name, size, &leading);
        prop_assert_eq!(&verdict, &policy.check_file(name, size, &leading), "same verdict twice");
        let by_hand = policy.check_name(name).and_then(|()| policy.check_size(size)).and_then(|()| {
            let window = SNIFF_LEN.min(usize::try_from(size).unwrap_or(usize::MAX));
            policy.check_type(&leading[..leading.len().min(window)], name)
        });
        prop_assert_eq!(&verdict, &by_hand);
        if let Ok(kind) = verdict {
            prop_assert!(policy.allowed_types.is_empty() || policy.allowed_types.iter().any(|p| kind.matches(p)));
        }
    }
}
