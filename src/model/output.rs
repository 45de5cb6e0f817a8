//! Output events. Each carries a deterministic `output_id` and `version` derived from its key and
//! the state version that produced it (never from wall time), so a re-emitted output after a crash is
//! byte-identical to the first and subscribers can drop duplicates.

use serde::{Deserialize, Serialize};

use super::{EpochDay, EpochMillis, MemberPaid, PayerCategory, PmpmFact};

/// Lifecycle status of a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimStatus {
    /// Submitted; nothing heard back yet.
    Submitted,
    /// 277CA A1 (or A0): received, not yet accepted.
    Received,
    /// 277CA A2 (or F*): accepted into adjudication.
    Accepted,
    /// 277CA P*: pending.
    Pending,
    /// 277CA R*: payer requests more information (not a rejection).
    InfoRequested,
    /// 277CA A3/A6/A7/A8 (or E*): rejected at the front door.
    Rejected,
    /// 835: paid in full (payer payment + patient share covers the allowed amount, no denial CARC).
    Paid,
    /// 835: paid, but some lines/amounts denied or under the expected amount.
    PartiallyPaid,
    /// 835: nothing paid and a denial CARC (or CLP02 4).
    Denied,
    /// 835 CLP02 23/19-21: forwarded to another payer / not this payer's claim.
    Forwarded,
    /// 835 CLP02 22 with no later re-adjudication: the payment was taken back.
    Reversed,
    /// The provider voided the claim (frequency 8).
    Voided,
}

impl ClaimStatus {
    pub const ALL: [ClaimStatus; 12] = [
        Self::Submitted,
        Self::Received,
        Self::Accepted,
        Self::Pending,
        Self::InfoRequested,
        Self::Rejected,
        Self::Paid,
        Self::PartiallyPaid,
        Self::Denied,
        Self::Forwarded,
        Self::Reversed,
        Self::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::Received => "RECEIVED",
            Self::Accepted => "ACCEPTED",
            Self::Pending => "PENDING",
            Self::InfoRequested => "INFO_REQUESTED",
            Self::Rejected => "REJECTED",
            Self::Paid => "PAID",
            Self::PartiallyPaid => "PARTIALLY_PAID",
            Self::Denied => "DENIED",
            Self::Forwarded => "FORWARDED",
            Self::Reversed => "REVERSED",
            Self::Voided => "VOIDED",
        }
    }

    /// Adjudicated by the payer (an 835 decided it).
    pub fn is_adjudicated(self) -> bool {
        matches!(
            self,
            Self::Paid | Self::PartiallyPaid | Self::Denied | Self::Forwarded
        )
    }

    /// No more events are expected in the normal course (the claim can expire from state after
    /// its retention period; a late event re-opens it).
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Self::Paid
                | Self::PartiallyPaid
                | Self::Denied
                | Self::Voided
                | Self::Forwarded
                | Self::Rejected
        )
    }
}

/// What made a lifecycle update happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateCause {
    Submission,
    Acknowledgment,
    Remittance,
    /// A timer fired (missing acknowledgment or remittance).
    Timer,
}

/// A condition flagged on a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimAlert {
    /// No 277CA within the configured days of submission.
    MissingAck,
    /// No 835 within the configured days of submission.
    MissingRemit,
    /// An ack or remittance arrived for a claim whose submission we have not seen.
    SubmissionMissing,
    /// An 835 reported a balancing mismatch or another parser finding.
    RemitFinding,
}

/// An amount summed under a code (CAS group, CARC category, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AmountByCode {
    pub code: String,
    pub amount_cents: i64,
}

/// The claim's reconciled view after a change. Emitted on `claimwatch.claim-lifecycle`, keyed by
/// claim id.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClaimLifecycleUpdate {
    /// `<claim_id>:<version>`: deterministic, stable across re-emission.
    pub output_id: String,
    pub claim_id: String,
    /// Increments by one with every emitted change of this claim.
    pub version: i64,
    /// Event time of the input (or the timer deadline) that caused this update.
    pub event_time: EpochMillis,
    pub cause: UpdateCause,
    pub status: ClaimStatus,
    pub previous_status: Option<ClaimStatus>,
    pub member_id: Option<String>,
    pub payer_id: Option<String>,
    pub payer_category: Option<PayerCategory>,
    pub provider_id: Option<String>,
    pub department: Option<String>,
    pub encounter_id: Option<String>,
    pub payer_claim_control_number: Option<String>,
    pub submitted_date: Option<EpochDay>,
    pub billed_cents: i64,
    pub expected_cents: Option<i64>,
    /// Net payer payment over all remittances (reversals subtract).
    pub paid_to_date_cents: i64,
    pub patient_responsibility_cents: i64,
    /// (paid + patient responsibility) - expected; negative = underpaid. Absent without expected.
    pub variance_cents: Option<i64>,
    /// Net adjustments of the effective adjudication by CAS group (CO, PR, OA, PI, CR).
    pub adjustments_by_group: Vec<AmountByCode>,
    /// Net adjustments by CARC category (contractual, authorization, ...).
    pub adjustments_by_category: Vec<AmountByCode>,
    /// Category of the largest denial adjustment, when denied or partially paid.
    pub denial_category: Option<String>,
    pub carc_codes: Vec<String>,
    pub rarc_codes: Vec<String>,
    /// Latest 277CA status composite, as `category:code`.
    pub ack_status: Option<String>,
    pub days_to_ack: Option<i32>,
    pub days_to_first_payment: Option<i32>,
    pub days_to_final: Option<i32>,
    /// Paid on the first adjudication with no prior rejection or denial (first-pass yield).
    pub first_pass_paid: Option<bool>,
    pub ack_count: i32,
    pub remit_count: i32,
    pub submission_count: i32,
    pub alerts: Vec<ClaimAlert>,
}

impl std::fmt::Debug for ClaimLifecycleUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimLifecycleUpdate")
            .field("version", &self.version)
            .field("status", &self.status)
            .field("cause", &self.cause)
            .field("alerts", &self.alerts)
            .finish_non_exhaustive()
    }
}

/// What a readmission event says about an earlier one with the same `output_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReadmissionAction {
    /// A readmission newly found for this index stay.
    Detected,
    /// The readmission for this index stay changed (another stay, planned flag, cost).
    Updated,
    /// An earlier detected readmission no longer holds (late transfer, cancel, correction).
    Retracted,
}

