//! Logging: `tracing` with structured fields; pretty locally, JSON lines with
//! `FRONTDESK_LOG_FORMAT=json`; the filter comes from `RUST_LOG` (default `info`). Logs go to
//! stderr, so a command's `--json` output on stdout stays machine-readable.

use crate::config::{LogFormat, LogSettings};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Errors: the filter is invalid (the message names `RUST_LOG`).
/// A second call keeps the first subscriber (tests start several apps).
pub fn init(log: &LogSettings) -> Result<(), String> {
    let filter = EnvFilter::try_new(&log.filter)
        .map_err(|err| format!("invalid RUST_LOG {:?}: {err}", log.filter))?;
    let result = match log.format {
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    // Already initialised (a test started another app first): keep the first subscriber.
    drop(result);
    Ok(())
}
