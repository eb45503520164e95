//! Bearer tokens: who may create uploads, and whose uploads are whose.
//!
//! Off by default (fine on loopback). With a key configured, every route that
//! touches an upload needs `Authorization: Bearer <token>`, where the token is
//! a standard JWT (RFC 7519) minted by the application with the JWT library of
//! its own language:
//!
//! - `--auth-secret` (at least 32 bytes): HS256, signed with the same secret;
//! - `--auth-public-key PATH` (PEM): RS256/RS384/RS512 for an RSA key, EdDSA
//!   for an Ed25519 key. Only the holder of the private key (the application)
//!   can mint tokens; the server can only check them.
//!
//! Claims: `sub` (1 to 256 bytes) is the owner; `exp` (Unix seconds) is
//! required; `max_size` (optional) caps the size of files this token may
//! upload, below the policy's `max_file_size`; `nbf`, when present, is
//! honoured. A token whose header names another algorithm than the key's
//! (`none`, or HS256 "signed" with a public key) is refused, as is an expired
//! or re-signed one. An upload created with a token belongs to its subject:
//! another subject gets 404 on HEAD, PATCH, GET and DELETE, exactly as for an
//! id that does not exist. `sluice token` mints an HS256 token for testing.

use crate::error::{Error, Result};
use crate::AppState;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sluice_core::Reason;
use std::future::{ready, Ready};
use std::time::{SystemTime, UNIX_EPOCH};

/// Shortest accepted secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Longest accepted subject, in bytes.
const MAX_SUBJECT_LEN: usize = 256;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The subject: who owns the uploads made with this token.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Largest file this token may upload, if lower than the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

/// The key tokens are checked with: a shared secret (HS256) or the
/// application's public key (RSA or Ed25519).
#[derive(Clone)]
pub struct AuthKey {
    verify: DecodingKey,
    /// The only algorithms a token's header may name: those of this key's family.
    algorithms: Vec<Algorithm>,
    /// Present for a shared secret only: a public key cannot mint tokens.
    sign: Option<EncodingKey>,
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthKey({:?})", self.algorithms)
    }
}

impl AuthKey {
    /// An HS256 key from a configured secret (at least [`MIN_SECRET_LEN`] bytes).
    pub fn new(secret: &str) -> std::result::Result<AuthKey, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!("the auth secret must be at least {MIN_SECRET_LEN} bytes long"));
        }
        Ok(AuthKey {
            verify: DecodingKey::from_secret(secret.as_bytes()),
            algorithms: vec![Algorithm::HS256],
            sign: Some(EncodingKey::from_secret(secret.as_bytes())),
        })
    }

    /// A key from the application's public key in PEM: RSA (`RS256`, `RS384`,
    /// `RS512`) or Ed25519 (`EdDSA`).
    pub fn from_public_key_pem(pem: &[u8]) -> std::result::Result<AuthKey, String> {
        let (verify, algorithms) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            (key, vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512])
        } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            (key, vec![Algorithm::EdDSA])
        } else {
            return Err("not a PEM public key of a supported kind (RSA or Ed25519)".into());
        };
        Ok(AuthKey { verify, algorithms, sign: None })
    }

    /// The algorithms a token checked with this key may use.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    fn validation(&self) -> Validation {
        let mut validation = Validation::new(self.algorithms[0]);
        validation.algorithms = self.algorithms.clone();
        validation.leeway = 0;
        validation.validate_nbf = true;
        // Audiences are the application's business; a token carrying one is not refused for it.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation
    }
}

/// Mints an HS256 token for `claims` with a secret key (`sluice token`, tests).
/// A public key cannot mint: only the application's private key can.
pub fn issue(key: &AuthKey, claims: &Claims) -> std::result::Result<String, String> {
    let secret = key.sign.as_ref().ok_or("a public key cannot mint tokens")?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, secret).map_err(|e| e.to_string())
}

