//! Incremental 30-day readmission detection, keyed by member id.
//!
//! **Job.** Keep each member's recent stays and, whenever one changes (an admission, discharge,
//! correction, cancel, or the paid amount of its claim), recompute the member's readmission
//! decisions and emit the difference against what was emitted before: `DETECTED` for a new
//! readmission, `UPDATED` when it changed, `RETRACTED` when it no longer holds. The output stream
//! therefore always converges to what a batch computation over all events would say, whatever
//! order the events arrived in (tested against a brute-force reference).
//!
//! **Definition** (CMS Hospital-Wide Readmission / HRRP style; `shared/DOMAIN.md` §2):
//! - Only acute inpatient stays at acute care facilities with a discharge take part.
//! - *Transfer chaining*: a stay followed by an admission to **another** facility on the discharge
//!   day or the next day is one episode; so is a re-admission to the **same** facility on the
//!   discharge day itself (day 0 is never a readmission). The last stay of the episode is the
//!   candidate index stay.
//! - *Index eligibility*: the candidate was discharged alive (not 20/40/41/42), not against medical
//!   advice (07), not transferred out to an acute hospital (02, 05, 66, 82, 85, 94:
//!   [`crate::model::encounter::disposition::TRANSFERS_ACUTE`]) without the receiving stay in the
//!   chain, and its principal diagnosis is not excluded (medical treatment of cancer, primary
//!   psychiatric, rehabilitation; see [`RefData::index_exclusion`]).
//! - *Readmission*: the first episode admitted 1..=30 days after the index discharge, reported
//!   from its admission record on (an admission not yet discharged is a readmission, never an
//!   index stay; its discharge record may change its diagnosis and planned status: `UPDATED`).
//!   Only that first readmission is considered; if it is planned (CMS planned readmission algorithm subset,
//!   [`RefData::planned_readmission`]) it is reported with `planned = true` and the index has no
//!   unplanned readmission (CMS: a planned readmission ends the window's outcome). A readmission
//!   stay is itself a candidate index stay for later readmissions.
//!
//! **State** ([`MemberState`]): per encounter the winning record (latest `event_time`; a cancel
//! wins when latest), the paid amount of each encounter's claim, and the last event emitted per
//! index stay. Stays older than the look-back leave state (their emitted readmissions stand; the
//! index stays leaving are counted, [`AgedOut`]); the member leaves when none is left.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::CoreConfig;
use crate::model::{
    disposition, AdmitType, Encounter, EncounterClass, EncounterCost, EncounterEventType, EpochDay,
    EpochMillis, OutputEvent, ReadmissionAction, ReadmissionEvent, Sex, DAY_MS,
};
use crate::reconcile::record_id;
use crate::refdata::RefData;

#[cfg(test)]
mod tests;

/// What detection keeps of one encounter: the fields of its winning record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StayRec {
    pub encounter_id: String,
    /// (event_time, record kind rank, record id) of the winning record.
    pub winner: (EpochMillis, u8, u64),
    pub cancelled: bool,
    pub class: EncounterClass,
    pub facility_id: String,
    pub acute_facility: bool,
    pub department: String,
    pub admit_date: EpochDay,
    pub admit_type: AdmitType,
    pub discharge_date: Option<EpochDay>,
    pub disposition: Option<String>,
    pub principal_dx: String,
    pub secondary_dx: Vec<String>,
    pub procedures: Vec<String>,
    pub hemoglobin_g_dl: Option<f64>,
    pub sodium_mmol_l: Option<f64>,
    pub birth_date: Option<EpochDay>,
    pub sex: Option<Sex>,
}

impl StayRec {
    pub fn from_event(e: &Encounter) -> Self {
        Self {
            encounter_id: e.encounter_id.clone(),
            winner: winner_key(e),
            cancelled: e.event_type == EncounterEventType::Cancel,
            class: e.encounter_class,
            facility_id: e.facility_id.clone(),
            acute_facility: e.acute_care_facility,
            department: e.department.clone(),
            admit_date: e.admit_date,
            admit_type: e.admit_type,
            discharge_date: e.discharge_date,
            disposition: e.discharge_disposition.clone(),
            principal_dx: e.principal_dx.clone(),
            secondary_dx: e.secondary_dx.clone(),
            procedures: e.procedures.clone(),
            hemoglobin_g_dl: e.hemoglobin_g_dl,
            sodium_mmol_l: e.sodium_mmol_l,
            birth_date: e.birth_date,
            sex: e.sex,
        }
    }

