//! `Scheduler<B>`: one shard's tick, the same code in simulation and production.
//!
//! A tick drains the inbound transport, reaps I/O completions, dispatches ready isolates
//! type by type within each type's budget (settling spawns and supervision decisions right
//! after the handler that caused them), submits I/O, flushes the outbound transport and
//! fires due timers. Ready queues make a tick cost O(work done), never O(slots). The
//! backend is passed into every tick rather than stored.
//!
//! Between ticks, its driver may also crash the shard as a whole (`crash`), drop what
//! arrives while it is down (`discard_inbound`) and bring it back (`restart`): the
//! mechanism of Level-2 recovery, whose policy is `ShardRecovery`. It may kill one isolate
//! too (`kill`), and begin the shard's graceful shutdown (`begin_shutdown`), whose drain
//! the ticks then carry on and end (`shutdown_report`).
//!
//! The scheduler owns the arenas and the `ShardCore`; it does not decide how time passes or
//! when to tick; its driver (the simulator world, a production thread, a test) does.

use core::marker::PhantomData;

use crate::arena::ErasedArena;
use crate::backend::{Backend, Env, Timestamp};
use crate::containment::install_panic_hook;
use crate::handle::{Handle, ShardId};
use crate::isolate::crash;
use crate::label::Label;
use crate::limits::{INBOUND_PER_TICK_MAX, IO_COMPLETIONS_PER_TICK_MAX};
use crate::message::MessageId;
use crate::shard::{ShardCore, Stop};
use crate::shutdown::ShutdownReport;
use crate::spec::{ArgsBytes, BootError, SystemSpec};
use crate::supervision::{self, Actions, Groups};
use crate::trace::{Counters, Event, ExitKind, ShardFailure};

/// What one tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Handler calls made (each has a modelled cost in simulation).
    pub dispatched: u32,
    /// Envelopes taken from the inbound transport.
    pub inbound: u32,
    /// Whether isolates are still queued to run: the next tick should not wait.
    pub has_work: bool,
    /// When the next timer may be due, if any is pending, or the shutdown's deadline while
    /// the shard drains (the tick at that time tears down what is left).
    pub next_deadline: Option<Timestamp>,
    /// I/O operations the backend holds.
    pub io_in_flight: u32,
}

/// One shard: its isolates, mailboxes and pools, driven tick by tick through a backend `B`.
pub struct Scheduler<B: Backend> {
    core: ShardCore,
    arenas: Box<[Box<dyn ErasedArena>]>,
    failure_reported: bool,
    /// Crashed and not restarted yet: no tick, arrivals are discarded.
    down: bool,
    _backend: PhantomData<fn(&mut B)>,
}

impl<B: Backend> Scheduler<B> {
    /// Validates `spec`, allocates every table of `shard`, and starts the shard's
    /// supervision tree: static children are reserved in the order they were added, then
    /// their `init`s run in start order. Nothing allocates after this returns.
    pub fn boot(
        spec: &SystemSpec,
        shard: ShardId,
        backend: &mut B,
    ) -> Result<Scheduler<B>, BootError> {
        spec.validate()?;
        if shard.index() >= spec.shard_count {
            return Err(BootError::ShardOutOfRange { shard, shard_count: spec.shard_count });
        }
        install_panic_hook();
        let arenas =
            spec.types.iter().map(|entry| (entry.make_arena)(entry.config.slot_count)).collect();
        let mut scheduler = Scheduler {
            core: ShardCore::new(spec, shard),
            arenas,
            failure_reported: false,
            down: false,
            _backend: PhantomData,
        };
        scheduler.sync(backend);
        scheduler.start_tree(spec, backend);
        Ok(scheduler)
    }

