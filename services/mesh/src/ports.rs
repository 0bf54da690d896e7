//! The four listen addresses of a mesh: the contract's defaults when they are free, any free
//! loopback port otherwise (so the demo runs next to another copy, or next to a compose stack).

use std::net::{SocketAddr, TcpListener};

use demo_common::env;

/// Where a, b and c listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// a's HTTP (`A_LISTEN`).
    pub a: SocketAddr,
    /// b's gRPC (`B_LISTEN`).
    pub b: SocketAddr,
    /// c's gRPC (`C_LISTEN`).
    pub c: SocketAddr,
    /// c's HTTP (`C_HTTP_LISTEN`).
    pub c_http: SocketAddr,
}

impl Ports {
    /// The contract's default addresses, each replaced by a free port when it is taken.
    pub fn defaults_or_free() -> std::io::Result<Self> {
        let pick = |default: &str| -> std::io::Result<SocketAddr> {
            let addr: SocketAddr = default.parse().expect("contract defaults are valid addresses");
            match TcpListener::bind(addr) {
                Ok(_) => Ok(addr),
                Err(_) => free_port(),
            }
        };
        Ports::distinct(|i| {
            pick([
                env::DEFAULT_A_LISTEN,
                env::DEFAULT_B_LISTEN,
                env::DEFAULT_C_LISTEN,
                env::DEFAULT_C_HTTP_LISTEN,
            ][i])
        })
    }

    /// Four free loopback ports (what the tests use).
    pub fn free() -> std::io::Result<Self> {
        Ports::distinct(|_| free_port())
    }

    fn distinct(mut pick: impl FnMut(usize) -> std::io::Result<SocketAddr>) -> std::io::Result<Self> {
        let mut chosen: Vec<SocketAddr> = Vec::with_capacity(4);
        for i in 0..4 {
            let mut addr = pick(i)?;
            // The OS may hand the same ephemeral port out twice once the probe socket is closed.
            while chosen.contains(&addr) {
                addr = free_port()?;
            }
            chosen.push(addr);
        }
        Ok(Ports { a: chosen[0], b: chosen[1], c: chosen[2], c_http: chosen[3] })
    }

    /// a's base URL, `http://127.0.0.1:PORT`.
    pub fn a_url(&self) -> String {
        format!("http://{}", self.a)
    }
}

/// A loopback port that was free a moment ago (the probe socket is closed before the service
/// binds it; a service that loses that race exits with a clear error instead of hanging).
pub fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_loopback_ports() {
        let p = Ports::free().unwrap();
        let all = [p.a, p.b, p.c, p.c_http];
        for (i, x) in all.iter().enumerate() {
            assert!(x.ip().is_loopback());
            assert_ne!(x.port(), 0);
            assert!(!all[i + 1..].contains(x));
        }
    }

    #[test]
    fn a_taken_default_is_replaced() {
        // Hold a's default (or observe it is already taken by someone else): either way the
        // chosen address must be bindable-looking and different from a held socket.
        let held = TcpListener::bind(env::DEFAULT_A_LISTEN);
        let p = Ports::defaults_or_free().unwrap();
        if held.is_ok() {
            assert_ne!(p.a, env::DEFAULT_A_LISTEN.parse::<SocketAddr>().unwrap());
        }
        assert!(p.a.ip().is_loopback());
    }
}
