//! The resumable-uploads draft's fields and `Repr-Digest`: no parser panics on any
//! text; every accepted value re-renders to text that parses back to the same value;
//! malformed fields are refused before interop version 8 and ignored from 8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::repr_digest::{format_sha256, parse_sha256};
use sluice_core::rufh::{field, InteropVersion, UploadLimit};
use sluice_core::{Reason, MAX_LENGTH};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    match InteropVersion::parse(text) {
        Ok(version) => assert_eq!(InteropVersion::parse(&version.to_string()), Ok(version)),
        Err(rejection) => assert!(matches!(rejection.reason, Reason::InvalidHeader | Reason::UnsupportedVersion)),
    }

    for version in InteropVersion::ALL {
        match version.read_complete(Some(text)) {
            Ok(Some(complete)) => {
                let (name, value) = version.render_complete(complete);
                assert_eq!(name, version.complete_field());
                assert_eq!(version.read_complete(Some(value)), Ok(Some(complete)));
            }
            Ok(None) => assert_eq!(version, InteropVersion::LATEST, "only version 8 ignores a malformed field"),
            Err(rejection) => assert_eq!(rejection.reason, Reason::InvalidHeader),
        }
        match version.read_size(field::UPLOAD_OFFSET, Some(text)) {
            Ok(Some(n)) => {
                assert!(n <= MAX_LENGTH);
                assert_eq!(version.read_size(field::UPLOAD_OFFSET, Some(&n.to_string())), Ok(Some(n)));
            }
            Ok(None) => assert_eq!(version, InteropVersion::LATEST),
            Err(rejection) => assert_eq!(rejection.reason, Reason::InvalidHeader),
        }
        if let Some(limit) = UploadLimit::parse(version, text) {
            let rendered = limit.render(version).expect("a version that parses Upload-Limit renders it");
            let again = UploadLimit::parse(version, &rendered).expect("a rendered Upload-Limit parses");
            if limit != UploadLimit::default() {
                assert_eq!(again, limit, "{text:?} -> {rendered:?}");
            }
        }
    }

    match parse_sha256(text) {
        Ok(Some(digest)) => assert_eq!(parse_sha256(&format_sha256(&digest)), Ok(Some(digest))),
        Ok(None) => {}
        Err(rejection) => assert_eq!(rejection.reason, Reason::InvalidHeader),
    }
});