/// A 30-day readmission, or a correction of one. Emitted on `claimwatch.readmissions`, keyed by
/// member id; `index_encounter_id` identifies the pair within the member.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReadmissionEvent {
    /// `<member_id>:<index_encounter_id>:<version>`.
    pub output_id: String,
    pub member_id: String,
    /// Increments with every event about this index stay.
    pub version: i64,
    pub action: ReadmissionAction,
    pub event_time: EpochMillis,
    pub index_encounter_id: String,
    pub index_facility_id: String,
    pub index_department: String,
    pub index_admit_date: EpochDay,
    pub index_discharge_date: EpochDay,
    pub index_principal_dx: String,
    /// Diagnosis group of the index stay (CCSR body system of the principal diagnosis).
    pub index_dx_group: String,
    /// HRRP condition cohort of the index stay (AMI, HF, PNEUMONIA, COPD, CABG, THA_TKA).
    pub hrrp_cohort: Option<String>,
    pub readmit_encounter_id: String,
    pub readmit_facility_id: String,
    pub readmit_admit_date: EpochDay,
    pub readmit_principal_dx: String,
    /// Days from index discharge to readmission (1..=30).
    pub days_between: i32,
    /// The readmission is planned (CMS planned readmission algorithm subset): it does not count.
    pub planned: bool,
    /// Why the readmission is planned, when it is.
    pub planned_reason: Option<String>,
    /// Paid amount of the readmission stay's claim, when known.
    pub readmission_paid_cents: Option<i64>,
}

impl std::fmt::Debug for ReadmissionEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadmissionEvent")
            .field("version", &self.version)
            .field("action", &self.action)
            .field("days_between", &self.days_between)
            .field("planned", &self.planned)
            .finish_non_exhaustive()
    }
}

/// A bad input record, with the reason it was refused. Emitted on `claimwatch.dead-letter`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Source topic or file.
    pub source: String,
    pub partition: i32,
    pub offset: i64,
    /// Bounded error code (e.g. `decode`, `validation`, `x12_syntax`).
    pub error_kind: String,
    /// Human-readable reason, without member or claim data.
    pub message: String,
    /// The original bytes.
    #[serde(with = "serde_bytes_compat")]
    pub payload: Vec<u8>,
    pub event_time: EpochMillis,
}

/// Risk tier of a score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RiskTier {
    Low,
    Medium,
    High,
}

/// One feature's signed contribution to a score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub feature: String,
    /// Contribution to the log-odds (coefficient x standardized value).
    pub contribution: f64,
    /// Plain-language explanation for an analyst.
    pub explanation: String,
}

/// Denial risk of a submitted claim, scored at submission. Emitted on `claimwatch.denial-risk`,
/// keyed by claim id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenialRiskScore {
    /// `<claim_id>:risk:<submission event id>`: one score per submission.
    pub output_id: String,
    pub claim_id: String,
    /// Scoring time: the submission's event time.
    pub event_time: EpochMillis,
    pub model_version: String,
    /// True when no trained model was loaded and the payer's rolling base rate was used.
    pub fallback: bool,
    /// Calibrated probability of a denial on first adjudication or a front-door rejection.
    pub probability: f64,
    pub tier: RiskTier,
    /// Most likely denial category (CARC category, e.g. AUTHORIZATION).
    pub likely_denial_category: Option<String>,
    /// Largest signed contributions to the logit.
    pub drivers: Vec<Driver>,
    /// ORIGINAL or REPLACEMENT (voids are not scored).
    pub frequency: String,
    /// The transparent baseline: this payer's rolling denial-or-rejection rate.
    pub baseline_probability: f64,
}

/// Readmission risk at discharge of a stay that can be an index stay. Emitted on
/// `claimwatch.readmission-risk`, keyed by member id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadmissionRiskScore {
    /// `<member_id>:<encounter_id>:risk`: one score per stay.
    pub output_id: String,
    pub member_id: String,
    pub encounter_id: String,
    /// Scoring time: the discharge record's event time.
    pub event_time: EpochMillis,
    pub model_version: String,
    /// True when no trained model was loaded and the LACE curve was used.
    pub fallback: bool,
    /// Calibrated probability of an unplanned readmission within the window.
    pub probability: f64,
    /// 0-100 (the probability in percent, rounded).
    pub score: i32,
    pub tier: RiskTier,
    /// LACE index (0-19).
    pub lace_points: i32,
    /// HOSPITAL score (0-13).
    pub hospital_points: i32,
    pub drivers: Vec<Driver>,
    /// LACE band: LOW (0-4), MODERATE (5-9), HIGH (>= 10).
    pub lace_band: String,
    /// HOSPITAL band: LOW (0-4), INTERMEDIATE (5-6), HIGH (>= 7).
    pub hospital_band: String,
    /// HRRP condition cohort of the stay, when any.
    pub hrrp_cohort: Option<String>,
    pub discharge_date: EpochDay,
}

/// High-risk discharge alert for care management: one per stay. Emitted on
/// `claimwatch.alerts.high-risk-discharge`, keyed by member id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HighRiskAlert {
    /// `<member_id>:<encounter_id>:alert`.
    pub output_id: String,
    pub member_id: String,
    pub encounter_id: String,
    pub facility_id: String,
    pub discharge_date: EpochDay,
    pub event_time: EpochMillis,
    pub probability: f64,
    pub tier: RiskTier,
    pub drivers: Vec<Driver>,
    /// The first row of the configured intervention table the probability qualifies for.
    pub recommended_intervention: String,
    /// Cost of the intervention per member, cents.
    pub intervention_cost_cents: i64,
    /// Expected relative reduction of the readmission probability.
    pub intervention_expected_reduction: f64,
    /// Where the cost and effect assumption comes from.
    pub intervention_source: String,
    pub model_version: String,
    pub fallback: bool,
}

/// Length of a payer monitor window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Granularity {
    Hourly,
    Daily,
}

impl Granularity {
    pub const ALL: [Granularity; 2] = [Self::Hourly, Self::Daily];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hourly => "HOURLY",
            Self::Daily => "DAILY",
        }
    }

    /// Window length in milliseconds.
    pub fn millis(self) -> EpochMillis {
        match self {
            Self::Hourly => 3_600_000,
            Self::Daily => super::DAY_MS,
        }
    }
}

