//! Members: demographics, payer, chronic conditions and a latent frailty.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::model::{PayerCategory, Sex};

/// A payer of the synthetic market. `denial_logit` shifts the log-odds of a denial: some payers
/// deny more than others (the spread of payer denial rates in industry surveys is roughly 2-3x).
#[derive(Clone, Copy, Debug)]
pub struct Payer {
    pub id: &'static str,
    pub category: PayerCategory,
    pub denial_logit: f64,
    pub rejection_logit: f64,
    /// Fraction of the billed amount the contract allows (expected amount).
    pub allowed_ratio: f64,
    /// Median days from submission to payment.
    pub days_to_pay: i32,
}

pub const PAYERS: [Payer; 10] = [
    Payer {
        id: "P-MCR-A",
        category: PayerCategory::Medicare,
        denial_logit: -0.35,
        rejection_logit: -0.2,
        allowed_ratio: 0.36,
        days_to_pay: 16,
    },
    Payer {
        id: "P-MCR-B",
        category: PayerCategory::Medicare,
        denial_logit: -0.25,
        rejection_logit: -0.1,
        allowed_ratio: 0.38,
        days_to_pay: 18,
    },
    Payer {
        id: "P-MA-NORTH",
        category: PayerCategory::MedicareAdvantage,
        denial_logit: 0.45,
        rejection_logit: 0.1,
        allowed_ratio: 0.40,
        days_to_pay: 28,
    },
    Payer {
        id: "P-MA-SOUTH",
        category: PayerCategory::MedicareAdvantage,
        denial_logit: 0.25,
        rejection_logit: 0.0,
        allowed_ratio: 0.41,
        days_to_pay: 24,
    },
    Payer {
        id: "P-MCD-STATE",
        category: PayerCategory::Medicaid,
        denial_logit: 0.35,
        rejection_logit: 0.4,
        allowed_ratio: 0.30,
        days_to_pay: 32,
    },
    Payer {
        id: "P-MCD-MCO",
        category: PayerCategory::Medicaid,
        denial_logit: 0.5,
        rejection_logit: 0.3,
        allowed_ratio: 0.32,
        days_to_pay: 30,
    },
    Payer {
        id: "P-COM-ACME",
        category: PayerCategory::Commercial,
        denial_logit: 0.0,
        rejection_logit: -0.2,
        allowed_ratio: 0.55,
        days_to_pay: 21,
    },
    Payer {
        id: "P-COM-UNITY",
        category: PayerCategory::Commercial,
        denial_logit: -0.2,
        rejection_logit: -0.3,
        allowed_ratio: 0.58,
        days_to_pay: 19,
    },
    Payer {
        id: "P-COM-SUMMIT",
        category: PayerCategory::Commercial,
        denial_logit: 0.3,
        rejection_logit: 0.0,
        allowed_ratio: 0.52,
        days_to_pay: 26,
    },
    Payer {
        id: "P-SELF",
        category: PayerCategory::SelfPay,
        denial_logit: -1.0,
        rejection_logit: -1.0,
        allowed_ratio: 0.25,
        days_to_pay: 40,
    },
];

/// The Medicare supplement payer that pays coinsurance as secondary (CLP02 2).
pub const SUPPLEMENT_PAYER: &str = "P-COM-MEDIGAP";

/// A chronic condition, its ICD-10-CM codes (no dot) and Charlson weight (Charlson 1987).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Condition {
    pub name: &'static str,
    pub codes: &'static [&'static str],
    pub charlson_weight: i32,
    /// Prevalence at age 40 and at age 80 (linear in between, clamped).
    pub prevalence: (f64, f64),
}

