//! The simulated world: nodes of shards, one event queue, virtual time, and the faults.
//!
//! The world holds nodes; a node is one booted `SystemSpec` (one process) with its own
//! shards and its own clock. One queue ordered by (time, sequence) holds message
//! deliveries, shard wake-ups (a shard has at most one live wake-up, exactly the time its
//! last tick asked for, or earlier if a message arrived since; one due now that would be
//! the queue's very next item is applied without entering it), timed faults, restarts of
//! crashed shards and nodes, and the end of the safety phase. When no shard can run at the
//! current instant, time jumps to the queue's next live entry; there is no tick loop. When
//! several shards can run at one instant, the scheduling stream picks which goes first.
//!
//! A tick starting at `t` that made `n` dispatches ends at `t + n * dispatch_cost`; the
//! messages it sent depart then, each with a delay drawn from the sender's network stream
//! (uniform, or shaped by the delay faults), FIFO per ordered shard pair; the shard does not
//! run again before then. Time is true time; each node's clock (`clock`) derives from it,
//! and a shard's timer deadlines, read on its node's clock, are turned back into true time
//! to wake it.
//!
//! With faults on, the run has two phases: the safety phase, while the faults component
//! injects, and, from `safety_time` on, the liveness phase: injection stops, what can heal
//! heals (crashed nodes and shards restart, quarantined shards are revived, stalls end),
//! and the goal must be reached within `liveness_time`.
//!
//! The world owns every piece of mutable state of a run. It does not know scenarios, only
//! specs and the sink. `recovery.rs` holds shard and node crashes and restarts, `inject.rs`
//! the timed faults, `queue.rs` the queue.

mod inject;
mod io;
mod queue;
mod recovery;
mod shutdown;

pub use shutdown::{ShardShutdown, ShutdownOutcome, ShutdownPlan};

use tina::{
    BootError, Counters, RestartBudget, Scheduler, ShardFailure, ShardId, ShardRecovery,
    SystemSpec, Timestamp,
};
use tina_checkers::{DurableFile, EndView, Phase, ShardView, WorldEvent};

use crate::backend::{Flights, Lent, SimBackend};
use crate::clock::NodeClock;
use crate::disk::{Disk, DiskStreams};
use crate::faults::{
    BuggifySites, Delay, DelayModel, FaultConfig, FaultCounts, FaultKind, K, NodeFaults, Planted,
    Profile, RouteBug, ShardFaults, SharedFaults,
};
use crate::net::{Completion, Net, NetEvent};
use crate::plant::WorldBug;
use crate::prng::{PrngTree, Scope, Seed, Stream, StreamOverrides};
use crate::trace::{Place, Sink};
use queue::{Entry, Queue};
use tina::io::IoToken;

/// Messages in flight the world reserves memory for at boot. The bound on messages in
/// flight is every ordered shard pair's ring capacity (8 nodes of 32 shards with rings of
/// 1,024: 8 million messages, over a gigabyte); reserving it up front made memory grow
/// with the world's shape instead of its use. Beyond this many, the slots and the queue
/// grow amortised, only when a run reaches a new high-water mark, up to the bound.
pub const FLIGHTS_RESERVED_MAX: usize = 1 << 14;

/// How the world models time, the network and faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldConfig {
    /// Virtual time each handler call costs, in nanoseconds.
    pub dispatch_cost_ns: u64,
    /// Smallest cross-shard delay, in nanoseconds.
    pub net_delay_min_ns: u64,
    /// Largest cross-shard delay, in nanoseconds (inclusive).
    pub net_delay_max_ns: u64,
    /// Messages in flight per ordered shard pair (the ring's capacity).
    pub transport_capacity: u32,
    /// The faults to inject.
    pub faults: FaultConfig,
    /// A planted bug in the world (canaries only).
    pub bug: Option<WorldBug>,
    /// Decision streams perturbed (the fuzzer's steering, `--stream`).
    pub streams: StreamOverrides,
    /// The run's graceful shutdown, if it has one (`sim --shutdown-at`).
    pub shutdown: Option<ShutdownPlan>,
}

impl Default for WorldConfig {
    fn default() -> WorldConfig {
        WorldConfig {
            dispatch_cost_ns: 1_000,
            net_delay_min_ns: 1_000_000,
            net_delay_max_ns: 10_000_000,
            transport_capacity: 1024,
            faults: FaultConfig::new(Profile::None, 0),
            bug: None,
            streams: StreamOverrides::NONE,
            shutdown: None,
        }
    }
}

