//! One payer's tumbling window: the running aggregate of its facts and what has been emitted.

use serde::{Deserialize, Serialize};

use crate::metrics::labels::carc_category_index;
use crate::model::{
    AmountByCode, CountByCode, EpochMillis, FactKind, FactOutcome, Granularity, PayerCategory,
    PayerFact,
};
use crate::refdata::CarcCategory;

/// Days-to-payment histogram: one bucket per whole day 0..=[`MAX_EXACT_DAYS`], then one overflow
/// bucket. A median at most [`MAX_EXACT_DAYS`] is exact (days are whole numbers); past it the
/// median is reported as `MAX_EXACT_DAYS + 1` ("over 120 days").
pub const MAX_EXACT_DAYS: usize = 120;
const DAY_BUCKETS: usize = MAX_EXACT_DAYS + 2;

/// Number of CARC categories ([`CarcCategory::ALL`]).
pub const CATEGORIES: usize = CarcCategory::ALL.len();

/// The sums of a window's facts. Every field is a plain sum, so the aggregate of a set of facts
/// does not depend on the order they were added in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    pub submitted: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub adjudicated: i64,
    pub paid: i64,
    pub partially_paid: i64,
    pub denied: i64,
    pub reversed: i64,
    pub paid_cents: i64,
    pub denied_cents: i64,
    pub reversed_cents: i64,
    pub first_adjudicated: i64,
    pub first_pass_paid: i64,
    /// Adjudications by primary denial category (index of [`CarcCategory::ALL`]).
    pub category_count: [i64; CATEGORIES],
    /// Denial-category adjustment cents by category.
    pub category_cents: [i64; CATEGORIES],
    /// Days-to-payment histogram (empty until the first paid adjudication).
    pub days_to_payment: Vec<u32>,
}

impl Aggregate {
    /// Adds one fact. No allocation except the histogram's first use in the window.
    pub fn add(&mut self, fact: &PayerFact) {
        match fact.kind {
            FactKind::Submitted => self.submitted += 1,
            FactKind::Accepted => self.accepted += 1,
            FactKind::Rejected => self.rejected += 1,
            FactKind::Reversed => {
                self.reversed += 1;
                self.reversed_cents += fact.paid_cents;
            }
            FactKind::Adjudicated => {
                self.adjudicated += 1;
                match fact.outcome {
                    Some(FactOutcome::Denied) | None => self.denied += 1,
                    Some(o) => {
                        self.paid += 1;
                        if o == FactOutcome::PartiallyPaid {
                            self.partially_paid += 1;
                        }
                        self.paid_cents += fact.paid_cents;
                        if let Some(d) = fact.days_to_payment {
                            self.add_days(d);
                        }
                    }
                }
                self.denied_cents += fact.denied_cents;
                if fact.first_adjudication {
                    self.first_adjudicated += 1;
                    if fact.first_pass_paid {
                        self.first_pass_paid += 1;
                    }
                }
                if let Some(c) = &fact.denial_category {
                    self.category_count[carc_category_index(c)] += 1;
                }
                for a in &fact.denied_by_category {
                    self.category_cents[carc_category_index(&a.code)] += a.amount_cents;
                }
            }
        }
    }

    fn add_days(&mut self, days: i32) {
        if self.days_to_payment.is_empty() {
            self.days_to_payment = vec![0; DAY_BUCKETS];
        }
        let i = usize::try_from(days.max(0))
            .unwrap_or(0)
            .min(DAY_BUCKETS - 1);
        self.days_to_payment[i] += 1;
    }

    /// denied / adjudicated (0 without adjudications).
    pub fn denial_rate(&self) -> f64 {
        ratio(self.denied, self.adjudicated)
    }

    /// first_pass_paid / first_adjudicated (0 without first adjudications).
    pub fn first_pass_yield(&self) -> f64 {
        ratio(self.first_pass_paid, self.first_adjudicated)
    }

    /// Median days to payment from the histogram: the middle value, or the mean of the two middle
    /// values for an even count.
    pub fn median_days_to_payment(&self) -> Option<f64> {
        let n: u64 = self.days_to_payment.iter().map(|c| u64::from(*c)).sum();
        if n == 0 {
            return None;
        }
        let nth = |k: u64| -> usize {
            // The k-th smallest value (0-based).
            let mut seen = 0u64;
            for (day, c) in self.days_to_payment.iter().enumerate() {
                seen += u64::from(*c);
                if seen > k {
                    return day;
                }
            }
            DAY_BUCKETS - 1
        };
        let (lo, hi) = (nth((n - 1) / 2), nth(n / 2));
        Some((lo + hi) as f64 / 2.0)
    }

    /// Denied dollars by category, largest first (ties by name), at most `n`.
    pub fn top_denied_cents(&self, n: usize) -> Vec<AmountByCode> {
        let mut v: Vec<(i64, &str)> = CarcCategory::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| self.category_cents[*i] > 0)
            .map(|(i, c)| (self.category_cents[i], c.as_str()))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        v.into_iter()
            .take(n)
            .map(|(amount_cents, code)| AmountByCode {
                code: code.to_owned(),
                amount_cents,
            })
            .collect()
    }

    /// Adjudications by primary denial category, most first (ties by name), at most `n`.
    pub fn top_denial_counts(&self, n: usize) -> Vec<CountByCode> {
        let mut v: Vec<(i64, &str)> = CarcCategory::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| self.category_count[*i] > 0)
            .map(|(i, c)| (self.category_count[i], c.as_str()))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        v.into_iter()
            .take(n)
            .map(|(count, code)| CountByCode {
                code: code.to_owned(),
                count,
            })
            .collect()
    }
}

fn ratio(a: i64, b: i64) -> f64 {
    if b > 0 {
        a as f64 / b as f64
    } else {
        0.0
    }
}

/// The durable state of one window (table `payer_windows`, key [`window_key`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    pub payer_id: String,
    pub payer_category: PayerCategory,
    pub granularity: Granularity,
    pub start: EpochMillis,
    /// Last emitted version (0: not emitted yet).
    pub version: i64,
    /// Facts applied after the first emission.
    pub late_facts: i64,
    /// Rules already alerted for this window (bit = [`crate::model::MonitorRule`] index).
    pub alerted: u8,
    pub agg: Aggregate,
}

impl Default for WindowState {
    fn default() -> Self {
        Self {
            payer_id: String::new(),
            payer_category: PayerCategory::Other,
            granularity: Granularity::Hourly,
            start: 0,
            version: 0,
            late_facts: 0,
            alerted: 0,
            agg: Aggregate::default(),
        }
    }
}

impl WindowState {
    pub fn end(&self) -> EpochMillis {
        self.start + self.granularity.millis()
    }
}

/// Start of the window of `granularity` that holds `t` (UTC-aligned; floor for negative times).
pub fn window_start(t: EpochMillis, granularity: Granularity) -> EpochMillis {
    t.div_euclid(granularity.millis()) * granularity.millis()
}

/// The state key of a window, written into `out` (cleared first): `<payer_id>|<H|D>|<start>`.
pub fn window_key(out: &mut String, payer_id: &str, granularity: Granularity, start: EpochMillis) {
    out.clear();
    out.push_str(payer_id);
    out.push_str(match granularity {
        Granularity::Hourly => "|H|",
        Granularity::Daily => "|D|",
    });
    crate::state::push_int(out, start);
}
