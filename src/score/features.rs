//! Feature extraction: what is known about a claim at submission and about a stay at discharge,
//! plus the transparent LACE and HOSPITAL scores and the rolling in-stream denial history.
//!
//! Every function here takes the scoring time explicitly and looks only at what happened before
//! it: a late record that already sits in state (the readmission stay exported before the index
//! discharge, the 835 that arrived before the claim's own export) is filtered out by date, never
//! read. `score::tests` proves it.

use serde::{Deserialize, Serialize};

use crate::model::{
    AdmitType, ClaimFrequency, ClaimSubmitted, ClaimType, EncounterClass, EpochDay, Sex,
};
use crate::readmit::StayRec;
use crate::refdata::{CarcCategory, RefData};

/// Feature values as extracted, before any model's encoding: numbers in the order of the kind's
/// numeric names, category values in the order of its categorical names. This is what a
/// training example stores, so a model with a different encoding can be trained from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RawFeatures {
    pub numeric: Vec<f64>,
    pub categorical: Vec<String>,
}

/// Numeric denial features, in order.
pub const DENIAL_NUMERIC: [&str; 11] = [
    "log_billed_dollars",
    "service_lines",
    "diagnosis_codes",
    "prior_auth_present",
    "no_auth_where_usual",
    "replacement",
    "payer_denial_rate_30d",
    "payer_rejection_rate_30d",
    "provider_denial_rate_30d",
    "code_family_denial_rate_30d",
    "no_attachment_where_usual",
];

/// Categorical denial features, in order.
pub const DENIAL_CATEGORICAL: [&str; 6] = [
    "payer",
    "payer_category",
    "code_family",
    "place_of_service",
    "department",
    "claim_type",
];

/// Numeric readmission features, in order.
pub const READMIT_NUMERIC: [&str; 15] = [
    "age_years",
    "female",
    "charlson_index",
    "length_of_stay_days",
    "acute_admission",
    "prior_admissions_6m",
    "prior_admissions_12m",
    "ed_visits_6m",
    "ed_visits_12m",
    "low_hemoglobin",
    "low_sodium",
    "labs_missing",
    "cancer_history",
    "procedure_during_stay",
    "age_75_plus",
];

/// Categorical readmission features, in order.
pub const READMIT_CATEGORICAL: [&str; 4] = [
    "discharge_disposition",
    "hrrp_cohort",
    "department",
    "payer_category",
];

/// The code family of a claim: the 3-character CPT family of its largest professional line, or
/// for an institutional claim `INST` plus `-ER` (emergency room revenue code 045x) and `-OR`
/// (operating room 036x). Bounded, and what a revenue-cycle analyst groups denials by.
pub fn code_family(claim: &ClaimSubmitted) -> String {
    if claim.claim_type == ClaimType::Institutional {
        let rev = |p: &str| {
            claim
                .lines
                .iter()
                .any(|l| l.revenue_code.as_deref().is_some_and(|r| r.starts_with(p)))
        };
        let mut f = String::from("INST");
        if rev("045") {
            f.push_str("-ER");
        }
        if rev("036") {
            f.push_str("-OR");
        }
        return f;
    }
    claim
        .lines
        .iter()
        .filter(|l| l.procedure_code.len() >= 3)
        .max_by_key(|l| (l.charge_cents, std::cmp::Reverse(l.line_number)))
        .map_or_else(
            || "NONE".to_owned(),
            |l| {
                let mut f = String::from("CPT");
                f.push_str(&l.procedure_code[..3]);
                f
            },
        )
}

/// Counts of one day of a rolling-history key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DayCounts {
    pub day: EpochDay,
    /// Claims whose first outcome matured this day.
    pub decided: u32,
    /// Of those, denied on first adjudication or rejected at the front door.
    pub denied: u32,
    /// Of those, rejected at the front door.
    pub rejected: u32,
    /// Denials by CARC category (index of [`CarcCategory::ALL`]).
    pub by_category: [u32; 12],
    /// Claims submitted this day (code family keys: how many carried a prior authorization;
    /// service keys: how many sent supporting documentation).
    pub submitted: u32,
    pub submitted_with_auth: u32,
    pub submitted_with_attachment: u32,
}

/// Rolling daily counts of one history key (`payer:<id>`, `provider:<id>`, `family:<code>`,
/// `all`, and `service:<type>:<place of service>:<main code>` for documentation), kept in
/// partition state. Days older than the window are dropped on write.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RollingCounts {
    pub days: Vec<DayCounts>,
}

/// Sums of a key's counts over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowSums {
    pub decided: f64,
    pub denied: f64,
    pub rejected: f64,
    pub submitted: f64,
    pub submitted_with_auth: f64,
    pub submitted_with_attachment: f64,
    pub by_category: [f64; 12],
}

