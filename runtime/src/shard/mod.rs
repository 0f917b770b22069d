//! `ShardCore`: everything a shard owns except the isolate arenas.
//!
//! Slot metadata (generations, states, mailboxes, spawn arguments, pending calls and I/O),
//! ready queues, the message pool, timers, I/O buffers, supervision groups, counters and the
//! pending-init and exit queues live here. A handler's `Ctx` borrows this struct; the arena
//! of the isolate being dispatched is borrowed separately by the batch loop, which is what
//! lets a handler send and spawn while its own state is borrowed.
//!
//! This file holds the struct, its constructor and the lookups every part uses (handles,
//! timer keys, message ids); the rest is one file per noun: `slots` (the slot tables of
//! each type), `routing` (sends, replies, their errors), `calls`, `notices` (drop notices),
//! `timers`, `io_table` (I/O in flight and buffers), `lifecycle` (from spawn to teardown),
//! `recovery` (a whole shard crashing and restarting), `shutdown` (notifying every isolate
//! and cancelling receives when the shard's shutdown begins) and `dispatch` (what a ready
//! slot is handed, and applying its effect). Each adds its own `impl ShardCore`.
//!
//! This module routes and accounts; it never calls isolate code and never decides
//! supervision (see `supervision`).

mod calls;
mod dispatch;
mod io_table;
mod lifecycle;
mod notices;
mod recovery;
mod routing;
mod shutdown;
mod slots;
mod timers;

use crate::backend::{Env, Timestamp};
use crate::footprint::{MemoryBytes, array_bytes};
use crate::handle::{Handle, ShardId};
use crate::io::{BufferId, IoBuffers, IoToken};
use crate::limits::IO_SUBMISSIONS_PER_TICK_MAX;
use crate::message::{Message, MessageId};
use crate::payload::Tag;
use crate::pool::MessagePool;
use crate::ring::Ring;
use crate::shutdown::ShutdownState;
use crate::spec::SystemSpec;
use crate::supervision::{Groups, NO_GROUP};
use crate::timer::Timers;
use crate::trace::{Counters, Event, ExitKind, ShardFailure};

pub(crate) use self::dispatch::{Fate, Phase, Stop};
pub use self::routing::{ReplyError, SendError};

use self::io_table::InFlight;
use self::lifecycle::ExitNotice;
use self::slots::{TypeSlots, handle_in};

/// Everything one shard owns except the isolate arenas.
#[derive(Debug)]
pub(crate) struct ShardCore {
    pub(crate) shard: ShardId,
    shard_count: usize,
    pub(crate) types: Box<[TypeSlots]>,
    pool: MessagePool,
    pub(crate) timers: Timers,
    pub(crate) buffers: IoBuffers,
    pub(crate) groups: Groups,
    pub(crate) counters: Counters,
    sequence: u64,
    correlation: u32,
    /// Children spawned whose `init` runs right after the current handler.
    pub(crate) pending_inits: Ring<Handle>,
    /// Supervised isolates that stopped and await their group's decision.
    pub(crate) exits: Ring<ExitNotice>,
    /// I/O submitted this tick, handed to the backend at the end of dispatch.
    io_queue: Ring<io_table::Queued>,
    /// Operations whose timeout fired, for the backend to cancel at the end of the tick.
    /// At most one per operation in flight.
    pub(super) io_cancels: Ring<IoToken>,
    in_flight: Box<[Option<InFlight>]>,
    in_flight_free: Box<[u32]>,
    in_flight_free_len: usize,
    /// Received data of the completion being handled: readable through `ctx.io_data`.
    current_io: Option<(BufferId, u32)>,
    pub(crate) trace_on: bool,
    /// Whether `ctx.buggify` may fire (`Backend::buggify_on`, read once per tick): when
    /// false, as in production, it answers `false` without reaching the backend.
    pub(crate) buggify_on: bool,
    pub(crate) now: Timestamp,
    pub(crate) failure: Option<ShardFailure>,
    /// The shard's graceful shutdown, once it began (`Scheduler::begin_shutdown`).
    pub(crate) shutdown: Option<ShutdownState>,
    /// Depth of core code running inside isolate code (`Ctx` calls). A panic while it is
    /// above zero is a broken core invariant, not the isolate's fault.
    pub(crate) in_core: u32,
}