/// A count and an amount summed under a code (a CARC category).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CountByCode {
    pub code: String,
    pub count: i64,
}

/// Windowed denial KPIs of one payer. Emitted on `claimwatch.payer-kpis`, keyed by payer id, when
/// the payer flow's watermark passes the window end plus the grace period (version 1), and again
/// with version + 1 for every fact that arrives later but within the retention (a correction).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PayerKpi {
    /// `<payer_id>:<granularity>:<window_start>:<version>`: deterministic.
    pub output_id: String,
    pub payer_id: String,
    pub payer_category: PayerCategory,
    pub window_start: EpochMillis,
    pub window_end: EpochMillis,
    pub version: i64,
    /// Non-void submissions (originals and replacements) in the window.
    pub submitted: i64,
    /// 277CA acceptances (A2 / finalized) in the window.
    pub accepted: i64,
    /// 277CA front-door rejections (A3/A6/A7/A8, A4, E*) in the window.
    pub rejected: i64,
    /// Adjudications whose outcome is paid in full or partially paid.
    pub paid: i64,
    /// Adjudications whose outcome is denied (nothing paid, denial CARC or CLP02 4).
    pub denied: i64,
    /// Payer payment on the counted adjudications, cents.
    pub paid_cents: i64,
    /// Denial-category adjustments on the counted adjudications, cents.
    pub denied_cents: i64,
    /// denied / adjudicated (0 when nothing was adjudicated).
    pub denial_rate: f64,
    /// first_pass_paid / first_adjudicated (0 when no claim had its first adjudication here).
    pub first_pass_yield: f64,
    /// Denied dollars by CARC category, largest first (at most 5).
    pub top_denial_categories: Vec<AmountByCode>,
    /// Median days from first submission to first payment of the paid adjudications (exact for
    /// medians up to 120 days; 121 means "over 120").
    pub median_days_to_payment: Option<f64>,
    #[serde(default = "default_granularity")]
    pub granularity: Granularity,
    /// Adjudications of any outcome (paid, partially paid, denied) in the window.
    #[serde(default)]
    pub adjudicated: i64,
    /// Of `paid`, those partially paid (some denial adjustment).
    #[serde(default)]
    pub partially_paid: i64,
    /// Reversals (CLP02 22 retracting an adjudication) in the window.
    #[serde(default)]
    pub reversed: i64,
    /// Claims whose first adjudication falls in the window (first-pass yield denominator).
    #[serde(default)]
    pub first_adjudicated: i64,
    /// Of those, paid on that first pass (first-pass yield numerator).
    #[serde(default)]
    pub first_pass_paid: i64,
    /// Adjudications by primary denial category, most first (at most 5).
    #[serde(default)]
    pub top_denial_category_counts: Vec<CountByCode>,
    /// Facts applied after the window was first emitted.
    #[serde(default)]
    pub late_facts: i64,
    /// Daily windows in the drift baseline (0 for hourly windows).
    #[serde(default)]
    pub baseline_windows: i32,
    /// Denial rate of the baseline (pooled), when it has enough adjudications.
    #[serde(default)]
    pub baseline_denial_rate: Option<f64>,
    /// (denial_rate - baseline) / sqrt(baseline (1 - baseline) / adjudicated).
    #[serde(default)]
    pub denial_rate_z: Option<f64>,
    /// Pearson chi-squared of the window's denial-category counts against the baseline mix.
    #[serde(default)]
    pub carc_mix_chi2: Option<f64>,
    /// Degrees of freedom of `carc_mix_chi2`.
    #[serde(default)]
    pub carc_mix_dof: Option<i32>,
    /// Upper-tail p-value of `carc_mix_chi2`.
    #[serde(default)]
    pub carc_mix_p_value: Option<f64>,
}

fn default_granularity() -> Granularity {
    Granularity::Daily
}

/// The rule a payer monitor alert fired on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MonitorRule {
    /// First-pass yield under the threshold with enough first adjudications.
    FirstPassYieldLow,
    /// Denial-rate z-score against the baseline at or above the threshold.
    DenialRateSpike,
    /// CARC-category mix departs from the baseline (chi-squared p-value under the threshold).
    CarcMixShift,
}

impl MonitorRule {
    pub const ALL: [MonitorRule; 3] = [
        Self::FirstPassYieldLow,
        Self::DenialRateSpike,
        Self::CarcMixShift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstPassYieldLow => "FIRST_PASS_YIELD_LOW",
            Self::DenialRateSpike => "DENIAL_RATE_SPIKE",
            Self::CarcMixShift => "CARC_MIX_SHIFT",
        }
    }
}

/// A payer monitor threshold crossed by a KPI window: at most one per payer, window and rule.
/// Emitted on `claimwatch.alerts.payer-monitor`, keyed by payer id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PayerMonitorAlert {
    /// `<payer_id>:<granularity>:<window_start>:<rule>`: one per payer, window and rule.
    pub output_id: String,
    pub payer_id: String,
    pub payer_category: PayerCategory,
    pub granularity: Granularity,
    pub window_start: EpochMillis,
    pub window_end: EpochMillis,
    pub rule: MonitorRule,
    /// The observed value (first-pass yield, z-score or p-value).
    pub value: f64,
    /// The configured threshold it crossed.
    pub threshold: f64,
    /// Claims behind the value (first adjudications, adjudications or denials).
    pub volume: i64,
    /// The KPI version that raised it.
    pub kpi_version: i64,
}

/// What a [`PayerFact`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FactKind {
    Submitted,
    Accepted,
    Rejected,
    Adjudicated,
    Reversed,
}

/// Outcome of an adjudication fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FactOutcome {
    Paid,
    PartiallyPaid,
    Denied,
}

