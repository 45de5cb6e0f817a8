//! The read API scaled out on a real broker (Tansu): two instances split the partitions, each
//! advertises its URL on the endpoints topic, and every claim is answerable from both (the one
//! that does not own the key forwards to the one that does), also after one instance leaves and
//! the other takes its partitions over, and while a third joins (during the rebalance every
//! answer is the right one or a 503 with Retry-After). Payer KPIs likewise.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use claimwatch::codec::Format;
use claimwatch::replay::{self, ReplayOptions};
use claimwatch::runtime::{produce, topics, RuntimeConfig, Service};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use support::*;

const PARTITIONS: u32 = 4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/api")
        .join(name)
}

fn token() -> String {
    let pem = std::fs::read(fixture("issuer-es256.key")).unwrap();
    let claims = serde_json::json!({
        "sub": "e2e", "iss": "https://idp.test", "aud": "claimwatch",
        "exp": chrono::Utc::now().timestamp() + 3600, "scope": "claims:read members:read kpis:read",
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(&pem).unwrap(),
    )
    .unwrap()
}

fn instance_config(base: &RuntimeConfig, state: &Path) -> (RuntimeConfig, String) {
    let mut c = base.clone();
    c.state_dir = state.to_owned();
    let http = free_http_addr();
    c.http_listen = Some(http.clone());
    c.api.enabled = true;
    c.api.advertised_url = Some(format!("http://{http}"));
    c.api.jwt.algorithm = "ES256".into();
    c.api.jwt.issuer = "https://idp.test".into();
    c.api.jwt.audience = "claimwatch".into();
    c.api.jwt.public_key_files = vec![fixture("issuer-es256.pub")];
    c.api.rate_limit_per_s = 100_000;
    c.api.rate_limit_burst = 100_000;
    (c, http)
}

async fn get(addr: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
    let (s, _, v) = get_full(addr, path, token).await;
    (s, v)
}

/// (status, whether the answer has a Retry-After header, body).
async fn get_full(addr: &str, path: &str, token: &str) -> (u16, bool, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let retry_after = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("retry-after:"));
    (
        status,
        retry_after,
        serde_json::from_str(body).unwrap_or_default(),
    )
}

/// Every key's answer from `addr`: (status code, claim status when 200).
async fn answers(addr: &str, keys: &[String], token: &str) -> BTreeMap<String, (u16, String)> {
    let mut out = BTreeMap::new();
    for k in keys {
        let (s, v) = get(addr, &format!("/v1/claims/{k}"), token).await;
        out.insert(
            k.clone(),
            (s, v["status"].as_str().unwrap_or_default().to_owned()),
        );
    }
    out
}

/// Every payer id of the generated claims.
fn payer_ids(input: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(input.join("ehr.claims.jsonl")).unwrap();
    let ids: std::collections::BTreeSet<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["payer_id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.into_iter().collect()
}

/// Every payer's KPI windows from `addr`, daily then hourly, all pages: (status of the first
/// page, the pages).
async fn kpi_answers(
    addr: &str,
    payers: &[String],
    token: &str,
) -> BTreeMap<String, (u16, Vec<serde_json::Value>)> {
    let mut out = BTreeMap::new();
    for p in payers {
        let mut pages = Vec::new();
        let mut first = 0;
        for window in ["daily", "hourly"] {
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/v1/payers/{p}/kpis?window={window}&limit=100");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let (s, v) = get(addr, &path, token).await;
                if first == 0 {
                    first = s;
                }
                cursor = v["next_cursor"].as_str().map(str::to_owned);
                pages.push(v);
                if s != 200 || cursor.is_none() {
                    break;
                }
            }
        }
        out.insert(p.clone(), (first, pages));
    }
    out
}

