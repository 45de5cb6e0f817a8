//! Billing: claims, 277CA acknowledgments and 835 remittances for the visits of a member, with
//! front-door rejections and denials drawn from a logistic model of what is known at submission.

use rand::Rng;
use rand_distr::{Distribution, LogNormal};

use super::clinical::{Visit, VisitKind};
use super::population::{Member, SUPPLEMENT_PAYER};
use super::{DenialTruth, GenerateConfig, MemberOutput};
use crate::model::{
    Adjustment, AdjustmentGroup, ClaimAck, ClaimAttachment, ClaimFrequency, ClaimLine,
    ClaimStatusCode, ClaimSubmitted, ClaimType, EpochDay, PayerCategory, Remittance,
    ServiceLinePayment, DAY_MS,
};

/// Coefficients of the true front-door rejection and denial models (log-odds), features known at
/// submission. Intercepts are tuned for a few % rejections and a 10-15 % initial denial rate
/// (DOMAIN.md §1: Premier / Change Healthcare figures).
mod claim_model {
    pub const REJECT_INTERCEPT: f64 = -4.1;
    pub const REJECT_DOC_GAP: f64 = 2.6;
    pub const REJECT_INSTITUTIONAL: f64 = 0.3;
    pub const DENY_INTERCEPT: f64 = -1.95;
    pub const DENY_MISSING_AUTH: f64 = 2.9;
    pub const DENY_DOC_GAP: f64 = 1.5;
    pub const DENY_PER_LOG_THOUSAND_BILLED: f64 = 0.22;
    pub const DENY_EMERGENCY: f64 = 0.35;
    pub const DENY_ONCOLOGY: f64 = 0.3;
    pub const DENY_IMAGING: f64 = 0.35;
    pub const DENY_VACCINE: f64 = -1.6;
    pub const DENY_INPATIENT: f64 = 0.25;
}

/// Mean of the members' documentation-gap propensity (uniform on 0.02..0.12, `population`).
const MEAN_DOC_GAP_PROPENSITY: f64 = 0.07;

/// CPT codes that usually need prior authorization in the synthetic market.
const NEEDS_AUTH: [&str; 5] = ["70553", "93306", "72148", "27447", "27130"];

/// Imaging and echo CPTs whose report the synthetic market's payers want with the claim.
const NEEDS_REPORT: [&str; 3] = ["70553", "72148", "93306"];
/// Surgical CPTs whose operative note the payers want with the claim.
const NEEDS_OPERATIVE_NOTE: [&str; 2] = ["27447", "27130"];
/// A claim billed at or above this (cents) is sent with supporting data.
const DOCUMENTATION_BILLED_CENTS: i64 = 100_000;

/// Which claims need supporting documentation (837 PWK, loop 2300), and which report, in the
/// synthetic market. The rule, first match wins:
/// - institutional claims: the operative note (`OB`) when an operating-room revenue code (036x)
///   is billed, else the discharge summary (`DS`);
/// - a surgical CPT ([`NEEDS_OPERATIVE_NOTE`]): the operative note (`OB`);
/// - an imaging or echo CPT ([`NEEDS_REPORT`]): the radiology report (`RR`);
/// - emergency-department visits and professional claims for an inpatient stay: the progress
///   note (`09`), as is an E/M billed with modifier 25 (separately identifiable visit);
/// - any other claim billed at or above [`DOCUMENTATION_BILLED_CENTS`]: support data for the
///   claim (`OZ`).
///
/// Routine office visits, labs and vaccines need none. A claim that needs documentation is sent
/// with one PWK record, transmitted electronically (`EL`). A **documentation gap** (the member's
/// latent propensity, see `claim_for`) can only occur on such a claim: it is then sent without
/// the PWK (half of the gaps) or with the report only "available on request" (`AA`, the other
/// half), and a denial it causes carries a documentation CARC (252 or 16) with RARC M127 / N706.
fn documentation_needed(
    v: &Visit,
    lines: &[ClaimLine],
    institutional: bool,
) -> Option<&'static str> {
    let any_cpt = |set: &[&str]| v.cpt.iter().any(|c| set.contains(c));
    if institutional {
        let or = lines.iter().any(|l| {
            l.revenue_code
                .as_deref()
                .is_some_and(|r| r.starts_with("036"))
        });
        return Some(if or { "OB" } else { "DS" });
    }
    if any_cpt(&NEEDS_OPERATIVE_NOTE) {
        return Some("OB");
    }
    if any_cpt(&NEEDS_REPORT) {
        return Some("RR");
    }
    if matches!(v.kind, VisitKind::Emergency | VisitKind::Inpatient)
        || lines.iter().any(|l| l.modifiers.iter().any(|m| m == "25"))
    {
        return Some("09");
    }
    let billed: i64 = lines.iter().map(|l| l.charge_cents).sum();
    (billed >= DOCUMENTATION_BILLED_CENTS).then_some("OZ")
}