    /// Takes part in readmission logic: a discharged acute inpatient stay.
    pub fn is_acute_inpatient(&self) -> bool {
        !self.cancelled
            && self.class == EncounterClass::Inpatient
            && self.acute_facility
            && self.discharge_date.is_some()
    }

    /// An acute inpatient admission not discharged yet: it can be a readmission (the patient is
    /// back in hospital now), not an index stay.
    pub fn is_open_acute_admission(&self) -> bool {
        !self.cancelled
            && self.class == EncounterClass::Inpatient
            && self.acute_facility
            && self.discharge_date.is_none()
    }

    fn discharge(&self) -> EpochDay {
        self.discharge_date.unwrap_or(self.admit_date)
    }
}

fn winner_key(e: &Encounter) -> (EpochMillis, u8, u64) {
    let rank = match e.event_type {
        EncounterEventType::Admission => 0,
        EncounterEventType::Update => 1,
        EncounterEventType::Discharge => 2,
        EncounterEventType::Cancel => 3,
    };
    (e.event_time, rank, record_id(&e.event_id))
}

/// The last event emitted about one index stay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmittedRec {
    pub version: i64,
    pub fingerprint: u64,
    /// False after a retraction.
    pub active: bool,
    pub last: ReadmissionEventState,
}

/// A serde-friendly copy of the last emitted readmission (retractions repeat its content).
pub type ReadmissionEventState = ReadmissionEvent;

/// The durable state of one member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberState {
    pub stays: Vec<StayRec>,
    /// Paid to date of the claim billing each encounter.
    pub costs: BTreeMap<String, i64>,
    pub emitted: BTreeMap<String, EmittedRec>,
    pub last_event_time: EpochMillis,
}

/// Index stays that left state with the look-back ([`Detector::prune_counting`]) and their final
/// outcomes: the part of a stream's readmission figures no member state holds any more.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgedOut {
    pub index_stays: u64,
    pub unplanned_readmissions: u64,
    pub planned_readmissions: u64,
    /// HRRP cohort -> (index stays, unplanned readmissions).
    pub by_hrrp_cohort: BTreeMap<String, (u64, u64)>,
}

impl AgedOut {
    fn add(&mut self, refdata: &RefData, d: &IndexDecision<'_>) {
        self.index_stays += 1;
        let unplanned = matches!(d.readmission, Some((_, _, None)));
        match d.readmission {
            Some((_, _, Some(_))) => self.planned_readmissions += 1,
            Some((_, _, None)) => self.unplanned_readmissions += 1,
            None => {}
        }
        let idx = d.index;
        if let Some(c) = refdata.hrrp_cohort(&idx.principal_dx, &idx.secondary_dx, &idx.procedures)
        {
            let e = self
                .by_hrrp_cohort
                .entry(c.as_str().to_owned())
                .or_default();
            e.0 += 1;
            e.1 += u64::from(unplanned);
        }
    }
}

/// One eligible index stay and its outcome, as decided from the current stays.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexDecision<'a> {
    pub index: &'a StayRec,
    /// Admission date of the index episode (first stay of the transfer chain).
    pub episode_admit: EpochDay,
    /// The first readmission in the window, with days and planned reason.
    pub readmission: Option<(&'a StayRec, i32, Option<&'static str>)>,
}

/// Readmission detection. Stateless itself: state lives in [`MemberState`].
#[derive(Debug, Clone)]
pub struct Detector {
    refdata: Arc<RefData>,
    window_days: i32,
    lookback_days: i32,
}

impl Detector {
    pub fn new(refdata: Arc<RefData>, cfg: &CoreConfig) -> Self {
        Self {
            refdata,
            window_days: cfg.readmission_window_days as i32,
            lookback_days: cfg.member_lookback_days as i32,
        }
    }

    /// Applies one encounter record.
    pub fn apply(
        &self,
        state: &mut MemberState,
        member_id: &str,
        e: &Encounter,
        out: &mut Vec<OutputEvent>,
    ) {
        let key = winner_key(e);
        match state
            .stays
            .iter_mut()
            .find(|s| s.encounter_id == e.encounter_id)
        {
            Some(s) if s.winner >= key => return, // older or duplicate record: nothing changes
            Some(s) => *s = StayRec::from_event(e),
            None => state.stays.push(StayRec::from_event(e)),
        }
        state.last_event_time = state.last_event_time.max(e.event_time);
        self.emit_changes(state, member_id, e.event_time, out);
    }

