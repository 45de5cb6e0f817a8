//! Configuration of the core. One serde tree, units in the names, a named default function per
//! number saying where it comes from, and `validate()` reporting every problem at once.

use serde::{Deserialize, Serialize};

/// Settings of the transport-free core (reconciliation, readmissions, state, timers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreConfig {
    /// Partitions of the keyed flows. Replay hashes keys into this many partitions exactly as the
    /// Kafka producer does (murmur2), so replay and the service keep the same per-partition order.
    pub partitions: u32,
    /// A claim without any 277CA this many days (event time) after submission is flagged
    /// `MISSING_ACK`.
    pub ack_timeout_days: u32,
    /// A claim without any 835 this many days after submission is flagged `MISSING_REMIT`.
    pub remit_timeout_days: u32,
    /// A closed claim (paid, denied, rejected, voided, forwarded) leaves state this many days after
    /// its last event.
    pub closed_claim_retention_days: u32,
    /// Any claim leaves state this many days after its last event.
    pub open_claim_retention_days: u32,
    /// A claim that left state by retention keeps its output version this many days longer (~240
    /// heap bytes), so a record for it arriving later (a recoupment, a late corrected claim)
    /// continues its versions instead of re-using `<claim>:1`, ... 0 keeps no version.
    pub claim_version_retention_days: u32,
    /// Member stays older than this (by discharge, against the watermark) leave state.
    pub member_lookback_days: u32,
    /// Readmission window after the index discharge.
    pub readmission_window_days: u32,
    /// Take a durable checkpoint after this many events per partition.
    pub checkpoint_every_events: u64,
    /// Risk scoring: tiers, rolling history, alert interventions (see [`ScoringConfig`]).
    pub scoring: ScoringConfig,
    /// Payer denial monitors: windows, grace, retention, drift baseline, alert thresholds.
    pub monitor: MonitorConfig,
    /// Population analytics: readmission summary and intervention ROI (`population` module).
    pub population: PopulationConfig,
    /// Immunization care gaps (`claimwatch.care-gaps`).
    pub care_gaps: CareGapConfig,
    /// De-identification of member-level analytics topics.
    pub deidentify: DeidentifyConfig,
    /// High-cost members (`claimwatch.member-risk`, `memberrisk` module).
    pub member_risk: MemberRiskConfig,
    /// Cash-flow forecast per payer and ISO week (`claimwatch.cash-forecast`).
    pub cash_forecast: CashForecastConfig,
    /// Provider and department KPIs (`claimwatch.provider-kpis`, `providers` module).
    pub provider_kpis: ProviderKpiConfig,
    /// Utilization forecast per facility and service line (`claimwatch.utilization-forecast`,
    /// `utilization` module).
    pub utilization: UtilizationConfig,
}

/// Settings of the utilization forecast (`utilization` module).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UtilizationConfig {
    /// Count admissions and ED visits per facility and service line and emit
    /// `claimwatch.utilization-forecast`.
    pub enabled: bool,
    /// Weeks forecast after each closed week (1..=12).
    pub horizon_weeks: u32,
    /// Closed weeks of history the forecast is made from, the latest last (4..=104).
    pub history_weeks: u32,
    /// No forecast is made from fewer closed weeks than this (2..=history_weeks).
    pub min_history_weeks: u32,
    /// Smoothing constant of the exponential smoothing (0 < alpha <= 1).
    pub alpha: f64,
    /// A week closes when the utilization flow's time minus this lateness passes its end.
    pub lateness_hours: u32,
    /// Closed weeks in a record's rolling accuracy (1..=104).
    pub accuracy_weeks: u32,
}

impl Default for UtilizationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // The issue asks for the next 4 weeks.
            horizon_weeks: 4,
            // A quarter: long enough for a stable level and dispersion, short enough to follow
            // a drifting volume.
            history_weeks: 13,
            min_history_weeks: 4,
            // A common default for weekly demand series (Hyndman & Athanasopoulos, FPP3 8.1:
            // small alpha, more weight on the past); about a 9-week effective memory.
            alpha: 0.2,
            // Encounter records of a day arrive within it; two days of grace like the monitor's
            // daily windows (`monitor.daily_grace_hours`).
            lateness_hours: 48,
            // A quarter of weekly comparisons.
            accuracy_weeks: 13,
        }
    }
}

