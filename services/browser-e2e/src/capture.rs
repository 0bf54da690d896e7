//! A loopback HTTP endpoint that records the request headers it receives: what a service sends
//! downstream, seen from outside (a's `POST /conformance` calls any URL through its
//! instrumented client).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Request headers of one request, lower-cased names, in arrival order.
pub type Headers = Vec<(String, String)>;

/// Answers every request `200 OK` (empty body) and keeps its headers; stops when dropped.
#[derive(Debug)]
pub struct HeaderCapture {
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    requests: Arc<Mutex<Vec<Headers>>>,
    task: JoinHandle<()>,
}

impl HeaderCapture {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<HeaderCapture> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/", listener.local_addr()?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    // One request per connection: read the head (and ignore any body), answer,
                    // close. Enough for a client that sends small bodies.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let headers = head
                        .split("\r\n\r\n")
                        .next()
                        .unwrap_or_default()
                        .lines()
                        .skip(1)
                        .filter_map(|line| line.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    store.lock().expect("capture lock").push(headers);
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Ok(HeaderCapture {
            url,
            requests,
            task,
        })
    }

    /// Headers of every request so far.
    pub fn requests(&self) -> Vec<Headers> {
        self.requests.lock().expect("capture lock").clone()
    }
}

impl Drop for HeaderCapture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every value of header `name` in `headers`.
pub fn values<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_each_request_s_headers_lower_cased() {
        let capture = HeaderCapture::start().await.unwrap();
        let res = reqwest::Client::new()
            .post(&capture.url)
            .header("Baggage", "sentry-trace_id=abc,k=v")
            .header(
                "sentry-trace",
                "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
            )
            .body("[]")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let requests = capture.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            values(&requests[0], "baggage").collect::<Vec<_>>(),
            ["sentry-trace_id=abc,k=v"]
        );
        assert_eq!(
            values(&requests[0], "sentry-trace").collect::<Vec<_>>(),
            ["0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1"]
        );
    }
}