    /// Applies the paid amount of an encounter's claim (re-keyed from the claim flow).
    pub fn apply_cost(
        &self,
        state: &mut MemberState,
        member_id: &str,
        c: &EncounterCost,
        out: &mut Vec<OutputEvent>,
    ) {
        if state.costs.get(&c.encounter_id) == Some(&c.paid_cents) {
            return;
        }
        state.costs.insert(c.encounter_id.clone(), c.paid_cents);
        state.last_event_time = state.last_event_time.max(c.event_time);
        self.emit_changes(state, member_id, c.event_time, out);
    }

    /// When the member's oldest stay leaves the look-back (event time), if ever.
    pub fn next_prune(&self, state: &MemberState) -> EpochMillis {
        let oldest = state.stays.iter().map(StayRec::discharge).min();
        match oldest {
            Some(day) => i64::from(day + self.lookback_days + 1) * DAY_MS,
            None => state.last_event_time,
        }
    }

    /// Drops stays discharged more than the look-back before `now`. Returns false when the member
    /// has nothing left and should leave state.
    pub fn prune(&self, state: &mut MemberState, now: EpochMillis) -> bool {
        self.prune_counting(state, now, &mut AgedOut::default())
    }

    /// [`Detector::prune`], adding the index stays that leave state, with their outcomes, to
    /// `aged_out`. Leaving the look-back retracts nothing (the emitted readmission stands), so
    /// figures over the whole stream are the stays still in state plus these.
    pub fn prune_counting(
        &self,
        state: &mut MemberState,
        now: EpochMillis,
        aged_out: &mut AgedOut,
    ) -> bool {
        let cutoff = (now / DAY_MS) as EpochDay - self.lookback_days;
        if state.stays.iter().any(|s| s.discharge() < cutoff) {
            // Decided on every stay (the readmission of a leaving index stay may stay behind).
            // Leaving changes no outcome of the stays that stay: their readmissions come later,
            // and a stay chained before one of them was not an index stay.
            for d in self.decide(&state.stays) {
                if d.index.discharge() < cutoff {
                    aged_out.add(&self.refdata, &d);
                }
            }
        }
        let gone: Vec<String> = state
            .stays
            .iter()
            .filter(|s| s.discharge() < cutoff)
            .map(|s| s.encounter_id.clone())
            .collect();
        state.stays.retain(|s| s.discharge() >= cutoff);
        for id in &gone {
            state.costs.remove(id);
            state.emitted.remove(id);
        }
        !state.stays.is_empty()
    }

