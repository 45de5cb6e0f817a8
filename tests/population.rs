//! Population analytics on a generated population: the streamed readmission summary equals a
//! brute-force batch computation from the final outputs, the ROI's expected avoided readmissions
//! agree with the generator's true probabilities, and the aggregate does not depend on the order
//! the facts arrive in.

#[path = "support/fixture_dir.rs"]
mod fixture_dir;
#[path = "support/replayed.rs"]
mod replayed;
use replayed::{lines, Fixture};

use std::collections::BTreeMap;
use std::path::Path;

use claimwatch::config::CoreConfig;
use claimwatch::core::{partition_for, Engine, Partition};
use claimwatch::generate::Generated;
use claimwatch::model::{
    start_of_day, ClaimLifecycleUpdate, InputEvent, InterventionRoi, OutputEvent,
    ReadmissionAction, ReadmissionEvent, ReadmissionRiskScore, ReadmissionSummary, Rekeyed,
    RiskTier,
};
use claimwatch::refdata::RefData;
use claimwatch::state::PartitionStore;

const PARTITIONS: u32 = 4;

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        Fixture::replay(
            3000,
            11,
            CoreConfig {
                partitions: PARTITIONS,
                ..CoreConfig::default()
            },
        )
    })
}

/// The latest record per key.
fn latest<T: serde::de::DeserializeOwned>(
    path: &Path,
    key: impl Fn(&T) -> String,
) -> BTreeMap<String, T> {
    lines::<T>(path).into_iter().map(|v| (key(&v), v)).collect()
}

/// The input events with their keys, as the generator wrote them.
fn events(g: &Generated) -> Vec<InputEvent> {
    let mut v: Vec<InputEvent> = Vec::new();
    v.extend(g.claims.iter().cloned().map(InputEvent::Claim));
    v.extend(g.encounters.iter().cloned().map(InputEvent::Encounter));
    v.extend(g.acks.iter().cloned().map(InputEvent::Ack));
    v.extend(g.remits.iter().cloned().map(InputEvent::Remit));
    v
}

/// A matured index stay as the batch computation sees it.
struct BatchStay {
    dx: String,
    cohort: Option<String>,
    tier: RiskTier,
    probability: f64,
}

/// Per-group totals computed from the final outputs alone.
#[derive(Debug, Default, PartialEq, Clone)]
struct Totals {
    index_stays: i64,
    readmissions: i64,
    planned: i64,
    preventable: i64,
    readmission_paid_cents: i64,
    readmissions_with_paid: i64,
    preventable_paid_cents: i64,
}

fn streamed(s: &ReadmissionSummary) -> Totals {
    Totals {
        index_stays: s.index_stays,
        readmissions: s.readmissions,
        planned: s.planned_readmissions,
        preventable: s.preventable_readmissions,
        readmission_paid_cents: s.readmission_paid_cents,
        readmissions_with_paid: s.readmissions_with_paid,
        preventable_paid_cents: s.preventable_paid_cents,
    }
}

