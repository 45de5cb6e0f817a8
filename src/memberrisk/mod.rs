//! High-cost members (`claimwatch.member-risk`, issue 8): each member's rolling 12-month paid
//! amount, a predicted paid amount of the next half year, and a record when the member enters or
//! leaves the top N % of predicted cost, with the drivers of the prediction.
//!
//! **Stages** (one module each):
//! - [`features`] (pure): the member's cost features as of a cut day, from the member state the
//!   readmission detector keeps (stays of the 365-day look-back and the paid amount of each stay's
//!   claim, re-keyed from the claim flow).
//! - [`model`]: the cost model artifact (ridge regression, coefficients per standardized feature)
//!   and prediction with drivers. The shipped default is `src/score/models/cost.json`.
//! - [`train`]: building matured examples from a replay and fitting the model
//!   (`claimwatch train --model cost`).
//! - [`sketch`]: the fixed-bucket log histogram that approximates the top-N % threshold.
//! - [`flow`] (member flow, keyed by member id): after every change of a member (encounter
//!   record, paid amount, member timer) the prediction is recomputed as of that event's day and
//!   the partition's sketch updated; crossing the threshold emits `ENTERED` / `EXITED`.
//!
//! **Whose top N %.** The member flow is partitioned by member id (murmur2), so each partition
//! holds a uniform hash sample of the members; the threshold is computed over the latest
//! predictions of the partition's own members (partition-local: the member flow cannot read
//! another partition's state, and a broadcast would make the flag depend on cross-partition
//! arrival order). With `P` partitions and `n` members each, the sampling error of the cut
//! quantile is about `sqrt(p(1-p)/n)` (top 5 % of 5,000 members: ±0.3 percentage points). The
//! population is the members in state: those with a stay in the last 365 days (the encounter
//! feed carries no enrolment, so members without utilisation are not counted).
//!
//! **When a flag is decided.** Only when the member changes (or its timer fires, or it leaves
//! state): a member whose prediction did not change keeps its flag while the threshold moves.
//! Nothing is flagged before the partition's sketch holds `member_risk.min_members` members.

pub mod features;
pub mod flow;
pub mod model;
pub mod sketch;
pub mod train;

pub use flow::{MemberRisk, RiskState, SKETCH_KEY};
pub use model::{CostModel, CostModelError};
pub use sketch::Sketch;

#[cfg(test)]
mod tests;
