//! `SystemSpec`: the static description a node boots from, and its validation.
//!
//! A spec lists the shards, the isolate types (registered by Rust type, each getting a dense
//! index), the payload types, the pool sizes, and each shard's supervision tree: groups with
//! a strategy and a restart intensity, and the static children each group starts at boot.
//! `validate` reports every problem as a typed error and never panics. The spec is plain
//! data (`Send + Sync`), so each shard can boot from it on its own thread.

use core::any::TypeId;
use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;
use std::collections::BTreeMap;

use zerocopy::IntoBytes;

use crate::arena::{ErasedArena, arena_bytes, make_arena};
use crate::handle::{Handle, ShardId};
use crate::isolate::Isolate;
use crate::limits::{
    ARGS_SIZE_MAX, BUDGET_WEIGHT_MAX, CORE_ID_MAX, DYNAMIC_CHILDREN_MAX, GROUP_COUNT_MAX,
    IO_BUFFER_COUNT_MAX, IO_BUFFER_SIZE_MAX, IO_IN_FLIGHT_MAX, MAILBOX_CAPACITY_MAX,
    MESSAGE_POOL_SIZE_MAX, RESTART_MAX_LIMIT, SHARD_COUNT_MAX, SLOT_COUNT_MAX, TIMER_POOL_SIZE_MAX,
    TIMER_RESOLUTION_NS_MAX, TIMER_RESOLUTION_NS_MIN, TYPE_COUNT_MAX,
};
use crate::payload::{Payload, Tag};

/// How many isolates of one type a shard can hold, and how they are scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeConfig {
    /// Name for logs and errors; unique within a spec.
    pub name: &'static str,
    /// Slots per shard, allocated at boot.
    pub slot_count: u32,
    /// Messages one isolate may have queued.
    pub mailbox_capacity: u32,
    /// Share of each tick's dispatch budget (`weight * DISPATCH_QUOTA_PER_WEIGHT`).
    pub budget_weight: u32,
}

impl TypeConfig {
    /// Slot count used when none is given.
    pub const SLOT_COUNT_DEFAULT: u32 = 64;
    /// Mailbox capacity used when none is given.
    pub const MAILBOX_CAPACITY_DEFAULT: u32 = 256;

    /// Defaults: 64 slots, mailboxes of 256, weight 1.
    pub const fn new(name: &'static str) -> TypeConfig {
        TypeConfig {
            name,
            slot_count: TypeConfig::SLOT_COUNT_DEFAULT,
            mailbox_capacity: TypeConfig::MAILBOX_CAPACITY_DEFAULT,
            budget_weight: 1,
        }
    }

    /// Sets `slot_count`.
    pub const fn slots(mut self, slot_count: u32) -> TypeConfig {
        self.slot_count = slot_count;
        self
    }

    /// Sets `mailbox_capacity`.
    pub const fn mailbox(mut self, mailbox_capacity: u32) -> TypeConfig {
        self.mailbox_capacity = mailbox_capacity;
        self
    }

    /// Sets `budget_weight`.
    pub const fn weight(mut self, budget_weight: u32) -> TypeConfig {
        self.budget_weight = budget_weight;
        self
    }
}

/// The dense index a registered isolate type got. Typed, so the spec checks spawn
/// arguments at compile time; it can never disagree with the type's position in the spec.
pub struct TypeIndex<I> {
    index: u16,
    _isolate: PhantomData<fn() -> I>,
}

impl<I> TypeIndex<I> {
    /// The position of the type in its spec.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl<I> Clone for TypeIndex<I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I> Copy for TypeIndex<I> {}

impl<I> fmt::Debug for TypeIndex<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypeIndex({})", self.index)
    }
}

/// Which children a group restarts when one of them must be restarted (Erlang semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Only the child that stopped.
    OneForOne,
    /// Every child: the others are stopped (last started first) and all start again in
    /// order; temporary children stopped this way are removed.
    OneForAll,
    /// The child that stopped and every child started after it.
    RestForOne,
}

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Always, whether it finished or crashed.
    Permanent,
    /// Only after a crash or a failed `init`; a normal `Done` ends it.
    Transient,
    /// Never; it is removed from its group when it stops for any reason.
    Temporary,
}

impl Restart {
    /// Kebab-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Restart::Permanent => "permanent",
            Restart::Transient => "transient",
            Restart::Temporary => "temporary",
        }
    }
}

