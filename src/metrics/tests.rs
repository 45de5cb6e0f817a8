use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::exposition::{parse, Scrape};
use super::sample::{sample_outputs, SYNTHETIC_IDS};
use super::*;
use crate::model::{
    AmountByCode, ClaimLifecycleUpdate, ClaimStatus, PayerCategory, ReadmissionAction, UpdateCause,
};

fn scrape(m: &Metrics) -> Scrape {
    let text = m.render();
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| {
            x.name == name
                && labels
                    .iter()
                    .all(|(k, v)| x.labels.iter().any(|(k2, v2)| k2 == k && v2 == v))
        })
        .map(|x| x.value)
}

/// Label names any claimwatch metric may use: all bounded (see `labels.rs`).
const ALLOWED_LABELS: [&str; 17] = [
    "topic",
    "department",
    "partition",
    "stage",
    "reason",
    "payer_category",
    "denial_category",
    "carc_group",
    "hrrp_cohort",
    "status",
    "outcome",
    "event",
    "source",
    "store",
    "client",
    "age_bucket",
    "le",
];

#[test]
fn scrape_of_a_generated_population_parses_and_follows_the_naming_rules() {
    let m = Metrics::new().unwrap();
    let sample = sample_outputs(60, 7);
    assert!(sample.outputs.len() > 100);
    for o in &sample.outputs {
        m.observe_output(o);
    }
    let s = scrape(&m);
    for (name, kind) in &s.types {
        assert!(name.starts_with("claimwatch_"), "{name}");
        assert_eq!(
            name.ends_with("_total"),
            kind == "counter",
            "{name} is a {kind}: counters and only counters end in _total"
        );
        for bad in ["_ms", "_milliseconds", "_days", "_cents", "_kb", "_mb"] {
            assert!(!name.contains(bad), "{name}: use base units");
        }
    }
    for x in &s.samples {
        for (k, _) in &x.labels {
            assert!(
                ALLOWED_LABELS.contains(&k.as_str())
                    || (x.name == "claimwatch_build_info" && k == "version")
                    // feature: the build's feature names (every artifact must match them); bin: 10.
                    || (x.name.starts_with("claimwatch_model_")
                        && ["model", "version", "tier", "feature", "bin"].contains(&k.as_str()))
                    || (x.name.starts_with("claimwatch_readmissions_")
                        && (k == "action" || k == "planned"))
                    // Bounded vocabularies: `MonitorRule::ALL`, `Granularity::ALL`.
                    || (x.name.starts_with("claimwatch_payer_monitor_")
                        && (k == "rule" || k == "granularity"))
                    // Bounded: `CareGapAction::ALL`, the rule table's vaccines (capped), age bands.
                    || (x.name.starts_with("claimwatch_caregaps_")
                        && ["action", "vaccine", "age_band"].contains(&k.as_str())),
                "{} has label {k}",
                x.name
            );
        }
    }
    // The business KPIs moved.
    let claims = s.sum("claimwatch_claims_by_status", &[]).unwrap_or(0.0);
    assert!(claims > 50.0, "{claims}");
    let produced = value(
        &s,
        "claimwatch_pipeline_produced_records_total",
        &[("topic", "claimwatch.claim-lifecycle")],
    )
    .unwrap();
    assert!(produced > 100.0);
    assert!(
        s.samples
            .iter()
            .filter(|x| x.name == "claimwatch_claims_first_pass_total")
            .map(|x| x.value)
            .sum::<f64>()
            > 10.0
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_pipeline_dead_letters_total",
            &[("reason", "decode"), ("topic", "ehr.claims")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_model_fallback_active",
            &[("model", "denial")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_model_info",
            &[("model", "readmission"), ("version", "readmit-2024.1")]
        ),
        Some(1.0)
    );
    let open: f64 = s
        .samples
        .iter()
        .filter(|x| x.name == "claimwatch_revenue_ar_open_claims")
        .map(|x| x.value)
        .sum();
    assert!(open >= 0.0);
}

#[test]
fn no_identifier_is_a_label_value() {
    let m = Metrics::new().unwrap();
    let sample = sample_outputs(60, 11);
    assert!(sample.identifiers.len() > 100);
    for o in &sample.outputs {
        m.observe_output(o);
    }
    let s = scrape(&m);
    let mut values = std::collections::BTreeSet::new();
    for x in &s.samples {
        for (_, v) in &x.labels {
            values.insert(v.clone());
        }
    }
    for v in &values {
        assert!(
            !sample.identifiers.contains(v),
            "identifier {v:?} is a label value"
        );
        assert!(!SYNTHETIC_IDS.contains(&v.as_str()), "{v:?}");
        assert!(
            !sample
                .identifiers
                .iter()
                .any(|id| id.len() > 4 && v.contains(id.as_str())),
            "label value {v:?} contains an identifier"
        );
    }
    // Bounded: the number of series does not grow with the population.
    assert!(s.samples.len() < 2_000, "{}", s.samples.len());
}

fn update(
    version: i64,
    status: ClaimStatus,
    previous: Option<ClaimStatus>,
    cause: UpdateCause,
) -> OutputEvent {
    OutputEvent::ClaimLifecycle(Box::new(ClaimLifecycleUpdate {
        output_id: format!("C1:{version}"),
        claim_id: "C1".into(),
        version,
        event_time: 19_800 * crate::model::DAY_MS,
        cause,
        status,
        previous_status: previous,
        member_id: Some("M1".into()),
        payer_id: Some("P1".into()),
        payer_category: Some(PayerCategory::Medicaid),
        provider_id: Some("PR1".into()),
        department: Some("CARDIOLOGY".into()),
        encounter_id: None,
        payer_claim_control_number: None,
        submitted_date: Some(19_760),
        billed_cents: 100_000,
        expected_cents: Some(80_000),
        paid_to_date_cents: 0,
        patient_responsibility_cents: 0,
        variance_cents: None,
        adjustments_by_group: Vec::new(),
        adjustments_by_category: Vec::new(),
        denial_category: None,
        carc_codes: Vec::new(),
        rarc_codes: Vec::new(),
        ack_status: None,
        days_to_ack: None,
        days_to_first_payment: None,
        days_to_final: None,
        first_pass_paid: None,
        ack_count: 0,
        remit_count: 0,
        submission_count: 1,
        alerts: Vec::new(),
    }))
}

fn lifecycle(e: &mut OutputEvent) -> &mut ClaimLifecycleUpdate {
    match e {
        OutputEvent::ClaimLifecycle(u) => u,
        _ => unreachable!(),
    }
}

#[test]
fn lifecycle_kpis_count_each_moment_once() {
    use ClaimStatus::*;
    let m = Metrics::new().unwrap();
    m.observe_output(&update(1, Submitted, None, UpdateCause::Submission));
    let mut ack = update(2, Accepted, Some(Submitted), UpdateCause::Acknowledgment);
    lifecycle(&mut ack).ack_count = 1;
    lifecycle(&mut ack).days_to_ack = Some(2);
    m.observe_output(&ack);
    // A second ack with no status change moves nothing.
    let mut ack2 = update(3, Accepted, Some(Accepted), UpdateCause::Acknowledgment);
    lifecycle(&mut ack2).ack_count = 2;
    lifecycle(&mut ack2).days_to_ack = Some(2);
    m.observe_output(&ack2);

    let s = scrape(&m);
    assert_eq!(
        value(&s, "claimwatch_claims_by_status", &[("status", "ACCEPTED")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_claims_by_status",
            &[("status", "SUBMITTED")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_claims_time_to_ack_seconds_count",
            &[("payer_category", "MEDICAID")]
        ),
        Some(1.0)
    );
    // Open for 40 days as of the watermark (submitted day 19 760, event day 19 800).
    assert_eq!(
        value(
            &s,
            "claimwatch_revenue_ar_open_claims",
            &[("age_bucket", "31-60")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_revenue_ar_outstanding_dollars",
            &[("age_bucket", "31-60")]
        ),
        Some(1000.0)
    );

    let mut denied = update(4, PartiallyPaid, Some(Accepted), UpdateCause::Remittance);
    {
        let u = lifecycle(&mut denied);
        u.remit_count = 1;
        u.first_pass_paid = Some(false);
        u.paid_to_date_cents = 50_000;
        u.variance_cents = Some(-30_000);
        u.days_to_first_payment = Some(20);
        u.denial_category = Some("AUTHORIZATION".into());
        u.adjustments_by_category = vec![
            AmountByCode {
                code: "AUTHORIZATION".into(),
                amount_cents: 30_000,
            },
            AmountByCode {
                code: "CONTRACTUAL".into(),
                amount_cents: 20_000,
            },
        ];
        u.adjustments_by_group = vec![AmountByCode {
            code: "CO".into(),
            amount_cents: 50_000,
        }];
    }
    m.observe_output(&denied);
    let s = scrape(&m);
    let mc = ("payer_category", "MEDICAID");
    assert_eq!(
        value(&s, "claimwatch_claims_by_status", &[("status", "ACCEPTED")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_claims_by_status",
            &[("status", "PARTIALLY_PAID")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_claims_first_pass_total",
            &[mc, ("outcome", "not_paid")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_claims_first_pass_total",
            &[mc, ("outcome", "paid")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_claims_adjudications_total",
            &[mc, ("outcome", "PARTIALLY_PAID")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_revenue_denied_dollars_total",
            &[mc, ("denial_category", "AUTHORIZATION")]
        ),
        Some(300.0)
    );
    // Contractual write-offs are not denials and have no denial series.
    assert_eq!(
        value(
            &s,
            "claimwatch_revenue_denied_dollars_total",
            &[("denial_category", "CONTRACTUAL")]
        ),
        None
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_revenue_denials_total",
            &[mc, ("denial_category", "AUTHORIZATION")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "claimwatch_revenue_underpaid_dollars_total", &[mc]),
        Some(300.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_revenue_adjustment_dollars_total",
            &[("carc_group", "CO")]
        ),
        Some(500.0)
    );
    assert_eq!(
        value(&s, "claimwatch_claims_time_to_payment_seconds_count", &[mc]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "claimwatch_claims_time_to_payment_seconds_sum", &[mc]),
        Some(20.0 * 86_400.0)
    );
    // Closed: out of A/R.
    assert_eq!(
        value(
            &s,
            "claimwatch_revenue_ar_open_claims",
            &[("age_bucket", "31-60")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_claims_status_transitions_total",
            &[mc, ("status", "PARTIALLY_PAID")]
        ),
        Some(1.0)
    );
}

#[test]
fn readmissions_count_by_cohort_and_action() {
    let m = Metrics::new().unwrap();
    let sample = sample_outputs(150, 3);
    let mut detected = 0;
    for o in &sample.outputs {
        if let OutputEvent::Readmission(r) = o {
            if r.action == ReadmissionAction::Detected {
                detected += 1;
            }
        }
        m.observe_output(o);
    }
    let s = scrape(&m);
    let counted: f64 = s
        .samples
        .iter()
        .filter(|x| {
            x.name == "claimwatch_readmissions_events_total"
                && x.labels
                    .iter()
                    .any(|(k, v)| k == "action" && v == "DETECTED")
        })
        .map(|x| x.value)
        .sum();
    assert_eq!(counted, f64::from(detected));
}

/// A consumer's statistics report: one topic, each partition wanted with the given lag, and a
/// queue of 5 messages.
fn lag_stats(topic: &str, parts: &[(i32, i64)]) -> rdkafka::Statistics {
    use rdkafka::statistics::{Partition, Statistics, Topic};
    let mut t = Topic {
        topic: topic.into(),
        ..Topic::default()
    };
    for (p, lag) in parts {
        t.partitions.insert(
            *p,
            Partition {
                partition: *p,
                desired: true,
                consumer_lag: *lag,
                ..Partition::default()
            },
        );
    }
    let mut s = Statistics {
        client_type: "consumer".into(),
        msg_cnt: 5,
        ..Statistics::default()
    };
    s.topics.insert(topic.into(), t);
    s
}

#[test]
fn consumer_lag_follows_the_assignment() {
    let m = Metrics::new().unwrap();
    let stats = |parts: &[(i32, i64)]| lag_stats("ehr.claims", parts);
    m.observe_librdkafka_stats(&stats(&[(0, 10), (1, 20), (-1, 99)]));
    let s = scrape(&m);
    let lag = "claimwatch_kafka_consumer_lag_records";
    assert_eq!(value(&s, lag, &[("partition", "0")]), Some(10.0));
    assert_eq!(value(&s, lag, &[("partition", "1")]), Some(20.0));
    assert_eq!(value(&s, lag, &[("partition", "-1")]), None);
    assert_eq!(
        value(
            &s,
            "claimwatch_kafka_client_queue_messages",
            &[("client", "consumer")]
        ),
        Some(5.0)
    );
    // Partition 1 revoked, partition 0's lag unknown for a moment.
    m.observe_librdkafka_stats(&stats(&[(0, -1)]));
    let s = scrape(&m);
    assert_eq!(value(&s, lag, &[("partition", "0")]), None);
    assert_eq!(value(&s, lag, &[("partition", "1")]), None);
    m.observe_librdkafka_stats(&stats(&[(0, 3)]));
    assert_eq!(value(&scrape(&m), lag, &[("partition", "0")]), Some(3.0));
}

/// The raw X12 consumer's lag sits beside the service consumer's: each client's report replaces
/// only its own series.
#[test]
fn the_raw_x12_consumers_lag_is_kept_apart_from_the_service_consumers() {
    let m = Metrics::new().unwrap();
    m.register_inputs(["ehr.claims", "x12.raw"]);
    let stats = lag_stats;
    let lag = "claimwatch_kafka_consumer_lag_records";
    m.observe_librdkafka_stats(&stats("ehr.claims", &[(0, 10)]));
    m.observe_raw_x12_stats(&stats("x12.raw", &[(0, 7), (1, 8)]));
    m.observe_librdkafka_stats(&stats("ehr.claims", &[(0, 11)]));
    let s = scrape(&m);
    assert_eq!(
        value(&s, lag, &[("topic", "ehr.claims"), ("partition", "0")]),
        Some(11.0)
    );
    assert_eq!(
        value(&s, lag, &[("topic", "x12.raw"), ("partition", "0")]),
        Some(7.0)
    );
    assert_eq!(
        value(&s, lag, &[("topic", "x12.raw"), ("partition", "1")]),
        Some(8.0)
    );
    // The raw consumer loses partition 1; the service consumer's series stay.
    m.observe_raw_x12_stats(&stats("x12.raw", &[(0, 2)]));
    let s = scrape(&m);
    assert_eq!(
        value(&s, lag, &[("topic", "x12.raw"), ("partition", "1")]),
        None
    );
    assert_eq!(
        value(&s, lag, &[("topic", "x12.raw"), ("partition", "0")]),
        Some(2.0)
    );
    assert_eq!(
        value(&s, lag, &[("topic", "ehr.claims"), ("partition", "0")]),
        Some(11.0)
    );
}

#[test]
fn runtime_hooks_show_in_the_scrape() {
    let m = Metrics::new().unwrap();
    m.register_inputs(["ehr.claims", "x12.835"]);
    let t = m.topic("ehr.claims");
    t.consumed.inc_by(3);
    m.observe_stage(Stage::Core, Duration::from_micros(40));
    m.checkpoint_done(Duration::from_millis(12), 5000);
    m.checkpoint_failed();
    m.recovery();
    m.commit(true);
    m.rebalance(Rebalance::Assign);
    m.set_assigned_partitions(2);
    m.set_state_entries("claims", 1, 42);
    m.set_state_entries("bogus", 1, 1);
    m.state_expired("enrolment", 3);
    m.state_expired("enrolment", 2);
    m.state_expired("bogus", 1);
    m.restored(RestoreSource::Changelog, 9);
    m.set_model_quality("denial", 0.71, 0.03, 0.08);
    let s = scrape(&m);
    assert_eq!(
        value(
            &s,
            "claimwatch_pipeline_consumed_records_total",
            &[("topic", "ehr.claims")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_pipeline_consumed_records_total",
            &[("topic", "x12.835")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_pipeline_processing_duration_seconds_count",
            &[("stage", "core")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_checkpoint_runs_total",
            &[("outcome", "error")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "claimwatch_checkpoint_size_bytes_sum", &[]),
        Some(5000.0)
    );
    assert!(
        value(
            &s,
            "claimwatch_checkpoint_last_success_timestamp_seconds",
            &[]
        )
        .unwrap()
            > 1.6e9
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_state_entries",
            &[("store", "claims"), ("partition", "1")]
        ),
        Some(42.0)
    );
    assert_eq!(
        value(&s, "claimwatch_state_entries", &[("store", "other")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "claimwatch_state_expired_total",
            &[("store", "enrolment")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(&s, "claimwatch_state_expired_total", &[("store", "other")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "claimwatch_state_restored_entries_total", &[]),
        Some(9.0)
    );
    assert_eq!(
        value(&s, "claimwatch_model_auc_ratio", &[("model", "denial")]),
        Some(0.71)
    );
    assert!(value(
        &s,
        "claimwatch_model_auc_ratio",
        &[("model", "readmission")]
    )
    .unwrap()
    .is_nan());
    assert_eq!(
        value(
            &s,
            "claimwatch_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    m.forget_partition(1);
    assert_eq!(
        value(
            &scrape(&m),
            "claimwatch_state_entries",
            &[("store", "claims")]
        ),
        None
    );
}

/// Sends one HTTP/1.1 request and returns (status code, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let code = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    // Bodies are small and sent with a length, not chunked.
    assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
    (code, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_answer_with_the_right_codes() {
    let metrics = Arc::new(Metrics::new().unwrap());
    let ready = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ready);
    let ready_fn: ReadyFn = Arc::new(move || r.load(Ordering::SeqCst));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_listener(
        listener,
        Arc::clone(&metrics),
        ready_fn,
        async move {
            let _ = stopped.await;
        },
    ));

    assert_eq!(get(addr, "/health/live").await.0, 200);
    assert_eq!(get(addr, "/health/ready").await.0, 503);
    let (code, body) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    let s = parse(&body).unwrap();
    assert_eq!(value(&s, "claimwatch_service_ready", &[]), Some(0.0));
    ready.store(true, Ordering::SeqCst);
    assert_eq!(get(addr, "/health/ready").await.0, 200);
    let s = parse(&get(addr, "/metrics").await.1).unwrap();
    assert_eq!(value(&s, "claimwatch_service_ready", &[]), Some(1.0));
    assert_eq!(get(addr, "/nope").await.0, 404);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops on shutdown")
        .unwrap()
        .unwrap();
}

#[test]
fn status_gauge_and_ar_aging_match_the_final_claims() {
    let m = Metrics::new().unwrap();
    let sample = sample_outputs(150, 5);
    let mut last: std::collections::HashMap<&str, &ClaimLifecycleUpdate> = Default::default();
    let mut watermark = i64::MIN;
    for o in &sample.outputs {
        m.observe_output(o);
        if let OutputEvent::ClaimLifecycle(u) = o {
            last.insert(&u.claim_id, u);
            watermark = watermark.max(u.event_time);
        }
    }
    let s = scrape(&m);
    for st in ClaimStatus::ALL {
        let want = last.values().filter(|u| u.status == st).count() as f64;
        assert_eq!(
            s.sum("claimwatch_claims_by_status", &[("status", st.as_str())]),
            Some(want),
            "{st:?}"
        );
        // And by department: the department of each claim's last update.
        for d in ["CARDIOLOGY", "PRIMARY_CARE", labels::UNKNOWN] {
            let want = last
                .values()
                .filter(|u| u.status == st)
                .filter(|u| u.department.as_deref().unwrap_or(labels::UNKNOWN) == d)
                .count() as f64;
            let got = s
                .sum(
                    "claimwatch_claims_by_status",
                    &[("status", st.as_str()), ("department", d)],
                )
                .unwrap_or(0.0);
            assert_eq!(got, want, "{st:?} {d}");
        }
    }
    let today = crate::model::day_of(watermark);
    let mut want = [0f64; 5];
    let mut dollars = [0f64; 5];
    for u in last.values() {
        if let (false, Some(d)) = (u.status.is_closed(), u.submitted_date) {
            let b = labels::ar_bucket_index(today - d);
            want[b] += 1.0;
            dollars[b] += u.billed_cents as f64 / 100.0;
        }
    }
    assert!(
        want.iter().sum::<f64>() > 0.0,
        "the sample leaves some claims open"
    );
    for (i, b) in labels::AR_BUCKETS.iter().enumerate() {
        assert_eq!(
            value(
                &s,
                "claimwatch_revenue_ar_open_claims",
                &[("age_bucket", b)]
            ),
            Some(want[i]),
            "{b}"
        );
        let got = value(
            &s,
            "claimwatch_revenue_ar_outstanding_dollars",
            &[("age_bucket", b)],
        )
        .unwrap();
        assert!(
            (got - dollars[i]).abs() < 0.01,
            "{b}: {got} vs {}",
            dollars[i]
        );
    }
}

#[test]
fn a_late_submission_moves_the_claim_out_of_the_unknown_department() {
    use ClaimStatus::*;
    let m = Metrics::new().unwrap();
    // Acknowledged before its submission arrived: no department yet.
    let mut ack = update(1, Accepted, None, UpdateCause::Acknowledgment);
    lifecycle(&mut ack).department = None;
    lifecycle(&mut ack).submission_count = 0;
    m.observe_output(&ack);
    let by = |s: &Scrape, d: &str| {
        value(
            s,
            "claimwatch_claims_by_status",
            &[("status", "ACCEPTED"), ("department", d)],
        )
    };
    assert_eq!(by(&scrape(&m), labels::UNKNOWN), Some(1.0));
    // The submission brings the department; the status does not change.
    m.observe_output(&update(
        2,
        Accepted,
        Some(Accepted),
        UpdateCause::Submission,
    ));
    let s = scrape(&m);
    assert_eq!(by(&s, labels::UNKNOWN), Some(0.0));
    assert_eq!(by(&s, "CARDIOLOGY"), Some(1.0));
    // A later status change leaves CARDIOLOGY, not UNKNOWN.
    m.observe_output(&update(3, Paid, Some(Accepted), UpdateCause::Remittance));
    let s = scrape(&m);
    assert_eq!(by(&s, "CARDIOLOGY"), Some(0.0));
    assert_eq!(by(&s, labels::UNKNOWN), Some(0.0));
}

#[test]
fn model_monitoring_gauges_merge_the_partitions_windows() {
    use crate::score::monitor::Monitor;
    use crate::score::Models;
    let m = Metrics::new().unwrap();
    let model = Models::embedded().denial.unwrap();
    let (mut a, mut b) = (Monitor::new(100, 7), Monitor::new(100, 7));
    // Partition 0: perfectly ranked; partition 1: one inversion.
    a.matured(0, Some(&model), 0.05, false);
    a.matured(0, Some(&model), 0.55, true);
    b.matured(0, Some(&model), 0.35, false);
    b.matured(0, Some(&model), 0.25, true);
    m.set_partition_monitor(0, a.snapshot());
    m.set_partition_monitor(1, b.snapshot());
    let s = scrape(&m);
    let auc = value(&s, "claimwatch_model_auc_ratio", &[("model", "denial")]).unwrap();
    // Pairs (pos, neg): 0.55 beats 0.05 and 0.35; 0.25 beats 0.05 only: 3 of 4.
    assert!((auc - 0.75).abs() < 1e-12, "{auc}");
    assert_eq!(
        value(
            &s,
            "claimwatch_model_monitor_window_labels",
            &[("model", "denial")]
        ),
        Some(4.0)
    );
    let observed = value(
        &s,
        "claimwatch_model_reliability_observed_ratio",
        &[("model", "denial"), ("bin", "0.5-0.6")],
    );
    assert_eq!(observed, Some(1.0));
    // The shipped model has no drift reference: drift unavailable.
    assert!(value(
        &s,
        "claimwatch_model_feature_drift_psi",
        &[("model", "denial")]
    )
    .unwrap()
    .is_nan());
    assert!(value(
        &s,
        "claimwatch_model_feature_psi",
        &[("model", "denial"), ("feature", "payer")]
    )
    .unwrap()
    .is_nan());
    // Readmission: no partition reported, still NaN.
    assert!(value(
        &s,
        "claimwatch_model_auc_ratio",
        &[("model", "readmission")]
    )
    .unwrap()
    .is_nan());
    // A partition that leaves takes its window with it.
    m.forget_partition(1);
    let s = scrape(&m);
    assert_eq!(
        value(&s, "claimwatch_model_auc_ratio", &[("model", "denial")]),
        Some(1.0)
    );
    m.model_reload(crate::score::reload::Artifact::Denial, false);
    let s = scrape(&m);
    assert_eq!(
        value(
            &s,
            "claimwatch_model_reloads_total",
            &[("model", "denial"), ("outcome", "refused")]
        ),
        Some(1.0)
    );
}

/// The KPIs that need the submission (time to ack and payment, variance, denials by department)
/// are observed whatever the order of a claim's submission and its 277CA/835: here every
/// submission is processed 50 days late, after its acknowledgment and, mostly, its remittances.
#[test]
fn kpis_needing_the_submission_do_not_depend_on_arrival_order() {
    use ClaimStatus::*;
    // Observed once per claim whatever the order: equal in both runs.
    let once = [
        "claimwatch_claims_time_to_ack_seconds_count",
        "claimwatch_claims_time_to_ack_seconds_sum",
        "claimwatch_claims_time_to_payment_seconds_count",
        "claimwatch_claims_time_to_payment_seconds_sum",
    ];
    // Observed at every adjudication (variance) or every denying one (denials): a claim
    // adjudicated more than once (appeal, reversal and re-payment) before its submission arrives
    // is observed once, as it stands then. So the late run sees between (in order - repeats) and
    // (in order).
    let repeated = [
        "claimwatch_revenue_payment_variance_dollars_count",
        "claimwatch_revenue_denials_total",
    ];
    let adjudicated = |u: &ClaimLifecycleUpdate, k: usize| {
        u.cause == UpdateCause::Remittance
            && u.previous_status != Some(u.status)
            && if k == 0 {
                matches!(u.status, Paid | PartiallyPaid | Denied | Forwarded)
                    && u.variance_cents.is_some()
            } else {
                matches!(u.status, Denied | PartiallyPaid)
                    && u.denial_category.as_deref().is_some_and(|c| {
                        crate::refdata::CarcCategory::ALL[labels::carc_category_index(c)]
                            .is_denial()
                    })
            }
    };
    let measure = |delay_days: i64| {
        let m = Metrics::new().unwrap();
        let sample =
            super::sample::sample_outputs_delayed(300, 11, delay_days * crate::model::DAY_MS);
        let mut per_claim: [std::collections::HashMap<&str, u32>; 2] = Default::default();
        let mut late = 0;
        // Claims denied by a remittance before their first submission arrived, whose denial an
        // appeal overturned first: the update bringing the submission no longer shows it.
        let mut denied_early: std::collections::HashSet<&str> = Default::default();
        let mut overturned_early = 0.0;
        for o in &sample.outputs {
            m.observe_output(o);
            let OutputEvent::ClaimLifecycle(u) = o else {
                continue;
            };
            if u.submission_count == 0 && u.status == Denied {
                denied_early.insert(&u.claim_id);
            }
            if u.cause == UpdateCause::Submission
                && u.submission_count == 1
                && denied_early.contains(u.claim_id.as_str())
                && !matches!(u.status, Denied | PartiallyPaid)
            {
                overturned_early += 1.0;
            }
            for (k, counts) in per_claim.iter_mut().enumerate() {
                if adjudicated(u, k) {
                    *counts.entry(&u.claim_id).or_default() += 1;
                }
            }
            late += usize::from(
                u.cause == UpdateCause::Submission && u.submission_count == 1 && u.remit_count > 0,
            );
        }
        let repeats = per_claim.map(|c| f64::from(c.values().map(|k| k - 1).sum::<u32>()));
        let s = scrape(&m);
        let total = |f: &str| s.sum(f, &[]).unwrap_or(0.0);
        let unknown = s
            .sum(
                "claimwatch_revenue_denials_total",
                &[("department", labels::UNKNOWN)],
            )
            .unwrap_or(0.0);
        (
            once.map(total),
            repeated.map(total),
            repeats,
            unknown,
            late,
            overturned_early,
        )
    };
    let (once0, rep0, repeats, unknown0, late0, _) = measure(0);
    let (once50, rep50, _, unknown50, late50, overturned) = measure(50);
    // In event-time order a few submissions already follow their remittance (the generator's
    // late exports); the delay makes it the common case.
    assert!(
        late50 > late0 + 100,
        "the delay must put remittances first for many claims: {late0} -> {late50}"
    );
    for (i, name) in once.iter().enumerate() {
        let (a, b) = (once0[i], once50[i]);
        assert!(a > 0.0, "{name}: nothing observed");
        assert!(
            (a - b).abs() <= 1e-6 * a,
            "{name}: in order {a}, submissions late {b}"
        );
    }
    // Denials that an appeal overturned before the claim's first submission arrived are not
    // counted (the business module's doc): a handful here, with every submission 50 days late.
    assert!(
        overturned < 0.1 * rep0[1],
        "{overturned} denials overturned before their submission"
    );
    let missed = [0.0, overturned];
    for (i, name) in repeated.iter().enumerate() {
        let (a, b) = (rep0[i], rep50[i]);
        assert!(
            a > 0.0 && b <= a && b >= a - repeats[i] - missed[i],
            "{name}: in order {a} ({} repeats, {} overturned before the submission), \
             submissions late {b}",
            repeats[i],
            missed[i]
        );
    }
    // Every denial is counted under the claim's department.
    assert_eq!((unknown0, unknown50), (0.0, 0.0));
}

/// Each output's `topic` label index names its own topic (a wrong index counts one topic's
/// outputs under another's).
#[test]
fn output_index_names_the_outputs_topic() {
    let sample = sample_outputs(300, 3);
    let mut seen = std::collections::BTreeSet::new();
    for o in &sample.outputs {
        assert_eq!(OUTPUT_TOPICS[output_index(o)], o.topic());
        seen.insert(o.topic());
    }
    for t in ["claimwatch.cash-forecast", "claimwatch.provider-kpis"] {
        assert!(seen.contains(t), "the sample has no {t} output");
    }
}