/// The PWK record of a claim that sends its documentation.
fn sent(report_type: &str) -> ClaimAttachment {
    ClaimAttachment {
        report_type: report_type.to_owned(),
        transmission: "EL".to_owned(),
    }
}

fn charge(cpt: &str) -> i64 {
    // Billed charges in cents, typical chargemaster levels.
    match cpt {
        "99213" => 15_500,
        "99214" => 22_800,
        "99284" => 95_000,
        "99223" => 42_000,
        "99232" => 16_500,
        "99238" => 18_000,
        "80053" => 9_800,
        "36415" => 2_500,
        "70553" => 310_000,
        "93306" => 185_000,
        "72148" => 240_000,
        "90686" => 4_900,
        "90677" => 29_000,
        "90471" => 3_500,
        _ => 20_000,
    }
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A denial reason: category (claimwatch CARC category), CARC, RARC remarks.
type Denial = (&'static str, &'static str, &'static [&'static str]);

const OTHER_DENIALS: [(f64, Denial); 7] = [
    (0.25, ("MEDICAL_NECESSITY", "50", &["N115"])),
    (0.20, ("CODING", "11", &["M76"])),
    (0.15, ("ELIGIBILITY", "27", &["N30"])),
    (0.13, ("NON_COVERED", "96", &["N130"])),
    (0.12, ("BUNDLING", "97", &["M15"])),
    (0.07, ("DUPLICATE", "18", &[])),
    (0.08, ("TIMELY_FILING", "29", &[])),
];

struct Biller<'a, R: Rng> {
    rng: &'a mut R,
    member: &'a Member,
    out: &'a mut MemberOutput,
    end: EpochDay,
    claims: u32,
    /// The report the current claim needs ([`documentation_needed`]), sent with an appeal.
    documentation: Option<&'static str>,
}

pub fn bill(
    rng: &mut impl Rng,
    cfg: &GenerateConfig,
    member: &Member,
    visits: &[Visit],
    out: &mut MemberOutput,
) {
    let mut b = Biller {
        rng,
        member,
        out,
        end: cfg.start_date + cfg.days + 90,
        claims: 0,
        documentation: None,
    };
    for v in visits {
        b.claim_for(v);
    }
}

