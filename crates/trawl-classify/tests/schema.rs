//! The published JSON Schemas of the report and the inventory document:
//! `docs/report.schema.json` and `docs/inventory.schema.json` are the
//! schemas generated from the Rust types, they are valid draft 2020-12
//! schemas, they reject what trawl never writes, and their shape cannot
//! change without `SCHEMA_VERSION` changing too.

use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trawl_advisory::AdvisoryDb;
use trawl_classify::{
    ImageInfo, InventoryDocument, Report, SCHEMA_VERSION, inventory_schema, report_schema,
};
use trawl_inventory::Inventory;

mod schema_check;

/// The hash of the schemas' shape (see [`shape_hash`]; both schemas) for
/// every `SCHEMA_VERSION` there has been. A change to either document's
/// shape fails `the_shape_is_recorded_for_its_schema_version` until
/// `SCHEMA_VERSION` is bumped and the new version's hash is added here; the
/// old entries stay.
const SHAPES: &[(u32, &str)] = &[(
    1,
    "ee3ed65083281018b23ab021e8825f75526f7e493e2aed53a065c81c9dee889a",
)];

fn committed_path(document: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../docs/{document}.schema.json"))
}

/// Both published schemas, as one value.
fn both() -> Value {
    json!([report_schema(), inventory_schema()])
}

/// The schemas without their prose (`description`, `title`): editing a doc
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
fn shape_hash(schemas: &Value) -> String {
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
    hex::encode(Sha256::digest(sorted(&shape(schemas)).to_string()))
}

#[test]
fn the_committed_schemas_are_the_generated_ones() {
    for (document, schema, included) in [
        ("report", report_schema(), schema_check::REPORT_SCHEMA),
        (
            "inventory",
            inventory_schema(),
            schema_check::INVENTORY_SCHEMA,
        ),
    ] {
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let committed = std::fs::read_to_string(committed_path(document)).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/{document}.schema.json is not the schema of the types: regenerate it with \
             `cargo run -p trawl-cli -- schema {document} > docs/{document}.schema.json` \
             (and bump SCHEMA_VERSION if the shape changed)"
        );
        assert_eq!(included, committed);
    }
}

#[test]
fn the_shape_is_recorded_for_its_schema_version() {
    let schemas = both();
    for schema in schemas.as_array().unwrap() {
        assert_eq!(
            schema["properties"]["schema_version"]["const"],
            SCHEMA_VERSION
        );
    }
    let hash = shape_hash(&schemas);
    match SHAPES.iter().find(|(v, _)| *v == SCHEMA_VERSION) {
        Some((_, recorded)) => assert_eq!(
            *recorded,
            hash,
            "the JSON shape changed under SCHEMA_VERSION {SCHEMA_VERSION}: bump \
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
    let mut edited = schemas.clone();
    edited[0]["properties"]["source"]["description"] = json!("reworded");
    assert_eq!(shape_hash(&edited), hash);
    edited[1]["properties"]["scanned_at"] = json!({"type": "string"});
    assert_ne!(shape_hash(&edited), hash);
}

#[test]
fn the_schemas_are_valid_draft_2020_12_schemas() {
    for schema in [report_schema(), inventory_schema()] {
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("not a valid JSON Schema: {e}");
        }
    }
}

/// Makes a valid document invalid in one way.
type Breaks = fn(&mut Value);

fn unsupported_report() -> Report {
    Report::generate(
        "dir:/empty",
        ImageInfo::default(),
        Inventory::default(),
        &AdvisoryDb::new(),
    )
}

#[test]
fn the_report_schema_rejects_what_the_report_never_writes() {
    let report = serde_json::to_value(unsupported_report()).unwrap();
    schema_check::assert_valid_report(&report);
    let mut with_database = report.clone();
    with_database["advisory_database"] =
        json!({"path": "/var/cache/trawl/trawl.db", "built_at": null, "age_seconds": null});
    schema_check::assert_valid_report(&with_database);
    let broken: [(&str, Breaks); 8] = [
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
        ("a database without its path", |r| {
            r["advisory_database"] = json!({"built_at": null, "age_seconds": null})
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

#[test]
fn the_inventory_schema_takes_the_inventory_and_not_a_report() {
    let report = unsupported_report();
    let inventory = serde_json::to_value(InventoryDocument::from(&report)).unwrap();
    schema_check::assert_valid_inventory(&inventory);
    let report = serde_json::to_value(&report).unwrap();
    assert!(!schema_check::inventory_errors(&report).is_empty());
    assert!(!schema_check::report_errors(&inventory).is_empty());
}
