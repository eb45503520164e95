//! Bearer tokens minted outside Rust, against the real binary: HS256 and RS256 JWTs signed by
//! Node's `jsonwebtoken` (npm, installed by `cargo xtask setup` into tests/node_modules) and
//! EdDSA ones signed by the OpenSSL command line authorize uploads; expired, re-signed,
//! `alg: none` and algorithm-confused tokens get `401 unauthorized`.

#![allow(clippy::unwrap_used)]

use crate::blackbox;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blackbox::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

const SECRET: &str = "an application secret of at least 32 bytes";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(sub: &str, exp: u64) -> String {
    format!(r#"{{"sub":"{sub}","exp":{exp}}}"#)
}

/// A token signed by Node's `jsonwebtoken` with `algorithm` and the key in `key_file`.
fn node_token(algorithm: &str, key_file: &Path, claims: &str) -> String {
    let tests = repo().join("tests");
    assert!(
        tests.join("node_modules/jsonwebtoken").is_dir(),
        "npm jsonwebtoken is missing from tests/node_modules: run `cargo xtask setup`"
    );
    const MINT: &str = "const jwt = require('jsonwebtoken'); const fs = require('fs');
        const [alg, keyFile, claims] = process.argv.slice(1);
        process.stdout.write(jwt.sign(JSON.parse(claims), fs.readFileSync(keyFile), { algorithm: alg, noTimestamp: true }));";
    let out = Command::new("node")
        .args(["-e", MINT, algorithm])
        .arg(key_file)
        .arg(claims)
        .current_dir(&tests)
        .stderr(Stdio::inherit())
        .output()
        .expect("node");
    assert!(out.status.success(), "node jsonwebtoken failed");
    String::from_utf8(out.stdout).unwrap()
}

fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new("openssl").args(args).current_dir(dir).stderr(Stdio::inherit()).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

/// Generates a key pair with OpenSSL: (private key file, public key file).
fn key_pair(dir: &Path, name: &str, algorithm: &[&str]) -> (PathBuf, PathBuf) {
    let (private, public) = (format!("{name}.key"), format!("{name}.pub"));
    openssl(&[&["genpkey", "-out", &private][..], algorithm].concat(), dir);
    openssl(&["pkey", "-in", &private, "-pubout", "-out", &public], dir);
    (dir.join(private), dir.join(public))
}

/// An EdDSA token signed by the OpenSSL command line (Ed25519 over `header.payload`).
fn openssl_eddsa_token(dir: &Path, private: &Path, claims: &str) -> String {
    let body =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#), URL_SAFE_NO_PAD.encode(claims));
    std::fs::write(dir.join("signing-input"), &body).unwrap();
    let signature =
        openssl(&["pkeyutl", "-sign", "-rawin", "-inkey", private.to_str().unwrap(), "-in", "signing-input"], dir);
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// `alg: none`: no signature at all.
fn unsigned_token(claims: &str) -> String {
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#), URL_SAFE_NO_PAD.encode(claims))
}

/// HS256 "signed" with the server's public key as the HMAC secret: the classic algorithm confusion.
fn confused_token(public_pem: &[u8], claims: &str) -> String {
    use hmac::{KeyInit, Mac};
    let body =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#), URL_SAFE_NO_PAD.encode(claims));
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(public_pem).unwrap();
    mac.update(body.as_bytes());
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// Creates and fills an upload with `token`; returns its path.
fn upload_with(server: &Server, token: &str) -> String {
    let created = server.request("POST", "/files/", &[bearer(token), ("Upload-Length", "5".into())], b"");
    assert_eq!(created.status, 201, "{created:?}");
    let location = created.header("location").unwrap();
    let path = location[location.find("/files/").unwrap()..].to_string();
    let mut headers = patch_headers(0);
    headers.push(bearer(token));
    let patched = server.request("PATCH", &path, &headers, b"hello");
    assert_eq!(patched.status, 204, "{patched:?}");
    path
}

fn assert_refused(server: &Server, token: &str, what: &str) {
    let res = server.request("POST", "/files/", &[bearer(token), ("Upload-Length", "5".into())], b"");
    assert_eq!(res.status, 401, "{what}: {res:?}");
    assert!(res.body.contains("\"unauthorized\""), "{what}: {res:?}");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"), "{what}");
}

#[test]
fn hs256_tokens_from_node_authorize_uploads_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("secret"), SECRET).unwrap();
    std::fs::write(keys.path().join("other"), "someone else's secret, also long enough").unwrap();
    let server = Server::start_with(dir.path(), None, &["--auth-secret", SECRET]);
    let secret = keys.path().join("secret");

    let alice = node_token("HS256", &secret, &claims("alice", now() + 600));
    let up = upload_with(&server, &alice);
    let head = |token: &str| request_on(server.connect(), "HEAD", &up, &[bearer(token)], b"");
    assert_eq!(head(&alice).status, 200);
    let bob = node_token("HS256", &secret, &claims("bob", now() + 600));
    assert_eq!(head(&bob).status, 404, "another subject's upload does not exist for bob");

    assert_refused(&server, &node_token("HS256", &secret, &claims("alice", now() - 10)), "expired");
    assert_refused(
        &server,
        &node_token("HS256", &keys.path().join("other"), &claims("alice", now() + 600)),
        "re-signed",
    );
    assert_refused(&server, &node_token("HS512", &secret, &claims("alice", now() + 600)), "another algorithm");
    assert_refused(&server, &unsigned_token(&claims("alice", now() + 600)), "alg none");
    assert_refused(&server, &node_token("HS256", &secret, r#"{"sub":"alice"}"#), "no exp");
    let mut tampered: Vec<String> = alice.split('.').map(str::to_owned).collect();
    tampered[1] = URL_SAFE_NO_PAD.encode(claims("mallory", now() + 600));
    assert_refused(&server, &tampered.join("."), "tampered claims");

    // `sluice token` mints tokens the server accepts, and Node's library reads them as standard JWTs.
    let minted = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["token", "--sub", "carol", "--ttl", "1h", "--auth-secret", SECRET])
        .output()
        .unwrap();
    assert!(minted.status.success());
    let minted = String::from_utf8(minted.stdout).unwrap().trim().to_string();
    upload_with(&server, &minted);
    const VERIFY: &str = "const jwt = require('jsonwebtoken');
        process.stdout.write(jwt.verify(process.argv[1], process.argv[2], { algorithms: ['HS256'] }).sub);";
    let read = Command::new("node").args(["-e", VERIFY, &minted, SECRET]).current_dir(repo().join("tests")).output();
    assert_eq!(String::from_utf8(read.unwrap().stdout).unwrap(), "carol");
}

#[test]
fn a_public_key_accepts_rs256_from_node_and_eddsa_from_openssl_and_nothing_forged() {
    let keys = tempfile::tempdir().unwrap();
    let (rsa, rsa_pub) = key_pair(keys.path(), "rsa", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    let (stranger, _) = key_pair(keys.path(), "stranger", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    std::fs::write(keys.path().join("secret"), SECRET).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--auth-public-key", rsa_pub.to_str().unwrap()]);

    let good = claims("alice", now() + 600);
    let up = upload_with(&server, &node_token("RS256", &rsa, &good));
    assert_eq!(
        request_on(server.connect(), "HEAD", &up, &[bearer(&node_token("RS512", &rsa, &good))], b"").status,
        200
    );
    assert_refused(&server, &node_token("RS256", &rsa, &claims("alice", now() - 10)), "expired");
    assert_refused(&server, &node_token("RS256", &stranger, &good), "signed by another key");
    assert_refused(&server, &unsigned_token(&good), "alg none");
    assert_refused(&server, &confused_token(&std::fs::read(&rsa_pub).unwrap(), &good), "HS256 with the public key");
    assert_refused(&server, &node_token("HS256", &keys.path().join("secret"), &good), "a shared-secret token");

    let (ed, ed_pub) = key_pair(keys.path(), "ed", &["-algorithm", "ed25519"]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--auth-public-key", ed_pub.to_str().unwrap()]);
    let token = openssl_eddsa_token(keys.path(), &ed, &good);
    upload_with(&server, &token);
    assert_refused(&server, &openssl_eddsa_token(keys.path(), &ed, &claims("alice", now() - 10)), "expired EdDSA");
    let mut tampered: Vec<String> = token.split('.').map(str::to_owned).collect();
    tampered[1] = URL_SAFE_NO_PAD.encode(claims("mallory", now() + 600));
    assert_refused(&server, &tampered.join("."), "tampered EdDSA");
    assert_refused(&server, &confused_token(&std::fs::read(&ed_pub).unwrap(), &good), "HS256 with the Ed25519 key");
    assert_refused(&server, &node_token("RS256", &rsa, &good), "RS256 against an Ed25519 key");
}

#[test]
fn a_bad_key_configuration_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("not-a-key.pem"), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        .unwrap();
    let not_a_key = keys.path().join("not-a-key.pem").to_str().unwrap().to_owned();
    for (flags, needle) in [
        (vec!["--auth-public-key", not_a_key.as_str()], "--auth-public-key"),
        (vec!["--auth-public-key", "/nonexistent/key.pem"], "cannot read"),
        (vec!["--auth-secret", "short"], "at least 32 bytes"),
        (vec!["--auth-secret", SECRET, "--auth-public-key", "/x.pem"], "cannot be used with"),
        (vec!["--secret", "abcd"], "--secret"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(&flags)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{flags:?}: {stderr}");
    }
}