/// A supervision group's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// Which children restart together.
    pub strategy: Strategy,
    /// `MaxR`: restarts allowed within `restart_window`; the next one escalates.
    pub restart_max: u32,
    /// `MaxT`: the sliding window, measured on the backend clock.
    pub restart_window: Duration,
    /// Children isolates of this group may add at run time with `ctx.spawn_child`.
    pub dynamic_children_max: u32,
}

impl GroupConfig {
    /// `OneForOne`, 3 restarts in 5 seconds, no dynamic children.
    pub const fn new(strategy: Strategy) -> GroupConfig {
        GroupConfig {
            strategy,
            restart_max: 3,
            restart_window: Duration::from_secs(5),
            dynamic_children_max: 0,
        }
    }

    /// Sets the intensity: `restart_max` restarts within `restart_window`.
    pub const fn intensity(mut self, restart_max: u32, restart_window: Duration) -> GroupConfig {
        self.restart_max = restart_max;
        self.restart_window = restart_window;
        self
    }

    /// Sets `dynamic_children_max`.
    pub const fn dynamic(mut self, dynamic_children_max: u32) -> GroupConfig {
        self.dynamic_children_max = dynamic_children_max;
        self
    }
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig::new(Strategy::OneForOne)
    }
}

/// Names a supervision group of a spec: its shard and its index in that shard's tree
/// (the root is index 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRef {
    shard: usize,
    index: u16,
}

impl GroupRef {
    /// The group's index on its shard (the root is 0), as used in trace events.
    pub fn index(self) -> u16 {
        self.index
    }
}

/// Spawn arguments stored as bytes, so a spec (and later a slot) can keep them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ArgsBytes {
    bytes: [u8; ARGS_SIZE_MAX],
    len: u8,
}

impl ArgsBytes {
    /// Encodes `args`; the size limit is asserted when the type is registered.
    pub(crate) fn encode<A: IntoBytes + zerocopy::Immutable>(args: &A) -> ArgsBytes {
        let source = args.as_bytes();
        assert!(source.len() <= ARGS_SIZE_MAX, "spawn arguments above 64 bytes");
        let mut bytes = [0; ARGS_SIZE_MAX];
        bytes[..source.len()].copy_from_slice(source);
        ArgsBytes { bytes, len: source.len() as u8 }
    }

    pub(crate) fn from_slice(source: &[u8]) -> ArgsBytes {
        assert!(source.len() <= ARGS_SIZE_MAX, "spawn arguments above 64 bytes");
        let mut bytes = [0; ARGS_SIZE_MAX];
        bytes[..source.len()].copy_from_slice(source);
        ArgsBytes { bytes, len: source.len() as u8 }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A registered isolate type.
#[derive(Clone)]
pub(crate) struct TypeEntry {
    pub(crate) config: TypeConfig,
    pub(crate) args_size: usize,
    pub(crate) isolate: TypeId,
    pub(crate) make_arena: fn(u32) -> Box<dyn ErasedArena>,
    /// Bytes `make_arena` allocates for a slot count (`SystemSpec::memory`).
    pub(crate) arena_bytes: fn(u32) -> u64,
}

impl fmt::Debug for TypeEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeEntry")
            .field("config", &self.config)
            .field("args_size", &self.args_size)
            .finish()
    }
}

/// A registered payload type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PayloadEntry {
    pub(crate) name: &'static str,
    pub(crate) tag: Tag,
}

/// A member of a group in the spec, in start order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum MemberSpec {
    /// An isolate: index into `SystemSpec::children`.
    Child(usize),
    /// A nested group: its index in the shard's tree.
    Group(u16),
}

/// One group of a shard's tree.
#[derive(Clone, Debug)]
pub(crate) struct GroupSpec {
    pub(crate) config: GroupConfig,
    pub(crate) parent: Option<u16>,
    pub(crate) members: Vec<MemberSpec>,
}

/// An isolate a shard starts at boot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StaticChild {
    pub(crate) shard: usize,
    pub(crate) group: u16,
    pub(crate) type_index: u16,
    pub(crate) args: ArgsBytes,
    pub(crate) restart: Restart,
}

