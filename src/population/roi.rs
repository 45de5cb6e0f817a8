//! Intervention ROI arithmetic (pure): used by the population flow for
//! `claimwatch.intervention-roi` and by `claimwatch roi` for the what-if.
//!
//! For an intervention (cost per member `c`, expected relative reduction `e`) applied to the
//! matured index discharges of tier `min_tier` and above:
//! - members targeted `n` = those discharges (a member discharged twice counts twice),
//! - expected readmissions = Σ p (calibrated probabilities at discharge),
//! - expected avoided = e × Σ p,
//! - gross savings = Σ over diagnosis groups g of e × Σ p(g) × the observed average paid amount of
//!   an unplanned readmission after an index stay of group g (the population's average when g has
//!   no paid readmission yet),
//! - programme cost = n × c, net = gross − cost, ROI = net / cost.
//!
//! The best cut-off is the one with the largest net savings (the narrower one on a tie).

use std::collections::BTreeMap;

use crate::config::Intervention;
use crate::model::{EpochMillis, InterventionRoi, RiskTier, RoiCutoff};

/// Tier cut-offs, narrowest first.
pub const CUTOFFS: [RiskTier; 3] = [RiskTier::High, RiskTier::Medium, RiskTier::Low];

/// Upper-case name of a tier (as in the Avro enum).
pub fn tier_name(t: RiskTier) -> &'static str {
    match t {
        RiskTier::Low => "LOW",
        RiskTier::Medium => "MEDIUM",
        RiskTier::High => "HIGH",
    }
}

/// A tier from its upper-case name.
pub fn tier_from(name: &str) -> Option<RiskTier> {
    match name {
        "LOW" => Some(RiskTier::Low),
        "MEDIUM" => Some(RiskTier::Medium),
        "HIGH" => Some(RiskTier::High),
        _ => None,
    }
}

/// What the ROI is computed from, in a deterministic order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoiInputs {
    /// (tier, diagnosis group) -> (matured index stays, Σ probability in millionths).
    pub cells: BTreeMap<(RiskTier, String), (i64, i64)>,
    /// Diagnosis group -> (paid amount of unplanned readmissions with a known amount, how many).
    pub paid_by_dx: BTreeMap<String, (i64, i64)>,
}

impl RoiInputs {
    fn average_paid(&self, dx: &str) -> f64 {
        let avg = |(sum, n): (i64, i64)| (n > 0).then(|| sum as f64 / n as f64);
        self.paid_by_dx
            .get(dx)
            .copied()
            .and_then(avg)
            .or_else(|| {
                let all = self
                    .paid_by_dx
                    .values()
                    .fold((0, 0), |(s, n), (a, b)| (s + a, n + b));
                avg(all)
            })
            .unwrap_or(0.0)
    }
}

/// The ROI of one intervention at each cut-off.
pub fn compute(
    iv: &Intervention,
    inputs: &RoiInputs,
    event_time: EpochMillis,
    version: i64,
) -> InterventionRoi {
    let effect = iv.expected_relative_reduction;
    let cutoffs: Vec<RoiCutoff> = CUTOFFS
        .iter()
        .map(|&min_tier| {
            let (mut n, mut p_micros, mut gross) = (0i64, 0i64, 0.0f64);
            for ((tier, dx), (stays, p)) in &inputs.cells {
                if *tier < min_tier {
                    continue;
                }
                n += stays;
                p_micros += p;
                gross += effect * (*p as f64 / 1e6) * inputs.average_paid(dx);
            }
            let expected = p_micros as f64 / 1e6;
            let gross_savings_cents = gross.round() as i64;
            let programme_cost_cents = n * iv.cost_cents;
            let net = gross_savings_cents - programme_cost_cents;
            RoiCutoff {
                min_tier,
                members_targeted: n,
                expected_readmissions: round4(expected),
                expected_avoided: round4(effect * expected),
                gross_savings_cents,
                programme_cost_cents,
                net_savings_cents: net,
                roi: (programme_cost_cents > 0)
                    .then(|| round4(net as f64 / programme_cost_cents as f64)),
            }
        })
        .collect();
    let best = cutoffs
        .iter()
        .fold(None::<&RoiCutoff>, |b, c| match b {
            Some(b) if b.net_savings_cents >= c.net_savings_cents => Some(b),
            _ => Some(c),
        })
        .cloned()
        .unwrap_or_else(|| cutoffs[0].clone());
    let id = iv.key();
    InterventionRoi {
        output_id: format!("{id}:{version}"),
        intervention_id: id,
        version,
        event_time,
        name: iv.name.clone(),
        cost_per_member_cents: iv.cost_cents,
        expected_relative_reduction: iv.expected_relative_reduction,
        source: iv.source.clone(),
        best_min_tier: best.min_tier,
        best_net_savings_cents: best.net_savings_cents,
        best_roi: best.roi,
        cutoffs,
    }
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// One funded (intervention, tier) pair of a plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Funded {
    pub intervention_id: String,
    pub tier: RiskTier,
    pub members: i64,
    pub cost_cents: i64,
    pub expected_avoided: f64,
    pub gross_savings_cents: i64,
    pub net_savings_cents: i64,
}

