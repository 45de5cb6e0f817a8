//! Business KPIs read off the output events: the claim lifecycle (status gauge, adjudications,
//! first-pass yield, denials, variance, time to ack and payment, A/R aging), readmissions, scores
//! and high-risk alerts.
//!
//! Outputs carry the claim's *current* view, not a delta, so each KPI is counted at the one update
//! that marks its moment (see the README's metric table for each rule):
//! - a **status transition** is an update whose `status` differs from `previous_status`;
//! - an **adjudication** is a remittance-caused transition into PAID, PARTIALLY_PAID, DENIED or
//!   FORWARDED; denied dollars, adjustments and variance are counted there;
//! - **first pass** is counted at the first remittance (`remit_count == 1`), from
//!   `first_pass_paid` (which already says whether the claim was rejected or replaced before);
//! - **time to ack** at the first acknowledgment, **time to payment** at the transition into PAID or
//!   PARTIALLY_PAID from a status that had no payment (not again after a reversal).
//!
//! **Arrival order.** Time to ack, time to payment, variance and the department of a denial need
//! the submission (its date, expected amount and department). When a claim's 277CA or 835 is
//! processed before its submission (a lagging partition, a backfill), the update of that moment
//! lacks them; they are then observed at the update that brings the first submission, from the
//! claim's state as it stands, so each is observed once whatever the order. A denial is counted
//! in `claimwatch_revenue_denials_total` at the later of the denying remittance and the first
//! submission; denials of claims whose submission never arrives are in
//! `claimwatch_claims_adjudications_total` only, and so are denials that an appeal overturned
//! before the first submission arrived (the claim's state then no longer shows them).
//!
//! Delivery is at least once, so after a crash a few outputs are observed twice: the counters can
//! over-count by the outputs re-emitted since the last checkpoint.
//!
//! **Departments.** The claim counts by status, the denials and the readmissions carry the
//! `department` label: the claim's department (service line) from its submission, the index
//! stay's department for a readmission, `UNKNOWN` while a claim has no submission yet, bounded
//! by [`labels::DEPARTMENT_CAP`] (`other` past it). Those three families resolve their handles
//! per observation (a hash of the label values and a read lock; no allocation once the series
//! exists) since departments come from the data; the rest stays pre-resolved.
//!
//! The status gauge and the A/R aging are net sums of transitions *observed by this process*: a
//! claim whose earlier updates were seen by another instance (before a rebalance or a restart) is
//! subtracted from a status it was never added to here. The aging clamps each bucket at zero; the
//! status gauge does not (its sum over instances is right), and dashboards `sum` it.

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

use prometheus::{
    Counter, Gauge, GaugeVec, Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
};

use super::labels::{
    self, ar_bucket_index, carc_category_index, carc_group_index, cohort_index, payer_index,
    status_index, Bounded, AR_BUCKETS, CARC_GROUPS, DEPARTMENT_CAP, DEPARTMENT_MAX_LEN,
    HRRP_COHORTS, MODELS, PAYER_CATEGORIES, READMISSION_ACTIONS, RISK_TIERS, UNKNOWN,
};
use super::{
    add_cents, counter, counter_vec, float_counter_vec, float_gauge_vec, gauge_vec, histogram,
    histogram_vec, resolve, MetricsError,
};
use crate::model::{
    day_of, ClaimLifecycleUpdate, ClaimStatus, EpochDay, Granularity, MonitorRule, OutputEvent,
    ReadmissionAction, ReadmissionEvent, RiskTier, UpdateCause,
};
use crate::refdata::CarcCategory;

const P: usize = PAYER_CATEGORIES.len();
const S: usize = ClaimStatus::ALL.len();
const C: usize = CarcCategory::ALL.len();
const DAY_S: f64 = 86_400.0;

