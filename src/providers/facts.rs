//! Member and claim flows: the [`ProviderFact`]s a provider or department key receives.
//!
//! **Member flow** (the `provider_members` table, keyed by member id, [`ProviderMember`]): per
//! encounter of the member's state, the attending provider of its winning record and the facts
//! last sent for it. After every change of the member (encounter record, paid amount, a stay
//! maturing) [`refresh`] recomputes each encounter's facts from the member's state ([`desired`],
//! a pure function) and, when they differ from what was sent, takes the old ones back (`sign` -1)
//! and sends the new (+1). An encounter counts on its department and attending provider:
//! - when completed (discharged, not cancelled): one encounter on its discharge day, with its
//!   length of stay (inpatient) and paid amount (when its claim is paid);
//! - when it is a matured index stay (the population flow's tracked stay, whose outcome is the
//!   one the population aggregate holds): one index stay on its maturity day (discharge +
//!   readmission window + 1), with its tier, outcome and calibrated probability.
//!
//! A tracked stay that the population flow stopped following (frozen before it leaves the
//! look-back) keeps the index facts last sent, as in the population aggregate. An encounter that
//! leaves the member's state (look-back) is forgotten: its facts stay in the aggregate.
//!
//! **Claim flow**: every claim adjudication the reconciler reports as a payer fact (paid,
//! partially paid, denied; with its first-pass flags) is also counted on the claim's billing
//! provider and department ([`claim_facts`]), on the adjudication's day: the same counting as
//! `claimwatch.payer-kpis`.

use serde::{Deserialize, Serialize};

use crate::model::{
    day_of, EncounterClass, EpochDay, EpochMillis, FactKind, FactOutcome, PayerFact,
    ProviderCounts, ProviderFact, Rekeyed, RiskTier,
};
use crate::population::TrackedStays;
use crate::readmit::{MemberState, StayRec};

/// What the provider flow keeps of one encounter of a member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EncounterTrack {
    pub encounter_id: String,
    /// Attending provider of the encounter's winning record.
    pub attending: Option<String>,
    /// The facts standing in the aggregate (`sign` +1, `event_time` 0).
    pub sent: Vec<ProviderFact>,
}

/// The encounters of one member (the `provider_members` table).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderMember {
    pub tracks: Vec<EncounterTrack>,
}

/// The key of a provider.
pub fn provider_key(id: &str) -> String {
    format!("provider:{id}")
}

/// The key of a department.
pub fn department_key(name: &str) -> String {
    format!("department:{name}")
}

/// Records the attending provider of an encounter record when it is the one the member's state
/// kept (the detector's winner: latest event time, then record kind, then record id).
pub fn note_attending(
    t: &mut ProviderMember,
    member: &MemberState,
    encounter_id: &str,
    record_time: EpochMillis,
    record_id: u64,
    attending: Option<&str>,
) {
    let Some(stay) = member.stays.iter().find(|s| s.encounter_id == encounter_id) else {
        return;
    };
    if stay.winner.0 != record_time || stay.winner.2 != record_id {
        return; // an older record: the winner's provider stands
    }
    let attending = attending.filter(|a| !a.is_empty()).map(str::to_owned);
    match t.tracks.iter_mut().find(|k| k.encounter_id == encounter_id) {
        Some(k) => k.attending = attending,
        None => t.tracks.push(EncounterTrack {
            encounter_id: encounter_id.to_owned(),
            attending,
            sent: Vec::new(),
        }),
    }
}

fn counts_of_encounter(s: &StayRec, member: &MemberState) -> Option<(EpochDay, ProviderCounts)> {
    if s.cancelled {
        return None;
    }
    let discharge = s.discharge_date?;
    let inpatient = s.class == EncounterClass::Inpatient;
    let paid = member.costs.get(&s.encounter_id).copied();
    Some((
        discharge,
        ProviderCounts {
            encounters: 1,
            inpatient_stays: i64::from(inpatient),
            inpatient_los_days: if inpatient {
                i64::from((discharge - s.admit_date).max(0))
            } else {
                0
            },
            paid_encounters: i64::from(paid.is_some()),
            paid_cents: paid.unwrap_or(0),
            ..Default::default()
        },
    ))
}

/// The facts an encounter should have in the aggregate now (`sign` +1, `event_time` 0), given
/// the member's state, the population flow's tracked stays and what was sent before (for frozen
/// index stays). Sorted, so equal content compares equal.
pub fn desired(
    stay: &StayRec,
    track: &EncounterTrack,
    member: &MemberState,
    tracked: Option<&TrackedStays>,
    readmission_window_days: i32,
) -> Vec<ProviderFact> {
    let mut keys = vec![department_key(&stay.department)];
    if let Some(a) = &track.attending {
        keys.push(provider_key(a));
    }
    let mut facts = Vec::new();
    if let Some((day, counts)) = counts_of_encounter(stay, member) {
        for key in &keys {
            facts.push(fact(key, day, counts));
        }
    }
    let tracked_stay =
        tracked.and_then(|t| t.stays.iter().find(|s| s.encounter_id == stay.encounter_id));
    match tracked_stay {
        Some(ts) => {
            if let Some(o) = &ts.sent {
                let day = ts.discharge_date + readmission_window_days + 1;
                let counts = ProviderCounts {
                    index_stays: 1,
                    high_risk: i64::from(o.tier == RiskTier::High),
                    readmissions: i64::from(o.readmitted),
                    expected_micros: o.probability_micros,
                    ..Default::default()
                };
                for key in &keys {
                    facts.push(fact(key, day, counts));
                }
            }
        }
        // Not (or no longer) followed by the population flow: frozen as last sent.
        None => facts.extend(
            track
                .sent
                .iter()
                .filter(|f| f.counts.index_stays != 0)
                .cloned(),
        ),
    }
    facts.sort_by(|a, b| (&a.key, a.day).cmp(&(&b.key, b.day)));
    facts
}

