//! `ShardCore`: everything a shard owns except the isolate arenas.
//!
//! Slot metadata (generations, states, mailboxes, spawn arguments, pending calls and I/O),
//! ready queues, the message pool, timers, I/O buffers, supervision groups, counters and the
//! pending-init and exit queues live here. A handler's `Ctx` borrows this struct; the arena
//! of the isolate being dispatched is borrowed separately by the batch loop, which is what
//! lets a handler send and spawn while its own state is borrowed.
//!
//! This module routes and accounts; it never calls isolate code and never decides
//! supervision (see `supervision`).

mod calls;
mod io_table;
mod routing;
mod slots;
mod timers;

use core::any::TypeId;

use crate::backend::{Env, Timestamp};
use crate::handle::{Handle, ShardId};
use crate::io::{BufferId, IoBuffers, IoOp, IoResult, IoSubmission, IoToken};
use crate::isolate::{Effect, crash};
use crate::label::Label;
use crate::limits::{GENERATION_MAX, IO_SUBMISSIONS_PER_TICK_MAX};
use crate::message::{Message, MessageId, TimerFired};
use crate::payload::Tag;
use crate::pool::MessagePool;
use crate::ring::Ring;
use crate::spec::{ArgsBytes, SystemSpec};
use crate::supervision::{Groups, NO_GROUP};
use crate::timer::{Fired, Timers};
use crate::trace::{Counters, DropReason, Event, ExitKind, NO_REASON, ShardFailure, SpawnError};

pub use self::routing::{ReplyError, SendError};

use self::calls::{CallResolution, CallSlot};
use self::io_table::InFlight;
use self::slots::{SlotMeta, SlotState, TypeSlots, handle_in, pending};

/// Where an isolate's code was when it returned an effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Init,
    Handle,
}

/// Whether the isolate survived its effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Lives,
    Stopped,
}

/// A supervised isolate stopped by itself; its group decides what follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExitNotice {
    pub(crate) handle: Handle,
    pub(crate) kind: ExitKind,
    pub(crate) group: u16,
}

