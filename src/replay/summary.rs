//! The summary of a replay: what came in, what went out, and the population's figures computed
//! from the final state (the same numbers `claimwatch demo` prints for the service).

use std::collections::BTreeMap;

use serde::Serialize;

use std::collections::HashMap;

use crate::core::{Engine, Partition};
use crate::model::{ClaimAlert, ClaimLifecycleUpdate, ClaimStatus, OutputEvent, DAY_MS};
use crate::readmit::AgedOut;

/// What the summary keeps of each claim's emitted lifecycle (claims leave state after their
/// retention period, so claim figures are computed from what was emitted, not from final state).
#[derive(Clone, Debug, Default)]
struct ClaimTrack {
    last: Option<ClaimLifecycleUpdate>,
    /// The status right after the first remittance was applied.
    first_adjudication: Option<ClaimStatus>,
    ever_rejected: bool,
    acknowledged: bool,
}

/// Running tally of the lifecycle outputs of a replay.
#[derive(Debug, Default)]
pub struct OutputTally {
    claims: HashMap<String, ClaimTrack>,
}

impl OutputTally {
    pub fn observe(&mut self, event: &OutputEvent) {
        let OutputEvent::ClaimLifecycle(u) = event else {
            return;
        };
        let t = self.claims.entry(u.claim_id.clone()).or_default();
        if t.first_adjudication.is_none() && u.remit_count > 0 {
            t.first_adjudication = Some(u.status);
        }
        t.ever_rejected |= u.status == ClaimStatus::Rejected;
        t.acknowledged |= u.ack_count > 0;
        t.last = Some((**u).clone());
    }
}

/// Figures of a finished replay.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub input_records: BTreeMap<String, u64>,
    pub dead_letters: u64,
    pub duplicates_ignored: u64,
    pub timers_fired: u64,
    pub outputs: BTreeMap<String, u64>,
    pub claims: ClaimFigures,
    pub readmissions: ReadmissionFigures,
    pub care_gaps: CareGapFigures,
}

/// Care-gap counts of one vaccine (and age band).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GapCounts {
    /// Gaps ever opened (each gap counts once, whatever happened to it later).
    pub opened: u64,
    /// Of those, closed by a claim showing the dose.
    pub closed: u64,
    pub expired: u64,
    pub not_applicable: u64,
    /// Still open at the end.
    pub open: u64,
    /// closed / opened.
    pub closure_rate: f64,
}

/// Care-gap programme figures over the members' care-gap state at the end.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CareGapFigures {
    /// Members known from an encounter (the population the rules apply to).
    pub known_members: u64,
    pub by_vaccine: BTreeMap<String, GapCounts>,
    /// Keyed `VACCINE age_band`.
    pub by_vaccine_and_age_band: BTreeMap<String, GapCounts>,
}

impl CareGapFigures {
    fn add(&mut self, partition: &Partition) {
        use crate::model::CareGapAction as A;
        for entry in partition.care_gaps().iter() {
            let st = entry.value();
            self.known_members += u64::from(st.known_at.is_some());
            // The gaps in state, then those of settled seasons (counted in state).
            let gaps = st
                .gaps
                .iter()
                .map(|g| (g.vaccine.as_str(), st.age_band_of(g), g.status, 1))
                .chain(
                    st.settled
                        .iter()
                        .map(|t| (t.vaccine.as_str(), t.age_band.as_str(), t.status, t.gaps)),
                );
            for (vaccine, band, status, n) in gaps {
                for c in [
                    self.by_vaccine.entry(vaccine.to_owned()).or_default(),
                    self.by_vaccine_and_age_band
                        .entry(format!("{vaccine} {band}"))
                        .or_default(),
                ] {
                    c.opened += n;
                    match status {
                        A::Opened => c.open += n,
                        A::Closed => c.closed += n,
                        A::Expired => c.expired += n,
                        A::NotApplicable => c.not_applicable += n,
                    }
                }
            }
        }
    }

    fn finish(&mut self) {
        for c in self
            .by_vaccine
            .values_mut()
            .chain(self.by_vaccine_and_age_band.values_mut())
        {
            c.closure_rate = ratio(c.closed, c.opened);
        }
    }
}