/// Settings of the high-cost member flag (`memberrisk` module).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemberRiskConfig {
    /// Predict members' next-period cost and emit `claimwatch.member-risk`.
    pub enabled: bool,
    /// A member is flagged when the prediction is in the top this many percent.
    pub top_percent: f64,
    /// No member is flagged before the partition's sketch holds this many members (a threshold
    /// over a handful of predictions is noise).
    pub min_members: u32,
    /// Drivers (largest contributions) in each record.
    pub drivers: u32,
}

impl Default for MemberRiskConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // The top 5 % of members typically account for about half of spending (AHRQ MEPS).
            top_percent: 5.0,
            min_members: 200,
            drivers: 3,
        }
    }
}

/// Settings of the cash-flow forecast (`cashflow` module).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CashForecastConfig {
    /// Send claims' cash facts to the payer flow and emit `claimwatch.cash-forecast`.
    pub enabled: bool,
    /// Weeks in a record's forward forecast (the current week first).
    pub horizon_weeks: u32,
    /// A payer's weeks and open-claim submission days leave state this many weeks before the
    /// payer's flow day; facts for them are then dropped (and counted). Must cover the
    /// days-to-payment histogram (121 days).
    pub retention_weeks: u32,
}

impl Default for CashForecastConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // Two months: the payment lags of the generated payers (14-45 days) and of most
            // commercial payers fit in it.
            horizon_weeks: 8,
            // Half a year: past the 121-day histogram, so no open claim that can still be placed
            // is dropped.
            retention_weeks: 26,
        }
    }
}

impl CashForecastConfig {
    fn validate(&self, problems: &mut Vec<String>) {
        if self.horizon_weeks == 0 || self.horizon_weeks > 52 {
            problems.push("cash_forecast.horizon_weeks must be 1..=52".into());
        }
        if self.retention_weeks < 18 {
            problems.push(
                "cash_forecast.retention_weeks must be at least 18 (the 121-day histogram)".into(),
            );
        }
    }
}

/// Settings of the provider and department KPIs (`providers` module).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderKpiConfig {
    /// Emit `claimwatch.provider-kpis` (the readmission figures need `population.enabled`).
    pub enabled: bool,
    /// Rolling event-time windows, days (each 1..=3650; one `windows` entry per record each).
    pub windows: Vec<u32>,
    /// Expected readmissions (sum of probabilities) below which a window is never flagged,
    /// whatever its confidence interval.
    pub min_expected: f64,
}

impl Default for ProviderKpiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            windows: vec![30, 90],
            min_expected: 5.0,
        }
    }
}

/// Settings of the population analytics (`population` module).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopulationConfig {
    /// Track matured index stays and emit `claimwatch.readmission-summary` /
    /// `claimwatch.intervention-roi` (needs `scoring.enabled`: the probabilities are the scores').
    pub enabled: bool,
}

impl Default for PopulationConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Settings of the immunization care gaps (`caregaps` module).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CareGapConfig {
    /// Track care gaps and emit `claimwatch.care-gaps`.
    pub enabled: bool,
    /// The first day (`YYYY-MM-DD`) from which vaccine claims are complete. A seasonal gap is only
    /// evaluated for seasons whose window opens on or after it: a dose given before the history
    /// starts cannot be seen, and the gap would be false. Absent: every season.
    pub history_start: Option<String>,
    /// A member's care-gap state leaves state this many days after the member's last event.
    pub retention_days: u32,
}

impl Default for CareGapConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            history_start: None,
            // Two influenza seasons: a member not seen for two years is no longer followed.
            retention_days: 730,
        }
    }
}

impl CareGapConfig {
    /// `history_start` as a day number (validated by [`CoreConfig::validate`]).
    pub fn history_start_day(&self) -> Option<crate::model::EpochDay> {
        self.history_start
            .as_deref()
            .and_then(crate::model::parse_day)
    }
}

