//! Loading a `claimwatch replay` output directory into [`Outputs`]: each topic's JSON-lines file
//! folded to the latest record per key.
//!
//! Every output carries a deterministic `output_id`; for the versioned topics it is
//! `<key>:<version>` and a later version supersedes an earlier one (a record whose version is not
//! above the one already held is a redelivered duplicate and is skipped). A readmission whose
//! action is `RETRACTED` removes its index stay's record. The unversioned topics (risk scores,
//! alerts) are keyed by their whole `output_id`, or by the claim for denial risk (the latest
//! submission's score counts).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::{
    ClaimLifecycleUpdate, ClaimStatus, DenialRiskScore, EpochDay, EpochMillis, HighRiskAlert,
    PayerKpi, PayerMonitorAlert, ReadmissionAction, ReadmissionEvent, ReadmissionRiskScore,
};

use super::{topics, ClaimView, FoldedTopic, Outputs, SummaryView};

/// Why a directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{0}: no claimwatch output files (expected <topic>.jsonl files from `claimwatch replay`)"
    )]
    Empty(PathBuf),
}

/// Reads each non-blank line of `<dir>/<topic>.jsonl` as `T`. `Ok(None)` when the file is absent.
fn for_each_line<T: for<'de> Deserialize<'de>>(
    dir: &Path,
    topic: &str,
    mut f: impl FnMut(T),
) -> Result<bool, LoadError> {
    let path = dir.join(format!("{topic}.jsonl"));
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(LoadError::Io { path, source }),
    };
    for (i, line) in BufReader::with_capacity(1 << 20, file).lines().enumerate() {
        let line = line.map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = serde_json::from_str::<T>(&line).map_err(|e| LoadError::Parse {
            path: path.clone(),
            line: i + 1,
            // serde_json's message names the field and position, never the data.
            message: e.to_string(),
        })?;
        f(rec);
    }
    Ok(true)
}

/// Splits `<key>:<version>` when the last segment is a number.
pub fn split_output_id(output_id: &str) -> (&str, Option<i64>) {
    match output_id.rsplit_once(':') {
        Some((key, v)) => match v.parse::<i64>() {
            Ok(v) => (key, Some(v)),
            Err(_) => (output_id, None),
        },
        None => (output_id, None),
    }
}

/// Keeps `rec` under `key` when its version is above the one held (or nothing is held).
fn supersede<T>(map: &mut HashMap<String, (i64, T)>, key: &str, version: i64, rec: T) -> bool {
    match map.get_mut(key) {
        Some((v, _)) if *v >= version => false,
        Some(slot) => {
            *slot = (version, rec);
            true
        }
        None => {
            map.insert(key.to_owned(), (version, rec));
            true
        }
    }
}

/// Widens `range` to hold `t`.
fn widen(range: &mut Option<(EpochMillis, EpochMillis)>, t: EpochMillis) {
    *range = Some(match *range {
        Some((a, b)) => (a.min(t), b.max(t)),
        None => (t, t),
    });
}

/// Folds the claim lifecycle: the latest update per claim plus what the claim's history says
/// (first adjudication, ever rejected, ever acknowledged).
fn fold_claims(dir: &Path, o: &mut Outputs) -> Result<bool, LoadError> {
    let mut claims: HashMap<String, (i64, ClaimView)> = HashMap::new();
    let mut as_of: EpochMillis = i64::MIN;
    let mut period = o.period;
    let present = for_each_line::<ClaimLifecycleUpdate>(dir, topics::CLAIM_LIFECYCLE, |u| {
        as_of = as_of.max(u.event_time);
        widen(&mut period, u.event_time);
        let (key, _) = split_output_id(&u.output_id);
        let prev = claims.get(key).map(|(_, c)| c.clone());
        let mut view = ClaimView::from_update(&u);
        if let Some(p) = prev {
            // History carried over from the earlier versions.
            view.first_adjudication = p.first_adjudication.or(view.first_adjudication);
            view.ever_rejected |= p.ever_rejected;
            view.acknowledged |= p.acknowledged;
        }
        supersede(&mut claims, key, u.version, view);
    })?;
    let mut v: Vec<ClaimView> = claims.into_values().map(|(_, c)| c).collect();
    // A deterministic order (the map's is not): by submission day, then the figures.
    v.sort_by(|a, b| {
        (a.submitted_date, a.billed_cents, a.status).cmp(&(
            b.submitted_date,
            b.billed_cents,
            b.status,
        ))
    });
    o.claims = v;
    o.as_of = (as_of != i64::MIN).then_some(as_of);
    o.period = period;
    Ok(present)
}