/// When a run stops short of its observers' verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Virtual time not to run past, in nanoseconds.
    pub time_max_ns: u64,
    /// Trace events not to exceed.
    pub events_max: u64,
}

/// Why `World::run` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The sink says stop: an observer's verdict, or a divergence from the recording.
    Stopped,
    /// Nothing can ever run again.
    Quiescent,
    /// The next event is past `time_max`.
    TimeMax,
    /// `events_max` events were traced.
    EventsMax,
    /// The liveness phase's bound passed before the goal.
    LivenessBound,
    /// Every shard finished its graceful shutdown (drained, or forced at its deadline).
    ShutDown,
}

/// One shard's counters, summed over its incarnations (a node crash loses the scheduler,
/// not the counts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardCounters {
    /// The node.
    pub node: u16,
    /// The shard.
    pub shard: ShardId,
    /// Every counter by name, in `Counters::entries` order.
    pub entries: Vec<(&'static str, u64)>,
}

/// Whether a shard runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Running.
    Up,
    /// Crashed; a restart is planned.
    Down,
    /// Crashed past its restart budget; down until revived.
    Quarantined,
    /// Its node crashed.
    NodeDown,
}

/// One shard of one node.
struct Cell {
    node: u16,
    shard: ShardId,
    /// Global index of the node's shard 0.
    node_base: u32,
    /// `None` while the node is down.
    scheduler: Option<Scheduler<SimBackend>>,
    backend: SimBackend,
    busy_until: u64,
    /// The live wake-up's time, or `u64::MAX`.
    wake_at: u64,
    runnable: bool,
    status: Status,
    /// How many times the shard went down (restart entries carry it).
    epoch: u32,
    recovery: ShardRecovery,
    /// Isolate types of the node's spec.
    types: usize,
    /// Arrival time of the last message sent to each shard of the node (FIFO per pair).
    last_arrival: Box<[u64]>,
    network: Stream,
    /// Counters of incarnations lost to node crashes, summed.
    counters_before: Vec<(&'static str, u64)>,
    /// Whether its finished shutdown was counted (`World::shutdown_left`).
    shutdown_counted: bool,
}

/// One node: a spec, its shards (a range of cells), its clock.
struct Node {
    spec: SystemSpec,
    first_cell: usize,
    shard_count: usize,
    clock: NodeClock,
    up: bool,
    /// How many times the node crashed (restart entries carry it).
    epoch: u32,
    /// Where the node's ring credits start in `Lent::credits`.
    credits_base: usize,
    faults: NodeFaults,
}

/// A running simulation.
pub struct World {
    cells: Vec<Cell>,
    nodes: Vec<Node>,
    queue: Queue,
    now: u64,
    runnable: Vec<u32>,
    scheduling: Stream,
    config: WorldConfig,
    delays: DelayModel,
    /// No delay fault and no world plant: messages take the plain routing path.
    routing_plain: bool,
    planted: Option<Planted>,
    phase: Phase,
    /// The true time by which the goal must be reached, once the liveness phase began.
    liveness_deadline: u64,
    /// Whether a rare entry (a fault, a restart, a phase change) was applied since the run
    /// loop last asked the sink whether to stop.
    world_recorded: bool,
    /// Whether every node's clock reads true time (no skew and no jump yet): the tick then
    /// skips the clock arithmetic.
    clocks_true: bool,
    /// The sink, the in-flight store and the shared fault state, at home between ticks.
    lent: Option<Box<Lent>>,
    /// I/O operations started and not yet handed back.
    io: io::IoTable,
    /// Each node's disk, which survives the node's crashes, and its streams.
    disks: Vec<Disk>,
    disk_streams: Vec<DiskStreams>,
    /// Each node's stream for the `disk-full` fault (space taken by others).
    disk_full_streams: Vec<Stream>,
    /// The network between the nodes.
    net: Net,
    /// When the queued `NetPoll` entry is due (`u64::MAX`: none is).
    net_poll_at: u64,
    /// Completions and fault events taken from the network, reused between polls.
    net_completions: Vec<Completion>,
    net_events: Vec<NetEvent>,
    /// Each node's partition and clog in progress, if any (`inject::net_fault`).
    partitions: Vec<Option<inject::NetLink>>,
    clogs: Vec<Option<inject::NetLink>>,
    /// Whether the run's shutdown began: no fault, restart or phase change from then on.
    shutting_down: bool,
    /// Shards whose shutdown began and is not finished.
    shutdown_left: usize,
}

impl core::fmt::Debug for World {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("World")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("shards", &self.cells.len())
            .finish_non_exhaustive()
    }
}

