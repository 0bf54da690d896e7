//! Support for the browser end-to-end test (`tests/browser.rs`): the demo page in Debian's
//! headless Chromium, services a, b and c as processes, Bugsink as the Sentry server.
//!
//! - [`process`]: child processes stopped by pid on drop (SIGTERM, then SIGKILL), free ports,
//!   scratch directories.
//! - [`bugsink`]: a throwaway Bugsink (`scripts/bugsink-start.sh`) and its REST API.
//! - [`mesh`]: a, b and c on free loopback ports with the telemetry environment of a test.
//! - [`capture`]: an endpoint that records the headers a service sends downstream.
//! - [`driver`]: `frontend/scripts/drive.mjs` (playwright-core) and its JSON report.
//!
//! Everything the test needs from outside Cargo is installed by `scripts/ensure-*.sh`; when
//! something is missing, the error names the script that installs it.

pub mod bugsink;
pub mod capture;
pub mod driver;
pub mod mesh;
pub mod process;

pub use bugsink::Bugsink;
pub use driver::{drive, Drive, DriveReport};
pub use mesh::{Mesh, MeshConfig};
