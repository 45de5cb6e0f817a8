//! `claimwatch x12 parse FILE... --out DIR`: X12 files → stream files that
//! `claimwatch replay --input DIR` reads, plus a findings report per input file and
//! a dead-letter file.
//!
//! Output in `DIR`:
//! - `ehr.claims.jsonl` (837), `x12.277ca.jsonl` (277CA), `x12.835.jsonl` (835): one
//!   JSON object per line, the same names and format as `generate` writes (see
//!   [`crate::replay::files`]), in input order; replay merges the streams by event time;
//! - `x12.dead-letter.jsonl`: one [`DeadLetter`] per [`X12Error`] (`error_kind`
//!   `x12_syntax` for envelope/structure errors, `validation` for an event that fails
//!   validation), with the file, ISA13 and segment position in the message and the
//!   raw bytes of the affected transaction set or interchange as payload;
//! - `<input file name>.findings.json`: counts, located findings, errors, PLB
//!   provider-level adjustments and the codes seen with their reference-data meaning.
//!
//! A malformed file never stops the run: its good transaction sets still flow. Only
//! I/O errors (unreadable input, unwritable output) end it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{parse_stream, Finding, PlbAdjustment, Report, X12Error};
use crate::codec::{json, Format};
use crate::model::{DeadLetter, InputEvent, InputStream};
use crate::refdata::RefData;
use crate::replay::files::stream_path;

/// File name of the dead-letter output.
pub const DEAD_LETTER_FILE: &str = "x12.dead-letter.jsonl";

/// One code seen in a file, with its meaning from the reference tables.
#[derive(Debug, Serialize)]
pub struct CodeCount {
    pub code: String,
    pub count: u64,
    /// Description from `refdata`; `None` when the code is not in the table.
    pub description: Option<String>,
}

/// The per-file report written as `<file>.findings.json`.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    pub bytes: usize,
    pub interchanges: usize,
    pub transactions: usize,
    pub segments: usize,
    /// Events written, per stream file.
    pub events: BTreeMap<&'static str, u64>,
    /// Remittances carrying parser findings (balancing, code sets).
    pub remittances_with_findings: u64,
    /// Those findings by code (the part before `:`).
    pub remittance_findings: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
    pub errors: Vec<X12Error>,
    pub provider_adjustments: Vec<PlbAdjustment>,
    /// CLP02 claim status codes.
    pub claim_payment_status: Vec<CodeCount>,
    /// CAS `group-CARC` pairs (description of the CARC).
    pub adjustment_reasons: Vec<CodeCount>,
    /// 277 STC status categories.
    pub ack_status_categories: Vec<CodeCount>,
}

/// What one `x12 parse` run did.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub files: usize,
    pub events: BTreeMap<&'static str, u64>,
    pub findings: usize,
    pub dead_letters: usize,
    /// Stream files already in the output directory that this run gave no events for, left as
    /// they were.
    pub kept: Vec<PathBuf>,
}

fn codes(
    counts: BTreeMap<String, u64>,
    describe: impl Fn(&str) -> Option<String>,
) -> Vec<CodeCount> {
    counts
        .into_iter()
        .map(|(code, count)| CodeCount {
            description: describe(&code),
            code,
            count,
        })
        .collect()
}

fn unique_report_path(out: &Path, input: &Path, used: &mut BTreeMap<String, u32>) -> PathBuf {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    let n = used.entry(name.clone()).or_default();
    *n += 1;
    if *n == 1 {
        out.join(format!("{name}.findings.json"))
    } else {
        out.join(format!("{name}.{n}.findings.json"))
    }
}

/// Where a stream's events are written until the run ends.
fn pending_path(out: &Path, stream: InputStream) -> PathBuf {
    let mut p = stream_path(out, stream, Format::Json).into_os_string();
    p.push(".partial");
    PathBuf::from(p)
}

