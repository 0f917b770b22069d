//! Dense numbering of the system's shards and isolate slots, built from the specs, so
//! checkers keep per-slot and per-shard state in flat vectors (O(1) lookup, no hashing).
//!
//! Lookups are a few array reads: a flat table from (node, shard id) to the dense shard
//! index, and a flat table of every shard's types with their first dense slot. This module
//! knows shapes, not histories.

use tina::{GroupConfig, Handle, ShardId, SystemSpec};

/// Shard ids a node can name (a `u8`); the width of every per-(node, shard id) table.
pub const SHARD_IDS_PER_NODE: usize = 1 << u8::BITS;

/// Where a (node, shard id) is in the dense numbering.
#[derive(Clone, Copy, Debug)]
struct ShardEntry {
    /// The dense shard index, or `SHARD_NONE`.
    index: u32,
    /// Index of the shard's type 0 in `Layout::types`.
    type_start: u32,
    /// The shard's types.
    type_count: u32,
}

/// Marks a (node, shard id) that names no shard.
const SHARD_NONE: u32 = u32::MAX;

const ENTRY_NONE: ShardEntry = ShardEntry { index: SHARD_NONE, type_start: 0, type_count: 0 };

/// One shard's shape.
#[derive(Clone, Debug)]
pub struct ShardShape {
    /// Dense index of the shard's first slot among every slot of the system.
    pub slot_base: usize,
    /// Dense index of each type's slot 0, relative to `slot_base`.
    pub type_base: Vec<usize>,
    /// Each type's slots.
    pub slot_counts: Vec<u32>,
    /// Each type's mailbox capacity.
    pub capacities: Vec<u32>,
    /// Envelopes in the message pool.
    pub pool_size: u32,
    /// User timers in the pool.
    pub timer_pool: u32,
    /// Supervision groups by index.
    pub groups: Vec<GroupConfig>,
}

/// One isolate type on one shard.
#[derive(Clone, Copy, Debug)]
pub struct TypeShape {
    /// Dense index of the type's slot 0 among every slot of the system.
    pub slot_base: usize,
    /// The type's slots.
    pub slot_count: u32,
    /// The type's mailbox capacity.
    pub capacity: u32,
}

/// Every shard of every node.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Per node, per shard id: where the shard is.
    shard_lookup: Vec<ShardEntry>,
    /// Every shard, node by node.
    pub shards: Vec<ShardShape>,
    /// Every type of every shard, shard by shard.
    types: Vec<TypeShape>,
    slot_total: usize,
    /// Per node, the dense index of its first shard, and one past the last node's.
    node_shard_start: Vec<usize>,
}

impl Layout {
    /// The shape of `nodes` (node ids are positions).
    pub fn new(nodes: &[SystemSpec]) -> Layout {
        let mut layout = Layout::default();
        for spec in nodes {
            layout.node_shard_start.push(layout.shards.len());
            let lookup_base = layout.shard_lookup.len();
            layout.shard_lookup.resize(lookup_base + SHARD_IDS_PER_NODE, ENTRY_NONE);
            for shard in 0..spec.shard_count() {
                let entry = ShardEntry {
                    index: dense(layout.shards.len()),
                    type_start: dense(layout.types.len()),
                    type_count: dense(spec.type_count()),
                };
                // At most 255 shards per node, so the entry exists.
                layout.shard_lookup[lookup_base + shard] = entry;
                layout.push_shard(spec, shard);
            }
        }
        layout.node_shard_start.push(layout.shards.len());
        layout
    }

    /// Dense indices of the shards of `node` (empty for a node that does not exist).
    pub fn node_shards(&self, node: u16) -> core::ops::Range<usize> {
        let node = usize::from(node);
        match (self.node_shard_start.get(node), self.node_shard_start.get(node + 1)) {
            (Some(&start), Some(&end)) => start..end,
            _ => 0..0,
        }
    }

