//! The days-to-payment distribution of a payer and the placement of open claims' expected cash
//! on future days (pure arithmetic).
//!
//! **Histogram.** One bucket per whole day from first submission to first payment,
//! 0..=[`MAX_DAYS`], and one overflow bucket for anything later: [`BUCKETS`] signed counts per
//! payer, whatever the volume (bounded memory). It is cumulative over the payer's paid claims
//! (no decay): each paid claim counts once, at its current days-to-first-payment.
//!
//! **Placement.** An open claim first submitted on day `s`, with expected paid amount `m`, seen
//! as of day `t` (age `a = t - s`, at least 0) has not been paid in its first `a` days, so its
//! payment day is drawn from the histogram truncated at `a`:
//! `P(paid on day s + d) = h[d] / sum(h[k] for k >= a)` for `d` in `a..=MAX_DAYS`. The overflow
//! bucket takes its share of the denominator but is placed on no day (beyond 120 days). A claim
//! with no mass left (older than every observed payment, or a payer with no paid claims yet) is
//! *stale*: its amount is reported but not placed.

use crate::model::EpochDay;

/// Last exact day of the histogram.
pub const MAX_DAYS: usize = 120;
/// Buckets: days 0..=MAX_DAYS and the overflow bucket.
pub const BUCKETS: usize = MAX_DAYS + 2;

/// Adds `sign` at `days` (clamped into 0..=overflow). Allocates the buckets on first use.
pub fn add(hist: &mut Vec<i64>, days: i32, sign: i64) {
    if hist.is_empty() {
        *hist = vec![0; BUCKETS];
    }
    let i = usize::try_from(days.max(0)).unwrap_or(0).min(BUCKETS - 1);
    hist[i] += sign;
}

/// Total count.
pub fn total(hist: &[i64]) -> i64 {
    hist.iter().map(|c| (*c).max(0)).sum()
}

/// Median days (mean of the two middle values for an even count; 121 means over 120).
pub fn median(hist: &[i64]) -> Option<f64> {
    let n = u64::try_from(total(hist)).ok().filter(|n| *n > 0)?;
    let nth = |k: u64| -> usize {
        let mut seen = 0u64;
        for (day, c) in hist.iter().enumerate() {
            seen += u64::try_from((*c).max(0)).unwrap_or(0);
            if seen > k {
                return day;
            }
        }
        BUCKETS - 1
    };
    Some((nth((n - 1) / 2) + nth(n / 2)) as f64 / 2.0)
}

/// Open claims' expected cash placed on the days `from..to` as of day `t`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placed {
    /// Expected cash by day, index `day - from`, cents.
    pub by_day: Vec<f64>,
    /// Mass placed on days outside `from..to` or beyond the histogram (overflow bucket).
    pub outside: f64,
    /// Mass of claims with nothing left in the truncated distribution.
    pub stale: f64,
}

impl Placed {
    /// Sum of the days `a..b` (clamped to the placed range).
    pub fn sum(&self, from: EpochDay, a: EpochDay, b: EpochDay) -> f64 {
        let lo = usize::try_from(a - from)
            .unwrap_or(0)
            .min(self.by_day.len());
        let hi = usize::try_from(b - from)
            .unwrap_or(0)
            .min(self.by_day.len());
        self.by_day[lo..hi.max(lo)].iter().sum()
    }
}

/// Places `open` — (first submission day, expected paid amount in cents) — as of day `t` on the
/// days `from..to` (see the module docs). Negative counts (never in a consistent aggregate) are
/// read as 0.
pub fn place(
    hist: &[i64],
    open: impl IntoIterator<Item = (EpochDay, f64)>,
    t: EpochDay,
    from: EpochDay,
    to: EpochDay,
) -> Placed {
    let len = usize::try_from(to - from).unwrap_or(0);
    let mut placed = Placed {
        by_day: vec![0.0; len],
        ..Placed::default()
    };
    // tail[a] = sum of h[k] for k >= a.
    let mut tail = [0i64; BUCKETS + 1];
    if hist.len() == BUCKETS {
        for a in (0..BUCKETS).rev() {
            tail[a] = tail[a + 1] + hist[a].max(0);
        }
    }
    for (s, mass) in open {
        if mass == 0.0 {
            continue;
        }
        let a = usize::try_from((t - s).max(0)).unwrap_or(usize::MAX);
        if a > MAX_DAYS || tail[a] <= 0 {
            placed.stale += mass;
            continue;
        }
        let denom = tail[a] as f64;
        for (d, c) in hist.iter().enumerate().take(MAX_DAYS + 1).skip(a) {
            if *c <= 0 {
                continue;
            }
            let share = mass * (*c as f64) / denom;
            let day = s + d as EpochDay;
            if (from..to).contains(&day) {
                placed.by_day[(day - from) as usize] += share;
            } else {
                placed.outside += share;
            }
        }
        placed.outside += mass * (hist[BUCKETS - 1].max(0) as f64) / denom;
    }
    placed
}
