//! The calibrated synthetic population generator (`claimwatch generate`).
//!
//! **Job.** Write a realistic, deterministic (per seed) year of the five input streams for a
//! population of members, together with the **ground truth** the outcomes were drawn from, so
//! later stages can be checked against it (readmission detection against true readmissions, risk
//! models against the oracle AUC of the true probabilities).
//!
//! **How.** Each member is simulated on their own random stream (`seed` x member index), so a
//! member's history does not depend on the others and the output is identical for a seed:
//! - [`population`]: age, sex, payer, chronic conditions (ICD-10-CM), a latent frailty.
//! - [`clinical`]: office and ED visits and inpatient stays through the year, with transfers,
//!   deaths, AMA discharges, psychiatric and chemotherapy stays, and 30-day readmissions drawn from
//!   a logistic model of features known at discharge (the true probability is recorded).
//! - [`billing`]: a claim per visit or stay, front-door rejections and denials drawn from a
//!   logistic model of features known at submission (true probability recorded) with a realistic
//!   CARC mix, 277CAs, 835s with balanced CAS adjustments, partial payments, secondary payers,
//!   reversals and re-adjudications, replacements and appeals, duplicates, late exports.
//! - [`report`]: the calibration report (target vs achieved).
//! - [`enrolment`]: one eligibility span per member around its activity, on its own random
//!   stream (the other streams do not change with it).
//!
//! Every coefficient is a documented constant next to the code that uses it.

mod billing;
mod clinical;
pub mod enrolment;
mod population;
mod report;
pub mod write;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::model::{
    parse_day, ClaimAck, ClaimSubmitted, Encounter, EpochDay, MemberEnrollment, Remittance,
};

pub use report::CalibrationReport;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateConfig {
    pub members: usize,
    pub seed: u64,
    /// First day of the simulated period (default 2024-01-01).
    pub start_date: EpochDay,
    /// Length of the simulated period in days (default 365).
    pub days: i32,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            members: 1000,
            seed: 42,
            start_date: parse_day("2024-01-01").unwrap_or(19_723),
            days: 365,
        }
    }
}

/// The latent values the true readmission probability was computed from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadmissionFeatures {
    pub age: i32,
    pub female: bool,
    pub charlson: i32,
    pub los_days: i32,
    pub acute_admit: bool,
    pub disposition: String,
    pub prior_admits_12m: i32,
    pub prior_ed_6m: i32,
    pub hemoglobin: Option<f64>,
    pub sodium: Option<f64>,
    pub oncology: bool,
    pub procedure: bool,
    /// Unobserved frailty (standard normal): no model can see it, so the oracle AUC is below 1.
    pub frailty: f64,
}

/// One eligible index stay and whether an unplanned 30-day readmission was drawn for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadmissionTruth {
    pub member_id: String,
    pub encounter_id: String,
    pub discharge_date: EpochDay,
    /// The true P(unplanned readmission within 30 days) used for the draw.
    pub probability: f64,
    pub readmitted: bool,
    pub features: ReadmissionFeatures,
}

/// One claim's true front-door rejection / denial probability and outcome (first submission).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DenialTruth {
    pub claim_id: String,
    /// True P(rejected at the front door or denied in full on first adjudication).
    pub probability: f64,
    /// The same probability before the claim's documentation-gap draw: averaged over a gap
    /// (probability `min(0.5, propensity x (1 + lines / 5))` on a claim that needs documentation,
    /// 0 on one that needs none) and none, with the member's latent
    /// gap propensity. The ceiling of a model that knows the member perfectly but not whether this
    /// claim's documentation is incomplete.
    pub probability_before_gap_draw: f64,
    /// As `probability_before_gap_draw` with the population's mean propensity (0.07) instead of
    /// the member's: the ceiling without any member-level knowledge.
    pub probability_population_gap_rate: f64,
    /// Whether this claim was drawn with a documentation gap (sent without the supporting
    /// documentation it needs: no PWK, or PWK with transmission `AA`).
    pub documentation_gap: bool,
    pub rejected: bool,
    pub denied: bool,
    /// Denial category (claimwatch CARC category name), when denied.
    pub category: Option<String>,
    /// The CARC of the denial, when denied.
    pub carc: Option<String>,
}

/// The ground truth of a generated population.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroundTruth {
    pub readmissions: Vec<ReadmissionTruth>,
    pub denials: Vec<DenialTruth>,
}

/// A generated population: the four input streams (each sorted by event time), truth and report.
#[derive(Clone, Debug, Serialize)]
pub struct Generated {
    pub claims: Vec<ClaimSubmitted>,
    pub encounters: Vec<Encounter>,
    pub acks: Vec<ClaimAck>,
    pub remits: Vec<Remittance>,
    pub truth: GroundTruth,
    pub stats: CalibrationReport,
    /// One enrolment span per member (`ehr.enrollment`, [`enrolment`]), drawn on its own random
    /// stream after the member's activity: the other streams are the same with or without it.
    pub enrollments: Vec<MemberEnrollment>,
}

/// Everything one member produced.
#[derive(Default)]
pub(crate) struct MemberOutput {
    pub claims: Vec<ClaimSubmitted>,
    pub encounters: Vec<Encounter>,
    pub acks: Vec<ClaimAck>,
    pub remits: Vec<Remittance>,
    pub truth: GroundTruth,
    pub counters: report::Counters,
}

/// Generates a population. Deterministic: the same config gives the same output.
pub fn generate(cfg: &GenerateConfig) -> Generated {
    let mut all = MemberOutput::default();
    let mut enrollments = Vec::with_capacity(cfg.members + cfg.members / 10);
    for index in 0..cfg.members {
        // Each member on its own stream: splitmix-style mixing of seed and index.
        let mut rng = ChaCha8Rng::seed_from_u64(
            cfg.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let member = population::member(&mut rng, index);
        let mut out = MemberOutput::default();
        let visits = clinical::simulate(&mut rng, cfg, &member, &mut out);
        billing::bill(&mut rng, cfg, &member, &visits, &mut out);
        enrollments.extend(enrolment::spans(cfg, index, &member, &out));
        all.claims.append(&mut out.claims);
        all.encounters.append(&mut out.encounters);
        all.acks.append(&mut out.acks);
        all.remits.append(&mut out.remits);
        all.truth.readmissions.append(&mut out.truth.readmissions);
        all.truth.denials.append(&mut out.truth.denials);
        all.counters.add(&out.counters);
    }
    all.claims
        .sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    all.encounters
        .sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    all.acks
        .sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    all.remits
        .sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    enrollments.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    let stats = CalibrationReport::compute(cfg, &all);
    Generated {
        claims: all.claims,
        encounters: all.encounters,
        acks: all.acks,
        remits: all.remits,
        truth: all.truth,
        stats,
        enrollments,
    }
}

#[cfg(test)]
mod tests;
