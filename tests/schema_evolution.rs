//! Schema evolution: every released version of a schema (kept in `schemas/history/<version>/`) can
//! be read with the current schema, and data written with an old version decodes into today's
//! types. A change that breaks old data fails here before it ships.

use std::fs;
use std::path::Path;

use claimwatch::codec::avro::{can_read, SchemaKind};

fn history() -> Vec<(String, String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/history");
    let mut out = Vec::new();
    for version in fs::read_dir(&root).unwrap() {
        let version = version.unwrap().path();
        for file in fs::read_dir(&version).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            out.push((
                version.file_name().unwrap().to_string_lossy().into_owned(),
                name,
                fs::read_to_string(&file).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn every_released_schema_is_readable_with_the_current_one() {
    let history = history();
    assert!(
        history.len() >= SchemaKind::ALL.len(),
        "a released version of every schema is kept"
    );
    for kind in SchemaKind::ALL {
        let released: Vec<_> = history
            .iter()
            .filter(|(_, n, _)| n == kind.name())
            .collect();
        assert!(
            !released.is_empty(),
            "{} has no released version in schemas/history",
            kind.name()
        );
        for (version, _, old) in released {
            can_read(old, kind.text())
                .unwrap_or_else(|e| panic!("{} {version} -> current: {e}", kind.name()));
        }
    }
}

#[test]
fn the_check_catches_an_incompatible_change() {
    let old = SchemaKind::ClaimAck.text();
    // A new required field without a default cannot be filled from old data.
    let mut v: serde_json::Value = serde_json::from_str(old).unwrap();
    v["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "new_required", "type": "string"}));
    assert!(can_read(old, &v.to_string()).is_err());
    // The same field with a default is a compatible change.
    v["fields"].as_array_mut().unwrap().pop();
    v["fields"].as_array_mut().unwrap().push(
        serde_json::json!({"name": "new_optional", "type": ["null", "string"], "default": null}),
    );
    assert!(can_read(old, &v.to_string()).is_ok());
    // Changing a field's type is not.
    let mut w: serde_json::Value = serde_json::from_str(old).unwrap();
    w["fields"][3]["type"] = serde_json::json!("int");
    assert!(can_read(old, &w.to_string()).is_err());
}
