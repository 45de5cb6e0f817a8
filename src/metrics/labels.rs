//! Label values: the fixed vocabularies every label is drawn from, and a guard for the few labels
//! whose values come from configuration or data (topic names, dead-letter reason codes, model
//! versions, departments), so that no input can create an unbounded number of series.
//!
//! Every label value in claimwatch's metrics comes from one of these: an enum's `as_str`, a fixed
//! list below, or a [`Bounded`] set. None is ever a claim, member, provider or encounter id.

use std::collections::HashSet;
use std::sync::RwLock;

use crate::model::{ClaimStatus, PayerCategory};
use crate::refdata::CarcCategory;

/// Label value when a value is missing (no payer category on an update yet, no HRRP cohort).
pub const UNKNOWN: &str = "UNKNOWN";
/// Label value that stands for every value past a [`Bounded`] set's capacity, or an invalid one.
pub const OTHER: &str = "other";

/// Payer category labels: the six categories, then `UNKNOWN` (index 6) for an update without one.
pub const PAYER_CATEGORIES: [&str; 7] = [
    "MEDICARE",
    "MEDICARE_ADVANTAGE",
    "MEDICAID",
    "COMMERCIAL",
    "SELF_PAY",
    "OTHER",
    UNKNOWN,
];

/// Index of a payer category in [`PAYER_CATEGORIES`].
pub fn payer_index(p: Option<PayerCategory>) -> usize {
    match p {
        Some(p) => p as usize,
        None => PAYER_CATEGORIES.len() - 1,
    }
}

/// Index of a status in [`ClaimStatus::ALL`] (the declaration order; checked by a test).
pub fn status_index(s: ClaimStatus) -> usize {
    s as usize
}

/// Index of a CARC category name (`CarcCategory::as_str`) in [`CarcCategory::ALL`]; anything else
/// is `OTHER`.
pub fn carc_category_index(name: &str) -> usize {
    CarcCategory::ALL
        .iter()
        .position(|c| c.as_str() == name)
        .unwrap_or(CarcCategory::Other as usize)
}

/// CAS adjustment groups ("CARC groups"), then `other`.
pub const CARC_GROUPS: [&str; 6] = ["CO", "PR", "OA", "PI", "CR", OTHER];

pub fn carc_group_index(code: &str) -> usize {
    CARC_GROUPS[..5]
        .iter()
        .position(|g| *g == code)
        .unwrap_or(CARC_GROUPS.len() - 1)
}

/// HRRP condition cohorts (`hrrp_cohorts.csv`), then `NONE` (an index stay in no cohort) and
/// `other` (a cohort name this build does not know: a newer reference table).
pub const HRRP_COHORTS: [&str; 8] = [
    "AMI",
    "HF",
    "PNEUMONIA",
    "COPD",
    "CABG",
    "THA_TKA",
    "NONE",
    OTHER,
];

pub fn cohort_index(cohort: Option<&str>) -> usize {
    match cohort {
        None => 6,
        Some(c) => HRRP_COHORTS[..6].iter().position(|k| *k == c).unwrap_or(7),
    }
}

/// Readmission actions, in `ReadmissionAction` order.
pub const READMISSION_ACTIONS: [&str; 3] = ["DETECTED", "UPDATED", "RETRACTED"];

/// Risk tiers, in `RiskTier` order.
pub const RISK_TIERS: [&str; 3] = ["LOW", "MEDIUM", "HIGH"];

/// The scoring models.
pub const MODELS: [&str; 2] = ["denial", "readmission"];

/// A/R aging buckets, by days since submission.
pub const AR_BUCKETS: [&str; 5] = ["0-30", "31-60", "61-90", "91-120", "120+"];

pub fn ar_bucket_index(age_days: i32) -> usize {
    match age_days {
        i32::MIN..=30 => 0,
        31..=60 => 1,
        61..=90 => 2,
        91..=120 => 3,
        _ => 4,
    }
}

/// Departments (service lines: CARDIOLOGY, ONCOLOGY, ...) come from the claims and encounters:
/// the first [`DEPARTMENT_CAP`] distinct codes an instance sees are label values, later ones share
/// [`OTHER`], and a claim whose submission has not arrived yet is [`UNKNOWN`]. A hospital has a
/// few dozen service lines at most; the generator uses about a dozen.
pub const DEPARTMENT_CAP: usize = 32;
/// Longest department code kept as a label value (longer ones are [`OTHER`]).
pub const DEPARTMENT_MAX_LEN: usize = 40;

