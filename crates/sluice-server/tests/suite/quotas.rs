//! Creation floods against the real binary: one client past its caps gets 429 with a
//! reason and a Retry-After, while another carries on.

#![allow(clippy::unwrap_used)]

use crate::blackbox;

use blackbox::*;
use std::process::Command;

const SECRET: &str = "a secret of at least thirty-two bytes!";

fn token(sub: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["token", "--sub", sub, "--ttl", "1h", "--auth-secret", SECRET])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_creation_flood_is_capped_and_another_client_carries_on() {
    // The figure (20,000 creations against the default cap of 1,000) under
    // SLUICE_LONG=1; a smaller flood against a smaller cap by default.
    let long = std::env::var("SLUICE_LONG").is_ok_and(|v| v == "1");
    let (attempts, cap) = if long { (20_000, "1000") } else { (3_000, "300") };
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--auth-secret", SECRET, "--creation-rate", "100", "--max-open-uploads-per-client", cap];
    let server = Server::start_with(dir.path(), None, &flags);
    let (alice, bob) = (token("alice"), token("bob"));
    let flood = std::thread::scope(|scope| {
        let flood = scope.spawn(|| {
            let auth = format!("Bearer {alice}");
            let mut counts = std::collections::BTreeMap::<String, u32>::new();
            for _ in 0..attempts {
                let res = server.request(
                    "POST",
                    "/files/",
                    &[("Upload-Length", (1u64 << 20).to_string()), ("Authorization", auth.clone())],
                    b"",
                );
                let key = match res.status {
                    201 => "201".to_string(),
                    429 => {
                        assert!(res.header("retry-after").is_some(), "429 without Retry-After: {res:?}");
                        let code = serde_json::from_str::<serde_json::Value>(&res.body).unwrap()["code"].clone();
                        format!("429 {}", code.as_str().unwrap())
                    }
                    _ => panic!("a creation in the flood got {res:?}"),
                };
                *counts.entry(key).or_default() += 1;
            }
            counts
        });
        // Meanwhile another client creates and finishes uploads as usual.
        let auth = format!("Bearer {bob}");
        let file = data(256 << 10, 9);
        let mut done = 0;
        while !flood.is_finished() || done < 3 {
            let res = server.request(
                "POST",
                "/files/",
                &[("Upload-Length", file.len().to_string()), ("Authorization", auth.clone())],
                b"",
            );
            assert_eq!(res.status, 201, "the other client is refused during the flood: {res:?}");
            let path = res.header("location").unwrap().split_once("/files/").unwrap().1.to_string();
            let path = format!("/files/{path}");
            let mut headers = patch_headers(0);
            headers.push(("Authorization", auth.clone()));
            let res = server.request("PATCH", &path, &headers, &file);
            assert_eq!(res.status, 204, "the other client's upload failed during the flood: {res:?}");
            done += 1;
        }
        flood.join().unwrap()
    });
    let created = flood.get("201").copied().unwrap_or(0);
    assert!(created <= cap.parse().unwrap(), "at most {cap} unfinished uploads per client: {flood:?}");
    assert!(flood.keys().any(|k| k == "429 too_many_open_uploads"), "the open-uploads cap was reached: {flood:?}");
    assert!(flood.keys().all(|k| k == "201" || k.starts_with("429 ")), "{flood:?}");
}