impl World {
    /// Boots every shard of every node (node ids are positions in `nodes`) at time zero,
    /// feeding boot's events to `sink`, and makes every shard runnable.
    pub fn boot(
        nodes: Vec<SystemSpec>,
        config: WorldConfig,
        seed: u64,
        mut sink: Sink,
    ) -> Result<World, BootError> {
        for spec in &nodes {
            spec.validate()?;
        }
        let tree = PrngTree::new(Seed::new(seed)).with_overrides(config.streams);
        sink.start_observers(&nodes);
        let faults = &config.faults;
        let shared = SharedFaults {
            counts: FaultCounts::default(),
            buggify: BuggifySites::new(&tree, faults.ratio(K::BuggifySiteProbability)),
            active: faults.any_on(),
        };
        let lent = Box::new(Lent {
            sink,
            flights: Flights::default(),
            credits: Vec::new(),
            faults: shared,
        });
        // Setups are checked for their node count (`SetupError::TooManyNodes`) and the
        // knobs' bounds keep the network's configuration valid.
        let node_count = u16::try_from(nodes.len()).expect("at most NODE_COUNT_MAX nodes");
        let net = Net::with_prng(node_count, io::net_config(&config), tree)
            .expect("a checked node count and configuration");
        let mut world = World {
            cells: Vec::new(),
            nodes: Vec::new(),
            queue: Queue::default(),
            now: 0,
            runnable: Vec::new(),
            scheduling: tree.stream(Scope::World, "scheduler.pick"),
            delays: DelayModel {
                min_ns: config.net_delay_min_ns,
                max_ns: config.net_delay_max_ns,
                tail: faults.ratio(K::DelayTailProbability),
                tail_max_ns: faults.nanos(K::DelayTailMax),
                slow: faults.ratio(K::DelaySlowProbability),
                slow_min_ns: faults.nanos(K::DelaySlowMin),
                slow_max_ns: faults.nanos(K::DelaySlowMax),
            },
            routing_plain: true,
            planted: config.bug.map(Planted::new),
            phase: Phase::Safety,
            liveness_deadline: u64::MAX,
            world_recorded: false,
            clocks_true: true,
            lent: Some(lent),
            io: io::IoTable::default(),
            disks: Vec::new(),
            disk_streams: Vec::new(),
            disk_full_streams: Vec::new(),
            net,
            net_poll_at: u64::MAX,
            net_completions: Vec::new(),
            net_events: Vec::new(),
            partitions: vec![None; usize::from(node_count)],
            clogs: vec![None; usize::from(node_count)],
            shutting_down: false,
            shutdown_left: 0,
            config,
        };
        world.routing_plain = world.delays.is_plain() && world.planted.is_none();
        for (node, spec) in nodes.into_iter().enumerate() {
            // At most 65,536 nodes: node ids are 16 bits in the trace.
            world.add_node(node as u16, spec, &tree)?;
        }
        let lent = world.lent.as_deref_mut().expect("the sink and flights are home at boot");
        // The credits bound the messages in flight; memory is reserved for at most
        // `FLIGHTS_RESERVED_MAX` of them and grows with use beyond (see the constant).
        let flights_max = lent.credits.len() * world.config.transport_capacity as usize;
        let flights_reserved = flights_max.min(FLIGHTS_RESERVED_MAX);
        lent.flights.reserve(flights_reserved);
        world.queue = Queue::with_capacity(flights_reserved + 4 * world.cells.len());
        world.runnable.reserve(world.cells.len());
        for index in 0..world.cells.len() {
            world.route_outbound(index, 0);
            world.reschedule(index, Some(0));
        }
        world.plan_faults();
        if let Some(plan) = world.config.shutdown {
            world.queue.push(plan.at_ns, Entry::Shutdown);
        }
        Ok(world)
    }

