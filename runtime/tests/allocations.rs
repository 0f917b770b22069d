//! After boot, the scheduler allocates nothing: 100,000 ticks of two-shard ping-pong, then
//! 100,000 ticks of calls, replies and timers, then 100,000 ticks of a credit-window stream
//! whose items are dropped for room, reported by drop notices and sent again, all with
//! tracing on, run under a counting global allocator that is armed only for those windows.
//! This test is alone in its binary so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use core::time::Duration;

use std::collections::VecDeque;

use tina::TypeConfig;
use tina::flow::{CreditReceiver, CreditSender, FlowError};
use tina::testing::{TestConfig, TestWorld};
use tina::{Ctx, Effect, Handle, Isolate, Message, MessageId, ShardId, SystemSpec, Tag};

mod common;

/// Counts allocations made by a thread while its `ARMED` flag is set; forwards everything
/// to the system allocator. The flag is per thread so that the test harness's own threads
/// (which may allocate lazily while they wait) are not counted: the scheduler runs on the
/// test's thread.
struct CountingAllocator;

thread_local! {
    // Const-initialised, so reading it from the allocator never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn armed() -> bool {
    ARMED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if armed() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if armed() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

tina::payload! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Question { pub n: u64 }
}

/// Answers every call at once.
struct Answerer;

impl Isolate for Answerer {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Answerer, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        match (message.decode::<Question>(), message.reply_token()) {
            (Ok(question), Some(token)) => Effect::reply(token, &question),
            _ => Effect::Receive,
        }
    }
}

/// Calls, and on each answer sets a timer and cancels an older one; on each timer, calls.
struct Asker {
    peer: Handle,
    pending: Option<tina::TimerId>,
}

impl Isolate for Asker {
    type Args = Handle;
    fn init(peer: Handle, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (
            Asker { peer, pending: None },
            Effect::call(peer, &Question { n: 0 }, Duration::from_secs(1)),
        )
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(question) = message.decode::<Question>() {
            if let Some(old) = self.pending.take() {
                ctx.timer_cancel(old);
            }
            self.pending = ctx.timer_set(Duration::from_micros(5), question.n).ok();
            let _ = ctx.timer_set(Duration::from_micros(1), question.n + 1).expect("room");
            return Effect::Receive;
        }
        if let Some(fired) = message.timer() {
            return Effect::call(self.peer, &Question { n: fired.tag }, Duration::from_secs(1));
        }
        Effect::Receive
    }
}

tina::payload! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Item { pub seq: u64 }
}

const WINDOW: u32 = 16;

/// Streams items without end through a window of 16, resending those dropped (the pattern
/// of `tina::flow`'s example, with its tables allocated in `init`).
struct Streamer {
    credits: CreditSender,
    sink: Handle,
    next: u64,
    unconfirmed: VecDeque<(MessageId, u64)>,
    resend: VecDeque<u64>,
}

impl Streamer {
    fn pump(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        for _ in 0..WINDOW {
            let (seq, again) = self.resend.front().map_or((self.next, false), |&seq| (seq, true));
            match self.credits.try_send(ctx, self.sink, &Item { seq }) {
                Ok(id) => {
                    self.unconfirmed.push_back((id, seq));
                    if again {
                        self.resend.pop_front();
                    } else {
                        self.next += 1;
                    }
                }
                Err(FlowError::WindowFull) => break,
                Err(FlowError::Send(_)) => return Effect::Yield,
            }
        }
        Effect::Receive
    }
}

impl Isolate for Streamer {
    type Args = Handle;
    fn init(sink: Handle, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let mut streamer = Streamer {
            credits: CreditSender::new(WINDOW),
            sink,
            next: 0,
            unconfirmed: VecDeque::with_capacity(WINDOW as usize),
            resend: VecDeque::with_capacity(WINDOW as usize),
        };
        let effect = streamer.pump(ctx);
        (streamer, effect)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if self.credits.on_message(message) {
            if let Some(notice) = message.drop_notice() {
                let at = self.unconfirmed.iter().position(|(id, _)| *id == notice.id);
                if let Some((_, seq)) = at.and_then(|at| self.unconfirmed.remove(at)) {
                    self.resend.push_back(seq);
                }
            }
            while self.unconfirmed.len() > self.credits.in_flight() as usize {
                self.unconfirmed.pop_front();
            }
        }
        self.pump(ctx)
    }
}

