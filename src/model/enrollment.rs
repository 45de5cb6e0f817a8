//! The eligibility input (`ehr.enrollment`, an 834-style enrolment span per record, keyed by
//! member id) and the two internal records of the PMPM flow ([`MemberPaid`], [`PmpmFact`]).

use serde::{Deserialize, Serialize};

use super::{EpochDay, EpochMillis, PayerCategory};

/// What an enrolment record reports, after the ASC X12 834 maintenance type code (INS03).
/// Every record carries the whole span as the sender knows it at `event_time`; for one
/// `span_id` the record with the latest `(event_time, event_id)` is the span, whatever order
/// the records arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MaintenanceType {
    /// 834 `021` addition: a new coverage span.
    Add,
    /// 834 `001` change (and `025` reinstatement): the span's dates or payer changed.
    Change,
    /// 834 `024` termination: the span ends on `coverage_end_date` (required).
    Terminate,
    /// 834 `024` cancellation / entered in error: the span never took effect.
    Cancel,
}

/// One enrolment (eligibility) span of a member with a payer, keyed by member id.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberEnrollment {
    pub event_id: String,
    pub event_time: EpochMillis,
    pub member_id: String,
    /// Identifies the coverage span across its add / change / terminate records (the 834
    /// subscriber's policy or enrolment reference, REF*1L / REF*17).
    pub span_id: String,
    pub payer_id: String,
    pub payer_category: PayerCategory,
    pub maintenance_type: MaintenanceType,
    /// First day covered (834 DTP*348 benefit begin).
    pub coverage_start_date: EpochDay,
    /// Last day covered, inclusive (834 DTP*349 benefit end); open-ended when absent.
    pub coverage_end_date: Option<EpochDay>,
}

impl std::fmt::Debug for MemberEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberEnrollment")
            .field("event_time", &self.event_time)
            .field("maintenance_type", &self.maintenance_type)
            .field("payer_category", &self.payer_category)
            .field("coverage_start_date", &self.coverage_start_date)
            .field("coverage_end_date", &self.coverage_end_date)
            .finish_non_exhaustive()
    }
}

/// Internal event on the member flow: a claim's paid amount to date and service date, re-keyed
/// from claim id to member id whenever the paid amount changes (any claim, linked to an
/// encounter or not). Absolute, not a delta: for one claim the latest `event_time` wins.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberPaid {
    pub member_id: String,
    pub claim_id: String,
    /// The claim's (first) service date: the month the cost is incurred in.
    pub service_date: EpochDay,
    pub paid_cents: i64,
    pub event_time: EpochMillis,
}

impl std::fmt::Debug for MemberPaid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberPaid")
            .field("service_date", &self.service_date)
            .field("paid_cents", &self.paid_cents)
            .finish_non_exhaustive()
    }
}

/// A member's member-month difference for one month: `+1` in the first month counted of a
/// covered run, `-1` in the month after its last (none for open-ended coverage).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MonthDelta {
    /// `YYYYMM`.
    pub month: i32,
    pub delta: i64,
}

/// A member's paid amounts incurred in one service month, split by eligibility.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MonthPaid {
    /// `YYYYMM`.
    pub month: i32,
    /// Paid on claims whose service date lies inside one of the member's spans.
    pub eligible_paid_cents: i64,
    /// Paid on claims outside every span (or of members without enrolment data).
    pub unenrolled_paid_cents: i64,
}

/// Internal event on the population flow (key `population`): what one member's enrolment and
/// paid claims add to (`sign` +1) or take back from (-1) the PMPM month sums. A change is sent
/// as the old content with -1 then the new with +1, so the sums are exact whatever the order.
/// Carries no member or claim identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PmpmFact {
    pub sign: i32,
    pub event_time: EpochMillis,
    pub member_months: Vec<MonthDelta>,
    pub paid: Vec<MonthPaid>,
}