/// Day-sized buckets for time to ack / payment (1 day to 1 year), in seconds.
const DAY_BUCKETS: [f64; 12] = [
    DAY_S,
    2.0 * DAY_S,
    3.0 * DAY_S,
    5.0 * DAY_S,
    7.0 * DAY_S,
    14.0 * DAY_S,
    21.0 * DAY_S,
    30.0 * DAY_S,
    45.0 * DAY_S,
    60.0 * DAY_S,
    90.0 * DAY_S,
    365.0 * DAY_S,
];
/// Readmission interval: 1..=30 days.
const READMIT_BUCKETS: [f64; 7] = [
    DAY_S,
    3.0 * DAY_S,
    7.0 * DAY_S,
    14.0 * DAY_S,
    21.0 * DAY_S,
    30.0 * DAY_S,
    31.0 * DAY_S,
];
/// Paid minus expected, dollars; negative = underpaid.
const VARIANCE_BUCKETS: [f64; 13] = [
    -10_000.0, -1_000.0, -500.0, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 500.0, 1_000.0,
    10_000.0,
];
const PROBABILITY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// The adjudicated outcomes (the `outcome` label of adjudications).
const ADJUDICATED: [ClaimStatus; 4] = [
    ClaimStatus::Paid,
    ClaimStatus::PartiallyPaid,
    ClaimStatus::Denied,
    ClaimStatus::Forwarded,
];

/// Open claims and their billed dollars by submission day, for A/R aging.
#[derive(Debug, Default)]
pub struct ArAging {
    by_day: BTreeMap<EpochDay, (i64, i64)>,
}

impl ArAging {
    fn add(&mut self, day: EpochDay, claims: i64, cents: i64) {
        let e = self.by_day.entry(day).or_default();
        e.0 += claims;
        e.1 += cents;
        if *e == (0, 0) {
            self.by_day.remove(&day);
        }
    }

    /// (claims, cents) per aging bucket as of `today`, each clamped at zero.
    pub fn buckets(&self, today: EpochDay) -> [(i64, i64); 5] {
        let mut out = [(0i64, 0i64); 5];
        for (day, (n, cents)) in &self.by_day {
            let b = ar_bucket_index(today - day);
            out[b].0 += n;
            out[b].1 += cents;
        }
        out.map(|(n, c)| (n.max(0), c.max(0)))
    }
}

pub(crate) struct Kpi {
    /// `status`, `department`.
    by_status: IntGaugeVec,
    transitions: Vec<IntCounter>,
    adjudications: Vec<IntCounter>,
    first_pass: Vec<IntCounter>,
    time_to_ack: [Histogram; P],
    time_to_payment: [Histogram; P],
    denied_dollars: Vec<Option<Counter>>,
    /// `payer_category`, `denial_category`, `department`.
    denials: IntCounterVec,
    adjustment_dollars: [Counter; 6],
    variance: [Histogram; P],
    underpaid: [Counter; P],
    ar_claims: [IntGauge; 5],
    ar_dollars: [Gauge; 5],
    aging: Mutex<ArAging>,

    /// `action`, `hrrp_cohort`, `planned`, `department`.
    readmissions: IntCounterVec,
    departments: Bounded,
    readmit_interval: Histogram,
    high_risk_alerts: IntCounter,
    payer_kpi_windows: [IntCounter; 6],
    /// Payer monitor alerts by rule (`MonitorRule::ALL`) x payer category.
    monitor_alerts: Vec<IntCounter>,
    /// Payer facts dropped as older than the monitor retention, by granularity x payer category.
    monitor_dropped: Vec<IntCounter>,
    /// Paid amounts dropped by the PMPM flow for a closed service month.
    pmpm_paid_dropped: IntCounter,
    pub(crate) enrollment_dropped: IntCounter,
    /// Vaccine doses dropped by the care-gap flow for a settled season.
    care_gap_doses_dropped: IntCounter,
    costs_dropped: IntCounter,

    model_info: IntGaugeVec,
    model_versions: RwLock<[Option<String>; 2]>,
    model_fallback: [IntGauge; 2],
    scores: Vec<IntCounter>,
    predicted: [Histogram; 2],
    model_quality: [GaugeVec; 3],
    /// The monitoring windows of the partitions and the reload counters.
    pub(crate) monitor: super::model::ModelMetrics,
    /// Immunization care-gap programme metrics.
    care_gaps: super::caregaps::CareGapMetrics,
}

