//! One init from the environment. SKELETON: lands with the init work (issue 2).

use crate::ConfigError;

/// Builder for overrides of the environment.
#[derive(Debug, Default)]
#[must_use]
pub struct Builder {}

/// Flushes spans and Sentry events when dropped.
#[derive(Debug)]
#[must_use = "dropping the guard flushes and shuts telemetry down"]
pub struct Guard {}

/// Initialises telemetry from the environment.
pub fn init() -> Result<Guard, ConfigError> {
    Builder::default().install()
}

impl Builder {
    /// Installs everything globally.
    pub fn install(self) -> Result<Guard, ConfigError> {
        Ok(Guard {})
    }
}
