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

/// A buffer kind the pool keeps: what "too large to keep" and "emptied" mean for it.
trait Reuse: Sized {
    /// Small enough to keep (and worth keeping).
    fn keep(&self) -> bool;
    /// Empties it, keeping its room.
    fn empty(&mut self);
}

impl Reuse for Attrs {
    fn keep(&self) -> bool {
        let (items, text) = self.capacity();
        items <= MAX_ITEMS && text <= MAX_TEXT
    }
    fn empty(&mut self) {
        self.clear();
    }
}

impl Reuse for Vec<KeyValue> {
    fn keep(&self) -> bool {
        (1..=MAX_ITEMS).contains(&self.capacity())
    }
    fn empty(&mut self) {
        self.clear();
    }
}

impl Reuse for String {
    fn keep(&self) -> bool {
        (1..=MAX_TEXT).contains(&self.capacity())
    }
    fn empty(&mut self) {
        self.clear();
    }
}

/// Cleared buffers of one kind, at most the pool's capacity.
#[derive(Debug)]
struct Shelf<T>(ArrayQueue<T>);

impl<T: Reuse> Shelf<T> {
    fn new(capacity: usize) -> Self {
        Shelf(ArrayQueue::new(capacity.max(1)))
    }

    /// A reused buffer grown by `reserve`, or a `new` one when the shelf is empty.
    fn take(&self, reserve: impl FnOnce(&mut T), new: impl FnOnce() -> T) -> T {
        match self.0.pop() {
            Some(mut item) => {
                reserve(&mut item);
                item
            }
            None => new(),
        }
    }

    /// Keeps `item`, emptied, unless it is too large or the shelf is full.
    fn give(&self, mut item: T) {
        if item.keep() {
            item.empty();
            let _ = self.0.push(item);
        }
    }
}

/// Cleared buffers waiting for reuse: records' attribute buffers, events' attribute lists and
/// name strings.
#[derive(Debug)]
pub(crate) struct AttrsPool {
    attrs: Shelf<Attrs>,
    event_attrs: Shelf<Vec<KeyValue>>,
    names: Shelf<String>,
}

impl AttrsPool {
    /// A pool of at most `capacity` buffers of each kind.
    pub(crate) fn new(capacity: usize) -> Self {
        AttrsPool {
            attrs: Shelf::new(capacity),
            event_attrs: Shelf::new(capacity),
            names: Shelf::new(capacity),
        }
    }

    /// A buffer with room for `items` attributes and `text` bytes: a reused one when the
    /// pool has one, else a new one.
    pub(crate) fn take(&self, items: usize, text: usize) -> Attrs {
        self.attrs.take(
            |a| a.reserve(items, text),
            || Attrs::with_capacity(items, text),
        )
    }

    /// Keeps `attrs` for reuse, emptied, unless it is too large or the pool is full.
    pub(crate) fn give(&self, attrs: Attrs) {
        self.attrs.give(attrs);
    }

    /// An event's attribute list with room for `items`: a reused one when the pool has one.
    pub(crate) fn take_event_attrs(&self, items: usize) -> Vec<KeyValue> {
        self.event_attrs
            .take(|l| l.reserve(items), || Vec::with_capacity(items))
    }

    /// Keeps an event's attribute list for reuse, emptied, unless it is too large or the pool
    /// is full.
    pub(crate) fn give_event_attrs(&self, list: Vec<KeyValue>) {
        self.event_attrs.give(list);
    }

    /// A string with room for `len` bytes, for a span's or an event's name: a reused one when
    /// the pool has one.
    pub(crate) fn take_name(&self, len: usize) -> String {
        self.names
            .take(|n| n.reserve(len), || String::with_capacity(len))
    }

    /// Keeps a name's string for reuse, emptied, unless it is too large or the pool is full.
    pub(crate) fn give_name(&self, name: String) {
        self.names.give(name);
    }

    /// Buffers waiting (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.attrs.0.len()
    }

    /// Name strings waiting (tests).
    #[cfg(test)]
    pub(crate) fn names_len(&self) -> usize {
        self.names.0.len()
    }

    /// Event attribute lists waiting (tests).
    #[cfg(test)]
    pub(crate) fn event_attrs_len(&self) -> usize {
        self.event_attrs.0.len()
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

    /// A buffer taken, filled, given back and taken again is the same buffer, empty; a
    /// buffer too large or with no room is not kept, and the shelf holds at most its capacity.
    fn reuse_is_exact_and_bounded<T: Reuse + std::fmt::Debug>(
        filled: T,
        as_ptr: impl Fn(&T) -> (*const u8, usize),
        is_empty: impl Fn(&T) -> bool,
        too_large: T,
        no_room: T,
        small: impl Fn() -> T,
    ) {
        let shelf = Shelf::new(2);
        let before = as_ptr(&filled);
        shelf.give(filled);
        assert_eq!(shelf.0.len(), 1);
        let again = shelf.take(|_| {}, || panic!("the kept buffer, not a new one"));
        assert!(is_empty(&again), "{again:?}");
        assert_eq!(as_ptr(&again), before, "the same buffer");
        shelf.give(too_large);
        shelf.give(no_room);
        assert_eq!(shelf.0.len(), 0, "too large, or nothing to keep");
        for _ in 0..3 {
            shelf.give(small());
        }
        assert_eq!(shelf.0.len(), 2, "bounded");
    }

    #[test]
    fn event_attribute_lists_and_names_come_back_empty_with_their_room_and_bounded() {
        let mut list = Vec::with_capacity(6);
        list.push(KeyValue::new("message", String::from("owned")));
        list.push(KeyValue::new("level", "INFO"));
        reuse_is_exact_and_bounded(
            list,
            |l: &Vec<KeyValue>| (l.as_ptr().cast(), l.capacity()),
            |l| l.is_empty(),
            Vec::with_capacity(MAX_ITEMS + 1),
            Vec::new(),
            || Vec::with_capacity(4),
        );
        let mut name = String::with_capacity(9);
        name.push_str("GET /work");
        reuse_is_exact_and_bounded(
            name,
            |n: &String| (n.as_ptr(), n.capacity()),
            |n| n.is_empty(),
            String::with_capacity(MAX_TEXT + 1),
            String::new(),
            || String::with_capacity(8),
        );
        // Through the pool: taking grows a reused buffer to the room asked for.
        let pool = AttrsPool::new(1);
        pool.give_event_attrs(Vec::with_capacity(2));
        pool.give_name(String::with_capacity(2));
        assert!(pool.take_event_attrs(MAX_ITEMS).capacity() >= MAX_ITEMS);
        assert!(pool.take_name(MAX_TEXT).capacity() >= MAX_TEXT);
        assert_eq!((pool.event_attrs_len(), pool.names_len()), (0, 0));
    }
}
