//! A deterministic virtual network between the simulator's nodes: UDP datagrams and TCP byte
//! streams, with latency, loss, duplication, reordering, corruption, retransmission delay,
//! partitions, clogs, resets and node crashes, every random decision drawn from the seed.
//!
//! The model is sans-IO, in the manner of quinn-proto: a pure state machine with no sockets,
//! threads or clock inside. The caller passes the virtual time into every call, starts
//! operations with [`Net::start`], asks [`Net::next_deadline`] when something is due, and
//! collects [`Completion`]s with [`Net::poll`]. The same calls with the same seed give the
//! same completions, bytes and events, because every collection iterates in a fixed order
//! (`BTreeMap`, `VecDeque`) and every draw comes from a link's own stream.
//!
//! # Addresses
//!
//! Node `n` (counted from 0) has the IPv4 address `10.0.0.(n + 1)`; see [`node_ip`]. A node
//! binds and listens on its own address or on `0.0.0.0`; any other local address is
//! `AddrNotAvailable`. Port 0 picks the lowest free ephemeral port at or after the last one
//! given (from [`EPHEMERAL_PORT_MIN`]). TCP and UDP ports are separate namespaces.
//!
//! # Decisions
//!
//! - An address no node has is an unroutable host that answers nothing: datagrams to it
//!   vanish (counted as `unroutable`), and a TCP connect to it stays pending until
//!   [`NetConfig::connect_timeout_ns`], then fails with `TimedOut`.
//! - A TCP connect to a node where nothing listens on the port (or whose backlog is full)
//!   fails with `ConnectionRefused` after one round trip of latency.
//! - A partition cuts links. A UDP datagram sent across a cut link, or arriving while its
//!   link is cut, is lost. TCP packets are never lost to a partition: data segments wait on
//!   the link and arrive in order once it heals (as retransmission would deliver them), and
//!   handshake packets are retried every [`HANDSHAKE_RETRY_NS`]. A stream across a partition
//!   therefore stalls rather than fails; the caller bounds the wait with [`Net::cancel`],
//!   and a connect with its timeout.
//! - A clog holds every packet of its link (UDP and TCP) and releases them in order when
//!   the link is unclogged.
//! - A reset (a fault, a crash, or a close with unread data) reaches both ends at once: the
//!   reset's own packet is not modelled, so a reset is never lost or delayed.
//! - [`Net::crash_node`] removes every socket of the node at once: its pending operations
//!   and undelivered completions vanish (the process is gone), its connections reset, and
//!   datagrams in flight to it are lost. The node is at once usable again as a rebooted
//!   host; the world decides when its processes submit again.
//! - TCP flow control is a window: a segment is sent only when the receiver's buffer has
//!   room for it and everything already in flight, so data never arrives to a full buffer.
//!   Window updates reach the sender at once (their latency is not modelled).
//! - A cancelled operation completes with `Failed(TimedOut)`, because the world cancels
//!   when an operation's deadline passes.
//!
//! # What this is not
//!
//! No wire format, IPv6, congestion control, Nagle, TIME_WAIT, half-close (`shutdown`),
//! socket options or multicast. It is not yet wired into the world: the world will feed it
//! I/O submissions, its fault knobs and its clock.

mod accounting;
mod config;
mod faults;
mod inject;
mod link;
mod op;
mod ports;
mod socket;
mod spare;
mod tcp;
mod udp;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::Ipv4Addr;

use tina::io::{IoError, IoResult};

use crate::prng::{PrngTree, Seed};

pub use accounting::{Accounting, UDP_DROP_REASONS, UdpDrop};
pub use config::{NetConfig, NetError};
pub use faults::{DELAY_NS_LIMIT, NET_FAULT_KINDS, NetEvent, NetFaultKind, NetFaults};
pub use op::{Completion, NetOp, OpId, Start};

use accounting::Tally;
use faults::FaultLog;
use link::Links;
use op::{Pending, Wait};
use ports::NodePorts;
use socket::Socket;
use spare::Spare;
use tcp::{Conn, ConnId};
use udp::Flight;

