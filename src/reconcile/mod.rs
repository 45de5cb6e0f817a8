//! Claim lifecycle reconciliation, keyed by claim id (the patient control number).
//!
//! **Job.** Join the EHR claim export, 277CA acknowledgments and 835 remittances of one claim into
//! one lifecycle, and emit a [`ClaimLifecycleUpdate`] whenever the reconciled view changes.
//!
//! **State** ([`ClaimState`], one per claim id): the distinct submissions, acknowledgments and
//! remittances received (compact records, deduplicated by event id), the output version, the
//! fingerprint of the last emitted view and which timers have fired.
//!
//! **Order independence.** The view is a pure function of the *set* of records (sorted by their
//! business dates), never of arrival order: a 277CA or 835 may arrive before the claim, a duplicate
//! changes nothing, a replacement (frequency 7) supersedes the submission it replaces and makes
//! older acknowledgments stale (and, once it is adjudicated, the earlier adjudications: an appeal
//! paid in full is `PAID`, with only its own adjustments; until then the latest adjudication
//! stands and the missing-remit timer runs from the replacement). An 835 answers the submissions
//! dated on or before its payment date, and a replacement when its CLP09 says 7, so the rule
//! holds when remittances arrive first;
//! a void (8) ends the claim, a reversal (CLP02 22) retracts the
//! adjudication it names and a later 835 re-adjudicates. Whatever the arrival order, the final
//! state is the same (property-tested).
//!
//! **Denial** is derived from the CAS adjustments (group + CARC category from [`RefData`]), not
//! from CLP02 alone: a claim "processed as primary" with a CO-197 and nothing paid is denied.
//!
//! **Timers** (event time): no acknowledgment `ack_timeout_days` after submission raises
//! `MISSING_ACK`, no remittance after `remit_timeout_days` raises `MISSING_REMIT` (both counted
//! from the submission in force, so an unanswered replacement raises them too). The core owns the
//! timer index; this module says when the next timer of a claim is due ([`Reconciler::next_timer`])
//! and what firing it does ([`Reconciler::fire_timer`]).
//!
//! **Emits** [`OutputEvent::ClaimLifecycle`] and, when the paid amount of a claim that bills an
//! encounter changes, an internal [`EncounterCost`] for the member flow.
//!
//! **Payer facts** (for the payer monitors, re-keyed to the payer flow), each at the event time of
//! the input that caused it and only once the claim's payer is known (a 277CA or 835 that arrives
//! before the claim is reported when the claim arrives):
//! - `SUBMITTED` for every distinct non-void submission;
//! - `ACCEPTED` / `REJECTED` for every distinct 277CA whose status category accepts (A2, F*) or
//!   rejects (A3, A6-A8, A4, E*) the claim;
//! - `ADJUDICATED` whenever the claim's status becomes paid, partially paid or denied (from any
//!   other status): the first such fact of a claim is its first adjudication, and carries whether
//!   it was paid on the first pass ([`ClaimLifecycleUpdate::first_pass_paid`]);
//! - `REVERSED` when a reversal takes an adjudicated claim to `REVERSED`.

use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::config::CoreConfig;
use crate::model::{
    AdjustmentGroup, AmountByCode, ClaimAck, ClaimAlert, ClaimFrequency, ClaimLifecycleUpdate,
    ClaimStatus, ClaimSubmitted, EncounterCost, EpochDay, EpochMillis, FactKind, FactOutcome,
    MemberPaid, OutputEvent, PayerCategory, PayerFact, Rekeyed, Remittance, UpdateCause, DAY_MS,
};
use crate::refdata::{AckClass, CarcCategory, RefData};

/// A payer fact with no amounts.
fn fact(
    payer_id: &str,
    payer_category: PayerCategory,
    event_time: EpochMillis,
    kind: FactKind,
) -> PayerFact {
    PayerFact {
        payer_id: payer_id.to_owned(),
        payer_category,
        event_time,
        kind,
        outcome: None,
        first_adjudication: false,
        first_pass_paid: false,
        paid_cents: 0,
        denied_cents: 0,
        denial_category: None,
        denied_by_category: Vec::new(),
        days_to_payment: None,
        source_partition: 0,
    }
}

#[cfg(test)]
mod tests;

/// Stable 64-bit id of an input record (its `event_id`), for deduplication.
pub fn record_id(event_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(event_id.as_bytes())
}

/// What the reconciler keeps of a submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmissionRec {
    pub id: u64,
    pub event_time: EpochMillis,
    pub frequency: ClaimFrequency,
    pub submitted_date: EpochDay,
    /// Service (from) date: the PMPM's incurred month (`enrolment` module).
    pub service_date: EpochDay,
    pub member_id: CompactString,
    pub payer_id: CompactString,
    pub payer_category: PayerCategory,
    pub provider_id: CompactString,
    pub department: CompactString,
    pub encounter_id: Option<CompactString>,
    pub billed_cents: i64,
    pub expected_cents: Option<i64>,
    /// Offset of the record in its input topic partition (-1 unknown); the topic is the claims
    /// topic and the partition the claim's own, so neither is stored.
    pub offset: i64,
}

/// What the reconciler keeps of a 277CA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckRec {
    pub id: u64,
    pub event_time: EpochMillis,
    pub ack_date: EpochDay,
    pub category: CompactString,
    pub code: CompactString,
    pub payer_claim_control_number: Option<CompactString>,
    /// Offset in the 277CA topic's partition of this claim (-1 unknown).
    pub offset: i64,
}