impl Kpi {
    pub(crate) fn new(r: &Registry) -> Result<Self, MetricsError> {
        let statuses: [&str; S] = ClaimStatus::ALL.map(|s| s.as_str());
        let by_status_vec = gauge_vec(
            r,
            "claimwatch_claims_by_status",
            "Claims whose latest status is this one (net of the status transitions this instance observed), by department.",
            &["status", "department"],
        )?;
        for s in statuses {
            // Zeros before the first claim, so that dashboards show every status.
            by_status_vec.with_label_values(&[s, UNKNOWN]);
        }
        let transitions_vec = counter_vec(
            r,
            "claimwatch_claims_status_transitions_total",
            "Claims entering a lifecycle status, by status and payer category.",
            &["status", "payer_category"],
        )?;
        let mut transitions = Vec::with_capacity(S * P);
        for s in statuses {
            for p in PAYER_CATEGORIES {
                transitions.push(transitions_vec.with_label_values(&[s, p]));
            }
        }
        let adj_vec = counter_vec(
            r,
            "claimwatch_claims_adjudications_total",
            "Adjudication decisions (a remittance moving a claim to PAID, PARTIALLY_PAID, DENIED or FORWARDED), by payer category and outcome.",
            &["payer_category", "outcome"],
        )?;
        let mut adjudications = Vec::with_capacity(P * ADJUDICATED.len());
        for p in PAYER_CATEGORIES {
            for s in ADJUDICATED {
                adjudications.push(adj_vec.with_label_values(&[p, s.as_str()]));
            }
        }
        let fp_vec = counter_vec(
            r,
            "claimwatch_claims_first_pass_total",
            "Claims at their first remittance, by payer category and outcome: paid (first-pass yield) or not_paid (rejected, replaced or denied first).",
            &["payer_category", "outcome"],
        )?;
        let mut first_pass = Vec::with_capacity(P * 2);
        for p in PAYER_CATEGORIES {
            for o in ["not_paid", "paid"] {
                first_pass.push(fp_vec.with_label_values(&[p, o]));
            }
        }
        let tta = histogram_vec(
            r,
            "claimwatch_claims_time_to_ack_seconds",
            "Submission to first 277CA acknowledgment (business days of the claim, in seconds), by payer category.",
            &["payer_category"],
            &DAY_BUCKETS,
        )?;
        let ttp = histogram_vec(
            r,
            "claimwatch_claims_time_to_payment_seconds",
            "Submission to first payment (business days of the claim, in seconds), by payer category.",
            &["payer_category"],
            &DAY_BUCKETS,
        )?;
        let denied_vec = float_counter_vec(
            r,
            "claimwatch_revenue_denied_dollars_total",
            "Dollars adjusted under a denial CARC category at adjudication, by payer category and denial category.",
            &["payer_category", "denial_category"],
        )?;
        let denials_vec = counter_vec(
            r,
            "claimwatch_revenue_denials_total",
            "Claims denied in full or in part at adjudication, by payer category, the category of the largest denial and department.",
            &["payer_category", "denial_category", "department"],
        )?;
        let mut denied_dollars = Vec::with_capacity(P * C);
        for p in PAYER_CATEGORIES {
            for c in CarcCategory::ALL {
                let denial = c.is_denial();
                denied_dollars.push(denial.then(|| denied_vec.with_label_values(&[p, c.as_str()])));
                if denial {
                    denials_vec.with_label_values(&[p, c.as_str(), UNKNOWN]);
                }
            }
        }
        let adj_dollars = float_counter_vec(
            r,
            "claimwatch_revenue_adjustment_dollars_total",
            "Dollars adjusted at adjudication, by CAS group (CARC group: CO, PR, OA, PI, CR).",
            &["carc_group"],
        )?;
        let var = histogram_vec(
            r,
            "claimwatch_revenue_payment_variance_dollars",
            "Paid plus patient responsibility minus the expected (contracted) amount at adjudication; negative = underpaid.",
            &["payer_category"],
            &VARIANCE_BUCKETS,
        )?;
        let under = float_counter_vec(
            r,
            "claimwatch_revenue_underpaid_dollars_total",
            "Dollars paid under the expected amount at adjudication, by payer category.",
            &["payer_category"],
        )?;
        let ar_claims = gauge_vec(
            r,
            "claimwatch_revenue_ar_open_claims",
            "Open (not yet closed) claims by days since submission, as of the event-time watermark.",
            &["age_bucket"],
        )?;
        let ar_dollars = float_gauge_vec(
            r,
            "claimwatch_revenue_ar_outstanding_dollars",
            "Billed dollars of open claims by days since submission, as of the event-time watermark.",
            &["age_bucket"],
        )?;

        let readmit_vec = counter_vec(
            r,
            "claimwatch_readmissions_events_total",
            "30-day readmission events, by action (DETECTED, UPDATED, RETRACTED), HRRP cohort and department of the index stay, and planned flag.",
            &["action", "hrrp_cohort", "planned", "department"],
        )?;
        for a in READMISSION_ACTIONS {
            for c in HRRP_COHORTS {
                for planned in ["false", "true"] {
                    readmit_vec.with_label_values(&[a, c, planned, UNKNOWN]);
                }
            }
        }
        let readmit_interval = histogram(
            r,
            "claimwatch_readmissions_interval_seconds",
            "Index discharge to unplanned readmission, for detected readmissions (days, in seconds).",
            &READMIT_BUCKETS,
        )?;
        let high_risk_alerts = counter(
            r,
            "claimwatch_care_high_risk_alerts_total",
            "High-risk discharge alerts emitted to care management.",
        )?;
        let kpi_vec = counter_vec(
            r,
            "claimwatch_payer_kpi_windows_total",
            "Payer KPI windows emitted (claimwatch.payer-kpis), by payer category.",
            &["payer_category"],
        )?;
        let alerts_vec = counter_vec(
            r,
            "claimwatch_payer_monitor_alerts_total",
            "Payer monitor alerts emitted (claimwatch.alerts.payer-monitor), by rule and payer category.",
            &["rule", "payer_category"],
        )?;
        let dropped_vec = counter_vec(
            r,
            "claimwatch_payer_monitor_facts_dropped_total",
            "Payer facts dropped because their window was older than the monitor retention, by window granularity and payer category.",
            &["granularity", "payer_category"],
        )?;
        let monitor_alerts = MonitorRule::ALL
            .iter()
            .flat_map(|rule| {
                PAYER_CATEGORIES[..6]
                    .iter()
                    .map(|p| alerts_vec.with_label_values(&[rule.as_str(), p]))
            })
            .collect();
        let pmpm_paid_dropped = counter(
            r,
            "claimwatch_pmpm_paid_dropped_total",
            "Paid amounts dropped by the PMPM flow because their service month was closed for the member (more than 24 months before the member's latest paid amount, or, for a member no longer in state, before the partition's watermark).",
        )?;
        let enrollment_dropped = counter(
            r,
            "claimwatch_pmpm_enrollment_dropped_total",
            "Enrolment records dropped because they reached a member no longer in state and describe a span that ended in a month closed at the partition's watermark (more than 24 months before it).",
        )?;
        let costs_dropped = counter(
            r,
            "claimwatch_readmissions_costs_dropped_total",
            "Encounter paid amounts (re-keyed from the claim flow) dropped because they reached a member no longer in state and their event time is more than member_lookback_days before the partition's watermark: the stays they belong to have left the look-back, so no readmission record or cost figure takes them. Non-zero mostly in a backfill in which a partition runs ahead of the claim partitions by more than the look-back.",
        )?;
        let care_gap_doses_dropped = counter(
            r,
            "claimwatch_care_gap_doses_dropped_total",
            "Vaccine doses dropped by the care-gap flow because they could count only for seasons settled for the member (ended more than 365 days before its evaluation clock).",
        )?;
        let monitor_dropped = Granularity::ALL
            .iter()
            .flat_map(|g| {
                PAYER_CATEGORIES[..6]
                    .iter()
                    .map(|p| dropped_vec.with_label_values(&[g.as_str(), p]))
            })
            .collect();

        let model_info = gauge_vec(
            r,
            "claimwatch_model_info",
            "Always 1; the model version that scored the latest output of each model.",
            &["model", "version"],
        )?;
        let fallback = gauge_vec(
            r,
            "claimwatch_model_fallback_active",
            "1 when the latest score of the model came from the base-rate fallback (no trained model loaded).",
            &["model"],
        )?;
        let scores_vec = counter_vec(
            r,
            "claimwatch_model_scores_total",
            "Scores emitted, by model and risk tier.",
            &["model", "tier"],
        )?;
        let mut scores = Vec::with_capacity(6);
        for m in MODELS {
            for t in RISK_TIERS {
                scores.push(scores_vec.with_label_values(&[m, t]));
            }
        }
        let predicted = histogram_vec(
            r,
            "claimwatch_model_predicted_risk_ratio",
            "Predicted probabilities, by model.",
            &["model"],
            &PROBABILITY_BUCKETS,
        )?;
        let auc = float_gauge_vec(
            r,
            "claimwatch_model_auc_ratio",
            "Rolling ROC AUC of the model against observed outcomes.",
            &["model"],
        )?;
        let ece = float_gauge_vec(
            r,
            "claimwatch_model_calibration_error_ratio",
            "Rolling expected calibration error of the model.",
            &["model"],
        )?;
        let psi = float_gauge_vec(
            r,
            "claimwatch_model_feature_drift_psi",
            "Largest population stability index of the model's features against training.",
            &["model"],
        )?;
        for m in MODELS {
            // Present from the start so the dashboard and the drift alerts see the series; NaN
            // until the scoring stage reports.
            auc.with_label_values(&[m]).set(f64::NAN);
            ece.with_label_values(&[m]).set(f64::NAN);
            psi.with_label_values(&[m]).set(f64::NAN);
        }
        let monitor = super::model::ModelMetrics::new(r, auc.clone(), ece.clone(), psi.clone())?;

        Ok(Self {
            by_status: by_status_vec,
            transitions,
            adjudications,
            first_pass,
            time_to_ack: resolve(&PAYER_CATEGORIES, |p| tta.with_label_values(&[p])),
            time_to_payment: resolve(&PAYER_CATEGORIES, |p| ttp.with_label_values(&[p])),
            denied_dollars,
            denials: denials_vec,
            adjustment_dollars: resolve(&CARC_GROUPS, |g| adj_dollars.with_label_values(&[g])),
            variance: resolve(&PAYER_CATEGORIES, |p| var.with_label_values(&[p])),
            underpaid: resolve(&PAYER_CATEGORIES, |p| under.with_label_values(&[p])),
            ar_claims: resolve(&AR_BUCKETS, |b| ar_claims.with_label_values(&[b])),
            ar_dollars: resolve(&AR_BUCKETS, |b| ar_dollars.with_label_values(&[b])),
            aging: Mutex::new(ArAging::default()),
            readmissions: readmit_vec,
            departments: Bounded::new(DEPARTMENT_CAP, DEPARTMENT_MAX_LEN),
            readmit_interval,
            high_risk_alerts,
            payer_kpi_windows: std::array::from_fn(|i| {
                kpi_vec.with_label_values(&[PAYER_CATEGORIES[i]])
            }),
            monitor_alerts,
            monitor_dropped,
            pmpm_paid_dropped,
            enrollment_dropped,
            care_gap_doses_dropped,
            costs_dropped,
            model_info,
            model_versions: RwLock::new([None, None]),
            model_fallback: resolve(&MODELS, |m| fallback.with_label_values(&[m])),
            scores,
            predicted: resolve(&MODELS, |m| predicted.with_label_values(&[m])),
            model_quality: [auc, ece, psi],
            monitor,
            care_gaps: super::caregaps::CareGapMetrics::new(r)?,
        })
    }

