//! High-cost members on a generated two-year population: the streamed state and records agree
//! with a brute-force recomputation (every member's prediction from its final state, each
//! partition's sketch from the predictions, the threshold against the exact quantile, the flags
//! against the records), and the cost model beats carrying the last half-year's cost forward on
//! the later (evaluation) cut days.

use std::collections::BTreeMap;

use claimwatch::config::CoreConfig;
use claimwatch::core::{partition_for, Engine, Partition};
use claimwatch::generate::{generate, GenerateConfig};
use claimwatch::memberrisk::features::cost_features;
use claimwatch::memberrisk::sketch::{bucket_of, exact_threshold, Sketch, RATIO};
use claimwatch::memberrisk::train::{
    build_examples, cut_days, evaluate, fit, CostObservation, CostTrainOptions,
};
use claimwatch::memberrisk::SKETCH_KEY;
use claimwatch::model::{day_of, InputEvent, MemberRiskAction, MemberRiskEvent, OutputEvent};
use claimwatch::refdata::RefData;
use claimwatch::state::PartitionStore;

const PARTITIONS: u32 = 2;

#[test]
fn member_risk_on_a_generated_population() {
    let g = generate(&GenerateConfig {
        members: 3000,
        seed: 23,
        days: 730,
        ..GenerateConfig::default()
    });
    let config = CoreConfig {
        partitions: PARTITIONS,
        ..CoreConfig::default()
    };
    let top = config.member_risk.top_percent;
    let engine = Engine::new(config, RefData::shared());
    let mut parts: Vec<Partition> = (0..PARTITIONS as i32)
        .map(|i| Partition::open(i, PartitionStore::hot_only(i), &engine).unwrap())
        .collect();
    let mut evs: Vec<InputEvent> = Vec::new();
    evs.extend(g.claims.iter().cloned().map(InputEvent::Claim));
    evs.extend(g.encounters.iter().cloned().map(InputEvent::Encounter));
    evs.extend(g.acks.iter().cloned().map(InputEvent::Ack));
    evs.extend(g.remits.iter().cloned().map(InputEvent::Remit));
    evs.sort_by_key(|e| e.event_time());
    let (mut out, mut rk) = (Vec::new(), Vec::new());
    let mut records: Vec<MemberRiskEvent> = Vec::new();
    let mut costs: Vec<CostObservation> = Vec::new();
    let mut last_paid: BTreeMap<String, i64> = BTreeMap::new();
    for (i, e) in evs.iter().enumerate() {
        let p = partition_for(e.key(), PARTITIONS) as usize;
        parts[p].apply(&engine, e, e.stream().name(), i as i64, &mut out, &mut rk);
        claimwatch::replay::route_rekeyed(&engine, &mut parts, &mut rk, &mut out);
        for o in out.drain(..) {
            match o {
                OutputEvent::MemberRisk(r) => records.push(r),
                OutputEvent::ClaimLifecycle(u) => {
                    if let (Some(m), Some(enc)) = (&u.member_id, &u.encounter_id) {
                        if last_paid.insert(u.claim_id.clone(), u.paid_to_date_cents)
                            != Some(u.paid_to_date_cents)
                        {
                            costs.push(CostObservation {
                                member_id: m.clone(),
                                encounter_id: enc.clone(),
                                paid_cents: u.paid_to_date_cents,
                                event_time: u.event_time,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let refdata = RefData::shared();
    let model = engine.memberrisk.model();

    // 1. Every member in state has its prediction, equal to a recomputation from its state.
    let mut flagged_now = 0;
    let mut in_state = 0;
    for p in &parts {
        let risk = p.member_risk();
        // Members who left state keep a version-only entry (no prediction).
        let predicted = risk.iter().filter(|e| e.value().bucket.is_some()).count();
        assert_eq!(predicted, p.members().len(), "partition {}", p.id());
        let mut predictions = Vec::new();
        let mut sketch = Sketch::default();
        for e in p.members().iter() {
            let st = risk.get(e.key()).expect("a risk state per member");
            let m = e.value();
            let x = cost_features(&refdata, &m.stays, |id| m.costs.get(id).copied(), st.as_of);
            assert_eq!(st.predicted_cents, model.predict(&x).cents);
            assert_eq!(st.bucket, Some(bucket_of(st.predicted_cents)));
            sketch.add(bucket_of(st.predicted_cents));
            predictions.push(st.predicted_cents);
            flagged_now += usize::from(st.in_top);
        }
        in_state += predictions.len();
        // 2. The partition's sketch is exactly the histogram of its members' predictions.
        let streamed = p.risk_sketch().get(SKETCH_KEY).unwrap().clone();
        assert_eq!(streamed, sketch);
        // 3. Its threshold is at most one bucket below the exact top-N % cut value.
        let approx = streamed.threshold_cents(top).unwrap();
        let exact = exact_threshold(&predictions, top).unwrap();
        eprintln!(
            "partition {}: {} members, top {top} % threshold ${:.0} (exact ${:.0})",
            p.id(),
            predictions.len(),
            approx as f64 / 100.0,
            exact as f64 / 100.0
        );
        assert!(approx <= exact && (approx as f64) * RATIO + 1.0 >= exact as f64);
    }

    // 4. Records: per member, versions 1.. in order, ENTERED/EXITED alternating from ENTERED,
    // and the last one says what the state says.
    assert!(records.len() > 20, "records: {}", records.len());
    let mut by_member: BTreeMap<&str, Vec<&MemberRiskEvent>> = BTreeMap::new();
    for r in &records {
        by_member.entry(r.member_id.as_str()).or_default().push(r);
        assert!(r.action == MemberRiskAction::Exited || r.predicted_cents >= r.threshold_cents);
        assert!(r.population_members >= 200);
        assert_eq!(r.output_id, format!("{}:{}", r.member_id, r.version));
    }
    for (member, rs) in &by_member {
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(r.version, i as i64 + 1);
            let want = if i % 2 == 0 {
                MemberRiskAction::Entered
            } else {
                MemberRiskAction::Exited
            };
            assert_eq!(r.action, want);
        }
        let p = &parts[partition_for(member, PARTITIONS) as usize];
        let in_top = p.member_risk().get(member).is_some_and(|s| s.in_top);
        assert_eq!(
            in_top,
            rs.last().unwrap().action == MemberRiskAction::Entered
        );
    }
    eprintln!(
        "{} records for {} members; {flagged_now} of {in_state} members in state flagged at the end ({:.1} %)",
        records.len(),
        by_member.len(),
        100.0 * flagged_now as f64 / in_state.max(1) as f64
    );
    let entered = records
        .iter()
        .find(|r| r.action == MemberRiskAction::Entered)
        .unwrap();
    assert!(!entered.drivers.is_empty());

    // 5. The model against the naive baseline on matured windows of this population (a seed the
    // shipped model was not trained on), then a model fitted here, each on the later cut days.
    let opts = CostTrainOptions::default();
    let first = day_of(evs.first().unwrap().event_time());
    let last = day_of(evs.last().unwrap().event_time());
    let cuts = cut_days(first, last, &opts);
    let examples = build_examples(&refdata, &g.encounters, &costs, &cuts, opts.horizon_days);
    let fitted = fit(&examples, &opts).unwrap();
    let eval_from = examples.len() - fitted.metrics.examples as usize;
    let shipped = evaluate(&model, &examples[eval_from..]);
    eprintln!("{} examples over {} cuts", examples.len(), cuts.len());
    for (name, m) in [("shipped", &shipped), ("fitted here", &fitted.metrics)] {
        eprintln!(
            "{name}: R2 {:.4} (baseline {:.4}), MAE ${:.0} (baseline ${:.0}), top-decile capture {:.3} (baseline {:.3}, oracle {:.3}), {} eval examples",
            m.r2,
            m.baseline_r2,
            m.mae_dollars,
            m.baseline_mae_dollars,
            m.top_decile_capture,
            m.baseline_top_decile_capture,
            m.oracle_top_decile_capture,
            m.examples
        );
        assert!(m.r2 > m.baseline_r2, "{name}: R2");
        assert!(m.r2 > 0.0, "{name}: better than the mean");
        assert!(m.mae_dollars < m.baseline_mae_dollars, "{name}: MAE");
        assert!(
            m.top_decile_capture > m.baseline_top_decile_capture,
            "{name}: top-decile capture"
        );
    }
}
