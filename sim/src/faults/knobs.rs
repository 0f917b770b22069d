//! Fault knobs and profiles: every fault the simulator can inject is a named knob with a
//! default per profile, set with `--faults PROFILE` and `--fault NAME=VALUE`, checked
//! before a run starts.
//!
//! Knobs follow one scheme: `*_probability` is a `Ratio` (exact integers: `1/20`, `0.05`
//! or `5%`), `*_every` is the mean time between occurrences per node (0: off), durations
//! are `<integer><ns|us|ms|s|m|h>`, drift is in parts per million. The `swarm` profile
//! draws from the seed which fault kinds are on and how often, as swarm testing does.
//!
//! This module parses and validates; it injects nothing (see `faults`).

use core::fmt;

use crate::config::{format_duration, parse_duration};
use crate::prng::{PrngTree, Ratio, Scope, Seed};

/// A family of faults, counted as one kind in the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum FaultKind {
    /// A cross-shard message takes the long tail of the delay distribution.
    DelayTail = 0,
    /// A cross-shard message takes the slow mode of a bimodal delay distribution.
    DelaySlow = 1,
    /// A shard is not scheduled for a while.
    ShardStall = 2,
    /// An isolate crashes before its next dispatch.
    IsolateCrash = 3,
    /// A spawned isolate's `init` fails.
    InitFailure = 4,
    /// A whole shard crashes and recovers (restart, quarantine, revival).
    ShardCrash = 5,
    /// A whole node crashes and restarts.
    NodeCrash = 6,
    /// A node's clock is offset and drifts.
    ClockSkew = 7,
    /// A node's clock jumps forward.
    ClockJump = 8,
    /// A `ctx.buggify` site fires.
    Buggify = 9,
    /// A disk read or write fails with an I/O error.
    DiskError = 10,
    /// A disk fsync fails; what it should have made durable stays unsynced.
    DiskFsyncFailure = 11,
    /// A disk read returns flipped bits (the stored bytes are intact).
    DiskCorruption = 12,
    /// A disk write finds the disk full.
    DiskFull = 13,
    /// A packet between nodes takes the long tail of the latency distribution.
    NetDelayTail = 14,
    /// A UDP datagram is lost.
    NetUdpLoss = 15,
    /// A UDP datagram arrives twice.
    NetUdpDuplicate = 16,
    /// A UDP datagram is delayed so later ones overtake it.
    NetUdpReorder = 17,
    /// A UDP datagram's payload has bits flipped.
    NetUdpCorrupt = 18,
    /// A TCP segment is lost and retransmitted (shows as delay, never as bad data).
    NetTcpRetransmit = 19,
    /// A link between two nodes is cut (both ways, one way, or a node isolated).
    NetPartition = 20,
    /// A link holds every packet for a while, then releases them in order.
    NetClog = 21,
    /// A TCP connection is reset.
    NetReset = 22,
}

/// Every fault kind, in summary order.
pub const FAULT_KINDS: [FaultKind; 23] = [
    FaultKind::DelayTail,
    FaultKind::DelaySlow,
    FaultKind::ShardStall,
    FaultKind::IsolateCrash,
    FaultKind::InitFailure,
    FaultKind::ShardCrash,
    FaultKind::NodeCrash,
    FaultKind::ClockSkew,
    FaultKind::ClockJump,
    FaultKind::Buggify,
    FaultKind::DiskError,
    FaultKind::DiskFsyncFailure,
    FaultKind::DiskCorruption,
    FaultKind::DiskFull,
    FaultKind::NetDelayTail,
    FaultKind::NetUdpLoss,
    FaultKind::NetUdpDuplicate,
    FaultKind::NetUdpReorder,
    FaultKind::NetUdpCorrupt,
    FaultKind::NetTcpRetransmit,
    FaultKind::NetPartition,
    FaultKind::NetClog,
    FaultKind::NetReset,
];