/// A what-if plan: which interventions to fund for which tier.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Plan {
    pub budget_cents: Option<i64>,
    pub funded: Vec<Funded>,
    pub cost_cents: i64,
    pub gross_savings_cents: i64,
    pub net_savings_cents: i64,
    pub expected_avoided: f64,
}

/// Chooses interventions per tier within a budget. Each tier's discharges get at most one
/// intervention. The candidates are every (intervention, tier) segment with positive net savings
/// (a tier's figures are the difference between consecutive cut-offs); greedily, by net savings
/// per dollar (largest first; ties by intervention id, then tier from HIGH), a candidate is funded
/// when its tier is not yet funded and its cost fits in what is left of the budget (no budget:
/// everything with positive net savings is affordable). A greedy choice, not an optimum.
pub fn allocate(rois: &[InterventionRoi], budget_cents: Option<i64>) -> Plan {
    let mut candidates: Vec<Funded> = Vec::new();
    for r in rois {
        let mut prev: Option<&RoiCutoff> = None;
        for c in &r.cutoffs {
            let d = |f: fn(&RoiCutoff) -> i64| f(c) - prev.map_or(0, f);
            let seg = Funded {
                intervention_id: r.intervention_id.clone(),
                tier: c.min_tier,
                members: d(|x| x.members_targeted),
                cost_cents: d(|x| x.programme_cost_cents),
                expected_avoided: round4(
                    c.expected_avoided - prev.map_or(0.0, |p| p.expected_avoided),
                ),
                gross_savings_cents: d(|x| x.gross_savings_cents),
                net_savings_cents: d(|x| x.net_savings_cents),
            };
            prev = Some(c);
            if seg.net_savings_cents > 0 && seg.members > 0 {
                candidates.push(seg);
            }
        }
    }
    let per_dollar = |f: &Funded| f.net_savings_cents as f64 / f.cost_cents.max(1) as f64;
    candidates.sort_by(|a, b| {
        per_dollar(b)
            .total_cmp(&per_dollar(a))
            .then_with(|| a.intervention_id.cmp(&b.intervention_id))
            .then_with(|| b.tier.cmp(&a.tier))
    });
    let mut plan = Plan {
        budget_cents,
        ..Plan::default()
    };
    for c in candidates {
        if plan.funded.iter().any(|f| f.tier == c.tier) {
            continue;
        }
        if budget_cents.is_some_and(|b| plan.cost_cents + c.cost_cents > b) {
            continue;
        }
        plan.cost_cents += c.cost_cents;
        plan.gross_savings_cents += c.gross_savings_cents;
        plan.net_savings_cents += c.net_savings_cents;
        plan.expected_avoided = round4(plan.expected_avoided + c.expected_avoided);
        plan.funded.push(c);
    }
    plan
}

/// Why the what-if could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
    #[error("no intervention ROI records in {0} (a replay with scoring and population enabled writes them)")]
    Empty(String),
    #[error("unknown intervention {0:?}; known: {1}")]
    Unknown(String, String),
}

/// The latest record per key of a replay output file.
fn latest<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    key: impl Fn(&T) -> String,
) -> Result<BTreeMap<String, T>, WhatIfError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(WhatIfError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let v: T = serde_json::from_str(line).map_err(|e| WhatIfError::Parse {
            path: path.display().to_string(),
            line: i + 1,
            message: e.to_string(),
        })?;
        out.insert(key(&v), v);
    }
    Ok(out)
}