fn fact(key: &str, day: EpochDay, counts: ProviderCounts) -> ProviderFact {
    ProviderFact {
        key: key.to_owned(),
        sign: 1,
        event_time: 0,
        day,
        counts,
        source_partition: -1,
    }
}

/// Recomputes the facts of every encounter of a member and sends the differences stamped
/// `event_time`: the old facts with `sign` -1, then the new with +1. Encounters no longer in the
/// member's state (`None`: the member left state) are forgotten. Returns false when nothing is
/// tracked any more.
pub fn refresh(
    member: Option<&MemberState>,
    tracked: Option<&TrackedStays>,
    t: &mut ProviderMember,
    readmission_window_days: i32,
    event_time: EpochMillis,
    out: &mut Vec<Rekeyed>,
) -> bool {
    let Some(member) = member else {
        t.tracks.clear();
        return false;
    };
    t.tracks.retain(|k| {
        member
            .stays
            .iter()
            .any(|s| s.encounter_id == k.encounter_id)
    });
    for stay in &member.stays {
        let pos = match t
            .tracks
            .iter()
            .position(|k| k.encounter_id == stay.encounter_id)
        {
            Some(p) => p,
            None => {
                t.tracks.push(EncounterTrack {
                    encounter_id: stay.encounter_id.clone(),
                    ..Default::default()
                });
                t.tracks.len() - 1
            }
        };
        let track = &mut t.tracks[pos];
        let now = desired(stay, track, member, tracked, readmission_window_days);
        if now == track.sent {
            continue;
        }
        for old in track.sent.drain(..) {
            out.push(Rekeyed::Provider(ProviderFact {
                sign: -1,
                event_time,
                ..old
            }));
        }
        for new in &now {
            out.push(Rekeyed::Provider(ProviderFact {
                event_time,
                ..new.clone()
            }));
        }
        track.sent = now;
    }
    !t.tracks.is_empty()
}

/// The provider facts of the payer facts a claim event produced: each adjudication counted on
/// the claim's billing provider and department.
pub fn claim_facts(
    provider_id: &str,
    department: &str,
    payer_facts: &[Rekeyed],
    out: &mut Vec<Rekeyed>,
) {
    for r in payer_facts {
        let Rekeyed::Payer(f) = r else { continue };
        let Some(counts) = adjudication_counts(f) else {
            continue;
        };
        let day = day_of(f.event_time);
        let mut keys = Vec::with_capacity(2);
        if !provider_id.is_empty() {
            keys.push(provider_key(provider_id));
        }
        if !department.is_empty() {
            keys.push(department_key(department));
        }
        for key in keys {
            out.push(Rekeyed::Provider(ProviderFact {
                key,
                sign: 1,
                event_time: f.event_time,
                day,
                counts,
                source_partition: -1,
            }));
        }
    }
}

/// What an adjudication fact counts (`None` for other payer facts).
pub fn adjudication_counts(f: &PayerFact) -> Option<ProviderCounts> {
    if f.kind != FactKind::Adjudicated {
        return None;
    }
    Some(ProviderCounts {
        adjudicated: 1,
        denied: i64::from(f.outcome == Some(FactOutcome::Denied)),
        first_adjudications: i64::from(f.first_adjudication),
        first_pass_paid: i64::from(f.first_pass_paid),
        ..Default::default()
    })
}

/// Sums provider facts per key, day and source partition into one fact each (sign +1, the
/// group's latest event time), ordered by those event times. The counters are additive, so the
/// day buckets end up as with every fact, and each source's time in the flow's watermark reaches
/// the same value. The runtime sends a batch's facts this way: one per key and day instead of
/// one per change (a correction alone is two facts, -1 and +1). Groups that sum to zero are
/// kept: they still carry their source's time.
pub fn coalesce(facts: &[ProviderFact]) -> Vec<ProviderFact> {
    let mut groups: std::collections::BTreeMap<
        (&str, EpochDay, i32),
        (ProviderCounts, EpochMillis),
    > = std::collections::BTreeMap::new();
    for f in facts {
        let g = groups
            .entry((f.key.as_str(), f.day, f.source_partition))
            .or_insert((ProviderCounts::default(), f.event_time));
        g.0.add(&f.counts, i64::from(f.sign));
        g.1 = g.1.max(f.event_time);
    }
    let mut out: Vec<ProviderFact> = groups
        .into_iter()
        .map(|((key, day, source), (counts, event_time))| ProviderFact {
            key: key.to_owned(),
            sign: 1,
            event_time,
            day,
            counts,
            source_partition: source,
        })
        .collect();
    out.sort_by_key(|f| f.event_time);
    out
}
