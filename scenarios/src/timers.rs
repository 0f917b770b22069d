//! `timers`: `isolates` isolates each set one timer at a random instant within `spread` of
//! virtual time and finish when it fires. A load test of the timer wheel, the spawn path
//! and the simulator's idle jumps; the goal is every isolate finished.
//!
//! Built to survive every fault: a sleeper ends either when its timer fires or by a crash
//! (sleepers are unsupervised: the scenario tests timers, not restarts); a restarted shard
//! or node starts its spawner, and so its sleepers, over, and the goal counts each shard's
//! sleepers ended since its last start.

use core::time::Duration;

use tina::{
    Ctx, Effect, Event, ExitKind, Isolate, Label, Level, Message, ShardId, SpawnError, SystemSpec,
    TypeConfig,
};
use tina_checkers::{EventKinds, FailureClass, Observer, Stamp, Verdict, Violation, WorldEvent};

use crate::{ParamKind, ParamSpec, Params, Scenario, Setup};

/// The sleeper's `buggify` site: it sets and cancels a timer before its real one.
pub const CANCEL_FIRST: Label = Label::new("timers.cancel-first");

/// A sleeper could not set its timer (values: none).
pub const NO_TIMER: Label = Label::new("timers.pool-exhausted");

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct SpawnerArgs { pub sleepers: u64, pub spread_ns: u64 }
}

/// Sets one timer at a random instant within the spread, and finishes when it fires.
#[derive(Debug)]
pub struct Sleeper;

impl Isolate for Sleeper {
    type Args = u64;

    fn init(spread_ns: u64, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let at = ctx.random_u64() % spread_ns.max(1);
        // Under simulation, now and then, a sleeper first sets a timer and cancels it: a
        // cancelled timer must never fire.
        if ctx.buggify(CANCEL_FIRST)
            && let Ok(first) = ctx.timer_set(Duration::from_nanos(at / 2), at)
        {
            ctx.timer_cancel(first);
        }
        if ctx.timer_set(Duration::from_nanos(at), at).is_err() {
            ctx.log(Level::Error, NO_TIMER, []);
            return (Sleeper, Effect::Crash(NO_TIMER));
        }
        (Sleeper, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if message.timer().is_some() { Effect::Done } else { Effect::Receive }
    }
}

/// Spawns its shard's sleepers from `init`, then finishes at its first dispatch (an `init`
/// that returns `Done` counts as a failed init, which its supervisor would restart).
#[derive(Debug)]
pub struct Spawner;

impl Isolate for Spawner {
    type Args = SpawnerArgs;

    fn init(args: SpawnerArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        // Bounded by the sleeper type's slots, which the spec sizes to `sleepers`.
        for _ in 0..args.sleepers {
            match ctx.spawn::<Sleeper>(args.spread_ns) {
                Ok(_) => {}
                // A spawner started again (its init was made to fail, or it crashed before
                // it ran) finds the slots taken by the sleepers it already started.
                Err(SpawnError::ArenaFull) => break,
                Err(_) => {
                    return (Spawner, Effect::Crash(Label::new("timers: cannot spawn a sleeper")));
                }
            }
        }
        (Spawner, Effect::Yield)
    }

    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Done
    }
}

/// Done when every sleeper of every shard ended since its shard last started (normally,
/// when its timer fired, or by a crash, which cancels its timer); a correctness failure if
/// one could not set its timer.
#[derive(Debug)]
pub struct Goal {
    /// Per shard: sleepers it starts.
    sleepers: Vec<u64>,
    /// Per shard: sleepers ended since the shard last started.
    finished: Vec<u64>,
    /// Shards whose sleepers all finished.
    shards_done: usize,
}

impl Goal {
    fn restart(&mut self, shard: usize) {
        if self.finished[shard] >= self.sleepers[shard] {
            self.shards_done -= 1;
        }
        self.finished[shard] = 0;
    }
}

impl Observer for Goal {
    fn name(&self) -> &'static str {
        "timers.goal"
    }

    fn kinds(&self) -> EventKinds {
        EventKinds::LOG | EventKinds::EXIT
    }

    fn observe_world(&mut self, stamp: &Stamp, event: &WorldEvent) -> Verdict {
        match event {
            WorldEvent::ShardRestart => self.restart(stamp.shard.index()),
            WorldEvent::NodeRestart => (0..self.finished.len()).for_each(|s| self.restart(s)),
            _ => {}
        }
        Verdict::Continue
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        match event {
            // Exits of a shard crash are not ends: the shard's restart starts over.
            Event::Exit { handle, kind, .. }
                if handle.type_index() == SLEEPER_TYPE && *kind != ExitKind::ShardCrashed =>
            {
                let shard = stamp.shard.index();
                self.finished[shard] += 1;
                if self.finished[shard] == self.sleepers[shard] {
                    self.shards_done += 1;
                }
                if self.shards_done == self.sleepers.len() {
                    Verdict::Done
                } else {
                    Verdict::Continue
                }
            }
            Event::Log { tag, .. } if *tag == NO_TIMER => Verdict::Violated(Violation {
                class: FailureClass::Correctness,
                checker: "timers.goal",
                explanation: "a sleeper found the timer pool exhausted".to_string(),
            }),
            _ => Verdict::Continue,
        }
    }
}

/// The sleeper's type index in the spec below.
const SLEEPER_TYPE: u8 = 1;

/// The `timers` scenario.
#[derive(Debug)]
pub struct TimersScenario;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "isolates",
        kind: ParamKind::Count,
        default: 100_000,
        min: 1,
        max: 16_000_000,
        description: "isolates, each setting one timer",
    },
    ParamSpec {
        name: "spread",
        kind: ParamKind::Duration,
        default: 10_000_000_000,
        min: 1,
        max: 3_600_000_000_000,
        description: "timers are due at random instants within this much virtual time",
    },
    ParamSpec {
        name: "shards",
        kind: ParamKind::Count,
        default: 1,
        min: 1,
        max: 16,
        description: "shards the isolates are spread over",
    },
];

impl Scenario for TimersScenario {
    fn name(&self) -> &'static str {
        "timers"
    }

    fn description(&self) -> &'static str {
        "isolates each set one timer at a random instant, then finish when it fires"
    }

    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }

    fn build(&self, params: &Params) -> Setup {
        let (isolates, shards) = (params.get("isolates"), params.get("shards"));
        let per_shard = isolates.div_ceil(shards);
        // At most 16 shards; at most 16M / 1 isolates per shard, checked against the slot
        // limit by the spec's validation.
        let mut spec = SystemSpec::new(shards as usize);
        let slots = u32::try_from(per_shard).unwrap_or(u32::MAX);
        spec.timer_pool_size(slots);
        let spawner = spec.register::<Spawner>(TypeConfig::new("spawner").slots(1));
        let sleeper = spec.register::<Sleeper>(TypeConfig::new("sleeper").slots(slots));
        assert_eq!(sleeper.index(), usize::from(SLEEPER_TYPE));
        let spread_ns = params.get("spread");
        let mut per_shard_sleepers = Vec::new();
        for shard in 0..shards {
            let sleepers = per_shard.min(isolates - shard * per_shard);
            per_shard_sleepers.push(sleepers);
            spec.boot_child(ShardId(shard as u8), spawner, SpawnerArgs { sleepers, spread_ns });
        }
        let goal = Goal {
            finished: vec![0; per_shard_sleepers.len()],
            sleepers: per_shard_sleepers,
            shards_done: 0,
        };
        Setup::new(spec).observer(goal).goal(crate::Goal::Observed)
    }
}
