//! 277CA (005010X214) claim acknowledgment → one `ClaimAck` per claim-level HL.
//!
//! HL levels (by HL03, linked by HL02 parent ids): 20 information source (NM1*PR →
//! payer id), 21 information receiver, 19 billing provider, PT patient/claim
//! (2200D: TRN*2 = patient control number, STC, REF*1K, REF*D9), then service lines
//! (SVC with its own STC/REF/DTP, 2220D). Loop 2200D repeats under one patient HL: each
//! TRN*2 after the first starts the next claim. Every STC carries up to three status
//! composites (STC01, STC10, STC11: category : status code : entity).
//!
//! A rejection (a category whose class in `refdata` is REJECTED: A3, A6, A7, A8) at
//! the receiver or provider level applies to every claim under that HL: it is put
//! *first* in the claim's statuses (the core reads the first status as primary),
//! nearest level first, followed by the claim's own statuses. Non-rejection statuses
//! of upper levels (e.g. the receiver's A1 batch receipt) describe the batch, not the
//! claim, and are not copied. Service-line STCs are not claim statuses.
//!
//! The 277 claim status response (005010X212, the answer to a 276 inquiry) has the
//! same shape with subscriber (22) and dependent (23) levels in place of PT; it is
//! read the same way, except that its TRN02 is the inquiry's trace number, so the
//! patient control number is taken from REF*EJ (TRN02 only as a fallback, with a
//! finding).
//!
//! Identity: `277:<claim id>:<hash>`, the hash covering the payer, the claim's
//! final statuses (inherited rejections included), its acknowledgment date and
//! every segment of the claim-level HL up to the next HL or SE (the HL segment
//! itself is positional and left out; [`super::ContentHash`]). The same status for
//! the same claim re-sent in another file or envelope is a repeat the core
//! ignores; any other status, date or reference is a new acknowledgment.

use super::tokenizer::{component, parse_cents, parse_date, Segment};
use super::{content_event_id, ContentHash, Ctx};
use crate::model::{ClaimAck, ClaimStatusCode, InputEvent};
use crate::refdata::AckClass;

/// Segments of the 005010X214 guide (pyx12 map), plus those of the X212 claim
/// status response (PER, DMG, QTY are shared).
pub(crate) fn known_segment(id: &[u8]) -> bool {
    matches!(
        id,
        b"BHT"
            | b"HL"
            | b"NM1"
            | b"PER"
            | b"TRN"
            | b"STC"
            | b"REF"
            | b"DTP"
            | b"QTY"
            | b"AMT"
            | b"SVC"
            | b"DMG"
    )
}

struct Hl {
    id: String,
    parent: String,
    /// Rejection statuses at this level, inherited by the claims under it.
    rejections: Vec<ClaimStatusCode>,
    /// A claim under this HL inherited its rejections.
    applied: bool,
}

struct Pending {
    ack: ClaimAck,
    hash: ContentHash,
    hl: usize,
    trn: Option<String>,
    ej: Option<String>,
    has_status: bool,
}

#[derive(Default)]
pub(crate) struct Tx277 {
    x212: bool,
    bht_date: Option<i32>,
    payer_id: Option<String>,
    hls: Vec<Hl>,
    current_level: String,
    current_hl: Option<usize>,
    claim: Option<Pending>,
    in_service_line: bool,
}

impl Tx277 {
    pub(crate) fn new(version: &str) -> Self {
        Self {
            x212: version.contains("X212"),
            ..Self::default()
        }
    }