pub const CONDITIONS: [Condition; 9] = [
    Condition {
        name: "heart_failure",
        codes: &["I509", "I5022", "I110"],
        charlson_weight: 1,
        prevalence: (0.01, 0.14),
    },
    Condition {
        name: "copd",
        codes: &["J449", "J441"],
        charlson_weight: 1,
        prevalence: (0.03, 0.13),
    },
    Condition {
        name: "diabetes",
        codes: &["E119"],
        charlson_weight: 1,
        prevalence: (0.06, 0.22),
    },
    Condition {
        name: "diabetes_complicated",
        codes: &["E1122", "E1142"],
        charlson_weight: 2,
        prevalence: (0.01, 0.08),
    },
    Condition {
        name: "ckd",
        codes: &["N184", "N183"],
        charlson_weight: 2,
        prevalence: (0.01, 0.12),
    },
    Condition {
        name: "old_mi",
        codes: &["I252"],
        charlson_weight: 1,
        prevalence: (0.01, 0.08),
    },
    Condition {
        name: "cancer",
        codes: &["C3490", "C50911", "C189"],
        charlson_weight: 2,
        prevalence: (0.01, 0.06),
    },
    Condition {
        name: "metastatic",
        codes: &["C787", "C7951"],
        charlson_weight: 6,
        prevalence: (0.002, 0.015),
    },
    Condition {
        name: "depression",
        codes: &["F329"],
        charlson_weight: 0,
        prevalence: (0.07, 0.06),
    },
];

/// One synthetic member.
#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub age: i32,
    pub sex: Sex,
    pub payer: &'static Payer,
    /// Medicare members with a supplement policy that pays coinsurance as secondary.
    pub supplement: bool,
    pub conditions: Vec<&'static Condition>,
    /// Latent frailty, standard normal: drives utilisation and readmission, unseen by models.
    pub frailty: f64,
    /// Propensity of this member's claims to have documentation gaps (latent).
    pub doc_gap_propensity: f64,
}

impl Member {
    pub fn charlson(&self) -> i32 {
        self.conditions.iter().map(|c| c.charlson_weight).sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.conditions.iter().any(|c| c.name == name)
    }

    /// Diagnosis codes of the chronic conditions (one per condition).
    pub fn chronic_codes(&self) -> Vec<String> {
        self.conditions
            .iter()
            .map(|c| c.codes[0].to_owned())
            .collect()
    }
}

pub fn member(rng: &mut impl Rng, index: usize) -> Member {
    // Age: a commercial/Medicaid adult population plus a large 65+ share (hospital users skew old).
    let age = if rng.gen_bool(0.42) {
        rng.gen_range(65..=95)
    } else {
        rng.gen_range(18..=64)
    };
    let sex = if rng.gen_bool(0.52) {
        Sex::Female
    } else {
        Sex::Male
    };
    let payer_index = if age >= 65 {
        if rng.gen_bool(0.58) {
            rng.gen_range(0..2)
        } else {
            rng.gen_range(2..4)
        }
    } else {
        let u: f64 = rng.gen();
        if u < 0.28 {
            rng.gen_range(4..6)
        } else if u < 0.93 {
            rng.gen_range(6..9)
        } else {
            9
        }
    };
    let payer = &PAYERS[payer_index];
    let supplement = payer.category == PayerCategory::Medicare && rng.gen_bool(0.25);
    let frailty: f64 = Normal::new(0.0, 1.0).map(|n| n.sample(rng)).unwrap_or(0.0);
    let t = ((f64::from(age) - 40.0) / 40.0).clamp(0.0, 1.0);
    let mut conditions = Vec::new();
    for c in &CONDITIONS {
        let base = c.prevalence.0 + (c.prevalence.1 - c.prevalence.0) * t;
        // Frail members carry more chronic disease.
        let p = (base * (0.35 * frailty).exp()).min(0.9);
        if rng.gen_bool(p) {
            conditions.push(c);
        }
    }
    if conditions.iter().any(|c| c.name == "diabetes_complicated") {
        conditions.retain(|c| c.name != "diabetes");
    }
    Member {
        id: format!("M{:07}", index + 1),
        age,
        sex,
        payer,
        supplement,
        conditions,
        frailty,
        doc_gap_propensity: rng.gen_range(0.02..0.12),
    }
}
