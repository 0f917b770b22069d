//! The simulated world: nodes of shards, one event queue, virtual time.
//!
//! One priority queue ordered by (time, sequence) holds message deliveries and shard
//! wake-ups (a shard has at most one live wake-up: the earliest time it asked for; later
//! ones are dropped, earlier ones replace them; one due now that would be the queue's very
//! next item is applied without entering it). When no shard can run at the current
//! instant, time jumps to the queue's head; there is no tick loop. When several shards can
//! run at the same instant, the scheduling stream picks which goes first.
//!
//! A tick starting at `t` that made `n` dispatches ends at `t + n * dispatch_cost`; the
//! messages it sent depart then, each with a delay drawn from the sender's network stream,
//! FIFO per ordered shard pair; the shard does not run again before then.
//!
//! The world owns every piece of mutable state of a run. It does not know scenarios, only
//! specs and the sink.

use core::cmp::Reverse;
use std::collections::BinaryHeap;

use tina::{BootError, Counters, Scheduler, ShardFailure, ShardId, SystemSpec, Timestamp};

use crate::backend::{Flights, Lent, SimBackend};
use crate::plant::WorldBug;
use crate::prng::{PrngTree, Scope, Seed, Stream};
use crate::trace::Sink;
use tina_checkers::{EndView, ShardView};

/// How the world models time and the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorldConfig {
    /// Virtual time each handler call costs, in nanoseconds.
    pub dispatch_cost_ns: u64,
    /// Smallest cross-shard delay, in nanoseconds.
    pub net_delay_min_ns: u64,
    /// Largest cross-shard delay, in nanoseconds (inclusive).
    pub net_delay_max_ns: u64,
    /// Messages in flight per ordered shard pair (the ring's capacity).
    pub transport_capacity: u32,
    /// A planted bug in the world (canaries only).
    pub bug: Option<WorldBug>,
}

impl Default for WorldConfig {
    fn default() -> WorldConfig {
        WorldConfig {
            dispatch_cost_ns: 1_000,
            net_delay_min_ns: 1_000_000,
            net_delay_max_ns: 10_000_000,
            transport_capacity: 1024,
            bug: None,
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
}

/// High bit of `Item::what`: a wake-up (low bits: shard); otherwise a delivery (bits
/// 0..32: in-flight slot, bits 32..63: destination shard).
const WAKE: u64 = 1 << 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    time: u64,
    sequence: u64,
    what: u64,
}

/// One shard of one node.
struct Cell {
    node: u16,
    shard: ShardId,
    /// Global index of the node's shard 0.
    node_base: u32,
    scheduler: Scheduler<SimBackend>,
    backend: SimBackend,
    busy_until: u64,
    /// The live wake-up's time, or `u64::MAX`.
    wake_at: u64,
    runnable: bool,
    /// Isolate types of the node's spec.
    types: usize,
    /// Arrival time of the last message sent to each shard of the node (FIFO per pair).
    last_arrival: Box<[u64]>,
    network: Stream,
}

/// A running simulation.
pub struct World {
    cells: Vec<Cell>,
    queue: BinaryHeap<Reverse<Item>>,
    sequence: u64,
    now: u64,
    runnable: Vec<u32>,
    scheduling: Stream,
    config: WorldConfig,
    /// The sink and the in-flight store, at home between ticks.
    lent: Option<Box<Lent>>,
    /// Cross-shard messages routed and delivered so far (world plants count them).
    routed: u64,
    delivered: u64,
}

/// Read by the `static-counter` plant: state that survives from one run to the next in
/// one process, exactly what the determinism check exists to catch.
static PLANTED_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl core::fmt::Debug for World {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("World")
            .field("now", &self.now)
            .field("shards", &self.cells.len())
            .finish_non_exhaustive()
    }
}

