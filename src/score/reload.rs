//! Model hot reload: a model directory polled for new artifacts.
//!
//! The service scores with the models of `model_dir` (`denial.json`, `readmission.json`, and the
//! high-cost member model `cost.json`) and polls the directory every `model_reload_interval_ms`.
//! A file whose size, modification time or content changed is parsed and checked
//! ([`LogisticModel::from_json`]: format, kind, feature spec, drift reference;
//! [`CostModel::parse`]: format and features); a good one is swapped into the [`Scorer`] (every
//! partition scores the next event with it, see [`Scorer::swap_model`]) or the [`MemberRisk`]
//! flow (the next refresh of each member predicts with it); a malformed one is **refused**: an error is
//! logged with the file and the reason, the caller counts it, and the model in use keeps
//! scoring. A file that disappears leaves the model in use in place.
//!
//! Polling, rather than file notifications, works the same on every filesystem (a ConfigMap
//! volume's symlink swap, NFS) and costs two `stat` calls per interval.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::model::{LogisticModel, ModelKind};
use super::{Models, Scorer};
use crate::memberrisk::{CostModel, MemberRisk};

/// A model file of the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Artifact {
    Denial,
    Readmission,
    /// The high-cost member model (`memberrisk`).
    Cost,
}

impl Artifact {
    pub const ALL: [Artifact; 3] = [Artifact::Denial, Artifact::Readmission, Artifact::Cost];

    /// The `model` label of `claimwatch_model_reloads_total` and the file's stem.
    pub fn as_str(self) -> &'static str {
        match self {
            Artifact::Denial => "denial",
            Artifact::Readmission => "readmission",
            Artifact::Cost => "cost",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn risk_kind(self) -> Option<ModelKind> {
        match self {
            Artifact::Denial => Some(ModelKind::Denial),
            Artifact::Readmission => Some(ModelKind::Readmission),
            Artifact::Cost => None,
        }
    }
}

/// A parsed, checked model file.
enum Parsed {
    Risk(LogisticModel),
    Cost(CostModel),
}

impl Parsed {
    fn version(&self) -> &str {
        match self {
            Parsed::Risk(m) => &m.version,
            Parsed::Cost(m) => &m.version,
        }
    }
}

/// What a poll found for one model file.
#[derive(Clone, Debug, PartialEq)]
pub enum ReloadOutcome {
    /// A new version was swapped in.
    Loaded { kind: Artifact, version: String },
    /// The file changed but could not be used; the previous model keeps scoring.
    Refused { kind: Artifact, reason: String },
}

/// What identifies a file's content cheaply (size and modification time), plus a hash of the
/// content last read, so a rewrite within the clock's resolution is still noticed once read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    hash: u64,
}

/// Watches a model directory (see the module doc).
#[derive(Debug)]
pub struct ModelWatcher {
    dir: PathBuf,
    seen: [Option<Seen>; 3],
}

impl ModelWatcher {
    /// Loads the directory's models for the start of the service (absent files: the transparent
    /// fallback for that model). Unlike a reload, a malformed file here is an error: the service
    /// does not start on a model directory it cannot read.
    pub fn start(dir: &Path) -> Result<(Self, Models), String> {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
        let mut w = Self {
            dir: dir.to_owned(),
            seen: [None; 3],
        };
        let mut models = Models::none();
        for kind in Artifact::ALL {
            let path = w.path(kind);
            let Some((seen, text)) = read(&path)? else {
                continue;
            };
            match parse(&text, kind).map_err(|e| format!("{}: {e}", path.display()))? {
                Parsed::Risk(m) if kind == Artifact::Denial => models.denial = Some(Arc::new(m)),
                Parsed::Risk(m) => models.readmission = Some(Arc::new(m)),
                Parsed::Cost(m) => models.cost = Some(Arc::new(m)),
            }
            w.seen[kind.index()] = Some(seen);
        }
        Ok((w, models))
    }

    fn path(&self, kind: Artifact) -> PathBuf {
        self.dir.join(format!("{}.json", kind.as_str()))
    }

    /// Checks the directory once and swaps changed, valid models into `scorer` (risk models)
    /// and `member_risk` (the cost model).
    pub fn poll(&mut self, scorer: &Scorer, member_risk: &MemberRisk) -> Vec<ReloadOutcome> {
        let mut out = Vec::new();
        for kind in Artifact::ALL {
            let i = kind.index();
            let path = self.path(kind);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // absent (or unreadable for now): keep the model in use
            };
            if let Some(s) = self.seen[i] {
                if s.len == meta.len() && s.modified == meta.modified().ok() {
                    continue;
                }
            }
            let (seen, text) = match read(&path) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(reason) => {
                    out.push(ReloadOutcome::Refused { kind, reason });
                    continue;
                }
            };
            let same_content = self.seen[i].is_some_and(|s| s.hash == seen.hash);
            self.seen[i] = Some(seen);
            if same_content {
                continue; // touched, not changed
            }
            match parse(&text, kind) {
                Ok(m) => {
                    let version = m.version().to_owned();
                    match m {
                        Parsed::Risk(m) => scorer.swap_model(m.kind, Arc::new(m)),
                        Parsed::Cost(m) => member_risk.swap_model(Arc::new(m)),
                    }
                    out.push(ReloadOutcome::Loaded { kind, version });
                }
                Err(reason) => out.push(ReloadOutcome::Refused {
                    kind,
                    reason: format!("{}: {reason}", path.display()),
                }),
            }
        }
        out
    }
}

fn read(path: &Path) -> Result<Option<(Seen, String)>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some((
        Seen {
            len: meta.len(),
            modified: meta.modified().ok(),
            hash: crate::state::fingerprint(&text),
        },
        text,
    )))
}

fn parse(text: &str, kind: Artifact) -> Result<Parsed, String> {
    let Some(risk) = kind.risk_kind() else {
        return CostModel::parse(text)
            .map(Parsed::Cost)
            .map_err(|e| e.to_string());
    };
    let m = LogisticModel::from_json(text)?;
    if m.kind != risk {
        return Err(format!("holds a {} model", m.kind.as_str()));
    }
    Ok(Parsed::Risk(m))
}
