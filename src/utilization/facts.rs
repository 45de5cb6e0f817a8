//! Member flow: the [`UtilizationFact`]s an encounter sends to its facility and service line.
//!
//! The `utilization_members` table (keyed by member id, [`UtilMember`]) keeps, per encounter of
//! the member's state, the fact last sent for it. After every encounter record [`refresh`]
//! recomputes that encounter's fact from the record the member's state kept (the detector's
//! winner: [`desired`], a pure function) and, when it differs from what was sent, takes the old
//! one back (`sign` -1) and sends the new (+1). So a cancelled encounter is taken back, a
//! corrected one (another facility, department, class or admission date) moves, and a record
//! that loses to a later one changes nothing.
//!
//! What counts, on the encounter's admission date (its visit date for an ED visit):
//! - an **admission**: an encounter of class `INPATIENT`, not cancelled (counted from its first
//!   record: the admission, or a discharge that arrives alone);
//! - an **ED visit**: an encounter of class `EMERGENCY`, not cancelled.
//!
//! Observation and outpatient encounters count nowhere. An encounter that leaves the member's
//! state (look-back) is forgotten: its fact stays in the weekly counts.

use serde::{Deserialize, Serialize};

use crate::model::{EncounterClass, EpochMillis, Rekeyed, UtilizationFact};
use crate::readmit::{MemberState, StayRec};

/// Key part used for an empty facility or department.
pub const UNKNOWN: &str = "UNKNOWN";

/// The fact standing in the weekly counts for one encounter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentFact {
    pub encounter_id: String,
    /// `sign` +1, `event_time` 0.
    pub fact: UtilizationFact,
}

/// The encounters of one member (the `utilization_members` table).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UtilMember {
    pub sent: Vec<SentFact>,
}

/// The key of a facility and service line: `<facility>|<department>` (`|` inside either is
/// replaced by `/`, so the key splits back unambiguously).
pub fn key_of(facility: &str, department: &str) -> String {
    let part = |s: &str| {
        if s.is_empty() {
            UNKNOWN.to_owned()
        } else {
            s.replace('|', "/")
        }
    };
    format!("{}|{}", part(facility), part(department))
}

/// Splits a key into facility and service line.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('|').unwrap_or((key, ""))
}

/// The fact an encounter should have in the counts now (`sign` +1, `event_time` 0), if any.
pub fn desired(stay: &StayRec) -> Option<UtilizationFact> {
    if stay.cancelled {
        return None;
    }
    let (admissions, ed_visits) = match stay.class {
        EncounterClass::Inpatient => (1, 0),
        EncounterClass::Emergency => (0, 1),
        EncounterClass::Observation | EncounterClass::Outpatient => return None,
    };
    Some(UtilizationFact {
        key: key_of(&stay.facility_id, &stay.department),
        sign: 1,
        event_time: 0,
        day: stay.admit_date,
        admissions,
        ed_visits,
        source_partition: 0,
    })
}

/// Recomputes the fact of encounter `encounter_id` of a member and sends the difference stamped
/// `event_time` and `source` (the member's partition). Encounters no longer in the member's state are forgotten (`None`: the member
/// left state). Returns false when nothing is tracked any more.
pub fn refresh(
    member: Option<&MemberState>,
    t: &mut UtilMember,
    encounter_id: &str,
    event_time: EpochMillis,
    source: i32,
    out: &mut Vec<Rekeyed>,
) -> bool {
    let Some(member) = member else {
        t.sent.clear();
        return false;
    };
    t.sent.retain(|s| {
        member
            .stays
            .iter()
            .any(|st| st.encounter_id == s.encounter_id)
    });
    let Some(stay) = member.stays.iter().find(|s| s.encounter_id == encounter_id) else {
        return !t.sent.is_empty();
    };
    let now = desired(stay);
    let pos = t.sent.iter().position(|s| s.encounter_id == encounter_id);
    let old = pos.map(|p| &t.sent[p].fact);
    if old == now.as_ref() {
        return !t.sent.is_empty();
    }
    if let Some(old) = old {
        out.push(Rekeyed::Utilization(UtilizationFact {
            sign: -1,
            event_time,
            source_partition: source,
            ..old.clone()
        }));
    }
    if let Some(new) = &now {
        out.push(Rekeyed::Utilization(UtilizationFact {
            event_time,
            source_partition: source,
            ..new.clone()
        }));
    }
    match (pos, now) {
        (Some(p), Some(fact)) => t.sent[p].fact = fact,
        (Some(p), None) => {
            t.sent.swap_remove(p);
        }
        (None, Some(fact)) => t.sent.push(SentFact {
            encounter_id: encounter_id.to_owned(),
            fact,
        }),
        (None, None) => {}
    }
    !t.sent.is_empty()
}
