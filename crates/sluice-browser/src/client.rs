//! A connection to one tus endpoint: its capabilities (from `OPTIONS`), its
//! policy (from `GET /policy`, given as JSON, or derived from `OPTIONS` for a
//! server that publishes none), and the settings every upload shares.

use crate::error::{code, Error, Result};
use crate::hashpool::{self, HashPool};
use crate::http::{self, Req};
use crate::retry::Backoff;
use crate::sync::Slots;
use crate::tus::{self, Capabilities};
use crate::wire::Protocol;
use sluice_core::{Algorithm, Policy, MAX_LENGTH};

/// Default chunk size when the page does not choose one (capped by the policy).
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;
/// Default number of uploads that transfer at once.
pub const DEFAULT_CONCURRENCY: usize = 3;

/// Which checksum to send with each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumChoice {
    /// The strongest algorithm both ends accept: SHA-256, else CRC-32C, else SHA-1 (whatever
    /// order the server lists them in).
    Auto,
    /// The fastest one both ends accept: CRC-32C, else as [`ChecksumChoice::Auto`].
    Fast,
    /// No checksums (refused later if the policy requires them).
    Off,
    /// This algorithm if the server accepts it, else as [`ChecksumChoice::Auto`].
    Prefer(Algorithm),
}

/// Settings shared by every upload of a client.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest chunk the page wants (the policy's `max_chunk_size` caps it).
    pub chunk_size: u64,
    /// Checksum per chunk.
    pub checksum: ChecksumChoice,
    /// Retry schedule.
    pub backoff: Backoff,
    /// Remember uploads in `localStorage` to resume them after a reload.
    pub resume: bool,
    /// Check files against the policy before sending (the server checks anyway).
    pub check: bool,
    /// Compute the whole file's SHA-256 before uploading, and declare it for the server to verify.
    pub file_sha256: bool,
    /// The protocol uploads speak.
    pub protocol: Protocol,
    /// Parts a file is split into and sent at once (tus concatenation; 1: one stream).
    pub parallel: usize,
    /// Uploads transferring at once.
    pub concurrency: usize,
    /// Hashing workers (`None`: [`hashpool::default_workers`]; 0: hash on the page's thread).
    pub hash_workers: Option<usize>,
    /// Where the workers import this package from (`None`: the glue's own URL, when it is the
    /// package's file).
    pub worker_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            chunk_size: DEFAULT_CHUNK_SIZE,
            checksum: ChecksumChoice::Auto,
            backoff: Backoff::default(),
            resume: true,
            check: true,
            file_sha256: false,
            protocol: Protocol::Tus,
            parallel: 1,
            concurrency: DEFAULT_CONCURRENCY,
            hash_workers: None,
            worker_url: None,
        }
    }
}

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// Fetch it from the default place beside the endpoint (`<endpoint>/../policy`).
    Default,
    /// Fetch it from this URL.
    Url(String),
    /// This JSON document.
    Json(String),
    /// None: derive it from `OPTIONS` (any tus server).
    Off,
}

/// Everything an upload needs from its client.
pub struct Shared {
    /// The tus creation endpoint (absolute).
    pub endpoint: String,
    /// What `OPTIONS` announced.
    pub caps: Capabilities,
    /// The policy files are held to (the server's own, or derived from `OPTIONS`).
    pub policy: Policy,
    /// Whether `policy` is the server's published policy.
    pub policy_published: bool,
    /// The checksum algorithm chunks carry, if any.
    pub checksum: Option<Algorithm>,
    /// The protocol uploads speak.
    pub protocol: Protocol,
    /// Settings.
    pub config: Config,
    /// Concurrency limit.
    pub slots: Slots,
    /// Workers hashing chunks off the page's thread, when they could start.
    pub pool: Option<HashPool>,
}

impl Shared {
    /// Connects: `OPTIONS` on the endpoint, then the policy.
    pub async fn connect(endpoint: &str, source: PolicySource, config: Config) -> Result<Shared> {
        let endpoint = web_sys::Url::new(endpoint)
            .map(|u| u.href())
            .map_err(|_| Error::new(code::INVALID_OPTIONS, format!("{endpoint:?} is not an absolute URL.")))?;
        let caps = tus::discover(&endpoint).await?;
        let published = match source {
            PolicySource::Off => None,
            PolicySource::Json(json) => Some(Policy::from_json(&json)?),
            PolicySource::Url(url) => fetch_policy(&url, true).await?,
            PolicySource::Default => {
                let rel = if endpoint.ends_with('/') { "../policy" } else { "policy" };
                let url = web_sys::Url::new_with_base(rel, &endpoint).map(|u| u.href()).unwrap_or_default();
                fetch_policy(&url, false).await?
            }
        };
        let policy_published = published.is_some();
        let policy = match published {
            Some(p) => p,
            None => policy_from_capabilities(&caps)?,
        };
        let protocol = config.protocol;
        let checksum = match protocol {
            Protocol::Tus => choose_checksum(config.checksum, &caps, &policy),
            // The draft has no per-request checksum; the whole file's digest covers it.
            Protocol::Ietf => None,
        };
        if protocol == Protocol::Tus {
            policy.check_checksum(checksum)?;
        }
        let slots = Slots::new(config.concurrency);
        let pool = match package_url(&config) {
            Some(url) if checksum.is_some() || config.file_sha256 => {
                let n = config.hash_workers.unwrap_or_else(hashpool::default_workers);
                if n == 0 {
                    None
                } else {
                    HashPool::start(n, &url).await
                }
            }
            _ => None,
        };
        Ok(Shared { endpoint, caps, policy, policy_published, checksum, protocol, config, slots, pool })
    }

