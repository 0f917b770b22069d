//! `SimBackend`: what one simulated shard sees of the world.
//!
//! The world sets its clock before each tick, lends it the trace sink and the in-flight
//! store for the tick, fills its inbound queue with the slots of messages that arrived, and
//! collects the slots of what it sent when the tick ends. A message is copied twice on its
//! way between shards: into an in-flight slot when it is sent, and out of it when it is
//! received; the world moves only slot numbers. The transport toward each other shard of
//! the node has a fixed number of credits (the ring's capacity): a send takes one, and it
//! comes back when the receiving shard takes the message out of its inbound queue (the
//! credits live in the lent store too, so the receiver returns them itself; the sender
//! cannot tell when, since it never runs during the receiver's tick and never sends to
//! itself through the transport). Randomness comes from the shard's own PRNG tree stream.
//!
//! The clock a shard reads is its node's (`local`), set by the world before each tick;
//! events are stamped with both true time and the node's clock. The backend injects the
//! faults that happen inside a tick itself: failed inits and `ctx.buggify` firings, each
//! from its own stream, while the world says faults are active.
//!
//! This module does not decide delays or order; the world does.

use std::collections::VecDeque;

use tina::io::{IoReaped, IoSubmission, IoToken};
use tina::{
    Backend, Env, Event, Handle, Label, Message, ShardFailure, ShardId, Timestamp, TransportFull,
};
use tina_checkers::WorldEvent;

use crate::faults::{FaultKind, ShardFaults, SharedFaults, SiteState};
use crate::prng::Stream;
use crate::trace::{Place, Sink};

/// One message between shards, from its send to its receipt.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    /// Local index of the sending shard in its node.
    source: u8,
    message: Message,
}

/// Entries of a shard's inbound and outbound queues reserved at boot. The credits bound
/// each queue by the node's shard count times the ring capacity; reserving that bound up
/// front would cost nodes x shards^2 x capacity entries for a world that may use few, so
/// the queues start at this size and grow (amortised, only when a new high-water mark is
/// reached, never in a steady state) up to the bound.
pub const SHARD_QUEUE_RESERVED_MAX: usize = 1024;

/// Every message in flight in the world, in numbered slots (a slot is reused once its
/// message is received).
#[derive(Debug, Default)]
pub(crate) struct Flights {
    slots: Vec<InFlight>,
    free: Vec<u32>,
}

impl Flights {
    /// Makes room for `capacity` messages in flight at once, so that sends and receipts
    /// never allocate.
    pub(crate) fn reserve(&mut self, capacity: usize) {
        self.slots.reserve(capacity.saturating_sub(self.slots.len()));
        self.free.reserve(capacity.saturating_sub(self.free.len()));
    }

    /// Stores `message` from local shard `source`; returns its slot.
    #[inline]
    fn insert(&mut self, source: u8, message: &Message) -> u32 {
        let flight = InFlight { source, message: *message };
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = flight;
                slot
            }
            None => {
                self.slots.push(flight);
                // At most `capacity` slots: credits bound the messages in flight.
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// A second copy of the message in `slot`, in a slot of its own (a world plant).
    pub(crate) fn duplicate(&mut self, slot: u32) -> u32 {
        let flight = self.slots[slot as usize];
        self.insert(flight.source, &flight.message)
    }

    /// Frees `slot`, whose message will never be received (its node crashed).
    pub(crate) fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }

    /// The message in `slot`.
    pub(crate) fn message(&self, slot: u32) -> &Message {
        &self.slots[slot as usize].message
    }
}

/// What the world lends a shard for one tick (and for boot).
#[derive(Debug)]
pub(crate) struct Lent {
    pub(crate) sink: Sink,
    pub(crate) flights: Flights,
    /// Free ring slots of every ordered shard pair of every node: node by node, a row per
    /// sending shard, a column per receiving shard.
    pub(crate) credits: Vec<u32>,
    /// Fault counts, buggify sites and whether faults are on.
    pub(crate) faults: SharedFaults,
}

/// One shard's backend.
#[derive(Debug)]
pub struct SimBackend {
    node: u16,
    shard: ShardId,
    /// True time of the tick: events are stamped with it.
    pub(crate) now: u64,
    /// The node's clock at the tick: what the shard reads, and the events' second stamp.
    pub(crate) local: u64,
    /// What the shard's clock reads ahead of its node's (zero unless a plant skews it).
    pub(crate) skew_ns: u64,
    random: Stream,
    /// In-flight slots of the messages that arrived, in arrival order.
    pub(crate) inbound: VecDeque<u32>,
    /// Sent this tick: destination shard and in-flight slot.
    pub(crate) outbound: Vec<(u8, u32)>,
    /// Shards of the node.
    shard_count: usize,
    /// Where the node's credits start in `Lent::credits`.
    credits_base: usize,
    /// Lent by the world for the duration of a tick (and of boot).
    pub(crate) lent: Option<Box<Lent>>,
    pub(crate) failures: Vec<ShardFailure>,
    /// The faults this shard injects itself.
    pub(crate) faults: ShardFaults,
    /// Shards of the node whose revival an isolate asked for during the tick.
    pub(crate) revivals: Vec<ShardId>,
    /// I/O the shard submitted during the tick, for the world to start (`world::io`).
    pub(crate) io_submitted: Vec<IoSubmission>,
    /// Operations whose cancel the shard asked for during the tick.
    pub(crate) io_cancels: Vec<IoToken>,
    /// Completed operations, in completion order, for the shard to reap.
    pub(crate) io_ready: VecDeque<IoReaped>,
}

