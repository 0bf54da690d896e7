//! The bounded queue between ending a span and the export thread.
//!
//! Pushing is lock-free (a [`crossbeam_queue::ArrayQueue`] ring, a [`crossbeam_queue::SegQueue`]
//! behind it, and an atomic length that bounds both); it takes the control lock only when the
//! queue length reaches a batch and the export thread has not been woken for it yet — once per
//! batch, never per span. A full queue drops the record: counted, and the first drop is logged
//! at once (the export thread reports the rest at most once per interval and the total at
//! shutdown).
//!
//! Why two parts (eighth session): a ring of `OTEL_BSP_MAX_QUEUE_SIZE` slots is written all the
//! way round however few records it holds, so all 2048 slots of ≈ 290 bytes (≈ 0.6 MiB) became
//! resident, while a served export thread rarely lets more than one batch wait. The ring now
//! holds two batches; records beyond it (a slow or dead collector) go to a `SegQueue`, whose
//! blocks are allocated as it fills and freed as it empties. A `SegQueue` alone would follow
//! what is queued as well, but its zeroed block per 31 records cost ≈ 500 instructions per
//! service-c request (docs/performance.md, "Eighth session"). Records leave the ring first, so
//! their order across the two parts is not kept; nothing depends on it.
//!
//! Flush and shutdown requests go through the same control lock; the export thread answers
//! each on its own channel once everything queued at the time of the request is exported.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crossbeam_queue::{ArrayQueue, SegQueue};

/// What the export thread is asked to do, under the control lock.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// A batch is ready.
    pub(crate) wake: bool,
    /// Flush requests: answered `true` when everything queued before them was exported.
    pub(crate) flushes: Vec<SyncSender<bool>>,
    /// Shutdown requests: answered like flushes, then the export thread ends.
    pub(crate) shutdowns: Vec<SyncSender<bool>>,
    /// The export thread has ended: requests are answered at once.
    pub(crate) stopped: bool,
}

/// A bounded multi-producer queue of records for one export thread.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    /// Where records go first: room for two batches.
    ring: ArrayQueue<T>,
    /// Where they go when the ring is full, up to the queue's capacity.
    overflow: SegQueue<T>,
    /// Records queued, counting a push from the moment it reserved its place (so the bound is
    /// exact under concurrent pushes).
    len: AtomicUsize,
    capacity: usize,
    batch: usize,
    dropped: AtomicU64,
    /// Set by the push that found a full batch; cleared by the export thread when it wakes.
    wake_pending: AtomicBool,
    /// The export thread has ended (what is pushed now is never exported).
    closed: AtomicBool,
    control: Mutex<Control>,
    signal: Condvar,
}

impl<T> Queue<T> {
    /// A queue of `capacity` records; the export thread is woken when `batch` are queued.
    pub(crate) fn new(capacity: usize, batch: usize) -> Self {
        let capacity = capacity.max(1);
        let batch = batch.clamp(1, capacity);
        Queue {
            ring: ArrayQueue::new(capacity.min(batch.saturating_mul(2))),
            overflow: SegQueue::new(),
            len: AtomicUsize::new(0),
            capacity,
            batch,
            dropped: AtomicU64::new(0),
            wake_pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            control: Mutex::new(Control::default()),
            signal: Condvar::new(),
        }
    }