    /// Adds node `node`: its clock (skewed if the fault is on), its shards, booted.
    fn add_node(&mut self, node: u16, spec: SystemSpec, tree: &PrngTree) -> Result<(), BootError> {
        let shard_count = spec.shard_count();
        let disk = Disk::new(node, self.disk_config(self.phase == Phase::Safety))
            .expect("the knobs' bounds keep the disk configuration valid");
        self.disks.push(disk);
        self.disk_streams.push(DiskStreams::new(tree, node));
        self.disk_full_streams.push(tree.stream(Scope::Node { node }, "disk.full"));
        let first_cell = self.cells.len();
        let lent = self.lent.as_deref_mut().expect("the sink and flights are home at boot");
        let credits_base = lent.credits.len();
        lent.credits
            .resize(credits_base + shard_count * shard_count, self.config.transport_capacity);
        let clock = self.skewed_clock(node, tree);
        self.clocks_true &= clock.is_true();
        let budget = RestartBudget {
            // Bounded by the knob's maximum of 4096.
            restart_max: self.config.faults.count(K::ShardRestartMax) as u32,
            window: core::time::Duration::from_nanos(
                self.config.faults.nanos(K::ShardRestartWindow),
            ),
        };
        for index in 0..shard_count {
            // Validated: at most 255 shards.
            let shard = ShardId(index as u8);
            let scope = Scope::Shard { node, shard: u16::from(shard.0) };
            let backend = SimBackend::new(
                node,
                shard,
                shard_count,
                self.config.transport_capacity,
                credits_base,
                tree.stream(scope, "isolate.random"),
                ShardFaults::new(tree, &self.config.faults, node, shard),
            );
            self.cells.push(Cell {
                node,
                shard,
                node_base: first_cell as u32,
                scheduler: None,
                backend,
                busy_until: 0,
                wake_at: u64::MAX,
                runnable: false,
                status: Status::Up,
                epoch: 0,
                recovery: ShardRecovery::new(budget),
                types: spec.type_count(),
                last_arrival: vec![0; shard_count].into_boxed_slice(),
                network: tree.stream(scope, "net.delay"),
                counters_before: Counters::default().entries().to_vec(),
                shutdown_counted: false,
            });
        }
        self.nodes.push(Node {
            spec,
            first_cell,
            shard_count,
            clock,
            up: true,
            epoch: 0,
            credits_base,
            faults: NodeFaults::new(tree, node),
        });
        if !self.nodes[usize::from(node)].clock.is_true() {
            let clock = self.nodes[usize::from(node)].clock;
            self.count(FaultKind::ClockSkew);
            let event = WorldEvent::ClockSkew {
                offset_ns: clock.offset_ns(),
                drift_ppm: clock.drift_ppm(),
            };
            self.record_node(node, &event);
        }
        for index in first_cell..first_cell + shard_count {
            self.boot_cell(index)?;
        }
        Ok(())
    }

    /// The clock of `node`: true time, or offset and drifting when the fault is on.
    fn skewed_clock(&self, node: u16, tree: &PrngTree) -> NodeClock {
        let faults = &self.config.faults;
        let (offset_max, drift_max) =
            (faults.nanos(K::ClockOffsetMax), faults.count(K::ClockDriftMax));
        if offset_max == 0 && drift_max == 0 {
            return NodeClock::TRUE;
        }
        let mut stream = tree.stream(Scope::Node { node }, "faults.clock-skew");
        let offset = stream.range_inclusive(0, offset_max);
        // The knob's maximum (10^5) keeps the drift far inside i32 and the clock's bound.
        let drift = stream.range_inclusive(0, 2 * drift_max) as i64 - drift_max as i64;
        NodeClock::new(offset, drift as i32)
    }

    /// Boots the scheduler of cell `index` from its node's spec, now.
    fn boot_cell(&mut self, index: usize) -> Result<(), BootError> {
        self.set_clock(index);
        let node = usize::from(self.cells[index].node);
        let cell = &mut self.cells[index];
        cell.backend.lent = self.lent.take();
        let scheduler = Scheduler::boot(&self.nodes[node].spec, cell.shard, &mut cell.backend);
        self.lent = cell.backend.lent.take();
        cell.scheduler = Some(scheduler?);
        Ok(())
    }

