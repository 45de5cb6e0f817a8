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
    // The tiles show the summary's numbers.
    for (value, label) in [
        (c.claims.to_string(), "claims"),
        (
            format!("{:.1} %", c.initial_denial_rate * 100.0),
            "initial denial rate",
        ),
        (
            format!("{:.1} %", c.first_pass_yield * 100.0),
            "first-pass yield",
        ),
        (
            format!("{:.1} %", r.readmission_rate * 100.0),
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
        "<div class=\"l\">cost per member per month ({} to {})",
        k.pmpm_first_month.as_deref().unwrap(),
        k.pmpm_last_month.as_deref().unwrap()
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
