//! Zero-allocation X12 tokenizer: segments and elements borrow from the input.
//!
//! Separators are read from each ISA segment: element = ISA byte 4, repetition =
//! ISA11, component = ISA16, segment terminator = the first byte after ISA16 (if
//! that is a line break followed by a non-alphanumeric byte, as in files that
//! write the terminator at the start of each line, that byte is the terminator).

use memchr::{memchr, memchr_iter};

/// Delimiters of one interchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Separators {
    pub element: u8,
    pub component: u8,
    pub repetition: u8,
    pub segment: u8,
}

impl Default for Separators {
    fn default() -> Self {
        Self {
            element: b'*',
            component: b':',
            repetition: b'^',
            segment: b'~',
        }
    }
}

/// One segment, borrowed from the input.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Segment bytes without the terminator (and without surrounding whitespace).
    pub raw: &'a [u8],
    /// Separators in force for this segment.
    pub sep: Separators,
    /// Byte offset of the segment in the input.
    pub offset: usize,
    /// Positions of the first `MAX_FAST` element separators (computed once).
    seps: [Pos; MAX_FAST],
    nseps: u8,
    /// The segment as text when it is valid UTF-8 (validated once).
    text: Option<&'a str>,
}

/// Elements indexable in O(1); later ones are found by scanning.
const MAX_FAST: usize = 24;
/// Element offsets are stored as `Pos` (keeps `Segment` small enough to be moved
/// without a `memcpy` call); longer segments are split by scanning.
type Pos = u16;
const MAX_INDEXED: usize = Pos::MAX as usize;

impl<'a> Segment<'a> {
    /// Builds a segment, splitting its elements once (no allocation).
    pub fn new(raw: &'a [u8], sep: Separators, offset: usize) -> Self {
        let mut seps = [0 as Pos; MAX_FAST];
        let mut nseps = 0u8;
        if raw.len() < MAX_INDEXED {
            for p in memchr_iter(sep.element, raw) {
                if nseps as usize == MAX_FAST {
                    break;
                }
                seps[nseps as usize] = p as Pos;
                nseps += 1;
            }
        }
        Self {
            raw,
            sep,
            offset,
            seps,
            nseps,
            text: std::str::from_utf8(raw).ok(),
        }
    }
}

fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

impl<'a> Segment<'a> {
    /// Segment identifier (element 0).
    #[inline]
    pub fn id(&self) -> &'a [u8] {
        if self.nseps == 0 {
            self.raw
        } else {
            &self.raw[..self.seps[0] as usize]
        }
    }

    /// Element `n` (1-based as in the implementation guides; 0 = id), "" if absent.
    #[inline]
    pub fn el(&self, n: usize) -> &'a str {
        let b = self.el_bytes(n);
        if b.is_empty() {
            return "";
        }
        let Some(text) = self.text else {
            return as_str(b);
        };
        // `b` is a sub-slice of `raw`: same offsets in `text` (ASCII separators
        // always fall on char boundaries).
        let start = b.as_ptr() as usize - self.raw.as_ptr() as usize;
        text.get(start..start + b.len()).unwrap_or("")
    }

    /// Element `n` as bytes.
    #[inline]
    pub fn el_bytes(&self, n: usize) -> &'a [u8] {
        let raw = self.raw;
        let k = self.nseps as usize;
        if raw.len() < MAX_INDEXED && (k < MAX_FAST || n + 1 < MAX_FAST) {
            if n > k {
                return &[];
            }
            let start = if n == 0 {
                0
            } else {
                self.seps[n - 1] as usize + 1
            };
            let end = if n < k {
                self.seps[n] as usize
            } else {
                raw.len()
            };
            return &raw[start..end];
        }
        let mut start = 0usize;
        let mut idx = 0usize;
        for pos in memchr_iter(self.sep.element, raw) {
            if idx == n {
                return &raw[start..pos];
            }
            idx += 1;
            start = pos + 1;
        }
        if idx == n {
            &raw[start..]
        } else {
            &[]
        }
    }

    /// Non-empty element `n`.
    #[inline]
    pub fn opt(&self, n: usize) -> Option<&'a str> {
        let s = self.el(n);
        (!s.is_empty()).then_some(s)
    }

    /// Component `c` (1-based) of element `n`.
    pub fn comp(&self, n: usize, c: usize) -> &'a str {
        component(self.el(n), self.sep.component, c)
    }

    /// Number of elements after the id.
    #[inline]
    pub fn len(&self) -> usize {
        if (self.nseps as usize) < MAX_FAST && self.raw.len() < MAX_INDEXED {
            return self.nseps as usize;
        }
        memchr_iter(self.sep.element, self.raw).count()
    }

    /// True when the segment has no elements after the id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Component `c` (1-based) of a composite, "" if absent.
