//! Facts from hand-made stays, late corrections, order independence of the aggregate, and the
//! ROI arithmetic.

use std::collections::BTreeSet;

use super::aggregate::{self, GroupAgg, PopEntry};
use super::roi::{self, RoiInputs};
use crate::config::CoreConfig;
use crate::core::{Engine, Partition};
use crate::model::fixtures::{stay, t};
use crate::model::{
    EncounterCost, InputEvent, OutputEvent, ReadmissionSummary, Rekeyed, RiskTier, StayOutcome,
    DAY_MS,
};
use crate::refdata::RefData;
use crate::state::{PartitionStore, Table};

fn engine() -> Engine {
    let config = CoreConfig {
        partitions: 1,
        ..CoreConfig::default()
    };
    Engine::new(config, RefData::shared())
}

/// Routes re-keyed records (and what they produce) within one partition.
fn route(p: &mut Partition, e: &Engine, rekeyed: &mut Vec<Rekeyed>, out: &mut Vec<OutputEvent>) {
    while !rekeyed.is_empty() {
        for r in std::mem::take(rekeyed) {
            p.apply_rekeyed(e, &r, out);
            p.take_rekeyed(rekeyed);
        }
    }
}

fn summaries(out: &[OutputEvent]) -> Vec<ReadmissionSummary> {
    out.iter()
        .filter_map(|o| match o {
            OutputEvent::ReadmissionSummary(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn facts(rekeyed: &[Rekeyed]) -> Vec<StayOutcome> {
    rekeyed
        .iter()
        .filter_map(|r| match r {
            Rekeyed::Population(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_matured_stay_sends_a_fact_and_a_late_cost_corrects_it() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let (mut out, mut rk) = (Vec::new(), Vec::new());
    // Heart failure index, pneumonia readmission 15 days later: ACSC (PQI 11), another group.
    for ev in [
        stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023"),
        stay("M1", "E2", "F1", "2024-01-20", "2024-01-24", "01", "J189"),
    ] {
        p.apply(
            &e,
            &InputEvent::Encounter(ev),
            "ehr.encounters",
            0,
            &mut out,
            &mut rk,
        );
    }
    assert!(facts(&rk).is_empty(), "nothing before the window closes");
    // E1's window closes at the start of 2024-02-05 (discharge + 31 days).
    p.advance_to(&e, t("2024-02-06"), &mut out, &mut rk);
    let sent = facts(&rk);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let f = &sent[0];
    assert_eq!((f.sign, f.dx_group.as_str()), (1, "CIR"));
    assert_eq!(f.hrrp_cohort.as_deref(), Some("HF"));
    assert!(f.readmitted && f.preventable && !f.planned);
    assert_eq!(f.los_days, 4);
    assert_eq!(f.readmission_paid_cents, None);
    route(&mut p, &e, &mut rk, &mut out);
    // The readmission's claim is paid after the window closed: a correcting pair of facts.
    let cost = EncounterCost {
        member_id: "M1".into(),
        encounter_id: "E2".into(),
        claim_id: "C2".into(),
        paid_cents: 1_234_500,
        event_time: t("2024-03-01"),
    };
    p.apply_rekeyed(&e, &Rekeyed::Cost(cost), &mut out);
    p.take_rekeyed(&mut rk);
    let sent = facts(&rk);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!((sent[0].sign, sent[1].sign), (-1, 1));
    assert_eq!(sent[1].readmission_paid_cents, Some(1_234_500));
    route(&mut p, &e, &mut rk, &mut out);
    p.flush_population(&e, &mut out);
    let last = |group: &str| {
        summaries(&out)
            .into_iter()
            .rfind(|s| s.group == group)
            .unwrap()
    };
    let cir = last("dx:CIR");
    assert_eq!(
        (
            cir.index_stays,
            cir.readmissions,
            cir.preventable_readmissions
        ),
        (1, 1, 1)
    );
    assert_eq!(cir.readmission_paid_cents, 1_234_500);
    assert_eq!(cir.preventable_paid_cents, 1_234_500);
    let all = last("all");
    assert_eq!(all.readmission_rate, 1.0);
    assert_eq!(all.output_id, format!("all:{}", all.version));
    assert!(all.kpis.is_some() && cir.kpis.is_none());
    assert_eq!(last("cohort:HF").index_stays, 1);
    // The first summary went out when the cost's later day arrived, the second at the flush.
    assert_eq!(all.version, 2);
    assert!(out.iter().any(
        |o| matches!(o, OutputEvent::InterventionRoi(r) if r.intervention_id == "follow-up-call")
    ));
}

#[test]
fn a_cancelled_index_stay_is_taken_back() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let (mut out, mut rk) = (Vec::new(), Vec::new());
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    p.apply(
        &e,
        &InputEvent::Encounter(a.clone()),
        "ehr.encounters",
        0,
        &mut out,
        &mut rk,
    );
    p.advance_to(&e, t("2024-02-06"), &mut out, &mut rk);
    assert_eq!(facts(&rk).len(), 1);
    let mut cancel = a;
    cancel.event_type = crate::model::EncounterEventType::Cancel;
    cancel.event_id = "enc-E1-cancel".into();
    cancel.event_time = t("2024-02-10");
    p.apply(
        &e,
        &InputEvent::Encounter(cancel),
        "ehr.encounters",
        1,
        &mut out,
        &mut rk,
    );
    let sent = facts(&rk);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].sign, -1);
    route(&mut p, &e, &mut rk, &mut out);
    p.flush_population(&e, &mut out);
    let all = summaries(&out)
        .into_iter()
        .rfind(|s| s.group == "all")
        .unwrap();
    assert_eq!(all.index_stays, 0);
}

fn fact(
    sign: i32,
    day: i64,
    dx: &str,
    tier: RiskTier,
    readmitted: bool,
    paid: Option<i64>,
) -> StayOutcome {
    StayOutcome {
        sign,
        event_time: day * DAY_MS,
        dx_group: dx.into(),
        hrrp_cohort: (dx == "CIR").then(|| "HF".into()),
        tier,
        probability_micros: 123_457 + day,
        los_days: 3,
        index_paid_cents: Some(900_000),
        readmitted,
        planned: false,
        preventable: readmitted && dx == "RSP",
        readmission_paid_cents: paid,
    }
}

/// Final content per emitted key (version and time left out).
fn finals(out: &[OutputEvent]) -> Vec<String> {
    let mut m = std::collections::BTreeMap::new();
    for o in out {
        match o {
            OutputEvent::ReadmissionSummary(s) => {
                let mut s = s.clone();
                (s.version, s.event_time, s.output_id) = (0, 0, String::new());
                m.insert(s.group.clone(), serde_json::to_string(&s).unwrap());
            }
            OutputEvent::InterventionRoi(r) => {
                let mut r = r.clone();
                (r.version, r.event_time, r.output_id) = (0, 0, String::new());
                m.insert(
                    r.intervention_id.clone(),
                    serde_json::to_string(&r).unwrap(),
                );
            }
            _ => {}
        }
    }
    m.into_values().collect()
}

#[test]
fn the_aggregate_does_not_depend_on_the_order_of_the_facts() {
    let mut facts = Vec::new();
    for i in 0..60i64 {
        let dx = ["CIR", "RSP", "DIG"][(i % 3) as usize];
        let tier = [RiskTier::Low, RiskTier::Medium, RiskTier::High][(i % 4 % 3) as usize];
        let old = fact(1, 100 + i, dx, tier, i % 5 == 0, None);
        facts.push(old.clone());
        if i % 4 == 0 {
            // A correction: the readmission's cost arrives, or the stay is taken back.
            facts.push(StayOutcome {
                sign: -1,
                event_time: (130 + i) * DAY_MS,
                ..old.clone()
            });
            if i % 8 == 0 {
                facts.push(StayOutcome {
                    event_time: (130 + i) * DAY_MS,
                    readmitted: true,
                    preventable: dx == "RSP",
                    readmission_paid_cents: Some(1_000_000 + i * 1000),
                    ..old
                });
            }
        }
    }
    let interventions = CoreConfig::default().scoring.interventions;
    let run = |order: &[StayOutcome]| {
        let mut table: Table<PopEntry> = Table::new("population", b'v');
        let mut dirty = BTreeSet::new();
        let mut out = Vec::new();
        for f in order {
            aggregate::apply(&mut table, &mut dirty, &interventions, None, f, &mut out);
        }
        aggregate::flush(&mut table, &mut dirty, &interventions, None, &mut out);
        let all: GroupAgg = table.get("all").unwrap().agg.clone();
        (all, finals(&out))
    };
    let expected = run(&facts);
    assert_eq!(expected.0.index_stays, 60 - 15 + 8);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20 {
        let mut shuffled = facts.clone();
        for i in (1..shuffled.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            shuffled.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        assert_eq!(run(&shuffled), expected);
    }
    let mut reversed = facts.clone();
    reversed.reverse();
    assert_eq!(run(&reversed), expected);
}

#[test]
fn roi_arithmetic_and_budget_allocation() {
    let mut inputs = RoiInputs::default();
    // 10 high-risk stays with Σp = 4 in CIR, 100 low-risk stays with Σp = 5 in RSP.
    inputs
        .cells
        .insert((RiskTier::High, "CIR".into()), (10, 4_000_000));
    inputs
        .cells
        .insert((RiskTier::Low, "RSP".into()), (100, 5_000_000));
    // CIR readmissions cost 20,000 on average; RSP has none paid yet: population average.
    inputs.paid_by_dx.insert("CIR".into(), (4_000_000, 2));
    inputs.paid_by_dx.insert("RSP".into(), (0, 0));
    let iv = crate::config::Intervention {
        id: "x".into(),
        name: "test".into(),
        min_probability: 0.0,
        cost_cents: 50_000,
        expected_relative_reduction: 0.25,
        source: "test".into(),
    };
    let r = roi::compute(&iv, &inputs, 0, 3);
    assert_eq!(r.output_id, "x:3");
    let high = &r.cutoffs[0];
    assert_eq!((high.min_tier, high.members_targeted), (RiskTier::High, 10));
    assert_eq!(high.expected_avoided, 1.0);
    assert_eq!(high.gross_savings_cents, 2_000_000);
    assert_eq!(high.programme_cost_cents, 500_000);
    assert_eq!(high.net_savings_cents, 1_500_000);
    assert_eq!(high.roi, Some(3.0));
    let all = &r.cutoffs[2];
    assert_eq!(all.members_targeted, 110);
    // RSP: 0.25 x 5 x 20,000 = 25,000 dollars more gross; 100 x 500 more cost.
    assert_eq!(all.gross_savings_cents, 2_000_000 + 2_500_000);
    assert_eq!(all.net_savings_cents, 4_500_000 - 5_500_000);
    assert_eq!(r.cutoffs[1].members_targeted, 10, "no medium tier stays");
    assert_eq!(
        r.best_min_tier,
        RiskTier::High,
        "a tie with MEDIUM goes to the narrower"
    );
    let plan = roi::allocate(std::slice::from_ref(&r), None);
    assert_eq!(plan.funded.len(), 1);
    assert_eq!(plan.funded[0].tier, RiskTier::High);
    assert_eq!(
        roi::allocate(&[r], Some(100_000)).funded.len(),
        0,
        "over budget"
    );
}

#[test]
fn what_if_reads_the_latest_records_and_refuses_unknown_interventions() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = RoiInputs::default();
    inputs
        .cells
        .insert((RiskTier::High, "CIR".into()), (10, 4_000_000));
    inputs.paid_by_dx.insert("CIR".into(), (4_000_000, 2));
    let ivs = CoreConfig::default().scoring.interventions;
    let mut text = String::new();
    for version in [1, 2] {
        for iv in &ivs {
            let r = roi::compute(iv, &inputs, 0, version);
            text.push_str(&serde_json::to_string(&r).unwrap());
            text.push('\n');
        }
    }
    let path = dir.path().join("claimwatch.intervention-roi.jsonl");
    std::fs::write(&path, text).unwrap();
    let w = roi::what_if(dir.path(), Some(10_000_000), None).unwrap();
    assert_eq!(w.interventions.len(), ivs.len());
    assert!(w.interventions.iter().all(|r| r.version == 2));
    assert!(w.plan.cost_cents <= 10_000_000 && !w.plan.funded.is_empty());
    assert!(roi::render(&w).contains("plan (budget $100000"));
    let one = roi::what_if(dir.path(), None, Some("follow-up-call")).unwrap();
    assert_eq!(one.interventions.len(), 1);
    assert!(matches!(
        roi::what_if(dir.path(), None, Some("nope")),
        Err(roi::WhatIfError::Unknown(..))
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        roi::what_if(empty.path(), None, None),
        Err(roi::WhatIfError::Empty(_))
    ));
}

/// A readmission whose claim was denied ($0 paid so far) is no cost observation: the average cost
/// per readmission (and the ROI's savings) come from paid claims only, and taking the fact back
/// leaves the sums as they were.
#[test]
fn a_denied_readmission_claim_is_not_a_paid_readmission() {
    let mut g = GroupAgg::default();
    g.add(&fact(1, 10, "CIR", RiskTier::High, true, Some(500_000)));
    g.add(&fact(1, 11, "CIR", RiskTier::High, true, Some(0)));
    assert_eq!(g.readmissions, 2);
    assert_eq!(
        (g.readmission_paid_cents, g.readmissions_with_paid),
        (500_000, 1)
    );
    g.add(&fact(-1, 11, "CIR", RiskTier::High, true, Some(0)));
    g.add(&fact(1, 12, "CIR", RiskTier::High, true, Some(700_000)));
    assert_eq!(
        (g.readmission_paid_cents, g.readmissions_with_paid),
        (1_200_000, 2)
    );
}