    pub(crate) fn observe(&self, event: &OutputEvent) {
        match event {
            OutputEvent::ClaimLifecycle(u) => self.claim(u),
            OutputEvent::Readmission(e) => self.readmission(e),
            OutputEvent::DenialRisk(s) => {
                self.score(0, &s.model_version, s.fallback, s.tier, s.probability)
            }
            OutputEvent::ReadmissionRisk(s) => {
                self.score(1, &s.model_version, s.fallback, s.tier, s.probability)
            }
            OutputEvent::HighRiskAlert(_) => self.high_risk_alerts.inc(),
            OutputEvent::PayerKpi(k) => self.payer_kpi_windows[k.payer_category as usize].inc(),
            OutputEvent::PayerMonitorAlert(a) => {
                self.monitor_alerts[a.rule as usize * 6 + a.payer_category as usize].inc()
            }
            OutputEvent::DeadLetter(_)
            | OutputEvent::ReadmissionSummary(_)
            | OutputEvent::InterventionRoi(_) => {}
            OutputEvent::CareGap(g) => self.care_gaps.observe(g),
            OutputEvent::MemberRisk(_) => {}
            OutputEvent::CashForecast(_) => {}
            OutputEvent::ProviderKpi(_) => {}
            OutputEvent::UtilizationForecast(_) => {}
        }
    }

