//! Flow control between isolates: drop notices (`ctx.send_notify`, `Message::drop_notice`)
//! for every cause of a drop, on one shard and across two, with their accounting (an
//! ordinary send of the shard that dropped, never lost silently), and the credit window of
//! `tina::flow` built on them.

use std::cell::RefCell;

use tina::testing::{TestConfig, TestWorld};
use tina::{
    Ctx, DropNotice, DropReason, Effect, Event, Handle, Isolate, Label, Message, MessageId,
    Payload, SendError, ShardId, SystemSpec, Tag, TypeConfig,
};

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);

tina::payload! {
    /// Test to sender: send `count` notes to `target` (with `send_notify` unless `plain`),
    /// then stop if `stop` is set.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Order { pub target: Handle, pub count: u64, pub plain: u64, pub stop: u64 }
}

tina::payload! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Note { pub value: u64 }
}

thread_local! {
    /// What the sender saw, in order.
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Every drop notice the sender received, with the notice's own id.
    static NOTICES: RefCell<Vec<(MessageId, DropNotice)>> = const { RefCell::new(Vec::new()) };
}

fn log(line: String) {
    LOG.with(|log| log.borrow_mut().push(line));
}

fn error_name(error: SendError) -> &'static str {
    match error {
        SendError::MailboxFull => "mailbox-full",
        SendError::PoolExhausted => "pool-exhausted",
        SendError::StaleHandle => "stale-handle",
    }
}

/// Sends what it is ordered to, logs each result in one line, and logs each drop notice as
/// the note it names (`?` for a send that returned `Err`, which left no id to match).
struct Sender {
    sent: Vec<(MessageId, u64)>,
    target: Handle,
}

impl Isolate for Sender {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Sender { sent: Vec::new(), target: Handle::NONE }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Some(notice) = message.drop_notice() {
            assert!(message.source().is_none() && message.tag() == Tag::DROP_NOTICE);
            NOTICES.with(|n| n.borrow_mut().push((message.id(), notice)));
            let note = self.sent.iter().find(|(id, _)| *id == notice.id);
            let note = note.map_or("?".to_string(), |(_, value)| value.to_string());
            let place = if notice.to == self.target { "target" } else { "elsewhere" };
            log(format!("notice {note} {} at {place}", notice.reason.name()));
            return Effect::Receive;
        }
        let order = message.decode::<Order>().expect("an order");
        self.target = order.target;
        let mut results = Vec::new();
        for value in 0..order.count {
            let note = Note { value };
            let result = if order.plain == 1 {
                ctx.send(order.target, &note).map(|()| MessageId::NONE)
            } else {
                ctx.send_notify(order.target, &note)
            };
            match result {
                Ok(id) => {
                    self.sent.push((id, value));
                    results.push("ok");
                }
                Err(error) => results.push(error_name(error)),
            }
        }
        log(format!("send: {}", results.join(" ")));
        if order.stop == 1 { Effect::Done } else { Effect::Receive }
    }
}

/// Keeps what it receives (its mailbox fills while it is not dispatched).
struct Sink;

impl Isolate for Sink {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Sink, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

/// Stops on its first message, with the others still queued.
struct Stopper;

impl Isolate for Stopper {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Stopper, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Done
    }
}

/// Sizes of one run: the message pool (every shard), the transport, the sinks' mailboxes.
#[derive(Clone, Copy)]
struct Setup {
    pool: u32,
    transport: usize,
    sink_mailbox: u32,
}

const ROOMY: Setup = Setup { pool: 64, transport: 64, sink_mailbox: 4 };

/// Where the target lives: on the sender's shard (0) or the other one (1).
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Local,
    Remote,
}

/// A world with a sender (mailbox of 2) on shard 0, and a sink and a stopper on each shard.
struct Notices {
    world: TestWorld,
    sender: Handle,
    sinks: [Handle; 2],
    stoppers: [Handle; 2],
}

