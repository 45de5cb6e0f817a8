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
    /// Member stays older than this (by discharge, against the watermark) leave state.
    pub member_lookback_days: u32,
    /// Readmission window after the index discharge.
    pub readmission_window_days: u32,
    /// Take a durable checkpoint after this many events per partition.
    pub checkpoint_every_events: u64,
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
            member_lookback_days: default_member_lookback_days(),
            // CMS: unplanned readmission 1-30 days after the index discharge.
            readmission_window_days: 30,
            checkpoint_every_events: 100_000,
        }
    }
}

impl CoreConfig {
    /// Every problem, not just the first.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
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
    fn unknown_fields_are_refused() {
        let r: Result<CoreConfig, _> =
            serde_json::from_str(r#"{"partitions": 2, "ack_timout_days": 3}"#);
        assert!(r.is_err());
    }
}