/// What the reconciler keeps of an 835 claim payment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemitRec {
    pub id: u64,
    pub event_time: EpochMillis,
    pub payment_date: EpochDay,
    pub status: CompactString,
    pub paid_cents: i64,
    pub patient_cents: i64,
    pub payer_claim_control_number: Option<CompactString>,
    /// (group, CARC, cents) of every claim- and line-level CAS triplet.
    pub adjustments: Vec<(AdjustmentGroup, CompactString, i64)>,
    pub remarks: Vec<CompactString>,
    pub has_findings: bool,
    /// Offset in the 835 topic's partition of this claim (-1 unknown).
    pub offset: i64,
    /// The claim frequency code the 835 gives for the claim it adjudicates (CLP09: 1 original,
    /// 7 replacement, ...), when present and numeric.
    pub frequency: Option<u8>,
}

impl RemitRec {
    /// The business order of 835s: payment date, then arrival time; within one 835 (the same
    /// date and time) a reversal comes before the other claims, as the 835 guide sends a
    /// reversal before the corrected claim, so the reversal retracts the earlier adjudication
    /// and not the correction beside it.
    fn business_order(&self) -> (EpochDay, EpochMillis, bool, u64) {
        (
            self.payment_date,
            self.event_time,
            !self.is_reversal(),
            self.id,
        )
    }

    fn is_reversal(&self) -> bool {
        self.status == "22"
    }

    /// Processed as secondary or tertiary (CLP02 2, 3, 20, 21).
    pub fn is_secondary(&self) -> bool {
        matches!(self.status.as_str(), "2" | "3" | "20" | "21")
    }

    /// CLP02 25: a predetermination, pricing only, no payment. It is kept with the claim's
    /// records (its history shows it, a repeat is recognised) but it does not adjudicate the
    /// claim: the status, the amounts, the timers and the payer facts leave it out.
    pub fn is_predetermination(&self) -> bool {
        self.status == "25"
    }
}

/// The durable state of one claim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimState {
    pub submissions: Vec<SubmissionRec>,
    pub acks: Vec<AckRec>,
    pub remits: Vec<RemitRec>,
    /// Version of the last emitted update (0 = none yet).
    pub version: i64,
    pub last_status: Option<ClaimStatus>,
    /// Fingerprint of the last emitted view, to emit only on change.
    pub last_fingerprint: u64,
    /// The missing-ack timer fired for the submission with this event time.
    pub ack_timer_fired_for: Option<EpochMillis>,
    /// The missing-remit timer fired for the submission with this event time.
    pub remit_timer_fired_for: Option<EpochMillis>,
    /// Latest event time seen for this claim (drives retention).
    pub last_event_time: EpochMillis,
    /// Paid amount last reported to the member flow.
    pub reported_paid_cents: Option<i64>,
}

/// The round of adjudication in force on `day`, counted from 0, given the rounds' start dates.
fn round_on(starts: &[EpochDay], day: EpochDay) -> usize {
    starts
        .iter()
        .filter(|d| **d <= day)
        .count()
        .saturating_sub(1)
}

impl ClaimState {
    /// What is kept of a claim that left state by retention: its output version and last
    /// status, so a record for it arriving later continues its versions (and its status
    /// transitions) instead of starting again at 1.
    pub fn retired(&self) -> Self {
        Self {
            version: self.version,
            last_status: self.last_status,
            last_fingerprint: self.last_fingerprint,
            last_event_time: self.last_event_time,
            ..Self::default()
        }
    }

    /// A claim that left state by retention (see [`ClaimState::retired`]): no record at all,
    /// which a claim in state always has.
    pub fn is_retired(&self) -> bool {
        self.submissions.is_empty() && self.acks.is_empty() && self.remits.is_empty()
    }

    /// The 835s that adjudicate or reverse the claim (every one but predeterminations).
    fn adjudications(&self) -> impl Iterator<Item = &RemitRec> {
        self.remits.iter().filter(|r| !r.is_predetermination())
    }

    /// An 835 adjudicated (or reversed) the claim.
    pub fn has_adjudication(&self) -> bool {
        self.adjudications().next().is_some()
    }

    fn contains(&self, id: u64) -> bool {
        self.submissions.iter().any(|r| r.id == id)
            || self.acks.iter().any(|r| r.id == id)
            || self.remits.iter().any(|r| r.id == id)
    }

    /// The submission in force: the latest by submission date.
    pub fn current_submission(&self) -> Option<&SubmissionRec> {
        self.submissions
            .iter()
            .max_by_key(|r| (r.submitted_date, r.event_time, r.id))
    }

    /// The dates of the submissions that start a new round of adjudication: the first submission
    /// and the replacements (frequency 7). A rebill with frequency 1 is the same claim again (a
    /// payer denies it as a duplicate), not a new round.
    fn round_starts(&self) -> SmallVec<[EpochDay; 4]> {
        let first = self
            .submissions
            .iter()
            .filter(|s| s.frequency != ClaimFrequency::Void)
            .map(|s| (s.submitted_date, s.event_time, s.id))
            .min();
        self.submissions
            .iter()
            .filter(|s| {
                s.frequency != ClaimFrequency::Void
                    && (s.frequency == ClaimFrequency::Replacement
                        || Some((s.submitted_date, s.event_time, s.id)) == first)
            })
            .map(|s| s.submitted_date)
            .collect()
    }

