//! Type sniffing and the whole-file check: never a panic, the same verdict
//! twice, and `check_file` is exactly name, then size, then type on the first
//! `min(SNIFF_LEN, size)` bytes (the function both ends call).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sluice_core::{sniff, Policy, SNIFF_LEN};
use std::sync::OnceLock;

#[derive(Debug, Arbitrary)]
struct Input {
    policy: u8,
    name: Option<String>,
    size: u64,
    leading: Vec<u8>,
}

fn policies() -> &'static [Policy] {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        [
            "",
            "allowed_types = [\"image/*\", \"application/pdf\"]\nmax_file_size = 100000",
            "allowed_types = [\"text/plain\"]\nallowed_extensions = [\"txt\", \"csv\"]\nmin_file_size = 1",
            "allowed_types = [\"text/csv\", \"application/json\"]\nmax_filename_length = 12",
            "allowed_types = [\"*/*\"]\nallowed_extensions = [\"png\"]",
            "allowed_types = [\"video/mp4\", \"audio/*\", \"application/zip\"]",
        ]
        .iter()
        .map(|t| Policy::from_toml(t).expect("seed policy"))
        .collect()
    })
}

fuzz_target!(|input: Input| {
    let policies = policies();
    let policy = &policies[usize::from(input.policy) % policies.len()];
    let name = input.name.as_deref();

    let kind = sniff::sniff(&input.leading, name);
    assert_eq!(kind, sniff::sniff(&input.leading, name));
    assert_eq!(kind, sniff::sniff(&input.leading[..input.leading.len().min(SNIFF_LEN)], name));

    let verdict = policy.check_file(name, input.size, &input.leading);
    assert_eq!(verdict, policy.check_file(name, input.size, &input.leading));

    let by_hand = policy.check_name(name).and_then(|()| policy.check_size(input.size)).and_then(|()| {
        let window = SNIFF_LEN.min(usize::try_from(input.size).unwrap_or(usize::MAX));
        policy.check_type(&input.leading[..input.leading.len().min(window)], name)
    });
    assert_eq!(verdict, by_hand);
    if let Err(rejection) = &verdict {
        assert!(!rejection.message.is_empty());
    }
});
