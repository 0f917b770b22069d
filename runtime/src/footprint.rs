//! What a `SystemSpec` allocates up front, in bytes, computed without booting it.
//!
//! Each table's constructor has a `bytes_for` next to it that mirrors what it allocates
//! (`MessagePool`, `TypeSlots`, `Timers`, `IoBuffers`, `Groups`, `ShardCore`, the arenas
//! through `TypeEntry::arena_bytes`), so the formula lives where the allocation does and a
//! change to one is next to the other; `runtime/tests/memory_footprint.rs` boots specs
//! under a counting allocator and holds the sum equal to what a boot really allocates. The
//! cross-shard rings belong to the backend, so their capacity is a parameter.
//!
//! This module counts; it does not compare with what the machine has (see
//! `prod::memory`), and it counts only what boot allocates: not thread stacks, the
//! executable, the backend's own tables beyond its rings, or what isolates allocate
//! themselves.

use core::fmt;

use crate::handle::ShardId;
use crate::limits::{ENVELOPE_SIZE, SHARD_COUNT_MAX};
use crate::shard::ShardCore;
use crate::spec::SystemSpec;

/// `count` elements of `element_size` bytes, saturating: an absurd spec gives a huge
/// estimate (which no machine has), never an overflow.
pub(crate) const fn array_bytes(count: u64, element_size: usize) -> u64 {
    count.saturating_mul(element_size as u64)
}

/// Bytes allocated at boot, by part: for one shard (`SystemSpec::shard_memory`) or summed
/// over every shard of a spec (`SystemSpec::memory`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryBytes {
    /// The message pool: `message_pool_size` envelopes of 128 bytes and a 4-byte link each.
    pub message_pool: u64,
    /// Each isolate type's arena (`slot_count` states of the type, `Option`-wrapped) and
    /// slot tables (metadata, spawn arguments, call and I/O state, free list, queues), and
    /// the shard's pending-init and exit queues (one entry per slot of every type).
    pub isolates: u64,
    /// The timer pool: `timer_pool_size` user timers plus one call-timeout entry per slot,
    /// and per slot the heads of its owned and fired lists.
    pub timers: u64,
    /// I/O buffers (`io_buffer_count * io_buffer_size` bytes plus their bookkeeping) and
    /// the in-flight table (`io_in_flight_max` entries), the submission queue of one tick and
    /// the cancel queue.
    pub io: u64,
    /// The supervision groups: each group's restart history (`restart_max` instants) and
    /// room for its static children and every dynamic child it admits.
    pub supervision: u64,
    /// The cross-shard rings into the shard: one per other shard, each `ring_capacity`
    /// envelopes of 128 bytes (the rings' own headers are not counted).
    pub rings: u64,
}

impl MemoryBytes {
    /// Every part added up.
    pub fn total(&self) -> u64 {
        self.parts().iter().fold(0, |sum, &(_, bytes)| sum.saturating_add(bytes))
    }

    /// The parts with their names, in declaration order.
    pub fn parts(&self) -> [(&'static str, u64); 6] {
        [
            ("message pool", self.message_pool),
            ("isolates", self.isolates),
            ("timers", self.timers),
            ("I/O", self.io),
            ("supervision", self.supervision),
            ("rings", self.rings),
        ]
    }

    /// The part that takes the most bytes, with its name: what to shrink first.
    pub fn largest(&self) -> (&'static str, u64) {
        // Ties keep the first part, so the answer does not depend on anything but the bytes.
        self.parts().into_iter().fold(("message pool", 0), |largest, part| {
            if part.1 > largest.1 { part } else { largest }
        })
    }

    /// Part by part sum, saturating.
    pub fn saturating_add(self, other: MemoryBytes) -> MemoryBytes {
        MemoryBytes {
            message_pool: self.message_pool.saturating_add(other.message_pool),
            isolates: self.isolates.saturating_add(other.isolates),
            timers: self.timers.saturating_add(other.timers),
            io: self.io.saturating_add(other.io),
            supervision: self.supervision.saturating_add(other.supervision),
            rings: self.rings.saturating_add(other.rings),
        }
    }
}

impl fmt::Display for MemoryBytes {
    /// `<total> bytes (message pool <n>, isolates <n>, ...)`, integers only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes (", self.total())?;
        for (index, (name, bytes)) in self.parts().into_iter().enumerate() {
            let separator = if index == 0 { "" } else { ", " };
            write!(f, "{separator}{name} {bytes}")?;
        }
        write!(f, ")")
    }
}

