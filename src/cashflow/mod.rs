//! Cash-flow forecast per payer and ISO week (`claimwatch.cash-forecast`): expected cash from
//! open claims (expected amount x probability of payment) placed on future weeks by the payer's
//! observed days-to-payment distribution, against the cash that 835s then report.
//!
//! **Stages.**
//! - Claim flow (keyed by claim id, table `cash_claims`, [`CashClaim`]): after every change of a
//!   claim's reconciled view (and every denial-risk score of it) the claim's *cash content*
//!   ([`content`]) is recomputed: whether it is open (submitted and not adjudicated, rejected,
//!   voided or forwarded) with its first submission day, expected amount (the claim's expected
//!   amount, else its billed amount) and probability of payment (1 - the denial probability of its
//!   latest score, absent without one); whether it was adjudicated paid or denied; its days to
//!   first payment; and its 835 payments (payment date, CLP04 payer payment, negative for a
//!   reversal). When the content differs from what was last sent, a [`CashFact`] takes the old
//!   content back (`sign` -1) and adds the new (+1), re-keyed to the payer
//!   (`claimwatch.internal.cash-facts` in Kafka). Late and out-of-order events therefore correct
//!   earlier contributions, as in `population::facts`.
//! - Payer flow (keyed by payer id, table `cash_payers`, [`CashPayer`]): sums the facts. Every
//!   sum is an integer (cents, counts; an open claim's expected paid amount is rounded to cents
//!   once, in the fact's content), so the aggregate is the same whatever order the facts arrive
//!   in. It holds the days-to-payment histogram ([`dist`]), paid and adjudicated claim counts
//!   (the payment rate, used for open claims without a score), the open claims by first
//!   submission day, and per ISO week the actual receipts and the frozen forecast.
//!
//! **Time and emission.** A payer's flow day is the largest event-time day of its facts. When a
//! fact moves it into a later ISO week, the forecast of that week is *frozen* first: the open
//! claims as of then, placed as of the week's Monday (so a week gets a forecast only when the
//! payer had facts before it). Then, at every change of the flow day, each completed week (its
//! Sunday before the flow day) that changed since its last emission is emitted: version 1 when it
//! completes, version + 1 for a late 835 (a payment dated in it that arrives later), the
//! correction. The end of a replay ([`CashForecaster::flush`]) also emits the week in progress
//! (`complete` false). A record carries the current forward forecast: as of the flow day, its
//! week's remaining days and the following weeks, `horizon_weeks` in all.
//!
//! **Error.** `error_cents = actual - forecast` and `abs_pct_error = |error| / |actual|`. The
//! forecast only covers claims open at the week's start: cash from claims whose submission is not
//! yet known to claimwatch (an EHR export that arrives after the claim's 835), and from claims
//! denied, appealed and paid, counts in `actual` without having been forecast.
//!
//! **Bounded memory.** Per payer: 122 histogram buckets, and weeks and open-claim submission days
//! back to `retention_weeks` before the flow day (facts for older ones are dropped and counted in
//! `dropped_facts`: by then the histogram has no mass left for them). Per claim: the last content
//! sent, until the claim leaves the reconciler's state (its contribution then stays as sent).
//!
//! Output ids are `<payer_id>:<iso week>:<version>`, a function of the facts applied.

pub mod dist;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::CashForecastConfig;
use crate::model::{
    day_of, start_of_day, CashFact, CashForecast, CashReceipt, ClaimLifecycleUpdate, ClaimStatus,
    EpochDay, EpochMillis, OutputEvent, PayerCategory, Rekeyed, WeekAmount,
};
use crate::reconcile::ClaimState;

/// Monday of the ISO week holding `day` (day 0, 1970-01-01, is a Thursday).
pub fn week_start(day: EpochDay) -> EpochDay {
    day - (day + 3).rem_euclid(7)
}

/// ISO week label of `day`: `2024-W09` (the ISO year, which differs from the calendar year
/// around New Year).
pub fn iso_week(day: EpochDay) -> String {
    use chrono::Datelike;
    // 1970-01-01 is day 719,163 counted from 0001-01-01 (day 1).
    match chrono::NaiveDate::from_num_days_from_ce_opt(day + 719_163) {
        Some(d) => {
            let w = d.iso_week();
            format!("{:04}-W{:02}", w.year(), w.week())
        }
        None => format!("day{day}-W"),
    }
}