/// Claim figures over the claims in state.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ClaimFigures {
    pub claims: u64,
    pub by_status: BTreeMap<String, u64>,
    /// Claims with at least one 835.
    pub adjudicated: u64,
    /// Share of adjudicated claims whose first adjudication was a denial (CAS-derived).
    pub initial_denial_rate: f64,
    /// Share of adjudicated claims denied in their final state.
    pub final_denial_rate: f64,
    /// Share of acknowledged claims rejected at the front door at least once.
    pub front_door_rejection_rate: f64,
    /// Paid on the first pass / claims with a first-pass outcome.
    pub first_pass_yield: f64,
    pub median_days_to_ack: Option<i32>,
    pub median_days_to_first_payment: Option<i32>,
    pub paid_cents: i64,
    pub missing_ack_open: u64,
    pub missing_remit_open: u64,
}

/// Readmission figures. `members` and `acute_inpatient_stays` are those in state at the end; the
/// index stays and their outcomes cover the whole replay: the stays in state plus those that left
/// with the look-back (`member_lookback_days`), whose emitted readmissions stand on the topic
/// (counted in this run's partition statistics: a replay resumed from saved state leaves out those
/// that left before the resume).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReadmissionFigures {
    pub members: u64,
    pub acute_inpatient_stays: u64,
    pub index_stays: u64,
    /// Index stays whose 30-day window closed before the last event.
    pub matured_index_stays: u64,
    pub unplanned_readmissions: u64,
    pub planned_readmissions: u64,
    /// Unplanned readmissions of the matured index stays (those of stays whose window is still
    /// open are in `unplanned_readmissions` only).
    pub matured_unplanned_readmissions: u64,
    /// Matured unplanned readmissions / matured index stays: a stay whose 30-day window is still
    /// open is in neither (as on the readmission-summary topic).
    pub readmission_rate: f64,
    pub by_hrrp_cohort: BTreeMap<String, (u64, u64)>,
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        (n as f64 / d as f64 * 10_000.0).round() / 10_000.0
    }
}

fn median(mut v: Vec<i32>) -> Option<i32> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

impl ClaimFigures {
    fn from_tally(tally: &OutputTally) -> Self {
        let mut c = ClaimFigures::default();
        let (mut acked, mut rejected, mut fp_yes, mut fp_all, mut init_denied, mut final_denied) =
            (0, 0, 0, 0, 0, 0);
        let (mut ack_days, mut pay_days) = (Vec::new(), Vec::new());
        for t in tally.claims.values() {
            let Some(u) = &t.last else { continue };
            c.claims += 1;
            *c.by_status.entry(u.status.as_str().to_owned()).or_default() += 1;
            c.paid_cents += u.paid_to_date_cents;
            if u.remit_count > 0 {
                c.adjudicated += 1;
                init_denied += u64::from(t.first_adjudication == Some(ClaimStatus::Denied));
                final_denied += u64::from(u.status == ClaimStatus::Denied);
            }
            if t.acknowledged {
                acked += 1;
                rejected += u64::from(t.ever_rejected);
            }
            if let Some(fp) = u.first_pass_paid {
                fp_all += 1;
                fp_yes += u64::from(fp);
            }
            ack_days.extend(u.days_to_ack);
            pay_days.extend(u.days_to_first_payment);
            c.missing_ack_open += u64::from(u.alerts.contains(&ClaimAlert::MissingAck));
            c.missing_remit_open += u64::from(u.alerts.contains(&ClaimAlert::MissingRemit));
        }
        c.initial_denial_rate = ratio(init_denied, c.adjudicated);
        c.final_denial_rate = ratio(final_denied, c.adjudicated);
        c.front_door_rejection_rate = ratio(rejected, acked);
        c.first_pass_yield = ratio(fp_yes, fp_all);
        c.median_days_to_ack = median(ack_days);
        c.median_days_to_first_payment = median(pay_days);
        c
    }
}

