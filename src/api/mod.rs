//! The read API: interactive queries over the partitions' keyed state, on the same HTTP server
//! as `/metrics` and `/health/*`.
//!
//! ```text
//!  GET /v1/claims/{claim_id}            scope claims:read   claim lifecycle, history, timers
//!  GET /v1/members/{member_id}/stays    scope members:read  stays, readmissions, risk, alerts
//!  GET /v1/payers/{payer_id}/kpis       scope kpis:read     a payer's hourly or daily windows,
//!      ?window=daily|hourly|1d|1h                           open and emitted, newest first, paged
//!      &limit=&cursor=
//!  GET /openapi.json                    no auth             deploy/openapi.json
//! ```
//!
//! - **State.** A key's partition is `core::partition_for(key, partitions)` (claim id, member
//!   id, or payer id: payer facts are re-keyed by payer id, so the partition holding a payer's
//!   monitor windows is found the same way); the [`registry`] says whether this instance serves
//!   it (restored: read the hot view; restoring: 503 with `Retry-After`; elsewhere: forwarded to
//!   the owner found by [`routing`], or 503 with `Retry-After` when no owner is known).
//! - **KPIs** are built per request by [`crate::monitor::Monitor::current_kpi`] from the window
//!   state, exactly as an emission on `claimwatch.payer-kpis` builds them (drift against the
//!   baseline as it stands now); an open window has `version` 0.
//! - **Security** ([`auth`]): deny by default; bearer JWT with a pinned asymmetric algorithm,
//!   issuer, audience and expiry checked; one scope per route. Per-client rate limit (token
//!   subject), request body and time limits; TLS and optional mTLS in [`server`].
//! - **Audit.** Every request that names a claim, member or payer is logged on the tracing target
//!   [`AUDIT_TARGET`] with subject, route, HMAC-SHA-256 of the key, outcome and status; the key
//!   itself is never logged anywhere (the general log carries no request paths).
//! - **Errors** are RFC 7807 `application/problem+json` with a fixed title per status and no
//!   detail that depends on the key or the token: bad input is 4xx, never 500.

pub mod auth;
pub mod config;
pub mod dto;
pub mod registry;
pub mod routing;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::model::{EpochMillis, Granularity};
use auth::{Principal, Scope, Verifier};
pub use config::ApiConfig;
use dto::{ClaimDto, MemberStaysDto, PayerKpisDto, SourceTopics};
pub use registry::{Lookup, Registry, Views};

/// Tracing target of the audit log (route it to its own sink: see `main`'s telemetry setup).
pub const AUDIT_TARGET: &str = "claimwatch::audit";

/// The OpenAPI 3.1 document, kept in the repository and served as is.
pub const OPENAPI_JSON: &str = include_str!("../../deploy/openapi.json");

/// Longest key accepted (claim ids are patient control numbers, at most 38 characters in X12;
/// member ids are shorter).
pub const MAX_KEY_LEN: usize = 64;

/// Seconds a client is told to wait while a partition is restoring or its owner is unknown.
const RETRY_AFTER_S: u64 = 2;

/// Everything the handlers share.
pub struct ApiState {
    pub registry: Registry,
    pub engine: crate::core::Engine,
    pub topics: SourceTopics,
    verifier: Verifier,
    limiter: DefaultKeyedRateLimiter<String>,
    audit_key: Vec<u8>,
    max_body_bytes: usize,
    /// Other instances' adverts, when instances forward to each other.
    directory: Option<Arc<routing::Directory>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// Builds the API's state from its configuration (keys are read here: a bad key file is a
    /// start-up error, not a 500 later).
    pub fn new(
        cfg: &ApiConfig,
        registry: Registry,
        engine: crate::core::Engine,
        topics: SourceTopics,
    ) -> Result<Self, String> {
        let verifier = Verifier::from_config(&cfg.jwt)?;
        let audit_key = match &cfg.audit_hmac_key_file {
            Some(p) => {
                let k = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                if k.len() < 32 {
                    return Err(format!(
                        "{}: the audit HMAC key must be at least 32 bytes",
                        p.display()
                    ));
                }
                k
            }
            None => {
                use rand::RngCore;
                let mut k = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                k
            }
        };
        let per_s = std::num::NonZeroU32::new(cfg.rate_limit_per_s)
            .ok_or("api.rate_limit_per_s must be > 0")?;
        let burst = std::num::NonZeroU32::new(cfg.rate_limit_burst.max(cfg.rate_limit_per_s))
            .unwrap_or(per_s);
        Ok(Self {
            registry,
            engine,
            topics,
            verifier,
            limiter: RateLimiter::keyed(Quota::per_second(per_s).allow_burst(burst)),
            audit_key,
            max_body_bytes: cfg.max_body_bytes,
            directory: None,
        })
    }

