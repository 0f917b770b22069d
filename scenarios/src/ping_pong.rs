//! `ping-pong`: two isolates on different shards exchange a 64-byte ball `round_trips`
//! times. The goal is the pinger's last return; a ball that comes back altered is a
//! correctness failure.

use tina::{
    Ctx, Effect, Event, Handle, Isolate, Label, Level, Message, ShardId, SystemSpec, TypeConfig,
};
use tina_checkers::{FailureClass, Observer, Stamp, Verdict, Violation};

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
    pub struct PingArgs { pub peer: Handle, pub round_trips: u64 }
}

/// Serves the ball and checks every return.
#[derive(Debug)]
pub struct Pinger {
    peer: Handle,
    round_trips: u64,
}

impl Isolate for Pinger {
    type Args = PingArgs;

    fn init(args: PingArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        // An empty mailbox has room: the ponger's capacity is checked by the spec.
        let _ = ctx.send(args.peer, &Ball::new(0));
        (Pinger { peer: args.peer, round_trips: args.round_trips }, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Ok(ball) = message.decode::<Ball>() else { return Effect::Receive };
        if ball != Ball::new(ball.round) {
            ctx.log(Level::Error, MISMATCH, [ball.round]);
            return Effect::Crash(MISMATCH);
        }
        let next = ball.round + 1;
        if next == self.round_trips {
            ctx.log(Level::Info, DONE, [next]);
            return Effect::Done;
        }
        let _ = ctx.send(self.peer, &Ball::new(next));
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

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(ball) = message.decode::<Ball>() {
            let _ = ctx.send(message.source(), &ball);
        }
        Effect::Receive
    }
}

/// Done at `DONE`; a correctness failure at `MISMATCH`.
#[derive(Debug, Default)]
pub struct Goal;

impl Observer for Goal {
    fn name(&self) -> &'static str {
        "ping-pong.goal"
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

const PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "round_trips",
    kind: ParamKind::Count,
    default: 1000,
    min: 1,
    max: 1 << 40,
    description: "balls served and returned",
}];

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
        let peer = spec.boot_child(ShardId(1), ponger, ());
        let round_trips = params.get("round_trips");
        spec.boot_child(ShardId(0), pinger, PingArgs { peer, round_trips });
        Setup { nodes: vec![spec], observers: vec![Box::new(Goal)] }
    }
}
