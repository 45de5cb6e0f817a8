//! 277CA (005010X214) claim acknowledgment → one `ClaimAck` per patient/claim HL.
//!
//! HL levels: 20 information source (NM1*PR → payer id), 21 information receiver,
//! 19 billing provider, PT patient/claim. STC composites at receiver and provider
//! level whose category is a rejection (A3, A4, A6, A7, A8) are *inherited* by every
//! claim under that HL: they are appended after the claim's own statuses.
//! Service-line STCs (under SVC in the claim loop) are not claim statuses and are
//! not added.

use super::tokenizer::parse_date;
use super::tokenizer::{component, parse_cents, Segment};
use super::Ctx;
use crate::model::{ClaimAck, ClaimStatusCode, InputEvent};

#[derive(Default)]
pub(crate) struct Tx277 {
    bht_date: Option<i32>,
    payer_id: Option<String>,
    /// HL id → (parent id, level code, inherited rejection statuses).
    hls: Vec<(String, String, Vec<ClaimStatusCode>)>,
    current_level: String,
    current_hl: usize,
    claim: Option<ClaimAck>,
    in_service_line: bool,
    ordinal: usize,
}

fn is_rejection(category: &str) -> bool {
    matches!(category, "A3" | "A4" | "A6" | "A7" | "A8")
}

impl Tx277 {
    fn flush(&mut self, emit: &mut dyn FnMut(InputEvent)) {
        if let Some(mut c) = self.claim.take() {
            // Inherit rejections from ancestors.
            let mut inherited = Vec::new();
            let mut idx = self.hls.len().checked_sub(1);
            let mut parent = idx.map(|i| self.hls[i].0.clone());
            let mut guard = 0;
            while let Some(p) = parent.take() {
                guard += 1;
                if guard > 64 || p.is_empty() {
                    break;
                }
                if let Some(i) = self.hls.iter().rposition(|h| h.1 == p) {
                    let _ = idx;
                    idx = Some(i);
                    inherited.splice(0..0, self.hls[i].2.iter().cloned());
                    parent = Some(self.hls[i].0.clone());
                }
            }
            for s in inherited {
                if !c.statuses.contains(&s) {
                    c.statuses.push(s);
                }
            }
            emit(InputEvent::Ack(c));
        }
    }

    pub(crate) fn segment_inner(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &Segment<'_>,
        emit: &mut dyn FnMut(InputEvent),
    ) {
        match seg.id() {
            b"BHT" => self.bht_date = parse_date(seg.el(4)),
            b"HL" => {
                self.flush(emit);
                self.in_service_line = false;
                let id = seg.el(1).to_string();
                let parent = seg.el(2).to_string();
                let level = seg.el(3).to_string();
                // store as (parent, id, statuses)
                self.hls.push((parent, id, Vec::new()));
                self.current_hl = self.hls.len() - 1;
                self.current_level = level;
                if self.current_level == "PT" || self.current_level == "23" {
                    self.ordinal += 1;
                    self.claim = Some(ClaimAck {
                        event_id: format!("x12:277:{}:{}:{}", ctx.isa13, ctx.st02, self.ordinal),
                        event_time: ctx.event_time,
                        claim_id: String::new(),
                        payer_id: self.payer_id.clone(),
                        payer_claim_control_number: None,
                        clearinghouse_trace: None,
                        ack_date: self
                            .bht_date
                            .unwrap_or_else(|| crate::model::day_of(ctx.event_time)),
                        statuses: Vec::new(),
                        billed_cents: None,
                    });
                }
            }
            b"NM1" if self.current_level == "20" && seg.el(1) == "PR" => {
                self.payer_id = seg.opt(9).or(seg.opt(3)).map(str::to_string);
            }
            b"TRN" => {
                if let Some(c) = self.claim.as_mut() {
                    if seg.el(1) == "2" && c.claim_id.is_empty() {
                        c.claim_id = seg.el(2).to_string();
                    }
                }
            }
            b"SVC" => self.in_service_line = true,
            b"STC" => {
                if self.in_service_line {
                    return;
                }
                let csep = seg.sep.component;
                let mut statuses = Vec::new();
                for n in [1usize, 10, 11] {
                    let comp = seg.el(n);
                    if comp.is_empty() {
                        continue;
                    }
                    let category = component(comp, csep, 1).to_string();
                    let code = component(comp, csep, 2).to_string();
                    let entity = Some(component(comp, csep, 3))
                        .filter(|e| !e.is_empty())
                        .map(str::to_string);
                    statuses.push(ClaimStatusCode {
                        category,
                        code,
                        entity,
                    });
                }
                if let Some(c) = self.claim.as_mut() {
                    if c.statuses.is_empty() {
                        if let Some(d) = parse_date(seg.el(2)) {
                            c.ack_date = d;
                        }
                        if let Some(a) = seg.opt(4) {
                            c.billed_cents = parse_cents(a);
                            if c.billed_cents.is_none() {
                                ctx.finding("bad_amount", format!("STC04 {a:?}"));
                            }
                        }
                    }
                    c.statuses.extend(statuses);
                } else if let Some(h) = self.hls.get_mut(self.current_hl) {
                    h.2.extend(statuses.into_iter().filter(|s| is_rejection(&s.category)));
                }
            }
            b"REF" => {
                if let Some(c) = self.claim.as_mut() {
                    if self.in_service_line {
                        return;
                    }
                    match seg.el(1) {
                        "1K" => c.payer_claim_control_number = seg.opt(2).map(str::to_string),
                        "D9" => c.clearinghouse_trace = seg.opt(2).map(str::to_string),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// Wrapper buffering events until SE (the callback is only available at finish).
#[derive(Default)]
pub(crate) struct Buffered {
    pub inner: Tx277,
    pub out: Vec<InputEvent>,
}

impl Buffered {
    pub(crate) fn segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        let out = &mut self.out;
        self.inner.segment_inner(ctx, seg, &mut |e| out.push(e));
    }
    pub(crate) fn finish(mut self, ctx: &mut Ctx<'_>, emit: &mut dyn FnMut(InputEvent)) {
        let out = &mut self.out;
        self.inner.flush(&mut |e| out.push(e));
        for e in self.out {
            if let InputEvent::Ack(a) = &e {
                if a.claim_id.is_empty() {
                    ctx.finding(
                        "missing_claim_id",
                        format!("{}: no TRN*2 claim id", a.event_id),
                    );
                }
            }
            emit(e);
        }
    }
}
