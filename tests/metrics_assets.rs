//! The operations assets agree with the metrics the code exports:
//! - every metric name in the Grafana dashboard and the alert rules is in a scrape of a `Metrics`
//!   that observed a generated population (and every dashboard query uses nothing else);
//! - the README's metric table lists exactly the exported families;
//! - with promtool (Debian's `prometheus` package, installed by
//!   `tests/support/install-prometheus.sh`): `promtool check metrics` on the scrape, the alert rules
//!   and every dashboard query parse, and `promtool test rules` passes;
//! - the Kubernetes manifests validate against the Kubernetes schemas (`kubernetes-validate`) and the
//!   compose file against the compose specification (`check-jsonschema`), from PyPI
//!   (`tests/support/deploy-tools.sh`).
//!
//! When a tool cannot be installed (no root, no registry), its check is skipped with a note,
//! except under `CI`, where it fails.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use claimwatch::metrics::exposition::{parse, Scrape};
use claimwatch::metrics::sample::sample_outputs;
use claimwatch::metrics::{Metrics, Rebalance, RestoreSource, Stage};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A `Metrics` that observed a generated population and every runtime hook once.
fn exercised() -> Metrics {
    // `claimwatch_heap_live_bytes` is registered only when the binary counts its heap; switch the
    // counting on so that every family is exported (this test binary's allocator is not the
    // counting one, so the gauge stays 0).
    claimwatch::memory::count_heap();
    let m = Metrics::new().unwrap();
    for o in &sample_outputs(80, 21).outputs {
        m.observe_output(o);
    }
    m.register_inputs(["ehr.claims", "ehr.encounters", "x12.277ca", "x12.835"]);
    m.topic("ehr.claims").consumed.inc_by(10);
    m.topic("claimwatch.changelog.claims").produced.inc();
    for s in Stage::ALL {
        m.observe_stage(s, Duration::from_micros(30));
    }
    m.checkpoint_done(Duration::from_millis(8), 4096);
    m.checkpoint_failed();
    m.recovery();
    m.commit(true);
    m.commit(false);
    m.rebalance(Rebalance::Assign);
    m.rebalance(Rebalance::Revoke);
    m.set_assigned_partitions(4);
    m.consume_error();
    m.delivery_error();
    m.set_state_entries("claims", 0, 120);
    m.set_state_entries("members", 0, 80);
    m.set_state_disk_bytes(1 << 20);
    m.restored(RestoreSource::Local, 0);
    m.restored(RestoreSource::Changelog, 200);
    m.set_model_quality("readmission", 0.68, 0.04, 0.05);
    m.set_ready(true);
    let stats: rdkafka::Statistics = serde_json::from_value(serde_json::json!({
        "client_type": "consumer",
        "msg_cnt": 3,
        "msg_size": 900,
        "topics": {"ehr.claims": {"topic": "ehr.claims", "partitions": {
            "0": {"partition": 0, "desired": true, "consumer_lag": 42}
        }}}
    }))
    .unwrap_or_else(|_| {
        // Older/newer rdkafka may require every field: build it by hand instead.
        let mut s = rdkafka::Statistics {
            client_type: "consumer".into(),
            ..Default::default()
        };
        let mut t = rdkafka::statistics::Topic {
            topic: "ehr.claims".into(),
            ..Default::default()
        };
        t.partitions.insert(
            0,
            rdkafka::statistics::Partition {
                desired: true,
                consumer_lag: 42,
                ..Default::default()
            },
        );
        s.topics.insert("ehr.claims".into(), t);
        s
    });
    m.observe_librdkafka_stats(&stats);
    m
}

fn scrape() -> (String, Scrape) {
    let text = exercised().render();
    let s = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    (text, s)
}

/// `claimwatch_*` metric names in a text (recording rules, `claimwatch:...`, are not metrics).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("claimwatch_") {
        let start = i + at;
        let boundary = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            out.insert(text[start..end].to_owned());
        }
        i = end;
    }
    out
}