/// What `claimwatch roi` reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WhatIf {
    /// The latest ROI record of each intervention considered.
    pub interventions: Vec<InterventionRoi>,
    /// The latest population summary (`all`), when present.
    pub population: Option<crate::model::ReadmissionSummary>,
    pub plan: Plan,
}

/// The what-if over a replay output directory: the latest ROI records (optionally one
/// intervention) and a plan within `budget_cents` ([`allocate`]).
pub fn what_if(
    dir: &std::path::Path,
    budget_cents: Option<i64>,
    intervention: Option<&str>,
) -> Result<WhatIf, WhatIfError> {
    let rois = latest::<InterventionRoi>(&dir.join("claimwatch.intervention-roi.jsonl"), |r| {
        r.intervention_id.clone()
    })?;
    if rois.is_empty() {
        return Err(WhatIfError::Empty(dir.display().to_string()));
    }
    let chosen: Vec<InterventionRoi> = match intervention {
        Some(id) => match rois.get(id) {
            Some(r) => vec![r.clone()],
            None => {
                let known: Vec<&str> = rois.keys().map(String::as_str).collect();
                return Err(WhatIfError::Unknown(id.to_owned(), known.join(", ")));
            }
        },
        None => rois.into_values().collect(),
    };
    let summaries = latest::<crate::model::ReadmissionSummary>(
        &dir.join("claimwatch.readmission-summary.jsonl"),
        |s| s.group.clone(),
    )?;
    Ok(WhatIf {
        plan: allocate(&chosen, budget_cents),
        interventions: chosen,
        population: summaries.get("all").cloned(),
    })
}

fn dollars(cents: i64) -> String {
    format!("${:.0}", cents as f64 / 100.0)
}

/// A plain-text rendering of a what-if.
pub fn render(w: &WhatIf) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if let Some(p) = &w.population {
        let _ = writeln!(
            s,
            "population: {} matured index stays, {} unplanned readmissions ({:.1} %), {} preventable, expected {:.1}",
            p.index_stays,
            p.readmissions,
            p.readmission_rate * 100.0,
            p.preventable_readmissions,
            p.expected_readmissions
        );
    }
    let _ = writeln!(
        s,
        "{:<28} {:<7} {:>8} {:>9} {:>13} {:>13} {:>13} {:>7}",
        "intervention", "tiers", "targeted", "avoided", "gross", "cost", "net", "ROI"
    );
    for r in &w.interventions {
        for c in &r.cutoffs {
            let _ = writeln!(
                s,
                "{:<28} {:<7} {:>8} {:>9.1} {:>13} {:>13} {:>13} {:>7}{}",
                r.intervention_id,
                format!("{}+", tier_name(c.min_tier)),
                c.members_targeted,
                c.expected_avoided,
                dollars(c.gross_savings_cents),
                dollars(c.programme_cost_cents),
                dollars(c.net_savings_cents),
                c.roi.map_or("-".into(), |x| format!("{x:.2}")),
                if c.min_tier == r.best_min_tier {
                    "  best"
                } else {
                    ""
                }
            );
        }
    }
    let p = &w.plan;
    let _ = writeln!(
        s,
        "\nplan ({}; greedy by net savings per dollar, one intervention per tier):",
        p.budget_cents.map_or("no budget limit".into(), |b| format!(
            "budget {}",
            dollars(b)
        ))
    );
    if p.funded.is_empty() {
        let _ = writeln!(
            s,
            "  nothing funded (no segment with positive net savings fits)"
        );
    }
    for f in &p.funded {
        let _ = writeln!(
            s,
            "  fund {:<28} for {:<6} discharges: {:>6} targeted, cost {}, avoided {:.1}, net {}",
            f.intervention_id,
            tier_name(f.tier),
            f.members,
            dollars(f.cost_cents),
            f.expected_avoided,
            dollars(f.net_savings_cents)
        );
    }
    let _ = writeln!(
        s,
        "  total: cost {}, gross {}, net {}, expected readmissions avoided {:.1}",
        dollars(p.cost_cents),
        dollars(p.gross_savings_cents),
        dollars(p.net_savings_cents),
        p.expected_avoided
    );
    s
}
