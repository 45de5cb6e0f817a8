use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::features::{cost_features, paid_between, COST_NUMERIC};
use super::flow::{MemberRisk, RiskState, SKETCH_KEY};
use super::model::{CostFeatureSpec, CostModel, CostModelError, COST_MODEL_FORMAT};
use super::sketch::{bucket_of, exact_threshold, lower_edge, Sketch, BUCKETS, RATIO};
use super::train::{
    build_examples, fit, regression_metrics, top_decile_capture, CostExample, CostObservation,
    CostTrainOptions,
};
use crate::config::CoreConfig;
use crate::model::fixtures::{d, stay, t};
use crate::model::{EncounterClass, EncounterEventType, MemberRiskAction, OutputEvent};
use crate::readmit::{MemberState, StayRec};
use crate::refdata::RefData;
use crate::state::Table;

fn idx(name: &str) -> usize {
    COST_NUMERIC.iter().position(|n| *n == name).unwrap()
}

fn rec(e: &crate::model::Encounter) -> StayRec {
    StayRec::from_event(e)
}

#[test]
fn features_count_the_365_days_to_the_cut_and_nothing_after() {
    let refdata = RefData::shared();
    let cut = d("2024-12-31");
    // Heart failure stay inside the window (admitted cut-364), 4 days.
    let a = rec(&stay(
        "M1",
        "E1",
        "F1",
        "2024-01-02",
        "2024-01-06",
        "01",
        "I509",
    ));
    // Admitted exactly 365 days before the cut: outside.
    let b = rec(&stay(
        "M1",
        "E2",
        "F1",
        "2024-01-01",
        "2024-01-03",
        "01",
        "J189",
    ));
    // After the cut: never read.
    let c = rec(&stay(
        "M1",
        "E3",
        "F1",
        "2025-01-01",
        "2025-01-02",
        "01",
        "C341",
    ));
    // An ED visit in the last 91 days.
    let mut ed = stay("M1", "E4", "F1", "2024-11-15", "2024-11-15", "01", "R079");
    ed.encounter_class = EncounterClass::Emergency;
    let ed = rec(&ed);
    // A cancelled stay inside the window.
    let mut x = stay("M1", "E5", "F1", "2024-06-01", "2024-06-03", "01", "N183");
    x.event_type = EncounterEventType::Cancel;
    let x = rec(&x);
    let stays = vec![a, b, c, ed, x];
    let paid: BTreeMap<&str, i64> = [
        ("E1", 1_000_000),
        ("E2", 5_000_000),
        ("E3", 7_000_000),
        ("E4", 50_000),
        ("E5", 9_000_000),
    ]
    .into_iter()
    .collect();
    let f = cost_features(&refdata, &stays, |e| paid.get(e).copied(), cut);
    assert_eq!(f[idx("paid_12m_dollars")], 10_500.0);
    assert_eq!(f[idx("paid_3m_dollars")], 500.0);
    assert_eq!(f[idx("admissions_12m")], 1.0);
    assert_eq!(f[idx("ed_visits_12m")], 1.0);
    assert_eq!(f[idx("los_days_12m")], 4.0);
    assert_eq!(f[idx("congestive_heart_failure")], 1.0);
    assert_eq!(f[idx("diabetes")], 1.0, "the fixture's secondary E119");
    assert_eq!(f[idx("malignancy")], 0.0, "C341 is after the cut");
    assert_eq!(f[idx("renal_disease")], 0.0, "N183 is cancelled");
    assert_eq!(f[idx("hrrp_heart_failure_stay")], 1.0);
    assert_eq!(f[idx("hrrp_ami_or_pneumonia_stay")], 0.0, "J189 is outside");
    // Born 1950-06-01: 74 on the cut day.
    assert_eq!(f[idx("age_65_74")], 1.0);
    assert_eq!(f[idx("age_75_plus")], 0.0);
    // The CHF (1) and diabetes (1) Charlson weights.
    assert_eq!(f[idx("charlson_index")], 2.0);
    // The label window (cut, cut + 182] holds E3 only; cancelled stays never count.
    let final_costs: BTreeMap<String, i64> =
        paid.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    assert_eq!(
        paid_between(&stays, &final_costs, cut, cut + 182),
        7_000_000
    );
    assert_eq!(
        paid_between(&stays, &final_costs, cut - 182, cut),
        50_000,
        "E5 cancelled"
    );
}

