//! A deterministic backend for unit tests of isolates: a manual clock, in-memory transports
//! between shards, a SplitMix64 random stream and an optional event recorder.
//!
//! `TestWorld` boots every shard of a spec on one thread and ticks them in shard order. It
//! is a test harness, not the simulator: there is no virtual network delay, no random fault
//! and no interleaving search (see `tina-sim` for those); a test may crash and restart a
//! shard, kill an isolate or fail an init by hand. Once built it does not allocate: the
//! transports and the event recorder have fixed capacities, and events past the recorder's
//! capacity are only counted.

use core::time::Duration;
use std::collections::VecDeque;

use crate::backend::{Backend, Env, Timestamp, TransportFull};
use crate::handle::Handle;
use crate::handle::ShardId;
use crate::io::{IoError, IoReaped, IoRequest, IoResult, IoSubmission, IoToken};
use crate::label::Label;
use crate::message::{Message, MessageId};
use crate::payload::{Outgoing, Payload, Tag};
use crate::ring::Ring;
use crate::scheduler::{Scheduler, TickReport};
use crate::shutdown::ShutdownReport;
use crate::spec::{BootError, SystemSpec};
use crate::trace::{Counters, Event, ShardFailure};

/// Sizes of a `TestWorld`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestConfig {
    /// Envelopes each shard may have in flight toward other shards between two ticks.
    pub transport_capacity: usize,
    /// Events recorded per shard; later events are only counted. Zero turns tracing off.
    pub event_capacity: usize,
    /// Seed of the random streams (shard `i` uses `seed + i`).
    pub seed: u64,
}

impl Default for TestConfig {
    fn default() -> TestConfig {
        TestConfig { transport_capacity: 1024, event_capacity: 1 << 16, seed: 1 }
    }
}

/// One shard's deterministic backend.
#[derive(Debug)]
pub struct TestBackend {
    now: Timestamp,
    random_state: u64,
    inbound: Ring<Message>,
    outbound: Ring<(ShardId, Message)>,
    events: Vec<Event>,
    event_capacity: usize,
    events_seen: u64,
    io_submitted: VecDeque<IoSubmission>,
    io_script: VecDeque<(IoResult, Vec<u8>)>,
    io_ready: VecDeque<(IoSubmission, IoResult, Vec<u8>)>,
    io_log: Vec<IoRequest>,
    io_cancelled: Vec<IoToken>,
    failures: Vec<ShardFailure>,
    /// Slot addresses whose next `init` fails (`fail_next_init`).
    init_failures: Vec<Handle>,
}

impl TestBackend {
    /// A backend with the given capacities.
    pub fn new(shard: ShardId, config: &TestConfig) -> TestBackend {
        let blank = Message::system(MessageId::NONE, Handle::NONE, Tag::NONE);
        TestBackend {
            now: Timestamp::ZERO,
            random_state: config.seed.wrapping_add(shard.0 as u64),
            inbound: Ring::new(config.transport_capacity, blank),
            outbound: Ring::new(config.transport_capacity, (ShardId(0), blank)),
            events: Vec::with_capacity(config.event_capacity),
            event_capacity: config.event_capacity,
            events_seen: 0,
            io_submitted: VecDeque::new(),
            io_script: VecDeque::new(),
            io_ready: VecDeque::new(),
            io_log: Vec::new(),
            io_cancelled: Vec::new(),
            failures: Vec::new(),
            init_failures: Vec::new(),
        }
    }

    /// Makes the next `init` that runs in `isolate`'s slot (whatever the incarnation) fail
    /// as an injected fault (`Backend::fail_init`). Several calls fail several inits.
    pub fn fail_next_init(&mut self, isolate: Handle) {
        self.init_failures.push(isolate.latest());
    }

    /// Scripts the completion of the oldest submission not yet completed (now, or when it
    /// is submitted). For `IoResult::Received`, `data` is written into the receive buffer
    /// (cut to the operation's limit and the buffer size) and `len` is set to what fit.
    pub fn script_io(&mut self, result: IoResult, data: &[u8]) {
        self.io_script.push_back((result, data.to_vec()));
        self.match_script();
    }

    /// Every submission so far, in order (without their buffers).
    pub fn io_submissions(&self) -> &[IoRequest] {
        &self.io_log
    }

    /// Every cancel the shard asked for (timeouts of `Effect::IoWithin`), in order.
    pub fn io_cancels(&self) -> &[IoToken] {
        &self.io_cancelled
    }

    /// Submissions waiting for a scripted completion.
    pub fn io_unscripted(&self) -> usize {
        self.io_submitted.len()
    }

    /// Shard failures reported to this backend.
    pub fn failures(&self) -> &[ShardFailure] {
        &self.failures
    }

    fn match_script(&mut self) {
        // Bounded by the shorter of the two queues.
        while !self.io_submitted.is_empty() && !self.io_script.is_empty() {
            let (Some(submission), Some((result, data))) =
                (self.io_submitted.pop_front(), self.io_script.pop_front())
            else {
                break;
            };
            self.io_ready.push_back((submission, result, data));
        }
    }

