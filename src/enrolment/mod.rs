//! Eligibility and cost per member per month (PMPM): `ehr.enrollment` spans, claims' paid
//! amounts by service month, member months, and the PMPM KPIs on the population summary.
//!
//! **Stages** (the same shape as the `population` module):
//! - member flow, keyed by member id (the `enrolment` table, prefix `e`, [`EnrolmentState`]):
//!   the member's enrolment spans (for each `span_id` the record with the latest
//!   `(event_time, event_id)`, a `CANCEL` kept as a tombstone so an older `ADD` arriving late
//!   cannot revive the span) and the paid amount to date of each of the member's claims with
//!   its service date ([`MemberPaid`], re-keyed from the claim flow whenever a claim with a
//!   remittance changes). After every change the member's contribution ([`contribution`]) is
//!   recomputed, and when it differs from what was last sent, a [`PmpmFact`] takes the old
//!   content back (`sign` -1) and adds the new (+1).
//! - population flow, one key (the `pmpm` table, prefix `n`, [`PmpmAgg`]): integer sums per
//!   month, so exactly the same whatever order the facts arrive in.
//!
//! **Member months.** A member counts one member month for a calendar month when enrolled (in
//! any non-cancelled span) on the **15th** of that month: the mid-month convention of
//! commercial actuarial practice, unbiased for mid-month joins and leaves. (CMS Medicare
//! Advantage counts a member enrolled on the 1st; not used here.) Members are counted once per
//! month however many spans cover the 15th. Open-ended spans count up to the PMPM flow's month.
//!
//! **Numerator.** Paid amounts (paid to date, after reversals) of every claim of the member,
//! linked to an encounter or not, in the month of the claim's service (from) date: incurred
//! basis. A claim whose service date lies outside every span of its member, or whose member has
//! no enrolment data, is **excluded** from the numerator and counted separately as
//! `paid_without_eligibility_cents` (the usual practice: claims without eligibility are a data
//! quality finding, not cost of the enrolled population).
//!
//! **Window.** The PMPM on the `all` readmission summary covers the 12 calendar months ending
//! with the *as-of month*: the latest month with member months or paid amounts (inside or
//! outside eligibility), at most the month of the latest fact the PMPM flow has applied (rolling
//! 12 months; fewer when the data starts later). `cost_pmpm_cents = round(paid inside eligibility / member months)`, and the
//! same per month in `pmpm_months`. Recent months are not completed for claims incurred but not
//! yet paid (payment lags 14-45 days): no IBNR factors are applied.
//!
//! **Cadence.** PMPM facts do not move the population flow's day; a fact carrying member months
//! or eligible paid amounts marks the `all` group changed, and it is emitted with the next
//! emission of the population flow (a later day of stay outcomes, a quiet stream, the end of a
//! replay) when the window's member months or eligible paid amounts moved
//! ([`PmpmWindow::fingerprint`] joins the group's fingerprint). Changes of the
//! paid-without-eligibility figure alone ride along.
//!
//! **Time.** Enrolment records do not move the partition's watermark (they fire no timer and
//! are often exported in bulk with one timestamp).
//!
//! **Retention (closed months).** A member's paid claims are kept for the months that can still
//! enter a PMPM window: a service month closes for the member once it lies [`CLOSED_AFTER_MONTHS`]
//! (24) months before the month of the member's *paid clock*, the latest `event_time` of the
//! paid amounts applied to it (the 12-month window plus 12 months of run-out: claims are filed
//! within a year of service under most payers' timely-filing limits and paid within weeks).
//! When a month closes, its claims leave the member's state and its paid amounts leave the
//! contribution the member holds as sent, so they stay in the `pmpm` sums as they stand and are
//! never taken back. A paid amount that arrives later for a closed month (a reversal two years
//! on) is dropped and counted (`claimwatch_pmpm_paid_dropped_total`): a change of eligibility for
//! a closed month no longer moves its paid amounts either. Enrolment records do not move the
//! paid clock (eligibility files are exported in bulk with today's timestamp, also for old
//! spans). Spans are kept (few per member; their member-month differences stay exact), so a
//! member's entry is bounded by its spans and about 25 months of claims, whatever the stream's
//! length. Measured on the soak (20,000 members, `cargo run --release --example state_sizes DIR`):
//! before retention the `enrolment` table held 11 MB after 4 simulated years, 25 MB after 10 and
//! 48 MB after 20 (mean entry 558, 1,264 and 2,416 bytes); with it, 6.8 MB after 10 (mean 337
//! bytes, largest 1,233). BENCHMARKS.md, "Soak", has the runs.
//!
//! **Departed members.** A member whose spans have all ended (or were cancelled) leaves the
//! state once every month of its coverage and of its claims is closed on the partition's
//! watermark (the event time of its claims and encounters): a timer per such member fires at the
//! first day of the month [`CLOSED_AFTER_MONTHS`] months after the later of its last covered day
//! and its last claim's service date ([`retire_at`]); a record that reopens coverage first moves
//! or cancels it. The member's contribution stays in the `pmpm` sums, as closed months' paid
//! amounts do. Without it a churning population left one entry per member ever seen. Records that
//! reach a member without an entry after its months closed are dropped and counted, so a retired
//! member cannot be counted twice: an enrolment record of a span that ended in a closed month
//! (`claimwatch_pmpm_enrollment_dropped_total`; a full eligibility file re-sending old, ended
//! spans is the usual case) and a paid amount for a closed service month
//! (`claimwatch_pmpm_paid_dropped_total`). Both rules use the partition's watermark, which the
//! service reaches a little later than replay for re-keyed paid amounts (they travel through an
//! internal topic), so the two agree except for a record about a month that closes within that
//! delay: a paid amount ~24 months after its service month.
//!
//! **Not done.** The `pmpm` sums keep every month (one entry of three integers per month of
//! history).

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::model::{
    day_of, start_of_day, EpochDay, EpochMillis, MaintenanceType, MemberEnrollment, MemberPaid,
    MonthDelta, MonthPaid, PayerCategory, PmpmFact, PmpmMonth, PopulationKpis, Rekeyed,
};

