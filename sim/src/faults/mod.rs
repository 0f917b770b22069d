//! The faults component: everything the simulator breaks on purpose, drawn from the seed.
//!
//! Each fault kind is a named knob (`knobs`), counted (`FaultCounts`), reported as a
//! `WorldEvent` in the trace, and drawn from its own PRNG-tree streams, so switching one
//! kind on or off leaves the draws of the others unchanged. Only faults production can
//! produce are modelled: rings between the shards of one node never lose, duplicate or
//! reorder a message; loss inside a node comes from full mailboxes and pools, crashes and
//! teardown. The world plants (bugs planted in the world, for canaries) live here too, so
//! the world's hot path asks one flag instead of comparing plants.
//!
//! This module decides *whether* and *how much*; the world applies the decisions to its
//! nodes and shards.

pub mod knobs;

use tina::{Label, ShardId, fnv1a_64};

pub use knobs::{FAULT_KINDS, FaultConfig, FaultKind, K, KNOBS, KnobError, Profile};

use crate::plant::WorldBug;
use crate::prng::{PrngTree, Ratio, Scope, Stream};

/// How often each fault kind fired, and what recovery did in answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Injections per fault kind, indexed by `FaultKind as usize`.
    pub injected: [u64; FAULT_KINDS.len()],
    /// Crashed shards booted again.
    pub shard_restarts: u64,
    /// Crashed shards past their restart budget, left down.
    pub shard_quarantines: u64,
    /// Quarantined shards revived.
    pub shard_revivals: u64,
    /// Crashed nodes booted again.
    pub node_restarts: u64,
}

impl FaultCounts {
    /// Counts one injection of `kind`.
    #[inline]
    pub fn count(&mut self, kind: FaultKind) {
        self.injected[kind as usize] += 1;
    }

    /// Injections of `kind`.
    pub fn of(&self, kind: FaultKind) -> u64 {
        self.injected[kind as usize]
    }

    /// Injections by fault kind, every kind in summary order.
    pub fn entries(&self) -> Vec<(&'static str, u64)> {
        FAULT_KINDS.iter().map(|&kind| (kind.name(), self.of(kind))).collect()
    }

    /// What recovery did, by name.
    pub fn recovery(&self) -> [(&'static str, u64); 4] {
        [
            ("shard-restart", self.shard_restarts),
            ("shard-quarantine", self.shard_quarantines),
            ("shard-revive", self.shard_revivals),
            ("node-restart", self.node_restarts),
        ]
    }
}

/// The `ctx.buggify` sites of a run (FoundationDB's scheme): each site is active for the
/// whole run with `site_probability`, decided by the seed and the site's name alone (so the
/// order in which sites are first asked changes nothing); an active site fires at each call
/// with `fire_probability`, drawn from the calling shard's stream.
#[derive(Debug)]
pub struct BuggifySites {
    /// The state every site's activation stream derives from.
    activation: u64,
    site_probability: Ratio,
    /// Sites asked so far, sorted by fingerprint: (fingerprint, site, active).
    sites: Vec<(u64, Label, bool)>,
}

/// What one `buggify` call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteState {
    /// The site is not active in this run.
    Inactive,
    /// The site is active and was asked before.
    Active,
    /// The site is active and this is its first call.
    NewlyActive,
}

impl BuggifySites {
    /// The sites of a run of `tree`, each active with `site_probability`.
    pub fn new(tree: &PrngTree, site_probability: Ratio) -> BuggifySites {
        BuggifySites {
            activation: tree.stream_state(Scope::World, "faults.buggify.site"),
            site_probability,
            sites: Vec::new(),
        }
    }

    /// Whether `site` is active, deciding it on its first call.
    pub fn state(&mut self, site: Label) -> SiteState {
        let fingerprint = site.fingerprint();
        match self.sites.binary_search_by_key(&fingerprint, |entry| entry.0) {
            Ok(at) if self.sites[at].2 => SiteState::Active,
            Ok(_) => SiteState::Inactive,
            Err(at) => {
                let mut stream =
                    Stream::from_state(self.activation ^ fnv1a_64(site.text().as_bytes()));
                let active = stream.chance(self.site_probability);
                self.sites.insert(at, (fingerprint, site, active));
                if active { SiteState::NewlyActive } else { SiteState::Inactive }
            }
        }
    }

    /// The active sites, by name.
    pub fn active(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> =
            self.sites.iter().filter(|entry| entry.2).map(|entry| entry.1.text()).collect();
        names.sort();
        names
    }
}

/// The fault state every shard's backend reaches during its tick (lent with the sink).
#[derive(Debug)]
pub struct SharedFaults {
    /// What fired so far.
    pub counts: FaultCounts,
    /// The buggify sites.
    pub buggify: BuggifySites,
    /// Whether faults are injected (the safety phase); false once the liveness phase began.
    pub active: bool,
}

