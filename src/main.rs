//! The `claimwatch` command: parses arguments, sets up logging, calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use claimwatch::codec::Format;
use claimwatch::config::CoreConfig;
use claimwatch::replay::{self, ReplayOptions};

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
    /// Write a calibrated synthetic population: the four input streams plus ground truth.
    Generate {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
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
        /// Stop after this many input records (after a checkpoint); run again to resume.
        #[arg(long)]
        stop_after: Option<u64>,
        /// Core configuration file (JSON); unknown fields are refused.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override the number of partitions.
        #[arg(long)]
        partitions: Option<u32>,
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
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum TrainWhich {
    Denial,
    Readmission,
    Both,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
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
        } => claimwatch::generate::write::generate_to_dir(members, seed, &out, format),
        Command::Replay {
            input,
            out,
            state,
            stop_after,
            config,
            partitions,
        } => {
            let mut config = load_config(config.as_ref())?;
            if let Some(p) = partitions {
                config.partitions = p;
            }
            if let Err(problems) = config.validate() {
                anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "));
            }
            let started = std::time::Instant::now();
            let report = replay::run(&ReplayOptions {
                input,
                out: out.clone(),
                state,
                config,
                stop_after,
            })?;
            let secs = started.elapsed().as_secs_f64();
            let records: u64 = report.summary.input_records.values().sum();
            println!("{}", report.summary.render());
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
        Command::Train {
            input,
            out,
            model,
            config,
        } => train(&input, &out, model, config.as_ref()),
    }
}

fn train(
    input: &std::path::Path,
    out: &std::path::Path,
    which: TrainWhich,
    config: Option<&PathBuf>,
) -> anyhow::Result<()> {
    use claimwatch::score::{train, ModelKind};
    let mut config = load_config(config)?;
    config.scoring.collect_training = true;
    if let Err(problems) = config.validate() {
        anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "));
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
            ..Default::default()
        };
        let truth = truth.as_ref().map(|(d, r)| match kind {
            ModelKind::Denial => d,
            ModelKind::Readmission => r,
        });
        let model = train::fit(*kind, &examples, truth, &opts).map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(out)?;
        let path = out.join(format!("{}.json", kind.as_str()));
        std::fs::write(&path, serde_json::to_string_pretty(&model)? + "\n")?;
        let report = train::report(&model);
        std::fs::write(out.join(format!("{}-report.txt", kind.as_str())), &report)?;
        println!("{report}");
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
