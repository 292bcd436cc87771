//! The report's published JSON Schema: `docs/report.schema.json` is the
//! schema generated from the Rust types, it is a valid draft 2020-12 schema,
//! it rejects what the report never writes, and its shape cannot change
//! without `SCHEMA_VERSION` changing too.

use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trawl_advisory::AdvisoryDb;
use trawl_classify::{ImageInfo, Report, SCHEMA_VERSION, report_schema};
use trawl_inventory::Inventory;

mod schema_check;

/// The hash of the schema's shape (see [`shape_hash`]) for every
/// `SCHEMA_VERSION` there has been. A change to the report's shape fails
/// `the_shape_is_recorded_for_its_schema_version` until `SCHEMA_VERSION` is
/// bumped and the new version's hash is added here; the old entries stay.
const SHAPES: &[(u32, &str)] = &[(
    1,
    "7af60c9895aa49160a148d2d4d40d03db1cb3278020a840165c003a97c4d62e2",
)];

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/report.schema.json")
}

/// The schema without its prose (`description`, `title`): editing a doc
/// comment is not a change of shape.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "description" | "title"))
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        other => other.clone(),
    }
}

/// SHA-256 of the shape's compact JSON, keys sorted.
fn shape_hash(schema: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    hex::encode(Sha256::digest(sorted(&shape(schema)).to_string()))
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let generated = serde_json::to_string_pretty(&report_schema()).unwrap() + "\n";
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/report.schema.json is not the schema of the report types: regenerate it with \
         `cargo run -p trawl-cli -- schema report > docs/report.schema.json` \
         (and bump SCHEMA_VERSION if the shape changed)"
    );
    assert_eq!(schema_check::REPORT_SCHEMA, committed);
}

#[test]
fn the_shape_is_recorded_for_its_schema_version() {
    let schema = report_schema();
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        SCHEMA_VERSION
    );
    let hash = shape_hash(&schema);
    let recorded = SHAPES.iter().find(|(v, _)| *v == SCHEMA_VERSION);
    match recorded {
        Some((_, h)) => assert_eq!(
            *h,
            hash,
            "the report's shape changed under SCHEMA_VERSION {SCHEMA_VERSION}: bump \
             SCHEMA_VERSION and add ({}, \"{hash}\") to SHAPES",
            SCHEMA_VERSION + 1
        ),
        None => panic!("add ({SCHEMA_VERSION}, \"{hash}\") to SHAPES"),
    }
    // An old version's shape never comes back under a new number, nor
    // does a version repeat.
    for (i, (v, h)) in SHAPES.iter().enumerate() {
        assert!(SHAPES[..i].iter().all(|(w, g)| w < v && g != h), "{v}");
    }
    // Prose is not shape; a property is.
    let mut edited = schema.clone();
    edited["properties"]["source"]["description"] = json!("reworded");
    assert_eq!(shape_hash(&edited), hash);
    edited["properties"]["scanned_at"] = json!({"type": "string"});
    assert_ne!(shape_hash(&edited), hash);
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema = report_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("not a valid JSON Schema: {e}");
    }
}

fn unsupported_report() -> Value {
    let report = Report::generate(
        "dir:/empty",
        ImageInfo::default(),
        Inventory::default(),
        &AdvisoryDb::new(),
    );
    serde_json::to_value(&report).unwrap()
}

#[test]
fn the_schema_rejects_what_the_report_never_writes() {
    let report = unsupported_report();
    schema_check::assert_valid_report(&report);
    let broken: [(&str, fn(&mut Value)); 7] = [
        ("another schema_version", |r| {
            r["schema_version"] = json!(SCHEMA_VERSION + 1)
        }),
        ("an unknown verdict", |r| r["verdict"] = json!("fine")),
        ("a missing field", |r| {
            r.as_object_mut().unwrap().remove("warnings");
        }),
        ("an undeclared field", |r| r["scanned_at"] = json!("today")),
        ("a negative count", |r| r["summary"]["packages"] = json!(-1)),
        ("an unknown severity key", |r| {
            r["summary"]["by_severity"]["severe"] = json!(1)
        }),
        ("a package of an unknown type", |r| {
            r["packages"] = json!([{
                "type": "deb2", "name": "a", "version": "1", "arch": null,
                "source_name": "a", "source_version": "1", "purl": "pkg:deb/a@1",
                "layer": null, "database": "var/lib/dpkg/status"
            }])
        }),
    ];
    for (what, breaks) in broken {
        let mut r = report.clone();
        breaks(&mut r);
        assert!(
            !schema_check::report_errors(&r).is_empty(),
            "{what} was accepted"
        );
    }
}
