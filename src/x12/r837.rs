//! 837P / 837I (005010X222A2 / 005010X223A3) → one `ClaimSubmitted` per CLM.
//!
//! Defaults for fields an 837 does not carry: `department` = "UNKNOWN",
//! `encounter_id` = None, `expected_cents` = None. `payer_category` is derived from
//! SBR09 (MA/MB → Medicare, 16 → MedicareAdvantage, MC → Medicaid, ZZ/09 → SelfPay,
//! CI/BL/HM/12-15/17/AM/CH/DS/FI/LM/OF/TV/VA/WC → Commercial, else Other).
//! `service_date` = claim DTP*434/472 start, else the earliest line date, else BHT04.
//!
//! Payer and subscriber come from the 2000B subscriber loop (SBR, 2010BA NM1*IL,
//! 2010BB NM1*PR): that payer is the one this claim is submitted to. Inside a claim,
//! an SBR opens a 2320 other-subscriber (coordination of benefits) loop: its SBR,
//! 2330A NM1*IL, 2330B NM1*PR and REF describe *another* payer (e.g. the primary that
//! already paid, when this claim goes to the secondary) and never replace the
//! claim's own payer, subscriber, payer category or references; it lasts until the
//! next LX or HL. Diagnoses: HI principal (ABK/BK) first, then other (ABF/BF) and
//! external cause (ABN/BN); admitting (ABJ) and reason-for-visit (APR) codes are
//! not claim diagnoses and are skipped; HI*DR is the DRG.
//!
//! Identity: `837:<CLM01>:<frequency>:<hash>`, the hash covering what the claim
//! event takes from outside its loop (claim type, BHT04 date, billing provider,
//! subscriber, payer, SBR09) and every segment from CLM to the next HL or SE
//! ([`super::ContentHash`]). The same claim re-sent in another file or envelope
//! is a repeat the core ignores; a replacement (7) or void (8) differs in CLM05-3
//! at least, so it is always a new event.
//!
//! Amounts: an unreadable or missing CLM02 (billed) or line charge (SV102, SV203)
//! refuses the claim (dead letter `bad_amount`), never a claim billed at 0.

use super::tokenizer::{component, parse_cents, parse_date, Segment};
use super::{content_event_id, ContentHash, Ctx};
use crate::model::{
    ClaimAttachment, ClaimFrequency, ClaimLine, ClaimSubmitted, ClaimType, InputEvent,
    PayerCategory,
};

pub(crate) struct Tx837 {
    claim_type: ClaimType,
    bht_date: Option<i32>,
    billing_npi: String,
    member_id: String,
    payer_id: String,
    payer_category: PayerCategory,
    level: String,
    nm1: String,
    claims: Vec<ClaimSubmitted>,
    claim_dates: Vec<(Option<i32>, Option<i32>)>,
    line_no: i32,
    /// Inside a 2320/2330x other-subscriber (COB) loop of the current claim.
    in_cob: bool,
    /// A CLM has been read since the last HL (2300 and below).
    in_claim: bool,
    /// SBR09 of the subscriber loop (part of the claim's identity).
    sbr09: String,
    /// Content hash of the open claim loop (the last claim).
    open: Option<ContentHash>,
    /// Per claim: why it is refused (segment number, reason), if it is.
    refused: Vec<Option<(usize, String)>>,
}

/// A required amount of a claim: missing or unreadable refuses the claim.
fn required(ctx: &Ctx<'_>, s: &str, what: &str, refusal: &mut Option<(usize, String)>) -> i64 {
    let v = parse_cents(s);
    if v.is_none() && refusal.is_none() {
        let why = if s.is_empty() {
            format!("{what} is missing")
        } else {
            format!("{what} {s:?} is not a decimal amount")
        };
        *refusal = Some((ctx.seg_no, why));
    }
    v.unwrap_or(0)
}