#[test]
fn bucket_edges_are_exact() {
    assert_eq!(bucket_of(0), 0);
    assert_eq!(bucket_of(99), 0);
    assert_eq!(bucket_of(100), 1);
    for i in 1..BUCKETS - 1 {
        let edge = lower_edge(i).ceil() as i64;
        assert_eq!(bucket_of(edge) as usize, i, "edge of bucket {i}");
        if edge > 100 && (edge - 1) as f64 >= lower_edge(i - 1) {
            assert!((bucket_of(edge - 1) as usize) < i);
        }
    }
    assert_eq!(bucket_of(i64::MAX) as usize, BUCKETS - 1);
}

#[test]
fn sketch_threshold_is_within_one_bucket_of_the_exact_quantile() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for round in 0..20 {
        let n = rng.gen_range(1..4000);
        // Heavy-tailed costs (log-normal-ish) with a lump at zero, as predictions are.
        let values: Vec<i64> = (0..n)
            .map(|_| {
                if rng.gen_bool(0.2) {
                    0
                } else {
                    (rng.gen_range(4.0f64..16.0)).exp() as i64
                }
            })
            .collect();
        for percent in [1.0, 5.0, 10.0, 50.0] {
            let mut s = Sketch::default();
            for v in &values {
                s.add(bucket_of(*v));
            }
            let approx = s.threshold_cents(percent).unwrap();
            let exact = exact_threshold(&values, percent).unwrap();
            assert!(
                approx <= exact,
                "round {round} p {percent}: {approx} > {exact}"
            );
            assert!(
                exact < 100 || (approx as f64) * RATIO + 1.0 >= exact as f64,
                "round {round} p {percent}: {approx} more than a bucket below {exact}"
            );
            // Every member of the exact top set is flagged.
            let want = ((n as f64) * percent / 100.0).ceil() as usize;
            let flagged = values.iter().filter(|v| **v >= approx).count();
            assert!(flagged >= want);
        }
    }
}

#[test]
fn sketch_does_not_depend_on_the_order_of_updates() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let values: Vec<i64> = (0..500).map(|_| rng.gen_range(0..10_000_000)).collect();
    let mut a = Sketch::default();
    for v in &values {
        a.add(bucket_of(*v));
    }
    // Add everything in reverse, plus extra values that are then removed.
    let mut b = Sketch::default();
    for v in values.iter().rev() {
        b.add(bucket_of(*v + 1_000_000_000));
        b.add(bucket_of(*v));
    }
    for v in &values {
        b.remove(bucket_of(*v + 1_000_000_000));
    }
    assert_eq!(a, b);
    assert_eq!(Sketch::default().threshold_cents(5.0), None);
}

/// A model predicting 1 x paid_12m dollars (mean 0, std 1, intercept 0).
fn paid_model() -> CostModel {
    CostModel {
        format: COST_MODEL_FORMAT,
        version: "test".into(),
        horizon_days: 182,
        intercept: 0.0,
        features: COST_NUMERIC
            .iter()
            .map(|n| CostFeatureSpec {
                name: (*n).to_owned(),
                doc: String::new(),
                mean: 0.0,
                std: 1.0,
                coefficient: if *n == "paid_12m_dollars" { 1.0 } else { 0.0 },
            })
            .collect(),
        metrics: Default::default(),
        training: Default::default(),
    }
}

