//! The run's graceful shutdown (`sim --shutdown-at`): at its instant the world stops
//! injecting faults and every shard that is up begins the core's shutdown
//! (`Scheduler::begin_shutdown`), its drain ending `drain` later on its node's clock. The
//! world keeps running (network, disks, timers) while the shards drain; the run ends when
//! every shard has finished its shutdown, drained or forced at its deadline.
//!
//! Faults stop rather than go on through the drain so that a drain that does not finish
//! is the system's doing, not the fault model's; nothing is healed back to life either
//! (crashed nodes and shards stay down, quarantined shards stay quarantined: a process
//! that shuts down brings back nothing), but partitions and clogs heal and stalls end, as
//! at the end of the safety phase. The liveness phase's bound does not apply: the drain
//! has its own deadline.

use tina::{ShardId, ShutdownReport, Timestamp};
use tina_checkers::WorldEvent;

use super::{Status, World};

/// When the run shuts down, and how long the shards may drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownPlan {
    /// The true time the shutdown begins, in nanoseconds.
    pub at_ns: u64,
    /// The drain's length on each node's clock, in nanoseconds.
    pub drain_ns: u64,
}

/// How one shard's shutdown went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every isolate ended by itself before the deadline.
    Drained(ShutdownReport),
    /// The deadline passed with isolates alive; they were torn down.
    Forced(ShutdownReport),
    /// The shard was down (crashed, quarantined, or its node crashed) when the shutdown
    /// began: it had nothing to drain, and did not come back.
    Down,
    /// The run ended (at a violation or a limit) before the shard's shutdown finished.
    Unfinished,
}

impl ShutdownOutcome {
    /// Lower-case name for reports.
    pub const fn name(&self) -> &'static str {
        match self {
            ShutdownOutcome::Drained(_) => "drained",
            ShutdownOutcome::Forced(_) => "forced",
            ShutdownOutcome::Down => "down",
            ShutdownOutcome::Unfinished => "unfinished",
        }
    }
}

/// One shard's shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardShutdown {
    /// The node.
    pub node: u16,
    /// The shard.
    pub shard: ShardId,
    /// How it went.
    pub outcome: ShutdownOutcome,
}

impl World {
    /// The shutdown begins now: faults stop, stalls end, links heal, and every shard that
    /// is up begins its shutdown with its node's deadline.
    pub(super) fn begin_shutdown(&mut self, drain_ns: u64) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.liveness_deadline = u64::MAX;
        self.lent_mut().faults.active = false;
        self.delays.tail = crate::prng::Ratio::ZERO;
        self.delays.slow = crate::prng::Ratio::ZERO;
        self.routing_plain = self.planted.is_none();
        let config = self.disk_config(false);
        for disk in &mut self.disks {
            disk.reconfigure(config).expect("the knobs' bounds keep it valid");
        }
        self.heal_network();
        // One event for the whole world, stamped with node 0.
        self.record_node(0, &WorldEvent::Shutdown { drain_ns });
        for index in 0..self.cells.len() {
            if self.cells[index].status != Status::Up {
                continue;
            }
            self.set_clock(index);
            let deadline = Timestamp::from_nanos(self.cells[index].backend.local)
                .saturating_add(core::time::Duration::from_nanos(drain_ns));
            let cell = &mut self.cells[index];
            cell.busy_until = cell.busy_until.min(self.now);
            cell.backend.lent = self.lent.take();
            let scheduler = cell.scheduler.as_mut().expect("an up shard has a scheduler");
            scheduler.begin_shutdown(deadline, &mut cell.backend);
            // A shard with nothing alive is drained at once.
            cell.shutdown_counted = scheduler.shutdown_report().is_some();
            self.shutdown_left += usize::from(!cell.shutdown_counted);
            self.lent = cell.backend.lent.take();
            self.route_outbound(index, self.now);
            self.reschedule(index, Some(self.now));
        }
    }

    /// After a tick of shard `index` while shutting down: counts its shutdown finished.
    pub(super) fn note_shutdown(&mut self, index: usize) {
        let cell = &mut self.cells[index];
        if cell.shutdown_counted {
            return;
        }
        let finished = cell.scheduler.as_ref().is_some_and(|s| s.shutdown_report().is_some());
        if finished {
            cell.shutdown_counted = true;
            self.shutdown_left -= 1;
        }
    }

    /// Whether every shard that began a shutdown has finished it.
    pub(super) fn shutdown_complete(&self) -> bool {
        self.shutting_down && self.shutdown_left == 0
    }

    /// How each shard's shutdown went, or `None` if no shutdown began.
    pub fn shutdown_outcomes(&self) -> Option<Vec<ShardShutdown>> {
        if !self.shutting_down {
            return None;
        }
        let outcomes = self.cells.iter().map(|cell| {
            let report = cell.scheduler.as_ref().and_then(|s| s.shutdown_report());
            let began = cell.scheduler.as_ref().is_some_and(|s| s.is_shutting_down());
            let outcome = match report {
                Some(report) if report.drained => ShutdownOutcome::Drained(report),
                Some(report) => ShutdownOutcome::Forced(report),
                None if began && cell.status == Status::Up => ShutdownOutcome::Unfinished,
                None => ShutdownOutcome::Down,
            };
            ShardShutdown { node: cell.node, shard: cell.shard, outcome }
        });
        Some(outcomes.collect())
    }
}
