use std::path::Path;

use super::*;
use crate::codec::Format;
use crate::model::{Granularity, PayerCategory, PayerKpi};
use crate::replay::{ReplayOptions, Summary};

/// Generates `members`, replays them into `dir/out` and returns the replay's own summary.
fn replay_population(dir: &Path, members: usize) -> Summary {
    let input = dir.join("in");
    crate::generate::write::generate_to_dir(members, 7, &input, Format::Json).unwrap();
    let report = crate::replay::run(&ReplayOptions {
        input,
        out: dir.join("out"),
        state: None,
        config: crate::config::CoreConfig::default(),
        stop_after: None,
        close_open_windows: true,
    })
    .unwrap();
    report.summary
}

/// Counts `<tag` openings (followed by space or `>`) and `</tag>` closings.
fn balanced(html: &str, tag: &str) -> (usize, usize) {
    let open =
        html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
    (open, html.matches(&format!("</{tag}>")).count())
}

fn assert_well_formed(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    for tag in [
        "html", "head", "body", "section", "table", "tr", "th", "td", "div", "p", "svg", "h2",
        "h3", "nav", "code",
    ] {
        let (o, c) = balanced(html, tag);
        assert_eq!(o, c, "<{tag}> opened {o} times, closed {c} times");
    }
    assert!(!html.contains("<script"), "no JavaScript");
}