impl Notices {
    fn boot(setup: Setup) -> Notices {
        LOG.with(|log| log.borrow_mut().clear());
        NOTICES.with(|n| n.borrow_mut().clear());
        let mut spec = SystemSpec::new(2);
        spec.message_pool_size(setup.pool);
        let sender = spec.register::<Sender>(TypeConfig::new("sender").slots(1).mailbox(2));
        let sink = spec.register::<Sink>(TypeConfig::new("sink").mailbox(setup.sink_mailbox));
        let stopper = spec.register::<Stopper>(TypeConfig::new("stopper").slots(2).mailbox(8));
        spec.register_payload::<Order>().register_payload::<Note>();
        let sender = spec.boot_child(S0, sender, ());
        let sinks = [spec.boot_child(S0, sink, ()), spec.boot_child(S1, sink, ())];
        let stoppers = [spec.boot_child(S0, stopper, ()), spec.boot_child(S1, stopper, ())];
        let config = TestConfig { transport_capacity: setup.transport, ..TestConfig::default() };
        let world = TestWorld::boot(&spec, config).expect("a valid spec");
        Notices { world, sender, sinks, stoppers }
    }

    fn index(place: Place) -> usize {
        if place == Place::Local { 0 } else { 1 }
    }

    /// Orders the sender to send `count` notes to `target`, runs until idle, checks the
    /// accounting of every notice, and returns the sender's log and each shard's notice
    /// counters (`sent/lost`).
    fn run(&mut self, order: Order) -> String {
        assert!(self.world.inject(self.sender, &order));
        self.world.run_until_idle(100);
        self.check_accounting();
        let mut lines = LOG.with(|log| log.take());
        let counts: Vec<String> = [S0, S1]
            .iter()
            .map(|&shard| {
                let counters = self.world.counters(shard);
                format!("s{} {}/{}", shard.0, counters.drop_notices, counters.drop_notices_lost)
            })
            .collect();
        lines.push(format!("notices sent/lost: {}", counts.join(", ")));
        lines.join("\n")
    }

    /// Every notice the sender received is an ordinary message of the shard that dropped
    /// the original: that shard traced the original's drop (its id, destination, reason),
    /// then the notice's `Send` (from no isolate, to the sender, the system tag); the
    /// sender's shard traced its `Enqueue` and `Deliver`. The original was sent by the
    /// sender as a note. Every notice sent has a `Send` event and every notice lost a `Drop`.
    fn check_accounting(&self) {
        let events = |shard: ShardId| self.world.backend(shard).events();
        let all: Vec<(ShardId, Event)> =
            [S0, S1].iter().flat_map(|&s| events(s).iter().map(move |e| (s, *e))).collect();
        for (notice_id, notice) in NOTICES.with(|n| n.borrow().clone()) {
            let dropper = events(notice_id.origin());
            let dropped = Event::Drop { id: notice.id, to: notice.to, reason: notice.reason };
            let drop_at = dropper.iter().position(|e| *e == dropped).expect("the drop is traced");
            let send = Event::Send {
                id: notice_id,
                from: Handle::NONE,
                to: self.sender,
                tag: Tag::DROP_NOTICE,
            };
            let send_at = dropper.iter().position(|e| *e == send).expect("the notice's send");
            assert!(drop_at < send_at, "the notice follows the drop");
            let original = events(S0).iter().any(|e| {
                matches!(e, Event::Send { id, from, tag, .. }
                    if *id == notice.id && *from == self.sender && *tag == Note::TAG)
            });
            assert!(original, "{} is a note the sender sent", notice.id);
            let arrived = events(S0).iter().any(|e| {
                matches!(e, Event::Enqueue { id, to, reply: false, .. }
                    if *id == notice_id && *to == self.sender)
            });
            let deliver = Event::Deliver { id: notice_id, to: self.sender, tag: Tag::DROP_NOTICE };
            assert!(arrived && events(S0).contains(&deliver), "{notice_id} was delivered");
        }
        let notice_sends = all
            .iter()
            .filter(|(_, e)| matches!(e, Event::Send { tag, .. } if *tag == Tag::DROP_NOTICE))
            .count() as u64;
        let sent = self.world.counters(S0).drop_notices + self.world.counters(S1).drop_notices;
        assert_eq!(notice_sends, sent, "one notice sent, one `Send` event");
        let notice_ids: Vec<MessageId> = all
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Send { id, tag, .. } if *tag == Tag::DROP_NOTICE => Some(*id),
                _ => None,
            })
            .collect();
        let notice_drops = all
            .iter()
            .filter(|(_, e)| matches!(e, Event::Drop { id, .. } if notice_ids.contains(id)))
            .count() as u64;
        let lost =
            self.world.counters(S0).drop_notices_lost + self.world.counters(S1).drop_notices_lost;
        assert_eq!(notice_drops, lost, "every notice dropped is counted as lost");
    }

    fn order(&self, target: Handle, count: u64) -> Order {
        Order { target, count, plain: 0, stop: 0 }
    }
}

