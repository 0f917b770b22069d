//! Planted bugs: canaries that prove each checker can fail.
//!
//! `sim --plant NAME` switches on one plant. A world plant is a bug in the simulator's
//! world (a transport that loses or duplicates a message, reorders a pair, a shard clock
//! that jumps, a scheduler that reads a static). A scenario plant is a bug in a scenario's
//! isolates, switched on by one of its parameters. A trace plant, for invariants only the
//! core can break, is a mutator between the scheduler and the checkers that rewrites the
//! event stream. No plant code lives in the runtime.
//!
//! Each plant names the scenario it runs, the settings it implies, the checker it must
//! trip, its failure class, and a seed on which it is caught.

use tina::io::IoOpKind;
use tina::{CallFailure, CallOutcome, Event, ExitKind, Handle, MessageId, ShardId, Tag};
use tina_checkers::{FailureClass, WorldEvent};

use crate::faults::Profile;
use crate::trace::{Place, TraceEvent};

/// Where the bug lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantKind {
    /// In the simulator's world.
    World,
    /// In a scenario's isolates.
    Scenario,
    /// A rewrite of the event stream.
    Trace,
}

impl PlantKind {
    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            PlantKind::World => "world",
            PlantKind::Scenario => "scenario",
            PlantKind::Trace => "trace",
        }
    }
}

/// A world plant's bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorldBug {
    /// The transport silently loses the fifth cross-shard message.
    LoseMessage,
    /// The transport delivers the fifth cross-shard message twice.
    DuplicateDelivery,
    /// Two messages of one shard pair, sent in one tick, arrive in the wrong order.
    Reorder,
    /// From one simulated second on, every shard's clock reads 100 ms ahead.
    ClockJump,
    /// The first message's delay mixes in a process-wide counter.
    StaticCounter,
}

/// A trace plant's rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceBug {
    /// The first enqueue reports a mailbox far above any capacity.
    MailboxOverflow,
    /// The first crash's exit is dropped: the slot is never freed in the trace.
    SlotNeverFreed,
    /// The first spawn into a reused slot reports the previous generation.
    ReusedGeneration,
    /// After the first call timeout, a reply is accepted for the caller.
    LateReply,
    /// The first escalation for intensity is replaced by one more restart.
    RestartPastBudget,
    /// At the first delivery, an I/O operation is submitted and completes twice.
    IoDoubleCompletion,
    /// Shard recovery leaves one timer of a crashed isolate pending: the first timer
    /// cancelled by a shard crash is never reported cancelled.
    RecoveryTimerLeak,
}

/// What a plant does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// A world bug.
    World(WorldBug),
    /// A scenario bug, switched on by this `KEY=VALUE` setting of the scenario.
    Scenario(&'static str),
    /// A trace rewrite.
    Trace(TraceBug),
}

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plant {
    /// The `--plant` name.
    pub name: &'static str,
    /// What it does.
    pub bug: Bug,
    /// The scenario it runs.
    pub scenario: &'static str,
    /// `KEY=VALUE` settings that size the run (applied before the user's `--set`s, with
    /// or without the plant).
    pub sets: &'static [&'static str],
    /// The fault profile it runs under (unless `--faults` says otherwise).
    pub profile: Profile,
    /// `NAME=VALUE` fault knobs it needs (applied before the user's `--fault`s).
    pub faults: &'static [&'static str],
    /// The checker that must trip.
    pub checker: &'static str,
    /// The class of the failure.
    pub class: FailureClass,
    /// A seed on which it is caught.
    pub seed: u64,
    /// One line.
    pub description: &'static str,
}

impl Plant {
    /// The settings a run with this plant uses: the sizing settings, then the scenario
    /// bug's switch.
    pub fn settings(&self) -> Vec<String> {
        let mut sets: Vec<String> = self.sets.iter().map(|s| s.to_string()).collect();
        if let Bug::Scenario(switch) = self.bug {
            sets.push(switch.to_string());
        }
        sets
    }

    /// Where the bug lives.
    pub fn kind(&self) -> PlantKind {
        match self.bug {
            Bug::World(_) => PlantKind::World,
            Bug::Scenario(_) => PlantKind::Scenario,
            Bug::Trace(_) => PlantKind::Trace,
        }
    }
}

const fn plant(
    name: &'static str,
    bug: Bug,
    scenario: &'static str,
    sets: &'static [&'static str],
    checker: &'static str,
    description: &'static str,
) -> Plant {
    Plant {
        name,
        bug,
        scenario,
        sets,
        profile: Profile::None,
        faults: &[],
        checker,
        class: FailureClass::Correctness,
        seed: 1,
        description,
    }
}

