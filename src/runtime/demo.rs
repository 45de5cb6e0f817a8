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
use indicatif::{ProgressBar, ProgressStyle};
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
    let bar = if opts.progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} inputs  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut last = (0u64, Instant::now());
    let mut last_change = Instant::now();
    let mut last_print = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let consumed = status.consumed.load(Ordering::Relaxed);
        if consumed != last.0 {
            last_change = Instant::now();
        }
        let rate = (consumed - last.0) as f64 / last.1.elapsed().as_secs_f64().max(1e-3);
        last = (consumed, Instant::now());
        let msg = format!(
            "{rate:>8.0} ev/s  outputs {}  dead letters {}  partitions {}",
            status.produced.load(Ordering::Relaxed),
            status.dead_letters.load(Ordering::Relaxed),
            status.assigned.load(Ordering::Relaxed),
        );
        bar.set_position(consumed.min(total));
        bar.set_message(msg.clone());
        if !opts.progress && last_print.elapsed() > Duration::from_secs(2) {
            println!("consumed {consumed}/{total}  {msg}");
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
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64() - 2.0;
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
    let mut summary = Summary::compute(
        &engine,
        &partitions,
        input_records,
        status.dead_letters.load(Ordering::Relaxed),
        &counts,
        &tally,
    );
    if let Ok(stats) = status.partition_stats.lock() {
        summary.duplicates_ignored = stats.values().map(|s| s.duplicates).sum();
        summary.timers_fired = stats.values().map(|s| s.timers_fired).sum();
        // The reopened partitions start with empty statistics: the index stays that left state
        // while the service ran were counted by its tasks.
        for s in stats.values() {
            summary.add_aged_out(&s.readmissions_aged_out);
        }
    }
    drop(partitions);
    drop(db);
    println!("{}", summary.render());

    let replayed = replay::run(&ReplayOptions {
        input: input.clone(),
        out: dir.join("replay"),
        state: None,
        config: config.core.clone(),
        stop_after: None,
    })?
    .summary;
    let (expected, differences): (Vec<String>, Vec<String>) = compare(&summary, &replayed)
        .into_iter()
        .partition(|d| order_dependent(d).is_some());
    if differences.is_empty() {
        println!("summary matches `claimwatch replay` on the same input: yes");
        for d in expected {
            let prefix = order_dependent(&d).unwrap_or_default();
            println!(
                "  ({} {}; the count of intermediate versions depends on when re-keyed records \
                 arrive through the repartition topics, the final records do not)",
                prefix
                    .trim_start_matches("summary.outputs.")
                    .trim_end_matches(": "),
                d.trim_start_matches(prefix)
            );
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
