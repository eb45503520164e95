//! Bearer tokens: who may create uploads, and whose uploads are whose.
//!
//! Off by default (fine on loopback). With `--auth-secret`, every route that
//! touches an upload needs `Authorization: Bearer <token>`, where the token is
//! issued by the application with the same secret:
//!
//! ```text
//! v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "v1." + base64url(JSON claims)))>
//! claims: {"sub": "alice", "exp": 1767225600, "max_size": 1073741824}
//! ```
//!
//! `sub` (1 to 256 bytes) is the owner; `exp` is a Unix time in seconds;
//! `max_size` (optional) caps the size of files this token may upload, below
//! the policy's `max_file_size`. Any language with HMAC-SHA256 can mint one
//! (see [`issue`]; `sluice token` mints one from the command line). An upload
//! created with a token belongs to its subject: another subject gets 404 on
//! HEAD, PATCH, GET and DELETE, exactly as for an id that does not exist.

use crate::error::{Error, Result};
use crate::AppState;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sluice_core::Reason;
use std::future::{ready, Ready};
use std::time::{SystemTime, UNIX_EPOCH};

/// Shortest accepted secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

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

/// The key tokens are signed with.
#[derive(Clone)]
pub struct AuthKey(Vec<u8>);

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthKey(..)")
    }
}

impl AuthKey {
    /// A key from a configured secret (at least [`MIN_SECRET_LEN`] bytes).
    pub fn new(secret: &str) -> std::result::Result<AuthKey, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!("the auth secret must be at least {MIN_SECRET_LEN} bytes long"));
        }
        Ok(AuthKey(secret.as_bytes().to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

/// Mints a token for `claims`.
pub fn issue(key: &AuthKey, claims: &Claims) -> String {
    let body = format!("v1.{}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default()));
    let mut mac = key.mac();
    mac.update(body.as_bytes());
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// Checks a token's signature and expiry; the claims if it is good.
pub fn verify(key: &AuthKey, token: &str, now: u64) -> Result<Claims> {
    let refuse =
        |why: &str| Error::new(Reason::Unauthorized, why.to_string()).with_header("www-authenticate", "Bearer");
    let (body, signature) = token.rsplit_once('.').ok_or_else(|| refuse("The token is malformed."))?;
    let payload = body.strip_prefix("v1.").ok_or_else(|| refuse("The token is malformed."))?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| refuse("The token is malformed."))?;
    let mut mac = key.mac();
    mac.update(body.as_bytes());
    mac.verify_slice(&signature).map_err(|_| refuse("The token's signature is not valid."))?;
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| refuse("The token is malformed."))?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| refuse("The token's claims are malformed."))?;
    if claims.sub.is_empty() || claims.sub.len() > 256 {
        return Err(refuse("The token's subject must be 1 to 256 bytes."));
    }
    if claims.exp <= now {
        return Err(refuse("The token has expired."));
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
    Ok(Caller { claims: Some(verify(key, token, unix_now())?) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuthKey {
        AuthKey::new("0123456789abcdef0123456789abcdef").unwrap()
    }

    fn claims() -> Claims {
        Claims { sub: "alice".into(), exp: 2_000_000_000, max_size: Some(10) }
    }

    #[test]
    fn a_token_round_trips() {
        let token = issue(&key(), &claims());
        assert!(token.starts_with("v1."));
        assert_eq!(verify(&key(), &token, 1_000).unwrap(), claims());
    }

    #[test]
    fn forged_expired_and_malformed_tokens_are_refused() {
        let token = issue(&key(), &claims());
        let other = AuthKey::new("another secret of at least thirty-two bytes").unwrap();
        let forged = {
            let (body, _) = token.rsplit_once('.').unwrap();
            let evil = URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory","exp":2000000000}"#);
            format!("v1.{evil}.{}", token.rsplit_once('.').unwrap().1).replace(body, &format!("v1.{evil}"))
        };
        for bad in [
            issue(&other, &claims()),
            forged,
            issue(&key(), &Claims { exp: 999, ..claims() }),
            issue(&key(), &Claims { sub: String::new(), ..claims() }),
            "v1.abc".into(),
            "nonsense".into(),
            String::new(),
            token.replace("v1.", "v2."),
        ] {
            let err = verify(&key(), &bad, 1_000).expect_err(&bad);
            assert_eq!(err.reason(), Reason::Unauthorized, "{bad}");
        }
        assert!(AuthKey::new("short").is_err());
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
