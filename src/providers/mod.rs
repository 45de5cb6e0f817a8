//! Provider and department performance in the stream (`claimwatch.provider-kpis`): per
//! attending/billing provider and per department, rolling event-time windows (30 and 90 days by
//! default) of encounters, average length of stay, paid amount per encounter, share of high-risk
//! index stays, readmission rate with a risk-adjusted comparison (observed / expected from the
//! calibrated model, with a confidence interval), denial rate, first-pass yield, workload
//! (encounters per week) and outcome efficiency (expected - observed readmissions).
//!
//! **Stages** (one module each):
//! - [`facts`] (member flow keyed by member id, and claim flow keyed by claim id): what each
//!   encounter, matured index stay and claim adjudication adds to its provider and department,
//!   as signed [`ProviderFact`](crate::model::ProviderFact)s re-keyed to `provider:<id>` /
//!   `department:<name>` (in Kafka through `claimwatch.internal.provider-facts`). Changes of an
//!   encounter's outcome (late costs, retractions, corrections) are sent as corrections: the old
//!   content with `sign` -1, then the new with +1.
//! - [`aggregate`] (provider flow, keyed by provider/department): integer sums of the facts per
//!   day, so the aggregate is exactly the same whatever order the facts arrive in; windows are
//!   sums of the days they cover.
//! - [`stats`]: the O/E arithmetic and its exact Poisson interval (pure).
//!
//! **Which provider.** Encounters and index stays count on the encounter's department and its
//! attending provider (`attending_provider_id` of the winning encounter record); claim
//! adjudications on the claim's department and billing `provider_id`. Both are
//! `provider:<id>` keys: where the EHR and the billing system use the same NPI they meet in one
//! key. (The synthetic generator uses different id schemes for the two, so in generated data a
//! provider key carries either the clinical or the claim figures, and only department keys carry
//! both.)
//!
//! **Windows.** A window of `d` days ending on the flow's day covers encounters discharged,
//! index stays matured (discharge + readmission window + 1) and claims adjudicated in those
//! `d` days. The readmission figures are those of the index stays whose 30-day follow-up closed
//! in the window, so they need no further wait.
//!
//! **Not counted.** Index stays come from the population flow's tracked stays: none when
//! `population.enabled` or `scoring.enabled` is off. Claim adjudications come from the payer
//! facts: none when `monitor.enabled` is off. Distinct patients are not counted (the cost is per
//! encounter), and the windows of a key are re-emitted only when their figures change.

pub mod aggregate;
pub mod facts;
pub mod stats;

pub use aggregate::ProviderEntry;
pub use facts::ProviderMember;

use crate::config::ProviderKpiConfig;

#[cfg(test)]
mod tests;

/// The provider KPI settings the flows use (validated, windows sorted).
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderKpis {
    pub enabled: bool,
    /// Window lengths, days, shortest first, without duplicates.
    pub windows: Vec<u32>,
    pub min_expected: f64,
}

impl ProviderKpis {
    pub fn new(cfg: &ProviderKpiConfig) -> Self {
        let mut windows: Vec<u32> = cfg
            .windows
            .iter()
            .copied()
            .filter(|w| (1..=MAX_WINDOW_DAYS).contains(w))
            .collect();
        windows.sort_unstable();
        windows.dedup();
        if windows.is_empty() {
            windows.push(30);
        }
        Self {
            enabled: cfg.enabled,
            windows,
            min_expected: cfg.min_expected,
        }
    }

    /// The longest window, days.
    pub fn longest(&self) -> u32 {
        self.windows.last().copied().unwrap_or(30)
    }
}

/// The longest window accepted, days (ten years).
pub const MAX_WINDOW_DAYS: u32 = 3650;

/// Problems of a configuration section.
pub fn validate(cfg: &ProviderKpiConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if cfg.windows.is_empty() {
        problems.push("provider_kpis.windows must not be empty".into());
    }
    for w in &cfg.windows {
        if !(1..=MAX_WINDOW_DAYS).contains(w) {
            problems.push(format!(
                "provider_kpis.windows: {w} is not 1..={MAX_WINDOW_DAYS} days"
            ));
        }
    }
    if !(cfg.min_expected >= 0.0 && cfg.min_expected.is_finite()) {
        problems.push("provider_kpis.min_expected must be a finite number >= 0".into());
    }
    problems
}