    /// The `department` label value of a claim's or a stay's department.
    fn department<'a>(&self, d: Option<&'a str>) -> &'a str {
        d.map_or(UNKNOWN, |d| self.departments.get(d))
    }

    /// Counts payer facts dropped as too late (`dropped[granularity][payer category]`, the
    /// counts of [`crate::core::PartitionStats::monitor_facts_dropped`] since the last call).
    pub(crate) fn monitor_facts_dropped(&self, dropped: &[[u64; 6]; 2]) {
        for (g, row) in dropped.iter().enumerate() {
            for (p, n) in row.iter().enumerate() {
                if *n > 0 {
                    self.monitor_dropped[g * 6 + p].inc_by(*n);
                }
            }
        }
    }

    /// Counts re-keyed records dropped as too late for their member's retention (the increases
    /// since the last call).
    pub(crate) fn late_drops(&self, pmpm_paid: u64, care_gap_doses: u64, costs: u64) {
        self.pmpm_paid_dropped.inc_by(pmpm_paid);
        self.care_gap_doses_dropped.inc_by(care_gap_doses);
        self.costs_dropped.inc_by(costs);
    }

    fn claim(&self, u: &ClaimLifecycleUpdate) {
        let p = payer_index(u.payer_category);
        let status = u.status;
        let changed = u.previous_status != Some(status);
        let dept = self.department(u.department.as_deref());
        // The department comes with the submission: an update that brings the first submission
        // of a claim already seen (acknowledged or remitted first) moves the claim out of
        // UNKNOWN. (A replacement that changes the department keeps the claim under the old one
        // until its next status change: rare, and the sum over departments stays right.)
        let prev_dept = if u.cause == UpdateCause::Submission && u.submission_count == 1 {
            UNKNOWN
        } else {
            dept
        };
        if changed {
            self.by_status
                .with_label_values(&[status.as_str(), dept])
                .inc();
            self.transitions[status_index(status) * P + p].inc();
            if let Some(prev) = u.previous_status {
                self.by_status
                    .with_label_values(&[prev.as_str(), prev_dept])
                    .dec();
            }
        } else if prev_dept != dept {
            self.by_status
                .with_label_values(&[status.as_str(), dept])
                .inc();
            self.by_status
                .with_label_values(&[status.as_str(), prev_dept])
                .dec();
        }
        self.age(u, changed);
        if u.cause == UpdateCause::Submission && u.submission_count == 1 {
            self.late_submission(u, p, dept);
            return;
        }
        if u.cause == UpdateCause::Acknowledgment && u.ack_count == 1 {
            if let Some(d) = u.days_to_ack {
                self.time_to_ack[p].observe(f64::from(d.max(0)) * DAY_S);
            }
        }
        if u.cause != UpdateCause::Remittance {
            return;
        }
        if u.remit_count == 1 {
            if let Some(paid) = u.first_pass_paid {
                self.first_pass[p * 2 + usize::from(paid)].inc();
            }
        }
        if !changed {
            return;
        }
        let paid_now = matches!(status, ClaimStatus::Paid | ClaimStatus::PartiallyPaid);
        // A claim paid again after a reversal (CLP02 22 reverses a payment) was paid before.
        let paid_before = matches!(
            u.previous_status,
            Some(ClaimStatus::Paid | ClaimStatus::PartiallyPaid | ClaimStatus::Reversed)
        );
        if paid_now && !paid_before {
            if let Some(d) = u.days_to_first_payment {
                self.time_to_payment[p].observe(f64::from(d.max(0)) * DAY_S);
            }
        }
        let Some(outcome) = ADJUDICATED.iter().position(|s| *s == status) else {
            return;
        };
        self.adjudications[p * ADJUDICATED.len() + outcome].inc();
        for a in &u.adjustments_by_group {
            add_cents(
                &self.adjustment_dollars[carc_group_index(&a.code)],
                a.amount_cents,
            );
        }
        if matches!(status, ClaimStatus::Denied | ClaimStatus::PartiallyPaid) {
            for a in &u.adjustments_by_category {
                if let Some(c) = &self.denied_dollars[p * C + carc_category_index(&a.code)] {
                    add_cents(c, a.amount_cents);
                }
            }
            // Without a submission yet, the denial is counted when it arrives.
            if u.submission_count > 0 {
                self.denial(u, p, dept);
            }
        }
        self.variance(u, p);
    }

    /// The first submission of a claim. Normally nothing has happened to the claim yet; when its
    /// acknowledgment or remittance came first, what they could not observe without the
    /// submission is observed now, from the claim's state.
    fn late_submission(&self, u: &ClaimLifecycleUpdate, p: usize, dept: &str) {
        if u.ack_count > 0 {
            if let Some(d) = u.days_to_ack {
                self.time_to_ack[p].observe(f64::from(d.max(0)) * DAY_S);
            }
        }
        if u.remit_count == 0 {
            return;
        }
        if let Some(d) = u.days_to_first_payment {
            self.time_to_payment[p].observe(f64::from(d.max(0)) * DAY_S);
        }
        if !ADJUDICATED.contains(&u.status) {
            return;
        }
        if matches!(u.status, ClaimStatus::Denied | ClaimStatus::PartiallyPaid) {
            self.denial(u, p, dept);
        }
        self.variance(u, p);
    }

    /// A claim denied in full or in part, under its largest denial category.
    fn denial(&self, u: &ClaimLifecycleUpdate, p: usize, dept: &str) {
        if let Some(cat) = &u.denial_category {
            let c = CarcCategory::ALL[carc_category_index(cat)];
            if c.is_denial() {
                self.denials
                    .with_label_values(&[PAYER_CATEGORIES[p], c.as_str(), dept])
                    .inc();
            }
        }
    }

    /// Expected-vs-paid variance of an adjudicated claim (absent without an expected amount).
    fn variance(&self, u: &ClaimLifecycleUpdate, p: usize) {
        if let Some(v) = u.variance_cents {
            self.variance[p].observe(v as f64 / 100.0);
            add_cents(&self.underpaid[p], -v);
        }
    }

    /// A/R aging: a claim enters when it is open with a known submission date and leaves when it
    /// closes. The submission date is known from the claim's first submission on; when that
    /// submission arrives after an acknowledgment already opened the claim (the "submission
    /// missing" case), the claim enters then.
    fn age(&self, u: &ClaimLifecycleUpdate, changed: bool) {
        let Some(day) = u.submitted_date else {
            return;
        };
        let was_open = u.previous_status.is_some_and(|s| !s.is_closed());
        let is_open = !u.status.is_closed();
        let late_submission =
            u.cause == UpdateCause::Submission && u.submission_count == 1 && was_open && is_open;
        let sign = if late_submission {
            1
        } else if changed && was_open != is_open {
            if is_open {
                1
            } else {
                -1
            }
        } else {
            return;
        };
        let mut a = self.aging.lock().unwrap_or_else(|e| e.into_inner());
        a.add(day, sign, sign * u.billed_cents);
    }

    fn readmission(&self, e: &ReadmissionEvent) {
        let a = match e.action {
            ReadmissionAction::Detected => 0,
            ReadmissionAction::Updated => 1,
            ReadmissionAction::Retracted => 2,
        };
        let c = cohort_index(e.hrrp_cohort.as_deref());
        let dept = self.department(Some(e.index_department.as_str()));
        self.readmissions
            .with_label_values(&[
                READMISSION_ACTIONS[a],
                HRRP_COHORTS[c],
                if e.planned { "true" } else { "false" },
                dept,
            ])
            .inc();
        if e.action == ReadmissionAction::Detected && !e.planned {
            self.readmit_interval
                .observe(f64::from(e.days_between.max(0)) * DAY_S);
        }
    }

    fn score(&self, model: usize, version: &str, fallback: bool, tier: RiskTier, p: f64) {
        let t = match tier {
            RiskTier::Low => 0,
            RiskTier::Medium => 1,
            RiskTier::High => 2,
        };
        self.scores[model * RISK_TIERS.len() + t].inc();
        if p.is_finite() {
            self.predicted[model].observe(p);
        }
        self.model_fallback[model].set(i64::from(fallback));
        let known = {
            let v = self
                .model_versions
                .read()
                .unwrap_or_else(|e| e.into_inner());
            v[model].as_deref() == Some(version)
        };
        if !known {
            // A new model version: rare (a deploy or a reload), so the allocation is fine here.
            let mut v = self
                .model_versions
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let version = if version.len() <= 64 && !version.is_empty() {
                version
            } else {
                labels::OTHER
            };
            if let Some(old) = v[model].take() {
                let _ = self.model_info.remove_label_values(&[MODELS[model], &old]);
            }
            self.model_info
                .with_label_values(&[MODELS[model], version])
                .set(1);
            v[model] = Some(version.to_owned());
        }
    }

    pub(crate) fn set_model_quality(&self, model: &str, auc: f64, ece: f64, psi: f64) {
        if !MODELS.contains(&model) {
            return;
        }
        for (g, v) in self.model_quality.iter().zip([auc, ece, psi]) {
            g.with_label_values(&[model]).set(v);
        }
    }

    /// Recomputes the A/R aging gauges as of the event-time watermark, and the model monitoring
    /// gauges from the partitions' windows.
    pub(crate) fn refresh(&self, watermark_ms: i64) {
        self.monitor.refresh();
        if watermark_ms == i64::MIN {
            return;
        }
        let today = day_of(watermark_ms);
        let buckets = self
            .aging
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets(today);
        for (i, (n, cents)) in buckets.into_iter().enumerate() {
            self.ar_claims[i].set(n);
            self.ar_dollars[i].set(cents as f64 / 100.0);
        }
    }
}