    /// Reserves every static child in the order added (so `SystemSpec::add_child` could
    /// predict its handle), then queues the inits depth first in start order and runs them.
    fn start_tree(&mut self, spec: &SystemSpec, backend: &mut B) {
        if self.core.groups.is_empty() {
            return;
        }
        let shard = self.core.shard.index();
        let mut reserved_by_group = vec![Vec::new(); spec.trees[shard].len()];
        for child in spec.children.iter().filter(|child| child.shard == shard) {
            let handle = self
                .core
                .reserve(
                    backend,
                    Handle::NONE,
                    Some(child.type_index as usize),
                    child.args.as_slice(),
                    child.group,
                )
                .expect("validated static children fit their arenas");
            reserved_by_group[child.group as usize].push(handle);
        }
        // The pending-init queue now holds insertion order; rebuild it in start order. A
        // group's isolate members were added in the same order as its reserved children.
        while self.core.pending_inits.pop().is_some() {}
        let mut next_by_group = vec![0usize; reserved_by_group.len()];
        let mut order = Vec::new();
        start_order(&self.core.groups, 0, &mut order);
        for (group, position) in order {
            let nth = &mut next_by_group[group as usize];
            let handle = reserved_by_group[group as usize][*nth];
            *nth += 1;
            self.core.groups.set_static_handle(group, position, handle);
            self.core.pending_inits.push(handle).expect("pending inits hold every slot");
        }
        self.settle(backend);
    }

    /// Reads what the core takes from the backend once per tick (or per operation between
    /// ticks): the clock, whether it traces, whether buggify sites may fire.
    #[inline]
    fn sync(&mut self, backend: &B) {
        self.core.now = backend.now();
        self.core.trace_on = backend.tracing();
        self.core.buggify_on = backend.buggify_on();
    }

    /// The shard this scheduler runs.
    pub fn shard(&self) -> ShardId {
        self.core.shard
    }

    /// Counters of every send, drop, exhaustion, exit, timer, call, I/O operation and
    /// supervision action so far.
    pub fn counters(&self) -> &Counters {
        &self.core.counters
    }

    /// Live isolates of the type at `type_index`.
    pub fn live_count(&self, type_index: usize) -> usize {
        self.arenas.get(type_index).map_or(0, |arena| arena.live_count())
    }

    /// Whether `handle` names a live isolate of this shard (for a latest handle: whether an
    /// incarnation lives in its slot).
    pub fn is_live(&self, handle: Handle) -> bool {
        self.core.is_live(handle)
    }

    /// Live isolates of this shard over every type, those whose `init` is pending included.
    /// O(types).
    pub fn live_isolates(&self) -> usize {
        self.core.live_isolates()
    }

    /// Live isolates of the type at `type_index`, those whose `init` is pending included
    /// (`live_count` counts only those with a state). O(1).
    pub fn live_in_type(&self, type_index: usize) -> usize {
        self.core.live_in_type(type_index)
    }

    /// The handle of the `n`-th live isolate in (type, slot) order, for `n` below
    /// `live_isolates()`. O(slots), like `live_isolates`.
    pub fn nth_live(&self, n: usize) -> Option<Handle> {
        self.core.nth_live(n)
    }

    /// Crashes the live isolate `handle` names, from outside any dispatch (the simulator's
    /// "isolate crashes before its next dispatch" fault). Call it between ticks.
    ///
    /// The isolate is torn down as `ExitKind::Crashed` with `reason`, exactly as if its
    /// handler had crashed: its queued messages are dropped as `TargetExited`, its timers
    /// cancelled, its pending call and undelivered I/O completion dropped, its buffers
    /// freed, its state dropped. Then the shard settles as after a handler: the
    /// supervisor's decision runs, and the `init` of any child it restarts. A latest handle
    /// kills whichever incarnation lives in its slot.
    ///
    /// Returns false, and does nothing, if `handle` names no live isolate of this shard (a
    /// stale handle, another shard's, or any handle while the shard is down). Rare: the
    /// settling may run inits, but nothing here allocates.
    pub fn kill(&mut self, handle: Handle, reason: Label, backend: &mut B) -> bool {
        self.sync(backend);
        let Some((type_index, slot)) = self.core.kill_target(handle) else {
            return false;
        };
        // The state first, then the teardown, as for every stop (see `ShardCore::stopped`).
        let drop_panic = self.arenas[type_index].drop_state(slot);
        let stop = Stop { kind: ExitKind::Crashed, reason };
        self.core.stopped(backend, type_index, slot, stop, drop_panic);
        self.settle(backend);
        self.report_failure(backend);
        true
    }

