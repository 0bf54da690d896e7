//! tracebridge — one trace id across W3C, Jaeger, Sentry and B3 headers, for axum, tonic and
//! reqwest. (Crate docs with the compiled quick start land with the layers.)

pub mod config;
pub mod global;
pub mod grpc;
pub mod http;
pub mod init;
pub mod propagation;
pub mod redact;
pub mod sentry;
pub mod shutdown;

mod body;
pub mod export;
mod span;

pub use config::ConfigError;
pub use init::{init, Builder, Guard};
pub use propagation::{Format, Propagator};
pub use shutdown::shutdown_signal;
