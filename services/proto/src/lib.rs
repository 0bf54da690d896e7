//! Generated types of `ping.proto`: the messages and the `PingB` / `PingC` clients and servers
//! of the tracebridge demo mesh.
//!
//! ```
//! use ping_proto::{PingReply, PingRequest};
//! let req = PingRequest { from: "a".into(), fail: false };
//! assert!(!req.fail);
//! let _ = PingReply::default();
//! ```

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("ping");

/// The gRPC service names as they appear on the wire (`{package}.{Service}`) and in span names.
pub const PING_B_SERVICE: &str = "ping.PingB";
/// See [`PING_B_SERVICE`].
pub const PING_C_SERVICE: &str = "ping.PingC";