/// Most nodes a network holds: addresses run from `10.0.0.1` to `10.0.0.254`.
pub const NODE_COUNT_MAX: u16 = 254;
/// Most open sockets per node (listeners, connections including those waiting in a
/// backlog, UDP sockets); beyond it, opening fails with `IoError::Other`.
pub const SOCKETS_PER_NODE_MAX: usize = 1024;
/// Most TCP connections in the whole network, including those still connecting.
pub const CONNECTIONS_MAX: usize = 4096;
/// Largest listen backlog; a larger request is clamped to it, and 0 counts as 1.
pub const BACKLOG_MAX: u32 = 128;
/// Largest configurable TCP send or receive buffer, in bytes.
pub const STREAM_BUFFER_SIZE_MAX: u32 = 1 << 20;
/// Largest TCP segment payload (an Ethernet MSS).
pub const SEGMENT_SIZE_MAX: usize = 1460;
/// Most TCP segments in flight per direction of a connection.
pub const SEGMENTS_IN_FLIGHT_MAX: usize = 64;
/// Most retransmissions one TCP packet takes.
pub const RETRANSMITS_PER_SEGMENT_MAX: u32 = 8;
/// How often a TCP handshake packet that meets a cut or clogged link is tried again.
pub const HANDSHAKE_RETRY_NS: u64 = 200_000_000;
/// Largest UDP payload (IPv4's limit); a larger datagram fails with `InvalidInput`.
pub const DATAGRAM_SIZE_MAX: usize = 65_507;
/// Largest configurable receive queue of a UDP socket, in datagrams.
pub const UDP_QUEUE_DATAGRAMS_MAX: u32 = 1024;
/// Most UDP datagrams in flight in the whole network; beyond it they are dropped, counted.
pub const DATAGRAMS_IN_FLIGHT_MAX: usize = 4096;
/// Most bits one corruption flips.
pub const CORRUPT_BITS_MAX: u64 = 3;
/// Most pending operations in the whole network; beyond it, starting one fails with
/// `IoError::Other`.
pub const PENDING_OPS_MAX: usize = 4096;
/// Most fault events kept until `drain_events`; later ones are counted, not kept.
pub const EVENTS_MAX: usize = 4096;
/// Most timers one `poll` (or `start`) fires; any left over stay due, and
/// `next_deadline` says so.
pub const TIMERS_PER_ADVANCE_MAX: usize = 1 << 20;
/// The first ephemeral port (IANA's dynamic range runs from here to 65535).
pub const EPHEMERAL_PORT_MIN: u16 = 49_152;

const _: () = assert!(NODE_COUNT_MAX <= 254, "node addresses are 10.0.0.1 to 10.0.0.254");
const _: () = assert!(SEGMENT_SIZE_MAX as u32 <= STREAM_BUFFER_SIZE_MAX);
const _: () = assert!(DATAGRAM_SIZE_MAX <= u32::MAX as usize);
const _: () = assert!(STREAM_BUFFER_SIZE_MAX as usize <= u32::MAX as usize);

/// The IPv4 address of node `node`: `10.0.0.(node + 1)`. Only meaningful for
/// `node < NODE_COUNT_MAX`.
pub const fn node_ip(node: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, (node as u8).wrapping_add(1))
}

/// The node whose address is `ip`, among `node_count` nodes.
fn node_of(ip: Ipv4Addr, node_count: u16) -> Option<u16> {
    let [a, b, c, d] = ip.octets();
    let node = u16::from(d).checked_sub(1)?;
    ((a, b, c) == (10, 0, 0) && node < node_count).then_some(node)
}

/// Which way a partition or clog goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Both `a -> b` and `b -> a`.
    Both,
    /// Only `a -> b`: `b` still reaches `a`.
    OneWay,
}

/// Something due at a virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A UDP datagram reaches the far end of its link.
    Datagram { flight: u64 },
    /// TCP segments of one direction of a connection may be due.
    Segment { conn: ConnId, dir: usize },
    /// A connection's SYN reaches the server.
    Syn { conn: ConnId },
    /// The server's answer reaches the client.
    Answer { conn: ConnId },
    /// A connect's deadline.
    ConnectTimeout { op: u64 },
}