impl FaultKind {
    /// Kebab-case name, as `--json` and the `counters:` line write it.
    pub const fn name(self) -> &'static str {
        match self {
            FaultKind::DelayTail => "delay-tail",
            FaultKind::DelaySlow => "delay-slow",
            FaultKind::ShardStall => "shard-stall",
            FaultKind::IsolateCrash => "isolate-crash",
            FaultKind::InitFailure => "init-failure",
            FaultKind::ShardCrash => "shard-crash",
            FaultKind::NodeCrash => "node-crash",
            FaultKind::ClockSkew => "clock-skew",
            FaultKind::ClockJump => "clock-jump",
            FaultKind::Buggify => "buggify",
            FaultKind::DiskError => "disk-error",
            FaultKind::DiskFsyncFailure => "disk-fsync-failure",
            FaultKind::DiskCorruption => "disk-corruption",
            FaultKind::DiskFull => "disk-full",
            FaultKind::NetDelayTail => "net-delay-tail",
            FaultKind::NetUdpLoss => "net-udp-loss",
            FaultKind::NetUdpDuplicate => "net-udp-duplicate",
            FaultKind::NetUdpReorder => "net-udp-reorder",
            FaultKind::NetUdpCorrupt => "net-udp-corrupt",
            FaultKind::NetTcpRetransmit => "net-tcp-retransmit",
            FaultKind::NetPartition => "net-partition",
            FaultKind::NetClog => "net-clog",
            FaultKind::NetReset => "net-reset",
        }
    }

    /// One line for `sim list`.
    pub const fn description(self) -> &'static str {
        match self {
            FaultKind::DelayTail => {
                "a cross-shard message takes the long tail of the delay distribution"
            }
            FaultKind::DelaySlow => {
                "a cross-shard message takes the slow mode of a bimodal delay distribution"
            }
            FaultKind::ShardStall => "a shard is not scheduled for a while (a descheduled thread)",
            FaultKind::IsolateCrash => "an isolate crashes before its next dispatch",
            FaultKind::InitFailure => "a spawned isolate's init fails",
            FaultKind::ShardCrash => {
                "a shard fails as a whole: restart within a budget, then quarantine"
            }
            FaultKind::NodeCrash => {
                "a node crashes (nothing of it survives) and restarts from its spec"
            }
            FaultKind::ClockSkew => "a node's clock is offset from true time and drifts",
            FaultKind::ClockJump => "a node's clock jumps forward",
            FaultKind::Buggify => "a ctx.buggify site fires (sites are activated per run)",
            FaultKind::DiskError => "a disk read or write fails with an I/O error",
            FaultKind::DiskFsyncFailure => {
                "a disk fsync fails; the data it should have made durable stays unsynced"
            }
            FaultKind::DiskCorruption => "a disk read returns flipped bits (stored bytes intact)",
            FaultKind::DiskFull => {
                "a disk write finds the disk full (space taken by others, or disk_capacity)"
            }
            FaultKind::NetDelayTail => {
                "a packet between nodes takes the long tail of the latency distribution"
            }
            FaultKind::NetUdpLoss => "a UDP datagram is lost",
            FaultKind::NetUdpDuplicate => "a UDP datagram arrives twice",
            FaultKind::NetUdpReorder => "a UDP datagram is delayed so later ones overtake it",
            FaultKind::NetUdpCorrupt => "a UDP datagram's payload has bits flipped",
            FaultKind::NetTcpRetransmit => {
                "a TCP segment is lost and retransmitted (shows as delay, never as bad data)"
            }
            FaultKind::NetPartition => {
                "a link between two nodes is cut (both ways, one way, or a node isolated)"
            }
            FaultKind::NetClog => {
                "a link holds every packet for a while, then releases them in order"
            }
            FaultKind::NetReset => "a TCP connection is reset",
        }
    }
}

/// A named set of knob values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// No fault at all, no phases: the run is judged as it goes.
    None,
    /// Faults a healthy production system sees every day: delay spikes, short stalls,
    /// skewed clocks, buggify. No crashes.
    Default,
    /// Every fault kind on, at rates that make most runs meet most of them.
    Chaos,
    /// The seed picks which fault kinds are on and how often (from the chaos rates).
    Swarm,
}

/// Every profile, in the order `sim list` shows them.
pub const PROFILES: [Profile; 4] =
    [Profile::None, Profile::Default, Profile::Chaos, Profile::Swarm];

impl Profile {
    /// Lower-case name, as `--faults` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::None => "none",
            Profile::Default => "default",
            Profile::Chaos => "chaos",
            Profile::Swarm => "swarm",
        }
    }

    /// The profile called `name`.
    pub fn parse(name: &str) -> Result<Profile, KnobError> {
        PROFILES
            .into_iter()
            .find(|profile| profile.name() == name)
            .ok_or_else(|| KnobError::UnknownProfile { name: name.to_string() })
    }
}

/// How a knob's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnobKind {
    /// A probability (`N/D`, a decimal like `0.05`, or a percentage like `5%`).
    Probability,
    /// A duration `<integer><ns|us|ms|s|m|h>`.
    Duration,
    /// A plain count.
    Count,
    /// Parts per million.
    Ppm,
}

