//! Command-line and environment configuration of the `sluice` binary.
//!
//! Every flag can also be set by the `SLUICE_*` variable named in `--help`.
//! Flags are validated once here into a [`ServerConfig`]; the library below
//! never reads the environment.

use crate::auth::AuthKey;
use crate::client::{Cidr, ForwardedHeader, TrustedProxies};
use crate::hooks::Hooks;
use crate::secret::Secret;
use crate::server::{LogFormat, ServerConfig, StateConfig, Storage};
use crate::store::s3;
use crate::Settings;
use clap::{Args, Parser, Subcommand};
use sluice_core::{units, Policy, Rejection};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Safe, resumable file uploads: a tus 1.0 server whose memory stays flat.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the upload server (tus 1.0 at /files/, the policy at /policy, the page at /).
    Serve(Box<ServeArgs>),
    /// Mint a bearer token for testing (the application mints its own; see the README).
    Token {
        /// The subject: who will own the uploads made with this token.
        #[arg(long)]
        sub: String,
        /// How long the token is valid.
        #[arg(long, default_value = "1h", value_parser = units::parse_span)]
        ttl: Duration,
        /// Largest file this token may upload (below the policy's limit).
        #[arg(long, value_parser = units::parse_size)]
        max_size: Option<u64>,
        /// The secret the server was given with --auth-secret (the token is an HS256 JWT).
        #[arg(long, env = "SLUICE_AUTH_SECRET", hide_env_values = true)]
        auth_secret: String,
    },
    /// Upload files to a tus server, resumably, checked against its policy first.
    ///
    /// Prints `FILE<TAB>UPLOAD_URL` per uploaded file; reasons (`code: message`) on stderr;
    /// exit status 1 if any file was refused or failed. Running the same command again
    /// resumes each file from the server's offset.
    Upload(Box<sluice_client::cli::UploadArgs>),
    /// Check a policy file and print the effective policy as served at /policy.
    Policy {
        /// Policy file (TOML, or JSON if it ends in .json); the built-in policy if omitted.
        #[arg(long, env = "SLUICE_POLICY")]
        policy: Option<PathBuf>,
    },
}