/// Folds the readmissions: latest version per (member, index stay); a retraction removes it.
fn fold_readmissions(dir: &Path, o: &mut Outputs) -> Result<bool, LoadError> {
    let mut map: HashMap<String, (i64, Option<ReadmissionEvent>)> = HashMap::new();
    let period = &mut o.period;
    let present = for_each_line::<ReadmissionEvent>(dir, topics::READMISSIONS, |e| {
        widen(period, e.event_time);
        let (key, _) = split_output_id(&e.output_id);
        let key = key.to_owned();
        let version = e.version;
        let rec = (e.action != ReadmissionAction::Retracted).then_some(e);
        supersede(&mut map, &key, version, rec);
    })?;
    let mut v: Vec<ReadmissionEvent> = map.into_values().filter_map(|(_, e)| e).collect();
    v.sort_by(|a, b| {
        (a.index_discharge_date, a.days_between, &a.index_dx_group).cmp(&(
            b.index_discharge_date,
            b.days_between,
            &b.index_dx_group,
        ))
    });
    o.readmissions = v;
    Ok(present)
}

/// Folds an unversioned topic: the last record per key wins (file order is emission order).
fn fold_last<T: for<'de> Deserialize<'de>>(
    dir: &Path,
    topic: &str,
    key: impl Fn(&T) -> String,
) -> Result<Option<Vec<T>>, LoadError> {
    let mut seq = 0i64;
    let mut map: HashMap<String, (i64, T)> = HashMap::new();
    let present = for_each_line::<T>(dir, topic, |r| {
        seq += 1;
        let k = key(&r);
        supersede(&mut map, &k, seq, r);
    })?;
    if !present {
        return Ok(None);
    }
    let mut v: Vec<(i64, T)> = map.into_values().collect();
    v.sort_by_key(|(s, _)| *s);
    Ok(Some(v.into_iter().map(|(_, r)| r).collect()))
}

/// Folds the payer KPI windows: the latest version per (payer, granularity, window).
fn fold_payer_kpis(dir: &Path, o: &mut Outputs) -> Result<bool, LoadError> {
    let mut map: HashMap<String, (i64, PayerKpi)> = HashMap::new();
    let present = for_each_line::<PayerKpi>(dir, topics::PAYER_KPIS, |k| {
        let (key, _) = split_output_id(&k.output_id);
        let key = key.to_owned();
        let version = k.version;
        supersede(&mut map, &key, version, k);
    })?;
    let mut v: Vec<PayerKpi> = map.into_values().map(|(_, k)| k).collect();
    v.sort_by(|a, b| {
        (&a.payer_id, a.granularity, a.window_start).cmp(&(
            &b.payer_id,
            b.granularity,
            b.window_start,
        ))
    });
    o.payer_kpis = v;
    Ok(present)
}

/// Keeps every version of the department records of `claimwatch.provider-kpis` (the folded
/// topic keeps only the latest, whose window ends on a different day for each department).
/// Records of another version's shape are skipped here (the folded topic still has them).
fn fold_department_history(dir: &Path, o: &mut Outputs) -> Result<(), LoadError> {
    let mut map: BTreeMap<String, Vec<crate::model::ProviderKpi>> = BTreeMap::new();
    for_each_line::<serde_json::Value>(dir, topics::PROVIDER_KPIS, |v| {
        if v.get("level").and_then(|l| l.as_str()) != Some("DEPARTMENT") {
            return;
        }
        if let Ok(k) = serde_json::from_value::<crate::model::ProviderKpi>(v) {
            map.entry(k.key.clone()).or_default().push(k);
        }
    })?;
    for v in map.values_mut() {
        // Oldest first; a redelivered version once.
        v.sort_by_key(|k| k.version);
        v.dedup_by_key(|k| k.version);
    }
    o.department_history = map;
    Ok(())
}