/// A full mailbox: on one shard the send returns `Err` and the notice (matching no id the
/// sender kept) follows at once; across shards every send is `Ok` and the receiving shard
/// sends one notice per drop, each naming the note's id. Six notices reach a sender whose
/// mailbox holds two: notices are not held to the capacity.
#[test]
fn a_full_mailbox_sends_a_notice() {
    let mut notices = Notices::boot(ROOMY);
    let order = notices.order(notices.sinks[Notices::index(Place::Local)], 10);
    let local = notices.run(order);
    assert_eq!(
        local,
        "send: ok ok ok ok mailbox-full mailbox-full mailbox-full mailbox-full mailbox-full \
         mailbox-full\n\
         notice ? mailbox-full at target\nnotice ? mailbox-full at target\n\
         notice ? mailbox-full at target\nnotice ? mailbox-full at target\n\
         notice ? mailbox-full at target\nnotice ? mailbox-full at target\n\
         notices sent/lost: s0 6/0, s1 0/0"
    );

    let mut notices = Notices::boot(ROOMY);
    let order = notices.order(notices.sinks[Notices::index(Place::Remote)], 10);
    let remote = notices.run(order);
    assert_eq!(
        remote,
        "send: ok ok ok ok ok ok ok ok ok ok\n\
         notice 4 mailbox-full at target\nnotice 5 mailbox-full at target\n\
         notice 6 mailbox-full at target\nnotice 7 mailbox-full at target\n\
         notice 8 mailbox-full at target\nnotice 9 mailbox-full at target\n\
         notices sent/lost: s0 0/0, s1 6/0"
    );
    let sender_lengths: Vec<u32> = notices
        .world
        .backend(S0)
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Enqueue { to, mailbox_len, .. } if *to == notices.sender => Some(*mailbox_len),
            _ => None,
        })
        .collect();
    // The order, then the six notices, all queued together beyond the capacity of two.
    assert_eq!(sender_lengths, [1, 1, 2, 3, 4, 5, 6]);
    assert_eq!(notices.world.counters(S1).mailbox_full, 6);
}

/// A stale handle (an isolate that was killed): on one shard `Err` and a notice, across
/// shards a notice from the receiving shard for each note, with the stale handle as the
/// destination.
#[test]
fn a_stale_handle_sends_a_notice() {
    for (place, expected) in [
        (
            Place::Local,
            "send: stale-handle stale-handle\n\
             notice ? stale-handle at target\nnotice ? stale-handle at target\n\
             notices sent/lost: s0 2/0, s1 0/0",
        ),
        (
            Place::Remote,
            "send: ok ok\n\
             notice 0 stale-handle at target\nnotice 1 stale-handle at target\n\
             notices sent/lost: s0 0/0, s1 2/0",
        ),
    ] {
        let mut notices = Notices::boot(ROOMY);
        let sink = notices.sinks[Notices::index(place)];
        assert!(notices.world.kill(sink, Label::new("test")));
        let order = notices.order(sink, 2);
        assert_eq!(notices.run(order), expected);
    }
}

/// A full outbound transport (two envelopes per tick): the third note and those after it
/// are dropped on the sender's own shard as `RingFull`, so the sends return `Err` and the
/// notices are local, though the target is on the other shard. The two notes the
/// transport took are delivered.
#[test]
fn a_full_transport_sends_a_notice() {
    let setup = Setup { transport: 2, sink_mailbox: 64, ..ROOMY };
    let mut notices = Notices::boot(setup);
    let order = notices.order(notices.sinks[Notices::index(Place::Remote)], 5);
    assert_eq!(
        notices.run(order),
        "send: ok ok mailbox-full mailbox-full mailbox-full\n\
         notice ? ring-full at target\nnotice ? ring-full at target\n\
         notice ? ring-full at target\n\
         notices sent/lost: s0 3/0, s1 0/0"
    );
    assert_eq!(notices.world.counters(S0).ring_full, 3);
    assert_eq!(notices.world.counters(S1).enqueued, 2);
}

