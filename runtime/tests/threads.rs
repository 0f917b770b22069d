//! Two shards on two OS threads, each built on its own thread, play ping-pong through a
//! minimal real-time backend (monotonic clock, std channels). Proves that the `Backend`
//! seam carries threads and that isolates need not be `Send`: the pinger below holds an
//! `Rc`. The production backend (pinned threads, lock-free rings) comes later; this one is
//! deliberately simple.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use tina::{
    Backend, Ctx, Effect, Env, Event, Handle, Isolate, Message, Scheduler, ShardId, SystemSpec,
    Timestamp, TransportFull, TypeConfig,
};

mod common;
use common::{Ball, Ponger};

/// Plays `rounds` and counts returns in an `Rc`, which makes it `!Send`.
struct RcPinger {
    peer: Handle,
    rounds: u64,
    returns: Rc<std::cell::Cell<u64>>,
}

impl Isolate for RcPinger {
    type Args = common::PingArgs;

    fn init(args: common::PingArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        ctx.send(args.peer, &Ball { round: 0, data: [1; 56] }).expect("transport has room");
        let returns = Rc::new(std::cell::Cell::new(0));
        (RcPinger { peer: args.peer, rounds: args.rounds, returns }, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Ok(ball) = message.decode::<Ball>() else { return Effect::Receive };
        self.returns.set(self.returns.get() + 1);
        if self.returns.get() == self.rounds {
            return Effect::Done;
        }
        ctx.send(self.peer, &Ball { round: ball.round + 1, ..ball }).expect("transport has room");
        Effect::Receive
    }
}

/// Real time, std channels, an outbox published once per tick.
struct ThreadBackend {
    start: Instant,
    peers: Vec<Sender<Message>>,
    inbox: Receiver<Message>,
    parked: Option<Message>,
    outbox: Vec<(ShardId, Message)>,
    random_state: u64,
    stop: Arc<AtomicBool>,
    deliveries: u64,
}

impl Env for ThreadBackend {
    fn random_u64(&mut self) -> u64 {
        self.random_state ^= self.random_state << 13;
        self.random_state ^= self.random_state >> 7;
        self.random_state ^= self.random_state << 17;
        self.random_state
    }

    fn send_remote(&mut self, to: ShardId, message: &Message) -> Result<(), TransportFull> {
        self.outbox.push((to, *message));
        Ok(())
    }

    fn trace(&mut self, event: &Event) {
        if matches!(event, Event::Deliver { .. }) {
            self.deliveries += 1;
        }
    }
}

impl Backend for ThreadBackend {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.start.elapsed().as_nanos() as u64)
    }

    fn tracing(&self) -> bool {
        true
    }

    fn receive_remote(&mut self) -> Option<Message> {
        self.parked.take().or_else(|| self.inbox.try_recv().ok())
    }

    fn flush_remote(&mut self) {
        for (to, message) in self.outbox.drain(..) {
            // The peer may have stopped already; a lost ball then does not matter.
            let _ = self.peers[to.index()].send(message);
        }
    }

    fn park(&mut self, _deadline: Option<Timestamp>) {
        if self.parked.is_none() {
            self.parked = self.inbox.recv_timeout(Duration::from_millis(5)).ok();
        }
    }

    fn shard_failed(&mut self, failure: &tina::ShardFailure) {
        panic!("shard {} failed", failure.shard);
    }

    fn stop_requested(&mut self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

#[test]
#[expect(clippy::disallowed_methods, reason = "this test is about real threads and a real clock")]
fn ping_pong_on_two_threads() {
    const ROUNDS: u64 = 1_000;
    let mut spec = SystemSpec::new(2);
    let pinger = spec.register::<RcPinger>(TypeConfig::new("pinger").slots(1));
    let ponger = spec.register::<Ponger>(TypeConfig::new("ponger").slots(1));
    spec.register_payload::<Ball>();
    let peer = spec.boot_child(ShardId(1), ponger, ());
    spec.boot_child(ShardId(0), pinger, common::PingArgs { peer, rounds: ROUNDS });
    let spec = Arc::new(spec);

    let (senders, receivers): (Vec<_>, Vec<_>) = (0..2).map(|_| channel::<Message>()).unzip();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(index, inbox)| {
            let (spec, peers, stop) = (Arc::clone(&spec), senders.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let shard = ShardId(index as u8);
                let mut backend = ThreadBackend {
                    start,
                    peers,
                    inbox,
                    parked: None,
                    outbox: Vec::new(),
                    random_state: 0x9e37_79b9_7f4a_7c15 + index as u64,
                    stop: Arc::clone(&stop),
                    deliveries: 0,
                };
                // Built on this thread: the isolates never cross threads.
                let mut scheduler =
                    Scheduler::boot(&spec, shard, &mut backend).expect("valid spec");
                let deadline = Instant::now() + Duration::from_secs(60);
                if shard == ShardId(0) {
                    while scheduler.live_count(0) > 0 && Instant::now() < deadline {
                        if !scheduler.tick(&mut backend).has_work {
                            backend.park(None);
                        }
                    }
                    stop.store(true, Ordering::Release);
                } else {
                    scheduler.run(&mut backend);
                }
                (*scheduler.counters(), backend.deliveries)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().expect("shard thread")).collect();
    let ((ping_counters, ping_deliveries), (pong_counters, pong_deliveries)) =
        (results[0], results[1]);
    assert_eq!(ping_counters.exits_normal, 1, "the pinger finished its rounds in time");
    assert_eq!(ping_counters.delivered, ROUNDS);
    assert_eq!(pong_counters.delivered, ROUNDS);
    assert_eq!((ping_deliveries, pong_deliveries), (ROUNDS, ROUNDS));
    assert_eq!(ping_counters.drops() + pong_counters.drops(), 0);
}