/// Checks a token's algorithm, signature, expiry and claims; the claims if it is good.
pub fn verify(key: &AuthKey, token: &str) -> Result<Claims> {
    use jsonwebtoken::errors::ErrorKind;
    let refuse =
        |why: &str| Error::new(Reason::Unauthorized, why.to_string()).with_header("www-authenticate", "Bearer");
    let claims = match jsonwebtoken::decode::<Claims>(token, &key.verify, &key.validation()) {
        Ok(data) => data.claims,
        Err(e) => {
            return Err(refuse(match e.kind() {
                ErrorKind::ExpiredSignature => "The token has expired.",
                ErrorKind::ImmatureSignature => "The token is not valid yet.",
                ErrorKind::InvalidSignature => "The token's signature is not valid.",
                ErrorKind::InvalidAlgorithm => "The token's algorithm is not the one this server accepts.",
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => "The token's claims are malformed.",
                _ => "The token is malformed.",
            }))
        }
    };
    if claims.sub.is_empty() || claims.sub.len() > MAX_SUBJECT_LEN {
        return Err(refuse("The token's subject must be 1 to 256 bytes."));
    }
    Ok(claims)
}

/// Unix time now, in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Who is asking: the token's claims when auth is on, nobody in particular when off.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The verified claims; `None` when auth is off.
    pub claims: Option<Claims>,
}

impl Caller {
    /// The owner to record on new uploads.
    pub fn owner(&self) -> Option<&str> {
        self.claims.as_ref().map(|c| c.sub.as_str())
    }

    /// The largest file this caller may upload under `policy_max`.
    pub fn max_size(&self, policy_max: u64) -> u64 {
        self.claims.as_ref().and_then(|c| c.max_size).map_or(policy_max, |m| m.min(policy_max))
    }

    /// The policy for this caller: a token's `max_size` lowers the size limits.
    pub fn policy(&self, base: &std::sync::Arc<sluice_core::Policy>) -> std::sync::Arc<sluice_core::Policy> {
        match self.claims.as_ref().and_then(|c| c.max_size) {
            Some(max) if max < base.max_file_size => {
                let mut policy = (**base).clone();
                policy.max_file_size = max;
                policy.min_file_size = policy.min_file_size.min(max);
                policy.max_chunk_size = policy.max_chunk_size.min(max.max(1));
                std::sync::Arc::new(policy)
            }
            _ => base.clone(),
        }
    }

    /// Whether this caller may see an upload owned by `owner`: with auth on,
    /// only its own; with auth off, all.
    pub fn may_see(&self, owner: Option<&str>) -> bool {
        match &self.claims {
            Some(claims) => owner == Some(claims.sub.as_str()),
            None => true,
        }
    }
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Ready<Result<Caller>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req))
    }
}

