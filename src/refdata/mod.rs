//! Versioned reference data: the code tables the core interprets, loaded at start.
//!
//! Each table is a data file in `src/refdata/data/` that names its source and version in its
//! header comments. The files are compiled in (so the binary needs nothing at run time) and parsed
//! at start by [`RefData::embedded`]; [`RefData::load_dir`] overrides any of them from a directory,
//! so a new CARC list (they change several times a year) ships without a rebuild.
//!
//! | file | what |
//! |---|---|
//! | `carc.csv` | CARC codes, description, claimwatch denial category |
//! | `rarc_codes.txt`, `claim_status_codes.txt` | known RARC and 277 claim status codes |
//! | `claim_status_category.csv` | 277CA status category → class (A1 received ≠ accepted; R = info request) |
//! | `claim_payment_status.csv` | 835 CLP02 claim status codes and their meaning |
//! | `readmission_rules.csv` | planned readmission, acute diagnosis and index exclusion prefixes |
//! | `potentially_planned_icd10pcs.txt`, `acute_dx_icd10cm.txt` | the CMS planned-readmission code lists |
//! | `hrrp_cohorts.csv` | HRRP condition cohorts |
//! | `body_systems.csv` | diagnosis groups (CCSR body systems by chapter) |
//! | `charlson_quan2005.csv` | Charlson comorbidities (Quan 2005 ICD-10 algorithm) |
//! | `immunization_rules.csv` | care-gap rules (CDC adult immunization schedule subset) |
//! | `vaccine_cpt_cvx.csv` | vaccine product CPT codes → vaccine and CVX (CDC CPT↔CVX crosswalk subset) |

use std::path::Path;

/// Lookups run on every adjustment of every event: a fast, deterministic hasher.
type HashMap<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;
type HashSet<K> = std::collections::HashSet<K, rustc_hash::FxBuildHasher>;
use crate::model::AdjustmentGroup;

#[cfg(test)]
mod tests;

/// A table could not be read: which file, which line, why.
#[derive(Debug, thiserror::Error)]
#[error("reference table {file}, line {line}: {reason}")]
pub struct RefDataError {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// Denial reporting category of a CARC (claimwatch's own assignment; see `carc.csv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CarcCategory {
    Contractual,
    PatientResponsibility,
    Eligibility,
    Authorization,
    MedicalNecessity,
    Coding,
    TimelyFiling,
    Duplicate,
    MissingInformation,
    Bundling,
    NonCovered,
    Other,
}

impl CarcCategory {
    pub const ALL: [CarcCategory; 12] = [
        Self::Contractual,
        Self::PatientResponsibility,
        Self::Eligibility,
        Self::Authorization,
        Self::MedicalNecessity,
        Self::Coding,
        Self::TimelyFiling,
        Self::Duplicate,
        Self::MissingInformation,
        Self::Bundling,
        Self::NonCovered,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contractual => "CONTRACTUAL",
            Self::PatientResponsibility => "PATIENT_RESPONSIBILITY",
            Self::Eligibility => "ELIGIBILITY",
            Self::Authorization => "AUTHORIZATION",
            Self::MedicalNecessity => "MEDICAL_NECESSITY",
            Self::Coding => "CODING",
            Self::TimelyFiling => "TIMELY_FILING",
            Self::Duplicate => "DUPLICATE",
            Self::MissingInformation => "MISSING_INFORMATION",
            Self::Bundling => "BUNDLING",
            Self::NonCovered => "NON_COVERED",
            Self::Other => "OTHER",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The category named `s` (`as_str`), if any.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::parse(s)
    }

    /// A denial category: everything but contractual write-offs, patient share and other.
    pub fn is_denial(self) -> bool {
        !matches!(
            self,
            Self::Contractual | Self::PatientResponsibility | Self::Other
        )
    }
}

/// Class of a 277CA claim status category code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckClass {
    Received,
    Accepted,
    Rejected,
    Pending,
    InfoRequested,
    Error,
    Finalized,
    NotFound,
    Unknown,
}

impl AckClass {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RECEIVED" => Self::Received,
            "ACCEPTED" => Self::Accepted,
            "REJECTED" => Self::Rejected,
            "PENDING" => Self::Pending,
            "INFO_REQUESTED" => Self::InfoRequested,
            "ERROR" => Self::Error,
            "FINALIZED" => Self::Finalized,
            "NOT_FOUND" => Self::NotFound,
            "UNKNOWN" => Self::Unknown,
            _ => return None,
        })
    }
}