    /// Runs until the sink says stop, nothing can run, or a limit is reached.
    pub fn run(&mut self, limits: Limits) -> Ending {
        // The one loop of the simulator without a count bound of its own: every iteration
        // runs a tick (which adds events, bounded by `events_max`).
        loop {
            if self.sink().stop() {
                return Ending::Stopped;
            }
            if self.sink().events() >= limits.events_max {
                return Ending::EventsMax;
            }
            if self.shutdown_complete() {
                return Ending::ShutDown;
            }
            self.apply_due();
            // Every jump moves time forward (bounded by `time_max`) or applies a queued
            // item (each was pushed by a tick or by the fault plan, which is bounded by the
            // safety phase). Faults applied here may record events, so the sink is asked
            // again.
            while self.runnable.is_empty() {
                if self.world_recorded {
                    // A fault applied just now recorded world events an observer may
                    // have stopped the run on.
                    self.world_recorded = false;
                    if self.sink().stop() {
                        return Ending::Stopped;
                    }
                    if self.shutdown_complete() {
                        return Ending::ShutDown;
                    }
                }
                match self.next_live_time() {
                    None => return Ending::Quiescent,
                    Some(time) if time > limits.time_max_ns => return Ending::TimeMax,
                    Some(time) if time > self.liveness_deadline => return Ending::LivenessBound,
                    Some(time) => self.now = time,
                }
                self.apply_due();
            }
            let pick = if self.runnable.len() == 1 {
                0
            } else {
                self.scheduling.choose_index(self.runnable.len())
            };
            let index = self.runnable.swap_remove(pick) as usize;
            self.cells[index].runnable = false;
            self.tick(index);
        }
    }

    /// The time of the queue's next live entry, dropping the dead ones before it.
    fn next_live_time(&mut self) -> Option<u64> {
        // Bounded by the queue's length.
        loop {
            let item = self.queue.peek()?;
            let time = item.time;
            if !self.is_dead(&item.entry(), time) {
                return Some(time);
            }
            self.queue.pop();
        }
    }

    /// Whether an entry due at `time` would do nothing.
    fn is_dead(&self, entry: &Entry, time: u64) -> bool {
        match *entry {
            Entry::Deliver { .. } | Entry::IoDone { .. } | Entry::Shutdown => false,
            Entry::NetPoll => self.net_poll_at != time,
            Entry::Wake { cell } => self.cells[cell as usize].wake_at != time,
            // While shutting down: no fault, no restart, no phase change.
            Entry::SafetyEnd => self.shutting_down,
            Entry::Fault { .. } => self.phase != Phase::Safety || self.shutting_down,
            Entry::ShardRestart { cell, epoch } => {
                self.cells[cell as usize].epoch != epoch || self.shutting_down
            }
            Entry::NodeRestart { node, epoch } => {
                self.nodes[usize::from(node)].epoch != epoch || self.shutting_down
            }
        }
    }

    /// Applies every queued item due at or before now.
    fn apply_due(&mut self) {
        // Bounded by the queue's length.
        while let Some(item) = self.queue.pop_due(self.now) {
            match item.entry() {
                Entry::Deliver { slot, cell } => self.deliver(slot, cell as usize),
                Entry::Wake { cell } => {
                    let index = cell as usize;
                    if self.cells[index].wake_at == item.time {
                        self.cells[index].wake_at = u64::MAX;
                        self.wake(index);
                    }
                }
                Entry::NetPoll => {
                    if self.net_poll_at == item.time {
                        self.net_poll_at = u64::MAX;
                        self.poll_net();
                    }
                }
                entry => self.apply_rare(entry),
            }
        }
    }

    /// Applies an entry that is neither a delivery nor a wake-up.
    #[cold]
    #[inline(never)]
    fn apply_rare(&mut self, entry: Entry) {
        self.world_recorded = true;
        match entry {
            Entry::Deliver { .. } | Entry::Wake { .. } | Entry::NetPoll => {
                unreachable!("applied inline")
            }
            Entry::Fault { node, timed } => self.apply_fault(node, timed),
            Entry::ShardRestart { cell, epoch } => {
                if self.cells[cell as usize].epoch == epoch && !self.shutting_down {
                    self.restart_shard(cell as usize);
                }
            }
            Entry::NodeRestart { node, epoch } => {
                if self.nodes[usize::from(node)].epoch == epoch && !self.shutting_down {
                    self.restart_node(node);
                }
            }
            Entry::SafetyEnd => {
                if !self.shutting_down {
                    self.end_safety();
                }
            }
            Entry::Shutdown => {
                let drain = self.config.shutdown.map_or(0, |plan| plan.drain_ns);
                self.begin_shutdown(drain);
            }
            Entry::IoDone { pending, cell } => self.complete_io(pending, cell),
        }
    }

