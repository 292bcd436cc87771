//! Validates JSON reports and inventories against the published schemas,
//! `docs/report.schema.json` and `docs/inventory.schema.json` (the committed
//! files, which `tests/schema.rs` keeps equal to `trawl_classify::report_schema()`
//! and `inventory_schema()`).
//!
//! Shared by this crate's tests and the workspace's end-to-end tests (through
//! `#[path]`): every test that produces a JSON report or inventory passes it
//! here.
#![allow(dead_code)]

use std::sync::OnceLock;

use serde_json::Value;

/// The committed report schema's text.
pub const REPORT_SCHEMA: &str = include_str!("../../../../docs/report.schema.json");
/// The committed inventory schema's text.
pub const INVENTORY_SCHEMA: &str = include_str!("../../../../docs/inventory.schema.json");

fn validator(schema: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(schema).expect("a committed schema is JSON");
    jsonschema::draft202012::new(&schema).expect("a committed schema compiles")
}

fn errors(validator: &jsonschema::Validator, json: &Value) -> Vec<String> {
    validator
        .iter_errors(json)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Every way `json` breaks the report schema (`path: message`); empty when
/// it is valid.
pub fn report_errors(json: &Value) -> Vec<String> {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    errors(VALIDATOR.get_or_init(|| validator(REPORT_SCHEMA)), json)
}

/// Every way `json` breaks the inventory schema; empty when it is valid.
pub fn inventory_errors(json: &Value) -> Vec<String> {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    errors(VALIDATOR.get_or_init(|| validator(INVENTORY_SCHEMA)), json)
}

/// Panics, naming every violation, unless `json` is a valid inventory
/// document (`trawl scan --inventory-only --format json`).
pub fn assert_valid_inventory(json: &Value) {
    let errors = inventory_errors(json);
    assert!(
        errors.is_empty(),
        "the inventory does not match docs/inventory.schema.json:\n{}",
        errors.join("\n")
    );
}

/// Panics, naming every violation, unless `json` is a valid report.
pub fn assert_valid_report(json: &Value) {
    let errors = report_errors(json);
    assert!(
        errors.is_empty(),
        "the report does not match docs/report.schema.json:\n{}",
        errors.join("\n")
    );
}

/// [`assert_valid_report`] of a value's JSON serialisation (a `Report`).
pub fn assert_serializes_to_valid_report(report: &impl serde::Serialize) {
    assert_valid_report(&serde_json::to_value(report).expect("serialise the report"));
}
