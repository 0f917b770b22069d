//! `ShardCore`: everything a shard owns except the isolate arenas.
//!
//! Slot metadata (generations, states, mailboxes, spawn arguments), ready queues, the message
//! pool, counters and the pending-init queue live here. A handler's `Ctx` borrows this
//! struct; the arena of the isolate being dispatched is borrowed separately by the batch
//! loop, which is what lets a handler send and spawn while its own state is borrowed.
//!
//! This module routes and accounts; it never calls isolate code.

use core::any::TypeId;

use crate::backend::{Env, Timestamp};
use crate::handle::{Handle, ShardId};
use crate::isolate::{Effect, crash};
use crate::label::Label;
use crate::limits::GENERATION_MAX;
use crate::message::{Message, MessageId};
use crate::payload::{Outgoing, Tag};
use crate::pool::{Mailbox, MessagePool};
use crate::ring::Ring;
use crate::spec::{SystemSpec, TypeEntry};
use crate::trace::{Counters, DropReason, Event, ExitKind, NO_REASON, SpawnError};

/// Lifecycle of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SlotState {
    /// On the free list.
    Free,
    /// Spawned; `init` has not run yet. Messages may already queue.
    Reserved,
    /// Its `init` or handler is on the stack.
    Running,
    /// Returned `Receive`: runs when a message arrives.
    Waiting,
    /// Returned `Yield`: runs next tick.
    Runnable,
    /// Reached the last generation; never used again.
    Retired,
}

impl SlotState {
    /// Whether a handle with the slot's current generation names a live isolate.
    fn is_live(self) -> bool {
        matches!(
            self,
            SlotState::Reserved | SlotState::Running | SlotState::Waiting | SlotState::Runnable
        )
    }
}

/// Why a send failed. Counted and traced in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The destination mailbox (or, for another shard, the transport toward it) is full.
    MailboxFull,
    /// The shard's message pool has no free envelope.
    PoolExhausted,
    /// The handle names no live isolate.
    StaleHandle,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SendError::MailboxFull => "the destination mailbox is full",
            SendError::PoolExhausted => "the message pool is exhausted",
            SendError::StaleHandle => "the handle names no live isolate",
        })
    }
}

impl std::error::Error for SendError {}

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

/// Metadata of every slot of one isolate type.
#[derive(Debug)]
pub(crate) struct TypeSlots {
    pub(crate) isolate: TypeId,
    args_size: usize,
    mailbox_capacity: u32,
    /// Dispatches per tick.
    pub(crate) budget: u32,
    generation: Box<[u32]>,
    pub(crate) state: Box<[SlotState]>,
    /// Whether the slot is in `ready` or `yielded` (each slot at most once).
    queued: Box<[bool]>,
    mailbox: Box<[Mailbox]>,
    args: Box<[u8]>,
    free: Box<[u32]>,
    free_len: u32,
    pub(crate) ready: Ring<u32>,
    pub(crate) yielded: Ring<u32>,
}

impl TypeSlots {
    fn new(entry: &TypeEntry) -> TypeSlots {
        let config = entry.config;
        let slot_count = config.slot_count as usize;
        TypeSlots {
            isolate: entry.isolate,
            args_size: entry.args_size,
            mailbox_capacity: config.mailbox_capacity,
            budget: config.budget_weight * crate::limits::DISPATCH_QUOTA_PER_WEIGHT,
            generation: vec![1; slot_count].into_boxed_slice(),
            state: vec![SlotState::Free; slot_count].into_boxed_slice(),
            queued: vec![false; slot_count].into_boxed_slice(),
            mailbox: vec![Mailbox::EMPTY; slot_count].into_boxed_slice(),
            args: vec![0; slot_count * entry.args_size].into_boxed_slice(),
            // Reversed so that slot 0 is handed out first.
            free: (0..config.slot_count).rev().collect(),
            free_len: config.slot_count,
            ready: Ring::new(slot_count, 0),
            yielded: Ring::new(slot_count, 0),
        }
    }

    pub(crate) fn slot_count(&self) -> usize {
        self.state.len()
    }

    /// Spawn arguments kept for `slot`.
    pub(crate) fn args(&self, slot: usize) -> &[u8] {
        &self.args[slot * self.args_size..(slot + 1) * self.args_size]
    }

    /// Queues `slot` to run this tick unless it is queued already.
    fn wake(&mut self, slot: usize) {
        if !self.queued[slot] {
            self.queued[slot] = true;
            // Each slot is queued at most once, and the ring holds every slot.
            self.ready.push(slot as u32).expect("ready queue holds every slot");
        }
    }

