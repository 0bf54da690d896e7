//! Misbehaving backends for reliability tests and the benchmark: a closed port, a black hole
//! (accepts TCP, never reads or answers) and a slow proxy (forwards, but sleeps before every
//! chunk in either direction).
//!
//! Each server binds `127.0.0.1:0`, runs on the Tokio runtime it was started on, and stops
//! (closing every connection it holds) when dropped.

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A loopback port that was free a moment ago and has nothing listening on it now: a
/// connection to it is refused.
pub fn closed_port() -> io::Result<u16> {
    // Bind, read the port, close: the kernel does not hand the same port out again at once.
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Accepts every connection and holds it open, never reading or writing: a collector that
/// is "up" at the TCP level but never answers, so every request to it runs into its timeout.
#[derive(Debug)]
pub struct BlackHole {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl BlackHole {
    /// Starts listening on a free loopback port.
    pub async fn start() -> io::Result<BlackHole> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            // Held, not dropped: a dropped socket would close and the client would see a reset.
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(sock);
            }
        });
        Ok(BlackHole {
            addr,
            accepted,
            task,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP proxy in front of `target` that sleeps `delay` before forwarding each chunk it reads,
/// in both directions: a collector behind a slow link. Chunks of one direction keep their
/// order, so a request that needs several round trips pays the delay on each.
///
/// [`SlowProxy::pause`] holds every chunk (after its delay) until [`SlowProxy::resume`]: a
/// test can keep a request in flight for exactly as long as it needs, without timing.
#[derive(Debug)]
pub struct SlowProxy {
    addr: SocketAddr,
    chunks_in: Arc<AtomicU64>,
    paused: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SlowProxy {
    /// Starts the proxy on a free loopback port.
    pub async fn start(target: SocketAddr, delay: Duration) -> io::Result<SlowProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let chunks_in = Arc::new(AtomicU64::new(0));
        let counter = chunks_in.clone();
        let (paused, gate) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Owned here so that dropping the proxy (aborting this task) ends every connection.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((inbound, _)) = accepted else { return };
                        let counter = counter.clone();
                        let gate = gate.clone();
                        conns.spawn(async move {
                            let Ok(outbound) = TcpStream::connect(target).await else {
                                return;
                            };
                            let _ = inbound.set_nodelay(true);
                            let _ = outbound.set_nodelay(true);
                            let (ri, wi) = inbound.into_split();
                            let (ro, wo) = outbound.into_split();
                            tokio::join!(
                                pipe(ri, wo, delay, gate.clone(), Some(counter)),
                                pipe(ro, wi, delay, gate, None)
                            );
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(SlowProxy {
            addr,
            chunks_in,
            paused,
            task,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Chunks read from clients so far (counted before the delay, so a positive count means a
    /// client has started sending and nothing of that chunk has reached the target yet).
    pub fn chunks_in(&self) -> u64 {
        self.chunks_in.load(Ordering::SeqCst)
    }
}

impl SlowProxy {
    /// Holds every chunk, in both directions, until [`SlowProxy::resume`].
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Forwards again (each held chunk after its delay).
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `r` to `w`, sleeping `delay` before each chunk; ends when either side closes.
async fn pipe(
    mut r: OwnedReadHalf,
    mut w: OwnedWriteHalf,
    delay: Duration,
    mut gate: watch::Receiver<bool>,
    counter: Option<Arc<AtomicU64>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(c) = &counter {
            c.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(delay).await;
        // The sender lives as long as the proxy, which outlives this pipe.
        if gate.wait_for(|paused| !*paused).await.is_err() {
            break;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Pass the half-close on, so the other side sees the end of the stream.
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_port_refuses() {
        let port = closed_port().unwrap();
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    }

    #[tokio::test]
    async fn black_hole_accepts_and_never_answers() {
        let hole = BlackHole::start().await.unwrap();
        let mut sock = TcpStream::connect(hole.addr()).await.unwrap();
        sock.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 16];
        // Nothing comes back: the read is still pending when the (generous) bound expires.
        let read = tokio::time::timeout(Duration::from_millis(300), sock.read(&mut buf)).await;
        assert!(read.is_err(), "the black hole answered: {read:?}");
        assert_eq!(hole.accepted(), 1);
        drop(hole);
        // Dropping it closes what it held: the read ends (EOF or reset).
        let read = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }

    #[tokio::test]
    async fn slow_proxy_forwards_both_ways_and_counts_chunks() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let proxy = SlowProxy::start(target, Duration::from_millis(10))
            .await
            .unwrap();
        let mut sock = TcpStream::connect(proxy.addr()).await.unwrap();
        sock.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        sock.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        assert!(proxy.chunks_in() >= 1);
        assert_eq!(proxy.endpoint(), format!("http://{}", proxy.addr()));
    }

    #[tokio::test]
    async fn paused_proxy_holds_chunks_until_resumed() {
        let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = target.local_addr().unwrap();
        let proxy = SlowProxy::start(addr, Duration::ZERO).await.unwrap();
        proxy.pause();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let (mut server, _) = target.accept().await.unwrap();
        client.write_all(b"ping").await.unwrap();
        while proxy.chunks_in() == 0 {
            tokio::task::yield_now().await;
        }
        // Read by the proxy, held: nothing has reached the target.
        let mut buf = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(200), server.read(&mut buf)).await;
        assert!(early.is_err(), "a paused proxy forwarded: {early:?}");
        proxy.resume();
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }
}
