//! File replay: feeds stream files through the same core the service runs, in event-time order,
//! and writes each output stream as JSON lines plus a summary.
//!
//! - **Order.** The four input files are merged by `(event_time, stream, record number)`: a total,
//!   deterministic order, so the same input gives byte-identical output.
//! - **Partitions.** Keys are hashed into `partitions` exactly as the Kafka producer does
//!   ([`partition_for`]), each partition with its own state, watermark and timers, so replay and the
//!   service process each partition's events the same way.
//! - **Pieces.** With `--state DIR`, state is checkpointed (sled) together with the input offsets
//!   and the output files' lengths. `--stop-after N` stops after N records (checkpointing first);
//!   running again resumes from the checkpoint, truncating the outputs to the checkpointed
//!   lengths, and the final output equals one uninterrupted run (tested).
//! - **Bad records** are written to `claimwatch.dead-letter.jsonl` with the reason; the run goes on.

pub mod files;
mod summary;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use summary::{OutputTally, Summary};

use crate::codec::json;
use crate::config::CoreConfig;
use crate::core::{partition_for, Engine, Partition};
use crate::model::{DeadLetter, InputStream, OutputEvent};
use crate::refdata::RefData;
use crate::state::{PartitionStore, StateDb};
use crate::Error;
use files::{RawRecord, StreamReader};

/// What to replay and where.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub input: PathBuf,
    pub out: PathBuf,
    /// Durable state directory; without it state is kept in memory only.
    pub state: Option<PathBuf>,
    pub config: CoreConfig,
    /// Stop (after a checkpoint) once this many records have been read in this run.
    pub stop_after: Option<u64>,
    /// At the end of the input, emit the payer-monitor windows still open (their grace not
    /// passed), so the data's last hours and day are reported. The CLI does; the service leaves
    /// them open until its watermark passes them, so a comparison with the service turns it off.
    pub close_open_windows: bool,
}

/// How a replay ended.
#[derive(Debug)]
pub struct ReplayReport {
    /// True when `stop_after` ended the run before the input did.
    pub stopped_early: bool,
    pub summary: Summary,
    /// The model monitoring windows at the end, merged over partitions: `[denial, readmission]`
    /// (as the service's metrics report them).
    pub monitor: [Option<crate::score::monitor::ModelSnapshot>; 2],
}

/// The output topics replay writes, in a fixed order.
pub const OUTPUT_FILES: [&str; 15] = [
    "claimwatch.claim-lifecycle",
    "claimwatch.readmissions",
    "claimwatch.dead-letter",
    "claimwatch.denial-risk",
    "claimwatch.readmission-risk",
    "claimwatch.alerts.high-risk-discharge",
    "claimwatch.payer-kpis",
    "claimwatch.alerts.payer-monitor",
    "claimwatch.readmission-summary",
    "claimwatch.intervention-roi",
    "claimwatch.care-gaps",
    "claimwatch.member-risk",
    "claimwatch.cash-forecast",
    "claimwatch.provider-kpis",
    "claimwatch.utilization-forecast",
];

/// JSON-lines output files whose lengths take part in the checkpoint.
/// Training store files written when `scoring.collect_training` is on (not resumable: a replay
/// that stops early and resumes rewrites them from the resume point; train from a full replay).
pub const TRAINING_FILES: [&str; 2] = ["training.denial.jsonl", "training.readmission.jsonl"];

struct Sinks {
    dir: PathBuf,
    files: BTreeMap<&'static str, (BufWriter<File>, u64)>,
    counts: BTreeMap<&'static str, u64>,
    buf: Vec<u8>,
}

