//! Clinical history: office and ED visits, inpatient stays with transfers, deaths, AMA, planned
//! stays and 30-day readmissions drawn from a logistic model of features known at discharge.

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};

use super::population::Member;
use super::{GenerateConfig, MemberOutput, ReadmissionFeatures, ReadmissionTruth};
use crate::model::{
    AdmitType, Encounter, EncounterClass, EncounterEventType, EpochDay, Sex, DAY_MS,
};
use crate::refdata::RefData;

/// Acute care hospitals of the synthetic market, and one rehabilitation facility (not acute).
pub const ACUTE_FACILITIES: [&str; 4] = ["F-GENERAL", "F-MERCY", "F-UNIVERSITY", "F-COMMUNITY"];
pub const REHAB_FACILITY: &str = "F-REHAB";

/// Coefficients of the true readmission model (log-odds), features known at discharge. The
/// intercept is tuned so that 14-20 % of eligible index stays are readmitted (DOMAIN.md §2).
mod readmit_model {
    pub const INTERCEPT: f64 = -3.4;
    pub const PER_CHARLSON_POINT: f64 = 0.16;
    pub const PER_LOS_DAY: f64 = 0.035;
    pub const ACUTE_ADMIT: f64 = 0.30;
    pub const PER_PRIOR_ADMIT_12M: f64 = 0.28;
    pub const PER_ED_VISIT_6M: f64 = 0.18;
    pub const LOW_HEMOGLOBIN: f64 = 0.30;
    pub const LOW_SODIUM: f64 = 0.25;
    pub const ONCOLOGY: f64 = 0.35;
    pub const PROCEDURE: f64 = -0.15;
    pub const DISCHARGED_TO_SNF: f64 = 0.20;
    pub const DISCHARGED_HOME_HEALTH: f64 = 0.10;
    pub const AGE_75_PLUS: f64 = 0.15;
    /// The unobserved part: frailty (standard normal) moves the odds, no model sees it.
    pub const FRAILTY: f64 = 0.55;
}

/// Why a member is admitted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cause {
    Medical,
    ElectiveJoint,
    Psychiatric,
    /// A planned readmission (chemotherapy, transplant or an elective PCI).
    Planned,
    Readmission,
    Rehab,
}

/// A billable visit for the billing stage.
#[derive(Clone, Debug)]
pub struct Visit {
    pub kind: VisitKind,
    pub encounter_id: Option<String>,
    pub day: EpochDay,
    pub end_day: EpochDay,
    pub facility: &'static str,
    pub department: &'static str,
    /// Principal first.
    pub dx: Vec<String>,
    /// CPT/HCPCS codes of the professional lines (or the main ones of a stay).
    pub cpt: Vec<&'static str>,
    pub drg: Option<&'static str>,
    pub admit_type: AdmitType,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VisitKind {
    Office,
    Emergency,
    Inpatient,
    Vaccine,
}

struct Sim<'a, R: Rng> {
    rng: &'a mut R,
    cfg: &'a GenerateConfig,
    refdata: &'a RefData,
    member: &'a Member,
    out: &'a mut MemberOutput,
    visits: Vec<Visit>,
    home: &'static str,
    admits: Vec<EpochDay>,
    ed_visits: Vec<EpochDay>,
    encounters: u32,
    dead: bool,
}

/// Simulates one member's year; writes encounter records and readmission truth into `out` and
/// returns the visits to bill.
pub fn simulate(
    rng: &mut impl Rng,
    cfg: &GenerateConfig,
    member: &Member,
    out: &mut MemberOutput,
) -> Vec<Visit> {
    let refdata = shared_refdata();
    let refdata = &*refdata;
    let home = ACUTE_FACILITIES[rng.gen_range(0..ACUTE_FACILITIES.len())];
    let mut sim = Sim {
        rng,
        cfg,
        refdata,
        member,
        out,
        visits: Vec::new(),
        home,
        admits: Vec::new(),
        ed_visits: Vec::new(),
        encounters: 0,
        dead: false,
    };
    sim.run();
    sim.visits
}

