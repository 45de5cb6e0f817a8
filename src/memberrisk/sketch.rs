//! The top-N % threshold of the latest predictions: a fixed-bucket logarithmic histogram.
//!
//! Bucket 0 holds predictions below $1 (100 cents); bucket `i >= 1` holds
//! `[100 * r^(i-1), 100 * r^i)` cents with `r = 1.05`, up to the last bucket, which holds
//! everything from `100 * r^(BUCKETS-2)` cents (about $97 million) up. Each member contributes
//! its latest prediction once: a new prediction takes the old one out of its bucket and adds the
//! new one. The threshold of the top `p` % is the lower edge of the bucket where the count of
//! predictions at or above it first reaches `ceil(n * p / 100)`: every prediction that is among
//! the exact top `ceil(n p / 100)` lies at or above it, and a prediction at or above it is at
//! most one bucket (5 %) below the exact cut value. Exact counts, so adding and removing in any
//! order gives the same histogram; 380 buckets of `u32`, about 1.5 kB per partition.

use serde::{Deserialize, Serialize};

/// Ratio between consecutive bucket edges.
pub const RATIO: f64 = 1.05;
/// Number of buckets.
pub const BUCKETS: usize = 380;
/// Lower edge of bucket 1, in cents.
const FIRST_EDGE_CENTS: f64 = 100.0;

/// The bucket of a prediction in cents.
pub fn bucket_of(cents: i64) -> u16 {
    if (cents as f64) < FIRST_EDGE_CENTS {
        return 0;
    }
    let i = ((cents as f64 / FIRST_EDGE_CENTS).ln() / RATIO.ln()).floor() as i64 + 1;
    // Floating point at an exact edge: make sure the edge itself belongs to the bucket.
    let mut i = i.clamp(1, BUCKETS as i64 - 1) as usize;
    while i > 1 && (cents as f64) < lower_edge(i) {
        i -= 1;
    }
    while i + 1 < BUCKETS && (cents as f64) >= lower_edge(i + 1) {
        i += 1;
    }
    i as u16
}

/// The lower edge of a bucket, in cents.
pub fn lower_edge(bucket: usize) -> f64 {
    if bucket == 0 {
        0.0
    } else {
        FIRST_EDGE_CENTS * RATIO.powi(bucket as i32 - 1)
    }
}

/// Counts of the latest predictions per bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sketch {
    pub counts: Vec<u32>,
    pub total: u64,
}

impl Default for Sketch {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

impl Sketch {
    pub fn add(&mut self, bucket: u16) {
        if let Some(c) = self.counts.get_mut(usize::from(bucket)) {
            *c += 1;
            self.total += 1;
        }
    }

    pub fn remove(&mut self, bucket: u16) {
        if let Some(c) = self.counts.get_mut(usize::from(bucket)) {
            if *c > 0 {
                *c -= 1;
                self.total -= 1;
            }
        }
    }

    /// The threshold (cents) of the top `percent` %, or `None` when empty.
    pub fn threshold_cents(&self, percent: f64) -> Option<i64> {
        if self.total == 0 {
            return None;
        }
        let want = ((self.total as f64) * percent / 100.0).ceil().max(1.0) as u64;
        let mut above = 0u64;
        for i in (0..BUCKETS).rev() {
            above += u64::from(self.counts[i]);
            if above >= want {
                return Some(lower_edge(i).ceil() as i64);
            }
        }
        Some(0)
    }
}

/// The exact threshold the sketch approximates: the smallest of the `ceil(n p / 100)` largest
/// values (for tests and the batch check).
pub fn exact_threshold(values: &[i64], percent: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable_by(|a, b| b.cmp(a));
    let want = ((v.len() as f64) * percent / 100.0).ceil().max(1.0) as usize;
    Some(v[want.min(v.len()) - 1])
}