/// Timers by due time, then by scheduling order (so equal times fire first-in first-out).
/// A min-heap: the sequence numbers are unique, so the order is total and never reaches
/// the timer itself.
#[derive(Debug, Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    sequence: u64,
}

impl Timers {
    fn at(&mut self, due_ns: u64, timer: Timer) {
        self.sequence += 1;
        self.heap.push(Reverse((due_ns, self.sequence, timer)));
    }

    /// When the earliest timer is due.
    fn first_due(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((due_ns, _, _))| *due_ns)
    }

    /// The earliest timer, if it is due by `now_ns`.
    fn pop_due(&mut self, now_ns: u64) -> Option<(u64, Timer)> {
        if self.first_due()? > now_ns {
            return None;
        }
        self.heap.pop().map(|Reverse((due_ns, _, timer))| (due_ns, timer))
    }
}

/// The virtual network. See the module documentation.
#[derive(Debug)]
pub struct Net {
    config: NetConfig,
    node_count: u16,
    now_ns: u64,
    ports: Vec<NodePorts>,
    sockets: BTreeMap<u32, Socket>,
    next_handle: u32,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    flights: BTreeMap<u64, Flight>,
    next_flight: u64,
    pending: Pending,
    timers: Timers,
    links: Links,
    log: FaultLog,
    tally: Tally,
    spare: Spare,
}

impl Net {
    /// A network of `node_count` nodes with no socket open, every draw derived from `seed`.
    pub fn new(node_count: u16, config: NetConfig, seed: Seed) -> Result<Net, NetError> {
        Net::with_prng(node_count, config, PrngTree::new(seed))
    }

    /// As [`Net::new`], drawing from `tree` (which may override some of its streams).
    pub fn with_prng(node_count: u16, config: NetConfig, tree: PrngTree) -> Result<Net, NetError> {
        if node_count == 0 || node_count > NODE_COUNT_MAX {
            return Err(NetError::NodeCount { node_count });
        }
        config.validate()?;
        Ok(Net {
            config,
            node_count,
            now_ns: 0,
            ports: (0..node_count).map(|_| NodePorts::default()).collect(),
            sockets: BTreeMap::new(),
            next_handle: 0,
            conns: BTreeMap::new(),
            next_conn: 0,
            flights: BTreeMap::new(),
            next_flight: 0,
            pending: Pending::default(),
            timers: Timers::default(),
            links: Links::new(tree, config.faults),
            log: FaultLog::default(),
            tally: Tally::default(),
            spare: Spare::default(),
        })
    }

    /// How many nodes the network has.
    pub fn node_count(&self) -> u16 {
        self.node_count
    }

