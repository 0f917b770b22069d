//! tina-checkers: pure checks over tina event histories.
//!
//! A checker is an [`Observer`]: it learns the system's shape from the specs at the start,
//! is fed every trace event of a run in order (stamped with when and where it happened),
//! and at the end sees a read-only [`EndView`] of the shards. It answers with a [`Verdict`]
//! and never mutates the system under test. Scenario end conditions ("every job completed
//! or lost") are observers too. This crate depends on `tina` only.
//!
//! [`structural`] returns the framework's invariant checkers, one module each, all
//! streaming: amortised O(1) work per event, no re-scan of the history. They run together
//! as one [`Structural`] observer, which resolves each event's places once ([`site`]).
//!
//! This crate does not drive a run, format logs or decide exit codes; the simulator does.

use core::fmt;

use tina::{Event, Handle, MessageId, ShardId, SystemSpec};

pub use crate::kinds::EventKinds;
use crate::site::Site;
pub use crate::world::{Phase, WorldEvent};

pub mod accounting;
pub mod calls;
pub mod crashes;
pub mod drops;
pub mod fifo;
pub mod generations;
pub mod io;
pub mod kinds;
pub mod layout;
pub mod linearizability;
pub mod mailbox;
pub mod pools;
mod ring;
pub mod site;
pub mod supervision;
pub mod timers;
pub mod world;

/// When and where an event happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Position in the run's trace, from 0.
    pub index: u64,
    /// True virtual time in nanoseconds: the one timeline of the whole world.
    pub time_ns: u64,
    /// The node's own clock at the event, in nanoseconds: what its isolates read as
    /// `ctx.now()` and what its timer deadlines and supervision windows are measured in.
    /// It differs from `time_ns` by the node's offset, drift and jumps.
    pub local_ns: u64,
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

/// A file on a node's disk as the run left it: what any crash would leave of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableFile {
    /// The node whose disk holds it.
    pub node: u16,
    /// Its path.
    pub path: String,
    /// Its durable contents: everything fsynced (and whatever the disk wrote back on its
    /// own), not what is still only in the page cache.
    pub bytes: Vec<u8>,
}

/// The system at the end of a run, whichever way it ended (goal, quiescence or a limit):
/// besides each shard's pools, every message, call and I/O operation still under way, so
/// that end-of-run checks judge every run, not only the ones that went quiet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndView {
    /// Whether the run ended because nothing could ever run again (rather than at its goal
    /// or a limit): then nothing is in flight and nothing is queued.
    pub quiescent: bool,
    /// Every shard that is up (a shard of a crashed node, or a crashed shard not yet
    /// restarted, has no pools to show).
    pub shards: Vec<ShardView>,
    /// Messages sent to another shard and not yet taken by it: (node, id), sorted.
    pub in_transit: Vec<(u16, MessageId)>,
    /// Messages waiting in a mailbox: (node, id), sorted.
    pub queued: Vec<(u16, MessageId)>,
    /// Calls in progress: (node, caller, correlation), sorted.
    pub calls: Vec<(u16, Handle, u32)>,
    /// I/O operations submitted and not yet reaped, as the backends hold them: (node,
    /// isolate, sequence), sorted.
    pub io: Vec<(u16, Handle, u32)>,
    /// Every file on every node's disk with its durable contents, by node then path: what
    /// a scenario that promises durability checks its acknowledgements against.
    pub files: Vec<DurableFile>,
}

impl EndView {
    /// The durable contents of `path` on `node`'s disk, if the file exists.
    pub fn durable(&self, node: u16, path: &str) -> Option<&[u8]> {
        let file = self.files.iter().find(|file| file.node == node && file.path == path)?;
        Some(&file.bytes)
    }

    /// Whether message `id` of `node` is still on its way to a shard.
    pub fn is_in_transit(&self, node: u16, id: MessageId) -> bool {
        self.in_transit.binary_search(&(node, id)).is_ok()
    }

    /// Whether message `id` of `node` waits in a mailbox.
    pub fn is_queued(&self, node: u16, id: MessageId) -> bool {
        self.queued.binary_search(&(node, id)).is_ok()
    }

    /// Isolates still alive (or spawned and not yet started) on every shard that is up.
    pub fn live_isolates(&self) -> usize {
        self.shards.iter().flat_map(|shard| &shard.live).sum()
    }

    /// Whether nothing is under way: no message in transit or queued, no call in progress,
    /// no I/O outstanding.
    pub fn nothing_in_flight(&self) -> bool {
        self.in_transit.is_empty()
            && self.queued.is_empty()
            && self.calls.is_empty()
            && self.io.is_empty()
    }

    /// Every isolate finished and nothing is under way: the default goal.
    pub fn all_finished(&self) -> bool {
        self.live_isolates() == 0 && self.nothing_in_flight()
    }
}