    /// Events recorded so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Events seen, recorded or not.
    pub fn events_seen(&self) -> u64 {
        self.events_seen
    }

    /// Forgets recorded events.
    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, duration: Duration) {
        self.now = self.now.saturating_add(duration);
    }
}

impl Env for TestBackend {
    fn random_u64(&mut self) -> u64 {
        // SplitMix64: a tiny, well-mixed stream; good enough for tests.
        self.random_state = self.random_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.random_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn send_remote(&mut self, to: ShardId, message: &Message) -> Result<(), TransportFull> {
        self.outbound.push((to, *message)).map_err(|_| TransportFull)
    }

    fn trace(&mut self, event: &Event) {
        self.events_seen += 1;
        if self.events.len() < self.event_capacity {
            self.events.push(*event);
        }
    }
}

impl Backend for TestBackend {
    fn now(&self) -> Timestamp {
        self.now
    }

    fn tracing(&self) -> bool {
        self.event_capacity > 0
    }

    fn receive_remote(&mut self) -> Option<Message> {
        self.inbound.pop()
    }

    fn flush_remote(&mut self) {}

    fn io_submit(&mut self, submission: IoSubmission) -> Result<(), IoReaped> {
        self.io_log.push(submission.request());
        self.io_submitted.push_back(submission);
        self.match_script();
        Ok(())
    }

    fn io_cancel(&mut self, token: IoToken) {
        self.io_cancelled.push(token);
        // Only an operation with no scripted completion yet can still be cancelled.
        if let Some(at) = self.io_submitted.iter().position(|s| s.token == token)
            && let Some(submission) = self.io_submitted.remove(at)
        {
            self.io_ready.push_back((submission, IoResult::Failed(IoError::TimedOut), Vec::new()));
        }
    }

    fn io_reap(&mut self) -> Option<IoReaped> {
        let (submission, result, data) = self.io_ready.pop_front()?;
        Some(submission.complete(result, &data))
    }

    fn shard_failed(&mut self, failure: &ShardFailure) {
        self.failures.push(*failure);
    }

    fn fail_init(&mut self, isolate: Handle) -> bool {
        if self.init_failures.is_empty() {
            return false;
        }
        let Some(index) = self.init_failures.iter().position(|&h| h == isolate.latest()) else {
            return false;
        };
        self.init_failures.remove(index);
        true
    }

    fn park(&mut self, _deadline: Option<Timestamp>) {}

    fn stop_requested(&mut self) -> bool {
        true
    }
}

/// Every shard of a spec on one thread, ticked in shard order. A down shard (crashed, not
/// restarted) is not ticked: its arrivals are discarded instead.
#[derive(Debug)]
pub struct TestWorld {
    schedulers: Vec<Scheduler<TestBackend>>,
    backends: Vec<TestBackend>,
    injected: u64,
    /// The spec every shard booted from, to restart crashed shards.
    spec: SystemSpec,
}

impl TestWorld {
    /// Boots every shard of `spec`.
    pub fn boot(spec: &SystemSpec, config: TestConfig) -> Result<TestWorld, BootError> {
        spec.validate()?;
        let shard_count = spec.shard_count();
        // Shard counts are at most 255 once validated.
        let shards = (0..shard_count).map(|i| ShardId(i as u8));
        let mut backends: Vec<TestBackend> =
            shards.clone().map(|s| TestBackend::new(s, &config)).collect();
        let mut schedulers = Vec::with_capacity(shard_count);
        for (shard, backend) in shards.zip(backends.iter_mut()) {
            schedulers.push(Scheduler::boot(spec, shard, backend)?);
        }
        let mut world = TestWorld { schedulers, backends, injected: 0, spec: spec.clone() };
        world.route();
        Ok(world)
    }