#[test]
fn the_embedded_model_parses_and_drivers_sum_to_the_prediction() {
    let m = CostModel::embedded();
    assert_eq!(m.features.len(), COST_NUMERIC.len());
    assert!(m.metrics.examples > 0, "the shipped model was trained");
    let mut x = [0.0; COST_NUMERIC.len()];
    x[idx("paid_12m_dollars")] = 40_000.0;
    x[idx("admissions_12m")] = 3.0;
    x[idx("charlson_index")] = 4.0;
    let p = m.predict(&x);
    let sum = m.intercept + p.contributions.iter().sum::<f64>();
    assert_eq!(p.cents, (sum.max(0.0) * 100.0).round() as i64);
    let drivers = m.drivers(&x, &p, 3);
    assert_eq!(drivers.len(), 3);
    assert!(drivers[0].contribution_dollars.abs() >= drivers[1].contribution_dollars.abs());
    assert!(drivers.iter().all(|d| !d.explanation.is_empty()));
    // A model with other features is refused.
    let mut bad = serde_json::to_value(&m).unwrap();
    bad["features"][0]["name"] = "something_else".into();
    assert!(matches!(
        CostModel::parse(&bad.to_string()),
        Err(CostModelError::Features { .. })
    ));
    bad["format"] = 99.into();
    assert!(matches!(
        CostModel::parse(&bad.to_string()),
        Err(CostModelError::Format { found: 99 })
    ));
}

fn member_with_paid(id: &str, cents: i64) -> MemberState {
    let s = rec(&stay(
        id,
        &format!("E-{id}"),
        "F1",
        "2024-03-01",
        "2024-03-03",
        "01",
        "I509",
    ));
    MemberState {
        costs: [(s.encounter_id.clone(), cents)].into_iter().collect(),
        stays: vec![s],
        ..Default::default()
    }
}