/// Parses `inputs` into stream files in `out` (created if needed). A stream file is replaced only
/// when the inputs gave events of that stream, once every input is read: parsing the 277CA files
/// into a directory that holds an earlier parse's claims, or a generated population, leaves those
/// alone (`RunSummary::kept` names them). The dead-letter file is this run's.
pub fn parse_files(inputs: &[PathBuf], out: &Path) -> io::Result<RunSummary> {
    let at =
        |path: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    fs::create_dir_all(out).map_err(|e| at(out, e))?;
    let refdata = RefData::shared();
    let mut writers: BTreeMap<InputStream, BufWriter<File>> = BTreeMap::new();
    for stream in [InputStream::Claims, InputStream::Acks, InputStream::Remits] {
        let path = pending_path(out, stream);
        let f = File::create(&path).map_err(|e| at(&path, e))?;
        writers.insert(stream, BufWriter::with_capacity(1 << 20, f));
    }
    let dead_path = out.join(DEAD_LETTER_FILE);
    let mut dead = BufWriter::new(File::create(&dead_path).map_err(|e| at(&dead_path, e))?);
    let mut summary = RunSummary::default();
    let mut used_names = BTreeMap::new();
    let mut line = Vec::with_capacity(4096);

    for input in inputs {
        let bytes = fs::read(input)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", input.display())))?;
        let name = input.display().to_string();
        let mut events: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let mut plb = Vec::new();
        let mut clp02: BTreeMap<String, u64> = BTreeMap::new();
        let mut carc: BTreeMap<String, u64> = BTreeMap::new();
        let mut stc: BTreeMap<String, u64> = BTreeMap::new();
        let mut remit_findings: BTreeMap<String, u64> = BTreeMap::new();
        let mut remits_with_findings = 0u64;
        let mut write_err: Option<io::Error> = None;

        let counts = parse_stream(
            &bytes,
            &name,
            |e| {
                match &e {
                    InputEvent::Remit(r) => {
                        *clp02.entry(r.claim_status.clone()).or_default() += 1;
                        for a in r.all_adjustments() {
                            *carc
                                .entry(format!("{}-{}", a.group.as_str(), a.reason))
                                .or_default() += 1;
                        }
                        if !r.findings.is_empty() {
                            remits_with_findings += 1;
                        }
                        for f in &r.findings {
                            let code = f.split(':').next().unwrap_or("").to_string();
                            *remit_findings.entry(code).or_default() += 1;
                        }
                    }
                    InputEvent::Ack(a) => {
                        for s in &a.statuses {
                            *stc.entry(s.category.clone()).or_default() += 1;
                        }
                    }
                    _ => {}
                }
                let stream = e.stream();
                *events.entry(stream.name()).or_default() += 1;
                line.clear();
                match &e {
                    InputEvent::Claim(c) => json::encode_line(c, &mut line),
                    InputEvent::Ack(a) => json::encode_line(a, &mut line),
                    InputEvent::Remit(r) => json::encode_line(r, &mut line),
                    InputEvent::Encounter(x) => json::encode_line(x, &mut line),
                    InputEvent::Enrollment(x) => json::encode_line(x, &mut line),
                }
                if write_err.is_none() {
                    if let Some(w) = writers.get_mut(&stream) {
                        if let Err(err) = w.write_all(&line) {
                            write_err = Some(err);
                        }
                    }
                }
            },
            |r| match r {
                Report::Finding(f) => findings.push(f),
                Report::Error(e) => errors.push(e),
                Report::Plb(p) => plb.push(p),
            },
        );
        if let Some(e) = write_err {
            return Err(e);
        }

        for e in &errors {
            let d = DeadLetter {
                source: name.clone(),
                partition: 0,
                offset: e.segment as i64,
                error_kind: if e.code == "invalid_event" {
                    "validation".into()
                } else {
                    "x12_syntax".into()
                },
                message: e.to_string(),
                payload: e.raw(&bytes).to_vec(),
                event_time: 0,
            };
            line.clear();
            json::encode_line(&d, &mut line);
            dead.write_all(&line)?;
        }

        summary.files += 1;
        summary.findings += findings.len();
        summary.dead_letters += errors.len();
        for (k, v) in &events {
            *summary.events.entry(k).or_default() += v;
        }
        let report = FileReport {
            file: name,
            bytes: bytes.len(),
            interchanges: counts.interchanges,
            transactions: counts.transactions,
            segments: counts.segments,
            events,
            remittances_with_findings: remits_with_findings,
            remittance_findings: remit_findings,
            findings,
            errors,
            provider_adjustments: plb,
            claim_payment_status: codes(clp02, |c| {
                refdata.claim_payment_status(c).map(str::to_string)
            }),
            adjustment_reasons: codes(carc, |c| {
                let reason = c.split_once('-').map_or(c, |(_, r)| r);
                refdata.carc(reason).map(|i| i.description.clone())
            }),
            ack_status_categories: codes(stc, |c| {
                refdata.ack_category_description(c).map(str::to_string)
            }),
        };
        let path = unique_report_path(out, input, &mut used_names);
        fs::write(
            &path,
            serde_json::to_vec_pretty(&report).map_err(io::Error::other)?,
        )?;
    }
    dead.flush()?;
    for (stream, mut w) in writers {
        w.flush()?;
        drop(w);
        let pending = pending_path(out, stream);
        let path = stream_path(out, stream, Format::Json);
        if summary.events.get(stream.name()).copied().unwrap_or(0) > 0 {
            fs::rename(&pending, &path).map_err(|e| at(&path, e))?;
        } else {
            fs::remove_file(&pending).map_err(|e| at(&pending, e))?;
            if path.exists() {
                summary.kept.push(path);
            }
        }
    }
    Ok(summary)
}
