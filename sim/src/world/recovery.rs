//! Crashes and recoveries of shards and nodes, and the healing that starts the liveness
//! phase.
//!
//! A shard crash goes through the core's shard recovery (`Scheduler::crash`, then
//! `restart` after a drawn delay, within the shard's restart budget, else quarantine until
//! revived). A node crash drops every scheduler of the node, every message in its rings
//! and every queued delivery to it; it restarts from its spec after a drawn delay, with only
//! its clock surviving. Every step is a world event in the trace.

use tina::Recovery;
use tina_checkers::{Phase, WorldEvent};

use super::{Entry, Status, World, stamp_of};
use crate::faults::{FaultKind, K};

impl World {
    /// Shard `index` fails as a whole (`injected`: by the shard-crash fault; otherwise its
    /// root group escalated). It goes down, then restarts after a drawn delay or, past its
    /// restart budget, is quarantined.
    pub(super) fn crash_shard(&mut self, index: usize, injected: bool) {
        if injected {
            self.count(FaultKind::ShardCrash);
            self.record_cell(index, &WorldEvent::ShardCrash);
        }
        self.set_clock(index);
        let cell = &mut self.cells[index];
        cell.backend.lent = self.lent.take();
        cell.scheduler.as_mut().expect("an up shard has a scheduler").crash(&mut cell.backend);
        self.lent = cell.backend.lent.take();
        cell.status = Status::Down;
        cell.epoch += 1;
        cell.wake_at = u64::MAX;
        cell.busy_until = cell.busy_until.min(self.now);
        let epoch = cell.epoch;
        let node = usize::from(cell.node);
        let local = cell.backend.local;
        self.make_unrunnable(index);
        // Sends the crash produced (none today) still leave; what arrived waits for nobody.
        self.route_outbound(index, self.now);
        self.discard_inbound(index);
        match self.cells[index].recovery.on_failure(stamp_of(local)) {
            Recovery::Restart => {
                let delay_max = self.config.faults.nanos(K::ShardRestartDelayMax);
                let delay = self.nodes[node].faults.shard_restart.range_inclusive(0, delay_max);
                // Shard indices fit in u32.
                self.queue
                    .push(self.now + delay, Entry::ShardRestart { cell: index as u32, epoch });
            }
            Recovery::Quarantine => {
                self.cells[index].status = Status::Quarantined;
                self.lent_mut().faults.counts.shard_quarantines += 1;
                self.record_cell(index, &WorldEvent::ShardQuarantine);
            }
        }
    }

    /// Drops what arrived at down shard `index`, as the core counts it.
    pub(super) fn discard_inbound(&mut self, index: usize) {
        if self.cells[index].backend.inbound.is_empty() {
            return;
        }
        self.set_clock(index);
        let cell = &mut self.cells[index];
        cell.backend.lent = self.lent.take();
        let scheduler = cell.scheduler.as_mut().expect("a down shard keeps its scheduler");
        // Bounded: each call takes up to the core's per-tick limit, and the inbound queue is
        // bounded by the credits.
        while !cell.backend.inbound.is_empty() {
            scheduler.discard_inbound(&mut cell.backend);
        }
        self.lent = cell.backend.lent.take();
    }

    /// Down shard `index` boots its supervision tree again.
    pub(super) fn restart_shard(&mut self, index: usize) {
        debug_assert_ne!(self.cells[index].status, Status::Up);
        self.lent_mut().faults.counts.shard_restarts += 1;
        self.record_cell(index, &WorldEvent::ShardRestart);
        self.set_clock(index);
        let node = usize::from(self.cells[index].node);
        let cell = &mut self.cells[index];
        cell.status = Status::Up;
        cell.backend.lent = self.lent.take();
        let scheduler = cell.scheduler.as_mut().expect("a down shard keeps its scheduler");
        scheduler.restart(&self.nodes[node].spec, &mut cell.backend);
        self.lent = cell.backend.lent.take();
        self.route_outbound(index, self.now);
        self.reschedule(index, Some(self.now));
    }

    /// Quarantined shard `index` is revived: a fresh restart budget, and it restarts now.
    pub(super) fn revive_shard(&mut self, index: usize) {
        // A shutting-down world brings nothing back.
        if self.cells[index].status != Status::Quarantined || self.shutting_down {
            return;
        }
        self.lent_mut().faults.counts.shard_revivals += 1;
        self.record_cell(index, &WorldEvent::ShardRevive);
        self.cells[index].recovery.revive();
        self.restart_shard(index);
    }

    /// Serves the revival requests isolates of shard `index` made during its tick.
    #[cold]
    #[inline(never)]
    pub(super) fn serve_revivals(&mut self, index: usize) {
        let base = self.cells[index].node_base as usize;
        let requests = core::mem::take(&mut self.cells[index].backend.revivals);
        for shard in &requests {
            self.revive_shard(base + shard.index());
        }
        // Give the buffer back, keeping its capacity.
        let mut requests = requests;
        requests.clear();
        self.cells[index].backend.revivals = requests;
    }

