//! Calls: each slot's call state (`CallSlot`, `CallResolution`), starting a call, and
//! failing it when its request cannot be routed.
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
use crate::trace::{CallFailure, CallOutcome, Event};

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
