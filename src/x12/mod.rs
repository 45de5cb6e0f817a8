//! X12 ingestion: 835 (005010X221A1), 277CA (005010X214) and 837P/837I
//! (005010X222A2 / 005010X223A3) into model events.
//!
//! [`parse_each`] streams events to a callback (memory bounded by the largest
//! transaction set, not the file); [`parse`] collects them; [`parse_interchange`]
//! is the entry point of the Kafka runtime for the `x12.raw` topic (one interchange
//! per message). Envelope problems, unknown or misplaced segments, code-set and
//! balancing problems are *findings* (located, the run continues); structural
//! problems that lose data (missing SE/IEA, an unreadable segment outside a
//! transaction set, an event that fails [`crate::model::validate`]) are *errors*:
//! each names the byte range of the input it concerns ([`X12Error::raw`]), which
//! goes to the dead-letter output. In both cases good transaction sets in the same
//! file still produce events, and every emitted event passes validation.
//!
//! Code meanings (CARC, RARC, 277 status categories and codes, CLP02) come from the
//! versioned tables of [`crate::refdata`]; unknown codes are findings on the event.
//!
//! PHI: findings and errors name envelope control numbers, event ids and codes,
//! never member ids, names or claim ids.

pub mod files;
mod r277ca;
mod r835;
mod r837;
pub mod synth;
mod write;
pub use write::{write_277ca, write_835, write_837};
pub mod tokenizer;

use crate::model::{validate, EpochMillis, InputEvent};
use crate::refdata::RefData;
pub use r835::PlbAdjustment;
use tokenizer::parse_date;
use tokenizer::{Segment, Tokenizer};

/// A located, non-fatal observation (envelope mismatch, balancing, sample defect).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub source: String,
    /// ISA13 of the interchange ("" before the first ISA).
    pub interchange: String,
    /// 1-based segment number in the file.
    pub segment: usize,
    pub code: String,
    pub message: String,
}

/// A located structural error: the affected transaction set (or event) produced no
/// events; `range` is the part of the input that goes to the dead-letter output.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{source_name}: interchange {interchange}, segment {segment}: {code}: {message}")]
pub struct X12Error {
    pub source_name: String,
    pub interchange: String,
    pub segment: usize,
    pub code: String,
    pub message: String,
    /// Byte range of the input this error concerns (a transaction set, an
    /// interchange or one segment).
    pub range: std::ops::Range<usize>,
}

impl X12Error {
    /// The raw input this error concerns, for the dead-letter output.
    pub fn raw<'a>(&self, input: &'a [u8]) -> &'a [u8] {
        let end = self.range.end.min(input.len());
        input.get(self.range.start.min(end)..end).unwrap_or(&[])
    }
}

/// Per-file summary returned alongside the events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub findings: Vec<Finding>,
    pub errors: Vec<X12Error>,
    /// PLB provider-level adjustments (not per claim), per 835 transaction set.
    pub plb: Vec<PlbAdjustment>,
    pub interchanges: usize,
    pub transactions: usize,
    pub segments: usize,
}

/// Result of [`parse`].
#[derive(Clone, Debug, Default)]
pub struct ParseOutput {
    pub events: Vec<InputEvent>,
    pub findings: Vec<Finding>,
    pub errors: Vec<X12Error>,
    pub plb: Vec<PlbAdjustment>,
    pub interchanges: usize,
    pub transactions: usize,
    pub segments: usize,
}

/// Parses one message of the raw-X12 Kafka topic (`x12.raw`, one interchange per
/// message) for the streaming runtime: the events to route to the core (each one
/// already validated), the findings to report, and the errors whose
/// [`X12Error::raw`] bytes go to the dead-letter topic. `source` labels the message
/// in findings (e.g. `x12.raw/3/1042` for partition 3, offset 1042). A message with
/// more than one interchange is still parsed whole, with a finding. Never panics;
/// memory is bounded by the message.
pub fn parse_interchange(bytes: &[u8], source: &str) -> ParseOutput {
    let mut out = parse(bytes, source);
    if out.interchanges > 1 {
        out.findings.push(Finding {
            source: source.to_string(),
            interchange: String::new(),
            segment: 0,
            code: "multiple_interchanges".into(),
            message: format!(
                "message holds {} interchanges; expected one per message",
                out.interchanges
            ),
        });
    }
    if out.interchanges == 0 && out.errors.is_empty() {
        out.errors.push(X12Error {
            source_name: source.to_string(),
            interchange: String::new(),
            segment: 0,
            code: "no_interchange".into(),
            message: "message holds no ISA interchange".into(),
            range: 0..bytes.len(),
        });
    }
    out
}

