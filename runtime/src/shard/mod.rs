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
mod lifecycle;
mod routing;
mod slots;
mod timers;

use crate::backend::{Env, Timestamp};
use crate::handle::{Handle, ShardId};
use crate::io::{BufferId, IoBuffers, IoOp, IoResult, IoSubmission, IoToken};
use crate::isolate::{Effect, crash};
use crate::limits::IO_SUBMISSIONS_PER_TICK_MAX;
use crate::message::{Message, MessageId, TimerFired};
use crate::payload::Tag;
use crate::pool::MessagePool;
use crate::ring::Ring;
use crate::spec::SystemSpec;
use crate::supervision::{Groups, NO_GROUP};
use crate::timer::{Fired, Timers};
use crate::trace::{Counters, Event, ExitKind, NO_REASON, ShardFailure};

pub use self::routing::{ReplyError, SendError};

use self::calls::CallResolution;
use self::io_table::InFlight;
use self::lifecycle::ExitNotice;
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