/// The common dispatch path: the mailbox head, or a resume after `Yield`.
#[inline(always)]
fn take_plain(
    meta: &mut SlotMeta,
    pool: &mut MessagePool,
    counters: &mut Counters,
    handle: Handle,
    out: &mut Message,
) -> bool {
    if meta.mailbox.pop_front_into(pool, out) {
        counters.delivered += 1;
        return true;
    }
    if meta.state == SlotState::Runnable {
        out.make_system(handle, Tag::RESUME);
        return true;
    }
    false
}

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
    io_queue: Ring<IoSubmission>,
    in_flight: Box<[Option<InFlight>]>,
    in_flight_free: Box<[u32]>,
    in_flight_free_len: usize,
    /// Received data of the completion being handled: readable through `ctx.io_data`.
    current_io: Option<(BufferId, u32)>,
    pub(crate) trace_on: bool,
    pub(crate) now: Timestamp,
    pub(crate) failure: Option<ShardFailure>,
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
        let blank_submission = IoSubmission {
            token: IoToken { isolate: Handle::NONE, sequence: 0, entry: 0 },
            op: IoOp::Close { handle: crate::io::IoHandle::NONE },
            receive_buffer: None,
        };
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
            io_queue: Ring::new(IO_SUBMISSIONS_PER_TICK_MAX as usize, blank_submission),
            in_flight: vec![None; in_flight_max].into_boxed_slice(),
            in_flight_free: (0..in_flight_max as u32).rev().collect(),
            in_flight_free_len: in_flight_max,
            current_io: None,
            trace_on: false,
            now: Timestamp::ZERO,
            failure: None,
            in_core: 0,
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

    /// The (type, slot) a handle names on this shard, if it is live.
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

    #[inline]
    fn next_id(&mut self) -> MessageId {
        self.sequence += 1;
        MessageId::new(self.shard, self.sequence)
    }

    // ----- spawning -------------------------------------------------------------------

    /// The dense index of the isolate type whose Rust type is `isolate`. A linear scan over
    /// at most 255 types; each Rust type is registered once, so the answer is unique.
    pub(crate) fn type_index_of(&self, isolate: TypeId) -> Option<usize> {
        self.types.iter().position(|slots| slots.isolate == isolate)
    }

    /// Reserves a slot of `type_index` for a child of `parent` in `group`; its `init` runs
    /// after the current handler returns.
    pub(crate) fn reserve(
        &mut self,
        env: &mut dyn Env,
        parent: Handle,
        type_index: Option<usize>,
        args: &[u8],
        group: u16,
    ) -> Result<Handle, SpawnError> {
        let result = match type_index {
            Some(type_index) => self.try_reserve(type_index, args, group),
            None => Err(SpawnError::NotRegistered),
        };
        match result {
            Ok(child) => {
                self.counters.spawned += 1;
                self.pending_inits.push(child).expect("pending inits hold every slot");
                self.trace(env, Event::Spawn { parent, child });
            }
            Err(reason) => self.spawn_failed(env, parent, type_index, reason),
        }
        result
    }

    fn spawn_failed(
        &mut self,
        env: &mut dyn Env,
        parent: Handle,
        type_index: Option<usize>,
        reason: SpawnError,
    ) {
        self.counters.spawn_failed += 1;
        // Type indices fit in u8 once the spec is validated.
        let type_index = type_index.map_or(u8::MAX, |t| t as u8);
        self.trace(env, Event::SpawnFailed { parent, type_index, reason });
    }

    fn try_reserve(
        &mut self,
        type_index: usize,
        args: &[u8],
        group: u16,
    ) -> Result<Handle, SpawnError> {
        let slots = &mut self.types[type_index];
        assert_eq!(args.len(), slots.args_size, "spawn arguments of the registered size");
        if slots.free_len == 0 {
            return Err(SpawnError::ArenaFull);
        }
        slots.free_len -= 1;
        let slot = slots.free[slots.free_len as usize] as usize;
        assert_eq!(slots.meta[slot].state, SlotState::Free);
        debug_assert!(slots.meta[slot].mailbox.is_empty());
        slots.meta[slot].state = SlotState::Reserved;
        slots.group[slot] = group;
        let size = slots.args_size;
        slots.args[slot * size..(slot + 1) * size].copy_from_slice(args);
        Ok(self.handle_of(type_index, slot))
    }

    /// Spawns a dynamic child of `isolate` type into the group of `parent`.
    pub(crate) fn spawn_child(
        &mut self,
        env: &mut dyn Env,
        parent: Handle,
        isolate: TypeId,
        args: &[u8],
        restart: crate::spec::Restart,
    ) -> Result<Handle, SpawnError> {
        let type_index = self.type_index_of(isolate);
        let group = self.resolve(parent).map_or(NO_GROUP, |(parent_type, parent_slot)| {
            self.types[parent_type].group[parent_slot]
        });
        let refusal = if group == NO_GROUP {
            Some(SpawnError::NotSupervised)
        } else if !self.groups.dynamic_room(group) {
            Some(SpawnError::GroupFull)
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.spawn_failed(env, parent, type_index, reason);
            return Err(reason);
        }
        let child = self.reserve(env, parent, type_index, args, group)?;
        // Type indices fit in u16 (at most 255 types).
        let index = child.type_index() as u16;
        self.groups.add_dynamic(group, index, ArgsBytes::from_slice(args), restart, child);
        Ok(child)
    }

    /// Takes the next pending init that is still reserved and marks it running.
    pub(crate) fn pop_pending_init(&mut self) -> Option<(usize, usize)> {
        // Bounded by the ring's capacity, which is the shard's slot count.
        while let Some(child) = self.pending_inits.pop() {
            let type_index = child.type_index() as usize;
            let slot = child.slot() as usize;
            let slots = &mut self.types[type_index];
            if slots.meta[slot].state == SlotState::Reserved
                && slots.meta[slot].generation == child.generation()
            {
                slots.meta[slot].state = SlotState::Running;
                return Some((type_index, slot));
            }
        }
        None
    }

    // ----- dispatch -------------------------------------------------------------------

    /// The message to hand to a slot popped from the ready queue, or `None` if it has
    /// nothing to do (it stopped, or was woken spuriously). Marks the slot `Running`.
    ///
    /// Priority: a call's resolution, an I/O completion, fired timers, the mailbox, then a
    /// resume after `Yield`.
    #[inline(always)]
    pub(crate) fn take_message(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        out: &mut Message,
    ) -> bool {
        let meta = &mut self.types[type_index].meta[slot];
        if !meta.deliverable() {
            return false;
        }
        // Type and slot indices are bounded by the validated spec.
        let handle = Handle::new(self.shard, type_index as u8, slot as u32, meta.generation);
        if meta.pending == 0 {
            if !take_plain(meta, &mut self.pool, &mut self.counters, handle, out) {
                return false;
            }
            meta.state = SlotState::Running;
        } else if !self.take_with_pending(type_index, slot, handle, out) {
            return false;
        }
        self.counters.dispatched += 1;
        if self.trace_on {
            env.trace(&Event::Deliver { id: out.id(), to: handle, tag: out.tag() });
        }
        true
    }

    /// `take_message` for a slot with pending bits: what `take_pending` finds, else the
    /// plain path. Marks the slot `Running` if something was taken.
    #[inline(never)]
    fn take_with_pending(
        &mut self,
        type_index: usize,
        slot: usize,
        handle: Handle,
        out: &mut Message,
    ) -> bool {
        match self.take_pending(type_index, slot, handle) {
            Some(message) => *out = message,
            None => {
                let meta = &mut self.types[type_index].meta[slot];
                if !take_plain(meta, &mut self.pool, &mut self.counters, handle, out) {
                    return false;
                }
            }
        }
        self.types[type_index].meta[slot].state = SlotState::Running;
        true
    }

    /// Something besides the mailbox may be due: a call's resolution, an I/O completion or
    /// a fired timer, in that order.
    fn take_pending(&mut self, type_index: usize, slot: usize, handle: Handle) -> Option<Message> {
        let key = self.key_of(type_index, slot);
        let slots = &mut self.types[type_index];
        let flags = slots.meta[slot].pending;
        if flags & pending::RESOLVED != 0 {
            slots.meta[slot].pending &= !pending::RESOLVED;
            let resolution =
                core::mem::replace(&mut slots.call[slot].resolution, CallResolution::None);
            return Some(match resolution {
                CallResolution::Reply => {
                    let reply = slots.meta[slot]
                        .mailbox
                        .pop_front(&mut self.pool)
                        .expect("the reply is queued first");
                    assert!(reply.is_reply(), "the mailbox head is the accepted reply");
                    self.counters.delivered += 1;
                    reply
                }
                CallResolution::Failed(failure) => Message::system_with(
                    handle,
                    Tag::CALL_TIMEOUT,
                    &[failure as u8],
                    MessageId::NONE,
                ),
                CallResolution::None => unreachable!("RESOLVED is set with a resolution"),
            });
        }
        if flags & pending::IO != 0 {
            slots.meta[slot].pending &= !pending::IO;
            let (completion, data) =
                slots.io[slot].completion.take().expect("IO is set with a completion");
            self.current_io = data.map(|buffer| match completion.result {
                IoResult::Received { len, .. } => (buffer, len),
                _ => (buffer, 0),
            });
            return Some(Message::system_with(
                handle,
                Tag::IO,
                &completion.encode(),
                MessageId::NONE,
            ));
        }
        if let Some(Fired::User { id, tag }) = self.timers.pop_fired(key) {
            if !self.timers.has_fired(key) {
                self.types[type_index].meta[slot].pending &= !pending::FIRED;
            }
            let fired = TimerFired { timer: id, tag };
            return Some(Message::system_with(
                handle,
                Tag::TIMER,
                &fired.encode(),
                MessageId::NONE,
            ));
        }
        // The fired timers were cancelled before delivery: the caller takes the plain path.
        self.types[type_index].meta[slot].pending &= !pending::FIRED;
        None
    }

    /// Applies what a handler or `init` returned, after freeing what the dispatch lent.
    #[inline(always)]
    pub(crate) fn apply_effect(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        effect: Effect,
        phase: Phase,
    ) -> Fate {
        if let Some((buffer, _)) = self.current_io.take() {
            self.buffers.release(buffer);
        }
        debug_assert_eq!(self.types[type_index].meta[slot].state, SlotState::Running);
        // The common case stays inline in the batch loop; the rest is out of line.
        if let Effect::Receive = effect {
            self.wait(type_index, slot);
            return Fate::Lives;
        }
        self.apply_other_effect(env, type_index, slot, effect, phase)
    }

    /// `apply_effect` for every effect but `Receive`.
    #[inline(never)]
    fn apply_other_effect(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        effect: Effect,
        phase: Phase,
    ) -> Fate {
        let stop_kind = |crashed: bool| match (phase, crashed) {
            (Phase::Init, _) => ExitKind::InitFailed,
            (Phase::Handle, false) => ExitKind::Normal,
            (Phase::Handle, true) => ExitKind::Crashed,
        };
        match effect {
            Effect::Receive => self.wait(type_index, slot),
            Effect::Yield => {
                let slots = &mut self.types[type_index];
                let meta = &mut slots.meta[slot];
                meta.state = SlotState::Runnable;
                if !meta.queued {
                    meta.queued = true;
                    slots.yielded.push(slot as u32).expect("yielded queue holds every slot");
                }
            }
            Effect::Done => {
                let reason = if phase == Phase::Init { crash::INIT_DONE } else { NO_REASON };
                self.teardown(env, type_index, slot, stop_kind(false), reason);
                return Fate::Stopped;
            }
            Effect::Crash(reason) => {
                self.teardown(env, type_index, slot, stop_kind(true), reason);
                return Fate::Stopped;
            }
            Effect::Call { to, message, timeout } => {
                self.start_call(env, type_index, slot, to, &message, timeout)
            }
            Effect::Reply { token, message } => {
                let me = self.handle_of(type_index, slot);
                // A reply to a caller that stopped waiting is counted as a late reply.
                let _ = self.reply(env, me, token, &message);
                self.wait(type_index, slot);
            }
            Effect::Io(op) => self.submit_io(env, type_index, slot, op),
        }
        Fate::Lives
    }

    #[inline(always)]
    fn wait(&mut self, type_index: usize, slot: usize) {
        let slots = &mut self.types[type_index];
        let meta = &mut slots.meta[slot];
        meta.state = SlotState::Waiting;
        if meta.deliverable() {
            meta.wake(&mut slots.ready, slot);
        }
    }

    /// Panics of isolate code end here: the trace gets the message, the slot is torn down.
    pub(crate) fn panicked(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        text: crate::trace::PanicText,
        phase: Phase,
    ) {
        if let Some((buffer, _)) = self.current_io.take() {
            self.buffers.release(buffer);
        }
        let handle = self.handle_of(type_index, slot);
        self.counters.panics += 1;
        self.trace(env, Event::Panic { handle, text });
        let kind = if phase == Phase::Init { ExitKind::InitFailed } else { ExitKind::Crashed };
        self.teardown(env, type_index, slot, kind, crash::PANIC);
    }

    // ----- teardown -------------------------------------------------------------------

    /// Ends the incarnation in `slot`: drops its queued messages, timers, pending call,
    /// undelivered completion and buffers, bumps the generation (so every handle to it and
    /// every I/O token of it is stale) and frees or retires the slot. A supervised isolate
    /// that stopped by itself is queued for its group's decision. The caller drops the
    /// isolate's state in its arena.
    pub(crate) fn teardown(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        kind: ExitKind,
        reason: Label,
    ) {
        let handle = self.handle_of(type_index, slot);
        match kind {
            ExitKind::Normal => self.counters.exits_normal += 1,
            ExitKind::Crashed => self.counters.crashes += 1,
            ExitKind::InitFailed => self.counters.init_failures += 1,
            ExitKind::Shutdown => self.counters.shutdowns += 1,
        }
        self.trace(env, Event::Exit { handle, kind, reason });
        // Bounded by the mailbox capacity (plus one accepted reply).
        while let Some(message) =
            self.types[type_index].meta[slot].mailbox.pop_front(&mut self.pool)
        {
            self.drop_message(env, message.id(), handle, DropReason::TargetExited);
        }
        let key = self.key_of(type_index, slot);
        let (timers, trace_on, counters) = (&mut self.timers, self.trace_on, &mut self.counters);
        timers.clear_owner(key, |timer| {
            counters.timers_cancelled += 1;
            if trace_on {
                env.trace(&Event::TimerCancel { owner: handle, timer });
            }
        });
        let slots = &mut self.types[type_index];
        slots.call[slot] = CallSlot { correlation: 0, resolution: CallResolution::None };
        slots.meta[slot].pending = 0;
        if let Some((_, Some(buffer))) = slots.io[slot].completion.take() {
            self.buffers.release(buffer);
        }
        if core::mem::take(&mut slots.buffers_held[slot]) > 0 {
            self.buffers.release_held_by(handle);
        }
        let slots = &mut self.types[type_index];
        let group = slots.group[slot];
        slots.group[slot] = NO_GROUP;
        if slots.meta[slot].generation == GENERATION_MAX {
            slots.meta[slot].state = SlotState::Retired;
            self.counters.slots_retired += 1;
            self.trace(env, Event::Retire { handle });
        } else {
            slots.meta[slot].generation += 1;
            slots.meta[slot].state = SlotState::Free;
            slots.free[slots.free_len as usize] = slot as u32;
            slots.free_len += 1;
        }
        if group != NO_GROUP && kind != ExitKind::Shutdown {
            self.exits
                .push(ExitNotice { handle, kind, group })
                .expect("exit notices hold every slot");
        }
    }

    /// Readies every type for the dispatch of a tick: isolates that yielded last tick
    /// become ready, and each type's budget is refilled.
    #[inline]
    pub(crate) fn start_dispatch(&mut self) {
        for slots in self.types.iter_mut() {
            slots.promote_yielded();
            slots.budget_left = slots.budget;
        }
    }

    /// Whether any isolate is queued to run, any init is pending or any exit awaits its
    /// supervisor.
    #[inline]
    pub(crate) fn has_work(&self) -> bool {
        !self.pending_inits.is_empty()
            || !self.exits.is_empty()
            || self.types.iter().any(TypeSlots::has_work)
    }

    /// Free envelopes in the message pool.
    pub(crate) fn pool_free(&self) -> u32 {
        self.pool.free_count()
    }

    /// Whether a batch must stop so that pending inits or supervision decisions run now.
    #[inline]
    pub(crate) fn interrupted(&self) -> bool {
        !self.pending_inits.is_empty() || !self.exits.is_empty()
    }

    /// Whether a handle names a live isolate on this shard.
    pub(crate) fn is_live(&self, handle: Handle) -> bool {
        self.resolve(handle).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolate::Isolate;
    use crate::spec::TypeConfig;
    use crate::testing::{TestBackend, TestConfig};

    struct Idle;

    impl Isolate for Idle {
        type Args = ();
        fn init(_args: (), _ctx: &mut crate::Ctx<'_>) -> (Self, Effect) {
            (Idle, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut crate::Ctx<'_>) -> Effect {
            Effect::Receive
        }
    }

    /// A slot that ends an incarnation at the last generation is retired: never handed out
    /// again, counted and traced, and its last handle is stale.
    #[test]
    fn slot_at_last_generation_is_retired() {
        let mut spec = SystemSpec::new(1);
        spec.register::<Idle>(TypeConfig::new("idle").slots(1));
        let mut core = ShardCore::new(&spec, ShardId(0));
        let mut backend = TestBackend::new(ShardId(0), &TestConfig::default());
        core.trace_on = true;
        let idle = Some(0);

        core.types[0].meta[0].generation = GENERATION_MAX - 1;
        let first = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).expect("a slot");
        assert_eq!(core.pop_pending_init(), Some((0, 0)));
        core.teardown(&mut backend, 0, 0, ExitKind::Normal, NO_REASON);
        let last =
            core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).expect("the slot again");
        assert_eq!((first.generation(), last.generation()), (GENERATION_MAX - 1, GENERATION_MAX));
        assert_eq!(core.pop_pending_init(), Some((0, 0)));
        core.teardown(&mut backend, 0, 0, ExitKind::Normal, NO_REASON);

        assert_eq!(core.types[0].meta[0].state, SlotState::Retired);
        assert_eq!(core.counters.slots_retired, 1);
        assert_eq!(
            core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP),
            Err(SpawnError::ArenaFull)
        );
        assert_eq!(core.resolve(last), None);
        assert!(backend.events().contains(&Event::Retire { handle: last }));
    }
}