/// Fed every event of a run, in order: the core's (of the kinds it names) and the world's.
///
/// A scenario's goal is an observer. This one is done when a log record says so, and
/// starts counting over when its node crashes:
///
/// ```
/// use tina::{Event, Label};
/// use tina_checkers::{EventKinds, Observer, Stamp, Verdict, WorldEvent};
///
/// const STEP: Label = Label::new("example.step");
///
/// /// Done after ten steps since the node last started.
/// struct TenSteps {
///     steps: u64,
/// }
///
/// impl Observer for TenSteps {
///     fn name(&self) -> &'static str {
///         "example.goal"
///     }
///     fn kinds(&self) -> EventKinds {
///         EventKinds::LOG
///     }
///     fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
///         if matches!(event, Event::Log { tag, .. } if *tag == STEP) {
///             self.steps += 1;
///         }
///         if self.steps >= 10 { Verdict::Done } else { Verdict::Continue }
///     }
///     fn observe_world(&mut self, _stamp: &Stamp, event: &WorldEvent) -> Verdict {
///         if *event == WorldEvent::NodeCrash {
///             self.steps = 0;
///         }
///         Verdict::Continue
///     }
/// }
///
/// let goal = TenSteps { steps: 0 };
/// assert_eq!(goal.kinds(), EventKinds::LOG);
/// ```
pub trait Observer {
    /// The observer's name, for failure reports.
    fn name(&self) -> &'static str;

    /// Learns the system's shape before the first event (node ids are positions).
    fn start(&mut self, nodes: &[SystemSpec]) {
        let _ = nodes;
    }

    /// The kinds of core events `observe` looks at; the simulator shows it only those.
    /// Every kind unless the observer narrows it (a goal that reads log records names
    /// `EventKinds::LOG`), which spares a call per event it would ignore. Read once, when
    /// the run starts.
    fn kinds(&self) -> EventKinds {
        EventKinds::ALL
    }

    /// Looks at one event.
    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict;

    /// Looks at one step of the world (a fault, a crash, a restart, a clock jump, a phase
    /// change). Most observers need not: the core's own events say what the step did.
    fn observe_world(&mut self, stamp: &Stamp, event: &WorldEvent) -> Verdict {
        let _ = (stamp, event);
        Verdict::Continue
    }

    /// Called once when the run ends without a violation (goal reached, quiescence or a
    /// limit), for end-of-run properties. A goal observer returns `Done` here when the goal
    /// is reached only at quiescence.
    fn finish(&mut self, view: &EndView) -> Verdict {
        let _ = view;
        Verdict::Continue
    }
}

/// The structural checkers as one observer: each event is resolved once in one shared
/// layout (its shard and its subject's slot, see [`site`]), then goes, by its kind, only to
/// the checkers that look at it, through static calls (one virtual call per event instead
/// of nine). The checkers keep their own modules and state, and their logic: each one's
/// `Observer` resolves the same way and calls the same code. The first violation wins, in
/// the order of `STRUCTURAL`.
#[derive(Debug, Default)]
pub struct Structural {
    layout: layout::Layout,
    accounting: accounting::State,
    fifo: fifo::State,
    mailbox: mailbox::State,
    pools: pools::State,
    generations: generations::State,
    timers: timers::State,
    calls: calls::State,
    supervision: supervision::State,
    io: io::State,
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

impl Structural {
    /// Resolves an event about `subject`, the field `Site::subject` picks (the busiest
    /// kinds take this path, which spares matching the kind twice).
    #[inline(always)]
    fn resolve(&self, stamp: &Stamp, event: &Event, subject: Option<Handle>) -> Site {
        debug_assert_eq!(Site::subject(event), subject);
        Site::resolve(&self.layout, stamp, subject)
    }

    /// Every kind but the busiest: out of line, which keeps the busy path compact.
    #[inline(never)]
    fn observe_rare(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        let site = &Site::of(&self.layout, stamp, event);
        self.route(site, stamp, event)
    }

