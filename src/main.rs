//! The `claimwatch` command: parses arguments, sets up logging, calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use claimwatch::codec::Format;
use claimwatch::config::CoreConfig;
use claimwatch::replay::{self, ReplayOptions};
use claimwatch::runtime::{self, RuntimeConfig};

/// mimalloc rather than glibc's malloc: the core allocates many small, short-lived strings and
/// vectors per event (BENCHMARKS.md: +7-17 % core throughput on the core bench, 1.5-1.8x on the
/// pipeline). `main` turns transparent huge pages off for its heap (`claimwatch::memory`), and
/// counts the live heap bytes when `CLAIMWATCH_COUNT_HEAP=1`.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: claimwatch::memory::CountingAlloc<mimalloc::MiMalloc> =
    claimwatch::memory::CountingAlloc(mimalloc::MiMalloc);

/// The diagnostic build (`--features system-alloc`): glibc's malloc, which heap profilers hook.
#[cfg(feature = "system-alloc")]
#[global_allocator]
static GLOBAL: claimwatch::memory::CountingAlloc<std::alloc::System> =
    claimwatch::memory::CountingAlloc(std::alloc::System);

#[derive(Parser, Debug)]
#[command(
    name = "claimwatch",
    version,
    about = "Streaming claim reconciliation and 30-day readmission detection"
)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "CLAIMWATCH_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a calibrated synthetic population: the five input streams plus ground truth.
    Generate {
        /// Members in the population (at least 1).
        #[arg(long, default_value_t = 1000,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        members: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = GenerateFormat::Json)]
        format: GenerateFormat,
        /// Length of the simulated period in days, from 2024-01-01, at least 1 (JSON and Avro; the
        /// cost model needs more than a year: `--days 730`).
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i32).range(1..))]
        days: i32,
    },
    /// X12 EDI files: 837, 277CA and 835.
    X12 {
        #[command(subcommand)]
        command: X12Command,
    },
    /// Feed stream files through the core in event-time order and write the outputs.
    Replay {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Durable state directory (sled); enables checkpoints and resuming.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Stop after this many input records (after a checkpoint); run again to resume. Needs
        /// --state (there is nothing to resume from without it).
        #[arg(long, requires = "state", value_parser = clap::value_parser!(u64).range(1..))]
        stop_after: Option<u64>,
        /// Core configuration file (JSON); unknown fields are refused.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override the number of partitions.
        #[arg(long)]
        partitions: Option<u32>,
        /// Score with the models of this directory (`denial.json`, `readmission.json`,
        /// `cost.json` from `claimwatch train`) instead of the compiled-in defaults. A risk model
        /// whose file is absent scores with the transparent fallback (a warning says so), as the
        /// service's `model_dir` does; an absent `cost.json` keeps the compiled-in cost model.
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// Train the risk models: replay a generated population through the core collecting matured
    /// training examples (features as at scoring time + label), fit on the earlier 70 % of time,
    /// evaluate on the later 30 %, and write versioned model files and reports to --out.
    Train {
        /// Generated population (stream files; `truth.json` there gives the oracle AUC).
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Which model(s) to train.
        #[arg(long, value_enum, default_value_t = TrainWhich::Both)]
        model: TrainWhich,
        /// Core configuration file (JSON), as for replay.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Days of observed history (from the earliest scoring time among the model's matured
        /// examples) an example needs to be used: earlier ones see a feature look-back cut short by the start
        /// of the data. Default per model: readmission 365 (its 12-month look-back), denial 0.
        #[arg(long)]
        min_history_days: Option<u32>,
    },
    /// Intervention what-if from a replay output directory: the latest intervention ROI records
    /// and, with a budget, which interventions to fund for which risk tiers (greedy by net
    /// savings per dollar, one intervention per tier).
    Roi {
        /// A replay output directory (`claimwatch.intervention-roi.jsonl`).
        #[arg(long)]
        input: PathBuf,
        /// Programme budget in US dollars.
        #[arg(long)]
        budget: Option<f64>,
        /// Consider only this intervention id.
        #[arg(long)]
        intervention: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the service: consume the input topics in a consumer group, produce the outputs.
    Run {
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Topic administration.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Publish stream files (from `generate` or `x12 parse`) to the input topics.
    Produce {
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Payload format of the published records.
        #[arg(long, value_enum, default_value_t = Format::Avro)]
        format: Format,
        /// At most this many records per second.
        #[arg(long)]
        rate: Option<f64>,
        /// Pace by event time, `speedup` times faster than real time.
        #[arg(long)]
        pace_speedup: Option<f64>,
    },
    /// Write the executive report: one self-contained HTML page (inline SVG charts, no
    /// JavaScript) over the output files of a `claimwatch replay` directory.
    Report {
        /// A `claimwatch replay --out` directory (`<topic>.jsonl` files, `replay-summary.json`).
        #[arg(long, required_unless_present = "brokers", conflicts_with = "brokers")]
        input: Option<PathBuf>,
        /// Read the output topics from these Kafka brokers (to their current end) instead.
        #[arg(long)]
        brokers: Option<String>,
        /// With --brokers: give up reading a topic after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
        /// The HTML file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Everything in one process on an embedded Kafka (librdkafka's mock cluster): generate a
    /// population, produce it, run the service on it, show progress and the summary.
    Demo {
        #[arg(long, default_value_t = 2000)]
        members: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 4)]
        partitions: u32,
        /// Where to keep the generated files, state and summary (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print plain log lines instead of a live progress bar.
        #[arg(long)]
        no_progress: bool,
    },
}

#[derive(Subcommand, Debug)]
enum TopicsCommand {
    /// Create every input, output, internal and changelog topic that does not exist yet.
    Create {
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Check that the topics exist with the right partition counts.
    Check {
        #[command(flatten)]
        kafka: KafkaArgs,
    },
}

/// Connection and configuration flags shared by the Kafka commands; they override the config
/// file and `CLAIMWATCH_*` variables.
#[derive(clap::Args, Debug, Clone, Default)]
struct KafkaArgs {
    /// Service configuration file (TOML); see README "Configuration".
    #[arg(long)]
    config: Option<PathBuf>,
    /// Bootstrap servers (`brokers`).
    #[arg(long)]
    brokers: Option<String>,
    /// Consumer group id (`group_id`).
    #[arg(long)]
    group: Option<String>,
    /// State directory (`state_dir`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Partitions of the keyed topics (`topics.partitions` and `core.partitions`).
    #[arg(long)]
    partitions: Option<u32>,
    /// Output payload format for every output topic (`output_format`).
    #[arg(long, value_enum)]
    output_format: Option<Format>,
    /// A librdkafka property for every client, e.g. `-X security.protocol=SASL_SSL`.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    kafka: Vec<String>,
}

impl KafkaArgs {
    fn load(&self) -> anyhow::Result<RuntimeConfig> {
        use figment::providers::Serialized;
        let mut f = RuntimeConfig::figment(self.config.as_deref());
        if let Some(b) = &self.brokers {
            f = f.merge(Serialized::default("brokers", b));
        }
        if let Some(g) = &self.group {
            f = f.merge(Serialized::default("group_id", g));
        }
        if let Some(d) = &self.state_dir {
            f = f.merge(Serialized::default("state_dir", d));
        }
        if let Some(p) = self.partitions {
            f = f
                .merge(Serialized::default("topics.partitions", p))
                .merge(Serialized::default("core.partitions", p));
        }
        if let Some(o) = self.output_format {
            f = f.merge(Serialized::default("output_format", o));
        }
        let mut c: RuntimeConfig = f.extract().context("configuration")?;
        c.client_properties_from_env();
        c.topics.scope_to_group(&c.group_id);
        let ignored = RuntimeConfig::ignored_env_vars();
        if !ignored.is_empty() {
            tracing::warn!(variables = ?ignored, "CLAIMWATCH_ variables that set no configuration key are ignored");
        }
        for kv in &self.kafka {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("-X {kv}: expected KEY=VALUE"))?;
            c.kafka.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        if let Err(problems) = c.validate() {
            anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "));
        }
        Ok(c)
    }
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Rebalance callbacks and checkpoints block a worker for a moment; keep a spare.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(4);
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?)
}

async fn until_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Output format of `generate`: the stream formats, or X12 EDI files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum GenerateFormat {
    /// JSON lines, one file per stream.
    #[value(alias = "jsonl")]
    Json,
    /// Avro object container files, one per stream.
    Avro,
    /// 837 / 277CA / 835 files (encounters as JSON lines); make them replayable
    /// with `claimwatch x12 parse --out` into the same directory.
    X12,
}

#[derive(Subcommand, Debug)]
enum X12Command {
    /// Parse X12 files into the stream files `replay --input DIR` reads, a findings
    /// report per file and a dead-letter file.
    Parse {
        /// 835, 277CA and 837 files (several interchanges per file are fine).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value = "x12-out")]
        out: PathBuf,
    },
    /// Parse X12 files and publish their events to the input topics (errors to the dead-letter
    /// topic, with their location and raw bytes).
    Publish {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Payload format of the published records.
        #[arg(long, value_enum, default_value_t = Format::Avro)]
        format: Format,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum TrainWhich {
    Denial,
    Readmission,
    Both,
    /// The high-cost member model (ridge regression of the next 182 days' paid amount; needs
    /// more than a year of input, e.g. `generate --days 730`).
    Cost,
}

/// The general log goes to stderr (filtered by `RUST_LOG`, default `info`) and never carries the
/// audit target; the read API's audit events (`claimwatch::audit`) go, as JSON lines and whatever
/// `RUST_LOG` says, to the file named by `CLAIMWATCH_AUDIT_LOG` (appended) or else to stdout, so
/// they can be shipped and retained apart from the operational log.
fn init_logging(json: bool) {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{filter, fmt};
    let audit_target = claimwatch::api::AUDIT_TARGET;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let not_audit = filter::filter_fn(move |m| m.target() != audit_target);
    let general = if json {
        fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(not_audit)
            .with_filter(filter)
            .boxed()
    } else {
        // Colours for a terminal only: a log file or a collector gets plain text.
        use std::io::IsTerminal;
        fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_filter(not_audit)
            .with_filter(filter)
            .boxed()
    };
    let audit_writer = match std::env::var_os("CLAIMWATCH_AUDIT_LOG") {
        Some(path) if path != "-" => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => BoxMakeWriter::new(std::sync::Mutex::new(f)),
            Err(e) => {
                eprintln!(
                    "error: CLAIMWATCH_AUDIT_LOG {}: {e}",
                    path.to_string_lossy()
                );
                std::process::exit(2);
            }
        },
        _ => BoxMakeWriter::new(std::io::stdout),
    };
    let audit = fmt::layer()
        .json()
        .with_writer(audit_writer)
        .with_filter(filter::Targets::new().with_target(audit_target, tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(general)
        .with(audit)
        .init();
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<CoreConfig> {
    let Some(path) = path else {
        return Ok(CoreConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate {
            members,
            seed,
            out,
            format,
            days,
        } => match format {
            GenerateFormat::Json | GenerateFormat::Avro => {
                let config = claimwatch::generate::GenerateConfig {
                    members,
                    seed,
                    days,
                    ..Default::default()
                };
                let format = if format == GenerateFormat::Json {
                    Format::Json
                } else {
                    Format::Avro
                };
                claimwatch::generate::write::generate_config_to_dir(&config, &out, format)
            }
            GenerateFormat::X12 if days != 365 => {
                anyhow::bail!("--days is supported for JSON and Avro output only")
            }
            GenerateFormat::X12 => {
                claimwatch::generate::write::generate_x12_to_dir(members, seed, &out)
            }
        },
        Command::X12 {
            command: X12Command::Parse { files, out },
        } => {
            let started = std::time::Instant::now();
            let s = claimwatch::x12::files::parse_files(&files, &out)?;
            let events: u64 = s.events.values().sum();
            for (stream, n) in &s.events {
                println!("{stream}: {n} events");
            }
            println!(
                "parsed {} files into {events} events in {:.2} s: {} findings, {} dead letters; outputs in {}",
                s.files,
                started.elapsed().as_secs_f64(),
                s.findings,
                s.dead_letters,
                out.display()
            );
            for kept in &s.kept {
                println!(
                    "kept {} (no events of its stream in these files)",
                    kept.display()
                );
            }
            if s.dead_letters > 0 {
                tracing::warn!(
                    dead_letters = s.dead_letters,
                    file = claimwatch::x12::files::DEAD_LETTER_FILE,
                    "some transaction sets could not be parsed"
                );
            }
            if events == 0 {
                tracing::warn!(
                    files = s.files,
                    "no claim, acknowledgment or remittance in these files: are they X12 837, 277CA or 835?"
                );
            }
            Ok(())
        }
        Command::X12 {
            command:
                X12Command::Publish {
                    files,
                    kafka,
                    format,
                },
        } => {
            let config = kafka.load()?;
            let r = tokio_runtime()?
                .block_on(runtime::x12ingest::publish_files(&config, &files, format))?;
            for (topic, n) in &r.per_topic {
                println!("{topic}: {n}");
            }
            println!(
                "published {} events from {} files: {} findings, {} dead letters",
                r.per_topic.values().sum::<u64>(),
                files.len(),
                r.findings,
                r.dead_letters
            );
            Ok(())
        }
        Command::Replay {
            input,
            out,
            state,
            stop_after,
            config,
            partitions,
            models,
        } => {
            let mut config = load_config(config.as_ref())?;
            if let Some(p) = partitions {
                config.partitions = p;
            }
            if let Err(problems) = config.validate() {
                anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "));
            }
            let models = match &models {
                Some(dir) => {
                    let m = claimwatch::score::reload::ModelWatcher::start(dir)
                        .map_err(anyhow::Error::msg)?
                        .1;
                    // As the service treats its model_dir (README, Models): said, not silent.
                    for (file, absent) in [
                        ("denial.json", m.denial.is_none()),
                        ("readmission.json", m.readmission.is_none()),
                    ] {
                        if absent {
                            tracing::warn!(
                                dir = %dir.display(),
                                "no {file} in the models directory: that risk model scores with the transparent fallback, not the compiled-in model"
                            );
                        }
                    }
                    m
                }
                None => claimwatch::score::Models::embedded(),
            };
            let started = std::time::Instant::now();
            let report = replay::run_with_models(
                &ReplayOptions {
                    input,
                    out: out.clone(),
                    state,
                    config,
                    stop_after,
                    close_open_windows: true,
                },
                models,
            )?;
            let secs = started.elapsed().as_secs_f64();
            let records: u64 = report.summary.input_records.values().sum();
            println!("{}", report.summary.render());
            for (kind, snap) in ["denial", "readmission"].iter().zip(&report.monitor) {
                if let Some(s) = snap {
                    println!("{}", monitor_line(kind, s));
                }
            }
            println!(
                "replayed {records} records in {secs:.2} s ({:.0} records/s){}; outputs in {}",
                records as f64 / secs.max(1e-9),
                if report.stopped_early {
                    " - stopped early, run again to resume"
                } else {
                    ""
                },
                out.display()
            );
            Ok(())
        }
        Command::Roi {
            input,
            budget,
            intervention,
            json,
        } => {
            if budget.is_some_and(|b| !(b >= 0.0 && b.is_finite())) {
                anyhow::bail!("--budget must be a non-negative number of dollars");
            }
            let w = claimwatch::population::roi::what_if(
                &input,
                budget.map(|b| (b * 100.0).round() as i64),
                intervention.as_deref(),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&w)?);
            } else {
                print!("{}", claimwatch::population::roi::render(&w));
            }
            Ok(())
        }
        Command::Run { kafka } => {
            let config = kafka.load()?;
            let rt = tokio_runtime()?;
            let result = rt.block_on(async move {
                let service = runtime::Service::start(config).await?;
                tracing::info!("running; SIGTERM or Ctrl-C stops after a final checkpoint");
                until_signal().await;
                tracing::info!("stopping");
                let stopped = service.shutdown().await;
                if !stopped.unclean.is_empty() {
                    // Nothing is lost (offsets stay at the last checkpoint), but the stop was not
                    // clean: an orchestrator or operator should see it.
                    anyhow::bail!(
                        "stopped without a final checkpoint of partitions {:?} (failed, or not within shutdown_timeout_ms): the next owner re-processes their records since the last one",
                        stopped.unclean
                    );
                }
                anyhow::Ok(())
            });
            // Leaving the consumer group can still be waiting on an unreachable coordinator:
            // the process does not wait for it beyond this.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
        Command::Topics { command } => match command {
            TopicsCommand::Create { kafka } => {
                let config = kafka.load()?;
                let created = tokio_runtime()?.block_on(runtime::topics::create(&config))?;
                if created.is_empty() {
                    println!("all topics exist");
                } else {
                    println!("created: {}", created.join(", "));
                }
                Ok(())
            }
            TopicsCommand::Check { kafka } => {
                let config = kafka.load()?;
                runtime::topics::check(&config)?;
                println!("all topics exist with the expected partition counts");
                Ok(())
            }
        },
        Command::Produce {
            input,
            kafka,
            format,
            rate,
            pace_speedup,
        } => {
            let config = kafka.load()?;
            let pace = match (rate, pace_speedup) {
                (Some(r), _) => runtime::produce::Pace::Rate(r),
                (None, Some(s)) => runtime::produce::Pace::EventTime { speedup: s },
                (None, None) => runtime::produce::Pace::Unlimited,
            };
            // The brokers answer and the input topics exist, or a clear error now: the producer
            // itself retries an unreachable broker (or waits on a missing topic) indefinitely.
            let have = runtime::topics::describe(&config)
                .with_context(|| format!("cannot reach the brokers {} (15 s)", config.brokers))?;
            let missing: Vec<&str> = claimwatch::model::InputStream::ALL
                .iter()
                .map(|s| config.topics.input(*s))
                .filter(|t| !have.contains_key(*t))
                .collect();
            if !missing.is_empty() {
                anyhow::bail!(
                    "input topics missing on {}: {} (run `claimwatch topics create`)",
                    config.brokers,
                    missing.join(", ")
                );
            }
            let started = std::time::Instant::now();
            let produced = tokio_runtime()?
                .block_on(runtime::produce::produce_dir(&config, &input, format, pace))?;
            for (topic, n) in &produced.per_topic {
                println!("{topic}: {n}");
            }
            println!(
                "produced {} records ({} undecodable, sent as-is) in {:.2} s",
                produced.total(),
                produced.undecodable,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Demo {
            members,
            seed,
            partitions,
            dir,
            no_progress,
        } => tokio_runtime()?.block_on(claimwatch::runtime::demo::run(
            claimwatch::runtime::demo::DemoOptions {
                members,
                seed,
                partitions,
                dir,
                progress: !no_progress,
            },
        )),
        Command::Report {
            input,
            brokers,
            timeout_secs,
            out,
        } => {
            let exported;
            let dir = match (&input, &brokers) {
                (Some(dir), _) => dir.as_path(),
                (None, Some(b)) => {
                    exported = tempfile::tempdir()?;
                    let n = claimwatch::report::kafka::export_topics(
                        b,
                        exported.path(),
                        std::time::Duration::from_secs(timeout_secs),
                    )?;
                    println!(
                        "read {} records from {} topics",
                        n.values().sum::<u64>(),
                        n.len()
                    );
                    exported.path()
                }
                (None, None) => anyhow::bail!("--input or --brokers is required"),
            };
            let outputs = claimwatch::report::load_dir(dir)?;
            let html = claimwatch::report::render(&outputs)?;
            std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "report of {} claims from {} output topics written to {}",
                outputs.claims.len(),
                outputs.present.len(),
                out.display()
            );
            Ok(())
        }
        Command::Train {
            input,
            out,
            model,
            config,
            min_history_days,
        } => train(&input, &out, model, config.as_ref(), min_history_days),
    }
}

/// One line of the model monitoring windows at the end of a replay (what the service's
/// `claimwatch_model_*` gauges would show).
fn monitor_line(kind: &str, s: &claimwatch::score::monitor::ModelSnapshot) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"));
    let psi = s.psi();
    let mut top: Vec<(&String, f64)> = psi.iter().filter_map(|(n, v)| v.map(|v| (n, v))).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let drift = if !top.is_empty() {
        let list: Vec<String> = top
            .iter()
            .take(4)
            .map(|(n, v)| format!("{n} {v:.3}"))
            .collect();
        format!("largest PSI {}", list.join(", "))
    } else if psi.is_empty() {
        "unavailable (no training reference)".to_owned()
    } else {
        "too few scores".to_owned()
    };
    format!(
        "monitor {kind} ({}): {} matured labels, AUC {}, ECE {}; drift over {} scores: {drift}",
        s.version,
        s.labels.count(),
        f(s.labels.auc()),
        f(s.labels.ece()),
        s.drift.scores,
    )
}

fn train(
    input: &std::path::Path,
    out: &std::path::Path,
    which: TrainWhich,
    config: Option<&PathBuf>,
    min_history_days: Option<u32>,
) -> anyhow::Result<()> {
    use claimwatch::score::{train, ModelKind};
    let mut config = load_config(config)?;
    config.scoring.collect_training = true;
    if let Err(problems) = config.validate() {
        anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "));
    }
    if matches!(which, TrainWhich::Cost) && min_history_days.is_some() {
        anyhow::bail!("--min-history-days applies to the denial and readmission models");
    }
    let work = out.join("work");
    eprintln!(
        "[1/3] replaying {} to collect matured labels",
        input.display()
    );
    replay::run(&ReplayOptions {
        input: input.to_owned(),
        out: work.clone(),
        state: None,
        config: config.clone(),
        stop_after: None,
        close_open_windows: true,
    })?;
    let truth_path = input.join("truth.json");
    let truth = if truth_path.exists() {
        Some(train::read_truth(&truth_path).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let kinds: &[ModelKind] = match which {
        TrainWhich::Denial => &[ModelKind::Denial],
        TrainWhich::Readmission => &[ModelKind::Readmission],
        TrainWhich::Both => &[ModelKind::Denial, ModelKind::Readmission],
        TrainWhich::Cost => return train_cost(input, &work, out),
    };
    for (step, kind) in kinds.iter().enumerate() {
        let file = match kind {
            ModelKind::Denial => replay::TRAINING_FILES[0],
            ModelKind::Readmission => replay::TRAINING_FILES[1],
        };
        let examples = train::read_examples(&work.join(file)).map_err(anyhow::Error::msg)?;
        eprintln!(
            "[{}/3] fitting the {} model on {} matured examples",
            step + 2,
            kind.as_str(),
            examples.len()
        );
        let t = match kind {
            ModelKind::Denial => &config.scoring.denial_tiers,
            ModelKind::Readmission => &config.scoring.readmission_tiers,
        };
        let opts = train::TrainOptions {
            thresholds: (t.medium, t.high),
            source: format!("claimwatch train --input {}", input.display()),
            min_history_days,
            ..Default::default()
        };
        let truth = truth.as_ref().map(|(d, r)| match kind {
            ModelKind::Denial => d,
            ModelKind::Readmission => r,
        });
        let (mut model, evaluation) =
            train::fit_evaluated(*kind, &examples, truth, &opts).map_err(anyhow::Error::msg)?;
        if *kind == ModelKind::Denial && truth_path.exists() {
            // Ceilings of what is knowable at submission (the oracle above also knows whether
            // this claim's documentation is incomplete, which the claim mostly does not show).
            for (field, name) in [
                ("probability_before_gap_draw", "oracle_auc_before_gap_draw"),
                (
                    "probability_population_gap_rate",
                    "oracle_auc_population_gap_rate",
                ),
            ] {
                let (d, _) =
                    train::read_truth_field(&truth_path, field).map_err(anyhow::Error::msg)?;
                if let Some(v) = train::oracle_auc_of(*kind, &examples, &d, &opts) {
                    model.metrics.baselines.push((name.to_owned(), v));
                }
            }
        }
        std::fs::create_dir_all(out)?;
        let path = out.join(format!("{}.json", kind.as_str()));
        std::fs::write(&path, serde_json::to_string_pretty(&model)? + "\n")?;
        let report = train::report(&model);
        std::fs::write(out.join(format!("{}-report.txt", kind.as_str())), &report)?;
        let html =
            claimwatch::score::html::render(&model, &evaluation).map_err(anyhow::Error::msg)?;
        let html_path = out.join(format!("{}-report.html", kind.as_str()));
        std::fs::write(&html_path, html)?;
        println!("{report}");
        println!("wrote {} and {}", path.display(), html_path.display());
        // A model evaluated on this little is not to be trusted: said where it is written.
        let m = &model.metrics;
        if m.positives < MIN_EVAL_POSITIVES || m.auc_roc < 0.5 {
            tracing::warn!(
                model = kind.as_str(),
                positives = m.positives,
                examples = m.examples,
                auc = m.auc_roc,
                "the evaluation window has fewer than {MIN_EVAL_POSITIVES} positive labels or an AUC below 0.5: do not deploy this model (train on more members or days)"
            );
        }
    }
    Ok(())
}

/// Positive labels in a model's evaluation window below which its figures mean little.
const MIN_EVAL_POSITIVES: u64 = 30;

/// `claimwatch train --model cost`, after the replay: matured windows from the input's encounters
/// and the replay's paid amounts, ridge fit, report (see `memberrisk::train`).
fn train_cost(
    input: &std::path::Path,
    work: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use claimwatch::memberrisk::train;
    let opts = train::CostTrainOptions {
        source: format!("claimwatch train --model cost --input {}", input.display()),
        ..Default::default()
    };
    let refdata = claimwatch::refdata::RefData::shared();
    let examples = train::examples_from(&refdata, input, work, &opts)?;
    eprintln!(
        "[2/3] fitting the cost model on {} matured member windows",
        examples.len()
    );
    let model = train::fit(&examples, &opts)?;
    std::fs::create_dir_all(out)?;
    let path = out.join("cost.json");
    std::fs::write(&path, serde_json::to_string_pretty(&model)? + "\n")?;
    let report = train::report(&model);
    std::fs::write(out.join("cost-report.txt"), &report)?;
    println!("{report}");
    println!("wrote {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    if std::env::var("CLAIMWATCH_COUNT_HEAP").is_ok_and(|v| v.trim() == "1") {
        claimwatch::memory::count_heap();
    }
    let pages = claimwatch::memory::prefer_small_pages();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. } | Command::Demo { .. }) {
        quit_on_closed_stdout();
    }
    init_logging(cli.log_json);
    tracing::debug!(?pages, "transparent huge pages");
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text its parent's message
/// already includes (many error types print their source in their own message too).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The one-shot commands (generate, replay, x12, report, ...) end quietly when their output is
/// piped into a reader that stops early (`| head`), as command-line tools do, instead of
/// panicking on the failed print: the default action of SIGPIPE, which Rust programs ignore.
/// Not for the service and the demo, whose stdout may carry the audit log: a closed pipe must not
/// stop them.
fn quit_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: restores a signal's default disposition before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
