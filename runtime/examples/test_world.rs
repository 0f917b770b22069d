//! Two shards play ping-pong on the deterministic test backend and print their counters.
//!
//! `cargo run --release -p tina --example test_world -- [ROUNDS]`

use tina::testing::{TestConfig, TestWorld};
use tina::{Ctx, Effect, Handle, Isolate, Message, ShardId, SystemSpec, TypeConfig};

tina::payload! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    struct Ball { round: u64, data: [u8; 56] }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    struct PingArgs { peer: Handle, rounds: u64 }
}

/// Returns every ball to its sender.
struct Ponger;

impl Isolate for Ponger {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Ponger, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(ball) = message.decode::<Ball>() {
            // A full mailbox would drop the ball and end the game; counters would show it.
            let _ = ctx.send(message.source(), &ball);
        }
        Effect::Receive
    }
}

/// Serves `rounds` balls, one at a time, then stops.
struct Pinger {
    peer: Handle,
    rounds: u64,
}

impl Isolate for Pinger {
    type Args = PingArgs;
    fn init(args: PingArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let _ = ctx.send(args.peer, &Ball { round: 0, data: [0; 56] });
        (Pinger { peer: args.peer, rounds: args.rounds }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Ok(ball) = message.decode::<Ball>() else { return Effect::Receive };
        if ball.round + 1 == self.rounds {
            return Effect::Done;
        }
        let _ = ctx.send(self.peer, &Ball { round: ball.round + 1, ..ball });
        Effect::Receive
    }
}

fn main() {
    let rounds = match std::env::args().nth(1).map(|arg| arg.parse::<u64>()) {
        None => 10_000,
        Some(Ok(rounds)) if rounds > 0 => rounds,
        Some(_) => {
            eprintln!("error: ROUNDS must be a positive integer");
            std::process::exit(2);
        }
    };
    let mut spec = SystemSpec::new(2);
    let pinger = spec.register::<Pinger>(TypeConfig::new("pinger").slots(1));
    let ponger = spec.register::<Ponger>(TypeConfig::new("ponger").slots(1));
    spec.register_payload::<Ball>();
    let peer = spec.boot_child(ShardId(1), ponger, ());
    spec.boot_child(ShardId(0), pinger, PingArgs { peer, rounds });
    let mut world =
        match TestWorld::boot(&spec, TestConfig { event_capacity: 0, ..TestConfig::default() }) {
            Ok(world) => world,
            Err(error) => {
                eprintln!("error: {error}");
                std::process::exit(2);
            }
        };
    let ticks = world.run_until_idle(rounds * 4 + 16);
    println!("rounds={rounds} ticks={ticks}");
    for shard in [ShardId(0), ShardId(1)] {
        let entries = world.counters(shard).entries();
        let line: Vec<String> =
            entries.iter().map(|(name, value)| format!("{name}={value}")).collect();
        println!("shard {shard}: {}", line.join(" "));
    }
}