/// HRRP condition cohort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HrrpCohort {
    Ami,
    HeartFailure,
    Pneumonia,
    Copd,
    Cabg,
    ThaTka,
}

impl HrrpCohort {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ami => "AMI",
            Self::HeartFailure => "HF",
            Self::Pneumonia => "PNEUMONIA",
            Self::Copd => "COPD",
            Self::Cabg => "CABG",
            Self::ThaTka => "THA_TKA",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Ami,
            Self::HeartFailure,
            Self::Pneumonia,
            Self::Copd,
            Self::Cabg,
            Self::ThaTka,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    fn is_procedural(self) -> bool {
        matches!(self, Self::Cabg | Self::ThaTka)
    }
}

/// One CARC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarcInfo {
    pub code: String,
    pub description: String,
    pub category: CarcCategory,
}

/// A Charlson comorbidity present in a set of diagnoses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharlsonCondition {
    pub name: String,
    pub weight: u32,
}

/// Charlson conditions of a set of diagnoses and the index (sum of weights after the hierarchy).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Charlson {
    pub conditions: Vec<CharlsonCondition>,
    pub index: u32,
}

/// Charlson conditions present in a set of diagnoses, as a bit set over the loaded table (see
/// [`RefData::charlson_set`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CharlsonSet(pub u64);

/// Quan's hierarchy: the first condition replaces the second when both are present.
const CHARLSON_HIERARCHY: [(&str, &str); 3] = [
    (
        "DIABETES_WITH_COMPLICATIONS",
        "DIABETES_WITHOUT_COMPLICATIONS",
    ),
    ("MODERATE_SEVERE_LIVER_DISEASE", "MILD_LIVER_DISEASE"),
    ("METASTATIC_SOLID_TUMOR", "ANY_MALIGNANCY"),
];
/// How often an immunization rule recurs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImmunizationSchedule {
    /// Once per season (influenza).
    Seasonal {
        /// Month and day the season window opens (doses from then count).
        start: (u32, u32),
        /// Month and day a gap opens for a member without a dose.
        due: (u32, u32),
        /// Month and day (in the following year) the season window closes, inclusive.
        end: (u32, u32),
    },
    /// Once in a lifetime (pneumococcal conjugate series).
    Once,
}

/// One row of `immunization_rules.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImmunizationRule {
    pub vaccine: String,
    pub schedule: ImmunizationSchedule,
    /// Eligible at this age (years, at the due date) or older.
    pub min_age: u32,
    /// Also eligible at this age or older with one of `risk_conditions` (Charlson names).
    pub risk_min_age: Option<u32>,
    pub risk_conditions: Vec<String>,
    pub description: String,
}

/// One row of `vaccine_cpt_cvx.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaccineCode {
    pub cpt: String,
    pub cvx: String,
    /// The rule-table vaccine it counts for.
    pub vaccine: String,
    pub description: String,
}

fn month_day(file: &str, line: u64, text: &str) -> Result<(u32, u32), RefDataError> {
    let bad = || err(file, line, format!("not a MM-DD date: {text:?}"));
    let (m, d) = text.split_once('-').ok_or_else(bad)?;
    let (m, d): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    // Any year would do for the check but a leap year, so 02-29 is refused.
    chrono::NaiveDate::from_ymd_opt(2023, m, d).ok_or_else(bad)?;
    Ok((m, d))
}

