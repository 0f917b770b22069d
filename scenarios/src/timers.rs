//! `timers`: `isolates` isolates each set one timer at a random instant within `spread` of
//! virtual time and finish when it fires. A load test of the timer wheel, the spawn path
//! and the simulator's idle jumps; the goal is every isolate finished.

use core::time::Duration;

use tina::{
    Ctx, Effect, Event, ExitKind, Isolate, Label, Level, Message, ShardId, SystemSpec, TypeConfig,
};
use tina_checkers::{FailureClass, Observer, Stamp, Verdict, Violation};

use crate::{ParamKind, ParamSpec, Params, Scenario, Setup};

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

/// Spawns its shard's sleepers from `init`, then finishes.
#[derive(Debug)]
pub struct Spawner;

impl Isolate for Spawner {
    type Args = SpawnerArgs;

    fn init(args: SpawnerArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        // Bounded by the sleeper type's slots, which the spec sizes to `sleepers`.
        for _ in 0..args.sleepers {
            if ctx.spawn::<Sleeper>(args.spread_ns).is_err() {
                return (Spawner, Effect::Crash(Label::new("timers: no slot for a sleeper")));
            }
        }
        (Spawner, Effect::Done)
    }

    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

/// Done when every sleeper finished; a correctness failure if one could not set its timer.
#[derive(Debug)]
pub struct Goal {
    sleepers: u64,
    finished: u64,
}

impl Observer for Goal {
    fn name(&self) -> &'static str {
        "timers.goal"
    }

    fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
        match event {
            Event::Exit { handle, kind: ExitKind::Normal, .. }
                if handle.type_index() == SLEEPER_TYPE =>
            {
                self.finished += 1;
                if self.finished == self.sleepers { Verdict::Done } else { Verdict::Continue }
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
        for shard in 0..shards {
            let sleepers = per_shard.min(isolates - shard * per_shard);
            spec.boot_child(ShardId(shard as u8), spawner, SpawnerArgs { sleepers, spread_ns });
        }
        Setup {
            nodes: vec![spec],
            observers: vec![Box::new(Goal { sleepers: isolates, finished: 0 })],
        }
    }
}