impl SimBackend {
    /// A backend for `shard` of `node`, whose node has `shard_count` shards with `capacity`
    /// credits per ordered pair, kept in `Lent::credits` from `credits_base` on.
    pub(crate) fn new(
        node: u16,
        shard: ShardId,
        shard_count: usize,
        capacity: u32,
        credits_base: usize,
        random: Stream,
        faults: ShardFaults,
    ) -> SimBackend {
        SimBackend {
            node,
            shard,
            now: 0,
            local: 0,
            skew_ns: 0,
            random,
            inbound: VecDeque::with_capacity(
                (shard_count * capacity as usize).min(SHARD_QUEUE_RESERVED_MAX),
            ),
            outbound: Vec::with_capacity(
                (shard_count * capacity as usize).min(SHARD_QUEUE_RESERVED_MAX),
            ),
            shard_count,
            credits_base,
            lent: None,
            failures: Vec::new(),
            faults,
            revivals: Vec::with_capacity(shard_count),
            io_submitted: Vec::new(),
            io_cancels: Vec::new(),
            io_ready: VecDeque::new(),
        }
    }

    /// Where an event of this shard's current tick happens.
    #[inline]
    pub(crate) fn place(&self) -> Place {
        Place { time_ns: self.now, local_ns: self.local, node: self.node, shard: self.shard }
    }

    #[inline]
    fn lent(&mut self) -> &mut Lent {
        self.lent.as_deref_mut().expect("the world lends the sink and flights for every tick")
    }
}

impl SimBackend {
    /// Takes the first arrived message, giving its ring slot back to its sender.
    #[inline(never)]
    fn receive_one(&mut self) -> Option<Message> {
        let slot = self.inbound.pop_front()?;
        let (base, count, shard) = (self.credits_base, self.shard_count, self.shard.index());
        let lent = self.lent();
        let source = usize::from(lent.flights.slots[slot as usize].source);
        lent.credits[base + source * count + shard] += 1;
        lent.flights.free.push(slot);
        Some(lent.flights.slots[slot as usize].message)
    }
}

impl Env for SimBackend {
    fn random_u64(&mut self) -> u64 {
        self.random.next_u64()
    }

    fn send_remote(&mut self, to: ShardId, message: &Message) -> Result<(), TransportFull> {
        if to.index() >= self.shard_count {
            return Err(TransportFull);
        }
        // The credits returned at receipt (see the module documentation) rely on it.
        assert!(to != self.shard, "a shard sends to itself through the transport");
        let pair = self.credits_base + self.shard.index() * self.shard_count + to.index();
        let source = self.shard.0;
        let lent = self.lent();
        if lent.credits[pair] == 0 {
            return Err(TransportFull);
        }
        lent.credits[pair] -= 1;
        let slot = lent.flights.insert(source, message);
        self.outbound.push((to.0, slot));
        Ok(())
    }

    fn trace(&mut self, event: &Event) {
        let (time_ns, local_ns, node, shard) = (self.now, self.local, self.node, self.shard);
        self.lent().sink.record(time_ns, local_ns, node, shard, event);
    }

    fn buggify(&mut self, site: Label) -> bool {
        let fire = self.faults.buggify_fire;
        let place = self.place();
        let lent = self.lent.as_deref_mut().expect("the world lends the sink for every tick");
        if !lent.faults.active {
            return false;
        }
        match lent.faults.buggify.state(site) {
            SiteState::Inactive => return false,
            SiteState::NewlyActive => {
                lent.sink.record_world(place, &WorldEvent::BuggifyActive { site })
            }
            SiteState::Active => {}
        }
        if !self.faults.fire_stream.chance(fire) {
            return false;
        }
        lent.faults.counts.count(FaultKind::Buggify);
        lent.sink.record_world(place, &WorldEvent::Buggify { site });
        true
    }

    fn revive_shard(&mut self, shard: ShardId) {
        if shard.index() < self.shard_count && !self.revivals.contains(&shard) {
            // At most one request per shard of the node: the capacity reserved at boot.
            self.revivals.push(shard);
        }
    }
}

impl Backend for SimBackend {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.local + self.skew_ns)
    }

    fn tracing(&self) -> bool {
        // The trace hash is computed on every run.
        true
    }

    fn buggify_on(&self) -> bool {
        // Off for the whole run when no site can fire; the phase is checked per call.
        self.faults.buggify_fire.numerator() > 0
    }

    fn receive_remote(&mut self) -> Option<Message> {
        // Every tick ends with this call; keep it short.
        if self.inbound.is_empty() {
            return None;
        }
        self.receive_one()
    }

    fn flush_remote(&mut self) {}

    fn shard_failed(&mut self, failure: &ShardFailure) {
        self.failures.push(*failure);
    }

    fn fail_init(&mut self, isolate: Handle) -> bool {
        let ratio = self.faults.init_failure;
        let place = self.place();
        let lent = self.lent.as_deref_mut().expect("the world lends the sink for every tick");
        if ratio.numerator() == 0 || !lent.faults.active || !self.faults.init_stream.chance(ratio) {
            return false;
        }
        lent.faults.counts.count(FaultKind::InitFailure);
        lent.sink.record_world(place, &WorldEvent::InitFailure { handle: isolate });
        true
    }

    fn io_submit(&mut self, submission: IoSubmission) -> Result<(), IoReaped> {
        // The world starts it after the tick, against the node's disk or the network.
        self.io_submitted.push(submission);
        Ok(())
    }

    fn io_cancel(&mut self, token: IoToken) {
        self.io_cancels.push(token);
    }

    fn io_reap(&mut self) -> Option<IoReaped> {
        self.io_ready.pop_front()
    }

    fn park(&mut self, _deadline: Option<Timestamp>) {}

    fn stop_requested(&mut self) -> bool {
        false
    }
}