/// Internal event on the payer flow: one change of a claim that a payer monitor counts, re-keyed
/// from claim id to payer id (in Kafka through `claimwatch.internal.payer-facts`, in replay
/// directly). Carries no claim or member identifier: per-claim deduplication (first pass) is
/// decided by reconciliation, which sees the whole claim.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PayerFact {
    pub payer_id: String,
    pub payer_category: PayerCategory,
    /// Event time of the change (the input record that caused it); decides the windows.
    pub event_time: EpochMillis,
    pub kind: FactKind,
    /// For `ADJUDICATED`.
    pub outcome: Option<FactOutcome>,
    /// The claim's first adjudication (first-pass yield denominator).
    pub first_adjudication: bool,
    /// First adjudication paid without a prior rejection, replacement or denial.
    pub first_pass_paid: bool,
    /// Payer payment to date (adjudicated) or retracted (reversed, positive), cents.
    pub paid_cents: i64,
    /// Denial-category adjustments, cents.
    pub denied_cents: i64,
    /// Category of the largest denial adjustment.
    pub denial_category: Option<String>,
    /// Denial-category adjustments by category.
    pub denied_by_category: Vec<AmountByCode>,
    /// First submission to first payment, days (paid adjudications).
    pub days_to_payment: Option<i32>,
    /// Partition of the claim flow that produced it (set by the core; drives the payer flow's
    /// watermark).
    #[serde(default)]
    pub source_partition: i32,
}

impl std::fmt::Debug for PayerFact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayerFact")
            .field("kind", &self.kind)
            .field("outcome", &self.outcome)
            .field("event_time", &self.event_time)
            .finish_non_exhaustive()
    }
}

/// A record re-keyed out of the claim flow: to the member flow or to the payer flow.
#[derive(Clone, Debug, PartialEq)]
pub enum Rekeyed {
    Cost(EncounterCost),
    Payer(PayerFact),
    /// A stay outcome fact for the population flow (`population` module).
    Population(StayOutcome),
    /// A vaccine administration seen on a claim, for the member's care gaps.
    Vaccine(VaccineDose),
    /// A claim's contribution to its payer's cash forecast (`cashflow` module).
    Cash(CashFact),
    /// Provider/department counters (`providers` module).
    Provider(ProviderFact),
    /// A claim's paid amount for its member's PMPM (`enrolment` module).
    MemberPaid(MemberPaid),
    /// A member's PMPM contribution for the population flow (`enrolment` module).
    Pmpm(PmpmFact),
    /// Weekly admissions / ED visits of a facility and service line (`utilization` module).
    Utilization(super::UtilizationFact),
}

impl Rekeyed {
    /// The key on the target flow: member id or payer id.
    pub fn key(&self) -> &str {
        match self {
            Self::Cost(c) => &c.member_id,
            Self::Payer(f) => &f.payer_id,
            Self::Population(_) => POPULATION_KEY,
            Self::Vaccine(v) => &v.member_id,
            Self::Cash(f) => &f.payer_id,
            Self::Provider(f) => &f.key,
            Self::MemberPaid(p) => &p.member_id,
            Self::Pmpm(_) => POPULATION_KEY,
            Self::Utilization(f) => &f.key,
        }
    }

    pub fn event_time(&self) -> EpochMillis {
        match self {
            Self::Cost(c) => c.event_time,
            Self::Payer(f) => f.event_time,
            Self::Population(f) => f.event_time,
            Self::Vaccine(v) => v.event_time,
            Self::Cash(f) => f.event_time,
            Self::Provider(f) => f.event_time,
            Self::MemberPaid(p) => p.event_time,
            Self::Pmpm(f) => f.event_time,
            Self::Utilization(f) => f.event_time,
        }
    }
}

/// Internal event on the member flow: the paid amount of the claim that bills an encounter.
/// Produced by reconciliation (claim-keyed) and routed to readmission detection (member-keyed):
/// in Kafka through a repartition topic, in replay directly.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct EncounterCost {
    pub member_id: String,
    pub encounter_id: String,
    pub claim_id: String,
    pub paid_cents: i64,
    pub event_time: EpochMillis,
}

impl std::fmt::Debug for EncounterCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncounterCost")
            .field("paid_cents", &self.paid_cents)
            .finish_non_exhaustive()
    }
}

/// Internal event on the member flow: a vaccine product code on a submitted claim (not a void),
/// re-keyed from claim id to member id (in Kafka through `claimwatch.internal.vaccine-doses`, in
/// replay directly). The submission is the evidence the dose was given, whatever the payer decides.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct VaccineDose {
    pub member_id: String,
    pub claim_id: String,
    /// Rule-table vaccine (`INFLUENZA`, `PNEUMOCOCCAL`).
    pub vaccine: String,
    /// CPT/HCPCS product code on the claim line.
    pub procedure_code: String,
    pub cvx: String,
    /// The line's service date (else the claim's).
    pub administered_date: EpochDay,
    /// Event time of the claim submission.
    pub event_time: EpochMillis,
}

impl std::fmt::Debug for VaccineDose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaccineDose")
            .field("vaccine", &self.vaccine)
            .field("administered_date", &self.administered_date)
            .finish_non_exhaustive()
    }
}

/// What a care-gap event says about its gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CareGapAction {
    /// An eligible member is due and no dose is known.
    Opened,
    /// A claim shows the dose was given.
    Closed,
    /// The season ended with the gap open.
    Expired,
    /// The gap no longer applies (the member died).
    NotApplicable,
}

impl CareGapAction {
    pub const ALL: [CareGapAction; 4] = [
        Self::Opened,
        Self::Closed,
        Self::Expired,
        Self::NotApplicable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "OPENED",
            Self::Closed => "CLOSED",
            Self::Expired => "EXPIRED",
            Self::NotApplicable => "NOT_APPLICABLE",
        }
    }
}

/// An immunization care gap opened, closed or ended. Emitted on `claimwatch.care-gaps`, keyed by
/// member id (or its pseudonym when `deidentify.pseudonym_secret` is set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CareGapEvent {
    /// `<member_id>:<vaccine>:<season>:<version>` (the gap id and the gap's version).
    pub output_id: String,
    /// The member id, or `HMAC-SHA256(secret, member id)` in hex when pseudonymised.
    pub member_id: String,
    pub pseudonymised: bool,
    /// `<member_id>:<vaccine>:<season>`.
    pub gap_id: String,
    /// 1 for OPENED, then +1 per event of the gap.
    pub version: i64,
    pub action: CareGapAction,
    /// The gap's action before this one (absent for OPENED).
    pub previous_action: Option<CareGapAction>,
    pub event_time: EpochMillis,
    pub vaccine: String,
    /// `2024-25` for a seasonal vaccine, `ONCE` for a lifetime one.
    pub season: String,
    /// The day the gap is due from.
    pub due_date: EpochDay,
    /// Age in whole years when the gap opened (eligibility is decided at the due date).
    pub age: i32,
    /// `19-49`, `50-64`, `65-74`, `75+`.
    pub age_band: String,
    /// Eligible through the risk-condition rule rather than age alone.
    pub risk_condition_eligible: bool,
    /// Charlson conditions seen on the member's encounters.
    pub chronic_conditions: i32,
    pub charlson_index: i32,
    /// Outreach priority (see README "Care gaps").
    pub outreach_priority: RiskTier,
    /// 0-100; higher first.
    pub priority_score: i32,
    /// `READMISSION_RISK` (latest readmission risk score) or `AGE_AND_CONDITIONS`.
    pub priority_basis: String,
    pub readmission_probability: Option<f64>,
    /// CLOSED: when the dose was given, its product code and CVX, and the claim that showed it
    /// (the claim id is left out when pseudonymised).
    pub administered_date: Option<EpochDay>,
    pub procedure_code: Option<String>,
    pub cvx: Option<String>,
    pub source_claim_id: Option<String>,
}

