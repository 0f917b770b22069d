//! `SimBackend`: what one simulated shard sees of the world.
//!
//! The world sets its clock before each tick, lends it the trace sink for the tick, fills
//! its inbound queue with messages that arrived, and collects what it sent when the tick
//! ends. The transport toward each other shard of the node has a fixed number of credits
//! (the ring's capacity): a send takes one, and it comes back when the receiving shard
//! takes the message out of its inbound queue. Randomness comes from the shard's own PRNG
//! tree stream.
//!
//! This module does not decide delays or order; the world does.

use std::collections::VecDeque;

use tina::{Backend, Env, Event, Message, ShardFailure, ShardId, Timestamp, TransportFull};

use crate::prng::Stream;
use crate::trace::Sink;

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
    /// Arrived messages with the local index of the shard that sent them, in arrival order.
    pub(crate) inbound: VecDeque<(u8, Message)>,
    /// Sent this tick: destination shard and message.
    pub(crate) outbound: Vec<(u8, Message)>,
    /// Free ring slots toward each shard of the node.
    pub(crate) credits: Box<[u32]>,
    /// Messages taken from each source this tick: credits to give back.
    pub(crate) consumed: Box<[u32]>,
    /// Lent by the world for the duration of a tick (and of boot).
    pub(crate) sink: Option<Box<Sink>>,
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
            sink: None,
            failures: Vec::new(),
        }
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
        self.outbound.push((to.0, *message));
        Ok(())
    }

    fn trace(&mut self, event: &Event) {
        let sink = self.sink.as_mut().expect("the world lends the sink for every tick");
        sink.record(self.now.as_nanos(), self.node, self.shard, event);
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
        let (source, message) = self.inbound.pop_front()?;
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