#[test]
fn report_of_a_replay_matches_the_replay_summary() {
    let dir = tempfile::tempdir().unwrap();
    let summary = replay_population(dir.path(), 400);
    let o = load_dir(&dir.path().join("out")).unwrap();
    let k = Kpis::compute(&o);
    // Claim figures: the report folds the lifecycle file; the summary tallied the events in
    // memory during the replay.
    let c = &summary.claims;
    assert!(c.claims > 100, "population too small to mean anything");
    assert_eq!(k.claims, c.claims);
    assert_eq!(k.adjudicated, c.adjudicated);
    assert_eq!(k.initial_denial_rate, c.initial_denial_rate);
    assert_eq!(k.final_denial_rate, c.final_denial_rate);
    assert_eq!(k.first_pass_yield, c.first_pass_yield);
    assert_eq!(k.front_door_rejection_rate, c.front_door_rejection_rate);
    assert_eq!(k.paid_cents, c.paid_cents);
    let statuses: std::collections::BTreeMap<String, u64> = {
        let mut m = std::collections::BTreeMap::new();
        for cl in &o.claims {
            *m.entry(cl.status.as_str().to_owned()).or_default() += 1;
        }
        m
    };
    assert_eq!(statuses, c.by_status);
    // Readmissions: the topic's current unplanned detections vs the summary's final state.
    let r = &summary.readmissions;
    assert_eq!(k.index_stays, Some(r.index_stays));
    assert_eq!(k.readmission_rate, Some(r.readmission_rate));
    assert_eq!(k.unplanned_readmissions, r.unplanned_readmissions);
    assert_eq!(
        o.readmissions.iter().filter(|e| e.planned).count() as u64,
        r.planned_readmissions
    );
    // Outputs counted by the summary: one score per stay and alert per stay.
    assert_eq!(
        o.readmission_risk.len() as u64,
        summary.outputs["claimwatch.readmission-risk"]
    );
    assert_eq!(
        k.high_risk_alerts,
        summary.outputs["claimwatch.alerts.high-risk-discharge"]
    );

    let html = render(&o).unwrap();
    assert_well_formed(&html);
    for h in [
        "Key figures",
        "Payer denial benchmarks",
        "Risk tier distribution",
        "Readmissions by HRRP cohort and diagnosis group",
        "Claim lifecycle status mix and A/R aging",
        "Intervention net savings and ROI",
        "Cash forecast vs actual",
    ] {
        assert!(html.contains(&format!("<h2>{h}</h2>")), "heading {h}");
    }
    // The tiles show the summary's numbers, rounded once from the exact counts.
    let once = |n: u64, d: u64| format!("{:.1} %", n as f64 * 100.0 / d as f64);
    assert!(html.contains("Data period "), "the header names the period");
    for (value, label) in [
        (c.claims.to_string(), "claims"),
        (once(k.initial_denied, k.adjudicated), "initial denial rate"),
        (
            once(k.first_pass_paid, k.first_pass_outcomes),
            "first-pass yield",
        ),
        (
            once(r.unplanned_readmissions, r.index_stays),
            "30-day unplanned readmission rate",
        ),
    ] {
        let tile = format!("<div class=\"v\">{value}</div><div class=\"l\">{label}");
        assert!(html.contains(&tile), "tile {tile}");
    }
    // The analytics topics replay writes have their own layouts (no generic field table), with
    // the records' figures.
    for topic in [
        "claimwatch.readmission-summary",
        "claimwatch.intervention-roi",
        "claimwatch.care-gaps",
        "claimwatch.provider-kpis",
    ] {
        assert!(
            !html.contains(&format!("records on <code>{topic}</code>")),
            "{topic} is shown by the generic table"
        );
    }
    let all: crate::model::ReadmissionSummary = serde_json::from_value(
        o.analytics["claimwatch.readmission-summary"].records["all"].clone(),
    )
    .unwrap();
    assert!(all.index_stays > 0);
    // The generated population has enrolment: the PMPM tile and the monthly table.
    let k = all.kpis.as_ref().unwrap();
    assert!(k.cost_pmpm_cents.is_some_and(|c| c > 0));
    assert!(html.contains(&format!(
        "<div class=\"l\">cost per member per month ({} to ",
        k.pmpm_first_month.as_deref().unwrap(),
    )));
    assert!(html.contains("<h3>Cost per member per month by service month"));
    for (value, label) in [
        (all.index_stays.to_string(), "matured index stays"),
        (
            o.analytics["claimwatch.care-gaps"]
                .records
                .len()
                .to_string(),
            "immunization gaps opened",
        ),
    ] {
        let tile = format!("<div class=\"v\">{value}</div><div class=\"l\">{label}");
        assert!(html.contains(&tile), "tile {tile}");
    }
    for r in o.analytics["claimwatch.intervention-roi"].records.values() {
        let (name, id) = (
            r["name"].as_str().unwrap(),
            r["intervention_id"].as_str().unwrap(),
        );
        assert!(
            html.contains(&format!(
                "<tr><th>{}</th><td class=\"w\">{}</td>",
                esc(id),
                esc(name)
            )),
            "{name}"
        );
    }
    for h in [
        "By HRRP cohort",
        "By target tier",
        "By vaccine and season",
        "By age band",
    ] {
        assert!(html.contains(&format!("<h3>{h}")), "sub-heading {h}");
    }
    // Charts are inline SVG. Replay writes the readmission summary, the intervention ROI and the
    // care gaps and the cash forecast, so their sections render.
    assert!(html.matches("<svg").count() >= 8);
    for topic in [
        "claimwatch.readmission-summary",
        "claimwatch.intervention-roi",
        "claimwatch.care-gaps",
        "claimwatch.cash-forecast",
        "claimwatch.provider-kpis",
        "claimwatch.utilization-forecast",
    ] {
        assert!(
            !html.contains(&format!("the input has no <code>{topic}</code> output")),
            "{topic} is in the replay output"
        );
    }
    assert!(html.contains("Forecast vs actual per ISO week ($)"));
    assert!(html.contains("payer-week error (WAPE)"));
    // The provider section: a department table with the risk-adjusted ratio.
    assert!(html.contains("<h2>Provider and department performance</h2>"));
    assert!(html.contains("<th>O/E [95 % CI]</th>"));
    assert!(html.contains("<tr><th>MEDICINE</th>"));
    // The utilization section: accuracy tiles, the per-horizon table, a chart per busiest
    // facility.
    assert!(html.contains("<h2>Utilization forecast vs actual</h2>"));
    assert!(html.contains("admissions WAPE, 1 week ahead"));
    assert!(html.contains("<tr><th>admissions 1</th>"));
    assert!(html.contains("actual vs forecast a week ahead"));
    // No identifier of the population appears in the page.
    let line =
        std::fs::read_to_string(dir.path().join("out/claimwatch.claim-lifecycle.jsonl")).unwrap();
    let first: crate::model::ClaimLifecycleUpdate =
        serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert!(!html.contains(&first.claim_id));
    if let Some(m) = &first.member_id {
        assert!(!html.contains(m.as_str()));
    }
    // Rendering is deterministic.
    assert_eq!(
        html,
        render(&load_dir(&dir.path().join("out")).unwrap()).unwrap()
    );
}