/// The static description of one node: shards, isolate types, payloads, pools, timers,
/// I/O buffers and each shard's supervision tree. Cloning it (a driver keeps one to
/// restart crashed shards from) allocates.
#[derive(Clone, Debug)]
pub struct SystemSpec {
    pub(crate) shard_count: usize,
    pub(crate) message_pool_size: u32,
    pub(crate) timer_pool_size: u32,
    pub(crate) timer_resolution: Duration,
    pub(crate) io_buffer_count: u32,
    pub(crate) io_buffer_size: u32,
    pub(crate) io_in_flight_max: u32,
    /// The CPU core of each shard, by shard, for a runtime that pins its threads; shards past
    /// the end (all, when empty) are placed by the runtime.
    pub(crate) cores: Vec<usize>,
    pub(crate) types: Vec<TypeEntry>,
    pub(crate) payloads: Vec<PayloadEntry>,
    /// Per shard (indexed by shard), the groups of its tree; the root is group 0.
    pub(crate) trees: Vec<Vec<GroupSpec>>,
    /// Every static child of every shard, in the order added.
    pub(crate) children: Vec<StaticChild>,
    /// Static children per (shard, type) so far: the next one's slot.
    static_counts: BTreeMap<(usize, u16), usize>,
}

impl SystemSpec {
    /// Envelopes per shard used when none is given.
    pub const MESSAGE_POOL_SIZE_DEFAULT: u32 = 4096;
    /// User timers per shard used when none is given.
    pub const TIMER_POOL_SIZE_DEFAULT: u32 = 1024;
    /// Timer resolution used when none is given.
    pub const TIMER_RESOLUTION_DEFAULT: Duration = Duration::from_micros(1);
    /// I/O buffers per shard used when none is given.
    pub const IO_BUFFER_COUNT_DEFAULT: u32 = 64;
    /// Bytes per I/O buffer used when none is given.
    pub const IO_BUFFER_SIZE_DEFAULT: u32 = 4096;
    /// I/O operations in flight per shard used when none is given.
    pub const IO_IN_FLIGHT_MAX_DEFAULT: u32 = 256;

    /// An empty spec for `shard_count` shards.
    pub fn new(shard_count: usize) -> SystemSpec {
        SystemSpec {
            shard_count,
            message_pool_size: SystemSpec::MESSAGE_POOL_SIZE_DEFAULT,
            timer_pool_size: SystemSpec::TIMER_POOL_SIZE_DEFAULT,
            timer_resolution: SystemSpec::TIMER_RESOLUTION_DEFAULT,
            io_buffer_count: SystemSpec::IO_BUFFER_COUNT_DEFAULT,
            io_buffer_size: SystemSpec::IO_BUFFER_SIZE_DEFAULT,
            io_in_flight_max: SystemSpec::IO_IN_FLIGHT_MAX_DEFAULT,
            cores: Vec::new(),
            types: Vec::new(),
            payloads: Vec::new(),
            trees: Vec::new(),
            children: Vec::new(),
            static_counts: BTreeMap::new(),
        }
    }

    /// Shards in this node.
    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    /// Sets the number of envelopes in each shard's message pool.
    pub fn message_pool_size(&mut self, size: u32) -> &mut SystemSpec {
        self.message_pool_size = size;
        self
    }

    /// Sets the number of user timers in each shard's pool.
    pub fn timer_pool_size(&mut self, size: u32) -> &mut SystemSpec {
        self.timer_pool_size = size;
        self
    }

    /// Sets the timer wheel's resolution: deadlines round up to a multiple of it.
    pub fn timer_resolution(&mut self, resolution: Duration) -> &mut SystemSpec {
        self.timer_resolution = resolution;
        self
    }

    /// Sets the count and size of each shard's I/O buffers.
    pub fn io_buffers(&mut self, count: u32, size: u32) -> &mut SystemSpec {
        self.io_buffer_count = count;
        self.io_buffer_size = size;
        self
    }

    /// Sets how many I/O operations a shard may have in flight (completions of stopped
    /// isolates included, until they arrive).
    pub fn io_in_flight_max(&mut self, max: u32) -> &mut SystemSpec {
        self.io_in_flight_max = max;
        self
    }

    /// Names the CPU core each shard's thread is pinned to, by shard: `cores[i]` for shard
    /// `i`. Shards past the end of the list (every shard, by default) are placed by the
    /// runtime (`prod::affinity::CorePlan`: shard `i` on the `i % n`-th of the `n` cores the
    /// process may use). Two shards may share a core. The simulator ignores it; a production
    /// runtime refuses to boot if a named core is not one the process may run on.
    pub fn cores(&mut self, cores: &[usize]) -> &mut SystemSpec {
        self.cores = cores.to_vec();
        self
    }