/// A knob's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// For `Probability` knobs.
    Ratio(Ratio),
    /// Nanoseconds, a count or parts per million.
    Number(u64),
}

impl Value {
    fn write(self, kind: KnobKind) -> String {
        match (self, kind) {
            (Value::Ratio(ratio), _) => ratio.to_string(),
            (Value::Number(nanos), KnobKind::Duration) => format_duration(nanos),
            (Value::Number(number), _) => number.to_string(),
        }
    }
}

/// One knob.
#[derive(Clone, Copy, Debug)]
pub struct Knob {
    /// The name `--fault NAME=VALUE` takes.
    pub name: &'static str,
    /// How its value is written.
    pub kind: KnobKind,
    /// The fault kind it switches on (a non-zero value), if it is a switch; the other knobs
    /// size a kind or the phases.
    pub switch: Option<FaultKind>,
    /// Values in the `none`, `default` and `chaos` profiles.
    pub values: [Value; 3],
    /// Largest value (for numbers; probabilities stop at 1).
    pub max: u64,
    /// One line for `sim list`.
    pub description: &'static str,
}

const fn ratio(numerator: u32, denominator: u32) -> Value {
    match Ratio::new(numerator, denominator) {
        Ok(ratio) => Value::Ratio(ratio),
        Err(_) => panic!("a knob default is a probability"),
    }
}

const fn n(number: u64) -> Value {
    Value::Number(number)
}

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const HOUR: u64 = 3_600 * S;

/// Names every knob by its position in `KNOBS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
#[allow(missing_docs, reason = "each knob is described in KNOBS")]
pub enum K {
    DelayTailProbability,
    DelayTailMax,
    DelaySlowProbability,
    DelaySlowMin,
    DelaySlowMax,
    ShardStallEvery,
    ShardStallMax,
    IsolateCrashEvery,
    InitFailureProbability,
    ShardCrashEvery,
    ShardRestartDelayMax,
    ShardRestartMax,
    ShardRestartWindow,
    NodeCrashEvery,
    NodeRestartDelayMax,
    ClockOffsetMax,
    ClockDriftMax,
    ClockJumpEvery,
    ClockJumpMax,
    BuggifySiteProbability,
    BuggifyFireProbability,
    DiskLatencyMin,
    DiskLatencyMax,
    DiskErrorProbability,
    DiskFsyncFailureProbability,
    DiskCorruptionProbability,
    DiskFullProbability,
    DiskCapacity,
    NetDelayTailProbability,
    NetDelayTailMax,
    NetUdpLossProbability,
    NetUdpDuplicateProbability,
    NetUdpReorderProbability,
    NetUdpReorderDelayMax,
    NetUdpCorruptProbability,
    NetTcpRetransmitProbability,
    NetTcpResetProbability,
    NetPartitionEvery,
    NetPartitionMax,
    NetClogEvery,
    NetClogMax,
    SafetyTime,
    LivenessTime,
    LivenessRevive,
}