fn shared_refdata() -> std::sync::Arc<RefData> {
    RefData::shared()
}

/// A member's birthday offset within the year (0..365), stable across encounters: FNV-1a of the id.
fn birth_day_offset(member_id: &str) -> i32 {
    let h = member_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % 365) as i32
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl<R: Rng> Sim<'_, R> {
    fn exp_days(&mut self, per_year: f64) -> i32 {
        let u: f64 = self.rng.gen_range(1e-9..1.0);
        (-u.ln() / per_year.max(1e-6) * 365.0).ceil() as i32
    }

    fn run(&mut self) {
        let m = self.member;
        let start = self.cfg.start_date;
        let end = start + self.cfg.days;
        let charlson = f64::from(m.charlson());
        let old = if m.age >= 65 { 1.7 } else { 1.0 };
        let office_rate = 2.0 + 0.8 * m.conditions.len() as f64;
        let ed_rate = 0.22 * (0.45 * m.frailty + 0.12 * charlson).exp();
        let admit_rate = 0.055 * old * (0.6 * m.frailty + 0.22 * charlson).exp();
        let mut next_office = start + self.exp_days(office_rate);
        let mut next_ed = start + self.exp_days(ed_rate);
        let mut next_admit = start + self.exp_days(admit_rate);
        // Seasonal vaccines: influenza every autumn (days 275-334 of each simulated year; the
        // first season is drawn even when the period ends before it, on its last day, as it
        // always was, so shorter populations keep their random streams), pneumococcal for 65+.
        let flu_p = if m.age >= 65 { 0.62 } else { 0.38 };
        for season in 0.. {
            let offset = season * 365;
            if season > 0 && offset + 275 >= self.cfg.days {
                break;
            }
            if self.rng.gen_bool(flu_p) {
                let day = start + (offset + self.rng.gen_range(275..335)).min(self.cfg.days - 1);
                self.vaccine(day, "90686", "Z23");
            }
        }
        if m.age >= 65 && self.rng.gen_bool(0.12) {
            let day = start + self.rng.gen_range(0..self.cfg.days);
            self.vaccine(day, "90677", "Z23");
        }
        while !self.dead {
            let day = next_office.min(next_ed).min(next_admit);
            if day >= end {
                break;
            }
            if day == next_office {
                self.office(day);
                next_office = day + self.exp_days(office_rate);
            } else if day == next_ed {
                self.emergency(day);
                next_ed = day + self.exp_days(ed_rate);
            } else {
                let cause = self.pick_cause();
                let last = self.episode(day, cause, 0);
                // No spontaneous admission inside a readmission window: readmissions in the window
                // are drawn by the readmission model only, so the truth is complete.
                next_admit = last.max(day) + 31 + self.exp_days(admit_rate);
            }
        }
    }

    fn pick_cause(&mut self) -> Cause {
        let u: f64 = self.rng.gen();
        if u < 0.04 {
            Cause::Psychiatric
        } else if u < 0.10 && self.member.age >= 50 {
            Cause::ElectiveJoint
        } else if u < 0.12 {
            Cause::Rehab
        } else {
            Cause::Medical
        }
    }

    fn next_encounter_id(&mut self) -> String {
        self.encounters += 1;
        format!("{}-E{:03}", self.member.id, self.encounters)
    }

    fn at(&mut self, day: EpochDay, from_hour: u32, to_hour: u32) -> i64 {
        i64::from(day) * DAY_MS
            + i64::from(self.rng.gen_range(from_hour * 3600..to_hour * 3600)) * 1000
            + self.rng.gen_range(0..1000)
    }

    fn office(&mut self, day: EpochDay) {
        let mut dx = self.member.chronic_codes();
        if dx.is_empty() || self.rng.gen_bool(0.3) {
            dx.insert(
                0,
                ["Z0000", "J069", "M545", "R509", "I10"][self.rng.gen_range(0..5)].to_owned(),
            );
        }
        let mut cpt = vec![if self.member.conditions.len() >= 2 {
            "99214"
        } else {
            "99213"
        }];
        if self.rng.gen_bool(0.35) {
            cpt.extend(["80053", "36415"]);
        }
        if self.rng.gen_bool(0.06) {
            // Imaging or echo that usually needs prior authorization.
            cpt.push(["70553", "93306", "72148"][self.rng.gen_range(0..3)]);
        }
        let dept = if self.member.has("heart_failure") {
            "CARDIOLOGY"
        } else {
            "PRIMARY_CARE"
        };
        self.visits.push(Visit {
            kind: VisitKind::Office,
            encounter_id: None,
            day,
            end_day: day,
            facility: self.home,
            department: dept,
            dx,
            cpt,
            drg: None,
            admit_type: AdmitType::Elective,
        });
    }

    fn vaccine(&mut self, day: EpochDay, cpt: &'static str, dx: &str) {
        self.visits.push(Visit {
            kind: VisitKind::Vaccine,
            encounter_id: None,
            day,
            end_day: day,
            facility: self.home,
            department: "PRIMARY_CARE",
            dx: vec![dx.to_owned()],
            cpt: vec![cpt, "90471"],
            drg: None,
            admit_type: AdmitType::Elective,
        });
    }

    fn emergency(&mut self, day: EpochDay) {
        let id = self.next_encounter_id();
        let dx = ["R0789", "R1084", "J069", "S0990XA", "R55", "N390"][self.rng.gen_range(0..6)]
            .to_owned();
        let mut enc = self.encounter_record(
            &id,
            EncounterClass::Emergency,
            self.home,
            "EMERGENCY",
            day,
            AdmitType::Emergency,
            dx.clone(),
            Vec::new(),
        );
        enc.event_type = EncounterEventType::Discharge;
        enc.discharge_date = Some(day);
        enc.discharge_disposition = Some("01".into());
        enc.event_time = self.at(day, 18, 23);
        enc.event_id = format!("enc-{id}-dis");
        self.out.encounters.push(enc);
        self.ed_visits.push(day);
        self.visits.push(Visit {
            kind: VisitKind::Emergency,
            encounter_id: Some(id),
            day,
            end_day: day,
            facility: self.home,
            department: "EMERGENCY",
            dx: vec![dx],
            cpt: vec!["99284"],
            drg: None,
            admit_type: AdmitType::Emergency,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn encounter_record(
        &mut self,
        id: &str,
        class: EncounterClass,
        facility: &str,
        dept: &str,
        admit: EpochDay,
        admit_type: AdmitType,
        principal: String,
        procedures: Vec<String>,
    ) -> Encounter {
        let m = self.member;
        // One birth date per member on every encounter (ages decide care-gap eligibility). The day
        // within the year comes from the member id; the draw that used to pick it per encounter
        // is kept so the rest of the random stream, and so every other output, is unchanged.
        let _unused: i32 = self.rng.gen_range(0..365);
        let birth = self.cfg.start_date - m.age * 365 - birth_day_offset(&m.id);
        Encounter {
            event_id: format!("enc-{id}-adm"),
            event_time: 0,
            encounter_id: id.to_owned(),
            member_id: m.id.clone(),
            event_type: EncounterEventType::Admission,
            encounter_class: class,
            facility_id: facility.to_owned(),
            acute_care_facility: facility != REHAB_FACILITY,
            department: dept.to_owned(),
            attending_provider_id: Some(format!("NPI-{}-{}", &facility[2..], dept.len())),
            admit_date: admit,
            admit_type,
            admit_source: Some(if admit_type == AdmitType::Elective {
                "1".into()
            } else {
                "7".into()
            }),
            discharge_date: None,
            discharge_disposition: None,
            principal_dx: principal,
            secondary_dx: m.chronic_codes(),
            procedures,
            hemoglobin_g_dl: None,
            sodium_mmol_l: None,
            birth_date: Some(birth.min(admit - 18 * 365)),
            sex: Some(m.sex),
            payer_id: Some(m.payer.id.to_owned()),
            payer_category: Some(m.payer.category),
            claim_id: None,
        }
    }

    /// One episode (a stay, maybe followed by a transfer), its readmission draw and any readmission
    /// chain. Returns the last discharge day of everything it created.
    fn episode(&mut self, day: EpochDay, cause: Cause, depth: u32) -> EpochDay {
        let end = self.cfg.start_date + self.cfg.days;
        let stay = self.stay(day, cause, None);
        let mut last = stay;
        // Transfer out to another acute hospital (same or next day): one episode.
        if last.disposition == "02" {
            let other = loop {
                let f = ACUTE_FACILITIES[self.rng.gen_range(0..ACUTE_FACILITIES.len())];
                if f != last.facility {
                    break f;
                }
            };
            let admit = last.discharge + i32::from(self.rng.gen_bool(0.4));
            let next = self.stay(admit, cause, Some((other, last.principal.clone())));
            last = next;
        }
        if self.dead || last.discharge >= end {
            return last.discharge;
        }
        // Eligible index stay? Mirror the detector's rules through the same reference data.
        let disp = last.disposition.as_str();
        let eligible = last.facility != REHAB_FACILITY
            && !matches!(disp, "20" | "07" | "02" | "40" | "41" | "42")
            && self.refdata.index_exclusion(&last.principal).is_none();
        if !eligible {
            return last.discharge;
        }
        let m = self.member;
        let f = ReadmissionFeatures {
            age: m.age,
            female: m.sex == Sex::Female,
            charlson: m.charlson(),
            los_days: last.discharge - last.admit,
            acute_admit: last.admit_type.is_acute(),
            disposition: last.disposition.clone(),
            prior_admits_12m: self
                .admits
                .iter()
                .filter(|d| **d < last.admit && **d >= last.admit - 365)
                .count() as i32,
            prior_ed_6m: self
                .ed_visits
                .iter()
                .filter(|d| **d < last.admit && **d >= last.admit - 182)
                .count() as i32,
            hemoglobin: last.hemoglobin,
            sodium: last.sodium,
            oncology: m.has("cancer") || m.has("metastatic"),
            procedure: last.procedure,
            frailty: m.frailty,
        };
        use readmit_model as k;
        let x = k::INTERCEPT
            + k::PER_CHARLSON_POINT * f64::from(f.charlson.min(10))
            + k::PER_LOS_DAY * f64::from(f.los_days.min(30))
            + if f.acute_admit { k::ACUTE_ADMIT } else { 0.0 }
            + k::PER_PRIOR_ADMIT_12M * f64::from(f.prior_admits_12m.min(5))
            + k::PER_ED_VISIT_6M * f64::from(f.prior_ed_6m.min(4))
            + if f.hemoglobin.is_some_and(|h| h < 12.0) {
                k::LOW_HEMOGLOBIN
            } else {
                0.0
            }
            + if f.sodium.is_some_and(|s| s < 135.0) {
                k::LOW_SODIUM
            } else {
                0.0
            }
            + if f.oncology { k::ONCOLOGY } else { 0.0 }
            + if f.procedure { k::PROCEDURE } else { 0.0 }
            + match disp {
                "03" => k::DISCHARGED_TO_SNF,
                "06" => k::DISCHARGED_HOME_HEALTH,
                _ => 0.0,
            }
            + if f.age >= 75 { k::AGE_75_PLUS } else { 0.0 }
            + k::FRAILTY * f.frailty;
        let p = logistic(x);
        let readmitted = depth < 4 && self.rng.gen_bool(p);
        self.out.truth.readmissions.push(ReadmissionTruth {
            member_id: m.id.clone(),
            encounter_id: last.encounter_id.clone(),
            discharge_date: last.discharge,
            probability: p,
            readmitted,
            features: f,
        });
        if readmitted {
            // Front-loaded: a quarter within a week, most within two (Jencks 2009 shape).
            let sample: f64 = LogNormal::new(2.0, 0.75)
                .map(|d| d.sample(self.rng))
                .unwrap_or(8.0);
            let days = (1.0 + sample).min(30.0) as i32;
            return self.episode(last.discharge + days.max(1), Cause::Readmission, depth + 1);
        }
        // No unplanned readmission: sometimes a planned one (chemotherapy cycles, a staged PCI or
        // a transplant), which the detector must not count.
        let oncology = self.member.has("cancer") || self.member.has("metastatic");
        let planned_p = if oncology { 0.35 } else { 0.025 };
        if depth < 4 && self.rng.gen_bool(planned_p) {
            let day = last.discharge + self.rng.gen_range(5..29);
            if day < end {
                // The planned stay is an index candidate of its own (unless excluded).
                return self.episode(day, Cause::Planned, depth + 1);
            }
        }
        last.discharge
    }

    /// One inpatient stay: records (admission, discharge, maybe late, maybe corrected), labs,
    /// disposition. `transfer_in` = (facility, principal dx) of a transfer.
    fn stay(
        &mut self,
        admit: EpochDay,
        cause: Cause,
        transfer_in: Option<(&'static str, String)>,
    ) -> StayInfo {
        let m = self.member;
        let id = self.next_encounter_id();
        let oncology = m.has("cancer") || m.has("metastatic");
        let (principal, dept, median_los, procs, drg): (
            String,
            &'static str,
            f64,
            Vec<String>,
            &'static str,
        ) = match (&transfer_in, cause) {
            (Some((_, dx)), _) => (dx.clone(), "MEDICINE", 4.0, Vec::new(), "291"),
            (None, Cause::Psychiatric) => ("F329".into(), "PSYCHIATRY", 6.0, Vec::new(), "885"),
            (None, Cause::ElectiveJoint) => {
                if self.rng.gen_bool(0.6) {
                    (
                        "M1711".into(),
                        "ORTHOPEDICS",
                        2.0,
                        vec!["0SRD0JZ".into()],
                        "470",
                    )
                } else {
                    (
                        "M1611".into(),
                        "ORTHOPEDICS",
                        2.0,
                        vec!["0SR90J9".into()],
                        "470",
                    )
                }
            }
            (None, Cause::Rehab) => ("Z5189".into(), "REHABILITATION", 9.0, Vec::new(), "945"),
            (None, Cause::Planned) => {
                if oncology {
                    (
                        "Z5111".into(),
                        "ONCOLOGY",
                        2.0,
                        vec!["3E04305".into()],
                        "847",
                    )
                } else if m.has("ckd") && self.rng.gen_bool(0.3) {
                    ("N186".into(), "SURGERY", 6.0, vec!["0TY00Z0".into()], "652")
                } else {
                    (
                        "I2510".into(),
                        "CARDIOLOGY",
                        1.0,
                        vec!["0270046".into()],
                        "247",
                    )
                }
            }
            (None, Cause::Medical | Cause::Readmission) => self.medical_principal(),
        };
        let facility = match (&transfer_in, cause) {
            (Some((f, _)), _) => *f,
            (None, Cause::Rehab) => REHAB_FACILITY,
            _ if self.rng.gen_bool(0.85) => self.home,
            _ => ACUTE_FACILITIES[self.rng.gen_range(0..ACUTE_FACILITIES.len())],
        };
        let dept = if oncology && cause == Cause::Medical && self.rng.gen_bool(0.3) {
            "ONCOLOGY"
        } else {
            dept
        };
        let los = (LogNormal::new(median_los.ln(), 0.55)
            .map(|d| d.sample(self.rng))
            .unwrap_or(median_los))
        .round()
        .clamp(1.0, 30.0) as i32;
        let discharge = admit + los;
        let admit_type = match cause {
            Cause::ElectiveJoint | Cause::Planned | Cause::Rehab => AdmitType::Elective,
            _ if transfer_in.is_some() => AdmitType::Urgent,
            _ if self.rng.gen_bool(0.78) => AdmitType::Emergency,
            _ => AdmitType::Urgent,
        };
        let medical = matches!(cause, Cause::Medical | Cause::Readmission);
        let disposition = self.disposition(medical && transfer_in.is_none(), medical, oncology);
        let hemoglobin = self.rng.gen_bool(0.9).then(|| {
            let n = Normal::new(
                12.9 - 0.55 * m.frailty - if oncology { 0.8 } else { 0.0 },
                1.4,
            )
            .map(|n| n.sample(self.rng))
            .unwrap_or(12.5);
            (n * 10.0).round() / 10.0
        });
        let sodium = self.rng.gen_bool(0.9).then(|| {
            let n = Normal::new(138.5 - 0.9 * m.frailty, 3.2)
                .map(|n| n.sample(self.rng))
                .unwrap_or(138.0);
            n.round()
        });
        let mut procedures = procs;
        if medical && principal.starts_with("I21") && self.rng.gen_bool(0.5) {
            procedures.push(if self.rng.gen_bool(0.2) {
                "021009W".into()
            } else {
                "02703ZZ".into()
            });
        }
        let procedure = !procedures.is_empty();
        // Records: admission, discharge (5 % exported late), sometimes a correction.
        let mut rec = self.encounter_record(
            &id,
            EncounterClass::Inpatient,
            facility,
            dept,
            admit,
            admit_type,
            principal.clone(),
            procedures.clone(),
        );
        rec.event_time = self.at(admit, 6, 22);
        rec.admit_source = Some(if transfer_in.is_some() {
            "4".into()
        } else {
            rec.admit_source.unwrap_or_default()
        });
        self.out.encounters.push(rec.clone());
        let late = self.rng.gen_bool(0.05);
        let delay = if late {
            i64::from(self.rng.gen_range(2..10)) * DAY_MS
        } else {
            0
        };
        let mut dis = rec;
        dis.event_id = format!("enc-{id}-dis");
        dis.event_type = EncounterEventType::Discharge;
        dis.discharge_date = Some(discharge);
        dis.discharge_disposition = Some(disposition.to_owned());
        dis.hemoglobin_g_dl = hemoglobin;
        dis.sodium_mmol_l = sodium;
        dis.event_time = self.at(discharge, 10, 20) + delay;
        self.out.encounters.push(dis.clone());
        if self.rng.gen_bool(0.03) {
            let mut upd = dis;
            upd.event_id = format!("enc-{id}-upd");
            upd.event_type = EncounterEventType::Update;
            upd.secondary_dx.push("E785".into());
            upd.event_time += i64::from(self.rng.gen_range(1..4)) * DAY_MS;
            self.out.encounters.push(upd);
        }
        // An admission entered in error and cancelled: a stay that never happened.
        if self.rng.gen_bool(0.004) {
            let ghost = self.next_encounter_id();
            let mut g = self.encounter_record(
                &ghost,
                EncounterClass::Inpatient,
                facility,
                dept,
                discharge + 2,
                AdmitType::Emergency,
                principal.clone(),
                Vec::new(),
            );
            g.event_time = self.at(discharge + 2, 6, 12);
            self.out.encounters.push(g.clone());
            g.event_id = format!("enc-{ghost}-cancel");
            g.event_type = EncounterEventType::Cancel;
            g.event_time += DAY_MS / 4;
            self.out.encounters.push(g);
        }
        self.admits.push(admit);
        if disposition == "20" {
            self.dead = true;
        }
        self.visits.push(Visit {
            kind: VisitKind::Inpatient,
            encounter_id: Some(id.clone()),
            day: admit,
            end_day: discharge,
            facility,
            department: dept,
            dx: std::iter::once(principal.clone())
                .chain(m.chronic_codes())
                .collect(),
            cpt: if procedure {
                vec!["99223", "99232", "99238"]
            } else {
                vec!["99223", "99238"]
            },
            drg: Some(drg),
            admit_type,
        });
        StayInfo {
            encounter_id: id,
            facility,
            admit,
            discharge,
            disposition: disposition.to_owned(),
            principal,
            admit_type,
            hemoglobin,
            sodium,
            procedure,
        }
    }

    fn medical_principal(&mut self) -> (String, &'static str, f64, Vec<String>, &'static str) {
        let m = self.member;
        // Chronic disease exacerbations dominate for those who have it.
        let mut options: Vec<(&'static str, &'static str, f64, &'static str, f64)> = vec![
            ("J189", "PULMONOLOGY", 4.0, "194", 3.0),
            ("A419", "MEDICINE", 6.0, "871", 2.0),
            ("N390", "MEDICINE", 3.0, "690", 2.0),
            ("K922", "GASTROENTEROLOGY", 3.0, "378", 1.0),
            ("I214", "CARDIOLOGY", 4.0, "281", 1.0),
            (
                "S72001A",
                "ORTHOPEDICS",
                6.0,
                "481",
                if m.age >= 70 { 1.0 } else { 0.2 },
            ),
            ("R0789", "MEDICINE", 2.0, "313", 1.5),
            ("E860", "MEDICINE", 2.0, "641", 1.0),
        ];
        if m.has("heart_failure") {
            options.push(("I5023", "CARDIOLOGY", 4.0, "291", 5.0));
            options.push(("I110", "CARDIOLOGY", 4.0, "291", 1.5));
        }
        if m.has("copd") {
            options.push(("J441", "PULMONOLOGY", 3.0, "190", 4.0));
        }
        if m.has("old_mi") {
            options.push(("I214", "CARDIOLOGY", 4.0, "281", 2.0));
        }
        if m.has("diabetes") || m.has("diabetes_complicated") {
            options.push(("E1165", "ENDOCRINOLOGY", 3.0, "638", 1.0));
        }
        let total: f64 = options.iter().map(|o| o.4).sum();
        let mut u = self.rng.gen_range(0.0..total);
        for (dx, dept, los, drg, w) in &options {
            if u < *w {
                return ((*dx).to_owned(), dept, *los, Vec::new(), drg);
            }
            u -= w;
        }
        ("J189".into(), "PULMONOLOGY", 4.0, Vec::new(), "194")
    }

    /// UB-04 discharge status: 20 expired, 07 AMA, 02 transfer to acute, 03 SNF, 06 home health,
    /// 50 hospice, 01 home.
    fn disposition(&mut self, may_transfer: bool, medical: bool, oncology: bool) -> &'static str {
        let m = self.member;
        let u: f64 = self.rng.gen();
        let expired = if medical {
            0.012 * (0.6 * m.frailty).exp()
        } else {
            0.002
        };
        let ama = if medical {
            if m.age < 65 {
                0.025
            } else {
                0.008
            }
        } else {
            0.0
        };
        let transfer = if may_transfer { 0.04 } else { 0.0 };
        let hospice = if oncology && medical { 0.04 } else { 0.0 };
        let snf = if m.age >= 65 { 0.17 } else { 0.03 };
        let hh = if m.age >= 65 { 0.15 } else { 0.06 };
        let mut c = 0.0;
        for (p, code) in [
            (expired, "20"),
            (ama, "07"),
            (transfer, "02"),
            (hospice, "50"),
            (snf, "03"),
            (hh, "06"),
        ] {
            c += p;
            if u < c {
                return code;
            }
        }
        "01"
    }
}

/// What an episode needs to know about a stay it created.
#[derive(Clone, Debug)]
struct StayInfo {
    encounter_id: String,
    facility: &'static str,
    admit: EpochDay,
    discharge: EpochDay,
    disposition: String,
    principal: String,
    admit_type: AdmitType,
    hemoglobin: Option<f64>,
    sodium: Option<f64>,
    procedure: bool,
}