    /// The cores named by `cores`, by shard (empty if none).
    pub fn core_ids(&self) -> &[usize] {
        &self.cores
    }

    /// Registers isolate type `I` and returns its dense index.
    ///
    /// `I::Args` larger than 64 bytes fails to build here.
    pub fn register<I: Isolate>(&mut self, config: TypeConfig) -> TypeIndex<I> {
        const {
            assert!(size_of::<I::Args>() <= ARGS_SIZE_MAX, "spawn arguments above 64 bytes");
        }
        // More than u16::MAX types is reported by `validate`; the saturated index is never
        // used because a spec that fails validation cannot boot.
        let index = u16::try_from(self.types.len()).unwrap_or(u16::MAX);
        self.types.push(TypeEntry {
            config,
            args_size: size_of::<I::Args>(),
            isolate: TypeId::of::<I>(),
            make_arena: make_arena::<I>,
            arena_bytes: arena_bytes::<I>,
        });
        TypeIndex { index, _isolate: PhantomData }
    }

    /// Registers payload type `P`, so its tag is checked for collisions and its name can
    /// label logs.
    pub fn register_payload<P: Payload>(&mut self) -> &mut SystemSpec {
        self.payloads.push(PayloadEntry { name: P::NAME, tag: P::TAG });
        self
    }

    /// The root group of `shard`'s supervision tree (created with the default config,
    /// `OneForOne`, 3 restarts in 5 seconds, on first use).
    pub fn root(&mut self, shard: ShardId) -> GroupRef {
        let shard = shard.index();
        if self.trees.len() <= shard {
            self.trees.resize_with(shard + 1, Vec::new);
        }
        if self.trees[shard].is_empty() {
            let root =
                GroupSpec { config: GroupConfig::default(), parent: None, members: Vec::new() };
            self.trees[shard].push(root);
        }
        GroupRef { shard, index: 0 }
    }

    /// Replaces a group's config.
    pub fn configure(&mut self, group: GroupRef, config: GroupConfig) -> &mut SystemSpec {
        self.trees[group.shard][group.index as usize].config = config;
        self
    }

    /// Adds a group as the next member of `parent`.
    pub fn add_group(&mut self, parent: GroupRef, config: GroupConfig) -> GroupRef {
        let tree = &mut self.trees[parent.shard];
        // More groups than u16 allows is reported by `validate`.
        let index = u16::try_from(tree.len()).unwrap_or(u16::MAX);
        tree.push(GroupSpec { config, parent: Some(parent.index), members: Vec::new() });
        tree[parent.index as usize].members.push(MemberSpec::Group(index));
        GroupRef { shard: parent.shard, index }
    }

    /// Adds an isolate of type `ty` as the next member of `group`, started at boot, and
    /// returns the handle its first incarnation will have, so isolates on other shards can
    /// be given it as an argument.
    ///
    /// A shard reserves its static children in the order they were added (the k-th child
    /// of a type on a shard gets slot k, generation 1), then runs their `init`s in start
    /// order: the tree depth first, each group's members in order.
    pub fn add_child<I: Isolate>(
        &mut self,
        group: GroupRef,
        ty: TypeIndex<I>,
        args: I::Args,
        restart: Restart,
    ) -> Handle {
        let count = self.static_counts.entry((group.shard, ty.index)).or_insert(0);
        let slot = *count;
        *count += 1;
        let child = StaticChild {
            shard: group.shard,
            group: group.index,
            type_index: ty.index,
            args: ArgsBytes::encode(&args),
            restart,
        };
        self.trees[group.shard][group.index as usize]
            .members
            .push(MemberSpec::Child(self.children.len()));
        self.children.push(child);
        let shard = u8::try_from(group.shard).ok().filter(|&s| (s as usize) < SHARD_COUNT_MAX);
        match (shard, u8::try_from(ty.index), u32::try_from(slot)) {
            (Some(shard), Ok(type_index), Ok(slot)) if slot <= SLOT_COUNT_MAX => {
                Handle::new(ShardId(shard), type_index, slot, 1)
            }
            _ => Handle::NONE,
        }
    }

    /// Adds a `Transient` isolate to `shard`'s root group: the common case of a static
    /// isolate that is restarted after a crash but may finish with `Done`.
    pub fn boot_child<I: Isolate>(
        &mut self,
        shard: ShardId,
        ty: TypeIndex<I>,
        args: I::Args,
    ) -> Handle {
        let root = self.root(shard);
        self.add_child(root, ty, args, Restart::Transient)
    }