impl Sinks {
    /// Opens the output files, truncated to `positions` (a resume) or emptied (a fresh run).
    /// On a resume the counts start at the records the kept part of each file holds, so the
    /// summary covers the whole replay.
    fn open(dir: &Path, positions: Option<&BTreeMap<String, u64>>) -> io::Result<Self> {
        let at = |path: &Path, e: io::Error| {
            io::Error::new(e.kind(), format!("{}: {e}", path.display()))
        };
        fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
        let mut files = BTreeMap::new();
        let mut counts = BTreeMap::new();
        for topic in OUTPUT_FILES {
            let path = dir.join(format!("{topic}.jsonl"));
            let len = positions.and_then(|p| p.get(topic).copied()).unwrap_or(0);
            let file = OpenOptions::new()
                .create(true)
                .read(true)
                .write(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| at(&path, e))?;
            file.set_len(len).map_err(|e| at(&path, e))?;
            let mut file = file;
            use std::io::{Read, Seek};
            if len > 0 {
                let mut lines = 0u64;
                let mut buf = vec![0u8; 1 << 16];
                let mut kept = (&mut file).take(len);
                loop {
                    let n = kept.read(&mut buf).map_err(|e| at(&path, e))?;
                    if n == 0 {
                        break;
                    }
                    lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
                }
                counts.insert(topic, lines);
            }
            file.seek(io::SeekFrom::Start(len))
                .map_err(|e| at(&path, e))?;
            files.insert(topic, (BufWriter::with_capacity(1 << 20, file), len));
        }
        Ok(Self {
            dir: dir.to_owned(),
            files,
            counts,
            buf: Vec::with_capacity(4096),
        })
    }