#[cfg(test)]
mod tests;

/// The day of the month on which enrolment makes a member month.
pub const MEMBER_MONTH_DAY: u32 = 15;
/// Months in the PMPM window.
pub const WINDOW_MONTHS: i32 = 12;
/// A member's service month closes this many months before the month of its paid clock (the
/// window plus 12 months of run-out; see the module doc).
pub const CLOSED_AFTER_MONTHS: i32 = WINDOW_MONTHS + 12;
/// The key of the PMPM sums in the `pmpm` table.
pub const PMPM_KEY: &str = "pmpm";

/// `YYYYMM` of a day.
pub fn month_of(day: EpochDay) -> i32 {
    use chrono::Datelike;
    let d = chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default();
    d.year() * 100 + d.month() as i32
}

/// The month after `m` (`YYYYMM`).
pub fn next_month(m: i32) -> i32 {
    if m % 100 >= 12 {
        (m / 100 + 1) * 100 + 1
    } else {
        m + 1
    }
}

/// The month before `m` (`YYYYMM`).
pub fn prev_month(m: i32) -> i32 {
    if m % 100 <= 1 {
        (m / 100 - 1) * 100 + 12
    } else {
        m - 1
    }
}

/// Day `d` of month `m` as a day number.
pub fn day_in_month(m: i32, d: u32) -> EpochDay {
    let date = chrono::NaiveDate::from_ymd_opt(m / 100, (m % 100) as u32, d).unwrap_or_default();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (date - epoch).num_days() as EpochDay
}

/// `YYYY-MM` text of a month.
pub fn format_month(m: i32) -> String {
    format!("{:04}-{:02}", m / 100, m % 100)
}

/// One coverage span as its latest record describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanRec {
    pub span_id: CompactString,
    pub event_time: EpochMillis,
    pub event_id: CompactString,
    pub maintenance_type: MaintenanceType,
    pub payer_id: CompactString,
    pub payer_category: PayerCategory,
    pub start: EpochDay,
    pub end: Option<EpochDay>,
}

/// One claim of the member: paid to date, service date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaidClaim {
    pub claim_id: CompactString,
    pub service_date: EpochDay,
    pub paid_cents: i64,
    pub event_time: EpochMillis,
}

