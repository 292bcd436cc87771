//! What the example programs share: logging setup and error reporting.
//! (A directory without `main.rs`, so cargo does not take it for an example.)

use std::process::ExitCode;

/// Logs to stderr, filtered by `TRAWL_LOG` (tracing's filter syntax), else
/// at `default` (`warn`, `info`, ...).
pub fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRAWL_LOG")
                .unwrap_or_else(|_| default.into()),
        )
        .init();
}

/// Prints `error: …` with its chain of causes to stderr, escaped for the
/// terminal (messages quote image contents and servers' answers); exit
/// status 2.
pub fn fail(e: &dyn std::error::Error) -> ExitCode {
    let escape =
        |e: &dyn std::error::Error| trawl::classify::escape_terminal(&e.to_string()).into_owned();
    let mut msg = format!("error: {}", escape(e));
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!("\n  caused by: {}", escape(s)));
        source = s.source();
    }
    eprintln!("{msg}");
    ExitCode::from(2)
}
