//! The read API without a broker: a partition fed from fixtures, its views registered, the
//! router driven in process (and over a socket for TLS and slow clients). Covers the auth
//! matrix, bad keys, limits, paging, the audit log and the OpenAPI document.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tower::ServiceExt;

use claimwatch::api::config::{ApiConfig, JwtConfig, TlsConfig};
use claimwatch::api::dto::SourceTopics;
use claimwatch::api::{self, ApiState, Registry, Views};
use claimwatch::config::CoreConfig;
use claimwatch::core::{Engine, Partition};
use claimwatch::model::fixtures::{ack, claim, remit, stay};
use claimwatch::model::{AdjustmentGroup::*, InputEvent, OutputEvent, PayerKpi};
use claimwatch::refdata::RefData;
use claimwatch::state::PartitionStore;

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "claimwatch";
const CLAIM: &str = "PCN-SECRET-0001";
const MEMBER: &str = "MBR-SECRET-77";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/api")
        .join(name)
}

fn api_config() -> ApiConfig {
    ApiConfig {
        enabled: true,
        jwt: JwtConfig {
            algorithm: "ES256".into(),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            public_key_files: vec![fixture("issuer-es256.pub")],
            ..JwtConfig::default()
        },
        ..ApiConfig::default()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(claims: Value, key: &str) -> String {
    let pem = std::fs::read(fixture(key)).unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(&pem).unwrap(),
    )
    .unwrap()
}

fn claims_with(scope: &str) -> Value {
    json!({"sub": "analyst-1", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "scope": scope})
}

fn token(scope: &str) -> String {
    sign(claims_with(scope), "issuer-es256.key")
}

const ALL: &str = "claims:read members:read kpis:read";

const PAYER: &str = "P-ACME";
const OTHER_PAYER: &str = "P-OTHER";
const HOUR: i64 = 3_600_000;

/// The payer flow's watermark the fixture ends at: windows closed by then are emitted, later ones
/// are open.
fn payer_cutoff() -> i64 {
    claimwatch::model::fixtures::t("2024-03-12") - 12 * HOUR
}

/// Claims of payer P-ACME besides CLAIM: (claim id, submitted and acknowledged day, remittance
/// day, denied). Submissions at noon, acknowledgements at 15:00 of the same day.
fn payer_claims() -> Vec<(String, String, String, bool)> {
    (0..10)
        .map(|i| {
            (
                format!("PC-{i:02}"),
                format!("2024-03-{:02}", 3 + i),
                format!("2024-03-{:02}", 8 + i),
                i % 3 == 0,
            )
        })
        .collect()
}

/// What P-ACME's windows must count: (event time, kind) of every fact, kind one of submitted,
/// accepted, paid, denied.
fn payer_facts() -> Vec<(i64, &'static str)> {
    use claimwatch::model::fixtures::t;
    let mut v = vec![
        (t("2024-03-01"), "submitted"),
        (t("2024-03-02"), "accepted"),
        (t("2024-03-20"), "paid"),
    ];
    for (_, day, remit_day, denied) in payer_claims() {
        v.push((t(&day), "submitted"));
        v.push((t(&day) + 3 * HOUR, "accepted"));
        v.push((t(&remit_day), if denied { "denied" } else { "paid" }));
    }
    v
}

/// A partition with one claim (submitted, acknowledged, paid with adjustments), ten more claims of
/// the same payer and one of another (their payer facts re-keyed back into the partition, as
/// replay does with one partition), and one member with an index stay and a readmission. Also
/// returns the payer KPIs emitted.
fn partition(engine: &Engine) -> (Partition, Vec<PayerKpi>) {
    let mut p = Partition::open(0, PartitionStore::hot_only(0), engine).unwrap();
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    let mut events = vec![
        (
            InputEvent::Claim(claim(CLAIM, "2024-03-01")),
            "ehr.claims",
            10,
        ),
        (
            InputEvent::Ack(ack(CLAIM, "2024-03-02", "A2", "20")),
            "x12.277ca",
            20,
        ),
        (
            InputEvent::Remit(remit(
                CLAIM,
                "2024-03-20",
                "1",
                50_000,
                &[(CO, "45", 40_000), (PR, "2", 10_000)],
            )),
            "x12.835",
            30,
        ),
    ];
    for i in 0..30 {
        events.push((
            InputEvent::Encounter(stay(
                MEMBER,
                &format!("E{i:02}"),
                "F1",
                &format!("2024-01-{:02}", 1 + i % 28),
                &format!("2024-01-{:02}", 1 + i % 28),
                "01",
                "I5023",
            )),
            "ehr.encounters",
            100 + i,
        ));
    }
    events.push((
        InputEvent::Encounter(stay(
            MEMBER,
            "E90",
            "F1",
            "2024-02-10",
            "2024-02-14",
            "01",
            "I5023",
        )),
        "ehr.encounters",
        200,
    ));
    events.push((
        InputEvent::Encounter(stay(
            MEMBER,
            "E91",
            "F1",
            "2024-02-20",
            "2024-02-24",
            "01",
            "J189",
        )),
        "ehr.encounters",
        201,
    ));
    for (i, (id, day, remit_day, denied)) in payer_claims().into_iter().enumerate() {
        let offset = 1000 + 10 * i as i64;
        events.push((InputEvent::Claim(claim(&id, &day)), "ehr.claims", offset));
        let mut a = ack(&id, &day, "A2", "20");
        a.event_time += 3 * HOUR;
        events.push((InputEvent::Ack(a), "x12.277ca", offset + 1));
        let r = if denied {
            remit(&id, &remit_day, "4", 0, &[(CO, "50", 100_000)])
        } else {
            remit(&id, &remit_day, "1", 60_000, &[(CO, "45", 40_000)])
        };
        events.push((InputEvent::Remit(r), "x12.835", offset + 2));
    }
    let mut other = claim("PC-OTHER", "2024-03-05");
    other.payer_id = OTHER_PAYER.into();
    events.push((InputEvent::Claim(other), "ehr.claims", 2000));
    events.sort_by_key(|(e, _, _)| e.event_time());
    for (e, topic, offset) in &events {
        p.apply(engine, e, topic, *offset, &mut out, &mut costs);
        // One partition: every re-keyed record comes back here.
        for r in costs.drain(..) {
            p.apply_rekeyed(engine, &r, &mut out);
        }
    }
    // The payer flow's watermark only moves once every source partition has sent a fact; the
    // runtime moves it with wall-clock time on a quiet stream, as here.
    p.advance_payer_flow_to(engine, payer_cutoff(), &mut out);
    let kpis = out
        .into_iter()
        .filter_map(|o| match o {
            OutputEvent::PayerKpi(k) => Some(k),
            _ => None,
        })
        .collect();
    (p, kpis)
}

struct Fixture {
    app: Router,
    state: Arc<ApiState>,
    registry: Registry,
    /// The payer KPIs the partition emitted.
    emitted: Vec<PayerKpi>,
    // Keeps the hot views alive as the task would.
    _partition: Partition,
}

fn setup_with(cfg: ApiConfig, partitions: u32) -> Fixture {
    setup_routed(cfg, partitions, None)
}

/// A fixture whose instance forwards keys it does not serve to the owners in `directory`.
fn setup_routed(
    cfg: ApiConfig,
    partitions: u32,
    directory: Option<Arc<api::routing::Directory>>,
) -> Fixture {
    logs();
    let engine = Engine::new(CoreConfig::default(), RefData::shared());
    let (p, emitted) = partition(&engine);
    let registry = Registry::new(partitions);
    registry.ready(0, Views::of(&p));
    let topics = SourceTopics {
        claims: "ehr.claims".into(),
        acks: "x12.277ca".into(),
        remits: "x12.835".into(),
    };
    let mut state = ApiState::new(&cfg, registry.clone(), engine, topics).unwrap();
    if let Some(d) = directory {
        state = state.with_directory(d);
    }
    let state = Arc::new(state);
    let app = api::full_router(
        Router::new(),
        Some(api::router(
            Arc::clone(&state),
            Duration::from_millis(cfg.request_timeout_ms),
        )),
    );
    Fixture {
        app,
        state,
        registry,
        emitted,
        _partition: p,
    }
}

fn setup() -> Fixture {
    setup_with(api_config(), 1)
}

async fn call(app: &Router, uri: &str, bearer: Option<&str>) -> (StatusCode, String, Value) {
    let mut req = Request::get(uri);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String, Value) {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, ct, v)
}