    /// Node `node` crashes: its schedulers, its isolates, the messages in its rings and on
    /// their way to it are gone. It restarts after a drawn delay.
    pub(super) fn crash_node(&mut self, node: u16) {
        let n = usize::from(node);
        if !self.nodes[n].up {
            return;
        }
        self.count(FaultKind::NodeCrash);
        self.record_node(node, &WorldEvent::NodeCrash);
        let (first, count) = (self.nodes[n].first_cell, self.nodes[n].shard_count);
        self.nodes[n].up = false;
        self.nodes[n].epoch += 1;
        let budget = self.budget();
        for index in first..first + count {
            self.make_unrunnable(index);
            let lent = self.lent.as_deref_mut().expect("the flights are home between ticks");
            let cell = &mut self.cells[index];
            // Bounded by the credits.
            while let Some(slot) = cell.backend.inbound.pop_front() {
                lent.flights.release(slot);
            }
            if let Some(scheduler) = cell.scheduler.take() {
                for (sum, (_, value)) in
                    cell.counters_before.iter_mut().zip(scheduler.counters().entries())
                {
                    sum.1 += value;
                }
                // An isolate's `Drop` may panic; the node is gone either way.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(scheduler)));
            }
            cell.status = Status::NodeDown;
            cell.epoch += 1;
            cell.wake_at = u64::MAX;
            cell.busy_until = self.now;
            cell.last_arrival.fill(0);
            cell.recovery = tina::ShardRecovery::new(budget);
        }
        let range = (first as u32)..((first + count) as u32);
        // The process is gone: its I/O in progress never completes, what it did not fsync
        // meets the disk's crash semantics, and its open files are closed.
        for index in first..first + count {
            let backend = &mut self.cells[index].backend;
            backend.io_submitted.clear();
            backend.io_cancels.clear();
            backend.io_ready.clear();
        }
        self.io.drop_cells(range.clone());
        self.net.crash_node(node).expect("a node of the world");
        self.schedule_net_poll();
        let crash = self.disks[n].crash(&mut self.disk_streams[n]);
        let (lost, torn, kept) = (crash.writes_lost, crash.writes_torn, crash.writes_kept);
        if lost + torn + kept > 0 {
            // Counts fit in u32: a file's unsynced log is bounded.
            let event =
                WorldEvent::DiskCrash { lost: lost as u32, torn: torn as u32, kept: kept as u32 };
            self.record_node(node, &event);
        }
        let lent = self.lent.as_deref_mut().expect("the flights are home between ticks");
        let flights = &mut lent.flights;
        self.queue.retain(|entry| match *entry {
            Entry::Deliver { slot, cell } if range.contains(&cell) => {
                flights.release(slot);
                false
            }
            Entry::Wake { cell }
            | Entry::ShardRestart { cell, .. }
            | Entry::IoDone { cell, .. } => !range.contains(&cell),
            _ => true,
        });
        let base = self.nodes[n].credits_base;
        lent.credits[base..base + count * count].fill(self.config.transport_capacity);
        let delay_max = self.config.faults.nanos(K::NodeRestartDelayMax);
        let delay = self.nodes[n].faults.node_restart.range_inclusive(0, delay_max);
        let epoch = self.nodes[n].epoch;
        self.queue.push(self.now + delay, Entry::NodeRestart { node, epoch });
    }

    /// Crashed node `node` boots again from its spec.
    pub(super) fn restart_node(&mut self, node: u16) {
        let n = usize::from(node);
        if self.nodes[n].up {
            return;
        }
        self.lent_mut().faults.counts.node_restarts += 1;
        self.record_node(node, &WorldEvent::NodeRestart);
        self.nodes[n].up = true;
        let (first, count) = (self.nodes[n].first_cell, self.nodes[n].shard_count);
        for index in first..first + count {
            self.cells[index].status = Status::Up;
            self.boot_cell(index).expect("a spec that booted once boots again");
        }
        for index in first..first + count {
            self.route_outbound(index, self.now);
            self.reschedule(index, Some(self.now));
        }
    }

    /// The shard restart budget of the fault configuration.
    pub(super) fn budget(&self) -> tina::RestartBudget {
        tina::RestartBudget {
            // Bounded by the knob's maximum of 4096.
            restart_max: self.config.faults.count(K::ShardRestartMax) as u32,
            window: core::time::Duration::from_nanos(
                self.config.faults.nanos(K::ShardRestartWindow),
            ),
        }
    }

    /// The safety phase ends: no more faults; crashed nodes and shards restart now,
    /// quarantined shards are revived (unless `liveness_revive=0`), stalls end; the goal
    /// must be reached within `liveness_time`.
    pub(super) fn end_safety(&mut self) {
        if self.phase != Phase::Safety {
            return;
        }
        self.phase = Phase::Liveness;
        self.lent_mut().faults.active = false;
        // Delays are plain again, on the plain path unless a plant needs the other.
        self.delays.tail = crate::prng::Ratio::ZERO;
        self.delays.slow = crate::prng::Ratio::ZERO;
        self.routing_plain = self.planted.is_none();
        self.liveness_deadline = self.now.saturating_add(self.config.faults.nanos(K::LivenessTime));
        // Disks stop failing; they keep their capacity and latency. Links heal, unclog
        // and stop injecting faults.
        let config = self.disk_config(false);
        for disk in &mut self.disks {
            disk.reconfigure(config).expect("the knobs' bounds keep it valid");
        }
        self.heal_network();
        // One event for the whole world, stamped with node 0.
        self.record_node(0, &WorldEvent::Phase { phase: Phase::Liveness });
        for node in 0..self.nodes.len() {
            // At most 65,536 nodes.
            self.restart_node(node as u16);
        }
        let revive = self.config.faults.count(K::LivenessRevive) == 1;
        for index in 0..self.cells.len() {
            match self.cells[index].status {
                Status::Down => {
                    self.cells[index].epoch += 1;
                    self.restart_shard(index);
                }
                Status::Quarantined if revive => self.revive_shard(index),
                Status::Up => {
                    let cell = &mut self.cells[index];
                    if cell.busy_until > self.now {
                        cell.busy_until = self.now;
                        if cell.wake_at != u64::MAX {
                            self.reschedule(index, Some(self.now));
                        }
                    }
                }
                Status::Quarantined | Status::NodeDown => {}
            }
        }
    }

    pub(super) fn lent_mut(&mut self) -> &mut crate::backend::Lent {
        self.lent.as_deref_mut().expect("the lent store is home between ticks")
    }
}