/// An exhausted pool (eight envelopes per shard). Across shards the receiving shard's pool
/// runs out, and its notices travel back to the sender's shard, which has room: one notice
/// per note. On one shard the notice would need an envelope of the very pool that just
/// refused the note: it is dropped too, counted as lost (and traced), and the `Err` is the
/// sender's answer.
#[test]
fn an_exhausted_pool_sends_a_notice_when_the_senders_pool_has_room() {
    let setup = Setup { pool: 8, sink_mailbox: 64, ..ROOMY };
    let mut notices = Notices::boot(setup);
    let order = notices.order(notices.sinks[Notices::index(Place::Remote)], 10);
    assert_eq!(
        notices.run(order),
        "send: ok ok ok ok ok ok ok ok ok ok\n\
         notice 8 pool-exhausted at target\nnotice 9 pool-exhausted at target\n\
         notices sent/lost: s0 0/0, s1 2/0"
    );

    let mut notices = Notices::boot(setup);
    let order = notices.order(notices.sinks[Notices::index(Place::Local)], 10);
    assert_eq!(
        notices.run(order),
        "send: ok ok ok ok ok ok ok ok pool-exhausted pool-exhausted\n\
         notices sent/lost: s0 2/2, s1 0/0"
    );
    // Each lost notice was sent (`Send`) and dropped for the same reason (`Drop`).
    let events = notices.world.backend(S0).events();
    let lost: Vec<DropReason> = events
        .iter()
        .filter_map(|e| match e {
            Event::Drop { to, reason, .. } if *to == notices.sender => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(lost, [DropReason::PoolExhausted; 2]);
    assert_eq!(notices.world.counters(S0).pool_exhausted, 4, "two notes and two notices");
}

/// A target that stops with notes queued: each queued note is dropped as `TargetExited`
/// and its sender is told, on one shard and across two; the send itself returned `Ok`, so
/// the notices name their notes.
#[test]
fn a_target_that_stops_sends_a_notice() {
    for (place, expected) in [
        (
            Place::Local,
            "send: ok ok ok\n\
             notice 1 target-exited at target\nnotice 2 target-exited at target\n\
             notices sent/lost: s0 2/0, s1 0/0",
        ),
        (
            Place::Remote,
            "send: ok ok ok\n\
             notice 1 target-exited at target\nnotice 2 target-exited at target\n\
             notices sent/lost: s0 0/0, s1 2/0",
        ),
    ] {
        let mut notices = Notices::boot(ROOMY);
        let order = notices.order(notices.stoppers[Notices::index(place)], 3);
        assert_eq!(notices.run(order), expected);
    }
}

/// A notice that cannot be delivered is never lost silently: a sender that stopped right
/// after sending is stale when its notices arrive, so its shard drops them (`StaleHandle`,
/// traced) and counts them in `drop_notices_lost`; nothing asks for a notice of a notice.
#[test]
fn an_undeliverable_notice_is_counted_as_lost() {
    let mut notices = Notices::boot(ROOMY);
    let target = notices.sinks[Notices::index(Place::Remote)];
    let order = Order { stop: 1, ..notices.order(target, 6) };
    assert_eq!(notices.run(order), "send: ok ok ok ok ok ok\nnotices sent/lost: s0 0/2, s1 2/0");
    let counters = notices.world.counters(S0);
    assert_eq!((counters.stale_handle, counters.drop_notices), (2, 0));
    let notice_sends = notices
        .world
        .backend(S1)
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Send { tag, .. } if *tag == Tag::DROP_NOTICE))
        .count();
    assert_eq!(notice_sends, 2);
}