    /// Moves isolates that yielded last tick to the ready queue.
    pub(crate) fn promote_yielded(&mut self) {
        // Bounded: the yielded ring holds at most `slot_count` entries.
        while let Some(slot) = self.yielded.pop() {
            self.ready.push(slot).expect("ready queue holds every slot");
        }
    }

    /// Takes the next slot to dispatch off the ready queue.
    pub(crate) fn pop_ready(&mut self) -> Option<usize> {
        let slot = self.ready.pop()? as usize;
        self.queued[slot] = false;
        Some(slot)
    }

    pub(crate) fn has_work(&self) -> bool {
        !self.ready.is_empty() || !self.yielded.is_empty()
    }
}

/// Everything one shard owns except the isolate arenas.
#[derive(Debug)]
pub(crate) struct ShardCore {
    pub(crate) shard: ShardId,
    shard_count: usize,
    pub(crate) types: Box<[TypeSlots]>,
    pool: MessagePool,
    pub(crate) counters: Counters,
    sequence: u64,
    /// Children spawned whose `init` runs right after the current handler.
    pub(crate) pending_inits: Ring<Handle>,
    pub(crate) trace_on: bool,
    pub(crate) now: Timestamp,
}

impl ShardCore {
    /// Allocates every table of the shard. The spec is validated by the caller.
    pub(crate) fn new(spec: &SystemSpec, shard: ShardId) -> ShardCore {
        let types: Box<[TypeSlots]> = spec.types.iter().map(TypeSlots::new).collect();
        let total_slots = types.iter().map(TypeSlots::slot_count).sum();
        let blank = Message::system(MessageId::NONE, Handle::NONE, Tag::NONE);
        ShardCore {
            shard,
            shard_count: spec.shard_count,
            types,
            pool: MessagePool::new(spec.message_pool_size, blank),
            counters: Counters::default(),
            sequence: 0,
            pending_inits: Ring::new(total_slots, Handle::NONE),
            trace_on: false,
            now: Timestamp::ZERO,
        }
    }

    pub(crate) fn trace(&self, env: &mut dyn Env, event: Event) {
        if self.trace_on {
            env.trace(&event);
        }
    }

    pub(crate) fn handle_of(&self, type_index: usize, slot: usize) -> Handle {
        // Type and slot indices are bounded by the validated spec.
        Handle::new(
            self.shard,
            type_index as u8,
            slot as u32,
            self.types[type_index].generation[slot],
        )
    }

    /// The (type, slot) a handle names on this shard, if it is live.
    fn resolve(&self, handle: Handle) -> Option<(usize, usize)> {
        if handle.is_none() || handle.shard() != self.shard {
            return None;
        }
        let type_index = handle.type_index() as usize;
        let slots = self.types.get(type_index)?;
        let slot = handle.slot() as usize;
        let state = *slots.state.get(slot)?;
        (state.is_live() && slots.generation[slot] == handle.generation())
            .then_some((type_index, slot))
    }

    fn next_id(&mut self) -> MessageId {
        self.sequence += 1;
        MessageId::new(self.shard, self.sequence)
    }

    /// Sends `outgoing` from `from` to `to`: locally into the mailbox, or into the transport.
    pub(crate) fn send(
        &mut self,
        env: &mut dyn Env,
        from: Handle,
        to: Handle,
        outgoing: &Outgoing,
    ) -> Result<(), SendError> {
        let id = self.next_id();
        self.counters.sent += 1;
        self.trace(env, Event::Send { id, from, to, tag: outgoing.tag });
        let message = Message::user(id, from, to, outgoing);
        let remote = !to.is_none() && to.shard() != self.shard;
        let result = if !remote {
            self.enqueue(env, &message)
        } else if to.shard().index() >= self.shard_count {
            Err(DropReason::StaleHandle)
        } else {
            env.send_remote(to.shard(), &message).map_err(|_| DropReason::RingFull)
        };
        result.map_err(|reason| {
            self.drop_message(env, id, to, reason);
            match reason {
                DropReason::MailboxFull | DropReason::RingFull => SendError::MailboxFull,
                DropReason::PoolExhausted => SendError::PoolExhausted,
                DropReason::StaleHandle | DropReason::TargetExited => SendError::StaleHandle,
            }
        })
    }

    /// Accepts an envelope that arrived from another shard; drops are counted here.
    pub(crate) fn accept_remote(&mut self, env: &mut dyn Env, message: &Message) {
        if let Err(reason) = self.enqueue(env, message) {
            self.drop_message(env, message.id(), message.destination(), reason);
        }
    }