impl ShardCore {
    /// Allocates every table of the shard. The spec is validated by the caller.
    pub(crate) fn new(spec: &SystemSpec, shard: ShardId) -> ShardCore {
        let mut key_base = 0;
        let types: Box<[TypeSlots]> = spec
            .types
            .iter()
            .map(|entry| {
                let slots = TypeSlots::new(entry, key_base);
                key_base += entry.config.slot_count;
                slots
            })
            .collect();
        let total_slots = spec.slots_per_shard();
        let blank = Message::system(MessageId::NONE, Handle::NONE, Tag::NONE);
        let resolution = u64::try_from(spec.timer_resolution.as_nanos()).unwrap_or(u64::MAX);
        let in_flight_max = spec.io_in_flight_max as usize;
        ShardCore {
            shard,
            shard_count: spec.shard_count,
            types,
            pool: MessagePool::new(spec.message_pool_size, blank),
            timers: Timers::new(spec.timer_pool_size, total_slots, resolution),
            // Validated: the count fits in u16.
            buffers: IoBuffers::new(spec.io_buffer_count as u16, spec.io_buffer_size),
            groups: Groups::new(spec, shard.index()),
            counters: Counters::default(),
            sequence: 0,
            correlation: 0,
            pending_inits: Ring::new(total_slots, Handle::NONE),
            exits: Ring::new(
                total_slots,
                ExitNotice { handle: Handle::NONE, kind: ExitKind::Normal, group: NO_GROUP },
            ),
            io_queue: Ring::new(IO_SUBMISSIONS_PER_TICK_MAX as usize, io_table::Queued::BLANK),
            io_cancels: Ring::new(in_flight_max.max(1), io_table::Queued::BLANK.token()),
            in_flight: vec![None; in_flight_max].into_boxed_slice(),
            in_flight_free: (0..in_flight_max as u32).rev().collect(),
            in_flight_free_len: in_flight_max,
            current_io: None,
            trace_on: false,
            buggify_on: false,
            now: Timestamp::ZERO,
            failure: None,
            shutdown: None,
            in_core: 0,
        }
    }

    /// Bytes `new(spec, shard)` allocates, by part (the isolate arenas and the cross-shard
    /// rings are not the core's: `SystemSpec::shard_memory` adds them). Mirrors `new` table
    /// by table; `runtime/tests/memory_footprint.rs` checks it against a boot.
    pub(crate) fn bytes_for(spec: &SystemSpec, shard: ShardId) -> MemoryBytes {
        let total_slots = spec.slots_per_shard();
        let in_flight_max = spec.io_in_flight_max as usize;
        let slot_tables =
            spec.types.iter().fold(
                array_bytes(spec.types.len() as u64, size_of::<TypeSlots>()),
                |bytes, entry| bytes.saturating_add(TypeSlots::bytes_for(entry)),
            );
        let isolates = slot_tables
            .saturating_add(Ring::<Handle>::bytes_for(total_slots))
            .saturating_add(Ring::<ExitNotice>::bytes_for(total_slots));
        let io_table = array_bytes(in_flight_max as u64, size_of::<Option<InFlight>>())
            .saturating_add(array_bytes(in_flight_max as u64, size_of::<u32>()))
            .saturating_add(Ring::<io_table::Queued>::bytes_for(
                IO_SUBMISSIONS_PER_TICK_MAX as usize,
            ))
            .saturating_add(Ring::<IoToken>::bytes_for(in_flight_max.max(1)));
        // An invalid count is reported by `validate`; saturating keeps the estimate large.
        let io_buffer_count = u16::try_from(spec.io_buffer_count).unwrap_or(u16::MAX);
        MemoryBytes {
            message_pool: MessagePool::bytes_for(spec.message_pool_size),
            isolates,
            timers: Timers::bytes_for(spec.timer_pool_size, total_slots),
            io: IoBuffers::bytes_for(io_buffer_count, spec.io_buffer_size).saturating_add(io_table),
            supervision: Groups::bytes_for(spec, shard.index()),
            rings: 0,
        }
    }

    #[inline]
    pub(crate) fn trace(&self, env: &mut dyn Env, event: Event) {
        if self.trace_on {
            env.trace(&event);
        }
    }

    #[inline]
    pub(crate) fn handle_of(&self, type_index: usize, slot: usize) -> Handle {
        handle_in(&self.types, self.shard, type_index, slot)
    }

    #[inline]
    fn key_of(&self, type_index: usize, slot: usize) -> u32 {
        self.types[type_index].key_base + slot as u32
    }

    /// The (type, slot) a concrete handle names on this shard, if it is live. A latest
    /// handle resolves to nothing here: the message path tries `locate` after this fails,
    /// so ordinary sends never pay for latest handles.
    #[inline]
    pub(crate) fn resolve(&self, handle: Handle) -> Option<(usize, usize)> {
        if handle.is_none() || handle.shard() != self.shard {
            return None;
        }
        let type_index = handle.type_index() as usize;
        let slots = self.types.get(type_index)?;
        let slot = handle.slot() as usize;
        let meta = slots.meta.get(slot)?;
        (meta.state.is_live() && meta.generation == handle.generation())
            .then_some((type_index, slot))
    }