/// A secret that never shows in `Debug` output (logs, error messages).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// De-identification of member-level analytics outputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeidentifyConfig {
    /// When set, the member id in care-gap records (record key and body) is replaced by
    /// `hex(HMAC-SHA256(secret, member id))`, a stable pseudonym an analytics team can join on
    /// without seeing identities. The high-risk discharge alerts keep the real id.
    pub pseudonym_secret: Option<Secret>,
}

impl DeidentifyConfig {
    /// The pseudonym key as bytes, when pseudonymisation is on.
    pub fn secret_bytes(&self) -> Option<Vec<u8>> {
        self.pseudonym_secret
            .as_ref()
            .map(|s| s.0.as_bytes().to_vec())
    }
}

/// Settings of the payer denial monitors (`monitor` module).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Derive payer facts and emit `claimwatch.payer-kpis` / `claimwatch.alerts.payer-monitor`.
    pub enabled: bool,
    /// An hourly window is emitted when the payer flow's watermark passes its end plus this.
    pub hourly_grace_minutes: u32,
    /// A daily window is emitted when the watermark passes its end plus this.
    pub daily_grace_hours: u32,
    /// A window is kept (and corrected by late facts) until the watermark passes its end plus
    /// this; a fact for an older window is dropped and counted.
    pub retention_days: u32,
    /// Drift baseline: the payer's daily windows among this many days before the window.
    pub baseline_days: u32,
    /// The denial-rate z-score needs at least this many adjudications in the baseline.
    pub min_baseline_adjudicated: u32,
    /// The CARC-mix test needs at least this many categorised denials in the baseline ...
    pub min_baseline_denials: u32,
    /// ... and at least this many in the window.
    pub min_mix_denials: u32,
    /// Thresholds of the monitor alerts.
    pub alerts: MonitorAlertConfig,
}

/// Thresholds of `claimwatch.alerts.payer-monitor` (evaluated on daily windows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorAlertConfig {
    /// FIRST_PASS_YIELD_LOW when first-pass yield is below this ...
    pub min_first_pass_yield: f64,
    /// ... and the window has at least this many first adjudications.
    pub min_first_pass_volume: u32,
    /// DENIAL_RATE_SPIKE when the denial-rate z-score is at least this.
    pub denial_rate_z: f64,
    /// CARC_MIX_SHIFT when the CARC-mix chi-squared p-value is below this.
    pub carc_mix_p_value: f64,
}

impl Default for MonitorAlertConfig {
    fn default() -> Self {
        Self {
            // DOMAIN.md §1: first-pass yield benchmark 85-95 %; below 85 % is the usual alert.
            min_first_pass_yield: 0.85,
            // Under ~20 claims a single denial moves the yield by 5 points.
            min_first_pass_volume: 20,
            // Three standard errors: about 1 false alarm in 740 payer-days under the null.
            denial_rate_z: 3.0,
            // Nine categories are tested per payer-day: a strict cut keeps false alarms rare.
            carc_mix_p_value: 0.001,
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // Acks and remittances of one hour usually arrive within the next; two hours of grace.
            hourly_grace_minutes: 120,
            // 835 files are often delivered a day or two after their payment date.
            daily_grace_hours: 48,
            // A month of corrections plus slack; must cover the drift baseline.
            retention_days: 35,
            // Four weeks: every weekday four times.
            baseline_days: 28,
            min_baseline_adjudicated: 100,
            min_baseline_denials: 50,
            min_mix_denials: 20,
            alerts: MonitorAlertConfig::default(),
        }
    }
}

impl MonitorConfig {
    fn validate(&self, problems: &mut Vec<String>) {
        if self.retention_days <= self.baseline_days {
            problems.push("monitor.retention_days must exceed monitor.baseline_days".into());
        }
        if u64::from(self.daily_grace_hours) >= u64::from(self.retention_days) * 24
            || u64::from(self.hourly_grace_minutes) >= u64::from(self.retention_days) * 24 * 60
        {
            problems
                .push("monitor grace periods must be shorter than monitor.retention_days".into());
        }
        let a = &self.alerts;
        if !(0.0..=1.0).contains(&a.min_first_pass_yield) {
            problems.push("monitor.alerts.min_first_pass_yield must be within 0..=1".into());
        }
        if !(a.carc_mix_p_value > 0.0 && a.carc_mix_p_value < 1.0) {
            problems.push("monitor.alerts.carc_mix_p_value must be within (0, 1)".into());
        }
        if a.denial_rate_z.is_nan() || a.denial_rate_z <= 0.0 {
            problems.push("monitor.alerts.denial_rate_z must be > 0".into());
        }
    }
}

