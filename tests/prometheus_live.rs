//! A real Prometheus server scrapes a running claimwatch, and every query of the operations
//! assets is evaluated through Prometheus's HTTP API:
//! - claimwatch runs against a real Kafka-protocol broker (Tansu) and is fed a generated
//!   population plus a few bad records (so the dead-letter series exist), with librdkafka's
//!   statistics every second (so the consumer lag series exist);
//! - Prometheus (Debian's `prometheus` package, installed by `tests/support/install-prometheus.sh`)
//!   scrapes it every second and loads `deploy/prometheus/alerts.yml`, evaluating the rules every
//!   second;
//! - every dashboard panel query answers with at least one series, and with at least one finite
//!   value unless it is listed in [`NO_FINITE_VALUE_YET`] with the reason;
//! - the run moved what the panels watch ([`EXERCISED`]: rejections, denials, readmissions,
//!   high-risk alerts, dead letters, checkpoints, ...), and the department breakdowns carry real
//!   departments;
//! - every alert and recording rule is loaded and healthy, its expression evaluates, and every
//!   vector selector in it (metric name and label matchers, found by walking the parsed PromQL)
//!   selects data: an alert that is silent because it watches a typo'd metric fails here.
//!
//! Queries are evaluated only once the scrapes show every input consumed. When Prometheus cannot
//! be installed (no root, no registry) the test is skipped with a note, except under `CI` or with
//! `CLAIMWATCH_REQUIRE_TOOLS` set, where it fails.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use claimwatch::codec::Format;
use claimwatch::runtime::{produce, topics, Service};
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{walk_expr, ExprVisitor};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::Value;
use support::*;

const PARTITIONS: u32 = 2;
const MEMBERS: usize = 150;

/// Dashboard queries not asserted to return data, with the reason. Empty: every panel must answer.
const SKIPPED: &[(&str, &str)] = &[];

/// Dashboard queries that answer (their series exist) but only with NaN in a run like this one,
/// with the reason. Every other query must return at least one finite value.
const NO_FINITE_VALUE_YET: &[(&str, &str)] = &[
    (
        "Feature drift (max PSI)",
        "claimwatch_model_feature_drift_psi is NaN while the scoring models carry no training \
         distribution: the shipped default models were trained before `train` recorded one",
    ),
    (
        "Feature drift: PSI by feature (top 8)",
        "claimwatch_model_feature_psi: as the max PSI",
    ),
];

/// What the generated population and the bad records must have moved, so that the panels show
/// real numbers and not only zeros: (what, a query that must be above zero).
const EXERCISED: &[(&str, &str)] = &[
    (
        "payer KPI windows",
        "sum(claimwatch_payer_kpi_windows_total)",
    ),
    (
        "rolling model AUC on matured labels",
        "max(claimwatch_model_auc_ratio{model=\"denial\"})",
    ),
    (
        "rebalances",
        "sum(claimwatch_kafka_rebalances_total{event=\"assign\"})",
    ),
    (
        "checkpoints",
        "sum(claimwatch_checkpoint_runs_total{outcome=\"ok\"})",
    ),
    (
        "commits",
        "sum(claimwatch_kafka_commits_total{outcome=\"ok\"})",
    ),
    (
        "dead letters",
        "sum(claimwatch_pipeline_dead_letters_total)",
    ),
    ("state entries", "sum(claimwatch_state_entries)"),
    ("state on disk", "sum(claimwatch_state_disk_bytes)"),
    (
        "acknowledgments",
        "sum(claimwatch_claims_time_to_ack_seconds_count)",
    ),
    (
        "payments",
        "sum(claimwatch_claims_time_to_payment_seconds_count)",
    ),
    (
        "rejections",
        "sum(claimwatch_claims_status_transitions_total{status=\"REJECTED\"})",
    ),
    ("denials", "sum(claimwatch_revenue_denials_total)"),
    (
        "denied dollars",
        "sum(claimwatch_revenue_denied_dollars_total)",
    ),
    (
        "first-pass outcomes",
        "sum(claimwatch_claims_first_pass_total)",
    ),
    ("open A/R", "sum(claimwatch_revenue_ar_open_claims)"),
    (
        "readmissions",
        "sum(claimwatch_readmissions_events_total{action=\"DETECTED\"})",
    ),
    (
        "readmission intervals",
        "sum(claimwatch_readmissions_interval_seconds_count)",
    ),
    (
        "high-risk discharge alerts",
        "sum(claimwatch_care_high_risk_alerts_total)",
    ),
    ("scores", "sum(claimwatch_model_scores_total)"),
];