pub fn component(s: &str, sep: u8, c: usize) -> &str {
    if c == 0 {
        return "";
    }
    s.split(sep as char).nth(c - 1).unwrap_or("")
}

fn is_ws(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t')
}

/// Reads the separators from an ISA segment starting at `isa` (bytes "ISA" + element sep).
/// Returns the separators and the offset just after the ISA terminator.
pub fn read_isa(bytes: &[u8], isa: usize) -> Option<(Separators, usize)> {
    let element = *bytes.get(isa + 3)?;
    if element.is_ascii_alphanumeric() || is_ws(element) {
        return None;
    }
    // Find the 16th element separator: ISA16 is the byte after it.
    let mut count = 0;
    let mut p16 = None;
    let mut p11 = None;
    let window = &bytes[isa..bytes.len().min(isa + 200)];
    for (i, &b) in window.iter().enumerate() {
        if b == element {
            count += 1;
            if count == 11 {
                p11 = Some(isa + i + 1);
            }
            if count == 16 {
                p16 = Some(isa + i + 1);
                break;
            }
        }
    }
    let p16 = p16?;
    let component = *bytes.get(p16)?;
    let repetition = p11.and_then(|p| bytes.get(p).copied()).unwrap_or(b'^');
    let mut term_pos = p16 + 1;
    let mut segment = *bytes.get(term_pos)?;
    if is_ws(segment) {
        let mut q = term_pos;
        while q < bytes.len() && is_ws(bytes[q]) {
            q += 1;
        }
        if let Some(&b) = bytes.get(q) {
            if !b.is_ascii_alphanumeric() && b != element {
                segment = b;
                term_pos = q;
            }
        }
    }
    Some((
        Separators {
            element,
            component,
            repetition: if repetition.is_ascii_alphanumeric() {
                0
            } else {
                repetition
            },
            segment,
        },
        term_pos + 1,
    ))
}

/// Streaming segment iterator over a whole file (possibly several interchanges).
///
/// One pass per segment: the terminator and the element separators are found
/// together, eight bytes at a time (SWAR), and UTF-8 is validated once per run of
/// valid input rather than once per segment. Nothing is allocated.
pub struct Tokenizer<'a> {
    bytes: &'a [u8],
    pos: usize,
    sep: Separators,
    /// `bytes[utf8_from..utf8_from + utf8.len()]` is known to be valid UTF-8.
    utf8: &'a str,
    utf8_from: usize,
    /// The segment returned by [`Tokenizer::advance`].
    cur: Segment<'a>,
}

impl<'a> Tokenizer<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        let pos = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            0
        };
        Self {
            bytes,
            pos,
            sep: Separators::default(),
            utf8: "",
            utf8_from: 0,
            cur: Segment::new(&[], Separators::default(), 0),
        }
    }

    /// Separators currently in force.
    pub fn separators(&self) -> Separators {
        self.sep
    }

    /// `bytes[start..end]` as text when it is valid UTF-8. Validation runs over the
    /// longest valid stretch from `start` and is reused by later segments, so valid
    /// input is validated once in total, and invalid input stays linear (a new
    /// stretch starts only past the end of the previous one).
    fn text(&mut self, start: usize, end: usize) -> Option<&'a str> {
        let valid_end = self.utf8_from + self.utf8.len();
        if start >= valid_end {
            let rest = &self.bytes[start..];
            self.utf8 = match std::str::from_utf8(rest) {
                Ok(t) => t,
                Err(e) => std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or(""),
            };
            self.utf8_from = start;
        }
        if start >= self.utf8_from && end <= self.utf8_from + self.utf8.len() {
            if let Some(t) = self.utf8.get(start - self.utf8_from..end - self.utf8_from) {
                return Some(t);
            }
        }
        std::str::from_utf8(&self.bytes[start..end]).ok()
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// 0x80 in each byte of `w` that equals `b`, 0 elsewhere (exact: no carries
/// between bytes, so no false positives).
#[inline(always)]
fn eq_mask(w: u64, b: u8) -> u64 {
    let x = w ^ (LO * u64::from(b));
    !(((x & !HI) + !HI) | x) & HI
}

