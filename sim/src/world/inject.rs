//! The timed faults: when each node's next stall, isolate crash, shard crash, node crash or
//! clock jump happens, and what it does. Each kind draws its instants, its victim and its
//! size from the node's own stream for that kind (`NodeFaults`), so turning one kind on or
//! off leaves the others' draws unchanged.
//!
//! Faults are planned only in the safety phase; the entry that ends it is planned at boot.

use tina::Label;
use tina_checkers::{Phase, WorldEvent};

use super::{Entry, Status, World};
use crate::faults::{FaultKind, K, TIMED, Timed};
use crate::net::Direction;

/// The reason of an isolate crash the world injects.
pub const INJECTED_CRASH: Label = Label::new("injected crash");

impl World {
    /// Plans the first occurrence of every timed fault of every node, and the end of the
    /// safety phase (only when some fault is on: without faults there are no phases).
    pub(super) fn plan_faults(&mut self) {
        if !self.config.faults.any_on() {
            return;
        }
        for node in 0..self.nodes.len() {
            for timed in TIMED {
                // At most 65,536 nodes.
                self.plan_next(node as u16, timed);
            }
        }
        self.queue.push(self.config.faults.nanos(K::SafetyTime), Entry::SafetyEnd);
    }

    /// Plans the next occurrence of `timed` on `node`, if it is on (a heal or an unclog is
    /// planned by its partition or clog, not here).
    fn plan_next(&mut self, node: u16, timed: Timed) {
        if matches!(timed, Timed::NetHeal | Timed::NetUnclog) {
            return;
        }
        let config = &self.config.faults;
        if let Some(after) = self.nodes[usize::from(node)].faults.next_in(timed, config) {
            self.queue.push(self.now.saturating_add(after), Entry::Fault { node, timed });
        }
    }

    /// A timed fault is due on `node`: inject it (if the safety phase goes on) and plan
    /// the next one.
    pub(super) fn apply_fault(&mut self, node: u16, timed: Timed) {
        if self.phase != Phase::Safety || self.shutting_down {
            return;
        }
        self.plan_next(node, timed);
        match timed {
            Timed::NodeCrash => self.crash_node(node),
            Timed::ClockJump => self.jump_clock(node),
            Timed::NetPartition | Timed::NetClog | Timed::NetHeal | Timed::NetUnclog => {
                self.net_fault(node, timed);
            }
            Timed::ShardStall | Timed::IsolateCrash | Timed::ShardCrash => {
                let n = usize::from(node);
                if !self.nodes[n].up {
                    return;
                }
                let (first, count) = (self.nodes[n].first_cell, self.nodes[n].shard_count);
                let index = first + self.nodes[n].faults.stream(timed).choose_index(count);
                if self.cells[index].status != Status::Up {
                    return;
                }
                match timed {
                    Timed::ShardStall => self.stall(index),
                    Timed::IsolateCrash => self.crash_isolate(index),
                    _ => self.crash_shard(index, true),
                }
            }
        }
    }

    /// A partition or a clog starts from `node` (unless one is on already, or the world has
    /// a single node), or the one on ends.
    fn net_fault(&mut self, node: u16, timed: Timed) {
        let n = usize::from(node);
        let node_count = self.nodes.len();
        match timed {
            Timed::NetHeal => {
                if let Some(link) = self.partitions[n].take() {
                    self.heal_link(node, link, false);
                }
            }
            Timed::NetUnclog => {
                if let Some(link) = self.clogs[n].take() {
                    self.heal_link(node, link, true);
                }
            }
            _ if node_count < 2 => {}
            Timed::NetPartition if self.partitions[n].is_none() => {
                let stream = self.nodes[n].faults.stream(timed);
                let shape = stream.below(3);
                let peer = other_node(stream, node, node_count);
                let link = match shape {
                    0 => NetLink { peer, direction: Direction::Both },
                    1 => NetLink { peer, direction: Direction::OneWay },
                    _ => NetLink { peer: node, direction: Direction::Both },
                };
                if link.peer == node {
                    self.net.isolate(node).expect("a node of the world");
                } else {
                    self.net.partition(node, peer, link.direction).expect("two nodes of the world");
                }
                self.partitions[n] = Some(link);
                let max = self.config.faults.nanos(K::NetPartitionMax).max(1);
                let lasts = self.nodes[n].faults.stream(timed).range_inclusive(1, max);
                let heal = Entry::Fault { node, timed: Timed::NetHeal };
                self.queue.push(self.now.saturating_add(lasts), heal);
            }
            Timed::NetClog if self.clogs[n].is_none() => {
                let stream = self.nodes[n].faults.stream(timed);
                let direction =
                    if stream.below(2) == 0 { Direction::Both } else { Direction::OneWay };
                let peer = other_node(stream, node, node_count);
                self.net.clog(node, peer, direction).expect("two nodes of the world");
                self.clogs[n] = Some(NetLink { peer, direction });
                let max = self.config.faults.nanos(K::NetClogMax).max(1);
                let lasts = self.nodes[n].faults.stream(timed).range_inclusive(1, max);
                let unclog = Entry::Fault { node, timed: Timed::NetUnclog };
                self.queue.push(self.now.saturating_add(lasts), unclog);
            }
            _ => {}
        }
        self.record_net_events();
        self.schedule_net_poll();
    }