fn kpi_window(payer: &str, version: i64, denied: i64) -> PayerKpi {
    PayerKpi {
        output_id: format!("{payer}:DAILY:0:{version}"),
        payer_id: payer.into(),
        payer_category: PayerCategory::Commercial,
        window_start: 0,
        window_end: 86_400_000,
        version,
        submitted: 10,
        accepted: 10,
        rejected: 0,
        paid: 10 - denied,
        denied,
        paid_cents: 10_000,
        denied_cents: denied * 5_000,
        denial_rate: denied as f64 / 10.0,
        first_pass_yield: 0.5,
        top_denial_categories: vec![],
        median_days_to_payment: Some(14.0),
        granularity: Granularity::Daily,
        adjudicated: 10,
        partially_paid: 0,
        reversed: 0,
        first_adjudicated: 10,
        first_pass_paid: 5,
        top_denial_category_counts: vec![],
        late_facts: 0,
        baseline_windows: 0,
        baseline_denial_rate: None,
        denial_rate_z: None,
        carc_mix_chi2: None,
        carc_mix_dof: None,
        carc_mix_p_value: None,
    }
}

#[test]
fn later_versions_supersede_and_text_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "<script>alert('x')</script>&P";
    let mut lines = String::new();
    for (v, d) in [(1, 2), (2, 4), (1, 2)] {
        // Version 2 then a redelivered version 1: version 2 stands.
        lines.push_str(&serde_json::to_string(&kpi_window(evil, v, d)).unwrap());
        lines.push('\n');
    }
    std::fs::write(dir.path().join("claimwatch.payer-kpis.jsonl"), lines).unwrap();
    // An analytics topic with an injected field value and an identifier field.
    std::fs::write(
        dir.path().join("claimwatch.intervention-roi.jsonl"),
        "{\"output_id\":\"FOLLOW_UP:1\",\"intervention\":\"<b>call</b>\",\"member_id\":\"M-SECRET\",\"roi\":1.5}\n\
         {\"output_id\":\"FOLLOW_UP:2\",\"intervention\":\"<b>call</b>\",\"member_id\":\"M-SECRET\",\"roi\":2.25}\n",
    )
    .unwrap();
    let o = load_dir(dir.path()).unwrap();
    assert_eq!(o.payer_kpis.len(), 1);
    assert_eq!(o.payer_kpis[0].version, 2);
    assert_eq!(Kpis::compute(&o).denied_cents, 4 * 5_000);
    let html = render(&o).unwrap();
    assert_well_formed(&html);
    assert!(!html.contains("<script"));
    assert!(!html.contains("<b>call"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;P"));
    assert!(html.contains("&lt;b&gt;call&lt;/b&gt;"));
    assert!(
        html.contains("<td class=\"l\">2.2500</td>"),
        "the latest ROI record"
    );
    assert!(!html.contains("M-SECRET"), "identifier fields are left out");
    assert!(html.contains("<td>40.0 %</td>"), "denial rate of version 2");
    // A single payer still gets its bars (denial rate red, first-pass yield green), with a width.
    for fill in ["#D62728", "#2CA02C"] {
        let bar = html
            .split("<rect ")
            .find(|r| r.contains(&format!("fill=\"{fill}\"")))
            .unwrap_or_else(|| panic!("no {fill} bar"));
        assert!(!bar.contains("width=\"0\""), "empty bar: {bar}");
    }
    // Sections without input say so.
    assert!(html.contains("Not computed by this version: the input has no <code>claimwatch.claim-lifecycle</code> output."));
    assert!(html.contains(
        "Not computed by this version: the input has no <code>claimwatch.care-gaps</code> output."
    ));
}

#[test]
fn retracted_readmissions_are_removed_and_empty_dirs_refused() {
    assert_eq!(split_output_id("M1:E1:3"), ("M1:E1", Some(3)));
    assert_eq!(split_output_id("M1:E1:risk"), ("M1:E1:risk", None));
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(load_dir(dir.path()), Err(LoadError::Empty(_))));
    let f = load::fold_generic(dir.path(), "x").unwrap();
    assert!(f.is_none());
    std::fs::write(
        dir.path().join("x.jsonl"),
        "{\"output_id\":\"a:1\",\"action\":\"DETECTED\"}\n{\"output_id\":\"b:1\"}\n{\"output_id\":\"a:2\",\"action\":\"RETRACTED\"}\n",
    )
    .unwrap();
    let f = load::fold_generic(dir.path(), "x").unwrap().unwrap();
    assert_eq!(f.lines, 3);
    assert_eq!(f.records.keys().collect::<Vec<_>>(), ["b"]);
    std::fs::write(
        dir.path().join("claimwatch.payer-kpis.jsonl"),
        "{not json\n",
    )
    .unwrap();
    assert!(matches!(
        load_dir(dir.path()),
        Err(LoadError::Parse { line: 1, .. })
    ));
}

