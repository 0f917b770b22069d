//! How a network is sized ([`NetConfig`]) and why a call on it was refused ([`NetError`]).
//!
//! This module validates; it holds no state of a running network.

use core::fmt;

use super::faults::{DELAY_NS_LIMIT, NetFaults};
use super::{NODE_COUNT_MAX, STREAM_BUFFER_SIZE_MAX, UDP_QUEUE_DATAGRAMS_MAX};

/// The sizes a network is built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The knobs of every link not given its own with [`Net::set_link_faults`](super::Net::set_link_faults).
    pub faults: NetFaults,
    /// Bytes a TCP socket buffers between `send` and the wire.
    pub send_buffer_size: u32,
    /// Bytes a TCP socket buffers between the wire and `recv` (the flow-control window).
    pub receive_buffer_size: u32,
    /// Datagrams a UDP socket queues before dropping new ones.
    pub udp_queue_datagrams: u32,
    /// How long a TCP connect waits for an answer before failing with `TimedOut`.
    pub connect_timeout_ns: u64,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            faults: NetFaults::HEALTHY,
            send_buffer_size: 64 * 1024,
            receive_buffer_size: 64 * 1024,
            udp_queue_datagrams: 64,
            connect_timeout_ns: 10_000_000_000,
        }
    }
}

impl NetConfig {
    /// Checks every size against its limit and every knob.
    pub fn validate(&self) -> Result<(), NetError> {
        let sizes = [
            ("send_buffer_size", self.send_buffer_size, STREAM_BUFFER_SIZE_MAX),
            ("receive_buffer_size", self.receive_buffer_size, STREAM_BUFFER_SIZE_MAX),
            ("udp_queue_datagrams", self.udp_queue_datagrams, UDP_QUEUE_DATAGRAMS_MAX),
        ];
        for (name, value, max) in sizes {
            if value == 0 || value > max {
                return Err(NetError::BadSize {
                    name,
                    value: u64::from(value),
                    max: u64::from(max),
                });
            }
        }
        if self.connect_timeout_ns == 0 || self.connect_timeout_ns > DELAY_NS_LIMIT {
            return Err(NetError::BadSize {
                name: "connect_timeout_ns",
                value: self.connect_timeout_ns,
                max: DELAY_NS_LIMIT,
            });
        }
        self.faults.validate()
    }
}

/// Why the network refused a call: always the caller's input, never an internal state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The node count is 0 or above [`NODE_COUNT_MAX`].
    NodeCount {
        /// The count given.
        node_count: u16,
    },
    /// The node does not exist.
    NoSuchNode {
        /// The node given.
        node: u16,
        /// How many nodes there are.
        node_count: u16,
    },
    /// A node cannot be cut or clogged from itself.
    SelfLink {
        /// The node given twice.
        node: u16,
    },
    /// A size is 0 or above its limit.
    BadSize {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: u64,
        /// Its limit.
        max: u64,
    },
    /// A fault knob is out of range.
    BadFaults {
        /// The knob (a range's common prefix).
        knob: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::NodeCount { node_count } => {
                write!(f, "{node_count} nodes: a network has 1 to {NODE_COUNT_MAX}")
            }
            NetError::NoSuchNode { node, node_count } => {
                write!(f, "no node {node}: the network has {node_count} nodes")
            }
            NetError::SelfLink { node } => write!(f, "node {node} cannot be cut from itself"),
            NetError::BadSize { name, value, max } => {
                write!(f, "{name} = {value}: it must be between 1 and {max}")
            }
            NetError::BadFaults { knob, reason } => write!(f, "fault knob {knob}: {reason}"),
        }
    }
}

impl std::error::Error for NetError {}