/// Every knob, in the order of `K`.
pub const KNOBS: [Knob; 44] = [
    Knob {
        name: "delay_tail_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::DelayTail),
        values: [ratio(0, 1), ratio(1, 100), ratio(1, 20)],
        max: 0,
        description: "chance a cross-shard message takes the long tail (beyond net_delay_max)",
    },
    Knob {
        name: "delay_tail_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(100 * MS), n(100 * MS), n(250 * MS)],
        max: HOUR,
        description: "longest delay of the tail",
    },
    Knob {
        name: "delay_slow_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::DelaySlow),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 10)],
        max: 0,
        description: "chance a cross-shard message takes the slow mode (bimodal fast/slow)",
    },
    Knob {
        name: "delay_slow_min",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(20 * MS), n(20 * MS), n(20 * MS)],
        max: HOUR,
        description: "shortest delay of the slow mode",
    },
    Knob {
        name: "delay_slow_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(50 * MS), n(50 * MS), n(50 * MS)],
        max: HOUR,
        description: "longest delay of the slow mode",
    },
    Knob {
        name: "shard_stall_every",
        kind: KnobKind::Duration,
        switch: Some(FaultKind::ShardStall),
        values: [n(0), n(S), n(200 * MS)],
        max: HOUR,
        description: "mean time between stalls of one of a node's shards (0: off)",
    },
    Knob {
        name: "shard_stall_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(5 * MS), n(5 * MS), n(30 * MS)],
        max: HOUR,
        description: "longest stall",
    },
    Knob {
        name: "isolate_crash_every",
        kind: KnobKind::Duration,
        switch: Some(FaultKind::IsolateCrash),
        values: [n(0), n(0), n(250 * MS)],
        max: HOUR,
        description: "mean time between crashes of one of a node's isolates (0: off)",
    },
    Knob {
        name: "init_failure_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::InitFailure),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 50)],
        max: 0,
        description: "chance a spawned isolate's init fails",
    },
    Knob {
        name: "shard_crash_every",
        kind: KnobKind::Duration,
        switch: Some(FaultKind::ShardCrash),
        values: [n(0), n(0), n(S)],
        max: HOUR,
        description: "mean time between crashes of one of a node's shards (0: off)",
    },
    Knob {
        name: "shard_restart_delay_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(10 * MS), n(10 * MS), n(10 * MS)],
        max: HOUR,
        description: "longest time a crashed shard stays down before it restarts",
    },
    Knob {
        name: "shard_restart_max",
        kind: KnobKind::Count,
        switch: None,
        values: [n(3), n(3), n(3)],
        max: 4096,
        description: "shard restarts allowed within shard_restart_window before quarantine",
    },
    Knob {
        name: "shard_restart_window",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(10 * S), n(10 * S), n(10 * S)],
        max: HOUR,
        description: "the sliding window of the shard restart budget (node clock)",
    },
    Knob {
        name: "node_crash_every",
        kind: KnobKind::Duration,
        switch: Some(FaultKind::NodeCrash),
        values: [n(0), n(0), n(3 * S)],
        max: HOUR,
        description: "mean time between crashes of each node (0: off)",
    },
    Knob {
        name: "node_restart_delay_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(100 * MS), n(100 * MS), n(100 * MS)],
        max: HOUR,
        description: "longest time a crashed node stays down before it restarts",
    },
    Knob {
        name: "clock_offset_max",
        kind: KnobKind::Duration,
        switch: Some(FaultKind::ClockSkew),
        values: [n(0), n(S), n(10 * S)],
        max: HOUR,
        description: "largest offset of a node's clock from true time",
    },
    Knob {
        name: "clock_drift_max",
        kind: KnobKind::Ppm,
        switch: Some(FaultKind::ClockSkew),
        values: [n(0), n(100), n(1000)],
        max: 100_000,
        description: "largest rate error of a node's clock, in parts per million either way",
    },
    Knob {
        name: "clock_jump_every",
        kind: KnobKind::Duration,
        switch: Some(FaultKind::ClockJump),
        values: [n(0), n(0), n(S)],
        max: HOUR,
        description: "mean time between forward jumps of each node's clock (0: off)",
    },
    Knob {
        name: "clock_jump_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(100 * MS), n(100 * MS), n(500 * MS)],
        max: HOUR,
        description: "largest clock jump",
    },
    Knob {
        name: "buggify_site_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::Buggify),
        values: [ratio(0, 1), ratio(1, 4), ratio(1, 2)],
        max: 0,
        description: "chance a ctx.buggify site is active for the run",
    },
    Knob {
        name: "buggify_fire_probability",
        kind: KnobKind::Probability,
        switch: None,
        values: [ratio(0, 1), ratio(1, 100), ratio(1, 20)],
        max: 0,
        description: "chance an active site fires at each call",
    },
    Knob {
        name: "disk_latency_min",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(0), n(50 * US), n(50 * US)],
        max: crate::disk::LATENCY_NS_MAX,
        description: "shortest time a disk operation takes",
    },
    Knob {
        name: "disk_latency_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(0), n(2 * MS), n(20 * MS)],
        max: crate::disk::LATENCY_NS_MAX,
        description: "longest time a disk operation takes",
    },
    Knob {
        name: "disk_error_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::DiskError),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 100)],
        max: 0,
        description: "chance a disk read or write fails (nothing is written)",
    },
    Knob {
        name: "disk_fsync_failure_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::DiskFsyncFailure),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 50)],
        max: 0,
        description: "chance a disk fsync fails (the data stays unsynced)",
    },
    Knob {
        name: "disk_corruption_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::DiskCorruption),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 200)],
        max: 0,
        description: "chance a disk read returns flipped bits",
    },
    Knob {
        name: "disk_full_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::DiskFull),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 100)],
        max: 0,
        description: "chance a disk write finds the disk full (space taken by others)",
    },
    Knob {
        name: "disk_capacity",
        kind: KnobKind::Count,
        switch: None,
        values: [n(256 << 20), n(256 << 20), n(1 << 20)],
        max: crate::disk::CAPACITY_BYTES_MAX,
        description: "bytes each node's disk holds; a write beyond fails as disk-full",
    },
    Knob {
        name: "net_delay_tail_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::NetDelayTail),
        values: [ratio(0, 1), ratio(1, 100), ratio(1, 20)],
        max: 0,
        description: "chance a packet between nodes takes the long tail (beyond net_delay_max)",
    },
    Knob {
        name: "net_delay_tail_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(100 * MS), n(100 * MS), n(250 * MS)],
        max: crate::net::DELAY_NS_LIMIT,
        description: "longest latency of the tail between nodes",
    },
    Knob {
        name: "net_udp_loss_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::NetUdpLoss),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 20)],
        max: 0,
        description: "chance a UDP datagram is lost",
    },
    Knob {
        name: "net_udp_duplicate_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::NetUdpDuplicate),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 50)],
        max: 0,
        description: "chance a UDP datagram arrives twice",
    },
    Knob {
        name: "net_udp_reorder_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::NetUdpReorder),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 20)],
        max: 0,
        description: "chance a UDP datagram is held back so later ones overtake it",
    },
    Knob {
        name: "net_udp_reorder_delay_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(20 * MS), n(20 * MS), n(20 * MS)],
        max: crate::net::DELAY_NS_LIMIT,
        description: "longest extra delay of a reordered datagram",
    },
    Knob {
        name: "net_udp_corrupt_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::NetUdpCorrupt),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 100)],
        max: 0,
        description: "chance a UDP datagram's payload has bits flipped",
    },
    Knob {
        name: "net_tcp_retransmit_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::NetTcpRetransmit),
        values: [ratio(0, 1), ratio(1, 100), ratio(1, 20)],
        max: 0,
        description: "chance a TCP segment is lost and retransmitted after a timeout",
    },
    Knob {
        name: "net_tcp_reset_probability",
        kind: KnobKind::Probability,
        switch: Some(FaultKind::NetReset),
        values: [ratio(0, 1), ratio(0, 1), ratio(1, 2000)],
        max: 0,
        description: "chance a TCP segment resets its connection",
    },
    Knob {
        name: "net_partition_every",
        kind: KnobKind::Duration,
        switch: Some(FaultKind::NetPartition),
        values: [n(0), n(0), n(2 * S)],
        max: HOUR,
        description: "mean time between partitions from each node: a link cut both ways, one way, or the node isolated (0: off)",
    },
    Knob {
        name: "net_partition_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(S), n(S), n(S)],
        max: HOUR,
        description: "longest a partition lasts",
    },
    Knob {
        name: "net_clog_every",
        kind: KnobKind::Duration,
        switch: Some(FaultKind::NetClog),
        values: [n(0), n(0), n(2 * S)],
        max: HOUR,
        description: "mean time between clogs of a link from each node (0: off)",
    },
    Knob {
        name: "net_clog_max",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(200 * MS), n(200 * MS), n(200 * MS)],
        max: HOUR,
        description: "longest a clog holds a link's packets",
    },
    Knob {
        name: "safety_time",
        kind: KnobKind::Duration,
        switch: None,
        values: [n(2 * S), n(2 * S), n(2 * S)],
        max: HOUR,
        description: "length of the safety phase, when faults are injected (true time)",
    },
    Knob {
        name: "liveness_time",
        kind: KnobKind::Duration,
        switch: None,
        // The default profile injects no crash, and long workloads run under it: its bound
        // is the default time limit's. Under chaos a minute shows what does not heal.
        values: [n(60 * S), n(HOUR), n(60 * S)],
        max: HOUR,
        description: "after the safety phase: the bound within which the goal must be reached",
    },
    Knob {
        name: "liveness_revive",
        kind: KnobKind::Count,
        switch: None,
        values: [n(1), n(1), n(1)],
        max: 1,
        description: "1: the liveness phase revives quarantined shards; 0: they stay down",
    },
];