/// A member's enrolment spans and paid claims (the `enrolment` table).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentState {
    pub spans: Vec<SpanRec>,
    pub claims: Vec<PaidClaim>,
    /// The contribution standing in the PMPM sums (`sign` +1, `event_time` 0), if any, without
    /// the paid amounts of closed months.
    pub sent: Option<PmpmFact>,
    /// The latest `event_time` of the paid amounts applied (0: none yet): the clock that closes
    /// months (see the module doc).
    pub paid_clock: EpochMillis,
}

impl EnrolmentState {
    /// The latest closed service month (`YYYYMM`), if any month is closed.
    pub fn closed_through(&self) -> Option<i32> {
        (self.paid_clock > 0).then(|| closed_through_at(self.paid_clock))
    }

    /// Whether a paid amount of a claim served on `service_date` falls in a closed month.
    pub fn is_closed(&self, service_date: EpochDay) -> bool {
        self.closed_through()
            .is_some_and(|c| month_of(service_date) <= c)
    }

    /// The covered days: the non-cancelled spans merged, sorted (`None` end: open).
    pub fn coverage(&self) -> Vec<(EpochDay, Option<EpochDay>)> {
        let mut spans: Vec<(EpochDay, Option<EpochDay>)> = self
            .spans
            .iter()
            .filter(|s| s.maintenance_type != MaintenanceType::Cancel)
            .map(|s| (s.start, s.end))
            .collect();
        spans.sort();
        let mut out: Vec<(EpochDay, Option<EpochDay>)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match out.last_mut() {
                // Overlapping or adjacent: extend.
                Some((_, last_end)) if last_end.is_none_or(|e| start <= e + 1) => {
                    *last_end = match (*last_end, end) {
                        (None, _) | (_, None) => None,
                        (Some(a), Some(b)) => Some(a.max(b)),
                    };
                }
                _ => out.push((start, end)),
            }
        }
        out
    }
}

/// The latest month (`YYYYMM`) closed at `clock`: [`CLOSED_AFTER_MONTHS`] months before its
/// month.
pub fn closed_through_at(clock: EpochMillis) -> i32 {
    let mut m = month_of(day_of(clock));
    for _ in 0..CLOSED_AFTER_MONTHS {
        m = prev_month(m);
    }
    m
}

/// Whether `day`'s month is closed at the partition's `watermark` (0 or less: no time yet).
pub fn closed_at(watermark: EpochMillis, day: EpochDay) -> bool {
    watermark > 0 && month_of(day) <= closed_through_at(watermark)
}

/// When a departed member's entry leaves the state (see the module doc, "Departed members"): the
/// first instant at which every month of its coverage and of its claims is closed, measured on the
/// partition's watermark. `None` while a span is open-ended (the member is still covered).
pub fn retire_at(st: &EnrolmentState) -> Option<EpochMillis> {
    let open = st
        .spans
        .iter()
        .any(|s| s.maintenance_type != MaintenanceType::Cancel && s.end.is_none());
    if open {
        return None;
    }
    let last = st
        .spans
        .iter()
        .map(|s| s.end.unwrap_or(s.start).max(s.start))
        .chain(st.claims.iter().map(|c| c.service_date))
        .max()?;
    let mut m = month_of(last);
    for _ in 0..CLOSED_AFTER_MONTHS {
        m = next_month(m);
    }
    Some(start_of_day(day_in_month(m, 1)))
}

/// Whether an enrolment record reaches a member without an entry too late: it describes a span
/// that ended in a month already closed at the partition's `watermark` (the member's entry may
/// have been retired; applying it would count its member months a second time).
pub fn enrollment_too_late(e: &MemberEnrollment, watermark: EpochMillis) -> bool {
    e.coverage_end_date
        .is_some_and(|end| closed_at(watermark, end))
}

/// Whether `day` lies in one of the merged `coverage` intervals.
fn covered(coverage: &[(EpochDay, Option<EpochDay>)], day: EpochDay) -> bool {
    coverage
        .iter()
        .any(|(s, e)| *s <= day && e.is_none_or(|e| day <= e))
}

