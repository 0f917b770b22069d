//! Dense numbering of the system's shards and isolate slots, built from the specs, so
//! checkers keep per-slot and per-shard state in flat vectors (O(1) lookup, no hashing).
//!
//! This module knows shapes, not histories.

use tina::{GroupConfig, Handle, ShardId, SystemSpec};

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

/// Every shard of every node.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Per node, dense index of its shard 0.
    node_base: Vec<usize>,
    /// Every shard, node by node.
    pub shards: Vec<ShardShape>,
    slot_total: usize,
}

impl Layout {
    /// The shape of `nodes` (node ids are positions).
    pub fn new(nodes: &[SystemSpec]) -> Layout {
        let mut layout = Layout::default();
        for spec in nodes {
            layout.node_base.push(layout.shards.len());
            for shard in 0..spec.shard_count() {
                let mut type_base = Vec::new();
                let (mut slot_counts, mut capacities) = (Vec::new(), Vec::new());
                let mut slots = 0;
                for index in 0..spec.type_count() {
                    let config = spec.type_config(index).expect("index below type_count");
                    type_base.push(slots);
                    slots += config.slot_count as usize;
                    slot_counts.push(config.slot_count);
                    capacities.push(config.mailbox_capacity);
                }
                // At most 255 shards per node.
                let groups = spec.group_configs(ShardId(shard as u8));
                layout.shards.push(ShardShape {
                    slot_base: layout.slot_total,
                    type_base,
                    slot_counts,
                    capacities,
                    pool_size: spec.pool_size(),
                    timer_pool: spec.timer_pool(),
                    groups,
                });
                layout.slot_total += slots;
            }
        }
        layout
    }

    /// Slots of the whole system.
    pub fn slot_total(&self) -> usize {
        self.slot_total
    }

    /// Shards of the whole system.
    pub fn shard_total(&self) -> usize {
        self.shards.len()
    }

    /// Dense index of `shard` of `node`, if it exists.
    pub fn shard_index(&self, node: u16, shard: ShardId) -> Option<usize> {
        let base = *self.node_base.get(usize::from(node))?;
        let end = self.node_base.get(usize::from(node) + 1).copied().unwrap_or(self.shards.len());
        let index = base + shard.index();
        (index < end).then_some(index)
    }

    /// Dense index of the slot `handle` names on `node`, if it exists.
    pub fn slot_index(&self, node: u16, handle: Handle) -> Option<usize> {
        if handle.is_none() {
            return None;
        }
        let shape = &self.shards[self.shard_index(node, handle.shard())?];
        let type_index = usize::from(handle.type_index());
        let slot = handle.slot();
        (slot < *shape.slot_counts.get(type_index)?)
            .then(|| shape.slot_base + shape.type_base[type_index] + slot as usize)
    }

    /// The shape of the shard `handle` lives on.
    pub fn shape(&self, node: u16, shard: ShardId) -> Option<&ShardShape> {
        self.shards.get(self.shard_index(node, shard)?)
    }
}