/// Probability in millionths.
pub fn micros(p: f64) -> i64 {
    (p.clamp(0.0, 1.0) * 1e6).round() as i64
}

/// An open claim's expected paid amount in cents: expected x probability, rounded once.
pub fn expected_paid_cents(expected_cents: i64, paid_probability_micros: i64) -> i64 {
    ((expected_cents as i128 * paid_probability_micros as i128 + 500_000) / 1_000_000) as i64
}

// ---------------------------------------------------------------- claim flow

/// A claim's cash state (table `cash_claims`, keyed by claim id).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CashClaim {
    /// 1 - denial probability of the claim's latest score, millionths.
    pub paid_probability_micros: Option<i64>,
    /// The content standing in the payer's aggregate (`sign` +1, `event_time` 0), if any.
    pub sent: Option<CashFact>,
}

/// Statuses of an open claim: cash is still expected from the payer.
fn is_open(s: ClaimStatus) -> bool {
    matches!(
        s,
        ClaimStatus::Submitted
            | ClaimStatus::Received
            | ClaimStatus::Accepted
            | ClaimStatus::Pending
            | ClaimStatus::InfoRequested
    )
}

/// The cash content of a claim (see the module docs): `None` while its payer is unknown (an ack
/// or 835 before the claim).
pub fn content(
    view: &ClaimLifecycleUpdate,
    state: &ClaimState,
    paid_probability_micros: Option<i64>,
) -> Option<CashFact> {
    let payer_id = view.payer_id.as_ref()?;
    let payer_category = view.payer_category?;
    let first_submitted = state.submissions.iter().map(|s| s.submitted_date).min();
    let open = is_open(view.status);
    let mut receipts: Vec<CashReceipt> = state
        .remits
        .iter()
        // The claim's payer is its primary: what a secondary or tertiary payer paid is that
        // payer's cash, not the primary's (its payer is not kept with the claim's 835s, so it is
        // not counted for it either; README).
        .filter(|r| !r.is_predetermination() && !r.is_secondary())
        .map(|r| CashReceipt {
            payment_date: r.payment_date,
            paid_cents: r.paid_cents,
        })
        .collect();
    receipts.sort_by_key(|r| (r.payment_date, r.paid_cents));
    let adjudicated_paid = match view.status {
        ClaimStatus::Paid | ClaimStatus::PartiallyPaid => Some(true),
        ClaimStatus::Denied => Some(false),
        _ => None,
    };
    Some(CashFact {
        sign: 1,
        event_time: 0,
        payer_id: payer_id.clone(),
        payer_category,
        open_submitted_date: first_submitted.filter(|_| open),
        open_expected_cents: if open {
            view.expected_cents.unwrap_or(view.billed_cents)
        } else {
            0
        },
        open_paid_probability_micros: paid_probability_micros.filter(|_| open),
        adjudicated_paid,
        days_to_payment: view.days_to_first_payment,
        receipts,
        source_partition: 0,
        paid_expected_cents: if adjudicated_paid == Some(true) {
            view.expected_cents.unwrap_or(view.billed_cents)
        } else {
            0
        },
    })
}

/// Sends the difference between what was last sent for a claim and `now`, stamped `event_time`.
/// Returns true when anything was sent.
pub fn refresh(
    claim: &mut CashClaim,
    now: Option<CashFact>,
    event_time: EpochMillis,
    out: &mut Vec<Rekeyed>,
) -> bool {
    if now == claim.sent {
        return false;
    }
    if let Some(old) = claim.sent.take() {
        out.push(Rekeyed::Cash(CashFact {
            sign: -1,
            event_time,
            ..old
        }));
    }
    if let Some(new) = &now {
        out.push(Rekeyed::Cash(CashFact {
            event_time,
            ..new.clone()
        }));
    }
    claim.sent = now;
    true
}

// ---------------------------------------------------------------- payer flow

