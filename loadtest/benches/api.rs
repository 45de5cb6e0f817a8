//! Load test of the read API: `GET /v1/claims/{id}` over HTTP/1.1 keep-alive connections at a
//! paced rate, the server on one core (a current-thread runtime), latency measured by the client
//! from each request's scheduled send time (so a stalled server is not hidden: no coordinated
//! omission). Every request carries a bearer token (ES256), verified on each request.
//!
//! Run: `cargo bench --bench api [-- --rate 10000 --seconds 10 --conns 32 --claims 20000]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use claimwatch::api::config::{ApiConfig, JwtConfig};
use claimwatch::api::dto::SourceTopics;
use claimwatch::api::{self, ApiState, Registry, Views};
use claimwatch::config::CoreConfig;
use claimwatch::core::{Engine, Partition};
use claimwatch::model::fixtures::{ack, claim, remit};
use claimwatch::model::{AdjustmentGroup::*, InputEvent};
use claimwatch::refdata::RefData;
use claimwatch::state::PartitionStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn arg(name: &str, default: u64) -> u64 {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/api")
        .join(name)
}

fn main() {
    let rate = arg("--rate", 10_000);
    let seconds = arg("--seconds", 10);
    let conns = arg("--conns", 32);
    let claims = arg("--claims", 20_000) as usize;

    let engine = Engine::new(CoreConfig::default(), RefData::shared());
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &engine).unwrap();
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    let ids: Vec<String> = (0..claims).map(|i| format!("PCN{i:08}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let day = format!("2024-03-{:02}", 1 + i % 20);
        let evs = [
            InputEvent::Claim(claim(id, &day)),
            InputEvent::Ack(ack(id, &format!("2024-03-{:02}", 2 + i % 20), "A2", "20")),
            InputEvent::Remit(remit(
                id,
                &format!("2024-04-{:02}", 1 + i % 20),
                "1",
                50_000,
                &[(CO, "45", 40_000), (PR, "2", 10_000)],
            )),
        ];
        for (j, e) in evs.iter().enumerate() {
            p.apply(&engine, e, "in", (i * 3 + j) as i64, &mut out, &mut costs);
            out.clear();
            costs.clear();
        }
    }
    let registry = Registry::new(1);
    registry.ready(0, Views::of(&p));
    let cfg = ApiConfig {
        enabled: true,
        jwt: JwtConfig {
            algorithm: "ES256".into(),
            issuer: "https://idp.test".into(),
            audience: "claimwatch".into(),
            public_key_files: vec![fixture("issuer-es256.pub")],
            ..JwtConfig::default()
        },
        rate_limit_per_s: 1_000_000,
        rate_limit_burst: 1_000_000,
        ..ApiConfig::default()
    };
    let topics = SourceTopics {
        claims: "ehr.claims".into(),
        acks: "x12.277ca".into(),
        remits: "x12.835".into(),
    };
    let state = Arc::new(ApiState::new(&cfg, registry, engine, topics).unwrap());
    let app: Router = api::full_router(
        Router::new(),
        Some(api::router(state, Duration::from_secs(5))),
    );
    let pem = std::fs::read(fixture("issuer-es256.key")).unwrap();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &serde_json::json!({"sub": "bench", "iss": "https://idp.test", "aud": "claimwatch",
            "exp": chrono::Utc::now().timestamp() + 3600, "scope": "claims:read"}),
        &jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap(),
    )
    .unwrap();

    // The server: one thread.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(l.local_addr().unwrap()).unwrap();
            api::server::serve(l, app, None, Duration::from_secs(5), std::future::pending())
                .await
                .unwrap();
        });
    });
    let addr = addr_rx.recv().unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ids = Arc::new(ids);
    let token = Arc::new(token);
    let (lat, late, errors, elapsed) = rt.block_on(async move {
        let per_conn = Duration::from_secs_f64(conns as f64 / rate as f64);
        let total_per_conn = rate * seconds / conns;
        let start = Instant::now() + Duration::from_millis(200);
        let mut tasks = Vec::new();
        for c in 0..conns {
            let (ids, token) = (Arc::clone(&ids), Arc::clone(&token));
            tasks.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                let mut lat = Vec::with_capacity(total_per_conn as usize);
                let mut late = Vec::with_capacity(total_per_conn as usize);
                let mut errors = 0u64;
                let mut buf = vec![0u8; 64 * 1024];
                let offset = per_conn.mul_f64(c as f64 / conns as f64);
                for n in 0..total_per_conn {
                    let at = start + offset + per_conn.mul_f64(n as f64);
                    // tokio's timer has millisecond resolution: sleep to just before the
                    // scheduled time, then yield until it, so the send is not up to a
                    // millisecond late (that lateness would be counted as latency).
                    if let Some(early) = at.checked_sub(Duration::from_millis(2)) {
                        tokio::time::sleep_until(early.into()).await;
                    }
                    while Instant::now() < at {
                        tokio::task::yield_now().await;
                    }
                    let sent = Instant::now();
                    late.push(sent - at);
                    let id = &ids[((n * conns + c) as usize * 7919) % ids.len()];
                    let req = format!(
                        "GET /v1/claims/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
                    );
                    s.write_all(req.as_bytes()).await.unwrap();
                    // Read one response: headers, then Content-Length bytes.
                    let mut have = 0usize;
                    loop {
                        let k = s.read(&mut buf[have..]).await.unwrap();
                        assert!(k > 0, "server closed");
                        have += k;
                        let text = &buf[..have];
                        if let Some(h) = text.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = std::str::from_utf8(&text[..h]).unwrap();
                            let len: usize = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse().unwrap())
                                })
                                .unwrap_or(0);
                            if have >= h + 4 + len {
                                if !head.starts_with("HTTP/1.1 200") {
                                    errors += 1;
                                }
                                break;
                            }
                        }
                    }
                    lat.push(at.elapsed());
                }
                (lat, late, errors)
            }));
        }
        let mut all = Vec::new();
        let mut all_late = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, late, e) = t.await.unwrap();
            all.extend(l);
            all_late.extend(late);
            errors += e;
        }
        (all, all_late, errors, start.elapsed())
    });
    let mut lat = lat;
    lat.sort_unstable();
    let q = |x: f64| lat[((lat.len() as f64 * x) as usize).min(lat.len() - 1)];
    println!(
        "GET /v1/claims/{{id}}: {} requests in {:.1} s ({:.0}/s offered {rate}/s, {conns} connections, server on 1 thread), {errors} errors",
        lat.len(),
        elapsed.as_secs_f64(),
        lat.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency p50 {:?}  p90 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        lat[lat.len() - 1]
    );
    // How far behind schedule the client sent: latency is measured from the scheduled time, so a
    // late client adds its lateness to every figure above (and a server that stalls the client
    // shows up here too).
    let mut late = late;
    late.sort_unstable();
    let l = |x: f64| late[((late.len() as f64 * x) as usize).min(late.len() - 1)];
    println!(
        "send lateness (client) p50 {:?}  p99 {:?}  max {:?}",
        l(0.5),
        l(0.99),
        late[late.len() - 1]
    );
}