/// Every `expr` of the dashboard's panels (rows' nested panels included).
fn dashboard_queries() -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        if let Some(panels) = v.get("panels").and_then(|p| p.as_array()) {
            for p in panels {
                let title = p["title"].as_str().unwrap_or("").to_owned();
                for t in p["targets"].as_array().into_iter().flatten() {
                    if let Some(e) = t["expr"].as_str() {
                        out.push((title.clone(), e.to_owned()));
                    }
                }
                walk(p, out);
            }
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/claimwatch.json")).unwrap();
    let mut out = Vec::new();
    walk(&v, &mut out);
    out
}

/// The identifiers of a PromQL expression outside strings, label matchers, ranges and grouping
/// clauses: functions, operators and metric names.
fn promql_identifiers(expr: &str) -> BTreeSet<String> {
    let mut cleaned = String::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut in_str = false;
    for c in expr.chars() {
        match c {
            '"' if depth_brace == 0 => in_str = !in_str,
            _ if in_str => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            c => cleaned.push(c),
        }
    }
    // Tokens, dropping the label lists of `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`.
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '$';
    let chars: Vec<char> = cleaned.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        if !ident(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && ident(chars[i]) {
            i += 1;
        }
        let t: String = chars[start..i].iter().collect();
        if matches!(
            t.as_str(),
            "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
        ) {
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            if j < chars.len() && chars[j] == '(' {
                while j < chars.len() && chars[j] != ')' {
                    j += 1;
                }
                i = j;
            }
            continue;
        }
        if !t.starts_with(|c: char| c.is_ascii_digit()) {
            out.insert(t);
        }
    }
    out
}

const PROMQL_WORDS: [&str; 22] = [
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "increase",
    "delta",
    "deriv",
    "histogram_quantile",
    "time",
    "absent",
    "clamp_min",
    "clamp_max",
    "topk",
    "bottomk",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "vector",
];

