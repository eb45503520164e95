//! A client of one endpoint: discovery (`OPTIONS`, `GET /policy`), the
//! settings every upload shares, and the public operations.

use crate::error::{code, Error, Result};
use crate::http::Http;
use crate::protocol::{Protocol, Wire};
use crate::retry::Backoff;
use crate::source::LocalFile;
use crate::state::StateDir;
use crate::tus::{self, Capabilities};
use crate::upload;
use reqwest::Method;
use sluice_core::{Algorithm, Policy, MAX_LENGTH};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Default bytes per request: large enough that per-request costs vanish on a fast link,
/// small enough that progress (counted in acknowledged bytes) moves and a retry resends little.
pub const DEFAULT_CHUNK_SIZE: u64 = 32 << 20;

/// Which checksum each chunk carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumChoice {
    /// The strongest algorithm both the server (`OPTIONS`) and its policy accept, if any.
    #[default]
    Best,
    /// No checksums (refused before sending if the policy requires them).
    Off,
    /// This algorithm; an error if the server does not accept it.
    Use(Algorithm),
}

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Bearer token sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// Most bytes per request (the policy's `max_chunk_size` caps it).
    pub chunk_size: u64,
    /// Checksum per chunk.
    pub checksum: ChecksumChoice,
    /// Partial uploads sent in parallel per file, when the server offers concatenation.
    pub parts: usize,
    /// Where resumption records are kept; `None` resumes only within one call.
    pub state_dir: Option<PathBuf>,
    /// Retry schedule.
    pub backoff: Backoff,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            checksum: ChecksumChoice::Best,
            parts: 1,
            state_dir: StateDir::default_dir(),
            backoff: Backoff::default(),
        }
    }
}

/// What came of one file's upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The upload's URL.
    pub url: String,
    /// The file's size.
    pub size: u64,
    /// Bytes the server already held when this call started (resumed from an earlier run).
    pub resumed_from: u64,
    /// Parts it was sent in (1 unless the server offers concatenation and more were asked for).
    pub parts: usize,
}

/// Receives progress of one upload. Every method has a default that does nothing.
pub trait Progress: Send + Sync {
    /// The server now holds `bytes` of the file (it may go down after a server lost data).
    fn acknowledged(&self, _bytes: u64) {}
    /// A request failed with a transient `error`; the upload goes on after `delay`.
    fn retrying(&self, _error: &Error, _delay: Duration) {}
}

impl Progress for () {}

/// A client of one tus endpoint. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub wire: Wire,
    pub caps: Capabilities,
    pub policy: Policy,
    pub policy_published: bool,
    pub checksum: Option<Algorithm>,
    pub options: Options,
    pub state: Option<StateDir>,
}

impl Client {
    /// Connects to the creation endpoint (e.g. `http://127.0.0.1:8080/files/`): asks
    /// `OPTIONS` what it supports and fetches the policy from `/policy` at the
    /// endpoint's origin (a server without one gets a policy derived from `OPTIONS`).
    pub async fn connect(endpoint: &str, options: Options) -> Result<Client> {
        let endpoint = Url::parse(endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::new(code::INVALID_OPTIONS, format!("{endpoint:?} is not an http(s) URL")))?;
        if options.parts == 0 || options.chunk_size == 0 {
            return Err(Error::new(code::INVALID_OPTIONS, "parts and chunk size must be at least 1"));
        }
        let http = Http::new(options.token.clone())?;
        let caps = tus::discover(&http, endpoint.as_str()).await?;
        let published = fetch_policy(&http, &endpoint).await?;
        let policy_published = published.is_some();
        let policy = match published {
            Some(p) => p,
            None => policy_from_capabilities(&caps)?,
        };
        let checksum = choose_checksum(options.checksum, &caps, &policy)?;
        policy.check_checksum(checksum)?;
        let state = options.state_dir.clone().map(StateDir::new);
        let wire = Wire { http, endpoint, protocol: Protocol::Tus1 };
        Ok(Client { inner: Arc::new(Inner { wire, caps, policy, policy_published, checksum, options, state }) })
    }

    /// The creation endpoint.
    pub fn endpoint(&self) -> &str {
        self.inner.wire.endpoint.as_str()
    }

    /// The policy files are checked against before sending.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Whether [`Client::policy`] is the server's published one (else derived from `OPTIONS`).
    pub fn policy_published(&self) -> bool {
        self.inner.policy_published
    }

    /// What the server announced.
    pub fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    /// The checksum chunks carry.
    pub fn checksum(&self) -> Option<Algorithm> {
        self.inner.checksum
    }

    /// Opens a file and checks it against the policy (name, size, type from its leading
    /// bytes) with the same code the server runs. A refusal costs no request.
    pub async fn open(&self, path: &Path) -> Result<LocalFile> {
        let path = path.to_path_buf();
        let file = tokio::task::spawn_blocking(move || LocalFile::open(&path))
            .await
            .map_err(|e| Error::new(code::READ_ERROR, e.to_string()))??;
        self.check(&file)?;
        Ok(file)
    }