    /// `locate` for a handle `resolve` refused: the slot of a latest handle whose slot holds
    /// a live incarnation, with that incarnation's handle, else `None`. The message path
    /// tries it only after the strict resolution failed, so ordinary sends never pay for
    /// it.
    #[inline]
    pub(crate) fn resolve_latest(&self, handle: Handle) -> Option<(usize, usize, Handle)> {
        if !handle.is_latest() || handle.shard() != self.shard {
            return None;
        }
        let (type_index, slot) = (handle.type_index() as usize, handle.slot() as usize);
        let meta = self.types.get(type_index)?.meta.get(slot)?;
        meta.state.is_live().then(|| (type_index, slot, handle.with_generation(meta.generation)))
    }

    /// `resolve` that also accepts a latest handle (`Handle::latest`): it matches whichever
    /// incarnation is live in its slot.
    pub(crate) fn locate(&self, handle: Handle) -> Option<(usize, usize)> {
        if !handle.is_latest() {
            return self.resolve(handle);
        }
        if handle.shard() != self.shard {
            return None;
        }
        let (type_index, slot) = (handle.type_index() as usize, handle.slot() as usize);
        let meta = self.types.get(type_index)?.meta.get(slot)?;
        meta.state.is_live().then_some((type_index, slot))
    }

    /// The concrete handle of the incarnation `handle` reaches: itself, unless it is a latest
    /// handle whose slot on this shard is live. Events about a receiver carry this.
    #[inline]
    pub(crate) fn concrete(&self, handle: Handle) -> Handle {
        if !handle.is_latest() {
            return handle;
        }
        self.locate(handle).map_or(handle, |(type_index, slot)| self.handle_of(type_index, slot))
    }

    #[inline]
    fn next_id(&mut self) -> MessageId {
        self.sequence += 1;
        MessageId::new(self.shard, self.sequence)
    }

    /// Free envelopes in the message pool.
    pub(crate) fn pool_free(&self) -> u32 {
        self.pool.free_count()
    }

    /// Calls `f` with the id of every message queued in a mailbox of this shard (accepted
    /// replies included), type by type, slot by slot, each mailbox from its head.
    pub(crate) fn for_each_queued(&self, f: &mut dyn FnMut(MessageId)) {
        for slots in self.types.iter() {
            for meta in slots.meta.iter().filter(|meta| !meta.mailbox.is_empty()) {
                meta.mailbox.for_each(&self.pool, |message| f(message.id()));
            }
        }
    }

    /// Whether a handle (a latest handle too) names a live isolate on this shard.
    pub(crate) fn is_live(&self, handle: Handle) -> bool {
        self.locate(handle).is_some()
    }

    /// Every live slot (reserved included) in (type, slot) order. O(slots): for fault
    /// injection and recovery, never on the message path.
    fn live_slots(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.types.iter().enumerate().flat_map(|(type_index, slots)| {
            let live = slots.meta.iter().enumerate().filter(|(_, meta)| meta.state.is_live());
            live.map(move |(slot, _)| (type_index, slot))
        })
    }

    /// Live (or reserved) isolates over every type. O(types): derived from the free lists
    /// and the retired counts, so a runtime may ask at every park.
    pub(crate) fn live_isolates(&self) -> usize {
        let live = self.types.iter().map(TypeSlots::live).sum();
        debug_assert_eq!(live, self.live_slots().count(), "free lists and retired counts agree");
        live
    }

    /// Live (or reserved) isolates of the type at `type_index`. O(1).
    pub(crate) fn live_in_type(&self, type_index: usize) -> usize {
        self.types.get(type_index).map_or(0, TypeSlots::live)
    }

    /// The handle of the `n`-th live isolate in (type, slot) order.
    pub(crate) fn nth_live(&self, n: usize) -> Option<Handle> {
        let (type_index, slot) = self.live_slots().nth(n)?;
        Some(self.handle_of(type_index, slot))
    }
}

/// What the unit tests of the shard's files share.
#[cfg(test)]
pub(super) mod test_support {
    use super::ShardCore;
    use crate::handle::ShardId;
    use crate::isolate::{Effect, Isolate};
    use crate::message::Message;
    use crate::spec::{SystemSpec, TypeConfig};
    use crate::testing::{TestBackend, TestConfig};

    /// Shard 0 of a one-shard spec whose only type (index 0) is `Idle` with `slots` slots,
    /// tracing on, and a test backend for it.
    pub(crate) fn idle_core(slots: u32) -> (ShardCore, TestBackend) {
        let mut spec = SystemSpec::new(1);
        spec.register::<Idle>(TypeConfig::new("idle").slots(slots));
        let mut core = ShardCore::new(&spec, ShardId(0));
        core.trace_on = true;
        (core, TestBackend::new(ShardId(0), &TestConfig::default()))
    }

    /// An isolate that only waits.
    pub(crate) struct Idle;

    impl Isolate for Idle {
        type Args = ();
        fn init(_args: (), _ctx: &mut crate::Ctx<'_>) -> (Self, Effect) {
            (Idle, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut crate::Ctx<'_>) -> Effect {
            Effect::Receive
        }
    }
}
