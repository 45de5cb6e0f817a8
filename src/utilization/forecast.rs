//! The forecast arithmetic (pure): simple exponential smoothing of a weekly count series, and
//! negative-binomial (or Poisson) prediction intervals around it.
//!
//! **Level.** Simple exponential smoothing (SES, Hyndman & Athanasopoulos, *Forecasting:
//! Principles and Practice*, 3rd ed., 8.1) over the closed weeks of history, oldest first:
//! `l_t = l_{t-1} + alpha (y_t - l_{t-1})`, with `l_0` the mean of the first (up to) four weeks.
//! The point forecast of every horizon is the last level (SES forecasts are flat).
//!
//! **Dispersion.** `phi = max(1, sum (y_t - l_{t-1})^2 / sum l_{t-1})`: the one-step-ahead squared
//! errors of the smoothing relative to what a Poisson count with that mean would give (a
//! quasi-Poisson dispersion, McCullagh & Nelder 1989, 4.5). It is floored at 1: a count is never
//! assumed less variable than Poisson.
//!
//! **Interval.** The `h`-week-ahead predictive variance is `v_h = phi m (1 + (h - 1) alpha^2)`,
//! the ETS(A,N,N) variance growth (FPP3 8.7, table 8.8) applied to the count's variance. The count
//! is taken as negative binomial with mean `m` and variance `v_h` (`r = m^2 / (v_h - m)`,
//! `p = r / (r + m)`), or Poisson with mean `m` when `v_h = m`; the 80 % interval is its 10 % and
//! 90 % quantiles and the 95 % interval its 2.5 % and 97.5 % quantiles (statrs' CDFs; a quantile is
//! the smallest count whose CDF reaches the probability). Discrete quantiles make the intervals
//! cover at least their nominal share when the model holds.

use serde::{Deserialize, Serialize};
use statrs::distribution::{DiscreteCDF, NegativeBinomial, Poisson};

/// Quantiles of the 80 % interval.
pub const P80: (f64, f64) = (0.10, 0.90);
/// Quantiles of the 95 % interval.
pub const P95: (f64, f64) = (0.025, 0.975);

/// Weeks averaged for the initial level.
pub const INIT_WEEKS: usize = 4;

/// A point forecast and its prediction intervals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Expected count (rounded to 4 decimals).
    pub mean: f64,
    pub low80: i64,
    pub high80: i64,
    pub low95: i64,
    pub high95: i64,
}

impl Prediction {
    pub fn inside80(&self, actual: i64) -> bool {
        (self.low80..=self.high80).contains(&actual)
    }

    pub fn inside95(&self, actual: i64) -> bool {
        (self.low95..=self.high95).contains(&actual)
    }
}

/// The smoothing of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// The last level (the point forecast), at least 0.
    pub level: f64,
    /// The dispersion `phi` (>= 1).
    pub dispersion: f64,
}

/// Smooths `history` (weekly counts, oldest first); `None` when it is empty.
pub fn fit(history: &[i64], alpha: f64) -> Option<Fit> {
    if history.is_empty() {
        return None;
    }
    let init = history.len().min(INIT_WEEKS);
    let mut level = history[..init].iter().sum::<i64>() as f64 / init as f64;
    let (mut sq, mut predicted) = (0.0, 0.0);
    for &y in history {
        let y = y as f64;
        sq += (y - level) * (y - level);
        predicted += level.max(0.0);
        level += alpha * (y - level);
    }
    let dispersion = if predicted > 0.0 {
        (sq / predicted).max(1.0)
    } else {
        1.0
    };
    Some(Fit {
        level: level.max(0.0),
        dispersion,
    })
}

/// The forecast `h` (>= 1) weeks ahead.
pub fn predict(fit: &Fit, alpha: f64, h: u32) -> Prediction {
    let m = fit.level;
    if m <= 0.0 || !m.is_finite() {
        return Prediction::default();
    }
    let growth = 1.0 + f64::from(h.saturating_sub(1)) * alpha * alpha;
    let v = fit.dispersion * m * growth;
    let [low95, low80, high80, high95] = quantiles(m, v, [P95.0, P80.0, P80.1, P95.1]);
    Prediction {
        mean: (m * 1e4).round() / 1e4,
        low80,
        high80,
        low95,
        high95,
    }
}

/// The quantiles `ps` (ascending) of a count with mean `m` > 0 and variance `v`, in one walk up
/// the probability mass function (the recurrences `P(k+1) = P(k) m / (k+1)` for Poisson and
/// `P(k+1) = P(k) (k+r)/(k+1) (1-p)` for the negative binomial), each the smallest `k` whose CDF
/// reaches it. Falls back to [`quantile`] (statrs' CDF and a binary search) when `P(0)`
/// underflows (very large means).
pub fn quantiles(m: f64, v: f64, ps: [f64; 4]) -> [i64; 4] {
    let over = v > m * (1.0 + 1e-9);
    let (mut pk, step): (f64, Box<dyn Fn(f64) -> f64>) = if over {
        let r = m * m / (v - m);
        let q = m / (r + m); // 1 - p
        (
            (r * (1.0 - q).ln()).exp(),
            Box::new(move |k| (k + r) / (k + 1.0) * q),
        )
    } else {
        ((-m).exp(), Box::new(move |k| m / (k + 1.0)))
    };
    if pk.is_nan() || pk <= 1e-280 {
        return ps.map(|p| quantile(m, v, p));
    }
    let mut out = [0i64; 4];
    let (mut cdf, mut k, mut i) = (pk, 0u64, 0usize);
    // Bounded: the walk passes the top quantile within a few standard deviations of the mean.
    let limit = (m + 50.0 * v.sqrt() + 100.0) as u64;
    while i < ps.len() {
        if cdf >= ps[i] - 1e-12 || k >= limit {
            out[i] = k as i64;
            i += 1;
            continue;
        }
        pk *= step(k as f64);
        k += 1;
        cdf += pk;
    }
    out
}

/// The `p` quantile of a count with mean `m` > 0 and variance `v` (negative binomial when
/// `v > m`, else Poisson): the smallest `k` with `CDF(k) >= p`.
pub fn quantile(m: f64, v: f64, p: f64) -> i64 {
    let over = v > m * (1.0 + 1e-9);
    let cdf: Box<dyn Fn(u64) -> f64> = if over {
        let r = m * m / (v - m);
        match NegativeBinomial::new(r, r / (r + m)) {
            Ok(d) => Box::new(move |k| d.cdf(k)),
            Err(_) => return m.round() as i64,
        }
    } else {
        match Poisson::new(m) {
            Ok(d) => Box::new(move |k| d.cdf(k)),
            Err(_) => return m.round() as i64,
        }
    };
    smallest_reaching(&*cdf, p, m + 10.0 * v.sqrt() + 10.0)
}

/// The smallest `k` with `cdf(k) >= p` (binary search; `guess` is a likely upper bound).
pub fn smallest_reaching(cdf: &dyn Fn(u64) -> f64, p: f64, guess: f64) -> i64 {
    // Floating-point CDFs can fall a hair short of p at the true quantile.
    let p = p - 1e-12;
    let mut hi = guess.max(1.0).ceil() as u64;
    while cdf(hi) < p {
        if hi > u64::MAX / 4 {
            return hi as i64;
        }
        hi *= 2;
    }
    let mut lo = 0u64;
    if cdf(0) >= p {
        return 0;
    }
    // Invariant: cdf(lo) < p <= cdf(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if cdf(mid) >= p {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi as i64
}