/// A bad `--faults` or `--fault`, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KnobError {
    /// A profile name that does not exist.
    UnknownProfile {
        /// The name given.
        name: String,
    },
    /// `--fault` without `=`.
    Syntax(String),
    /// A knob that does not exist.
    UnknownKnob {
        /// The name given.
        name: String,
    },
    /// A value that does not parse or is out of range.
    BadValue {
        /// The knob.
        knob: &'static str,
        /// The value given.
        value: String,
        /// What to write instead.
        expected: String,
    },
    /// A range whose minimum is above its maximum.
    Inverted {
        /// The knob of the minimum.
        min: &'static str,
        /// The knob of the maximum.
        max: &'static str,
    },
    /// A configuration under which the liveness phase could never finish.
    NeverLive(String),
}

impl fmt::Display for KnobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KnobError::UnknownProfile { name } => write!(
                f,
                "unknown fault profile {name:?}; valid profiles: none, default, chaos, swarm"
            ),
            KnobError::Syntax(text) => write!(
                f,
                "invalid --fault {text:?}: write NAME=VALUE, for example --fault shard_crash_every=500ms"
            ),
            KnobError::UnknownKnob { name } => {
                let valid: Vec<&str> = KNOBS.iter().map(|knob| knob.name).collect();
                write!(f, "unknown fault knob {name:?}; valid knobs: {}", valid.join(", "))
            }
            KnobError::BadValue { knob, value, expected } => {
                write!(f, "invalid value {value:?} for fault knob {knob}: {expected}")
            }
            KnobError::Inverted { min, max } => {
                write!(f, "{min} is above {max}; make {min} <= {max}")
            }
            KnobError::NeverLive(why) => {
                write!(f, "this fault configuration can never pass: {why}")
            }
        }
    }
}

