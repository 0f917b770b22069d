//! `ping-pong`: two isolates on different shards exchange a 64-byte ball `round_trips`
//! times. The goal is the pinger's last return; a ball that comes back altered is a
//! correctness failure.
//!
//! Built to survive every fault: the pinger addresses the ponger by its slot
//! (`Handle::latest`), so a restarted ponger is still reached, and resends the current
//! ball whenever `retry` passes without its return (a ball lost to a crash, a down shard or
//! a full mailbox), ignoring stale and duplicate returns. A restarted pinger starts over
//! from round 0. With `retry=0` it never resends: the planted liveness bug.

use core::time::Duration;

use tina::{
    Ctx, Effect, Event, Handle, Isolate, Label, Level, Message, ShardId, SystemSpec, TimerId,
    TypeConfig,
};
use tina_checkers::{EventKinds, FailureClass, Observer, Stamp, Verdict, Violation};

use crate::{ParamKind, ParamSpec, Params, Scenario, Setup};

/// The pinger played every round.
pub const DONE: Label = Label::new("ping-pong.done");
/// A ball came back altered.
pub const MISMATCH: Label = Label::new("ping-pong.mismatch");

tina::payload! {
    /// The ball: the round and a fill pattern derived from it.
    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    pub struct Ball { pub round: u64, pub fill: [u8; 56] }
}

impl Ball {
    fn new(round: u64) -> Ball {
        Ball { round, fill: [round as u8; 56] }
    }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct PingArgs { pub peer: Handle, pub round_trips: u64, pub retry_ns: u64 }
}

/// Serves the ball, checks every return, and resends a ball that does not come back.
#[derive(Debug)]
pub struct Pinger {
    peer: Handle,
    round_trips: u64,
    retry: Duration,
    /// The round whose return is awaited.
    round: u64,
    /// The pending resend timer, if any.
    timer: Option<TimerId>,
}

impl Pinger {
    /// Sends the current round's ball and arms its resend timer.
    fn serve(&mut self, ctx: &mut Ctx<'_>) {
        // A refused send is a lost ball: the resend timer covers it.
        let _ = ctx.send(self.peer, &Ball::new(self.round));
        if let Some(timer) = self.timer.take() {
            ctx.timer_cancel(timer);
        }
        if !self.retry.is_zero() {
            // One timer at a time; if the pool refuses, the next return re-arms it.
            self.timer = ctx.timer_set(self.retry, self.round).ok();
        }
    }
}

impl Isolate for Pinger {
    type Args = PingArgs;

    fn init(args: PingArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let mut pinger = Pinger {
            peer: args.peer.latest(),
            round_trips: args.round_trips,
            retry: Duration::from_nanos(args.retry_ns),
            round: 0,
            timer: None,
        };
        pinger.serve(ctx);
        (pinger, Effect::Receive)
    }

    #[inline]
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Ok(ball) = message.decode::<Ball>() else {
            if let Some(fired) = message.timer()
                && Some(fired.timer) == self.timer
            {
                self.timer = None;
                self.serve(ctx);
            }
            return Effect::Receive;
        };
        if ball != Ball::new(ball.round) {
            ctx.log(Level::Error, MISMATCH, [ball.round]);
            return Effect::Crash(MISMATCH);
        }
        if ball.round != self.round {
            // A duplicate of a ball resent earlier.
            return Effect::Receive;
        }
        self.round += 1;
        if self.round == self.round_trips {
            ctx.log(Level::Info, DONE, [self.round]);
            return Effect::Done;
        }
        self.serve(ctx);
        Effect::Receive
    }
}

/// Returns every ball to its sender.
#[derive(Debug)]
pub struct Ponger;

impl Isolate for Ponger {
    type Args = ();

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Ponger, Effect::Receive)
    }

    #[inline]
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        // Under simulation, now and then, the ball is lost here: the pinger must resend.
        if ctx.buggify(DROP_BALL) {
            return Effect::Receive;
        }
        if let Ok(ball) = message.decode::<Ball>() {
            let _ = ctx.send(message.source(), &ball);
        }
        Effect::Receive
    }
}

/// The ponger's `buggify` site: it drops the ball it got.
pub const DROP_BALL: Label = Label::new("ping-pong.drop-ball");

/// Done at `DONE`; a correctness failure at `MISMATCH`.
#[derive(Debug, Default)]
pub struct Goal;

impl Observer for Goal {
    fn name(&self) -> &'static str {
        "ping-pong.goal"
    }

    fn kinds(&self) -> EventKinds {
        EventKinds::LOG
    }

    fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
        match event {
            Event::Log { tag, .. } if *tag == DONE => Verdict::Done,
            Event::Log { tag, values, .. } if *tag == MISMATCH => Verdict::Violated(Violation {
                class: FailureClass::Correctness,
                checker: "ping-pong.goal",
                explanation: format!("ball of round {} came back altered", values[0]),
            }),
            _ => Verdict::Continue,
        }
    }
}

/// The `ping-pong` scenario.
#[derive(Debug)]
pub struct PingPong;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "round_trips",
        kind: ParamKind::Count,
        default: 1000,
        min: 1,
        max: 1 << 40,
        description: "balls served and returned",
    },
    ParamSpec {
        name: "retry",
        kind: ParamKind::Duration,
        default: 100_000_000,
        min: 0,
        max: 3_600_000_000_000,
        description: "the pinger resends a ball not back within this (0: never, the planted liveness bug)",
    },
];

impl Scenario for PingPong {
    fn name(&self) -> &'static str {
        "ping-pong"
    }

    fn description(&self) -> &'static str {
        "two isolates on two shards exchange a 64-byte ball round_trips times"
    }

    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }

    fn build(&self, params: &Params) -> Setup {
        let mut spec = SystemSpec::new(2);
        let pinger = spec.register::<Pinger>(TypeConfig::new("pinger").slots(1));
        let ponger = spec.register::<Ponger>(TypeConfig::new("ponger").slots(1));
        spec.register_payload::<Ball>();
        for shard in 0..2 {
            // Injected crashes restart these isolates often; escalate only on a storm.
            crate::storm_tolerant_root(&mut spec, ShardId(shard));
        }
        let peer = spec.boot_child(ShardId(1), ponger, ());
        let args = PingArgs {
            peer,
            round_trips: params.get("round_trips"),
            retry_ns: params.get("retry"),
        };
        spec.boot_child(ShardId(0), pinger, args);
        Setup::new(spec).observer(Goal).goal(crate::Goal::Observed)
    }
}
