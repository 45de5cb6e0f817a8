//! Every rule of the definition with hand-made stays, and out-of-order corrections.

use super::*;
use crate::model::fixtures::{stay, t};
use crate::model::{Encounter, ReadmissionAction};

fn detector() -> Detector {
    Detector::new(RefData::shared(), &CoreConfig::default())
}

fn run(events: &[Encounter]) -> (MemberState, Vec<ReadmissionEvent>) {
    let d = detector();
    let mut state = MemberState::default();
    let mut out = Vec::new();
    for e in events {
        d.apply(&mut state, "M1", e, &mut out);
    }
    let evs = out
        .into_iter()
        .map(|o| match o {
            OutputEvent::Readmission(r) => *r,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    (state, evs)
}

/// The readmissions currently standing: latest event per index stay, unless retracted.
fn standing(events: &[ReadmissionEvent]) -> BTreeMap<String, ReadmissionEvent> {
    let mut m = BTreeMap::new();
    for e in events {
        if e.action == ReadmissionAction::Retracted {
            m.remove(&e.index_encounter_id);
        } else {
            m.insert(e.index_encounter_id.clone(), e.clone());
        }
    }
    m
}

#[test]
fn readmission_within_30_days_is_detected_with_context() {
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    let b = stay("M1", "E2", "F1", "2024-01-20", "2024-01-24", "01", "J189");
    let (_, evs) = run(&[a, b]);
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e.action, ReadmissionAction::Detected);
    assert_eq!(e.output_id, "M1:E1:1");
    assert_eq!(e.days_between, 15);
    assert_eq!(e.readmit_encounter_id, "E2");
    assert_eq!(e.hrrp_cohort.as_deref(), Some("HF"));
    assert_eq!(e.index_dx_group, "CIR");
    assert!(!e.planned);
}

#[test]
fn day_31_is_not_and_day_30_is() {
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    let b = stay("M1", "E2", "F1", "2024-02-05", "2024-02-07", "01", "I5023"); // 31 days
    assert!(run(&[a.clone(), b]).1.is_empty());
    let c = stay("M1", "E3", "F1", "2024-02-04", "2024-02-07", "01", "I5023"); // 30 days
    assert_eq!(run(&[a, c]).1[0].days_between, 30);
}

#[test]
fn exclusions_expired_ama_transfer_out_and_excluded_diagnoses() {
    for (disp, dx) in [
        ("20", "I5023"),
        ("07", "I5023"),
        ("02", "I5023"),
        // The other transfers to an acute hospital: cancer center or children's hospital,
        // critical access hospital, and the same with a planned readmission.
        ("05", "I5023"),
        ("66", "I5023"),
        ("82", "I5023"),
        ("85", "I5023"),
        ("94", "I5023"),
        ("01", "F329"),
    ] {
        let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", disp, dx);
        let b = stay("M1", "E2", "F2", "2024-01-10", "2024-01-12", "01", "J189");
        assert!(
            run(&[a, b]).1.is_empty(),
            "disposition {disp} dx {dx} must not be an index stay"
        );
    }
}

#[test]
fn transfer_chain_is_one_episode_and_the_last_stay_is_the_index() {
    // E1 at F1 transfers to F2 the next day: not a readmission. E2's discharge starts the window.
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "02", "I214");
    let b = stay("M1", "E2", "F2", "2024-01-06", "2024-01-10", "01", "I214");
    let c = stay("M1", "E3", "F1", "2024-02-05", "2024-02-08", "01", "I214");
    let (_, evs) = run(&[a, b, c]);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].index_encounter_id, "E2");
    assert_eq!(
        evs[0].index_admit_date,
        crate::model::fixtures::d("2024-01-01")
    );
    assert_eq!(evs[0].days_between, 26);
}

#[test]
fn non_acute_and_non_inpatient_stays_do_not_take_part() {
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    let mut rehab = stay("M1", "E2", "R1", "2024-01-08", "2024-01-20", "01", "I5023");
    rehab.acute_care_facility = false;
    let mut ed = stay("M1", "E3", "F1", "2024-01-09", "2024-01-09", "01", "I5023");
    ed.encounter_class = EncounterClass::Emergency;
    assert!(run(&[a, rehab, ed]).1.is_empty());
}

