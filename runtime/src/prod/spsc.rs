//! A bounded single-producer single-consumer ring of `Copy` values between two threads,
//! published in batches: the transport of one ordered pair of shards.
//!
//! `channel(capacity)` allocates the ring once and returns its two halves, a [`Producer`]
//! and a [`Consumer`]. Each is `Send` (it moves to its shard's thread) but neither is
//! `Sync` nor `Clone`, so there is exactly one writer and one reader, which is what makes
//! the ring correct without a compare-and-swap.
//!
//! Batching is the point. The producer writes values into slots and advances a private
//! tail (`push`); nothing is visible to the consumer until `publish`, one Release store of
//! the shared tail for the whole batch (a shard publishes once per tick, in
//! `Backend::flush_remote`). The consumer reads published values one at a time (`pop`)
//! and hands their slots back with `release`, one Release store of the shared head per
//! batch. Each side keeps the other side's index as last read and reads the shared one
//! again (one Acquire load) only when the cached value says "full" or "empty", so the
//! common tick costs one atomic load and one atomic store per side, and the two shared
//! indices sit on separate cache-line pairs so neither side's stores invalidate the
//! other's line needlessly.
//!
//! Capacity is exact, any value from 1 to [`RING_CAPACITY_MAX`] (not rounded to a power of
//! two, so a ring holds what the spec, or the simulator's `transport_capacity`, says); the
//! slot of an index is tracked by a wrapping position beside it, so no division is paid.
//! Indices are `u64` counts that never wrap (2^64 values at 10^9 per second take 584
//! years). A full ring hands the value back (`Full`); the caller counts and drops it. The
//! ring never blocks, never allocates after `channel`, and counts nothing: counters are
//! the caller's.
//!
//! Not a multi-producer queue, not a blocking channel, and not the wake-up: a consumer
//! that sleeps is woken through `prod::park`, whose "anything to do?" check is
//! [`Consumer::is_empty`].
//!
//! How a production backend uses it: one ring per ordered pair of shards, created at boot;
//! shard `a` keeps the `Producer` toward each `b` and the `Consumer` from each `b`.
//! `send_remote` is `push` (a `Full` is `TransportFull`), `flush_remote` is `publish` on
//! each ring that has new values, followed by the target's `Unparker::unpark`;
//! `receive_remote` is `pop` over the inbound rings, and `release` on each ring once it is
//! drained for the tick (a ring whose slots are never released looks full to its
//! producer).
//!
//! ```
//! use tina::prod::spsc::{self, Full};
//!
//! let (mut producer, mut consumer) = spsc::channel::<u64>(2).expect("a valid capacity");
//! producer.push(1).expect("room");
//! producer.push(2).expect("room");
//! assert_eq!(producer.push(3), Err(Full(3)), "a full ring hands the value back");
//! assert_eq!(consumer.pop(), None, "nothing is visible before publish");
//! assert_eq!(producer.publish(), 2);
//! assert_eq!(consumer.pop(), Some(1));
//! assert_eq!(consumer.pop(), Some(2));
//! assert_eq!(consumer.release(), 2, "the slots go back to the producer");
//! producer.push(3).expect("room again");
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use super::sync::{Arc, AtomicU64, CachePadded, Ordering, UnsafeCell};

/// Largest capacity of one ring. Bounds the allocation at boot: 2^20 `Message`s are
/// 128 MiB, for one pair of shards.
pub const RING_CAPACITY_MAX: usize = 1 << 20;

/// Why `channel` refused a capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityError {
    /// A ring needs at least one slot.
    Zero,
    /// The capacity is above [`RING_CAPACITY_MAX`].
    TooLarge {
        /// The capacity asked for.
        capacity: usize,
    },
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapacityError::Zero => write!(f, "a ring needs a capacity of at least 1"),
            CapacityError::TooLarge { capacity } => {
                write!(f, "ring capacity {capacity} is above the maximum {RING_CAPACITY_MAX}")
            }
        }
    }
}

impl std::error::Error for CapacityError {}

/// The ring had no free slot: the value that was not pushed, handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