/// Every plant.
pub const PLANTS: &[Plant] = &[
    plant(
        "lose-message",
        Bug::World(WorldBug::LoseMessage),
        "ping-pong",
        &["round_trips=50"],
        "accounting",
        "the transport silently loses one message",
    ),
    plant(
        "duplicate-delivery",
        Bug::World(WorldBug::DuplicateDelivery),
        "ping-pong",
        &["round_trips=50"],
        "accounting",
        "the transport delivers one message twice",
    ),
    plant(
        "reorder",
        Bug::World(WorldBug::Reorder),
        "dispatcher",
        &["jobs=20"],
        "fifo",
        "two messages of one shard pair overtake",
    ),
    plant(
        "early-timer",
        Bug::World(WorldBug::ClockJump),
        "timers",
        &["isolates=1000"],
        "timers",
        "a skewed shard clock fires timers early",
    ),
    Plant {
        name: "static-counter",
        bug: Bug::World(WorldBug::StaticCounter),
        scenario: "ping-pong",
        sets: &["round_trips=50"],
        profile: Profile::None,
        faults: &[],
        checker: "determinism",
        class: FailureClass::Nondeterminism,
        seed: 1,
        description: "the network reads a process-wide counter (implies --check-determinism)",
    },
    plant(
        "bank-no-dedup",
        Bug::Scenario("dedup=0"),
        "bank",
        &[],
        "bank.conservation",
        "a credit skips the dedup check",
    ),
    plant(
        "mailbox-overflow",
        Bug::Trace(TraceBug::MailboxOverflow),
        "ping-pong",
        &["round_trips=50"],
        "mailbox",
        "an enqueue reports a mailbox over capacity",
    ),
    plant(
        "slot-never-freed",
        Bug::Trace(TraceBug::SlotNeverFreed),
        "dispatcher",
        &["jobs=30"],
        "pools",
        "a crashed isolate's slot is never freed",
    ),
    plant(
        "reused-generation",
        Bug::Trace(TraceBug::ReusedGeneration),
        "dispatcher",
        &["jobs=30"],
        "generations",
        "a restarted isolate reuses its slot's old generation",
    ),
    plant(
        "late-reply",
        Bug::Trace(TraceBug::LateReply),
        "dispatcher",
        &["jobs=30"],
        "calls",
        "a reply is accepted after its call timed out",
    ),
    plant(
        "restart-past-budget",
        Bug::Trace(TraceBug::RestartPastBudget),
        "dispatcher",
        &["jobs=100", "restart_max=2"],
        "supervision",
        "a group restarts once more instead of escalating",
    ),
    plant(
        "io-double-completion",
        Bug::Trace(TraceBug::IoDoubleCompletion),
        "ping-pong",
        &["round_trips=50"],
        "io",
        "an I/O operation completes twice",
    ),
    Plant {
        name: "bank-stale-branch",
        bug: Bug::Scenario("follow_restarts=0"),
        scenario: "bank",
        sets: &[],
        profile: Profile::None,
        faults: &["shard_crash_every=200ms", "safety_time=1s", "liveness_time=10s"],
        checker: "goal",
        class: FailureClass::Liveness,
        seed: 1,
        description: "a client keeps the branch handles it was given and stops retrying when a shard crash made one stale",
    },
    Plant {
        name: "recovery-timer-leak",
        bug: Bug::Trace(TraceBug::RecoveryTimerLeak),
        scenario: "ping-pong",
        sets: &[],
        profile: Profile::None,
        faults: &["shard_crash_every=100ms", "safety_time=2s"],
        checker: "pools",
        class: FailureClass::Correctness,
        seed: 1,
        description: "shard recovery leaves a crashed isolate's timer pending",
    },
    Plant {
        name: "bank-clock-dedup",
        bug: Bug::Scenario("dedup_window=1s"),
        scenario: "bank",
        sets: &["transfers=100"],
        profile: Profile::None,
        faults: &["clock_jump_every=20ms", "clock_jump_max=5s", "safety_time=5s"],
        checker: "bank.conservation",
        class: FailureClass::Correctness,
        seed: 1,
        description: "a branch forgets applied ids by the age its clock shows; a clock jump makes it apply a retry twice",
    },
    Plant {
        name: "kv-ack-before-fsync",
        bug: Bug::Scenario("ack_before_fsync=1"),
        scenario: "kv",
        sets: &["ops=400", "keys=16", "net_delay_min=100us", "net_delay_max=1ms"],
        profile: Profile::None,
        faults: &[
            "disk_latency_min=20ms",
            "disk_latency_max=60ms",
            "node_crash_every=700ms",
            "safety_time=60s",
            "liveness_time=30m",
        ],
        checker: "kv.linearizable",
        class: FailureClass::Correctness,
        seed: 1,
        description: "the store acknowledges a put before its fsync; a node crash loses an acknowledged write",
    },
    Plant {
        name: "kv-stale-cache",
        bug: Bug::Scenario("stale_cache=1"),
        scenario: "kv",
        sets: &["ops=100"],
        profile: Profile::None,
        faults: &[],
        checker: "kv.linearizable",
        class: FailureClass::Correctness,
        seed: 1,
        description: "the store answers gets from a cache that puts do not update",
    },
    Plant {
        name: "echo-gives-up",
        bug: Bug::Scenario("give_up=1"),
        scenario: "echo",
        sets: &["round_trips=300"],
        profile: Profile::None,
        faults: &["net_partition_every=500ms", "net_partition_max=5s", "safety_time=5s"],
        checker: "goal",
        class: FailureClass::Liveness,
        seed: 1,
        description: "a client gives up at its first failure instead of retrying, so a partition leaves it unfinished",
    },
];

