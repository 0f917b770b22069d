//! The world's one queue: what happens next, ordered by (time, sequence).
//!
//! Entries are a typed enum: message deliveries, shard wake-ups, timed faults, restarts of
//! crashed shards and nodes, the end of the safety phase and the run's shutdown. Ties at one instant keep the
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
    /// The run's graceful shutdown begins (`WorldConfig::shutdown`).
    Shutdown,
    /// An I/O operation of shard `cell` (pending slot `pending` of `world::io`) completes.
    IoDone { pending: u32, cell: u32 },
    /// The virtual network has something due: packets arrive, operations complete.
    NetPoll,
}

/// One queued entry: its entry packed into one word (see `Entry::pack`), so the heap moves
/// 24 bytes per item, as it did before entries were typed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub(crate) time: u64,
    sequence: u64,
    what: u64,
}

impl Item {
    /// The entry.
    #[inline]
    pub(crate) fn entry(&self) -> Entry {
        Entry::unpack(self.what)
    }
}

/// Bits of a packed entry: the kind in the top 3, then two fields.
const KIND_SHIFT: u32 = 61;
const LOW: u64 = (1 << 32) - 1;
const MIDDLE_MASK: u64 = (1 << (KIND_SHIFT - 32)) - 1;

impl Entry {
    /// Packs the entry: kind in bits 61..64, a 29-bit field in bits 32..61, a 32-bit field
    /// in bits 0..32. Cells and nodes fit in 29 bits (the world has far fewer).
    #[inline]
    fn pack(self) -> u64 {
        let (kind, middle, low): (u64, u64, u64) = match self {
            Entry::Deliver { slot, cell } => (0, u64::from(cell), u64::from(slot)),
            Entry::Wake { cell } => (1, u64::from(cell), 0),
            Entry::Fault { node, timed } => (2, u64::from(node), timed as u64),
            Entry::ShardRestart { cell, epoch } => (3, u64::from(cell), u64::from(epoch)),
            Entry::NodeRestart { node, epoch } => (4, u64::from(node), u64::from(epoch)),
            Entry::SafetyEnd => (5, 0, 0),
            Entry::Shutdown => (5, 1, 0),
            Entry::IoDone { pending, cell } => (6, u64::from(cell), u64::from(pending)),
            Entry::NetPoll => (7, 0, 0),
        };
        debug_assert!(middle <= MIDDLE_MASK);
        (kind << KIND_SHIFT) | (middle << 32) | low
    }

    /// The entry `pack` made `what` from; deliveries and wake-ups, nearly every entry, are
    /// tested first.
    #[inline(always)]
    fn unpack(what: u64) -> Entry {
        let middle = ((what >> 32) & MIDDLE_MASK) as u32;
        let low = (what & LOW) as u32;
        let kind = what >> KIND_SHIFT;
        if kind == 0 {
            return Entry::Deliver { slot: low, cell: middle };
        }
        if kind == 1 {
            return Entry::Wake { cell: middle };
        }
        match kind {
            // Nodes fit in 16 bits, and a timed fault's code in 8.
            2 => Entry::Fault { node: middle as u16, timed: Timed::from_code(low as u8) },
            3 => Entry::ShardRestart { cell: middle, epoch: low },
            4 => Entry::NodeRestart { node: middle as u16, epoch: low },
            6 => Entry::IoDone { pending: low, cell: middle },
            7 => Entry::NetPoll,
            // Kind 5 holds the entries without fields, told apart by the middle field.
            _ if middle == 1 => Entry::Shutdown,
            _ => Entry::SafetyEnd,
        }
    }
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
    #[inline]
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
        self.heap.push(Reverse(Item { time, sequence: self.sequence, what: entry.pack() }));
    }

    /// The time of the earliest entry.
    #[inline]
    pub(crate) fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(item)| item.time)
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

    /// Takes the earliest entry if it is due at or before `now`.
    #[inline]
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<Item> {
        let head = self.heap.peek_mut()?;
        if head.0.time > now {
            return None;
        }
        Some(std::collections::binary_heap::PeekMut::pop(head).0)
    }

    /// Keeps only the entries `keep` accepts (rare: a node crash).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.heap.retain(|Reverse(item)| keep(&item.entry()));
    }

    /// Every entry, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.heap.iter().map(|Reverse(item)| item.entry())
    }
}