#[test]
fn dashboard_and_alerts_use_only_exported_metrics() {
    let (_, s) = scrape();
    let names = s.names();
    let queries = dashboard_queries();
    assert!(queries.len() >= 40, "{} queries", queries.len());
    let mut problems = Vec::new();
    for (title, q) in &queries {
        for name in metric_names(q) {
            if !names.contains(name.as_str()) {
                problems.push(format!("dashboard panel {title:?}: {name} is not exported"));
            }
        }
        for id in promql_identifiers(q) {
            let known = PROMQL_WORDS.contains(&id.as_str())
                || id == "$__rate_interval"
                || names.contains(id.as_str());
            if !known {
                problems.push(format!("dashboard panel {title:?}: {id:?} in {q}"));
            }
        }
    }
    let alerts = read("deploy/prometheus/alerts.yml");
    let used = metric_names(&alerts);
    assert!(used.len() >= 10, "{used:?}");
    for name in used {
        if !names.contains(name.as_str()) {
            problems.push(format!("alerts.yml: {name} is not exported"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dashboard_has_the_four_rows() {
    let v: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/claimwatch.json")).unwrap();
    let rows: Vec<&str> = v["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(
        rows,
        [
            "Pipeline health",
            "Revenue cycle",
            "Readmissions and care management",
            "Model"
        ]
    );
    let mut ids = BTreeSet::new();
    // Every grid cell is covered by at most one panel (Grafana would push overlapping panels
    // around, out of their rows).
    let mut cells = std::collections::BTreeMap::new();
    for p in v["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_i64().unwrap()), "duplicate panel id");
        let g = &p["gridPos"];
        let at = |k: &str| g[k].as_i64().unwrap();
        for y in at("y")..at("y") + at("h") {
            for x in at("x")..at("x") + at("w") {
                let title = p["title"].as_str().unwrap_or("");
                if let Some(other) = cells.insert((x, y), title) {
                    panic!("panels {other:?} and {title:?} overlap at x={x}, y={y}");
                }
            }
        }
    }
}

#[test]
fn readme_documents_every_exported_family() {
    let (_, s) = scrape();
    let readme = read("README.md");
    let section = readme
        .split("\n## Metrics")
        .nth(1)
        .expect("README has a \"## Metrics\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let documented: BTreeSet<String> = section
        .lines()
        .filter(|l| l.starts_with("| `claimwatch_"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect();
    let exported: BTreeSet<String> = s.types.keys().cloned().collect();
    let missing: Vec<_> = exported.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&exported).collect();
    assert!(missing.is_empty(), "not in README: {missing:?}");
    assert!(stale.is_empty(), "in README but not exported: {stale:?}");
}

/// Runs an install script that prints nothing useful; true when it succeeded.
fn install(script: &str) -> bool {
    Command::new("bash")
        .arg(root().join(script))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn skip_or_fail(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required under CI");
    }
    eprintln!("SKIPPED: {what} is not available");
}

fn promtool() -> Option<PathBuf> {
    let found = || {
        Command::new("promtool")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found() || (install("tests/support/install-prometheus.sh") && found()) {
        Some(PathBuf::from("promtool"))
    } else {
        None
    }
}

fn run_ok(cmd: &mut Command, stdin: Option<&[u8]>) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_scrape_the_rules_and_the_dashboard_queries() {
    let Some(promtool) = promtool() else {
        skip_or_fail("promtool");
        return;
    };
    let (text, _) = scrape();
    // Lints names, types, units and help; prints the problems and fails on any.
    let lint = run_ok(
        Command::new(&promtool).args(["check", "metrics"]),
        Some(text.as_bytes()),
    );
    assert!(lint.trim().is_empty(), "promtool check metrics:\n{lint}");

    let rules = root().join("deploy/prometheus");
    run_ok(
        Command::new(&promtool)
            .args(["check", "rules", "alerts.yml"])
            .current_dir(&rules),
        None,
    );
    run_ok(
        Command::new(&promtool)
            .args(["test", "rules", "alerts_test.yml"])
            .current_dir(&rules),
        None,
    );

    // Every dashboard query parses as PromQL: check them as recording rules.
    let dir = tempfile::tempdir().unwrap();
    let mut y = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, q)) in dashboard_queries().iter().enumerate() {
        let q = q.replace("$__rate_interval", "5m");
        y.push_str(&format!(
            "      - record: dashboard:panel_{i}\n        expr: {}\n",
            serde_json::to_string(&q).unwrap()
        ));
    }
    let path = dir.path().join("dashboard.yml");
    std::fs::write(&path, y).unwrap();
    run_ok(
        Command::new(&promtool).args(["check", "rules"]).arg(&path),
        None,
    );
}

#[test]
fn manifests_and_compose_file_validate() {
    let out = Command::new("bash")
        .arg(root().join("tests/support/deploy-tools.sh"))
        .stderr(Stdio::inherit())
        .output();
    let bin = match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => {
            skip_or_fail("kubernetes-validate / check-jsonschema (PyPI)");
            return;
        }
    };
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 4);
    let text = run_ok(
        Command::new(bin.join("kubernetes-validate"))
            .args(["--strict", "-k", "1.30.0"])
            .args(&manifests),
        None,
    );
    for kind in ["statefulset", "service", "configmap"] {
        assert!(text.contains(&format!("resource {kind}/")), "{text}");
    }
    run_ok(
        Command::new(bin.join("check-jsonschema"))
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(root().join("deploy/docker-compose.yml")),
        None,
    );
    // The probes and scrape annotations point at the endpoints the server serves.
    let sts = read("deploy/k8s/statefulset.yaml");
    for needle in [
        "/health/live",
        "/health/ready",
        "prometheus.io/scrape",
        "9464",
        "volumeClaimTemplates",
        // Else Kubernetes sets CLAIMWATCH_PORT & co. from the Service named claimwatch.
        "enableServiceLinks: false",
    ] {
        assert!(sts.contains(needle), "statefulset.yaml lacks {needle}");
    }
    // Each pod is scraped once: through its own annotations, or through the one Service the
    // ServiceMonitor selects, which carries no scrape annotation of its own.
    let services = read("deploy/k8s/service.yaml");
    assert!(
        !services.contains("prometheus.io/scrape"),
        "a Service is annotated for scraping too"
    );
    let monitor = read("deploy/k8s-operator/servicemonitor.yaml");
    assert!(monitor.contains("app.kubernetes.io/component: metrics"));
    assert_eq!(
        services
            .matches("app.kubernetes.io/component: metrics")
            .count(),
        1,
        "exactly one Service is selected by the ServiceMonitor"
    );
}