impl Summary {
    /// Computes the figures from the partitions' final state.
    pub fn compute(
        engine: &Engine,
        partitions: &[Partition],
        input_records: BTreeMap<String, u64>,
        dead_letters: u64,
        outputs: &BTreeMap<&'static str, u64>,
        tally: &OutputTally,
    ) -> Self {
        let mut s = Summary {
            input_records,
            dead_letters,
            outputs: outputs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..Default::default()
        };
        let window = i32::try_from(engine.config.readmission_window_days).unwrap_or(30);
        for p in partitions {
            s.care_gaps.add(p);
            s.duplicates_ignored += p.stats().duplicates;
            s.timers_fired += p.stats().timers_fired;
            let watermark_day = (p.watermark().div_euclid(DAY_MS)) as i32;
            for entry in p.members().iter() {
                let st = entry.value();
                let r = &mut s.readmissions;
                r.members += 1;
                r.acute_inpatient_stays +=
                    st.stays.iter().filter(|s| s.is_acute_inpatient()).count() as u64;
                for d in engine.detector.decide(&st.stays) {
                    r.index_stays += 1;
                    let matured = d
                        .index
                        .discharge_date
                        .is_some_and(|dd| dd + window < watermark_day);
                    let cohort = engine
                        .refdata
                        .hrrp_cohort(
                            &d.index.principal_dx,
                            &d.index.secondary_dx,
                            &d.index.procedures,
                        )
                        .map(|c| c.as_str().to_owned());
                    let unplanned = matches!(d.readmission, Some((_, _, None)));
                    match d.readmission {
                        Some((_, _, Some(_))) => r.planned_readmissions += 1,
                        Some((_, _, None)) => r.unplanned_readmissions += 1,
                        None => {}
                    }
                    if matured {
                        r.matured_index_stays += 1;
                        r.matured_unplanned_readmissions += u64::from(unplanned);
                        if let Some(c) = cohort {
                            let e = r.by_hrrp_cohort.entry(c).or_default();
                            e.0 += 1;
                            e.1 += u64::from(unplanned);
                        }
                    }
                }
            }
        }
        for p in partitions {
            s.add_aged_out(&p.stats().readmissions_aged_out);
        }
        s.claims = ClaimFigures::from_tally(tally);
        s.care_gaps.finish();
        s
    }

    /// Adds the index stays that left the members' state with the look-back
    /// ([`crate::core::PartitionStats::readmissions_aged_out`]): their readmissions stand on the
    /// topic, they were counted with their final outcomes when they left, and their windows had
    /// long closed.
    pub fn add_aged_out(&mut self, a: &AgedOut) {
        let r = &mut self.readmissions;
        r.index_stays += a.index_stays;
        r.matured_index_stays += a.index_stays;
        r.unplanned_readmissions += a.unplanned_readmissions;
        r.matured_unplanned_readmissions += a.unplanned_readmissions;
        r.planned_readmissions += a.planned_readmissions;
        for (c, (n, re)) in &a.by_hrrp_cohort {
            let e = r.by_hrrp_cohort.entry(c.clone()).or_default();
            e.0 += n;
            e.1 += re;
        }
        r.readmission_rate = ratio(r.matured_unplanned_readmissions, r.matured_index_stays);
    }