/// Avro `bytes` through serde: apache-avro and serde_avro_fast both read/write `bytes` from
/// serde's byte-buf form.
mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// One output event of the core, tagged with its topic.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputEvent {
    // The two high-volume outputs are boxed: the enum stays small, so moving outputs through
    // vectors and channels copies a pointer instead of ~500 bytes.
    ClaimLifecycle(Box<ClaimLifecycleUpdate>),
    Readmission(Box<ReadmissionEvent>),
    DeadLetter(DeadLetter),
    DenialRisk(DenialRiskScore),
    ReadmissionRisk(ReadmissionRiskScore),
    HighRiskAlert(HighRiskAlert),
    PayerKpi(PayerKpi),
    PayerMonitorAlert(PayerMonitorAlert),
    ReadmissionSummary(ReadmissionSummary),
    InterventionRoi(InterventionRoi),
    CareGap(CareGapEvent),
    MemberRisk(MemberRiskEvent),
    CashForecast(CashForecast),
    ProviderKpi(ProviderKpi),
    UtilizationForecast(super::UtilizationForecast),
}

impl OutputEvent {
    /// Default topic name of this output.
    pub fn topic(&self) -> &'static str {
        match self {
            Self::ClaimLifecycle(_) => "claimwatch.claim-lifecycle",
            Self::Readmission(_) => "claimwatch.readmissions",
            Self::DeadLetter(_) => "claimwatch.dead-letter",
            Self::DenialRisk(_) => "claimwatch.denial-risk",
            Self::ReadmissionRisk(_) => "claimwatch.readmission-risk",
            Self::HighRiskAlert(_) => "claimwatch.alerts.high-risk-discharge",
            Self::PayerKpi(_) => "claimwatch.payer-kpis",
            Self::PayerMonitorAlert(_) => "claimwatch.alerts.payer-monitor",
            Self::ReadmissionSummary(_) => "claimwatch.readmission-summary",
            Self::InterventionRoi(_) => "claimwatch.intervention-roi",
            Self::CareGap(_) => "claimwatch.care-gaps",
            Self::MemberRisk(_) => "claimwatch.member-risk",
            Self::CashForecast(_) => "claimwatch.cash-forecast",
            Self::ProviderKpi(_) => "claimwatch.provider-kpis",
            Self::UtilizationForecast(_) => "claimwatch.utilization-forecast",
        }
    }

    /// The record key: claim id, member id or payer id.
    pub fn key(&self) -> &str {
        match self {
            Self::ClaimLifecycle(e) => &e.claim_id,
            Self::Readmission(e) => &e.member_id,
            Self::DeadLetter(e) => &e.source,
            Self::DenialRisk(e) => &e.claim_id,
            Self::ReadmissionRisk(e) => &e.member_id,
            Self::HighRiskAlert(e) => &e.member_id,
            Self::PayerKpi(e) => &e.payer_id,
            Self::PayerMonitorAlert(e) => &e.payer_id,
            Self::ReadmissionSummary(e) => &e.group,
            Self::InterventionRoi(e) => &e.intervention_id,
            Self::CareGap(e) => &e.member_id,
            Self::MemberRisk(e) => &e.member_id,
            Self::CashForecast(e) => &e.forecast_key,
            Self::ProviderKpi(e) => &e.key,
            Self::UtilizationForecast(e) => &e.key,
        }
    }
}

/// The one key of the population flow: every [`StayOutcome`] goes to the partition that owns it.
pub const POPULATION_KEY: &str = "population";

/// Internal event on the population flow: what one matured index stay adds to (`sign` +1) or
/// takes back from (`sign` -1) the population aggregates. A change of a stay's outcome after
/// its first fact (a readmission's cost arriving late, a retraction, a correction) is sent as the
/// old content with -1 followed by the new content with +1, so the aggregate is a plain sum of
/// facts and does not depend on their arrival order. Carries no member, claim or encounter id.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StayOutcome {
    /// +1 (add) or -1 (take back).
    pub sign: i32,
    /// Event time of the change that produced it (window close, cost, encounter record).
    pub event_time: EpochMillis,
    /// Diagnosis group of the index stay (CCSR body system of its principal diagnosis).
    pub dx_group: String,
    /// HRRP cohort of the index stay.
    pub hrrp_cohort: Option<String>,
    /// Risk tier at discharge.
    pub tier: RiskTier,
    /// Calibrated probability at discharge, in millionths.
    pub probability_micros: i64,
    /// Days from the episode's admission to the index discharge.
    pub los_days: i32,
    /// Paid amount of the index stay's claim, when known.
    pub index_paid_cents: Option<i64>,
    /// An unplanned readmission within the window.
    pub readmitted: bool,
    /// The first readmission in the window is planned (does not count as readmitted).
    pub planned: bool,
    /// The unplanned readmission is potentially preventable (`population` module rule).
    pub preventable: bool,
    /// Paid amount of the unplanned readmission's claim, when known.
    pub readmission_paid_cents: Option<i64>,
}

impl std::fmt::Debug for StayOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StayOutcome")
            .field("sign", &self.sign)
            .field("dx_group", &self.dx_group)
            .field("readmitted", &self.readmitted)
            .finish_non_exhaustive()
    }
}

