//! Bearer-token authentication (JWT, `jsonwebtoken`) and scope checks.
//!
//! Deny by default: a `/v1` request without a valid token gets 401 and one without the route's
//! scope 403. The algorithm is pinned by configuration, so a token whose header says `none`, or
//! HS256 (a public key misused as an HMAC secret), never reaches signature checking. Issuer,
//! audience and expiry are required and checked. Error bodies never say *why* a token failed (the
//! reason goes to the audit log as an outcome code).

use std::collections::BTreeSet;
use std::path::Path;

use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::config::JwtConfig;

/// Scopes a route can require.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    ClaimsRead,
    MembersRead,
    KpisRead,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ClaimsRead => "claims:read",
            Scope::MembersRead => "members:read",
            Scope::KpisRead => "kpis:read",
        }
    }
}

/// The asymmetric algorithms we accept; HMAC ones are refused on purpose (a shared secret would
/// let any verifier mint tokens).
pub fn parse_algorithm(s: &str) -> Option<Algorithm> {
    Some(match s {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Who called, as the token says.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The token's `sub` (a service account or user id, not a patient identifier).
    pub subject: String,
    pub scopes: BTreeSet<String>,
}

impl Principal {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(scope.as_str())
    }
}

/// Why a token was refused: an outcome code for the audit log, never shown to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Expired,
    Audience,
    Issuer,
    Invalid,
}

impl AuthFailure {
    pub fn code(self) -> &'static str {
        match self {
            AuthFailure::Missing => "token_missing",
            AuthFailure::Malformed => "token_malformed",
            AuthFailure::Algorithm => "token_algorithm",
            AuthFailure::UnknownKey => "token_unknown_key",
            AuthFailure::Signature => "token_signature",
            AuthFailure::Expired => "token_expired",
            AuthFailure::Audience => "token_audience",
            AuthFailure::Issuer => "token_issuer",
            AuthFailure::Invalid => "token_invalid",
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Space(String),
    List(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    scope: Option<ScopeClaim>,
}

/// Validates tokens against the configured keys.
pub struct Verifier {
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
    algorithm: Algorithm,
    /// Tokens already verified, until their `exp`: a signature check costs tens of
    /// microseconds, and a client sends the same token with every request. Bounded: cleared
    /// when full.
    verified: dashmap::DashMap<String, (Principal, i64), ahash::RandomState>,
}

/// Verified tokens remembered at most.
const VERIFIED_CACHE: usize = 10_000;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

impl Verifier {
    /// Loads the key set named by `cfg`.
    pub fn from_config(cfg: &JwtConfig) -> Result<Self, String> {
        let algorithm = parse_algorithm(&cfg.algorithm)
            .ok_or_else(|| format!("api.jwt.algorithm {} not accepted", cfg.algorithm))?;
        let mut keys = Vec::new();
        if let Some(path) = &cfg.jwks_file {
            let set: JwkSet = serde_json::from_slice(&read(path)?)
                .map_err(|e| format!("{}: not a JWKS: {e}", path.display()))?;
            for jwk in &set.keys {
                // A key that names another algorithm is not for us.
                if let Some(ka) = jwk.common.key_algorithm {
                    if ka.to_string() != cfg.algorithm {
                        continue;
                    }
                }
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| format!("{}: JWK: {e}", path.display()))?;
                keys.push((jwk.common.key_id.clone(), key));
            }
        }
        for path in &cfg.public_key_files {
            let pem = read(path)?;
            let key = match algorithm {
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                _ => DecodingKey::from_rsa_pem(&pem),
            }
            .map_err(|e| format!("{}: {e}", path.display()))?;
            keys.push((None, key));
        }
        if keys.is_empty() {
            return Err("api.jwt: no usable key for the configured algorithm".into());
        }
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[cfg.audience.as_str()]);
        validation.set_issuer(&[cfg.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = cfg.leeway_s;
        validation.validate_nbf = true;
        Ok(Self {
            keys,
            validation,
            algorithm,
            verified: dashmap::DashMap::with_hasher(ahash::RandomState::new()),
        })
    }

    /// The principal of a valid `Authorization` header value.
    pub fn verify(&self, authorization: Option<&str>) -> Result<Principal, AuthFailure> {
        let value = authorization.ok_or(AuthFailure::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthFailure::Malformed)?
            .trim();
        if token.is_empty() || token.len() > 8192 {
            return Err(AuthFailure::Malformed);
        }
        let now = chrono::Utc::now().timestamp();
        if let Some(hit) = self.verified.get(token) {
            let (principal, exp) = hit.value();
            // Expiry is checked on every use, without leeway once cached.
            if *exp > now {
                return Ok(principal.clone());
            }
        }
        // `alg: none` and unknown algorithms fail here (the header does not parse).
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Malformed)?;
        if header.alg != self.algorithm {
            return Err(AuthFailure::Algorithm);
        }
        let candidates = self
            .keys
            .iter()
            .filter(|(kid, _)| match (&header.kid, kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            });
        let mut last = AuthFailure::UnknownKey;
        for (_, key) in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => {
                    let scopes = match data.claims.scope {
                        Some(ScopeClaim::Space(s)) => {
                            s.split_whitespace().map(str::to_owned).collect()
                        }
                        Some(ScopeClaim::List(l)) => l.into_iter().collect(),
                        None => BTreeSet::new(),
                    };
                    let principal = Principal {
                        subject: data.claims.sub,
                        scopes,
                    };
                    if self.verified.len() >= VERIFIED_CACHE {
                        self.verified.clear();
                    }
                    self.verified
                        .insert(token.to_owned(), (principal.clone(), data.claims.exp));
                    return Ok(principal);
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    last = match e.kind() {
                        K::InvalidSignature => AuthFailure::Signature,
                        K::ExpiredSignature | K::ImmatureSignature => AuthFailure::Expired,
                        K::InvalidAudience => AuthFailure::Audience,
                        K::InvalidIssuer => AuthFailure::Issuer,
                        K::InvalidAlgorithm => AuthFailure::Algorithm,
                        _ => AuthFailure::Invalid,
                    };
                    // Only a bad signature can mean "another key of the set": anything else is
                    // about the claims and the same with every key.
                    if last != AuthFailure::Signature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }
}
