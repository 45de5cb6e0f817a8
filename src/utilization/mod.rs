//! Utilization forecast per facility and service line (`claimwatch.utilization-forecast`):
//! inpatient admissions and ED visits per week, the next `horizon_weeks` weeks forecast with
//! 80 % and 95 % prediction intervals, and each forecast compared with what then happened.
//!
//! **Stages** (one module each):
//! - [`facts`] (member flow, keyed by member id): what each encounter adds to its facility and
//!   service line, as signed [`UtilizationFact`](crate::model::UtilizationFact)s re-keyed to
//!   `<facility>|<service line>` (in Kafka through `claimwatch.internal.utilization-facts`). A
//!   cancelled or corrected encounter is taken back (`sign` -1) and, if it still counts,
//!   sent again (+1).
//! - [`aggregate`] (utilization flow, keyed by facility and service line): integer weekly counts,
//!   so they are the same whatever order the facts arrive in; weeks close on the flow's watermark
//!   (event time minus `lateness_hours`), each closed week forecasts the weeks after it, and is
//!   emitted with the forecasts made for it and the key's rolling accuracy.
//! - [`forecast`]: simple exponential smoothing and negative-binomial prediction intervals
//!   (pure).
//!
//! **Service line.** The encounter's department (`Encounter.department`, e.g. `CARDIOLOGY`,
//! `EMERGENCY`), as the EHR records it: a documented, source-side grouping, so no mapping table is
//! needed and the key is the unit a hospital staffs. ED visits therefore usually land on the
//! `<facility>|EMERGENCY` key and admissions on the admitting department's key.
//!
//! **Weeks.** ISO weeks (Monday to Sunday, UTC days) of the admission date (inpatient) or visit
//! date (ED), labelled `2024-W09` like `claimwatch.cash-forecast`.
//!
//! **Not counted.** Observation and outpatient encounters; encounters before the member's
//! look-back when the replay starts; facts for weeks older than the state kept
//! (`max(history_weeks, accuracy_weeks)` weeks before the last closed week: counted in the
//! entry's `dropped_facts`). Forecasts are made from the counts known when a week closes; a late
//! fact re-emits its week with the new count but does not revise forecasts already made.

pub mod aggregate;
pub mod facts;
pub mod forecast;

pub use aggregate::UtilEntry;
pub use facts::UtilMember;

use crate::config::UtilizationConfig;

#[cfg(test)]
mod tests;

/// The utilization settings the flows use (validated).
pub type Utilization = UtilizationConfig;

/// Problems of a configuration section.
pub fn validate(cfg: &UtilizationConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if !(1..=12).contains(&cfg.horizon_weeks) {
        problems.push("utilization.horizon_weeks must be 1..=12".into());
    }
    if !(4..=104).contains(&cfg.history_weeks) {
        problems.push("utilization.history_weeks must be 4..=104".into());
    }
    if cfg.min_history_weeks < 2 || cfg.min_history_weeks > cfg.history_weeks {
        problems.push("utilization.min_history_weeks must be 2..=history_weeks".into());
    }
    if !(cfg.alpha > 0.0 && cfg.alpha <= 1.0) {
        problems.push("utilization.alpha must be in (0, 1]".into());
    }
    if !(1..=104).contains(&cfg.accuracy_weeks) {
        problems.push("utilization.accuracy_weeks must be 1..=104".into());
    }
    if cfg.lateness_hours > 24 * 28 {
        problems.push("utilization.lateness_hours must be at most 672 (four weeks)".into());
    }
    problems
}
