use super::*;
use crate::core::{Engine, Partition};
use crate::model::fixtures::{claim, remit, stay, t};
use crate::model::{AdjustmentGroup::CO, InputEvent};
use crate::state::PartitionStore;

fn config() -> CoreConfig {
    let mut c = CoreConfig::default();
    c.scoring.collect_training = true;
    c
}

fn run(engine: &Engine, events: &[InputEvent]) -> (Vec<OutputEvent>, Vec<TrainingExample>) {
    let mut p = Partition::open(0, PartitionStore::hot_only(0), engine).unwrap();
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    for (i, e) in events.iter().enumerate() {
        p.apply(engine, e, "in", i as i64, &mut out, &mut costs);
    }
    p.advance_to(engine, t("2025-12-31"), &mut out, &mut costs);
    (out, p.take_training())
}

fn risk(out: &[OutputEvent]) -> Vec<&ReadmissionRiskScore> {
    out.iter()
        .filter_map(|o| match o {
            OutputEvent::ReadmissionRisk(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn readmission_features_ignore_a_readmission_already_in_state() {
    let engine = Engine::with_models(config(), RefData::shared(), Models::embedded());
    let index = stay("M1", "E1", "F1", "2024-03-01", "2024-03-06", "01", "I5023");
    let mut readmit = stay("M1", "E2", "F1", "2024-03-20", "2024-03-25", "01", "J189");
    readmit.secondary_dx = vec!["C787".into(), "N184".into()]; // would raise Charlson
                                                               // In order: the index discharge is scored before the readmission exists.
    let (in_order, ex_a) = run(
        &engine,
        &[
            InputEvent::Encounter(index.clone()),
            InputEvent::Encounter(readmit.clone()),
        ],
    );
    // Out of order: the readmission's record (exported early) is in state when the index's
    // discharge record arrives.
    let mut early = readmit.clone();
    early.event_time = index.event_time - 1;
    let (late, ex_b) = run(
        &engine,
        &[
            InputEvent::Encounter(early),
            InputEvent::Encounter(index.clone()),
        ],
    );
    let a = risk(&in_order)[0];
    let b = risk(&late)
        .into_iter()
        .find(|r| r.encounter_id == "E1")
        .unwrap();
    assert_eq!(a.probability, b.probability);
    assert_eq!(a.drivers, b.drivers);
    assert_eq!(
        (a.lace_points, a.hospital_points),
        (b.lace_points, b.hospital_points)
    );
    // The label matured (readmitted on day 14) and the stored features are those at scoring time.
    let ea = ex_a.iter().find(|e| e.id == "E1").unwrap();
    let eb = ex_b.iter().find(|e| e.id == "E1").unwrap();
    assert!(ea.label && eb.label);
    assert_eq!(ea.features, eb.features);
    let mut st = MemberState::default();
    engine
        .detector
        .apply(&mut st, "M1", &index, &mut Vec::new());
    let direct =
        features::readmit_features(&engine.refdata, &st.stays[0], &st.stays, Some("MEDICARE"));
    assert_eq!(
        ea.features, direct.features,
        "no later stay leaks into the features"
    );
}

#[test]
fn denial_features_and_history_ignore_an_outcome_already_in_state() {
    let engine = Engine::with_models(config(), RefData::shared(), Models::embedded());
    let c = claim("C1", "2024-03-01");
    let mut denied = remit("C1", "2024-03-20", "1", 0, &[(CO, "197", 100_000)]);
    // The 835 arrives before the EHR's late export of the claim.
    denied.event_time = c.event_time - 1;
    let (late, ex) = run(
        &engine,
        &[InputEvent::Remit(denied), InputEvent::Claim(c.clone())],
    );
    let (fresh, _) = run(&engine, &[InputEvent::Claim(c)]);
    let score = |out: &[OutputEvent]| {
        out.iter()
            .find_map(|o| match o {
                OutputEvent::DenialRisk(d) => Some(d.clone()),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(score(&late), score(&fresh), "features as of submission");
    assert_eq!(ex.len(), 1);
    assert!(ex[0].label, "CO-197 with nothing paid is a denial");
    assert_eq!(ex[0].label_detail.as_deref(), Some("AUTHORIZATION"));
}

#[test]
fn fallback_is_flagged_and_drivers_sum_to_the_logit() {
    let engine = Engine::with_models(config(), RefData::shared(), Models::none());
    let (out, _) = run(
        &engine,
        &[
            InputEvent::Claim(claim("C1", "2024-03-01")),
            InputEvent::Encounter(stay(
                "M1",
                "E1",
                "F1",
                "2024-03-01",
                "2024-03-09",
                "03",
                "I5023",
            )),
        ],
    );
    let r = risk(&out)[0];
    assert!(r.fallback && r.model_version == "fallback-lace");
    let z: f64 = -3.9 + r.drivers.iter().map(|d| d.contribution).sum::<f64>();
    assert!((features::sigmoid(z) - r.probability).abs() < 1e-5);
    // LACE: L 8 days -> 5, A emergency -> 3, C (I5023 heart failure + E119 diabetes) -> 2,
    // E 0 = 10.
    assert_eq!(r.lace_points, 10);
    assert_eq!(r.lace_band, "HIGH");
    // HOSPITAL: Hb 11.5 -> 1, emergency -> 1, LOS >= 5 -> 2 = 4.
    assert_eq!(r.hospital_points, 4);
    let d = out
        .iter()
        .find_map(|o| match o {
            OutputEvent::DenialRisk(d) => Some(d),
            _ => None,
        })
        .unwrap();
    assert!(d.fallback);
}

#[test]
fn model_drivers_sum_to_the_logit() {
    let models = Models::embedded();
    for m in [models.denial.as_ref(), models.readmission.as_ref()]
        .into_iter()
        .flatten()
    {
        let n = m.kind.numeric_names().len();
        let f = RawFeatures {
            numeric: (0..n).map(|i| i as f64 * 0.3).collect(),
            categorical: m
                .categorical
                .iter()
                .map(|c| c.levels.first().cloned().unwrap_or_default())
                .collect(),
        };
        let s = m.score(&f);
        let sum: f64 = s.intercept + s.contributions.iter().map(|(_, c)| c).sum::<f64>();
        assert!((sum - s.logit).abs() < 1e-9);
        assert!((features::sigmoid(sum) - s.probability).abs() < 1e-12);
    }
}

#[test]
fn one_score_and_one_alert_per_stay() {
    let mut cfg = config();
    cfg.scoring.readmission_tiers = TierThresholds {
        medium: 0.01,
        high: 0.02,
    };
    let engine = Engine::with_models(cfg, RefData::shared(), Models::none());
    let s = stay("M1", "E1", "F1", "2024-03-01", "2024-03-09", "03", "I5023");
    let mut again = s.clone();
    again.event_id = "enc-E1-upd".into();
    again.event_type = crate::model::EncounterEventType::Update;
    again.event_time += 1000;
    let (out, _) = run(
        &engine,
        &[InputEvent::Encounter(s), InputEvent::Encounter(again)],
    );
    assert_eq!(risk(&out).len(), 1);
    let alerts: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            OutputEvent::HighRiskAlert(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(alerts.len(), 1);
    assert!(!alerts[0].recommended_intervention.is_empty());
    assert!(alerts[0].intervention_cost_cents > 0 && !alerts[0].intervention_source.is_empty());
}

/// The shipped models on a population they were not trained on (another seed), through the
/// core exactly as replay runs it: discrimination and calibration floors, and determinism.
#[test]
fn shipped_models_discriminate_and_are_calibrated_on_a_held_out_population() {
    let models = Models::embedded();
    let (Some(dm), Some(rm)) = (models.denial.clone(), models.readmission.clone()) else {
        panic!("the shipped models must load");
    };
    let g = crate::generate::generate(&crate::generate::GenerateConfig {
        members: 3000,
        seed: 2024_0601,
        ..Default::default()
    });
    let collect = || {
        let engine = Engine::with_models(config(), RefData::shared(), models.clone());
        let mut events: Vec<InputEvent> = g
            .claims
            .iter()
            .cloned()
            .map(InputEvent::Claim)
            .chain(g.encounters.iter().cloned().map(InputEvent::Encounter))
            .chain(g.acks.iter().cloned().map(InputEvent::Ack))
            .chain(g.remits.iter().cloned().map(InputEvent::Remit))
            .collect();
        events.sort_by_key(|e| (e.event_time(), e.stream()));
        run(&engine, &events)
    };
    let (out, ex) = collect();
    let (out2, ex2) = collect();
    assert!(out == out2 && ex == ex2, "deterministic");
    for (m, floor_auc, max_ece) in [(&dm, 0.65, 0.03), (&rm, 0.65, 0.06)] {
        let rows: Vec<&TrainingExample> = ex.iter().filter(|e| e.kind == m.kind).collect();
        let p: Vec<f64> = rows
            .iter()
            .map(|e| m.score(&e.features).probability)
            .collect();
        let y: Vec<bool> = rows.iter().map(|e| e.label).collect();
        let auc = train::auc(&p, &y);
        let (ece, _) = train::ece(&p, &y);
        eprintln!(
            "{}: {} examples, AUC {auc:.4}, ECE {ece:.4}",
            m.kind.as_str(),
            rows.len()
        );
        assert!(
            auc >= floor_auc,
            "{} AUC {auc} < {floor_auc}",
            m.kind.as_str()
        );
        assert!(ece <= max_ece, "{} ECE {ece} > {max_ece}", m.kind.as_str());
    }
}

#[test]
fn metrics_match_hand_computed_values() {
    let y = [false, false, true, true];
    assert_eq!(train::auc(&[0.1, 0.4, 0.35, 0.8], &y), 0.75);
    assert_eq!(train::auc(&[0.5; 4], &y), 0.5);
    let (e, bins) = train::ece(&[0.05, 0.05, 0.95, 0.95], &y);
    assert!((e - 0.05).abs() < 1e-12 && bins.len() == 2);
}
