//! The incremental detector's output stream, whatever the arrival order, converges to a
//! brute-force batch computation over the same records (written independently, pairwise).

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use claimwatch::config::CoreConfig;
use claimwatch::model::fixtures::{d, stay};
use claimwatch::model::{Encounter, EncounterEventType, OutputEvent, ReadmissionAction, DAY_MS};
use claimwatch::readmit::{Detector, MemberState};
use claimwatch::refdata::RefData;

#[derive(Clone, Debug)]
struct StaySpec {
    gap: i32,
    los: i32,
    facility: u8,
    disposition: &'static str,
    dx: &'static str,
    update_disposition: Option<&'static str>,
    cancel: bool,
}

fn spec() -> impl Strategy<Value = StaySpec> {
    (
        0..25i32,
        0..6i32,
        0..4u8,
        prop::sample::select(vec!["01", "01", "01", "06", "02", "07", "20"]),
        prop::sample::select(vec!["I5023", "I5023", "J189", "I214", "F329", "Z5111"]),
        prop::option::weighted(0.15, prop::sample::select(vec!["01", "02", "20"])),
        prop::bool::weighted(0.08),
    )
        .prop_map(
            |(gap, los, facility, disposition, dx, update_disposition, cancel)| StaySpec {
                gap,
                los,
                facility,
                disposition,
                dx,
                update_disposition,
                cancel,
            },
        )
}

/// The records of one member: admission, discharge, maybe a correction and a cancel per stay.
fn records(specs: &[StaySpec]) -> Vec<Encounter> {
    let mut out = Vec::new();
    let mut day = d("2024-01-01");
    for (i, s) in specs.iter().enumerate() {
        let admit = day + s.gap;
        let discharge = admit + s.los;
        day = discharge;
        let fmt = claimwatch::model::format_day;
        let mut dis = stay(
            "M1",
            &format!("E{i}"),
            &format!("F{}", s.facility),
            &fmt(admit),
            &fmt(discharge),
            s.disposition,
            s.dx,
        );
        // Facility F3 is not an acute care hospital.
        dis.acute_care_facility = s.facility != 3;
        let mut adm = dis.clone();
        adm.event_id = format!("E{i}-adm");
        adm.event_type = EncounterEventType::Admission;
        adm.discharge_date = None;
        adm.discharge_disposition = None;
        adm.event_time = i64::from(admit) * DAY_MS + 1000;
        out.push(adm);
        if let Some(u) = s.update_disposition {
            let mut upd = dis.clone();
            upd.event_id = format!("E{i}-upd");
            upd.event_type = EncounterEventType::Update;
            upd.discharge_disposition = Some(u.into());
            upd.event_time = dis.event_time + 3 * DAY_MS;
            out.push(upd);
        }
        if s.cancel {
            let mut c = dis.clone();
            c.event_id = format!("E{i}-cancel");
            c.event_type = EncounterEventType::Cancel;
            c.event_time = dis.event_time + 5 * DAY_MS;
            out.push(c);
        }
        out.push(dis);
    }
    out
}

/// Brute force over the final record set: returns index -> (readmit, days, planned).
fn reference(records: &[Encounter], refdata: &RefData) -> BTreeMap<String, (String, i32, bool)> {
    let rank = |e: &Encounter| match e.event_type {
        EncounterEventType::Admission => 0,
        EncounterEventType::Update => 1,
        EncounterEventType::Discharge => 2,
        EncounterEventType::Cancel => 3,
    };
    let mut latest: BTreeMap<&str, &Encounter> = BTreeMap::new();
    for r in records {
        let key = (
            r.event_time,
            rank(r),
            claimwatch::reconcile::record_id(&r.event_id),
        );
        let replace = latest.get(r.encounter_id.as_str()).is_none_or(|cur| {
            (
                cur.event_time,
                rank(cur),
                claimwatch::reconcile::record_id(&cur.event_id),
            ) < key
        });
        if replace {
            latest.insert(&r.encounter_id, r);
        }
    }
    let valid: Vec<&Encounter> = latest
        .values()
        .copied()
        .filter(|e| {
            e.event_type != EncounterEventType::Cancel
                && e.acute_care_facility
                && e.discharge_date.is_some()
        })
        .collect();
    let continues = |a: &Encounter, b: &Encounter| {
        let gap = b.admit_date - a.discharge_date.unwrap();
        if a.facility_id == b.facility_id {
            gap == 0
        } else {
            gap == 0 || gap == 1
        }
    };
    // Stays on the same dates are ordered by id: the earlier one is continued by the later one.
    let before = |a: &Encounter, b: &Encounter| {
        (a.admit_date, a.discharge_date, &a.encounter_id)
            < (b.admit_date, b.discharge_date, &b.encounter_id)
    };
    let mut out = BTreeMap::new();
    for s in &valid {
        let continued = valid.iter().any(|t| before(s, t) && continues(s, t));
        let disp = s.discharge_disposition.as_deref().unwrap_or("");
        if continued
            || ["20", "07", "02", "40", "41", "42"].contains(&disp)
            || refdata.index_exclusion(&s.principal_dx).is_some()
        {
            continue;
        }
        let dis = s.discharge_date.unwrap();
        let first = valid
            .iter()
            .filter(|r| !valid.iter().any(|p| before(p, r) && continues(p, r)))
            .filter(|r| (1..=30).contains(&(r.admit_date - dis)))
            .min_by_key(|r| (r.admit_date, r.discharge_date, r.encounter_id.clone()));
        if let Some(r) = first {
            let planned = refdata
                .planned_readmission(&r.principal_dx, &r.procedures)
                .is_some();
            out.insert(
                s.encounter_id.clone(),
                (r.encounter_id.clone(), r.admit_date - dis, planned),
            );
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn incremental_output_converges_to_the_batch_reference(
        specs in proptest::collection::vec(spec(), 1..9),
        order_seed in any::<u64>(),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let refdata = RefData::shared();
        let detector = Detector::new(Arc::clone(&refdata), &CoreConfig::default());
        let recs = records(&specs);
        let mut arrival = recs.clone();
        // A deterministic shuffle from the seed, plus duplicates.
        let mut x = order_seed | 1;
        for i in (1..arrival.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            arrival.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for d in &dups {
            arrival.push(d.get(&recs).clone());
        }
        let mut state = MemberState::default();
        let mut out = Vec::new();
        for r in &arrival {
            detector.apply(&mut state, "M1", r, &mut out);
        }
        let mut standing: BTreeMap<String, (String, i32, bool)> = BTreeMap::new();
        let mut versions: BTreeMap<String, i64> = BTreeMap::new();
        for o in out {
            let OutputEvent::Readmission(e) = o else { continue };
            let e = *e;
            let v = versions.entry(e.index_encounter_id.clone()).or_default();
            prop_assert_eq!(e.version, *v + 1, "versions increase by one per index stay");
            *v = e.version;
            if e.action == ReadmissionAction::Retracted {
                prop_assert!(standing.remove(&e.index_encounter_id).is_some(), "retraction of something standing");
            } else {
                standing.insert(e.index_encounter_id.clone(), (e.readmit_encounter_id.clone(), e.days_between, e.planned));
            }
        }
        prop_assert_eq!(standing, reference(&recs, &refdata));
    }
}