/// `send` asks for nothing: the same drops as with `send_notify`, counted and traced, and
/// no notice anywhere.
#[test]
fn send_without_notify_sends_no_notice() {
    for place in [Place::Local, Place::Remote] {
        let mut notices = Notices::boot(ROOMY);
        let target = notices.sinks[Notices::index(place)];
        let order = Order { plain: 1, ..notices.order(target, 6) };
        let log = notices.run(order);
        assert!(log.ends_with("notices sent/lost: s0 0/0, s1 0/0"), "{log}");
        assert!(!log.contains("notice "), "{log}");
        let shard = if place == Place::Local { S0 } else { S1 };
        assert_eq!(notices.world.counters(shard).mailbox_full, 2);
    }
}

/// A down shard answers nothing: a note that reaches a crashed shard is dropped there as
/// `ShardDown` (counted, traced) with no notice; nor does a shard that crashes with notes
/// queued send any for them.
#[test]
fn a_down_or_crashing_shard_sends_no_notice() {
    let mut notices = Notices::boot(ROOMY);
    notices.world.crash_shard(S1);
    let order = notices.order(notices.sinks[Notices::index(Place::Remote)], 3);
    assert_eq!(notices.run(order), "send: ok ok ok\nnotices sent/lost: s0 0/0, s1 0/0");
    assert_eq!(notices.world.counters(S1).shard_down, 3);

    // More notes than the sink's dispatch budget of a tick: after one tick of the world,
    // those left are queued on shard 1 when it crashes, and are dropped without a notice.
    let setup = Setup { pool: 512, transport: 512, sink_mailbox: 512 };
    let mut notices = Notices::boot(setup);
    let order = notices.order(notices.sinks[Notices::index(Place::Remote)], 300);
    assert!(notices.world.inject(notices.sender, &order));
    notices.world.tick();
    notices.world.crash_shard(S1);
    notices.world.run_until_idle(100);
    let counters = *notices.world.counters(S1);
    assert_eq!(counters.enqueued, 300);
    assert!(counters.dropped_on_exit > 0, "notes were queued at the crash");
    assert_eq!(counters.dropped_on_exit + counters.delivered, 300);
    assert_eq!(counters.drop_notices, 0);
    assert!(NOTICES.with(|n| n.borrow().is_empty()));
}

// The credit window (`tina::flow`): the pattern of the module's example, instrumented, with
// random pauses at the source and random stalls at the sink.

tina::payload! {
    /// One item of a stream: its number, and whether it is the last.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Item { pub seq: u64, pub last: u64 }
}

tina::payload! {
    /// Sink to staller (a call): answer after `ticks` ticks.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Hold { pub ticks: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct SourceArgs {
        pub sink: Handle,
        pub count: u64,
        pub window: u64,
        /// Chance per mille that the source waits a tick before sending what it may.
        pub pause: u64,
    }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct SinkArgs {
        pub staller: Handle,
        pub count: u64,
        pub batch: u64,
        /// Chance per mille that the sink stalls (a call to the staller) after an item.
        pub stall: u64,
        /// Whether the sink also flushes on a timer (1) or only as the example does (0).
        pub flush_timer: u64,
    }
}

/// What the two ends did, read by the test between ticks.
#[derive(Clone, Debug, Default)]
struct Stream {
    /// Items sent with `Ok` (resends included).
    sent: u64,
    /// Items the sink handled, in order.
    received: Vec<u64>,
    /// The source's window after its last handler call.
    in_flight: u32,
    /// Drop notices the source took, and items it sent again.
    notices: u64,
    resent: u64,
}

thread_local! {
    static STREAM: RefCell<Stream> = RefCell::new(Stream::default());
}

fn stream<T>(f: impl FnOnce(&mut Stream) -> T) -> T {
    STREAM.with(|stream| f(&mut stream.borrow_mut()))
}

fn per_mille(ctx: &mut Ctx<'_>, chance: u64) -> bool {
    ctx.random_u64() % 1000 < chance
}

/// The example's source: sends items through a `CreditSender`, keeps those in flight with
/// their ids, resends dropped ones first, and stops when every item is credited.
struct Source {
    credits: tina::flow::CreditSender,
    sink: Handle,
    count: u64,
    next: u64,
    pause: u64,
    unconfirmed: std::collections::VecDeque<(MessageId, u64)>,
    resend: std::collections::VecDeque<u64>,
}