/// Series that exist but that nothing in this build moves yet, with the reason: (query, reason).
/// The test fails once one moves, so that it joins [`EXERCISED`].
const NOT_EXERCISED_YET: &[(&str, &str)] = &[];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn tools_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("CLAIMWATCH_REQUIRE_TOOLS").is_some()
}

/// `/usr/bin/prometheus` (the server), installed with Debian's package when missing.
fn prometheus_binary() -> Option<PathBuf> {
    let found = || {
        Command::new("prometheus")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let installed = || {
        Command::new("bash")
            .arg(root().join("tests/support/install-prometheus.sh"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    (found() || (installed() && found())).then(|| PathBuf::from("prometheus"))
}

/// A Prometheus server on a free port with its own config and storage, killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes `target` every second and evaluates `alerts.yml` every second.
    fn start(bin: &Path, target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rules = root().join("deploy/prometheus/alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules:?}\n\
             scrape_configs:\n  - job_name: claimwatch\n    static_configs:\n      - targets: [{target:?}]\n",
            rules = rules.display().to_string(),
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let addr = free_http_addr();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        let mut p = Self { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", p.log());
            }
            if p.get_raw("/-/ready").is_some_and(|(code, _)| code == 200) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn get_raw(&self, path: &str) -> Option<(u16, String)> {
        self.request(path, &[])
    }

    fn request(&self, path: &str, query: &[(&str, &str)]) -> Option<(u16, String)> {
        let mut req = ureq::get(format!("http://{}{path}", self.addr))
            .config()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build();
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let mut resp = req.call().ok()?;
        let code = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().ok()?;
        Some((code, body))
    }

    /// A GET of the HTTP API: its `data`, or Prometheus's error.
    fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let (code, body) = self
            .request(path, query)
            .ok_or_else(|| format!("GET {path}: no answer"))?;
        let v: Value =
            serde_json::from_str(&body).map_err(|e| format!("GET {path}: {code} {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!(
                "{}: {}",
                v["errorType"].as_str().unwrap_or("?"),
                v["error"].as_str().unwrap_or(&body)
            ));
        }
        Ok(v["data"].clone())
    }

    /// An instant query's result vector (a scalar answer becomes one sample).
    fn query(&self, q: &str) -> Result<Vec<f64>, String> {
        let data = self.api("/api/v1/query", &[("query", q)])?;
        let value = |v: &Value| {
            v.as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| value(&s["value"][1]))
                .collect()),
            Some("scalar") => Ok(vec![value(&data["result"][1])]),
            other => Err(format!("unexpected result type {other:?}")),
        }
    }

    /// The single value of a query that sums something, or `None`.
    fn value(&self, q: &str) -> Option<f64> {
        self.query(q).ok().and_then(|v| v.first().copied())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every `expr` of the dashboard's panels, with the panel's title, Grafana's variables replaced:
/// `$__rate_interval` by 1m (four scrape intervals would do; a minute covers the whole run),
/// `$__interval` by 5s, `$__range` by 1h, and each template variable by its "All" value.
fn dashboard_queries() -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(&read("deploy/grafana/claimwatch.json")).unwrap();
    let mut vars: Vec<(String, String)> = vec![
        ("__rate_interval".into(), "1m".into()),
        ("__interval".into(), "5s".into()),
        ("__range".into(), "1h".into()),
    ];
    for t in v["templating"]["list"].as_array().into_iter().flatten() {
        if t["type"] == "datasource" {
            continue;
        }
        let name = t["name"].as_str().unwrap().to_owned();
        let all = t["allValue"]
            .as_str()
            .unwrap_or_else(|| panic!("template variable {name} has no allValue"));
        vars.push((name, all.to_owned()));
    }
    // Longest names first, so that `$department` never eats the start of `$department_x`.
    vars.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    fn walk(v: &Value, vars: &[(String, String)], out: &mut Vec<(String, String)>) {
        for p in v["panels"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    let mut e = e.to_owned();
                    for (name, value) in vars {
                        e = e
                            .replace(&format!("${{{name}}}"), value)
                            .replace(&format!("${name}"), value);
                    }
                    assert!(!e.contains('$'), "unreplaced variable in {e}");
                    out.push((title.clone(), e));
                }
            }
            walk(p, vars, out);
        }
    }
    let mut out = Vec::new();
    walk(&v, &vars, &mut out);
    out
}