    /// Parts an upload is split into: `wanted` when the server joins partial uploads (tus
    /// `concatenation`), else one.
    pub fn parallel(&self, wanted: usize) -> usize {
        match self.protocol {
            Protocol::Tus if self.caps.has("concatenation") => wanted.max(1),
            _ => 1,
        }
    }

    /// The chunk size uploads use: the page's choice, capped by the policy.
    pub fn chunk_size(&self) -> u64 {
        self.config.chunk_size.clamp(1, self.policy.max_chunk_size)
    }
}

/// The URL the hashing workers import the package from: the page's choice, else the glue's own
/// URL when it is the package's file (a bundle that merged the package is not importable alone).
fn package_url(config: &Config) -> Option<String> {
    if config.hash_workers == Some(0) {
        return None;
    }
    if let Some(url) = &config.worker_url {
        return Some(url.clone());
    }
    let own = hashpool::glue_url();
    let path = web_sys::Url::new(&own).map(|u| u.pathname()).unwrap_or_default();
    path.ends_with(&format!("/{}", hashpool::PACKAGE_JS)).then_some(own)
}

/// The policy of a server that publishes none: only what `OPTIONS` says
/// (`Tus-Max-Size`, checksum algorithms), every other rule left open.
pub fn policy_from_capabilities(caps: &Capabilities) -> Result<Policy> {
    let algorithms: Vec<&str> = caps.checksum_algorithms.iter().map(|a| a.name()).collect();
    let json = serde_json::json!({
        "max_file_size": caps.max_size.unwrap_or(MAX_LENGTH).min(MAX_LENGTH),
        "checksum_algorithms": algorithms,
    });
    Ok(Policy::from_json(&json.to_string())?)
}

/// Picks the checksum algorithm: one both the server (`OPTIONS`) and the policy accept.
pub fn choose_checksum(choice: ChecksumChoice, caps: &Capabilities, policy: &Policy) -> Option<Algorithm> {
    let accepted = |a: &Algorithm| caps.checksum_algorithms.contains(a) && policy.check_checksum(Some(*a)).is_ok();
    let first_of = |order: &[Algorithm]| order.iter().copied().find(accepted);
    let auto = || first_of(&[Algorithm::Sha256, Algorithm::Crc32c, Algorithm::Sha1]);
    match choice {
        ChecksumChoice::Off => None,
        ChecksumChoice::Auto => auto(),
        ChecksumChoice::Fast => first_of(&[Algorithm::Crc32c]).or_else(auto),
        ChecksumChoice::Prefer(a) if accepted(&a) => Some(a),
        ChecksumChoice::Prefer(_) => auto(),
    }
}

/// `GET url` and parse the policy; `None` when the server has none (any non-2xx),
/// unless `required`.
async fn fetch_policy(url: &str, required: bool) -> Result<Option<Policy>> {
    let req =
        Req { method: "GET", url, headers: vec![("Accept", "application/json".into())], body: None, no_store: true };
    let reply = match http::send(req, None).await {
        Ok(r) => r,
        Err(f) if required => return Err(f.into_error(url)),
        // A third-party server may not even answer CORS for an unknown path.
        Err(_) => return Ok(None),
    };
    if !reply.ok() {
        if required {
            return Err(reply.error().await);
        }
        return Ok(None);
    }
    Ok(Some(Policy::from_json(&reply.text().await)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_choice_follows_server_and_policy() {
        let caps = Capabilities::from_headers(Some("creation,checksum"), Some("sha1,sha256"), None);
        let open = Policy::default();
        assert_eq!(
            choose_checksum(ChecksumChoice::Auto, &caps, &open),
            Some(Algorithm::Sha256),
            "not sha1 for being first"
        );
        assert_eq!(choose_checksum(ChecksumChoice::Prefer(Algorithm::Sha1), &caps, &open), Some(Algorithm::Sha1));
        assert_eq!(choose_checksum(ChecksumChoice::Prefer(Algorithm::Crc32c), &caps, &open), Some(Algorithm::Sha256));
        assert_eq!(choose_checksum(ChecksumChoice::Fast, &caps, &open), Some(Algorithm::Sha256), "no crc32c offered");
        let all = Capabilities::from_headers(Some("checksum"), Some("sha1,crc32c,sha256"), None);
        assert_eq!(choose_checksum(ChecksumChoice::Fast, &all, &open), Some(Algorithm::Crc32c));
        assert_eq!(choose_checksum(ChecksumChoice::Auto, &all, &open), Some(Algorithm::Sha256));
        assert_eq!(choose_checksum(ChecksumChoice::Off, &caps, &open), None);
        let sha256_only = Policy::from_json(r#"{"checksum_algorithms":["sha256"]}"#).unwrap();
        assert_eq!(choose_checksum(ChecksumChoice::Auto, &caps, &sha256_only), Some(Algorithm::Sha256));
        let none = Capabilities::from_headers(Some("creation"), None, None);
        assert_eq!(choose_checksum(ChecksumChoice::Auto, &none, &open), None);
    }

    #[test]
    fn derived_policy_is_open_but_sized() {
        let caps = Capabilities::from_headers(Some("creation,checksum"), Some("crc32c"), Some("1000"));
        let p = policy_from_capabilities(&caps).unwrap();
        assert_eq!(p.max_file_size, 1000);
        assert_eq!(p.max_chunk_size, 1000);
        assert!(p.allowed_types.is_empty() && p.allowed_extensions.is_empty());
        assert_eq!(p.checksum_algorithms, [Algorithm::Crc32c]);
        let p = policy_from_capabilities(&Capabilities::from_headers(None, None, None)).unwrap();
        assert_eq!(p.max_file_size, MAX_LENGTH);
    }
}
