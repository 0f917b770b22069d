//! The fault methods the world calls: partitions, clogs, injected resets and node crashes.
//!
//! Per-packet faults are drawn by each link as packets pass (see `link`); these are the
//! faults decided outside the network, applied at once to what is in flight.

use super::faults::NetFaultKind;
use super::ports::NodePorts;
use super::socket::SocketKind;
use super::tcp::{ConnId, Discard};
use super::{Direction, Net, NetError, NetFaults, UdpDrop};
use crate::prng::Stream;

impl Net {
    /// Checks a node index a fault method was given.
    fn check_node(&self, node: u16) -> Result<(), NetError> {
        if node < self.node_count {
            Ok(())
        } else {
            Err(NetError::NoSuchNode { node, node_count: self.node_count })
        }
    }

    /// The directed links `a -> b` (and `b -> a` for `Both`), after checking both nodes.
    fn pairs(&self, a: u16, b: u16, direction: Direction) -> Result<Vec<(u16, u16)>, NetError> {
        self.check_node(a)?;
        self.check_node(b)?;
        if a == b {
            return Err(NetError::SelfLink { node: a });
        }
        Ok(match direction {
            Direction::Both => vec![(a, b), (b, a)],
            Direction::OneWay => vec![(a, b)],
        })
    }

    /// Gives every link the knobs `faults`, those created later included (the world's
    /// liveness phase turns the faults off this way).
    pub fn set_all_link_faults(&mut self, faults: NetFaults) -> Result<(), NetError> {
        faults.validate()?;
        self.links.set_all(faults);
        Ok(())
    }

    /// Gives the link `from -> to` its own knobs (until changed again).
    pub fn set_link_faults(
        &mut self,
        from: u16,
        to: u16,
        faults: NetFaults,
    ) -> Result<(), NetError> {
        self.check_node(from)?;
        self.check_node(to)?;
        faults.validate()?;
        self.links.get(from, to).faults = faults;
        Ok(())
    }

    /// Cuts `a -> b` (and `b -> a` for `Both`). Counted as one `net-partition`.
    pub fn partition(&mut self, a: u16, b: u16, direction: Direction) -> Result<(), NetError> {
        for (from, to) in self.pairs(a, b, direction)? {
            self.links.get(from, to).cut = true;
        }
        self.log.inject(self.now_ns, NetFaultKind::Partition, a, b);
        Ok(())
    }

    /// Cuts every link to and from `node`. Counted as one `net-partition`.
    pub fn isolate(&mut self, node: u16) -> Result<(), NetError> {
        self.check_node(node)?;
        for other in (0..self.node_count).filter(|&other| other != node) {
            self.links.get(node, other).cut = true;
            self.links.get(other, node).cut = true;
        }
        self.log.inject(self.now_ns, NetFaultKind::Partition, node, node);
        Ok(())
    }

    /// Heals `a <-> b` in both directions; waiting TCP segments move on.
    pub fn heal(&mut self, a: u16, b: u16) -> Result<(), NetError> {
        for (from, to) in self.pairs(a, b, Direction::Both)? {
            self.links.get(from, to).cut = false;
        }
        self.wake_streams();
        Ok(())
    }

    /// Heals every partition; waiting TCP segments move on.
    pub fn heal_all(&mut self) {
        for link in self.links.all_mut() {
            link.cut = false;
        }
        self.wake_streams();
    }

    /// Clogs `a -> b` (and `b -> a` for `Both`): packets wait on it. Counted as one
    /// `net-clog`.
    pub fn clog(&mut self, a: u16, b: u16, direction: Direction) -> Result<(), NetError> {
        for (from, to) in self.pairs(a, b, direction)? {
            self.links.get(from, to).clogged = true;
        }
        self.log.inject(self.now_ns, NetFaultKind::Clog, a, b);
        Ok(())
    }

    /// Unclogs `a -> b` (and `b -> a` for `Both`), releasing what it held, in order.
    pub fn unclog(&mut self, a: u16, b: u16, direction: Direction) -> Result<(), NetError> {
        for (from, to) in self.pairs(a, b, direction)? {
            self.links.get(from, to).clogged = false;
            self.release_held(from, to);
        }
        self.wake_streams();
        Ok(())
    }

    /// Unclogs every link, releasing what each held, in order.
    pub fn unclog_all(&mut self) {
        let mut clogged = Vec::new();
        for link in self.links.all_mut().filter(|link| link.clogged) {
            link.clogged = false;
            clogged.push((link.from, link.to));
        }
        for (from, to) in clogged {
            self.release_held(from, to);
        }
        self.wake_streams();
    }

    /// Resets one established connection drawn with `stream`; false if there is none.
    /// Counted as `net-reset`.
    pub fn reset_random_connection(&mut self, stream: &mut Stream) -> bool {
        let established: Vec<ConnId> =
            self.conns.iter().filter(|(_, conn)| conn.established()).map(|(&id, _)| id).collect();
        if established.is_empty() {
            return false;
        }
        let id = established[stream.choose_index(established.len())];
        let nodes = self.conns[&id].nodes;
        self.log.inject(self.now_ns, NetFaultKind::Reset, nodes[0], nodes[1]);
        self.reset(id, Discard::Reset);
        true
    }

    /// Crashes `node`: every socket of it is gone at once. Its pending operations and
    /// unpolled completions vanish without a completion, its connections reset (their
    /// peers' operations fail with `ConnectionReset`), and datagrams in flight to it are lost.
    pub fn crash_node(&mut self, node: u16) -> Result<(), NetError> {
        self.check_node(node)?;
        self.pending.ops.retain(|_, op| op.node != node);
        self.pending.ready.retain(|completion| completion.node != node);
        let touched: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, conn)| conn.nodes.contains(&node))
            .map(|(&id, _)| id)
            .collect();
        for id in touched {
            self.crash_conn(id, node);
        }
        let mut udp_queued = 0;
        self.sockets.retain(|_, socket| {
            if socket.node != node {
                return true;
            }
            if let SocketKind::Udp { queue } = &socket.kind {
                udp_queued += queue.len() as u64;
            }
            false
        });
        self.tally.udp_dropped[UdpDrop::Crash as usize] += udp_queued;
        self.ports[usize::from(node)] = NodePorts::default();
        let before = self.flights.len();
        self.flights.retain(|_, flight| flight.to_node != node);
        self.tally.udp_dropped[UdpDrop::Crash as usize] += (before - self.flights.len()) as u64;
        Ok(())
    }
}
