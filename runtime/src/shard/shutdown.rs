//! The shard's side of a graceful shutdown's first phase: recording that it began, giving
//! every live slot its shutdown notice (a pending bit, delivered at the isolate's next wait
//! for messages: `dispatch::take_pending`) and cancelling the receives in flight
//! (`io_table::cancel_receive`).
//!
//! Not the drain's end nor the forced stop at the deadline (the scheduler's: it owns the
//! arenas whose states a forced stop drops), and not the refusal of spawns or restarts
//! during the drain (`lifecycle`, `Scheduler::settle`). See `crate::shutdown`.

use super::ShardCore;
use super::slots::{SlotState, pending};
use crate::backend::{Env, Timestamp};
use crate::shutdown::ShutdownState;
use crate::trace::Event;

impl ShardCore {
    /// Begins the shard's shutdown with the drain's `deadline` (on the shard's clock):
    /// records it, traces `ShutdownBegin`, and notifies every live isolate. Returns false,
    /// and does nothing, if a shutdown began already. Runs between ticks; O(slots).
    pub(crate) fn begin_shutdown(&mut self, env: &mut dyn Env, deadline: Timestamp) -> bool {
        if self.shutdown.is_some() {
            return false;
        }
        // At most the shard's slot count, which fits in u32 (20 bits per type).
        let live = self.live_isolates() as u32;
        self.shutdown = Some(ShutdownState::new(self.now, deadline, live));
        self.trace(env, Event::ShutdownBegin { deadline_ns: deadline.as_nanos(), live });
        self.notify_shutdown(env);
        true
    }

    /// Gives every live slot the shutdown notice and cancels the receives in flight (at the
    /// start of a shutdown, or after a restart of a shard that shuts down). O(slots).
    pub(crate) fn notify_shutdown(&mut self, env: &mut dyn Env) {
        // Bounded by the slots of every type.
        for type_index in 0..self.types.len() {
            for slot in 0..self.types[type_index].meta.len() {
                let state = self.types[type_index].meta[slot].state;
                if !state.is_live() {
                    continue;
                }
                assert_ne!(state, SlotState::Running, "a shutdown begins between ticks");
                let slots = &mut self.types[type_index];
                slots.meta[slot].pending |= pending::SHUTDOWN;
                if slots.meta[slot].deliverable() {
                    slots.wake(slot);
                }
                self.cancel_receive(env, type_index, slot);
            }
        }
    }

    /// Live (or reserved) isolates over every type, O(types) in every build: the drain asks
    /// at every tick (`live_isolates` also checks itself against a scan in debug builds).
    pub(crate) fn live_for_drain(&self) -> usize {
        self.types.iter().map(super::slots::TypeSlots::live).sum()
    }

    /// Whether the shard is shutting down and its drain is not finished yet.
    #[inline]
    pub(crate) fn draining(&self) -> bool {
        self.shutdown.is_some_and(|state| state.draining())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::Handle;
    use crate::supervision::NO_GROUP;
    use crate::trace::SpawnError;

    use super::super::test_support::idle_core;

    /// Beginning a shutdown sets the notice on every live slot (and wakes the waiting
    /// ones) once; a second begin does nothing; spawns from isolates are refused from then
    /// on, while the shard's own reservations (a restart's boot children) are not.
    #[test]
    fn begin_notifies_every_live_slot_once_and_refuses_spawns() {
        let (mut core, mut backend) = idle_core(3);
        let idle = Some(0);
        let first = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).expect("slot");
        let second = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).expect("slot");
        for _ in 0..2 {
            let (type_index, slot, _) = core.pop_pending_init().expect("reserved");
            core.types[type_index].meta[slot].state = SlotState::Waiting;
        }
        backend.clear_events();

        let deadline = Timestamp::from_nanos(5_000);
        assert!(core.begin_shutdown(&mut backend, deadline));
        assert!(!core.begin_shutdown(&mut backend, Timestamp::from_nanos(9)), "once");
        assert_eq!(backend.events(), [Event::ShutdownBegin { deadline_ns: 5_000, live: 2 }]);
        for handle in [first, second] {
            let meta = &core.types[0].meta[handle.slot() as usize];
            assert_eq!(meta.pending, pending::SHUTDOWN);
            assert!(meta.queued, "a waiting isolate is woken for its notice");
        }
        assert_eq!(core.types[0].meta[2].pending, 0, "a free slot gets nothing");
        assert!(core.draining());
        assert_eq!(
            core.reserve(&mut backend, first, idle, &[], NO_GROUP),
            Err(SpawnError::ShuttingDown)
        );
        assert!(core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).is_ok());
    }
}