/// Scans from `start` to the next `term` (or the end of `b`), recording the
/// positions (relative to `start`) of the first `MAX_FAST` `el` bytes before it.
/// Returns the terminator position.
#[inline]
fn scan(
    b: &[u8],
    start: usize,
    el: u8,
    term: u8,
    seps: &mut [Pos; MAX_FAST],
    nseps: &mut u8,
) -> usize {
    let mut n = 0usize;
    let mut p = start;
    while let Some(chunk) = b.get(p..p + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let mt = eq_mask(w, term);
        let mut me = eq_mask(w, el);
        let stop = mt != 0;
        if stop {
            // Only the element separators before the terminator count.
            me &= (1u64 << mt.trailing_zeros()) - 1;
        }
        while me != 0 && n < MAX_FAST {
            seps[n] = (p - start + (me.trailing_zeros() / 8) as usize) as Pos;
            n += 1;
            me &= me - 1;
        }
        if stop {
            *nseps = n as u8;
            return p + (mt.trailing_zeros() / 8) as usize;
        }
        if n == MAX_FAST {
            // The rest is only searched for the terminator.
            *nseps = n as u8;
            return memchr(term, &b[p + 8..]).map_or(b.len(), |i| p + 8 + i);
        }
        p += 8;
    }
    while p < b.len() {
        let c = b[p];
        if c == term {
            break;
        }
        if c == el && n < MAX_FAST {
            seps[n] = (p - start) as Pos;
            n += 1;
        }
        p += 1;
    }
    *nseps = n as u8;
    p
}

fn trim_end_ws(mut raw: &[u8]) -> &[u8] {
    while let Some((&last, rest)) = raw.split_last() {
        if is_ws(last) {
            raw = rest;
        } else {
            break;
        }
    }
    raw
}

impl<'a> Tokenizer<'a> {
    /// The next segment, built in place inside the tokenizer (no copy of the
    /// segment per call); the parser's loop uses this, [`Iterator::next`] copies.
    #[inline]
    pub fn advance(&mut self) -> Option<&Segment<'a>> {
        let b = self.bytes;
        loop {
            // Skip whitespace, stray terminators and BOMs between segments.
            while self.pos < b.len() && (is_ws(b[self.pos]) || b[self.pos] == self.sep.segment) {
                self.pos += 1;
            }
            if b[self.pos..].starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.pos += 3;
                continue;
            }
            break;
        }
        if self.pos >= b.len() {
            return None;
        }
        let start = self.pos;
        if b[start..].starts_with(b"ISA") {
            if let Some((sep, next)) = read_isa(b, start) {
                self.sep = sep;
                self.pos = next;
                let end = next - 1;
                self.cur = Segment::new(trim_end_ws(&b[start..end]), sep, start);
                return Some(&self.cur);
            }
        }
        let sep = self.sep;
        let mut nseps = 0u8;
        let end = scan(
            b,
            start,
            sep.element,
            sep.segment,
            &mut self.cur.seps,
            &mut nseps,
        );
        self.pos = (end + 1).min(b.len());
        let raw = trim_end_ws(&b[start..end]);
        if raw.len() >= MAX_INDEXED {
            self.cur = Segment::new(raw, sep, start);
            return Some(&self.cur);
        }
        // Separators are never whitespace, so trimming cannot drop one; kept
        // defensive for the (ISA-rejected) case.
        while nseps > 0 && self.cur.seps[nseps as usize - 1] as usize >= raw.len() {
            nseps -= 1;
        }
        let text = self.text(start, start + raw.len());
        // Offsets past `nseps` are left over from earlier segments and never read.
        let cur = &mut self.cur;
        cur.raw = raw;
        cur.sep = sep;
        cur.offset = start;
        cur.nseps = nseps;
        cur.text = text;
        Some(&self.cur)
    }
}

impl<'a> Iterator for Tokenizer<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        self.advance().copied()
    }
}