/// Parses a whole file into events plus findings and errors. Never panics.
pub fn parse(bytes: &[u8], source: &str) -> ParseOutput {
    let mut events = Vec::new();
    let s = parse_each(bytes, source, |e| events.push(e));
    ParseOutput {
        events,
        findings: s.findings,
        errors: s.errors,
        plb: s.plb,
        interchanges: s.interchanges,
        transactions: s.transactions,
        segments: s.segments,
    }
}

/// Context shared by the transaction parsers.
pub(crate) struct Ctx<'s> {
    pub source: &'s str,
    pub isa13: String,
    pub event_time: EpochMillis,
    pub st02: String,
    pub summary: Summary,
    pub seg_no: usize,
    /// Byte offset of the current segment.
    pub seg_offset: usize,
    pub refdata: &'s RefData,
    /// Byte offset of the open transaction set's ST and the end of the current
    /// segment: the dead-letter range of a refused event ([`Ctx::refuse`]).
    pub st_start: usize,
    pub seg_end: usize,
    /// Transaction sets dropped for a missing SE so far (an interchange that lost none is
    /// complete without its IEA).
    pub lost_sets: usize,
    /// Positions (1-based, among the set's claims) of the claims refused in the transaction
    /// set being finished, so a later message can name a claim by its position among all.
    pub refused_positions: Vec<usize>,
}

impl Ctx<'_> {
    /// Records the refusal of one event (a claim-level loop whose content cannot be
    /// read, e.g. an unreadable required amount): it is not emitted, and the
    /// transaction set goes to the dead-letter output with `message`, located at
    /// segment `segment` (the other events of the set still flow). `position` is the claim's
    /// (1-based) among the set's claims.
    pub fn refuse(&mut self, code: &str, position: usize, segment: usize, message: String) {
        self.refused_positions.push(position);
        self.summary.errors.push(X12Error {
            source_name: self.source.to_string(),
            interchange: self.isa13.clone(),
            segment,
            code: code.to_string(),
            message,
            range: self.st_start..self.seg_end.max(self.st_start),
        });
    }

    pub fn finding(&mut self, code: &str, message: String) {
        self.summary.findings.push(Finding {
            source: self.source.to_string(),
            interchange: self.isa13.clone(),
            segment: self.seg_no,
            code: code.to_string(),
            message,
        });
    }
    pub fn error(&mut self, code: &str, message: String, range: std::ops::Range<usize>) {
        if code == "missing_se" {
            self.lost_sets += 1;
        }
        self.summary.errors.push(X12Error {
            source_name: self.source.to_string(),
            interchange: self.isa13.clone(),
            segment: self.seg_no,
            code: code.to_string(),
            message,
            range,
        });
    }
}

/// An interchange without its IEA: a finding when it is `complete` (at least one transaction set,
/// every one closed with its SE: its events flowed, and a dead letter would repeat them); else an
/// error, the whole interchange to the dead letters (a truncated file, or no transaction set at
/// all: nothing of it would be kept otherwise).
fn missing_iea(ctx: &mut Ctx<'_>, complete: bool, what: &str, range: std::ops::Range<usize>) {
    let message = format!("interchange {} {what}", ctx.isa13);
    if !complete {
        ctx.error("missing_iea", message, range);
    } else {
        ctx.finding(
            "missing_iea",
            format!("{message}; every transaction set in it was complete and its events flowed"),
        );
    }
}

enum Tx {
    R835(Box<r835::Tx835>),
    R277(Box<r277ca::Buffered>),
    R837(Box<r837::Tx837>),
    Other,
}

