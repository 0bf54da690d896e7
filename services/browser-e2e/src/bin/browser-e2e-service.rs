//! `browser-e2e-service a|b|c`: the demo service of that name, exactly as its own binary runs it
//! (same library entry point), for the browser end-to-end test.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("a") => service_a::main(),
        Some("b") => service_b::main(),
        Some("c") => service_c::main(),
        other => {
            eprintln!("usage: browser-e2e-service a|b|c (got {other:?})");
            ExitCode::from(2)
        }
    }
}
