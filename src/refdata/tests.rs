//! Every rule of the tables with a concrete case, and the derived code lists checked against their
//! sources in `../shared/reference/`.

use super::*;
use crate::model::AdjustmentGroup::{CO, OA, PR};

fn r() -> RefData {
    RefData::embedded().unwrap()
}

fn v(codes: &[&str]) -> Vec<String> {
    codes.iter().map(|c| (*c).to_owned()).collect()
}

#[test]
fn claim_status_categories() {
    let r = r();
    assert_eq!(
        r.ack_class("A1"),
        AckClass::Received,
        "A1 is receipt, not acceptance"
    );
    assert_eq!(r.ack_class("A2"), AckClass::Accepted);
    for c in ["A3", "A6", "A7", "A8"] {
        assert_eq!(r.ack_class(c), AckClass::Rejected, "{c}");
    }
    assert_eq!(
        r.ack_class("R3"),
        AckClass::InfoRequested,
        "R-codes are not rejections"
    );
    assert_eq!(r.ack_class("P1"), AckClass::Pending);
    assert_eq!(r.ack_class("E0"), AckClass::Error);
    assert_eq!(r.ack_class("F2"), AckClass::Finalized);
    assert_eq!(r.ack_class("A4"), AckClass::NotFound);
    assert_eq!(r.ack_class("ZZ"), AckClass::Unknown);
    assert!(r.is_known_claim_status_code("20"));
    assert!(r.is_known_rarc("M51") && r.is_known_rarc("N290"));
    assert!(!r.is_known_rarc("Q999"));
}

#[test]
fn carc_categories() {
    let r = r();
    assert_eq!(r.adjustment_category(CO, "45"), CarcCategory::Contractual);
    assert!(!r.adjustment_category(CO, "45").is_denial());
    assert_eq!(
        r.adjustment_category(CO, "197"),
        CarcCategory::Authorization
    );
    assert!(r.adjustment_category(CO, "197").is_denial());
    assert_eq!(
        r.adjustment_category(PR, "2"),
        CarcCategory::PatientResponsibility
    );
    assert_eq!(
        r.adjustment_category(CO, "16"),
        CarcCategory::MissingInformation
    );
    assert_eq!(r.adjustment_category(CO, "29"), CarcCategory::TimelyFiling);
    assert_eq!(
        r.adjustment_category(CO, "50"),
        CarcCategory::MedicalNecessity
    );
    assert_eq!(r.adjustment_category(CO, "18"), CarcCategory::Duplicate);
    assert_eq!(r.adjustment_category(CO, "97"), CarcCategory::Bundling);
    assert_eq!(r.adjustment_category(CO, "27"), CarcCategory::Eligibility);
    assert_eq!(r.adjustment_category(CO, "96"), CarcCategory::NonCovered);
    assert_eq!(r.adjustment_category(CO, "11"), CarcCategory::Coding);
    assert_eq!(r.adjustment_category(OA, "23"), CarcCategory::Other);
    assert_eq!(
        r.adjustment_category(CO, "9999"),
        CarcCategory::Other,
        "unknown codes are OTHER"
    );
    // Patient responsibility for a non-covered service is still a denial of coverage.
    assert_eq!(r.adjustment_category(PR, "204"), CarcCategory::NonCovered);
    assert_eq!(
        r.carc("b13").map(|c| c.category),
        Some(CarcCategory::Duplicate)
    );
}

#[test]
fn planned_readmissions() {
    let r = r();
    assert_eq!(
        r.planned_readmission("Z5111", &[]),
        Some("ALWAYS_PLANNED_DIAGNOSIS")
    );
    assert_eq!(
        r.planned_readmission("N186", &v(&["0TY00Z0"])),
        Some("ALWAYS_PLANNED_PROCEDURE")
    );
    // Potentially planned procedure (code-level list), non-acute principal diagnosis: planned.
    assert_eq!(
        r.planned_readmission("I2510", &v(&["0270046"])),
        Some("POTENTIALLY_PLANNED_PROCEDURE")
    );
    // The same procedure with an acute principal diagnosis (AMI): not planned.
    assert_eq!(r.planned_readmission("I214", &v(&["0270046"])), None);
    // Acute by the code-level list.
    assert!(r.is_acute_dx("I5023"));
    assert_eq!(r.planned_readmission("I5023", &v(&["0270046"])), None);
    // Knee replacement (CCS 152) with osteoarthritis: planned.
    assert_eq!(
        r.planned_readmission("M1711", &v(&["0SRD0JZ"])),
        Some("POTENTIALLY_PLANNED_PROCEDURE")
    );
    assert_eq!(r.planned_readmission("J189", &[]), None);
}

