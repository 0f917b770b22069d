//! The shard's clock work: setting and cancelling user timers, advancing the wheel to the
//! tick's time (fired timers wait for their owners, expired calls fail with `Timeout`),
//! and the next deadline the backend should wake the shard for.
//!
//! Not the wheel itself (see `crate::timer`), and never a delivery: fired timers are handed
//! to their owners by dispatch.

use core::time::Duration;

use super::ShardCore;
use super::calls::{CallResolution, CallSlot};
use super::slots::{SlotState, handle_in, pending, slot_of_key};
use crate::backend::{Env, Timestamp};
use crate::handle::Handle;
use crate::timer::{Expired, TimerError, TimerId};
use crate::trace::{CallFailure, CallOutcome, Event};

impl ShardCore {
    /// Sets a timer for `owner`, due `after` from the tick's start.
    pub(crate) fn timer_set(
        &mut self,
        env: &mut dyn Env,
        owner: Handle,
        after: Duration,
        tag: u64,
    ) -> Result<TimerId, TimerError> {
        let (type_index, slot) = self.resolve(owner).expect("a running isolate is live");
        let deadline_tick = self.timers.tick_at_or_after(self.now.saturating_add(after).as_nanos());
        let now_tick = self.timers.tick_of(self.now.as_nanos());
        match self.timers.set(self.key_of(type_index, slot), now_tick, deadline_tick, tag) {
            Ok(timer) => {
                self.counters.timers_set += 1;
                let deadline_ns = self.timers.nanos_of(deadline_tick);
                self.trace(env, Event::TimerSet { owner, timer, deadline_ns });
                Ok(timer)
            }
            Err(error) => {
                self.counters.timer_pool_exhausted += 1;
                Err(error)
            }
        }
    }

    /// Cancels `timer` if `owner` owns it and it was not delivered yet.
    pub(crate) fn timer_cancel(
        &mut self,
        env: &mut dyn Env,
        owner: Handle,
        timer: TimerId,
    ) -> bool {
        let (type_index, slot) = self.resolve(owner).expect("a running isolate is live");
        let cancelled = self.timers.cancel(self.key_of(type_index, slot), timer);
        if cancelled {
            self.counters.timers_cancelled += 1;
            self.trace(env, Event::TimerCancel { owner, timer });
        }
        cancelled
    }

    /// Moves the wheel to the tick's time: fired timers wait for their owners, expired calls
    /// fail with `Timeout`.
    #[inline]
    pub(crate) fn fire_timers(&mut self, env: &mut dyn Env) {
        if !self.timers.is_idle() {
            self.advance_timers(env);
        }
    }

    fn advance_timers(&mut self, env: &mut dyn Env) {
        let now_tick = self.timers.tick_of(self.now.as_nanos());
        let ShardCore { shard, types, timers, counters, trace_on, io_cancels, .. } = self;
        let (shard, trace_on) = (*shard, *trace_on);
        let mut trace = |event: Event| {
            if trace_on {
                env.trace(&event);
            }
        };
        timers.advance(now_tick, |expired| match expired {
            Expired::User { owner, id } => {
                let (type_index, slot) = slot_of_key(types, owner);
                counters.timers_fired += 1;
                trace(Event::TimerFire {
                    owner: handle_in(types, shard, type_index, slot),
                    timer: id,
                });
                // A fired timer is deliverable to a waiting isolate; one waiting for a reply
                // or for I/O gets it after that.
                let slots = &mut types[type_index];
                slots.meta[slot].pending |= pending::FIRED;
                if slots.meta[slot].state == SlotState::Waiting {
                    slots.wake(slot);
                }
            }
            Expired::Call(call) => {
                let (type_index, slot) = slot_of_key(types, call.owner);
                if types[type_index].meta[slot].state == SlotState::WaitingIo {
                    // An I/O timeout (`Effect::IoWithin`): the backend is asked to cancel the
                    // operation at the end of the tick; the isolate keeps waiting for the
                    // completion, which brings its buffers back.
                    let isolate = handle_in(types, shard, type_index, slot);
                    let token = types[type_index].io[slot].deadline_passed(isolate);
                    io_cancels.push(token).expect("a cancel per operation in flight");
                    trace(Event::IoTimeout { isolate, sequence: token.sequence });
                    return;
                }
                counters.call_timeouts += 1;
                let caller = handle_in(types, shard, type_index, slot);
                let slots = &mut types[type_index];
                debug_assert_eq!(slots.meta[slot].state, SlotState::WaitingReply);
                let correlation = slots.call[slot].correlation;
                let failure = CallFailure::Timeout;
                slots.call[slot] =
                    CallSlot { correlation: 0, resolution: CallResolution::Failed(failure) };
                slots.meta[slot].pending |= pending::RESOLVED;
                slots.meta[slot].state = SlotState::Waiting;
                slots.wake(slot);
                trace(Event::CallEnd {
                    caller,
                    correlation,
                    outcome: CallOutcome::Failed(failure),
                });
            }
        });
    }

    /// The backend time at which the next timer may be due.
    #[inline]
    pub(crate) fn next_timer_deadline(&self) -> Option<Timestamp> {
        self.timers.next_deadline().map(|tick| Timestamp::from_nanos(self.timers.nanos_of(tick)))
    }
}