/// What both halves share. The indices count values since creation; `index % capacity`
/// is the slot.
struct Shared<T> {
    /// Written by the consumer (`release`): every index below it has been read, so its
    /// slot may be written again.
    head: CachePadded<AtomicU64>,
    /// Written by the producer (`publish`): every index below it holds a written value.
    tail: CachePadded<AtomicU64>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: the ring hands each slot to one side at a time (the producer owns indices in
// `head..head + capacity` that are at or above the published tail, the consumer those in
// `head..tail`), and the Release/Acquire pairs on `head` and `tail` order every slot
// access of one side before the other side's; values cross threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Shared<T> {}

/// Creates a ring of exactly `capacity` slots and returns its two halves.
///
/// Each half can move to its own thread:
///
/// ```
/// fn sendable<T: Send>() {}
/// sendable::<tina::prod::spsc::Producer<tina::Message>>();
/// sendable::<tina::prod::spsc::Consumer<tina::Message>>();
/// ```
///
/// but neither can be shared or copied, so a ring has one writer and one reader:
///
/// ```compile_fail,E0277
/// fn shareable<T: Sync>() {}
/// shareable::<tina::prod::spsc::Producer<tina::Message>>();
/// ```
///
/// ```compile_fail,E0277
/// fn shareable<T: Sync>() {}
/// shareable::<tina::prod::spsc::Consumer<tina::Message>>();
/// ```
///
/// ```compile_fail,E0277
/// fn copyable<T: Clone>() {}
/// copyable::<tina::prod::spsc::Producer<tina::Message>>();
/// ```
///
/// ```compile_fail,E0277
/// fn copyable<T: Clone>() {}
/// copyable::<tina::prod::spsc::Consumer<tina::Message>>();
/// ```
pub fn channel<T: Copy + Send>(
    capacity: usize,
) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    if capacity == 0 {
        return Err(CapacityError::Zero);
    }
    if capacity > RING_CAPACITY_MAX {
        return Err(CapacityError::TooLarge { capacity });
    }
    let slots = (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicU64::new(0)),
        tail: CachePadded::new(AtomicU64::new(0)),
        slots,
    });
    let capacity = capacity as u64;
    let producer = Producer {
        shared: Arc::clone(&shared),
        capacity,
        tail: 0,
        published: 0,
        head_seen: 0,
        position: 0,
        _not_sync: PhantomData,
    };
    let consumer = Consumer {
        shared,
        capacity,
        head: 0,
        released: 0,
        tail_seen: 0,
        position: 0,
        _not_sync: PhantomData,
    };
    Ok((producer, consumer))
}

/// The writing half of a ring. One per ring; `Send`, not `Sync`, not `Clone`.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    capacity: u64,
    /// The next index to write. `published..tail` are written but not yet visible.
    tail: u64,
    /// The tail as last stored into `shared.tail`.
    published: u64,
    /// The consumer's head as last loaded; the true head is at or above it.
    head_seen: u64,
    /// `tail % capacity`, advanced with `tail` so that `push` divides nothing.
    position: usize,
    /// `Cell` is `Send + !Sync`: one thread at a time owns this half.
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