/// Applies an enrolment record. Returns false when it is a duplicate or older than the span's
/// record in force.
pub fn apply_enrollment(st: &mut EnrolmentState, e: &MemberEnrollment) -> bool {
    let rec = SpanRec {
        span_id: e.span_id.as_str().into(),
        event_time: e.event_time,
        event_id: e.event_id.as_str().into(),
        maintenance_type: e.maintenance_type,
        payer_id: e.payer_id.as_str().into(),
        payer_category: e.payer_category,
        start: e.coverage_start_date,
        end: e.coverage_end_date,
    };
    match st.spans.iter_mut().find(|s| s.span_id == e.span_id) {
        Some(s) => {
            if (e.event_time, e.event_id.as_str()) <= (s.event_time, s.event_id.as_str()) {
                return false;
            }
            *s = rec;
        }
        None => {
            st.spans.push(rec);
            st.spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
        }
    }
    true
}

/// What [`apply_paid`] did with a paid amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaidOutcome {
    /// Applied: the claim is new or its amount changed (refresh the contribution).
    Applied,
    /// A duplicate, or older than the record held.
    Unchanged,
    /// Its service month is closed for the member (see the module doc): dropped.
    Closed,
}

/// Applies a claim's paid amount. A record older than the one held is ignored (same time: the
/// later arrival wins, the claim flow sends one claim's records in order); one for a closed
/// month is dropped. An applied record moves the member's paid clock.
pub fn apply_paid(st: &mut EnrolmentState, p: &MemberPaid) -> PaidOutcome {
    if st.is_closed(p.service_date) {
        return PaidOutcome::Closed;
    }
    let rec = PaidClaim {
        claim_id: p.claim_id.as_str().into(),
        service_date: p.service_date,
        paid_cents: p.paid_cents,
        event_time: p.event_time,
    };
    match st.claims.iter_mut().find(|c| c.claim_id == p.claim_id) {
        Some(c) => {
            if p.event_time < c.event_time || *c == rec {
                return PaidOutcome::Unchanged;
            }
            *c = rec;
        }
        None => st.claims.push(rec),
    }
    st.paid_clock = st.paid_clock.max(p.event_time);
    PaidOutcome::Applied
}

/// The member's contribution to the PMPM sums (`sign` +1, `event_time` 0); `None` when empty.
pub fn contribution(st: &EnrolmentState) -> Option<PmpmFact> {
    let coverage = st.coverage();
    let mut deltas: BTreeMap<i32, i64> = BTreeMap::new();
    for (start, end) in &coverage {
        let mut first = month_of(*start);
        if day_in_month(first, MEMBER_MONTH_DAY) < *start {
            first = next_month(first);
        }
        match end {
            None => *deltas.entry(first).or_default() += 1,
            Some(end) => {
                let mut last = month_of(*end);
                if day_in_month(last, MEMBER_MONTH_DAY) > *end {
                    last = prev_month(last);
                }
                if last >= first {
                    *deltas.entry(first).or_default() += 1;
                    *deltas.entry(next_month(last)).or_default() -= 1;
                }
            }
        }
    }
    let mut paid: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for c in &st.claims {
        let e = paid.entry(month_of(c.service_date)).or_default();
        if covered(&coverage, c.service_date) {
            e.0 += c.paid_cents;
        } else {
            e.1 += c.paid_cents;
        }
    }
    let fact = fact_of_sums(0, deltas, paid);
    (!fact.member_months.is_empty() || !fact.paid.is_empty()).then_some(fact)
}

/// A `+1` fact from per-month member-month differences and (eligible, unenrolled) paid sums,
/// without the months that are zero.
fn fact_of_sums(
    event_time: EpochMillis,
    deltas: BTreeMap<i32, i64>,
    paid: BTreeMap<i32, (i64, i64)>,
) -> PmpmFact {
    PmpmFact {
        sign: 1,
        event_time,
        member_months: deltas
            .into_iter()
            .filter(|(_, d)| *d != 0)
            .map(|(month, delta)| MonthDelta { month, delta })
            .collect(),
        paid: paid
            .into_iter()
            .filter(|(_, p)| *p != (0, 0))
            .map(|(month, (e, u))| MonthPaid {
                month,
                eligible_paid_cents: e,
                unenrolled_paid_cents: u,
            })
            .collect(),
    }
}