    /// Which submission each remittance answers (by `id`), counted from 0 (see
    /// [`ClaimState::round_starts`]): an 835 whose CLP09 says 1 answers the first; one that says 7
    /// answers a replacement (at least the first), by its payment date when the replacements are
    /// known, else (remittances before the claims) by the primary replacement adjudications (CLP02
    /// not 2, 3, 20, 21 or 22) up to it in business order; without a CLP09, the round in force on
    /// its payment date.
    fn generations(&self) -> SmallVec<[(u64, usize); 8]> {
        let starts = self.round_starts();
        let mut order: SmallVec<[&RemitRec; 8]> = self.adjudications().collect();
        order.sort_by_key(|r| r.business_order());
        let replacements_known = self
            .submissions
            .iter()
            .any(|s| s.frequency == ClaimFrequency::Replacement);
        let mut replacement_835s = 0;
        order
            .iter()
            .map(|r| {
                let by_date = round_on(&starts, r.payment_date);
                let generation = match r.frequency {
                    Some(1) => 0,
                    Some(7) => {
                        if !r.is_reversal() && !r.is_secondary() {
                            replacement_835s += 1;
                        }
                        if replacements_known {
                            by_date.max(1)
                        } else {
                            replacement_835s.max(1)
                        }
                    }
                    _ => by_date,
                };
                (r.id, generation)
            })
            .collect()
    }

    /// Whether a remittance (an adjudication or a reversal) answers the submission in force,
    /// given the remittances' [`ClaimState::generations`].
    fn answered(&self, generations: &[(u64, usize)]) -> bool {
        let Some(cur) = self.current_submission() else {
            return self.has_adjudication();
        };
        let current = round_on(&self.round_starts(), cur.submitted_date);
        current == 0 && self.has_adjudication() || generations.iter().any(|(_, g)| *g >= current)
    }

    /// Acknowledgments that speak about the submission in force (older ones are stale).
    fn relevant_acks(&self) -> impl Iterator<Item = &AckRec> {
        let cutoff = self.current_submission().map(|c| c.submitted_date);
        self.acks
            .iter()
            .filter(move |a| cutoff.is_none_or(|d| a.ack_date >= d))
    }
}

/// Which input a claim record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// The EHR claim export (`ehr.claims`).
    Ehr,
    /// A 277CA acknowledgment.
    Ack277ca,
    /// An 835 remittance.
    Remit835,
}

/// One change of a claim's reconciled status and the record that caused it.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusChange {
    pub status: ClaimStatus,
    pub previous: Option<ClaimStatus>,
    pub event_time: EpochMillis,
    pub source: SourceKind,
    /// Offset of the record in its topic partition (-1 unknown).
    pub offset: i64,
}