/// Probability cut-offs of the risk tiers: `p >= high` is HIGH, `p >= medium` is MEDIUM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierThresholds {
    pub medium: f64,
    pub high: f64,
}

/// A care-management intervention recommended on a high-risk discharge alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intervention {
    /// Stable id, the key of `claimwatch.intervention-roi` (default: derived from the name, see
    /// [`Intervention::key`]).
    #[serde(default)]
    pub id: String,
    /// Short name shown on the alert, e.g. "follow-up call within 7 days".
    pub name: String,
    /// Recommended when the readmission probability is at least this (the first matching row of
    /// the table, which is ordered from the most to the least intensive, wins).
    pub min_probability: f64,
    /// Cost per member, in cents.
    pub cost_cents: i64,
    /// Expected relative reduction of the readmission probability (0.2 = 20 % fewer).
    pub expected_relative_reduction: f64,
    /// Where the cost and effect assumption comes from.
    pub source: String,
}

impl Intervention {
    /// The id, or when none is configured the name in lower case with every run of other
    /// characters than letters and digits replaced by one `-`.
    pub fn key(&self) -> String {
        if !self.id.is_empty() {
            return self.id.clone();
        }
        let mut out = String::with_capacity(self.name.len());
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        out.trim_end_matches('-').to_owned()
    }
}

/// Settings of risk scoring (`score` module).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// Score claims at submission and stays at discharge. Off: no risk outputs at all.
    pub enabled: bool,
    /// Tiers of the denial probability.
    pub denial_tiers: TierThresholds,
    /// Tiers of the readmission probability; HIGH raises a high-risk discharge alert.
    pub readmission_tiers: TierThresholds,
    /// Window of the rolling in-stream denial history (payer, provider, code family).
    pub history_window_days: u32,
    /// Pseudo-count of the prior that shrinks a rolling rate towards the overall rate while a key
    /// has few decided claims (a new provider's first denial is not a 100 % denial rate).
    pub history_prior_claims: f64,
    /// Drivers reported per score (largest absolute contributions first).
    pub max_drivers: usize,
    /// Interventions for high-risk discharge alerts, most intensive first.
    pub interventions: Vec<Intervention>,
    /// Keep matured training examples (features at scoring time + label) for `claimwatch train`.
    pub collect_training: bool,
    /// Matured labels per model and partition in the rolling AUC / calibration window
    /// (`score::monitor`: a ring of the last N (score, label) pairs).
    pub monitor_window_labels: u32,
    /// Days of scored events (by event time) in the feature-drift window.
    pub drift_window_days: u32,
}

fn default_denial_tiers() -> TierThresholds {
    // Initial denial rates are 10-15 % (DOMAIN.md §1): MEDIUM from about the base rate, HIGH at
    // roughly 2.5x it, where a pre-submission scrub is worth an analyst's time.
    TierThresholds {
        medium: 0.15,
        high: 0.35,
    }
}

fn default_readmission_tiers() -> TierThresholds {
    // National 30-day readmission rates are 14-20 % (DOMAIN.md §2): MEDIUM from about the base
    // rate, HIGH at about twice it (roughly the top decile of discharges on generated data).
    TierThresholds {
        medium: 0.15,
        high: 0.30,
    }
}