/// Recomputes the member's contribution and sends the difference (old content -1, new +1,
/// stamped `event_time`), then lets the closed months go: their claims leave the state and their
/// paid amounts the contribution held as sent (they stay in the sums). Returns true when anything
/// was sent.
pub fn refresh(st: &mut EnrolmentState, event_time: EpochMillis, out: &mut Vec<Rekeyed>) -> bool {
    let now = contribution(st);
    let changed = now != st.sent;
    if changed {
        if let Some(old) = st.sent.take() {
            out.push(Rekeyed::Pmpm(PmpmFact {
                sign: -1,
                event_time,
                ..old
            }));
        }
        if let Some(new) = &now {
            out.push(Rekeyed::Pmpm(PmpmFact {
                event_time,
                ..new.clone()
            }));
        }
        st.sent = now;
    }
    close_months(st);
    changed
}

/// Drops the claims of closed months and their paid amounts from the contribution held as sent,
/// so that the contribution recomputed from what is left still equals it.
fn close_months(st: &mut EnrolmentState) {
    let Some(closed) = st.closed_through() else {
        return;
    };
    st.claims.retain(|c| month_of(c.service_date) > closed);
    if let Some(sent) = &mut st.sent {
        sent.paid.retain(|p| p.month > closed);
        if sent.member_months.is_empty() && sent.paid.is_empty() {
            st.sent = None;
        }
    }
}

/// The sums of one month.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MonthSums {
    /// Member-month differences (member months of month m: the sum over months <= m).
    pub member_month_delta: i64,
    pub eligible_paid_cents: i64,
    pub unenrolled_paid_cents: i64,
}

/// The PMPM sums (the `pmpm` table, key [`PMPM_KEY`], population flow).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PmpmAgg {
    pub months: BTreeMap<i32, MonthSums>,
    /// Latest event time of the facts applied.
    pub flow_time: EpochMillis,
}

impl PmpmAgg {
    /// Adds a fact (its sign decides add or take back).
    pub fn add(&mut self, f: &PmpmFact) {
        let s = i64::from(f.sign);
        for d in &f.member_months {
            self.months.entry(d.month).or_default().member_month_delta += s * d.delta;
        }
        for p in &f.paid {
            let m = self.months.entry(p.month).or_default();
            m.eligible_paid_cents += s * p.eligible_paid_cents;
            m.unenrolled_paid_cents += s * p.unenrolled_paid_cents;
        }
        self.months.retain(|_, m| *m != MonthSums::default());
        self.flow_time = self.flow_time.max(f.event_time);
    }

    /// Every month from the first with data to `until`: (month, member months, eligible paid,
    /// paid without eligibility).
    pub fn month_rows(&self, until: i32) -> Vec<(i32, i64, i64, i64)> {
        let Some(first) = self.months.keys().next().copied() else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        let (mut m, mut mm) = (first, 0i64);
        while m <= until {
            let s = self.months.get(&m).cloned().unwrap_or_default();
            mm += s.member_month_delta;
            rows.push((m, mm, s.eligible_paid_cents, s.unenrolled_paid_cents));
            m = next_month(m);
        }
        rows
    }

    /// The PMPM figures of the window (see the module doc); `None` without any data.
    pub fn window(&self) -> Option<PmpmWindow> {
        // The paid clock: the latest service month with a paid amount (inside or outside
        // eligibility). Enrolment records do not move it: an eligibility file stamped months
        // ahead would otherwise end the window in months of member months and no claims.
        let last_paid = self
            .months
            .iter()
            .rev()
            .find(|(_, s)| s.eligible_paid_cents != 0 || s.unenrolled_paid_cents != 0)
            .map(|(m, _)| *m);
        let until = last_paid.unwrap_or_else(|| month_of(day_of(self.flow_time)));
        let rows = self.month_rows(until);
        // A month at the edge with a handful of member months (coverage stretched past a plan
        // year for a late discharge) does not end the window: it would push a full month out.
        let mut mm: Vec<i64> = rows.iter().map(|r| r.1).filter(|n| *n > 0).collect();
        mm.sort_unstable();
        let cut = median(&mm) * PMPM_MIN_SHARE_OF_MEDIAN;
        let last = rows.iter().rposition(|(_, mm, e, u)| {
            (*mm != 0 || *e != 0 || *u != 0) && (*mm as f64 >= cut || cut == 0.0)
        })?;
        let first = last.saturating_sub(WINDOW_MONTHS as usize - 1);
        let months: Vec<PmpmMonth> = rows[first..=last]
            .iter()
            .map(|(m, mm, e, u)| PmpmMonth {
                month: format_month(*m),
                member_months: *mm,
                paid_cents: *e,
                paid_without_eligibility_cents: *u,
                cost_pmpm_cents: pmpm(*e, *mm),
            })
            .collect();
        Some(PmpmWindow {
            member_months: months.iter().map(|m| m.member_months).sum(),
            paid_cents: months.iter().map(|m| m.paid_cents).sum(),
            paid_without_eligibility_cents: months
                .iter()
                .map(|m| m.paid_without_eligibility_cents)
                .sum(),
            months,
        })
    }
}

