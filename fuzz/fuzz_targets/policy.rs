//! Policy loading: any TOML or JSON document either is refused with
//! `invalid_policy` or yields a valid policy whose served JSON parses back to
//! the very same policy (what the browser module fetches is what the server
//! enforces).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::{Policy, Reason};
use std::time::SystemTime;

fn check(parsed: Result<Policy, sluice_core::Rejection>) {
    match parsed {
        Ok(policy) => {
            assert_eq!(policy.validate(), Ok(()));
            let json = policy.to_json();
            assert_eq!(Policy::from_json(&json).as_ref(), Ok(&policy), "{json}");
            // The server adds the expiry to file times: it must not overflow.
            assert!(SystemTime::now().checked_add(policy.upload_expiry).is_some(), "{json}");
        }
        Err(rejection) => assert_eq!(rejection.reason, Reason::InvalidPolicy),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    check(Policy::from_toml(text));
    check(Policy::from_json(text));
});