/// The brute force: matured index stays = readmission-risk scores whose 30-day window closed by
/// their partition's last event time and that were not cancelled; outcome = the final standing
/// readmission record of the stay; paid amounts = the final lifecycle of the claims billing the
/// encounters.
fn batch(f: &Fixture) -> (BTreeMap<String, Totals>, BTreeMap<String, BatchStay>) {
    let out = f.out();
    let refdata = RefData::shared();
    let mut watermark = vec![i64::MIN; PARTITIONS as usize];
    for e in events(&f.g) {
        let p = partition_for(e.key(), PARTITIONS) as usize;
        watermark[p] = watermark[p].max(e.event_time());
    }
    // Encounters whose latest record is a cancel.
    let mut last_record: BTreeMap<String, (i64, bool)> = BTreeMap::new();
    for e in &f.g.encounters {
        let cancel = e.event_type == claimwatch::model::EncounterEventType::Cancel;
        let entry = last_record
            .entry(e.encounter_id.clone())
            .or_insert((e.event_time, cancel));
        if e.event_time >= entry.0 {
            *entry = (e.event_time, cancel);
        }
    }
    let scores: Vec<ReadmissionRiskScore> = lines(&out.join("claimwatch.readmission-risk.jsonl"));
    let readmissions =
        latest::<ReadmissionEvent>(&out.join("claimwatch.readmissions.jsonl"), |e| {
            e.index_encounter_id.clone()
        });
    let mut paid: BTreeMap<String, i64> = BTreeMap::new();
    for u in lines::<ClaimLifecycleUpdate>(&out.join("claimwatch.claim-lifecycle.jsonl")) {
        if let Some(enc) = &u.encounter_id {
            if u.remit_count > 0 {
                paid.insert(enc.clone(), u.paid_to_date_cents);
            }
        }
    }
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    let mut stays = BTreeMap::new();
    for s in scores {
        let p = partition_for(&s.member_id, PARTITIONS) as usize;
        if start_of_day(s.discharge_date + 31) > watermark[p] {
            continue;
        }
        if last_record.get(&s.encounter_id).is_some_and(|r| r.1) {
            continue;
        }
        let re = readmissions
            .get(&s.encounter_id)
            .filter(|r| r.action != ReadmissionAction::Retracted);
        let dx = match re {
            Some(r) => r.index_dx_group.clone(),
            None => {
                let enc =
                    f.g.encounters
                        .iter()
                        .find(|e| e.encounter_id == s.encounter_id)
                        .unwrap();
                refdata.dx_body_system(&enc.principal_dx).to_owned()
            }
        };
        let mut t = Totals {
            index_stays: 1,
            ..Totals::default()
        };
        if let Some(r) = re {
            if r.planned {
                t.planned = 1;
            } else {
                t.readmissions = 1;
                let preventable = refdata
                    .ambulatory_care_sensitive(&r.readmit_principal_dx)
                    .is_some()
                    || refdata.dx_body_system(&r.readmit_principal_dx) == dx;
                t.preventable = i64::from(preventable);
                // Paid claims only: a denied readmission claim ($0) is no cost observation.
                if let Some(p) = paid.get(&r.readmit_encounter_id).filter(|p| **p > 0) {
                    t.readmission_paid_cents = *p;
                    t.readmissions_with_paid = 1;
                    if preventable {
                        t.preventable_paid_cents = *p;
                    }
                }
            }
        }
        let mut keys = vec!["all".to_owned(), format!("dx:{dx}")];
        if let Some(c) = &s.hrrp_cohort {
            keys.push(format!("cohort:{c}"));
        }
        for k in keys {
            let e = totals.entry(k).or_default();
            e.index_stays += t.index_stays;
            e.readmissions += t.readmissions;
            e.planned += t.planned;
            e.preventable += t.preventable;
            e.readmission_paid_cents += t.readmission_paid_cents;
            e.readmissions_with_paid += t.readmissions_with_paid;
            e.preventable_paid_cents += t.preventable_paid_cents;
        }
        stays.insert(
            s.encounter_id.clone(),
            BatchStay {
                dx,
                cohort: s.hrrp_cohort.clone(),
                tier: s.tier,
                probability: s.probability,
            },
        );
    }
    (totals, stays)
}

#[test]
fn the_streamed_summary_equals_the_batch_computation() {
    let f = fixture();
    let (want, stays) = batch(f);
    let got =
        latest::<ReadmissionSummary>(&f.out().join("claimwatch.readmission-summary.jsonl"), |s| {
            s.group.clone()
        });
    let all = &want["all"];
    assert!(
        all.index_stays > 300 && all.readmissions > 40 && all.readmissions_with_paid > 20,
        "population too small to mean anything: {all:?}"
    );
    let cohorts = stays.values().filter(|s| s.cohort.is_some()).count();
    assert!(cohorts > 50, "HRRP cohort stays: {cohorts}");
    let got_totals: BTreeMap<String, Totals> =
        got.iter().map(|(k, s)| (k.clone(), streamed(s))).collect();
    // Groups whose stays were all taken back stay in the stream with zeros.
    let got_nonzero: BTreeMap<String, Totals> = got_totals
        .into_iter()
        .filter(|(_, t)| *t != Totals::default())
        .collect();
    assert_eq!(got_nonzero, want);
    // Output ids and versions: `<group>:<version>`, versions 1, 2, ... per group.
    let mut versions: BTreeMap<String, i64> = BTreeMap::new();
    for s in lines::<ReadmissionSummary>(&f.out().join("claimwatch.readmission-summary.jsonl")) {
        let v = versions.entry(s.group.clone()).or_default();
        *v += 1;
        assert_eq!(s.version, *v);
        assert_eq!(s.output_id, format!("{}:{}", s.group, s.version));
    }
    // The expected readmissions are the probabilities at discharge.
    let expected: f64 = stays.values().map(|s| s.probability).sum();
    assert!((got["all"].expected_readmissions - expected).abs() < 0.01);
}

