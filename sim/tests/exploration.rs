//! Seeds explore interleavings: four racers on four shards each send one message to a
//! collector on a fifth shard at the same virtual instant, with zero network delay, so only
//! the scheduling stream decides the arrival order. Over 1,000 seeds at least 20 of the 24
//! possible orders must occur.

use std::cell::RefCell;
use std::rc::Rc;

use tina::{
    Ctx, Effect, Event, Handle, Isolate, Label, Level, Message, ShardId, SystemSpec, TypeConfig,
};
use tina_checkers::{Observer, Stamp, Verdict};
use tina_sim::trace::{Names, Sink, Tape};
use tina_sim::world::{Ending, Limits, World, WorldConfig};

tina::payload! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Lap { pub racer: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct RacerArgs { pub collector: Handle, pub racer: u64 }
}

const ARRIVED: Label = Label::new("race.arrived");

/// Sends its lap on its first tick (not in `init`, which runs at boot in shard order).
#[derive(Debug)]
struct Racer {
    args: RacerArgs,
}

impl Isolate for Racer {
    type Args = RacerArgs;
    fn init(args: RacerArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Racer { args }, Effect::Yield)
    }
    fn handle(&mut self, _message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let _ = ctx.send(self.args.collector, &Lap { racer: self.args.racer });
        Effect::Done
    }
}

/// Logs each lap's racer in arrival order.
#[derive(Debug)]
struct Collector;

impl Isolate for Collector {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Collector, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(lap) = message.decode::<Lap>() {
            ctx.log(Level::Info, ARRIVED, [lap.racer]);
        }
        Effect::Receive
    }
}

/// Records the arrival order; done after four.
struct Order(Rc<RefCell<Vec<u64>>>);

impl Observer for Order {
    fn name(&self) -> &'static str {
        "race.order"
    }
    fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
        if let Event::Log { tag, values, .. } = event
            && *tag == ARRIVED
        {
            self.0.borrow_mut().push(values[0]);
            if self.0.borrow().len() == 4 {
                return Verdict::Done;
            }
        }
        Verdict::Continue
    }
}

fn race(seed: u64) -> Vec<u64> {
    let mut spec = SystemSpec::new(5);
    let collector = spec.register::<Collector>(TypeConfig::new("collector").slots(1));
    let racer = spec.register::<Racer>(TypeConfig::new("racer").slots(1));
    spec.register_payload::<Lap>();
    let target = spec.boot_child(ShardId(4), collector, ());
    for index in 0..4u8 {
        spec.boot_child(
            ShardId(index),
            racer,
            RacerArgs { collector: target, racer: u64::from(index) },
        );
    }
    let order = Rc::new(RefCell::new(Vec::new()));
    let sink =
        Sink::new(vec![Box::new(Order(Rc::clone(&order)))], Names::default(), None, Tape::Off);
    let config = WorldConfig { net_delay_min_ns: 0, net_delay_max_ns: 0, ..WorldConfig::default() };
    let mut world = World::boot(vec![spec], config, seed, sink).expect("valid spec");
    let ending = world.run(Limits { time_max_ns: 1_000_000_000, events_max: 10_000 });
    assert_eq!(ending, Ending::Stopped, "seed {seed}");
    assert_eq!(
        world.now_ns(),
        1_000,
        "every lap arrives at the same instant: one dispatch after zero"
    );
    order.take()
}

#[test]
fn seeds_explore_arrival_orders() {
    let mut orders: Vec<Vec<u64>> = (0..1000).map(race).collect();
    assert_eq!(race(7), race(7), "one seed, one order");
    orders.sort();
    orders.dedup();
    println!("distinct arrival orders over 1000 seeds: {} of 24", orders.len());
    assert!(orders.len() >= 20, "only {} of 24 orders", orders.len());
}