fn default_interventions() -> Vec<Intervention> {
    vec![
        Intervention {
            id: "care-coordination".into(),
            name: "care coordination (transitional care with a nurse navigator for 30 days)".into(),
            min_probability: 0.45,
            cost_cents: 45_000,
            expected_relative_reduction: 0.30,
            source: "assumption from transitional care programme literature (Naylor 2004, Coleman 2006 report 30-50 % fewer readmissions); replace with local figures".into(),
        },
        Intervention {
            id: "medication-reconciliation".into(),
            name: "medication reconciliation by a pharmacist within 72 hours".into(),
            min_probability: 0.35,
            cost_cents: 12_000,
            expected_relative_reduction: 0.15,
            source: "assumption from pharmacist-led reconciliation studies (10-20 % fewer readmissions); replace with local figures".into(),
        },
        Intervention {
            id: "follow-up-call".into(),
            name: "follow-up call within 7 days".into(),
            min_probability: 0.0,
            cost_cents: 2_500,
            expected_relative_reduction: 0.08,
            source: "assumption from post-discharge phone follow-up studies (small effects, 5-10 %); replace with local figures".into(),
        },
    ]
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            denial_tiers: default_denial_tiers(),
            readmission_tiers: default_readmission_tiers(),
            // "Recent" in revenue-cycle dashboards is the last 30 days.
            history_window_days: 30,
            history_prior_claims: 20.0,
            max_drivers: 5,
            interventions: default_interventions(),
            // About a week of matured claims of a small partition; enough for an AUC to within
            // a few hundredths, recent enough to show a degradation within days.
            monitor_window_labels: 5_000,
            // A week: every weekday's mix in the recent population, as PSI checks usually use.
            drift_window_days: 7,
            collect_training: false,
        }
    }
}

impl ScoringConfig {
    fn validate(&self, problems: &mut Vec<String>) {
        for (name, t) in [
            ("denial_tiers", &self.denial_tiers),
            ("readmission_tiers", &self.readmission_tiers),
        ] {
            if !(0.0 < t.medium && t.medium <= t.high && t.high <= 1.0) {
                problems.push(format!(
                    "scoring.{name} must satisfy 0 < medium <= high <= 1, got {} / {}",
                    t.medium, t.high
                ));
            }
        }
        if self.history_window_days == 0 {
            problems.push("scoring.history_window_days must be > 0".into());
        }
        if self.history_prior_claims.is_nan() || self.history_prior_claims < 0.0 {
            problems.push("scoring.history_prior_claims must be >= 0".into());
        }
        if self.monitor_window_labels == 0 {
            problems.push("scoring.monitor_window_labels must be > 0".into());
        }
        if self.drift_window_days == 0 {
            problems.push("scoring.drift_window_days must be > 0".into());
        }
        if self.interventions.is_empty() {
            problems.push("scoring.interventions must have at least one row".into());
        }
        for i in &self.interventions {
            if !(0.0..=1.0).contains(&i.expected_relative_reduction) || i.cost_cents < 0 {
                problems.push(format!(
                    "scoring.interventions '{}': effect must be 0..=1 and cost >= 0",
                    i.name
                ));
            }
        }
    }
}

fn default_ack_timeout_days() -> u32 {
    // DOMAIN.md: acknowledgements come within 1-3 days; two days of slack before alerting.
    5
}
fn default_remit_timeout_days() -> u32 {
    // DOMAIN.md: payment typically 14-45 days after submission.
    45
}
fn default_closed_claim_retention_days() -> u32 {
    // Long enough for a reversal / re-adjudication or an appeal's second 835 to find the claim.
    120
}
fn default_open_claim_retention_days() -> u32 {
    // Timely-filing limits rarely exceed a year; past that an open claim is abandoned.
    400
}
fn default_claim_version_retention_days() -> u32 {
    // Payers recoup overpayments up to a year or more after payment (audits), and providers
    // correct claims within their timely-filing windows (often a year).
    400
}
fn default_member_lookback_days() -> u32 {
    // 12 months of prior utilisation (HOSPITAL: admissions in the prior 12 months).
    365
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            partitions: 4,
            ack_timeout_days: default_ack_timeout_days(),
            remit_timeout_days: default_remit_timeout_days(),
            closed_claim_retention_days: default_closed_claim_retention_days(),
            open_claim_retention_days: default_open_claim_retention_days(),
            claim_version_retention_days: default_claim_version_retention_days(),
            member_lookback_days: default_member_lookback_days(),
            // CMS: unplanned readmission 1-30 days after the index discharge.
            readmission_window_days: 30,
            checkpoint_every_events: 100_000,
            scoring: ScoringConfig::default(),
            monitor: MonitorConfig::default(),
            population: PopulationConfig::default(),
            care_gaps: CareGapConfig::default(),
            deidentify: DeidentifyConfig::default(),
            member_risk: MemberRiskConfig::default(),
            cash_forecast: CashForecastConfig::default(),
            provider_kpis: ProviderKpiConfig::default(),
            utilization: UtilizationConfig::default(),
        }
    }
}

