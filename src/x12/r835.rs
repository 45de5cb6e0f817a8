//! 835 (005010X221A1) health care claim payment/advice → one `Remittance` per CLP.

use super::tokenizer::{parse_cents, parse_date, Segment};
use super::Ctx;
use crate::model::{Adjustment, AdjustmentGroup, InputEvent, Remittance, ServiceLinePayment};

/// One PLB provider-level adjustment (PLB03..PLB14 pairs).
#[derive(Clone, Debug, PartialEq, Eq)]
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
    total_cents: i64,
    payment_date: Option<i32>,
    production_date: Option<i32>,
    trace: Option<String>,
    payer_name: Option<String>,
    payer_id: Option<String>,
    payer_ref_2u: Option<String>,
    in_payer_loop: bool,
    claims: Vec<Remittance>,
    plb_total: i64,
}

fn amount(ctx: &mut Ctx<'_>, s: &str, what: &str) -> i64 {
    if s.is_empty() {
        return 0;
    }
    match parse_cents(s) {
        Some(v) => v,
        None => {
            ctx.finding(
                "bad_amount",
                format!("{what} {s:?} is not a decimal amount"),
            );
            0
        }
    }
}

fn money(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        c.unsigned_abs() / 100,
        c.unsigned_abs() % 100
    )
}

fn cas(ctx: &mut Ctx<'_>, seg: &Segment<'_>, out: &mut Vec<Adjustment>) {
    let Some(group) = AdjustmentGroup::parse(seg.el(1)) else {
        ctx.finding("cas_group", format!("unknown CAS group {:?}", seg.el(1)));
        return;
    };
    for k in 0..6 {
        let base = 2 + k * 3;
        let reason = seg.el(base);
        if reason.is_empty() {
            continue;
        }
        let amount_cents = amount(ctx, seg.el(base + 1), "CAS amount");
        let quantity = seg.opt(base + 2).and_then(|q| q.parse::<f64>().ok());
        out.push(Adjustment {
            group,
            reason: reason.to_string(),
            amount_cents,
            quantity,
        });
    }
}

impl Tx835 {
    fn claim(&mut self) -> Option<&mut Remittance> {
        self.claims.last_mut()
    }

    pub(crate) fn segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        match seg.id() {
            b"BPR" => {
                self.total_cents = amount(ctx, seg.el(2), "BPR02");
                if let Some(d) = seg.opt(16) {
                    self.payment_date = parse_date(d);
                    if self.payment_date.is_none() {
                        ctx.finding("bad_date", format!("BPR16 {d:?} is not a date"));
                    }
                }
            }
            b"TRN" => self.trace = seg.opt(2).map(str::to_string),
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
                self.in_payer_loop = false;
                let ord = self.claims.len() + 1;
                let charge = amount(ctx, seg.el(3), "CLP03");
                let paid = amount(ctx, seg.el(4), "CLP04");
                let pr = amount(ctx, seg.el(5), "CLP05");
                let payer_id = self
                    .payer_id
                    .clone()
                    .or_else(|| self.payer_ref_2u.clone())
                    .or_else(|| self.payer_name.clone())
                    .unwrap_or_default();
                self.claims.push(Remittance {
                    event_id: format!("x12:835:{}:{}:{}", ctx.isa13, ctx.st02, ord),
                    event_time: ctx.event_time,
                    claim_id: seg.el(1).to_string(),
                    payer_id,
                    payer_claim_control_number: seg.opt(7).map(str::to_string),
                    claim_status: seg.el(2).to_string(),
                    charge_cents: charge,
                    paid_cents: paid,
                    patient_responsibility_cents: pr,
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
            }
            b"CAS" => {
                let mut adj = Vec::new();
                cas(ctx, seg, &mut adj);
                if let Some(c) = self.claim() {
                    match c.lines.last_mut() {
                        Some(l) => l.adjustments.extend(adj),
                        None => c.adjustments.extend(adj),
                    }
                }
            }
            b"MIA" => {
                if let Some(c) = self.claims.last_mut() {
                    for n in [5, 20, 21, 22, 23] {
                        if let Some(r) = seg.opt(n) {
                            c.remarks.push(r.to_string());
                        }
                    }
                }
            }
            b"MOA" => {
                if let Some(c) = self.claims.last_mut() {
                    for n in 3..=7 {
                        if let Some(r) = seg.opt(n) {
                            c.remarks.push(r.to_string());
                        }
                    }
                }
            }
            b"SVC" => {
                let comp = seg.el(1);
                let mut csep = seg.sep.component as char;
                if !comp.contains(csep) {
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
                let charge = amount(ctx, seg.el(2), "SVC02");
                let paid = amount(ctx, seg.el(3), "SVC03");
                let revenue_code = if qual == "NU" {
                    Some(code.clone())
                } else {
                    seg.opt(4).map(str::to_string)
                };
                let units = seg.opt(5).and_then(|u| u.parse::<f64>().ok());
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
                match self.claims.last_mut() {
                    Some(c) => c.lines.push(line),
                    None => ctx.finding("svc_without_clp", "SVC before any CLP".into()),
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
                if let Some(l) = self.claims.last_mut().and_then(|c| c.lines.last_mut()) {
                    if let Some(r) = seg.opt(2) {
                        l.remarks.push(r.to_string());
                    }
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
                    let amt = amount(ctx, seg.el(base + 1), "PLB amount");
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

    pub(crate) fn finish(self, ctx: &mut Ctx<'_>, emit: &mut dyn FnMut(InputEvent)) {
        let payment_date = self
            .payment_date
            .or(self.production_date)
            .unwrap_or_else(|| crate::model::day_of(ctx.event_time));
        let sum_paid: i64 = self.claims.iter().map(|c| c.paid_cents).sum();
        let tx_finding = (sum_paid - self.plb_total != self.total_cents).then(|| {
            format!(
                "transaction_balance: BPR02 {} != sum CLP04 {} - PLB {}",
                money(self.total_cents),
                money(sum_paid),
                money(self.plb_total)
            )
        });
        if let Some(f) = &tx_finding {
            ctx.finding("transaction_balance", f.clone());
        }
        for mut c in self.claims {
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