/// A claim-keyed input.
#[derive(Clone, Copy, Debug)]
pub enum ClaimInput<'a> {
    Submitted(&'a ClaimSubmitted),
    Ack(&'a ClaimAck),
    Remit(&'a Remittance),
}

/// Which timer of a claim is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClaimTimer {
    MissingAck,
    MissingRemit,
    /// The claim leaves state.
    Expire,
}

/// Outputs of one step of the claim flow.
#[derive(Debug, Default)]
pub struct ClaimOutputs {
    pub events: Vec<OutputEvent>,
    /// Re-keyed to the member flow (costs) or the payer flow (payer facts).
    pub costs: Vec<Rekeyed>,
}

/// The claim lifecycle state machine. Stateless itself: state lives in [`ClaimState`].
#[derive(Debug, Clone)]
pub struct Reconciler {
    refdata: Arc<RefData>,
    ack_timeout_ms: i64,
    remit_timeout_ms: i64,
    closed_retention_ms: i64,
    open_retention_ms: i64,
    version_retention_ms: i64,
    /// Derive payer facts for the payer monitors.
    payer_facts: bool,
}

impl Reconciler {
    pub fn new(refdata: Arc<RefData>, cfg: &CoreConfig) -> Self {
        Self {
            refdata,
            ack_timeout_ms: i64::from(cfg.ack_timeout_days) * DAY_MS,
            remit_timeout_ms: i64::from(cfg.remit_timeout_days) * DAY_MS,
            closed_retention_ms: i64::from(cfg.closed_claim_retention_days) * DAY_MS,
            open_retention_ms: i64::from(cfg.open_claim_retention_days) * DAY_MS,
            version_retention_ms: i64::from(cfg.claim_version_retention_days) * DAY_MS,
            payer_facts: cfg.monitor.enabled,
        }
    }

    /// Applies one input. Returns false (and changes nothing) for a duplicate record.
    pub fn apply(
        &self,
        state: &mut ClaimState,
        claim_id: &str,
        input: ClaimInput<'_>,
        out: &mut ClaimOutputs,
    ) -> bool {
        self.apply_at(state, claim_id, input, -1, out)
    }

    /// As [`Reconciler::apply`], remembering the input record's offset in its topic partition
    /// (shown by the read API's status history).
    pub fn apply_at(
        &self,
        state: &mut ClaimState,
        claim_id: &str,
        input: ClaimInput<'_>,
        offset: i64,
        out: &mut ClaimOutputs,
    ) -> bool {
        let (event_id, event_time, cause) = match input {
            ClaimInput::Submitted(c) => (&c.event_id, c.event_time, UpdateCause::Submission),
            ClaimInput::Ack(a) => (&a.event_id, a.event_time, UpdateCause::Acknowledgment),
            ClaimInput::Remit(r) => (&r.event_id, r.event_time, UpdateCause::Remittance),
        };
        let id = record_id(event_id);
        if state.contains(id) {
            return false;
        }
        let had_submission = !state.submissions.is_empty();
        match input {
            ClaimInput::Submitted(c) => state.submissions.push(SubmissionRec {
                id,
                event_time: c.event_time,
                frequency: c.frequency,
                submitted_date: c.submitted_date,
                service_date: c.service_date,
                member_id: c.member_id.as_str().into(),
                payer_id: c.payer_id.as_str().into(),
                payer_category: c.payer_category,
                provider_id: c.provider_id.as_str().into(),
                department: c.department.as_str().into(),
                encounter_id: c.encounter_id.as_deref().map(CompactString::from),
                billed_cents: c.billed_cents,
                expected_cents: c.expected_cents,
                offset,
            }),
            ClaimInput::Ack(a) => {
                let primary = a.statuses.first();
                state.acks.push(AckRec {
                    id,
                    event_time: a.event_time,
                    ack_date: a.ack_date,
                    category: primary
                        .map(|s| s.category.as_str().into())
                        .unwrap_or_default(),
                    code: primary.map(|s| s.code.as_str().into()).unwrap_or_default(),
                    payer_claim_control_number: a
                        .payer_claim_control_number
                        .as_deref()
                        .map(CompactString::from),
                    offset,
                })
            }
            ClaimInput::Remit(r) => state.remits.push(RemitRec {
                id,
                event_time: r.event_time,
                payment_date: r.payment_date,
                status: r.claim_status.as_str().into(),
                paid_cents: r.paid_cents,
                patient_cents: r.patient_responsibility_cents,
                payer_claim_control_number: r
                    .payer_claim_control_number
                    .as_deref()
                    .map(CompactString::from),
                adjustments: r
                    .all_adjustments()
                    .map(|a| (a.group, a.reason.as_str().into(), a.amount_cents))
                    .collect(),
                remarks: r
                    .remarks
                    .iter()
                    .chain(r.lines.iter().flat_map(|l| l.remarks.iter()))
                    .map(|m| m.as_str().into())
                    .collect(),
                has_findings: !r.findings.is_empty(),
                offset,
                frequency: r.frequency.as_deref().and_then(|f| f.trim().parse().ok()),
            }),
        }
        state.last_event_time = state.last_event_time.max(event_time);
        if self.payer_facts {
            self.record_facts(state, input, had_submission, out);
        }
        self.emit_if_changed(state, claim_id, event_time, cause, had_submission, out);
        true
    }

    /// Payer facts of a new submission or acknowledgment (see the module docs).
    fn record_facts(
        &self,
        state: &ClaimState,
        input: ClaimInput<'_>,
        had_submission: bool,
        out: &mut ClaimOutputs,
    ) {
        match input {
            ClaimInput::Submitted(c) => {
                if c.frequency != ClaimFrequency::Void {
                    out.costs.push(Rekeyed::Payer(fact(
                        &c.payer_id,
                        c.payer_category,
                        c.event_time,
                        FactKind::Submitted,
                    )));
                }
                if !had_submission {
                    // Acknowledgments that came before the claim: their payer is known now.
                    for a in &state.acks {
                        if let Some(kind) = self.ack_fact_kind(&a.category) {
                            out.costs.push(Rekeyed::Payer(fact(
                                &c.payer_id,
                                c.payer_category,
                                a.event_time,
                                kind,
                            )));
                        }
                    }
                }
            }
            ClaimInput::Ack(a) => {
                let (Some(cur), Some(status)) = (state.current_submission(), a.statuses.first())
                else {
                    return;
                };
                if let Some(kind) = self.ack_fact_kind(&status.category) {
                    out.costs.push(Rekeyed::Payer(fact(
                        &cur.payer_id,
                        cur.payer_category,
                        a.event_time,
                        kind,
                    )));
                }
            }
            ClaimInput::Remit(_) => {}
        }
    }

    fn ack_fact_kind(&self, category: &str) -> Option<FactKind> {
        match self.refdata.ack_class(category) {
            AckClass::Accepted | AckClass::Finalized => Some(FactKind::Accepted),
            AckClass::Rejected | AckClass::NotFound | AckClass::Error => Some(FactKind::Rejected),
            _ => None,
        }
    }

    /// The adjudication or reversal fact of a status change, if any. `previous` is the status
    /// last reported with a known payer.
    fn status_fact(
        &self,
        state: &ClaimState,
        view: &ClaimLifecycleUpdate,
        previous: Option<ClaimStatus>,
        event_time: EpochMillis,
    ) -> Option<PayerFact> {
        let (payer_id, category) = (view.payer_id.as_deref()?, view.payer_category?);
        if previous == Some(view.status) {
            return None;
        }
        let adjudicated = |s: ClaimStatus| {
            matches!(
                s,
                ClaimStatus::Paid | ClaimStatus::PartiallyPaid | ClaimStatus::Denied
            )
        };
        let outcome = match view.status {
            ClaimStatus::Paid => FactOutcome::Paid,
            ClaimStatus::PartiallyPaid => FactOutcome::PartiallyPaid,
            ClaimStatus::Denied => FactOutcome::Denied,
            ClaimStatus::Reversed if previous.is_some_and(adjudicated) => {
                let mut f = fact(payer_id, category, event_time, FactKind::Reversed);
                f.paid_cents = state
                    .remits
                    .iter()
                    .filter(|r| r.is_reversal())
                    .map(|r| -r.paid_cents)
                    .sum();
                return Some(f);
            }
            _ => return None,
        };
        let first = !previous.is_some_and(|p| {
            adjudicated(p) || matches!(p, ClaimStatus::Reversed | ClaimStatus::Forwarded)
        });
        let mut f = fact(payer_id, category, event_time, FactKind::Adjudicated);
        f.outcome = Some(outcome);
        f.first_adjudication = first;
        f.first_pass_paid = first && view.first_pass_paid == Some(true);
        f.paid_cents = view.paid_to_date_cents;
        for a in &view.adjustments_by_category {
            if a.amount_cents > 0
                && CarcCategory::from_name(&a.code).is_some_and(CarcCategory::is_denial)
            {
                f.denied_cents += a.amount_cents;
                f.denied_by_category.push(a.clone());
            }
        }
        f.denial_category = view.denial_category.clone();
        if outcome != FactOutcome::Denied {
            f.days_to_payment = view.days_to_first_payment;
        }
        Some(f)
    }

    /// When the claim's next timer is due, and which.
    pub fn next_timer(&self, state: &ClaimState) -> (EpochMillis, ClaimTimer) {
        self.pending_timers(state)
            .into_iter()
            .min()
            .unwrap_or((EpochMillis::MAX, ClaimTimer::Expire))
    }

    /// Whether a claim leaving state keeps its version (`claim_version_retention_days` > 0).
    pub fn keeps_versions(&self) -> bool {
        self.version_retention_ms > 0
    }

    /// Every timer of the claim not fired yet, with its due time (the expiry always included; a
    /// retired claim's is when its version is forgotten).
    pub fn pending_timers(&self, state: &ClaimState) -> SmallVec<[(EpochMillis, ClaimTimer); 3]> {
        let status = state.last_status;
        let mut retention = if status.is_some_and(ClaimStatus::is_closed) {
            self.closed_retention_ms
        } else {
            self.open_retention_ms
        };
        if state.is_retired() {
            retention = retention.saturating_add(self.version_retention_ms);
        }
        let mut timers = SmallVec::new();
        timers.push((
            state.last_event_time.saturating_add(retention),
            ClaimTimer::Expire,
        ));
        if let Some(cur) = state.current_submission() {
            if cur.frequency != ClaimFrequency::Void && !state.answered(&state.generations()) {
                if state.ack_timer_fired_for != Some(cur.event_time)
                    && state.relevant_acks().next().is_none()
                {
                    timers.push((cur.event_time + self.ack_timeout_ms, ClaimTimer::MissingAck));
                }
                if state.remit_timer_fired_for != Some(cur.event_time) {
                    timers.push((
                        cur.event_time + self.remit_timeout_ms,
                        ClaimTimer::MissingRemit,
                    ));
                }
            }
        }
        timers
    }

    /// The claim's status changes, replayed from its records in event-time order: each entry is
    /// the record that moved the reconciled status. A pure function of the records (no extra
    /// state is kept for it); quadratic in the records of one claim, which are a handful.
    pub fn status_history(&self, state: &ClaimState, claim_id: &str) -> Vec<StatusChange> {
        let mut records: Vec<(EpochMillis, u64, SourceKind, usize)> = Vec::new();
        records.extend(
            state
                .submissions
                .iter()
                .enumerate()
                .map(|(i, r)| (r.event_time, r.id, SourceKind::Ehr, i)),
        );
        records.extend(
            state
                .acks
                .iter()
                .enumerate()
                .map(|(i, r)| (r.event_time, r.id, SourceKind::Ack277ca, i)),
        );
        records.extend(
            state
                .remits
                .iter()
                .enumerate()
                .map(|(i, r)| (r.event_time, r.id, SourceKind::Remit835, i)),
        );
        records.sort_unstable();
        let mut partial = ClaimState::default();
        let mut last: Option<ClaimStatus> = None;
        let mut out = Vec::new();
        for (event_time, _, kind, i) in records {
            let offset = match kind {
                SourceKind::Ehr => {
                    partial.submissions.push(state.submissions[i].clone());
                    state.submissions[i].offset
                }
                SourceKind::Ack277ca => {
                    partial.acks.push(state.acks[i].clone());
                    state.acks[i].offset
                }
                SourceKind::Remit835 => {
                    partial.remits.push(state.remits[i].clone());
                    state.remits[i].offset
                }
            };
            let status = self.view(&partial, claim_id).status;
            if last != Some(status) {
                out.push(StatusChange {
                    status,
                    previous: last,
                    event_time,
                    source: kind,
                    offset,
                });
                last = Some(status);
            }
        }
        out
    }

    /// Fires a due timer. Returns false when the claim should leave state.
    pub fn fire_timer(
        &self,
        state: &mut ClaimState,
        claim_id: &str,
        timer: ClaimTimer,
        deadline: EpochMillis,
        out: &mut ClaimOutputs,
    ) -> bool {
        let Some(cur_time) = state.current_submission().map(|c| c.event_time) else {
            return timer != ClaimTimer::Expire;
        };
        match timer {
            ClaimTimer::MissingAck => state.ack_timer_fired_for = Some(cur_time),
            ClaimTimer::MissingRemit => state.remit_timer_fired_for = Some(cur_time),
            ClaimTimer::Expire => return false,
        }
        self.emit_if_changed(state, claim_id, deadline, UpdateCause::Timer, true, out);
        true
    }

    fn emit_if_changed(
        &self,
        state: &mut ClaimState,
        claim_id: &str,
        event_time: EpochMillis,
        cause: UpdateCause,
        payer_was_known: bool,
        out: &mut ClaimOutputs,
    ) {
        let mut view = self.view(state, claim_id);
        let fingerprint = fingerprint(&view);
        if state.version > 0 && fingerprint == state.last_fingerprint {
            return;
        }
        state.version += 1;
        state.last_fingerprint = fingerprint;
        view.version = state.version;
        let mut id = String::with_capacity(claim_id.len() + 8);
        id.push_str(claim_id);
        id.push(':');
        crate::state::push_int(&mut id, state.version);
        view.output_id = id;
        view.event_time = event_time;
        view.cause = cause;
        view.previous_status = state.last_status;
        if self.payer_facts {
            let previous = if payer_was_known {
                state.last_status
            } else {
                None
            };
            if let Some(f) = self.status_fact(state, &view, previous, event_time) {
                out.costs.push(Rekeyed::Payer(f));
            }
        }
        state.last_status = Some(view.status);
        if let (Some(enc), Some(member)) = (&view.encounter_id, &view.member_id) {
            if state.reported_paid_cents != Some(view.paid_to_date_cents)
                && state.has_adjudication()
            {
                state.reported_paid_cents = Some(view.paid_to_date_cents);
                out.costs.push(Rekeyed::Cost(EncounterCost {
                    member_id: member.clone(),
                    encounter_id: enc.clone(),
                    claim_id: claim_id.to_owned(),
                    paid_cents: view.paid_to_date_cents,
                    event_time,
                }));
            }
        }
        // The member's PMPM (`enrolment` module): every claim once it has a remittance, on each
        // emission (absolute amounts: a repeat changes nothing downstream).
        if let (Some(member), Some(sub)) = (&view.member_id, state.current_submission()) {
            if state.has_adjudication() {
                out.costs.push(Rekeyed::MemberPaid(MemberPaid {
                    member_id: member.clone(),
                    claim_id: claim_id.to_owned(),
                    service_date: sub.service_date,
                    paid_cents: view.paid_to_date_cents,
                    event_time,
                }));
                // A replacement that corrected the member id: the members the claim stood under
                // before get 0 for it, or its payment would count for both.
                for (i, old) in state.submissions.iter().enumerate() {
                    let m = old.member_id.as_str();
                    let seen = state.submissions[..i].iter().any(|s| s.member_id == m);
                    if m != member.as_str() && !seen {
                        out.costs.push(Rekeyed::MemberPaid(MemberPaid {
                            member_id: m.to_owned(),
                            claim_id: claim_id.to_owned(),
                            service_date: old.service_date,
                            paid_cents: 0,
                            event_time,
                        }));
                    }
                }
            }
        }
        out.events.push(OutputEvent::ClaimLifecycle(Box::new(view)));
    }

    /// The reconciled view of a claim: a pure function of the set of records in `state` (the
    /// volatile fields `output_id`, `version`, `event_time`, `cause`, `previous_status` are left
    /// blank for the caller).
    pub fn view(&self, state: &ClaimState, claim_id: &str) -> ClaimLifecycleUpdate {
        let current = state.current_submission();
        let first_submitted = state.submissions.iter().map(|s| s.submitted_date).min();

        // Acknowledgments about the submission in force; the latest decides, but a receipt (A0/A1,
        // the first stage) does not override an acceptance or a pending / information answer
        // (an A1 processed after the payer's A2 leaves the claim accepted). A rejection and a
        // receipt compare by date: a resubmission's receipt follows the rejection it answers.
        let ack_key = |a: &&AckRec| (a.ack_date, a.event_time, a.id);
        let latest_ack = match state.relevant_acks().max_by_key(ack_key) {
            Some(a)
                if self.refdata.ack_class(&a.category) == AckClass::Received
                    && state.relevant_acks().any(|b| {
                        matches!(
                            self.refdata.ack_class(&b.category),
                            AckClass::Accepted
                                | AckClass::Finalized
                                | AckClass::Pending
                                | AckClass::InfoRequested
                        )
                    }) =>
            {
                state
                    .relevant_acks()
                    .filter(|b| self.refdata.ack_class(&b.category) != AckClass::Received)
                    .max_by_key(ack_key)
            }
            other => other,
        };
        let first_ack_date = state.relevant_acks().map(|a| a.ack_date).min();
        let ever_rejected = state
            .acks
            .iter()
            .any(|a| self.refdata.ack_class(&a.category) == AckClass::Rejected);

        // Remittances in business order; a reversal retracts the adjudication it names (same payer
        // claim control number) or, failing that, the latest primary one of the same amount, the
        // latest primary one, the latest one still in force. The reversals that retracted a
        // primary adjudication (or found nothing to retract) are kept: with no primary left in
        // force, the claim is reversed.
        let mut remits: SmallVec<[&RemitRec; 8]> = state.adjudications().collect();
        remits.sort_by_key(|r| r.business_order());
        let mut active: SmallVec<[&RemitRec; 8]> = SmallVec::new();
        let mut primary_reversals: SmallVec<[&RemitRec; 2]> = SmallVec::new();
        for r in &remits {
            if r.is_reversal() {
                let named = active.iter().rposition(|a| {
                    a.payer_claim_control_number.is_some()
                        && a.payer_claim_control_number == r.payer_claim_control_number
                });
                let pos = named
                    .or_else(|| {
                        active
                            .iter()
                            .rposition(|a| !a.is_secondary() && a.paid_cents == -r.paid_cents)
                    })
                    .or_else(|| active.iter().rposition(|a| !a.is_secondary()))
                    .or_else(|| active.len().checked_sub(1));
                match pos {
                    Some(pos) => {
                        if !active.remove(pos).is_secondary() {
                            primary_reversals.push(r);
                        }
                    }
                    None => primary_reversals.push(r),
                }
            } else {
                active.push(r);
            }
        }
        // A resubmission supersedes the earlier adjudications once it is answered itself (a
        // primary adjudication or the reversal of one): an appeal paid in full is paid, not
        // partially paid with the first denial's adjustments, and an appeal's payment reversed
        // leaves the claim reversed, not back at the first denial. Until then the latest
        // adjudication stands. A secondary payer's 835 does not answer a resubmission on its own.
        let mut reversed_in_force = !primary_reversals.is_empty();
        let all = state.generations();
        if remits.len() > 1 {
            let generation = |r: &RemitRec| {
                all.iter()
                    .find(|(id, _)| *id == r.id)
                    .map_or(0, |(_, g)| *g)
            };
            let top = remits
                .iter()
                .filter(|r| !r.is_secondary() && !r.is_reversal())
                .chain(primary_reversals.iter())
                .map(|r| generation(r))
                .max()
                .unwrap_or(0);
            active.retain(|r| generation(r) >= top);
            reversed_in_force = primary_reversals.iter().any(|r| generation(r) >= top);
        }
        let paid_to_date: i64 = remits.iter().map(|r| r.paid_cents).sum();
        // The primary adjudication: the latest in force that is not a secondary/tertiary one.
        // With only secondary ones left after a reversal, the primary's was reversed; a
        // secondary's 835 alone (no primary received) stands for the claim.
        let primary = active.iter().rev().find(|r| !r.is_secondary()).copied();
        let primary = match primary {
            Some(p) => Some(p),
            None if reversed_in_force => None,
            None => active.last().copied(),
        };
        // The patient's share after the other payers: what secondary and tertiary payers paid
        // (a Medigap plan paying the coinsurance) is no longer the patient's.
        let others_paid: i64 = active
            .iter()
            .filter(|r| r.is_secondary())
            .map(|r| r.paid_cents)
            .sum();
        let patient = primary.map_or(0, |r| {
            if r.is_secondary() {
                r.patient_cents
            } else {
                (r.patient_cents - others_paid.max(0)).max(0)
            }
        });

        // Small linear maps: a claim has a handful of distinct codes, and this runs on every event.
        let mut by_group: Codes = SmallVec::new();
        let mut by_category: Codes = SmallVec::new();
        let mut denial_by_category: Codes = SmallVec::new();
        let mut carc_pairs: SmallVec<[(AdjustmentGroup, &str); 8]> = SmallVec::new();
        let mut rarc_refs: SmallVec<[&str; 8]> = SmallVec::new();
        for r in &active {
            for (group, carc, amount) in &r.adjustments {
                let category = self.refdata.adjustment_category(*group, carc);
                // OA-23 on a secondary's 835 restates the prior payer's adjudication, which is
                // counted already: listed among the codes, not added to the amounts.
                let restated = r.is_secondary() && *group == AdjustmentGroup::OA && carc == "23";
                if restated {
                    if !carc_pairs
                        .iter()
                        .any(|(g, c)| g == group && *c == carc.as_str())
                    {
                        carc_pairs.push((*group, carc));
                    }
                    continue;
                }
                add(&mut by_group, group.as_str(), *amount);
                add(&mut by_category, category.as_str(), *amount);
                if category.is_denial() {
                    add(&mut denial_by_category, category.as_str(), *amount);
                }
                if !carc_pairs
                    .iter()
                    .any(|(g, c)| g == group && *c == carc.as_str())
                {
                    carc_pairs.push((*group, carc));
                }
            }
            for remark in &r.remarks {
                if !rarc_refs.contains(&remark.as_str()) {
                    rarc_refs.push(remark);
                }
            }
        }
        carc_pairs.sort_unstable();
        rarc_refs.sort_unstable();
        let carcs: Vec<String> = carc_pairs
            .iter()
            .map(|(g, c)| {
                let mut code = String::with_capacity(3 + c.len());
                code.push_str(g.as_str());
                code.push('-');
                code.push_str(c);
                code
            })
            .collect();
        let rarcs: Vec<String> = rarc_refs.iter().map(|r| (*r).to_owned()).collect();
        let denial_cents: i64 = denial_by_category
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| *v > 0)
            .sum();
        let denial_category = denial_by_category
            .iter()
            .filter(|(_, v)| *v > 0)
            .max_by_key(|(k, v)| (*v, std::cmp::Reverse(*k)))
            .map(|(k, _)| (*k).to_owned());

        let status = if current.is_some_and(|c| c.frequency == ClaimFrequency::Void) {
            ClaimStatus::Voided
        } else if !remits.is_empty() {
            match primary {
                None => ClaimStatus::Reversed,
                Some(p) if p.status == "23" => ClaimStatus::Forwarded,
                // Nothing paid, but part of the claim allowed and applied to the patient's share
                // (deductible): the allowed part was adjudicated, not denied.
                Some(_) if paid_to_date <= 0 && patient > 0 => {
                    if denial_cents > 0 {
                        ClaimStatus::PartiallyPaid
                    } else {
                        ClaimStatus::Paid
                    }
                }
                Some(p) if paid_to_date <= 0 => {
                    if denial_cents > 0 || p.status == "4" {
                        ClaimStatus::Denied
                    } else {
                        ClaimStatus::Paid
                    }
                }
                Some(_) if denial_cents > 0 => ClaimStatus::PartiallyPaid,
                Some(_) => ClaimStatus::Paid,
            }
        } else if let Some(a) = latest_ack {
            match self.refdata.ack_class(&a.category) {
                AckClass::Received => ClaimStatus::Received,
                AckClass::Accepted | AckClass::Finalized => ClaimStatus::Accepted,
                AckClass::Rejected | AckClass::NotFound | AckClass::Error => ClaimStatus::Rejected,
                AckClass::Pending => ClaimStatus::Pending,
                AckClass::InfoRequested => ClaimStatus::InfoRequested,
                AckClass::Unknown => {
                    if current.is_some() {
                        ClaimStatus::Submitted
                    } else {
                        ClaimStatus::Received
                    }
                }
            }
        } else {
            ClaimStatus::Submitted
        };

        let first_remit = remits.first();
        let replaced_before_first_remit = first_remit.is_some_and(|r| {
            state.submissions.iter().any(|s| {
                s.frequency == ClaimFrequency::Replacement && s.submitted_date <= r.payment_date
            })
        });
        let first_pass_paid = if let Some(r) = first_remit {
            let denied_first = r
                .adjustments
                .iter()
                .any(|(g, c, a)| *a > 0 && self.refdata.adjustment_category(*g, c).is_denial());
            Some(
                !ever_rejected
                    && !replaced_before_first_remit
                    && r.paid_cents > 0
                    && !denied_first
                    && !r.is_reversal(),
            )
        } else if status == ClaimStatus::Rejected {
            Some(false)
        } else {
            None
        };

        let days = |from: Option<EpochDay>, to: Option<EpochDay>| match (from, to) {
            (Some(f), Some(t)) => Some(t - f),
            _ => None,
        };
        let first_payment_date = remits
            .iter()
            .find(|r| r.paid_cents > 0)
            .map(|r| r.payment_date);
        let final_date = if matches!(
            status,
            ClaimStatus::Paid | ClaimStatus::PartiallyPaid | ClaimStatus::Denied
        ) {
            primary.map(|p| p.payment_date)
        } else {
            None
        };

        let mut alerts = Vec::new();
        if let Some(cur) = current {
            let answered = state.answered(&all);
            let no_ack = state.relevant_acks().next().is_none() && !answered;
            if no_ack && state.ack_timer_fired_for == Some(cur.event_time) {
                alerts.push(ClaimAlert::MissingAck);
            }
            if !answered && state.remit_timer_fired_for == Some(cur.event_time) {
                alerts.push(ClaimAlert::MissingRemit);
            }
        } else {
            alerts.push(ClaimAlert::SubmissionMissing);
        }
        if state.remits.iter().any(|r| r.has_findings) {
            alerts.push(ClaimAlert::RemitFinding);
        }

        let expected = current.and_then(|c| c.expected_cents);
        ClaimLifecycleUpdate {
            output_id: String::new(),
            claim_id: claim_id.to_owned(),
            version: 0,
            event_time: 0,
            cause: UpdateCause::Submission,
            status,
            previous_status: None,
            member_id: current.map(|c| c.member_id.to_string()),
            payer_id: current.map(|c| c.payer_id.to_string()),
            payer_category: current.map(|c| c.payer_category),
            provider_id: current.map(|c| c.provider_id.to_string()),
            department: current.map(|c| c.department.to_string()),
            encounter_id: current.and_then(|c| c.encounter_id.as_ref().map(|e| e.to_string())),
            payer_claim_control_number: primary
                .and_then(|r| r.payer_claim_control_number.as_ref())
                .or_else(|| latest_ack.and_then(|a| a.payer_claim_control_number.as_ref()))
                .map(|n| n.to_string()),
            submitted_date: current.map(|c| c.submitted_date),
            billed_cents: current.map_or(0, |c| c.billed_cents),
            expected_cents: expected,
            paid_to_date_cents: paid_to_date,
            patient_responsibility_cents: patient,
            variance_cents: match (expected, remits.is_empty()) {
                (Some(e), false) => Some(paid_to_date + patient - e),
                _ => None,
            },
            adjustments_by_group: amounts(by_group),
            adjustments_by_category: amounts(by_category),
            denial_category: if matches!(status, ClaimStatus::Denied | ClaimStatus::PartiallyPaid) {
                denial_category
            } else {
                None
            },
            carc_codes: carcs,
            rarc_codes: rarcs,
            ack_status: latest_ack.map(|a| {
                let mut s = String::with_capacity(a.category.len() + a.code.len() + 1);
                s.push_str(&a.category);
                s.push(':');
                s.push_str(&a.code);
                s
            }),
            days_to_ack: days(current.map(|c| c.submitted_date), first_ack_date),
            days_to_first_payment: days(first_submitted, first_payment_date),
            days_to_final: days(first_submitted, final_date),
            first_pass_paid,
            ack_count: state.acks.len() as i32,
            remit_count: state.remits.len() as i32,
            submission_count: state.submissions.len() as i32,
            alerts,
        }
    }
}