/// Flags of `sluice serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Directory for upload data and records (created if missing).
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./sluice-data")]
    pub data_dir: PathBuf,

    /// Policy file (TOML, or JSON if it ends in .json); the built-in policy if omitted.
    #[arg(long, env = "SLUICE_POLICY")]
    pub policy: Option<PathBuf>,

    /// Origins allowed to call the API from a browser (comma-separated); `*` allows any, without credentials.
    #[arg(long = "cors-origin", env = "SLUICE_CORS_ORIGINS", value_delimiter = ',', default_value = "*")]
    pub cors_origins: Vec<String>,

    /// Directory served at `/` instead of the upload page embedded at build time (for working on the page: `web/` after `cargo xtask build-web`).
    #[arg(long, env = "SLUICE_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// Turn off `GET /files/{id}` (downloading completed uploads).
    #[arg(long, env = "SLUICE_NO_DOWNLOAD")]
    pub no_download: bool,

    /// Worker threads (default: one per CPU core).
    #[arg(long, env = "SLUICE_WORKERS")]
    pub workers: Option<usize>,

    /// How long a new request for an upload waits for an older one to let go before answering 423.
    #[arg(long, env = "SLUICE_TAKEOVER_WAIT", default_value = "5s", value_parser = units::parse_span)]
    pub takeover_wait: Duration,

    /// How often expired incomplete uploads are swept.
    #[arg(long, env = "SLUICE_EXPIRY_INTERVAL", default_value = "60s", value_parser = units::parse_span)]
    pub expiry_interval: Duration,

    /// Memory for streaming uploads (each holds ~640 KiB: write buffers plus actix buffers); past it, new uploads get 503 + Retry-After.
    #[arg(long, env = "SLUICE_MEMORY_BUDGET", default_value = "64 MiB", value_parser = units::parse_size)]
    pub memory_budget: u64,

    /// Uploads one client address may stream at once; past it, 429 + Retry-After.
    #[arg(long, env = "SLUICE_MAX_UPLOADS_PER_CLIENT", default_value_t = 16)]
    pub max_uploads_per_client: u32,

    /// Unfinished uploads one client (its token subject, else its address) may hold; past it, 429.
    #[arg(long, env = "SLUICE_MAX_OPEN_UPLOADS_PER_CLIENT", default_value_t = 1000)]
    pub max_open_uploads_per_client: u64,

    /// Declared-but-unreceived bytes one client's unfinished uploads may add up to; past it, 429.
    #[arg(long, env = "SLUICE_MAX_OPEN_BYTES_PER_CLIENT", default_value = "1 TiB", value_parser = units::parse_size)]
    pub max_open_bytes_per_client: u64,

    /// Uploads one client may create per second, sustained (with a burst of ten times as many); past it, 429.
    #[arg(long, env = "SLUICE_CREATION_RATE", default_value_t = 20.0)]
    pub creation_rate: f64,

    /// A request body that sends nothing for this long is ended, keeping what arrived (408).
    #[arg(long, env = "SLUICE_IDLE_TIMEOUT", default_value = "30s", value_parser = units::parse_span)]
    pub idle_timeout: Duration,

    /// Free disk space kept in reserve: a creation whose length would eat into it gets 507.
    #[arg(long, env = "SLUICE_DISK_RESERVE", default_value = "256 MiB", value_parser = units::parse_size)]
    pub disk_reserve: u64,

    /// Flush every acknowledged byte to stable storage (fdatasync) before answering: survives power loss, costs throughput.
    #[arg(long, env = "SLUICE_FSYNC")]
    pub fsync: bool,

    /// Do not count and time each request for /metrics (upload counters, memory and rejections stay).
    #[arg(long, env = "SLUICE_NO_REQUEST_METRICS")]
    pub no_request_metrics: bool,

    /// Open connections the public listener holds in all; past it, new ones are closed at once. A connection
    /// waiting for its request head costs a few KiB; one streaming an upload is charged to --memory-budget.
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Open connections one client address (IPv6: one /64) may hold; past it, new ones are closed at once.
    /// Trusted proxies are exempt.
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 128)]
    pub max_connections_per_client: u32,

    /// Time a client has to send a request head, from its first byte (every request on a connection).
    #[arg(long, env = "SLUICE_HEADER_TIMEOUT", default_value = "10s", value_parser = units::parse_span)]
    pub header_timeout: Duration,

    /// Reverse proxies (comma-separated CIDRs or addresses) whose forwarding header names the client;
    /// from any other peer the header is ignored.
    #[arg(long, env = "SLUICE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,

    /// The header the trusted proxies write the client's address into.
    #[arg(long, env = "SLUICE_FORWARDED_HEADER", value_enum, default_value = "x-forwarded-for")]
    pub forwarded_header: ForwardedHeader,

    /// Serve /healthz, /readyz, /metrics and /status on this address only (e.g. 127.0.0.1:9090), not on --listen.
    #[arg(long, env = "SLUICE_OPS_LISTEN")]
    pub ops_listen: Option<String>,

    /// On SIGTERM/SIGINT, how long in-flight requests may finish before they are ended (keeping what arrived).
    #[arg(long, env = "SLUICE_SHUTDOWN_GRACE", default_value = "30s", value_parser = units::parse_span)]
    pub shutdown_grace: Duration,

    /// Require bearer tokens (HS256 JWTs signed with this secret, at least 32 bytes) on every upload route.
    #[arg(long, env = "SLUICE_AUTH_SECRET", hide_env_values = true, conflicts_with = "auth_public_key")]
    pub auth_secret: Option<String>,

    /// Require bearer tokens (RS256 or EdDSA JWTs) checked with this public key (PEM: RSA or Ed25519).
    #[arg(long, env = "SLUICE_AUTH_PUBLIC_KEY")]
    pub auth_public_key: Option<PathBuf>,

    /// Key for ids derived from client-supplied identifiers (Flow.js), hex or base64, at least 32 bytes;
    /// default: DATA_DIR/secret.key, created on first start, or with --state postgres://… one kept in the database
    /// for every instance. Instances sharing uploads need the same one.
    #[arg(long, env = "SLUICE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// URL the server POSTs each upload's declared metadata to before creating it; non-2xx refuses it.
    #[arg(long, env = "SLUICE_HOOK_PRE_CREATE")]
    pub hook_pre_create: Option<String>,

    /// URL the server POSTs each finished upload to (in the background).
    #[arg(long, env = "SLUICE_HOOK_POST_FINISH")]
    pub hook_post_finish: Option<String>,

    /// How long a webhook may take to answer.
    #[arg(long, env = "SLUICE_HOOK_TIMEOUT", default_value = "5s", value_parser = units::parse_span)]
    pub hook_timeout: Duration,

    /// Where upload bytes live: `fs` (files under --data-dir) or `s3://BUCKET[/PREFIX]` (S3-compatible object
    /// storage; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN).
    #[arg(long, env = "SLUICE_STORAGE", default_value = "fs")]
    pub storage: String,

    /// S3 endpoint URL (Garage, MinIO, Ceph, R2, ...); omitted means AWS.
    #[arg(long, env = "SLUICE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// S3 signing region.
    #[arg(long, env = "SLUICE_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Path-style S3 addressing (ENDPOINT/BUCKET/KEY), as most self-hosted stores want.
    #[arg(long, env = "SLUICE_S3_PATH_STYLE")]
    pub s3_path_style: bool,

    /// Local staging for S3 parts (default: DATA_DIR/spool).
    #[arg(long, env = "SLUICE_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Where upload records and locks live: `local` (records in --data-dir, locks in this process) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB`, shared by every instance (tables are created on first start).
    #[arg(long, env = "SLUICE_STATE", default_value = "local", hide_env_values = true)]
    pub state: String,

    /// With PostgreSQL state: connections this instance keeps open at most.
    #[arg(long, env = "SLUICE_STATE_POOL_SIZE", default_value_t = 16)]
    pub state_pool_size: usize,

    /// With PostgreSQL state: a lock not renewed for this long lapses (its instance died), and the upload
    /// resumes on another instance. Renewed every third of it while held.
    #[arg(long, env = "SLUICE_LOCK_LEASE", default_value = "10s", value_parser = units::parse_span)]
    pub lock_lease: Duration,
}