impl Tx {
    fn name(&self) -> &'static str {
        match self {
            Tx::R835(_) => "835",
            Tx::R277(_) => "277",
            Tx::R837(_) => "837",
            Tx::Other => "",
        }
    }

    fn segment(&mut self, ctx: &mut Ctx<'_>, seg: &Segment<'_>) {
        let id = seg.id();
        let known = match self {
            Tx::R835(_) => r835::known_segment(id),
            Tx::R277(_) => r277ca::known_segment(id),
            Tx::R837(_) => r837::known_segment(id),
            Tx::Other => true,
        };
        if !known {
            let name = self.name();
            if id.len() >= 2 && id.len() <= 3 && id.iter().all(u8::is_ascii_alphanumeric) {
                ctx.finding(
                    "unknown_segment",
                    format!(
                        "segment {} is not part of the {name} implementation guide; ignored",
                        String::from_utf8_lossy(id)
                    ),
                );
            } else {
                ctx.finding(
                    "unreadable_segment",
                    format!("unreadable segment in transaction set {name}; ignored"),
                );
            }
            return;
        }
        match self {
            Tx::R835(t) => t.segment(ctx, seg),
            Tx::R277(t) => t.segment(ctx, seg),
            Tx::R837(t) => t.segment(ctx, seg),
            Tx::Other => {}
        }
    }
    fn finish(self, ctx: &mut Ctx<'_>, emit: &mut dyn FnMut(InputEvent)) {
        match self {
            Tx::R835(t) => t.finish(ctx, emit),
            Tx::R277(t) => t.finish(ctx, emit),
            Tx::R837(t) => t.finish(ctx, emit),
            Tx::Other => {}
        }
    }
}

/// Content identity of one claim-level loop (an 835 CLP loop, an 837 CLM loop, a
/// 277CA claim HL): a stable hash of the context values that go into the event
/// (payer, trace, ...) and of the loop's segments as tokenized, with the
/// interchange's separators normalised (and trailing empty elements dropped), so
/// the same content written with other separators or line breaks hashes the same.
///
/// Event ids are built from it rather than from the envelope (ISA13/ST02), because
/// the envelope says nothing about the content: a payment re-sent in a new
/// interchange or transaction set is the same payment (the core ignores it as a
/// repeat), and a different payment under reused control numbers is a new one.
/// XXH3 is specified byte for byte, so ids are the same on every run and platform.
pub(crate) struct ContentHash {
    h: xxhash_rust::xxh3::Xxh3Default,
    buf: Vec<u8>,
}

impl ContentHash {
    pub(crate) fn new(set: &str) -> Self {
        let mut h = Self {
            h: xxhash_rust::xxh3::Xxh3Default::new(),
            buf: Vec::new(),
        };
        h.field(set);
        h
    }

    /// A context value, length-prefixed (values cannot run into each other).
    pub(crate) fn field(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    fn bytes(&mut self, v: &[u8]) {
        self.h.update(&(v.len() as u64).to_le_bytes());
        self.h.update(v);
    }

    /// One segment of the loop.
    pub(crate) fn segment(&mut self, seg: &Segment<'_>) {
        let sep = seg.sep;
        let mut raw = seg.raw;
        while let [rest @ .., last] = raw {
            if *last != sep.element {
                break;
            }
            raw = rest;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend(raw.iter().map(|&b| {
            if b == sep.element {
                0x1D
            } else if b == sep.component {
                0x1F
            } else if sep.repetition != 0 && b == sep.repetition {
                0x1E
            } else {
                b
            }
        }));
        self.bytes(&buf);
        self.buf = buf;
    }

    /// 16 hex digits.
    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.h.digest())
    }
}

/// `<set>:<part>:...:<hash>`: the readable parts (trace, claim id, ...) are cut
/// to `max` bytes each (at a character boundary) so the id stays within the model's 80-byte key
/// limit (`model::validate`); the hash covers them in full.
pub(crate) fn content_event_id(set: &str, parts: &[(&str, usize)], hash: &ContentHash) -> String {
    let mut id = String::with_capacity(80);
    id.push_str(set);
    for (p, max) in parts {
        id.push(':');
        let mut room = *max;
        for c in p.chars().filter(|c| !c.is_control()) {
            if c.len_utf8() > room {
                break;
            }
            room -= c.len_utf8();
            id.push(c);
        }
    }
    id.push(':');
    id.push_str(&hash.hex());
    id
}