impl Reconciler {
    /// The claim's first adjudication (in business order, reversals aside) was a denial: nothing
    /// paid, nothing applied to the patient's share, and a denial CARC or CLP02 4. `false` before
    /// any 835.
    pub fn first_adjudication_denied(&self, state: &ClaimState) -> bool {
        let first = state
            .adjudications()
            .filter(|r| !r.is_reversal())
            .min_by_key(|r| r.business_order());
        first.is_some_and(|r| {
            r.paid_cents <= 0
                && r.patient_cents <= 0
                && (r.status == "4"
                    || r.adjustments.iter().any(|(g, c, a)| {
                        *a > 0 && self.refdata.adjustment_category(*g, c).is_denial()
                    }))
        })
    }
}

/// A small map from code to amount, kept on the stack.
type Codes = SmallVec<[(&'static str, i64); 8]>;

fn add(map: &mut Codes, code: &'static str, amount: i64) {
    match map.iter_mut().find(|(k, _)| *k == code) {
        Some((_, v)) => *v += amount,
        None => map.push((code, amount)),
    }
}

/// Amounts sorted by code, for a deterministic output.
fn amounts(mut map: Codes) -> Vec<AmountByCode> {
    map.sort_unstable();
    map.into_iter()
        .map(|(code, amount_cents)| AmountByCode {
            code: code.to_owned(),
            amount_cents,
        })
        .collect()
}

/// Fingerprint of a view (the volatile fields are blank when called).
fn fingerprint(view: &ClaimLifecycleUpdate) -> u64 {
    crate::state::fingerprint(view)
}