    /// Free envelopes in the shard's message pool.
    pub fn pool_free(&self) -> u32 {
        self.core.pool_free()
    }

    /// User timers not pending, and the pool's size.
    pub fn timers_free(&self) -> (u32, u32) {
        (self.core.timers.free_count(), self.core.timers.user_capacity())
    }

    /// I/O buffers not in use.
    pub fn io_buffers_free(&self) -> usize {
        self.core.buffers.free_count()
    }

    /// The shard's failure, once its root supervision group escalated.
    pub fn failure(&self) -> Option<ShardFailure> {
        self.core.failure
    }

    /// Calls `f` with the id of every message queued in a mailbox of this shard, accepted
    /// replies waiting for their caller included, type by type, slot by slot, each mailbox
    /// from its head. For end-of-run checks (what is still under way when a run stops at its
    /// goal); it costs O(slots + queued), so it is not meant for every tick.
    pub fn for_each_queued(&self, f: &mut dyn FnMut(MessageId)) {
        self.core.for_each_queued(f);
    }

    /// Calls `f` with the caller and correlation of every call in progress on this shard:
    /// exactly the calls for which a `CallStart` was traced and neither a `CallEnd` (reply
    /// or failure) nor the caller's `Exit` followed. For end-of-run checks; O(slots).
    pub fn for_each_pending_call(&self, f: &mut dyn FnMut(Handle, u32)) {
        self.core.for_each_pending_call(f);
    }

    /// Calls `f` with the isolate and sequence of every I/O operation submitted on this
    /// shard and not yet completed or discarded as stale: exactly the `IoSubmit`s with no
    /// `IoComplete` or `IoStale` yet, whether the operation waits in the submission queue
    /// or the backend holds it (an operation of an isolate that stopped meanwhile is still
    /// outstanding until its completion is reaped as stale). For end-of-run checks;
    /// O(in-flight table).
    pub fn for_each_io_outstanding(&self, f: &mut dyn FnMut(Handle, u32)) {
        self.core.for_each_io_outstanding(f);
    }

    /// Whether nothing is queued to run. Timers, I/O in flight and messages in transit are
    /// reported by `TickReport`.
    pub fn is_idle(&self) -> bool {
        !self.core.has_work()
    }

    /// Runs one tick: inbound transport, I/O completions, dispatch within budgets, I/O
    /// submissions, outbound flush, due timers, cancels of I/O whose timeout passed.
    ///
    /// Panics if the shard is down (`is_down`): a down shard only discards its arrivals.
    pub fn tick(&mut self, backend: &mut B) -> TickReport {
        assert!(!self.down, "a down shard does not tick; restart it first");
        self.sync(backend);
        if self.core.draining() {
            self.drain_check(backend, true);
        }
        let inbound = self.drain_inbound(backend);
        self.reap_io(backend);
        self.core.start_dispatch();
        let dispatched = self.dispatch(backend);
        self.submit_io(backend);
        backend.flush_remote();
        self.core.fire_timers(backend);
        self.cancel_io(backend);
        self.report_failure(backend);
        let mut next_deadline = self.core.next_timer_deadline();
        if self.core.draining() {
            self.drain_check(backend, false);
            next_deadline = self.drain_deadline(next_deadline);
        }
        TickReport {
            dispatched,
            inbound,
            has_work: self.core.has_work(),
            next_deadline,
            // In flight is bounded by the spec's `io_in_flight_max` (a u32).
            io_in_flight: self.core.io_in_flight() as u32,
        }
    }