impl RollingCounts {
    /// Sums of the days in `[today - window_days, today]`.
    pub fn sums(&self, today: EpochDay, window_days: i32) -> WindowSums {
        let mut s = WindowSums::default();
        for d in self
            .days
            .iter()
            .filter(|d| d.day > today - window_days && d.day <= today)
        {
            s.decided += f64::from(d.decided);
            s.denied += f64::from(d.denied);
            s.rejected += f64::from(d.rejected);
            s.submitted += f64::from(d.submitted);
            s.submitted_with_auth += f64::from(d.submitted_with_auth);
            s.submitted_with_attachment += f64::from(d.submitted_with_attachment);
            for (a, b) in s.by_category.iter_mut().zip(d.by_category) {
                *a += f64::from(b);
            }
        }
        s
    }

    /// The counts of `day`, created if absent; drops days that left the window.
    pub fn day_mut(&mut self, day: EpochDay, window_days: i32) -> &mut DayCounts {
        self.days.retain(|d| d.day > day - window_days);
        let pos = match self.days.binary_search_by_key(&day, |d| d.day) {
            Ok(p) => p,
            Err(p) => {
                self.days.insert(
                    p,
                    DayCounts {
                        day,
                        ..Default::default()
                    },
                );
                p
            }
        };
        &mut self.days[pos]
    }
}

/// Overall denial-or-rejection rate assumed before any outcome is seen: DOMAIN.md §1 puts initial
/// denial rates at 10-15 % and front-door rejections at a few percent.
pub const PRIOR_DENIAL_RATE: f64 = 0.14;
/// Share of front-door rejections assumed before any outcome is seen (DOMAIN.md §1).
pub const PRIOR_REJECTION_RATE: f64 = 0.03;

/// A rate shrunk towards `prior` by `weight` pseudo-claims.
pub fn shrunk(events: f64, total: f64, prior: f64, weight: f64) -> f64 {
    (events + prior * weight) / (total + weight).max(1e-9)
}

/// The history keys of a claim, in the order [payer, provider, family, all, service]. Outcomes
/// are credited to the first four; the service key counts submissions and attachments only.
pub fn history_keys(claim: &ClaimSubmitted, family: &str) -> [String; 5] {
    [
        format!("payer:{}", claim.payer_id),
        format!("provider:{}", claim.provider_id),
        format!("family:{family}"),
        "all".to_owned(),
        service_key(claim, family),
    ]
}

/// The documentation history key of a claim: claim type, place of service and its main service
/// (an institutional claim's code family; a professional claim's largest line's procedure code
/// with its modifiers, e.g. `99214-25`). Documentation requirements differ at this grain: the
/// same E/M code needs notes with modifier 25 or in the emergency department, not in an office.
/// Only what the claim says is used; what the payers require is learned from the stream.
pub fn service_key(claim: &ClaimSubmitted, family: &str) -> String {
    let mut k = String::with_capacity(40);
    k.push_str("service:");
    k.push_str(match claim.claim_type {
        ClaimType::Institutional => "I:",
        ClaimType::Professional => "P:",
    });
    k.push_str(claim.place_of_service.as_deref().unwrap_or("NONE"));
    k.push(':');
    let main = claim
        .lines
        .iter()
        .filter(|l| l.procedure_code.len() >= 3)
        .max_by_key(|l| (l.charge_cents, std::cmp::Reverse(l.line_number)));
    match main {
        Some(l) if claim.claim_type == ClaimType::Professional => {
            k.push_str(&l.procedure_code);
            for m in &l.modifiers {
                k.push('-');
                k.push_str(m);
            }
        }
        _ => k.push_str(family),
    }
    k
}

/// Whether a claim sent supporting documentation (a PWK record not merely "available on
/// request").
pub fn attachment_sent(claim: &ClaimSubmitted) -> bool {
    claim.attachments.iter().any(|a| a.delivered())
}

/// What the denial extractor needs from the rolling history, looked up by the caller.
#[derive(Clone, Copy, Debug, Default)]
pub struct DenialHistory {
    pub payer: WindowSums,
    pub provider: WindowSums,
    pub family: WindowSums,
    pub all: WindowSums,
    /// The claim's [`service_key`]: how often its service is sent with documentation.
    pub service: WindowSums,
}