fn parse_immunization_rules(
    text: &str,
    r: &RefData,
) -> Result<Vec<ImmunizationRule>, RefDataError> {
    let f = "immunization_rules.csv";
    let header = [
        "vaccine",
        "schedule",
        "min_age",
        "risk_min_age",
        "risk_conditions",
        "season_start",
        "due",
        "season_end",
        "description",
    ];
    let mut out: Vec<ImmunizationRule> = Vec::new();
    for (line, row) in rows(f, text, &header)? {
        let age = |s: &str| -> Result<u32, RefDataError> {
            s.parse()
                .map_err(|_| err(f, line, format!("bad age {s:?}")))
        };
        let schedule = match row[1].as_str() {
            "SEASONAL" => ImmunizationSchedule::Seasonal {
                start: month_day(f, line, &row[5])?,
                due: month_day(f, line, &row[6])?,
                end: month_day(f, line, &row[7])?,
            },
            "ONCE" if row[5].is_empty() && row[6].is_empty() && row[7].is_empty() => {
                ImmunizationSchedule::Once
            }
            other => {
                return Err(err(
                    f,
                    line,
                    format!("bad schedule {other:?} or season dates"),
                ))
            }
        };
        if let ImmunizationSchedule::Seasonal { start, due, end } = schedule {
            // The due date lies in the window's first year, after its start; the end in the next.
            if due < start || end >= start {
                return Err(err(
                    f,
                    line,
                    "season must run start <= due, end in the next year",
                ));
            }
        }
        let risk_conditions: Vec<String> = row[4].split_whitespace().map(str::to_owned).collect();
        for c in &risk_conditions {
            if !r.charlson.iter().any(|(name, _, _)| name == c) {
                return Err(err(f, line, format!("unknown Charlson condition {c:?}")));
            }
        }
        let risk_min_age = if row[3].is_empty() {
            None
        } else {
            Some(age(&row[3])?)
        };
        if risk_min_age.is_some() == risk_conditions.is_empty() {
            return Err(err(f, line, "risk_min_age and risk_conditions go together"));
        }
        if row[0].is_empty() || !row[0].chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return Err(err(f, line, format!("bad vaccine name {:?}", row[0])));
        }
        if out.iter().any(|v| v.vaccine == row[0]) {
            return Err(err(f, line, format!("duplicate vaccine {:?}", row[0])));
        }
        out.push(ImmunizationRule {
            vaccine: row[0].clone(),
            schedule,
            min_age: age(&row[2])?,
            risk_min_age,
            risk_conditions,
            description: row[8].clone(),
        });
    }
    Ok(out)
}

/// A normalised code prefix of 1-4 ASCII letters or digits as one integer: its bytes, left-aligned
/// and zero-padded (no code character is a zero byte, so different prefixes never collide).
fn pack_prefix(p: &[u8]) -> Option<u32> {
    if p.is_empty() || p.len() > 4 || !p.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut b = [0u8; 4];
    b[..p.len()].copy_from_slice(p);
    Some(u32::from_be_bytes(b))
}

/// Codes normalised for lookup: upper case, no dot, no spaces.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether `normalise(code)` starts with `prefix` (already normalised), without allocating.
fn normalised_starts_with(code: &str, prefix: &str) -> bool {
    let mut it = code
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_uppercase());
    prefix.bytes().all(|p| it.next() == Some(p))
}

/// Prefix lookup: the longest prefix of `code` present in `map`.
fn longest_prefix<'m, V>(map: &'m HashMap<String, V>, code: &str) -> Option<&'m V> {
    let code = normalise(code);
    (1..=code.len()).rev().find_map(|n| map.get(&code[..n]))
}

