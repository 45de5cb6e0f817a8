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

/// The attachment feature is the share of the same service's submissions **before the
/// submission day** that sent documentation: a same-day or later submission already processed
/// (records out of order) must not count, while an earlier one must.
#[test]
fn attachment_feature_ignores_submissions_after_the_claims_own() {
    let engine = Engine::with_models(config(), RefData::shared(), Models::none());
    let with_pwk = |id: &str, day: &str| {
        let mut c = claim(id, day);
        c.attachments = vec![crate::model::ClaimAttachment {
            report_type: "09".into(),
            transmission: "EL".into(),
        }];
        c
    };
    let scored = claim("C1", "2024-03-10");
    let paid = remit("C1", "2024-03-30", "1", 100_000, &[]);
    let earlier = with_pwk("C0", "2024-03-08");
    let feature = |events: Vec<InputEvent>| {
        let (_, ex) = run(&engine, &events);
        let e = ex.iter().find(|e| e.id == "C1").expect("C1 matured");
        e.features.numeric[10]
    };
    let base = feature(vec![
        InputEvent::Claim(earlier.clone()),
        InputEvent::Claim(scored.clone()),
        InputEvent::Remit(paid.clone()),
    ]);
    assert!(
        base > 0.0,
        "an earlier submission with documentation counts"
    );
    // A same-day and a later submission of the same service without documentation, already
    // processed when C1 arrives: they would lower the share if they leaked.
    let mut same_day = claim("C2", "2024-03-10");
    same_day.event_time -= 1;
    let later = claim("C3", "2024-03-12");
    let leaky = feature(vec![
        InputEvent::Claim(earlier.clone()),
        InputEvent::Claim(same_day),
        InputEvent::Claim(later),
        InputEvent::Claim(scored.clone()),
        InputEvent::Remit(paid.clone()),
    ]);
    assert_eq!(leaky, base, "features as of the submission day");
    // The feature is 0 when the claim sends its documentation (and AA does not count as sent).
    let mut sent = with_pwk("C1", "2024-03-10");
    let sent_value = feature(vec![
        InputEvent::Claim(earlier.clone()),
        InputEvent::Claim(sent.clone()),
        InputEvent::Remit(paid.clone()),
    ]);
    assert_eq!(sent_value, 0.0);
    sent.attachments[0].transmission = "AA".into();
    let on_request = feature(vec![
        InputEvent::Claim(earlier),
        InputEvent::Claim(sent),
        InputEvent::Remit(paid),
    ]);
    assert_eq!(on_request, base, "available on request is not sent");
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

/// A scored stay's guard against re-scoring outlives the member's state; once the last scored
/// stay is past [`SCORED_GUARD_DAYS`] a member timer removes the entry, and until then a re-sent
/// discharge is not scored again.
#[test]
fn the_scored_stays_leave_with_their_guard() {
    let engine = Engine::with_models(config(), RefData::shared(), Models::embedded());
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &engine).unwrap();
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    let s = stay("M1", "E1", "F1", "2024-03-01", "2024-03-09", "01", "I5023");
    p.apply(
        &engine,
        &InputEvent::Encounter(s.clone()),
        "in",
        0,
        &mut out,
        &mut costs,
    );
    assert_eq!(risk(&out).len(), 1);
    let discharge = crate::model::day_of(t("2024-03-09"));
    // Past the look-back the member has left state; the guard is still there.
    p.advance_to(&engine, t("2025-03-20"), &mut out, &mut costs);
    assert!(
        p.members().get("M1").is_none(),
        "the member left with its look-back"
    );
    let scored = p.score_tables().stays.get("M1").map(|e| e.scored.clone());
    assert_eq!(scored, Some(vec![("E1".to_owned(), discharge)]));
    let mut again = s.clone();
    again.event_id = "enc-E1-resent".into();
    again.event_time = t("2025-03-21");
    out.clear();
    p.apply(
        &engine,
        &InputEvent::Encounter(again),
        "in",
        1,
        &mut out,
        &mut costs,
    );
    assert!(risk(&out).is_empty(), "not scored twice");
    // The guard's last day, then the day after it.
    let last = start_of_day(discharge + SCORED_GUARD_DAYS);
    p.advance_to(&engine, last, &mut out, &mut costs);
    assert!(p.score_tables().stays.get("M1").is_some());
    p.advance_to(&engine, last + 86_400_000, &mut out, &mut costs);
    assert!(p.score_tables().stays.get("M1").is_none());
    assert!(p.members().get("M1").is_none());
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
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let rate: Vec<f64> = y.iter().map(|l| f64::from(u8::from(*l))).collect();
        eprintln!(
            "{}: {} examples, AUC {auc:.4}, ECE {ece:.4}, mean predicted {:.4}, observed {:.4}",
            m.kind.as_str(),
            rows.len(),
            mean(&p),
            mean(&rate)
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

/// Synthetic denial examples: a logistic truth over two numeric features and the payer, so a
/// fit has something to find; `shift` moves the billed amount up and the payer mix over.
fn synthetic_denials(n: usize, seed: u64, shift: bool) -> (Vec<TrainingExample>, train::Truth) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    let mut truth = train::Truth::new();
    let payers = ["P1", "P2", "P3", "P4"];
    for i in 0..n {
        let billed: f64 = rng.gen_range(4.0..9.0) + if shift { 2.5 } else { 0.0 };
        let auth = f64::from(u8::from(rng.gen_bool(0.4)));
        let payer = if shift {
            "P9"
        } else {
            payers[rng.gen_range(0..payers.len())]
        };
        let z = -2.5 + 0.5 * (billed - 6.5) - 1.0 * auth + if payer == "P1" { 1.0 } else { 0.0 };
        let p = features::sigmoid(z);
        let label = rng.gen_bool(p);
        let id = format!("C{seed}-{i}");
        truth.insert(id.clone(), p);
        out.push(TrainingExample {
            kind: ModelKind::Denial,
            id,
            scored_at: i as i64 * 60_000,
            matured_at: i as i64 * 60_000 + 1,
            features: RawFeatures {
                numeric: vec![
                    billed,
                    rng.gen_range(1..4) as f64,
                    rng.gen_range(1..6) as f64,
                    auth,
                    0.0,
                    0.0,
                    0.12 + rng.gen::<f64>() * 0.05,
                    0.03,
                    0.12,
                    0.12,
                    0.0,
                ],
                categorical: vec![
                    payer.to_owned(),
                    "COMMERCIAL".to_owned(),
                    "CPT992".to_owned(),
                    "11".to_owned(),
                    "CARDIOLOGY".to_owned(),
                    "PROFESSIONAL".to_owned(),
                ],
            },
            label,
            label_detail: None,
            baseline_probability: 0.14,
            lace_points: None,
            hospital_points: None,
        });
    }
    (out, truth)
}

fn small_fit() -> (LogisticModel, train::Evaluation) {
    let (ex, truth) = synthetic_denials(3_000, 11, false);
    let opts = train::TrainOptions {
        max_iterations: 100,
        ..Default::default()
    };
    train::fit_evaluated(ModelKind::Denial, &ex, Some(&truth), &opts).unwrap()
}

#[test]
fn psi_is_near_zero_on_the_training_population_and_large_on_a_shifted_one() {
    let (model, _) = small_fit();
    assert_eq!(model.reference.len(), 17, "every feature has a reference");
    let model = Arc::new(model);
    // The same population the reference was computed from (the training slice: the earlier 70 %).
    let (ex, _) = synthetic_denials(3_000, 11, false);
    let psi_of = |rows: &[TrainingExample]| {
        let mut m = monitor::Monitor::new(100, 7);
        for r in rows {
            m.scored(0, Some(&model), &r.features, 100);
        }
        m.snapshot()[0].as_ref().unwrap().psi()
    };
    let same = psi_of(&ex[..2_100]);
    assert_eq!(same.len(), 17);
    for (name, v) in &same {
        let v = v.expect("enough scores");
        assert!(v.abs() < 1e-3, "{name}: PSI {v} on the training population");
    }
    // Another sample of the same process: small.
    let (fresh, _) = synthetic_denials(3_000, 12, false);
    let max_fresh = psi_of(&fresh)
        .iter()
        .filter_map(|(_, v)| *v)
        .fold(0.0, f64::max);
    assert!(max_fresh < 0.05, "same process, PSI {max_fresh}");
    // Shifted: billed amounts up and an unseen payer.
    let (shifted, _) = synthetic_denials(1_000, 13, true);
    let psi = psi_of(&shifted);
    let get = |n: &str| psi.iter().find(|(k, _)| k == n).unwrap().1.unwrap();
    assert!(get("log_billed_dollars") > 1.0, "{psi:?}");
    assert!(get("payer") > 1.0, "{psi:?}");
    assert!(
        get("prior_auth_present") < 0.05,
        "unchanged feature: {psi:?}"
    );
    // Too few scores: unavailable, not a number made of noise.
    assert!(psi_of(&shifted[..50]).iter().all(|(_, v)| v.is_none()));
}

#[test]
fn an_artifact_without_a_drift_reference_loads_and_reports_drift_unavailable() {
    let models = Models::embedded();
    let m = models.denial.clone().expect("shipped denial model");
    let text = serde_json::to_string(m.as_ref()).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("reference");
    let old = Arc::new(LogisticModel::from_json(&v.to_string()).expect("old artifact loads"));
    assert!(old.reference.is_empty());
    let mut mon = monitor::Monitor::new(100, 7);
    let (ex, _) = synthetic_denials(500, 3, false);
    for r in &ex {
        mon.scored(0, Some(&old), &r.features, 10);
        mon.matured(0, Some(&old), old.score(&r.features).probability, r.label);
    }
    let snap = mon.snapshot()[0].clone().unwrap();
    assert!(snap.psi().is_empty(), "drift unavailable");
    assert!(snap.labels.auc().is_some(), "AUC still monitored");
    // A reference that does not match the features is refused.
    let (fitted, _) = small_fit();
    let mut bad: serde_json::Value = serde_json::to_value(&fitted).unwrap();
    bad["reference"][0]["shares"] = serde_json::json!([1.0]);
    assert!(LogisticModel::from_json(&bad.to_string()).is_err());
}

/// The core's monitor, driven by a generated population: its window holds exactly the matured
/// labels (fewer than its capacity here) scored by the model in use, so its AUC and ECE equal a
/// batch computation over the training examples that matured.
#[test]
fn the_core_monitors_matured_labels_like_a_batch_evaluation() {
    let models = Models::embedded();
    let g = crate::generate::generate(&crate::generate::GenerateConfig {
        members: 400,
        seed: 77,
        ..Default::default()
    });
    let mut cfg = config();
    cfg.scoring.monitor_window_labels = 1_000_000;
    let engine = Engine::with_models(cfg, RefData::shared(), models.clone());
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
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &engine).unwrap();
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    for (i, e) in events.iter().enumerate() {
        p.apply(&engine, e, "in", i as i64, &mut out, &mut costs);
    }
    p.advance_to(&engine, t("2026-12-31"), &mut out, &mut costs);
    let ex = p.take_training();
    for (k, m) in [
        models.denial.as_ref().unwrap(),
        models.readmission.as_ref().unwrap(),
    ]
    .into_iter()
    .enumerate()
    {
        let rows: Vec<&TrainingExample> = ex.iter().filter(|e| e.kind == m.kind).collect();
        let probs: Vec<f64> = rows
            .iter()
            .map(|e| round6(m.score(&e.features).probability))
            .collect();
        let labels: Vec<bool> = rows.iter().map(|e| e.label).collect();
        let quantized: Vec<f64> = probs
            .iter()
            .map(|p| monitor::score_bin((p * 1e6).round() as u32) as f64)
            .collect();
        let s = p.score_tables().monitor.model(k).labels().stats().clone();
        assert_eq!(s.count() as usize, rows.len(), "{}", m.kind.as_str());
        assert!(
            rows.len() > 20,
            "{} matured {}",
            m.kind.as_str(),
            rows.len()
        );
        assert_eq!(s.auc(), Some(train::auc(&quantized, &labels)));
        let (batch_ece, _) = train::ece(&probs, &labels);
        assert!((s.ece().unwrap() - batch_ece).abs() < 1e-9);
        // The shipped artifacts carry the training window's distribution: drift is reported.
        assert!(
            !m.reference.is_empty(),
            "shipped {} model has a drift reference",
            m.kind.as_str()
        );
        let snap = p.score_tables().monitor.snapshot()[k].clone().unwrap();
        assert_eq!(snap.psi().is_empty(), m.reference.is_empty());
    }
}

