//! Attribute buffers handed back from the export thread to the threads that start spans.
//!
//! Why (issue 11, docs/performance.md "Allocations per request"): a record's attribute list
//! and text buffer are allocated on a request thread and freed on the export thread, so both
//! sides miss glibc's per-thread cache — whole-process callgrind of service c counted ≈ 6.3 k
//! instructions of malloc and free per traced request over the bare process. Once a batch is
//! encoded, the export thread clears each record's [`Attrs`] (keeping its capacity) and puts
//! it here; a layer starting a span takes one instead of allocating two new buffers.
//!
//! Bounded twice: at most `capacity` buffers wait here (one export batch: what one export
//! hands back), and a buffer grown past [`MAX_ITEMS`] attributes or [`MAX_TEXT`] bytes of text
//! is freed rather than kept, so one odd span cannot pin a large allocation. A full pool frees
//! what does not fit; an empty one allocates, as before.

use crossbeam_queue::ArrayQueue;

use super::record::Attrs;

/// Largest attribute list kept for reuse (the span limit's default is 128).
pub(crate) const MAX_ITEMS: usize = 32;
/// Largest text buffer kept for reuse, in bytes.
pub(crate) const MAX_TEXT: usize = 1024;

/// Cleared attribute buffers waiting for reuse.
#[derive(Debug)]
pub(crate) struct AttrsPool {
    free: ArrayQueue<Attrs>,
}

impl AttrsPool {
    /// A pool of at most `capacity` buffers.
    pub(crate) fn new(capacity: usize) -> Self {
        AttrsPool {
            free: ArrayQueue::new(capacity.max(1)),
        }
    }

    /// A buffer with room for `items` attributes and `text` bytes: a reused one when the
    /// pool has one, else a new one.
    pub(crate) fn take(&self, items: usize, text: usize) -> Attrs {
        match self.free.pop() {
            Some(mut attrs) => {
                attrs.reserve(items, text);
                attrs
            }
            None => Attrs::with_capacity(items, text),
        }
    }

    /// Keeps `attrs` for reuse, emptied, unless it is too large or the pool is full.
    pub(crate) fn give(&self, mut attrs: Attrs) {
        let (items, text) = attrs.capacity();
        if items > MAX_ITEMS || text > MAX_TEXT {
            return;
        }
        attrs.clear();
        let _ = self.free.push(attrs);
    }

    /// Buffers waiting (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_with_its_room() {
        let pool = AttrsPool::new(2);
        let mut a = pool.take(4, 16);
        a.push_str("url.path", "/users/1");
        a.push_i64("server.port", 8080);
        let before = a.capacity();
        pool.give(a);
        assert_eq!(pool.len(), 1);
        let b = pool.take(2, 8);
        assert_eq!(pool.len(), 0);
        assert_eq!(b.len(), 0);
        assert_eq!(b.iter().count(), 0);
        assert_eq!(b.capacity(), before, "the same buffers, not new ones");
        // Asking for more room than it has grows it.
        pool.give(b);
        let c = pool.take(MAX_ITEMS, MAX_TEXT);
        assert!(c.capacity().0 >= MAX_ITEMS && c.capacity().1 >= MAX_TEXT);
    }

    #[test]
    fn oversized_buffers_and_a_full_pool_free_instead() {
        let pool = AttrsPool::new(1);
        pool.give(Attrs::with_capacity(MAX_ITEMS + 1, 0));
        pool.give(Attrs::with_capacity(0, MAX_TEXT + 1));
        assert_eq!(pool.len(), 0, "too large to keep");
        pool.give(Attrs::with_capacity(1, 1));
        pool.give(Attrs::with_capacity(1, 1));
        assert_eq!(pool.len(), 1, "bounded");
        // An empty pool allocates.
        let _ = pool.take(1, 1);
        let fresh = pool.take(3, 5);
        assert!(fresh.capacity().0 >= 3 && fresh.capacity().1 >= 5);
    }
}