impl Source {
    fn pump(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        use tina::flow::FlowError;
        for _ in 0..self.credits.window() {
            let (seq, again) = match self.resend.front() {
                Some(&seq) => (seq, true),
                None if self.next < self.count => (self.next, false),
                None => break,
            };
            let item = Item { seq, last: u64::from(seq + 1 == self.count) };
            match self.credits.try_send(ctx, self.sink, &item) {
                Ok(id) => {
                    self.unconfirmed.push_back((id, seq));
                    stream(|s| s.sent += 1);
                    if again {
                        self.resend.pop_front();
                        stream(|s| s.resent += 1);
                    } else {
                        self.next += 1;
                    }
                }
                Err(FlowError::WindowFull) => break,
                Err(FlowError::Send(_)) => return Effect::Yield,
            }
        }
        let finished = self.next == self.count && self.resend.is_empty();
        if finished && self.credits.in_flight() == 0 { Effect::Done } else { Effect::Receive }
    }
}

impl Isolate for Source {
    type Args = SourceArgs;
    fn init(args: SourceArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let window = args.window as u32;
        let mut source = Source {
            credits: tina::flow::CreditSender::new(window),
            sink: args.sink,
            count: args.count,
            next: 0,
            pause: args.pause,
            unconfirmed: std::collections::VecDeque::with_capacity(window as usize),
            resend: std::collections::VecDeque::with_capacity(window as usize),
        };
        let effect = source.pump(ctx);
        stream(|s| s.in_flight = source.credits.in_flight());
        (source, effect)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if self.credits.on_message(message) {
            if let Some(notice) = message.drop_notice() {
                assert_eq!(notice.reason, DropReason::MailboxFull, "only room is short here");
                let at = self.unconfirmed.iter().position(|(id, _)| *id == notice.id);
                let (_, seq) = at.and_then(|at| self.unconfirmed.remove(at)).expect("in flight");
                self.resend.push_back(seq);
                stream(|s| s.notices += 1);
            }
            let in_flight = self.credits.in_flight() as usize;
            while self.unconfirmed.len() > in_flight {
                self.unconfirmed.pop_front();
            }
        }
        let effect = if message.tag() != Tag::RESUME && per_mille(ctx, self.pause) {
            Effect::Yield
        } else {
            self.pump(ctx)
        };
        assert_eq!(self.unconfirmed.len() as u32, self.credits.in_flight());
        stream(|s| s.in_flight = self.credits.in_flight());
        effect
    }
}

/// How often the sink flushes its credits besides the end of the stream (which repairs a
/// credit lost together with its notice), and the clock's step per tick of the world.
const FLUSH_EVERY: core::time::Duration = core::time::Duration::from_millis(3);
const TICK: core::time::Duration = core::time::Duration::from_millis(1);

/// The example's sink, which may also flush on a timer, and now and then stalls (a call to
/// the staller, during which its mailbox fills).
struct StreamSink {
    credits: tina::flow::CreditReceiver,
    staller: Handle,
    missing: u64,
    stall: u64,
}

impl Isolate for StreamSink {
    type Args = SinkArgs;
    fn init(args: SinkArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        if args.flush_timer == 1 {
            ctx.timer_set(FLUSH_EVERY, 0).expect("a timer");
        }
        let credits = tina::flow::CreditReceiver::new(args.batch as u32);
        let sink =
            StreamSink { credits, staller: args.staller, missing: args.count, stall: args.stall };
        (sink, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let mut effect = Effect::Receive;
        if message.timer().is_some() {
            self.credits.flush(ctx);
            ctx.timer_set(FLUSH_EVERY, 0).expect("a timer");
        } else if message.tag() == Tag::RESUME {
            self.credits.flush(ctx);
        } else if !self.credits.on_message(message)
            && let Ok(item) = message.decode::<Item>()
        {
            stream(|s| s.received.push(item.seq));
            self.missing -= 1;
            self.credits.on_item(ctx, message);
            if item.last == 1 || self.missing == 0 {
                self.credits.flush(ctx);
            }
            if per_mille(ctx, self.stall) {
                let hold = Hold { ticks: 1 + ctx.random_u64() % 4 };
                effect = Effect::call(self.staller, &hold, core::time::Duration::from_secs(60));
            }
        }
        if self.credits.owes() && matches!(effect, Effect::Receive) {
            Effect::Yield
        } else {
            effect
        }
    }
}

/// Answers each call after the number of ticks it asks for.
struct Staller {
    token: Option<tina::ReplyToken>,
    left: u64,
}

impl Isolate for Staller {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Staller { token: None, left: 0 }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if let (Some(token), Ok(hold)) = (message.reply_token(), message.decode::<Hold>()) {
            self.token = Some(token);
            self.left = hold.ticks;
            return Effect::Yield;
        }
        if message.tag() == Tag::RESUME
            && let Some(token) = self.token
        {
            self.left -= 1;
            if self.left == 0 {
                self.token = None;
                return Effect::reply(token, &Hold { ticks: 0 });
            }
            return Effect::Yield;
        }
        Effect::Receive
    }
}