/// `--brokers`: the outputs of a replay, produced to librdkafka's mock cluster (Avro, two
/// partitions, keyed as the service keys them), read back to the end give the same figures as
/// the replay directory.
#[test]
fn outputs_read_from_kafka_match_the_replay_directory() {
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    replay_population(dir.path(), 150);
    let out = dir.path().join("out");
    let mock = MockCluster::new(1).unwrap();
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .create()
        .unwrap();
    let codec = crate::codec::AvroCodec::new();
    let mut produced = 0u64;
    // Topics the mock has: all but the payer monitor alerts, which must then be absent.
    for topic in kafka::KAFKA_TOPICS
        .iter()
        .filter(|t| **t != topics::PAYER_ALERTS)
    {
        mock.create_topic(topic, 2, 1).unwrap();
        let text = std::fs::read(out.join(format!("{topic}.jsonl"))).unwrap();
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let event = crate::runtime::wire::decode_output(&codec, topic, line).unwrap();
            let mut buf = Vec::new();
            crate::runtime::wire::encode_output(&codec, &event, Format::Avro, &mut buf).unwrap();
            let p = crate::core::partition_for(event.key(), 2);
            let key = event.key().to_owned();
            producer
                .send(BaseRecord::to(topic).key(&key).payload(&buf).partition(p))
                .unwrap();
            produced += 1;
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let read = dir.path().join("from-kafka");
    let counts =
        kafka::export_topics(&mock.bootstrap_servers(), &read, Duration::from_secs(60)).unwrap();
    assert_eq!(counts.values().sum::<u64>(), produced);
    assert!(!counts.contains_key(topics::PAYER_ALERTS));
    let from_dir = load_dir(&out).unwrap();
    let from_kafka = load_dir(&read).unwrap();
    let mut expected = Kpis::compute(&from_dir);
    // No replay summary on Kafka, and no payer monitor alerts topic in this cluster.
    expected.index_stays = None;
    expected.readmission_rate = None;
    expected.payer_alerts = 0;
    assert!(expected.claims > 50);
    assert_eq!(Kpis::compute(&from_kafka), expected);
    assert_eq!(from_kafka.payer_kpis, from_dir.payer_kpis);
    assert_eq!(from_kafka.readmissions, from_dir.readmissions);
    let html = render(&from_kafka).unwrap();
    assert_well_formed(&html);
    assert!(html.contains(
        "<div class=\"v\">-</div><div class=\"l\">readmission rate (needs replay-summary.json)"
    ));
}

/// One lifecycle line of claim `id` (no real identifiers): `status` with `adjustments` (CARC
/// category, cents) in that version.
fn lifecycle_line(id: &str, version: i64, status: &str, adjustments: &[(&str, i64)]) -> String {
    let adj: Vec<serde_json::Value> = adjustments
        .iter()
        .map(|(c, a)| serde_json::json!({"code": c, "amount_cents": a}))
        .collect();
    let remits = i32::from(matches!(status, "DENIED" | "PAID" | "PARTIALLY_PAID")) * version as i32;
    serde_json::json!({
        "output_id": format!("{id}:{version}"), "claim_id": id, "version": version,
        "event_time": 1_704_352_568_823i64 + version * 86_400_000, "cause": "REMITTANCE",
        "status": status, "previous_status": null, "member_id": "M-X", "payer_id": "P-A",
        "payer_category": "COMMERCIAL", "provider_id": null, "department": null,
        "encounter_id": null, "payer_claim_control_number": null, "submitted_date": 19726,
        "billed_cents": 100_000, "expected_cents": 40_000,
        "paid_to_date_cents": if status == "PAID" { 40_000 } else if status == "PARTIALLY_PAID" { 10_000 } else { 0 },
        "patient_responsibility_cents": 0, "variance_cents": null,
        "adjustments_by_group": [], "adjustments_by_category": adj, "denial_category": null,
        "carc_codes": [], "rarc_codes": [], "ack_status": null, "days_to_ack": null,
        "days_to_first_payment": null, "days_to_final": null, "first_pass_paid": null,
        "ack_count": 1, "remit_count": remits, "submission_count": 1, "alerts": []
    })
    .to_string()
}

/// Issue: "denied dollars" summed every adjudication's denial adjustments (a claim denied twice
/// counted twice, an overturned denial still counted) and stood next to paid to date. The
/// headline is now the claims' latest state, at expected payment and at billed charges; the gross
/// figure is labelled as such.
#[test]
fn denied_dollars_are_the_latest_state_of_each_claim() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        // Denied, then paid on resubmission: denies nothing now.
        lifecycle_line("C-A", 1, "DENIED", &[("AUTHORIZATION", 100_000)]),
        lifecycle_line("C-A", 2, "PAID", &[("CONTRACTUAL", 60_000)]),
        // Denied twice: counts once, at its latest adjudication.
        lifecycle_line("C-B", 1, "DENIED", &[("ELIGIBILITY", 100_000)]),
        lifecycle_line("C-B", 2, "DENIED", &[("ELIGIBILITY", 100_000)]),
        // Partly paid: its denial adjustments, not the contractual one.
        lifecycle_line(
            "C-C",
            1,
            "PARTIALLY_PAID",
            &[("MEDICAL_NECESSITY", 30_000), ("CONTRACTUAL", 45_000)],
        ),
        // Adjustments of two adjudications on one claim: capped at the billed amount.
        lifecycle_line(
            "C-D",
            1,
            "DENIED",
            &[("AUTHORIZATION", 100_000), ("MEDICAL_NECESSITY", 100_000)],
        ),
    ];
    std::fs::write(
        dir.path().join("claimwatch.claim-lifecycle.jsonl"),
        lines.join("\n") + "\n",
    )
    .unwrap();
    let mut kpis = String::new();
    for (i, payer) in ["P-A", "P-B"].iter().enumerate() {
        kpis.push_str(&serde_json::to_string(&kpi_window(payer, 1, 2 + i as i64)).unwrap());
        kpis.push('\n');
    }
    std::fs::write(dir.path().join("claimwatch.payer-kpis.jsonl"), kpis).unwrap();
    let o = load_dir(dir.path()).unwrap();
    let k = Kpis::compute(&o);
    assert_eq!(k.denied_current_claims, 3);
    assert_eq!(k.denied_current_cents, 100_000 + 30_000 + 100_000);
    assert_eq!(k.denied_capped_claims, 1);
    // Expected 40,000 each; the partly paid one got 10,000.
    assert_eq!(k.denied_expected_unpaid_cents, 40_000 + 30_000 + 40_000);
    assert_eq!(k.denied_cents, 5 * 5_000, "the gross figure is kept");
    let html = render(&o).unwrap();
    assert!(html.contains(
        "<div class=\"v\">$1,100</div><div class=\"l\">denied now, at expected payment: expected - paid of the 3 claims whose latest status is DENIED or PARTIALLY_PAID"
    ));
    assert!(html
        .contains("<div class=\"v\">$2,300</div><div class=\"l\">denied now, at billed charges"));
    assert!(html.contains("All denial adjustments, incl. overturned"));
    assert!(!html.contains("denied dollars, every adjudication"));
    // The payer table counts adjudications, says so and has a total row.
    assert!(html.contains("<th>adjudications</th>"));
    assert!(html.contains("<tr><th>all payers</th><td></td><td>20</td><td>25.0 %</td>"));
    assert!(html.contains("Per adjudication, not per claim"));
    assert!(
        !html.contains("C-A") && !html.contains("M-X"),
        "no identifiers"
    );
}