    fn write(&mut self, event: &OutputEvent) -> io::Result<()> {
        self.buf.clear();
        match event {
            OutputEvent::ClaimLifecycle(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::Readmission(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::DeadLetter(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::DenialRisk(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::ReadmissionRisk(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::HighRiskAlert(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::PayerKpi(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::PayerMonitorAlert(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::ReadmissionSummary(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::InterventionRoi(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::CareGap(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::MemberRisk(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::CashForecast(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::ProviderKpi(e) => json::encode_line(e, &mut self.buf),
            OutputEvent::UtilizationForecast(e) => json::encode_line(e, &mut self.buf),
        }
        let topic = event.topic();
        let Some((file, len)) = self.files.get_mut(topic) else {
            return Err(io::Error::other(format!("no output file for {topic}")));
        };
        file.write_all(&self.buf)?;
        *len += self.buf.len() as u64;
        *self.counts.entry(topic).or_default() += 1;
        Ok(())
    }

    /// Flushes and returns the file lengths.
    fn positions(&mut self) -> io::Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for (topic, (file, len)) in &mut self.files {
            file.flush()?;
            out.insert((*topic).to_owned(), *len);
        }
        Ok(out)
    }
}

/// Runs a replay with the models compiled into the binary.
pub fn run(opts: &ReplayOptions) -> Result<ReplayReport, Error> {
    run_with_models(opts, crate::score::Models::embedded())
}

/// Runs a replay scoring with `models` (e.g. a trained directory's, see `score::reload`).
pub fn run_with_models(
    opts: &ReplayOptions,
    models: crate::score::Models,
) -> Result<ReplayReport, Error> {
    opts.config
        .validate()
        .map_err(|p| Error::Config(p.join("; ")))?;
    let refdata = RefData::shared();
    let engine = Engine::with_models(opts.config.clone(), refdata, models);
    let n = opts.config.partitions;
    let db = opts.state.as_deref().map(StateDb::open).transpose()?;
    let mut partitions = Vec::with_capacity(n as usize);
    for id in 0..n as i32 {
        let store = match &db {
            Some(db) => db.partition(id)?,
            None => PartitionStore::hot_only(id),
        };
        partitions.push(Partition::open(id, store, &engine)?);
    }
    // Every partition checkpoints the same offsets and sink positions; disagreement means a crash
    // in the middle of a checkpoint, which replay does not try to repair.
    let resume_offsets = partitions[0].offsets().clone();
    let resume_sinks = partitions[0].sinks().clone();
    if partitions
        .iter()
        .any(|p| p.offsets() != &resume_offsets || p.sinks() != &resume_sinks)
    {
        return Err(Error::Internal("partition checkpoints disagree (interrupted checkpoint): delete the state directory and replay again".into()));
    }
    let resuming = !resume_offsets.is_empty();

    // The input first: nothing in the output directory is touched unless there is something to
    // replay (a mistyped --input must not empty an earlier replay's outputs).
    if !opts.input.is_dir() {
        return Err(Error::Config(format!(
            "input directory {} does not exist (or is not a directory)",
            opts.input.display()
        )));
    }
    let mut readers: Vec<StreamReader> = Vec::new();
    for stream in InputStream::ALL {
        if let Some(r) = StreamReader::open(&opts.input, stream)? {
            readers.push(r);
        }
    }
    if readers.is_empty() {
        return Err(Error::Config(format!(
            "no input stream files in {} (expected ehr.claims.jsonl, x12.835.avro, ...: see README, Replay)",
            opts.input.display()
        )));
    }
    let mut heads: Vec<Option<RawRecord>> = Vec::with_capacity(readers.len());
    for r in &mut readers {
        heads.push(next_unread(r, &resume_offsets)?);
    }
    if resuming && heads.iter().all(Option::is_none) {
        return Err(Error::Config(format!(
            "nothing to replay: the state in {} has already read every record of {} (a finished \
             replay, or the state of another input); use a new --state directory to replay from the start",
            opts.state.as_deref().unwrap_or(Path::new("?")).display(),
            opts.input.display()
        )));
    }
    let mut sinks = Sinks::open(&opts.out, resuming.then_some(&resume_sinks))?;

    let mut read_this_run = 0u64;
    // A resume counts what the earlier pieces read and dead-lettered too.
    let mut records_per_stream: BTreeMap<String, u64> = readers
        .iter()
        .filter_map(|r| {
            let name = r.stream().name();
            Some((
                name.to_owned(),
                u64::try_from(*resume_offsets.get(name)?).ok()?,
            ))
        })
        .collect();
    let mut dead_letters = sinks
        .counts
        .get("claimwatch.dead-letter")
        .copied()
        .unwrap_or(0);
    let (mut out, mut costs) = (Vec::with_capacity(16), Vec::with_capacity(4));
    let mut stopped_early = false;
    let mut tally = OutputTally::default();
    if resuming {
        // The summary covers the whole replay: re-read what earlier pieces emitted.
        let path = opts.out.join("claimwatch.claim-lifecycle.jsonl");
        if let Ok(text) = fs::read(&path) {
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if let Ok(u) = json::decode::<crate::model::ClaimLifecycleUpdate>(line) {
                    tally.observe(&OutputEvent::ClaimLifecycle(Box::new(u)));
                }
            }
        }
    }
    let checkpoint_every = opts.config.checkpoint_every_events;
    // The training store: matured examples (features at scoring time + label), one file per model.
    let mut training = if opts.config.scoring.collect_training {
        let open = |name: &str| -> io::Result<BufWriter<File>> {
            Ok(BufWriter::new(File::create(opts.out.join(name))?))
        };
        Some((open(TRAINING_FILES[0])?, open(TRAINING_FILES[1])?))
    } else {
        None
    };
    // Each step takes the head with the smallest (time, stream, offset).
    while let Some(i) = (0..heads.len())
        .filter(|i| heads[*i].is_some())
        .min_by_key(|i| {
            heads[*i]
                .as_ref()
                .map(|r| (r.order_time, r.stream, r.offset))
        })
    {
        let rec = heads[i].take().expect("selected head exists");
        heads[i] = next_unread(&mut readers[i], &resume_offsets)?;
        let source = rec.stream.name();
        *records_per_stream.entry(source.to_owned()).or_default() += 1;
        match rec.event {
            Ok(event) => {
                let p = partition_for(event.key(), n) as usize;
                partitions[p].apply(&engine, &event, source, rec.offset, &mut out, &mut costs);
                // Re-keyed records (paid amounts to the member flow, payer facts to the payer
                // flow, stay outcomes to the population flow) go straight to the partition that
                // owns their key; a paid amount can produce population facts in turn.
                route_rekeyed(&engine, &mut partitions, &mut costs, &mut out);
            }
            Err(e) => {
                dead_letters += 1;
                tracing::debug!(source, offset = rec.offset, error = %e, "dead-lettered input record");
                out.push(OutputEvent::DeadLetter(DeadLetter {
                    source: source.to_owned(),
                    partition: 0,
                    offset: rec.offset,
                    error_kind: e.code().to_owned(),
                    message: e.to_string(),
                    payload: rec.raw,
                    event_time: if rec.order_time == i64::MIN {
                        0
                    } else {
                        rec.order_time
                    },
                }));
            }
        }
        for p in &mut partitions {
            p.note_offset(source, rec.offset);
        }
        for o in out.drain(..) {
            tally.observe(&o);
            sinks.write(&o)?;
        }
        if let Some((denial, readmission)) = training.as_mut() {
            for p in &mut partitions {
                for ex in p.take_training() {
                    let w = match ex.kind {
                        crate::score::ModelKind::Denial => &mut *denial,
                        crate::score::ModelKind::Readmission => &mut *readmission,
                    };
                    serde_json::to_writer(&mut *w, &ex)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    w.write_all(b"\n")?;
                }
            }
        }
        read_this_run += 1;
        let stop = opts.stop_after.is_some_and(|s| read_this_run >= s);
        if db.is_some() && (read_this_run.is_multiple_of(checkpoint_every) || stop) {
            checkpoint_all(&mut partitions, &mut sinks)?;
        }
        if stop {
            stopped_early = heads.iter().any(Option::is_some);
            break;
        }
    }
    if !stopped_early {
        // The end of the input: the population groups changed on the last day are emitted.
        let latest_utilization = partitions
            .iter()
            .filter_map(|p| p.latest_utilization_fact())
            .max();
        for p in &mut partitions {
            p.flush_population(&engine, &mut out);
            p.close_cash(&engine, &mut out);
            if opts.close_open_windows {
                p.close_payer_windows(&engine, &mut out);
            }
            p.close_providers(&engine, &mut out);
            if let Some(t) = latest_utilization {
                p.finish_utilization(&engine, t, &mut out);
            }
        }
        for o in out.drain(..) {
            tally.observe(&o);
            sinks.write(&o)?;
        }
    }
    if let Some((mut denial, mut readmission)) = training {
        denial.flush()?;
        readmission.flush()?;
    }
    if db.is_some() {
        checkpoint_all(&mut partitions, &mut sinks)?;
    } else {
        sinks.positions()?;
    }
    let summary = Summary::compute(
        &engine,
        &partitions,
        records_per_stream,
        dead_letters,
        &sinks.counts,
        &tally,
    );
    let path = sinks.dir.join("replay-summary.json");
    fs::write(
        &path,
        serde_json::to_vec_pretty(&summary).map_err(|e| Error::Internal(e.to_string()))?,
    )?;
    let monitor = std::array::from_fn(|k| {
        crate::score::monitor::merge_snapshots(
            partitions
                .iter()
                .filter_map(|p| p.score_tables().monitor.model(k).snapshot())
                .collect::<Vec<_>>()
                .iter(),
        )
    });
    Ok(ReplayReport {
        stopped_early,
        summary,
        monitor,
    })
}

/// Applies re-keyed records (and those they produce) in the partitions owning their keys, in
/// production order.
pub fn route_rekeyed(
    engine: &Engine,
    partitions: &mut [Partition],
    rekeyed: &mut Vec<crate::model::Rekeyed>,
    out: &mut Vec<OutputEvent>,
) {
    let n = partitions.len() as u32;
    let mut queue: std::collections::VecDeque<_> = rekeyed.drain(..).collect();
    let mut more = Vec::new();
    while let Some(r) = queue.pop_front() {
        let q = partition_for(r.key(), n) as usize;
        partitions[q].apply_rekeyed(engine, &r, out);
        partitions[q].take_rekeyed(&mut more);
        queue.extend(more.drain(..));
    }
}

fn checkpoint_all(partitions: &mut [Partition], sinks: &mut Sinks) -> Result<(), Error> {
    let positions = sinks.positions()?;
    for p in partitions {
        p.checkpoint(&positions)?;
    }
    Ok(())
}

/// The next record of `reader` not already reflected by the checkpoint.
fn next_unread(
    reader: &mut StreamReader,
    resume: &BTreeMap<String, i64>,
) -> io::Result<Option<RawRecord>> {
    for rec in reader.by_ref() {
        let rec = rec?;
        let done = resume.get(rec.stream.name()).copied().unwrap_or(0);
        if rec.offset >= done {
            return Ok(Some(rec));
        }
    }
    Ok(None)
}