/// Interchange date/time as ms since epoch (date `CCYYMMDD` or `YYMMDD`, time
/// `HHMM[SS[D[D]]]`: decimal seconds are tenths or hundredths).
pub(crate) fn datetime_ms(date: &str, time: &str) -> Option<EpochMillis> {
    let day = if date.len() == 6 {
        // "20" + YYMMDD on the stack (once per ISA: no allocation).
        let mut buf = [b'2', b'0', 0, 0, 0, 0, 0, 0];
        buf[2..].copy_from_slice(date.as_bytes());
        parse_date(std::str::from_utf8(&buf).ok()?)?
    } else {
        parse_date(date)?
    };
    let t = time.as_bytes();
    let num = |a: usize| -> i64 {
        t.get(a..a + 2)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    };
    let (h, m, s) = (num(0), num(2), num(4));
    let frac_ms = match t.get(6..) {
        Some([d]) if d.is_ascii_digit() => i64::from(d - b'0') * 100,
        Some([d1, d2]) if d1.is_ascii_digit() && d2.is_ascii_digit() => {
            i64::from(d1 - b'0') * 100 + i64::from(d2 - b'0') * 10
        }
        _ => 0,
    };
    Some(crate::model::start_of_day(day) + ((h * 60 + m) * 60 + s) * 1000 + frac_ms)
}

/// Replaces the contents of `dst`, reusing its buffer.
fn set_str(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

/// A non-event output of [`parse_stream`].
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    Finding(Finding),
    Error(X12Error),
    Plb(PlbAdjustment),
}

/// Streams events to `emit`; returns the findings, errors and PLB summary (which
/// are kept in memory: use [`parse_stream`] for constant memory).
pub fn parse_each(bytes: &[u8], source: &str, emit: impl FnMut(InputEvent)) -> Summary {
    run(bytes, source, emit, None)
}

/// Fully streaming: events to `emit`, findings/errors/PLB to `report` as they
/// occur. Memory is bounded by the largest transaction set, not the file size;
/// the returned summary holds only counts.
pub fn parse_stream(
    bytes: &[u8],
    source: &str,
    emit: impl FnMut(InputEvent),
    mut report: impl FnMut(Report),
) -> Summary {
    run(bytes, source, emit, Some(&mut report))
}

fn drain(s: &mut Summary, report: &mut Option<&mut dyn FnMut(Report)>) {
    if let Some(r) = report.as_mut() {
        for f in s.findings.drain(..) {
            r(Report::Finding(f));
        }
        for e in s.errors.drain(..) {
            r(Report::Error(e));
        }
        for p in s.plb.drain(..) {
            r(Report::Plb(p));
        }
    }
}