    /// A human-readable rendering.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let c = &self.claims;
        let r = &self.readmissions;
        o.push_str("input records:\n");
        for (k, v) in &self.input_records {
            o.push_str(&format!("  {k:<22} {v:>10}\n"));
        }
        o.push_str(&format!(
            "  {:<22} {:>10}\n  {:<22} {:>10}\n",
            "dead letters", self.dead_letters, "duplicates ignored", self.duplicates_ignored
        ));
        o.push_str("outputs:\n");
        for (k, v) in &self.outputs {
            o.push_str(&format!("  {k:<38} {v:>10}\n"));
        }
        o.push_str(&format!(
            "claims: {} ({} adjudicated)\n",
            c.claims, c.adjudicated
        ));
        for (k, v) in &c.by_status {
            o.push_str(&format!("  {k:<16} {v:>8}\n"));
        }
        o.push_str(&format!(
            "  initial denial rate {:.1} %, final denial rate {:.1} %, front-door rejection rate {:.1} %, first-pass yield {:.1} %\n",
            c.initial_denial_rate * 100.0,
            c.final_denial_rate * 100.0,
            c.front_door_rejection_rate * 100.0,
            c.first_pass_yield * 100.0
        ));
        o.push_str(&format!(
            "  median days to ack {}, to first payment {}; open MISSING_ACK {}, MISSING_REMIT {}; paid ${:.2}\n",
            c.median_days_to_ack.map_or("-".into(), |d| d.to_string()),
            c.median_days_to_first_payment.map_or("-".into(), |d| d.to_string()),
            c.missing_ack_open,
            c.missing_remit_open,
            c.paid_cents as f64 / 100.0
        ));
        o.push_str(&format!(
            "readmissions ({} members and {} acute stays still in state, i.e. within member_lookback_days of the last event; index stays include those that left it): {} index stays, {} unplanned + {} planned readmissions, 30-day unplanned rate {:.1} % ({} of {} index stays whose window closed)\n",
            r.members,
            r.acute_inpatient_stays,
            r.index_stays,
            r.unplanned_readmissions,
            r.planned_readmissions,
            r.readmission_rate * 100.0,
            r.matured_unplanned_readmissions,
            r.matured_index_stays
        ));
        for (k, (n, re)) in &r.by_hrrp_cohort {
            o.push_str(&format!(
                "  {k:<10} {n:>6} index stays, {re:>5} readmitted ({:.1} %)\n",
                ratio(*re, *n) * 100.0
            ));
        }
        let g = &self.care_gaps;
        o.push_str(&format!(
            "care gaps ({} members known from encounters): opened, closed, expired, not applicable, still open, closure rate\n",
            g.known_members
        ));
        for (k, c) in g.by_vaccine.iter().chain(&g.by_vaccine_and_age_band) {
            o.push_str(&format!(
                "  {k:<20} {:>7} {:>7} {:>7} {:>5} {:>7} {:>6.1} %\n",
                c.opened,
                c.closed,
                c.expired,
                c.not_applicable,
                c.open,
                c.closure_rate * 100.0
            ));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CoreConfig;
    use crate::model::fixtures::stay;
    use crate::model::{InputEvent, ReadmissionAction};
    use crate::refdata::RefData;
    use crate::state::PartitionStore;

    /// An index stay whose discharge leaves the look-back before the replay ends keeps its
    /// readmission on the topic (leaving state retracts nothing): the summary still counts it,
    /// so the report's topic-derived figures and the summary agree.
    #[test]
    fn index_stays_that_left_the_look_back_still_count() {
        let engine = Engine::new(CoreConfig::default(), RefData::shared());
        let mut p = Partition::open(0, PartitionStore::hot_only(0), &engine).unwrap();
        let (mut out, mut rk) = (Vec::new(), Vec::new());
        for ev in [
            // E1 (heart failure) readmitted by E2 15 days later; E3 (another member) a year on.
            stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023"),
            stay("M1", "E2", "F1", "2024-01-20", "2024-01-24", "01", "J189"),
            stay("M1", "E4", "F1", "2024-06-01", "2024-06-04", "01", "J189"),
            stay("M2", "E3", "F1", "2025-03-01", "2025-03-04", "01", "J189"),
        ] {
            p.apply(
                &engine,
                &InputEvent::Encounter(ev),
                "enc",
                0,
                &mut out,
                &mut rk,
            );
        }
        // The topic: one unplanned readmission, never retracted.
        let readmissions: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                OutputEvent::Readmission(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(readmissions.len(), 1);
        assert_eq!(readmissions[0].action, ReadmissionAction::Detected);
        assert!(!readmissions[0].planned);
        // E1 and E2 left the member's state; E4 is still there.
        let left = p.stats().readmissions_aged_out.clone();
        assert_eq!(left.index_stays, 2);
        assert_eq!(left.unplanned_readmissions, 1);
        assert_eq!(left.by_hrrp_cohort.get("HF"), Some(&(1, 1)));
        let s = Summary::compute(
            &engine,
            std::slice::from_ref(&p),
            BTreeMap::new(),
            0,
            &BTreeMap::new(),
            &OutputTally::default(),
        );
        let r = &s.readmissions;
        assert_eq!(r.unplanned_readmissions, 1, "{r:?}");
        assert_eq!(r.planned_readmissions, 0);
        // E1, E2 (left), E4 and E3 (in state).
        assert_eq!(r.index_stays, 4);
        assert_eq!(r.acute_inpatient_stays, 2);
        assert_eq!(r.matured_index_stays, 3);
        assert_eq!(r.by_hrrp_cohort.get("HF"), Some(&(1, 1)));
        // The readmission of a matured stay over the three matured stays (E3's window is open).
        assert_eq!(r.matured_unplanned_readmissions, 1);
        assert_eq!(r.readmission_rate, 0.3333);
    }
}
