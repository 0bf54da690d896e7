//! The OTLP retry rules around one export: retryable failures ([`Outcome::Retryable`]) are
//! sent again after an exponential back-off with jitter, or after the delay the collector asked
//! for (HTTP `Retry-After`, gRPC `RetryInfo`), as long as the export's deadline (the export
//! timeout) leaves room; permanent failures are not retried.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::{Duration, Instant};

use super::transport::{Outcome, Transport};

/// First back-off between two attempts of one export (before jitter).
pub(crate) const RETRY_INITIAL: Duration = Duration::from_millis(250);
/// Longest back-off between two attempts of one export (before jitter).
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(5);

/// An export that went through: spans the collector rejected (partial success) and why.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) rejected: i64,
    pub(crate) message: String,
}

/// Sends `body` until it is accepted, fails permanently, or `deadline` leaves no room for the
/// next attempt; returns the last error. `attempts` counts the requests sent.
pub(crate) async fn send(
    transport: &mut Transport,
    body: &bytes::Bytes,
    deadline: Instant,
    attempts: &mut u32,
) -> Result<Accepted, String> {
    let mut backoff = RETRY_INITIAL;
    loop {
        let now = Instant::now();
        let Some(left) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            return Err("export timeout reached before the request was sent".into());
        };
        *attempts += 1;
        match transport.send(body, left).await {
            Outcome::Sent { rejected, message } => return Ok(Accepted { rejected, message }),
            Outcome::Failed(error) => return Err(error),
            Outcome::Retryable { error, retry_after } => {
                let wait = retry_after.unwrap_or_else(|| jittered(backoff));
                backoff = (backoff * 2).min(RETRY_MAX);
                if Instant::now() + wait >= deadline {
                    return Err(match retry_after {
                        Some(after) => format!(
                            "{error} (the collector asked for a retry in {after:?}, past the \
                             export timeout)"
                        ),
                        None => error,
                    });
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// A delay in `[d/2, d]`, so that services restarted together do not retry in step.
fn jittered(d: Duration) -> Duration {
    // A fresh std hasher key per call is random enough for jitter; no RNG crate needed.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = d / 2;
    half + Duration::from_nanos(random % (half.as_nanos() as u64 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_full() {
        let d = Duration::from_millis(800);
        let samples: Vec<Duration> = (0..200).map(|_| jittered(d)).collect();
        assert!(
            samples.iter().all(|s| *s >= d / 2 && *s <= d),
            "{samples:?}"
        );
        // Not constant: jitter spreads the retries.
        assert!(samples.iter().any(|s| *s != samples[0]));
    }
}