#[test]
fn members_enter_and_leave_the_top_percent() {
    let mut config = CoreConfig::default();
    config.member_risk.top_percent = 10.0;
    config.member_risk.min_members = 10;
    let flow = MemberRisk::new(RefData::shared(), &config, Arc::new(paid_model()));
    let mut states: Table<RiskState> = Table::new("member_risk", b'k');
    let mut sketch: Table<Sketch> = Table::new("risk_sketch", b'u');
    let mut out = Vec::new();
    let at = t("2024-04-01");
    // 9 members: below min_members, nothing is flagged however large.
    for i in 0..9 {
        let m = member_with_paid(&format!("M{i}"), 100_000 * (i + 1));
        flow.refresh(
            &mut states,
            &mut sketch,
            &format!("M{i}"),
            Some(&m),
            at,
            &mut out,
        );
    }
    assert!(out.is_empty());
    // The 10th member is the largest: top 10 % of 10 is one member.
    let big = member_with_paid("M9", 10_000_000);
    flow.refresh(&mut states, &mut sketch, "M9", Some(&big), at, &mut out);
    let recs: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            OutputEvent::MemberRisk(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.member_id, "M9");
    assert_eq!(r.action, MemberRiskAction::Entered);
    assert_eq!((r.version, r.output_id.as_str()), (1, "M9:1"));
    assert_eq!(r.predicted_cents, 10_000_000);
    assert_eq!(r.paid_12m_cents, 10_000_000);
    assert_eq!(r.population_members, 10);
    assert!(r.threshold_cents <= 10_000_000 && r.threshold_cents > 900_000);
    assert_eq!(r.drivers[0].feature, "paid_12m_dollars");
    // The same state again: no record.
    out.clear();
    flow.refresh(&mut states, &mut sketch, "M9", Some(&big), at, &mut out);
    assert!(out.is_empty());
    // It leaves state: EXITED, version 2, and the sketch forgets it.
    flow.refresh(&mut states, &mut sketch, "M9", None, at, &mut out);
    match out.as_slice() {
        [OutputEvent::MemberRisk(r)] => {
            assert_eq!(r.action, MemberRiskAction::Exited);
            assert_eq!(r.output_id, "M9:2");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sketch.get(SKETCH_KEY).unwrap().total, 9);
    let kept = states.get("M9").unwrap().clone();
    assert_eq!((kept.version, kept.bucket, kept.in_top), (2, None, false));
    // It comes back: its versions continue.
    out.clear();
    flow.refresh(&mut states, &mut sketch, "M9", Some(&big), at, &mut out);
    match out.as_slice() {
        [OutputEvent::MemberRisk(r)] => assert_eq!(r.output_id, "M9:3"),
        other => panic!("{other:?}"),
    }
    // A member never flagged leaves no entry behind.
    out.clear();
    flow.refresh(&mut states, &mut sketch, "M0", None, at, &mut out);
    assert!(out.is_empty() && states.get("M0").is_none());
}

/// A model swapped in (the service's hot reload) reaches every clone of the flow and predicts
/// from the next refresh of each member; records say which model made them.
#[test]
fn a_swapped_model_predicts_from_the_next_refresh_in_every_clone() {
    let mut config = CoreConfig::default();
    config.member_risk.top_percent = 10.0;
    config.member_risk.min_members = 10;
    let flow = MemberRisk::new(RefData::shared(), &config, Arc::new(paid_model()));
    let partition_copy = flow.clone();
    let mut states: Table<RiskState> = Table::new("member_risk", b'k');
    let mut sketch: Table<Sketch> = Table::new("risk_sketch", b'u');
    let mut out = Vec::new();
    let at = t("2024-04-01");
    for i in 0..10 {
        let paid = if i == 9 {
            10_000_000
        } else {
            100_000 * (i + 1)
        };
        let m = member_with_paid(&format!("M{i}"), paid);
        flow.refresh(
            &mut states,
            &mut sketch,
            &format!("M{i}"),
            Some(&m),
            at,
            &mut out,
        );
    }
    let entered: Vec<_> = member_risk_records(&out);
    assert_eq!(entered.len(), 1);
    assert_eq!(entered[0].model_version, "test");
    // A model that predicts nothing for anyone.
    let mut flat = paid_model();
    flat.version = "cost-ridge-flat".into();
    for f in &mut flat.features {
        f.coefficient = 0.0;
    }
    flow.swap_model(Arc::new(flat));
    assert_eq!(partition_copy.model().version, "cost-ridge-flat");
    out.clear();
    let big = member_with_paid("M9", 10_000_000);
    partition_copy.refresh(&mut states, &mut sketch, "M9", Some(&big), at, &mut out);
    let exited = member_risk_records(&out);
    assert_eq!(exited.len(), 1, "M9's prediction fell below the others'");
    assert_eq!(exited[0].action, MemberRiskAction::Exited);
    assert_eq!(exited[0].predicted_cents, 0);
    assert_eq!(exited[0].model_version, "cost-ridge-flat");
    assert_eq!(states.get("M9").unwrap().predicted_cents, 0);
    // Members not refreshed since keep the prediction of the model that made it.
    assert_eq!(states.get("M8").unwrap().predicted_cents, 900_000);
}

fn member_risk_records(out: &[OutputEvent]) -> Vec<crate::model::MemberRiskEvent> {
    out.iter()
        .filter_map(|o| match o {
            OutputEvent::MemberRisk(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn pseudonymised_records_carry_no_member_id() {
    let mut config = CoreConfig::default();
    config.member_risk.min_members = 1;
    config.deidentify.pseudonym_secret = Some(crate::config::Secret(
        "a-test-secret-of-32-bytes-000000".into(),
    ));
    let flow = MemberRisk::new(RefData::shared(), &config, Arc::new(paid_model()));
    let (mut states, mut sketch) = (
        Table::new("member_risk", b'k'),
        Table::new("risk_sketch", b'u'),
    );
    let mut out = Vec::new();
    let m = member_with_paid("M-SECRET-1", 500_000);
    flow.refresh(
        &mut states,
        &mut sketch,
        "M-SECRET-1",
        Some(&m),
        t("2024-04-01"),
        &mut out,
    );
    let text = format!("{out:?}");
    assert!(!out.is_empty());
    assert!(!text.contains("M-SECRET-1"));
    assert!(text.contains(&crate::caregaps::pseudonym(
        b"a-test-secret-of-32-bytes-000000",
        "M-SECRET-1"
    )));
}

#[test]
fn examples_see_only_what_was_known_at_the_cut() {
    let refdata = RefData::shared();
    let a = stay("M1", "E1", "F1", "2024-05-01", "2024-05-03", "01", "I509");
    let b = stay("M1", "E2", "F1", "2024-08-01", "2024-08-03", "01", "I509");
    // M2 has no stay before the cut: no example.
    let c = stay("M2", "E3", "F1", "2024-08-01", "2024-08-03", "01", "I509");
    let costs = vec![
        // E1 is paid in two steps, the second after the cut.
        CostObservation {
            member_id: "M1".into(),
            encounter_id: "E1".into(),
            paid_cents: 100_000,
            event_time: t("2024-06-01"),
        },
        CostObservation {
            member_id: "M1".into(),
            encounter_id: "E1".into(),
            paid_cents: 300_000,
            event_time: t("2024-07-15"),
        },
        CostObservation {
            member_id: "M1".into(),
            encounter_id: "E2".into(),
            paid_cents: 2_000_000,
            event_time: t("2024-09-01"),
        },
    ];
    let cut = d("2024-07-01");
    let ex = build_examples(&refdata, &[a, b, c], &costs, &[cut], 182);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].features[idx("paid_12m_dollars")], 1_000.0);
    assert_eq!(
        ex[0].features[idx("admissions_12m")],
        1.0,
        "E2 is after the cut"
    );
    assert_eq!(ex[0].label_cents, 2_000_000);
    assert_eq!(ex[0].baseline_cents, 100_000);
}

#[test]
fn metrics_match_hand_computation() {
    let actual = [0.0, 10.0, 0.0, 30.0, 0.0, 0.0, 0.0, 0.0, 0.0, 60.0];
    // The top 10 % (1 of 10) by score is the last: 60 of 100.
    let score = [0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0];
    assert_eq!(top_decile_capture(&score, &actual), 0.6);
    let (r2, mae, _) = regression_metrics(&actual, &actual);
    assert_eq!((r2, mae), (1.0, 0.0));
    let mean = [10.0; 10];
    let (r2, mae, _) = regression_metrics(&mean, &actual);
    assert!(r2.abs() < 1e-12);
    assert_eq!(mae, 14.0);
}

#[test]
fn the_fit_recovers_a_linear_cost_and_beats_carrying_forward() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut examples = Vec::new();
    for cut in 0..10 {
        for _ in 0..200 {
            let mut f = [0.0; COST_NUMERIC.len()];
            f[idx("admissions_12m")] = f64::from(rng.gen_range(0..4));
            f[idx("charlson_index")] = f64::from(rng.gen_range(0..6));
            f[idx("paid_12m_dollars")] = rng.gen_range(0.0..20_000.0);
            let label = 4_000.0 * f[idx("admissions_12m")]
                + 1_000.0 * f[idx("charlson_index")]
                + rng.gen_range(-500.0..500.0);
            examples.push(CostExample {
                cut,
                features: f,
                label_cents: (label.max(0.0) * 100.0) as i64,
                baseline_cents: (f[idx("paid_12m_dollars")] * 50.0) as i64,
            });
        }
    }
    let m = fit(&examples, &CostTrainOptions::default()).unwrap();
    assert!(m.metrics.r2 > 0.95, "{:?}", m.metrics);
    assert!(m.metrics.mae_dollars < m.metrics.baseline_mae_dollars);
    assert_eq!(m.metrics.examples, 600, "cuts 7, 8, 9 evaluate");
    let admits = &m.features[idx("admissions_12m")];
    assert!(((admits.coefficient / admits.std) - 4_000.0).abs() < 200.0);
}

#[test]
fn records_round_trip_in_avro_and_json() {
    let mut config = CoreConfig::default();
    config.member_risk.min_members = 1;
    let flow = MemberRisk::new(RefData::shared(), &config, Arc::new(CostModel::embedded()));
    let (mut states, mut sketch) = (
        Table::new("member_risk", b'k'),
        Table::new("risk_sketch", b'u'),
    );
    let mut out = Vec::new();
    let m = member_with_paid("M1", 2_500_000);
    flow.refresh(
        &mut states,
        &mut sketch,
        "M1",
        Some(&m),
        t("2024-04-01"),
        &mut out,
    );
    flow.refresh(
        &mut states,
        &mut sketch,
        "M1",
        None,
        t("2024-04-02"),
        &mut out,
    );
    assert_eq!(out.len(), 2, "ENTERED, then EXITED on leaving state");
    let codec = crate::codec::AvroCodec::new();
    for event in &out {
        for format in [crate::codec::Format::Avro, crate::codec::Format::Json] {
            let mut buf = Vec::new();
            crate::runtime::wire::encode_output(&codec, event, format, &mut buf).unwrap();
            let back = crate::runtime::wire::decode_output(&codec, "claimwatch.member-risk", &buf)
                .unwrap();
            assert_eq!(&back, event);
        }
    }
}
