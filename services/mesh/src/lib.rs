//! The demo mesh as a library: starting a, b and c as processes ([`process`]), choosing their
//! ports ([`ports`]), the demo's requests in every header format ([`traffic`]) and the report
//! printed per trace ([`report`]). The `mesh` binary and the end-to-end tests share it.

pub mod ports;
pub mod process;
pub mod report;
pub mod traffic;
pub mod view;

pub use ports::Ports;
pub use process::{Launcher, Mesh, MeshError, Options, Service};
pub use traffic::{Answer, Incoming, Parent};