#[test]
fn planned_readmission_is_reported_as_planned_and_ends_the_window() {
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    let chemo = stay("M1", "E2", "F1", "2024-01-10", "2024-01-11", "01", "Z5111");
    let unplanned = stay("M1", "E3", "F1", "2024-01-20", "2024-01-25", "01", "I5023");
    let (_, evs) = run(&[a, chemo, unplanned]);
    let s = standing(&evs);
    assert!(
        s["E1"].planned,
        "first readmission is planned: no unplanned readmission for E1"
    );
    assert_eq!(s["E1"].readmit_encounter_id, "E2");
    assert_eq!(
        s["E1"].planned_reason.as_deref(),
        Some("ALWAYS_PLANNED_DIAGNOSIS")
    );
    // A maintenance chemotherapy stay is medical treatment of cancer: not an index stay itself.
    assert!(!s.contains_key("E2"));
    assert_eq!(s.len(), 1);
}

#[test]
fn a_planned_stay_can_itself_be_an_index_stay() {
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    // A staged PCI (potentially planned procedure, non-acute principal diagnosis).
    let mut pci = stay("M1", "E2", "F1", "2024-01-10", "2024-01-11", "01", "I2510");
    pci.procedures = vec!["0270046".into()];
    let unplanned = stay("M1", "E3", "F1", "2024-01-20", "2024-01-25", "01", "I5023");
    let s = standing(&run(&[a, pci, unplanned]).1);
    assert!(s["E1"].planned);
    assert_eq!(
        s["E1"].planned_reason.as_deref(),
        Some("POTENTIALLY_PLANNED_PROCEDURE")
    );
    assert!(!s["E2"].planned);
    assert_eq!(s["E2"].readmit_encounter_id, "E3");
}

#[test]
fn only_the_first_readmission_counts_and_readmissions_are_index_stays() {
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    let b = stay("M1", "E2", "F1", "2024-01-10", "2024-01-12", "01", "I5023");
    let c = stay("M1", "E3", "F1", "2024-01-20", "2024-01-22", "01", "I5023");
    let s = standing(&run(&[a, b, c]).1);
    assert_eq!(s.len(), 2);
    assert_eq!(s["E1"].readmit_encounter_id, "E2");
    assert_eq!(s["E2"].readmit_encounter_id, "E3");
}

#[test]
fn a_late_transfer_record_retracts_an_earlier_readmission() {
    // E1 discharged 01-05 with disposition home; E3 on 01-20 looked like a readmission of E1.
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    let c = stay("M1", "E3", "F1", "2024-01-20", "2024-01-22", "01", "I5023");
    // Late: a correction says E1 transferred out, and the receiving stay E2 at F2 arrives.
    let mut a2 = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "02", "I5023");
    a2.event_id = "enc-E1-upd".into();
    a2.event_type = EncounterEventType::Update;
    a2.event_time = t("2024-01-25");
    let mut b = stay("M1", "E2", "F2", "2024-01-05", "2024-01-30", "01", "I5023");
    b.event_time = t("2024-01-26");
    let (_, evs) = run(&[a.clone(), c.clone(), a2.clone(), b.clone()]);
    let actions: Vec<_> = evs
        .iter()
        .map(|e| (e.index_encounter_id.as_str(), e.action, e.version))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("E1", ReadmissionAction::Detected, 1),
            ("E1", ReadmissionAction::Retracted, 2)
        ]
    );
    // E2 (last of chain) was discharged after E3 was admitted: E3 is not a readmission of E2.
    assert!(standing(&evs).is_empty());
    // Same final answer in any order.
    let (_, evs2) = run(&[b, a2, c, a]);
    assert!(standing(&evs2).is_empty());
}

#[test]
fn cancel_retracts_and_duplicates_and_older_records_change_nothing() {
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    let b = stay("M1", "E2", "F1", "2024-01-20", "2024-01-24", "01", "J189");
    let mut cancel = b.clone();
    cancel.event_id = "enc-E2-cancel".into();
    cancel.event_type = EncounterEventType::Cancel;
    cancel.event_time = t("2024-01-28");
    let mut admission = b.clone();
    admission.event_id = "enc-E2-adm".into();
    admission.event_type = EncounterEventType::Admission;
    admission.discharge_date = None;
    admission.event_time = t("2024-01-20");
    let (_, evs) = run(&[
        a.clone(),
        b.clone(),
        b.clone(),
        admission.clone(),
        cancel.clone(),
    ]);
    let actions: Vec<_> = evs.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        vec![ReadmissionAction::Detected, ReadmissionAction::Retracted]
    );
    // The cancel arriving first: nothing is ever detected.
    assert!(run(&[cancel, a, admission, b]).1.is_empty());
}