fn caller(req: &HttpRequest) -> Result<Caller> {
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| Error::internal("no app state"))?;
    let Some(key) = &state.settings.auth else { return Ok(Caller::default()) };
    let missing = || {
        Error::new(Reason::Unauthorized, "This server needs a bearer token (Authorization: Bearer ...).")
            .with_header("www-authenticate", "Bearer")
    };
    let header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(missing)?;
    let token = header.strip_prefix("Bearer ").ok_or_else(missing)?.trim();
    Ok(Caller { claims: Some(verify(key, token)?) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn key() -> AuthKey {
        AuthKey::new(SECRET).unwrap()
    }

    fn claims() -> Claims {
        Claims { sub: "alice".into(), exp: unix_now() + 3600, max_size: Some(10) }
    }

    /// A fresh key pair from openssl: (private PEM, public PEM).
    fn key_pair(algorithm: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let run = |args: &[&str], input: Option<&[u8]>| {
            use std::io::Write;
            let mut child = std::process::Command::new("openssl")
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("openssl (Debian: apt-get install openssl)");
            child.stdin.take().unwrap().write_all(input.unwrap_or_default()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "openssl {args:?}");
            out.stdout
        };
        let private = run(&[&["genpkey"][..], algorithm].concat(), None);
        let public = run(&["pkey", "-pubout"], Some(&private));
        (private, public)
    }

    fn unsigned(header: &str, claims: &Claims) -> String {
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()))
    }

    fn hs256_with(secret: &[u8], header: &str, claims: &Claims) -> String {
        use hmac::{KeyInit, Mac};
        let body = unsigned(header, claims);
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn refused(key: &AuthKey, token: &str) -> String {
        let err = verify(key, token).expect_err(token);
        assert_eq!(err.reason(), Reason::Unauthorized, "{token}");
        err.to_string()
    }

    #[test]
    fn a_token_round_trips_as_a_standard_hs256_jwt() {
        let token = issue(&key(), &claims()).unwrap();
        let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&header).unwrap()["alg"], "HS256");
        assert_eq!(verify(&key(), &token).unwrap(), claims());
        let by_hand = hs256_with(SECRET.as_bytes(), r#"{"alg":"HS256","typ":"JWT"}"#, &claims());
        assert_eq!(verify(&key(), &by_hand).unwrap(), claims(), "any HS256 implementation will do");
    }

    #[test]
    fn forged_expired_and_malformed_tokens_are_refused() {
        let token = issue(&key(), &claims()).unwrap();
        let other = AuthKey::new("another secret of at least thirty-two bytes").unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"mallory","exp":{}}}"#, unix_now() + 60));
        let tampered = parts.join(".");
        let cases = [
            ("re-signed", issue(&other, &claims()).unwrap()),
            ("tampered", tampered),
            ("expired", issue(&key(), &Claims { exp: unix_now() - 1, ..claims() }).unwrap()),
            ("empty subject", issue(&key(), &Claims { sub: String::new(), ..claims() }).unwrap()),
            ("long subject", issue(&key(), &Claims { sub: "x".repeat(257), ..claims() }).unwrap()),
            ("alg none", format!("{}.", unsigned(r#"{"alg":"none","typ":"JWT"}"#, &claims()))),
            ("alg none, signed", hs256_with(SECRET.as_bytes(), r#"{"alg":"none"}"#, &claims())),
            ("HS512", {
                let header = Header::new(Algorithm::HS512);
                jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
            }),
            ("nonsense", "nonsense".into()),
            ("empty", String::new()),
            ("old v1 format", format!("v1.{}", token.split('.').nth(1).unwrap())),
        ];
        for (label, bad) in &cases {
            let err = verify(&key(), bad).expect_err(label);
            assert_eq!(err.reason(), Reason::Unauthorized, "{label}");
        }
        let no_exp = {
            let body = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
                URL_SAFE_NO_PAD.encode(r#"{"sub":"alice"}"#)
            );
            use hmac::{KeyInit, Mac};
            let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(body.as_bytes());
            format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
        };
        refused(&key(), &no_exp);
        assert!(refused(&key(), &cases[2].1).contains("expired"));
        assert!(AuthKey::new("short").is_err());
    }

    #[test]
    fn a_public_key_checks_rs256_and_eddsa_and_refuses_algorithm_confusion() {
        for (algorithm, alg, load) in [
            (&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..], Algorithm::RS256, 0),
            (&["-algorithm", "ed25519"][..], Algorithm::EdDSA, 1),
        ] {
            let (private, public) = key_pair(algorithm);
            let key = AuthKey::from_public_key_pem(&public).unwrap();
            assert!(key.algorithms().contains(&alg));
            let signer = match load {
                0 => EncodingKey::from_rsa_pem(&private).unwrap(),
                _ => EncodingKey::from_ed_pem(&private).unwrap(),
            };
            let good = jsonwebtoken::encode(&Header::new(alg), &claims(), &signer).unwrap();
            assert_eq!(verify(&key, &good).unwrap(), claims(), "{alg:?}");
            assert!(issue(&key, &claims()).is_err(), "a public key cannot mint");

            // The classic confusion: HS256 with the public key's bytes as the HMAC secret.
            let confused = hs256_with(&public, r#"{"alg":"HS256","typ":"JWT"}"#, &claims());
            assert!(refused(&key, &confused).contains("algorithm"), "{alg:?}");
            let (_, stranger) = key_pair(algorithm);
            let other = AuthKey::from_public_key_pem(&stranger).unwrap();
            refused(&other, &good);
            let expired = jsonwebtoken::encode(&Header::new(alg), &Claims { exp: unix_now() - 5, ..claims() }, &signer);
            refused(&key, &expired.unwrap());
            refused(&key, &format!("{}.", unsigned(r#"{"alg":"none"}"#, &claims())));
            // A secret-key token is not accepted by a public-key server.
            refused(&key, &issue(&AuthKey::new(SECRET).unwrap(), &claims()).unwrap());
        }
        assert!(AuthKey::from_public_key_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
        assert!(AuthKey::from_public_key_pem(b"not a key").is_err());
    }

    #[test]
    fn callers_see_only_their_own_uploads() {
        let alice = Caller { claims: Some(claims()) };
        assert!(alice.may_see(Some("alice")));
        assert!(!alice.may_see(Some("bob")) && !alice.may_see(None));
        assert!(Caller::default().may_see(Some("bob")));
        assert_eq!(alice.max_size(100), 10);
        assert_eq!(Caller::default().max_size(100), 100);
    }
}