/// The template variables' `label_values(metric, label)` queries, as (metric, label).
fn template_label_values() -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(&read("deploy/grafana/claimwatch.json")).unwrap();
    let mut out = Vec::new();
    for t in v["templating"]["list"].as_array().into_iter().flatten() {
        let Some(q) = t["definition"].as_str() else {
            continue;
        };
        let args = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("template query {q}: only label_values(metric, label)"));
        let (metric, label) = args.split_once(',').unwrap();
        out.push((metric.trim().to_owned(), label.trim().to_owned()));
    }
    out
}

/// The vector selectors of a PromQL expression (those under range selectors included), each as
/// an instant selector without offset or `@`.
fn selectors(expr: &str) -> Result<Vec<String>, String> {
    struct Collect(Vec<String>);
    impl ExprVisitor for Collect {
        type Error = String;
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, String> {
            let vs: &VectorSelector = match e {
                Expr::VectorSelector(vs) => vs,
                Expr::MatrixSelector(m) => &m.vs,
                _ => return Ok(true),
            };
            let mut vs = vs.clone();
            vs.offset = None;
            vs.at = None;
            self.0.push(vs.to_string());
            Ok(true)
        }
    }
    let ast = parser::parse(expr)?;
    let mut c = Collect(Vec::new());
    walk_expr(&mut c, &ast)?;
    Ok(c.0)
}

/// The rule groups and the number of rules (`- alert:` / `- record:`) of a rules file.
fn rule_file_outline(text: &str) -> (BTreeSet<String>, usize) {
    let mut groups = BTreeSet::new();
    let mut rules = 0;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(name) = t.strip_prefix("- name:") {
            groups.insert(name.trim().trim_matches('"').to_owned());
        }
        if t.starts_with("- alert:") || t.starts_with("- record:") {
            rules += 1;
        }
    }
    (groups, rules)
}