fn denial_versions(out: &[OutputEvent]) -> Vec<(String, String, f64)> {
    out.iter()
        .filter_map(|o| match o {
            OutputEvent::DenialRisk(d) => {
                Some((d.claim_id.clone(), d.model_version.clone(), d.probability))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_reloaded_model_scores_the_next_event_and_a_corrupt_one_is_refused() {
    use reload::{ModelWatcher, ReloadOutcome};
    let dir = tempfile::tempdir().unwrap();
    let shipped = Models::embedded().denial.unwrap();
    let path = dir.path().join("denial.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(shipped.as_ref()).unwrap(),
    )
    .unwrap();
    let (mut watcher, models) = ModelWatcher::start(dir.path()).unwrap();
    assert!(models.readmission.is_none(), "absent file: fallback");
    let engine = Engine::with_models(config(), RefData::shared(), models);
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &engine).unwrap();
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    let mut apply = |p: &mut Partition, id: &str, out: &mut Vec<OutputEvent>| {
        p.apply(
            &engine,
            &InputEvent::Claim(claim(id, "2024-03-01")),
            "in",
            0,
            out,
            &mut costs,
        );
    };
    apply(&mut p, "C1", &mut out);
    assert!(
        watcher.poll(&engine.scorer, &engine.memberrisk).is_empty(),
        "nothing changed"
    );

    // A new version: different coefficients, written in place.
    let mut v2 = LogisticModel::clone(&shipped);
    v2.version = "denial-lr-20990101-reloaded".into();
    v2.intercept += 1.0;
    std::fs::write(&path, serde_json::to_string_pretty(&v2).unwrap()).unwrap();
    assert_eq!(
        watcher.poll(&engine.scorer, &engine.memberrisk),
        vec![ReloadOutcome::Loaded {
            kind: reload::Artifact::Denial,
            version: v2.version.clone()
        }]
    );
    apply(&mut p, "C2", &mut out);

    // A corrupt file, then one of the wrong kind: refused, v2 keeps scoring.
    std::fs::write(&path, "{\"format\": 1, \"kind\": \"denial\", trunc").unwrap();
    let refused = watcher.poll(&engine.scorer, &engine.memberrisk);
    assert!(
        matches!(&refused[..], [ReloadOutcome::Refused { kind: reload::Artifact::Denial, reason }] if reason.contains("denial.json")),
        "{refused:?}"
    );
    apply(&mut p, "C3", &mut out);
    let readmit = Models::embedded().readmission.unwrap();
    std::fs::write(&path, serde_json::to_string(readmit.as_ref()).unwrap()).unwrap();
    assert!(matches!(
        &watcher.poll(&engine.scorer, &engine.memberrisk)[..],
        [ReloadOutcome::Refused { .. }]
    ));
    apply(&mut p, "C4", &mut out);

    let v = denial_versions(&out);
    assert_eq!(v.len(), 4, "every claim scored");
    assert_eq!(v[0].1, shipped.version);
    assert_eq!(v[1].1, v2.version, "switched after the reload");
    assert!(v[1].2 > v[0].2, "with the new coefficients");
    assert_eq!(v[2].1, v2.version, "a corrupt file does not stop scoring");
    assert_eq!(v[3].1, v2.version);
    assert_eq!(v[2].2, v[1].2);
}

/// `cost.json` in the model directory: loaded at start instead of the compiled-in model,
/// reloaded when it changes, refused (the model in use kept) when malformed.
#[test]
fn the_cost_model_is_loaded_and_reloaded_from_the_model_directory() {
    use crate::memberrisk::CostModel;
    use reload::{Artifact, ModelWatcher, ReloadOutcome};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cost.json");
    let mut v1 = CostModel::embedded();
    v1.version = "cost-ridge-20990101-a".into();
    std::fs::write(&path, serde_json::to_string(&v1).unwrap()).unwrap();
    let (mut watcher, models) = ModelWatcher::start(dir.path()).unwrap();
    assert!(models.denial.is_none() && models.readmission.is_none());
    let engine = Engine::with_models(config(), RefData::shared(), models);
    assert_eq!(engine.memberrisk.model().version, v1.version);
    assert!(watcher.poll(&engine.scorer, &engine.memberrisk).is_empty());

    let mut v2 = v1.clone();
    v2.version = "cost-ridge-20990102-b".into();
    v2.intercept += 100.0;
    std::fs::write(&path, serde_json::to_string(&v2).unwrap()).unwrap();
    assert_eq!(
        watcher.poll(&engine.scorer, &engine.memberrisk),
        vec![ReloadOutcome::Loaded {
            kind: Artifact::Cost,
            version: v2.version.clone()
        }]
    );
    assert_eq!(engine.memberrisk.model().version, v2.version);
    assert_eq!(engine.memberrisk.model().intercept, v2.intercept);

    // A file with the wrong features (a denial model) and a truncated one: refused.
    let denial = Models::embedded().denial.unwrap();
    std::fs::write(&path, serde_json::to_string(denial.as_ref()).unwrap()).unwrap();
    let refused = watcher.poll(&engine.scorer, &engine.memberrisk);
    assert!(
        matches!(&refused[..], [ReloadOutcome::Refused { kind: Artifact::Cost, reason }] if reason.contains("cost.json")),
        "{refused:?}"
    );
    std::fs::write(&path, "{\"format\": 1, trunc").unwrap();
    assert!(matches!(
        &watcher.poll(&engine.scorer, &engine.memberrisk)[..],
        [ReloadOutcome::Refused {
            kind: Artifact::Cost,
            ..
        }]
    ));
    assert_eq!(engine.memberrisk.model().version, v2.version, "kept");
    // A malformed cost.json at start is an error, as for the other models; and `load_dir`
    // (replay's `--models`) reads it too.
    assert!(ModelWatcher::start(dir.path()).is_err());
    std::fs::write(&path, serde_json::to_string(&v1).unwrap()).unwrap();
    let loaded = Models::load_dir(dir.path()).unwrap();
    assert_eq!(loaded.cost.unwrap().version, v1.version);
}

/// Open and close tags of an HTML text balance (void elements and `/>` aside): a cheap
/// well-formedness check without an HTML parser.
fn tags_balance(html: &str) -> Result<(), String> {
    const VOID: [&str; 6] = ["meta", "br", "hr", "img", "link", "input"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.starts_with('?') || tag.ends_with('/') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if VOID.contains(&name.as_str()) {
            continue;
        }
        if tag.starts_with('/') {
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        } else {
            stack.push(name);
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

#[test]
fn the_html_report_is_one_self_contained_page_with_charts_and_tables() {
    let (model, ev) = small_fit();
    let html = html::render(&model, &ev).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("denial-report.html");
    std::fs::write(&path, &html).unwrap();
    let back = std::fs::read_to_string(&path).unwrap();
    assert!(back.starts_with("<!DOCTYPE html>"));
    tags_balance(&back).unwrap();
    for needle in [
        "<h1>claimwatch denial model",
        "<h2>Metrics</h2>",
        "<h2>ROC curve and reliability</h2>",
        "<h2>Drivers</h2>",
        "oracle (true probabilities)",
        "payer base rate",
        "log_billed_dollars",
    ] {
        assert!(back.contains(needle), "missing {needle}");
    }
    assert_eq!(
        back.matches("<svg").count(),
        2,
        "ROC and reliability charts"
    );
    assert!(!back.contains("<script"), "no JavaScript");
    assert!(!back.contains("src=\"http"), "nothing external");
}

#[test]
fn another_truth_field_is_scored_on_the_oracles_evaluation_examples() {
    let (mut ex, truth) = synthetic_denials(2_000, 12, false);
    // A replacement in the evaluation slice is outside the oracle's subset (the truth speaks
    // about first submissions).
    let last = ex.len() - 1;
    ex[last].features.numeric[5] = 1.0;
    let opts = train::TrainOptions {
        max_iterations: 100,
        ..Default::default()
    };
    let model = train::fit(ModelKind::Denial, &ex, Some(&truth), &opts).unwrap();
    assert_eq!(
        train::oracle_auc_of(ModelKind::Denial, &ex, &truth, &opts),
        model.metrics.oracle_auc
    );
    // A truth that ranks the evaluation examples by their label is perfect; one covering no
    // evaluation example gives nothing.
    let perfect: train::Truth = ex
        .iter()
        .map(|e| (e.id.clone(), f64::from(u8::from(e.label))))
        .collect();
    assert_eq!(
        train::oracle_auc_of(ModelKind::Denial, &ex, &perfect, &opts),
        Some(1.0)
    );
    let train_only: train::Truth = ex[..100].iter().map(|e| (e.id.clone(), 0.5)).collect();
    assert_eq!(
        train::oracle_auc_of(ModelKind::Denial, &ex, &train_only, &opts),
        None
    );
}

/// Synthetic readmission examples over `days` days of data: the label depends on the member's
/// true prior admissions, the feature counts only those inside the observed history (the data
/// starts on day 0), so early examples understate it (left censoring).
fn synthetic_stays(n: usize, days: i64, seed: u64) -> Vec<TrainingExample> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let at = i as i64 * days * crate::model::DAY_MS / n as i64;
            let day = at / crate::model::DAY_MS;
            let prior: u32 = rng.gen_range(0..5);
            // Each prior admission fell uniformly in the 365 days before: seen if after day 0.
            let seen = (0..prior).filter(|_| rng.gen_range(0..365) < day).count() as f64;
            let label = rng.gen_bool(features::sigmoid(-2.6 + 0.7 * f64::from(prior)));
            let mut numeric = vec![0.0; 15];
            numeric[0] = f64::from(rng.gen_range(40..90u32));
            numeric[6] = seen;
            numeric[5] = seen.min(f64::from(rng.gen_range(0..3u32)));
            TrainingExample {
                kind: ModelKind::Readmission,
                id: format!("E{seed}-{i}"),
                scored_at: at,
                matured_at: at + 30 * crate::model::DAY_MS,
                features: RawFeatures {
                    numeric,
                    categorical: vec![
                        "01".to_owned(),
                        "NONE".to_owned(),
                        "MEDICINE".to_owned(),
                        "MEDICARE".to_owned(),
                    ],
                },
                label,
                label_detail: None,
                baseline_probability: 0.15,
                lace_points: Some(rng.gen_range(0..15)),
                hospital_points: Some(rng.gen_range(0..8)),
            }
        })
        .collect()
}

#[test]
fn examples_without_a_complete_look_back_are_excluded_and_counted() {
    let ex = synthetic_stays(12_000, 730, 5);
    let cut = 365 * crate::model::DAY_MS;
    let early = ex.iter().filter(|e| e.scored_at < cut).count() as u64;
    let opts = train::TrainOptions {
        max_iterations: 100,
        ..Default::default()
    };
    assert_eq!(opts.min_history_days, None);
    let m = train::fit(ModelKind::Readmission, &ex, None, &opts).unwrap();
    // Readmission's default rule: 365 days of history from the earliest scoring time.
    assert_eq!(m.training.min_history_days, 365);
    assert_eq!(m.training.history_start_ms, 0);
    assert_eq!(m.training.short_history_excluded, early);
    assert!(m.training.train_window_ms.0 >= cut);
    let kept = ex.len() as u64 - early;
    assert_eq!(m.training.train_examples + m.metrics.examples, kept);
    assert!(train::report(&m).contains(&format!(
        "history rule: examples need 365 days of observed history (from 1970-01-01, the earliest scoring time): {early} scored earlier excluded"
    )));
    // The oracle's evaluation slice is the same one.
    let by_id: train::Truth = ex
        .iter()
        .map(|e| (e.id.clone(), e.features.numeric[6]))
        .collect();
    let m_truth = train::fit(ModelKind::Readmission, &ex, Some(&by_id), &opts).unwrap();
    assert_eq!(
        train::oracle_auc_of(ModelKind::Readmission, &ex, &by_id, &opts),
        m_truth.metrics.oracle_auc
    );
    // Without the rule the training window understates prior admissions, and the model
    // over-predicts the fully observed evaluation window.
    let all = train::TrainOptions {
        min_history_days: Some(0),
        ..opts.clone()
    };
    let m0 = train::fit(ModelKind::Readmission, &ex, None, &all).unwrap();
    assert_eq!(m0.training.short_history_excluded, 0);
    assert_eq!(m0.training.train_window_ms.0, 0);
    eprintln!(
        "ECE with the rule {:.4} ({} eval), without {:.4} ({} eval)",
        m.metrics.ece, m.metrics.examples, m0.metrics.ece, m0.metrics.examples
    );
    assert!(
        m.metrics.ece < 0.03 && m0.metrics.ece > m.metrics.ece + 0.02,
        "ECE with the rule {}, without {}",
        m.metrics.ece,
        m0.metrics.ece
    );
    // A rule longer than the data leaves nothing to fit: an error naming the exclusion.
    let long = train::TrainOptions {
        min_history_days: Some(800),
        ..opts
    };
    let err = train::fit(ModelKind::Readmission, &ex, None, &long).unwrap_err();
    assert!(err.contains("12000 scored within 800 days"), "{err}");
}

/// Fits a model from a `training.<kind>.jsonl` file of a `claimwatch train` work directory and
/// prints the report (a quick check of fitting options without a replay):
/// `CLAIMWATCH_EXAMPLES=DIR/work/training.readmission.jsonl cargo test --lib fit_from_examples -- --ignored --nocapture`
/// (optional: `CLAIMWATCH_MIN_HISTORY_DAYS`, `CLAIMWATCH_TRUTH=DIR/truth.json` for the oracle,
/// `CLAIMWATCH_BOOTSTRAP=<resamples>` for the spread of the evaluation ECE).
#[test]
#[ignore]
fn fit_from_examples_file() {
    let Ok(path) = std::env::var("CLAIMWATCH_EXAMPLES") else {
        return;
    };
    let ex = train::read_examples(std::path::Path::new(&path)).unwrap();
    let kind = if path.contains("denial") {
        ModelKind::Denial
    } else {
        ModelKind::Readmission
    };
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let mut opts = train::TrainOptions::default();
    if let Some(v) = env("CLAIMWATCH_L2") {
        opts.l2_alpha = v;
    }
    if let Some(v) = env("CLAIMWATCH_MAX_OVERSAMPLING") {
        opts.max_oversampling = v as u32;
    }
    if let Some(v) = env("CLAIMWATCH_OUT_OF_SAMPLE") {
        opts.calibration_out_of_sample = v > 0.0;
    }
    if let Some(v) = env("CLAIMWATCH_CALIBRATION_FRACTION") {
        opts.calibration_fraction = v;
    }
    if let Some(v) = env("CLAIMWATCH_MIN_HISTORY_DAYS") {
        opts.min_history_days = Some(v as u32);
    }
    let truth = std::env::var("CLAIMWATCH_TRUTH").ok().map(|p| {
        let (d, r) = train::read_truth(std::path::Path::new(&p)).unwrap();
        match kind {
            ModelKind::Denial => d,
            ModelKind::Readmission => r,
        }
    });
    let (m, ev) = train::fit_evaluated(kind, &ex, truth.as_ref(), &opts).unwrap();
    eprintln!("{}", train::report(&m));
    // Bootstrap spread of the evaluation ECE (resampling the evaluation examples).
    let reps = env("CLAIMWATCH_BOOTSTRAP").unwrap_or(0.0) as usize;
    if reps > 0 {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let n = ev.probs.len();
        let mut eces: Vec<f64> = (0..reps)
            .map(|_| {
                let (p, l): (Vec<f64>, Vec<bool>) = (0..n)
                    .map(|_| {
                        let i = rng.gen_range(0..n);
                        (ev.probs[i], ev.labels[i])
                    })
                    .unzip();
                train::ece(&p, &l).0
            })
            .collect();
        eces.sort_by(f64::total_cmp);
        let q = |f: f64| eces[((reps as f64 - 1.0) * f).round() as usize];
        eprintln!(
            "bootstrap ECE over {reps} resamples of {n}: 2.5% {:.4}, median {:.4}, 97.5% {:.4}",
            q(0.025),
            q(0.5),
            q(0.975)
        );
    }
}

#[test]
fn the_documentation_and_authorization_drivers_read_the_raw_share() {
    let c = claim("C1", "2024-03-10");
    let mut h = DenialHistory::default();
    h.service.submitted = 15.0;
    h.service.submitted_with_attachment = 15.0;
    let f = features::denial_features(&c, "E/M", &h, 20.0);
    // The model's input is shrunk toward 0 with 20 pseudo-claims...
    assert!(
        (f.numeric[10] - 15.0 / 35.0).abs() < 1e-9,
        "{}",
        f.numeric[10]
    );
    // ...the driver says what happened, and 15 of 15 makes documentation usual.
    let text = explain_denial(10, 0.4, &f, &h);
    assert!(
        text.contains("15 of 15 recent claims") && text.contains("(100 %)"),
        "{text}"
    );
    assert_eq!(
        features::likely_denial_category(&c, &h),
        Some("MISSING_INFORMATION")
    );
    // Authorization wins when the code family usually carries one and the claim has none.
    h.family.submitted = 8.0;
    h.family.submitted_with_auth = 6.0;
    let f = features::denial_features(&c, "E/M", &h, 20.0);
    let text = explain_denial(4, 0.4, &f, &h);
    assert!(text.contains("6 of 8 recent claims (75 %)"), "{text}");
    assert_eq!(
        features::likely_denial_category(&c, &h),
        Some("AUTHORIZATION")
    );
    // Four submissions are too few to make anything usual.
    h.family = Default::default();
    h.service.submitted = 4.0;
    h.service.submitted_with_attachment = 4.0;
    assert_eq!(features::likely_denial_category(&c, &h), None);
}
