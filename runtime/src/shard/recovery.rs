//! Shard recovery, the core's half (Level-2 recovery): a crash tears every isolate of the
//! shard down at once and leaves its tables as a restart needs them; while the shard is
//! down, arrivals are discarded; a restart rebuilds the supervision tree and the free
//! lists so the static children boot again into the slots they had.
//!
//! Not the policy (whether a crashed shard restarts or is quarantined: `crate::recovery`),
//! not the arenas (the scheduler drops every isolate state) and not the boot itself (the
//! scheduler starts the tree as at boot). Crash and restart are rare: they may allocate
//! (the fresh supervision groups do), unlike everything on the message path.

use super::ShardCore;
use super::slots::SlotState;
use crate::backend::Env;
use crate::io::IoError;
use crate::message::Message;
use crate::spec::SystemSpec;
use crate::supervision::Groups;
use crate::trace::{DropReason, Event, ExitKind, NO_REASON};

impl ShardCore {
    /// The shard fails as a whole: every live or reserved isolate is torn down as
    /// `ShardCrashed` (the full teardown: exit, queued messages dropped as `TargetExited`,
    /// timers cancelled, pending call and completion dropped, buffers freed; no supervision
    /// decision), every free slot's generation is bumped too, so no handle from before the
    /// crash names anything after it, and the queues of work are emptied. Submissions not
    /// yet handed to the backend are discarded as stale. The caller drops the isolates'
    /// states. Runs between ticks.
    pub(crate) fn crash_all(&mut self, env: &mut dyn Env) {
        self.counters.shard_crashes += 1;
        // Bounded by the slots of every type.
        for type_index in 0..self.types.len() {
            for slot in 0..self.types[type_index].meta.len() {
                match self.types[type_index].meta[slot].state {
                    SlotState::Retired => {}
                    SlotState::Free => self.bump_free(env, type_index, slot),
                    SlotState::Running => unreachable!("a shard crashes between ticks"),
                    _ => self.teardown(env, type_index, slot, ExitKind::ShardCrashed, NO_REASON),
                }
            }
        }
        self.pending_inits.clear();
        self.exits.clear();
        self.discard_queued_io(env);
        for slots in self.types.iter_mut() {
            slots.ready.clear();
            slots.yielded.clear();
            for meta in slots.meta.iter_mut() {
                meta.queued = false;
            }
            slots.reset_free();
        }
        self.assert_crashed();
    }

    /// Bumps the generation of a free slot, or retires it at the last generation.
    fn bump_free(&mut self, env: &mut dyn Env, type_index: usize, slot: usize) {
        let slots = &mut self.types[type_index];
        let meta = &mut slots.meta[slot];
        if meta.generation == crate::limits::GENERATION_MAX {
            meta.state = SlotState::Retired;
            slots.retired += 1;
            self.counters.slots_retired += 1;
            let handle = self.handle_of(type_index, slot);
            self.trace(env, Event::Retire { handle });
        } else {
            meta.generation += 1;
        }
    }

    /// Discards the I/O submissions queued for the backend but not handed to it yet (a
    /// crash right after boot or a restart, before the first tick): their isolates are
    /// gone, so each completes at once as stale, which frees its entry and buffers. A close
    /// the shard queued for a stale completion's handle stays queued: it must still happen.
    fn discard_queued_io(&mut self, env: &mut dyn Env) {
        // Bounded by the queue's length, taken once.
        for _ in 0..self.io_queue.len() {
            let queued = self.io_queue.pop().expect("counted");
            if queued.is_shards_own() {
                self.io_queue.push(queued).expect("room: one was taken");
            } else {
                // The result is never delivered (the isolate is gone).
                self.io_refused(env, queued.token(), IoError::ConnectionAborted);
            }
        }
    }

