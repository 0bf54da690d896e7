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
        Ports::preferred_or_free([
            env::DEFAULT_A_LISTEN,
            env::DEFAULT_B_LISTEN,
            env::DEFAULT_C_LISTEN,
            env::DEFAULT_C_HTTP_LISTEN,
        ])
    }

    /// `preferred` (a, b, c, c_http), each replaced by a free port when it is taken.
    pub fn preferred_or_free(preferred: [&str; 4]) -> std::io::Result<Self> {
        Ports::distinct(|i| {
            let addr: SocketAddr = preferred[i]
                .parse()
                .map_err(|e| std::io::Error::other(format!("{:?}: {e}", preferred[i])))?;
            match TcpListener::bind(addr) {
                Ok(_) => Ok(addr),
                Err(_) => free_port(),
            }
        })
    }

    /// Four free loopback ports (what the tests use).
    pub fn free() -> std::io::Result<Self> {
        Ports::distinct(|_| free_port())
    }

    fn distinct(
        mut pick: impl FnMut(usize) -> std::io::Result<SocketAddr>,
    ) -> std::io::Result<Self> {
        let mut chosen: Vec<SocketAddr> = Vec::with_capacity(4);
        for i in 0..4 {
            let mut addr = pick(i)?;
            // The OS may hand the same ephemeral port out twice once the probe socket is closed.
            while chosen.contains(&addr) {
                addr = free_port()?;
            }
            chosen.push(addr);
        }
        Ok(Ports {
            a: chosen[0],
            b: chosen[1],
            c: chosen[2],
            c_http: chosen[3],
        })
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
    fn a_taken_preferred_port_is_replaced_and_a_free_one_kept() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = held.local_addr().unwrap();
        let free = free_port().unwrap();
        let (t, f) = (taken.to_string(), free.to_string());
        let (c, c_http) = (
            free_port().unwrap().to_string(),
            free_port().unwrap().to_string(),
        );
        let p = Ports::preferred_or_free([&t, &f, &c, &c_http]).unwrap();
        assert_ne!(p.a, taken, "a taken port is replaced");
        assert!(p.a.ip().is_loopback() && p.a.port() != 0);
        assert_eq!(p.b, free, "a free preferred port is kept");
    }
}
