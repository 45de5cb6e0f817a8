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
        #[arg(long, value_enum, default_value_t = GenerateFormat::Json)]
        format: GenerateFormat,
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
        } => match format {
            GenerateFormat::Json => {
                claimwatch::generate::write::generate_to_dir(members, seed, &out, Format::Json)
            }
            GenerateFormat::Avro => {
                claimwatch::generate::write::generate_to_dir(members, seed, &out, Format::Avro)
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
            if s.dead_letters > 0 {
                tracing::warn!(
                    dead_letters = s.dead_letters,
                    file = claimwatch::x12::files::DEAD_LETTER_FILE,
                    "some transaction sets could not be parsed"
                );
            }
            Ok(())
        }
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
    }
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