/// Issue: rates were rounded twice (to 4 decimals, then to one decimal of a percent):
/// 123/1528 = 8.0497 % showed 8.1 %, 773/923 = 83.749 % showed 83.8 %.
#[test]
fn rates_are_rounded_once_from_the_exact_ratio() {
    let claim = |paid_first: bool| ClaimView {
        status: crate::model::ClaimStatus::Paid,
        payer_id: None,
        submitted_date: None,
        billed_cents: 0,
        expected_cents: None,
        paid_cents: 0,
        remit_count: 1,
        first_pass_paid: Some(paid_first),
        days_to_first_payment: None,
        first_adjudication: Some(crate::model::ClaimStatus::Paid),
        ever_rejected: false,
        acknowledged: false,
        denial_category: None,
        denied_cents: 0,
    };
    let mut o = Outputs::default();
    o.present.insert(topics::CLAIM_LIFECYCLE.into());
    o.present.insert(topics::PAYER_KPIS.into());
    o.claims = (0..1528).map(|i| claim(i < 123)).collect();
    let mut w = kpi_window("P-A", 1, 773);
    w.adjudicated = 923;
    o.payer_kpis = vec![w];
    let html = render(&o).unwrap();
    assert!(html.contains("<div class=\"v\">8.0 %</div><div class=\"l\">first-pass yield"));
    assert!(
        html.contains("<td>83.7 %</td>"),
        "773 / 923 per adjudication"
    );
    assert!(!html.contains("83.8 %") && !html.contains("8.1 %"));
}

