//! 835 (005010X221A1) health care claim payment/advice → one `Remittance` per CLP.
//!
//! Loops by segment order: header (BPR, TRN, CUR, REF, DTM), 1000A payer and 1000B
//! payee (N1 ...), 2000 header number (LX, TS3, TS2), 2100 claim (CLP, CAS, NM1, MIA,
//! MOA, REF, DTM, PER, AMT, QTY), 2110 service line (SVC, DTM, CAS, REF, AMT, QTY,
//! LQ), then PLB. Findings: unknown or misplaced segments, CLP02 / CARC / RARC codes
//! not in the reference tables, CAS group CR (not a 5010 code), CAS triplets with a
//! reason but no amount, and the three balancing rules (line, claim, transaction),
//! which are reported and never "fixed".
//!
//! Identity: a claim payment's event id comes from its content, not its envelope:
//! `835:<TRN02 trace>:<CLP01>:<hash>`, the hash covering the payer (N1*PR id, else
//! REF*2U, else N102), TRN03, TRN02 and every segment of the CLP loop (CLP, CAS, NM1,
//! MIA, MOA, REF, DTM, SVC, LQ, ... up to the next CLP, LX, TS3, TS2, PLB or SE) with
//! the separators normalised ([`super::ContentHash`]). A payment re-sent in another
//! file, interchange or transaction set keeps its id (the core ignores it as a
//! repeat); any change of content (an amount, a code, a date) gives a new id; two
//! identical CLP loops in one payment (same trace) are one payment.
//!
//! Amounts: a money element that cannot be read never becomes 0. An unreadable or
//! missing *required* amount of a claim payment (CLP03 charge, CLP04 paid, a CAS
//! amount, SVC02 line charge, SVC03 line paid) or an unreadable CLP05 (situational,
//! but the model has no "absent" patient responsibility other than 0, which would
//! read as "patient owes nothing") refuses the claim payment: it is not emitted and
//! its transaction set goes to the dead letters (code `bad_amount`, naming the
//! element and the segment). An unreadable optional quantity (CAS quantity, SVC05
//! units) is a finding and treated as absent. BPR02 and PLB amounts belong to no
//! claim: unreadable, they are findings, the PLB adjustment is not recorded, and the
//! transaction balance is not checked (instead of being checked against 0).

use super::tokenizer::{parse_cents, parse_date, Segment};
use super::{content_event_id, ContentHash, Ctx};
use crate::model::{Adjustment, AdjustmentGroup, InputEvent, Remittance, ServiceLinePayment};

/// One PLB provider-level adjustment (PLB03..PLB14 pairs).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PlbAdjustment {
    pub source: String,
    pub interchange: String,
    pub transaction: String,
    pub provider_id: String,
    pub fiscal_period_date: Option<i32>,
    /// PLB03-1 etc. (e.g. "WO", "L6", "FB").
    pub reason: String,
    /// PLB03-2 reference identification.
    pub reference: Option<String>,
    /// Positive amounts reduce the payment.
    pub amount_cents: i64,
}

#[derive(Default)]
pub(crate) struct Tx835 {
    /// BPR02; None when missing or unreadable.
    total_cents: Option<i64>,
    payment_date: Option<i32>,
    production_date: Option<i32>,
    trace: Option<String>,
    /// TRN03 payer identifier.
    trace_payer: Option<String>,
    payer_name: Option<String>,
    payer_id: Option<String>,
    payer_ref_2u: Option<String>,
    in_payer_loop: bool,
    claims: Vec<Remittance>,
    /// Per claim: why it is refused (segment number, reason), if it is.
    refused: Vec<Option<(usize, String)>>,
    /// Content hash of the open CLP loop (the last claim).
    open: Option<ContentHash>,
    plb_total: i64,
    /// Why the transaction balance cannot be checked (an unreadable BPR02, CLP04
    /// or PLB amount), if it cannot.
    balance_unknown: Option<String>,
}

/// A required amount of a claim payment: when it is missing or unreadable the
/// claim payment is refused (`refusal` keeps the first reason) and the returned 0
/// is never emitted.
/// `what` is the element's segment id and position (`("CLP", 4)` for CLP04).
fn required(
    ctx: &Ctx<'_>,
    s: &str,
    (id, n): (&str, usize),
    refusal: &mut Option<(usize, String)>,
) -> Option<i64> {
    let v = parse_cents(s);
    if v.is_none() && refusal.is_none() {
        let why = if s.is_empty() {
            format!("{id}{n:02} is missing")
        } else {
            format!("{id}{n:02} {s:?} is not a decimal amount")
        };
        *refusal = Some((ctx.seg_no, why));
    }
    v
}