    fn drop_message(&mut self, env: &mut dyn Env, id: MessageId, to: Handle, reason: DropReason) {
        self.counters.count_drop(reason);
        self.trace(env, Event::Drop { id, to, reason });
    }

    /// Puts `message` in its destination's mailbox on this shard and wakes the destination.
    /// The checks run in a fixed order: liveness, capacity, pool.
    fn enqueue(&mut self, env: &mut dyn Env, message: &Message) -> Result<(), DropReason> {
        let to = message.destination();
        let (type_index, slot) = self.resolve(to).ok_or(DropReason::StaleHandle)?;
        let slots = &mut self.types[type_index];
        let mailbox = &mut slots.mailbox[slot];
        if mailbox.len() >= slots.mailbox_capacity {
            return Err(DropReason::MailboxFull);
        }
        mailbox.push_back(&mut self.pool, message).map_err(|()| DropReason::PoolExhausted)?;
        let mailbox_len = mailbox.len();
        if slots.state[slot] == SlotState::Waiting {
            slots.wake(slot);
        }
        self.counters.enqueued += 1;
        self.trace(env, Event::Enqueue { id: message.id(), to, mailbox_len });
        Ok(())
    }

    /// The dense index of the isolate type whose Rust type is `isolate`. A linear scan over
    /// at most 255 types; each Rust type is registered once, so the answer is unique.
    pub(crate) fn type_index_of(&self, isolate: TypeId) -> Option<usize> {
        self.types.iter().position(|slots| slots.isolate == isolate)
    }

    /// Reserves a slot of type `isolate` for a child of `parent`; its `init` runs after the
    /// current handler returns.
    pub(crate) fn reserve(
        &mut self,
        env: &mut dyn Env,
        parent: Handle,
        isolate: TypeId,
        args: &[u8],
    ) -> Result<Handle, SpawnError> {
        let type_index = self.type_index_of(isolate);
        let result = match type_index {
            Some(type_index) => self.try_reserve(type_index, args),
            None => Err(SpawnError::NotRegistered),
        };
        match result {
            Ok(child) => {
                self.counters.spawned += 1;
                self.pending_inits.push(child).expect("pending inits hold every slot");
                self.trace(env, Event::Spawn { parent, child });
            }
            Err(reason) => {
                self.counters.spawn_failed += 1;
                // Type indices fit in u8 once the spec is validated.
                let event_type = type_index.map_or(u8::MAX, |t| t as u8);
                self.trace(env, Event::SpawnFailed { parent, type_index: event_type, reason });
            }
        }
        result
    }

    fn try_reserve(&mut self, type_index: usize, args: &[u8]) -> Result<Handle, SpawnError> {
        let slots = &mut self.types[type_index];
        assert_eq!(args.len(), slots.args_size, "spawn arguments of the registered size");
        if slots.free_len == 0 {
            return Err(SpawnError::ArenaFull);
        }
        slots.free_len -= 1;
        let slot = slots.free[slots.free_len as usize] as usize;
        assert_eq!(slots.state[slot], SlotState::Free);
        debug_assert!(slots.mailbox[slot].is_empty());
        slots.state[slot] = SlotState::Reserved;
        let size = slots.args_size;
        slots.args[slot * size..(slot + 1) * size].copy_from_slice(args);
        Ok(self.handle_of(type_index, slot))
    }

    /// Takes the next pending init that is still reserved (a reserved slot never leaves that
    /// state before its init runs, but the check keeps the invariant local).
    pub(crate) fn pop_pending_init(&mut self) -> Option<(usize, usize)> {
        // Bounded by the ring's capacity, which is the shard's slot count.
        while let Some(child) = self.pending_inits.pop() {
            let type_index = child.type_index() as usize;
            let slot = child.slot() as usize;
            let slots = &mut self.types[type_index];
            if slots.state[slot] == SlotState::Reserved
                && slots.generation[slot] == child.generation()
            {
                slots.state[slot] = SlotState::Running;
                return Some((type_index, slot));
            }
        }
        None
    }

    /// The message to hand to a slot popped from the ready queue, or `None` if it has
    /// nothing to do (it stopped, or was woken spuriously). Marks the slot `Running`.
    pub(crate) fn take_message(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
    ) -> Option<Message> {
        let slots = &mut self.types[type_index];
        let state = slots.state[slot];
        let message = match state {
            SlotState::Waiting | SlotState::Runnable => match slots.mailbox[slot]
                .pop_front(&mut self.pool)
            {
                Some(message) => {
                    self.counters.delivered += 1;
                    message
                }
                None if state == SlotState::Runnable => {
                    Message::system(MessageId::NONE, self.handle_of(type_index, slot), Tag::RESUME)
                }
                None => return None,
            },
            SlotState::Free | SlotState::Reserved | SlotState::Running | SlotState::Retired => {
                return None;
            }
        };
        self.types[type_index].state[slot] = SlotState::Running;
        self.counters.dispatched += 1;
        let to = message.destination();
        self.trace(env, Event::Deliver { id: message.id(), to, tag: message.tag() });
        Some(message)
    }

