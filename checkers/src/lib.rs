//! tina-checkers: pure checks over tina event histories.
//!
//! A checker is an [`Observer`]: it learns the system's shape from the specs at the start,
//! is fed every trace event of a run in order (stamped with when and where it happened),
//! and at the end sees a read-only [`EndView`] of the shards. It answers with a [`Verdict`]
//! and never mutates the system under test. Scenario end conditions ("every job completed
//! or lost") are observers too. This crate depends on `tina` only.
//!
//! [`structural`] returns the framework's invariant checkers, one module each, all
//! streaming: amortised O(1) work per event, no re-scan of the history.
//!
//! This crate does not drive a run, format logs or decide exit codes; the simulator does.

use core::fmt;

use tina::{Event, ShardId, SystemSpec};

pub mod accounting;
pub mod calls;
pub mod fifo;
pub mod generations;
pub mod io;
pub mod layout;
pub mod mailbox;
pub mod pools;
mod ring;
pub mod supervision;
pub mod timers;

/// When and where an event happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Position in the run's trace, from 0.
    pub index: u64,
    /// Virtual time in nanoseconds.
    pub time_ns: u64,
    /// The node.
    pub node: u16,
    /// The shard within the node.
    pub shard: ShardId,
}

/// The class of a failed run; each has its own exit code in the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureClass {
    /// A property was violated.
    Correctness,
    /// The goal was not reached: quiescence, or a time or event limit first.
    Liveness,
    /// The framework itself broke: an internal assertion or a panic outside an isolate.
    Crash,
    /// The same seed gave two different runs.
    Nondeterminism,
}

impl FailureClass {
    /// Lower-case name, as printed in `result: fail (<class>)`.
    pub const fn name(self) -> &'static str {
        match self {
            FailureClass::Correctness => "correctness",
            FailureClass::Liveness => "liveness",
            FailureClass::Crash => "crash",
            FailureClass::Nondeterminism => "nondeterminism",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A violated property: which observer, and a one-line explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The class of failure.
    pub class: FailureClass,
    /// The observer that noticed.
    pub checker: &'static str,
    /// One line saying what went wrong.
    pub explanation: String,
}

/// What an observer says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to report.
    Continue,
    /// The run reached its goal.
    Done,
    /// A property is violated; the run stops.
    Violated(Violation),
}

/// A correctness violation found by `checker`. Cold: checks call it only on failure.
#[cold]
pub fn violated(checker: &'static str, explanation: String) -> Verdict {
    Verdict::Violated(Violation { class: FailureClass::Correctness, checker, explanation })
}

/// One shard as the run left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardView {
    /// The node.
    pub node: u16,
    /// The shard.
    pub shard: ShardId,
    /// Free envelopes in its message pool.
    pub pool_free: u32,
    /// User timers not pending.
    pub timers_free: u32,
    /// Live isolates per type index.
    pub live: Vec<usize>,
}

/// The system at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndView {
    /// Whether the run ended because nothing could ever run again (rather than at its goal
    /// or a limit): then nothing is in flight and nothing is queued.
    pub quiescent: bool,
    /// Every shard.
    pub shards: Vec<ShardView>,
}

/// Fed every event of a run, in order.
pub trait Observer {
    /// The observer's name, for failure reports.
    fn name(&self) -> &'static str;

    /// Learns the system's shape before the first event (node ids are positions).
    fn start(&mut self, nodes: &[SystemSpec]) {
        let _ = nodes;
    }

    /// Looks at one event.
    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict;

    /// Called once when the run ends without a violation (goal reached, quiescence or a
    /// limit), for end-of-run properties. A goal observer returns `Done` here when the goal
    /// is reached only at quiescence.
    fn finish(&mut self, view: &EndView) -> Verdict {
        let _ = view;
        Verdict::Continue
    }
}

/// Every structural checker: the framework's invariants, on for every run.
pub fn structural() -> Vec<Box<dyn Observer>> {
    vec![Box::new(Structural::default())]
}