impl<T: Copy + Send> Producer<T> {
    /// Writes `value` into the next slot, invisible to the consumer until `publish`. When
    /// every slot is taken (by published values not yet released, or by values pushed this
    /// batch), hands the value back.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), Full<T>> {
        debug_assert!(self.tail - self.head_seen <= self.capacity);
        if self.tail - self.head_seen == self.capacity {
            // Acquire: the consumer's reads of the slots below its head happened before
            // its Release store of head, so they are done before we overwrite them.
            self.head_seen = self.shared.head.load(Ordering::Acquire);
            assert!(self.head_seen <= self.published, "consumer released past the tail");
            if self.tail - self.head_seen == self.capacity {
                return Err(Full(value));
            }
        }
        self.shared.slots[self.position].with_mut(|slot| {
            // SAFETY: `tail < head_seen + capacity <= head + capacity`, so the consumer
            // released this slot's previous value (or it never held one), and `tail` is
            // at or above the published tail, so the consumer cannot read it yet: this
            // half has the slot to itself. The pointer comes from a live `UnsafeCell`.
            unsafe { slot.write(MaybeUninit::new(value)) }
        });
        self.tail += 1;
        self.position += 1;
        if self.position as u64 == self.capacity {
            self.position = 0;
        }
        Ok(())
    }

    /// Makes every value pushed since the last publish visible to the consumer, with one
    /// Release store, and returns how many that was. Publishing nothing stores nothing.
    #[inline]
    pub fn publish(&mut self) -> usize {
        let count = self.tail - self.published;
        if count != 0 {
            // Release: the slot writes of `push` happen before the consumer's Acquire load
            // that sees this tail, so it reads whole values.
            self.shared.tail.store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
        count as usize
    }

    /// Values pushed and not yet published.
    pub fn unpublished(&self) -> usize {
        (self.tail - self.published) as usize
    }

    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity)
            .field("tail", &self.tail)
            .field("published", &self.published)
            .field("head_seen", &self.head_seen)
            .finish()
    }
}

/// The reading half of a ring. One per ring; `Send`, not `Sync`, not `Clone`.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    capacity: u64,
    /// The next index to read. `released..head` are read but their slots not yet handed
    /// back to the producer.
    head: u64,
    /// The head as last stored into `shared.head`.
    released: u64,
    /// The producer's published tail as last loaded; the true one is at or above it.
    tail_seen: u64,
    /// `head % capacity`.
    position: usize,
    /// `Cell` is `Send + !Sync`: one thread at a time owns this half.
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