#[test]
fn index_exclusions() {
    let r = r();
    assert_eq!(r.index_exclusion("F329"), Some("PSYCHIATRIC"));
    assert_eq!(r.index_exclusion("F200"), Some("PSYCHIATRIC"));
    assert_eq!(
        r.index_exclusion("F0390"),
        None,
        "dementia is not a psychiatric exclusion"
    );
    assert_eq!(
        r.index_exclusion("F1020"),
        None,
        "alcohol dependence is not a psychiatric exclusion"
    );
    assert_eq!(r.index_exclusion("C3490"), Some("CANCER_TREATMENT"));
    assert_eq!(r.index_exclusion("Z5111"), Some("CANCER_TREATMENT"));
    assert_eq!(r.index_exclusion("Z5189"), Some("REHABILITATION"));
    assert_eq!(r.index_exclusion("I5023"), None);
    assert_eq!(r.index_exclusion("i50.23"), None);
    assert_eq!(
        r.index_exclusion("f32.9"),
        Some("PSYCHIATRIC"),
        "dots and case are normalised"
    );
}

#[test]
fn hrrp_cohorts() {
    let r = r();
    assert_eq!(r.hrrp_cohort("I214", &[], &[]), Some(HrrpCohort::Ami));
    assert_eq!(
        r.hrrp_cohort("I5023", &[], &[]),
        Some(HrrpCohort::HeartFailure)
    );
    assert_eq!(
        r.hrrp_cohort("I110", &[], &[]),
        Some(HrrpCohort::HeartFailure)
    );
    assert_eq!(r.hrrp_cohort("J189", &[], &[]), Some(HrrpCohort::Pneumonia));
    assert_eq!(
        r.hrrp_cohort("A419", &v(&["J189"]), &[]),
        Some(HrrpCohort::Pneumonia)
    );
    assert_eq!(r.hrrp_cohort("A419", &v(&["N390"]), &[]), None);
    assert_eq!(r.hrrp_cohort("J441", &[], &[]), Some(HrrpCohort::Copd));
    assert_eq!(
        r.hrrp_cohort("J9601", &v(&["J449"]), &[]),
        Some(HrrpCohort::Copd)
    );
    assert_eq!(
        r.hrrp_cohort("I214", &[], &v(&["021009W"])),
        Some(HrrpCohort::Cabg),
        "procedural first"
    );
    assert_eq!(
        r.hrrp_cohort("M1711", &[], &v(&["0SRD0JZ"])),
        Some(HrrpCohort::ThaTka)
    );
    assert_eq!(r.hrrp_cohort("N390", &[], &[]), None);
}

#[test]
fn body_systems() {
    let r = r();
    assert_eq!(r.dx_body_system("I509"), "CIR");
    assert_eq!(r.dx_body_system("J189"), "RSP");
    assert_eq!(r.dx_body_system("S72001A"), "INJ");
    assert_eq!(r.dx_body_system("D649"), "BLD");
    assert_eq!(r.dx_body_system("D469"), "NEO");
    assert_eq!(r.dx_body_system("Z5111"), "FAC");
    assert_eq!(r.dx_body_system("O9A2"), "PRG");
    assert_eq!(r.dx_body_system("U071"), "UNK");
    assert_eq!(r.dx_body_system(""), "UNK");
}

#[test]
fn charlson_with_hierarchy() {
    let r = r();
    let c = r.charlson(&v(&[
        "I252", "I509", "E1122", "E119", "C787", "C3490", "F329",
    ]));
    let names: Vec<_> = c.conditions.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "MYOCARDIAL_INFARCTION",
            "CONGESTIVE_HEART_FAILURE",
            "DIABETES_WITH_COMPLICATIONS",
            "METASTATIC_SOLID_TUMOR"
        ]
    );
    assert_eq!(c.index, 1 + 1 + 2 + 6);
    assert_eq!(r.charlson(&[]).index, 0);
    assert_eq!(r.charlson(&v(&["N184", "J449"])).index, 3);
}