/// An optional quantity: unreadable is a finding (file and claim) and absent.
fn quantity(
    ctx: &mut Ctx<'_>,
    s: &str,
    (id, n): (&str, usize),
    notes: &mut Vec<String>,
) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let q = s.trim().parse::<f64>().ok().filter(|q| q.is_finite());
    if q.is_none() {
        let m = format!("{id}{n:02} {s:?} is not a number; treated as absent");
        ctx.finding("bad_quantity", m.clone());
        notes.push(format!("bad_quantity: {m}"));
    }
    q
}

fn money(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        c.unsigned_abs() / 100,
        c.unsigned_abs() % 100
    )
}

/// Segments of the 005010X221A1 guide (from the pyx12 map of the guide).
pub(crate) fn known_segment(id: &[u8]) -> bool {
    matches!(
        id,
        b"BPR"
            | b"TRN"
            | b"CUR"
            | b"REF"
            | b"DTM"
            | b"N1"
            | b"N3"
            | b"N4"
            | b"PER"
            | b"RDM"
            | b"LX"
            | b"TS3"
            | b"TS2"
            | b"CLP"
            | b"CAS"
            | b"NM1"
            | b"MIA"
            | b"MOA"
            | b"AMT"
            | b"QTY"
            | b"SVC"
            | b"LQ"
            | b"PLB"
    )
}

/// Parses a CAS segment: one group and up to six (reason, amount, quantity)
/// triplets (CAS02..CAS19). Code-set problems go to `notes` (the claim's findings).
fn cas(
    ctx: &mut Ctx<'_>,
    seg: &Segment<'_>,
    out: &mut Vec<Adjustment>,
    notes: &mut Vec<String>,
    refusal: &mut Option<(usize, String)>,
) {
    let Some(group) = AdjustmentGroup::parse(seg.el(1)) else {
        ctx.finding(
            "cas_group",
            format!("unknown CAS group {:?}; segment ignored", seg.el(1)),
        );
        notes.push(format!(
            "cas_group: unknown CAS group {:?} (adjustments not counted)",
            seg.el(1)
        ));
        return;
    };
    if group == AdjustmentGroup::CR {
        notes.push("cas_group: CR is not a 005010 group code".to_string());
    }
    if seg.len() > 19 {
        ctx.finding(
            "cas_elements",
            format!("CAS has {} elements; at most 19 (six triplets)", seg.len()),
        );
    }
    for k in 0..6 {
        let base = 2 + k * 3;
        let reason = seg.el(base);
        if reason.is_empty() {
            if !seg.el(base + 1).is_empty() {
                notes.push(format!(
                    "cas_triplet: CAS{:02} amount without a reason code",
                    base + 1
                ));
            }
            continue;
        }
        if seg.el(base + 1).is_empty() {
            notes.push(format!(
                "cas_triplet: {}-{reason} has no amount",
                group.as_str()
            ));
        }
        if ctx.refdata.carc(reason).is_none() {
            notes.push(format!(
                "unknown_carc: {}-{reason} is not in the CARC table",
                group.as_str()
            ));
        }
        // A triplet's amount is required with its reason; an empty one stays the
        // `cas_triplet` note above (an adjustment of nothing), an unreadable one
        // refuses the claim payment.
        let a = seg.el(base + 1);
        let amount_cents = if a.is_empty() {
            0
        } else {
            required(ctx, a, ("CAS", base + 1), refusal).unwrap_or(0)
        };
        let quantity = quantity(ctx, seg.el(base + 2), ("CAS", base + 2), notes);
        out.push(Adjustment {
            group,
            reason: reason.to_string(),
            amount_cents,
            quantity,
        });
    }
}

/// Checks a remark code against the RARC table.
fn rarc(ctx: &Ctx<'_>, code: &str, notes: &mut Vec<String>) {
    if !ctx.refdata.is_known_rarc(code) {
        notes.push(format!("unknown_rarc: {code} is not in the RARC table"));
    }
}

impl Tx835 {
    /// Ends the open CLP loop: its content gives the claim payment's event id.
    fn close_loop(&mut self) {
        if let (Some(h), Some(c)) = (self.open.take(), self.claims.last_mut()) {
            let trace = self.trace.as_deref().unwrap_or("");
            c.event_id = content_event_id("835", &[(trace, 24), (&c.claim_id, 30)], &h);
        }
    }