    /// Static children over every shard (`boot_child` and `add_child`): the isolates the
    /// system starts by itself.
    pub fn static_child_count(&self) -> usize {
        self.children.len()
    }

    /// Isolate types registered.
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// The config of the isolate type at `index`.
    pub fn type_config(&self, index: usize) -> Option<TypeConfig> {
        self.types.get(index).map(|entry| entry.config)
    }

    /// Envelopes in each shard's message pool.
    pub fn pool_size(&self) -> u32 {
        self.message_pool_size
    }

    /// User timers in each shard's pool.
    pub fn timer_pool(&self) -> u32 {
        self.timer_pool_size
    }

    /// The configs of `shard`'s supervision groups, by group index (the root is 0; empty if
    /// the shard has no tree).
    pub fn group_configs(&self, shard: ShardId) -> Vec<GroupConfig> {
        self.trees
            .get(shard.index())
            .map_or_else(Vec::new, |tree| tree.iter().map(|g| g.config).collect())
    }

    /// Every registered payload: its tag and its type's path.
    pub fn payloads(&self) -> impl Iterator<Item = (Tag, &'static str)> + '_ {
        self.payloads.iter().map(|entry| (entry.tag, entry.name))
    }

    /// The name a payload tag was registered under, if any.
    pub fn payload_name(&self, tag: Tag) -> Option<&'static str> {
        self.payloads.iter().find(|entry| entry.tag == tag).map(|entry| entry.name)
    }

    /// The name of the isolate type at `index`.
    pub fn type_name(&self, index: usize) -> Option<&'static str> {
        self.types.get(index).map(|entry| entry.config.name)
    }

    /// The index of the first isolate type registered under `name` (as `type_name` gives
    /// it back), for reports indexed by type such as `live_by_type`.
    ///
    /// ```
    /// # use tina::{Ctx, Effect, Isolate, Message, SystemSpec, TypeConfig};
    /// # struct Worker;
    /// # impl Isolate for Worker {
    /// #     type Args = ();
    /// #     fn init(_: (), _: &mut Ctx<'_>) -> (Worker, Effect) { (Worker, Effect::Receive) }
    /// #     fn handle(&mut self, _: &Message, _: &mut Ctx<'_>) -> Effect { Effect::Receive }
    /// # }
    /// let mut spec = SystemSpec::new(1);
    /// spec.register::<Worker>(TypeConfig::new("worker").slots(4));
    /// assert_eq!(spec.type_named("worker"), Some(0));
    /// assert_eq!(spec.type_named("nobody"), None);
    /// ```
    pub fn type_named(&self, name: &str) -> Option<usize> {
        self.types.iter().position(|entry| entry.config.name == name)
    }

    /// Total slots of every type on one shard.
    pub(crate) fn slots_per_shard(&self) -> usize {
        self.types.iter().map(|entry| entry.config.slot_count as usize).sum()
    }

    /// Checks every rule and returns every violation found.
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let mut errors = Vec::new();
        self.validate_sizes(&mut errors);
        if self.types.is_empty() || self.types.len() > TYPE_COUNT_MAX {
            errors.push(SpecError::TypeCount { count: self.types.len() });
        }
        for (index, entry) in self.types.iter().enumerate() {
            validate_type(index, entry, &self.types[..index], &mut errors);
        }
        for (index, entry) in self.payloads.iter().enumerate() {
            if let Some(first) = self.payloads[..index].iter().find(|p| p.tag == entry.tag)
                && first.name != entry.name
            {
                errors.push(SpecError::DuplicatePayloadTag {
                    tag: entry.tag,
                    first: first.name,
                    second: entry.name,
                });
            }
        }
        self.validate_trees(&mut errors);
        if errors.is_empty() { Ok(()) } else { Err(SpecErrors(errors)) }
    }

    fn validate_sizes(&self, errors: &mut Vec<SpecError>) {
        if self.shard_count == 0 || self.shard_count > SHARD_COUNT_MAX {
            errors.push(SpecError::ShardCount { count: self.shard_count });
        }
        if self.message_pool_size == 0 || self.message_pool_size > MESSAGE_POOL_SIZE_MAX {
            errors.push(SpecError::MessagePoolSize { size: self.message_pool_size });
        }
        if self.timer_pool_size > TIMER_POOL_SIZE_MAX {
            errors.push(SpecError::TimerPoolSize { size: self.timer_pool_size });
        }
        let resolution = self.timer_resolution.as_nanos();
        if resolution < u128::from(TIMER_RESOLUTION_NS_MIN)
            || resolution > u128::from(TIMER_RESOLUTION_NS_MAX)
        {
            errors.push(SpecError::TimerResolution { resolution: self.timer_resolution });
        }
        if self.io_buffer_count > IO_BUFFER_COUNT_MAX
            || (self.io_buffer_count > 0
                && (self.io_buffer_size == 0 || self.io_buffer_size > IO_BUFFER_SIZE_MAX))
        {
            errors.push(SpecError::IoBuffers {
                count: self.io_buffer_count,
                size: self.io_buffer_size,
            });
        }
        if self.io_in_flight_max > IO_IN_FLIGHT_MAX {
            errors.push(SpecError::IoInFlightMax { max: self.io_in_flight_max });
        }
        if self.cores.len() > self.shard_count {
            errors.push(SpecError::CoreCount {
                count: self.cores.len(),
                shard_count: self.shard_count,
            });
        }
        for (shard, &core) in self.cores.iter().enumerate() {
            if core > CORE_ID_MAX {
                errors.push(SpecError::CoreId { shard, core });
            }
        }
    }

    fn validate_trees(&self, errors: &mut Vec<SpecError>) {
        for (shard, tree) in self.trees.iter().enumerate() {
            let used = !tree.is_empty() && (tree.len() > 1 || !tree[0].members.is_empty());
            if shard >= self.shard_count && used {
                errors.push(SpecError::TreeShard { shard });
            }
            if tree.len() > GROUP_COUNT_MAX {
                errors.push(SpecError::GroupCount { shard, count: tree.len() });
            }
            for (index, group) in tree.iter().enumerate() {
                validate_group(shard, index, group, errors);
            }
        }
        for (&(shard, type_index), &count) in &self.static_counts {
            let Some(entry) = self.types.get(usize::from(type_index)) else { continue };
            if shard < self.shard_count && count > entry.config.slot_count as usize {
                errors.push(SpecError::StaticChildrenAboveSlots {
                    type_name: entry.config.name,
                    shard,
                    count,
                    slot_count: entry.config.slot_count,
                });
            }
        }
    }
}