    /// Runs shard `index` now, or when its stall ends.
    #[inline]
    fn wake(&mut self, index: usize) {
        let busy_until = self.cells[index].busy_until;
        if busy_until > self.now {
            self.reschedule(index, Some(busy_until));
        } else {
            self.make_runnable(index);
        }
    }

    fn deliver(&mut self, slot: u32, destination: usize) {
        let cell = &mut self.cells[destination];
        cell.backend.inbound.push_back(slot);
        if let Some(planted) = &mut self.planted
            && planted.duplicate()
        {
            let lent = self.lent.as_deref_mut().expect("the flights are home between ticks");
            cell.backend.inbound.push_back(lent.flights.duplicate(slot));
        }
        if cell.status != Status::Up {
            // A node's crash removes the deliveries to it, so only a down shard gets here.
            return self.discard_inbound(destination);
        }
        let at = self.now.max(cell.busy_until);
        let due_now = self.queue.peek_time().is_some_and(|time| time <= self.now);
        if at == self.now && !due_now {
            // A wake-up pushed now would be the queue's next item, popped right away by
            // `apply_due`: take it without the round trip (same order, same effect).
            if at < cell.wake_at {
                cell.wake_at = u64::MAX;
                self.make_runnable(destination);
            }
        } else if at < cell.wake_at {
            self.reschedule(destination, Some(at));
        }
    }

    /// Puts shard `index` on the runnable list unless it is there already.
    #[inline]
    fn make_runnable(&mut self, index: usize) {
        let cell = &mut self.cells[index];
        if !cell.runnable {
            cell.runnable = true;
            // Shard indices fit in u32.
            self.runnable.push(index as u32);
        }
    }

    /// Takes shard `index` off the runnable list (rare: a stall or a crash).
    fn make_unrunnable(&mut self, index: usize) {
        if self.cells[index].runnable {
            self.cells[index].runnable = false;
            // Shard indices fit in u32; the list holds each cell at most once.
            self.runnable.retain(|&cell| cell != index as u32);
        }
    }

    /// Sets the clock the shard of cell `index` reads to its node's at now.
    #[inline]
    fn set_clock(&mut self, index: usize) {
        let now = self.now;
        let cell = &mut self.cells[index];
        cell.backend.now = now;
        cell.backend.local = if self.clocks_true {
            now
        } else {
            self.nodes[usize::from(cell.node)].clock.local(now)
        };
        if let Some(planted) = &self.planted {
            cell.backend.skew_ns = planted.shard_skew(now);
        }
    }

    /// Runs one tick of shard `index` at the current time.
    fn tick(&mut self, index: usize) {
        let now = self.now;
        self.set_clock(index);
        let cell = &mut self.cells[index];
        cell.backend.lent = self.lent.take();
        let scheduler = cell.scheduler.as_mut().expect("a runnable shard is up");
        let report = scheduler.tick(&mut cell.backend);
        let failed = scheduler.failure().is_some();
        self.lent = cell.backend.lent.take();
        let end = now + u64::from(report.dispatched) * self.config.dispatch_cost_ns;
        cell.busy_until = end;
        let io_started =
            !cell.backend.io_submitted.is_empty() || !cell.backend.io_cancels.is_empty();
        let wanted = if report.has_work
            || !cell.backend.inbound.is_empty()
            || !cell.backend.io_ready.is_empty()
        {
            Some(end)
        } else if self.clocks_true {
            report.next_deadline.map(|deadline| deadline.as_nanos().max(end))
        } else {
            let clock = &self.nodes[usize::from(cell.node)].clock;
            report.next_deadline.map(|deadline| clock.true_at(deadline.as_nanos()).max(end))
        };
        let revivals = !cell.backend.revivals.is_empty();
        self.route_outbound(index, end);
        self.reschedule(index, wanted);
        if io_started {
            self.start_io(index, end);
        }
        if revivals {
            self.serve_revivals(index);
        }
        if failed {
            // The root group escalated: the shard failed, and recovers like a crashed one.
            self.crash_shard(index, false);
        }
        if self.shutting_down {
            self.note_shutdown(index);
        }
    }