/// A month with fewer member months than this share of the median month neither ends the PMPM
/// window nor (in the report) counts in its headline: a handful of members enrolled (the month
/// after enrolment data ends, say) gives a PMPM of noise (3 member months, $5,131).
pub const PMPM_MIN_SHARE_OF_MEDIAN: f64 = 0.01;

/// The median of sorted values (0 for none).
pub fn median(sorted: &[i64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2] as f64,
        n => (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0,
    }
}

/// paid / member months, rounded to the cent; `None` without member months.
pub fn pmpm(paid_cents: i64, member_months: i64) -> Option<i64> {
    (member_months > 0).then(|| (paid_cents as f64 / member_months as f64).round() as i64)
}

/// The PMPM window's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct PmpmWindow {
    pub member_months: i64,
    pub paid_cents: i64,
    pub paid_without_eligibility_cents: i64,
    pub months: Vec<PmpmMonth>,
}

impl PmpmWindow {
    /// What decides a re-emission of the `all` summary: the member months and eligible paid
    /// amounts of the window's months (0 when there are none, so populations without
    /// enrolment data emit exactly as before).
    pub fn fingerprint(&self) -> u64 {
        if self.member_months == 0 && self.paid_cents == 0 {
            return 0;
        }
        let key: Vec<(&str, i64, i64)> = self
            .months
            .iter()
            .map(|m| (m.month.as_str(), m.member_months, m.paid_cents))
            .collect();
        crate::state::fingerprint(&key).max(1)
    }

    /// Writes the figures into the population KPIs.
    pub fn fill(&self, k: &mut PopulationKpis) {
        k.cost_pmpm_cents = pmpm(self.paid_cents, self.member_months);
        k.member_months = Some(self.member_months);
        k.pmpm_paid_cents = Some(self.paid_cents);
        k.paid_without_eligibility_cents = Some(self.paid_without_eligibility_cents);
        k.pmpm_first_month = self.months.first().map(|m| m.month.clone());
        k.pmpm_last_month = self.months.last().map(|m| m.month.clone());
        k.pmpm_months = Some(self.months.clone());
    }
}

/// Applies a PMPM fact to the sums. Returns whether it can change the window's PMPM (it carries
/// member months or paid amounts inside eligibility): then the `all` summary is marked changed
/// (its emission still happens only when [`PmpmWindow::fingerprint`] moved).
/// Sums PMPM facts into one (sign +1, the latest event time, per-month sums without zero
/// entries): the month sums are additive, so applying the result gives exactly what applying
/// each fact would. The runtime sends one such fact per processed batch instead of one per
/// member change (a change alone is two facts, -1 and +1): the population flow is a single key,
/// so this is its whole input. `None` for no facts; facts that cancel out still give one (empty)
/// fact, which carries the flow's event time on.
pub fn coalesce<'a>(facts: impl IntoIterator<Item = &'a PmpmFact>) -> Option<PmpmFact> {
    let mut months: BTreeMap<i32, i64> = BTreeMap::new();
    let mut paid: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut event_time = None;
    for f in facts {
        let s = i64::from(f.sign);
        for d in &f.member_months {
            *months.entry(d.month).or_default() += s * d.delta;
        }
        for p in &f.paid {
            let e = paid.entry(p.month).or_default();
            e.0 += s * p.eligible_paid_cents;
            e.1 += s * p.unenrolled_paid_cents;
        }
        event_time = Some(event_time.map_or(f.event_time, |t: EpochMillis| t.max(f.event_time)));
    }
    Some(fact_of_sums(event_time?, months, paid))
}

pub fn apply_fact(agg: &mut PmpmAgg, fact: &PmpmFact) -> bool {
    agg.add(fact);
    !fact.member_months.is_empty() || fact.paid.iter().any(|p| p.eligible_paid_cents != 0)
}
