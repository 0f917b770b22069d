//! The network's fault knobs per link, the fault kinds it counts, and its bounded event list.
//!
//! Knobs follow the house scheme: `*_probability` is a [`Ratio`], delays are integer
//! nanoseconds with `_ns_min` / `_ns_max`. This module validates knobs and records what
//! fired; it draws nothing (see `link`) and applies nothing (see `udp` and `tcp`).

use core::fmt;

use crate::faults::DelayModel;
use crate::prng::Ratio;

use super::{EVENTS_MAX, NetError};

/// The longest delay any knob may ask for (one hour): longer delays are a typo, and the
/// bound keeps every sum of delays far from `u64` overflow.
pub const DELAY_NS_LIMIT: u64 = 3_600_000_000_000;

/// The fault knobs of one directed link (from one node to another).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetFaults {
    /// Smallest one-way latency of a packet.
    pub latency_ns_min: u64,
    /// Largest plain one-way latency (uniform between min and max).
    pub latency_ns_max: u64,
    /// Chance a packet takes the long tail instead (log-spread up to `latency_tail_ns_max`).
    pub latency_tail_probability: Ratio,
    /// Longest tail latency; at least `latency_ns_max` when the tail is on.
    pub latency_tail_ns_max: u64,
    /// Chance a UDP datagram is lost.
    pub udp_loss_probability: Ratio,
    /// Chance a UDP datagram arrives twice.
    pub udp_duplicate_probability: Ratio,
    /// Chance a UDP datagram takes an extra delay, so that later ones overtake it.
    pub udp_reorder_probability: Ratio,
    /// Smallest extra delay of a reordered datagram.
    pub udp_reorder_delay_ns_min: u64,
    /// Largest extra delay of a reordered datagram.
    pub udp_reorder_delay_ns_max: u64,
    /// Chance a UDP datagram's payload has a few bits flipped.
    pub udp_corrupt_probability: Ratio,
    /// Chance a TCP segment (or handshake packet) is "lost" and retransmitted after a
    /// drawn retransmission timeout; drawn again for each retransmission, up to
    /// `RETRANSMITS_PER_SEGMENT_MAX` times.
    pub tcp_retransmit_probability: Ratio,
    /// Smallest retransmission timeout.
    pub tcp_rto_ns_min: u64,
    /// Largest retransmission timeout.
    pub tcp_rto_ns_max: u64,
    /// Chance sending a TCP data segment resets its connection.
    pub tcp_reset_probability: Ratio,
}

impl NetFaults {
    /// A healthy link: 100 to 500 microseconds of latency and no fault.
    pub const HEALTHY: NetFaults = NetFaults::fixed_latency(100_000, 500_000);

    /// No fault, and a plain latency uniform in `latency_ns_min..=latency_ns_max`.
    pub const fn fixed_latency(latency_ns_min: u64, latency_ns_max: u64) -> NetFaults {
        NetFaults {
            latency_ns_min,
            latency_ns_max,
            latency_tail_probability: Ratio::ZERO,
            latency_tail_ns_max: latency_ns_max,
            udp_loss_probability: Ratio::ZERO,
            udp_duplicate_probability: Ratio::ZERO,
            udp_reorder_probability: Ratio::ZERO,
            udp_reorder_delay_ns_min: 0,
            udp_reorder_delay_ns_max: 0,
            udp_corrupt_probability: Ratio::ZERO,
            tcp_retransmit_probability: Ratio::ZERO,
            tcp_rto_ns_min: 200_000_000,
            tcp_rto_ns_max: 400_000_000,
            tcp_reset_probability: Ratio::ZERO,
        }
    }

    /// Checks that every range is ordered and within [`DELAY_NS_LIMIT`].
    pub fn validate(&self) -> Result<(), NetError> {
        let ranges = [
            ("latency_ns", self.latency_ns_min, self.latency_ns_max),
            ("latency_tail_ns", self.latency_ns_max, self.latency_tail_ns_max),
            ("udp_reorder_delay_ns", self.udp_reorder_delay_ns_min, self.udp_reorder_delay_ns_max),
            ("tcp_rto_ns", self.tcp_rto_ns_min, self.tcp_rto_ns_max),
        ];
        for (name, min, max) in ranges {
            if min > max {
                return Err(NetError::BadFaults { knob: name, reason: "min exceeds max" });
            }
            if max > DELAY_NS_LIMIT {
                return Err(NetError::BadFaults { knob: name, reason: "max exceeds one hour" });
            }
        }
        Ok(())
    }