    /// Ticks every shard once, in shard order, routing cross-shard envelopes after each; a
    /// down shard discards its arrivals instead. Returns the sum of the reports.
    pub fn tick(&mut self) -> TickReport {
        let mut total = TickReport::default();
        for index in 0..self.schedulers.len() {
            let (scheduler, backend) = (&mut self.schedulers[index], &mut self.backends[index]);
            if scheduler.is_down() {
                total.inbound += scheduler.discard_inbound(backend);
                continue;
            }
            let report = scheduler.tick(backend);
            total.dispatched += report.dispatched;
            total.inbound += report.inbound;
            total.has_work |= report.has_work;
            total.io_in_flight += report.io_in_flight;
            total.next_deadline = match (total.next_deadline, report.next_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.route();
        }
        total.has_work |= self
            .backends
            .iter()
            .any(|b| !b.inbound.is_empty() || !b.outbound.is_empty() || !b.io_ready.is_empty());
        total
    }

    /// Ticks until no shard has work and no envelope is in transit, or `ticks_max` ticks
    /// ran. Returns the ticks run.
    pub fn run_until_idle(&mut self, ticks_max: u64) -> u64 {
        for ticks in 0..ticks_max {
            if !self.tick().has_work {
                return ticks + 1;
            }
        }
        ticks_max
    }

    /// Delivers `payload` to `to` from outside the system, as if it arrived from the
    /// transport: it enters the mailbox on the destination shard's next tick, with source
    /// `Handle::NONE` and an id whose origin is `ShardId::EXTERNAL`. There is no `Send`
    /// event for it. Returns false if the destination shard does not exist or its inbound
    /// queue is full.
    pub fn inject<P: Payload>(&mut self, to: Handle, payload: &P) -> bool {
        let Some(backend) = self.backends.get_mut(to.shard().index()) else { return false };
        self.injected += 1;
        let id = MessageId::new(ShardId::EXTERNAL, self.injected);
        backend.inbound.push(Message::user(id, Handle::NONE, to, &Outgoing::new(payload))).is_ok()
    }

    /// Runs until idle, then jumps the clocks to the next timer deadline, repeatedly, until
    /// no timer is pending or `ticks_max` ticks ran. Returns the ticks run.
    pub fn run_with_timers(&mut self, ticks_max: u64) -> u64 {
        let mut ticks = 0;
        while ticks < ticks_max {
            let report = self.tick();
            ticks += 1;
            if report.has_work {
                continue;
            }
            let Some(deadline) = report.next_deadline else { break };
            let now = self.backends[0].now;
            self.advance(deadline.saturating_duration_since(now));
        }
        ticks
    }

    /// Moves every shard's clock forward.
    pub fn advance(&mut self, duration: Duration) {
        for backend in &mut self.backends {
            backend.advance(duration);
        }
    }

    /// The scheduler of `shard`.
    pub fn scheduler(&self, shard: ShardId) -> &Scheduler<TestBackend> {
        &self.schedulers[shard.index()]
    }

    /// The backend of `shard`.
    pub fn backend(&self, shard: ShardId) -> &TestBackend {
        &self.backends[shard.index()]
    }

    /// The backend of `shard`, mutably.
    pub fn backend_mut(&mut self, shard: ShardId) -> &mut TestBackend {
        &mut self.backends[shard.index()]
    }

    /// Crashes `shard` as a whole (`Scheduler::crash`): every isolate torn down, the shard
    /// down until `restart_shard`.
    pub fn crash_shard(&mut self, shard: ShardId) {
        let index = shard.index();
        self.schedulers[index].crash(&mut self.backends[index]);
    }

    /// Restarts a crashed `shard` from the spec it booted from (`Scheduler::restart`): its
    /// static children boot again, into the slots they had.
    pub fn restart_shard(&mut self, shard: ShardId) {
        let index = shard.index();
        self.schedulers[index].restart(&self.spec, &mut self.backends[index]);
        self.route();
    }

    /// Crashes the isolate `handle` names from outside its dispatch, with `reason`
    /// (`Scheduler::kill`): its supervisor decides at once. False if it is not live.
    pub fn kill(&mut self, handle: Handle, reason: Label) -> bool {
        let index = handle.shard().index();
        let (Some(scheduler), Some(backend)) =
            (self.schedulers.get_mut(index), self.backends.get_mut(index))
        else {
            return false;
        };
        let killed = scheduler.kill(handle, reason, backend);
        self.route();
        killed
    }

    /// Begins the graceful shutdown of every shard that is up (`Scheduler::begin_shutdown`),
    /// its drain ending `drain` from its clock's now; returns how many began. Ticks then
    /// carry the drain on: `run_with_timers` jumps to the deadline if isolates are left.
    pub fn begin_shutdown(&mut self, drain: Duration) -> usize {
        let mut began = 0;
        for (scheduler, backend) in self.schedulers.iter_mut().zip(self.backends.iter_mut()) {
            let deadline = backend.now.saturating_add(drain);
            began += usize::from(scheduler.begin_shutdown(deadline, backend));
        }
        self.route();
        began
    }

    /// How `shard`'s shutdown ended, once it did (`Scheduler::shutdown_report`).
    pub fn shutdown_report(&self, shard: ShardId) -> Option<ShutdownReport> {
        self.schedulers[shard.index()].shutdown_report()
    }

    /// Counters of `shard`.
    pub fn counters(&self, shard: ShardId) -> &Counters {
        self.schedulers[shard.index()].counters()
    }

    /// Moves outbound envelopes into their destinations' inbound queues, keeping FIFO order
    /// per pair. An envelope whose destination queue is full stays in its outbound queue.
    fn route(&mut self) {
        for source in 0..self.backends.len() {
            // Bounded by the outbound ring's capacity.
            while let Some(&(to, message)) = self.backends[source].outbound.peek() {
                if self.backends[to.index()].inbound.push(message).is_err() {
                    break;
                }
                self.backends[source].outbound.pop();
            }
        }
    }
}