    /// Begins the shard's graceful shutdown (see `crate::shutdown`), whose drain ends at
    /// `deadline` on the backend's clock. Call it between ticks.
    ///
    /// Phase 1, notify: every isolate alive gets one `Tag::SHUTDOWN` message (carrying the
    /// deadline) at its next wait for messages, after the reply or I/O completion it may be
    /// waiting for, and ahead of its timers and mailbox; it takes no envelope, so it cannot
    /// be dropped. Receives in flight (`TcpAccept`, `TcpRecv`, `UdpRecvFrom`) are cancelled
    /// and complete as `Failed(TimedOut)`. From now on `ctx.shutting_down()` is true, spawns
    /// from isolates fail with `SpawnError::ShuttingDown`, and supervisors restart nothing
    /// (a child that ends is forgotten; a crash is counted and traced, not restarted).
    ///
    /// Phase 2, drain: ticks go on as ever; the drain is finished (`Event::ShutdownDrained`)
    /// when no isolate of the shard is alive, checked at the end of each tick. Phase 3,
    /// stop: the first tick at or after `deadline` tears down whatever is still alive
    /// (`Event::ShutdownForced`, then each an `Exit` of kind `Shutdown`, its handles closed
    /// as on any teardown). While it drains, `TickReport::next_deadline` is at most the
    /// deadline, so a parked shard wakes for it. `shutdown_report` says how it ended.
    ///
    /// A shard with no isolate alive is drained at once. Returns false, and does nothing, if
    /// a shutdown began already or the shard is down (a crashed shard has nothing to drain;
    /// one restarted while shutting down notifies the isolates its restart started).
    pub fn begin_shutdown(&mut self, deadline: Timestamp, backend: &mut B) -> bool {
        if self.down {
            return false;
        }
        self.sync(backend);
        if !self.core.begin_shutdown(backend, deadline) {
            return false;
        }
        self.drain_check(backend, false);
        true
    }

    /// Whether the shard's shutdown began (draining, or finished).
    pub fn is_shutting_down(&self) -> bool {
        self.core.shutdown.is_some()
    }

    /// How the shard's shutdown ended, once it did (drained, or forced at its deadline);
    /// `None` before `begin_shutdown` and while the drain goes on.
    pub fn shutdown_report(&self) -> Option<ShutdownReport> {
        self.core.shutdown.and_then(|state| state.report)
    }

    /// Ends the drain if it is over: drained when no isolate is alive; else, when `force`
    /// and the deadline has passed, every live isolate is torn down (its state dropped
    /// first, as for every stop) and the shutdown ends forced.
    fn drain_check(&mut self, backend: &mut B, force: bool) {
        let Some(state) = self.core.shutdown.filter(|state| state.draining()) else { return };
        let live = self.core.live_for_drain();
        if live == 0 {
            self.core.trace(backend, Event::ShutdownDrained);
            self.finish_shutdown(0);
            return;
        }
        if !force || self.core.now < state.deadline {
            return;
        }
        // At most the shard's slot count, which fits in u32.
        let remaining = live as u32;
        self.core.trace(backend, Event::ShutdownForced { remaining });
        // Bounded by the slots of every type; rare (once per shutdown).
        for type_index in 0..self.arenas.len() {
            for slot in 0..self.core.types[type_index].slot_count() {
                let handle = self.core.handle_of(type_index, slot);
                if self.core.resolve(handle).is_none() {
                    continue;
                }
                let drop_panic = self.arenas[type_index].drop_state(slot);
                self.core.stopped(backend, type_index, slot, Stop::SHUTDOWN, drop_panic);
            }
        }
        // A teardown of kind `Shutdown` asks no supervisor; this only clears what the torn
        // down left pending (inits of reserved slots).
        self.settle(backend);
        debug_assert_eq!(self.core.live_isolates(), 0, "a forced stop leaves nothing alive");
        self.finish_shutdown(remaining);
    }