    /// Checks an opened file against the policy.
    pub fn check(&self, file: &LocalFile) -> Result<()> {
        self.inner.policy.check_file(file.name.as_deref(), file.size, &file.leading)?;
        Ok(())
    }

    /// Uploads a checked file, resuming an earlier upload of the same content to the same
    /// endpoint when the state directory remembers one. Transient failures are retried.
    pub async fn upload(&self, file: &LocalFile, progress: &dyn Progress) -> Result<Uploaded> {
        upload::run(&self.inner, file, progress).await
    }

    /// Terminates an upload (tus `DELETE`): the server frees what it holds for it.
    pub async fn terminate(&self, url: &str) -> Result<()> {
        if !self.inner.caps.has("termination") {
            return Err(Error::new(code::UNSUPPORTED, "The server does not offer termination."));
        }
        self.inner.wire.terminate(url).await
    }
}

/// `GET /policy` at the endpoint's origin: `None` when the server publishes none (any
/// non-2xx, or an answer that is not JSON).
async fn fetch_policy(http: &Http, endpoint: &Url) -> Result<Option<Policy>> {
    let Ok(url) = endpoint.join("/policy") else { return Ok(None) };
    let req = http.plain(Method::GET, url.as_str()).header("Accept", "application/json");
    let Ok(response) = req.send().await else { return Ok(None) };
    let json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !response.status().is_success() || !json {
        return Ok(None);
    }
    let text = response.bytes().await.map_err(|e| Error::network(url.as_str(), &e))?;
    let text = std::str::from_utf8(&text).map_err(|_| Error::unexpected("The policy is not UTF-8."))?;
    Ok(Some(Policy::from_json(text)?))
}

/// The policy of a server that publishes none: only what `OPTIONS` says (`Tus-Max-Size`,
/// checksum algorithms), every other rule open.
pub fn policy_from_capabilities(caps: &Capabilities) -> Result<Policy> {
    let algorithms: Vec<&str> = caps.checksum_algorithms.iter().map(|a| a.name()).collect();
    let json = serde_json::json!({
        "max_file_size": caps.max_size.unwrap_or(MAX_LENGTH).min(MAX_LENGTH),
        "checksum_algorithms": algorithms,
    });
    Ok(Policy::from_json(&json.to_string())?)
}

/// Strongest first: what "the best the server offers" means.
const STRENGTH: [Algorithm; 3] = [Algorithm::Sha256, Algorithm::Sha1, Algorithm::Crc32c];

/// Picks the checksum: one both `OPTIONS` and the policy accept.
pub fn choose_checksum(choice: ChecksumChoice, caps: &Capabilities, policy: &Policy) -> Result<Option<Algorithm>> {
    let accepted = |a: &Algorithm| caps.checksum_algorithms.contains(a) && policy.checksum_algorithms.contains(a);
    match choice {
        ChecksumChoice::Off => Ok(None),
        ChecksumChoice::Best => Ok(STRENGTH.into_iter().find(accepted)),
        ChecksumChoice::Use(a) if accepted(&a) => Ok(Some(a)),
        ChecksumChoice::Use(a) => {
            let offered: Vec<&str> = STRENGTH.iter().filter(|a| accepted(a)).map(|a| a.name()).collect();
            let offered = if offered.is_empty() { "none".to_string() } else { offered.join(", ") };
            Err(Error::new(
                code::UNSUPPORTED,
                format!("The server does not accept {a} checksums (it offers: {offered})."),
            ))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn best_checksum_is_the_strongest_both_accept() {
        let caps = Capabilities::from_headers(Some("creation,checksum"), Some("crc32c,sha1,sha256"), None);
        let open = Policy::default();
        assert_eq!(choose_checksum(ChecksumChoice::Best, &caps, &open).unwrap(), Some(Algorithm::Sha256));
        let crc_only = Policy::from_json(r#"{"checksum_algorithms":["crc32c"]}"#).unwrap();
        assert_eq!(choose_checksum(ChecksumChoice::Best, &caps, &crc_only).unwrap(), Some(Algorithm::Crc32c));
        assert_eq!(choose_checksum(ChecksumChoice::Off, &caps, &open).unwrap(), None);
        let err = choose_checksum(ChecksumChoice::Use(Algorithm::Sha1), &caps, &crc_only).unwrap_err();
        assert_eq!(err.code, "unsupported");
        assert!(err.message.contains("offers: crc32c"), "{err}");
        let none = Capabilities::from_headers(Some("creation"), None, None);
        assert_eq!(choose_checksum(ChecksumChoice::Best, &none, &open).unwrap(), None);
    }

    #[test]
    fn derived_policy_is_open_but_sized() {
        let caps = Capabilities::from_headers(Some("creation,checksum"), Some("crc32c"), Some("1000"));
        let p = policy_from_capabilities(&caps).unwrap();
        assert_eq!((p.max_file_size, p.max_chunk_size), (1000, 1000));
        assert!(p.allowed_types.is_empty() && p.allowed_extensions.is_empty());
        assert_eq!(p.checksum_algorithms, [Algorithm::Crc32c]);
    }
}