impl ServeArgs {
    /// Where records and locks live, from `--state` and its tuning flags.
    fn state_config(&self) -> Result<StateConfig, String> {
        if self.state == "local" {
            return Ok(StateConfig::Local);
        }
        if !(self.state.starts_with("postgres://") || self.state.starts_with("postgresql://")) {
            return Err("--state must be `local` or postgres://USER:PASSWORD@HOST:PORT/DB".into());
        }
        if self.state_pool_size == 0 {
            return Err("--state-pool-size must be at least 1".into());
        }
        if self.lock_lease < Duration::from_secs(1) {
            return Err("--lock-lease must be at least 1s".into());
        }
        Ok(StateConfig::Postgres { url: self.state.clone(), pool_size: self.state_pool_size, lease: self.lock_lease })
    }
}

/// Reads a policy file: JSON if it ends in `.json`, TOML otherwise.
pub fn load_policy(path: Option<&Path>) -> Result<Policy, String> {
    let Some(path) = path else { return Ok(Policy::default()) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read policy {}: {e}", path.display()))?;
    let parsed: Result<Policy, Rejection> = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        Policy::from_json(&text)
    } else {
        Policy::from_toml(&text)
    };
    parsed.map_err(|e| format!("policy {}: {}", path.display(), e.message))
}

impl ServeArgs {
    /// Where bytes live, from `--storage` and the `--s3-*` flags.
    fn storage_config(&self, max_file_size: u64) -> Result<Storage, String> {
        if self.storage == "fs" {
            return Ok(Storage::Fs);
        }
        let (bucket, prefix) = s3::parse_location(&self.storage).map_err(|e| format!("--storage {e} (or `fs`)"))?;
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => Some((key, secret, var("AWS_SESSION_TOKEN"))),
            _ => return Err("--storage s3://…: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()),
        };
        Ok(Storage::S3(Box::new(s3::S3Config {
            endpoint: s3::Endpoint {
                bucket,
                url: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                path_style: self.s3_path_style,
                credentials,
            },
            prefix,
            spool_dir: self.spool_dir.clone().unwrap_or_else(|| self.data_dir.join("spool")),
            max_file_size,
        })))
    }

