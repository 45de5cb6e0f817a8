//! A generated population replayed into a temporary directory: the fixture of the analytics tests
//! (tests/population.rs, tests/providers.rs, tests/cash_forecast.rs), included with
//! `#[path = "support/replayed.rs"] mod replayed;`.
#![allow(dead_code)] // each test uses its own part

use std::path::{Path, PathBuf};

use claimwatch::codec::Format;
use claimwatch::config::CoreConfig;
use claimwatch::generate::{generate, write::write_population, GenerateConfig, Generated};
use claimwatch::replay::{run, ReplayOptions};

/// The generated population (ground truth included) and the directory of its replay.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub g: Generated,
}

impl Fixture {
    /// Generates `members` with `seed`, writes them as JSON to `<dir>/in` and replays them with
    /// `config` into `<dir>/out`.
    ///
    /// The directory comes from [`crate::fixture_dir::tempdir`]: the tests keep their fixture in
    /// a `static`, which is never dropped.
    pub fn replay(members: usize, seed: u64, config: CoreConfig) -> Self {
        let dir = crate::fixture_dir::tempdir();
        let g = generate(&GenerateConfig {
            members,
            seed,
            ..GenerateConfig::default()
        });
        let input = dir.path().join("in");
        write_population(&g, &input, Format::Json).unwrap();
        run(&ReplayOptions {
            input,
            out: dir.path().join("out"),
            state: None,
            config,
            stop_after: None,
            close_open_windows: true,
        })
        .unwrap();
        Fixture { dir, g }
    }

    /// The replay's output directory.
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
}

/// The records of a JSON-lines file.
pub fn lines<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