#[test]
fn roi_expected_avoided_agrees_with_the_true_probabilities() {
    let f = fixture();
    let (totals, stays) = batch(f);
    let avg_paid = |dx: &str| {
        let avg = |t: &Totals| {
            (t.readmissions_with_paid > 0)
                .then(|| t.readmission_paid_cents as f64 / t.readmissions_with_paid as f64)
        };
        totals
            .get(&format!("dx:{dx}"))
            .and_then(avg)
            .or_else(|| avg(&totals["all"]))
            .unwrap()
    };
    let truth: BTreeMap<&str, f64> =
        f.g.truth
            .readmissions
            .iter()
            .map(|t| (t.encounter_id.as_str(), t.probability))
            .collect();
    let rois = latest::<InterventionRoi>(&f.out().join("claimwatch.intervention-roi.jsonl"), |r| {
        r.intervention_id.clone()
    });
    let config = CoreConfig::default();
    assert_eq!(rois.len(), config.scoring.interventions.len());
    for iv in &config.scoring.interventions {
        let r = &rois[&iv.key()];
        for c in &r.cutoffs {
            let targeted: Vec<&str> = stays
                .iter()
                .filter(|(_, s)| s.tier >= c.min_tier)
                .map(|(id, _)| id.as_str())
                .collect();
            assert_eq!(
                c.members_targeted,
                targeted.len() as i64,
                "{} {:?}",
                r.intervention_id,
                c.min_tier
            );
            let true_expected: f64 = targeted.iter().filter_map(|id| truth.get(id)).sum();
            let covered = targeted.iter().filter(|id| truth.contains_key(*id)).count();
            assert!(
                covered * 100 >= targeted.len() * 95,
                "truth covers {covered} of {}",
                targeted.len()
            );
            // Gross savings from the batch's own per-group average readmission cost.
            let gross: f64 = stays
                .values()
                .filter(|s| s.tier >= c.min_tier)
                .map(|s| iv.expected_relative_reduction * s.probability * avg_paid(&s.dx))
                .sum();
            assert!(
                (c.gross_savings_cents as f64 - gross).abs() <= 1.0 + gross * 1e-6,
                "{} {:?}: gross {} vs batch {gross:.0}",
                r.intervention_id,
                c.min_tier,
                c.gross_savings_cents
            );
            assert_eq!(c.programme_cost_cents, c.members_targeted * iv.cost_cents);
            let true_avoided = iv.expected_relative_reduction * true_expected;
            eprintln!(
                "{} {:?}: targeted {}, avoided streamed {:.2} vs true {true_avoided:.2}",
                r.intervention_id, c.min_tier, c.members_targeted, c.expected_avoided
            );
            // Tolerance: the calibrated model against the generator's true probabilities, over a
            // few hundred stays: 15 % of the avoided readmissions (plus 0.5 for small tiers).
            let tol = 0.15 * true_avoided + 0.5;
            assert!(
                (c.expected_avoided - true_avoided).abs() <= tol,
                "{} {:?}: streamed {} vs truth {true_avoided:.2} (tolerance {tol:.2})",
                r.intervention_id,
                c.min_tier,
                c.expected_avoided
            );
        }
    }
}

/// Drives the core over the generated events, capturing the population facts instead of
/// applying them; then applies them to a fresh population partition in several orders.
#[test]
fn the_summary_does_not_depend_on_the_order_the_facts_arrive_in() {
    let f = fixture();
    let engine = Engine::new(
        CoreConfig {
            partitions: PARTITIONS,
            ..CoreConfig::default()
        },
        RefData::shared(),
    );
    let mut parts: Vec<Partition> = (0..PARTITIONS as i32)
        .map(|i| Partition::open(i, PartitionStore::hot_only(i), &engine).unwrap())
        .collect();
    let mut evs = events(&f.g);
    evs.sort_by_key(|e| e.event_time());
    let (mut out, mut rk, mut facts) = (Vec::new(), Vec::new(), Vec::new());
    for (i, e) in evs.iter().enumerate() {
        let p = partition_for(e.key(), PARTITIONS) as usize;
        parts[p].apply(&engine, e, e.stream().name(), i as i64, &mut out, &mut rk);
        let mut queue: std::collections::VecDeque<Rekeyed> = rk.drain(..).collect();
        while let Some(r) = queue.pop_front() {
            match r {
                Rekeyed::Population(f) => facts.push(f),
                other => {
                    let q = partition_for(other.key(), PARTITIONS) as usize;
                    parts[q].apply_rekeyed(&engine, &other, &mut out);
                    parts[q].take_rekeyed(&mut rk);
                    queue.extend(rk.drain(..));
                }
            }
        }
        out.clear();
    }
    assert!(facts.len() > 300, "facts: {}", facts.len());
    assert!(facts.iter().any(|f| f.sign < 0), "corrections exist");
    let final_summaries = |order: &[claimwatch::model::StayOutcome]| {
        let mut p = Partition::open(0, PartitionStore::hot_only(0), &engine).unwrap();
        let mut out = Vec::new();
        for fact in order {
            p.apply_rekeyed(&engine, &Rekeyed::Population(fact.clone()), &mut out);
        }
        p.flush_population(&engine, &mut out);
        let mut m = BTreeMap::new();
        for o in out {
            match o {
                OutputEvent::ReadmissionSummary(mut s) => {
                    (s.version, s.event_time, s.output_id) = (0, 0, String::new());
                    m.insert(s.group.clone(), serde_json::to_string(&s).unwrap());
                }
                OutputEvent::InterventionRoi(mut r) => {
                    (r.version, r.event_time, r.output_id) = (0, 0, String::new());
                    m.insert(
                        r.intervention_id.clone(),
                        serde_json::to_string(&r).unwrap(),
                    );
                }
                _ => {}
            }
        }
        m
    };
    let expected = final_summaries(&facts);
    let mut reversed = facts.clone();
    reversed.reverse();
    assert_eq!(final_summaries(&reversed), expected, "reversed");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 0..3 {
        let mut shuffled = facts.clone();
        for i in (1..shuffled.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            shuffled.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        assert_eq!(final_summaries(&shuffled), expected, "shuffle {round}");
    }
}