/// Readmission outcomes of one population group (`dx:<group>`, `cohort:<cohort>` or `all`).
/// Emitted on `claimwatch.readmission-summary`, keyed by group, at most once per event-time day
/// of the population flow for each group that changed (and once more at the end of a replay).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadmissionSummary {
    /// `<group>:<version>`: deterministic.
    pub output_id: String,
    /// `dx:<body system>`, `cohort:<HRRP cohort>` or `all`.
    pub group: String,
    /// Increments with every emission of this group.
    pub version: i64,
    /// Start of the population flow's day after the last day whose facts it includes.
    pub event_time: EpochMillis,
    /// Matured index stays (30-day window closed).
    pub index_stays: i64,
    /// Of those, with an unplanned readmission within 30 days.
    pub readmissions: i64,
    /// readmissions / index_stays (0 without index stays).
    pub readmission_rate: f64,
    /// Index stays whose first readmission in the window is planned.
    pub planned_readmissions: i64,
    /// Unplanned readmissions flagged potentially preventable.
    pub preventable_readmissions: i64,
    /// Paid amount of the unplanned readmissions whose claim is paid, cents.
    pub readmission_paid_cents: i64,
    /// Unplanned readmissions with a known paid amount.
    pub readmissions_with_paid: i64,
    /// Paid amount of the preventable readmissions, cents.
    pub preventable_paid_cents: i64,
    /// Average length of stay of the index stays, days.
    pub average_los_days: f64,
    /// Paid amount of the index stays whose claim is paid, cents.
    pub index_paid_cents: i64,
    /// Sum of the calibrated probabilities at discharge (expected readmissions).
    pub expected_readmissions: f64,
    /// Population KPIs: only on `all`.
    pub kpis: Option<PopulationKpis>,
}

/// Population-level KPIs (on the `all` summary).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PopulationKpis {
    /// Unplanned 30-day readmissions / matured index stays.
    pub readmission_rate: f64,
    /// preventable / unplanned readmissions (0 without readmissions).
    pub preventable_share: f64,
    /// Paid amount of preventable readmissions, cents.
    pub preventable_readmission_spend_cents: i64,
    /// Average length of stay of the index stays, days.
    pub average_los_days: f64,
    /// Observed / expected readmissions (sum of calibrated probabilities).
    pub observed_to_expected: Option<f64>,
    /// Cost per member per month over the PMPM window: paid amounts incurred inside
    /// eligibility / member months, cents (absent without member months; `enrolment` module).
    #[serde(default)]
    pub cost_pmpm_cents: Option<i64>,
    /// Member months of the PMPM window.
    #[serde(default)]
    pub member_months: Option<i64>,
    /// Paid amounts incurred inside eligibility in the PMPM window (the numerator), cents.
    #[serde(default)]
    pub pmpm_paid_cents: Option<i64>,
    /// Paid amounts incurred in the window outside every enrolment span (or for members without
    /// enrolment data): not in the numerator, cents.
    #[serde(default)]
    pub paid_without_eligibility_cents: Option<i64>,
    /// First and last month of the PMPM window (`YYYY-MM`).
    #[serde(default)]
    pub pmpm_first_month: Option<String>,
    #[serde(default)]
    pub pmpm_last_month: Option<String>,
    /// The window's months, oldest first.
    #[serde(default)]
    pub pmpm_months: Option<Vec<PmpmMonth>>,
}

/// PMPM of one calendar month (incurred / service month).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmpmMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub member_months: i64,
    /// Paid inside eligibility, incurred in the month, cents.
    pub paid_cents: i64,
    /// Paid outside eligibility, incurred in the month, cents.
    pub paid_without_eligibility_cents: i64,
    /// paid_cents / member_months (absent without member months).
    pub cost_pmpm_cents: Option<i64>,
}

/// One tier cut-off of an intervention's ROI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoiCutoff {
    /// Lowest tier targeted: HIGH (high only), MEDIUM (medium and high) or LOW (all).
    pub min_tier: RiskTier,
    /// Matured index discharges targeted (a member discharged twice counts twice).
    pub members_targeted: i64,
    /// Sum of their calibrated probabilities.
    pub expected_readmissions: f64,
    /// expected_relative_reduction x expected_readmissions.
    pub expected_avoided: f64,
    /// Avoided readmissions x the observed average paid amount of an unplanned readmission of
    /// the index stay's diagnosis group (population average when the group has none), cents.
    pub gross_savings_cents: i64,
    /// members_targeted x cost per member, cents.
    pub programme_cost_cents: i64,
    /// gross - cost, cents.
    pub net_savings_cents: i64,
    /// net / cost (absent when nothing is targeted).
    pub roi: Option<f64>,
}

/// The expected return of one intervention of the configured table, applied retrospectively to
/// the matured index stays by risk tier. Emitted on `claimwatch.intervention-roi`, keyed by
/// intervention id, whenever the population summary is emitted and the figures changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterventionRoi {
    /// `<intervention_id>:<version>`.
    pub output_id: String,
    pub intervention_id: String,
    pub version: i64,
    pub event_time: EpochMillis,
    pub name: String,
    pub cost_per_member_cents: i64,
    pub expected_relative_reduction: f64,
    /// Where the cost and effect assumptions come from.
    pub source: String,
    /// HIGH, MEDIUM and LOW cut-offs, in that order.
    pub cutoffs: Vec<RoiCutoff>,
    /// The cut-off with the largest net savings (ties: the narrower one).
    pub best_min_tier: RiskTier,
    pub best_net_savings_cents: i64,
    pub best_roi: Option<f64>,
}

/// Whether a member entered or left the top N % of predicted cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberRiskAction {
    /// The member's predicted next-period cost is now at or above the top-N % threshold.
    Entered,
    /// It is now below (or the member left state: no stay in the look-back).
    Exited,
}

impl MemberRiskAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Entered => "ENTERED",
            Self::Exited => "EXITED",
        }
    }
}

/// One feature's contribution to a predicted cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostDriver {
    pub feature: String,
    /// The feature's value for the member on the cut day.
    pub value: f64,
    /// Dollars this feature adds to (or takes off) the prediction of a member at the training
    /// means.
    pub contribution_dollars: f64,
    /// The same in words, for a care manager.
    pub explanation: String,
}

