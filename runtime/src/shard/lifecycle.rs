//! The lifecycle of an incarnation: reserving a slot for a spawn (static or dynamic),
//! handing pending inits to the scheduler, and ending it (a stop, a crash, a panic),
//! which frees everything it held and queues an `ExitNotice` for its supervisor.
//!
//! Not the supervision decisions (see `crate::supervision`) and never isolate code: the
//! arena runs `init` and drops the isolate's state.

use core::any::TypeId;

use super::ShardCore;
use super::calls::{CallResolution, CallSlot};
use super::dispatch::{Phase, Stop};
use super::slots::SlotState;
use crate::backend::Env;
use crate::handle::Handle;
use crate::isolate::crash;
use crate::label::Label;
use crate::limits::GENERATION_MAX;
use crate::spec::ArgsBytes;
use crate::supervision::NO_GROUP;
use crate::trace::{DropReason, Event, ExitKind, SpawnError};

/// A supervised isolate stopped by itself; its group decides what follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExitNotice {
    pub(crate) handle: Handle,
    pub(crate) kind: ExitKind,
    pub(crate) group: u16,
}

impl ShardCore {
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
        self.reserve_preferring(env, parent, type_index, None, args, group)
    }

    /// `reserve`, taking slot `preferred` if it is free (else any free slot, as `reserve`
    /// would). Supervision restarts a member into the slot it had, so the slot address of
    /// a supervised child (`Handle::latest`) keeps reaching it. Inline so that `reserve`,
    /// the spawn path, compiles without the preference.
    #[inline]
    pub(crate) fn reserve_preferring(
        &mut self,
        env: &mut dyn Env,
        parent: Handle,
        type_index: Option<usize>,
        preferred: Option<usize>,
        args: &[u8],
        group: u16,
    ) -> Result<Handle, SpawnError> {
        let result = match type_index {
            // An isolate may not spawn while the shard shuts down, so the drain converges;
            // the shard's own reservations (a restart's boot children) still go.
            _ if self.shutdown.is_some() && !parent.is_none() => Err(SpawnError::ShuttingDown),
            Some(type_index) => self.try_reserve(type_index, preferred, args, group),
            None => Err(SpawnError::NotRegistered),
        };
        match result {
            Ok(child) => {
                self.counters.spawned += 1;
                // The queue holds exactly one entry per `Reserved` slot (see
                // `pop_pending_init`), `child`'s included now, so never more than the
                // shard's slots: its capacity.
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

    #[inline]
    fn try_reserve(
        &mut self,
        type_index: usize,
        preferred: Option<usize>,
        args: &[u8],
        group: u16,
    ) -> Result<Handle, SpawnError> {
        let slots = &mut self.types[type_index];
        assert_eq!(args.len(), slots.args_size, "spawn arguments of the registered size");
        if slots.free_len == 0 {
            return Err(SpawnError::ArenaFull);
        }
        // The free list is a stack: its top is handed out first. A slot that just became
        // free is on top, so a preferred slot is usually found there.
        let top = slots.free_len as usize - 1;
        if let Some(wanted) = preferred
            && slots.free[top] as usize != wanted
        {
            slots.prefer_free(wanted);
        }
        let slot = slots.free[top] as usize;
        slots.free_len -= 1;
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
        let refusal = if self.shutdown.is_some() {
            Some(SpawnError::ShuttingDown)
        } else if group == NO_GROUP {
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

    /// Takes the next pending init, marks its slot running and returns its (type, slot)
    /// and handle.
    ///
    /// The queue holds exactly the handles of the `Reserved` slots, each once: a slot
    /// becomes `Reserved` only in `try_reserve`, whose caller queues its init (boot requeues
    /// the same handles in start order), and stops being `Reserved` only here (popped) or
    /// in `teardown`, which takes its entry out. So the head always names a reserved slot
    /// of the same generation, and the queue never holds more entries than the shard has
    /// slots.
    #[inline]
    pub(crate) fn pop_pending_init(&mut self) -> Option<(usize, usize, Handle)> {
        let child = self.pending_inits.pop()?;
        let type_index = child.type_index() as usize;
        let slot = child.slot() as usize;
        let meta = &mut self.types[type_index].meta[slot];
        assert!(
            meta.state == SlotState::Reserved && meta.generation == child.generation(),
            "a pending init names a reserved slot: {child}"
        );
        meta.state = SlotState::Running;
        Some((type_index, slot, child))
    }

    /// Ends the incarnation in `slot`: drops its queued messages, timers, pending call,
    /// undelivered completion and buffers, bumps the generation (so every handle to it and
    /// every I/O token of it is stale) and frees or retires the slot. A supervised isolate
    /// that stopped by itself is queued for its group's decision. The isolate's state is
    /// dropped in its arena before (see `stopped`).
    pub(crate) fn teardown(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        kind: ExitKind,
        reason: Label,
    ) {
        let handle = self.handle_of(type_index, slot);
        if self.types[type_index].meta[slot].state == SlotState::Reserved {
            // Ended before its `init` ran (stopped by its supervisor while a sibling's
            // restart ran first, killed, or the shard crashed): its pending init goes with
            // it, or the slot, reserved again, would be queued twice. O(pending), rare.
            let queued = self.pending_inits.remove(&handle);
            debug_assert!(queued, "a reserved slot has its init queued");
        }
        match kind {
            ExitKind::Normal => self.counters.exits_normal += 1,
            ExitKind::Crashed => self.counters.crashes += 1,
            ExitKind::InitFailed => self.counters.init_failures += 1,
            ExitKind::Shutdown => self.counters.shutdowns += 1,
            ExitKind::ShardCrashed => self.counters.shard_crash_exits += 1,
        }
        self.trace(env, Event::Exit { handle, kind, reason });
        // A crashing shard answers nothing (as a down one): no drop notices.
        let answer = kind != ExitKind::ShardCrashed;
        // Bounded by the pool: a message dropped here sends at most one notice, and a notice
        // sends none. (A notice to this very isolate, for a message it sent itself, is queued
        // here and dropped in turn, as lost.)
        while let Some(message) =
            self.types[type_index].meta[slot].mailbox.pop_front(&mut self.pool)
        {
            if answer {
                self.drop_message(env, &message, handle, DropReason::TargetExited);
            } else {
                self.record_drop(env, &message, handle, DropReason::TargetExited);
            }
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
        // The isolate's sockets and files close with it, as a process's do.
        self.close_owned_handles(type_index, slot);
        let slots = &mut self.types[type_index];
        if core::mem::take(&mut slots.buffers_held[slot]) > 0 {
            self.buffers.release_held_by(handle);
        }
        let slots = &mut self.types[type_index];
        let group = slots.group[slot];
        slots.group[slot] = NO_GROUP;
        if slots.meta[slot].generation == GENERATION_MAX {
            slots.meta[slot].state = SlotState::Retired;
            slots.retired += 1;
            self.counters.slots_retired += 1;
            self.trace(env, Event::Retire { handle });
        } else {
            slots.meta[slot].generation += 1;
            slots.meta[slot].state = SlotState::Free;
            slots.free[slots.free_len as usize] = slot as u32;
            slots.free_len += 1;
        }
        // A supervisor stopping its child, or the shard crashing, asks for no decision.
        if group != NO_GROUP && !matches!(kind, ExitKind::Shutdown | ExitKind::ShardCrashed) {
            self.exits
                .push(ExitNotice { handle, kind, group })
                .expect("exit notices hold every slot");
        }
    }

    /// The (type, slot) of the live isolate `handle` names (a latest handle too), to be
    /// crashed from outside any dispatch (the simulator's "crashes before its next dispatch"
    /// fault), or `None` if it names no live isolate here. The scheduler drops its state
    /// first, then ends it with `stopped` as `Crashed`: the same order as every stop, so a
    /// panic in its `Drop` is the isolate's.
    pub(crate) fn kill_target(&self, handle: Handle) -> Option<(usize, usize)> {
        let (type_index, slot) = self.locate(handle)?;
        let state = self.types[type_index].meta[slot].state;
        assert_ne!(state, SlotState::Running, "kill runs outside every dispatch");
        Some((type_index, slot))
    }

    /// Panics of isolate code end here: the trace gets the message, and the returned stop
    /// ends the incarnation once the arena dropped its state (`stopped`).
    pub(crate) fn panicked(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        text: crate::trace::PanicText,
        phase: Phase,
    ) -> Stop {
        if let Some((buffer, _)) = self.current_io.take() {
            self.buffers.release(buffer);
        }
        self.record_panic(env, type_index, slot, text);
        let kind = if phase == Phase::Init { ExitKind::InitFailed } else { ExitKind::Crashed };
        Stop { kind, reason: crash::PANIC }
    }

    /// Counts and traces a panic of the isolate in `slot` (its code, or its state's `Drop`).
    pub(crate) fn record_panic(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        text: crate::trace::PanicText,
    ) {
        let handle = self.handle_of(type_index, slot);
        self.counters.panics += 1;
        self.trace(env, Event::Panic { handle, text });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::ShardId;
    use crate::spec::{SystemSpec, TypeConfig};
    use crate::testing::{TestBackend, TestConfig};
    use crate::trace::NO_REASON;

    use super::super::test_support::{Idle, idle_core};

    /// A slot that ends an incarnation at the last generation is retired: never handed out
    /// again, counted and traced, and its last handle is stale, as is the slot's address.
    /// The last generation is one below the latest-handle marker, which no incarnation gets.
    #[test]
    fn slot_at_last_generation_is_retired() {
        let (mut core, mut backend) = idle_core(1);
        let idle = Some(0);

        core.types[0].meta[0].generation = GENERATION_MAX - 1;
        let first = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).expect("a slot");
        assert_eq!(core.pop_pending_init().map(|(t, s, _)| (t, s)), Some((0, 0)));
        core.teardown(&mut backend, 0, 0, ExitKind::Normal, NO_REASON);
        let last =
            core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).expect("the slot again");
        assert_eq!((first.generation(), last.generation()), (GENERATION_MAX - 1, GENERATION_MAX));
        assert!(!last.is_latest() && last.generation() < crate::limits::GENERATION_LATEST);
        assert_eq!(core.locate(last.latest()), Some((0, 0)), "the address reaches it");
        assert_eq!(core.pop_pending_init().map(|(t, s, _)| (t, s)), Some((0, 0)));
        core.teardown(&mut backend, 0, 0, ExitKind::Normal, NO_REASON);

        assert_eq!(core.types[0].meta[0].state, SlotState::Retired);
        assert_eq!(core.counters.slots_retired, 1);
        assert_eq!(
            core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP),
            Err(SpawnError::ArenaFull)
        );
        assert_eq!(core.resolve(last), None);
        assert_eq!(core.locate(last.latest()), None, "a retired slot has no incarnation");
        assert!(backend.events().contains(&Event::Retire { handle: last }));
    }

    /// An incarnation torn down before its `init` ran takes its pending init with it: the
    /// slot, reserved again, is queued once, so a full queue of pending inits never
    /// overflows, and the only init left to run is the new incarnation's.
    #[test]
    fn teardown_of_a_reserved_slot_unqueues_its_init() {
        let mut spec = SystemSpec::new(1);
        spec.register::<Idle>(TypeConfig::new("idle").slots(2));
        let mut core = ShardCore::new(&spec, ShardId(0));
        let mut backend = TestBackend::new(ShardId(0), &TestConfig::default());
        let idle = Some(0);

        let other = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).expect("slot");
        let first = core.reserve(&mut backend, Handle::NONE, idle, &[], NO_GROUP).expect("slot");
        assert!(core.pending_inits.is_full());
        let (type_index, slot) = core.resolve(first).expect("a reserved isolate is live");
        core.teardown(&mut backend, type_index, slot, ExitKind::Shutdown, NO_REASON);
        assert_eq!(core.pending_inits.len(), 1, "only the other init is left");
        let again = core
            .reserve_preferring(&mut backend, Handle::NONE, idle, Some(slot), &[], NO_GROUP)
            .expect("the freed slot");
        assert_eq!((again.slot(), again.generation()), (first.slot(), first.generation() + 1));
        assert!(core.pending_inits.is_full());
        assert_eq!(core.pop_pending_init().map(|(_, _, handle)| handle), Some(other));
        assert_eq!(core.pop_pending_init().map(|(_, _, handle)| handle), Some(again));
        assert_eq!(core.pop_pending_init(), None);
    }
}
