//! Severity, fix state, image verdicts, remediation and report formats for Trawl.
#![deny(missing_docs)]