/// A member entering or leaving the top N % of predicted next-period cost. Emitted on
/// `claimwatch.member-risk`, keyed by member id (or its pseudonym when
/// `deidentify.pseudonym_secret` is set). See the `memberrisk` module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberRiskEvent {
    /// `<member_id>:<version>`.
    pub output_id: String,
    /// The member id, or `HMAC-SHA256(secret, member id)` in hex when pseudonymised.
    pub member_id: String,
    pub pseudonymised: bool,
    /// 1 for the member's first record, +1 per record.
    pub version: i64,
    pub action: MemberRiskAction,
    pub event_time: EpochMillis,
    /// The day the features are computed as of.
    pub as_of_date: EpochDay,
    /// Paid to date of the member's stays admitted in the 365 days to `as_of_date`.
    pub paid_12m_cents: i64,
    /// Predicted paid amount of the next `horizon_days`.
    pub predicted_cents: i64,
    pub horizon_days: i32,
    /// The top-N % threshold it was compared with (partition-local sketch, see README).
    pub threshold_cents: i64,
    /// N.
    pub top_percent: f64,
    /// Members whose latest prediction the threshold was computed over.
    pub population_members: i64,
    pub model_version: String,
    /// The largest contributions to the prediction.
    pub drivers: Vec<CostDriver>,
}

/// One 835 payment of a claim, as the cash forecast counts it: the payer payment (CLP04, negative
/// for a reversal) on its payment date.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CashReceipt {
    pub payment_date: EpochDay,
    pub paid_cents: i64,
}

/// Internal event on the payer flow for the cash forecast (`cashflow` module): what one claim
/// adds to (`sign` +1) or takes back from (`sign` -1) its payer's cash aggregate, re-keyed from
/// claim id to payer id (in Kafka through `claimwatch.internal.cash-facts`, in replay directly).
/// A claim's content is a pure function of its reconciled state and its denial-risk score; when
/// it changes, the old content is taken back and the new added, so the aggregate is a plain sum.
/// Carries no claim or member identifier.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CashFact {
    /// +1 (add) or -1 (take back).
    pub sign: i32,
    /// Event time of the claim change that produced it.
    pub event_time: EpochMillis,
    pub payer_id: String,
    pub payer_category: PayerCategory,
    /// Open claim (submitted, not adjudicated, rejected, voided or forwarded): the day of its
    /// first submission.
    pub open_submitted_date: Option<EpochDay>,
    /// Open claim: expected amount (the claim's expected amount, else its billed amount), cents.
    pub open_expected_cents: i64,
    /// Open claim: 1 - denial probability of its latest denial-risk score, in millionths (absent
    /// without a score).
    pub open_paid_probability_micros: Option<i64>,
    /// Adjudicated claim: paid or partially paid (true) or denied (false).
    pub adjudicated_paid: Option<bool>,
    /// Paid claim: days from first submission to first payment.
    pub days_to_payment: Option<i32>,
    /// The claim's primary payer's 835 payments.
    pub receipts: Vec<CashReceipt>,
    /// Partition of the claim flow that produced it (set by the core).
    #[serde(default)]
    pub source_partition: i32,
    /// Claim adjudicated paid: its expected amount (expected, else billed), cents; 0 otherwise.
    /// With the receipts it gives the payer's ratio of payment to expected amount.
    #[serde(default)]
    pub paid_expected_cents: i64,
}

impl std::fmt::Debug for CashFact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CashFact")
            .field("sign", &self.sign)
            .field("event_time", &self.event_time)
            .field("open", &self.open_submitted_date.is_some())
            .finish_non_exhaustive()
    }
}

/// Integer counters one [`ProviderFact`] adds to a provider or department key (all sums, so the
/// aggregate is the same whatever order the facts arrive in).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProviderCounts {
    /// Completed (discharged, not cancelled) encounters of any class.
    pub encounters: i64,
    /// Of those, inpatient stays.
    pub inpatient_stays: i64,
    /// Length of stay of those inpatient stays, days (discharge - admission).
    pub inpatient_los_days: i64,
    /// Encounters whose claim has a paid amount.
    pub paid_encounters: i64,
    /// Paid amount of those encounters, cents.
    pub paid_cents: i64,
    /// Matured index stays (30-day window closed).
    pub index_stays: i64,
    /// Of those, HIGH risk tier at discharge.
    pub high_risk: i64,
    /// Of those, with an unplanned readmission within the window.
    pub readmissions: i64,
    /// Calibrated readmission probabilities at discharge of those index stays, millionths.
    pub expected_micros: i64,
    /// Claim adjudications (paid, partially paid or denied; re-adjudications count again).
    pub adjudicated: i64,
    /// Of those, denied.
    pub denied: i64,
    /// First adjudications of a claim (first-pass yield denominator).
    pub first_adjudications: i64,
    /// First adjudications paid with no prior rejection, replacement or denial.
    pub first_pass_paid: i64,
}

impl ProviderCounts {
    /// Adds `other` times `sign`.
    pub fn add(&mut self, other: &ProviderCounts, sign: i64) {
        self.encounters += sign * other.encounters;
        self.inpatient_stays += sign * other.inpatient_stays;
        self.inpatient_los_days += sign * other.inpatient_los_days;
        self.paid_encounters += sign * other.paid_encounters;
        self.paid_cents += sign * other.paid_cents;
        self.index_stays += sign * other.index_stays;
        self.high_risk += sign * other.high_risk;
        self.readmissions += sign * other.readmissions;
        self.expected_micros += sign * other.expected_micros;
        self.adjudicated += sign * other.adjudicated;
        self.denied += sign * other.denied;
        self.first_adjudications += sign * other.first_adjudications;
        self.first_pass_paid += sign * other.first_pass_paid;
    }

    /// Every counter is zero.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// Internal event on the provider flow (`providers` module): what one encounter, matured index
/// stay or claim adjudication adds to (`sign` +1) or takes back from (`sign` -1) a provider or
/// department key's counters on one day. Re-keyed from the member and claim flows to
/// `provider:<id>` / `department:<name>` (in Kafka through `claimwatch.internal.provider-facts`,
/// in replay directly). Carries no member, claim or encounter identifier.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProviderFact {
    /// `provider:<id>` or `department:<name>`.
    pub key: String,
    /// +1 (add) or -1 (take back).
    pub sign: i32,
    /// Event time of the change that produced it; moves the provider flow's day.
    pub event_time: EpochMillis,
    /// The day the counters belong to (decides the rolling windows): an encounter's discharge, an
    /// index stay's maturity (discharge + readmission window + 1), an adjudication's day.
    pub day: EpochDay,
    pub counts: ProviderCounts,
    /// The partition that sent it (the provider flow's watermark is the minimum over sources);
    /// -1 when unknown.
    pub source_partition: i32,
}