/// Parses a decimal amount into cents exactly ("-12.5" → -1250). Fractions beyond
/// cents must be zero, otherwise `None`.
pub fn parse_cents(s: &str) -> Option<i64> {
    // One pass over the bytes: [sign] digits* [. digits*], at most 15 integer
    // digits, fraction digits after the second one must be zeros.
    let b = s.trim().as_bytes();
    let (neg, body) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let mut v: i64 = 0;
    let mut i = 0;
    while let Some(&c) = body.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        if i == 15 {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
        i += 1;
    }
    let int_len = i;
    let frac: &[u8] = match body.get(i) {
        None => &[],
        Some(b'.') => &body[i + 1..],
        Some(_) => return None,
    };
    if int_len == 0 && frac.is_empty() {
        return None;
    }
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let d1 = frac.first().map_or(0, |c| i64::from(c - b'0'));
    let d2 = frac.get(1).map_or(0, |c| i64::from(c - b'0'));
    if frac.len() > 2 && frac[2..].iter().any(|&c| c != b'0') {
        return None;
    }
    v = v * 100 + d1 * 10 + d2;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents() {
        assert_eq!(parse_cents("1500.50"), Some(150050));
        assert_eq!(parse_cents("-12.5"), Some(-1250));
        assert_eq!(parse_cents("2000"), Some(200000));
        assert_eq!(parse_cents(".5"), Some(50));
        assert_eq!(parse_cents("1.005"), None);
        assert_eq!(parse_cents("1.000"), Some(100));
        assert_eq!(parse_cents("x"), None);
        assert_eq!(parse_cents(""), None);
    }

    #[test]
    fn terminator_at_line_start() {
        let f = b"ISA|00|          |00|          |ZZ|A              |ZZ|B              |120323|1938|U|00401|000015442|1|P|^\n~GS|HP|A|B\n~ST|835|0001\n~";
        let segs: Vec<_> = Tokenizer::new(f).collect();
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[1].id(), b"GS");
        assert_eq!(segs[2].el(2), "0001");
        assert_eq!(segs[0].sep.segment, b'~');
        assert_eq!(segs[0].el(16), "^");
    }
}

/// `CCYYMMDD` → days since 1970-01-01, validated (no chrono format parsing on the
/// hot path); other shapes fall back to [`crate::model::parse_day`].
pub fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return crate::model::parse_day(s);
    }
    let n =
        |r: std::ops::Range<usize>| b[r].iter().fold(0i64, |a, &c| a * 10 + i64::from(c - b'0'));
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    if !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][(m - 1) as usize];
    if d > dim {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn matches_chrono() {
        for s in [
            "19700101", "20260121", "20000229", "19000228", "20991231", "00010101", "99991231",
        ] {
            assert_eq!(super::parse_date(s), crate::model::parse_day(s), "{s}");
        }
        for s in ["20002316", "19000229", "20260132", "20260001", "10010100"] {
            assert_eq!(super::parse_date(s), None, "{s}");
        }
    }
}

#[cfg(test)]
mod scan_tests {
    //! The one-pass tokenizer against a plain reference (terminator by `memchr`,
    //! elements by [`Segment::new`], UTF-8 per segment), on samples and mutations.
    use super::*;
    use proptest::prelude::*;

