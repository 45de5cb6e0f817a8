//! Population analytics in the stream: readmission outcomes by diagnosis group and HRRP cohort
//! (`claimwatch.readmission-summary`) and the expected return of the configured interventions
//! (`claimwatch.intervention-roi`), computed incrementally by the same core in replay, the Kafka
//! service and the benchmarks.
//!
//! **Stages** (one module each):
//! - [`facts`] (member flow, keyed by member id): when an index stay's 30-day window closes (the
//!   scorer's `mature_stays`) the stay is *tracked* with its calibrated probability and tier. From
//!   then on, after every change of the member (encounter record, paid amount re-keyed from the
//!   claim flow, the maturing itself) the stay's outcome is recomputed from the member's state
//!   with the readmission detector's decision, and when it differs from what was last sent, a
//!   [`StayOutcome`] fact takes the old content back (`sign` -1) and adds the new (`sign` +1).
//!   Late readmission costs (payment lags 14-45 days), retractions and corrections therefore reach
//!   the aggregate as correcting facts.
//! - [`aggregate`] (population flow, one key `population`): sums the facts into per-group totals.
//!   The totals are integer sums of signed facts (probabilities in millionths), so they are
//!   exactly the same whatever order the facts arrive in. Volume is one or two facts per index
//!   stay, so one partition aggregates the whole population.
//! - [`roi`]: the intervention arithmetic (pure), shared with `claimwatch roi`.
//!
//! **Potentially preventable** (a readmission that counts, i.e. unplanned within 30 days), flagged
//! when either
//! 1. its principal diagnosis is an ambulatory-care-sensitive condition: the numerator codes of
//!    the AHRQ Prevention Quality Indicators PQI 01, 03, 05, 07, 08, 11, 12, 14, 15 (ICD-10-CM/PCS
//!    specification v2023; a documented subset, matched by code prefix without the PQI
//!    exclusions: `src/refdata/data/pqi_acsc_icd10cm.csv`), or
//! 2. it is in the same diagnosis group (CCSR body system) as the index stay.
//!
//! The third rule often used (no follow-up office visit within 7 days of discharge) is **not**
//! applied: the member state holds only the encounter feed, which carries inpatient, emergency
//! and observation stays but no office visits (professional claims are not linked to members'
//! stays), so the rule would flag every readmission.
//!
//! **Cadence.** The population flow's day is the largest event-time day of the facts it has
//! applied. Each group changed by facts is emitted once when the flow moves to a later day (and
//! once at the end of a replay, [`crate::core::Partition::flush_population`]); the ROI records
//! are emitted with it when their figures changed. `output_id = <key>:<version>`.
//!
//! **Not counted.** Stays are tracked only when scoring is enabled (the probabilities come from
//! the scorer). A tracked stay's contribution is frozen 31 days before it would leave the member
//! look-back (`member_lookback_days`): later changes to it are not sent.

pub mod aggregate;
pub mod facts;
pub mod roi;

pub use aggregate::{GroupAgg, PopEntry};
pub use facts::{TrackedStay, TrackedStays};

#[cfg(test)]
mod tests;
