//! Risk adjustment by indirect standardization: observed / expected readmissions with an exact
//! (Garwood) Poisson confidence interval on the observed count.
//!
//! With O observed readmissions and E expected (the sum of the calibrated probabilities of the
//! key's matured index stays), the ratio is O / E. O is treated as Poisson with E fixed (the
//! usual assumption of standardized ratios: E comes from a model fitted on the whole
//! population). The exact 95 % interval of the Poisson mean is
//! `[χ²(0.025; 2O) / 2, χ²(0.975; 2O + 2) / 2]` (lower bound 0 when O = 0), and the interval
//! of O/E is that divided by E. A key is flagged only when the interval excludes 1 and E is at
//! least `min_expected`: a small provider with 1 readmission against 0.3 expected has O/E 3.3 but
//! an interval of 0.08-18.6, and is not flagged.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Two-sided confidence level of the intervals.
pub const CONFIDENCE: f64 = 0.95;

/// The O/E comparison of one key and window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OeRatio {
    pub observed: i64,
    pub expected: f64,
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
}

/// Which way a ratio is flagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OeFlag {
    /// The interval lies above 1: more readmissions than the case mix explains.
    Higher,
    /// The interval lies below 1.
    Lower,
}

impl OeFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Higher => "HIGHER",
            Self::Lower => "LOWER",
        }
    }
}

/// The exact Poisson interval of the mean, given `observed` events.
pub fn poisson_interval(observed: i64) -> (f64, f64) {
    let alpha = 1.0 - CONFIDENCE;
    let o = observed.max(0) as f64;
    let quantile = |dof: f64, p: f64| {
        ChiSquared::new(dof)
            .map(|d| d.inverse_cdf(p))
            .unwrap_or(f64::NAN)
    };
    let low = if observed <= 0 {
        0.0
    } else {
        quantile(2.0 * o, alpha / 2.0) / 2.0
    };
    let high = quantile(2.0 * o + 2.0, 1.0 - alpha / 2.0) / 2.0;
    (low, high)
}

/// O/E and its interval; `None` when nothing is expected (E <= 0).
pub fn observed_to_expected(observed: i64, expected: f64) -> Option<OeRatio> {
    if expected <= 0.0 || !expected.is_finite() {
        return None;
    }
    let (low, high) = poisson_interval(observed);
    Some(OeRatio {
        observed,
        expected,
        ratio: observed as f64 / expected,
        low: low / expected,
        high: high / expected,
    })
}

/// The flag of a ratio: only when its interval excludes 1 and enough is expected.
pub fn flag(r: &OeRatio, min_expected: f64) -> Option<OeFlag> {
    if r.expected < min_expected {
        None
    } else if r.low > 1.0 {
        Some(OeFlag::Higher)
    } else if r.high < 1.0 {
        Some(OeFlag::Lower)
    } else {
        None
    }
}

/// Rounds to 4 decimals (what the records carry).
pub fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}