    fn reference(bytes: &[u8]) -> Vec<Segment<'_>> {
        let mut out = Vec::new();
        let mut pos = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            0
        };
        let mut sep = Separators::default();
        loop {
            loop {
                while pos < bytes.len() && (is_ws(bytes[pos]) || bytes[pos] == sep.segment) {
                    pos += 1;
                }
                if bytes[pos..].starts_with(&[0xEF, 0xBB, 0xBF]) {
                    pos += 3;
                    continue;
                }
                break;
            }
            if pos >= bytes.len() {
                return out;
            }
            let start = pos;
            if bytes[start..].starts_with(b"ISA") {
                if let Some((s, next)) = read_isa(bytes, start) {
                    sep = s;
                    pos = next;
                    out.push(Segment::new(trim_end_ws(&bytes[start..next - 1]), s, start));
                    continue;
                }
            }
            let end = memchr(sep.segment, &bytes[start..]).map_or(bytes.len(), |i| start + i);
            pos = (end + 1).min(bytes.len());
            out.push(Segment::new(trim_end_ws(&bytes[start..end]), sep, start));
        }
    }

    fn same(bytes: &[u8]) {
        let got: Vec<_> = Tokenizer::new(bytes).collect();
        let want = reference(bytes);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.raw, w.raw);
            assert_eq!(g.offset, w.offset);
            assert_eq!(g.sep, w.sep);
            assert_eq!(g.nseps, w.nseps);
            assert_eq!(g.seps[..g.nseps as usize], w.seps[..w.nseps as usize]);
            assert_eq!(g.text, w.text);
            assert_eq!(g.len(), w.len());
            for n in 0..(MAX_FAST + 4) {
                assert_eq!(g.el_bytes(n), w.el_bytes(n));
                assert_eq!(g.el(n), w.el(n));
            }
        }
    }

    const SAMPLES: &[&[u8]] = &[
        include_bytes!("../../tests/fixtures/x12/chs-cds-aiml/test.835"),
        include_bytes!("../../tests/fixtures/x12/imsweb/x12_277CA_accepted.txt"),
        include_bytes!("../../tests/fixtures/x12/pyx12/mult_isa.source.x12"),
        include_bytes!("../../tests/fixtures/x12/tigershark/835-example.txt"),
        include_bytes!("../../tests/fixtures/x12/linuxforhealth-x12/demo.example1.837"),
    ];

    #[test]
    fn samples_match_reference() {
        for s in SAMPLES {
            same(s);
        }
        // Many elements (beyond the indexed ones), non-ASCII, invalid UTF-8.
        same(b"ST*1*2*3*4*5*6*7*8*9*10*11*12*13*14*15*16*17*18*19*20*21*22*23*24*25*26~SE*1~");
        same("N1*PR*CAFÉ ÜBER*XX*1~N3*x\u{00e9}~".as_bytes());
        same(b"N1*PR*\xff\xfe*XX~N3*ok~N4*\xc3~N4*\xc3\xa9~");
        same(b"NM1*QC\n*1  \r\n~");
        // Longer than the indexed range: elements are found by scanning.
        let mut long = b"N3*".to_vec();
        long.extend(std::iter::repeat_n(b'a', 70_000));
        long.extend(b"*b*c~N4*d*e~");
        same(&long);
        let segs: Vec<_> = Tokenizer::new(&long).collect();
        assert_eq!(segs[0].el(2), "b");
        assert_eq!(segs[0].el(3), "c");
        assert_eq!(segs[0].len(), 3);
        assert_eq!(segs[1].el(2), "e");
    }

    proptest! {
        #[test]
        fn mutated_samples_match_reference(
            which in 0..SAMPLES.len(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 0..12),
        ) {
            let mut b = SAMPLES[which].to_vec();
            for (i, byte, kind) in edits {
                let i = i % (b.len() + 1);
                match kind {
                    0 if i < b.len() => b[i] = byte,
                    1 => b.insert(i, byte),
                    _ if i < b.len() => { b.remove(i); }
                    _ => {}
                }
            }
            same(&b);
        }

        #[test]
        fn random_bytes_match_reference(
            b in proptest::collection::vec(
                prop_oneof![any::<u8>(), proptest::sample::select(b"*~:^|\\n ISA".to_vec())],
                0..400,
            )
        ) {
            same(&b);
        }
    }
}

#[cfg(test)]
mod cents_tests {
    use proptest::prelude::*;

    /// The previous, multi-pass implementation: the reference for `parse_cents`.
    fn reference(s: &str) -> Option<i64> {
        let s = s.trim();
        let (neg, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = match body.find('.') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if int.len() > 15 {
            return None;
        }
        let mut v: i64 = 0;
        for c in int.bytes() {
            v = v * 10 + i64::from(c - b'0');
        }
        let fb = frac.as_bytes();
        let d1 = fb.first().map_or(0, |c| i64::from(c - b'0'));
        let d2 = fb.get(1).map_or(0, |c| i64::from(c - b'0'));
        if fb.len() > 2 && fb[2..].iter().any(|&c| c != b'0') {
            return None;
        }
        v = v * 100 + d1 * 10 + d2;
        Some(if neg { -v } else { v })
    }

    #[test]
    fn edge_cases_match_reference() {
        for s in [
            "",
            "-",
            "+",
            ".",
            "-.",
            "1.",
            "-1.",
            ".5",
            "1.2.3",
            "--1",
            "+-1",
            " 12.30 ",
            "1e3",
            "999999999999999",
            "9999999999999999",
            "999999999999999.99",
            "1.000",
            "1.001",
            "1..0",
            "١",
            "0.00",
            "-0",
            "12 .5",
        ] {
            assert_eq!(super::parse_cents(s), reference(s), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn matches_reference(s in "[ +\\-.0-9a]{0,20}") {
            prop_assert_eq!(super::parse_cents(&s), reference(&s));
        }
    }
}