    /// Applies what a handler or `init` returned.
    pub(crate) fn apply_effect(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        effect: Effect,
        phase: Phase,
    ) -> Fate {
        debug_assert_eq!(self.types[type_index].state[slot], SlotState::Running);
        let stop_kind = |crashed: bool| match (phase, crashed) {
            (Phase::Init, _) => ExitKind::InitFailed,
            (Phase::Handle, false) => ExitKind::Normal,
            (Phase::Handle, true) => ExitKind::Crashed,
        };
        match effect {
            Effect::Receive => {
                let slots = &mut self.types[type_index];
                slots.state[slot] = SlotState::Waiting;
                if !slots.mailbox[slot].is_empty() {
                    slots.wake(slot);
                }
                Fate::Lives
            }
            Effect::Yield => {
                let slots = &mut self.types[type_index];
                slots.state[slot] = SlotState::Runnable;
                if !slots.queued[slot] {
                    slots.queued[slot] = true;
                    slots.yielded.push(slot as u32).expect("yielded queue holds every slot");
                }
                Fate::Lives
            }
            Effect::Done => {
                let reason = if phase == Phase::Init { crash::INIT_DONE } else { NO_REASON };
                self.teardown(env, type_index, slot, stop_kind(false), reason);
                Fate::Stopped
            }
            Effect::Crash(reason) => {
                self.teardown(env, type_index, slot, stop_kind(true), reason);
                Fate::Stopped
            }
            Effect::Call { .. } | Effect::Reply { .. } | Effect::Io(_) => {
                self.teardown(env, type_index, slot, stop_kind(true), crash::EFFECT_UNSUPPORTED);
                Fate::Stopped
            }
        }
    }

    /// Ends the incarnation in `slot`: drops its queued messages, bumps the generation (so
    /// every handle to it is stale) and frees or retires the slot. The caller drops the
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
        }
        self.trace(env, Event::Exit { handle, kind, reason });
        // Bounded by the mailbox capacity.
        while let Some(message) = self.types[type_index].mailbox[slot].pop_front(&mut self.pool) {
            self.drop_message(env, message.id(), handle, DropReason::TargetExited);
        }
        let slots = &mut self.types[type_index];
        if slots.generation[slot] == GENERATION_MAX {
            slots.state[slot] = SlotState::Retired;
            self.counters.slots_retired += 1;
            self.trace(env, Event::Retire { handle });
        } else {
            slots.generation[slot] += 1;
            slots.state[slot] = SlotState::Free;
            slots.free[slots.free_len as usize] = slot as u32;
            slots.free_len += 1;
        }
    }

    /// Whether any isolate is queued to run or any init is pending.
    pub(crate) fn has_work(&self) -> bool {
        !self.pending_inits.is_empty() || self.types.iter().any(TypeSlots::has_work)
    }

    /// Free envelopes in the message pool.
    pub(crate) fn pool_free(&self) -> u32 {
        self.pool.free_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolate::Isolate;
    use crate::message::Message;
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
        let idle = TypeId::of::<Idle>();

        core.types[0].generation[0] = GENERATION_MAX - 1;
        let first = core.reserve(&mut backend, Handle::NONE, idle, &[]).expect("a slot");
        assert_eq!(core.pop_pending_init(), Some((0, 0)));
        core.teardown(&mut backend, 0, 0, ExitKind::Normal, NO_REASON);
        let last = core.reserve(&mut backend, Handle::NONE, idle, &[]).expect("the slot again");
        assert_eq!((first.generation(), last.generation()), (GENERATION_MAX - 1, GENERATION_MAX));
        assert_eq!(core.pop_pending_init(), Some((0, 0)));
        core.teardown(&mut backend, 0, 0, ExitKind::Normal, NO_REASON);

        assert_eq!(core.types[0].state[0], SlotState::Retired);
        assert_eq!(core.counters.slots_retired, 1);
        assert_eq!(core.reserve(&mut backend, Handle::NONE, idle, &[]), Err(SpawnError::ArenaFull));
        assert_eq!(core.resolve(last), None);
        assert!(backend.events().contains(&Event::Retire { handle: last }));
    }
}