/// All the reference tables.
#[derive(Debug, Default)]
pub struct RefData {
    versions: Vec<(String, String)>,
    carc: HashMap<String, CarcInfo>,
    rarc: HashSet<String>,
    claim_status_codes: HashSet<String>,
    ack_classes: HashMap<String, AckClass>,
    ack_descriptions: HashMap<String, String>,
    claim_payment_status: HashMap<String, String>,
    always_planned_dx: HashMap<String, ()>,
    always_planned_px: HashMap<String, ()>,
    potentially_planned_px: HashMap<String, ()>,
    potentially_planned_px_codes: HashSet<String>,
    acute_dx: HashMap<String, ()>,
    acute_dx_codes: HashSet<String>,
    exclusions: HashMap<String, &'static str>,
    /// (cohort, principal prefix, secondary prefix or "", procedural)
    cohorts: Vec<(HrrpCohort, String, String)>,
    body_systems: Vec<(String, String, &'static str)>,
    charlson: Vec<(String, u32, Vec<String>)>,
    /// Ambulatory-care-sensitive principal diagnosis prefixes -> PQI.
    acsc: HashMap<String, String>,
    /// Charlson prefix (2-4 characters, normalised, packed by [`pack_prefix`]) -> bit set of the
    /// conditions it defines (bit i = `charlson[i]`), so a code is classified by a few integer hash
    /// lookups of its own prefixes instead of a scan over every condition's prefix list.
    charlson_by_prefix: rustc_hash::FxHashMap<u32, u64>,
    /// Longest and shortest Charlson prefix, in characters.
    charlson_prefix_len: usize,
    charlson_prefix_min: usize,
    /// First characters of the Charlson prefixes (bit per byte value below 128): most codes start
    /// with a letter no prefix starts with and are skipped without a lookup.
    charlson_first: u128,
    /// Hierarchy as bit sets: (higher, lower); the lower condition is dropped when the higher is
    /// present.
    charlson_hierarchy: Vec<(u64, u64)>,
    immunization_rules: Vec<ImmunizationRule>,
    vaccine_codes: HashMap<String, VaccineCode>,
}

/// The shipped tables, compiled in.
const EMBEDDED: [(&str, &str); 14] = [
    ("carc.csv", include_str!("data/carc.csv")),
    ("rarc_codes.txt", include_str!("data/rarc_codes.txt")),
    (
        "claim_status_codes.txt",
        include_str!("data/claim_status_codes.txt"),
    ),
    (
        "claim_status_category.csv",
        include_str!("data/claim_status_category.csv"),
    ),
    (
        "claim_payment_status.csv",
        include_str!("data/claim_payment_status.csv"),
    ),
    (
        "readmission_rules.csv",
        include_str!("data/readmission_rules.csv"),
    ),
    (
        "potentially_planned_icd10pcs.txt",
        include_str!("data/potentially_planned_icd10pcs.txt"),
    ),
    (
        "acute_dx_icd10cm.txt",
        include_str!("data/acute_dx_icd10cm.txt"),
    ),
    ("hrrp_cohorts.csv", include_str!("data/hrrp_cohorts.csv")),
    ("body_systems.csv", include_str!("data/body_systems.csv")),
    (
        "charlson_quan2005.csv",
        include_str!("data/charlson_quan2005.csv"),
    ),
    (
        "pqi_acsc_icd10cm.csv",
        include_str!("data/pqi_acsc_icd10cm.csv"),
    ),
    (
        "immunization_rules.csv",
        include_str!("data/immunization_rules.csv"),
    ),
    (
        "vaccine_cpt_cvx.csv",
        include_str!("data/vaccine_cpt_cvx.csv"),
    ),
];

/// Body-system labels are a closed set: intern them as `&'static str`.
const BODY_SYSTEMS: [&str; 22] = [
    "INF", "NEO", "BLD", "END", "MBD", "NVS", "EYE", "EAR", "CIR", "RSP", "DIG", "SKN", "MUS",
    "GEN", "PRG", "PNL", "MAL", "SYM", "INJ", "EXT", "FAC", "UNK",
];

fn err(file: &str, line: u64, reason: impl Into<String>) -> RefDataError {
    RefDataError {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

/// The version line of a table: its first comment line mentioning a source, else the first line.
fn version_of(text: &str) -> String {
    let comments: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect();
    comments
        .iter()
        .find(|l| l.contains("Source") || l.contains("Derived from") || l.contains("as published"))
        .or(comments.first())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Rows of a CSV table (comment lines start with `#`), with the header checked.
fn rows(file: &str, text: &str, header: &[&str]) -> Result<Vec<(u64, Vec<String>)>, RefDataError> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .flexible(false)
        .from_reader(text.as_bytes());
    let got: Vec<String> = reader
        .headers()
        .map_err(|e| err(file, 0, e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    if got != header {
        return Err(err(file, 0, format!("header {got:?}, expected {header:?}")));
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| err(file, e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        out.push((line, record.iter().map(|s| s.trim().to_owned()).collect()));
    }
    Ok(out)
}

/// Codes of a one-code-per-line list (comments and blank lines skipped).
fn codes(file: &str, text: &str) -> Result<HashSet<String>, RefDataError> {
    let mut out = HashSet::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(err(file, i as u64 + 1, format!("not a code: {line:?}")));
        }
        out.insert(line.to_ascii_uppercase());
    }
    Ok(out)
}

impl RefData {
    /// The tables shipped in the binary.
    pub fn embedded() -> Result<RefData, RefDataError> {
        Self::build(|name| {
            Ok(EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| (*t).to_owned()))
        })
    }

    /// The shipped tables, parsed once per process and shared.
    pub fn shared() -> std::sync::Arc<RefData> {
        static SHARED: std::sync::OnceLock<std::sync::Arc<RefData>> = std::sync::OnceLock::new();
        // The embedded tables are checked by the tests: failing to parse them is a build defect.
        SHARED
            .get_or_init(|| {
                std::sync::Arc::new(RefData::embedded().expect("embedded reference data parses"))
            })
            .clone()
    }

    /// The shipped tables, each overridden by a file of the same name in `dir` when present.
    pub fn load_dir(dir: &Path) -> Result<RefData, RefDataError> {
        Self::build(|name| {
            let path = dir.join(name);
            if path.exists() {
                std::fs::read_to_string(&path)
                    .map(Some)
                    .map_err(|e| err(name, 0, e.to_string()))
            } else {
                Ok(EMBEDDED
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| (*t).to_owned()))
            }
        })
    }

    fn build(
        source: impl Fn(&str) -> Result<Option<String>, RefDataError>,
    ) -> Result<RefData, RefDataError> {
        let text = |name: &str| -> Result<String, RefDataError> {
            source(name)?.ok_or_else(|| err(name, 0, "missing table"))
        };
        let mut r = RefData::default();
        for (name, _) in EMBEDDED {
            r.versions.push((name.to_owned(), version_of(&text(name)?)));
        }

        let f = "carc.csv";
        for (line, row) in rows(f, &text(f)?, &["code", "category", "description"])? {
            let category = CarcCategory::parse(&row[1])
                .ok_or_else(|| err(f, line, format!("unknown category {:?}", row[1])))?;
            let code = normalise(&row[0]);
            if code.is_empty() {
                return Err(err(f, line, "empty code"));
            }
            r.carc.insert(
                code.clone(),
                CarcInfo {
                    code,
                    description: row[2].clone(),
                    category,
                },
            );
        }
        r.rarc = codes("rarc_codes.txt", &text("rarc_codes.txt")?)?;
        r.claim_status_codes = codes("claim_status_codes.txt", &text("claim_status_codes.txt")?)?;
        let f = "claim_status_category.csv";
        for (line, row) in rows(f, &text(f)?, &["code", "class", "description"])? {
            let class = AckClass::parse(&row[1])
                .ok_or_else(|| err(f, line, format!("unknown class {:?}", row[1])))?;
            r.ack_classes.insert(normalise(&row[0]), class);
            r.ack_descriptions
                .insert(normalise(&row[0]), row[2].clone());
        }
        let f = "claim_payment_status.csv";
        for (line, row) in rows(f, &text(f)?, &["code", "description"])? {
            if row[0].is_empty() {
                return Err(err(f, line, "empty code"));
            }
            r.claim_payment_status
                .insert(row[0].clone(), row[1].clone());
        }
        let f = "readmission_rules.csv";
        for (line, row) in rows(f, &text(f)?, &["kind", "prefix", "ccs", "description"])? {
            let prefix = normalise(&row[1]);
            match row[0].as_str() {
                "ALWAYS_PLANNED_DX" => drop(r.always_planned_dx.insert(prefix, ())),
                "ALWAYS_PLANNED_PX" => drop(r.always_planned_px.insert(prefix, ())),
                "POTENTIALLY_PLANNED_PX" => drop(r.potentially_planned_px.insert(prefix, ())),
                "ACUTE_DX" => drop(r.acute_dx.insert(prefix, ())),
                "EXCLUDE_CANCER_TREATMENT" => drop(r.exclusions.insert(prefix, "CANCER_TREATMENT")),
                "EXCLUDE_PSYCHIATRIC" => drop(r.exclusions.insert(prefix, "PSYCHIATRIC")),
                "EXCLUDE_REHABILITATION" => drop(r.exclusions.insert(prefix, "REHABILITATION")),
                other => return Err(err(f, line, format!("unknown kind {other:?}"))),
            }
        }
        r.potentially_planned_px_codes = codes(
            "potentially_planned_icd10pcs.txt",
            &text("potentially_planned_icd10pcs.txt")?,
        )?;
        r.acute_dx_codes = codes("acute_dx_icd10cm.txt", &text("acute_dx_icd10cm.txt")?)?;
        let f = "hrrp_cohorts.csv";
        for (line, row) in rows(
            f,
            &text(f)?,
            &["cohort", "kind", "prefix", "secondary", "description"],
        )? {
            let cohort = HrrpCohort::parse(&row[0])
                .ok_or_else(|| err(f, line, format!("unknown cohort {:?}", row[0])))?;
            let secondary = match row[1].as_str() {
                "PRINCIPAL" | "PROCEDURE" => String::new(),
                "PRINCIPAL_WITH_SECONDARY" if !row[3].is_empty() => normalise(&row[3]),
                other => return Err(err(f, line, format!("bad kind/secondary {other:?}"))),
            };
            if (row[1] == "PROCEDURE") != cohort.is_procedural() {
                return Err(err(
                    f,
                    line,
                    "procedural cohorts are matched on procedures, the others on diagnoses",
                ));
            }
            r.cohorts.push((cohort, normalise(&row[2]), secondary));
        }
        let f = "body_systems.csv";
        for (line, row) in rows(
            f,
            &text(f)?,
            &["first", "last", "body_system", "description"],
        )? {
            let system = BODY_SYSTEMS
                .iter()
                .find(|s| **s == row[2])
                .ok_or_else(|| err(f, line, format!("unknown body system {:?}", row[2])))?;
            r.body_systems
                .push((normalise(&row[0]), normalise(&row[1]), system));
        }
        let f = "charlson_quan2005.csv";
        for (line, row) in rows(f, &text(f)?, &["condition", "weight", "prefixes"])? {
            let weight: u32 = row[1]
                .parse()
                .map_err(|_| err(f, line, format!("bad weight {:?}", row[1])))?;
            r.charlson.push((
                row[0].clone(),
                weight,
                row[2].split_whitespace().map(normalise).collect(),
            ));
        }
        if r.charlson.len() > 64 {
            return Err(err(f, 0, "more than 64 Charlson conditions"));
        }
        for (i, (name, _, prefixes)) in r.charlson.iter().enumerate() {
            for p in prefixes {
                let key = pack_prefix(p.as_bytes()).ok_or_else(|| {
                    err(
                        f,
                        0,
                        format!("{name}: prefix {p:?} is not 1-4 letters or digits"),
                    )
                })?;
                *r.charlson_by_prefix.entry(key).or_default() |= 1 << i;
                r.charlson_prefix_len = r.charlson_prefix_len.max(p.len());
                r.charlson_prefix_min = if r.charlson_prefix_min == 0 {
                    p.len()
                } else {
                    r.charlson_prefix_min.min(p.len())
                };
                r.charlson_first |= 1u128 << (p.as_bytes()[0] & 0x7f);
            }
        }
        let bit = |r: &RefData, name: &str| {
            r.charlson
                .iter()
                .position(|(n, _, _)| n == name)
                .map_or(0, |i| 1u64 << i)
        };
        r.charlson_hierarchy = CHARLSON_HIERARCHY
            .iter()
            .map(|(h, l)| (bit(&r, h), bit(&r, l)))
            .filter(|(h, l)| *h != 0 && *l != 0)
            .collect();
        let f = "pqi_acsc_icd10cm.csv";
        for (line, row) in rows(f, &text(f)?, &["prefix", "pqi", "description"])? {
            if !row[1].starts_with("PQI") {
                return Err(err(f, line, format!("unknown indicator {:?}", row[1])));
            }
            r.acsc.insert(normalise(&row[0]), row[1].clone());
        }
        r.immunization_rules = parse_immunization_rules(&text("immunization_rules.csv")?, &r)?;
        let f = "vaccine_cpt_cvx.csv";
        for (line, row) in rows(f, &text(f)?, &["cpt", "cvx", "vaccine", "description"])? {
            let cpt = normalise(&row[0]);
            if cpt.is_empty() || row[1].is_empty() || !row[1].chars().all(|c| c.is_ascii_digit()) {
                return Err(err(f, line, "empty code or non-numeric CVX"));
            }
            if !r.immunization_rules.iter().any(|v| v.vaccine == row[2]) {
                return Err(err(f, line, format!("no rule for vaccine {:?}", row[2])));
            }
            r.vaccine_codes.insert(
                cpt.clone(),
                VaccineCode {
                    cpt,
                    cvx: row[1].clone(),
                    vaccine: row[2].clone(),
                    description: row[3].clone(),
                },
            );
        }
        Ok(r)
    }

    /// The care-gap rules, in file order.
    pub fn immunization_rules(&self) -> &[ImmunizationRule] {
        &self.immunization_rules
    }

    /// The vaccine a CPT/HCPCS product code administers, if it is one.
    pub fn vaccine_code(&self, procedure_code: &str) -> Option<&VaccineCode> {
        if !procedure_code.starts_with('9') && !procedure_code.starts_with('G') {
            return None;
        }
        self.vaccine_codes.get(procedure_code)
    }

    /// Every vaccine product code of the crosswalk.
    pub fn vaccine_codes(&self) -> impl Iterator<Item = &VaccineCode> {
        self.vaccine_codes.values()
    }

    /// (table, version) pairs for logs and summaries.
    pub fn versions(&self) -> Vec<(String, String)> {
        self.versions.clone()
    }

    pub fn carc(&self, code: &str) -> Option<&CarcInfo> {
        self.carc.get(code).or_else(|| {
            // A code that is already normalised would be looked up again unchanged.
            let normalised = code
                .bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
            if normalised {
                None
            } else {
                self.carc.get(&normalise(code))
            }
        })
    }

    /// Category of a CAS triplet: a PR group patient-share CARC is patient responsibility; otherwise
    /// the CARC's category (unknown codes: OTHER).
    pub fn adjustment_category(&self, group: AdjustmentGroup, carc: &str) -> CarcCategory {
        let category = self.carc(carc).map_or(CarcCategory::Other, |c| c.category);
        if group == AdjustmentGroup::PR
            && matches!(
                category,
                CarcCategory::PatientResponsibility
                    | CarcCategory::Other
                    | CarcCategory::Contractual
            )
        {
            return CarcCategory::PatientResponsibility;
        }
        category
    }

    pub fn is_known_rarc(&self, code: &str) -> bool {
        self.rarc.contains(code)
    }

    pub fn is_known_claim_status_code(&self, code: &str) -> bool {
        self.claim_status_codes.contains(code)
    }

    /// Description of a 277CA claim status category code (STC01-1), if known.
    pub fn ack_category_description(&self, status_category: &str) -> Option<&str> {
        self.ack_descriptions
            .get(status_category)
            .map(String::as_str)
    }

    /// Description of an 835 claim status code (CLP02), if it is a 5010 code.
    pub fn claim_payment_status(&self, clp02: &str) -> Option<&str> {
        self.claim_payment_status.get(clp02).map(String::as_str)
    }

    /// Class of a 277CA STC01-1 category code.
    pub fn ack_class(&self, status_category: &str) -> AckClass {
        self.ack_classes
            .get(status_category)
            .copied()
            .unwrap_or(AckClass::Unknown)
    }

    /// Why a readmission stay is planned (CMS Planned Readmission Algorithm subset), if it is.
    pub fn planned_readmission(
        &self,
        principal_dx: &str,
        procedures: &[String],
    ) -> Option<&'static str> {
        if longest_prefix(&self.always_planned_dx, principal_dx).is_some() {
            return Some("ALWAYS_PLANNED_DIAGNOSIS");
        }
        if procedures
            .iter()
            .any(|p| longest_prefix(&self.always_planned_px, p).is_some())
        {
            return Some("ALWAYS_PLANNED_PROCEDURE");
        }
        let potentially = procedures.iter().any(|p| {
            self.potentially_planned_px_codes.contains(&normalise(p))
                || longest_prefix(&self.potentially_planned_px, p).is_some()
        });
        if potentially && !self.is_acute_dx(principal_dx) {
            return Some("POTENTIALLY_PLANNED_PROCEDURE");
        }
        None
    }

    /// An acute principal diagnosis (a potentially planned procedure is then not planned).
    pub fn is_acute_dx(&self, dx: &str) -> bool {
        self.acute_dx_codes.contains(&normalise(dx)) || longest_prefix(&self.acute_dx, dx).is_some()
    }

    /// Why a stay with this principal diagnosis cannot be an index stay, if it cannot.
    pub fn index_exclusion(&self, principal_dx: &str) -> Option<&'static str> {
        longest_prefix(&self.exclusions, principal_dx).copied()
    }