    fn flush(&mut self, ctx: &mut Ctx<'_>, emit: &mut dyn FnMut(InputEvent)) {
        let Some(p) = self.claim.take() else {
            return;
        };
        let label = Self::label(&self.hls, p.hl);
        let mut hash = p.hash;
        let mut c = p.ack;
        c.claim_id = match (p.ej, p.trn) {
            (Some(ej), _) => ej,
            (None, Some(trn)) => {
                if self.x212 {
                    ctx.finding(
                        "claim_id_from_trn",
                        format!(
                            "{label}: 277 X212 claim without REF*EJ; TRN02 (the inquiry trace) used as claim id"
                        ),
                    );
                }
                trn
            }
            (None, None) => String::new(),
        };
        if !p.has_status {
            ctx.finding(
                "missing_stc",
                format!("{label}: claim-level HL without STC"),
            );
        }
        // Rejections of the ancestors, nearest first, ahead of the claim's own.
        let mut inherited: Vec<ClaimStatusCode> = Vec::new();
        let mut parent = self.hls.get(p.hl).map(|h| h.parent.clone());
        let mut guard = 0;
        while let Some(pid) = parent.take() {
            guard += 1;
            if guard > 64 || pid.is_empty() {
                break;
            }
            if let Some(h) = self.hls.iter_mut().rev().find(|h| h.id == pid) {
                h.applied = true;
                for s in &h.rejections {
                    if !inherited.contains(s) {
                        inherited.push(s.clone());
                    }
                }
                parent = Some(h.parent.clone());
            }
        }
        if !inherited.is_empty() {
            c.statuses.retain(|s| !inherited.contains(s));
            inherited.append(&mut c.statuses);
            c.statuses = inherited;
        }
        hash.field(c.payer_id.as_deref().unwrap_or(""));
        let mut day = itoa::Buffer::new();
        hash.field(day.format(c.ack_date));
        for s in &c.statuses {
            hash.field(&s.category);
            hash.field(&s.code);
            hash.field(s.entity.as_deref().unwrap_or(""));
        }
        c.event_id = content_event_id("277", &[(&c.claim_id, 40)], &hash);
        emit(InputEvent::Ack(c));
    }

    /// Starts a claim (loop 2200D/2200E) under claim-level HL `hl`.
    fn open_claim(&mut self, ctx: &Ctx<'_>, hl: usize) {
        let mut hash = ContentHash::new("277");
        hash.field(if self.x212 { "X212" } else { "X214" });
        self.claim = Some(Pending {
            hash,
            ack: ClaimAck {
                // Set from the content when the claim ends (`flush`).
                event_id: String::new(),
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
            },
            hl,
            trn: None,
            ej: None,
            has_status: false,
        });
    }

    /// Names a claim in findings without its id (PHI): `claim HL <HL01>`.
    fn label(hls: &[Hl], hl: usize) -> String {
        format!("claim HL {}", hls.get(hl).map_or("?", |h| h.id.as_str()))
    }