/// A label whose values come from configuration or data: the first `cap` distinct valid values
/// pass through, everything after (or anything that does not look like a code) becomes `other`.
///
/// Lookups of a known value take a read lock and do not allocate; only a new value allocates.
#[derive(Debug)]
pub struct Bounded {
    cap: usize,
    max_len: usize,
    seen: RwLock<HashSet<Box<str>>>,
}

impl Bounded {
    pub fn new(cap: usize, max_len: usize) -> Self {
        Self {
            cap,
            max_len,
            seen: RwLock::new(HashSet::new()),
        }
    }

    /// `value` when it may be used as a label value, else [`OTHER`].
    pub fn get<'a>(&self, value: &'a str) -> &'a str {
        if !self.valid(value) {
            return OTHER;
        }
        {
            let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
            if seen.contains(value) {
                return value;
            }
            if seen.len() >= self.cap {
                return OTHER;
            }
        }
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= self.cap && !seen.contains(value) {
            return OTHER;
        }
        seen.insert(value.into());
        value
    }

    /// A code or a topic name: short, printable ASCII letters, digits and `._-`.
    fn valid(&self, value: &str) -> bool {
        !value.is_empty()
            && value.len() <= self.max_len
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_enum_order() {
        for (i, s) in ClaimStatus::ALL.iter().enumerate() {
            assert_eq!(status_index(*s), i);
        }
        for (i, p) in PayerCategory::ALL.iter().enumerate() {
            assert_eq!(payer_index(Some(*p)), i);
            assert_eq!(PAYER_CATEGORIES[i], p.as_str());
        }
        assert_eq!(PAYER_CATEGORIES[payer_index(None)], UNKNOWN);
        for (i, c) in CarcCategory::ALL.iter().enumerate() {
            assert_eq!(carc_category_index(c.as_str()), i);
        }
        assert_eq!(
            CarcCategory::ALL[carc_category_index("nonsense")],
            CarcCategory::Other
        );
        assert_eq!(CARC_GROUPS[carc_group_index("PI")], "PI");
        assert_eq!(CARC_GROUPS[carc_group_index("XX")], OTHER);
        assert_eq!(HRRP_COHORTS[cohort_index(Some("HF"))], "HF");
        assert_eq!(HRRP_COHORTS[cohort_index(None)], "NONE");
        assert_eq!(HRRP_COHORTS[cohort_index(Some("SEPSIS"))], OTHER);
        assert_eq!(AR_BUCKETS[ar_bucket_index(0)], "0-30");
        assert_eq!(AR_BUCKETS[ar_bucket_index(31)], "31-60");
        assert_eq!(AR_BUCKETS[ar_bucket_index(120)], "91-120");
        assert_eq!(AR_BUCKETS[ar_bucket_index(121)], "120+");
    }

    #[test]
    fn bounded_caps_and_rejects() {
        let b = Bounded::new(2, 16);
        assert_eq!(b.get("decode"), "decode");
        assert_eq!(b.get("schema"), "schema");
        assert_eq!(b.get("decode"), "decode");
        assert_eq!(b.get("validation"), OTHER);
        assert_eq!(b.get("has space"), OTHER);
        assert_eq!(b.get(""), OTHER);
        assert_eq!(Bounded::new(9, 4).get("toolong"), OTHER);
    }

    #[test]
    fn departments_are_bounded_codes() {
        let d = Bounded::new(DEPARTMENT_CAP, DEPARTMENT_MAX_LEN);
        assert_eq!(d.get("PRIMARY_CARE"), "PRIMARY_CARE");
        // Free text (a name, a sentence) is never a label value.
        assert_eq!(d.get("Dr. Smith's clinic"), OTHER);
        for i in 0..DEPARTMENT_CAP * 2 {
            d.get(&format!("DEPT_{i}"));
        }
        assert_eq!(d.get("ONE_TOO_MANY"), OTHER);
        assert_eq!(d.get("PRIMARY_CARE"), "PRIMARY_CARE");
    }
}