/// Open claims first submitted on one day (sums of signed facts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDay {
    pub claims: i64,
    pub expected_cents: i64,
    /// Sum of expected x P(paid) of the scored claims, cents.
    pub scored_paid_cents: i64,
    pub unscored_claims: i64,
    pub unscored_expected_cents: i64,
}

impl OpenDay {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One ISO week of a payer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekEntry {
    /// Frozen at the week's start: (cents, open claims).
    pub forecast: Option<(i64, i64)>,
    pub actual_cents: i64,
    pub receipts: i64,
    /// Emissions so far.
    pub version: i64,
    /// Changed since the last emission.
    pub dirty: bool,
    /// The last emission was of the completed week.
    pub emitted_complete: bool,
}

/// A payer's cash aggregate (table `cash_payers`, keyed by payer id).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CashPayer {
    pub payer_id: String,
    pub payer_category: Option<PayerCategory>,
    /// Largest event-time day of the payer's facts.
    pub flow_day: Option<EpochDay>,
    /// Days-to-first-payment histogram ([`dist`]; empty until the first paid claim).
    pub days: Vec<i64>,
    pub adjudicated: i64,
    pub paid: i64,
    /// Open claims by first submission day.
    pub open: BTreeMap<EpochDay, OpenDay>,
    /// Weeks by Monday.
    pub weeks: BTreeMap<EpochDay, WeekEntry>,
    /// Fact parts dropped because their day or week had left state.
    pub dropped_facts: i64,
    /// Over the claims adjudicated paid: their expected amounts, and what the payer paid on
    /// them (its 835 payments), cents. Their ratio scales the forecast ([`paid_ratio`]).
    pub paid_expected_cents: i64,
    pub paid_received_cents: i64,
}

/// The cash forecast logic (stateless; state lives in [`CashClaim`]s and [`CashPayer`]s).
#[derive(Clone, Debug)]
pub struct CashForecaster {
    config: CashForecastConfig,
}

