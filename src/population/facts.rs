//! Member flow: tracks matured index stays and sends [`StayOutcome`] facts (and their
//! corrections) to the population flow.
//!
//! State: the `population_stays` table, keyed by member id ([`TrackedStays`]): per matured
//! stay its probability and tier at discharge and the content last sent. A stay's outcome is a
//! pure function of the member's stays and costs ([`outcome`]); [`refresh`] sends the
//! difference, so what the population flow has summed for a stay always equals its outcome as
//! of the member's latest change.

use serde::{Deserialize, Serialize};

use crate::model::{EpochDay, EpochMillis, Rekeyed, RiskTier, StayOutcome};
use crate::readmit::{Detector, IndexDecision, MemberState};
use crate::refdata::RefData;
use crate::score::MaturedStay;

/// One matured stay of a member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackedStay {
    pub encounter_id: String,
    pub discharge_date: EpochDay,
    /// Calibrated probability at discharge, millionths.
    pub probability_micros: i64,
    pub tier: RiskTier,
    /// The content standing in the aggregate (`sign` +1, `event_time` 0), if any.
    pub sent: Option<StayOutcome>,
}

/// The matured stays of one member (the `population_stays` table).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackedStays {
    pub stays: Vec<TrackedStay>,
}

/// Probability in millionths (what the aggregate sums, exactly).
pub fn micros(p: f64) -> i64 {
    (p * 1e6).round() as i64
}

/// Starts tracking stays whose window just closed (a stay is tracked once).
pub fn track(t: &mut TrackedStays, matured: &[MaturedStay]) {
    for m in matured {
        if t.stays.iter().any(|s| s.encounter_id == m.encounter_id) {
            continue;
        }
        t.stays.push(TrackedStay {
            encounter_id: m.encounter_id.clone(),
            discharge_date: m.discharge_date,
            probability_micros: micros(m.probability),
            tier: m.tier,
            sent: None,
        });
    }
}

/// The outcome of a tracked stay given the member's current decisions: `None` when the stay is
/// no longer an index stay (cancelled, or now part of a transfer chain).
pub fn outcome(
    refdata: &RefData,
    decisions: &[IndexDecision<'_>],
    member: &MemberState,
    s: &TrackedStay,
) -> Option<StayOutcome> {
    let d = decisions
        .iter()
        .find(|d| d.index.encounter_id == s.encounter_id)?;
    let idx = d.index;
    let discharge = idx.discharge_date.unwrap_or(idx.admit_date);
    let dx_group = refdata.dx_body_system(&idx.principal_dx);
    let (readmitted, planned, preventable, readmission_paid_cents) = match d.readmission {
        Some((re, _, None)) => {
            let preventable = refdata
                .ambulatory_care_sensitive(&re.principal_dx)
                .is_some()
                || refdata.dx_body_system(&re.principal_dx) == dx_group;
            (
                true,
                false,
                preventable,
                member.costs.get(&re.encounter_id).copied(),
            )
        }
        Some((_, _, Some(_))) => (false, true, false, None),
        None => (false, false, false, None),
    };
    Some(StayOutcome {
        sign: 1,
        event_time: 0,
        dx_group: dx_group.to_owned(),
        hrrp_cohort: refdata
            .hrrp_cohort(&idx.principal_dx, &idx.secondary_dx, &idx.procedures)
            .map(|c| c.as_str().to_owned()),
        tier: s.tier,
        probability_micros: s.probability_micros,
        los_days: discharge - d.episode_admit,
        index_paid_cents: member.costs.get(&idx.encounter_id).copied(),
        readmitted,
        planned,
        preventable,
        readmission_paid_cents,
    })
}

/// Recomputes every tracked stay of a member and sends the differences: the old content with
/// `sign` -1, then the new with +1, stamped `event_time`. A member no longer in state (`None`)
/// has no index stays. Returns true when anything was sent.
pub fn refresh(
    refdata: &RefData,
    detector: &Detector,
    member: Option<&MemberState>,
    tracked: &mut TrackedStays,
    event_time: EpochMillis,
    out: &mut Vec<Rekeyed>,
) -> bool {
    let empty = MemberState::default();
    let member = member.unwrap_or(&empty);
    let decisions = detector.decide(&member.stays);
    let mut changed = false;
    for s in &mut tracked.stays {
        let now = outcome(refdata, &decisions, member, s);
        if now == s.sent {
            continue;
        }
        changed = true;
        if let Some(old) = s.sent.take() {
            out.push(Rekeyed::Population(StayOutcome {
                sign: -1,
                event_time,
                ..old
            }));
        }
        if let Some(new) = &now {
            out.push(Rekeyed::Population(StayOutcome {
                event_time,
                ..new.clone()
            }));
        }
        s.sent = now;
    }
    changed
}

/// Stops tracking stays discharged before `keep_from` (their contribution stays as sent).
/// Returns false when nothing is left.
pub fn freeze_before(tracked: &mut TrackedStays, keep_from: EpochDay) -> bool {
    tracked.stays.retain(|s| s.discharge_date >= keep_from);
    !tracked.stays.is_empty()
}
