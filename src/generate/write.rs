//! Writing a generated population to a directory: the five input streams (JSON lines or Avro
//! container files), `truth.json` (ground truth) and `calibration.json`.

use std::fs;
use std::path::Path;

use anyhow::Context;

use super::{generate, GenerateConfig, Generated};
use crate::codec::Format;
use crate::model::InputStream;
use crate::replay::files::write_stream;

/// Writes `g` into `dir`.
pub fn write_population(g: &Generated, dir: &Path, format: Format) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_stream(dir, InputStream::Claims, format, &g.claims)?;
    write_stream(dir, InputStream::Encounters, format, &g.encounters)?;
    write_stream(dir, InputStream::Acks, format, &g.acks)?;
    write_stream(dir, InputStream::Remits, format, &g.remits)?;
    write_stream(dir, InputStream::Enrollment, format, &g.enrollments)?;
    fs::write(dir.join("truth.json"), serde_json::to_vec(&g.truth)?)?;
    fs::write(
        dir.join("calibration.json"),
        serde_json::to_vec_pretty(&g.stats)?,
    )?;
    Ok(())
}

/// File names of the X12 rendering of a population (see [`write_population_x12`]).
pub const X12_FILES: [&str; 3] = ["claims.837", "acks.277", "remits.835"];

/// Writes `g` into `dir` as X12: the claims as 837P/837I (`claims.837`), the
/// acknowledgments as 277CA (`acks.277`), the remittances as 835 (`remits.835`);
/// the encounters (which have no X12 form) as `ehr.encounters.jsonl`, plus
/// `truth.json` and `calibration.json`. `claimwatch x12 parse` of the three files
/// into the same directory makes it replayable; what X12 does not carry (the
/// claim's department, encounter id and expected amount, professional revenue
/// codes) is listed in `x12::write`.
pub fn write_population_x12(g: &Generated, dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Separate control-number ranges per file, so every ISA13 is unique.
    fs::write(dir.join(X12_FILES[0]), crate::x12::write_837(&g.claims, 1))?;
    fs::write(
        dir.join(X12_FILES[1]),
        crate::x12::write_277ca(&g.acks, 300_000_000),
    )?;
    fs::write(
        dir.join(X12_FILES[2]),
        crate::x12::write_835(&g.remits, 600_000_000),
    )?;
    write_stream(dir, InputStream::Encounters, Format::Json, &g.encounters)?;
    write_stream(dir, InputStream::Enrollment, Format::Json, &g.enrollments)?;
    fs::write(dir.join("truth.json"), serde_json::to_vec(&g.truth)?)?;
    fs::write(
        dir.join("calibration.json"),
        serde_json::to_vec_pretty(&g.stats)?,
    )?;
    Ok(())
}

/// `claimwatch generate --format x12`: like [`generate_to_dir`], writing X12 files.
pub fn generate_x12_to_dir(members: usize, seed: u64, dir: &Path) -> anyhow::Result<()> {
    let g = generate(&GenerateConfig {
        members,
        seed,
        ..GenerateConfig::default()
    });
    write_population_x12(&g, dir)?;
    println!("{}", g.stats.render());
    println!(
        "generated {} claims (837), {} acknowledgments (277CA), {} remittances (835) and {} encounters (JSON) into {}",
        g.claims.len(),
        g.acks.len(),
        g.remits.len(),
        g.encounters.len(),
        dir.display()
    );
    Ok(())
}

/// `claimwatch generate`: generate, write, print the calibration report.
pub fn generate_to_dir(
    members: usize,
    seed: u64,
    dir: &Path,
    format: Format,
) -> anyhow::Result<()> {
    generate_config_to_dir(
        &GenerateConfig {
            members,
            seed,
            ..GenerateConfig::default()
        },
        dir,
        format,
    )
}

/// [`generate_to_dir`] with every generator setting (e.g. a longer period).
pub fn generate_config_to_dir(
    config: &GenerateConfig,
    dir: &Path,
    format: Format,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let g = generate(config);
    write_population(&g, dir, format)?;
    println!("{}", g.stats.render());
    println!(
        "generated {} claims, {} encounters, {} acknowledgments, {} remittances, {} enrolment records in {:.2} s into {}",
        g.claims.len(),
        g.encounters.len(),
        g.acks.len(),
        g.remits.len(),
        g.enrollments.len(),
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}