/// Segments of the 005010X222A2 and 005010X223A3 guides.
pub(crate) fn known_segment(id: &[u8]) -> bool {
    matches!(
        id,
        b"BHT"
            | b"NM1"
            | b"PER"
            | b"HL"
            | b"PRV"
            | b"CUR"
            | b"N3"
            | b"N4"
            | b"REF"
            | b"SBR"
            | b"PAT"
            | b"DMG"
            | b"CLM"
            | b"DTP"
            | b"CL1"
            | b"PWK"
            | b"CN1"
            | b"AMT"
            | b"K3"
            | b"NTE"
            | b"CR1"
            | b"CR2"
            | b"CR3"
            | b"CRC"
            | b"HI"
            | b"HCP"
            | b"OI"
            | b"MIA"
            | b"MOA"
            | b"CAS"
            | b"LX"
            | b"SV1"
            | b"SV2"
            | b"SV5"
            | b"MEA"
            | b"QTY"
            | b"PS1"
            | b"LIN"
            | b"CTP"
            | b"SVD"
            | b"LQ"
            | b"FRM"
    )
}

fn category(sbr09: &str) -> PayerCategory {
    match sbr09 {
        "MA" | "MB" => PayerCategory::Medicare,
        "16" => PayerCategory::MedicareAdvantage,
        "MC" => PayerCategory::Medicaid,
        "ZZ" | "09" => PayerCategory::SelfPay,
        "CI" | "BL" | "HM" | "12" | "13" | "14" | "15" | "17" | "AM" | "CH" | "DS" | "FI"
        | "LM" | "OF" | "TV" | "VA" | "WC" => PayerCategory::Commercial,
        _ => PayerCategory::Other,
    }
}

fn range(s: &str) -> (Option<i32>, Option<i32>) {
    match s.split_once('-') {
        Some((a, b)) => (parse_date(a), parse_date(b)),
        None => (parse_date(s), None),
    }
}

/// Claim diagnosis qualifiers: principal, other, external cause (ICD-10 and ICD-9).
const DX_QUALS: &[&str] = &["ABK", "BK", "ABF", "BF", "ABN", "BN"];

impl Tx837 {
    pub(crate) fn new(version: &str) -> Self {
        Self {
            claim_type: if version.contains("X223") {
                ClaimType::Institutional
            } else {
                ClaimType::Professional
            },
            bht_date: None,
            billing_npi: String::new(),
            member_id: String::new(),
            payer_id: String::new(),
            payer_category: PayerCategory::Other,
            level: String::new(),
            nm1: String::new(),
            claims: Vec::new(),
            claim_dates: Vec::new(),
            line_no: 0,
            in_cob: false,
            in_claim: false,
            sbr09: String::new(),
            open: None,
            refused: Vec::new(),
        }
    }

    /// Ends the open claim loop: its content gives the claim's event id.
    fn close_loop(&mut self) {
        if let (Some(h), Some(c)) = (self.open.take(), self.claims.last_mut()) {
            let freq = match c.frequency {
                ClaimFrequency::Original => "1",
                ClaimFrequency::Replacement => "7",
                ClaimFrequency::Void => "8",
            };
            c.event_id = content_event_id("837", &[(&c.claim_id, 30), (freq, 2)], &h);
        }
    }

