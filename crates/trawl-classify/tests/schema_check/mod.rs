//! Validates JSON reports against the published schema,
//! `docs/report.schema.json` (the committed file, which `tests/schema.rs`
//! keeps equal to `trawl_classify::report_schema()`).
//!
//! Shared by this crate's tests and the workspace's end-to-end tests (through
//! `#[path]`): every test that produces a JSON report passes it here.
#![allow(dead_code)]

use std::sync::OnceLock;

use serde_json::Value;

/// The committed schema's text.
pub const REPORT_SCHEMA: &str = include_str!("../../../../docs/report.schema.json");

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(REPORT_SCHEMA).expect("docs/report.schema.json");
        jsonschema::draft202012::new(&schema).expect("docs/report.schema.json compiles")
    })
}

/// Every way `json` breaks the report schema (`path: message`); empty when
/// it is valid.
pub fn report_errors(json: &Value) -> Vec<String> {
    validator()
        .iter_errors(json)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
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
