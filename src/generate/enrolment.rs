//! Enrolment spans (`ehr.enrollment`): one coverage span per member for the simulated period.
//!
//! Drawn on a random stream of its own (`seed` x member index x [`STREAM_SALT`]), *after* and
//! *from* the member's generated activity, so every other generated event is identical with or
//! without enrolment. The span always contains the member's activity (every encounter's
//! admission and discharge and every claim's service dates), so the generated population has no
//! paid amounts without eligibility:
//! - [`JOIN_SHARE`] of members join mid-period: coverage starts on the 1st of a month drawn
//!   uniformly from the period's first month to the month of their first activity;
//! - [`LEAVE_SHARE`] are drawn to leave: coverage ends on the last day of a month drawn uniformly
//!   from the month of their last activity to the period's last month (those drawn the last
//!   month stay covered to the period's end, so fewer actually leave), sent as an `ADD` and a
//!   later `TERMINATE` (20-40 days before the end; a retroactive termination can arrive after
//!   it);
//! - the others are covered for the whole period (plan year: start and end are the period's
//!   first and last day), stretched to the end of the month of any activity after the period
//!   (a stay discharged after its end) or to the 1st of the month of any activity before it.
//!
//! The `ADD` is sent 15-45 days before coverage starts (an 834 ahead of the plan year or of the
//! join date).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::population::Member;
use super::{GenerateConfig, MemberOutput};
use crate::enrolment::{day_in_month, month_of, next_month};
use crate::model::{start_of_day, EpochDay, MaintenanceType, MemberEnrollment, DAY_MS};

/// Share of members whose coverage starts after the period's first day.
pub const JOIN_SHARE: f64 = 0.10;
/// Share of members whose coverage ends before the period's last day.
pub const LEAVE_SHARE: f64 = 0.08;
/// Mixed into the member's seed so the enrolment stream is independent of the activity streams.
pub const STREAM_SALT: u64 = 0x454E_524F_4C4D_4E54;

/// The first and last day of a member's activity (encounters and claims), if any.
pub(crate) fn activity(out: &MemberOutput) -> Option<(EpochDay, EpochDay)> {
    let days = out
        .encounters
        .iter()
        .flat_map(|e| [Some(e.admit_date), e.discharge_date])
        .chain(
            out.claims
                .iter()
                .flat_map(|c| [Some(c.service_date), c.service_end_date]),
        )
        .flatten();
    days.fold(None, |acc, d| match acc {
        None => Some((d, d)),
        Some((a, b)) => Some((a.min(d), b.max(d))),
    })
}

/// Months from `from` to `to` inclusive (`YYYYMM`).
fn months(from: i32, to: i32) -> Vec<i32> {
    let mut v = Vec::new();
    let mut m = from;
    while m <= to {
        v.push(m);
        m = next_month(m);
    }
    v
}

/// The enrolment records of one member.
pub(crate) fn spans(
    cfg: &GenerateConfig,
    index: usize,
    member: &Member,
    out: &MemberOutput,
) -> Vec<MemberEnrollment> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        (cfg.seed ^ STREAM_SALT) ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    let period_start = cfg.start_date;
    let period_end = cfg.start_date + cfg.days - 1;
    let (first, last) = activity(out).unwrap_or((period_end, period_start));
    // Whole period by default, stretched to the month of any activity outside it (a stay
    // discharged after the period's end: coverage to the end of that month).
    let mut start = period_start.min(day_in_month(month_of(first), 1));
    let mut end = period_end.max(day_in_month(next_month(month_of(last)), 1) - 1);
    if rng.gen_bool(JOIN_SHARE) {
        let choices = months(month_of(period_start), month_of(first.max(period_start)));
        let m = choices[rng.gen_range(0..choices.len())];
        start = day_in_month(m, 1).max(period_start).min(first);
    }
    let leaves = rng.gen_bool(LEAVE_SHARE);
    if leaves {
        let choices = months(month_of(last.min(period_end)), month_of(period_end));
        let m = choices[rng.gen_range(0..choices.len())];
        end = (day_in_month(next_month(m), 1) - 1).min(end).max(last);
    }
    // Drawn to leave in the period's last month: covered to its end like the others.
    let leaves = leaves && end < period_end;
    let end = end.max(start);
    let span_id = format!("SP-{}-1", member.id);
    let base = |n: u32, maintenance_type, event_time, end| MemberEnrollment {
        event_id: format!("ENR-{}-{n}", member.id),
        event_time,
        member_id: member.id.clone(),
        span_id: span_id.clone(),
        payer_id: member.payer.id.to_owned(),
        payer_category: member.payer.category,
        maintenance_type,
        coverage_start_date: start,
        coverage_end_date: Some(end),
    };
    let added = start_of_day(start - rng.gen_range(15..=45)) + rng.gen_range(0..DAY_MS);
    let mut v = vec![base(
        1,
        MaintenanceType::Add,
        added,
        if leaves { period_end.max(end) } else { end },
    )];
    if leaves {
        let sent =
            (start_of_day(end - rng.gen_range(20..=40)) + rng.gen_range(0..DAY_MS)).max(added + 1);
        v.push(base(2, MaintenanceType::Terminate, sent, end));
    }
    v
}