fn validate_type(
    index: usize,
    entry: &TypeEntry,
    earlier: &[TypeEntry],
    errors: &mut Vec<SpecError>,
) {
    let config = &entry.config;
    let name = config.name;
    if earlier.iter().any(|e| e.config.name == name) {
        errors.push(SpecError::DuplicateTypeName { name });
    }
    if let Some(first) = earlier.iter().position(|e| e.isolate == entry.isolate) {
        errors.push(SpecError::DuplicateType { name, first_index: first, index });
    }
    if config.slot_count == 0 || config.slot_count > SLOT_COUNT_MAX {
        errors.push(SpecError::SlotCount { type_name: name, count: config.slot_count });
    }
    if config.mailbox_capacity == 0 || config.mailbox_capacity > MAILBOX_CAPACITY_MAX {
        errors.push(SpecError::MailboxCapacity {
            type_name: name,
            capacity: config.mailbox_capacity,
        });
    }
    if config.budget_weight == 0 || config.budget_weight > BUDGET_WEIGHT_MAX {
        errors.push(SpecError::BudgetWeight { type_name: name, weight: config.budget_weight });
    }
}

fn validate_group(shard: usize, index: usize, group: &GroupSpec, errors: &mut Vec<SpecError>) {
    let config = group.config;
    if config.restart_max > RESTART_MAX_LIMIT {
        errors.push(SpecError::RestartMax { shard, group: index, restart_max: config.restart_max });
    }
    if config.restart_window.is_zero() {
        errors.push(SpecError::RestartWindowZero { shard, group: index });
    }
    if config.dynamic_children_max > DYNAMIC_CHILDREN_MAX {
        errors.push(SpecError::DynamicChildrenMax {
            shard,
            group: index,
            dynamic_children_max: config.dynamic_children_max,
        });
    }
    if index != 0 && group.members.is_empty() && config.dynamic_children_max == 0 {
        errors.push(SpecError::EmptyGroup { shard, group: index });
    }
}