    /// Dense indices of the slots of every shard of `node`.
    pub fn node_slots(&self, node: u16) -> core::ops::Range<usize> {
        let shards = self.node_shards(node);
        if shards.is_empty() {
            return 0..0;
        }
        let start = self.shards[shards.start].slot_base;
        let end = self.shards.get(shards.end).map_or(self.slot_total, |shape| shape.slot_base);
        start..end
    }

    fn push_shard(&mut self, spec: &SystemSpec, shard: usize) {
        let mut type_base = Vec::new();
        let (mut slot_counts, mut capacities) = (Vec::new(), Vec::new());
        let mut slots = 0;
        for index in 0..spec.type_count() {
            let config = spec.type_config(index).expect("index below type_count");
            self.types.push(TypeShape {
                slot_base: self.slot_total + slots,
                slot_count: config.slot_count,
                capacity: config.mailbox_capacity,
            });
            type_base.push(slots);
            slots += config.slot_count as usize;
            slot_counts.push(config.slot_count);
            capacities.push(config.mailbox_capacity);
        }
        // At most 255 shards per node.
        let groups = spec.group_configs(ShardId(shard as u8));
        self.shards.push(ShardShape {
            slot_base: self.slot_total,
            type_base,
            slot_counts,
            capacities,
            pool_size: spec.pool_size(),
            timer_pool: spec.timer_pool(),
            groups,
        });
        self.slot_total += slots;
    }

    /// Slots of the whole system.
    pub fn slot_total(&self) -> usize {
        self.slot_total
    }

    /// Nodes of the whole system.
    pub fn node_total(&self) -> usize {
        self.shard_lookup.len() / SHARD_IDS_PER_NODE
    }

    /// Shards of the whole system.
    pub fn shard_total(&self) -> usize {
        self.shards.len()
    }

    /// Dense index of `shard` of `node`, if it exists.
    #[inline(always)]
    pub fn shard_index(&self, node: u16, shard: ShardId) -> Option<usize> {
        let entry = self.entry(node, shard)?;
        (entry.index != SHARD_NONE).then_some(entry.index as usize)
    }

    /// The type `type_index` on `shard` of `node`, if it exists.
    #[inline(always)]
    pub fn type_shape(&self, node: u16, shard: ShardId, type_index: u8) -> Option<&TypeShape> {
        // An entry that names no shard has no types.
        let entry = self.entry(node, shard)?;
        let type_index = u32::from(type_index);
        if type_index >= entry.type_count {
            return None;
        }
        self.types.get(entry.type_start as usize + type_index as usize)
    }

    /// The entry of `shard` of `node` (which may name no shard), if `node` exists.
    #[inline(always)]
    fn entry(&self, node: u16, shard: ShardId) -> Option<&ShardEntry> {
        self.shard_lookup.get(usize::from(node) * SHARD_IDS_PER_NODE + shard.index())
    }

    /// Dense index of the slot `handle` names on `node`, if it exists.
    #[inline(always)]
    pub fn slot_index(&self, node: u16, handle: Handle) -> Option<usize> {
        if handle.is_none() {
            return None;
        }
        let shape = self.type_shape(node, handle.shard(), handle.type_index())?;
        slot_of(shape, handle)
    }

    /// The shape of the shard `handle` lives on.
    pub fn shape(&self, node: u16, shard: ShardId) -> Option<&ShardShape> {
        self.shards.get(self.shard_index(node, shard)?)
    }
}

/// Dense index of the slot `handle` names within its type `shape`, if it exists.
#[inline(always)]
pub fn slot_of(shape: &TypeShape, handle: Handle) -> Option<usize> {
    let slot = handle.slot();
    (!handle.is_none() && slot < shape.slot_count).then(|| shape.slot_base + slot as usize)
}

/// A count or index of shards or types as stored in the lookup table.
fn dense(count: usize) -> u32 {
    u32::try_from(count).expect("fewer than 2^32 shards and types")
}