/// One stream's sizes.
#[derive(Clone, Copy, Debug)]
struct Shape {
    count: u64,
    window: u32,
    batch: u32,
    sink_mailbox: u32,
    source_mailbox: u32,
    transport: usize,
    pause: u64,
    stall: u64,
    flush_timer: bool,
    seed: u64,
}

/// Runs one stream from a source on shard 0 to a sink on shard 1, one tick of the world
/// (and of the clock) at a time, checking after each tick that the items sent and not yet
/// handled by the sink never exceed the window (nor does the source's own count). Returns
/// what the ends did, and the ticks it took until the source had every item credited.
fn run_stream(shape: Shape) -> (Stream, TestWorld, u64) {
    stream(|s| *s = Stream::default());
    let mut spec = SystemSpec::new(2);
    spec.message_pool_size(4096);
    let config = TypeConfig::new("source").slots(1).mailbox(shape.source_mailbox);
    let source = spec.register::<Source>(config);
    let sink = spec.register::<StreamSink>(TypeConfig::new("sink").mailbox(shape.sink_mailbox));
    let staller = spec.register::<Staller>(TypeConfig::new("staller").slots(1));
    spec.register_payload::<Item>().register_payload::<Hold>();
    spec.register_payload::<tina::flow::Credit>();
    let staller = spec.boot_child(S1, staller, ());
    let sink_args = SinkArgs {
        staller,
        count: shape.count,
        batch: u64::from(shape.batch),
        stall: shape.stall,
        flush_timer: u64::from(shape.flush_timer),
    };
    let sink = spec.boot_child(S1, sink, sink_args);
    let source_args = SourceArgs {
        sink,
        count: shape.count,
        window: u64::from(shape.window),
        pause: shape.pause,
    };
    spec.boot_child(S0, source, source_args);
    let config = TestConfig {
        transport_capacity: shape.transport,
        seed: shape.seed,
        ..TestConfig::default()
    };
    let mut world = TestWorld::boot(&spec, config).expect("a valid spec");
    let ticks_max = 100 * shape.count + 1_000;
    for ticks in 1..=ticks_max {
        world.advance(TICK);
        world.tick();
        let (sent, handled, in_flight) = stream(|s| (s.sent, s.received.len() as u64, s.in_flight));
        let notices = stream(|s| s.notices);
        // Every item sent was handled, dropped (and noticed), or is still on its way.
        let outstanding = sent - handled - notices;
        assert!(
            outstanding <= u64::from(shape.window) && in_flight <= shape.window,
            "{shape:?}: {outstanding} items outstanding ({in_flight} by the window) at tick {ticks}"
        );
        if world.counters(S0).exits_normal == 1 {
            return (stream(|s| s.clone()), world, ticks);
        }
    }
    panic!(
        "{shape:?}: the stream did not finish in {ticks_max} ticks: {:?}",
        stream(|s| s.clone())
    );
}

/// A small deterministic stream of draws for the shapes (SplitMix64).
struct Draws(u64);

impl Draws {
    fn next(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        low + (z ^ (z >> 31)) % (high - low + 1)
    }
}