/// Bad records of three kinds (decode, schema, validation), so that the dead-letter series exist.
fn send_bad_records(bootstrap: &str) -> u64 {
    let mut negative = claimwatch::model::fixtures::claim("BAD-1", "2024-03-01");
    negative.billed_cents = -5;
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("ehr.claims", b"\xde\xad\xbe\xef garbage".to_vec()),
        ("ehr.claims", serde_json::to_vec(&negative).unwrap()),
        ("x12.835", vec![0, 0, 0, 0x30, 0x39, 1, 2]),
        ("ehr.encounters", b"{\"not\": \"an encounter\"}".to_vec()),
    ];
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (i, (topic, payload)) in bad.iter().enumerate() {
        producer
            .send(
                BaseRecord::to(topic)
                    .key("k")
                    .payload(payload)
                    .partition(i as i32 % PARTITIONS as i32),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    bad.len() as u64
}

fn wait_until(what: &str, timeout: Duration, prom: &Prometheus, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\nprometheus log:\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_evaluates_every_dashboard_query_and_alert_rule() {
    let started = Instant::now();
    let Some(bin) = prometheus_binary() else {
        assert!(
            !tools_required(),
            "the prometheus server is required under CI / CLAIMWATCH_REQUIRE_TOOLS"
        );
        eprintln!("SKIPPED: the prometheus server is not available");
        return;
    };
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    claimwatch::generate::write::generate_to_dir(MEMBERS, 17, &input, Format::Json).unwrap();
    let mut config = config(&broker, "promlive", &dir.path().join("state"), PARTITIONS);
    let http = free_http_addr();
    config.http_listen = Some(http.clone());
    // The service runs while the inputs are produced (so Prometheus sees the counters grow), so
    // a claim partition may well process 277CAs and 835s before the claims they answer: the
    // acknowledgment/payment-time, variance and department panels must fill whatever the order
    // (a defect of an earlier version, which observed them only when the answer followed).
    // Lag series from librdkafka's statistics every second instead of every 15 s.
    config
        .consumer
        .insert("statistics.interval.ms".into(), "1000".into());
    topics::create(&config).await.unwrap();
    let service = Service::start(config.clone()).await.unwrap();

    // Prometheus scrapes from before the first record, so that counters are seen to grow.
    let target = http.clone();
    let prom = tokio::task::spawn_blocking(move || {
        let prom = Prometheus::start(&bin, &target);
        wait_until(
            "the claimwatch target up",
            Duration::from_secs(30),
            &prom,
            || prom.value("up{job=\"claimwatch\"}") == Some(1.0),
        );
        prom
    })
    .await
    .unwrap();
    eprintln!("prometheus scraping after {:.1?}", started.elapsed());

    let produced = produce::produce_dir(&config, &input, Format::Avro, produce::Pace::Unlimited)
        .await
        .unwrap();
    let b = broker.bootstrap.clone();
    let bad = tokio::task::spawn_blocking(move || send_bad_records(&b))
        .await
        .unwrap();
    let inputs = produced.total() + bad;

    let status = std::sync::Arc::clone(&service.status);
    let (prom, failures) = tokio::task::spawn_blocking(move || {
        // Every input consumed, as the scrapes show it (the internal encounter-cost topic is
        // consumed too, hence the topics), then the outputs settle.
        let q = "sum(claimwatch_pipeline_consumed_records_total{topic=~\"ehr[.].*|x12[.].*\"})";
        wait_until(
            "a scrape with every input consumed",
            Duration::from_secs(120),
            &prom,
            || prom.value(q).is_some_and(|v| v >= inputs as f64),
        );
        eprintln!(
            "{inputs} inputs consumed ({} counted by the service) after {:.1?}",
            status.consumed.load(Ordering::Relaxed),
            started.elapsed()
        );
        let q = "sum(claimwatch_pipeline_produced_records_total)";
        let mut last = (f64::NAN, Instant::now());
        wait_until(
            "the outputs to settle",
            Duration::from_secs(60),
            &prom,
            || {
                let v = prom.value(q).unwrap_or(f64::NAN);
                if v != last.0 {
                    last = (v, Instant::now());
                }
                last.1.elapsed() > Duration::from_secs(3)
            },
        );
        wait_until(
            "consumer lag series",
            Duration::from_secs(30),
            &prom,
            || {
                prom.value("count(claimwatch_kafka_consumer_lag_records)")
                    .is_some_and(|n| n > 0.0)
            },
        );
        std::thread::sleep(Duration::from_secs(3));
        let mut failures = check(&prom);
        // Idle now: the last-success time keeps up with the checkpoint ticks (it stood still
        // before, and ClaimwatchCheckpointStale paged on any quiet feed).
        std::thread::sleep(Duration::from_secs(6));
        let q = "time() - max(claimwatch_checkpoint_last_success_timestamp_seconds)";
        let age = prom.value(q);
        if !age.is_some_and(|a| a < 5.0) {
            failures.push(format!(
                "idle for 9 s, the last checkpoint success is {age:?} s old: an idle partition reads as stale"
            ));
        }
        (prom, failures)
    })
    .await
    .unwrap();
    service.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} problem(s):\n  {}\nprometheus log:\n{}",
        failures.len(),
        failures.join("\n  "),
        prom.log()
    );
    eprintln!("checked in {:.1?}", started.elapsed());
}

