//! Writing a generated population to a directory: the four input streams (JSON lines or Avro
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
    fs::write(dir.join("truth.json"), serde_json::to_vec(&g.truth)?)?;
    fs::write(
        dir.join("calibration.json"),
        serde_json::to_vec_pretty(&g.stats)?,
    )?;
    Ok(())
}

/// `claimwatch generate`: generate, write, print the calibration report.
pub fn generate_to_dir(
    members: usize,
    seed: u64,
    dir: &Path,
    format: Format,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let g = generate(&GenerateConfig {
        members,
        seed,
        ..GenerateConfig::default()
    });
    write_population(&g, dir, format)?;
    println!("{}", g.stats.render());
    println!(
        "generated {} claims, {} encounters, {} acknowledgments, {} remittances in {:.2} s into {}",
        g.claims.len(),
        g.encounters.len(),
        g.acks.len(),
        g.remits.len(),
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}