    fn finish_shutdown(&mut self, remaining: u32) {
        let now = self.core.now;
        if let Some(state) = self.core.shutdown.as_mut() {
            state.finish(now, remaining);
        }
    }

    /// `next` (the next timer's deadline), or the drain's deadline if it is earlier.
    fn drain_deadline(&self, next: Option<Timestamp>) -> Option<Timestamp> {
        match self.core.shutdown.filter(|state| state.draining()) {
            Some(state) => Some(next.map_or(state.deadline, |next| next.min(state.deadline))),
            None => next,
        }
    }

    /// Ticks until the backend asks to stop, parking whenever nothing is runnable. This is
    /// the shard's event loop, the one loop in the core without a count bound: it ends when
    /// `Backend::stop_requested` says so.
    pub fn run(&mut self, backend: &mut B) {
        while !backend.stop_requested() {
            let report = self.tick(backend);
            if !report.has_work {
                backend.park(report.next_deadline);
            }
        }
    }

    /// The shard fails as a whole (the simulator's shard crash; in production, what a
    /// shard's fatal fault leaves to recover from). Call it between ticks.
    ///
    /// Every live or reserved isolate is torn down at once as `ExitKind::ShardCrashed`:
    /// its `Exit` event, its queued messages dropped as `TargetExited`, its timers
    /// cancelled, its pending call and undelivered completion dropped, its buffers freed,
    /// its state dropped. No supervisor decides anything (as for `Shutdown`). Pending
    /// inits, exit notices and the ready and yielded queues are emptied; I/O submissions
    /// not yet handed to the backend are discarded as stale (operations the backend holds
    /// complete as stale after the restart). Every slot's generation is bumped, so no
    /// handle from before the crash names anything after it (a slot at the last generation
    /// is retired, as always). Then the message pool is entirely free and no user timer is
    /// pending, which is asserted.
    ///
    /// The shard is then down (`is_down`): it must not tick; its driver passes what arrives
    /// for it to `discard_inbound` until `restart`. Sends toward a down shard need nothing
    /// from the core: the sender's transport accepts them as usual, and the receiving side
    /// drops them there as `ShardDown`. Message ids and call correlations keep counting, so
    /// they stay unique across the crash. Panics if the shard is down already.
    pub fn crash(&mut self, backend: &mut B) {
        assert!(!self.down, "a down shard cannot crash again");
        self.sync(backend);
        self.core.crash_all(backend);
        for arena in self.arenas.iter_mut() {
            self.core.counters.panics += arena.clear();
        }
        self.down = true;
    }

    /// Whether the shard crashed and was not restarted yet.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// While the shard is down, takes what arrived for it from `backend.receive_remote()`
    /// (at most `INBOUND_PER_TICK_MAX` envelopes per call, like a tick) and drops each as
    /// `DropReason::ShardDown`: counted in `Counters::shard_down` and traced as
    /// `Event::Drop`. Returns how many it dropped. Panics if the shard is not down.
    pub fn discard_inbound(&mut self, backend: &mut B) -> u32 {
        assert!(self.down, "a running shard takes its arrivals in tick");
        self.sync(backend);
        let mut count = 0;
        while count < INBOUND_PER_TICK_MAX {
            let received = backend.receive_remote();
            let Some(message) = received.as_ref() else { break };
            self.core.discard_arrival(backend, message);
            count += 1;
        }
        count
    }

