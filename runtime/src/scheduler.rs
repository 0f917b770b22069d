//! `Scheduler<B>`: one shard's tick, the same code in simulation and production.
//!
//! A tick drains the inbound transport, dispatches ready isolates type by type within each
//! type's budget, and flushes the outbound transport. Ready queues make a tick cost
//! O(work done), never O(slots). The backend is passed into every tick rather than stored.
//!
//! The scheduler owns the arenas and the `ShardCore`; it does not decide how time passes or
//! when to tick; its driver (the simulator world, a production thread, a test) does.

use core::marker::PhantomData;

use crate::arena::ErasedArena;
use crate::backend::{Backend, Env};
use crate::handle::{Handle, ShardId};
use crate::limits::INBOUND_PER_TICK_MAX;
use crate::shard::ShardCore;
use crate::spec::{BootError, SystemSpec};
use crate::trace::Counters;

/// What one tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Handler calls made (each has a modelled cost in simulation).
    pub dispatched: u32,
    /// Envelopes taken from the inbound transport.
    pub inbound: u32,
    /// Whether isolates are still queued to run: the next tick should not wait.
    pub has_work: bool,
}

/// One shard: its isolates, mailboxes and pools, driven tick by tick through a backend `B`.
pub struct Scheduler<B: Backend> {
    core: ShardCore,
    arenas: Box<[Box<dyn ErasedArena>]>,
    budget_left: Box<[u32]>,
    _backend: PhantomData<fn(&mut B)>,
}

impl<B: Backend> Scheduler<B> {
    /// Validates `spec`, allocates every table of `shard` and runs the `init` of the shard's
    /// boot children in order. Nothing allocates after this returns.
    pub fn boot(
        spec: &SystemSpec,
        shard: ShardId,
        backend: &mut B,
    ) -> Result<Scheduler<B>, BootError> {
        spec.validate()?;
        if shard.index() >= spec.shard_count {
            return Err(BootError::ShardOutOfRange { shard, shard_count: spec.shard_count });
        }
        let arenas =
            spec.types.iter().map(|entry| (entry.make_arena)(entry.config.slot_count)).collect();
        let mut scheduler = Scheduler {
            core: ShardCore::new(spec, shard),
            arenas,
            budget_left: vec![0; spec.types.len()].into_boxed_slice(),
            _backend: PhantomData,
        };
        scheduler.core.now = backend.now();
        scheduler.core.trace_on = backend.tracing();
        // Reserve every boot child before running any init, so the k-th child of a type
        // gets slot k whatever the inits spawn (see `SystemSpec::boot_child`).
        for child in spec.boot.iter().filter(|child| child.shard == shard.index()) {
            let isolate = scheduler.core.types[child.type_index as usize].isolate;
            // Validation guarantees a slot for every boot child.
            scheduler
                .core
                .reserve(backend, Handle::NONE, isolate, child.args.as_slice())
                .expect("validated boot children fit their arenas");
        }
        scheduler.run_pending_inits(backend);
        Ok(scheduler)
    }

    /// The shard this scheduler runs.
    pub fn shard(&self) -> ShardId {
        self.core.shard
    }

    /// Counters of every send, drop, exhaustion and exit so far.
    pub fn counters(&self) -> &Counters {
        &self.core.counters
    }

    /// Live isolates of the type at `type_index`.
    pub fn live_count(&self, type_index: usize) -> usize {
        self.arenas.get(type_index).map_or(0, |arena| arena.live_count())
    }

    /// Free envelopes in the shard's message pool.
    pub fn pool_free(&self) -> u32 {
        self.core.pool_free()
    }

    /// Whether nothing is queued to run. Messages in transit and (later) timers and I/O
    /// are the backend's to report.
    pub fn is_idle(&self) -> bool {
        !self.core.has_work()
    }

    /// Runs one tick: inbound transport, dispatch within budgets, outbound flush.
    pub fn tick(&mut self, backend: &mut B) -> TickReport {
        self.core.now = backend.now();
        self.core.trace_on = backend.tracing();
        let inbound = self.drain_inbound(backend);
        for slots in self.core.types.iter_mut() {
            slots.promote_yielded();
        }
        let dispatched = self.dispatch(backend);
        backend.flush_remote();
        TickReport { dispatched, inbound, has_work: self.core.has_work() }
    }

    /// Ticks until the backend asks to stop, parking whenever nothing is runnable. This is
    /// the shard's event loop, the one loop in the core without a count bound: it ends when
    /// `Backend::stop_requested` says so.
    pub fn run(&mut self, backend: &mut B) {
        while !backend.stop_requested() {
            let report = self.tick(backend);
            if !report.has_work {
                backend.park(None);
            }
        }
    }

    fn drain_inbound(&mut self, backend: &mut B) -> u32 {
        let mut count = 0;
        while count < INBOUND_PER_TICK_MAX {
            let Some(message) = backend.receive_remote() else { break };
            self.core.accept_remote(backend, &message);
            count += 1;
        }
        count
    }

    /// Dispatches type by type, in registration order, until every type's budget is spent
    /// or nothing is ready. A handler that spawns interrupts its batch so the children's
    /// `init` runs right after it.
    fn dispatch(&mut self, backend: &mut B) -> u32 {
        for (left, slots) in self.budget_left.iter_mut().zip(self.core.types.iter()) {
            *left = slots.budget;
        }
        let mut total = 0;
        // Every pass that makes progress spends at least one unit of budget, so the number
        // of passes is bounded by the sum of the budgets.
        loop {
            let mut progress = false;
            for type_index in 0..self.arenas.len() {
                let budget = self.budget_left[type_index];
                if budget == 0 || self.core.types[type_index].ready.is_empty() {
                    continue;
                }
                let env: &mut dyn Env = backend;
                let batch =
                    self.arenas[type_index].run_batch(&mut self.core, env, type_index, budget);
                self.budget_left[type_index] -= batch.dispatched;
                total += batch.dispatched;
                progress |= batch.dispatched > 0;
                if batch.inits_pending {
                    self.run_pending_inits(backend);
                }
            }
            if !progress {
                return total;
            }
        }
    }

    /// Runs the `init` of every reserved child, children of children included. Bounded by
    /// the shard's slot count: each pending init consumed a slot.
    fn run_pending_inits(&mut self, backend: &mut B) {
        while let Some((type_index, slot)) = self.core.pop_pending_init() {
            self.arenas[type_index].run_init(&mut self.core, backend, type_index, slot);
        }
    }
}

impl<B: Backend> core::fmt::Debug for Scheduler<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scheduler")
            .field("shard", &self.core.shard)
            .field("counters", &self.core.counters)
            .finish_non_exhaustive()
    }
}
