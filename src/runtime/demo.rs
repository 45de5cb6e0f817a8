//! `claimwatch demo`: the whole service in one process on librdkafka's in-process mock cluster.
//!
//! Generates a population, creates the topics, produces the population, runs the service on it with
//! a live progress bar, stops it gracefully and prints the summary, then replays the same files
//! with `claimwatch replay`'s code path and says whether the two summaries agree.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rdkafka::mocking::MockCluster;

use super::config::RuntimeConfig;
use super::{produce, topics, Service};
use crate::codec::Format;
use crate::core::{Engine, Partition};
use crate::model::InputStream;
use crate::refdata::RefData;
use crate::replay::{self, ReplayOptions, Summary};
use crate::state::StateDb;

/// What the demo runs on.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub members: usize,
    pub seed: u64,
    pub partitions: u32,
    /// Working directory; a temporary one when `None`.
    pub dir: Option<PathBuf>,
    pub progress: bool,
}

/// Runs the demo and prints its summary.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let tmp;
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    let input = dir.join("input");
    let state = dir.join("state");
    if state.exists() {
        std::fs::remove_dir_all(&state)?;
    }
    println!(
        "generating {} members (seed {}) into {}",
        opts.members,
        opts.seed,
        input.display()
    );
    crate::generate::write::generate_to_dir(opts.members, opts.seed, &input, Format::Json)?;

    let mock = MockCluster::new(1).context("starting the mock cluster")?;
    let mut config = RuntimeConfig {
        brokers: mock.bootstrap_servers(),
        group_id: "claimwatch-demo".into(),
        state_dir: state.clone(),
        checkpoint_interval_ms: 500,
        // /metrics and /health on the usual port, or any free one if it is taken.
        http_listen: Some(match std::net::TcpListener::bind("127.0.0.1:9464") {
            Ok(_) => "127.0.0.1:9464".to_owned(),
            Err(_) => std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .to_string(),
        }),
        ..RuntimeConfig::default()
    };
    config.topics.partitions = opts.partitions as i32;
    config.core.partitions = opts.partitions;
    // The mock cluster does not implement CreateTopics; it has its own call.
    let mut created = Vec::new();
    for spec in topics::all(&config) {
        mock.create_topic(&spec.name, config.topics.partitions, 1)
            .with_context(|| format!("creating {}", spec.name))?;
        created.push(spec.name);
    }
    println!(
        "embedded Kafka at {} with {} topics",
        config.brokers,
        created.len()
    );
    let started = Instant::now();
    let produced =
        produce::produce_dir(&config, &input, Format::Avro, produce::Pace::Unlimited).await?;
    println!(
        "produced {} input records in {:.1} s",
        produced.total(),
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let service = Service::start_with(config.clone(), true).await?;
    if let Some(addr) = &config.http_listen {
        println!("metrics: http://{addr}/metrics  health: http://{addr}/health/ready");
    }
    let status = std::sync::Arc::clone(&service.status);
    let total = produced.total();
    let (bars, bar, figures) = if opts.progress {
        let bars = MultiProgress::new();
        let bar = bars.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} inputs  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let figures = bars.add(ProgressBar::new_spinner());
        figures.set_style(
            ProgressStyle::with_template("  {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        (Some(bars), bar, figures)
    } else {
        (None, ProgressBar::hidden(), ProgressBar::hidden())
    };
    let mut last = (0u64, Instant::now());
    let mut last_change = Instant::now();
    let mut last_print = Instant::now();
    let mut last_figures = Instant::now();
    let progress_line = |rate: f64, consumed: u64| {
        format!(
            "{rate:>8.0} ev/s  lag {}  outputs {}  dead letters {}  partitions {}",
            total.saturating_sub(consumed),
            status.produced.load(Ordering::Relaxed),
            status.dead_letters.load(Ordering::Relaxed),
            status.assigned.load(Ordering::Relaxed),
        )
    };
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let consumed = status.consumed.load(Ordering::Relaxed);
        if consumed != last.0 {
            last_change = Instant::now();
        }
        let rate = (consumed - last.0) as f64 / last.1.elapsed().as_secs_f64().max(1e-3);
        last = (consumed, Instant::now());
        let msg = progress_line(rate, consumed);
        bar.set_position(consumed.min(total));
        bar.set_message(msg.clone());
        if opts.progress && last_figures.elapsed() > Duration::from_secs(1) {
            figures.set_message(LiveFigures::read(&service.metrics).render());
            last_figures = Instant::now();
        }
        if !opts.progress && last_print.elapsed() > Duration::from_secs(2) {
            println!("consumed {consumed}/{total}  {msg}");
            println!("  {}", LiveFigures::read(&service.metrics).render());
            last_print = Instant::now();
        }
        // Inputs plus the internal repartition records: done once everything is in and quiet.
        if consumed >= total && last_change.elapsed() > Duration::from_secs(2) {
            break;
        }
        if last_change.elapsed() > Duration::from_secs(60) {
            bar.abandon();
            anyhow::bail!("no progress for 60 s (consumed {consumed} of {total} inputs)");
        }
    }
    figures.finish_and_clear();
    bar.finish_and_clear();
    drop(bars);
    let secs = started.elapsed().as_secs_f64() - 2.0;
    println!(
        "live figures at the end (from the service's metrics): {}",
        LiveFigures::read(&service.metrics).render()
    );
    let (tally, counts) = service.take_tally().unwrap_or_default();
    let consumed = status.consumed.load(Ordering::Relaxed);
    let rekeyed = status.rekeyed.load(Ordering::Relaxed);
    service.shutdown().await;
    println!(
        "service processed {consumed} input records and {rekeyed} internal repartition records in {secs:.1} s"
    );

    let engine = Engine::new(config.core.clone(), RefData::shared());
    let db = StateDb::open_with_cache(&state, config.state_cache_bytes())?;
    let mut partitions = Vec::new();
    for p in 0..opts.partitions as i32 {
        partitions.push(Partition::open(p, db.partition(p)?, &engine)?);
    }
    let input_records: BTreeMap<String, u64> = InputStream::ALL
        .iter()
        .filter_map(|s| {
            produced
                .per_topic
                .get(config.topics.input(*s))
                .map(|n| (s.name().to_owned(), *n))
        })
        .collect();
    // The reopened partitions carry the counters of their last checkpoint (the tasks' final
    // ones): repeats, timers and the index stays that left state while the service ran.
    let summary = Summary::compute(
        &engine,
        &partitions,
        input_records,
        status.dead_letters.load(Ordering::Relaxed),
        &counts,
        &tally,
    );
    drop(partitions);
    drop(db);
    println!("{}", summary.render());

    let replayed = replay::run(&ReplayOptions {
        input: input.clone(),
        out: dir.join("replay"),
        state: None,
        config: config.core.clone(),
        stop_after: None,
        close_open_windows: true,
    })?
    .summary;
    let (expected, differences): (Vec<String>, Vec<String>) = compare(&summary, &replayed)
        .into_iter()
        .partition(|d| order_dependent(d).is_some());
    if differences.is_empty() {
        println!("summary matches `claimwatch replay` on the same input: yes");
        if !expected.is_empty() {
            println!("{}", order_dependent_note(&summary, &replayed));
        }
    } else {
        println!(
            "summary matches `claimwatch replay` on the same input: NO\n  {}",
            differences.join("\n  ")
        );
    }
    std::fs::write(
        dir.join("demo-summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    drop(mock);
    Ok(())
}

/// What the demo's progress shows beside the input counts, read from the service's own metrics
/// (what an operator's dashboard reads): claims by their latest status, the share of adjudications
/// that are denials, readmissions detected net of retractions, and high-risk discharge alerts.
#[derive(Clone, Debug, Default, PartialEq)]
struct LiveFigures {
    /// Latest status -> claims (summed over departments), non-zero only, in lifecycle order.
    by_status: Vec<(&'static str, f64)>,
    adjudicated: f64,
    denied: f64,
    /// Readmissions detected minus retracted: (unplanned, planned).
    readmissions: (f64, f64),
    high_risk_alerts: f64,
}

impl LiveFigures {
    /// Reads the figures from a scrape of `metrics` (the text `/metrics` serves), or none if it
    /// does not parse.
    fn read(metrics: &crate::metrics::Metrics) -> Self {
        use crate::model::ClaimStatus;
        let Ok(scrape) = crate::metrics::exposition::parse(&metrics.render()) else {
            return Self::default();
        };
        let sum = |name: &str, labels: &[(&str, &str)]| scrape.sum(name, labels).unwrap_or(0.0);
        let by_status = ClaimStatus::ALL
            .iter()
            .map(|s| {
                let n = sum("claimwatch_claims_by_status", &[("status", s.as_str())]);
                (s.as_str(), n)
            })
            .filter(|(_, n)| *n != 0.0)
            .collect();
        const EVENTS: &str = "claimwatch_readmissions_events_total";
        let net = |planned: &str| {
            sum(EVENTS, &[("action", "DETECTED"), ("planned", planned)])
                - sum(EVENTS, &[("action", "RETRACTED"), ("planned", planned)])
        };
        const ADJUDICATIONS: &str = "claimwatch_claims_adjudications_total";
        LiveFigures {
            by_status,
            adjudicated: sum(ADJUDICATIONS, &[]),
            denied: sum(ADJUDICATIONS, &[("outcome", ClaimStatus::Denied.as_str())]),
            readmissions: (net("false"), net("true")),
            high_risk_alerts: sum("claimwatch_care_high_risk_alerts_total", &[]),
        }
    }

    fn render(&self) -> String {
        let claims = self
            .by_status
            .iter()
            .map(|(s, n)| format!("{s} {n:.0}"))
            .collect::<Vec<_>>()
            .join(" ");
        let rate = if self.adjudicated > 0.0 {
            format!("{:.1} %", 100.0 * self.denied / self.adjudicated)
        } else {
            "-".to_owned()
        };
        format!(
            "claims: {}  | denial rate {rate} of {:.0} adjudications  | readmissions {:.0} unplanned, {:.0} planned  | high-risk discharge alerts {:.0}",
            if claims.is_empty() { "none yet" } else { &claims },
            self.adjudicated,
            self.readmissions.0,
            self.readmissions.1,
            self.high_risk_alerts,
        )
    }
}

/// The figures that may differ between the service and replay: how many intermediate versions
/// were emitted of readmissions (paid amounts reach the member flow through a topic, so they can
/// interleave differently with stays) and of payer KPI windows (facts from several claim
/// partitions reach the payer's partition through a topic), and so which payer monitor alerts an
/// intermediate version raised; of the readmission summaries and intervention ROI (a partition
/// emits its changed groups when its inputs are at their end, which depends on how the stay
/// outcome facts of the member partitions interleave). The final record per stay, window, group
/// and intervention is the same. Care gaps: a dose that reaches the member's partition before the
/// gap's due date means the gap never opens, after it that it opens and closes, so the counts of
/// opened and closed gaps (and care-gap events) depend on that order; expired, not applicable and
/// still-open gaps do not, and are compared. The cash forecast (payer weeks re-emitted when facts
/// from several claim partitions correct them), the provider KPIs (keys emitted when their
/// partition's flow day moves) and the high-cost member flags (re-decided when a member's paid
/// amounts arrive through a topic) also emit a number of intermediate versions that depends on
/// that interleaving; so does the utilization forecast (weeks re-emitted when facts from several
/// member partitions arrive after the week closed).
const ORDER_DEPENDENT: [&str; 10] = [
    "summary.outputs.claimwatch.readmissions: ",
    "summary.outputs.claimwatch.payer-kpis: ",
    "summary.outputs.claimwatch.alerts.payer-monitor: ",
    "summary.outputs.claimwatch.readmission-summary: ",
    "summary.outputs.claimwatch.intervention-roi: ",
    "summary.outputs.claimwatch.care-gaps: ",
    "summary.outputs.claimwatch.cash-forecast: ",
    "summary.outputs.claimwatch.provider-kpis: ",
    "summary.outputs.claimwatch.member-risk: ",
    "summary.outputs.claimwatch.utilization-forecast: ",
];

/// The figures that differ only by the order in which re-keyed records arrived (see
/// [`ORDER_DEPENDENT`]), in a few lines: the output topics whose record counts differ, and the care
/// gaps opened and closed per vaccine.
fn order_dependent_note(service: &Summary, replay: &Summary) -> String {
    let topics: Vec<String> = ORDER_DEPENDENT
        .iter()
        .filter_map(|p| {
            let topic = p
                .trim_start_matches("summary.outputs.")
                .trim_end_matches(": ");
            let (a, b) = (
                service.outputs.get(topic).copied().unwrap_or(0),
                replay.outputs.get(topic).copied().unwrap_or(0),
            );
            (a != b).then(|| format!("{} {a} vs {b}", topic.trim_start_matches("claimwatch.")))
        })
        .collect();
    let gaps: Vec<String> = service
        .care_gaps
        .by_vaccine
        .iter()
        .filter_map(|(vaccine, a)| {
            let b = replay
                .care_gaps
                .by_vaccine
                .get(vaccine)
                .cloned()
                .unwrap_or_default();
            (a.opened != b.opened || a.closed != b.closed).then(|| {
                format!(
                    "{vaccine} {}/{} vs {}/{}",
                    a.opened, a.closed, b.opened, b.closed
                )
            })
        })
        .collect();
    let mut note = String::from(
        "  expected differences, which depend on when re-keyed records arrive through the \
         repartition topics:",
    );
    if !topics.is_empty() {
        note.push_str(&format!(
            "\n  - intermediate versions emitted (the final record per key is the same), service \
             vs replay: {}",
            topics.join(", ")
        ));
        if topics.iter().any(|t| t.starts_with("payer-kpis ")) {
            note.push_str(
                "\n    (replay also emits the payer windows still open at the end of its input; \
                 the service's stay open until its watermark passes them)",
            );
        }
    }
    if !gaps.is_empty() {
        note.push_str(&format!(
            "\n  - care gaps opened / closed, service vs replay: {} (also by age band). A dose that \
             reaches the member before the gap is due means the gap never opens, after it that it \
             opens and closes; still-open, expired and not-applicable gaps match",
            gaps.join(", ")
        ));
    }
    note
}

fn order_dependent(d: &str) -> Option<&'static str> {
    if let Some(p) = ORDER_DEPENDENT.into_iter().find(|p| d.starts_with(p)) {
        return Some(p);
    }
    let field = d.split(": ").next().unwrap_or_default();
    (field.starts_with("summary.care_gaps.")
        && [".opened", ".closed", ".closure_rate"]
            .iter()
            .any(|f| field.ends_with(f)))
    .then_some("summary.care_gaps.")
}

/// Fields of two summaries that differ, as `path: service vs replay`.
pub fn compare(service: &Summary, replay: &Summary) -> Vec<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let null = serde_json::Value::Null;
                    walk(
                        &format!("{path}.{k}"),
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{path}: {a} vs {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match (serde_json::to_value(service), serde_json::to_value(replay)) {
        (Ok(a), Ok(b)) => walk("summary", &a, &b, &mut out),
        _ => out.push("summaries do not serialise".into()),
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{OutputEvent, ReadmissionAction};

    /// The live figures are the service's own metrics added up: claims by their latest status,
    /// readmissions detected net of retractions, denials among adjudications; checked against the
    /// outputs that moved those metrics.
    #[test]
    fn the_live_figures_add_up_the_metrics_the_outputs_moved() {
        let m = crate::metrics::Metrics::new().unwrap();
        let sample = crate::metrics::sample::sample_outputs(400, 11);
        let (mut latest, mut readmissions) = (BTreeMap::new(), (0.0, 0.0));
        for o in &sample.outputs {
            m.observe_output(o);
            match o {
                OutputEvent::ClaimLifecycle(u) => {
                    latest.insert(u.claim_id.clone(), u.status.as_str());
                }
                OutputEvent::Readmission(r) => {
                    let sign = match r.action {
                        ReadmissionAction::Detected => 1.0,
                        ReadmissionAction::Retracted => -1.0,
                        ReadmissionAction::Updated => 0.0,
                    };
                    if r.planned {
                        readmissions.1 += sign;
                    } else {
                        readmissions.0 += sign;
                    }
                }
                _ => {}
            }
        }
        let f = LiveFigures::read(&m);
        let mut expected: Vec<(&str, f64)> = Vec::new();
        for s in crate::model::ClaimStatus::ALL {
            let n = latest.values().filter(|v| **v == s.as_str()).count();
            if n > 0 {
                expected.push((s.as_str(), n as f64));
            }
        }
        assert!(expected.len() >= 4, "a varied population: {expected:?}");
        assert_eq!(f.by_status, expected);
        assert_eq!(f.readmissions, readmissions);
        assert!(readmissions.0 > 0.0, "{readmissions:?}");
        assert!(
            f.denied > 0.0 && f.denied < f.adjudicated,
            "{} of {}",
            f.denied,
            f.adjudicated
        );
        let line = f.render();
        assert!(
            line.contains(&format!(
                "PAID {:.0}",
                expected.iter().find(|e| e.0 == "PAID").unwrap().1
            )),
            "{line}"
        );
        assert!(
            line.contains(&format!("readmissions {:.0} unplanned", readmissions.0)),
            "{line}"
        );
        assert!(line.contains(" % of "), "{line}");
        // Before any output: nothing yet, and no division by zero.
        let empty = LiveFigures::read(&crate::metrics::Metrics::new().unwrap()).render();
        assert!(
            empty.contains("claims: none yet") && empty.contains("denial rate -"),
            "{empty}"
        );
    }
}
