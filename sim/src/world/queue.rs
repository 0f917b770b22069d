//! The world's one queue: what happens next, ordered by (time, sequence).
//!
//! Entries are a typed enum: message deliveries, shard wake-ups, timed faults, restarts of
//! crashed shards and nodes, and the end of the safety phase. Ties at one instant keep the
//! order they were pushed in (the sequence), so the order is a function of the seed alone.
//! An entry may go dead before its time (a wake-up superseded by another, a fault after the
//! safety phase, a restart of something that crashed again); the world recognises those
//! when it reaches them. This module orders; it decides nothing.

use core::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::faults::Timed;

/// What happens at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The message in in-flight `slot` reaches shard `cell`.
    Deliver {
        /// The in-flight slot.
        slot: u32,
        /// The destination shard, as a world cell index.
        cell: u32,
    },
    /// Shard `cell` asked to run (live only while it is the cell's wake-up time).
    Wake {
        /// The shard.
        cell: u32,
    },
    /// The next occurrence of a timed fault on `node` (live only in the safety phase).
    Fault {
        /// The node.
        node: u16,
        /// The fault.
        timed: Timed,
    },
    /// A crashed shard restarts (live only if it has not gone down again since).
    ShardRestart {
        /// The shard.
        cell: u32,
        /// The shard's down count when the restart was planned.
        epoch: u32,
    },
    /// A crashed node restarts (live only if it has not crashed again since).
    NodeRestart {
        /// The node.
        node: u16,
        /// The node's crash count when the restart was planned.
        epoch: u32,
    },
    /// The safety phase ends: faults stop, what can heal heals.
    SafetyEnd,
}

/// One queued entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub(crate) time: u64,
    sequence: u64,
    pub(crate) entry: Entry,
}

impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        (self.time, self.sequence) == (other.time, other.sequence)
    }
}

impl Eq for Item {}

impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Item) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Item {
    fn cmp(&self, other: &Item) -> Ordering {
        // Sequences are unique, so entries never compare equal.
        (self.time, self.sequence).cmp(&(other.time, other.sequence))
    }
}

/// The queue.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    heap: BinaryHeap<Reverse<Item>>,
    sequence: u64,
}

impl Queue {
    /// A queue with room for `capacity` entries before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Queue {
        Queue { heap: BinaryHeap::with_capacity(capacity), sequence: 0 }
    }

    /// Queues `entry` at `time`, after everything already queued at that time.
    #[inline]
    pub(crate) fn push(&mut self, time: u64, entry: Entry) {
        self.sequence += 1;
        self.heap.push(Reverse(Item { time, sequence: self.sequence, entry }));
    }

    /// The earliest entry.
    #[inline]
    pub(crate) fn peek(&self) -> Option<&Item> {
        self.heap.peek().map(|Reverse(item)| item)
    }

    /// Takes the earliest entry.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Item> {
        self.heap.pop().map(|Reverse(item)| item)
    }

    /// Keeps only the entries `keep` accepts (rare: a node crash).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.heap.retain(|Reverse(item)| keep(&item.entry));
    }

    /// Every entry, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.heap.iter().map(|Reverse(item)| &item.entry)
    }
}