fn assert_problem(status: StatusCode, ct: &str, body: &Value, want: StatusCode) {
    assert_eq!(status, want, "{body}");
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["status"], want.as_u16());
    let text = body.to_string();
    for secret in [
        CLAIM,
        MEMBER,
        PAYER,
        OTHER_PAYER,
        "NOPE-",
        "analyst-1",
        "expired",
        "Expired",
        "audience",
        "issuer",
        "signature",
        "Signature",
        "claims:read",
        "alg",
        "kid",
    ] {
        assert!(
            !text.contains(secret),
            "problem body leaks {secret}: {text}"
        );
    }
}

#[tokio::test]
async fn claim_lifecycle_with_history_and_source_offsets() {
    let f = setup();
    let (s, ct, v) = call(&f.app, &format!("/v1/claims/{CLAIM}"), Some(&token(ALL))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ct, "application/json");
    assert_eq!(v["claim_id"], CLAIM);
    assert_eq!(v["status"], "PAID");
    assert_eq!(v["amounts"]["paid_to_date_cents"], 50_000);
    assert!(v["adjustments"]["carc_codes"]
        .as_array()
        .unwrap()
        .contains(&json!("CO-45")));
    let history = v["history"].as_array().unwrap();
    let sources: Vec<_> = history
        .iter()
        .map(|h| {
            (
                h["source"].as_str().unwrap(),
                h["status"].as_str().unwrap(),
                h["offset"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        vec![
            ("EHR", "SUBMITTED", Some(10)),
            ("277CA", "ACCEPTED", Some(20)),
            ("835", "PAID", Some(30))
        ]
    );
    assert_eq!(history[2]["topic"], "x12.835");
    assert_eq!(history[2]["partition"], 0);
    // Paid: only the retention timer is left.
    let timers: Vec<_> = v["pending_timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["timer"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(timers, vec!["EXPIRE"]);
}

#[tokio::test]
async fn member_stays_page_with_cursor_and_readmission_links() {
    let f = setup();
    let t = token(ALL);
    let (s, _, v) = call(
        &f.app,
        &format!("/v1/members/{MEMBER}/stays?limit=10"),
        Some(&t),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let first = v["stays"].as_array().unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0]["encounter_id"], "E91", "most recent first");
    assert!(v["readmissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["index_encounter_id"] == "E90" && r["readmission_encounter_id"] == "E91"));
    let mut seen: Vec<String> = first
        .iter()
        .map(|s| s["encounter_id"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = v["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (s, _, v) = call(
            &f.app,
            &format!("/v1/members/{MEMBER}/stays?limit=10&cursor={c}"),
            Some(&t),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        seen.extend(
            v["stays"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["encounter_id"].as_str().unwrap().to_owned()),
        );
        cursor = v["next_cursor"].as_str().map(str::to_owned);
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "pages overlap");
    assert_eq!(seen.len(), 32, "every stay once");
    // The latest discharge is still in its window: a current score with drivers.
    let risk = &v_current_risk(&f, &t).await;
    assert_eq!(risk["encounter_id"], "E91");
    assert!(!risk["drivers"].as_array().unwrap().is_empty());
}

async fn v_current_risk(f: &Fixture, t: &str) -> Value {
    let (_, _, v) = call(&f.app, &format!("/v1/members/{MEMBER}/stays"), Some(t)).await;
    v["current_risk"].clone()
}

#[tokio::test]
async fn bad_paging_is_400() {
    let f = setup();
    let t = token(ALL);
    for q in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=%%%",
        "cursor=bm9jb2xvbg",
        "other=1",
    ] {
        let (s, ct, v) = call(&f.app, &format!("/v1/members/{MEMBER}/stays?{q}"), Some(&t)).await;
        assert_problem(s, &ct, &v, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn unknown_keys_are_404() {
    let f = setup();
    let t = token(ALL);
    let (s, ct, v) = call(&f.app, "/v1/claims/NOPE-1", Some(&t)).await;
    assert_problem(s, &ct, &v, StatusCode::NOT_FOUND);
    let (s, ct, v) = call(&f.app, "/v1/members/NOPE-2/stays", Some(&t)).await;
    assert_problem(s, &ct, &v, StatusCode::NOT_FOUND);
    for q in ["", "?window=1d", "?window=hourly&limit=3"] {
        let (s, ct, v) = call(&f.app, &format!("/v1/payers/NOPE-3/kpis{q}"), Some(&t)).await;
        assert_problem(s, &ct, &v, StatusCode::NOT_FOUND);
    }
    // A claim or member id is not a payer.
    let (s, ct, v) = call(&f.app, &format!("/v1/payers/{CLAIM}/kpis"), Some(&t)).await;
    assert_problem(s, &ct, &v, StatusCode::NOT_FOUND);
    let (s, ct, v) = call(&f.app, "/v1/nothing", Some(&t)).await;
    assert_problem(s, &ct, &v, StatusCode::NOT_FOUND);
}

/// Every window of `payer` at granularity `window`, paging with `limit`: the pages in order.
async fn kpi_pages(f: &Fixture, payer: &str, window: &str, limit: usize) -> Vec<Value> {
    let t = token("kpis:read");
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut uri = format!("/v1/payers/{payer}/kpis?window={window}&limit={limit}");
        if let Some(c) = &cursor {
            uri.push_str(&format!("&cursor={c}"));
        }
        let (s, ct, v) = call(&f.app, &uri, Some(&t)).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        assert_eq!(ct, "application/json");
        cursor = v["next_cursor"].as_str().map(str::to_owned);
        pages.push(v);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

/// The direct computation: per window start, (submitted, accepted, adjudicated, paid, denied).
fn expected_windows(g_ms: i64) -> std::collections::BTreeMap<i64, [i64; 5]> {
    let mut m = std::collections::BTreeMap::new();
    for (at, kind) in payer_facts() {
        let c: &mut [i64; 5] = m.entry(at.div_euclid(g_ms) * g_ms).or_default();
        match kind {
            "submitted" => c[0] += 1,
            "accepted" => c[1] += 1,
            "paid" => {
                c[2] += 1;
                c[3] += 1
            }
            "denied" => {
                c[2] += 1;
                c[4] += 1
            }
            _ => unreachable!(),
        }
    }
    m
}

#[tokio::test]
async fn payer_kpis_match_the_monitor_and_a_direct_count_and_page_newest_first() {
    let f = setup();
    for (window, alias, g, g_ms, page_size) in [
        ("daily", "1d", "DAILY", 24 * HOUR, 5),
        ("hourly", "1h", "HOURLY", HOUR, 7),
    ] {
        let expected = expected_windows(g_ms);
        let pages = kpi_pages(&f, PAYER, window, page_size).await;
        let mut windows = Vec::new();
        for (i, page) in pages.iter().enumerate() {
            assert_eq!(page["payer_id"], PAYER);
            assert_eq!(page["granularity"], g);
            let w = page["windows"].as_array().unwrap();
            if i + 1 < pages.len() {
                assert_eq!(w.len(), page_size, "full pages but the last");
            }
            windows.extend(w.iter().cloned());
        }
        // Every window exactly once, newest first.
        let starts: Vec<i64> = windows
            .iter()
            .map(|w| w["window_start"].as_i64().unwrap())
            .collect();
        let mut want: Vec<i64> = expected.keys().copied().collect();
        want.reverse();
        assert_eq!(starts, want, "{window}: every window once, newest first");
        let cutoff = payer_cutoff();
        let grace = if g == "DAILY" { 48 * HOUR } else { 2 * HOUR };
        let (mut open, mut emitted) = (0, 0);
        for w in &windows {
            let start = w["window_start"].as_i64().unwrap();
            assert_eq!(w["payer_id"], PAYER);
            assert_eq!(w["granularity"], g);
            assert_eq!(w["window_end"].as_i64().unwrap(), start + g_ms);
            let c = expected[&start];
            let got = ["submitted", "accepted", "adjudicated", "paid", "denied"]
                .map(|k| w[k].as_i64().unwrap());
            assert_eq!(got, c, "{window} window {start}: counts");
            let rate = if c[2] > 0 {
                c[4] as f64 / c[2] as f64
            } else {
                0.0
            };
            assert_eq!(w["denial_rate"].as_f64().unwrap(), rate);
            if start + g_ms + grace <= cutoff {
                emitted += 1;
                assert_eq!(w["state"], "EMITTED", "{w}");
                // Exactly the record the monitor emitted for the window.
                let mut last = f
                    .emitted
                    .iter()
                    .filter(|k| {
                        k.payer_id == PAYER
                            && k.granularity.as_str() == g
                            && k.window_start == start
                    })
                    .max_by_key(|k| k.version)
                    .map(|k| serde_json::to_value(k).unwrap())
                    .expect("an emitted window has an emission");
                last["state"] = json!("EMITTED");
                assert_eq!(w, &last);
            } else {
                open += 1;
                assert_eq!(w["state"], "OPEN", "{w}");
                assert_eq!(w["version"], 0);
            }
        }
        assert!(
            open > 0 && emitted > 0,
            "{window}: {open} open, {emitted} emitted"
        );
        // The alias and the default page give the newest windows first.
        let t = token("kpis:read");
        let (s, _, v) = call(
            &f.app,
            &format!("/v1/payers/{PAYER}/kpis?window={alias}"),
            Some(&t),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let default_page = if g == "DAILY" { 7 } else { 24 };
        let w = v["windows"].as_array().unwrap();
        assert_eq!(w.len(), default_page.min(want.len()));
        assert_eq!(w[0]["window_start"].as_i64(), Some(want[0]));
        assert_eq!(v["next_cursor"].is_string(), want.len() > default_page);
    }
    // Daily is the default; the other payer's windows are its own.
    let t = token("kpis:read");
    let (_, _, d) = call(&f.app, &format!("/v1/payers/{PAYER}/kpis"), Some(&t)).await;
    assert_eq!(d["granularity"], "DAILY");
    let (s, _, o) = call(&f.app, &format!("/v1/payers/{OTHER_PAYER}/kpis"), Some(&t)).await;
    assert_eq!(s, StatusCode::OK, "{o}");
    let w = o["windows"].as_array().unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0]["submitted"].as_i64(), w[0]["payer_id"].as_str()),
        (Some(1), Some(OTHER_PAYER))
    );
    assert!(o["next_cursor"].is_null());
    // One page of 100 holds them all; a cursor at the oldest window gives an empty last page.
    let pages = kpi_pages(&f, PAYER, "daily", 100).await;
    assert_eq!(pages.len(), 1);
    let oldest = expected_windows(24 * HOUR).into_keys().next().unwrap();
    use base64::Engine as _;
    let c = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{oldest}:D"));
    let (s, _, v) = call(
        &f.app,
        &format!("/v1/payers/{PAYER}/kpis?cursor={c}"),
        Some(&t),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["windows"], json!([]));
    assert!(v["next_cursor"].is_null());
}

#[tokio::test]
async fn bad_kpi_queries_are_400() {
    let f = setup();
    let t = token(ALL);
    let (_, _, daily) = call(
        &f.app,
        &format!("/v1/payers/{PAYER}/kpis?limit=2"),
        Some(&t),
    )
    .await;
    let daily_cursor = daily["next_cursor"].as_str().unwrap().to_owned();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let huge = b64.encode("99999999999999999999999:D");
    let wrong_tag = b64.encode("1709251200000:X");
    let long = "A".repeat(300);
    for q in [
        "window=weekly".to_owned(),
        "window=DAILY".to_owned(),
        "window=".to_owned(),
        "window=1d&window=1h".to_owned(),
        "limit=0".to_owned(),
        "limit=101".to_owned(),
        "limit=-1".to_owned(),
        "limit=x".to_owned(),
        "cursor=%%%".to_owned(),
        "cursor=bm9jb2xvbg".to_owned(),
        format!("cursor={huge}"),
        format!("cursor={wrong_tag}"),
        format!("cursor={long}"),
        // A daily cursor is not an hourly one.
        format!("window=hourly&cursor={daily_cursor}"),
        "other=1".to_owned(),
    ] {
        let (s, ct, v) = call(&f.app, &format!("/v1/payers/{PAYER}/kpis?{q}"), Some(&t)).await;
        assert_problem(s, &ct, &v, StatusCode::BAD_REQUEST);
    }
    // The same cursor is fine for daily windows.
    let (s, _, _) = call(
        &f.app,
        &format!("/v1/payers/{PAYER}/kpis?window=daily&cursor={daily_cursor}"),
        Some(&t),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Malformed payer ids.
    for key in [
        "..",
        ".hidden",
        "a..b",
        "a%20b",
        "%00",
        "a%7Cb",
        "P%7CD%7C0",
        "a;b",
    ] {
        let (s, ct, v) = call(&f.app, &format!("/v1/payers/{key}/kpis"), Some(&t)).await;
        assert_problem(s, &ct, &v, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn malformed_and_hostile_keys_are_400() {
    let f = setup();
    let t = token(ALL);
    let long = "A".repeat(65);
    for key in [
        "..%2F..%2Fetc%2Fpasswd",
        "..",
        ".hidden",
        "a..b",
        "x%27%20OR%20%271%27%3D%271",
        "a%20b",
        "%00",
        "a%0Ab",
        "%3Cscript%3E",
        "caf%C3%A9",
        "%FF%FE",
        "a%2Fb",
        "a;b",
        "$%7Bjndi:ldap%7D",
        long.as_str(),
    ] {
        let (s, ct, v) = call(&f.app, &format!("/v1/claims/{key}"), Some(&t)).await;
        assert_problem(s, &ct, &v, StatusCode::BAD_REQUEST);
        let (s, ct, v) = call(&f.app, &format!("/v1/members/{key}/stays"), Some(&t)).await;
        assert_problem(s, &ct, &v, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn auth_matrix() {
    let f = setup();
    let uri = format!("/v1/claims/{CLAIM}");
    let mut bad: Vec<(&str, String)> = vec![
        (
            "expired",
            sign(
                json!({"sub": "a", "iss": ISSUER, "aud": AUDIENCE, "exp": now() - 3600, "scope": ALL}),
                "issuer-es256.key",
            ),
        ),
        (
            "wrong audience",
            sign(
                json!({"sub": "a", "iss": ISSUER, "aud": "other", "exp": now() + 600, "scope": ALL}),
                "issuer-es256.key",
            ),
        ),
        (
            "wrong issuer",
            sign(
                json!({"sub": "a", "iss": "https://evil", "aud": AUDIENCE, "exp": now() + 600, "scope": ALL}),
                "issuer-es256.key",
            ),
        ),
        (
            "no exp",
            sign(
                json!({"sub": "a", "iss": ISSUER, "aud": AUDIENCE, "scope": ALL}),
                "issuer-es256.key",
            ),
        ),
        ("wrong signature", sign(claims_with(ALL), "other-es256.key")),
        ("garbage", "not.a.jwt".into()),
    ];
    // alg none: header {"alg":"none"}, no signature.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims_with(ALL).to_string())
    );
    bad.push(("alg none", none));
    // HS256 with the issuer's public key as the HMAC secret (key confusion).
    let public = std::fs::read(fixture("issuer-es256.pub")).unwrap();
    bad.push((
        "HS256 confusion",
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims_with(ALL),
            &EncodingKey::from_secret(&public),
        )
        .unwrap(),
    ));
    // A valid signature with a tampered payload.
    let good = token(ALL);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered_payload = b64.encode(
        json!({"sub": "admin", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "scope": ALL})
            .to_string(),
    );
    bad.push((
        "tampered",
        format!("{}.{}.{}", parts[0], tampered_payload, parts[2]),
    ));

    let (s, ct, v) = call(&f.app, &uri, None).await;
    assert_problem(s, &ct, &v, StatusCode::UNAUTHORIZED);
    for (what, t) in &bad {
        let (s, ct, v) = call(&f.app, &uri, Some(t)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}");
        assert_problem(s, &ct, &v, StatusCode::UNAUTHORIZED);
    }
    // Basic auth is not a bearer token.
    let req = Request::get(&uri)
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .body(Body::empty())
        .unwrap();
    let (s, ct, v) = send(&f.app, req).await;
    assert_problem(s, &ct, &v, StatusCode::UNAUTHORIZED);

    // Valid token, wrong scope: 403 on each route.
    let t = token("members:read");
    let (s, ct, v) = call(&f.app, &uri, Some(&t)).await;
    assert_problem(s, &ct, &v, StatusCode::FORBIDDEN);
    let t = token("claims:read");
    let (s, ct, v) = call(&f.app, &format!("/v1/members/{MEMBER}/stays"), Some(&t)).await;
    assert_problem(s, &ct, &v, StatusCode::FORBIDDEN);
    let (s, ct, v) = call(&f.app, &format!("/v1/payers/{PAYER}/kpis"), Some(&t)).await;
    assert_problem(s, &ct, &v, StatusCode::FORBIDDEN);
    // kpis:read alone reads KPIs and nothing else.
    let t = token("kpis:read");
    let (s, _, _) = call(&f.app, &format!("/v1/payers/{PAYER}/kpis"), Some(&t)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, ct, v) = call(&f.app, &uri, Some(&t)).await;
    assert_problem(s, &ct, &v, StatusCode::FORBIDDEN);
    // Scope as a list is accepted too.
    let t = sign(
        json!({"sub": "svc", "iss": ISSUER, "aud": [AUDIENCE, "x"], "exp": now() + 600, "scope": ["claims:read"]}),
        "issuer-es256.key",
    );
    let (s, _, _) = call(&f.app, &uri, Some(&t)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn restoring_and_foreign_partitions_are_503_with_retry_after() {
    let f = setup_with(api_config(), 2);
    let t = token(ALL);
    // Keys of partition 1 are not served here.
    let foreign = (0..)
        .map(|i| format!("K{i}"))
        .find(|k| f.registry.partition_of(k) == 1)
        .unwrap();
    let r = f
        .app
        .clone()
        .oneshot(
            Request::get(format!("/v1/claims/{foreign}"))
                .header("authorization", format!("Bearer {t}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let local = (0..)
        .map(|i| format!("K{i}"))
        .find(|k| f.registry.partition_of(k) == 0)
        .unwrap();
    f.registry.restoring(0);
    let r = f
        .app
        .clone()
        .oneshot(
            Request::get(format!("/v1/claims/{local}"))
                .header("authorization", format!("Bearer {t}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "2");
    // Payer KPIs are found the same way: payer id -> partition.
    for (p, payer) in [(0, &local), (1, &foreign)] {
        assert_eq!(f.registry.partition_of(payer), p);
        let r = f
            .app
            .clone()
            .oneshot(
                Request::get(format!("/v1/payers/{payer}/kpis?window=hourly"))
                    .header("authorization", format!("Bearer {t}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_are_forwarded_to_the_owner_with_its_retry_after() {
    // B serves both partitions (the fixture's state registered under each) over a socket.
    let b = setup_with(api_config(), 2);
    b.registry.ready(1, Views::of(&b._partition));
    let (addr, _stop) = spawn_server(b.app.clone(), None, Duration::from_secs(2)).await;
    // A serves nothing and knows B's advert.
    let directory = Arc::new(api::routing::Directory::new("a"));
    directory.apply(
        "b",
        Some(api::routing::Advert {
            url: format!("http://{addr}"),
            partitions: vec![0, 1],
            generation: 1,
            updated_ms: chrono::Utc::now().timestamp_millis(),
        }),
    );
    let a = setup_routed(api_config(), 2, Some(directory));
    a.registry.remove(0);
    let t = token(ALL);
    for uri in [
        format!("/v1/payers/{PAYER}/kpis?window=hourly&limit=5"),
        format!("/v1/payers/{OTHER_PAYER}/kpis"),
        format!("/v1/claims/{CLAIM}"),
    ] {
        let direct = call(&b.app, &uri, Some(&t)).await;
        assert_eq!(direct.0, StatusCode::OK, "{uri}");
        assert_eq!(
            call(&a.app, &uri, Some(&t)).await,
            direct,
            "{uri} forwarded"
        );
    }
    let (s, ct, v) = call(&a.app, "/v1/payers/NOPE-4/kpis", Some(&t)).await;
    assert_problem(s, &ct, &v, StatusCode::NOT_FOUND);
    let (s, ct, v) = call(
        &a.app,
        &format!("/v1/payers/{PAYER}/kpis?limit=0"),
        Some(&t),
    )
    .await;
    assert_problem(s, &ct, &v, StatusCode::BAD_REQUEST);
    // The owner's partition restoring: its 503 reaches the client with its Retry-After.
    b.registry.restoring(b.registry.partition_of(PAYER));
    let r = a
        .app
        .clone()
        .oneshot(
            Request::get(format!("/v1/payers/{PAYER}/kpis"))
                .header("authorization", format!("Bearer {t}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "2");
}

#[tokio::test]
async fn oversized_requests_are_413() {
    let f = setup();
    let req = Request::get(format!("/v1/claims/{CLAIM}"))
        .header("authorization", format!("Bearer {}", token(ALL)))
        .header("content-length", "100000")
        .body(Body::from(vec![b'x'; 100_000]))
        .unwrap();
    let (s, ct, v) = send(&f.app, req).await;
    assert_problem(s, &ct, &v, StatusCode::PAYLOAD_TOO_LARGE);
    // A huge token is refused without parsing it.
    let (s, ct, v) = call(
        &f.app,
        &format!("/v1/claims/{CLAIM}"),
        Some(&"a".repeat(20_000)),
    )
    .await;
    assert_problem(s, &ct, &v, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rate_limit_per_client_is_429() {
    let cfg = ApiConfig {
        rate_limit_per_s: 1,
        rate_limit_burst: 3,
        ..api_config()
    };
    let f = setup_with(cfg, 1);
    let a = token(ALL);
    let uri = format!("/v1/claims/{CLAIM}");
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(call(&f.app, &uri, Some(&a)).await.0);
    }
    assert_eq!(&codes[..3], &[StatusCode::OK; 3]);
    assert_eq!(codes[4], StatusCode::TOO_MANY_REQUESTS);
    // Another client is not affected.
    let b = sign(
        json!({"sub": "analyst-2", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "scope": ALL}),
        "issuer-es256.key",
    );
    assert_eq!(call(&f.app, &uri, Some(&b)).await.0, StatusCode::OK);
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every event of this test binary, captured by one global subscriber (installed before any test
/// logs: tracing caches per-callsite interest, so a scoped subscriber would miss events).
fn logs() -> &'static Capture {
    static LOGS: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Capture::default();
        let w = buf.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || w.clone())
            .with_ansi(false)
            .init();
        buf
    })
}

#[tokio::test]
async fn audit_log_has_hashed_keys_and_general_log_no_identifiers() {
    let f = setup();
    let t = token(ALL);
    call(&f.app, &format!("/v1/claims/{CLAIM}"), Some(&t)).await;
    call(&f.app, &format!("/v1/members/{MEMBER}/stays"), Some(&t)).await;
    call(&f.app, "/v1/claims/UNKNOWN-9", Some(&t)).await;
    call(
        &f.app,
        &format!("/v1/claims/{CLAIM}"),
        Some(&token("members:read")),
    )
    .await;
    call(&f.app, &format!("/v1/claims/{CLAIM}"), None).await;
    call(&f.app, &format!("/v1/payers/{PAYER}/kpis"), Some(&t)).await;
    call(&f.app, "/v1/payers/UNKNOWN-P/kpis", Some(&t)).await;
    call(
        &f.app,
        &format!("/v1/payers/{PAYER}/kpis?limit=0"),
        Some(&t),
    )
    .await;
    let text = String::from_utf8(logs().0.lock().unwrap().clone()).unwrap();
    let (audit, general): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| l.contains(api::AUDIT_TARGET));
    // This fixture's audit key is its own: its hashes are only in its lines.
    let claim_hash = f.state.key_hash(CLAIM);
    let member_hash = f.state.key_hash(MEMBER);
    let unknown_hash = f.state.key_hash("UNKNOWN-9");
    let mine = |h: &str, outcome: &str| {
        audit
            .iter()
            .filter(|l| l.contains(h) && l.contains(&format!("outcome=\"{outcome}\"")))
            .count()
    };
    assert_eq!(mine(&claim_hash, "ok"), 1, "{text}");
    assert_eq!(mine(&claim_hash, "forbidden"), 1);
    assert_eq!(mine(&member_hash, "ok"), 1);
    assert_eq!(mine(&unknown_hash, "not_found"), 1);
    let payer_hash = f.state.key_hash(PAYER);
    assert_eq!(mine(&payer_hash, "ok"), 1);
    assert_eq!(mine(&payer_hash, "bad_query"), 1);
    assert_eq!(mine(&f.state.key_hash("UNKNOWN-P"), "not_found"), 1);
    assert!(audit
        .iter()
        .any(|l| l.contains(&payer_hash) && l.contains("route=\"payer_kpis\"")));
    assert!(audit
        .iter()
        .any(|l| l.contains("outcome=\"token_missing\"")));
    assert!(audit
        .iter()
        .all(|l| l.contains("subject=") && l.contains("route=") && l.contains("status=")));
    // No identifier anywhere in the logs of this whole test binary, audit or not.
    for id in [CLAIM, MEMBER, "UNKNOWN-9", PAYER, "UNKNOWN-P"] {
        assert!(!text.contains(id), "{id} appears in the logs");
    }
    assert!(general.iter().all(|l| !l.contains(&claim_hash)));
}

#[tokio::test]
async fn openapi_document_is_served_and_matches_the_responses() {
    let f = setup();
    let (s, ct, served) = call(&f.app, "/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "application/json");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(served, file);
    assert_eq!(file["openapi"], "3.1.0");
    // Every field a real response carries is in the schema, and every required one is there.
    let t = token(ALL);
    let schemas = &file["components"]["schemas"];
    for (uri, schema) in [
        (format!("/v1/claims/{CLAIM}"), &schemas["Claim"]),
        (
            format!("/v1/members/{MEMBER}/stays"),
            &schemas["MemberStays"],
        ),
        (
            format!("/v1/payers/{PAYER}/kpis?window=daily&limit=100"),
            &schemas["PayerKpis"],
        ),
    ] {
        let (_, _, v) = call(&f.app, &uri, Some(&t)).await;
        if uri.contains("/kpis") {
            // Open and emitted windows against the window schema.
            let w = &schemas["PayerKpiWindow"];
            let props = w["properties"].as_object().unwrap();
            let windows = v["windows"].as_array().unwrap();
            assert!(windows.iter().any(|w| w["state"] == "OPEN"));
            assert!(windows.iter().any(|w| w["state"] == "EMITTED"));
            for win in windows {
                for k in win.as_object().unwrap().keys() {
                    assert!(props.contains_key(k), "{k} missing from PayerKpiWindow");
                }
                for r in w["required"].as_array().unwrap() {
                    assert!(win.get(r.as_str().unwrap()).is_some(), "{r} missing");
                }
                let state = win["state"].clone();
                assert!(props["state"]["enum"].as_array().unwrap().contains(&state));
            }
            let op = &file["paths"]["/v1/payers/{payer_id}/kpis"]["get"];
            for code in [
                "200", "400", "401", "403", "404", "408", "413", "429", "503",
            ] {
                assert!(op["responses"].get(code).is_some(), "kpis: {code}");
            }
            assert!(op["responses"].get("501").is_none());
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(params, ["payer_id", "window", "limit", "cursor"]);
        }
        let props = schema["properties"].as_object().unwrap();
        for k in v.as_object().unwrap().keys() {
            assert!(props.contains_key(k), "{k} missing from the schema");
        }
        for r in schema["required"].as_array().unwrap() {
            assert!(
                v.get(r.as_str().unwrap()).is_some(),
                "{r} missing from {uri}"
            );
        }
        assert!(file["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|p| uri.starts_with(p.split('{').next().unwrap())));
    }
}

/// A running server on port 0; returns its address and a stop handle.
async fn spawn_server(
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_timeout: Duration,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::server::serve(
        listener,
        app,
        tls,
        header_timeout,
        async move {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = setup();
    let (addr, _stop) = spawn_server(f.app.clone(), None, Duration::from_millis(300)).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Half a request line, then silence.
    s.write_all(b"GET /v1/claims/").await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "the server kept a slow client open");
    assert!(started.elapsed() < Duration::from_secs(3));
    // A normal client on the same server is fine.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

fn tls_client(with_cert: bool) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = if with_cert {
        let certs: Vec<_> = CertificateDer::pem_file_iter(fixture("client.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(fixture("client.key")).unwrap();
        b.with_client_auth_cert(certs, key).unwrap()
    } else {
        b.with_no_client_auth()
    };
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

async fn tls_get(
    addr: std::net::SocketAddr,
    connector: tokio_rustls::TlsConnector,
    path: &str,
    bearer: &str,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    Ok(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let f = setup();
    let acceptor = api::server::tls_acceptor(&TlsConfig {
        cert_file: fixture("server.pem"),
        key_file: fixture("server.key"),
        client_ca_file: Some(fixture("ca.pem")),
    })
    .unwrap();
    let (addr, _stop) = spawn_server(f.app.clone(), Some(acceptor), Duration::from_secs(2)).await;
    let t = token(ALL);
    let text = tls_get(addr, tls_client(true), &format!("/v1/claims/{CLAIM}"), &t)
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"status\":\"PAID\""));
    // Without a client certificate the handshake (or the first read) fails.
    let r = tls_get(addr, tls_client(false), &format!("/v1/claims/{CLAIM}"), &t).await;
    assert!(
        r.as_ref().map_or(true, |t| !t.starts_with("HTTP/1.1 200")),
        "{r:?}"
    );
}

#[test]
fn key_charset() {
    assert!(api::valid_key("PCN-123_4.5:6"));
    for k in ["", ".", "..", "a..b", ".a", "a/b", "a b", "é", "a\0"] {
        assert!(!api::valid_key(k), "{k:?}");
    }
    assert!(!api::valid_key(&"a".repeat(65)));
    let _ = std::io::sink().write(b"");
}

/// Cost of one KPI page over a full window table: 20 payers with 34 days of facts every hour
/// (34 x 25 windows each, 17,000 in the partition), in process through the router (JWT check
/// included, cached after the first request). A measurement, not a check: run with
/// `cargo test --release --test api -- --ignored --nocapture measure_kpi`.
#[tokio::test]
#[ignore]
async fn measure_kpi_page_cost() {
    use claimwatch::model::{FactKind, FactOutcome, PayerCategory, PayerFact, Rekeyed};
    let cfg = ApiConfig {
        rate_limit_per_s: 1_000_000,
        rate_limit_burst: 1_000_000,
        ..api_config()
    };
    let f = setup_with(cfg, 1);
    let engine = Engine::new(CoreConfig::default(), RefData::shared());
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &engine).unwrap();
    let mut out = Vec::new();
    let start = claimwatch::model::fixtures::t("2024-01-01") - 12 * HOUR;
    for payer in 0..20 {
        for h in 0..34 * 24 {
            let fact = PayerFact {
                payer_id: format!("PAYER-{payer:02}"),
                payer_category: PayerCategory::Commercial,
                event_time: start + h * HOUR,
                kind: FactKind::Adjudicated,
                outcome: Some(FactOutcome::Paid),
                first_adjudication: true,
                first_pass_paid: true,
                paid_cents: 10_000,
                denied_cents: 0,
                denial_category: None,
                denied_by_category: vec![],
                days_to_payment: Some(20),
                source_partition: 0,
            };
            p.apply_rekeyed(&engine, &Rekeyed::Payer(fact), &mut out);
        }
    }
    p.advance_payer_flow_to(&engine, start + 33 * 24 * HOUR, &mut out);
    assert_eq!(p.windows().len(), 20 * 34 * 25);
    f.registry.ready(0, Views::of(&p));
    let t = token("kpis:read");
    for q in ["window=daily", "window=hourly", "window=hourly&limit=100"] {
        let uri = format!("/v1/payers/PAYER-07/kpis?{q}");
        let mut times = Vec::new();
        for _ in 0..500 {
            let started = std::time::Instant::now();
            let (s, _, _) = call(&f.app, &uri, Some(&t)).await;
            times.push(started.elapsed());
            assert_eq!(s, StatusCode::OK);
        }
        times.sort();
        eprintln!(
            "{q}: p50 {:?} p90 {:?} p99 {:?} (500 requests, 17,000 windows in the partition)",
            times[250], times[450], times[495]
        );
    }
}

/// Cost of the extra hop of a forwarded `GET /v1/claims/{id}`: the same claim asked of its owner B
/// (in process through the router) and of A, which forwards it to B over loopback HTTP. Sequential
/// requests, no concurrent load. A measurement, not a check: run with
/// `cargo test --release --test api -- --ignored --nocapture measure_forward`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_forwarded_claim_cost() {
    let cfg = ApiConfig {
        rate_limit_per_s: 1_000_000,
        rate_limit_burst: 1_000_000,
        ..api_config()
    };
    let b = setup_with(cfg.clone(), 2);
    b.registry.ready(1, Views::of(&b._partition));
    let (addr, _stop) = spawn_server(b.app.clone(), None, Duration::from_secs(2)).await;
    let directory = Arc::new(api::routing::Directory::new("a"));
    directory.apply(
        "b",
        Some(api::routing::Advert {
            url: format!("http://{addr}"),
            partitions: vec![0, 1],
            generation: 1,
            updated_ms: chrono::Utc::now().timestamp_millis(),
        }),
    );
    let a = setup_routed(cfg, 2, Some(directory));
    a.registry.remove(0);
    let t = token(ALL);
    let uri = format!("/v1/claims/{CLAIM}");
    for (name, app) in [("direct (owner)", &b.app), ("forwarded (A -> B)", &a.app)] {
        let mut times = Vec::new();
        for i in 0..2_200 {
            let started = std::time::Instant::now();
            let (s, _, _) = call(app, &uri, Some(&t)).await;
            assert_eq!(s, StatusCode::OK);
            if i >= 200 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        eprintln!(
            "{name}: p50 {:?} p90 {:?} p99 {:?} (2,000 sequential requests after 200 warm-up)",
            times[1000], times[1800], times[1980]
        );
    }
}