    /// Sends what shard `index` sent during its tick, departing at `departure`.
    fn route_outbound(&mut self, index: usize, departure: u64) {
        if !self.routing_plain {
            return self.route_shaped(index, departure);
        }
        let (min, max) = (self.config.net_delay_min_ns, self.config.net_delay_max_ns);
        // Bounded by the transport credits.
        for position in 0..self.cells[index].backend.outbound.len() {
            let cell = &mut self.cells[index];
            let (destination_local, slot) = cell.backend.outbound[position];
            let delay = if max == 0 { 0 } else { cell.network.range_inclusive(min, max) };
            let pair = &mut cell.last_arrival[usize::from(destination_local)];
            let arrival = (departure + delay).max(*pair);
            *pair = arrival;
            let destination = cell.node_base + u32::from(destination_local);
            self.queue.push(arrival, Entry::Deliver { slot, cell: destination });
        }
        self.cells[index].backend.outbound.clear();
    }

    /// `route_outbound` with delay faults or a world plant: the delay is drawn from the
    /// shaped distribution (tail and slow mode reported as faults), and the plant may
    /// lose, reorder or delay a message.
    #[cold]
    #[inline(never)]
    fn route_shaped(&mut self, index: usize, departure: u64) {
        // Bounded by the transport credits.
        for position in 0..self.cells[index].backend.outbound.len() {
            let cell = &mut self.cells[index];
            let (destination_local, slot) = cell.backend.outbound[position];
            let (mut delay, fault) = match self.delays.draw(&mut cell.network) {
                Delay::Plain(delay) => (delay, None),
                Delay::Tail(delay) => (delay, Some((FaultKind::DelayTail, true))),
                Delay::Slow(delay) => (delay, Some((FaultKind::DelaySlow, false))),
            };
            let same_pair =
                position > 0 && cell.backend.outbound[position - 1].0 == destination_local;
            let mut bug = crate::faults::RouteBug::None;
            if let Some(planted) = &mut self.planted {
                delay += planted.extra_delay();
                bug = planted.route(departure, position, same_pair);
            }
            let pair = &mut cell.last_arrival[usize::from(destination_local)];
            let mut arrival = (departure + delay).max(*pair);
            *pair = arrival;
            let destination = cell.node_base + u32::from(destination_local);
            if let Some((kind, tail)) = fault {
                let lent = self.lent.as_deref_mut().expect("the flights are home between ticks");
                let id = lent.flights.message(slot).id();
                let event = if tail {
                    WorldEvent::DelayTail { id, delay_ns: delay }
                } else {
                    WorldEvent::DelaySlow { id, delay_ns: delay }
                };
                self.count(kind);
                // Stamped like the tick's own events, at its start: the trace's time never
                // goes back; the departure is in the delay.
                self.record_cell(index, &event);
            }
            match bug {
                RouteBug::Lose => continue,
                RouteBug::ArriveAt(time) => arrival = time,
                RouteBug::None => {}
            }
            self.queue.push(arrival, Entry::Deliver { slot, cell: destination });
        }
        self.cells[index].backend.outbound.clear();
    }

    /// Sets shard `index`'s wake-up to exactly `at` (none for `None`); a wake-up queued
    /// before for another time goes dead.
    #[inline]
    fn reschedule(&mut self, index: usize, at: Option<u64>) {
        let cell = &mut self.cells[index];
        match at {
            Some(at) if at == cell.wake_at => {}
            Some(at) => {
                cell.wake_at = at;
                // Shard indices fit in u32.
                self.queue.push(at, Entry::Wake { cell: index as u32 });
            }
            None => cell.wake_at = u64::MAX,
        }
    }

    /// Counts one injection of `kind`.
    fn count(&mut self, kind: FaultKind) {
        self.lent
            .as_deref_mut()
            .expect("the fault counts are home between ticks")
            .faults
            .counts
            .count(kind);
    }

    /// Records a world event about shard `index`, now.
    fn record_cell(&mut self, index: usize, event: &WorldEvent) {
        let cell = &self.cells[index];
        let local = self.nodes[usize::from(cell.node)].clock.local(self.now);
        let place =
            Place { time_ns: self.now, local_ns: local, node: cell.node, shard: cell.shard };
        self.sink_mut().record_world(place, event);
    }

    /// Records a world event about node `node` as a whole, now.
    fn record_node(&mut self, node: u16, event: &WorldEvent) {
        let local = self.nodes[usize::from(node)].clock.local(self.now);
        let place = Place { time_ns: self.now, local_ns: local, node, shard: ShardId::EXTERNAL };
        self.sink_mut().record_world(place, event);
    }

    fn sink(&self) -> &Sink {
        &self.lent.as_deref().expect("the sink is home between ticks").sink
    }