    pub(crate) fn segment_inner(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &Segment<'_>,
        emit: &mut dyn FnMut(InputEvent),
    ) {
        // The claim loop (2200D, 2200E in X212) repeats under one patient HL: a second TRN*2
        // there ends the claim before it and starts the next, which inherits the same levels.
        if seg.id() == b"TRN" && seg.el(1) == "2" {
            if let Some(hl) = self
                .claim
                .as_ref()
                .filter(|c| c.trn.is_some())
                .map(|c| c.hl)
            {
                self.flush(ctx, emit);
                self.in_service_line = false;
                self.open_claim(ctx, hl);
            }
        }
        if seg.id() != b"HL" {
            if let Some(c) = self.claim.as_mut() {
                c.hash.segment(seg);
            }
        }
        match seg.id() {
            b"BHT" => self.bht_date = parse_date(seg.el(4)),
            b"HL" => {
                self.flush(ctx, emit);
                self.in_service_line = false;
                let level = seg.el(3);
                self.hls.push(Hl {
                    id: seg.el(1).to_string(),
                    parent: seg.el(2).to_string(),
                    rejections: Vec::new(),
                    applied: false,
                });
                let hl = self.hls.len() - 1;
                self.current_hl = Some(hl);
                self.current_level = level.to_string();
                // X214: PT. X212: 23 (dependent), or 22 when it has no dependent child.
                let claim_level =
                    level == "PT" || level == "23" || (level == "22" && seg.el(4) != "1");
                if claim_level {
                    self.open_claim(ctx, hl);
                }
            }
            b"NM1" if self.current_level == "20" && seg.el(1) == "PR" => {
                self.payer_id = seg.opt(9).or(seg.opt(3)).map(str::to_string);
            }
            b"TRN" => {
                if let Some(c) = self.claim.as_mut() {
                    if seg.el(1) == "2" {
                        c.trn = seg.opt(2).map(str::to_string);
                    }
                }
            }
            b"SVC" => {
                if self.claim.is_none() {
                    ctx.finding(
                        "unexpected_segment",
                        "SVC outside a claim-level HL; ignored".into(),
                    );
                }
                self.in_service_line = true;
            }
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
                    if ctx.refdata.ack_category_description(&category).is_none() {
                        ctx.finding(
                            "unknown_status_category",
                            format!("STC category {category:?} is not in the category table"),
                        );
                    }
                    // STC01-4 "RX": the status code is an NCPDP reject/payment code,
                    // not a claim status code (code source 508).
                    let ncpdp = component(comp, csep, 4) == "RX";
                    if !code.is_empty() && !ncpdp && !ctx.refdata.is_known_claim_status_code(&code)
                    {
                        ctx.finding(
                            "unknown_status_code",
                            format!("STC status code {code:?} is not in the status code table"),
                        );
                    }
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
                    if !c.has_status {
                        c.has_status = true;
                        if let Some(d) = seg.opt(2) {
                            match parse_date(d) {
                                Some(d) => c.ack.ack_date = d,
                                None => ctx.finding(
                                    "bad_date",
                                    format!(
                                        "{}: STC02 {d:?} is not a date",
                                        Self::label(&self.hls, c.hl)
                                    ),
                                ),
                            }
                        }
                        if let Some(a) = seg.opt(4) {
                            c.ack.billed_cents = parse_cents(a);
                            if c.ack.billed_cents.is_none() {
                                ctx.finding("bad_amount", format!("STC04 {a:?}"));
                            }
                        }
                    }
                    c.ack.statuses.extend(statuses);
                } else if let Some(h) = self.current_hl.and_then(|i| self.hls.get_mut(i)) {
                    let rd = ctx.refdata;
                    h.rejections.extend(
                        statuses
                            .into_iter()
                            .filter(|s| rd.ack_class(&s.category) == AckClass::Rejected),
                    );
                } else {
                    ctx.finding("unexpected_segment", "STC before any HL; ignored".into());
                }
            }
            b"REF" => {
                if self.in_service_line {
                    return;
                }
                if let Some(c) = self.claim.as_mut() {
                    match seg.el(1) {
                        "1K" => c.ack.payer_claim_control_number = seg.opt(2).map(str::to_string),
                        "D9" => c.ack.clearinghouse_trace = seg.opt(2).map(str::to_string),
                        "EJ" => c.ej = seg.opt(2).map(str::to_string),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// Wrapper buffering events until SE (the callback is only available at finish).
pub(crate) struct Buffered {
    pub inner: Tx277,
    pub out: Vec<InputEvent>,
}

impl Buffered {
    pub(crate) fn new(version: &str) -> Self {
        Self {
            inner: Tx277::new(version),
            out: Vec::new(),
        }
    }
    pub(crate) fn segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        let out = &mut self.out;
        self.inner.segment_inner(ctx, seg, &mut |e| out.push(e));
    }
    pub(crate) fn finish(mut self, ctx: &mut Ctx<'_>, emit: &mut dyn FnMut(InputEvent)) {
        let out = &mut self.out;
        self.inner.flush(ctx, &mut |e| out.push(e));
        for h in &self.inner.hls {
            if let (false, Some(s)) = (h.applied, h.rejections.first()) {
                // A batch rejected above claim level with no claim HL under it: the
                // claims cannot be identified from this 277CA.
                ctx.finding(
                    "rejection_without_claims",
                    format!(
                        "HL {} rejects with {}:{} but lists no claims; no claim event emitted",
                        h.id, s.category, s.code
                    ),
                );
            }
        }
        for e in self.out {
            emit(e);
        }
    }
}