    /// Ends the partition (or, with `clog`, the clog) `link` from `node`.
    fn heal_link(&mut self, node: u16, link: NetLink, clog: bool) {
        let (fault, peer) = if clog { ("net-unclog", link.peer) } else { ("net-heal", link.peer) };
        if clog {
            self.net.unclog(node, link.peer, link.direction).expect("two nodes of the world");
        } else if link.peer == node {
            for other in (0..self.nodes.len()).filter(|&other| other != usize::from(node)) {
                // At most 254 nodes.
                self.net.heal(node, other as u16).expect("two nodes of the world");
            }
        } else {
            self.net.heal(node, link.peer).expect("two nodes of the world");
        }
        self.record_node(node, &WorldEvent::NetFault { fault: Label::new(fault), peer });
    }

    /// Shard `index` is not scheduled for a drawn time, as if its thread were descheduled.
    fn stall(&mut self, index: usize) {
        let node = usize::from(self.cells[index].node);
        let stall_max = self.config.faults.nanos(K::ShardStallMax);
        if stall_max == 0 {
            return;
        }
        let duration =
            self.nodes[node].faults.stream(Timed::ShardStall).range_inclusive(1, stall_max);
        self.count(FaultKind::ShardStall);
        self.record_cell(index, &WorldEvent::ShardStall { for_ns: duration });
        let until = self.now.saturating_add(duration);
        let cell = &mut self.cells[index];
        cell.busy_until = cell.busy_until.max(until);
        let (runnable, wake_at, busy_until) = (cell.runnable, cell.wake_at, cell.busy_until);
        if runnable {
            self.make_unrunnable(index);
            self.reschedule(index, Some(busy_until));
        } else if wake_at < busy_until {
            self.reschedule(index, Some(busy_until));
        }
    }

    /// A live isolate of shard `index`, drawn uniformly, crashes before its next dispatch;
    /// its supervisor decides what follows.
    fn crash_isolate(&mut self, index: usize) {
        let node = usize::from(self.cells[index].node);
        let scheduler = self.cells[index].scheduler.as_ref().expect("an up shard has a scheduler");
        let live = scheduler.live_isolates();
        if live == 0 {
            return;
        }
        let nth = self.nodes[node].faults.stream(Timed::IsolateCrash).choose_index(live);
        let Some(handle) = scheduler.nth_live(nth) else { return };
        self.count(FaultKind::IsolateCrash);
        self.record_cell(index, &WorldEvent::IsolateCrash { handle });
        self.set_clock(index);
        let cell = &mut self.cells[index];
        cell.backend.lent = self.lent.take();
        let scheduler = cell.scheduler.as_mut().expect("an up shard has a scheduler");
        let killed = scheduler.kill(handle, INJECTED_CRASH, &mut cell.backend);
        self.lent = cell.backend.lent.take();
        debug_assert!(killed, "nth_live names a live isolate");
        // The supervisor's restart may have run an init that sent messages.
        self.route_outbound(index, self.now);
        let at = self.now.max(self.cells[index].busy_until);
        if self.cells[index].wake_at > at {
            self.reschedule(index, Some(at));
        }
    }

    /// Node `node`'s clock jumps forward by a drawn amount; its shards wake to fire what
    /// came due.
    fn jump_clock(&mut self, node: u16) {
        let n = usize::from(node);
        let jump_max = self.config.faults.nanos(K::ClockJumpMax);
        if jump_max == 0 {
            return;
        }
        let by_ns = self.nodes[n].faults.stream(Timed::ClockJump).range_inclusive(1, jump_max);
        self.nodes[n].clock.jump(by_ns);
        self.clocks_true = false;
        self.count(FaultKind::ClockJump);
        self.record_node(node, &WorldEvent::ClockJump { by_ns });
        let (first, count) = (self.nodes[n].first_cell, self.nodes[n].shard_count);
        for index in first..first + count {
            let cell = &self.cells[index];
            if cell.status == Status::Up && cell.wake_at != u64::MAX {
                let at = self.now.max(cell.busy_until);
                self.reschedule(index, Some(at));
            }
        }
    }
}

/// A link a partition or a clog holds: to `peer` (the node itself for an isolation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct NetLink {
    peer: u16,
    direction: Direction,
}

/// A node other than `node`, drawn uniformly; the world has at least two.
fn other_node(stream: &mut crate::prng::Stream, node: u16, node_count: usize) -> u16 {
    let drawn = stream.choose_index(node_count - 1);
    // At most 254 nodes; skip `node` itself.
    let drawn = drawn as u16;
    if drawn >= node { drawn + 1 } else { drawn }
}
