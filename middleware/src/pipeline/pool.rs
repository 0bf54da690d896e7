//! Attribute buffers handed back from the export thread to the threads that start spans.
//!
//! Why (issue 11, docs/performance.md "Allocations per request"): a record's attribute list
//! and text buffer are allocated on a request thread and freed on the export thread, so both
//! sides miss glibc's per-thread cache — whole-process callgrind of service c counted ≈ 6.3 k
//! instructions of malloc and free per traced request over the bare process. Once a batch is
//! encoded, the export thread clears each record's [`Attrs`] (keeping its capacity) and puts
//! it here; a layer starting a span takes one instead of allocating two new buffers.
//!
//! Span events' attribute lists (`Vec<KeyValue>`, what `tracing` events become) and the
//! strings of span and event names built per request (`GET /users/{id}`, an event's message)
//! come back the same way: the layers take one, the export thread clears and returns it.
//!
//! Bounded twice: at most `capacity` buffers of each kind wait here (one export batch: what one
//! export hands back), and a buffer grown past [`MAX_ITEMS`] attributes or [`MAX_TEXT`] bytes
//! of text is freed rather than kept, so one odd span cannot pin a large allocation. A full
//! pool frees what does not fit; an empty one allocates, as before.

use crossbeam_queue::ArrayQueue;
use opentelemetry::KeyValue;

use super::record::Attrs;

/// Largest attribute list kept for reuse (the span limit's default is 128).
pub(crate) const MAX_ITEMS: usize = 32;
/// Largest text buffer kept for reuse, in bytes.
pub(crate) const MAX_TEXT: usize = 1024;

/// Cleared attribute buffers waiting for reuse.
#[derive(Debug)]
pub(crate) struct AttrsPool {
    free: ArrayQueue<Attrs>,
    /// Cleared attribute lists of span events.
    event_attrs: ArrayQueue<Vec<KeyValue>>,
    /// Cleared strings of span and event names.
    names: ArrayQueue<String>,
}

impl AttrsPool {
    /// A pool of at most `capacity` buffers.
    pub(crate) fn new(capacity: usize) -> Self {
        AttrsPool {
            free: ArrayQueue::new(capacity.max(1)),
            event_attrs: ArrayQueue::new(capacity.max(1)),
            names: ArrayQueue::new(capacity.max(1)),
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

    /// An event's attribute list with room for `items`: a reused one when the pool has one.
    pub(crate) fn take_event_attrs(&self, items: usize) -> Vec<KeyValue> {
        match self.event_attrs.pop() {
            Some(mut list) => {
                list.reserve(items);
                list
            }
            None => Vec::with_capacity(items),
        }
    }

    /// Keeps an event's attribute list for reuse, emptied, unless it is too large or the pool
    /// is full.
    pub(crate) fn give_event_attrs(&self, mut list: Vec<KeyValue>) {
        if list.capacity() == 0 || list.capacity() > MAX_ITEMS {
            return;
        }
        list.clear();
        let _ = self.event_attrs.push(list);
    }

    /// A string with room for `len` bytes, for a span's or an event's name: a reused one when
    /// the pool has one.
    pub(crate) fn take_name(&self, len: usize) -> String {
        match self.names.pop() {
            Some(mut name) => {
                name.reserve(len);
                name
            }
            None => String::with_capacity(len),
        }
    }

    /// Keeps a name's string for reuse, emptied, unless it is too large or the pool is full.
    pub(crate) fn give_name(&self, mut name: String) {
        if name.capacity() == 0 || name.capacity() > MAX_TEXT {
            return;
        }
        name.clear();
        let _ = self.names.push(name);
    }

    /// Buffers waiting (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }

    /// Name strings waiting (tests).
    #[cfg(test)]
    pub(crate) fn names_len(&self) -> usize {
        self.names.len()
    }

    /// Event attribute lists waiting (tests).
    #[cfg(test)]
    pub(crate) fn event_attrs_len(&self) -> usize {
        self.event_attrs.len()
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

    #[test]
    fn event_attribute_lists_come_back_empty_with_their_room_and_bounded() {
        let pool = AttrsPool::new(2);
        let mut list = pool.take_event_attrs(6);
        list.push(KeyValue::new("message", String::from("owned")));
        list.push(KeyValue::new("level", "INFO"));
        let (ptr, cap) = (list.as_ptr(), list.capacity());
        pool.give_event_attrs(list);
        assert_eq!(pool.event_attrs_len(), 1);
        let again = pool.take_event_attrs(3);
        assert!(again.is_empty());
        assert_eq!(
            (again.as_ptr(), again.capacity()),
            (ptr, cap),
            "the same buffer"
        );
        assert_eq!(pool.event_attrs_len(), 0);

        pool.give_event_attrs(Vec::with_capacity(MAX_ITEMS + 1));
        pool.give_event_attrs(Vec::new());
        assert_eq!(pool.event_attrs_len(), 0, "too large, or nothing to keep");
        for _ in 0..3 {
            pool.give_event_attrs(Vec::with_capacity(4));
        }
        assert_eq!(pool.event_attrs_len(), 2, "bounded");
    }

    #[test]
    fn name_strings_come_back_empty_with_their_room_and_bounded() {
        let pool = AttrsPool::new(2);
        let mut name = pool.take_name(9);
        name.push_str("GET /work");
        let (ptr, cap) = (name.as_ptr(), name.capacity());
        pool.give_name(name);
        assert_eq!(pool.names_len(), 1);
        let again = pool.take_name(4);
        assert!(again.is_empty());
        assert_eq!(
            (again.as_ptr(), again.capacity()),
            (ptr, cap),
            "the same buffer"
        );

        pool.give_name(String::with_capacity(MAX_TEXT + 1));
        pool.give_name(String::new());
        assert_eq!(pool.names_len(), 0, "too large, or nothing to keep");
        for _ in 0..3 {
            pool.give_name(String::with_capacity(8));
        }
        assert_eq!(pool.names_len(), 2, "bounded");
    }
}