/// Takes items and returns credits, four at a time.
struct Drain {
    credits: CreditReceiver,
}

impl Isolate for Drain {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Drain { credits: CreditReceiver::new(4) }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.tag() == Tag::RESUME {
            self.credits.flush(ctx);
        } else if !self.credits.on_message(message) && message.is::<Item>() {
            self.credits.on_item(ctx, message);
        }
        if self.credits.owes() { Effect::Yield } else { Effect::Receive }
    }
}

#[test]
fn no_allocation_after_boot() {
    const TICKS: u64 = 100_000;
    // Enough rounds that the game outlasts the window.
    let (spec, _) = common::ping_pong_spec(2, 1, u64::MAX);
    // Tracing on: the recorder fills its fixed capacity, then only counts.
    let config = TestConfig { event_capacity: 1024, ..TestConfig::default() };
    let mut world = TestWorld::boot(&spec, config).expect("valid spec");

    ARMED.with(|armed| armed.set(true));
    for _ in 0..TICKS {
        world.tick();
    }
    ARMED.with(|armed| armed.set(false));

    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    let delivered = world.counters(ShardId(0)).delivered + world.counters(ShardId(1)).delivered;
    assert!(delivered >= TICKS, "the game ran: {delivered} deliveries");
    assert!(world.backend(ShardId(0)).events_seen() > 1024, "tracing was on past the recorder");
    assert_eq!(allocations, 0, "allocations after boot (ping-pong)");

    let mut spec = SystemSpec::new(2);
    let asker = spec.register::<Asker>(TypeConfig::new("asker").slots(1));
    let answerer = spec.register::<Answerer>(TypeConfig::new("answerer").slots(1));
    let peer = spec.boot_child(ShardId(1), answerer, ());
    spec.boot_child(ShardId(0), asker, peer);
    let mut world = TestWorld::boot(&spec, config).expect("valid spec");
    ARMED.with(|armed| armed.set(true));
    for _ in 0..TICKS {
        world.advance(Duration::from_micros(1));
        world.tick();
    }
    ARMED.with(|armed| armed.set(false));
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - allocations;
    let counters = world.counters(ShardId(0));
    assert!(counters.calls_replied > 1_000, "calls ran: {counters:?}");
    assert!(
        counters.timers_fired > 1_000 && counters.timers_cancelled > 1_000,
        "timers ran: {counters:?}"
    );
    assert_eq!(allocations, 0, "allocations after boot (calls and timers)");

    // A window of 16 into a mailbox of 5: drops, notices and resends all the way.
    let mut spec = SystemSpec::new(2);
    let streamer = spec.register::<Streamer>(TypeConfig::new("streamer").slots(1));
    let drain = spec.register::<Drain>(TypeConfig::new("drain").slots(1).mailbox(5));
    let sink = spec.boot_child(ShardId(1), drain, ());
    spec.boot_child(ShardId(0), streamer, sink);
    let mut world = TestWorld::boot(&spec, config).expect("valid spec");
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    ARMED.with(|armed| armed.set(true));
    for _ in 0..TICKS {
        world.tick();
    }
    ARMED.with(|armed| armed.set(false));
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    let (sent, received) = (world.counters(ShardId(0)), world.counters(ShardId(1)));
    assert!(received.delivered > 100_000, "items flowed: {received:?}");
    assert!(received.drop_notices > 1_000, "items were dropped and noticed: {received:?}");
    assert!(sent.delivered > 10_000, "credits and notices came back: {sent:?}");
    assert_eq!(allocations, 0, "allocations after boot (a credit window with drops)");
}