/// The structural checkers as one observer: each event goes, by its kind, only to the
/// checkers that look at it, through static calls (one virtual call per event instead of
/// nine). The checkers keep their own modules and state; the first violation wins, in the
/// order of `STRUCTURAL`.
#[derive(Debug, Default)]
pub struct Structural {
    accounting: accounting::Accounting,
    fifo: fifo::Fifo,
    mailbox: mailbox::Occupancy,
    pools: pools::Pools,
    generations: generations::Generations,
    timers: timers::Timers,
    calls: calls::Calls,
    supervision: supervision::Supervision,
    io: io::Io,
}

/// Returns from the enclosing function with the first verdict that is not `Continue`
/// (matching the variant: comparing with `!=` would build and compare whole verdicts).
macro_rules! first {
    ($($check:expr),+ $(,)?) => {{
        $(
            let verdict = $check;
            if !matches!(verdict, Verdict::Continue) {
                return verdict;
            }
        )+
        Verdict::Continue
    }};
}

impl Observer for Structural {
    fn name(&self) -> &'static str {
        "structural"
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.accounting.start(nodes);
        self.fifo.start(nodes);
        self.mailbox.start(nodes);
        self.pools.start(nodes);
        self.generations.start(nodes);
        self.timers.start(nodes);
        self.calls.start(nodes);
        self.supervision.start(nodes);
        self.io.start(nodes);
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        match event {
            Event::Send { .. } => self.accounting.observe(stamp, event),
            Event::Enqueue { .. } => first!(
                self.accounting.observe(stamp, event),
                self.fifo.observe(stamp, event),
                self.mailbox.observe(stamp, event),
                self.pools.observe(stamp, event),
                self.generations.observe(stamp, event),
                self.calls.observe(stamp, event),
            ),
            Event::Deliver { .. } => first!(
                self.accounting.observe(stamp, event),
                self.fifo.observe(stamp, event),
                self.pools.observe(stamp, event),
                self.generations.observe(stamp, event),
            ),
            Event::Drop { .. } => first!(
                self.accounting.observe(stamp, event),
                self.fifo.observe(stamp, event),
                self.pools.observe(stamp, event),
            ),
            Event::Spawn { .. } => {
                first!(self.pools.observe(stamp, event), self.generations.observe(stamp, event))
            }
            Event::Exit { .. } => first!(
                self.pools.observe(stamp, event),
                self.generations.observe(stamp, event),
                self.calls.observe(stamp, event),
                self.supervision.observe(stamp, event),
            ),
            Event::TimerSet { .. } | Event::TimerCancel { .. } => {
                first!(self.pools.observe(stamp, event), self.timers.observe(stamp, event))
            }
            Event::TimerFire { .. } => self.timers.observe(stamp, event),
            Event::CallStart { .. } | Event::CallEnd { .. } => self.calls.observe(stamp, event),
            Event::Restart { .. } | Event::Rebuild { .. } | Event::Escalate { .. } => {
                self.supervision.observe(stamp, event)
            }
            Event::IoSubmit { .. } | Event::IoComplete { .. } | Event::IoStale { .. } => {
                self.io.observe(stamp, event)
            }
            _ => Verdict::Continue,
        }
    }

    fn finish(&mut self, view: &EndView) -> Verdict {
        first!(
            self.accounting.finish(view),
            self.fifo.finish(view),
            self.mailbox.finish(view),
            self.pools.finish(view),
            self.generations.finish(view),
            self.timers.finish(view),
            self.calls.finish(view),
            self.supervision.finish(view),
            self.io.finish(view),
        )
    }
}

/// Name and one line of every structural checker, as `structural` orders them.
pub const STRUCTURAL: [(&str, &str); 9] = [
    (
        "accounting",
        "every send is enqueued or dropped once, every enqueue delivered or dropped once",
    ),
    ("fifo", "arrivals per ordered shard pair and deliveries per mailbox keep their order"),
    ("mailbox", "a mailbox never holds more than its capacity (a reply may add one)"),
    ("pools", "envelopes, timers and slots are conserved and nothing is queued at quiescence"),
    ("generations", "a slot's generation only grows; nothing reaches a stale generation"),
    ("timers", "no timer fires early, twice, or after it was cancelled"),
    ("calls", "a call ends once, by reply or failure; no reply arrives after its call ended"),
    ("supervision", "restarts stay within intensity; escalation happens exactly when exceeded"),
    ("io", "every I/O submission completes exactly once"),
];
