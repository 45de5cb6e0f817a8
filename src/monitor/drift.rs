//! Drift of a daily window against its payer's baseline (the previous closed daily windows):
//! a denial-rate z-score with the binomial standard error and a chi-squared test of the
//! denial-category mix.

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::window::{Aggregate, CATEGORIES};
use crate::refdata::CarcCategory;

/// The pooled counts of the baseline windows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Baseline {
    pub windows: i32,
    pub adjudicated: i64,
    pub denied: i64,
    pub category_count: [i64; CATEGORIES],
}

impl Baseline {
    pub fn add(&mut self, agg: &Aggregate) {
        self.windows += 1;
        self.adjudicated += agg.adjudicated;
        self.denied += agg.denied;
        for (b, c) in self.category_count.iter_mut().zip(agg.category_count) {
            *b += c;
        }
    }
}

/// The drift signals of a window (all `None` when the data is too thin).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drift {
    pub baseline_denial_rate: Option<f64>,
    pub denial_rate_z: Option<f64>,
    pub chi2: Option<f64>,
    pub dof: Option<i32>,
    pub p_value: Option<f64>,
}

/// Denial-rate z-score of `agg` against `base`: `(p - p0) / sqrt(p0 (1 - p0) / n)` with `n` the
/// window's adjudications, so the same departure counts for less on a low-volume day. `p0` is
/// clamped to `[0.5 / n0, 1 - 0.5 / n0]` (a baseline without any denial would otherwise have no
/// variance and flag the first denial as infinitely unusual).
pub fn denial_rate_z(
    agg: &Aggregate,
    base: &Baseline,
    min_baseline: i64,
) -> (Option<f64>, Option<f64>) {
    if base.adjudicated < min_baseline.max(1) {
        return (None, None);
    }
    let n0 = base.adjudicated as f64;
    let raw = base.denied as f64 / n0;
    if agg.adjudicated == 0 {
        return (Some(raw), None);
    }
    let p0 = raw.clamp(0.5 / n0, 1.0 - 0.5 / n0);
    let n = agg.adjudicated as f64;
    let se = (p0 * (1.0 - p0) / n).sqrt();
    (Some(raw), Some((agg.denial_rate() - p0) / se))
}

/// Indexes of the denial categories among [`CarcCategory::ALL`] (the cells of the mix test).
fn denial_cells() -> impl Iterator<Item = usize> {
    CarcCategory::ALL
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_denial())
        .map(|(i, _)| i)
}

/// Pearson chi-squared of the window's counts by primary denial category against the baseline
/// proportions (each smoothed by +0.5 so a category the baseline never saw has a small, non-zero
/// expectation), with `cells - 1` degrees of freedom and the upper-tail p-value.
pub fn carc_mix(
    agg: &Aggregate,
    base: &Baseline,
    min_window: i64,
    min_baseline: i64,
) -> (Option<f64>, Option<i32>, Option<f64>) {
    let window: i64 = denial_cells().map(|i| agg.category_count[i]).sum();
    let baseline: i64 = denial_cells().map(|i| base.category_count[i]).sum();
    if window < min_window.max(1) || baseline < min_baseline.max(1) {
        return (None, None, None);
    }
    let cells = denial_cells().count();
    let total = baseline as f64 + 0.5 * cells as f64;
    let chi2: f64 = denial_cells()
        .map(|i| {
            let expected = window as f64 * (base.category_count[i] as f64 + 0.5) / total;
            let d = agg.category_count[i] as f64 - expected;
            d * d / expected
        })
        .sum();
    let dof = cells as i32 - 1;
    let p = ChiSquared::new(f64::from(dof))
        .map(|d| d.sf(chi2))
        .ok()
        .map(|p| p.clamp(0.0, 1.0));
    (Some(chi2), Some(dof), p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(adjudicated: i64, denied: i64) -> Aggregate {
        Aggregate {
            adjudicated,
            denied,
            ..Default::default()
        }
    }

    #[test]
    fn z_uses_the_window_volume() {
        let base = Baseline {
            windows: 28,
            adjudicated: 2800,
            denied: 280,
            ..Default::default()
        };
        // 20 % denied against a 10 % baseline: z = 0.1 / sqrt(0.09 / n).
        let (p0, z) = denial_rate_z(&agg(100, 20), &base, 100);
        assert_eq!(p0, Some(0.1));
        assert!((z.unwrap() - 0.1 / (0.09f64 / 100.0).sqrt()).abs() < 1e-9);
        // The same rate on 10 claims is one third as unusual.
        let (_, small) = denial_rate_z(&agg(10, 2), &base, 100);
        assert!(small.unwrap() < 1.1 && small.unwrap() > 1.0);
        // Too thin a baseline: nothing.
        assert_eq!(denial_rate_z(&agg(100, 20), &base, 5000), (None, None));
    }

    #[test]
    fn chi2_is_small_for_the_same_mix_and_large_for_a_shift() {
        let auth = CarcCategory::Authorization as usize;
        let coding = CarcCategory::Coding as usize;
        let mut base = Baseline::default();
        base.category_count[auth] = 500;
        base.category_count[coding] = 500;
        let mut same = Aggregate::default();
        same.category_count[auth] = 25;
        same.category_count[coding] = 25;
        let (chi2, dof, p) = carc_mix(&same, &base, 20, 50);
        assert_eq!(dof, Some(8));
        assert!(chi2.unwrap() < 1.0 && p.unwrap() > 0.9, "{chi2:?} {p:?}");
        let mut shifted = Aggregate::default();
        shifted.category_count[auth] = 48;
        shifted.category_count[coding] = 2;
        let (_, _, p) = carc_mix(&shifted, &base, 20, 50);
        assert!(p.unwrap() < 1e-5, "{p:?}");
        assert_eq!(carc_mix(&shifted, &base, 60, 50), (None, None, None));
    }
}