    /// HRRP cohort of a stay; procedural cohorts first.
    pub fn hrrp_cohort(
        &self,
        principal_dx: &str,
        secondary_dx: &[String],
        procedures: &[String],
    ) -> Option<HrrpCohort> {
        // Codes are compared normalised on the fly, up to the prefix's length: no allocation
        // (this runs for every scored discharge).
        let procedural = self
            .cohorts
            .iter()
            .filter(|(c, _, _)| c.is_procedural())
            .find(|(_, prefix, _)| procedures.iter().any(|p| normalised_starts_with(p, prefix)));
        if let Some((c, _, _)) = procedural {
            return Some(*c);
        }
        self.cohorts
            .iter()
            .filter(|(c, _, _)| !c.is_procedural())
            .filter(|(_, prefix, _)| normalised_starts_with(principal_dx, prefix))
            .find(|(_, _, secondary)| {
                secondary.is_empty()
                    || secondary_dx
                        .iter()
                        .any(|s| normalised_starts_with(s, secondary))
            })
            .map(|(c, _, _)| *c)
    }

    /// The AHRQ Prevention Quality Indicator whose ambulatory-care-sensitive condition this
    /// principal diagnosis is, if any (`pqi_acsc_icd10cm.csv`, longest prefix).
    pub fn ambulatory_care_sensitive(&self, principal_dx: &str) -> Option<&str> {
        longest_prefix(&self.acsc, principal_dx).map(String::as_str)
    }