impl std::error::Error for KnobError {}

/// Parses a probability: `N/D`, a decimal in `[0, 1]` with at most nine decimals, or a
/// percentage.
pub fn parse_probability(text: &str) -> Option<Ratio> {
    if text.contains('/') {
        return text.parse().ok();
    }
    let (number, scale) = match text.strip_suffix('%') {
        Some(percent) => (percent, 100u64),
        None => (text, 1u64),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) || fraction.len() > 7 {
        return None;
    }
    let denominator = 10u64.pow(fraction.len() as u32) * scale;
    let numerator = format!("{whole}{fraction}").parse::<u64>().ok()?;
    let (numerator, denominator) =
        (u32::try_from(numerator).ok()?, u32::try_from(denominator).ok()?);
    Ratio::new(numerator, denominator).ok()
}

/// The values of every knob for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultConfig {
    /// The profile the values started from.
    pub profile: Profile,
    values: [Value; KNOBS.len()],
    /// For `swarm`: the fault kinds the seed switched on, and the scale it picked for each.
    pub swarm: Vec<(FaultKind, &'static str)>,
}

/// Scales `swarm` picks from among, for the rates of a kind that is on: (name, multiplier
/// numerator, denominator) applied to a probability; an `every` is divided by it.
const SWARM_SCALES: [(&str, u64, u64); 4] =
    [("x1/4", 1, 4), ("x1/2", 1, 2), ("x1", 1, 1), ("x2", 2, 1)];

impl FaultConfig {
    /// The values of `profile` (for `swarm`, drawn from `seed`'s own stream).
    pub fn new(profile: Profile, seed: u64) -> FaultConfig {
        let column = match profile {
            Profile::None => 0,
            Profile::Default => 1,
            Profile::Chaos | Profile::Swarm => 2,
        };
        let values = KNOBS.map(|knob| knob.values[column]);
        let mut config = FaultConfig { profile, values, swarm: Vec::new() };
        if profile == Profile::Swarm {
            config.draw_swarm(seed);
        }
        config
    }

    /// Switches each fault kind on with probability 1/2 and scales the rates of those on.
    fn draw_swarm(&mut self, seed: u64) {
        // From the root seed alone, before any run exists: `--stream` does not reach it (the
        // fuzzer picks kinds through the profile and the knobs instead).
        let state = PrngTree::new(Seed::new(seed)).stream_state(Scope::World, "faults.swarm");
        let mut stream = crate::prng::Stream::from_state(state);
        for kind in FAULT_KINDS {
            // Two draws per kind, always, so a kind's picks do not depend on another's.
            let on = stream.below(2) == 1;
            let (scale_name, times, per) = SWARM_SCALES[stream.choose_index(SWARM_SCALES.len())];
            for (index, knob) in KNOBS.iter().enumerate() {
                if knob.switch != Some(kind) {
                    continue;
                }
                self.values[index] = match (on, self.values[index]) {
                    (false, Value::Ratio(_)) => Value::Ratio(Ratio::ZERO),
                    (false, Value::Number(_)) => Value::Number(0),
                    (true, Value::Ratio(ratio)) => {
                        let numerator = (u64::from(ratio.numerator()) * times / per)
                            .min(u64::from(ratio.denominator()));
                        // At most the denominator, which is a u32.
                        Value::Ratio(
                            Ratio::new(numerator as u32, ratio.denominator()).unwrap_or(Ratio::ONE),
                        )
                    }
                    // Magnitudes (offset, drift) keep their chaos value; intervals shrink
                    // as the rate grows.
                    (true, Value::Number(number)) if knob.name.ends_with("_every") => {
                        Value::Number((number * per / times).max(1))
                    }
                    (true, value) => value,
                };
            }
            if on {
                self.swarm.push((kind, scale_name));
            }
        }
    }