    /// Hands `event`, resolved at `site`, to the checkers that look at its kind.
    #[inline(always)]
    fn route(&mut self, site: &Site, stamp: &Stamp, event: &Event) -> Verdict {
        let layout = &self.layout;
        match event {
            Event::Send { .. } => first!(
                self.accounting.observe(stamp, event),
                self.mailbox.observe(site, stamp, event),
            ),
            Event::Enqueue { .. } => first!(
                self.accounting.observe(stamp, event),
                self.fifo.observe(site, stamp, event),
                self.mailbox.observe(site, stamp, event),
                self.pools.observe(site, stamp, event),
                self.generations.observe(site, event),
                self.calls.observe(site, event),
            ),
            Event::Deliver { .. } => first!(
                self.accounting.observe(stamp, event),
                self.fifo.observe(site, stamp, event),
                self.mailbox.observe(site, stamp, event),
                self.pools.observe(site, stamp, event),
                self.generations.observe(site, event),
            ),
            Event::Drop { .. } => first!(
                self.accounting.observe(stamp, event),
                self.fifo.observe(site, stamp, event),
                self.mailbox.observe(site, stamp, event),
                self.pools.observe(site, stamp, event),
            ),
            Event::Spawn { .. } => first!(
                self.pools.observe(site, stamp, event),
                self.generations.observe(site, event)
            ),
            Event::Exit { .. } => first!(
                self.pools.observe(site, stamp, event),
                self.generations.observe(site, event),
                self.calls.observe(site, event),
                self.supervision.observe(layout, site, stamp, event),
            ),
            Event::TimerSet { .. } | Event::TimerCancel { .. } => first!(
                self.pools.observe(site, stamp, event),
                self.timers.observe(site, stamp, event)
            ),
            Event::TimerFire { .. } => self.timers.observe(site, stamp, event),
            Event::CallStart { .. } | Event::CallEnd { .. } => self.calls.observe(site, event),
            Event::Restart { .. } | Event::Rebuild { .. } | Event::Escalate { .. } => {
                self.supervision.observe(layout, site, stamp, event)
            }
            Event::IoSubmit { .. }
            | Event::IoComplete { .. }
            | Event::IoStale { .. }
            | Event::IoTimeout { .. } => self.io.observe(site, event),
            _ => Verdict::Continue,
        }
    }
}

impl Observer for Structural {
    fn name(&self) -> &'static str {
        "structural"
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        let layout = layout::Layout::new(nodes);
        self.accounting = accounting::State::new(&layout);
        self.fifo = fifo::State::new(&layout);
        self.mailbox = mailbox::State::default();
        self.pools = pools::State::new(&layout);
        self.generations = generations::State::new(&layout);
        self.timers = timers::State::new(&layout);
        self.calls = calls::State::new(&layout);
        self.supervision = supervision::State::new(&layout);
        self.io = io::State::new(&layout);
        self.layout = layout;
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        // The busiest kinds inline, each in its own arm so that `route` folds to its
        // checkers; every other kind out of line.
        match *event {
            Event::Send { .. } => {
                let site = &self.resolve(stamp, event, None);
                self.route(site, stamp, event)
            }
            Event::Enqueue { to, .. } => {
                let site = &self.resolve(stamp, event, Some(to));
                self.route(site, stamp, event)
            }
            Event::Deliver { to, .. } => {
                let site = &self.resolve(stamp, event, Some(to));
                self.route(site, stamp, event)
            }
            _ => self.observe_rare(stamp, event),
        }
    }

    fn observe_world(&mut self, stamp: &Stamp, event: &WorldEvent) -> Verdict {
        match *event {
            // Nothing of a crashed node survives: its shards boot again with fresh slots,
            // generations, sequences and timers, so every checker forgets the node.
            WorldEvent::NodeCrash => {
                let (layout, node) = (&self.layout, stamp.node);
                self.accounting.reset_node(layout, node);
                self.fifo.reset_node(layout, node);
                self.mailbox.reset_node(node);
                self.pools.reset_node(layout, node);
                self.generations.reset_node(layout, node);
                self.timers.reset_node(layout, node);
                self.calls.reset_node(layout, node);
                self.supervision.reset_node(layout, node);
                self.io.reset_node(layout, node);
            }
            // A restarted shard rebuilds its supervision tree with fresh restart histories.
            WorldEvent::ShardRestart => {
                if let Some(shard) = self.layout.shard_index(stamp.node, stamp.shard) {
                    self.supervision.reset_shard(shard);
                }
            }
            _ => {}
        }
        Verdict::Continue
    }

    fn finish(&mut self, view: &EndView) -> Verdict {
        // Only these checkers have end-of-run properties.
        first!(
            self.accounting.finish(view),
            self.pools.finish(&self.layout, view),
            self.calls.finish(&self.layout, view),
            self.io.finish(&self.layout, view),
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
    (
        "mailbox",
        "a mailbox never holds more than its capacity (a reply and drop notices may add to it)",
    ),
    ("pools", "envelopes, timers and slots are conserved and nothing is queued at quiescence"),
    ("generations", "a slot's generation only grows; nothing reaches a stale generation"),
    ("timers", "no timer fires early, twice, or after it was cancelled"),
    ("calls", "a call ends once, by reply or failure; no reply arrives after its call ended"),
    ("supervision", "restarts stay within intensity; escalation happens exactly when exceeded"),
    ("io", "every I/O submission completes exactly once"),
];