    /// The virtual time of the latest call (time never runs backwards here: an earlier
    /// `now_ns` is read as this one).
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Starts `op` for `node` at `now_ns` on behalf of `owner` (opaque here, returned in the
    /// completion). Timers due by `now_ns` fire first. An unknown node is `InvalidInput`.
    pub fn start(&mut self, now_ns: u64, node: u16, owner: u64, op: NetOp<'_>) -> Start {
        self.advance(now_ns);
        if node >= self.node_count {
            return Start::Done(IoResult::Failed(IoError::InvalidInput));
        }
        let started = match op {
            NetOp::UdpBind { addr } => self.udp_bind(node, addr).map(Start::Done),
            NetOp::UdpSendTo { socket, addr, data } => {
                self.udp_send_to(node, socket, addr, data).map(Start::Done)
            }
            NetOp::UdpRecvFrom { socket, len_max } => {
                self.udp_recv_from(node, owner, socket, len_max)
            }
            NetOp::TcpListen { addr, backlog } => {
                self.tcp_listen(node, addr, backlog).map(Start::Done)
            }
            NetOp::TcpConnect { addr } => self.tcp_connect(node, owner, addr),
            NetOp::TcpAccept { listener } => self.tcp_accept(node, owner, listener),
            NetOp::TcpSend { socket, data } => self.tcp_send(node, owner, socket, data),
            NetOp::TcpRecv { socket, len_max } => self.tcp_recv(node, owner, socket, len_max),
            NetOp::Close { handle } => self.close(node, handle).map(Start::Done),
        };
        started.unwrap_or_else(|error| Start::Done(IoResult::Failed(error)))
    }

    /// When something is next due: now, if completions wait to be polled.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.pending.ready.is_empty() {
            return Some(self.now_ns);
        }
        self.timers.first_due()
    }

    /// Fires every timer due by `now_ns` and appends every finished operation to `out`, in
    /// the order they finished.
    pub fn poll(&mut self, now_ns: u64, out: &mut Vec<Completion>) {
        self.advance(now_ns);
        out.extend(self.pending.ready.drain(..));
    }

    /// Finishes pending operation `op` with `Failed(TimedOut)` and returns its completion
    /// here (not through `poll`); `None` if it is not pending (finished, or never started).
    pub fn cancel(&mut self, op: OpId) -> Option<Completion> {
        let pending = self.pending.ops.get(&op.0)?;
        match pending.wait {
            Wait::Accept { listener: socket }
            | Wait::Recv { socket, .. }
            | Wait::RecvFrom { socket, .. }
            | Wait::Send { socket, .. } => {
                if let Some(socket) = self.sockets.get_mut(&socket) {
                    socket.readers.retain(|&id| id != op.0);
                    socket.writers.retain(|&id| id != op.0);
                }
            }
            Wait::Connect { conn } => self.abandon_connect(conn),
        }
        self.pending.complete(op.0, IoResult::Failed(IoError::TimedOut), Vec::new());
        self.pending.ready.pop_back()
    }

    /// Fires timers due by `now_ns`, each at its own time, within one budget.
    fn advance(&mut self, now_ns: u64) {
        let now_ns = now_ns.max(self.now_ns);
        for _ in 0..TIMERS_PER_ADVANCE_MAX {
            let Some((due_ns, timer)) = self.timers.pop_due(now_ns) else { break };
            self.now_ns = self.now_ns.max(due_ns);
            self.fire(timer);
        }
        self.now_ns = now_ns;
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Datagram { flight } => self.datagram_arrives(flight),
            Timer::Segment { conn, dir } => self.segments_arrive(conn, dir),
            Timer::Syn { conn } => self.syn_arrives(conn),
            Timer::Answer { conn } => self.answer_arrives(conn),
            Timer::ConnectTimeout { op } => self.connect_times_out(op),
        }
    }

    /// Gives back the bytes of a completion once read, so the network can reuse the vector
    /// (kept in a bounded pool; optional, but a steady workload then stops allocating).
    pub fn recycle(&mut self, bytes: Vec<u8>) {
        self.spare.give(bytes);
    }

    /// Injections of `kind` so far.
    pub fn fault_count(&self, kind: NetFaultKind) -> u64 {
        self.log.count(kind)
    }

    /// Injections by kind, every kind in report order.
    pub fn fault_counts(&self) -> Vec<(&'static str, u64)> {
        NET_FAULT_KINDS.iter().map(|&kind| (kind.name(), self.log.count(kind))).collect()
    }

    /// Moves the fault events recorded since the last drain to `out`, oldest first.
    pub fn drain_events(&mut self, out: &mut Vec<NetEvent>) {
        self.log.drain(out);
    }

    /// Events that did not fit in the bounded list since the network was built.
    pub fn events_dropped(&self) -> u64 {
        self.log.events_dropped
    }

    /// Open sockets of `node` (0 for an unknown node).
    pub fn socket_count(&self, node: u16) -> usize {
        self.ports.get(usize::from(node)).map_or(0, |ports| ports.socket_count)
    }

    /// TCP connections the network holds (connecting, established or reset but still open).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Operations started and not yet finished.
    pub fn pending_count(&self) -> usize {
        self.pending.ops.len()
    }
}