    /// Brings a down shard back from `spec`, the spec it booted from: the supervision tree
    /// is rebuilt (fresh groups and restart histories; dynamic children are gone), each
    /// type's free list is reset as at boot, and the static children are reserved and
    /// their `init`s run exactly as at boot, so the k-th static child of a type is back in
    /// slot k, with a new generation (reach it through its `Handle::latest`; the handles
    /// `SystemSpec::add_child` returned are stale now). The failure flag (`failure`) is
    /// cleared. A shard whose root escalated comes back the same way: `crash`, then
    /// `restart`. As at boot, remote sends of the inits go out at the next tick's flush,
    /// and a root escalation during the inits is reported to the backend before this
    /// returns.
    ///
    /// Rare, so it allocates (the supervision groups, the start order). Panics if the
    /// shard is not down, or if `spec` does not have the shard count, type count and slot
    /// counts the shard booted with (or if retired slots left a type fewer free slots than
    /// static children, which takes some 2^28 incarnations of each slot).
    pub fn restart(&mut self, spec: &SystemSpec, backend: &mut B) {
        assert!(self.down, "only a down shard restarts");
        self.sync(backend);
        self.core.prepare_restart(spec);
        self.failure_reported = false;
        self.down = false;
        self.start_tree(spec, backend);
        if self.core.draining() {
            // The isolates the restart started are as alive as any: they drain too.
            self.core.notify_shutdown(backend);
        }
        self.report_failure(backend);
    }

    fn drain_inbound(&mut self, backend: &mut B) -> u32 {
        let mut count = 0;
        while count < INBOUND_PER_TICK_MAX {
            // Borrowed inside the `Option` rather than moved out of it.
            let received = backend.receive_remote();
            let Some(message) = received.as_ref() else { break };
            self.core.accept_remote(backend, message);
            count += 1;
        }
        count
    }

    fn reap_io(&mut self, backend: &mut B) {
        if self.core.io_in_flight() == 0 {
            return;
        }
        for _ in 0..IO_COMPLETIONS_PER_TICK_MAX {
            let Some(reaped) = backend.io_reap() else { break };
            if let Some(handle) = self.core.io_reaped(backend, reaped) {
                self.core.discard_handle(handle);
            }
        }
    }

    /// Asks the backend to cancel the operations whose timeout fired this tick.
    fn cancel_io(&mut self, backend: &mut B) {
        // Bounded by the cancel ring's capacity (one per operation in flight).
        while let Some(token) = self.core.pop_io_cancel() {
            backend.io_cancel(token);
        }
    }

    fn submit_io(&mut self, backend: &mut B) {
        // Bounded by the submission queue's capacity.
        while let Some(submission) = self.core.pop_io_submission() {
            if let Err(refused) = backend.io_submit(submission)
                && let Some(handle) = self.core.io_reaped(backend, refused)
            {
                self.core.discard_handle(handle);
            }
        }
    }

    /// Dispatches type by type, in registration order, until every type's budget is spent
    /// or nothing is ready. A handler that spawns, or a supervised isolate that stops,
    /// interrupts its batch so the inits and the supervision decision run right after it.
    fn dispatch(&mut self, backend: &mut B) -> u32 {
        let mut total = 0;
        // Every pass that makes progress spends at least one unit of budget, so the number
        // of passes is bounded by the sum of the budgets.
        loop {
            let mut progress = false;
            for type_index in 0..self.arenas.len() {
                let slots = &self.core.types[type_index];
                let budget = slots.budget_left;
                if budget == 0 || slots.ready.is_empty() {
                    continue;
                }
                let env: &mut dyn Env = backend;
                let batch =
                    self.arenas[type_index].run_batch(&mut self.core, env, type_index, budget);
                self.core.types[type_index].budget_left -= batch.dispatched;
                total += batch.dispatched;
                progress |= batch.dispatched > 0;
                if batch.interrupted {
                    self.settle(backend);
                }
            }
            if !progress {
                return total;
            }
        }
    }

