//! What the world around the core did, as the trace reports it: faults injected, shards
//! stalled, crashed, restarted, quarantined and revived, nodes crashed and restarted,
//! clocks skewed and jumped, phases changed.
//!
//! The core's own steps are `tina::Event`s; these are the steps of whatever runs the core
//! (the simulator's world). Both go through one trace: hashed, logged and shown to every
//! observer in the order they happened, so a checker can tell a message lost to a node crash
//! from one lost by a bug. This module is vocabulary only; it decides and checks nothing.

use tina::{Handle, Label, MessageId};

/// The phase of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Faults are injected.
    Safety = 0,
    /// Faults stopped, what can heal was healed; the goal must be reached within a bound.
    Liveness = 1,
}

impl Phase {
    /// Lower-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Safety => "safety",
            Phase::Liveness => "liveness",
        }
    }
}

/// One step of the world. Its stamp names the node, and the shard it concerns, or
/// `ShardId::EXTERNAL` for the node as a whole (its clock, its crash and restart, a phase).
///
/// Exhaustive on purpose: the simulator's encoder and log format match every kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorldEvent {
    /// The node's clock reads `offset_ns` ahead of true time at boot and runs `drift_ppm`
    /// parts per million fast (slow when negative). Stamped at the node's boot.
    ClockSkew {
        /// Offset at true time zero, in nanoseconds.
        offset_ns: u64,
        /// Rate error in parts per million.
        drift_ppm: i32,
    },
    /// The node's clock jumped forward.
    ClockJump {
        /// How far, in nanoseconds.
        by_ns: u64,
    },
    /// A cross-shard message took the long tail of the delay distribution.
    DelayTail {
        /// The message.
        id: MessageId,
        /// Its delay, in nanoseconds.
        delay_ns: u64,
    },
    /// A cross-shard message took the slow mode of a bimodal delay distribution.
    DelaySlow {
        /// The message.
        id: MessageId,
        /// Its delay, in nanoseconds.
        delay_ns: u64,
    },
    /// The shard is not scheduled for a while (a descheduled thread).
    ShardStall {
        /// How long, in nanoseconds of true time.
        for_ns: u64,
    },
    /// An isolate is made to crash before its next dispatch.
    IsolateCrash {
        /// The incarnation.
        handle: Handle,
    },
    /// A spawned isolate's `init` is made to fail.
    InitFailure {
        /// The incarnation whose `init` fails.
        handle: Handle,
    },
    /// The shard failed as a whole: every isolate on it stops at once, and it is down until
    /// it restarts or, past its restart budget, until it is revived.
    ShardCrash,
    /// A crashed shard boots its supervision tree again.
    ShardRestart,
    /// A crashed shard exceeded its restart budget: it stays down until revived.
    ShardQuarantine,
    /// A quarantined shard was revived (by a request or by the liveness phase's healing).
    ShardRevive,
    /// The node crashed: every shard, isolate and message in it is gone; nothing of it
    /// survives but its clock.
    NodeCrash,
    /// The node booted again from its spec.
    NodeRestart,
    /// A `ctx.buggify` site fired.
    Buggify {
        /// The site.
        site: Label,
    },
    /// A `ctx.buggify` site was asked for the first time in the run and is active: it may
    /// fire from now on.
    BuggifyActive {
        /// The site.
        site: Label,
    },
    /// The run entered a phase.
    Phase {
        /// The phase.
        phase: Phase,
    },
    /// A disk operation of the shard's isolate failed with an injected I/O error.
    DiskError,
    /// A disk fsync of the shard's isolate failed; the data stays unsynced.
    DiskFsyncFailure,
    /// A disk read of the shard's isolate returned flipped bits.
    DiskCorruption,
    /// A disk write of the shard's isolate found the disk full.
    DiskFull,
    /// The network injected a fault on the link from this node to `peer` (for a partition
    /// that isolates a node, `peer` is the node itself).
    NetFault {
        /// The fault's kind (`net-udp-loss`, `net-partition`, ...).
        fault: Label,
        /// The other end of the link.
        peer: u16,
    },
    /// The run's graceful shutdown began (`sim --shutdown-at`): fault injection stopped,
    /// nothing that is down comes back, and every shard that is up began its shutdown, its
    /// drain ending `drain_ns` later on its node's clock. Stamped with node 0, for the world
    /// as a whole.
    Shutdown {
        /// The drain's length, in nanoseconds.
        drain_ns: u64,
    },
    /// The node crashed with writes its disk had not made durable: each was lost, torn at
    /// sector boundaries, or kept (fsynced data always survives).
    DiskCrash {
        /// Unsynced writes lost.
        lost: u32,
        /// Unsynced writes torn.
        torn: u32,
        /// Unsynced writes kept.
        kept: u32,
    },
}