    /// Queues `item`; returns false (the item is dropped and counted) when the queue is full.
    pub(crate) fn push(&self, item: T) -> bool {
        let queued = self.len.fetch_add(1, Ordering::AcqRel);
        if queued >= self.capacity {
            self.len.fetch_sub(1, Ordering::AcqRel);
            drop(item);
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    target: "tracebridge::pipeline",
                    dropped_spans = 1,
                    queue_size = self.capacity,
                    "span queue full: spans are dropped (counted; reported at most once per \
                     interval, the total at shutdown)"
                );
            }
            return false;
        }
        if let Err(item) = self.ring.push(item) {
            self.overflow.push(item);
        }
        if queued + 1 >= self.batch && !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.control().wake = true;
            self.signal.notify_one();
        }
        true
    }

    /// Takes up to `max` records into `into` (fewer than [`Queue::len`] when a push has
    /// reserved its place but not yet stored its record).
    pub(crate) fn pop_into(&self, into: &mut Vec<T>, max: usize) {
        while into.len() < max {
            match self.ring.pop().or_else(|| self.overflow.pop()) {
                Some(item) => {
                    self.len.fetch_sub(1, Ordering::AcqRel);
                    into.push(item);
                }
                None => break,
            }
        }
    }

    /// Records queued now.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether the export thread has ended (after shutdown): spans ending now are discarded,
    /// as the SDK discards spans that end after its provider was shut down.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// The batch size that wakes the export thread.
    pub(crate) fn batch(&self) -> usize {
        self.batch
    }

    /// Records dropped at the full queue since it was made.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For the export thread: waits until a batch is ready, a request arrives or `until`
    /// passes, then takes what was asked (the wake flag is cleared).
    pub(crate) fn wait(&self, until: Instant) -> Control {
        let mut control = self.control();
        loop {
            if control.wake
                || !control.flushes.is_empty()
                || !control.shutdowns.is_empty()
                || self.len() >= self.batch
            {
                break;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            control = self
                .signal
                .wait_timeout(control, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        self.wake_pending.store(false, Ordering::Release);
        Control {
            wake: std::mem::take(&mut control.wake),
            flushes: std::mem::take(&mut control.flushes),
            shutdowns: std::mem::take(&mut control.shutdowns),
            stopped: false,
        }
    }

    /// Asks the export thread to export everything queued now; the answer says whether it
    /// all went out.
    pub(crate) fn request_flush(&self) -> Receiver<bool> {
        self.request(|c, tx| c.flushes.push(tx))
    }

    /// Asks the export thread to export everything queued and end.
    pub(crate) fn request_shutdown(&self) -> Receiver<bool> {
        self.request(|c, tx| c.shutdowns.push(tx))
    }

    fn request(&self, add: impl FnOnce(&mut Control, SyncSender<bool>)) -> Receiver<bool> {
        let (tx, rx) = sync_channel(1);
        let mut control = self.control();
        if control.stopped {
            let _ = tx.send(self.len() == 0);
        } else {
            add(&mut control, tx);
            self.signal.notify_one();
        }
        rx
    }

    /// For the export thread, when it ends: requests from now on are answered at once.
    pub(crate) fn stop(&self) -> Control {
        let mut control = self.control();
        control.stopped = true;
        self.closed.store(true, Ordering::Relaxed);
        Control {
            wake: false,
            flushes: std::mem::take(&mut control.flushes),
            shutdowns: std::mem::take(&mut control.shutdowns),
            stopped: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_queue_drops_and_counts_exactly() {
        let q = Queue::new(4, 2);
        let pushed: Vec<bool> = (0..10).map(|i| q.push(i)).collect();
        assert_eq!(
            pushed,
            [true, true, true, true, false, false, false, false, false, false]
        );
        assert_eq!(q.dropped(), 6);
        let mut out = Vec::new();
        q.pop_into(&mut out, 3);
        assert_eq!(out, [0, 1, 2]);
        assert!(q.push(10));
        q.pop_into(&mut out, 10);
        assert_eq!(out, [0, 1, 2, 3, 10]);
        assert_eq!(q.dropped(), 6);
    }

    #[test]
    fn records_beyond_the_ring_wait_behind_it_up_to_the_capacity() {
        // A ring of two batches (4), the rest of the capacity (6) behind it.
        let q = Queue::new(10, 2);
        let pushed: Vec<bool> = (0..13).map(|i| q.push(i)).collect();
        assert_eq!(pushed, [[true; 10].as_slice(), &[false; 3]].concat());
        assert_eq!((q.len(), q.dropped()), (10, 3));
        let mut out = Vec::new();
        q.pop_into(&mut out, 3);
        assert_eq!(out, [0, 1, 2], "the ring first");
        assert_eq!(q.len(), 7);
        // Room again: a new record goes into the ring, behind what waits.
        assert!(q.push(13));
        q.pop_into(&mut out, 100);
        assert_eq!(out, [0, 1, 2, 3, 13, 4, 5, 6, 7, 8, 9]);
        assert_eq!(q.len(), 0);
        q.pop_into(&mut out, 100);
        assert_eq!(out.len(), 11, "nothing left");
    }

    #[test]
    fn the_bound_is_exact_under_concurrent_pushes() {
        let q = std::sync::Arc::new(Queue::new(1000, 100));
        let accepted: usize = (0..4)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || (0..1000).filter(|i| q.push(t * 1000 + i)).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!((accepted, q.len(), q.dropped()), (1000, 1000, 3000));
        let mut out = Vec::new();
        q.pop_into(&mut out, usize::MAX);
        out.sort_unstable();
        out.dedup();
        assert_eq!(
            (out.len(), q.len()),
            (1000, 0),
            "every accepted record, once"
        );
    }

    #[test]
    fn the_export_thread_is_woken_once_per_batch_not_per_record() {
        let q = Queue::new(100, 10);
        for i in 0..9 {
            q.push(i);
        }
        assert!(!q.control().wake, "woken before a batch was ready");
        q.push(9);
        assert!(q.control().wake, "a full batch wakes the export thread");
        q.control().wake = false;
        for i in 10..25 {
            q.push(i);
        }
        // Already woken for this batch: the pushes after it did not signal again.
        assert!(!q.control().wake);
        let taken = q.wait(Instant::now() + Duration::from_secs(60));
        assert!(
            !taken.wake,
            "nothing set the flag, but a full batch ends the wait"
        );
        q.push(25);
        assert!(
            q.control().wake,
            "after the wait, the next full batch wakes it again"
        );
    }
}
