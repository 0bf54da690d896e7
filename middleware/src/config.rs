//! Configuration from the standard `OTEL_*` / `SENTRY_*` environment variables.
//!
//! SKELETON: the full parser lands with the init work (issue 2).

/// A configuration value that cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The environment variable (or builder setting) at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}
