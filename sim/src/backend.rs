//! `SimBackend`: what one simulated shard sees of the world.
//!
//! The world sets its clock before each tick, lends it the trace sink and the in-flight
//! store for the tick, fills its inbound queue with the slots of messages that arrived, and
//! collects the slots of what it sent when the tick ends. A message is copied twice on its
//! way between shards: into an in-flight slot when it is sent, and out of it when it is
//! received; the world moves only slot numbers. The transport toward each other shard of
//! the node has a fixed number of credits (the ring's capacity): a send takes one, and it
//! comes back when the receiving shard takes the message out of its inbound queue.
//! Randomness comes from the shard's own PRNG tree stream.
//!
//! This module does not decide delays or order; the world does.

use std::collections::VecDeque;

use tina::{Backend, Env, Event, Message, ShardFailure, ShardId, Timestamp, TransportFull};

use crate::prng::Stream;
use crate::trace::Sink;

/// One message between shards, from its send to its receipt.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    /// Local index of the sending shard in its node.
    source: u8,
    message: Message,
}

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
}

/// What the world lends a shard for one tick (and for boot).
#[derive(Debug)]
pub(crate) struct Lent {
    pub(crate) sink: Sink,
    pub(crate) flights: Flights,
}

/// One shard's backend.
#[derive(Debug)]
pub struct SimBackend {
    node: u16,
    shard: ShardId,
    /// World time: events are stamped with it.
    pub(crate) now: Timestamp,
    /// What the shard's clock reads ahead of world time (zero unless a plant skews it).
    pub(crate) skew_ns: u64,
    random: Stream,
    /// In-flight slots of the messages that arrived, in arrival order.
    pub(crate) inbound: VecDeque<u32>,
    /// Sent this tick: destination shard and in-flight slot.
    pub(crate) outbound: Vec<(u8, u32)>,
    /// Free ring slots toward each shard of the node.
    pub(crate) credits: Box<[u32]>,
    /// Messages taken from each source this tick: credits to give back.
    pub(crate) consumed: Box<[u32]>,
    /// Lent by the world for the duration of a tick (and of boot).
    pub(crate) lent: Option<Box<Lent>>,
    pub(crate) failures: Vec<ShardFailure>,
}

impl SimBackend {
    /// A backend for `shard` of `node`, with `capacity` credits toward each of the node's
    /// `shard_count` shards.
    pub(crate) fn new(
        node: u16,
        shard: ShardId,
        shard_count: usize,
        capacity: u32,
        random: Stream,
    ) -> SimBackend {
        SimBackend {
            node,
            shard,
            now: Timestamp::ZERO,
            skew_ns: 0,
            random,
            inbound: VecDeque::with_capacity(shard_count * capacity as usize),
            outbound: Vec::with_capacity(shard_count * capacity as usize),
            credits: vec![capacity; shard_count].into_boxed_slice(),
            consumed: vec![0; shard_count].into_boxed_slice(),
            lent: None,
            failures: Vec::new(),
        }
    }

    #[inline]
    fn lent(&mut self) -> &mut Lent {
        self.lent.as_deref_mut().expect("the world lends the sink and flights for every tick")
    }
}

impl Env for SimBackend {
    fn random_u64(&mut self) -> u64 {
        self.random.next_u64()
    }

    fn send_remote(&mut self, to: ShardId, message: &Message) -> Result<(), TransportFull> {
        let credits = self.credits.get_mut(to.index()).ok_or(TransportFull)?;
        if *credits == 0 {
            return Err(TransportFull);
        }
        *credits -= 1;
        let source = self.shard.0;
        let slot = self.lent().flights.insert(source, message);
        self.outbound.push((to.0, slot));
        Ok(())
    }

    fn trace(&mut self, event: &Event) {
        let (time_ns, node, shard) = (self.now.as_nanos(), self.node, self.shard);
        self.lent().sink.record(time_ns, node, shard, event);
    }
}

impl Backend for SimBackend {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.now.as_nanos() + self.skew_ns)
    }

    fn tracing(&self) -> bool {
        // The trace hash is computed on every run.
        true
    }

    fn receive_remote(&mut self) -> Option<Message> {
        let slot = self.inbound.pop_front()?;
        let flights = &mut self.lent.as_deref_mut().expect("lent for every tick").flights;
        let flight = &flights.slots[slot as usize];
        let (source, message) = (flight.source, flight.message);
        flights.free.push(slot);
        self.consumed[usize::from(source)] += 1;
        Some(message)
    }

    fn flush_remote(&mut self) {}

    fn shard_failed(&mut self, failure: &ShardFailure) {
        self.failures.push(*failure);
    }

    fn park(&mut self, _deadline: Option<Timestamp>) {}

    fn stop_requested(&mut self) -> bool {
        false
    }
}
