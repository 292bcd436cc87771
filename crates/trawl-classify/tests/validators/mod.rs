//! The formats' own validators, run as external programs: Microsoft's SARIF
//! Multitool (npm `@microsoft/sarif-multitool`), CycloneDX's Python library
//! (`cyclonedx-python-lib[json-validation]`) and SPDX's `pyspdxtools` (PyPI
//! `spdx-tools`). A validator that is not installed is reported and skipped,
//! except under CI (`$CI` set), where `.ci/run` installs all three and a
//! missing one fails the test.
//!
//! Shared by this crate's tests and the workspace's end-to-end tests (through
//! `#[path]`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The outcome of running a validator: `None` when it is not installed.
pub type Verdict = Option<Result<(), String>>;

pub fn installed(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn skip(validator: &str, install: &str) -> Verdict {
    assert!(
        std::env::var_os("CI").is_none(),
        "{validator} validator missing under CI (install with `{install}`)"
    );
    eprintln!("skipping {validator} validation: not installed (install with `{install}`)");
    None
}

/// The SARIF Multitool executable: `$SARIF_MULTITOOL`, else the native
/// binary the npm package `@microsoft/sarif-multitool` resolves to. Its
/// `sarif-multitool` wrapper is not used: it hands the arguments to a shell,
/// which splits `Gh;Sarif` at the semicolon.
pub fn sarif_multitool_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SARIF_MULTITOOL") {
        return Some(PathBuf::from(path));
    }
    let root = Command::new("npm").args(["root", "-g"]).output().ok()?;
    let root = String::from_utf8(root.stdout).ok()?;
    let resolved = Command::new("node")
        .args(["-p", "require('@microsoft/sarif-multitool')"])
        .env("NODE_PATH", root.trim())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(resolved.stdout).ok()?.trim());
    path.is_file().then_some(path)
}

/// SARIF Multitool's `validate` exits 0 even when the log is invalid: its
/// findings are results in its own SARIF output, so those are read instead.
/// Errors and warnings fail; notes are advice.
pub fn sarif_multitool(text: &str) -> Verdict {
    let Some(multitool) = sarif_multitool_binary() else {
        return skip(
            "SARIF",
            "npm install -g --allow-scripts=@microsoft/sarif-multitool-linux @microsoft/sarif-multitool",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("report.sarif");
    let output = dir.path().join("validation.sarif");
    std::fs::write(&input, text).unwrap();
    let run = Command::new(&multitool)
        .arg("validate")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        // `Gh` adds GitHub code scanning's own requirements to the SARIF rules.
        .args([
            "--rule-kind",
            "Gh;Sarif",
            "--log",
            "ForceOverwrite",
            "--quiet",
        ])
        .output()
        .unwrap();
    if !run.status.success() {
        return Some(Err(format!(
            "sarif-multitool failed: {}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        )));
    }
    let log: Value = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    let problems: Vec<String> = log["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| matches!(r["level"].as_str(), Some("error" | "warning") | None))
        .map(|r| format!("{} {}: {}", r["level"], r["ruleId"], r["message"]))
        .collect();
    Some(if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    })
}

pub fn run_stdin(program: &str, args: &[&str], stdin: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// CycloneDX's strict JSON schema validation (no properties beyond the
/// specification's), from `cyclonedx-python-lib`.
pub fn cyclonedx_validator(text: &str) -> Verdict {
    const SCRIPT: &str = "import sys\n\
        from cyclonedx.schema import SchemaVersion\n\
        from cyclonedx.validation.json import JsonStrictValidator\n\
        errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(sys.stdin.read(), all_errors=True)\n\
        errors = list(errors or [])\n\
        for e in errors: print(e, file=sys.stderr)\n\
        sys.exit(1 if errors else 0)\n";
    if !installed(
        "python3",
        &["-c", "import cyclonedx.validation.json, jsonschema"],
    ) {
        return skip(
            "CycloneDX",
            "pip install 'cyclonedx-python-lib[json-validation]'",
        );
    }
    Some(run_stdin("python3", &["-c", SCRIPT], text))
}

/// `pyspdxtools -i FILE` parses and validates; it exits 1 on any problem.
pub fn spdx_validator(text: &str) -> Verdict {
    if !installed("pyspdxtools", &["--help"]) {
        return skip("SPDX", "pip install spdx-tools");
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("report.spdx.json");
    std::fs::write(&input, text).unwrap();
    let out = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    Some(if out.status.success() && !stderr.contains("ERROR") {
        Ok(())
    } else {
        Err(format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)))
    })
}

pub fn assert_valid(name: &str, verdict: Verdict) {
    if let Some(Err(e)) = verdict {
        panic!("{name} validation failed:\n{e}");
    }
}