    /// Forwards requests for keys served elsewhere to the owners found in `directory`.
    pub fn with_directory(mut self, directory: Arc<routing::Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The answer for a key whose partition is not served here: the owner's, forwarded once,
    /// else 503 with `Retry-After`.
    async fn elsewhere(
        &self,
        principal: &Principal,
        route: &'static str,
        key: &str,
        p: i32,
        uri: &axum::http::Uri,
        headers: &axum::http::HeaderMap,
    ) -> Response {
        let hop = headers.contains_key(routing::HOP_HEADER);
        let owner = if hop {
            None
        } else {
            self.directory.as_ref().and_then(|d| d.owner(p))
        };
        let Some(owner) = owner else {
            self.audit(
                &principal.subject,
                route,
                Some(key),
                "not_owned",
                StatusCode::SERVICE_UNAVAILABLE,
            );
            return unavailable("the key's partition is not served by a known instance");
        };
        let path = uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_default();
        let authz = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match routing::forward(owner, path, authz).await {
            Ok(f) => {
                let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_GATEWAY);
                self.audit(&principal.subject, route, Some(key), "forwarded", status);
                let mut r = (status, f.body).into_response();
                if let Ok(v) = HeaderValue::from_str(&f.content_type) {
                    r.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                // The owner's Retry-After (a 503 while its partition restores or has just
                // moved, a 429) reaches the client; a 503 without one gets the usual wait.
                let retry_after = f
                    .retry_after
                    .as_deref()
                    .and_then(|v| HeaderValue::from_str(v).ok())
                    .or_else(|| {
                        (status == StatusCode::SERVICE_UNAVAILABLE)
                            .then(|| HeaderValue::from(RETRY_AFTER_S))
                    });
                if let Some(v) = retry_after {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            Err(e) => {
                tracing::warn!(error = %e, partition = p, "forwarding to the key's owner failed");
                self.audit(
                    &principal.subject,
                    route,
                    Some(key),
                    "forward_failed",
                    StatusCode::SERVICE_UNAVAILABLE,
                );
                unavailable("the key's owner did not answer")
            }
        }
    }

    /// HMAC-SHA-256 of a key under the audit key, hex: correlates accesses to one key across the
    /// audit log without the key being readable from it.
    pub fn key_hash(&self, key: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.audit_key).expect("HMAC takes any key length");
        mac.update(key.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut s = String::with_capacity(64);
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    fn audit(
        &self,
        who: &str,
        route: &'static str,
        key: Option<&str>,
        outcome: &str,
        status: StatusCode,
    ) {
        let key_hash = key.map(|k| self.key_hash(k));
        tracing::info!(
            target: AUDIT_TARGET,
            subject = who,
            route,
            key_hash = key_hash.as_deref().unwrap_or(""),
            outcome,
            status = status.as_u16(),
            at = %chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "access"
        );
    }
}

/// An RFC 7807 problem response. Titles are fixed per status; `detail` never echoes input.
pub fn problem(status: StatusCode, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

fn unavailable(detail: &str) -> Response {
    let mut r = problem(StatusCode::SERVICE_UNAVAILABLE, detail);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    r
}

/// A claim or member id as we accept it: 1..=64 characters of `[A-Za-z0-9._:-]`, not starting
/// with a dot and without `..` (no path segments, separators, quotes, spaces or control
/// characters can get through to anything downstream).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && !key.starts_with('.')
        && !key.contains("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The routes of the read API (merged into the operations server's router by the caller).
pub fn router(state: Arc<ApiState>, request_timeout: Duration) -> Router {
    let v1 = Router::new()
        .route("/v1/claims/{claim_id}", get(get_claim))
        .route("/v1/members/{member_id}/stays", get(get_member_stays))
        .route("/v1/payers/{payer_id}/kpis", get(get_payer_kpis))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            authenticate,
        ));
    let max_body = state.max_body_bytes;
    Router::new()
        .merge(v1)
        .route("/openapi.json", get(openapi))
        .with_state(state)
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::middleware::map_response(problem_for_bare_errors))
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    request_timeout,
                ))
                .layer(axum::middleware::from_fn(move |req, next| {
                    limit_declared_body(max_body, req, next)
                }))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body)),
        )
}