/// One rule a `SystemSpec` breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    /// The shard count is zero or above 255.
    ShardCount {
        /// The count given.
        count: usize,
    },
    /// The message pool is empty or above the limit.
    MessagePoolSize {
        /// The size given.
        size: u32,
    },
    /// The timer pool is above the limit.
    TimerPoolSize {
        /// The size given.
        size: u32,
    },
    /// The timer resolution is below 1 ns or above 1 s.
    TimerResolution {
        /// The resolution given.
        resolution: Duration,
    },
    /// Too many I/O buffers, or buffers of size zero or above the limit.
    IoBuffers {
        /// The count given.
        count: u32,
        /// The size given.
        size: u32,
    },
    /// More I/O operations in flight than the limit.
    IoInFlightMax {
        /// The maximum given.
        max: u32,
    },
    /// More cores are named than there are shards.
    CoreCount {
        /// Cores named.
        count: usize,
        /// Shards in the spec.
        shard_count: usize,
    },
    /// A shard's named core is above the highest core id an affinity mask holds.
    CoreId {
        /// The shard.
        shard: usize,
        /// The core named for it.
        core: usize,
    },
    /// No isolate type, or more than 255.
    TypeCount {
        /// Types registered.
        count: usize,
    },
    /// Two isolate types share a name.
    DuplicateTypeName {
        /// The name.
        name: &'static str,
    },
    /// The same Rust type was registered twice.
    DuplicateType {
        /// The second registration's name.
        name: &'static str,
        /// Index of the first registration.
        first_index: usize,
        /// Index of the second.
        index: usize,
    },
    /// A slot count is zero or above the handle's 20-bit slot field.
    SlotCount {
        /// The type.
        type_name: &'static str,
        /// The count given.
        count: u32,
    },
    /// A mailbox capacity is zero or above the limit.
    MailboxCapacity {
        /// The type.
        type_name: &'static str,
        /// The capacity given.
        capacity: u32,
    },
    /// A budget weight is zero or above the limit.
    BudgetWeight {
        /// The type.
        type_name: &'static str,
        /// The weight given.
        weight: u32,
    },
    /// Two payload types fingerprint to the same tag.
    DuplicatePayloadTag {
        /// The shared tag.
        tag: Tag,
        /// The first type registered with it.
        first: &'static str,
        /// The second.
        second: &'static str,
    },
    /// A supervision tree is placed on a shard the node does not have.
    TreeShard {
        /// The shard given.
        shard: usize,
    },
    /// A shard has more supervision groups than the limit.
    GroupCount {
        /// The shard.
        shard: usize,
        /// Its groups.
        count: usize,
    },
    /// A group allows more restarts than the limit.
    RestartMax {
        /// The shard.
        shard: usize,
        /// The group's index in the shard's tree.
        group: usize,
        /// The `MaxR` given.
        restart_max: u32,
    },
    /// A group's restart window is zero.
    RestartWindowZero {
        /// The shard.
        shard: usize,
        /// The group's index in the shard's tree.
        group: usize,
    },
    /// A group allows more dynamic children than the limit.
    DynamicChildrenMax {
        /// The shard.
        shard: usize,
        /// The group's index in the shard's tree.
        group: usize,
        /// The maximum given.
        dynamic_children_max: u32,
    },
    /// A nested group has no static child and admits no dynamic one.
    EmptyGroup {
        /// The shard.
        shard: usize,
        /// The group's index in the shard's tree.
        group: usize,
    },
    /// A shard starts more isolates of a type than the type has slots.
    StaticChildrenAboveSlots {
        /// The type.
        type_name: &'static str,
        /// The shard.
        shard: usize,
        /// Static children of that type on that shard.
        count: usize,
        /// The type's slots.
        slot_count: u32,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::ShardCount { count } => {
                write!(f, "shard count is {count}; it must be 1 to {SHARD_COUNT_MAX}")
            }
            SpecError::MessagePoolSize { size } => {
                write!(f, "message pool size is {size}; it must be 1 to {MESSAGE_POOL_SIZE_MAX}")
            }
            SpecError::TimerPoolSize { size } => {
                write!(f, "timer pool size is {size}; it must be at most {TIMER_POOL_SIZE_MAX}")
            }
            SpecError::TimerResolution { resolution } => write!(
                f,
                "timer resolution is {}ns; it must be {TIMER_RESOLUTION_NS_MIN}ns to \
                 {TIMER_RESOLUTION_NS_MAX}ns",
                resolution.as_nanos()
            ),
            SpecError::IoBuffers { count, size } => write!(
                f,
                "{count} I/O buffers of {size} bytes; use at most {IO_BUFFER_COUNT_MAX} buffers \
                 of 1 to {IO_BUFFER_SIZE_MAX} bytes"
            ),
            SpecError::IoInFlightMax { max } => {
                write!(f, "{max} I/O operations in flight; allow at most {IO_IN_FLIGHT_MAX}")
            }
            SpecError::CoreCount { count, shard_count } => write!(
                f,
                "{count} cores are named for {shard_count} shards; name at most one per shard"
            ),
            SpecError::CoreId { shard, core } => {
                write!(f, "shard {shard} is placed on core {core}; core ids go up to {CORE_ID_MAX}")
            }
            SpecError::TypeCount { count } => {
                write!(f, "{count} isolate types are registered; register 1 to {TYPE_COUNT_MAX}")
            }
            SpecError::DuplicateTypeName { name } => {
                write!(f, "isolate type name `{name}` is used twice; names must be unique")
            }
            SpecError::DuplicateType { name, first_index, index } => write!(
                f,
                "isolate type `{name}` (index {index}) is the same Rust type as index \
                 {first_index}; register each type once"
            ),
            SpecError::SlotCount { type_name, count } => write!(
                f,
                "isolate type `{type_name}` has {count} slots; it must have 1 to {SLOT_COUNT_MAX}"
            ),
            SpecError::MailboxCapacity { type_name, capacity } => write!(
                f,
                "isolate type `{type_name}` has mailbox capacity {capacity}; it must be 1 to \
                 {MAILBOX_CAPACITY_MAX}"
            ),
            SpecError::BudgetWeight { type_name, weight } => write!(
                f,
                "isolate type `{type_name}` has budget weight {weight}; it must be 1 to \
                 {BUDGET_WEIGHT_MAX}"
            ),
            SpecError::DuplicatePayloadTag { tag, first, second } => write!(
                f,
                "payload types `{first}` and `{second}` share tag {tag:?}; rename or move one"
            ),
            SpecError::TreeShard { shard } => {
                write!(f, "a supervision tree is placed on shard {shard}, which does not exist")
            }
            SpecError::GroupCount { shard, count } => write!(
                f,
                "shard {shard} has {count} supervision groups; it may have at most {GROUP_COUNT_MAX}"
            ),
            SpecError::RestartMax { shard, group, restart_max } => write!(
                f,
                "group {group} on shard {shard} allows {restart_max} restarts; allow at most \
                 {RESTART_MAX_LIMIT}"
            ),
            SpecError::RestartWindowZero { shard, group } => {
                write!(
                    f,
                    "group {group} on shard {shard} has a zero restart window; give it a duration"
                )
            }
            SpecError::DynamicChildrenMax { shard, group, dynamic_children_max } => write!(
                f,
                "group {group} on shard {shard} allows {dynamic_children_max} dynamic children; \
                 allow at most {DYNAMIC_CHILDREN_MAX}"
            ),
            SpecError::EmptyGroup { shard, group } => write!(
                f,
                "group {group} on shard {shard} has no children and admits no dynamic ones; add \
                 a child or remove the group"
            ),
            SpecError::StaticChildrenAboveSlots { type_name, shard, count, slot_count } => write!(
                f,
                "shard {shard} starts {count} isolates of `{type_name}`, which has only \
                 {slot_count} slots"
            ),
        }
    }
}

/// Every rule a spec breaks, in the order found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid system spec ({} problems)", self.0.len())?;
        for error in &self.0 {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Why a shard could not boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The spec is invalid.
    Spec(SpecErrors),
    /// The shard id is not below the spec's shard count.
    ShardOutOfRange {
        /// The shard asked for.
        shard: ShardId,
        /// Shards in the spec.
        shard_count: usize,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Spec(errors) => fmt::Display::fmt(errors, f),
            BootError::ShardOutOfRange { shard, shard_count } => {
                write!(f, "cannot boot shard {shard}: the spec has {shard_count} shards")
            }
        }
    }
}

impl std::error::Error for BootError {}

impl From<SpecErrors> for BootError {
    fn from(errors: SpecErrors) -> BootError {
        BootError::Spec(errors)
    }
}

// A spec crosses threads: each shard boots from it on its own thread.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SystemSpec>();
};
