//! `claimwatch demo` end to end (mock cluster), checked from the outside: it finishes, its summary
//! agrees with replay, and no member id, claim id or member name from the generated input appears
//! anywhere in what it prints or logs (info level and above, JSON logs).

use std::process::Command;

#[test]
fn demo_matches_replay_and_logs_no_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_claimwatch"))
        .args([
            "--log-json",
            "demo",
            "--members",
            "150",
            "--no-progress",
            "--dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stderr}");
    assert!(
        stdout.contains("summary matches `claimwatch replay` on the same input: yes"),
        "{stdout}"
    );
    // The live figures, read from the service's metrics, end with every claim in a status.
    let live = stdout
        .lines()
        .find(|l| l.starts_with("live figures at the end"))
        .unwrap_or_else(|| panic!("no live figures:\n{stdout}"));
    for part in [
        "claims: ",
        "PAID ",
        "denial rate ",
        "adjudications",
        "readmissions ",
    ] {
        assert!(live.contains(part), "{part} missing: {live}");
    }
    let mut ids = std::collections::BTreeSet::new();
    for (file, fields) in [
        ("ehr.claims.jsonl", &["claim_id", "member_id"][..]),
        ("ehr.encounters.jsonl", &["member_id", "encounter_id"][..]),
    ] {
        let text = std::fs::read_to_string(dir.path().join("input").join(file)).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            for f in fields {
                if let Some(id) = v[*f].as_str() {
                    ids.insert(id.to_owned());
                }
            }
            for f in ["member_name", "patient_name", "first_name", "last_name"] {
                if let Some(name) = v[f].as_str() {
                    ids.insert(name.to_owned());
                }
            }
        }
    }
    assert!(ids.len() > 300, "a real population: {}", ids.len());
    for id in &ids {
        // Whole tokens only: ids like C000001 must not match inside other numbers.
        for text in [&stdout, &stderr] {
            let leaked = text.match_indices(id.as_str()).any(|(i, _)| {
                let before = text[..i].chars().next_back();
                let after = text[i + id.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric())
                    && !after.is_some_and(|c| c.is_ascii_alphanumeric())
            });
            assert!(
                !leaked,
                "an identifier from the input appears in the demo's output or logs"
            );
        }
    }
}