/// The faults one shard's backend injects itself: init failures and buggify firings.
#[derive(Debug)]
pub struct ShardFaults {
    /// Chance a spawned isolate's `init` fails.
    pub init_failure: Ratio,
    /// Draws for `init_failure`.
    pub init_stream: Stream,
    /// Chance an active buggify site fires.
    pub buggify_fire: Ratio,
    /// Draws for `buggify_fire`.
    pub fire_stream: Stream,
}

impl ShardFaults {
    /// The faults of `shard` of `node`, from `config`.
    pub fn new(tree: &PrngTree, config: &FaultConfig, node: u16, shard: ShardId) -> ShardFaults {
        let scope = Scope::Shard { node, shard: u16::from(shard.0) };
        ShardFaults {
            init_failure: config.ratio(K::InitFailureProbability),
            init_stream: tree.stream(scope, "faults.init-failure"),
            buggify_fire: config.ratio(K::BuggifyFireProbability),
            fire_stream: tree.stream(scope, "faults.buggify.fire"),
        }
    }
}

/// A fault that happens at instants drawn per node, rather than per message or per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Timed {
    /// A shard of the node stalls.
    ShardStall = 0,
    /// An isolate of the node crashes.
    IsolateCrash = 1,
    /// A shard of the node crashes.
    ShardCrash = 2,
    /// The node crashes.
    NodeCrash = 3,
    /// The node's clock jumps.
    ClockJump = 4,
    /// A link of the node is cut, or the node is isolated, for a while.
    NetPartition = 5,
    /// A link of the node holds its packets for a while.
    NetClog = 6,
    /// The node's partition heals (planned by the partition, not by a knob).
    NetHeal = 7,
    /// The node's clog clears (planned by the clog, not by a knob).
    NetUnclog = 8,
}

/// Every timed fault a knob plans, in the order streams are derived.
pub const TIMED: [Timed; 7] = [
    Timed::ShardStall,
    Timed::IsolateCrash,
    Timed::ShardCrash,
    Timed::NodeCrash,
    Timed::ClockJump,
    Timed::NetPartition,
    Timed::NetClog,
];

impl Timed {
    /// The timed fault whose code (`Timed as u8`) is `code`.
    pub const fn from_code(code: u8) -> Timed {
        match code {
            0 => Timed::ShardStall,
            1 => Timed::IsolateCrash,
            2 => Timed::ShardCrash,
            3 => Timed::NodeCrash,
            4 => Timed::ClockJump,
            5 => Timed::NetPartition,
            6 => Timed::NetClog,
            7 => Timed::NetHeal,
            _ => Timed::NetUnclog,
        }
    }

    /// The knob that sets the mean interval.
    pub const fn every(self) -> K {
        match self {
            Timed::ShardStall => K::ShardStallEvery,
            Timed::IsolateCrash => K::IsolateCrashEvery,
            Timed::ShardCrash => K::ShardCrashEvery,
            Timed::NodeCrash => K::NodeCrashEvery,
            Timed::ClockJump => K::ClockJumpEvery,
            Timed::NetPartition | Timed::NetHeal => K::NetPartitionEvery,
            Timed::NetClog | Timed::NetUnclog => K::NetClogEvery,
        }
    }

    const fn site(self) -> &'static str {
        match self {
            Timed::ShardStall => "faults.shard-stall",
            Timed::IsolateCrash => "faults.isolate-crash",
            Timed::ShardCrash => "faults.shard-crash",
            Timed::NodeCrash => "faults.node-crash",
            Timed::ClockJump => "faults.clock-jump",
            Timed::NetPartition | Timed::NetHeal => "faults.net-partition",
            Timed::NetClog | Timed::NetUnclog => "faults.net-clog",
        }
    }
}

/// One node's streams for the timed faults, and for the sizes they draw.
#[derive(Debug)]
pub struct NodeFaults {
    /// One stream per timed fault (indexed by `Timed as usize`): when, which shard or
    /// isolate, how long or how far.
    pub streams: [Stream; TIMED.len()],
    /// How long a crashed shard stays down.
    pub shard_restart: Stream,
    /// How long a crashed node stays down.
    pub node_restart: Stream,
}

impl NodeFaults {
    /// The streams of `node`.
    pub fn new(tree: &PrngTree, node: u16) -> NodeFaults {
        let scope = Scope::Node { node };
        NodeFaults {
            streams: TIMED.map(|timed| tree.stream(scope, timed.site())),
            shard_restart: tree.stream(scope, "faults.shard-restart-delay"),
            node_restart: tree.stream(scope, "faults.node-restart-delay"),
        }
    }

    /// The time from now to the next `timed` fault: uniform in `1..=2 * every` (mean about
    /// `every`); `None` when the fault is off.
    pub fn next_in(&mut self, timed: Timed, config: &FaultConfig) -> Option<u64> {
        let every = config.nanos(timed.every());
        (every > 0)
            .then(|| self.streams[timed as usize].range_inclusive(1, every.saturating_mul(2)))
    }

