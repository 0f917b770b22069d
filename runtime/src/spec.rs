//! `SystemSpec`: the static description a node boots from, and its validation.
//!
//! A spec lists the shards, the isolate types (registered by Rust type, each getting a dense
//! index), the payload types, the pool sizes, and the isolates each shard starts at boot.
//! `validate` reports every problem as a typed error and never panics. The spec is plain
//! data (`Send + Sync`), so each shard can boot from it on its own thread.

use core::any::TypeId;
use core::fmt;
use core::marker::PhantomData;

use zerocopy::IntoBytes;

use crate::arena::{ErasedArena, make_arena};
use crate::handle::{Handle, ShardId};
use crate::isolate::Isolate;
use crate::limits::{
    ARGS_SIZE_MAX, BUDGET_WEIGHT_MAX, MAILBOX_CAPACITY_MAX, MESSAGE_POOL_SIZE_MAX, SHARD_COUNT_MAX,
    SLOT_COUNT_MAX, TYPE_COUNT_MAX,
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

/// The dense index a registered isolate type got. Typed, so `ctx.spawn` checks arguments
/// at compile time; it can never disagree with the type's position in the spec.
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

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A registered isolate type.
pub(crate) struct TypeEntry {
    pub(crate) config: TypeConfig,
    pub(crate) args_size: usize,
    pub(crate) isolate: TypeId,
    pub(crate) make_arena: fn(u32) -> Box<dyn ErasedArena>,
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

/// An isolate a shard spawns at boot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BootChild {
    pub(crate) shard: usize,
    pub(crate) type_index: u16,
    pub(crate) args: ArgsBytes,
}

/// The static description of one node: shards, isolate types, payloads, pools and the
/// isolates each shard starts with.
#[derive(Debug)]
pub struct SystemSpec {
    pub(crate) shard_count: usize,
    pub(crate) message_pool_size: u32,
    pub(crate) types: Vec<TypeEntry>,
    pub(crate) payloads: Vec<PayloadEntry>,
    pub(crate) boot: Vec<BootChild>,
}

impl SystemSpec {
    /// Envelopes per shard used when none is given.
    pub const MESSAGE_POOL_SIZE_DEFAULT: u32 = 4096;

    /// An empty spec for `shard_count` shards.
    pub fn new(shard_count: usize) -> SystemSpec {
        SystemSpec {
            shard_count,
            message_pool_size: SystemSpec::MESSAGE_POOL_SIZE_DEFAULT,
            types: Vec::new(),
            payloads: Vec::new(),
            boot: Vec::new(),
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
        });
        TypeIndex { index, _isolate: PhantomData }
    }

    /// Registers payload type `P`, so its tag is checked for collisions and its name can
    /// label logs.
    pub fn register_payload<P: Payload>(&mut self) -> &mut SystemSpec {
        self.payloads.push(PayloadEntry { name: P::NAME, tag: P::TAG });
        self
    }

    /// Starts an isolate of type `ty` with `args` on `shard` at boot, and returns the handle
    /// it will have, so isolates on other shards can be given it as an argument.
    ///
    /// A shard reserves all its boot children first, in the order they were added (the
    /// k-th child of a type gets slot k, generation 1), then runs their `init`s in that
    /// order. A placement `validate` rejects returns `Handle::NONE`.
    pub fn boot_child<I: Isolate>(
        &mut self,
        shard: ShardId,
        ty: TypeIndex<I>,
        args: I::Args,
    ) -> Handle {
        let slot = self
            .boot
            .iter()
            .filter(|child| child.shard == shard.index() && child.type_index == ty.index)
            .count();
        self.boot.push(BootChild {
            shard: shard.index(),
            type_index: ty.index,
            args: ArgsBytes::encode(&args),
        });
        match (u8::try_from(ty.index), u32::try_from(slot)) {
            (Ok(type_index), Ok(slot)) if slot <= SLOT_COUNT_MAX => {
                Handle::new(shard, type_index, slot, 1)
            }
            _ => Handle::NONE,
        }
    }

    /// The name a payload tag was registered under, if any.
    pub fn payload_name(&self, tag: Tag) -> Option<&'static str> {
        self.payloads.iter().find(|entry| entry.tag == tag).map(|entry| entry.name)
    }

    /// The name of the isolate type at `index`.
    pub fn type_name(&self, index: usize) -> Option<&'static str> {
        self.types.get(index).map(|entry| entry.config.name)
    }

    /// Checks every rule and returns every violation found.
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let mut errors = Vec::new();
        if self.shard_count == 0 || self.shard_count > SHARD_COUNT_MAX {
            errors.push(SpecError::ShardCount { count: self.shard_count });
        }
        if self.message_pool_size == 0 || self.message_pool_size > MESSAGE_POOL_SIZE_MAX {
            errors.push(SpecError::MessagePoolSize { size: self.message_pool_size });
        }
        if self.types.is_empty() || self.types.len() > TYPE_COUNT_MAX {
            errors.push(SpecError::TypeCount { count: self.types.len() });
        }
        for (index, entry) in self.types.iter().enumerate() {
            validate_type(index, entry, &self.types[..index], &mut errors);
        }
        for (index, entry) in self.payloads.iter().enumerate() {
            if let Some(first) = self.payloads[..index].iter().find(|p| p.tag == entry.tag) {
                if first.name != entry.name {
                    errors.push(SpecError::DuplicatePayloadTag {
                        tag: entry.tag,
                        first: first.name,
                        second: entry.name,
                    });
                }
            }
        }
        self.validate_boot(&mut errors);
        if errors.is_empty() { Ok(()) } else { Err(SpecErrors(errors)) }
    }

    fn validate_boot(&self, errors: &mut Vec<SpecError>) {
        for child in &self.boot {
            if child.shard >= self.shard_count {
                errors.push(SpecError::BootShard { shard: child.shard });
            }
        }
        for (index, entry) in self.types.iter().enumerate() {
            for shard in 0..self.shard_count.min(SHARD_COUNT_MAX) {
                let count = self
                    .boot
                    .iter()
                    .filter(|c| c.shard == shard && c.type_index as usize == index)
                    .count();
                if count > entry.config.slot_count as usize {
                    errors.push(SpecError::BootChildrenAboveSlots {
                        type_name: entry.config.name,
                        shard,
                        count,
                        slot_count: entry.config.slot_count,
                    });
                }
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
    /// A boot child names a shard the node does not have.
    BootShard {
        /// The shard given.
        shard: usize,
    },
    /// A shard boots more isolates of a type than the type has slots.
    BootChildrenAboveSlots {
        /// The type.
        type_name: &'static str,
        /// The shard.
        shard: usize,
        /// Boot children of that type on that shard.
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
            SpecError::BootShard { shard } => {
                write!(f, "a boot child is placed on shard {shard}, which does not exist")
            }
            SpecError::BootChildrenAboveSlots { type_name, shard, count, slot_count } => write!(
                f,
                "shard {shard} boots {count} isolates of `{type_name}`, which has only \
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