/// The window holds over many random schedules: whatever the sizes (a window of 1 to 16, a
/// batch up to the window, a sink mailbox at least the window but below the item count,
/// transports of 2 to 32 envelopes, a source mailbox of 1 to 4 that drops credits), the
/// pauses of the source and the stalls of the sink, the items sent and not yet handled
/// never exceed the window at any tick, the sink gets every item exactly once and in
/// order (no item is ever dropped), and the source ends with every item credited.
#[test]
fn a_credit_window_never_exceeds_its_window() {
    let mut draws = Draws(7);
    let (mut credit_drops, mut ring_full) = (0, 0);
    for seed in 0..200 {
        let window = draws.next(1, 16) as u32;
        let count = draws.next(u64::from(window) + 1, 300);
        let shape = Shape {
            count,
            window,
            batch: draws.next(1, u64::from(window)) as u32,
            sink_mailbox: draws.next(u64::from(window), count - 1) as u32,
            source_mailbox: draws.next(1, 4) as u32,
            transport: draws.next(2, 32) as usize,
            pause: draws.next(0, 500),
            stall: draws.next(0, 100),
            flush_timer: true,
            seed,
        };
        let (stream, world, _) = run_stream(shape);
        let expected: Vec<u64> = (0..count).collect();
        assert_eq!(stream.received, expected, "{shape:?}");
        assert_eq!((stream.notices, stream.resent), (0, 0), "{shape:?}: nothing was dropped");
        assert_eq!(world.counters(S1).mailbox_full, 0, "{shape:?}");
        assert_eq!(stream.sent, count, "{shape:?}");
        credit_drops += world.counters(S0).mailbox_full;
        ring_full += world.counters(S0).ring_full + world.counters(S1).ring_full;
    }
    // The schedules did reach the paths that repair credits and retry sends.
    assert!(
        credit_drops > 0 && ring_full > 0,
        "credits dropped {credit_drops}, ring full {ring_full}"
    );
}

/// A window larger than the sink's mailbox: items are dropped for room, each drop is
/// reported to the source (a notice naming the item's id, consumed by the window), the
/// source sends the item again as the example does, and the sink ends with every item
/// exactly once; no notice is lost.
#[test]
fn a_dropped_item_is_reported_and_sent_again() {
    for seed in 0..20 {
        let shape = Shape {
            count: 200,
            window: 16,
            batch: 4,
            sink_mailbox: 5,
            source_mailbox: 64,
            transport: 1024,
            pause: 100,
            stall: 50,
            flush_timer: false,
            seed,
        };
        let (stream, world, _) = run_stream(shape);
        let mut received = stream.received.clone();
        received.sort_unstable();
        assert_eq!(received, (0..200).collect::<Vec<u64>>(), "seed {seed}: each item once");
        let dropped = world.counters(S1).mailbox_full;
        assert!(dropped > 0, "seed {seed}: items were dropped");
        assert_eq!(world.counters(S1).drop_notices, dropped, "seed {seed}: each drop noticed");
        assert_eq!((stream.notices, stream.resent), (dropped, dropped), "seed {seed}");
        assert_eq!(stream.sent, 200 + dropped, "seed {seed}");
        assert_eq!(world.counters(S0).drop_notices_lost + world.counters(S1).drop_notices_lost, 0);
    }
}

/// A credit dropped on its way (the source's mailbox holds one message, so credits arriving
/// together are dropped) is reported to the receiver, which owes the sender its total and
/// sends it again (`owes`, `Effect::Yield`, `flush` on the resume), with no timer: every
/// stream ends with every item credited, in order, and credits were indeed dropped.
#[test]
fn a_lost_credit_is_sent_again() {
    let mut credit_drops = 0;
    for seed in 0..40 {
        let shape = Shape {
            count: 120,
            window: 6,
            batch: 1 + seed as u32 % 3,
            sink_mailbox: 6,
            source_mailbox: 1,
            transport: 1024,
            pause: 300,
            stall: 30,
            flush_timer: false,
            seed,
        };
        let (stream, world, _) = run_stream(shape);
        assert_eq!(stream.received, (0..120).collect::<Vec<u64>>(), "seed {seed}");
        assert_eq!(world.counters(S0).drop_notices_lost + world.counters(S1).drop_notices_lost, 0);
        credit_drops += world.counters(S0).mailbox_full;
    }
    assert!(credit_drops > 0, "no credit was dropped: the test proves nothing");
}