/// The plant called `name`.
pub fn find(name: &str) -> Option<&'static Plant> {
    PLANTS.iter().find(|plant| plant.name == name)
}

/// Rewrites the event stream for a trace plant; each rewrite happens once.
#[derive(Debug)]
pub struct Mutator {
    bug: TraceBug,
    done: bool,
    /// The last send sequence per shard (node 0).
    last_send: [u64; 256],
    /// The last incarnation per shard that stopped by itself (node 0).
    last_exit: [Handle; 256],
    /// Shards (node 0) between a shard crash and its restart.
    crashing: [bool; 256],
}

impl Mutator {
    /// A mutator for `bug`.
    pub fn new(bug: TraceBug) -> Mutator {
        Mutator {
            bug,
            done: false,
            last_send: [0; 256],
            last_exit: [Handle::NONE; 256],
            crashing: [false; 256],
        }
    }

    /// Passes `event` (emitted at `place`) on through `emit`, rewritten, dropped or with
    /// events added, as the plant says. World events pass unchanged.
    pub fn rewrite(&mut self, place: Place, event: &TraceEvent, emit: &mut dyn FnMut(&TraceEvent)) {
        match event {
            TraceEvent::Core(core) => {
                self.rewrite_core(place.shard, core, &mut |e| emit(&TraceEvent::Core(*e)))
            }
            TraceEvent::World(world) => {
                let shard = place.shard.index();
                match world {
                    WorldEvent::ShardCrash => self.crashing[shard] = true,
                    WorldEvent::ShardRestart | WorldEvent::ShardQuarantine => {
                        self.crashing[shard] = false
                    }
                    _ => {}
                }
                emit(event)
            }
        }
    }

    fn rewrite_core(&mut self, shard: ShardId, event: &Event, emit: &mut dyn FnMut(&Event)) {
        match *event {
            Event::Send { id, .. } => self.last_send[shard.index()] = id.sequence(),
            Event::Exit { handle, kind, .. } if kind != ExitKind::Shutdown => {
                self.last_exit[shard.index()] = handle
            }
            _ => {}
        }
        if self.done {
            return emit(event);
        }
        match (self.bug, *event) {
            (TraceBug::MailboxOverflow, Event::Enqueue { id, to, reply: false, .. }) => {
                self.done = true;
                emit(&Event::Enqueue { id, to, mailbox_len: 1_000_000, reply: false });
            }
            (TraceBug::SlotNeverFreed, Event::Exit { kind: ExitKind::Crashed, .. }) => {
                self.done = true
            }
            (TraceBug::ReusedGeneration, Event::Spawn { parent, child })
                if child.generation() > 1 =>
            {
                self.done = true;
                emit(&Event::Spawn { parent, child: Handle::from_raw(child.to_raw() - 1) });
            }
            (
                TraceBug::LateReply,
                Event::CallEnd {
                    caller, outcome: CallOutcome::Failed(CallFailure::Timeout), ..
                },
            ) => {
                self.done = true;
                emit(event);
                let sequence = self.last_send[shard.index()] + 1;
                let id = MessageId::from_raw((u64::from(shard.0) << 56) | sequence);
                emit(&Event::Send { id, from: caller, to: caller, tag: Tag::from_raw(0x0100) });
                emit(&Event::Enqueue { id, to: caller, mailbox_len: 1, reply: true });
            }
            (TraceBug::RestartPastBudget, Event::Escalate { group, exceeded: true }) => {
                self.done = true;
                emit(&Event::Restart {
                    group,
                    old: self.last_exit[shard.index()],
                    new: Handle::NONE,
                });
            }
            (TraceBug::RecoveryTimerLeak, Event::TimerCancel { .. })
                if self.crashing[shard.index()] =>
            {
                self.done = true
            }
            (TraceBug::IoDoubleCompletion, Event::Deliver { id, to, .. })
                if id != MessageId::NONE =>
            {
                self.done = true;
                emit(event);
                let (sequence, op) = (u32::MAX, IoOpKind::Close);
                emit(&Event::IoSubmit { isolate: to, sequence, op });
                emit(&Event::IoComplete { isolate: to, sequence, op, ok: true });
                emit(&Event::IoComplete { isolate: to, sequence, op, ok: true });
            }
            _ => emit(event),
        }
    }
}