    pub(crate) fn segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        match seg.id() {
            b"CLP" => {}
            b"LX" | b"TS3" | b"TS2" | b"PLB" => self.close_loop(),
            _ => {
                if let Some(h) = self.open.as_mut() {
                    h.segment(seg);
                }
            }
        }
        match seg.id() {
            b"BPR" => {
                self.total_cents = parse_cents(seg.el(2));
                if self.total_cents.is_none() {
                    let why = if seg.el(2).is_empty() {
                        "BPR02 is missing".to_string()
                    } else {
                        format!("BPR02 {:?} is not a decimal amount", seg.el(2))
                    };
                    ctx.finding(
                        "bad_amount",
                        format!("{why}; the transaction balance is not checked"),
                    );
                    self.balance_unknown = Some(why);
                }
                if let Some(d) = seg.opt(16) {
                    self.payment_date = parse_date(d);
                    if self.payment_date.is_none() {
                        ctx.finding("bad_date", format!("BPR16 {d:?} is not a date"));
                    }
                }
            }
            b"TRN" => {
                self.trace = seg.opt(2).map(str::to_string);
                self.trace_payer = seg.opt(3).map(str::to_string);
            }
            b"DTM" if self.claims.is_empty() && seg.el(1) == "405" => {
                self.production_date = parse_date(seg.el(2));
            }
            b"N1" => {
                self.in_payer_loop = seg.el(1) == "PR";
                if self.in_payer_loop {
                    self.payer_name = seg.opt(2).map(str::to_string);
                    self.payer_id = seg.opt(4).map(str::to_string);
                }
            }
            b"REF" if self.in_payer_loop && self.claims.is_empty() && seg.el(1) == "2U" => {
                self.payer_ref_2u = seg.opt(2).map(str::to_string);
            }
            b"LX" => self.in_payer_loop = false,
            b"CLP" => {
                self.close_loop();
                self.in_payer_loop = false;
                let mut refusal = None;
                let charge = required(ctx, seg.el(3), ("CLP", 3), &mut refusal);
                let paid = required(ctx, seg.el(4), ("CLP", 4), &mut refusal);
                if paid.is_none() && self.balance_unknown.is_none() {
                    self.balance_unknown = Some("a CLP04 cannot be read".into());
                }
                // CLP05 is situational: absent is 0, unreadable refuses.
                let pr = match seg.el(5) {
                    "" => Some(0),
                    s => required(ctx, s, ("CLP", 5), &mut refusal),
                };
                let known_status = ctx.refdata.claim_payment_status(seg.el(2)).is_some();
                if !known_status {
                    ctx.finding(
                        "clp02_code",
                        format!("CLP02 {:?} is not a 005010 claim status code", seg.el(2)),
                    );
                }
                let payer_id = self
                    .payer_id
                    .clone()
                    .or_else(|| self.payer_ref_2u.clone())
                    .or_else(|| self.payer_name.clone())
                    .unwrap_or_default();
                let mut h = ContentHash::new("835");
                h.field(&payer_id);
                h.field(self.trace_payer.as_deref().unwrap_or(""));
                h.field(self.trace.as_deref().unwrap_or(""));
                h.segment(seg);
                self.open = Some(h);
                self.refused.push(refusal);
                self.claims.push(Remittance {
                    // Set when the loop ends (`close_loop`).
                    event_id: String::new(),
                    event_time: ctx.event_time,
                    claim_id: seg.el(1).to_string(),
                    payer_id,
                    payer_claim_control_number: seg.opt(7).map(str::to_string),
                    claim_status: seg.el(2).to_string(),
                    charge_cents: charge.unwrap_or(0),
                    paid_cents: paid.unwrap_or(0),
                    patient_responsibility_cents: pr.unwrap_or(0),
                    claim_filing_indicator: seg.opt(6).map(str::to_string),
                    facility_code: seg.opt(8).map(str::to_string),
                    frequency: seg.opt(9).map(str::to_string),
                    drg: seg.opt(11).map(str::to_string),
                    adjustments: Vec::new(),
                    remarks: Vec::new(),
                    lines: Vec::new(),
                    payment_date: 0,
                    payment_trace: None,
                    findings: Vec::new(),
                });
                if let Some(c) = self.claims.last_mut() {
                    if !known_status {
                        c.findings.push(format!(
                            "clp02_code: {:?} is not a 005010 claim status code",
                            c.claim_status
                        ));
                    }
                }
            }
            b"CAS" => match (self.claims.last_mut(), self.refused.last_mut()) {
                (Some(c), Some(refusal)) => {
                    // Straight into the line's (or the claim's) adjustments.
                    let out = match c.lines.last_mut() {
                        Some(l) => &mut l.adjustments,
                        None => &mut c.adjustments,
                    };
                    cas(ctx, seg, out, &mut c.findings, refusal);
                }
                _ => {
                    cas(ctx, seg, &mut Vec::new(), &mut Vec::new(), &mut None);
                    ctx.finding("unexpected_segment", "CAS before any CLP; ignored".into());
                }
            },
            b"MIA" | b"MOA" => {
                // MIA05, MIA20-23 and MOA03-07 are remark codes (RARC).
                let els: &[usize] = if seg.id() == b"MIA" {
                    &[5, 20, 21, 22, 23]
                } else {
                    &[3, 4, 5, 6, 7]
                };
                let mut notes = Vec::new();
                let mut codes = Vec::new();
                for &n in els {
                    if let Some(r) = seg.opt(n) {
                        rarc(ctx, r, &mut notes);
                        codes.push(r.to_string());
                    }
                }
                match self.claims.last_mut() {
                    Some(c) if c.lines.is_empty() => {
                        c.remarks.extend(codes);
                        c.findings.extend(notes);
                    }
                    _ => ctx.finding(
                        "unexpected_segment",
                        format!(
                            "{} outside a claim's header (before CLP or after SVC); ignored",
                            String::from_utf8_lossy(seg.id())
                        ),
                    ),
                }
            }
            b"SVC" => {
                let comp = seg.el(1);
                let mut csep = seg.sep.component as char;
                let has_csep = if seg.sep.component.is_ascii() {
                    memchr::memchr(seg.sep.component, comp.as_bytes()).is_some()
                } else {
                    comp.contains(csep)
                };
                if !has_csep {
                    if let Some(alt) = [':', '>', '^', '|'].into_iter().find(|&c| comp.contains(c))
                    {
                        let id = self.claims.len();
                        if let Some(c) = self.claims.last_mut() {
                            c.findings.push(format!(
                                "component_separator: SVC01 {comp:?} uses {alt:?}, ISA16 is {csep:?}"
                            ));
                        } else {
                            let _ = id;
                        }
                        csep = alt;
                    }
                }
                let mut parts = comp.split(csep);
                let qual = parts.next().unwrap_or("");
                let code = parts.next().unwrap_or("").to_string();
                let modifiers: Vec<String> = parts
                    .take(4)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect();
                let mut refusal = None;
                let charge = required(ctx, seg.el(2), ("SVC", 2), &mut refusal).unwrap_or(0);
                let paid = required(ctx, seg.el(3), ("SVC", 3), &mut refusal).unwrap_or(0);
                let revenue_code = if qual == "NU" {
                    Some(code.clone())
                } else {
                    seg.opt(4).map(str::to_string)
                };
                let mut notes = Vec::new();
                let units = quantity(ctx, seg.el(5), ("SVC", 5), &mut notes);
                let line = ServiceLinePayment {
                    procedure_code: code,
                    modifiers,
                    revenue_code,
                    charge_cents: charge,
                    paid_cents: paid,
                    units,
                    service_date: None,
                    adjustments: Vec::new(),
                    remarks: Vec::new(),
                };
                match (self.claims.last_mut(), self.refused.last_mut()) {
                    (Some(c), Some(r)) => {
                        c.lines.push(line);
                        c.findings.extend(notes);
                        if r.is_none() {
                            *r = refusal;
                        }
                    }
                    _ => ctx.finding("svc_without_clp", "SVC before any CLP".into()),
                }
            }
            b"DTM" => {
                let q = seg.el(1);
                if let Some(c) = self.claims.last_mut() {
                    if let Some(l) = c.lines.last_mut() {
                        if q == "472" || q == "150" {
                            match parse_date(seg.el(2)) {
                                Some(d) => {
                                    if q == "472" || l.service_date.is_none() {
                                        l.service_date = Some(d)
                                    }
                                }
                                None => c.findings.push(format!(
                                    "bad_date: DTM*{q} {:?} is not a date",
                                    seg.el(2)
                                )),
                            }
                        }
                    } else if parse_date(seg.el(2)).is_none() && !seg.el(2).is_empty() {
                        c.findings
                            .push(format!("bad_date: DTM*{q} {:?} is not a date", seg.el(2)));
                    }
                }
            }
            b"LQ" => {
                // LQ01 HE: RARC (kept); RX: NCPDP reject/payment codes (not RARC).
                let is_rarc = seg.el(1) == "HE";
                let code = seg.opt(2);
                let mut notes = Vec::new();
                if let (true, Some(r)) = (is_rarc, code) {
                    rarc(ctx, r, &mut notes);
                }
                match self.claims.last_mut() {
                    Some(c) if !c.lines.is_empty() => {
                        if let (true, Some(r), Some(l)) = (is_rarc, code, c.lines.last_mut()) {
                            l.remarks.push(r.to_string());
                        }
                        c.findings.extend(notes);
                    }
                    _ => ctx.finding(
                        "unexpected_segment",
                        "LQ outside a service line; ignored".into(),
                    ),
                }
            }
            b"PLB" => {
                let provider = seg.el(1).to_string();
                let period = parse_date(seg.el(2));
                for k in 0..6 {
                    let base = 3 + k * 2;
                    let comp = seg.el(base);
                    if comp.is_empty() {
                        continue;
                    }
                    let reason = super::tokenizer::component(comp, seg.sep.component, 1);
                    let reference = super::tokenizer::component(comp, seg.sep.component, 2);
                    let el = seg.el(base + 1);
                    let Some(amt) = parse_cents(el) else {
                        let why = if el.is_empty() {
                            format!("PLB{:02} is missing", base + 1)
                        } else {
                            format!("PLB{:02} {el:?} is not a decimal amount", base + 1)
                        };
                        ctx.finding(
                            "bad_amount",
                            format!(
                                "{why}; that provider adjustment is not recorded and the transaction balance is not checked"
                            ),
                        );
                        self.balance_unknown.get_or_insert(why);
                        continue;
                    };
                    self.plb_total += amt;
                    ctx.summary.plb.push(PlbAdjustment {
                        source: ctx.source.to_string(),
                        interchange: ctx.isa13.clone(),
                        transaction: ctx.st02.clone(),
                        provider_id: provider.clone(),
                        fiscal_period_date: period,
                        reason: reason.to_string(),
                        reference: (!reference.is_empty()).then(|| reference.to_string()),
                        amount_cents: amt,
                    });
                }
            }
            _ => {}
        }
    }

    pub(crate) fn finish(mut self, ctx: &mut Ctx<'_>, emit: &mut dyn FnMut(InputEvent)) {
        self.close_loop();
        let payment_date = self
            .payment_date
            .or(self.production_date)
            .unwrap_or_else(|| crate::model::day_of(ctx.event_time));
        let sum_paid: i64 = self.claims.iter().map(|c| c.paid_cents).sum();
        let tx_finding = match (self.total_cents, &self.balance_unknown) {
            (Some(total), None) => (sum_paid - self.plb_total != total).then(|| {
                format!(
                    "transaction_balance: BPR02 {} != sum CLP04 {} - PLB {}",
                    money(total),
                    money(sum_paid),
                    money(self.plb_total)
                )
            }),
            _ => None,
        };
        if let Some(f) = &tx_finding {
            ctx.finding("transaction_balance", f.clone());
        }
        for (k, (mut c, refused)) in self.claims.into_iter().zip(self.refused).enumerate() {
            if let Some((segment, why)) = refused {
                ctx.refuse(
                    "bad_amount",
                    k + 1,
                    segment,
                    format!(
                        "claim payment {} of transaction set {}: {why}; the claim payment was not emitted",
                        k + 1,
                        ctx.st02
                    ),
                );
                continue;
            }
            c.payment_date = payment_date;
            c.payment_trace = self.trace.clone();
            let mut total_adj: i64 = c.adjustments.iter().map(|a| a.amount_cents).sum();
            for (i, l) in c.lines.iter().enumerate() {
                let la: i64 = l.adjustments.iter().map(|a| a.amount_cents).sum();
                total_adj += la;
                if l.charge_cents - la != l.paid_cents {
                    c.findings.push(format!(
                        "line_balance: line {} SVC02-CAS {} != SVC03 {}",
                        i + 1,
                        money(l.charge_cents - la),
                        money(l.paid_cents)
                    ));
                }
            }
            if c.charge_cents - total_adj != c.paid_cents {
                c.findings.push(format!(
                    "claim_balance: CLP03-CAS {} != CLP04 {}",
                    money(c.charge_cents - total_adj),
                    money(c.paid_cents)
                ));
            }
            if let Some(f) = &tx_finding {
                c.findings.push(f.clone());
            }
            emit(InputEvent::Remit(c));
        }
    }
}