/// An output's event time, whether wall-clock latency means anything for it (not for timer
/// deadlines or window ends), and whether it moves the event-time watermark.
pub(crate) fn event_time(e: &OutputEvent) -> (i64, bool, bool) {
    match e {
        OutputEvent::ClaimLifecycle(u) => (u.event_time, u.cause != UpdateCause::Timer, true),
        OutputEvent::Readmission(r) => (r.event_time, true, true),
        OutputEvent::DeadLetter(d) => (d.event_time, true, false),
        OutputEvent::DenialRisk(s) => (s.event_time, true, false),
        OutputEvent::ReadmissionRisk(s) => (s.event_time, true, false),
        OutputEvent::HighRiskAlert(a) => (a.event_time, true, false),
        OutputEvent::PayerKpi(k) => (k.window_end, false, false),
        OutputEvent::PayerMonitorAlert(a) => (a.window_end, false, false),
        OutputEvent::ReadmissionSummary(r) => (r.event_time, false, false),
        OutputEvent::InterventionRoi(r) => (r.event_time, false, false),
        OutputEvent::CareGap(g) => (g.event_time, false, false),
        OutputEvent::MemberRisk(m) => (m.event_time, false, false),
        OutputEvent::CashForecast(c) => (c.event_time, false, false),
        OutputEvent::ProviderKpi(k) => (k.event_time, false, false),
        OutputEvent::UtilizationForecast(u) => (u.event_time, false, false),
    }
}