impl World {
    /// Boots every shard of every node (node ids are positions in `nodes`) at time zero,
    /// feeding boot's events to `sink`, and makes every shard runnable.
    pub fn boot(
        nodes: &[SystemSpec],
        config: WorldConfig,
        seed: u64,
        sink: Sink,
    ) -> Result<World, BootError> {
        let tree = PrngTree::new(Seed::new(seed));
        let credits = Vec::new();
        let mut lent = Box::new(Lent { sink, flights: Flights::default(), credits });
        lent.sink.start_observers(nodes);
        let mut lent = Some(lent);
        let mut cells = Vec::new();
        for (node, spec) in nodes.iter().enumerate() {
            spec.validate()?;
            // At most 65,536 nodes: node ids are 16 bits in the trace.
            let node = node as u16;
            let shard_count = spec.shard_count();
            let node_base = cells.len() as u32;
            let lent_here = lent.as_deref_mut().expect("the sink and flights are home at boot");
            let credits_base = lent_here.credits.len();
            let pairs = shard_count * shard_count;
            lent_here.credits.resize(credits_base + pairs, config.transport_capacity);
            for index in 0..shard_count {
                // Validated: at most 255 shards.
                let shard = ShardId(index as u8);
                let scope = Scope::Shard { node, shard: u16::from(shard.0) };
                let random = tree.stream(scope, "isolate.random");
                let mut backend = SimBackend::new(
                    node,
                    shard,
                    shard_count,
                    config.transport_capacity,
                    credits_base,
                    random,
                );
                backend.lent = lent.take();
                let scheduler = Scheduler::boot(spec, shard, &mut backend);
                lent = backend.lent.take();
                cells.push(Cell {
                    node,
                    shard,
                    node_base,
                    scheduler: scheduler?,
                    backend,
                    busy_until: 0,
                    wake_at: u64::MAX,
                    runnable: false,
                    types: spec.type_count(),
                    last_arrival: vec![0; shard_count].into_boxed_slice(),
                    network: tree.stream(scope, "net.delay"),
                });
            }
        }
        let lent_here = lent.as_deref_mut().expect("the sink and flights are home at boot");
        let flights_max = lent_here.credits.len() * config.transport_capacity as usize;
        lent_here.flights.reserve(flights_max);
        let mut world = World {
            queue: BinaryHeap::with_capacity(flights_max + 4 * cells.len()),
            sequence: 0,
            now: 0,
            runnable: Vec::with_capacity(cells.len()),
            scheduling: tree.stream(Scope::World, "scheduler.pick"),
            config,
            lent,
            cells,
            routed: 0,
            delivered: 0,
        };
        for index in 0..world.cells.len() {
            world.route_outbound(index, 0);
            world.schedule(index, 0);
        }
        Ok(world)
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
            self.apply_due();
            // Every jump moves time forward (bounded by `time_max`) or applies a queued
            // item (each was pushed by a tick). Neither records an event, so the sink's
            // answers above still hold.
            while self.runnable.is_empty() {
                match self.queue.peek() {
                    None => return Ending::Quiescent,
                    Some(Reverse(head)) if head.time > limits.time_max_ns => {
                        return Ending::TimeMax;
                    }
                    Some(Reverse(head)) => self.now = head.time,
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

    /// Applies every queued item due at or before now.
    fn apply_due(&mut self) {
        // Bounded by the queue's length.
        while let Some(&Reverse(item)) = self.queue.peek() {
            if item.time > self.now {
                return;
            }
            self.queue.pop();
            if item.what & WAKE != 0 {
                let index = (item.what & !WAKE) as usize;
                let cell = &mut self.cells[index];
                if cell.wake_at == item.time {
                    cell.wake_at = u64::MAX;
                    self.make_runnable(index);
                }
            } else {
                self.deliver(item.what);
            }
        }
    }

    fn deliver(&mut self, what: u64) {
        let slot = what as u32;
        let destination = (what >> 32) as usize;
        let cell = &mut self.cells[destination];
        cell.backend.inbound.push_back(slot);
        self.delivered += 1;
        if self.config.bug == Some(WorldBug::DuplicateDelivery) && self.delivered == 5 {
            let lent = self.lent.as_deref_mut().expect("the flights are home between ticks");
            cell.backend.inbound.push_back(lent.flights.duplicate(slot));
        }
        let at = self.now.max(cell.busy_until);
        let due_now = matches!(self.queue.peek(), Some(Reverse(head)) if head.time <= self.now);
        if at == self.now && !due_now {
            // A wake-up pushed now would be the queue's next item, popped right away by
            // `apply_due`: take it without the round trip (same order, same effect).
            if at < cell.wake_at {
                cell.wake_at = u64::MAX;
                self.make_runnable(destination);
            }
        } else {
            self.schedule(destination, at);
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

    /// Runs one tick of shard `index` at the current time.
    fn tick(&mut self, index: usize) {
        let now = self.now;
        let cell = &mut self.cells[index];
        cell.backend.now = Timestamp::from_nanos(now);
        if self.config.bug == Some(WorldBug::ClockJump) && now >= 1_000_000_000 {
            cell.backend.skew_ns = 100_000_000;
        }
        cell.backend.lent = self.lent.take();
        let report = cell.scheduler.tick(&mut cell.backend);
        self.lent = cell.backend.lent.take();
        let end = now + u64::from(report.dispatched) * self.config.dispatch_cost_ns;
        cell.busy_until = end;
        let more = report.has_work || !cell.backend.inbound.is_empty();
        self.route_outbound(index, end);
        if more {
            self.schedule(index, end);
        } else if let Some(deadline) = report.next_deadline {
            self.schedule(index, deadline.as_nanos().max(end));
        }
    }

    /// Sends what shard `index` sent during its tick, departing at `departure`.
    fn route_outbound(&mut self, index: usize, departure: u64) {
        let (min, max) = (self.config.net_delay_min_ns, self.config.net_delay_max_ns);
        // Bounded by the transport credits.
        for position in 0..self.cells[index].backend.outbound.len() {
            let cell = &mut self.cells[index];
            let (destination_local, slot) = cell.backend.outbound[position];
            let mut delay = if max == 0 { 0 } else { cell.network.range_inclusive(min, max) };
            if self.config.bug == Some(WorldBug::StaticCounter) && self.routed == 0 {
                // The first message's delay grows by one nanosecond per earlier run in this
                // process.
                delay += PLANTED_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let pair = &mut cell.last_arrival[usize::from(destination_local)];
            let mut arrival = (departure + delay).max(*pair);
            *pair = arrival;
            self.routed += 1;
            match self.config.bug {
                Some(WorldBug::LoseMessage) if self.routed == 5 => continue,
                Some(WorldBug::Reorder)
                    if position > 0
                        && cell.backend.outbound[position - 1].0 == destination_local
                        && self.routed < 1_000_000 =>
                {
                    // Overtake the message before it, once.
                    arrival = departure.saturating_sub(1).max(1);
                    self.routed = 1_000_000;
                }
                _ => {}
            }
            let destination = cell.node_base + u32::from(destination_local);
            self.push(arrival, u64::from(slot) | (u64::from(destination) << 32));
        }
        self.cells[index].backend.outbound.clear();
    }

    /// Asks for shard `index` to run at `at` (kept only if earlier than its live wake-up).
    fn schedule(&mut self, index: usize, at: u64) {
        if at < self.cells[index].wake_at {
            self.cells[index].wake_at = at;
            self.push(at, WAKE | index as u64);
        }
    }

    fn push(&mut self, time: u64, what: u64) {
        self.sequence += 1;
        self.queue.push(Reverse(Item { time, sequence: self.sequence, what }));
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

    /// Counters of every shard: (node, shard, counters).
    pub fn counters(&self) -> Vec<(u16, ShardId, Counters)> {
        self.cells.iter().map(|cell| (cell.node, cell.shard, *cell.scheduler.counters())).collect()
    }

    /// The read-only view observers get at the end of a run.
    pub fn end_view(&self, quiescent: bool) -> EndView {
        let shards = self
            .cells
            .iter()
            .map(|cell| ShardView {
                node: cell.node,
                shard: cell.shard,
                pool_free: cell.scheduler.pool_free(),
                timers_free: cell.scheduler.timers_free().0,
                live: (0..cell.types).map(|t| cell.scheduler.live_count(t)).collect(),
            })
            .collect();
        EndView { quiescent, shards }
    }

    /// Shard failures reported so far.
    pub fn failures(&self) -> Vec<ShardFailure> {
        self.cells.iter().flat_map(|cell| cell.backend.failures.iter().copied()).collect()
    }
}