    pub(crate) fn segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        let csep = seg.sep.component;
        match seg.id() {
            b"CLM" | b"HL" => self.close_loop(),
            _ => {
                if let Some(h) = self.open.as_mut() {
                    h.segment(seg);
                }
            }
        }
        if self.in_cob {
            // 2320 / 2330A-G: another payer's data; only LX or HL end the loop.
            match seg.id() {
                b"LX" | b"HL" => self.in_cob = false,
                _ => return,
            }
        }
        match seg.id() {
            b"BHT" => self.bht_date = parse_date(seg.el(4)),
            b"HL" => {
                self.in_claim = false;
                self.level = seg.el(3).to_string();
                if self.level == "20" {
                    self.billing_npi.clear();
                }
            }
            b"SBR" => {
                if !self.in_claim {
                    self.payer_category = category(seg.el(9));
                    self.sbr09.clear();
                    self.sbr09.push_str(seg.el(9));
                } else {
                    // SBR after CLM in the same HL: the 2320 other-subscriber loop.
                    self.in_cob = true;
                }
            }
            b"NM1" => {
                self.nm1 = seg.el(1).to_string();
                match seg.el(1) {
                    "85" if self.level == "20" => self.billing_npi = seg.el(9).to_string(),
                    "IL" if !self.in_claim => self.member_id = seg.el(9).to_string(),
                    "PR" if !self.in_claim => {
                        self.payer_id = seg.opt(9).or(seg.opt(3)).unwrap_or("").to_string()
                    }
                    "77" | "FA" if self.in_claim => {
                        if let Some(c) = self.claims.last_mut() {
                            c.facility_id = seg.opt(9).map(str::to_string);
                        }
                    }
                    _ => {}
                }
            }
            b"CLM" => {
                self.in_claim = true;
                self.line_no = 0;
                let mut refusal = None;
                let billed = required(ctx, seg.el(2), "CLM02", &mut refusal);
                self.refused.push(refusal);
                let c5 = seg.el(5);
                let pos = component(c5, csep, 1);
                let freq = component(c5, csep, 3);
                let mut h = ContentHash::new("837");
                h.field(match self.claim_type {
                    ClaimType::Institutional => "I",
                    ClaimType::Professional => "P",
                });
                let mut day = itoa::Buffer::new();
                h.field(match self.bht_date {
                    Some(d) => day.format(d),
                    None => "",
                });
                h.field(&self.billing_npi);
                h.field(&self.member_id);
                h.field(&self.payer_id);
                h.field(&self.sbr09);
                h.segment(seg);
                self.open = Some(h);
                self.claims.push(ClaimSubmitted {
                    // Set when the loop ends (`close_loop`).
                    event_id: String::new(),
                    event_time: ctx.event_time,
                    claim_id: seg.el(1).to_string(),
                    member_id: self.member_id.clone(),
                    payer_id: self.payer_id.clone(),
                    payer_category: self.payer_category,
                    provider_id: self.billing_npi.clone(),
                    department: "UNKNOWN".to_string(),
                    facility_id: None,
                    encounter_id: None,
                    claim_type: self.claim_type,
                    frequency: ClaimFrequency::from_x12(freq),
                    billed_cents: billed,
                    expected_cents: None,
                    service_date: 0,
                    service_end_date: None,
                    submitted_date: self
                        .bht_date
                        .unwrap_or_else(|| crate::model::day_of(ctx.event_time)),
                    diagnosis_codes: Vec::new(),
                    lines: Vec::new(),
                    drg: None,
                    place_of_service: (!pos.is_empty()).then(|| pos.to_string()),
                    prior_auth_ref: None,
                    original_payer_claim_id: None,
                    attachments: Vec::new(),
                });
                self.claim_dates.push((None, None));
            }
            b"DTP" if self.in_claim => {
                let q = seg.el(1);
                let (a, b) = range(seg.el(3));
                let Some(c) = self.claims.last_mut() else {
                    return;
                };
                if let Some(l) = c.lines.last_mut() {
                    if q == "472" {
                        l.service_date = a;
                    }
                } else if q == "434" || q == "472" {
                    if let Some(d) = self.claim_dates.last_mut() {
                        *d = (a, b);
                    }
                }
            }
            b"REF" if self.in_claim => {
                if let Some(c) = self.claims.last_mut() {
                    if !c.lines.is_empty() {
                        return;
                    }
                    match seg.el(1) {
                        "G1" => c.prior_auth_ref = seg.opt(2).map(str::to_string),
                        "F8" => c.original_payer_claim_id = seg.opt(2).map(str::to_string),
                        _ => {}
                    }
                }
            }
            b"PWK" if self.in_claim => {
                // Loop 2300 claim supplemental information; a PWK after the first service line
                // belongs to loop 2400 (line documentation) and is not a claim attachment.
                if let Some(c) = self.claims.last_mut().filter(|c| c.lines.is_empty()) {
                    c.attachments.push(ClaimAttachment {
                        report_type: seg.el(1).to_string(),
                        transmission: seg.el(2).to_string(),
                    });
                }
            }
            b"HI" if self.in_claim => {
                if let Some(c) = self.claims.last_mut() {
                    for n in 1..=12 {
                        let comp = seg.el(n);
                        if comp.is_empty() {
                            break;
                        }
                        let q = component(comp, csep, 1);
                        let code = component(comp, csep, 2);
                        if q == "DR" {
                            c.drg = Some(code.to_string());
                        } else if DX_QUALS.contains(&q) && !code.is_empty() {
                            if q == "ABK" || q == "BK" {
                                c.diagnosis_codes.insert(0, code.to_string());
                            } else {
                                c.diagnosis_codes.push(code.to_string());
                            }
                        }
                    }
                }
            }
            b"LX" => self.line_no = seg.el(1).parse().unwrap_or(self.line_no + 1),
            b"SV1" | b"SV2" => {
                let inst = seg.id() == b"SV2";
                let (comp, charge, units, rev) = if inst {
                    (seg.el(2), seg.el(3), seg.el(5), seg.opt(1))
                } else {
                    (seg.el(1), seg.el(2), seg.el(4), None)
                };
                let mut parts = comp.split(csep as char);
                let _qual = parts.next();
                let code = parts.next().unwrap_or("").to_string();
                let modifiers = parts
                    .take(4)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect();
                let what = if inst { "SV203" } else { "SV102" };
                let mut refusal = None;
                let charge_cents = required(ctx, charge, what, &mut refusal);
                if let (Some(r @ None), true) = (self.refused.last_mut(), self.in_claim) {
                    *r = refusal;
                }
                let line_number = if self.line_no > 0 {
                    self.line_no
                } else {
                    self.claims.last().map_or(0, |c| c.lines.len() as i32 + 1)
                };
                let Some(c) = self.claims.last_mut().filter(|_| self.in_claim) else {
                    ctx.finding(
                        "unexpected_segment",
                        "service line outside a claim; ignored".into(),
                    );
                    return;
                };
                {
                    c.lines.push(ClaimLine {
                        line_number,
                        procedure_code: code,
                        modifiers,
                        revenue_code: rev.map(str::to_string),
                        units: units.parse().unwrap_or(0.0),
                        charge_cents,
                        service_date: None,
                    });
                }
            }
            _ => {}
        }
    }

    pub(crate) fn finish(mut self, ctx: &mut Ctx<'_>, emit: &mut dyn FnMut(InputEvent)) {
        self.close_loop();
        let claims = self
            .claims
            .into_iter()
            .zip(self.claim_dates)
            .zip(self.refused);
        for (k, ((mut c, (start, end)), refused)) in claims.enumerate() {
            if let Some((segment, why)) = refused {
                ctx.refuse(
                    "bad_amount",
                    k + 1,
                    segment,
                    format!(
                        "claim {} of transaction set {}: {why}; the claim was not emitted",
                        k + 1,
                        ctx.st02
                    ),
                );
                continue;
            }
            let line_min = c.lines.iter().filter_map(|l| l.service_date).min();
            let line_max = c.lines.iter().filter_map(|l| l.service_date).max();
            c.service_date = start.or(line_min).unwrap_or(c.submitted_date);
            c.service_end_date = end.or(if start.is_none() && line_max != line_min {
                line_max
            } else {
                None
            });
            if c.claim_id.is_empty() {
                ctx.finding(
                    "missing_claim_id",
                    format!(
                        "claim {} of transaction set {}: CLM01 empty",
                        k + 1,
                        ctx.st02
                    ),
                );
            }
            emit(InputEvent::Claim(c));
        }
    }
}