/// Denial features of a submission as of its submission time.
pub fn denial_features(
    claim: &ClaimSubmitted,
    family: &str,
    h: &DenialHistory,
    prior_weight: f64,
) -> RawFeatures {
    let base = shrunk(h.all.denied, h.all.decided, PRIOR_DENIAL_RATE, prior_weight);
    let base_reject = shrunk(
        h.all.rejected,
        h.all.decided,
        PRIOR_REJECTION_RATE,
        prior_weight,
    );
    let has_auth = claim
        .prior_auth_ref
        .as_deref()
        .is_some_and(|r| !r.trim().is_empty());
    // How usual a prior authorization is for this code family, from the submissions seen.
    let auth_usual = shrunk(
        h.family.submitted_with_auth,
        h.family.submitted,
        0.0,
        prior_weight,
    );
    // How usual supporting documentation is for this service, from the submissions seen.
    let attachment_usual = shrunk(
        h.service.submitted_with_attachment,
        h.service.submitted,
        0.0,
        prior_weight,
    );
    let billed_dollars = (claim.billed_cents as f64 / 100.0).max(1.0);
    RawFeatures {
        numeric: vec![
            billed_dollars.ln(),
            claim.lines.len() as f64,
            claim.diagnosis_codes.len() as f64,
            f64::from(u8::from(has_auth)),
            if has_auth { 0.0 } else { auth_usual },
            f64::from(u8::from(claim.frequency == ClaimFrequency::Replacement)),
            shrunk(h.payer.denied, h.payer.decided, base, prior_weight),
            shrunk(h.payer.rejected, h.payer.decided, base_reject, prior_weight),
            shrunk(h.provider.denied, h.provider.decided, base, prior_weight),
            shrunk(h.family.denied, h.family.decided, base, prior_weight),
            if attachment_sent(claim) {
                0.0
            } else {
                attachment_usual
            },
        ],
        categorical: vec![
            claim.payer_id.clone(),
            claim.payer_category.as_str().to_owned(),
            family.to_owned(),
            claim
                .place_of_service
                .clone()
                .unwrap_or_else(|| "NONE".into()),
            claim.department.clone(),
            match claim.claim_type {
                ClaimType::Institutional => "INSTITUTIONAL",
                ClaimType::Professional => "PROFESSIONAL",
            }
            .to_owned(),
        ],
    }
}

/// Fewer recent submissions than this cannot make authorization or documentation "usual".
pub const USUAL_MIN_SUBMISSIONS: f64 = 5.0;

/// How many of `of` recent submissions carried something, and whether that makes it usual: at
/// least half of at least [`USUAL_MIN_SUBMISSIONS`]. The raw share, not the shrunk model input:
/// 15 of 15 is usual, though shrunk toward 0 with 20 pseudo-claims it reads 43 %.
pub fn usual(with: f64, of: f64) -> bool {
    of >= USUAL_MIN_SUBMISSIONS && with / of >= 0.5
}

/// The most likely denial category of a claim: authorization when a usually-authorized code
/// family has none, missing information (documentation) when a service usually sent with
/// supporting documentation has none (see [`usual`]), otherwise the payer's most frequent recent
/// denial category.
pub fn likely_denial_category(claim: &ClaimSubmitted, h: &DenialHistory) -> Option<&'static str> {
    let has_auth = claim
        .prior_auth_ref
        .as_deref()
        .is_some_and(|r| !r.trim().is_empty());
    if !has_auth && usual(h.family.submitted_with_auth, h.family.submitted) {
        return Some(CarcCategory::Authorization.as_str());
    }
    if !attachment_sent(claim) && usual(h.service.submitted_with_attachment, h.service.submitted) {
        return Some(CarcCategory::MissingInformation.as_str());
    }
    h.payer
        .by_category
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0.0)
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| CarcCategory::ALL[i].as_str())
}

/// LACE index (van Walraven et al., CMAJ 2010) and HOSPITAL score (Donzé et al., JAMA Intern Med
/// 2013) of a discharge, with their published risk bands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transparent {
    pub lace: i32,
    pub hospital: i32,
}

impl Transparent {
    /// LACE band: 0-4 low, 5-9 moderate, >= 10 high (the cut-offs used in LACE validations).
    pub fn lace_band(self) -> &'static str {
        match self.lace {
            ..=4 => "LOW",
            5..=9 => "MODERATE",
            _ => "HIGH",
        }
    }

    /// HOSPITAL band: 0-4 low, 5-6 intermediate, >= 7 high (Donzé 2013).
    pub fn hospital_band(self) -> &'static str {
        match self.hospital {
            ..=4 => "LOW",
            5..=6 => "INTERMEDIATE",
            _ => "HIGH",
        }
    }

    /// Probability from LACE when no trained model exists: a logistic curve through the published
    /// LACE risk table (van Walraven 2010, about 2 % at 0 points rising to about 44 % at 19),
    /// an approximation, flagged as fallback on the output.
    pub fn lace_probability(self) -> f64 {
        sigmoid(-3.9 + 0.192 * f64::from(self.lace))
    }
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Readmission features of a discharge, plus LACE/HOSPITAL.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadmitExtract {
    pub features: RawFeatures,
    pub transparent: Transparent,
}