    /// After a crash: no isolate, no queued work, the message pool entirely free, no user
    /// timer and no call timeout pending.
    fn assert_crashed(&self) {
        assert_eq!(self.pool.free_count(), self.pool.size(), "a crash frees every envelope");
        assert_eq!(self.timers.free_count(), self.timers.user_capacity(), "no user timer left");
        assert!(self.timers.is_idle(), "no timer or call timeout left in the wheel");
        assert!(self.pending_inits.is_empty() && self.exits.is_empty());
        assert!(self.current_io.is_none(), "a shard crashes between ticks");
        debug_assert!(self.types.iter().all(|slots| {
            slots.meta.iter().all(|meta| {
                matches!(meta.state, SlotState::Free | SlotState::Retired)
                    && meta.mailbox.is_empty()
                    && meta.pending == 0
            })
        }));
    }

    /// Drops an envelope that reached the shard while it was down. A down shard answers
    /// nothing: no drop notice, as no call-failure notice.
    pub(crate) fn discard_arrival(&mut self, env: &mut dyn Env, message: &Message) {
        self.record_drop(env, message, message.destination(), DropReason::ShardDown);
    }

    /// Readies a crashed shard's tables for its restart from `spec`, which must be the spec
    /// it booted from: fresh supervision groups (static members only, fresh restart
    /// histories), free lists as at boot, no failure. Allocates the groups.
    pub(crate) fn prepare_restart(&mut self, spec: &SystemSpec) {
        assert_eq!(spec.shard_count, self.shard_count, "restart from the spec the shard booted");
        assert_eq!(spec.types.len(), self.types.len(), "restart from the spec the shard booted");
        for (entry, slots) in spec.types.iter().zip(self.types.iter_mut()) {
            assert_eq!(entry.config.slot_count as usize, slots.meta.len(), "the same slot counts");
            debug_assert!(slots.meta.iter().all(|meta| !meta.state.is_live()));
            slots.reset_free();
        }
        self.groups = Groups::new(spec, self.shard.index());
        self.failure = None;
        self.counters.shard_restarts += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::Handle;
    use crate::limits::GENERATION_MAX;
    use crate::supervision::NO_GROUP;
    use crate::trace::SpawnError;

    use super::super::test_support::idle_core;

    /// A crash bumps every slot's generation, free slots' too, so no handle from before the
    /// crash names anything after it; a free slot already at the last generation is retired
    /// (counted, traced, off the free list); the free list is rebuilt lowest slot first.
    #[test]
    fn crash_bumps_every_generation_and_resets_the_free_list() {
        let (mut core, mut backend) = idle_core(3);
        let idle = Some(0);
        let live = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).expect("a slot");
        assert_eq!(core.pop_pending_init(), Some((0, 0, live)));
        core.types[0].meta[0].state = SlotState::Waiting;
        core.types[0].meta[2].generation = GENERATION_MAX;
        let last = core.handle_of(0, 2);
        backend.clear_events();

        core.crash_all(&mut backend);

        let generations: Vec<u32> = core.types[0].meta.iter().map(|m| m.generation).collect();
        assert_eq!(generations, [2, 2, GENERATION_MAX]);
        assert_eq!(core.types[0].meta[2].state, SlotState::Retired);
        let events = backend.events();
        let exit = Event::Exit { handle: live, kind: ExitKind::ShardCrashed, reason: NO_REASON };
        assert_eq!(events, [exit, Event::Retire { handle: last }]);
        let counters = core.counters;
        assert_eq!((counters.shard_crashes, counters.shard_crash_exits), (1, 1));
        assert_eq!((counters.slots_retired, counters.exits_normal, counters.crashes), (1, 0, 0));
        assert_eq!(core.resolve(live), None);
        assert_eq!(core.locate(live.latest()), None);

        let first = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP);
        let second = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP);
        let slots = (first.map(|h| (h.slot(), h.generation())), second.map(|h| h.slot()));
        assert_eq!(slots, (Ok((0, 2)), Ok(1)));
        let third = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP);
        assert_eq!(third, Err(SpawnError::ArenaFull), "the retired slot is not handed out");
    }
}