fn run(
    bytes: &[u8],
    source: &str,
    mut emit: impl FnMut(InputEvent),
    mut report: Option<&mut dyn FnMut(Report)>,
) -> Summary {
    let refdata = RefData::shared();
    let mut ctx = Ctx {
        source,
        isa13: String::new(),
        event_time: 0,
        st02: String::new(),
        summary: Summary::default(),
        seg_no: 0,
        seg_offset: 0,
        refdata: &refdata,
        st_start: 0,
        seg_end: 0,
        lost_sets: 0,
        refused_positions: Vec::new(),
    };
    // Byte offsets of the open ISA and ST, for dead-letter ranges.
    let mut isa_start = 0usize;
    let mut st_start = 0usize;
    let mut in_isa = false;
    // Sets lost before the open interchange began (see `Ctx::lost_sets`), and the sets it
    // closed with their SE.
    let mut lost_before_isa = 0usize;
    let mut sets_in_isa = 0usize;
    let mut in_gs = false;
    let mut gs06 = String::new();
    let mut gs_count = 0usize; // GS groups in this interchange
    let mut st_count = 0usize; // ST sets in this group
    let mut tx: Option<Tx> = None;
    let mut st_segs = 0usize;
    let mut gs_version = String::new();
    let mut isa_time: EpochMillis = 0;

    let mut tokens = Tokenizer::new(bytes);
    while let Some(seg) = tokens.advance() {
        if report.is_some()
            && !(ctx.summary.findings.is_empty()
                && ctx.summary.errors.is_empty()
                && ctx.summary.plb.is_empty())
        {
            drain(&mut ctx.summary, &mut report);
        }
        ctx.seg_no += 1;
        ctx.seg_offset = seg.offset;
        ctx.seg_end = seg.offset + seg.raw.len();
        ctx.summary.segments += 1;
        if tx.is_some() {
            st_segs += 1;
        }
        let id = seg.id();
        match id {
            b"ISA" => {
                if let Some(t) = tx.take() {
                    ctx.error(
                        "missing_se",
                        format!(
                            "transaction set {} has no SE before ISA; its events are dropped",
                            ctx.st02
                        ),
                        st_start..seg.offset,
                    );
                    drop(t);
                }
                if in_isa {
                    let complete = ctx.lost_sets == lost_before_isa && sets_in_isa > 0;
                    missing_iea(&mut ctx, complete, "has no IEA", isa_start..seg.offset);
                }
                lost_before_isa = ctx.lost_sets;
                sets_in_isa = 0;
                isa_start = seg.offset;
                in_isa = true;
                in_gs = false;
                gs_count = 0;
                ctx.summary.interchanges += 1;
                set_str(&mut ctx.isa13, seg.el(13).trim());
                isa_time = datetime_ms(seg.el(9), seg.el(10)).unwrap_or(0);
                ctx.event_time = isa_time;
                if seg.len() != 16 {
                    ctx.finding(
                        "isa_elements",
                        format!("ISA has {} elements, expected 16", seg.len()),
                    );
                }
            }
            b"IEA" => {
                if let Some(_t) = tx.take() {
                    ctx.error(
                        "missing_se",
                        format!(
                            "transaction set {} has no SE; its events are dropped",
                            ctx.st02
                        ),
                        st_start..seg.offset,
                    );
                }
                if in_gs {
                    ctx.finding("missing_ge", format!("group {gs06} has no GE"));
                    in_gs = false;
                }
                if !in_isa {
                    ctx.finding("unexpected_iea", "IEA without ISA".into());
                }
                if seg.el(2).trim() != ctx.isa13 {
                    ctx.finding(
                        "iea02_mismatch",
                        format!("IEA02 {} != ISA13 {}", seg.el(2), ctx.isa13),
                    );
                }
                if seg.el(1).trim().parse::<usize>().ok() != Some(gs_count) {
                    ctx.finding(
                        "iea01_count",
                        format!("IEA01 {} != {} functional groups", seg.el(1), gs_count),
                    );
                }
                in_isa = false;
            }
            b"GS" => {
                if let Some(_t) = tx.take() {
                    ctx.error(
                        "missing_se",
                        format!(
                            "transaction set {} has no SE; its events are dropped",
                            ctx.st02
                        ),
                        st_start..seg.offset,
                    );
                }
                if in_gs {
                    ctx.finding("missing_ge", format!("group {gs06} has no GE"));
                }
                in_gs = true;
                gs_count += 1;
                st_count = 0;
                set_str(&mut gs06, seg.el(6));
                set_str(&mut gs_version, seg.el(8));
                ctx.event_time = datetime_ms(seg.el(4), seg.el(5)).unwrap_or(isa_time);
            }
            b"GE" => {
                if let Some(_t) = tx.take() {
                    ctx.error(
                        "missing_se",
                        format!(
                            "transaction set {} has no SE; its events are dropped",
                            ctx.st02
                        ),
                        st_start..seg.offset,
                    );
                }
                if seg.el(2) != gs06 {
                    ctx.finding(
                        "ge02_mismatch",
                        format!("GE02 {} != GS06 {}", seg.el(2), gs06),
                    );
                }
                if seg.el(1).parse::<usize>().ok() != Some(st_count) {
                    ctx.finding(
                        "ge01_count",
                        format!("GE01 {} != {} transaction sets", seg.el(1), st_count),
                    );
                }
                in_gs = false;
            }
            b"ST" => {
                if let Some(_t) = tx.take() {
                    ctx.error(
                        "missing_se",
                        format!(
                            "transaction set {} has no SE; its events are dropped",
                            ctx.st02
                        ),
                        st_start..seg.offset,
                    );
                }
                st_count += 1;
                st_segs = 1;
                st_start = seg.offset;
                ctx.st_start = seg.offset;
                ctx.summary.transactions += 1;
                set_str(&mut ctx.st02, seg.el(2));
                let version = if seg.el(3).is_empty() {
                    gs_version.as_str()
                } else {
                    seg.el(3)
                };
                tx = Some(match seg.el(1) {
                    "835" => Tx::R835(Box::default()),
                    "277" => Tx::R277(Box::new(r277ca::Buffered::new(version))),
                    "837" => Tx::R837(Box::new(r837::Tx837::new(version))),
                    other => {
                        ctx.finding(
                            "unsupported_transaction",
                            format!("transaction set {other} is not parsed"),
                        );
                        Tx::Other
                    }
                });
                if !version.starts_with("00501") && !version.is_empty() {
                    ctx.finding(
                        "version",
                        format!("version {version} is not 5010; parsed on a best-effort basis"),
                    );
                }
            }
            b"SE" => match tx.take() {
                Some(t) => {
                    sets_in_isa += 1;
                    if seg.el(1).parse::<usize>().ok() != Some(st_segs) {
                        ctx.finding(
                            "se01_count",
                            format!("SE01 {} != {} segments", seg.el(1), st_segs),
                        );
                    }
                    if seg.el(2) != ctx.st02 {
                        ctx.finding(
                            "se02_mismatch",
                            format!("SE02 {} != ST02 {}", seg.el(2), ctx.st02),
                        );
                    }
                    let range = st_start..seg.offset + seg.raw.len();
                    // Every event leaves the parser valid; an invalid one is a
                    // dead letter naming its transaction set.
                    // (The event id holds the claim id: the message names the
                    // event by its position in the set instead.)
                    let mut rejected: Vec<(usize, String)> = Vec::new();
                    ctx.refused_positions.clear();
                    {
                        let mut n = 0usize;
                        let mut checked = |e: InputEvent| {
                            n += 1;
                            match validate(&e) {
                                Ok(()) => emit(e),
                                Err(v) => rejected.push((n, v.to_string())),
                            }
                        };
                        t.finish(&mut ctx, &mut checked);
                    }
                    for (n, why) in rejected {
                        // The n-th event emitted is the n-th claim not refused.
                        let refused = &ctx.refused_positions;
                        let position = (1..)
                            .filter(|p| !refused.contains(p))
                            .nth(n - 1)
                            .unwrap_or(n);
                        ctx.error(
                            "invalid_event",
                            format!(
                                "claim {position} of transaction set {} is not a valid event and was not emitted: {why}",
                                ctx.st02
                            ),
                            range.clone(),
                        );
                    }
                }
                None => ctx.finding("unexpected_se", "SE without ST".into()),
            },
            _ => match tx.as_mut() {
                Some(t) => t.segment(&mut ctx, seg),
                None => {
                    if !id.is_empty()
                        && id.len() <= 3
                        && id.iter().all(|c| c.is_ascii_alphanumeric())
                    {
                        ctx.finding(
                            "segment_outside_transaction",
                            format!("segment {} outside ST/SE", String::from_utf8_lossy(id)),
                        );
                    } else {
                        ctx.error(
                            "garbage",
                            "unreadable data outside a transaction set".into(),
                            seg.offset..seg.offset + seg.raw.len(),
                        );
                    }
                }
            },
        }
    }
    ctx.seg_no += 1;
    if tx.is_some() {
        ctx.error(
            "missing_se",
            format!(
                "transaction set {} has no SE at end of file; its events are dropped",
                ctx.st02
            ),
            st_start..bytes.len(),
        );
    }
    if in_isa {
        let complete = ctx.lost_sets == lost_before_isa && sets_in_isa > 0;
        missing_iea(
            &mut ctx,
            complete,
            "has no IEA at end of file",
            isa_start..bytes.len(),
        );
    }
    drain(&mut ctx.summary, &mut report);
    ctx.summary
}
