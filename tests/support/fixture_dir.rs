//! A temporary directory for a test binary's shared fixture.
//!
//! A fixture kept in a `static` is never dropped, so its `TempDir` is never removed. The
//! directory is therefore made under Cargo's `target/tmp` (not the system's `/tmp`), named after
//! the test binary, and the ones earlier runs of the same binary left there are removed first:
//! what stays behind is one fixture per test binary, not one per run (each is up to ~120 MB).
//! Two runs of the same test binary at the same time would remove each other's fixture; Cargo
//! runs a crate's test binaries one after the other.

use std::path::Path;

pub fn tempdir() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let prefix = format!("fixture-{}-", env!("CARGO_CRATE_NAME"));
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(root)
        .expect("a directory under target/tmp")
}