#[test]
fn readmission_cost_updates_the_event() {
    let d = detector();
    let mut state = MemberState::default();
    let mut out = Vec::new();
    d.apply(
        &mut state,
        "M1",
        &stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023"),
        &mut out,
    );
    d.apply(
        &mut state,
        "M1",
        &stay("M1", "E2", "F1", "2024-01-20", "2024-01-24", "01", "J189"),
        &mut out,
    );
    let cost = EncounterCost {
        member_id: "M1".into(),
        encounter_id: "E2".into(),
        claim_id: "C9".into(),
        paid_cents: 1_234_500,
        event_time: t("2024-02-20"),
    };
    d.apply_cost(&mut state, "M1", &cost, &mut out);
    d.apply_cost(&mut state, "M1", &cost, &mut out);
    assert_eq!(out.len(), 2);
    let OutputEvent::Readmission(last) = &out[1] else {
        panic!()
    };
    assert_eq!(last.action, ReadmissionAction::Updated);
    assert_eq!(last.readmission_paid_cents, Some(1_234_500));
}

#[test]
fn prune_drops_old_stays_and_empty_members() {
    let d = detector();
    let (mut state, _) = run(&[stay(
        "M1",
        "E1",
        "F1",
        "2024-01-01",
        "2024-01-05",
        "01",
        "I5023",
    )]);
    let due = d.next_prune(&state);
    assert!(
        d.prune(&mut state, due - DAY_MS),
        "still inside the look-back"
    );
    assert!(!d.prune(&mut state, due), "gone after the look-back");
}

#[test]
fn pruning_counts_the_index_stays_that_leave_with_their_outcomes() {
    let d = detector();
    let (mut state, evs) = run(&[
        stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023"),
        stay("M1", "E2", "F1", "2024-01-20", "2024-03-10", "01", "J189"),
    ]);
    assert_eq!(evs.len(), 1);
    let before = d.decide(&state.stays).len();
    // E1 leaves the look-back, its readmission E2 does not.
    let now = d.next_prune(&state);
    let mut aged = AgedOut::default();
    assert!(d.prune_counting(&mut state, now, &mut aged));
    assert_eq!(state.stays.len(), 1);
    assert_eq!(aged.index_stays, 1);
    assert_eq!(aged.unplanned_readmissions, 1);
    assert_eq!(aged.planned_readmissions, 0);
    assert_eq!(aged.by_hrrp_cohort.get("HF"), Some(&(1, 1)));
    // Every index stay is counted once: in state or gone.
    assert_eq!(
        d.decide(&state.stays).len() as u64 + aged.index_stays,
        before as u64
    );
}

/// A readmission is an admission: it is reported when the patient is admitted, not at the
/// readmission's discharge, and the discharge record (final diagnosis) updates it. An open
/// admission is never an index stay.
#[test]
fn an_open_admission_is_a_readmission_at_once_and_its_discharge_updates_it() {
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-03", "01", "I5023");
    let mut adm = stay("M1", "E2", "F1", "2024-01-25", "2024-02-20", "01", "R079");
    adm.event_type = EncounterEventType::Admission;
    adm.discharge_date = None;
    adm.discharge_disposition = None;
    adm.event_time = t("2024-01-25");
    let (state, evs) = run(&[a.clone(), adm.clone()]);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].action, ReadmissionAction::Detected);
    assert_eq!(evs[0].readmit_encounter_id, "E2");
    assert_eq!(evs[0].days_between, 22);
    assert_eq!(evs[0].readmit_principal_dx, "R079");
    // The open stay is no index stay: only E1 is.
    let d = detector();
    let decisions = d.decide(&state.stays);
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].index.encounter_id, "E1");
    // Discharged 26 days later with the final diagnosis: the same readmission, updated.
    let mut dis = stay("M1", "E2", "F1", "2024-01-25", "2024-02-20", "01", "I5023");
    dis.event_time = t("2024-02-20");
    let (_, evs) = run(&[a, adm, dis]);
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs[1].action, ReadmissionAction::Updated);
    assert_eq!(evs[1].readmit_principal_dx, "I5023");
    assert_eq!(evs[1].days_between, 22);
}
