//! The `[api]` section of the service configuration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The read API (`/v1/...`) on the `http_listen` server. Off by default; when on, every `/v1`
/// route needs a bearer token (deny by default), so `jwt` must be configured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub enabled: bool,
    /// This instance's URL as other instances reach it (e.g. `https://pod-0.claimwatch:9464`).
    pub advertised_url: Option<String>,
    pub jwt: JwtConfig,
    /// File holding the secret (at least 32 bytes) keying the HMAC-SHA-256 of claim and member
    /// ids in the audit log. Without it a random per-process key is used (hashes then only
    /// correlate within one process's lifetime).
    pub audit_hmac_key_file: Option<PathBuf>,
    /// Sustained requests per second allowed per client (token subject).
    pub rate_limit_per_s: u32,
    /// Burst allowed per client above the sustained rate.
    pub rate_limit_burst: u32,
    /// Largest request body accepted (the read API takes none; anything larger gets 413).
    pub max_body_bytes: usize,
    /// A request (headers read to response) must finish within this long (408 otherwise).
    pub request_timeout_ms: u64,
    /// A client must send its request headers within this long (slow-header clients are cut).
    pub header_read_timeout_ms: u64,
    pub tls: Option<TlsConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            advertised_url: None,
            jwt: JwtConfig::default(),
            audit_hmac_key_file: None,
            // One analyst's UI polls a few keys a second; an integration batch-reads more.
            rate_limit_per_s: 50,
            rate_limit_burst: 100,
            // GET only: no legitimate body.
            max_body_bytes: 1024,
            request_timeout_ms: 5_000,
            header_read_timeout_ms: 5_000,
            tls: None,
        }
    }
}

/// Bearer token validation. One algorithm is pinned: tokens signed with any other (`none`, or
/// HS256 with a public key as the secret) are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384` or `EdDSA`.
    pub algorithm: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud` (one of the token's audiences must match).
    pub audience: String,
    /// A JWKS document (`{"keys": [...]}`) on disk, refreshed by replacing the file and restarting.
    pub jwks_file: Option<PathBuf>,
    /// PEM public keys (SPKI or PKCS#1 RSA) to accept, when no JWKS is given.
    pub public_key_files: Vec<PathBuf>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_s: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            algorithm: "RS256".into(),
            issuer: String::new(),
            audience: String::new(),
            jwks_file: None,
            public_key_files: Vec::new(),
            leeway_s: 30,
        }
    }
}

/// TLS for the HTTP server (rustls); with `client_ca_file`, clients must present a certificate
/// signed by that CA (mTLS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl ApiConfig {
    /// Every problem, not just the first.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.enabled {
            if self.jwt.issuer.trim().is_empty() {
                problems.push("api.jwt.issuer must be set when the API is enabled".into());
            }
            if self.jwt.audience.trim().is_empty() {
                problems.push("api.jwt.audience must be set when the API is enabled".into());
            }
            if self.jwt.jwks_file.is_none() && self.jwt.public_key_files.is_empty() {
                problems.push(
                    "api.jwt.jwks_file or api.jwt.public_key_files must be set when the API is enabled"
                        .into(),
                );
            }
            if super::auth::parse_algorithm(&self.jwt.algorithm).is_none() {
                problems.push(format!(
                    "api.jwt.algorithm {} is not an asymmetric algorithm this service accepts",
                    self.jwt.algorithm
                ));
            }
        }
        if self.rate_limit_per_s == 0 {
            problems.push("api.rate_limit_per_s must be > 0".into());
        }
        if self.request_timeout_ms == 0 || self.header_read_timeout_ms == 0 {
            problems
                .push("api.request_timeout_ms and api.header_read_timeout_ms must be > 0".into());
        }
        if let Some(u) = &self.advertised_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push("api.advertised_url must start with http:// or https://".into());
            }
        }
    }
}