impl std::fmt::Debug for ProviderFact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderFact")
            .field("key", &self.key)
            .field("sign", &self.sign)
            .field("day", &self.day)
            .finish_non_exhaustive()
    }
}

/// Expected cash of one ISO week.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeekAmount {
    /// ISO week, `2024-W09`.
    pub iso_week: String,
    /// Its Monday.
    pub week_start: EpochDay,
    pub expected_cents: i64,
}

/// Cash forecast against actual receipts for one payer and ISO week. Emitted on
/// `claimwatch.cash-forecast`, keyed `<payer_id>:<iso week>`, when the payer's flow passes the
/// week's end (version 1), again (version + 1) when a late 835 or claim change corrects it, and
/// at the end of a replay for the week in progress (`complete` false).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CashForecast {
    /// `<payer_id>:<iso_week>:<version>`: deterministic.
    pub output_id: String,
    /// `<payer_id>:<iso_week>` (the record key).
    pub forecast_key: String,
    pub payer_id: String,
    pub payer_category: PayerCategory,
    /// ISO week, `2024-W09`.
    pub iso_week: String,
    /// Monday of the week.
    pub week_start: EpochDay,
    /// Increments with every emission of this key.
    pub version: i64,
    /// Start of the payer flow's day at emission.
    pub event_time: EpochMillis,
    /// The payer's flow had passed the week's end at emission.
    pub complete: bool,
    /// Expected cash in the week, frozen as of its start (absent when the payer had no facts
    /// before the week started), cents.
    pub forecast_cents: Option<i64>,
    /// Open claims behind `forecast_cents`.
    pub forecast_open_claims: i64,
    /// Payer payments with a payment date in the week (reversals negative), cents.
    pub actual_cents: i64,
    /// 835 payments behind `actual_cents` (net of corrections).
    pub receipts: i64,
    /// actual - forecast, cents (absent without a forecast).
    pub error_cents: Option<i64>,
    /// |actual - forecast| / |actual| (absent without a forecast or with no receipts).
    pub abs_pct_error: Option<f64>,
    /// The current forecast for the week of `event_time` (its remaining days) and the weeks after
    /// it, `cash_forecast.horizon_weeks` in all.
    pub forward: Vec<WeekAmount>,
    /// Open claims now.
    pub open_claims: i64,
    /// Their expected amount, cents.
    pub open_expected_cents: i64,
    /// Their expected amount x probability of payment, cents.
    pub open_expected_paid_cents: i64,
    /// Expected paid amount of open claims older than every payment observed for the payer (not
    /// placed on any week), cents.
    pub stale_open_cents: i64,
    /// Open claims without a denial-risk score (their probability is the payer's payment rate).
    pub unscored_open_claims: i64,
    /// Paid / adjudicated claims of the payer (absent before the first adjudication).
    pub payment_rate: Option<f64>,
    /// Paid claims in the payer's days-to-payment distribution.
    pub paid_claims_observed: i64,
    /// Median days from first submission to first payment (121 = over 120 days).
    pub median_days_to_payment: Option<f64>,
}

/// The KPIs of one provider or department over one rolling event-time window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderWindow {
    /// Window length, days.
    pub days: i32,
    /// First and last day of the window (the last is the provider flow's day).
    pub first_day: EpochDay,
    pub last_day: EpochDay,
    /// Completed encounters discharged in the window (all classes).
    pub encounters: i64,
    /// Workload: encounters per week of the window.
    pub encounters_per_week: f64,
    pub inpatient_stays: i64,
    /// Average length of stay of the inpatient stays, days (0 without stays).
    pub average_los_days: f64,
    /// Encounters with a paid claim and their paid amount, cents.
    pub paid_encounters: i64,
    pub paid_cents: i64,
    /// paid_cents / paid_encounters (absent without paid encounters). Per encounter: distinct
    /// patients are not counted (not a sum of facts).
    pub cost_per_encounter_cents: Option<i64>,
    /// Index stays whose 30-day window closed in the window.
    pub index_stays: i64,
    pub high_risk_stays: i64,
    /// high_risk_stays / index_stays (0 without index stays).
    pub high_risk_share: f64,
    /// Unplanned 30-day readmissions of those index stays.
    pub readmissions: i64,
    /// readmissions / index_stays (0 without index stays).
    pub readmission_rate: f64,
    /// Sum of the calibrated probabilities at discharge (indirect standardization's E).
    pub expected_readmissions: f64,
    /// observed / expected (absent when expected is 0).
    pub observed_to_expected: Option<f64>,
    /// 95 % confidence interval of O/E (exact Poisson on O, divided by E).
    pub oe_ci_low: Option<f64>,
    pub oe_ci_high: Option<f64>,
    /// Outcome efficiency: expected - observed readmissions (positive: fewer than expected).
    pub readmissions_avoided: f64,
    /// `HIGHER` / `LOWER` when the interval excludes 1 and expected >= `min_expected`; absent
    /// otherwise.
    pub flag: Option<String>,
    /// Claim adjudications, denials and denial rate (0 without adjudications).
    pub adjudicated: i64,
    pub denied: i64,
    pub denial_rate: f64,
    /// First adjudications, those paid first pass, and first-pass yield (absent without any).
    pub first_adjudications: i64,
    pub first_pass_paid: i64,
    pub first_pass_yield: Option<f64>,
}

/// Rolling-window KPIs of one provider or department. Emitted on `claimwatch.provider-kpis`,
/// keyed `provider:<id>` / `department:<name>`, at most once per day of the provider flow for
/// each key whose windows changed (and at the end of a replay). Aggregate only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderKpi {
    /// `<key>:<version>`: deterministic.
    pub output_id: String,
    /// `provider:<id>` or `department:<name>`.
    pub key: String,
    /// `PROVIDER` or `DEPARTMENT`.
    pub level: String,
    /// The provider id or department name.
    pub name: String,
    /// Increments with every emission of this key.
    pub version: i64,
    /// Start of the day after the window's last day.
    pub event_time: EpochMillis,
    /// One per configured window, shortest first.
    pub windows: Vec<ProviderWindow>,
}