impl<T: Copy + Send> Consumer<T> {
    /// The oldest published value not read yet, if any. Its slot stays taken until
    /// `release`.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.tail_seen && !self.refresh() {
            return None;
        }
        let value = self.shared.slots[self.position].with(|slot| {
            // SAFETY: `head < tail_seen`, a tail the producer published with Release after
            // writing the slot, loaded here with Acquire: the value is whole and
            // initialised. The producer does not write it again until `release` hands
            // the slot back. The pointer comes from a live `UnsafeCell`.
            unsafe { slot.read().assume_init() }
        });
        self.head += 1;
        self.position += 1;
        if self.position as u64 == self.capacity {
            self.position = 0;
        }
        Some(value)
    }

    /// Hands the slots of every value read since the last release back to the producer,
    /// with one Release store, and returns how many that was. Releasing nothing stores
    /// nothing.
    #[inline]
    pub fn release(&mut self) -> usize {
        let count = self.head - self.released;
        if count != 0 {
            // Release: our reads of those slots happen before the producer's Acquire load
            // that sees this head, so it never overwrites a value we are still reading.
            self.shared.head.store(self.head, Ordering::Release);
            self.released = self.head;
        }
        count as usize
    }

    /// Whether no published value awaits. Reads the shared tail (Acquire) only when every
    /// value known to be published was read, so a `false` costs nothing while a batch is
    /// being drained. This is the ring's part of a parker's "anything to do?" check.
    #[inline]
    pub fn is_empty(&mut self) -> bool {
        self.head == self.tail_seen && !self.refresh()
    }

    /// Values read and not yet released.
    pub fn unreleased(&self) -> usize {
        (self.head - self.released) as usize
    }

    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Loads the published tail; whether it shows values not read yet.
    #[inline]
    fn refresh(&mut self) -> bool {
        // Acquire: pairs with `publish`'s Release, so the slots below this tail are whole.
        let tail = self.shared.tail.load(Ordering::Acquire);
        assert!(tail >= self.tail_seen, "the published tail went back");
        assert!(tail - self.released <= self.capacity, "producer published over unreleased slots");
        self.tail_seen = tail;
        self.head != tail
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity)
            .field("head", &self.head)
            .field("released", &self.released)
            .field("tail_seen", &self.tail_seen)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::handle::{Handle, ShardId};
    use crate::message::{Message, MessageId};
    use crate::payload::Tag;

    /// Laps of the wrap-around test; fewer under Miri, which is slow but checks every
    /// slot access against the borrow and data-race models.
    const LAPS: u64 = if cfg!(miri) { 40 } else { 10_000 };
    /// Messages through the two-thread stress test.
    const STRESS_COUNT: u64 = if cfg!(miri) { 2_000 } else { 1_000_000 };

    /// A capacity of zero or above the maximum is a typed error; one slot is a usable ring.
    #[test]
    fn capacity_is_checked() {
        assert_eq!(channel::<u64>(0).err(), Some(CapacityError::Zero));
        assert_eq!(
            channel::<u64>(RING_CAPACITY_MAX + 1).err(),
            Some(CapacityError::TooLarge { capacity: RING_CAPACITY_MAX + 1 })
        );
        let (mut producer, mut consumer) = channel::<u64>(1).expect("one slot");
        assert_eq!(producer.push(1), Ok(()));
        assert_eq!(producer.push(2), Err(Full(2)));
        assert_eq!(producer.publish(), 1);
        assert_eq!(consumer.pop(), Some(1));
        assert_eq!(producer.push(3), Err(Full(3)), "a read slot is taken until released");
        assert_eq!(consumer.release(), 1);
        assert_eq!(producer.push(3), Ok(()));
    }

    /// Values come out in the order they went in; a full ring hands the value back and
    /// keeps what it holds; an empty one answers `None`; counts of published and released
    /// values are exact, and publishing or releasing nothing is free.
    #[test]
    fn fifo_full_and_empty() {
        let (mut producer, mut consumer) = channel::<u32>(3).expect("valid capacity");
        assert_eq!(producer.capacity(), 3);
        assert_eq!(consumer.capacity(), 3);
        assert_eq!(consumer.pop(), None);
        for value in [10, 11, 12] {
            assert_eq!(producer.push(value), Ok(()));
        }
        assert_eq!(producer.push(13), Err(Full(13)));
        assert_eq!(producer.unpublished(), 3);
        assert_eq!(producer.publish(), 3);
        assert_eq!(producer.publish(), 0);
        assert_eq!(consumer.pop(), Some(10));
        assert_eq!(consumer.pop(), Some(11));
        assert_eq!(consumer.unreleased(), 2);
        assert_eq!(consumer.release(), 2);
        assert_eq!(consumer.release(), 0);
        assert_eq!(producer.push(13), Ok(()));
        assert_eq!(producer.push(14), Ok(()));
        assert_eq!(producer.push(15), Err(Full(15)));
        producer.publish();
        assert_eq!(consumer.pop(), Some(12));
        assert_eq!(consumer.pop(), Some(13));
        assert_eq!(consumer.pop(), Some(14));
        assert_eq!(consumer.pop(), None);
        assert!(consumer.is_empty());
    }

    /// Nothing pushed is visible before `publish`: the consumer sees an empty ring until
    /// the one store that makes the whole batch appear.
    #[test]
    fn nothing_is_visible_before_publish() {
        let (mut producer, mut consumer) = channel::<u64>(8).expect("valid capacity");
        for value in 0..5 {
            producer.push(value).expect("room");
        }
        assert!(consumer.is_empty());
        assert_eq!(consumer.pop(), None);
        assert_eq!(producer.publish(), 5);
        assert!(!consumer.is_empty());
        producer.push(5).expect("room");
        let batch: Vec<u64> = core::iter::from_fn(|| consumer.pop()).collect();
        assert_eq!(batch, [0, 1, 2, 3, 4], "the unpublished sixth stays hidden");
        assert!(consumer.is_empty());
        producer.publish();
        assert_eq!(consumer.pop(), Some(5));
    }

    /// Over many laps of a ring whose capacity is not a power of two, with batches of every
    /// size from one to full, every value comes out once, in order, from the right slot.
    #[test]
    fn wraparound_over_many_laps() {
        const CAPACITY: u64 = 5;
        let (mut producer, mut consumer) = channel::<u64>(CAPACITY as usize).expect("valid");
        let mut next_in = 0u64;
        let mut next_out = 0u64;
        for lap in 0..LAPS {
            let batch = lap % CAPACITY + 1;
            for _ in 0..batch {
                producer.push(next_in).expect("the ring was drained");
                next_in += 1;
            }
            if batch == CAPACITY {
                assert_eq!(producer.push(u64::MAX), Err(Full(u64::MAX)));
            }
            assert_eq!(producer.publish() as u64, batch);
            while let Some(value) = consumer.pop() {
                assert_eq!(value, next_out);
                next_out += 1;
            }
            assert_eq!(consumer.release() as u64, batch);
        }
        assert_eq!(next_out, next_in);
        assert_eq!(next_in, (0..LAPS).map(|lap| lap % CAPACITY + 1).sum::<u64>());
    }

    fn message(sequence: u64) -> Message {
        let id = MessageId::new(ShardId(1), sequence);
        Message::system(id, Handle::NONE, Tag::RESUME)
    }

    /// Whole 128-byte envelopes cross between two threads, the producer publishing in
    /// batches of up to 32 (as a shard publishes once per tick) and spinning on a full
    /// ring, the consumer releasing once per drained batch: every message arrives once, in
    /// order, intact. Under Miri this also checks the slot accesses for data races.
    #[test]
    #[expect(clippy::disallowed_methods, reason = "the ring exists to cross real threads")]
    fn two_threads_lose_nothing_and_keep_order() {
        const BATCH: u64 = 32;
        let (mut producer, mut consumer) = channel::<Message>(256).expect("valid capacity");
        let writer = std::thread::spawn(move || {
            let mut sequence = 1;
            while sequence <= STRESS_COUNT {
                let batch_end = (sequence + BATCH).min(STRESS_COUNT + 1);
                while sequence < batch_end {
                    match producer.push(message(sequence)) {
                        Ok(()) => sequence += 1,
                        Err(Full(_)) => {
                            producer.publish();
                            std::thread::yield_now();
                        }
                    }
                }
                producer.publish();
            }
        });
        let mut expected = 1;
        while expected <= STRESS_COUNT {
            while let Some(received) = consumer.pop() {
                assert_eq!(received.id().sequence(), expected);
                assert_eq!(received.tag(), Tag::RESUME);
                expected += 1;
            }
            if consumer.release() == 0 {
                std::thread::yield_now();
            }
        }
        writer.join().expect("the producer thread");
        assert!(consumer.is_empty());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::prod::sync::model;
    use loom::thread;

    /// A producer pushes `count` values into a ring of `capacity`, publishing after every
    /// `batch` pushes and whenever the ring is full, while the consumer pops and releases
    /// what it sees: in every interleaving, every value arrives once and in order.
    fn check_in_order(capacity: usize, count: u64, batch: u64) {
        model(move || {
            let (mut producer, mut consumer) = channel::<u64>(capacity).expect("valid");
            let writer = thread::spawn(move || {
                let mut next = 0;
                while next < count {
                    let batch_end = (next + batch).min(count);
                    while next < batch_end {
                        match producer.push(next) {
                            Ok(()) => next += 1,
                            Err(Full(_)) => {
                                producer.publish();
                                thread::yield_now();
                            }
                        }
                    }
                    producer.publish();
                }
            });
            let mut expected = 0;
            while expected < count {
                while let Some(value) = consumer.pop() {
                    assert_eq!(value, expected);
                    expected += 1;
                }
                if consumer.release() == 0 {
                    thread::yield_now();
                }
            }
            writer.join().expect("the producer thread");
            assert!(consumer.is_empty());
        });
    }

    /// Two slots, five values published two at a time: the ring laps twice and a full
    /// ring hands values back.
    #[test]
    fn capacity_two_laps() {
        check_in_order(2, 5, 2);
    }

    /// Four slots, six values in batches of three: a batch fills most of the ring.
    #[test]
    fn capacity_four_takes_large_batches() {
        check_in_order(4, 6, 3);
    }

    /// Three slots, five values in batches of two: batches straddle the wrap.
    #[test]
    fn capacity_three_straddles_the_wrap() {
        check_in_order(3, 5, 2);
    }
}