/// Every check against the running Prometheus; returns the problems found.
fn check(prom: &Prometheus) -> Vec<String> {
    let mut failures = Vec::new();

    // Dashboard panels.
    let queries = dashboard_queries();
    assert!(queries.len() >= 40, "{} dashboard queries", queries.len());
    let mut nan_only = Vec::new();
    for (title, q) in &queries {
        if SKIPPED.iter().any(|(t, _)| t == title) {
            continue;
        }
        match prom.query(q) {
            Err(e) => failures.push(format!("panel {title:?}: {q}: {e}")),
            Ok(v) if v.is_empty() => failures.push(format!("panel {title:?}: no data: {q}")),
            Ok(v) if !v.iter().any(|x| x.is_finite()) => {
                if !NO_FINITE_VALUE_YET.iter().any(|(t, _)| t == title) {
                    failures.push(format!("panel {title:?}: only NaN/Inf: {q}"));
                }
                nan_only.push(title.as_str());
            }
            Ok(_) => {
                if NO_FINITE_VALUE_YET.iter().any(|(t, _)| t == title) {
                    failures.push(format!(
                        "panel {title:?} now has finite values: remove it from NO_FINITE_VALUE_YET"
                    ));
                }
            }
        }
    }
    eprintln!(
        "{} dashboard queries evaluated; NaN only (listed): {nan_only:?}",
        queries.len()
    );
    for (metric, label) in template_label_values() {
        let matcher = format!("match[]={metric}");
        match prom.api(
            &format!("/api/v1/label/{label}/values"),
            &[("match[]", metric.as_str())],
        ) {
            Ok(v) if v.as_array().is_some_and(|a| !a.is_empty()) => {}
            Ok(_) => failures.push(format!("template variable {label}: no values ({matcher})")),
            Err(e) => failures.push(format!("template variable {label}: {e}")),
        }
    }
    // The run exercised what the panels and alerts watch: non-zero, not only present.
    for (what, q) in EXERCISED {
        match prom.value(q) {
            Some(v) if v > 0.0 => {}
            other => failures.push(format!("the run did not exercise {what}: {q} = {other:?}")),
        }
    }
    for (q, reason) in NOT_EXERCISED_YET {
        let v = prom.value(q);
        if v == Some(0.0) {
            eprintln!("not exercised yet: {q}: {reason}");
        } else {
            failures.push(format!(
                "{q} = {v:?}: move it from NOT_EXERCISED_YET to EXERCISED"
            ));
        }
    }
    // The department breakdowns carry real departments, not only the UNKNOWN series that exist
    // from the start.
    for metric in [
        "claimwatch_claims_by_status",
        "claimwatch_revenue_denials_total",
        "claimwatch_readmissions_events_total",
    ] {
        let q = format!("count by (department) ({metric}{{department!~\"UNKNOWN|other\"}})");
        match prom.query(&q) {
            Ok(v) if !v.is_empty() => {}
            Ok(_) => failures.push(format!("{metric}: no series with a known department")),
            Err(e) => failures.push(format!("{q}: {e}")),
        }
    }

    // Rules: every group of alerts.yml loaded, every rule healthy (evaluated without error).
    let (want_groups, want_rules) = rule_file_outline(&read("deploy/prometheus/alerts.yml"));
    let mut rules: Vec<(String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut problems = Vec::new();
        rules.clear();
        let data = match prom.api("/api/v1/rules", &[]) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("/api/v1/rules: {e}"));
                break;
            }
        };
        let mut groups = BTreeSet::new();
        for g in data["groups"].as_array().into_iter().flatten() {
            groups.insert(g["name"].as_str().unwrap_or("").to_owned());
            for r in g["rules"].as_array().into_iter().flatten() {
                let name = r["name"].as_str().unwrap_or("").to_owned();
                if r["health"] != "ok" {
                    problems.push(format!(
                        "rule {name}: health {} {}",
                        r["health"],
                        r["lastError"].as_str().unwrap_or("")
                    ));
                }
                rules.push((name, r["query"].as_str().unwrap_or("").to_owned()));
            }
        }
        if groups != want_groups {
            problems.push(format!(
                "rule groups loaded {groups:?}, alerts.yml has {want_groups:?}"
            ));
        }
        if rules.len() != want_rules {
            problems.push(format!(
                "{} rules loaded, alerts.yml has {want_rules}",
                rules.len()
            ));
        }
        if problems.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            failures.extend(problems);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // Rule expressions evaluate (alerts are legitimately empty when not firing), and each of
    // their selectors selects data.
    let mut checked = BTreeSet::new();
    for (name, q) in &rules {
        if let Err(e) = prom.query(q) {
            failures.push(format!("rule {name}: {q}: {e}"));
        }
        match selectors(q) {
            Err(e) => failures.push(format!("rule {name}: promql-parser: {e}: {q}")),
            Ok(sels) => {
                assert!(!sels.is_empty(), "rule {name} selects nothing: {q}");
                for s in sels {
                    if !checked.insert(s.clone()) {
                        continue;
                    }
                    match prom.query(&s) {
                        Ok(v) if v.is_empty() => {
                            failures.push(format!("rule {name}: selector {s} has no data"))
                        }
                        Ok(_) => {}
                        Err(e) => failures.push(format!("rule {name}: selector {s}: {e}")),
                    }
                }
            }
        }
    }
    eprintln!(
        "{} rules evaluated, {} distinct selectors checked",
        rules.len(),
        checked.len()
    );
    failures
}

#[test]
fn selectors_are_found_under_functions_ranges_and_operators() {
    let s = selectors(
        "sum(rate(a_total{x=\"1\"}[5m] offset 1m)) > 0.01 * sum(b) and absent(c{y=~\"z.*\"})",
    )
    .unwrap();
    assert_eq!(s, ["a_total{x=\"1\"}", "b", "c{y=~\"z.*\"}"]);
    let (groups, rules) = rule_file_outline(&read("deploy/prometheus/alerts.yml"));
    assert!(groups.len() >= 3 && rules >= 10, "{groups:?} {rules}");
}