/// The straightforward definition the prefix index must agree with: a condition is present when
/// any normalised code starts with any of its prefixes; then the hierarchy.
fn charlson_by_scan(r: &RefData, dx: &[String]) -> (Vec<String>, u32) {
    let codes: Vec<String> = dx.iter().map(|d| normalise(d)).collect();
    let mut present: Vec<(String, u32)> = r
        .charlson
        .iter()
        .filter(|(_, _, ps)| {
            codes
                .iter()
                .any(|c| ps.iter().any(|p| c.starts_with(p.as_str())))
        })
        .map(|(n, w, _)| (n.clone(), *w))
        .collect();
    for (higher, lower) in CHARLSON_HIERARCHY {
        if present.iter().any(|(n, _)| n == higher) {
            present.retain(|(n, _)| n != lower);
        }
    }
    let index = present.iter().map(|(_, w)| w).sum();
    (present.into_iter().map(|(n, _)| n).collect(), index)
}

#[test]
fn charlson_prefix_index_equals_a_scan_of_every_prefix() {
    let r = r();
    // Every prefix of the table, written as claims write them (dots, lower case, longer codes),
    // its neighbours that must not match, and pairs that exercise the hierarchy.
    let mut codes: Vec<String> = Vec::new();
    for (_, _, prefixes) in &r.charlson {
        for p in prefixes {
            codes.push(p.clone());
            codes.push(format!("{p}9X"));
            codes.push(format!("{}.{}", &p[..p.len().min(3)], &p[p.len().min(3)..]).to_lowercase());
            codes.push(p[..p.len() - 1].to_owned());
        }
    }
    codes.extend(["", "Z", "ZZZZZZZZZ", "E11.22", "k70.30"].map(String::from));
    let mut cases: Vec<Vec<String>> = codes.iter().map(|c| vec![c.clone()]).collect();
    for (i, a) in codes.iter().enumerate().step_by(7) {
        let b = &codes[(i * 31 + 5) % codes.len()];
        let c = &codes[(i * 17 + 11) % codes.len()];
        cases.push(vec![a.clone(), b.clone(), c.clone()]);
    }
    cases.push(v(&[
        "E119", "E1122", "K703", "K7030", "C349", "C787", "C3490",
    ]));
    for dx in &cases {
        let c = r.charlson(dx);
        let names: Vec<String> = c.conditions.iter().map(|c| c.name.clone()).collect();
        assert_eq!((names, c.index), charlson_by_scan(&r, dx), "{dx:?}");
    }
    assert!(cases.len() > 500, "{} cases", cases.len());
}

#[test]
fn a_directory_overrides_one_table_and_bad_lines_are_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("carc.csv"),
        "# test\ncode,category,description\n45,OTHER,changed\n",
    )
    .unwrap();
    let r = RefData::load_dir(dir.path()).unwrap();
    assert_eq!(r.adjustment_category(CO, "45"), CarcCategory::Other);
    assert_eq!(
        r.ack_class("A2"),
        AckClass::Accepted,
        "other tables stay embedded"
    );
    std::fs::write(
        dir.path().join("carc.csv"),
        "code,category,description\n45,CONTRACTUAL,ok\n16,NOPE,bad\n",
    )
    .unwrap();
    let e = RefData::load_dir(dir.path()).unwrap_err();
    assert_eq!(e.file, "carc.csv");
    assert_eq!(e.line, 3);
    assert!(e.reason.contains("NOPE"));
}

#[test]
fn versions_name_their_sources() {
    let r = r();
    let v = r.versions();
    assert_eq!(v.len(), EMBEDDED.len());
    assert!(v.iter().all(|(_, version)| !version.is_empty()), "{v:?}");
}

/// The shipped code lists equal the code columns of the public sources they were derived from.
#[test]
fn derived_lists_equal_their_sources() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference");
    if !shared.exists() {
        panic!("../shared/reference is missing: the tests need the shared reference data next to the clone");
    }
    let source = |file: &str| -> HashSet<String> {
        let text = std::fs::read_to_string(shared.join(file)).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        reader
            .records()
            .map(|r| r.unwrap()[0].to_owned())
            .collect::<HashSet<String>>()
    };
    let r = r();
    assert_eq!(
        r.potentially_planned_px_codes,
        source("readmissions/tuva_readmissions__potentially_planned_icd_10_pcs.csv")
    );
    assert_eq!(
        r.acute_dx_codes,
        source("readmissions/tuva_readmissions__acute_diagnosis_icd_10_cm.csv")
    );
}