impl CashForecaster {
    pub fn new(config: &CashForecastConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// First day kept in state when the flow day is `day`.
    fn cutoff(&self, day: EpochDay) -> EpochDay {
        week_start(day) - 7 * self.config.retention_weeks as EpochDay
    }

    /// Applies one fact to its payer's aggregate, the flow's day being the fact's own day (one
    /// source, in order: the unit tests).
    pub fn apply(&self, p: &mut CashPayer, fact: &CashFact, out: &mut Vec<OutputEvent>) {
        self.apply_at(p, fact, Some(day_of(fact.event_time)), out);
    }

    /// Applies one fact to its payer's aggregate, the flow's day being `flow` (the partition's
    /// cash watermark; `None` until every source has been heard from). When that moves the
    /// payer's flow to a later day, the new week's forecast is frozen and the completed weeks
    /// that changed are emitted first.
    pub fn apply_at(
        &self,
        p: &mut CashPayer,
        fact: &CashFact,
        flow: Option<EpochDay>,
        out: &mut Vec<OutputEvent>,
    ) {
        if p.payer_id.is_empty() {
            p.payer_id.clone_from(&fact.payer_id);
        }
        p.payer_category = Some(fact.payer_category);
        if let Some(day) = flow {
            self.advance_to(p, day, out);
        }
        add(
            p,
            fact,
            self.cutoff(p.flow_day.unwrap_or(day_of(fact.event_time))),
        );
    }

    /// Moves the payer's flow to `day` if later (see [`CashForecaster::apply_at`]).
    pub fn advance_to(&self, p: &mut CashPayer, day: EpochDay, out: &mut Vec<OutputEvent>) {
        if p.flow_day.is_none_or(|d| day > d) {
            self.advance(p, day, out);
        }
    }

    fn advance(&self, p: &mut CashPayer, day: EpochDay, out: &mut Vec<OutputEvent>) {
        let week = week_start(day);
        if let Some(old) = p.flow_day {
            if week_start(old) != week {
                let placed = forecast(p, week, week, week + 7);
                let cents = placed.sum(week, week, week + 7).round() as i64;
                let claims = p.open.values().map(|o| o.claims).sum();
                let e = p.weeks.entry(week).or_default();
                e.forecast = Some((cents, claims));
                e.dirty = true;
            }
        }
        p.flow_day = Some(day);
        self.emit(p, false, out);
        let cutoff = self.cutoff(day);
        p.weeks.retain(|w, _| *w >= cutoff);
        p.open.retain(|s, _| *s >= cutoff);
    }

    /// Emits every changed week: the completed ones, and with `all` the week in progress too.
    fn emit(&self, p: &mut CashPayer, all: bool, out: &mut Vec<OutputEvent>) {
        let Some(flow_day) = p.flow_day else {
            return;
        };
        let due: Vec<EpochDay> = p
            .weeks
            .iter()
            .filter(|(w, e)| {
                let complete = **w + 7 <= flow_day;
                (complete && (e.dirty || (e.version > 0 && !e.emitted_complete)))
                    || (all && e.dirty)
            })
            .map(|(w, _)| *w)
            .collect();
        if due.is_empty() {
            return;
        }
        let status = Status::of(p, flow_day, self.config.horizon_weeks);
        for w in due {
            let complete = w + 7 <= flow_day;
            let Some(e) = p.weeks.get_mut(&w) else {
                continue;
            };
            e.version += 1;
            e.dirty = false;
            e.emitted_complete = complete;
            out.push(OutputEvent::CashForecast(record(
                &p.payer_id,
                p.payer_category.unwrap_or(PayerCategory::Other),
                w,
                e,
                complete,
                start_of_day(flow_day),
                &status,
            )));
        }
    }

    /// Emits every changed week, the one in progress included (the end of a replay).
    pub fn flush(&self, p: &mut CashPayer, out: &mut Vec<OutputEvent>) {
        self.emit(p, true, out);
    }

    /// The payer's forward forecast as of its flow day (`horizon_weeks` weeks from the current).
    pub fn forward(&self, p: &CashPayer) -> Vec<WeekAmount> {
        p.flow_day
            .map(|d| Status::of(p, d, self.config.horizon_weeks).forward)
            .unwrap_or_default()
    }
}

/// Adds a fact's parts to the aggregate (parts for days before `cutoff` are dropped).
fn add(p: &mut CashPayer, f: &CashFact, cutoff: EpochDay) {
    let s = i64::from(f.sign.signum());
    if let Some(day) = f.open_submitted_date {
        if day < cutoff {
            p.dropped_facts += 1;
        } else {
            let o = p.open.entry(day).or_default();
            o.claims += s;
            o.expected_cents += s * f.open_expected_cents;
            match f.open_paid_probability_micros {
                Some(m) => o.scored_paid_cents += s * expected_paid_cents(f.open_expected_cents, m),
                None => {
                    o.unscored_claims += s;
                    o.unscored_expected_cents += s * f.open_expected_cents;
                }
            }
            if o.is_empty() {
                p.open.remove(&day);
            }
        }
    }
    if let Some(paid) = f.adjudicated_paid {
        p.adjudicated += s;
        if paid {
            p.paid += s;
            if f.paid_expected_cents > 0 {
                p.paid_expected_cents += s * f.paid_expected_cents;
                p.paid_received_cents += s * f.receipts.iter().map(|r| r.paid_cents).sum::<i64>();
            }
        }
    }
    if let Some(d) = f.days_to_payment {
        dist::add(&mut p.days, d, s);
    }
    for r in &f.receipts {
        let w = week_start(r.payment_date);
        if w < cutoff {
            p.dropped_facts += 1;
            continue;
        }
        let e = p.weeks.entry(w).or_default();
        e.actual_cents += s * r.paid_cents;
        e.receipts += s;
        e.dirty = true;
    }
}

/// What the payer pays of a paid claim's expected amount: its payments over the expected
/// amounts of its claims adjudicated paid (1 before any; at most 2). The expected amount is the
/// contract's, the patient's share included, while the receipts are the payer's payment (CLP04):
/// without this a payer is over-forecast by its patients' share.
pub fn paid_ratio(p: &CashPayer) -> f64 {
    if p.paid_expected_cents > 0 {
        (p.paid_received_cents as f64 / p.paid_expected_cents as f64).clamp(0.0, 2.0)
    } else {
        1.0
    }
}

/// paid / adjudicated, when anything was adjudicated.
pub fn payment_rate(p: &CashPayer) -> Option<f64> {
    (p.adjudicated > 0).then(|| p.paid as f64 / p.adjudicated as f64)
}

/// The open claims placed as of day `t` on the days `from..to`.
pub fn forecast(p: &CashPayer, t: EpochDay, from: EpochDay, to: EpochDay) -> dist::Placed {
    let rate = payment_rate(p).unwrap_or(0.0);
    let share = paid_ratio(p);
    dist::place(
        &p.days,
        p.open.iter().map(|(s, o)| {
            (
                *s,
                share * (o.scored_paid_cents as f64 + o.unscored_expected_cents as f64 * rate),
            )
        }),
        t,
        from,
        to,
    )
}

/// What every record emitted at one flow day carries.
struct Status {
    forward: Vec<WeekAmount>,
    open_claims: i64,
    open_expected_cents: i64,
    open_expected_paid_cents: i64,
    stale_open_cents: i64,
    unscored_open_claims: i64,
    payment_rate: Option<f64>,
    paid_claims_observed: i64,
    median_days_to_payment: Option<f64>,
}

impl Status {
    fn of(p: &CashPayer, t: EpochDay, horizon_weeks: u32) -> Self {
        let from = week_start(t);
        let to = from + 7 * horizon_weeks as EpochDay;
        let placed = forecast(p, t, from, to);
        let forward = (0..horizon_weeks as EpochDay)
            .map(|i| {
                let w = from + 7 * i;
                WeekAmount {
                    iso_week: iso_week(w),
                    week_start: w,
                    expected_cents: placed.sum(from, w, w + 7).round() as i64,
                }
            })
            .collect();
        let rate = payment_rate(p);
        let open = p.open.values();
        Self {
            forward,
            open_claims: open.clone().map(|o| o.claims).sum(),
            open_expected_cents: open.clone().map(|o| o.expected_cents).sum(),
            open_expected_paid_cents: open
                .clone()
                .map(|o| {
                    o.scored_paid_cents
                        + (o.unscored_expected_cents as f64 * rate.unwrap_or(0.0)).round() as i64
                })
                .sum(),
            stale_open_cents: placed.stale.round() as i64,
            unscored_open_claims: open.map(|o| o.unscored_claims).sum(),
            payment_rate: rate,
            paid_claims_observed: dist::total(&p.days),
            median_days_to_payment: dist::median(&p.days),
        }
    }
}

fn record(
    payer_id: &str,
    payer_category: PayerCategory,
    week: EpochDay,
    e: &WeekEntry,
    complete: bool,
    event_time: EpochMillis,
    s: &Status,
) -> CashForecast {
    let iso = iso_week(week);
    let forecast_cents = e.forecast.map(|f| f.0);
    let error_cents = forecast_cents.map(|f| e.actual_cents - f);
    CashForecast {
        output_id: format!("{payer_id}:{iso}:{}", e.version),
        forecast_key: format!("{payer_id}:{iso}"),
        payer_id: payer_id.to_owned(),
        payer_category,
        iso_week: iso,
        week_start: week,
        version: e.version,
        event_time,
        complete,
        forecast_cents,
        forecast_open_claims: e.forecast.map_or(0, |f| f.1),
        actual_cents: e.actual_cents,
        receipts: e.receipts,
        error_cents,
        abs_pct_error: error_cents
            .filter(|_| e.actual_cents != 0)
            .map(|err| err.unsigned_abs() as f64 / e.actual_cents.unsigned_abs() as f64),
        forward: s.forward.clone(),
        open_claims: s.open_claims,
        open_expected_cents: s.open_expected_cents,
        open_expected_paid_cents: s.open_expected_paid_cents,
        stale_open_cents: s.stale_open_cents,
        unscored_open_claims: s.unscored_open_claims,
        payment_rate: s.payment_rate,
        paid_claims_observed: s.paid_claims_observed,
        median_days_to_payment: s.median_days_to_payment,
    }
}
