//! Dispatch: what a ready slot is handed (a call's resolution, an I/O completion, the
//! shutdown notice, a fired timer, the mailbox head, or a resume after `Yield`, in that
//! order), applying the effect
//! its handler returned (a stop is decided here and completed, once the arena dropped the
//! state, by `stopped`), and the per-tick bookkeeping of the ready queues and budgets.
//!
//! Not the batch loop nor isolate code (see `crate::arena`): this file prepares a message
//! and applies an effect, and the arena runs the handler in between. The per-message path
//! lives here, and its inline attributes are deliberate.

use super::ShardCore;
use super::calls::CallResolution;
use super::slots::{SlotMeta, SlotState, TypeSlots, pending};
use crate::backend::Env;
use crate::handle::Handle;
use crate::io::IoResult;
use crate::isolate::{Effect, crash};
use crate::label::Label;
use crate::message::{Message, MessageId, TimerFired};
use crate::payload::Tag;
use crate::pool::MessagePool;
use crate::timer::Fired;
use crate::trace::{Counters, Event, ExitKind, NO_REASON, PanicText};

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
    /// It stops: its arena drops its state, then `ShardCore::stopped` ends the incarnation.
    Stops(Stop),
}

/// How an incarnation ends, as its effect, its panic or its supervisor decided. Final once
/// its state is dropped: a panic in the state's `Drop` turns a normal exit into a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stop {
    pub(crate) kind: ExitKind,
    pub(crate) reason: Label,
}

impl Stop {
    /// Stopped by its supervisor.
    pub(crate) const SHUTDOWN: Stop = Stop { kind: ExitKind::Shutdown, reason: NO_REASON };

    /// The exit once the state's `Drop` panicked: a normal stop becomes a crash by panic
    /// (the isolate did not end cleanly after all, and its supervisor must know); a crash,
    /// a failed init or a shutdown stays what it was.
    fn after_drop_panic(self) -> Stop {
        match self.kind {
            ExitKind::Normal => Stop { kind: ExitKind::Crashed, reason: crash::PANIC },
            ExitKind::Crashed
            | ExitKind::InitFailed
            | ExitKind::Shutdown
            | ExitKind::ShardCrashed => self,
        }
    }
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

impl ShardCore {
    /// The message to hand to a slot popped from the ready queue, or `None` if it has
    /// nothing to do (it stopped, or was woken spuriously). Marks the slot `Running`.
    ///
    /// Priority: a call's resolution, an I/O completion, the shutdown notice, fired timers,
    /// the mailbox, then a resume after `Yield`.
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
        debug_assert!(!out.destination().is_latest(), "mailboxes hold concrete destinations");
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

    /// Something besides the mailbox may be due: a call's resolution, an I/O completion, the
    /// shutdown notice or a fired timer, in that order.
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
                    let mut reply = slots.meta[slot]
                        .mailbox
                        .pop_front(&mut self.pool)
                        .expect("the reply is queued first");
                    assert!(reply.is_reply(), "the mailbox head is the accepted reply");
                    if reply.is_call_failure_notice() {
                        reply.settle_call_failure_notice();
                    }
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
        if flags & pending::SHUTDOWN != 0 {
            slots.meta[slot].pending &= !pending::SHUTDOWN;
            let deadline = self.shutdown.map_or(self.now, |state| state.deadline);
            return Some(Message::shutdown_notice(handle, deadline));
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
                return Fate::Stops(Stop { kind: stop_kind(false), reason });
            }
            Effect::Crash(reason) => return Fate::Stops(Stop { kind: stop_kind(true), reason }),
            Effect::Call { to, message, timeout } => {
                self.start_call(env, type_index, slot, to, &message, timeout)
            }
            Effect::Reply { token, message } => {
                let me = self.handle_of(type_index, slot);
                // A reply to a caller that stopped waiting is counted as a late reply.
                let _ = self.reply(env, me, token, &message);
                self.wait(type_index, slot);
            }
            Effect::Io(op) => self.submit_io(env, type_index, slot, op, None),
            Effect::IoWithin { op, timeout } => {
                self.submit_io(env, type_index, slot, op, Some(timeout));
            }
        }
        Fate::Lives
    }

    /// Ends an incarnation whose arena has dropped its state: `drop_panic` is the message
    /// of a panic the state's `Drop` raised, if any. That panic is the isolate's: counted
    /// and traced like any contained panic, and it can change the exit (see `Stop`). The
    /// state is dropped first so that the exit reported to the supervisor is the final one.
    pub(crate) fn stopped(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        stop: Stop,
        drop_panic: Option<PanicText>,
    ) {
        let stop = match drop_panic {
            None => stop,
            Some(text) => {
                self.record_panic(env, type_index, slot, text);
                stop.after_drop_panic()
            }
        };
        self.teardown(env, type_index, slot, stop.kind, stop.reason);
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

    /// Whether a batch must stop so that pending inits or supervision decisions run now.
    #[inline]
    pub(crate) fn interrupted(&self) -> bool {
        !self.pending_inits.is_empty() || !self.exits.is_empty()
    }
}
