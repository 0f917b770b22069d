//! Directed links between nodes: their fault knobs, their PRNG streams, and whether they are
//! cut (partitioned) or clogged.
//!
//! A link is created on first use, so memory grows with the pairs that talk, not with the
//! square of the node count. Each link draws from its own streams, one per fault kind, so
//! traffic between two nodes never changes the draws between two others, and switching one
//! fault kind on never changes the draws of another. This module draws delays and fault
//! decisions; it does not move packets (see `udp` and `tcp`).

use std::collections::{BTreeMap, VecDeque};

use crate::faults::Delay;
use crate::prng::{PrngTree, Scope, Stream};

use super::RETRANSMITS_PER_SEGMENT_MAX;
use super::faults::{FaultLog, NetFaultKind, NetFaults};

/// One stream per decision a link makes.
#[derive(Debug)]
struct LinkStreams {
    latency: Stream,
    loss: Stream,
    duplicate: Stream,
    reorder: Stream,
    corrupt: Stream,
    retransmit: Stream,
    reset: Stream,
}

impl LinkStreams {
    /// The streams of the link `from -> to`: node-scoped sites of the sending node, named
    /// `net.link.<decision>.to-<to>`, which no other site of the tree uses.
    fn new(tree: &PrngTree, from: u16, to: u16) -> LinkStreams {
        let stream = |decision: &str| {
            tree.stream(Scope::Node { node: from }, &format!("net.link.{decision}.to-{to}"))
        };
        LinkStreams {
            latency: stream("latency"),
            loss: stream("loss"),
            duplicate: stream("duplicate"),
            reorder: stream("reorder"),
            corrupt: stream("corrupt"),
            retransmit: stream("retransmit"),
            reset: stream("reset"),
        }
    }
}

/// One directed link.
#[derive(Debug)]
pub(super) struct Link {
    pub from: u16,
    pub to: u16,
    pub faults: NetFaults,
    /// Cut by a partition: UDP datagrams are lost, TCP packets wait.
    pub cut: bool,
    /// Clogged: every packet waits, in order, until the link is unclogged.
    pub clogged: bool,
    /// UDP datagrams (by flight id) that reached the link's far end while it was clogged,
    /// in arrival order.
    pub held: VecDeque<u64>,
    /// When the last in-order UDP datagram on this link arrives: paths keep datagrams in
    /// order unless the reorder knob says otherwise.
    pub udp_last_arrival_ns: u64,
    streams: LinkStreams,
}

/// A packet's delay and the faults that shaped it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Drawn {
    pub delay_ns: u64,
    pub tail: bool,
    pub retransmits: u32,
}

impl Link {
    /// Whether packets pass right now.
    pub fn open(&self) -> bool {
        !self.cut && !self.clogged
    }

    /// One packet's one-way latency.
    pub fn latency(&mut self) -> Drawn {
        let model = self.faults.latency_model();
        match model.draw(&mut self.streams.latency) {
            Delay::Tail(delay_ns) => Drawn { delay_ns, tail: true, retransmits: 0 },
            Delay::Plain(delay_ns) | Delay::Slow(delay_ns) => {
                Drawn { delay_ns, tail: false, retransmits: 0 }
            }
        }
    }

    /// One TCP packet's delay: its latency plus one drawn timeout per retransmission.
    pub fn tcp_delay(&mut self) -> Drawn {
        let mut drawn = self.latency();
        for _ in 0..RETRANSMITS_PER_SEGMENT_MAX {
            if !self.streams.retransmit.chance(self.faults.tcp_retransmit_probability) {
                break;
            }
            let rto = self
                .streams
                .retransmit
                .range_inclusive(self.faults.tcp_rto_ns_min, self.faults.tcp_rto_ns_max);
            drawn.delay_ns = drawn.delay_ns.saturating_add(rto);
            drawn.retransmits += 1;
        }
        drawn
    }

    /// Counts the faults that shaped `drawn`.
    pub fn record(&self, log: &mut FaultLog, now_ns: u64, drawn: Drawn) {
        if drawn.tail {
            log.inject(now_ns, NetFaultKind::DelayTail, self.from, self.to);
        }
        for _ in 0..drawn.retransmits {
            log.inject(now_ns, NetFaultKind::TcpRetransmit, self.from, self.to);
        }
    }

    /// Whether the next datagram is lost.
    pub fn draw_loss(&mut self) -> bool {
        self.streams.loss.chance(self.faults.udp_loss_probability)
    }

    /// Whether the next datagram is duplicated.
    pub fn draw_duplicate(&mut self) -> bool {
        self.streams.duplicate.chance(self.faults.udp_duplicate_probability)
    }

    /// The extra delay of the next datagram, if it is reordered.
    pub fn draw_reorder(&mut self) -> Option<u64> {
        let stream = &mut self.streams.reorder;
        stream.chance(self.faults.udp_reorder_probability).then(|| {
            stream.range_inclusive(
                self.faults.udp_reorder_delay_ns_min,
                self.faults.udp_reorder_delay_ns_max,
            )
        })
    }

    /// Flips between one and `CORRUPT_BITS_MAX` bits of `bytes` if the corrupt knob fires;
    /// returns whether it did. An empty payload has no bit to flip and is never corrupted.
    pub fn draw_corrupt(&mut self, bytes: &mut [u8]) -> bool {
        let stream = &mut self.streams.corrupt;
        if !stream.chance(self.faults.udp_corrupt_probability) || bytes.is_empty() {
            return false;
        }
        let flips = stream.range_inclusive(1, super::CORRUPT_BITS_MAX) as usize;
        let mut flipped = [usize::MAX; super::CORRUPT_BITS_MAX as usize];
        for index in 0..flips {
            let bit = stream.choose_index(bytes.len() * 8);
            // Flipping a bit twice would undo the corruption: a repeated draw flips nothing,
            // and the first draw always flips, so the payload always changes.
            if !flipped.contains(&bit) {
                flipped[index] = bit;
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
        }
        true
    }

    /// Whether sending the next TCP data segment resets its connection.
    pub fn draw_reset(&mut self) -> bool {
        self.streams.reset.chance(self.faults.tcp_reset_probability)
    }
}

/// Every link that has been used or configured, by `(from, to)`.
#[derive(Debug)]
pub(super) struct Links {
    tree: PrngTree,
    default_faults: NetFaults,
    map: BTreeMap<(u16, u16), Link>,
}

impl Links {
    pub fn new(tree: PrngTree, default_faults: NetFaults) -> Links {
        Links { tree, default_faults, map: BTreeMap::new() }
    }

    /// Gives every link, those that exist and those created later, the knobs `faults`.
    pub fn set_all(&mut self, faults: NetFaults) {
        self.default_faults = faults;
        for link in self.map.values_mut() {
            link.faults = faults;
        }
    }

    /// The link `from -> to`, created with the default knobs on first use.
    pub fn get(&mut self, from: u16, to: u16) -> &mut Link {
        let (tree, faults) = (&self.tree, self.default_faults);
        self.map.entry((from, to)).or_insert_with(|| Link {
            from,
            to,
            faults,
            cut: false,
            clogged: false,
            held: VecDeque::new(),
            udp_last_arrival_ns: 0,
            streams: LinkStreams::new(tree, from, to),
        })
    }

    /// Whether packets pass `from -> to` right now (an unused link is open).
    pub fn open(&self, from: u16, to: u16) -> bool {
        self.map.get(&(from, to)).is_none_or(Link::open)
    }

    /// Every link, in `(from, to)` order.
    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut Link> {
        self.map.values_mut()
    }
}