    /// Sets one knob from `NAME=VALUE`.
    pub fn set(&mut self, assignment: &str) -> Result<(), KnobError> {
        let (name, text) =
            assignment.split_once('=').ok_or_else(|| KnobError::Syntax(assignment.to_string()))?;
        let index = KNOBS
            .iter()
            .position(|knob| knob.name == name)
            .ok_or_else(|| KnobError::UnknownKnob { name: name.to_string() })?;
        let knob = &KNOBS[index];
        let bad = |expected: String| KnobError::BadValue {
            knob: knob.name,
            value: text.to_string(),
            expected,
        };
        let value = match knob.kind {
            KnobKind::Probability => Value::Ratio(parse_probability(text).ok_or_else(|| {
                bad("write a probability from 0 to 1: N/D (1/20), a decimal (0.05) or a percentage (5%)".to_string())
            })?),
            KnobKind::Duration => {
                let nanos = parse_duration(text).map_err(|error| bad(error.to_string()))?;
                Value::Number(nanos)
            }
            KnobKind::Count | KnobKind::Ppm => Value::Number(
                text.parse::<u64>().ok().filter(|_| text.bytes().all(|b| b.is_ascii_digit())).ok_or_else(
                    || bad("write a non-negative integer".to_string()),
                )?,
            ),
        };
        if let Value::Number(number) = value
            && number > knob.max
        {
            return Err(bad(format!("use 0 to {}", Value::Number(knob.max).write(knob.kind))));
        }
        self.values[index] = value;
        Ok(())
    }

    /// Checks the relations between knobs: ranges in order, and a liveness phase that can
    /// finish.
    pub fn validate(&self) -> Result<(), KnobError> {
        if self.nanos(K::DelaySlowMin) > self.nanos(K::DelaySlowMax) {
            return Err(KnobError::Inverted { min: "delay_slow_min", max: "delay_slow_max" });
        }
        if self.nanos(K::DiskLatencyMin) > self.nanos(K::DiskLatencyMax) {
            return Err(KnobError::Inverted { min: "disk_latency_min", max: "disk_latency_max" });
        }
        if self.any_on() && self.nanos(K::LivenessTime) == 0 {
            return Err(KnobError::NeverLive(
                "liveness_time is 0, so no goal can be reached after the faults stop; give it at least 1ms".to_string(),
            ));
        }
        if self.nanos(K::ShardCrashEvery) > 0
            && self.count(K::ShardRestartMax) == 0
            && self.count(K::LivenessRevive) == 0
        {
            return Err(KnobError::NeverLive(
                "shards crash, shard_restart_max=0 quarantines them at the first crash, and liveness_revive=0 never revives them; set shard_restart_max >= 1 or liveness_revive=1".to_string(),
            ));
        }
        Ok(())
    }

    /// Whether any fault kind is on.
    pub fn any_on(&self) -> bool {
        FAULT_KINDS.iter().any(|&kind| self.is_on(kind))
    }

    /// Whether `kind` is on: one of its switches is non-zero.
    pub fn is_on(&self, kind: FaultKind) -> bool {
        KNOBS.iter().zip(&self.values).any(|(knob, value)| {
            knob.switch == Some(kind)
                && match value {
                    Value::Ratio(ratio) => ratio.numerator() > 0,
                    Value::Number(number) => *number > 0,
                }
        })
    }

    /// A probability knob.
    pub fn ratio(&self, knob: K) -> Ratio {
        match self.values[knob as usize] {
            Value::Ratio(ratio) => ratio,
            Value::Number(_) => unreachable!("{} is not a probability", KNOBS[knob as usize].name),
        }
    }

    /// A duration knob, in nanoseconds.
    pub fn nanos(&self, knob: K) -> u64 {
        self.count(knob)
    }

    /// A count or ppm knob.
    pub fn count(&self, knob: K) -> u64 {
        match self.values[knob as usize] {
            Value::Number(number) => number,
            Value::Ratio(_) => unreachable!("{} is a probability", KNOBS[knob as usize].name),
        }
    }

