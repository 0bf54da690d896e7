//! A shared in-memory list with change notification, behind both receivers.
//!
//! Writers push under a short `std::sync::Mutex` (never held across an await) and bump a
//! `watch` generation; waiters re-check their predicate on every bump, so `wait_for` returns as
//! soon as the data is there without sleeping in a poll loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug)]
pub(crate) struct Store<T> {
    items: Mutex<Vec<T>>,
    requests: AtomicU64,
    generation: watch::Sender<u64>,
}

impl<T: Clone> Store<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Store {
            items: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            generation: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        // A panicking test thread must not poison the receiver for the rest of the test.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one request that delivered `items`.
    pub(crate) fn push_request(&self, items: impl IntoIterator<Item = T>) {
        self.lock().extend(items);
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub(crate) fn snapshot(&self) -> Vec<T> {
        self.lock().clone()
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
        self.generation.send_modify(|g| *g += 1);
    }

    pub(crate) fn request_count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits until `pred(items)` holds; on timeout returns the last snapshot as the error.
    pub(crate) async fn wait_for(
        &self,
        mut pred: impl FnMut(&[T]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<T>, Vec<T>> {
        let mut rx = self.generation.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Mark the current generation seen before checking, so a push between the check
            // and the wait still wakes us.
            rx.borrow_and_update();
            let snapshot = self.snapshot();
            if pred(&snapshot) {
                return Ok(snapshot);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                // The sender lives in `self`, so it cannot be dropped while we borrow it;
                // treat it as a timeout anyway rather than spin.
                Ok(Err(_)) | Err(_) => {
                    let snapshot = self.snapshot();
                    return if pred(&snapshot) {
                        Ok(snapshot)
                    } else {
                        Err(snapshot)
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_wakes_on_push_and_reports_on_timeout() {
        let store = Store::<u32>::new();
        let writer = store.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            writer.push_request([1, 2]);
        });
        let got = store
            .wait_for(|items| items.len() == 2, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(got, vec![1, 2]);
        task.await.unwrap();
        assert_eq!(store.request_count(), 1);

        let err = store
            .wait_for(|items| items.len() == 3, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!(err, vec![1, 2]);

        store.clear();
        assert!(store.snapshot().is_empty());
        // clear() keeps the request count: it counts deliveries, not stored items.
        assert_eq!(store.request_count(), 1);
    }
}