/// Serves the operations routes, the read API, and problem+json 404s for anything else.
pub fn full_router(ops: Router, api: Option<Router>) -> Router {
    let r = match api {
        Some(api) => ops.merge(api),
        None => ops,
    };
    r.fallback(|| async { problem(StatusCode::NOT_FOUND, "no such route") })
}

/// Rejects a declared body over the limit before any handler runs (the body layer catches
/// undeclared, chunked ones while they are read).
async fn limit_declared_body(max: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return problem(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    next.run(req).await
}

/// Timeouts and body limits from tower-http answer with an empty body: give them a problem one.
async fn problem_for_bare_errors(r: Response) -> Response {
    let s = r.status();
    if (s.is_client_error() || s.is_server_error())
        && !r.headers().contains_key(header::CONTENT_TYPE)
    {
        return problem(s, s.canonical_reason().unwrap_or("error"));
    }
    r
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

fn route_name(path: &str) -> &'static str {
    if path.starts_with("/v1/claims/") {
        "claims"
    } else if path.starts_with("/v1/members/") {
        "member_stays"
    } else if path.starts_with("/v1/payers/") {
        "payer_kpis"
    } else {
        "other"
    }
}

/// Bearer authentication and the per-client rate limit, for every `/v1` route.
async fn authenticate(State(s): State<Arc<ApiState>>, mut req: Request, next: Next) -> Response {
    let route = route_name(req.uri().path());
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match s.verifier.verify(authz) {
        Ok(p) => p,
        Err(why) => {
            s.audit("", route, None, why.code(), StatusCode::UNAUTHORIZED);
            let mut r = problem(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    };
    if s.limiter.check_key(&principal.subject).is_err() {
        s.audit(
            &principal.subject,
            route,
            None,
            "rate_limited",
            StatusCode::TOO_MANY_REQUESTS,
        );
        let mut r = problem(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        return r;
    }
    if s.limiter.len() > 100_000 {
        s.limiter.retain_recent();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Why a request is not answered from local state.
enum Denied {
    Now(Box<Response>),
    /// Served by another instance (key, partition).
    Elsewhere(String, i32),
}

impl From<Response> for Denied {
    fn from(r: Response) -> Self {
        Denied::Now(Box::new(r))
    }
}

/// Checks scope and key, audits, and finds the key's partition; `Ok` carries the views.
fn admit(
    s: &ApiState,
    principal: &Principal,
    route: &'static str,
    scope: Scope,
    key: Result<Path<String>, PathRejection>,
) -> Result<(String, i32, Arc<Views>), Denied> {
    let key = match key {
        Ok(Path(k)) if valid_key(&k) => k,
        _ => {
            s.audit(
                &principal.subject,
                route,
                None,
                "bad_key",
                StatusCode::BAD_REQUEST,
            );
            return Err(problem(StatusCode::BAD_REQUEST, "malformed key").into());
        }
    };
    if !principal.has(scope) {
        s.audit(
            &principal.subject,
            route,
            Some(&key),
            "forbidden",
            StatusCode::FORBIDDEN,
        );
        return Err(problem(StatusCode::FORBIDDEN, "insufficient scope").into());
    }
    let p = s.registry.partition_of(&key);
    match s.registry.lookup_partition(p) {
        Lookup::Local(v) => Ok((key, p, v)),
        Lookup::Restoring => {
            s.audit(
                &principal.subject,
                route,
                Some(&key),
                "restoring",
                StatusCode::SERVICE_UNAVAILABLE,
            );
            Err(unavailable("the key's partition is restoring").into())
        }
        Lookup::Elsewhere => Err(Denied::Elsewhere(key, p)),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode the response",
        ),
    }
}

async fn get_claim(
    State(s): State<Arc<ApiState>>,
    Extension(principal): Extension<Principal>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    key: Result<Path<String>, PathRejection>,
) -> Response {
    const ROUTE: &str = "claims";
    let (key, p, views) = match admit(&s, &principal, ROUTE, Scope::ClaimsRead, key) {
        Ok(x) => x,
        Err(Denied::Now(r)) => return *r,
        Err(Denied::Elsewhere(key, p)) => {
            return s
                .elsewhere(&principal, ROUTE, &key, p, &uri, &headers)
                .await
        }
    };
    // Clone under the shard's read lock, build the view without it.
    let state = views
        .claims
        .get(&key)
        .map(|e| e.value().clone())
        .filter(|st| !st.is_retired());
    let Some(state) = state else {
        s.audit(
            &principal.subject,
            ROUTE,
            Some(&key),
            "not_found",
            StatusCode::NOT_FOUND,
        );
        return problem(StatusCode::NOT_FOUND, "no such claim");
    };
    let dto = ClaimDto::build(&s.engine, &s.topics, p, &key, &state);
    s.audit(&principal.subject, ROUTE, Some(&key), "ok", StatusCode::OK);
    json(&dto)
}

/// Paging of a member's stays.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

/// A page position, opaque to clients: a sort position and a tag (for stays the admit day and
/// encounter id of the last stay returned; for KPI windows the last window's start and its
/// granularity).
fn decode_cursor(c: &str) -> Option<(i64, String)> {
    if c.len() > 200 {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (pos, tag) = text.split_once(':')?;
    Some((pos.parse().ok()?, tag.to_owned()))
}

fn encode_cursor(pos: i64, tag: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{pos}:{tag}"))
}

async fn get_member_stays(
    State(s): State<Arc<ApiState>>,
    Extension(principal): Extension<Principal>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    key: Result<Path<String>, PathRejection>,
    page: Result<Query<PageParams>, QueryRejection>,
) -> Response {
    const ROUTE: &str = "member_stays";
    let (key, _p, views) = match admit(&s, &principal, ROUTE, Scope::MembersRead, key) {
        Ok(x) => x,
        Err(Denied::Now(r)) => return *r,
        Err(Denied::Elsewhere(key, p)) => {
            return s
                .elsewhere(&principal, ROUTE, &key, p, &uri, &headers)
                .await
        }
    };
    let bad_page = |s: &ApiState| {
        s.audit(
            &principal.subject,
            ROUTE,
            Some(&key),
            "bad_query",
            StatusCode::BAD_REQUEST,
        );
        problem(StatusCode::BAD_REQUEST, "malformed limit or cursor")
    };
    let Ok(Query(page)) = page else {
        return bad_page(&s);
    };
    let limit = match page.limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=MAX_PAGE as u32).contains(&n) => n as usize,
        Some(_) => return bad_page(&s),
    };
    let after = match page.cursor.as_deref() {
        None => None,
        Some(c) => {
            match decode_cursor(c).and_then(|(day, enc)| Some((i32::try_from(day).ok()?, enc))) {
                Some(pos) => Some(pos),
                None => return bad_page(&s),
            }
        }
    };
    let member = views.members.get(&key).map(|e| e.value().clone());
    let Some(member) = member else {
        s.audit(
            &principal.subject,
            ROUTE,
            Some(&key),
            "not_found",
            StatusCode::NOT_FOUND,
        );
        return problem(StatusCode::NOT_FOUND, "no such member");
    };
    let pending = views.stays.get(&key).map(|e| e.value().clone());
    let dto = member_dto(&s.engine, &key, &member, pending.as_ref(), limit, after);
    s.audit(&principal.subject, ROUTE, Some(&key), "ok", StatusCode::OK);
    json(&dto)
}

/// The member's page of stays, readmission links, current risk and open alerts.
pub fn member_dto(
    engine: &crate::core::Engine,
    member_id: &str,
    member: &crate::readmit::MemberState,
    pending: Option<&crate::score::PendingStays>,
    limit: usize,
    after: Option<(i32, String)>,
) -> MemberStaysDto {
    use dto::{AlertDto, DriverDto, ReadmissionLinkDto, RiskDto, StayDto};
    let mut stays: Vec<&crate::readmit::StayRec> = member.stays.iter().collect();
    // Most recent first; ties by encounter id so pages are stable.
    stays.sort_by(|a, b| (b.admit_date, &b.encounter_id).cmp(&(a.admit_date, &a.encounter_id)));
    let start = match &after {
        None => 0,
        Some((day, enc)) => stays
            .iter()
            .position(|s| (s.admit_date, &s.encounter_id) < (*day, enc))
            .unwrap_or(stays.len()),
    };
    let page: Vec<_> = stays.iter().skip(start).take(limit).collect();
    let next_cursor = (start + page.len() < stays.len())
        .then(|| {
            page.last()
                .map(|s| encode_cursor(i64::from(s.admit_date), &s.encounter_id))
        })
        .flatten();
    let readmissions = engine
        .detector
        .decide(&member.stays)
        .iter()
        .map(ReadmissionLinkDto::from)
        .collect();
    let mut current_risk = None;
    let mut open_alerts = Vec::new();
    if let Some(p) = pending {
        let mut scored: Vec<_> = p
            .pending
            .iter()
            .filter_map(|ps| {
                let index = member
                    .stays
                    .iter()
                    .find(|s| s.encounter_id == ps.encounter_id)?;
                let x = crate::score::features::ReadmitExtract {
                    features: ps.features.clone(),
                    transparent: ps.transparent,
                };
                let (score, alert) =
                    engine
                        .scorer
                        .score_readmission(member_id, index, ps.scored_at, &x);
                Some((ps.discharge_date, ps.scored_at, score, alert))
            })
            .collect();
        scored.sort_by_key(|(d, t, _, _)| (*d, *t));
        let window_days = engine.config.readmission_window_days as i32;
        for (discharge, _, _, alert) in &scored {
            if let Some(a) = alert {
                open_alerts.push(AlertDto {
                    encounter_id: a.encounter_id.clone(),
                    facility_id: a.facility_id.clone(),
                    discharge_date: crate::model::format_day(a.discharge_date),
                    probability: a.probability,
                    recommended_intervention: a.recommended_intervention.clone(),
                    window_closes: crate::model::format_day(*discharge + window_days + 1),
                });
            }
        }
        if let Some((_, scored_at, score, _)) = scored.pop() {
            current_risk = Some(RiskDto {
                encounter_id: score.encounter_id,
                discharge_date: crate::model::format_day(score.discharge_date),
                scored_at: chrono::DateTime::from_timestamp_millis(scored_at)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default(),
                model_version: score.model_version,
                fallback: score.fallback,
                probability: score.probability,
                score: score.score,
                tier: score.tier,
                lace_points: score.lace_points,
                hospital_points: score.hospital_points,
                drivers: score
                    .drivers
                    .into_iter()
                    .map(|d| DriverDto {
                        feature: d.feature,
                        contribution: d.contribution,
                        explanation: d.explanation,
                    })
                    .collect(),
            });
        }
    }
    MemberStaysDto {
        member_id: member_id.to_owned(),
        stays: page
            .into_iter()
            .map(|s| StayDto::of(s, member.costs.get(&s.encounter_id).copied()))
            .collect(),
        next_cursor,
        readmissions,
        current_risk,
        open_alerts,
    }
}

/// Query of `GET /v1/payers/{payer_id}/kpis`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiParams {
    /// `daily` / `1d` (default) or `hourly` / `1h`.
    pub window: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Default page of KPI windows: a week of days, a day of hours.
const DEFAULT_DAILY_PAGE: usize = 7;
const DEFAULT_HOURLY_PAGE: usize = 24;

/// The granularity a `window` query value names.
pub fn parse_window(window: Option<&str>) -> Option<Granularity> {
    match window {
        None | Some("daily" | "1d") => Some(Granularity::Daily),
        Some("hourly" | "1h") => Some(Granularity::Hourly),
        Some(_) => None,
    }
}

/// The cursor tag of a granularity (a daily cursor is not valid for hourly windows).
fn granularity_tag(g: Granularity) -> &'static str {
    match g {
        Granularity::Hourly => "H",
        Granularity::Daily => "D",
    }
}

async fn get_payer_kpis(
    State(s): State<Arc<ApiState>>,
    Extension(principal): Extension<Principal>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    key: Result<Path<String>, PathRejection>,
    query: Result<Query<KpiParams>, QueryRejection>,
) -> Response {
    const ROUTE: &str = "payer_kpis";
    let (key, _p, views) = match admit(&s, &principal, ROUTE, Scope::KpisRead, key) {
        Ok(x) => x,
        Err(Denied::Now(r)) => return *r,
        Err(Denied::Elsewhere(key, p)) => {
            return s
                .elsewhere(&principal, ROUTE, &key, p, &uri, &headers)
                .await
        }
    };
    let bad_query = |s: &ApiState| {
        s.audit(
            &principal.subject,
            ROUTE,
            Some(&key),
            "bad_query",
            StatusCode::BAD_REQUEST,
        );
        problem(StatusCode::BAD_REQUEST, "malformed window, limit or cursor")
    };
    let Ok(Query(q)) = query else {
        return bad_query(&s);
    };
    let Some(g) = parse_window(q.window.as_deref()) else {
        return bad_query(&s);
    };
    let limit = match q.limit {
        None if g == Granularity::Daily => DEFAULT_DAILY_PAGE,
        None => DEFAULT_HOURLY_PAGE,
        Some(n) if (1..=MAX_PAGE as u32).contains(&n) => n as usize,
        Some(_) => return bad_query(&s),
    };
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some((start, tag)) if tag == granularity_tag(g) => Some(start),
            _ => return bad_query(&s),
        },
    };
    let Some(dto) = payer_kpis_dto(&s.engine.monitor, &views.windows, &key, g, limit, after) else {
        s.audit(
            &principal.subject,
            ROUTE,
            Some(&key),
            "not_found",
            StatusCode::NOT_FOUND,
        );
        return problem(StatusCode::NOT_FOUND, "no such payer");
    };
    s.audit(&principal.subject, ROUTE, Some(&key), "ok", StatusCode::OK);
    json(&dto)
}

/// A page of the payer's windows of granularity `g`, newest first, starting after the window
/// that starts at `after`; `None` when the partition holds no window of the payer at all (of
/// either granularity). Each window's KPI is [`crate::monitor::Monitor::current_kpi`].
///
/// Finding the payer's windows is one pass over the partition's windows table (keys are not
/// ordered): at most a few thousand entries per payer, so some tens of thousands per partition.
pub fn payer_kpis_dto(
    monitor: &crate::monitor::Monitor,
    windows: &registry::View<crate::monitor::WindowState>,
    payer_id: &str,
    g: Granularity,
    limit: usize,
    after: Option<EpochMillis>,
) -> Option<PayerKpisDto> {
    use dto::{KpiWindowDto, WindowPhase};
    let mut known = false;
    let mut starts: Vec<EpochMillis> = Vec::new();
    for w in windows.iter() {
        if w.payer_id == payer_id {
            known = true;
            if w.granularity == g {
                starts.push(w.start);
            }
        }
    }
    if !known {
        return None;
    }
    starts.sort_unstable_by(|a, b| b.cmp(a));
    let from = after.map_or(0, |a| starts.partition_point(|s| *s >= a));
    let page = &starts[from..(from + limit).min(starts.len())];
    let next_cursor = (from + page.len() < starts.len())
        .then(|| page.last().map(|s| encode_cursor(*s, granularity_tag(g))))
        .flatten();
    let mut key = String::with_capacity(payer_id.len() + 24);
    let windows = page
        .iter()
        .filter_map(|start| {
            crate::monitor::window_key(&mut key, payer_id, g, *start);
            // A window can leave state between the listing and here (expired): skipped.
            monitor.current_kpi(&**windows, &key)
        })
        .map(|kpi| KpiWindowDto {
            state: if kpi.version == 0 {
                WindowPhase::Open
            } else {
                WindowPhase::Emitted
            },
            kpi,
        })
        .collect();
    Some(PayerKpisDto {
        payer_id: payer_id.to_owned(),
        granularity: g,
        windows,
        next_cursor,
    })
}