    /// Diagnosis group: CCSR body system of the ICD-10-CM chapter (`UNK` when none).
    pub fn dx_body_system(&self, dx: &str) -> &'static str {
        let code = normalise(dx);
        let Some(category) = code.get(..3) else {
            return "UNK";
        };
        self.body_systems
            .iter()
            .find(|(first, last, _)| first.as_str() <= category && category <= last.as_str())
            .map_or("UNK", |(_, _, s)| s)
    }

    /// Charlson conditions and index of a set of diagnoses (Quan 2005 with the hierarchy).
    pub fn charlson(&self, dx: &[String]) -> Charlson {
        let set = self.charlson_set(dx.iter().map(String::as_str));
        Charlson {
            index: self.charlson_index(set),
            conditions: self
                .charlson_conditions(set)
                .map(|(name, weight)| CharlsonCondition {
                    name: name.to_owned(),
                    weight,
                })
                .collect(),
        }
    }

    /// The Charlson conditions of a set of diagnoses as a bit set (bit i = the i-th condition of
    /// the table), after the hierarchy. No allocation: each code is normalised on the stack and
    /// classified by looking up its own prefixes.
    pub fn charlson_set<'a>(&self, dx: impl IntoIterator<Item = &'a str>) -> CharlsonSet {
        let mut bits = 0u64;
        let max = self.charlson_prefix_len;
        let mut buf = [0u8; 4];
        for code in dx {
            let mut n = 0;
            for b in code.bytes().filter(u8::is_ascii_alphanumeric) {
                if n == max.min(buf.len()) {
                    break;
                }
                buf[n] = b.to_ascii_uppercase();
                n += 1;
            }
            if n == 0 || self.charlson_first & (1u128 << (buf[0] & 0x7f)) == 0 {
                continue;
            }
            for len in self.charlson_prefix_min.max(1)..=n {
                if let Some(m) =
                    pack_prefix(&buf[..len]).and_then(|k| self.charlson_by_prefix.get(&k))
                {
                    bits |= m;
                }
            }
        }
        for (higher, lower) in &self.charlson_hierarchy {
            if bits & higher != 0 {
                bits &= !lower;
            }
        }
        CharlsonSet(bits)
    }

    /// The Charlson index of a condition set (sum of the weights).
    pub fn charlson_index(&self, set: CharlsonSet) -> u32 {
        self.charlson_conditions(set).map(|(_, w)| w).sum()
    }

    /// The conditions of a set, in table order: (name, weight).
    pub fn charlson_conditions(&self, set: CharlsonSet) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.charlson
            .iter()
            .enumerate()
            .filter(move |(i, _)| set.0 & (1 << i) != 0)
            .map(|(_, (name, w, _))| (name.as_str(), *w))
    }

    /// Whether the set holds the named condition.
    pub fn charlson_has(&self, set: CharlsonSet, name: &str) -> bool {
        self.charlson_conditions(set).any(|(n, _)| n == name)
    }
}