/// Issue: an empty member-risk topic gave "0 members in the top 0 %", "next 0 days", "$0".
#[test]
fn high_cost_members_without_records_are_not_available() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("claimwatch.member-risk.jsonl"), "").unwrap();
    let html = render(&load_dir(dir.path()).unwrap()).unwrap();
    assert!(html.contains(
        "<p class=\"na\">Not available: <code>claimwatch.member-risk</code> has no record"
    ));
    assert!(!html.contains("top 0 %") && !html.contains("next 0 days"));
}

/// Issue: the count axes read "12000.0" and a bar of 40 against 12,995 could not be seen.
#[test]
fn count_charts_have_integer_ticks_and_labelled_bars() {
    let labels: Vec<String> = ["LOW", "MEDIUM", "HIGH"].map(String::from).to_vec();
    let svg = sections::bar_svg_for_test(&labels, &[10_594.0, 2_361.0, 40.0], "claims");
    // plotters writes each text on its own line.
    assert!(!svg.contains(".0\n"), "integer ticks only");
    for v in ["\n10,594\n", "\n2,361\n", "\n40\n", "\n12,000\n"] {
        assert!(svg.contains(v), "value label {v}");
    }
    let pct = sections::bar_svg_for_test(&labels, &[10.25, 0.5, 3.0], "denied, %");
    assert!(pct.contains("10.2 %") || pct.contains("10.3 %"));
}

fn pmpm_month(month: &str, member_months: i64, paid_cents: i64) -> crate::model::PmpmMonth {
    crate::model::PmpmMonth {
        month: month.into(),
        member_months,
        paid_cents,
        paid_without_eligibility_cents: 0,
        cost_pmpm_cents: Some(paid_cents / member_months),
    }
}

/// Issue: the month after enrolment ended (3 member months, PMPM $5,131) sat in the PMPM table
/// and its headline.
#[test]
fn pmpm_leaves_out_months_with_too_few_member_months() {
    let months = vec![
        pmpm_month("2025-11", 1962, 19_558_100),
        pmpm_month("2025-12", 1913, 15_839_000),
        pmpm_month("2026-01", 3, 1_539_200),
    ];
    let (kept, out, cut) = sections::pmpm_months_for_test(&months);
    assert_eq!(
        kept.iter().map(|m| m.month.as_str()).collect::<Vec<_>>(),
        ["2025-11", "2025-12"]
    );
    assert_eq!(out.len(), 1);
    assert!((cut - 19.13).abs() < 0.01, "1 % of the median month: {cut}");
}