/// Folds a topic this version has no typed view of (the analytics topics still being added):
/// records as JSON, keyed by `output_id` without its trailing `:<version>`, later versions
/// superseding earlier ones, `"action": "RETRACTED"` removing.
pub fn fold_generic(dir: &Path, topic: &str) -> Result<Option<FoldedTopic>, LoadError> {
    let mut seq = 0i64;
    let mut lines = 0u64;
    let mut event_range = None;
    let mut map: HashMap<String, (i64, Option<serde_json::Value>)> = HashMap::new();
    let present = for_each_line::<serde_json::Value>(dir, topic, |r| {
        seq += 1;
        lines += 1;
        if let Some(t) = r.get("event_time").and_then(serde_json::Value::as_i64) {
            widen(&mut event_range, t);
        }
        let id = r
            .get("output_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("#{seq}"));
        let (key, suffix) = split_output_id(&id);
        let version = r
            .get("version")
            .and_then(serde_json::Value::as_i64)
            .or(suffix)
            .unwrap_or(seq);
        let retracted = r.get("action").and_then(|a| a.as_str()) == Some("RETRACTED");
        supersede(&mut map, key, version, (!retracted).then_some(r));
    })?;
    if !present {
        return Ok(None);
    }
    let mut records: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (k, (_, r)) in map {
        if let Some(r) = r {
            records.insert(k, r);
        }
    }
    Ok(Some(FoldedTopic {
        lines,
        records,
        event_range,
    }))
}

/// Loads a replay output directory.
pub fn load_dir(dir: &Path) -> Result<Outputs, LoadError> {
    let mut o = Outputs::default();
    let mut any = false;
    let mut mark = |o: &mut Outputs, topic: &str, present: bool| {
        if present {
            o.present.insert(topic.to_owned());
            any = true;
        }
    };
    let p = fold_claims(dir, &mut o)?;
    mark(&mut o, topics::CLAIM_LIFECYCLE, p);
    let p = fold_readmissions(dir, &mut o)?;
    mark(&mut o, topics::READMISSIONS, p);
    if let Some(v) = fold_last::<DenialRiskScore>(dir, topics::DENIAL_RISK, |r| r.claim_id.clone())?
    {
        for r in &v {
            widen(&mut o.period, r.event_time);
        }
        o.denial_risk = v;
        mark(&mut o, topics::DENIAL_RISK, true);
    }
    if let Some(v) =
        fold_last::<ReadmissionRiskScore>(dir, topics::READMISSION_RISK, |r| r.output_id.clone())?
    {
        for r in &v {
            widen(&mut o.period, r.event_time);
        }
        o.readmission_risk = v;
        mark(&mut o, topics::READMISSION_RISK, true);
    }
    if let Some(v) =
        fold_last::<HighRiskAlert>(dir, topics::HIGH_RISK_ALERTS, |r| r.output_id.clone())?
    {
        o.high_risk_alerts = v.len() as u64;
        mark(&mut o, topics::HIGH_RISK_ALERTS, true);
    }
    let p = fold_payer_kpis(dir, &mut o)?;
    mark(&mut o, topics::PAYER_KPIS, p);
    if let Some(v) =
        fold_last::<PayerMonitorAlert>(dir, topics::PAYER_ALERTS, |r| r.output_id.clone())?
    {
        o.payer_alerts = v;
        mark(&mut o, topics::PAYER_ALERTS, true);
    }
    let mut dead = 0u64;
    let p = for_each_line::<serde_json::Value>(dir, topics::DEAD_LETTER, |_| dead += 1)?;
    o.dead_letters = dead;
    mark(&mut o, topics::DEAD_LETTER, p);
    for t in topics::ANALYTICS {
        if let Some(f) = fold_generic(dir, t)? {
            o.analytics.insert((*t).to_owned(), f);
            mark(&mut o, t, true);
        }
    }
    // Care gaps are event-driven too (an encounter, a claim's dose, a due date reached).
    if let Some((a, b)) = o
        .analytics
        .get(topics::CARE_GAPS)
        .and_then(|f| f.event_range)
    {
        widen(&mut o.period, a);
        widen(&mut o.period, b);
    }
    fold_department_history(dir, &mut o)?;
    let summary_path = dir.join("replay-summary.json");
    match std::fs::read(&summary_path) {
        Ok(bytes) => {
            o.summary = Some(serde_json::from_slice::<SummaryView>(&bytes).map_err(|e| {
                LoadError::Parse {
                    path: summary_path.clone(),
                    line: e.line(),
                    message: e.to_string(),
                }
            })?);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(LoadError::Io {
                path: summary_path,
                source,
            })
        }
    }
    if !any {
        return Err(LoadError::Empty(dir.to_owned()));
    }
    Ok(o)
}

/// Days from a claim's submission day to the day of `as_of`, for the A/R aging.
pub(super) fn age_days(as_of: EpochMillis, submitted: EpochDay) -> i32 {
    crate::model::day_of(as_of) - submitted
}

impl ClaimView {
    fn from_update(u: &ClaimLifecycleUpdate) -> Self {
        Self {
            status: u.status,
            payer_id: u.payer_id.clone(),
            submitted_date: u.submitted_date,
            billed_cents: u.billed_cents,
            expected_cents: u.expected_cents,
            paid_cents: u.paid_to_date_cents,
            remit_count: u.remit_count,
            first_pass_paid: u.first_pass_paid,
            days_to_first_payment: u.days_to_first_payment,
            first_adjudication: (u.remit_count > 0).then_some(u.status),
            ever_rejected: u.status == ClaimStatus::Rejected,
            acknowledged: u.ack_count > 0,
            denial_category: u.denial_category.clone(),
            denied_cents: if matches!(u.status, ClaimStatus::Denied | ClaimStatus::PartiallyPaid) {
                u.adjustments_by_category
                    .iter()
                    .filter(|a| {
                        a.amount_cents > 0
                            && crate::refdata::CarcCategory::from_name(&a.code)
                                .is_some_and(crate::refdata::CarcCategory::is_denial)
                    })
                    .map(|a| a.amount_cents)
                    .sum()
            } else {
                0
            },
        }
    }
}