    /// Validates the flags into a server configuration.
    pub fn into_config(self) -> Result<ServerConfig, String> {
        if let Some(dir) = &self.web_dir {
            if !dir.join("index.html").is_file() {
                return Err(format!("--web-dir {}: no index.html there", dir.display()));
            }
        }
        if [self.takeover_wait, self.expiry_interval, self.idle_timeout, self.header_timeout]
            .iter()
            .any(Duration::is_zero)
        {
            return Err(
                "--takeover-wait, --expiry-interval, --idle-timeout and --header-timeout must be longer than zero"
                    .into(),
            );
        }
        if !(self.creation_rate.is_finite() && self.creation_rate > 0.0) {
            return Err("--creation-rate must be a positive number".into());
        }
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| format!("cannot create --data-dir {}: {e}", self.data_dir.display()))?;
        let state = self.state_config()?;
        // With shared state and no --secret, every instance takes the database's secret (at start-up).
        let secret_from_state = state != StateConfig::Local && self.secret.is_none();
        let secret = match &self.secret {
            Some(text) => Secret::parse(text).map_err(|e| format!("--secret: {e}"))?,
            None if secret_from_state => Secret::random().map_err(|e| format!("cannot draw a random secret: {e}"))?,
            None => {
                let key = self.data_dir.join("secret.key");
                Secret::load_or_create(&key).map_err(|e| format!("cannot read or create {}: {e}", key.display()))?
            }
        };
        let auth = match (&self.auth_secret, &self.auth_public_key) {
            (Some(secret), _) => Some(AuthKey::new(secret)?),
            (None, Some(path)) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read --auth-public-key {}: {e}", path.display()))?;
                Some(
                    AuthKey::from_public_key_pem(&pem)
                        .map_err(|e| format!("--auth-public-key {}: {e}", path.display()))?,
                )
            }
            (None, None) => None,
        };
        let serve_ops_routes = self.ops_listen.is_none();
        if self.max_connections == 0 || self.max_connections_per_client == 0 {
            return Err("--max-connections and --max-connections-per-client must be at least 1".into());
        }
        let policy = load_policy(self.policy.as_deref())?;
        let storage = self.storage_config(policy.max_file_size)?;
        Ok(ServerConfig {
            policy,
            storage,
            listen: self.listen,
            data_dir: self.data_dir,
            workers: self.workers,
            expiry_interval: self.expiry_interval,
            log_format: self.log_format,
            header_timeout: self.header_timeout,
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            trusted_proxies: TrustedProxies::new(self.trusted_proxies, self.forwarded_header),
            ops_listen: self.ops_listen,
            fsync: self.fsync,
            shutdown_grace: self.shutdown_grace,
            state,
            secret_from_state,
            settings: Settings {
                allow_download: !self.no_download,
                cors_origins: self.cors_origins,
                takeover_wait: self.takeover_wait,
                memory_budget: self.memory_budget,
                max_uploads_per_client: self.max_uploads_per_client,
                idle_timeout: self.idle_timeout,
                disk_reserve: self.disk_reserve,
                quotas: crate::engine::Quotas {
                    max_open_uploads: self.max_open_uploads_per_client,
                    max_open_bytes: self.max_open_bytes_per_client,
                    creations_per_second: self.creation_rate,
                    creation_burst: self.creation_rate * 10.0,
                },
                web_dir: self.web_dir,
                secret,
                request_metrics: !self.no_request_metrics,
                auth,
                serve_ops_routes,
                hooks: Hooks {
                    pre_create: self.hook_pre_create,
                    post_finish: self.hook_post_finish,
                    timeout: self.hook_timeout,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(flags: &[&str]) -> Result<ServerConfig, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data_dir = dir.path().to_str().ok_or("path")?.to_string();
        let args = ["sluice", "serve", "--data-dir", &data_dir].into_iter().chain(flags.iter().copied());
        match Cli::try_parse_from(args).map_err(|e| e.to_string())?.command {
            Command::Serve(args) => args.into_config(),
            _ => Err("not serve".into()),
        }
    }

    #[test]
    fn state_is_local_or_a_postgres_url() {
        let local = serve(&[]).expect("default");
        assert_eq!((local.state, local.secret_from_state), (StateConfig::Local, false));
        let pg = serve(&["--state", "postgres://u:p@127.0.0.1:5432/db", "--lock-lease", "3s"]).expect("postgres");
        assert!(pg.secret_from_state, "instances share the database's secret");
        let hex = "ab".repeat(32);
        let given = serve(&["--state", "postgres://h/db", "--secret", &hex]).expect("postgres with --secret");
        assert!(!given.secret_from_state, "--secret wins over the database's");
        assert_eq!(given.settings.secret.bytes(), &[0xab; 32]);
        assert_eq!(
            pg.state,
            StateConfig::Postgres {
                url: "postgres://u:p@127.0.0.1:5432/db".into(),
                pool_size: 16,
                lease: Duration::from_secs(3)
            }
        );
        let refused = [
            &["--state", "mysql://x"][..],
            &["--state", "postgres://h/db", "--state-pool-size", "0"],
            &["--state", "postgres://h/db", "--lock-lease", "999ms"],
        ];
        for flags in refused {
            let error = serve(flags).expect_err("refused");
            assert!(error.contains("--state") || error.contains("--lock-lease"), "{flags:?}: {error}");
        }
    }
}