    /// Runs pending inits (each unless the backend fails it, `Backend::fail_init`) and
    /// supervision decisions until none is left. Bounded: each
    /// iteration consumes a pending init (bounded by the slots) or an exit notice, and the
    /// restarts an exit may cause are bounded by the group's intensity, escalation by the
    /// tree's depth.
    #[inline(always)]
    fn settle(&mut self, backend: &mut B) {
        loop {
            if let Some(notice) = self.core.exits.pop() {
                if self.core.shutdown.is_some() {
                    let groups = &mut self.core.groups;
                    supervision::isolate_stopped_during_shutdown(
                        groups,
                        notice.group,
                        notice.handle,
                    );
                    continue;
                }
                let mut actions =
                    ShardActions { core: &mut self.core, arenas: &mut self.arenas, env: backend };
                supervision::isolate_stopped(
                    &mut actions,
                    notice.group,
                    notice.handle,
                    notice.kind,
                );
            } else if let Some((type_index, slot, child)) = self.core.pop_pending_init() {
                if backend.fail_init(child) {
                    self.fail_init(backend, type_index, slot);
                } else {
                    let arena = &mut self.arenas[type_index];
                    arena.run_init(&mut self.core, backend, type_index, slot, child);
                }
            } else {
                break;
            }
        }
    }

    /// An injected init failure: `init` never runs, so the arena holds no state; the exit
    /// notice reaches the supervisor like any failed init's.
    #[inline(never)]
    fn fail_init(&mut self, backend: &mut B, type_index: usize, slot: usize) {
        let reason = crash::INJECTED_INIT_FAILURE;
        self.core.teardown(backend, type_index, slot, ExitKind::InitFailed, reason);
    }

    fn report_failure(&mut self, backend: &mut B) {
        if let Some(failure) = self.core.failure
            && !self.failure_reported
        {
            self.failure_reported = true;
            backend.shard_failed(&failure);
        }
    }
}

/// Static isolate members of `group` and its nested groups, depth first, in start order, as
/// (group, position in the group).
fn start_order(groups: &Groups, group: u16, order: &mut Vec<(u16, usize)>) {
    let members: Vec<_> = groups.static_members(group).collect();
    for member in members {
        match member {
            Ok((position, _)) => order.push((group, position)),
            Err(nested) => start_order(groups, nested, order),
        }
    }
}

/// Supervision's hands: the core, the arenas and the backend.
struct ShardActions<'a> {
    core: &'a mut ShardCore,
    arenas: &'a mut [Box<dyn ErasedArena>],
    env: &'a mut dyn Env,
}

impl Actions for ShardActions<'_> {
    fn groups(&mut self) -> &mut Groups {
        &mut self.core.groups
    }

    fn now(&self) -> Timestamp {
        self.core.now
    }

    fn stop(&mut self, handle: Handle) {
        if let Some((type_index, slot)) = self.core.resolve(handle) {
            // The state goes first: a panic in its `Drop` is traced before the exit.
            let drop_panic = self.arenas[type_index].drop_state(slot);
            self.core.stopped(self.env, type_index, slot, Stop::SHUTDOWN, drop_panic);
        }
    }

    fn start(
        &mut self,
        group: u16,
        type_index: u16,
        args: &ArgsBytes,
        old: Handle,
    ) -> Option<Handle> {
        // The new incarnation takes the old one's slot if it is free (it normally just
        // became free), so the member's slot address (`Handle::latest`) reaches it.
        let type_index = type_index as usize;
        let preferred = (!old.is_none() && old.type_index() as usize == type_index)
            .then_some(old.slot() as usize);
        let new = self
            .core
            .reserve_preferring(
                self.env,
                Handle::NONE,
                Some(type_index),
                preferred,
                args.as_slice(),
                group,
            )
            .ok()?;
        self.core.counters.restarts += 1;
        self.core.trace(self.env, Event::Restart { group, old, new });
        Some(new)
    }

    fn escalated(&mut self, group: u16, exceeded: bool) {
        self.core.counters.escalations += 1;
        self.core.trace(self.env, Event::Escalate { group, exceeded });
    }

    fn group_restarted(&mut self, parent: u16, group: u16) {
        self.core.counters.restarts += 1;
        self.core.trace(self.env, Event::Rebuild { parent, group });
    }

    fn shard_failed(&mut self) {
        self.core.counters.shard_failures += 1;
        self.core.trace(self.env, Event::ShardFailed);
        self.core.failure = Some(ShardFailure { shard: self.core.shard, at: self.core.now });
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