    /// The sink, between ticks.
    pub fn sink_mut(&mut self) -> &mut Sink {
        &mut self.lent.as_deref_mut().expect("the sink is home between ticks").sink
    }

    /// Takes the sink out when the run is over.
    pub fn into_sink(mut self) -> Sink {
        self.lent.take().expect("the sink is home between ticks").sink
    }

    /// Virtual time now, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.now
    }

    /// The phase the run is in.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// What the faults did so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.lent.as_deref().expect("the fault counts are home between ticks").faults.counts
    }

    /// The `ctx.buggify` sites active in this run, by name.
    pub fn buggify_sites(&self) -> Vec<&'static str> {
        self.lent.as_deref().expect("the sites are home between ticks").faults.buggify.active()
    }

    /// Counters of every shard, summed over its incarnations.
    pub fn counters(&self) -> Vec<ShardCounters> {
        self.cells
            .iter()
            .map(|cell| {
                let mut entries = cell.counters_before.clone();
                if let Some(scheduler) = &cell.scheduler {
                    for (sum, (_, value)) in entries.iter_mut().zip(scheduler.counters().entries())
                    {
                        sum.1 += value;
                    }
                }
                ShardCounters { node: cell.node, shard: cell.shard, entries }
            })
            .collect()
    }

    /// The read-only view observers get at the end of a run: the pools of every shard that
    /// is up, and everything still under way.
    pub fn end_view(&self, quiescent: bool) -> EndView {
        let lent = self.lent.as_deref().expect("the flights are home between ticks");
        let mut view = EndView { quiescent, ..EndView::default() };
        for entry in self.queue.entries() {
            if let Entry::Deliver { slot, cell } = entry {
                let node = self.cells[cell as usize].node;
                view.in_transit.push((node, lent.flights.message(slot).id()));
            }
        }
        for cell in &self.cells {
            let node = cell.node;
            for &slot in &cell.backend.inbound {
                view.in_transit.push((node, lent.flights.message(slot).id()));
            }
            let Some(scheduler) = &cell.scheduler else { continue };
            if cell.status != Status::Up {
                continue;
            }
            view.shards.push(ShardView {
                node,
                shard: cell.shard,
                pool_free: scheduler.pool_free(),
                timers_free: scheduler.timers_free().0,
                live: (0..cell.types).map(|t| scheduler.live_count(t)).collect(),
            });
            scheduler.for_each_queued(&mut |id| view.queued.push((node, id)));
            scheduler.for_each_pending_call(&mut |caller, correlation| {
                view.calls.push((node, caller, correlation))
            });
        }
        // The operations the world holds for the shards: pending on a disk or the network,
        // or completed and not yet reaped. The `io` checker compares them with what the
        // trace says is outstanding, so a completion the world lost is caught even while
        // other operations legitimately wait (an accept with no client).
        let mut held = |cell: usize, token: IoToken| {
            if !token.isolate().is_none() {
                let (isolate, sequence) = token.parts();
                view.io.push((self.cells[cell].node, isolate, sequence));
            }
        };
        self.io.for_each_token(&mut held);
        for (index, cell) in self.cells.iter().enumerate() {
            for submission in &cell.backend.io_submitted {
                held(index, submission.token);
            }
            for reaped in &cell.backend.io_ready {
                held(index, reaped.token);
            }
        }
        for disk in &self.disks {
            let mut paths: Vec<&str> = disk.paths().collect();
            paths.sort_unstable();
            for path in paths {
                let bytes = disk.durable(path).unwrap_or(&[]).to_vec();
                let file = DurableFile { node: disk.node(), path: path.to_string(), bytes };
                view.files.push(file);
            }
        }
        view.in_transit.sort();
        view.queued.sort();
        view.calls.sort();
        view.io.sort();
        view
    }

    /// Whether every byte and datagram the network took is accounted for (delivered,
    /// buffered, in flight, or dropped for a named reason); the message says which sum is
    /// off. The `net.accounting` check of every run.
    pub fn net_accounting(&self) -> Result<(), String> {
        self.net.check_accounting()
    }

    /// Shard failures reported so far.
    pub fn failures(&self) -> Vec<ShardFailure> {
        self.cells.iter().flat_map(|cell| cell.backend.failures.iter().copied()).collect()
    }
}

/// A timestamp on a node's clock.
fn stamp_of(nanos: u64) -> Timestamp {
    Timestamp::from_nanos(nanos)
}
