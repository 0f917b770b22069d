//! Isolates shared by the runtime's integration tests: a ping-pong pair.
#![allow(dead_code, reason = "each test binary uses a different part of this module")]

use tina::{Ctx, Effect, Handle, Isolate, Message, ShardId, SystemSpec, TypeConfig, TypeIndex};

tina::payload! {
    /// A 64-byte ball: the round number and filler.
    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    pub struct Ball { pub round: u64, pub data: [u8; 56] }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct PingArgs { pub peer: Handle, pub rounds: u64 }
}

/// Serves the ball back to whoever sent it.
pub struct Ponger;

impl Isolate for Ponger {
    type Args = ();

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Ponger, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(ball) = message.decode::<Ball>() {
            ctx.send(message.source(), &ball).expect("the pinger has room for its ball");
        }
        Effect::Receive
    }
}

/// Serves the first ball and stops after `rounds` returns.
pub struct Pinger {
    peer: Handle,
    rounds: u64,
}

impl Isolate for Pinger {
    type Args = PingArgs;

    fn init(args: PingArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        ctx.send(args.peer, &Ball { round: 0, data: [7; 56] }).expect("the ponger has room");
        (Pinger { peer: args.peer, rounds: args.rounds }, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Ok(ball) = message.decode::<Ball>() else { return Effect::Receive };
        let round = ball.round + 1;
        if round == self.rounds {
            return Effect::Done;
        }
        ctx.send(self.peer, &Ball { round, ..ball }).expect("the ponger has room");
        Effect::Receive
    }
}

/// A spec with a ponger on `pong_shard` and a pinger on shard 0 that plays `rounds`.
pub fn ping_pong_spec(
    shard_count: usize,
    pong_shard: u8,
    rounds: u64,
) -> (SystemSpec, TypeIndex<Pinger>) {
    let mut spec = SystemSpec::new(shard_count);
    let pinger = spec.register::<Pinger>(TypeConfig::new("pinger").slots(2));
    let ponger = spec.register::<Ponger>(TypeConfig::new("ponger").slots(2));
    spec.register_payload::<Ball>();
    let peer = spec.boot_child(ShardId(pong_shard), ponger, ());
    spec.boot_child(ShardId(0), pinger, PingArgs { peer, rounds });
    (spec, pinger)
}