/// Readmission features of `index` at its discharge, from the member's stays **that began before
/// the discharge** (prior utilisation strictly before the index admission; comorbidities from
/// diagnoses recorded up to the discharge). Stays admitted after the discharge (a readmission
/// already in state because records arrived out of order) are never read.
pub fn readmit_features(
    refdata: &RefData,
    index: &StayRec,
    stays: &[StayRec],
    payer_category: Option<&str>,
) -> ReadmitExtract {
    let discharge = index.discharge_date.unwrap_or(index.admit_date);
    let los = (discharge - index.admit_date).max(0);
    // One pass over the member's stays, no collection: only stays known at discharge are read.
    let known = || {
        stays
            .iter()
            .filter(move |s| !s.cancelled && s.admit_date <= discharge)
    };
    let (mut admits_6m, mut admits_12m, mut ed_6m, mut ed_12m) = (0.0, 0.0, 0.0, 0.0);
    for s in known() {
        if s.encounter_id == index.encounter_id || s.admit_date >= index.admit_date {
            continue;
        }
        let days_before = index.admit_date - s.admit_date;
        let (six, twelve) = match s.class {
            EncounterClass::Inpatient => (&mut admits_6m, &mut admits_12m),
            EncounterClass::Emergency => (&mut ed_6m, &mut ed_12m),
            _ => continue,
        };
        if days_before <= 182 {
            *six += 1.0;
        }
        if days_before <= 365 {
            *twelve += 1.0;
        }
    }
    let charlson = refdata.charlson_set(
        known()
            .flat_map(|s| std::iter::once(&s.principal_dx).chain(s.secondary_dx.iter()))
            .map(String::as_str),
    );
    let cancer = refdata.charlson_conditions(charlson).any(|(name, _)| {
        matches!(
            name,
            "ANY_MALIGNANCY" | "METASTATIC_SOLID_TUMOR" | "LEUKEMIA" | "LYMPHOMA"
        )
    });
    let charlson_index = refdata.charlson_index(charlson);
    let age = match index.birth_date {
        Some(b) => (f64::from(discharge - b) / 365.25).floor().max(0.0),
        None => 65.0,
    };
    let low_hb = index.hemoglobin_g_dl.is_some_and(|h| h < 12.0);
    let low_na = index.sodium_mmol_l.is_some_and(|s| s < 135.0);
    let acute = index.admit_type.is_acute();
    let procedure = !index.procedures.is_empty();
    let oncology_service = index.department.eq_ignore_ascii_case("ONCOLOGY");
    let cohort = refdata
        .hrrp_cohort(&index.principal_dx, &index.secondary_dx, &index.procedures)
        .map_or("NONE", |c| c.as_str());

    // LACE (van Walraven 2010).
    let l = match los {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4..=6 => 4,
        7..=13 => 5,
        _ => 7,
    };
    let c = match charlson_index {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        _ => 5,
    };
    let lace = l + if acute { 3 } else { 0 } + c + (ed_6m as i32).min(4);
    // HOSPITAL (Donzé 2013, Table 3 of the derivation study).
    let hospital = i32::from(low_hb)
        + if oncology_service { 2 } else { 0 }
        + i32::from(low_na)
        + i32::from(procedure)
        + i32::from(index.admit_type != AdmitType::Elective && acute)
        + match admits_12m as i32 {
            0..=1 => 0,
            2..=5 => 2,
            _ => 5,
        }
        + if los >= 5 { 2 } else { 0 };
    ReadmitExtract {
        features: RawFeatures {
            numeric: vec![
                age,
                f64::from(u8::from(index.sex == Some(Sex::Female))),
                f64::from(charlson_index.min(12)),
                f64::from(los.min(30)),
                f64::from(u8::from(acute)),
                admits_6m,
                admits_12m,
                ed_6m,
                ed_12m,
                f64::from(u8::from(low_hb)),
                f64::from(u8::from(low_na)),
                f64::from(u8::from(
                    index.hemoglobin_g_dl.is_none() || index.sodium_mmol_l.is_none(),
                )),
                f64::from(u8::from(cancer)),
                f64::from(u8::from(procedure)),
                f64::from(u8::from(age >= 75.0)),
            ],
            categorical: vec![
                index.disposition.clone().unwrap_or_else(|| "NONE".into()),
                cohort.to_owned(),
                index.department.clone(),
                payer_category.unwrap_or("UNKNOWN").to_owned(),
            ],
        },
        transparent: Transparent { lace, hospital },
    }
}