    /// The stream of `timed`, for the draws of one occurrence.
    pub fn stream(&mut self, timed: Timed) -> &mut Stream {
        let timed = match timed {
            Timed::NetHeal => Timed::NetPartition,
            Timed::NetUnclog => Timed::NetClog,
            other => other,
        };
        &mut self.streams[timed as usize]
    }
}

/// The delay of one cross-shard message and the fault that shaped it, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// Uniform in `[net_delay_min, net_delay_max]`.
    Plain(u64),
    /// From the long tail.
    Tail(u64),
    /// From the slow mode.
    Slow(u64),
}

/// The cross-shard delay distribution: uniform, with an optional long tail and an optional
/// slow mode (integer arithmetic only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayModel {
    /// Smallest plain delay.
    pub min_ns: u64,
    /// Largest plain delay.
    pub max_ns: u64,
    /// Chance of the tail.
    pub tail: Ratio,
    /// Longest tail delay.
    pub tail_max_ns: u64,
    /// Chance of the slow mode.
    pub slow: Ratio,
    /// Slow mode range.
    pub slow_min_ns: u64,
    /// Slow mode range.
    pub slow_max_ns: u64,
}

impl DelayModel {
    /// Whether every delay is plain.
    pub fn is_plain(&self) -> bool {
        self.tail.numerator() == 0 && self.slow.numerator() == 0
    }

    /// Draws one delay. The tail is log-spread: a halving level `0..8` is drawn, then a
    /// uniform delay up to that level's bound, so most tail delays stay near `max_ns` and a
    /// few reach `tail_max_ns`.
    pub fn draw(&self, stream: &mut Stream) -> Delay {
        let plain =
            if self.max_ns == 0 { 0 } else { stream.range_inclusive(self.min_ns, self.max_ns) };
        if self.tail.numerator() > 0 && stream.chance(self.tail) {
            let span = self.tail_max_ns.saturating_sub(self.max_ns);
            let level = stream.below(8);
            return Delay::Tail(self.max_ns + stream.range_inclusive(0, span >> level));
        }
        if self.slow.numerator() > 0 && stream.chance(self.slow) {
            return Delay::Slow(stream.range_inclusive(self.slow_min_ns, self.slow_max_ns));
        }
        Delay::Plain(plain)
    }
}

/// The world plant, if one is on: state the planted bug needs.
#[derive(Debug)]
pub struct Planted {
    /// The bug.
    pub bug: WorldBug,
    /// Cross-shard messages routed so far.
    pub routed: u64,
    /// Cross-shard messages delivered so far.
    pub delivered: u64,
}

/// Read by the `static-counter` plant: state that survives from one run to the next in
/// one process, exactly what the determinism check exists to catch.
static PLANTED_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What a planted bug does to one routed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteBug {
    /// Nothing.
    None,
    /// The message is lost.
    Lose,
    /// The message arrives at this time instead.
    ArriveAt(u64),
}

impl Planted {
    /// A plant of `bug`.
    pub fn new(bug: WorldBug) -> Planted {
        Planted { bug, routed: 0, delivered: 0 }
    }

    /// Extra delay for the next routed message (the `static-counter` plant).
    pub fn extra_delay(&mut self) -> u64 {
        if self.bug == WorldBug::StaticCounter && self.routed == 0 {
            // The first message's delay grows by one nanosecond per earlier run in this
            // process.
            PLANTED_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        } else {
            0
        }
    }

    /// What the bug does to the message routed now, departing at `departure`, the
    /// `position`-th of its tick, whose predecessor went to the same shard if `same_pair`.
    pub fn route(&mut self, departure: u64, position: usize, same_pair: bool) -> RouteBug {
        self.routed += 1;
        match self.bug {
            WorldBug::LoseMessage if self.routed == 5 => RouteBug::Lose,
            WorldBug::Reorder if position > 0 && same_pair && self.routed < 1_000_000 => {
                // Overtake the message before it, once.
                self.routed = 1_000_000;
                RouteBug::ArriveAt(departure.saturating_sub(1).max(1))
            }
            _ => RouteBug::None,
        }
    }

    /// Whether the message delivered now is delivered a second time.
    pub fn duplicate(&mut self) -> bool {
        self.delivered += 1;
        self.bug == WorldBug::DuplicateDelivery && self.delivered == 5
    }

    /// How far ahead of its node's clock a shard's clock reads at true time `now` (the
    /// `early-timer` plant skews shard clocks, which a node never does).
    pub fn shard_skew(&self, now: u64) -> u64 {
        if self.bug == WorldBug::ClockJump && now >= 1_000_000_000 { 100_000_000 } else { 0 }
    }
}