impl CoreConfig {
    /// Turns off the population analytics (readmission summary and ROI, care gaps, high-cost
    /// members, cash forecast, provider KPIs, utilization forecast), keeping the claim lifecycle,
    /// readmissions, risk scores and payer monitors: what the benchmarks compare the full
    /// pipeline with.
    pub fn disable_analytics(&mut self) {
        self.population.enabled = false;
        self.care_gaps.enabled = false;
        self.member_risk.enabled = false;
        self.cash_forecast.enabled = false;
        self.provider_kpis.enabled = false;
        self.utilization.enabled = false;
    }

    /// Every problem, not just the first.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if let Some(h) = &self.care_gaps.history_start {
            if crate::model::parse_day(h).is_none() {
                problems.push(format!("care_gaps.history_start {h:?} is not YYYY-MM-DD"));
            }
        }
        if self.care_gaps.retention_days < 366 {
            problems.push("care_gaps.retention_days must be at least 366 (a season)".into());
        }
        if self
            .deidentify
            .pseudonym_secret
            .as_ref()
            .is_some_and(|s| s.0.len() < 16)
        {
            problems.push("deidentify.pseudonym_secret must be at least 16 bytes".into());
        }
        problems.extend(crate::providers::validate(&self.provider_kpis));
        problems.extend(crate::utilization::validate(&self.utilization));
        if self.partitions == 0 || self.partitions > 4096 {
            problems.push(format!(
                "partitions must be 1..=4096, got {}",
                self.partitions
            ));
        }
        if self.ack_timeout_days == 0 {
            problems.push("ack_timeout_days must be > 0".into());
        }
        if self.remit_timeout_days < self.ack_timeout_days {
            problems.push("remit_timeout_days must be >= ack_timeout_days".into());
        }
        if self.closed_claim_retention_days > self.open_claim_retention_days {
            problems
                .push("closed_claim_retention_days must be <= open_claim_retention_days".into());
        }
        if self.readmission_window_days == 0 {
            problems.push("readmission_window_days must be > 0".into());
        }
        if self.member_lookback_days < self.readmission_window_days + 1 {
            problems.push("member_lookback_days must exceed readmission_window_days".into());
        }
        if self.checkpoint_every_events == 0 {
            problems.push("checkpoint_every_events must be > 0".into());
        }
        self.scoring.validate(&mut problems);
        self.monitor.validate(&mut problems);
        let mr = &self.member_risk;
        if !(mr.top_percent > 0.0 && mr.top_percent < 100.0) {
            problems.push("member_risk.top_percent must be in (0, 100)".into());
        }
        self.cash_forecast.validate(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_problem_is_reported() {
        assert_eq!(CoreConfig::default().validate(), Ok(()));
        let bad = CoreConfig {
            partitions: 0,
            ack_timeout_days: 0,
            readmission_window_days: 0,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().len(), 3);
    }

    #[test]
    fn monitor_settings_are_checked_together() {
        let mut c = CoreConfig::default();
        c.monitor.retention_days = 20; // not more than the 28-day baseline
        c.monitor.alerts.carc_mix_p_value = 0.0;
        c.monitor.alerts.min_first_pass_yield = 1.5;
        assert_eq!(c.validate().unwrap_err().len(), 3);
        let r: Result<CoreConfig, _> =
            serde_json::from_str(r#"{"monitor": {"alerts": {"denial_rate_z": 4.0}}}"#);
        let c = r.unwrap();
        assert_eq!(c.monitor.alerts.denial_rate_z, 4.0);
        assert_eq!(c.monitor.baseline_days, 28, "the rest keeps its defaults");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<CoreConfig, _> =
            serde_json::from_str(r#"{"partitions": 2, "ack_timout_days": 3}"#);
        assert!(r.is_err());
    }
}