impl<R: Rng> Biller<'_, R> {
    fn at(&mut self, day: EpochDay) -> i64 {
        i64::from(day) * DAY_MS
            + i64::from(self.rng.gen_range(7 * 3600..21 * 3600)) * 1000
            + self.rng.gen_range(0..1000)
    }

    fn claim_for(&mut self, v: &Visit) {
        let m = self.member;
        self.claims += 1;
        let claim_id = format!("{}-C{:03}", m.id, self.claims);
        let institutional = v.kind == VisitKind::Inpatient && self.rng.gen_bool(0.999);
        // Lines.
        let mut lines: Vec<ClaimLine> = Vec::new();
        if institutional {
            let los = i64::from((v.end_day - v.day).max(1));
            let mut add = |rev: &str, cpt: &str, cents: i64| {
                lines.push(ClaimLine {
                    line_number: lines.len() as i32 + 1,
                    procedure_code: cpt.to_owned(),
                    modifiers: vec![],
                    revenue_code: Some(rev.to_owned()),
                    units: 1.0,
                    charge_cents: cents,
                    service_date: Some(v.day),
                })
            };
            add("0120", "", 285_000 * los);
            add("0250", "", 60_000 * los + 40_000);
            add("0300", "80053", 45_000 + 12_000 * los);
            if v.admit_type == crate::model::AdmitType::Emergency {
                add("0450", "99285", 210_000);
            }
            if v.department == "ORTHOPEDICS" || v.department == "SURGERY" {
                add("0360", "", 2_400_000);
            }
        } else {
            for (i, cpt) in v.cpt.iter().enumerate() {
                lines.push(ClaimLine {
                    line_number: i as i32 + 1,
                    procedure_code: (*cpt).to_owned(),
                    modifiers: if *cpt == "99214" && v.cpt.len() > 2 {
                        vec!["25".into()]
                    } else {
                        vec![]
                    },
                    revenue_code: None,
                    units: 1.0,
                    charge_cents: charge(cpt),
                    service_date: Some(v.day),
                });
            }
        }
        let billed: i64 = lines.iter().map(|l| l.charge_cents).sum();
        let needs_auth = v.cpt.iter().any(|c| NEEDS_AUTH.contains(c))
            || (institutional && v.admit_type == crate::model::AdmitType::Elective);
        let missing_auth = needs_auth && self.rng.gen_bool(0.14);
        // A documentation gap is required documentation missing: only a claim that needs some
        // can have one (rate `min(0.5, propensity x (1 + lines / 5))`).
        let documentation = documentation_needed(v, &lines, institutional);
        self.documentation = documentation;
        let gap_rate = |propensity: f64| {
            if documentation.is_some() {
                (propensity * (1.0 + lines.len() as f64 / 5.0)).min(0.5)
            } else {
                0.0
            }
        };
        let doc_gap = documentation.is_some() && self.rng.gen_bool(gap_rate(m.doc_gap_propensity));
        let attachments = match documentation {
            None => Vec::new(),
            Some(report) if !doc_gap => vec![sent(report)],
            // The gap: nothing sent, or the records only "available on request".
            Some(report) => {
                if self.rng.gen_bool(0.5) {
                    Vec::new()
                } else {
                    vec![ClaimAttachment {
                        report_type: report.to_owned(),
                        transmission: "AA".to_owned(),
                    }]
                }
            }
        };
        let submitted = v.end_day
            + if institutional {
                self.rng.gen_range(2..8)
            } else {
                self.rng.gen_range(1..6)
            };
        use claim_model as k;
        let p_reject = logistic(
            k::REJECT_INTERCEPT
                + m.payer.rejection_logit
                + if doc_gap { k::REJECT_DOC_GAP } else { 0.0 }
                + if institutional {
                    k::REJECT_INSTITUTIONAL
                } else {
                    0.0
                },
        );
        let deny_logit = |doc_gap: bool| {
            k::DENY_INTERCEPT
                + m.payer.denial_logit
                + if missing_auth {
                    k::DENY_MISSING_AUTH
                } else {
                    0.0
                }
                + if doc_gap { k::DENY_DOC_GAP } else { 0.0 }
                + k::DENY_PER_LOG_THOUSAND_BILLED * ((billed as f64 / 100_000.0).max(0.01)).ln()
                + if v.kind == VisitKind::Emergency {
                    k::DENY_EMERGENCY
                } else {
                    0.0
                }
                + if v.department == "ONCOLOGY" {
                    k::DENY_ONCOLOGY
                } else {
                    0.0
                }
                + if v
                    .cpt
                    .iter()
                    .any(|c| ["70553", "72148", "93306"].contains(c))
                {
                    k::DENY_IMAGING
                } else {
                    0.0
                }
                + if v.kind == VisitKind::Vaccine {
                    k::DENY_VACCINE
                } else {
                    0.0
                }
                + if institutional {
                    k::DENY_INPATIENT
                } else {
                    0.0
                }
        };
        let p_deny = logistic(deny_logit(doc_gap));
        // The outcome probability averaged over the documentation-gap draw (for truth.json).
        let p_outcome = |gap: bool| {
            let p_rej = logistic(
                k::REJECT_INTERCEPT
                    + m.payer.rejection_logit
                    + if gap { k::REJECT_DOC_GAP } else { 0.0 }
                    + if institutional {
                        k::REJECT_INSTITUTIONAL
                    } else {
                        0.0
                    },
            );
            1.0 - (1.0 - p_rej) * (1.0 - logistic(deny_logit(gap)))
        };
        let before_draw = |propensity: f64| {
            let q = gap_rate(propensity);
            q * p_outcome(true) + (1.0 - q) * p_outcome(false)
        };
        let probability_before_gap_draw = before_draw(m.doc_gap_propensity);
        let probability_population_gap_rate = before_draw(MEAN_DOC_GAP_PROPENSITY);
        let rejected = self.rng.gen_bool(p_reject);
        let claim = ClaimSubmitted {
            event_id: format!("clm-{claim_id}-1"),
            event_time: 0,
            claim_id: claim_id.clone(),
            member_id: m.id.clone(),
            payer_id: m.payer.id.to_owned(),
            payer_category: m.payer.category,
            provider_id: format!("NPI-{}-{}", &v.facility[2..], v.department),
            department: v.department.to_owned(),
            facility_id: Some(v.facility.to_owned()),
            encounter_id: v.encounter_id.clone(),
            claim_type: if institutional {
                ClaimType::Institutional
            } else {
                ClaimType::Professional
            },
            frequency: ClaimFrequency::Original,
            billed_cents: billed,
            expected_cents: Some((billed as f64 * m.payer.allowed_ratio).round() as i64),
            service_date: v.day,
            service_end_date: (v.end_day > v.day).then_some(v.end_day),
            submitted_date: submitted,
            diagnosis_codes: {
                let mut dx = v.dx.clone();
                if doc_gap && dx.len() > 1 {
                    dx.truncate(1);
                }
                dx
            },
            lines,
            drg: v.drg.map(str::to_owned),
            place_of_service: Some(
                match v.kind {
                    VisitKind::Inpatient => {
                        if institutional {
                            "111"
                        } else {
                            "21"
                        }
                    }
                    VisitKind::Emergency => "23",
                    _ => "11",
                }
                .to_owned(),
            ),
            prior_auth_ref: (needs_auth && !missing_auth)
                .then(|| format!("PA{}", self.rng.gen_range(100_000..999_999))),
            original_payer_claim_id: None,
            attachments,
        };
        self.out.counters.claims += 1;
        self.out.counters.documentation_gaps += u64::from(doc_gap);
        let icn = format!("ICN{:011}", self.rng.gen_range(0u64..99_999_999_999));
        // The EHR export: usually on the submission day, 2 % exported weeks late (after the 277CA
        // and sometimes the 835 arrived).
        let mut exported = claim.clone();
        exported.event_time = self.at(submitted);
        if self.rng.gen_bool(0.02) {
            exported.event_time += i64::from(self.rng.gen_range(15..35)) * DAY_MS;
            self.out.counters.late_claim_exports += 1;
        }
        self.emit_claim(exported);

        let mut truth = DenialTruth {
            claim_id: claim_id.clone(),
            probability: 1.0 - (1.0 - p_reject) * (1.0 - p_deny),
            probability_before_gap_draw,
            probability_population_gap_rate,
            documentation_gap: doc_gap,
            rejected,
            denied: false,
            category: None,
            carc: None,
        };
        let mut current = claim.clone();
        if rejected {
            self.out.counters.rejected += 1;
            let mut day = submitted + 1;
            if self.rng.gen_bool(0.5) {
                self.ack(&claim_id, day, "A1", "19", None);
                day += 1;
            }
            let (cat, code) = if self.rng.gen_bool(0.7) {
                ("A7", "21")
            } else {
                ("A3", "562")
            };
            self.ack(&claim_id, day, cat, code, None);
            if !self.rng.gen_bool(0.85) {
                self.out.truth.denials.push(truth);
                return;
            }
            // Corrected and resubmitted as a replacement: the documentation gap is fixed.
            let resubmit = day + self.rng.gen_range(3..11);
            current.event_id = format!("clm-{claim_id}-2");
            current.frequency = ClaimFrequency::Replacement;
            current.submitted_date = resubmit;
            current.diagnosis_codes = v.dx.clone();
            current.attachments = documentation.map(sent).into_iter().collect();
            current.event_time = self.at(resubmit);
            self.out.counters.replacements += 1;
            self.emit_claim(current.clone());
            let denied = self.adjudicate(
                &current,
                &icn,
                logistic(deny_logit(false)),
                missing_auth,
                false,
                2,
            );
            truth.category = denied.map(|d| d.0.to_owned());
            truth.carc = denied.map(|d| d.1.to_owned());
            self.out.truth.denials.push(truth);
            return;
        }
        let denied = self.adjudicate(&current, &icn, p_deny, missing_auth, doc_gap, 1);
        truth.denied = denied.is_some();
        truth.category = denied.map(|d| d.0.to_owned());
        truth.carc = denied.map(|d| d.1.to_owned());
        self.out.truth.denials.push(truth);
    }

    fn emit_claim(&mut self, c: ClaimSubmitted) {
        if self.rng.gen_bool(0.005) {
            self.out.counters.duplicates += 1;
            self.out.claims.push(c.clone());
        }
        self.out.claims.push(c);
    }

    fn ack(
        &mut self,
        claim_id: &str,
        day: EpochDay,
        category: &str,
        code: &str,
        icn: Option<&str>,
    ) {
        let n = self
            .out
            .acks
            .iter()
            .filter(|a| a.claim_id == claim_id)
            .count()
            + 1;
        let event_time = self.at(day);
        self.out.acks.push(ClaimAck {
            event_id: format!("ack-{claim_id}-{n}"),
            event_time,
            claim_id: claim_id.to_owned(),
            payer_id: Some(self.member.payer.id.to_owned()),
            payer_claim_control_number: icn.map(str::to_owned),
            clearinghouse_trace: Some(format!("CH{:09}", self.rng.gen_range(0..999_999_999))),
            ack_date: day,
            statuses: vec![ClaimStatusCode {
                category: category.to_owned(),
                code: code.to_owned(),
                entity: Some(if category == "A7" || category == "A3" {
                    "41".into()
                } else {
                    "PR".into()
                }),
            }],
            billed_cents: None,
        });
    }

    /// Acknowledges and adjudicates a submission. Returns the denial drawn, if any (full denial).
    fn adjudicate(
        &mut self,
        claim: &ClaimSubmitted,
        icn: &str,
        p_deny: f64,
        missing_auth: bool,
        doc_gap: bool,
        round: u32,
    ) -> Option<Denial> {
        let claim_id = claim.claim_id.clone();
        let sub = claim.submitted_date;
        // 277CA: 1.5 % never arrive.
        if self.rng.gen_bool(0.985) {
            let d1 = sub + self.rng.gen_range(1..3);
            let received_first = self.rng.gen_bool(0.65);
            if received_first {
                self.ack(&claim_id, d1, "A1", "19", None);
            }
            let d2 = d1 + self.rng.gen_range(0..2);
            if self.rng.gen_bool(0.02) {
                self.ack(&claim_id, d2, "R3", "21", Some(icn));
                let d3 = d2 + self.rng.gen_range(3..8);
                self.ack(&claim_id, d3, "A2", "20", Some(icn));
            } else {
                self.ack(&claim_id, d2, "A2", "20", Some(icn));
            }
            self.out
                .counters
                .ack_days
                .push(if received_first { d1 } else { d2 } - sub);
        } else {
            self.out.counters.missing_acks += 1;
        }
        // 835: 1 % of accepted claims never get one.
        if !self.rng.gen_bool(0.99) {
            self.out.counters.missing_remits += 1;
            return None;
        }
        let median = f64::from(self.member.payer.days_to_pay);
        let days = LogNormal::new(median.ln(), 0.25)
            .map(|d| d.sample(self.rng))
            .unwrap_or(median)
            .round()
            .clamp(10.0, 60.0) as i32;
        let pay_day = sub + days;
        if pay_day > self.end {
            return None;
        }
        self.out.counters.pay_days.push(days);
        let denied = self.rng.gen_bool(p_deny);
        let denial = denied.then(|| self.denial_reason(missing_auth, doc_gap));
        if round == 1 {
            self.out.counters.adjudicated += 1;
            if denied {
                self.out.counters.denied += 1;
            }
        }
        let remit = match denial {
            Some(d) => self.denied_remit(claim, icn, pay_day, d),
            None => {
                let partial = self.rng.gen_bool(0.04) && claim.lines.len() > 1;
                if partial {
                    self.out.counters.partial += 1;
                }
                self.paid_remit(claim, icn, pay_day, partial, 1.0)
            }
        };
        let paid = remit.paid_cents;
        let coinsurance: i64 = remit
            .lines
            .iter()
            .flat_map(|l| &l.adjustments)
            .filter(|a| a.group == AdjustmentGroup::PR && a.reason == "2")
            .map(|a| a.amount_cents)
            .sum();
        self.emit_remit(remit.clone());
        if denial.is_none() && paid > 0 {
            // Medicare supplement pays the coinsurance as secondary payer (CLP02 2).
            if self.member.supplement && coinsurance > 0 {
                let day = pay_day + self.rng.gen_range(8..20);
                self.secondary_remit(claim, day, coinsurance);
            }
            // A reversal and corrected re-adjudication (1.5 %).
            if self.rng.gen_bool(0.015) {
                self.out.counters.reversals += 1;
                let day = pay_day + self.rng.gen_range(10..25);
                let mut rev = remit.clone();
                let n = self.remit_count(&claim_id) + 1;
                rev.event_id = format!("rmt-{claim_id}-{n}");
                rev.claim_status = "22".into();
                rev.charge_cents = -rev.charge_cents;
                rev.paid_cents = -rev.paid_cents;
                rev.patient_responsibility_cents = -rev.patient_responsibility_cents;
                for a in rev
                    .adjustments
                    .iter_mut()
                    .chain(rev.lines.iter_mut().flat_map(|l| l.adjustments.iter_mut()))
                {
                    a.amount_cents = -a.amount_cents;
                }
                for l in &mut rev.lines {
                    l.charge_cents = -l.charge_cents;
                    l.paid_cents = -l.paid_cents;
                }
                rev.payment_date = day;
                rev.event_time = self.at(day);
                rev.payment_trace = Some(trace(self.member.payer.id, day));
                self.emit_remit(rev);
                let again = day + self.rng.gen_range(1..4);
                let corrected = self.paid_remit(claim, icn, again, false, 0.95);
                self.emit_remit(corrected);
            }
        }
        if let Some(d) = denial {
            // Appeal: a corrected replacement and a second adjudication, paid (~45 %).
            if round < 3 && self.rng.gen_bool(0.45) {
                let resubmit = pay_day + self.rng.gen_range(10..30);
                let mut rep = claim.clone();
                rep.event_id = format!("clm-{claim_id}-{}", round + 1);
                rep.frequency = ClaimFrequency::Replacement;
                rep.submitted_date = resubmit;
                rep.original_payer_claim_id = Some(icn.to_owned());
                rep.prior_auth_ref = rep.prior_auth_ref.or_else(|| Some("PA-RETRO".into()));
                // The appeal sends the records the payer needs.
                if let Some(report) = self.documentation {
                    rep.attachments = vec![sent(report)];
                }
                rep.event_time = self.at(resubmit);
                self.out.counters.replacements += 1;
                self.out.counters.appeals += 1;
                self.emit_claim(rep.clone());
                self.adjudicate(&rep, icn, 0.1, false, false, round + 1);
            }
            return Some(d);
        }
        None
    }

    fn denial_reason(&mut self, missing_auth: bool, doc_gap: bool) -> Denial {
        if missing_auth && self.rng.gen_bool(0.85) {
            return if self.rng.gen_bool(0.75) {
                ("AUTHORIZATION", "197", &["N54"])
            } else {
                ("AUTHORIZATION", "15", &["N54"])
            };
        }
        if doc_gap && self.rng.gen_bool(0.75) {
            // Documentation CARCs: 252 "an attachment/other documentation is required" with
            // M127 "missing patient medical record for this service", or 16 "lacks information"
            // with N706 "missing documentation".
            return if self.rng.gen_bool(0.5) {
                ("MISSING_INFORMATION", "252", &["M127"])
            } else {
                ("MISSING_INFORMATION", "16", &["N706"])
            };
        }
        let mut u: f64 = self.rng.gen();
        for (w, d) in OTHER_DENIALS {
            if u < w {
                return d;
            }
            u -= w;
        }
        OTHER_DENIALS[0].1
    }

    fn remit_count(&self, claim_id: &str) -> usize {
        self.out
            .remits
            .iter()
            .filter(|r| r.claim_id == claim_id)
            .count()
    }

    fn base_remit(
        &mut self,
        claim: &ClaimSubmitted,
        icn: &str,
        day: EpochDay,
        status: &str,
        payer: &str,
    ) -> Remittance {
        let n = self.remit_count(&claim.claim_id) + 1;
        Remittance {
            event_id: format!("rmt-{}-{n}", claim.claim_id),
            event_time: self.at(day),
            claim_id: claim.claim_id.clone(),
            payer_id: payer.to_owned(),
            payer_claim_control_number: Some(icn.to_owned()),
            claim_status: status.to_owned(),
            charge_cents: claim.billed_cents,
            paid_cents: 0,
            patient_responsibility_cents: 0,
            claim_filing_indicator: Some(
                match self.member.payer.category {
                    PayerCategory::Medicare => "MA",
                    PayerCategory::MedicareAdvantage => "16",
                    PayerCategory::Medicaid => "MC",
                    _ => "CI",
                }
                .into(),
            ),
            facility_code: (claim.claim_type == ClaimType::Institutional).then(|| "11".to_owned()),
            frequency: Some(
                if claim.frequency == ClaimFrequency::Replacement {
                    "7"
                } else {
                    "1"
                }
                .into(),
            ),
            drg: claim.drg.clone(),
            adjustments: vec![],
            remarks: vec![],
            lines: vec![],
            payment_date: day,
            payment_trace: Some(trace(payer, day)),
            findings: vec![],
        }
    }

    /// A paid claim; `allowed_factor` < 1 models an underpayment / corrected lower payment.
    fn paid_remit(
        &mut self,
        claim: &ClaimSubmitted,
        icn: &str,
        day: EpochDay,
        partial: bool,
        allowed_factor: f64,
    ) -> Remittance {
        let payer = self.member.payer;
        let mut r = self.base_remit(claim, icn, day, "1", payer.id);
        let underpaid = self.rng.gen_bool(0.05);
        let expected = claim.expected_cents.unwrap_or(claim.billed_cents / 2);
        let allowed_total =
            ((expected as f64) * allowed_factor * if underpaid { 0.9 } else { 1.0 }).round() as i64;
        // Patient share by line of business: Medicare coinsurance 20 %, an inpatient deductible,
        // commercial copays, nothing for Medicaid.
        let patient_total = match payer.category {
            PayerCategory::Medicare | PayerCategory::MedicareAdvantage => {
                if claim.claim_type == ClaimType::Institutional {
                    163_200.min(allowed_total)
                } else {
                    allowed_total / 5
                }
            }
            PayerCategory::Commercial => {
                if claim.claim_type == ClaimType::Institutional {
                    (allowed_total / 10).min(250_000)
                } else {
                    3_000.min(allowed_total)
                }
            }
            PayerCategory::SelfPay => allowed_total / 2,
            _ => 0,
        };
        // PR-1 deductible, PR-2 coinsurance, PR-3 copay.
        let pr_reason = match (payer.category, claim.claim_type) {
            (
                PayerCategory::Medicare | PayerCategory::MedicareAdvantage,
                ClaimType::Institutional,
            ) => "1",
            (PayerCategory::Commercial, ClaimType::Professional) => "3",
            _ => "2",
        };
        let denied_line = partial.then(|| self.rng.gen_range(0..claim.lines.len()));
        let paid_lines: Vec<usize> = (0..claim.lines.len())
            .filter(|i| Some(*i) != denied_line)
            .collect();
        let paid_charge: i64 = paid_lines
            .iter()
            .map(|i| claim.lines[*i].charge_cents)
            .sum::<i64>()
            .max(1);
        let allowed_paid_lines = if partial {
            allowed_total * paid_charge / claim.billed_cents.max(1)
        } else {
            allowed_total
        };
        let patient_paid_lines = if partial {
            patient_total * paid_charge / claim.billed_cents.max(1)
        } else {
            patient_total
        };
        let (mut allowed_left, mut patient_left) = (allowed_paid_lines, patient_paid_lines);
        let last_paid = paid_lines.last().copied();
        for (i, line) in claim.lines.iter().enumerate() {
            let mut adjustments = Vec::new();
            let paid = if Some(i) == denied_line {
                // Bundled into another line, or not medically necessary.
                let carc = if self.rng.gen_bool(0.6) { "97" } else { "50" };
                adjustments.push(Adjustment {
                    group: AdjustmentGroup::CO,
                    reason: carc.into(),
                    amount_cents: line.charge_cents,
                    quantity: None,
                });
                0
            } else {
                let (allowed, patient) = if Some(i) == last_paid {
                    (allowed_left, patient_left)
                } else {
                    let a = allowed_paid_lines * line.charge_cents / paid_charge;
                    let p = patient_paid_lines * line.charge_cents / paid_charge;
                    (a, p)
                };
                allowed_left -= allowed;
                patient_left -= patient;
                let contractual = line.charge_cents - allowed;
                if contractual != 0 {
                    adjustments.push(Adjustment {
                        group: AdjustmentGroup::CO,
                        reason: "45".into(),
                        amount_cents: contractual,
                        quantity: None,
                    });
                }
                if patient != 0 {
                    adjustments.push(Adjustment {
                        group: AdjustmentGroup::PR,
                        reason: pr_reason.into(),
                        amount_cents: patient,
                        quantity: None,
                    });
                }
                allowed - patient
            };
            let remarks = if Some(i) == denied_line {
                vec!["M15".into()]
            } else {
                vec![]
            };
            r.lines.push(line_payment(line, paid, adjustments, remarks));
        }
        r.paid_cents = r.lines.iter().map(|l| l.paid_cents).sum();
        r.patient_responsibility_cents = r
            .lines
            .iter()
            .flat_map(|l| &l.adjustments)
            .filter(|a| a.group == AdjustmentGroup::PR)
            .map(|a| a.amount_cents)
            .sum();
        r
    }

    fn denied_remit(
        &mut self,
        claim: &ClaimSubmitted,
        icn: &str,
        day: EpochDay,
        d: Denial,
    ) -> Remittance {
        let status = if self.rng.gen_bool(0.3) { "4" } else { "1" };
        let mut r = self.base_remit(claim, icn, day, status, self.member.payer.id);
        let group = if d.0 == "ELIGIBILITY" && self.rng.gen_bool(0.3) {
            AdjustmentGroup::PI
        } else {
            AdjustmentGroup::CO
        };
        for line in &claim.lines {
            let denial = Adjustment {
                group,
                reason: d.1.into(),
                amount_cents: line.charge_cents,
                quantity: None,
            };
            r.lines.push(line_payment(line, 0, vec![denial], vec![]));
        }
        r.remarks = d.2.iter().map(|s| (*s).to_owned()).collect();
        r
    }

    fn secondary_remit(&mut self, claim: &ClaimSubmitted, day: EpochDay, coinsurance: i64) {
        let icn = format!("SEC{:09}", self.rng.gen_range(0..999_999_999));
        let mut r = self.base_remit(claim, &icn, day, "2", SUPPLEMENT_PAYER);
        r.paid_cents = coinsurance;
        r.adjustments.push(Adjustment {
            group: AdjustmentGroup::OA,
            reason: "23".into(),
            amount_cents: claim.billed_cents - coinsurance,
            quantity: None,
        });
        r.claim_filing_indicator = Some("CI".into());
        self.out.counters.secondary += 1;
        self.emit_remit(r);
    }

    fn emit_remit(&mut self, r: Remittance) {
        if self.rng.gen_bool(0.005) {
            self.out.counters.duplicates += 1;
            self.out.remits.push(r.clone());
        }
        self.out.remits.push(r);
    }
}

/// The 835 service line for a submitted line: the adjudicated code is the procedure code, or the
/// revenue code of a room-and-board style institutional line that has none.
fn line_payment(
    line: &ClaimLine,
    paid_cents: i64,
    adjustments: Vec<Adjustment>,
    remarks: Vec<String>,
) -> ServiceLinePayment {
    ServiceLinePayment {
        procedure_code: if line.procedure_code.is_empty() {
            line.revenue_code.clone().unwrap_or_default()
        } else {
            line.procedure_code.clone()
        },
        modifiers: line.modifiers.clone(),
        revenue_code: line.revenue_code.clone(),
        charge_cents: line.charge_cents,
        paid_cents,
        units: Some(line.units),
        service_date: line.service_date,
        adjustments,
        remarks,
    }
}

/// EFT trace shared by one payer's payments of one day (one 835 per payer per day).
fn trace(payer: &str, day: EpochDay) -> String {
    format!("EFT-{payer}-{day}")
}