    /// The index stays of a member and their outcomes: a pure function of the stays.
    pub fn decide<'a>(&self, stays: &'a [StayRec]) -> Vec<IndexDecision<'a>> {
        // Open admissions take part as readmissions: a readmission is an admission, reported
        // when the patient is admitted, not weeks later at the discharge (which may change its
        // diagnosis and so its planned status: an update).
        let mut acute: Vec<&StayRec> = stays
            .iter()
            .filter(|s| s.is_acute_inpatient() || s.is_open_acute_admission())
            .collect();
        acute.sort_by(|a, b| {
            (a.admit_date, a.discharge(), &a.encounter_id).cmp(&(
                b.admit_date,
                b.discharge(),
                &b.encounter_id,
            ))
        });
        // Transfer chaining into episodes.
        let mut episodes: Vec<Vec<&StayRec>> = Vec::new();
        for s in acute {
            match episodes.last_mut() {
                Some(ep) if chained(ep[ep.len() - 1], s) => ep.push(s),
                _ => episodes.push(vec![s]),
            }
        }
        let mut decisions = Vec::new();
        for (i, ep) in episodes.iter().enumerate() {
            let cand = ep[ep.len() - 1];
            if cand.discharge_date.is_none() || !self.eligible_index(cand) {
                continue;
            }
            let discharge = cand.discharge();
            let readmission = episodes[i + 1..]
                .iter()
                .map(|next| (next[0], next[0].admit_date - discharge))
                .find(|(_, days)| *days >= 1)
                .filter(|(_, days)| *days <= self.window_days)
                .map(|(stay, days)| {
                    (
                        stay,
                        days,
                        self.refdata
                            .planned_readmission(&stay.principal_dx, &stay.procedures),
                    )
                });
            decisions.push(IndexDecision {
                index: cand,
                episode_admit: ep[0].admit_date,
                readmission,
            });
        }
        decisions
    }

    /// The stay could be an index stay on its own (alive, not AMA, not transferred out, principal
    /// diagnosis not excluded); transfer chaining is decided by [`Detector::decide`].
    pub fn can_be_index(&self, s: &StayRec) -> bool {
        self.eligible_index(s)
    }

    fn eligible_index(&self, s: &StayRec) -> bool {
        let disp = s.disposition.as_deref().unwrap_or("");
        !(disposition::is_expired(disp)
            || disp == disposition::LEFT_AMA
            || disposition::is_transfer_acute(disp))
            && self.refdata.index_exclusion(&s.principal_dx).is_none()
    }

    fn event_for(
        &self,
        member_id: &str,
        d: &IndexDecision<'_>,
        costs: &BTreeMap<String, i64>,
    ) -> Option<ReadmissionEvent> {
        let (re, days, planned) = d.readmission?;
        let idx = d.index;
        Some(ReadmissionEvent {
            output_id: String::new(),
            member_id: member_id.to_owned(),
            version: 0,
            action: ReadmissionAction::Detected,
            event_time: 0,
            index_encounter_id: idx.encounter_id.clone(),
            index_facility_id: idx.facility_id.clone(),
            index_department: idx.department.clone(),
            index_admit_date: d.episode_admit,
            index_discharge_date: idx.discharge(),
            index_principal_dx: idx.principal_dx.clone(),
            index_dx_group: self.refdata.dx_body_system(&idx.principal_dx).to_owned(),
            hrrp_cohort: self
                .refdata
                .hrrp_cohort(&idx.principal_dx, &idx.secondary_dx, &idx.procedures)
                .map(|c| c.as_str().to_owned()),
            readmit_encounter_id: re.encounter_id.clone(),
            readmit_facility_id: re.facility_id.clone(),
            readmit_admit_date: re.admit_date,
            readmit_principal_dx: re.principal_dx.clone(),
            days_between: days,
            planned: planned.is_some(),
            planned_reason: planned.map(str::to_owned),
            readmission_paid_cents: costs.get(&re.encounter_id).copied(),
        })
    }

    fn emit_changes(
        &self,
        state: &mut MemberState,
        member_id: &str,
        event_time: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        let mut current: BTreeMap<String, ReadmissionEvent> = BTreeMap::new();
        for d in self.decide(&state.stays) {
            if let Some(ev) = self.event_for(member_id, &d, &state.costs) {
                current.insert(ev.index_encounter_id.clone(), ev);
            }
        }
        // Retractions first, then detections/updates, each in index order: deterministic.
        let retracted: Vec<String> = state
            .emitted
            .iter()
            .filter(|(k, rec)| rec.active && !current.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in retracted {
            if let Some(rec) = state.emitted.get_mut(&key) {
                rec.version += 1;
                rec.active = false;
                let mut ev = rec.last.clone();
                ev.version = rec.version;
                ev.action = ReadmissionAction::Retracted;
                ev.event_time = event_time;
                ev.output_id = format!("{member_id}:{key}:{}", rec.version);
                rec.last = ev.clone();
                out.push(OutputEvent::Readmission(Box::new(ev)));
            }
        }
        for (key, mut ev) in current {
            let fp = fingerprint(&ev);
            let (version, action) = match state.emitted.get(&key) {
                Some(rec) if rec.active && rec.fingerprint == fp => continue,
                Some(rec) if rec.active => (rec.version + 1, ReadmissionAction::Updated),
                Some(rec) => (rec.version + 1, ReadmissionAction::Detected),
                None => (1, ReadmissionAction::Detected),
            };
            ev.version = version;
            ev.action = action;
            ev.event_time = event_time;
            ev.output_id = format!("{member_id}:{key}:{version}");
            state.emitted.insert(
                key,
                EmittedRec {
                    version,
                    fingerprint: fp,
                    active: true,
                    last: ev.clone(),
                },
            );
            out.push(OutputEvent::Readmission(Box::new(ev)));
        }
    }
}

/// `b` continues `a`'s episode: a transfer to another facility on the discharge day or the next,
/// or a same-day re-admission to the same facility.
fn chained(a: &StayRec, b: &StayRec) -> bool {
    let gap = b.admit_date - a.discharge();
    if a.facility_id == b.facility_id {
        gap == 0
    } else {
        (0..=1).contains(&gap)
    }
}

/// Hash of a readmission event's content (the caller leaves the volatile fields blank).
fn fingerprint(ev: &ReadmissionEvent) -> u64 {
    crate::state::fingerprint(ev)
}