impl SystemSpec {
    /// Bytes booting `shard` allocates, by part, when each cross-shard ring holds
    /// `ring_capacity` envelopes.
    ///
    /// The formula, per shard (every product saturates):
    ///
    /// - message pool: `message_pool_size * (128 + 4)`;
    /// - isolates: for each type, `slot_count * (size_of::<Option<State>>() + slot metadata +
    ///   args size + per-slot call, I/O, group and queue entries)`, plus two per-shard queues
    ///   of one entry per slot;
    /// - timers: `(timer_pool_size + slots) * timer entry + slots * 12`;
    /// - I/O: `io_buffer_count * (io_buffer_size + bookkeeping) + io_in_flight_max * entry`
    ///   plus the per-tick submission queue;
    /// - supervision: per group `restart_max * 8 + (static + dynamic_children_max) * child`;
    /// - rings: `(shard_count - 1) * ring_capacity * 128`, the rings into this shard (a
    ///   shard's messages to itself take no ring).
    ///
    /// Over every shard the rings come to `shards * (shards - 1) * ring_capacity * 128`.
    /// Meant for a valid spec: on an invalid one the numbers are whatever its fields say.
    pub fn shard_memory(&self, shard: ShardId, ring_capacity: usize) -> MemoryBytes {
        let arenas = self.types.iter().fold(
            array_bytes(self.types.len() as u64, size_of::<Box<dyn crate::arena::ErasedArena>>()),
            |bytes, entry| bytes.saturating_add((entry.arena_bytes)(entry.config.slot_count)),
        );
        let mut bytes = ShardCore::bytes_for(self, shard);
        bytes.isolates = bytes.isolates.saturating_add(arenas);
        let peers = self.shard_count.saturating_sub(1) as u64;
        bytes.rings = array_bytes(peers.saturating_mul(ring_capacity as u64), ENVELOPE_SIZE);
        bytes
    }

    /// Bytes booting every shard allocates, by part, summed over the shards (see
    /// `shard_memory` for the formula). Shards past the 255 a node may have are not
    /// counted: such a spec fails `validate`.
    pub fn memory(&self, ring_capacity: usize) -> MemoryBytes {
        let shard_count = self.shard_count.min(SHARD_COUNT_MAX);
        (0..shard_count).fold(MemoryBytes::default(), |sum, index| {
            // Below 255, so it fits in a shard id.
            let shard = ShardId(index as u8);
            sum.saturating_add(self.shard_memory(shard, ring_capacity))
        })
    }

    /// `memory(ring_capacity).total()`: what a node booted from this spec allocates up
    /// front.
    pub fn memory_bytes(&self, ring_capacity: usize) -> u64 {
        self.memory(ring_capacity).total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rings grow with the square of the shard count and the ring capacity, as documented.
    #[test]
    fn rings_are_shards_squared() {
        let spec = SystemSpec::new(4);
        let memory = spec.memory(256);
        assert_eq!(memory.rings, 4 * 3 * 256 * 128);
        assert_eq!(spec.shard_memory(ShardId(0), 256).rings, 3 * 256 * 128);
        assert_eq!(SystemSpec::new(1).memory(1 << 20).rings, 0);
    }

    /// The message pool is `size * (128 + 4)` per shard; a spec's total is the sum of its
    /// parts, and doubling the shards (without rings) doubles it.
    #[test]
    fn pool_formula_and_totals() {
        let mut spec = SystemSpec::new(2);
        spec.message_pool_size(1000);
        let memory = spec.memory(0);
        assert_eq!(memory.message_pool, 2 * 1000 * 132);
        let sum: u64 = memory.parts().iter().map(|&(_, bytes)| bytes).sum();
        assert_eq!(memory.total(), sum);
        let mut doubled = spec.clone();
        doubled.shard_count = 4;
        assert_eq!(doubled.memory_bytes(0), 2 * spec.memory_bytes(0));
    }

    /// An absurd spec saturates instead of overflowing, and `largest` names what to shrink.
    #[test]
    fn saturates_and_names_the_largest_part() {
        let mut spec = SystemSpec::new(255);
        spec.message_pool_size(u32::MAX);
        let memory = spec.memory(usize::MAX);
        assert_eq!(memory.rings, u64::MAX);
        assert_eq!(memory.total(), u64::MAX);
        assert_eq!(memory.largest().0, "rings");
        let small = SystemSpec::new(1).memory(0);
        assert_eq!(small.largest().0, "message pool", "{small}");
    }

    /// The display lists every part with integers only.
    #[test]
    fn display_lists_parts() {
        let bytes = MemoryBytes {
            message_pool: 1,
            isolates: 2,
            timers: 3,
            io: 4,
            supervision: 5,
            rings: 6,
        };
        assert_eq!(
            bytes.to_string(),
            "21 bytes (message pool 1, isolates 2, timers 3, I/O 4, supervision 5, rings 6)"
        );
    }
}
