//! Calls: each slot's call state (`CallSlot`, `CallResolution`), starting a call, failing
//! it when its request cannot be routed, and answering a request from another shard that
//! was dropped here with a call-failure notice.
//!
//! Not the reply (accepted where messages are routed) nor the timeout (the timer wheel
//! expires it; `advance_timers` resolves the call); the caller gets either resolution at
//! its next dispatch.

use core::time::Duration;

use super::ShardCore;
use super::routing::SendError;
use super::slots::{SlotState, pending};
use crate::backend::Env;
use crate::handle::Handle;
use crate::message::Message;
use crate::payload::Outgoing;
use crate::trace::{CallFailure, CallOutcome, DropReason, Event};

/// The resolution of a call, waiting to be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CallResolution {
    None,
    /// The reply is at the head of the mailbox.
    Reply,
    Failed(CallFailure),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct CallSlot {
    /// The pending call's correlation, or 0.
    pub(super) correlation: u32,
    pub(super) resolution: CallResolution,
}

pub(super) const CALL_IDLE: CallSlot =
    CallSlot { correlation: 0, resolution: CallResolution::None };

impl ShardCore {
    pub(super) fn start_call(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        to: Handle,
        outgoing: &Outgoing,
        timeout: Duration,
    ) {
        let caller = self.handle_of(type_index, slot);
        // Correlations are per shard and skip zero, which means "no call".
        self.correlation = self.correlation.wrapping_add(1).max(1);
        let correlation = self.correlation;
        let deadline = self.now.saturating_add(timeout);
        let deadline_tick = self.timers.tick_at_or_after(deadline.as_nanos());
        let deadline_ns = self.timers.nanos_of(deadline_tick);
        let key = self.key_of(type_index, slot);
        let slots = &mut self.types[type_index];
        slots.meta[slot].state = SlotState::WaitingReply;
        slots.call[slot] = CallSlot { correlation, resolution: CallResolution::None };
        let now_tick = self.timers.tick_of(self.now.as_nanos());
        self.timers.set_call(key, now_tick, deadline_tick);
        self.counters.calls += 1;
        let id = self.next_id();
        self.trace(
            env,
            Event::CallStart { caller, callee: to, correlation, request: id, deadline_ns },
        );
        let request = Message::request(id, caller, to, correlation, outgoing);
        if let Err(error) = self.send_message(env, &request) {
            let failure = match error {
                SendError::MailboxFull => CallFailure::MailboxFull,
                SendError::PoolExhausted => CallFailure::PoolExhausted,
                SendError::StaleHandle => CallFailure::StaleHandle,
            };
            self.counters.calls_unroutable += 1;
            self.fail_call(env, type_index, slot, failure);
        }
    }

    /// Calls `f` with the caller and correlation of every call in progress: started and not
    /// yet ended by its reply, a failure or the caller's exit (a slot's correlation is
    /// non-zero exactly from its `CallStart` to its `CallEnd` or teardown).
    pub(crate) fn for_each_pending_call(&self, f: &mut dyn FnMut(Handle, u32)) {
        for (type_index, slots) in self.types.iter().enumerate() {
            for (slot, call) in slots.call.iter().enumerate() {
                if call.correlation != 0 {
                    debug_assert_eq!(slots.meta[slot].state, SlotState::WaitingReply);
                    f(self.handle_of(type_index, slot), call.correlation);
                }
            }
        }
    }

    /// Answers a call request from another shard that was dropped here with a call-failure
    /// notice to its caller, so the call fails as soon as the notice arrives instead of at
    /// its timeout (on its own shard a call fails at once; see `start_call`). The notice is
    /// an ordinary send of this shard: a fresh id, counted and traced, and a full transport
    /// drops it here like any message (the caller then times out). Only the drops a request
    /// can meet on arrival are answered: a stale callee, a full mailbox, an exhausted pool.
    #[cold]
    pub(super) fn refuse_call(&mut self, env: &mut dyn Env, request: &Message, reason: DropReason) {
        let failure = match reason {
            DropReason::StaleHandle => CallFailure::StaleHandle,
            DropReason::MailboxFull => CallFailure::MailboxFull,
            DropReason::PoolExhausted => CallFailure::PoolExhausted,
            // A down shard answers nothing: its arrivals wait for nobody (see `recovery.rs`).
            DropReason::RingFull
            | DropReason::TargetExited
            | DropReason::LateReply
            | DropReason::ShardDown => return,
        };
        let caller = request.source();
        if caller.is_none() {
            return;
        }
        let id = self.next_id();
        let notice = Message::call_failure_notice(id, caller, request.correlation(), failure);
        // A refused notice is counted and traced by `send_message`; nothing else to do.
        let _ = self.send_message(env, &notice);
    }

    /// Ends the pending call of a slot with `failure`, delivered at its next dispatch.
    fn fail_call(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        failure: CallFailure,
    ) {
        let caller = self.handle_of(type_index, slot);
        let key = self.key_of(type_index, slot);
        self.timers.cancel_call(key);
        let slots = &mut self.types[type_index];
        let correlation = slots.call[slot].correlation;
        slots.call[slot] = CallSlot { correlation: 0, resolution: CallResolution::Failed(failure) };
        slots.meta[slot].pending |= pending::RESOLVED;
        slots.meta[slot].state = SlotState::Waiting;
        slots.wake(slot);
        self.trace(
            env,
            Event::CallEnd { caller, correlation, outcome: CallOutcome::Failed(failure) },
        );
    }
}