async fn settle(addrs: &[&str], keys: &[String], token: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut unavailable = 0;
        for a in addrs {
            unavailable += answers(a, &keys[..keys.len().min(40)], token)
                .await
                .values()
                .filter(|(s, _)| *s == 503)
                .count();
        }
        if unavailable == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{unavailable} answers still 503 after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_claim_is_answerable_from_both_instances_and_after_failover() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    claimwatch::generate::write::generate_to_dir(120, 11, &input, Format::Json).unwrap();
    let base = config(&broker, "api-e2e", &dir.path().join("unused"), PARTITIONS);
    topics::create(&base).await.unwrap();
    // The expected final status of every claim, from replay.
    let out = dir.path().join("replay");
    replay::run(&ReplayOptions {
        input: input.clone(),
        out: out.clone(),
        state: None,
        config: base.core.clone(),
        stop_after: None,
        close_open_windows: true,
    })
    .unwrap();
    let expected: BTreeMap<String, String> =
        final_lifecycle(&replay_outputs(&out, "claimwatch.claim-lifecycle"))
            .into_iter()
            .map(|(k, v)| {
                let v: serde_json::Value = serde_json::from_str(&v).unwrap();
                (k, v["status"].as_str().unwrap().to_owned())
            })
            .collect();
    let keys: Vec<String> = expected.keys().cloned().collect();
    assert!(keys.len() > 100, "{} claims", keys.len());

    let produced = produce::produce_dir(&base, &input, Format::Avro, produce::Pace::Unlimited)
        .await
        .unwrap();
    let (ca, http_a) = instance_config(&base, &dir.path().join("a"));
    let (cb, http_b) = instance_config(&base, &dir.path().join("b"));
    let a = Service::start(ca).await.unwrap();
    let b = Service::start(cb).await.unwrap();
    wait_until(Duration::from_secs(120), || {
        a.status.consumed.load(Ordering::Relaxed) + b.status.consumed.load(Ordering::Relaxed)
            >= produced.total()
            && a.served.served().len() + b.served.served().len() == PARTITIONS as usize
            && !a.served.served().is_empty()
            && !b.served.served().is_empty()
    })
    .await;
    let t = token();
    settle(&[&http_a, &http_b], &keys, &t).await;
    // Quiet: the last checkpoints ran, state is final.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let from_a = answers(&http_a, &keys, &t).await;
    let from_b = answers(&http_b, &keys, &t).await;
    let mut ok = 0;
    for k in &keys {
        let (sa, va) = &from_a[k];
        let (sb, vb) = &from_b[k];
        assert_eq!((sa, va), (sb, vb), "instances disagree on a claim");
        assert_ne!(*sa, 503);
        if *sa == 200 {
            ok += 1;
            assert_eq!(va, &expected[k], "status differs from replay");
        } else {
            assert_eq!(*sa, 404);
        }
    }
    // Claims past their retention have left state (404 on both, as they should); the rest
    // spread over every partition, so each instance answered keys it does not own.
    let found_partitions: std::collections::BTreeSet<i32> = keys
        .iter()
        .filter(|k| from_a[*k].0 == 200)
        .map(|k| claimwatch::core::partition_for(k, PARTITIONS))
        .collect();
    assert!(ok >= 50, "only {ok} of {} claims found", keys.len());
    assert_eq!(found_partitions.len(), PARTITIONS as usize);
    eprintln!(
        "partitions a {:?} b {:?}; {ok} of {} claims in state, answered from both",
        a.served.served(),
        b.served.served(),
        keys.len()
    );
    // Payer KPI windows live in the partition of the payer id (where the payer-facts topic puts
    // them): the same answer from both instances, one of them forwarding.
    let payers = payer_ids(&input);
    let kpis_a = kpi_answers(&http_a, &payers, &t).await;
    let kpis_b = kpi_answers(&http_b, &payers, &t).await;
    assert_eq!(kpis_a, kpis_b, "instances disagree on payer KPIs");
    let mut windows = 0;
    for (p, (s, pages)) in &kpis_a {
        assert_eq!(*s, 200, "payer KPIs not found: {pages:?}");
        assert_eq!(pages[0]["payer_id"].as_str(), Some(p.as_str()));
        windows += pages
            .iter()
            .map(|v| v["windows"].as_array().map_or(0, Vec::len))
            .sum::<usize>();
    }
    let owners: std::collections::BTreeSet<bool> = payers
        .iter()
        .map(|p| {
            a.served
                .served()
                .contains(&claimwatch::core::partition_for(p, PARTITIONS))
        })
        .collect();
    eprintln!(
        "{} payers, {windows} KPI windows, answered from both (owned by a: {owners:?})",
        payers.len()
    );
    assert!(windows > payers.len(), "{windows} windows");

    // B leaves; A takes every partition over and answers everything alone.
    b.shutdown().await;
    wait_until(Duration::from_secs(90), || {
        a.served.served().len() == PARTITIONS as usize
    })
    .await;
    settle(&[&http_a], &keys, &t).await;
    let after = answers(&http_a, &keys, &t).await;
    assert_eq!(after, from_a, "answers changed after the failover");
    let kpis_after = kpi_answers(&http_a, &payers, &t).await;
    assert_eq!(kpis_after, kpis_a, "payer KPIs changed after the failover");

    // C joins while a client keeps asking both instances about every fourth claim and every
    // payer: during the rebalance each answer is the right one or a 503 with Retry-After (never a
    // 404 for a key in state, never other data); once C serves partitions and a whole pass gets
    // no 503, the rebalance is over.
    let (cc, http_c) = instance_config(&base, &dir.path().join("c"));
    let c = Service::start(cc).await.unwrap();
    let sample: Vec<&String> = keys.iter().step_by(4).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut passes, mut passes_before_c, mut answered, mut unavailable) = (0, 0, 0, 0);
    loop {
        let c_serving = !c.served.served().is_empty()
            && a.served.served().len() + c.served.served().len() == PARTITIONS as usize;
        let mut pass_unavailable = 0;
        for addr in [&http_a, &http_c] {
            for k in &sample {
                let (s, retry_after, v) = get_full(addr, &format!("/v1/claims/{k}"), &t).await;
                if s == 503 {
                    assert!(
                        retry_after,
                        "a 503 without Retry-After during the rebalance"
                    );
                    pass_unavailable += 1;
                    continue;
                }
                let got = (s, v["status"].as_str().unwrap_or_default().to_owned());
                assert_eq!(
                    &got, &from_a[*k],
                    "a wrong claim answer during the rebalance"
                );
                answered += 1;
            }
            for p in &payers {
                let path = format!("/v1/payers/{p}/kpis?window=daily&limit=100");
                let (s, retry_after, v) = get_full(addr, &path, &t).await;
                if s == 503 {
                    assert!(
                        retry_after,
                        "a 503 without Retry-After during the rebalance"
                    );
                    pass_unavailable += 1;
                    continue;
                }
                assert_eq!(s, 200, "payer KPIs during the rebalance: {v}");
                assert_eq!(&v, &kpis_a[p].1[0], "other payer KPIs during the rebalance");
                answered += 1;
            }
        }
        passes += 1;
        unavailable += pass_unavailable;
        if !c_serving {
            passes_before_c += 1;
        } else if pass_unavailable == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rebalance did not settle in 120 s ({pass_unavailable} answers 503 in the last pass)"
        );
    }
    eprintln!(
        "rebalance: a {:?} c {:?}; {passes} passes ({passes_before_c} before C served), {answered} right answers, {unavailable} 503 + Retry-After",
        a.served.served(),
        c.served.served(),
    );
    assert!(passes_before_c >= 1, "no pass ran during the rebalance");
    // Settled: every key, every payer, the same from both.
    assert_eq!(answers(&http_a, &keys, &t).await, from_a);
    assert_eq!(answers(&http_c, &keys, &t).await, from_a);
    assert_eq!(kpi_answers(&http_a, &payers, &t).await, kpis_a);
    assert_eq!(kpi_answers(&http_c, &payers, &t).await, kpis_a);
    c.shutdown().await;
    a.shutdown().await;
}

async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