    /// The latency distribution, in the simulator's shared shape (no slow mode here).
    pub(super) fn latency_model(&self) -> DelayModel {
        DelayModel {
            min_ns: self.latency_ns_min,
            max_ns: self.latency_ns_max,
            tail: self.latency_tail_probability,
            tail_max_ns: self.latency_tail_ns_max,
            slow: Ratio::ZERO,
            slow_min_ns: 0,
            slow_max_ns: 0,
        }
    }
}

impl Default for NetFaults {
    fn default() -> NetFaults {
        NetFaults::HEALTHY
    }
}

/// A kind of network fault, counted and reported under a stable kebab-case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum NetFaultKind {
    /// A packet took the long tail of the latency distribution.
    DelayTail = 0,
    /// A UDP datagram was lost.
    UdpLoss = 1,
    /// A UDP datagram was sent twice.
    UdpDuplicate = 2,
    /// A UDP datagram took an extra delay so later ones may overtake it.
    UdpReorder = 3,
    /// A UDP datagram's payload had bits flipped.
    UdpCorrupt = 4,
    /// A TCP segment or handshake packet was retransmitted (once per retransmission).
    TcpRetransmit = 5,
    /// A link was cut (one `partition` or `isolate` call is one injection).
    Partition = 6,
    /// A link was clogged.
    Clog = 7,
    /// A TCP connection was reset by a fault.
    Reset = 8,
}

/// Every network fault kind, in report order.
pub const NET_FAULT_KINDS: [NetFaultKind; 9] = [
    NetFaultKind::DelayTail,
    NetFaultKind::UdpLoss,
    NetFaultKind::UdpDuplicate,
    NetFaultKind::UdpReorder,
    NetFaultKind::UdpCorrupt,
    NetFaultKind::TcpRetransmit,
    NetFaultKind::Partition,
    NetFaultKind::Clog,
    NetFaultKind::Reset,
];

impl NetFaultKind {
    /// The stable kebab-case name the trace and the counters use.
    pub const fn name(self) -> &'static str {
        match self {
            NetFaultKind::DelayTail => "net-delay-tail",
            NetFaultKind::UdpLoss => "net-udp-loss",
            NetFaultKind::UdpDuplicate => "net-udp-duplicate",
            NetFaultKind::UdpReorder => "net-udp-reorder",
            NetFaultKind::UdpCorrupt => "net-udp-corrupt",
            NetFaultKind::TcpRetransmit => "net-tcp-retransmit",
            NetFaultKind::Partition => "net-partition",
            NetFaultKind::Clog => "net-clog",
            NetFaultKind::Reset => "net-reset",
        }
    }
}

impl fmt::Display for NetFaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One fault injection, for the world's trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetEvent {
    /// Virtual time of the injection.
    pub at_ns: u64,
    /// What fired.
    pub kind: NetFaultKind,
    /// The sending node (for `isolate`, the isolated node; for a reset, the connecting side).
    pub from: u16,
    /// The receiving node (for `isolate`, the isolated node; for a reset, the accepting side).
    pub to: u16,
}

/// Fault counters and the bounded list of events not yet drained.
#[derive(Debug, Default)]
pub(super) struct FaultLog {
    counts: [u64; NET_FAULT_KINDS.len()],
    events: Vec<NetEvent>,
    /// Events that did not fit in the list because the world did not drain it in time.
    pub events_dropped: u64,
}

impl FaultLog {
    /// Counts one injection and records its event, if the list has room.
    pub fn inject(&mut self, at_ns: u64, kind: NetFaultKind, from: u16, to: u16) {
        self.counts[kind as usize] += 1;
        if self.events.len() < EVENTS_MAX {
            self.events.push(NetEvent { at_ns, kind, from, to });
        } else {
            self.events_dropped += 1;
        }
    }

    /// Injections of `kind` so far.
    pub fn count(&self, kind: NetFaultKind) -> u64 {
        self.counts[kind as usize]
    }

    /// Moves every recorded event, oldest first, to the end of `out`.
    pub fn drain(&mut self, out: &mut Vec<NetEvent>) {
        out.append(&mut self.events);
    }
}