    /// `name=value` of every knob, as `--fault` takes it.
    pub fn describe(&self) -> Vec<String> {
        KNOBS
            .iter()
            .zip(&self.values)
            .map(|(knob, value)| format!("{}={}", knob.name, value.write(knob.kind)))
            .collect()
    }

    /// The fault kinds that are on, by name.
    pub fn kinds_on(&self) -> Vec<&'static str> {
        FAULT_KINDS.iter().filter(|&&kind| self.is_on(kind)).map(|kind| kind.name()).collect()
    }
}

/// A knob's value in `profile` as written (for `sim list`); `swarm` shows `seed`.
pub fn profile_value(knob: &Knob, profile: Profile) -> String {
    match profile {
        Profile::None => knob.values[0].write(knob.kind),
        Profile::Default => knob.values[1].write(knob.kind),
        Profile::Chaos => knob.values[2].write(knob.kind),
        Profile::Swarm if knob.switch.is_some() => "seed".to_string(),
        Profile::Swarm => knob.values[2].write(knob.kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `K` names each knob by its position in `KNOBS`.
    #[test]
    fn knob_indices_match() {
        let names = [
            (K::DelayTailProbability, "delay_tail_probability"),
            (K::DelaySlowMax, "delay_slow_max"),
            (K::ShardRestartWindow, "shard_restart_window"),
            (K::ClockDriftMax, "clock_drift_max"),
            (K::LivenessRevive, "liveness_revive"),
        ];
        for (knob, name) in names {
            assert_eq!(KNOBS[knob as usize].name, name);
        }
        assert_eq!(K::LivenessRevive as usize, KNOBS.len() - 1);
    }

    /// Probabilities parse in three notations and nothing above one is accepted.
    #[test]
    fn probabilities() {
        assert_eq!(parse_probability("1/20"), Ratio::new(1, 20).ok());
        assert_eq!(parse_probability("0.05"), Ratio::new(5, 100).ok());
        assert_eq!(parse_probability("5%"), Ratio::new(5, 100).ok());
        assert_eq!(parse_probability("1"), Ratio::new(1, 1).ok());
        assert_eq!(parse_probability("0"), Ratio::new(0, 1).ok());
        for bad in ["1.5", "2/1", "150%", "-0.1", "", ".5", "0.5.5", "1/0", "abc"] {
            assert_eq!(parse_probability(bad), None, "{bad:?}");
        }
    }

    /// Bad knobs, values and combinations are refused with a message naming the fix.
    #[test]
    fn bad_input() {
        let mut config = FaultConfig::new(Profile::Chaos, 1);
        let error = config.set("shard_crash_often=1s").expect_err("unknown");
        assert!(error.to_string().contains("valid knobs: delay_tail_probability"), "{error}");
        let error = config.set("init_failure_probability=1.5").expect_err("above one");
        assert!(error.to_string().contains("from 0 to 1"), "{error}");
        assert_eq!(
            config.set("delay_slow_min").expect_err("syntax"),
            KnobError::Syntax("delay_slow_min".into())
        );
        config.set("delay_slow_min=80ms").expect("valid");
        assert_eq!(
            config.validate(),
            Err(KnobError::Inverted { min: "delay_slow_min", max: "delay_slow_max" })
        );
        let mut config = FaultConfig::new(Profile::Chaos, 1);
        config.set("shard_restart_max=0").expect("valid");
        config.set("liveness_revive=0").expect("valid");
        assert!(matches!(config.validate(), Err(KnobError::NeverLive(_))));
        config.set("shard_crash_every=0").expect("valid");
        assert_eq!(config.validate(), Ok(()));
    }

    /// Swarm draws from the seed alone: the same seed picks the same kinds, and across
    /// seeds each kind is sometimes on and sometimes off.
    #[test]
    fn swarm_is_drawn_from_the_seed() {
        assert_eq!(FaultConfig::new(Profile::Swarm, 7), FaultConfig::new(Profile::Swarm, 7));
        for kind in FAULT_KINDS {
            let on =
                (0..64).filter(|&seed| FaultConfig::new(Profile::Swarm, seed).is_on(kind)).count();
            assert!(on > 8 && on < 56, "{} on for {on} of 64 seeds", kind.name());
        }
        assert!(!FaultConfig::new(Profile::None, 1).any_on());
        assert!(FAULT_KINDS.iter().all(|&kind| FaultConfig::new(Profile::Chaos, 1).is_on(kind)));
    }
}
