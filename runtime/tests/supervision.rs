//! Supervision, crash containment and dynamic children, through a task dispatcher: the
//! dispatcher hands jobs to workers with calls, a worker crashes on every Nth job, and its
//! group restarts workers by its strategy and their restart types. Each test renders the
//! supervision steps of the trace as text (`steps`) and compares it with what Erlang
//! semantics require.

use core::time::Duration;
use std::fmt::Write as _;

use tina::testing::{TestConfig, TestWorld};
use tina::{
    Ctx, Effect, Event, ExitKind, GroupConfig, Handle, Isolate, Label, Level, Message, Restart,
    ShardId, SpawnError, Strategy, SystemSpec, TypeConfig, TypeIndex,
};

const S0: ShardId = ShardId(0);
const STARTED: Label = Label::new("worker.started");
const JOB_CRASH: Label = Label::new("job crashed the worker");

tina::payload! {
    /// Dispatcher to worker (a call): do job `seq`; `finish` asks the worker to stop normally.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Job { pub seq: u64, pub finish: u64 }
}

tina::payload! {
    /// Worker to dispatcher (a reply).
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct JobDone { pub seq: u64 }
}

tina::payload! {
    /// Worker to dispatcher after every `init`: "worker `index` runs here now".
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct CheckIn { pub index: u64 }
}

tina::payload! {
    /// Test to dispatcher: send job `seq` to worker `worker` (finish = 1 to stop it).
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Command { pub worker: u64, pub seq: u64, pub finish: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct WorkerArgs { pub dispatcher: Handle, pub index: u64, pub crash_every: u64 }
}

/// Does jobs; crashes on every job whose number is a multiple of `crash_every`.
struct Worker {
    crash_every: u64,
}

impl Isolate for Worker {
    type Args = WorkerArgs;

    fn init(args: WorkerArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        ctx.log(Level::Info, STARTED, [args.index]);
        let _ = ctx.send(args.dispatcher, &CheckIn { index: args.index });
        (Worker { crash_every: args.crash_every }, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        let (Ok(job), Some(token)) = (message.decode::<Job>(), message.reply_token()) else {
            return Effect::Receive;
        };
        if job.finish == 1 {
            return Effect::Done;
        }
        if job.seq % self.crash_every == 0 {
            return Effect::Crash(JOB_CRASH);
        }
        Effect::reply(token, &JobDone { seq: job.seq })
    }
}

/// Tracks worker handles by check-in and forwards commands as calls.
struct Dispatcher {
    workers: [Handle; 3],
}

impl Isolate for Dispatcher {
    type Args = ();

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Dispatcher { workers: [Handle::NONE; 3] }, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(check_in) = message.decode::<CheckIn>() {
            self.workers[check_in.index as usize] = message.source();
        } else if let Ok(command) = message.decode::<Command>() {
            let to = self.workers[command.worker as usize];
            let job = Job { seq: command.seq, finish: command.finish };
            return Effect::call(to, &job, Duration::from_millis(100));
        }
        Effect::Receive
    }
}

struct Layout {
    strategy: Strategy,
    restarts: [Restart; 3],
    restart_max: u32,
    window: Duration,
    crash_every: u64,
}

impl Layout {
    fn new(strategy: Strategy, restarts: [Restart; 3]) -> Layout {
        Layout {
            strategy,
            restarts,
            restart_max: 10,
            window: Duration::from_secs(1),
            crash_every: 3,
        }
    }
}

/// A shard whose root (OneForOne, 1 restart per second) holds the dispatcher and group 1,
/// which holds workers 0, 1 and 2.
struct Tree {
    world: TestWorld,
    dispatcher: Handle,
    /// Every worker incarnation seen, with its index.
    index_of: Vec<(Handle, u64)>,
}

impl Tree {
    fn build(layout: &Layout) -> Tree {
        let mut spec = SystemSpec::new(1);
        let dispatcher_type = spec.register::<Dispatcher>(TypeConfig::new("dispatcher").slots(1));
        let worker_type: TypeIndex<Worker> =
            spec.register::<Worker>(TypeConfig::new("worker").slots(3));
        let root = spec.root(S0);
        spec.configure(
            root,
            GroupConfig::new(Strategy::OneForOne).intensity(1, Duration::from_secs(1)),
        );
        let dispatcher = spec.add_child(root, dispatcher_type, (), Restart::Permanent);
        let group = spec.add_group(
            root,
            GroupConfig::new(layout.strategy).intensity(layout.restart_max, layout.window),
        );
        for (index, restart) in layout.restarts.into_iter().enumerate() {
            let args =
                WorkerArgs { dispatcher, index: index as u64, crash_every: layout.crash_every };
            spec.add_child(group, worker_type, args, restart);
        }
        let world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
        let mut tree = Tree { world, dispatcher, index_of: Vec::new() };
        assert_eq!(
            tree.steps(),
            "start w0\nstart w1\nstart w2\n",
            "boot starts the workers in order"
        );
        tree
    }

    /// Sends job `seq` to `worker` and lets the shard settle; time jumps through timeouts.
    fn job(&mut self, worker: u64, seq: u64) -> &mut Tree {
        self.world.inject(self.dispatcher, &Command { worker, seq, finish: 0 });
        self.world.run_with_timers(100);
        self
    }

    /// Asks `worker` to finish normally.
    fn finish(&mut self, worker: u64) -> &mut Tree {
        self.world.inject(self.dispatcher, &Command { worker, seq: 1, finish: 1 });
        self.world.run_with_timers(100);
        self
    }

    fn name(&self, handle: Handle) -> String {
        self.index_of
            .iter()
            .rev()
            .find(|(h, _)| *h == handle)
            .map_or("?".into(), |(_, i)| format!("w{i}"))
    }

    /// The supervision steps since the last call, one per line: worker starts (by index),
    /// exits, panics, escalations, shard failures.
    fn steps(&mut self) -> String {
        let events = self.world.backend(S0).events().to_vec();
        self.world.backend_mut(S0).clear_events();
        let mut out = String::new();
        for event in events {
            let line = match event {
                Event::Log { handle, tag, values, .. } if tag == STARTED => {
                    self.index_of.push((handle, values[0]));
                    format!("start w{}", values[0])
                }
                Event::Exit { handle, kind, .. } if handle.type_index() == 1 => {
                    format!("exit {} {}", self.name(handle), kind.name())
                }
                Event::Exit { kind, .. } => format!("exit dispatcher {}", kind.name()),
                Event::Panic { text, .. } => format!("panic {:?}", text.as_str()),
                Event::Escalate { group, .. } => format!("escalate g{group}"),
                Event::ShardFailed => "shard failed".to_string(),
                _ => continue,
            };
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

/// OneForOne: only the crashed worker restarts; a job that does not crash changes nothing.
#[test]
fn one_for_one_restarts_only_the_crashed_worker() {
    let mut tree = Tree::build(&Layout::new(Strategy::OneForOne, [Restart::Permanent; 3]));
    assert_eq!(tree.job(1, 1).steps(), "");
    assert_eq!(tree.job(1, 3).steps(), "exit w1 crashed\nstart w1\n");
    assert_eq!(tree.world.counters(S0).restarts, 1);
}

/// OneForAll: the others stop (last started first), then all start again in order.
#[test]
fn one_for_all_restarts_every_worker() {
    let mut tree = Tree::build(&Layout::new(Strategy::OneForAll, [Restart::Permanent; 3]));
    assert_eq!(
        tree.job(1, 3).steps(),
        "exit w1 crashed\nexit w2 shutdown\nexit w0 shutdown\nstart w0\nstart w1\nstart w2\n"
    );
}

/// Restarts keep their slot: when OneForAll stops and starts every worker after the middle
/// one crashed, each new incarnation is in its predecessor's slot with the next generation.
/// (The free list alone would hand the crashed worker's slot, freed first, to the last
/// worker started, and swap the others.)
#[test]
fn restarts_keep_their_slot() {
    let mut tree = Tree::build(&Layout::new(Strategy::OneForAll, [Restart::Permanent; 3]));
    tree.job(1, 3);
    let restarts: Vec<(Handle, Handle)> = tree
        .world
        .backend(S0)
        .events()
        .iter()
        .filter_map(|event| match *event {
            Event::Restart { old, new, .. } => Some((old, new)),
            _ => None,
        })
        .collect();
    let slots: Vec<(u32, u32)> =
        restarts.iter().map(|(old, new)| (old.slot(), new.slot())).collect();
    assert_eq!(slots, [(0, 0), (1, 1), (2, 2)], "worker k restarts in slot k, in start order");
    for (old, new) in restarts {
        assert_eq!(new.generation(), old.generation() + 1, "{old} -> {new}");
        assert!(tree.world.scheduler(S0).is_live(new) && !tree.world.scheduler(S0).is_live(old));
    }
}

/// RestForOne: the crashed worker and the ones started after it restart; earlier ones
/// keep running.
#[test]
fn rest_for_one_restarts_the_crashed_and_later_workers() {
    let mut tree = Tree::build(&Layout::new(Strategy::RestForOne, [Restart::Permanent; 3]));
    assert_eq!(tree.job(1, 3).steps(), "exit w1 crashed\nexit w2 shutdown\nstart w1\nstart w2\n");
    assert_eq!(tree.job(2, 6).steps(), "exit w2 crashed\nstart w2\n");
    assert_eq!(
        tree.job(0, 9).steps(),
        "exit w0 crashed\nexit w2 shutdown\nexit w1 shutdown\nstart w0\nstart w1\nstart w2\n"
    );
}

/// Restart types: permanent restarts after `Done` and after a crash; transient only after a
/// crash; temporary never, and is removed from its group.
#[test]
fn restart_types() {
    let layout = Layout::new(
        Strategy::OneForOne,
        [Restart::Permanent, Restart::Transient, Restart::Temporary],
    );
    let mut tree = Tree::build(&layout);
    assert_eq!(tree.finish(0).steps(), "exit w0 normal\nstart w0\n");
    assert_eq!(tree.job(0, 3).steps(), "exit w0 crashed\nstart w0\n");
    assert_eq!(tree.job(1, 3).steps(), "exit w1 crashed\nstart w1\n");
    assert_eq!(tree.finish(1).steps(), "exit w1 normal\n");
    assert_eq!(tree.job(2, 3).steps(), "exit w2 crashed\n");
    assert_eq!(tree.world.scheduler(S0).live_count(1), 1, "only the permanent worker runs");
}

/// A temporary child stopped by a sibling's restart under OneForAll is removed, not
/// restarted, and later restarts of the group no longer include it.
#[test]
fn temporary_child_under_one_for_all() {
    let layout = Layout::new(
        Strategy::OneForAll,
        [Restart::Permanent, Restart::Temporary, Restart::Permanent],
    );
    let mut tree = Tree::build(&layout);
    assert_eq!(
        tree.job(0, 3).steps(),
        "exit w0 crashed\nexit w2 shutdown\nexit w1 shutdown\nstart w0\nstart w2\n"
    );
    assert_eq!(tree.job(2, 6).steps(), "exit w2 crashed\nexit w0 shutdown\nstart w0\nstart w2\n");
    assert_eq!(tree.world.scheduler(S0).live_count(1), 2);
}

/// Intensity: with MaxR = 2 in a 1 s window the 2nd restart is fine and the 3rd within the
/// window escalates: the group stops its workers and the root restarts the group. Restarts
/// spaced wider than the window never escalate.
#[test]
fn escalation_exactly_on_the_restart_that_exceeds_intensity() {
    let layout =
        Layout { restart_max: 2, ..Layout::new(Strategy::OneForOne, [Restart::Permanent; 3]) };
    let mut tree = Tree::build(&layout);
    assert_eq!(tree.job(0, 3).steps(), "exit w0 crashed\nstart w0\n");
    assert_eq!(
        tree.job(1, 3).steps(),
        "exit w1 crashed\nstart w1\n",
        "the MaxR-th restart does not escalate"
    );
    assert_eq!(
        tree.job(2, 3).steps(),
        "exit w2 crashed\nescalate g1\nexit w1 shutdown\nexit w0 shutdown\nstart w0\nstart w1\nstart w2\n",
        "the (MaxR+1)-th restart within the window escalates"
    );
    let counters = *tree.world.counters(S0);
    assert_eq!((counters.escalations, counters.shard_failures), (1, 0));

    // The rebuilt group starts with a fresh history; crashes 600 ms apart never have three
    // inside one second.
    for (step, worker) in [0u64, 1, 2, 0, 1, 2].into_iter().enumerate() {
        tree.world.advance(Duration::from_millis(600));
        tree.job(worker, 3 * (step as u64 + 2));
        assert!(!tree.steps().contains("escalate"), "step {step}");
    }
}

/// An escalation that reaches the root is a shard failure, reported to the backend once.
#[test]
fn root_escalation_is_a_shard_failure() {
    let layout =
        Layout { restart_max: 0, ..Layout::new(Strategy::OneForOne, [Restart::Permanent; 3]) };
    let mut tree = Tree::build(&layout);
    // Group 1 escalates on its first restart; the root restarts it (1 of 1 allowed).
    assert!(tree.job(0, 3).steps().ends_with(
        "escalate g1\nexit w2 shutdown\nexit w1 shutdown\nstart w0\nstart w1\nstart w2\n"
    ));
    // The next escalation exceeds the root's intensity too.
    assert_eq!(
        tree.job(0, 6).steps(),
        "exit w0 crashed\nescalate g1\nexit w2 shutdown\nexit w1 shutdown\nescalate g0\nexit dispatcher shutdown\nshard failed\n"
    );
    let failures = tree.world.backend(S0).failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].shard, S0);
    assert_eq!(tree.world.scheduler(S0).failure(), Some(failures[0]));
    assert_eq!(tree.world.scheduler(S0).live_count(0) + tree.world.scheduler(S0).live_count(1), 0);
}

/// A panic inside `handle` tears down only that isolate, as crashed, with its message in
/// the trace (no file path), and supervision restarts it.
#[test]
fn panic_in_handle_is_contained() {
    struct Panicky;
    impl Isolate for Panicky {
        type Args = ();
        fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            (Panicky, Effect::Receive)
        }
        fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            let job = message.decode::<Job>().expect("a job");
            panic!("job {} is poison", job.seq);
        }
    }
    let mut spec = SystemSpec::new(1);
    let panicky = spec.register::<Panicky>(TypeConfig::new("panicky").slots(1));
    let handle = spec.boot_child(S0, panicky, ());
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.inject(handle, &Job { seq: 7, finish: 0 });
    world.run_until_idle(10);
    let events = world.backend(S0).events();
    let panic = events.iter().find_map(|e| match e {
        Event::Panic { handle: h, text } if *h == handle => Some(text.as_str().to_string()),
        _ => None,
    });
    assert_eq!(panic.as_deref(), Some("job 7 is poison"));
    assert!(events.contains(&Event::Exit {
        handle,
        kind: ExitKind::Crashed,
        reason: tina::crash::PANIC
    }));
    let counters = world.counters(S0);
    assert_eq!((counters.panics, counters.crashes, counters.restarts), (1, 1, 1));
    assert_eq!(world.scheduler(S0).live_count(0), 1, "restarted");
}

thread_local! {
    static INIT_ATTEMPTS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A panic inside a child's `init` is an init failure that reaches the supervisor: it
/// restarts the child, and its second `init` succeeds. The parent that spawned it is
/// untouched.
#[test]
fn panic_in_init_reaches_the_supervisor() {
    struct Flaky;
    impl Isolate for Flaky {
        type Args = ();
        fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            let attempt = INIT_ATTEMPTS.with(|a| {
                a.set(a.get() + 1);
                a.get()
            });
            assert!(attempt > 1, "first init fails");
            (Flaky, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            Effect::Receive
        }
    }
    struct Parent;
    impl Isolate for Parent {
        type Args = ();
        fn init(_args: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
            ctx.spawn_child::<Flaky>((), Restart::Permanent).expect("room in the group");
            (Parent, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            Effect::Receive
        }
    }
    let mut spec = SystemSpec::new(1);
    let parent = spec.register::<Parent>(TypeConfig::new("parent").slots(1));
    spec.register::<Flaky>(TypeConfig::new("flaky").slots(1));
    let root = spec.root(S0);
    spec.configure(root, GroupConfig::new(Strategy::OneForOne).dynamic(1));
    spec.add_child(root, parent, (), Restart::Permanent);
    let world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    let counters = world.counters(S0);
    assert_eq!((counters.init_failures, counters.panics, counters.restarts), (1, 1, 1));
    assert_eq!((world.scheduler(S0).live_count(0), world.scheduler(S0).live_count(1)), (1, 1));
    assert_eq!(INIT_ATTEMPTS.with(|a| a.get()), 2);
}

/// Dynamic children: up to the group's maximum, then `GroupFull`; an unsupervised isolate
/// cannot add children (`NotSupervised`); a dynamic child that crashes is restarted by its
/// restart type like a static one.
#[test]
fn dynamic_children() {
    thread_local! {
        static RESULTS: std::cell::RefCell<Vec<Result<(), SpawnError>>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    struct Spawner;
    impl Isolate for Spawner {
        type Args = ();
        fn init(_args: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
            for _ in 0..3 {
                let result = ctx.spawn_child::<Crasher>((), Restart::Transient).map(|_| ());
                RESULTS.with(|r| r.borrow_mut().push(result));
            }
            let loner = ctx.spawn::<Loner>(()).expect("a loner slot");
            let _ = loner;
            (Spawner, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            Effect::Receive
        }
    }
    struct Crasher;
    impl Isolate for Crasher {
        type Args = ();
        fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            (Crasher, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            Effect::Crash(Label::new("crasher"))
        }
    }
    struct Loner;
    impl Isolate for Loner {
        type Args = ();
        fn init(_args: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
            let result = ctx.spawn_child::<Crasher>((), Restart::Transient).map(|_| ());
            RESULTS.with(|r| r.borrow_mut().push(result));
            (Loner, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            Effect::Receive
        }
    }
    let mut spec = SystemSpec::new(1);
    let spawner = spec.register::<Spawner>(TypeConfig::new("spawner").slots(1));
    spec.register::<Crasher>(TypeConfig::new("crasher").slots(4));
    spec.register::<Loner>(TypeConfig::new("loner").slots(1));
    let root = spec.root(S0);
    spec.configure(root, GroupConfig::new(Strategy::OneForOne).dynamic(2));
    spec.add_child(root, spawner, (), Restart::Permanent);
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    let results = RESULTS.with(|r| r.borrow().clone());
    assert_eq!(
        results,
        [Ok(()), Ok(()), Err(SpawnError::GroupFull), Err(SpawnError::NotSupervised)]
    );
    assert_eq!(world.scheduler(S0).live_count(1), 2);

    let crasher = world
        .backend(S0)
        .events()
        .iter()
        .find_map(|e| match e {
            Event::Spawn { child, .. } if child.type_index() == 1 => Some(*child),
            _ => None,
        })
        .expect("a crasher");
    world.inject(crasher, &Job { seq: 1, finish: 0 });
    world.run_until_idle(10);
    assert_eq!(world.counters(S0).restarts, 1);
    assert_eq!(world.scheduler(S0).live_count(1), 2, "the crasher was restarted in place");
}

/// A panic in the middle of a batch stops only the isolate that raised it: the isolates
/// after it in the same batch still run in the same tick.
#[test]
fn a_panic_does_not_stop_the_rest_of_the_batch() {
    thread_local! {
        static HANDLED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    struct Member {
        index: u64,
    }
    impl Isolate for Member {
        type Args = u64;
        fn init(index: u64, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            (Member { index }, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            assert_ne!(self.index, 1, "member 1 always panics");
            HANDLED.with(|h| h.borrow_mut().push(self.index));
            Effect::Receive
        }
    }
    let mut spec = SystemSpec::new(1);
    let member = spec.register::<Member>(TypeConfig::new("member").slots(3));
    let root = spec.root(S0);
    let handles: Vec<Handle> =
        (0..3).map(|index| spec.add_child(root, member, index, Restart::Temporary)).collect();
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    for &handle in &handles {
        world.inject(handle, &Job { seq: 0, finish: 0 });
    }
    world.tick();
    assert_eq!(HANDLED.with(|h| h.borrow().clone()), [0, 2], "one tick, member 1 skipped");
    let counters = world.counters(S0);
    assert_eq!((counters.dispatched, counters.panics), (3, 1));
}

thread_local! {
    /// What a restarted `Member` returns from `init` in the current case: `Done` or a crash.
    static RESTARTED_INIT: std::cell::Cell<Effect> = const { std::cell::Cell::new(Effect::Done) };
}

const MEMBER_CRASH: Label = Label::new("member crashed");
const RESTARTED_CRASH: Label = Label::new("restarted member crashed in init");

/// A group member of its own type `K` (two types, one slot each): its first incarnation
/// waits and crashes on any message; a restarted one (generation above 1) ends in `init`
/// at once, as `RESTARTED_INIT` says.
struct Member<const K: u8>;

impl<const K: u8> Isolate for Member<K> {
    type Args = ();

    fn init(_args: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
        if ctx.self_handle().generation() > 1 {
            return (Member, RESTARTED_INIT.with(std::cell::Cell::get));
        }
        (Member, Effect::Receive)
    }

    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Crash(MEMBER_CRASH)
    }
}

/// Restarted members whose `init` ends at once (`Done` or a crash, both an init failure),
/// for every strategy and restart type, with either member crashing first. A restart
/// stops siblings whose own `init` is still pending (the group restarted them, then the
/// first restarted member failed before their turn); their pending inits must go with them,
/// or the next restart overflows the queue of pending inits (a core panic, once). Each
/// init failure is a restart decision until the group's intensity (3) is exceeded, which
/// fails the shard: `(restarts, init failures, shutdowns)` counts each step.
#[test]
fn restarted_members_ending_in_init() {
    use Restart::{Permanent, Temporary, Transient};
    use Strategy::{OneForAll, OneForOne, RestForOne};
    // A decision restarts the failed member, or both; the 4th within the window escalates,
    // which stops the member still alive (or reserved). The members' own restart types
    // only matter for Temporary: init failures are not normal exits.
    let both = (6, 3, 4, true);
    let alone = (3, 3, 1, true);
    let never = (0, 0, 0, false);
    let cases = [
        (OneForOne, Permanent, 0, alone),
        (OneForOne, Permanent, 1, alone),
        (OneForOne, Transient, 0, alone),
        (OneForOne, Transient, 1, alone),
        (OneForOne, Temporary, 0, never),
        (OneForOne, Temporary, 1, never),
        (OneForAll, Permanent, 0, both),
        (OneForAll, Permanent, 1, both),
        (OneForAll, Transient, 0, both),
        (OneForAll, Transient, 1, both),
        (OneForAll, Temporary, 0, never),
        (OneForAll, Temporary, 1, never),
        (RestForOne, Permanent, 0, both),
        (RestForOne, Permanent, 1, alone),
        (RestForOne, Transient, 0, both),
        (RestForOne, Transient, 1, alone),
        (RestForOne, Temporary, 0, never),
        (RestForOne, Temporary, 1, never),
    ];
    for (strategy, restart, crashed, expected) in cases {
        for (effect, reason) in [
            (Effect::Done, tina::crash::INIT_DONE),
            (Effect::Crash(RESTARTED_CRASH), RESTARTED_CRASH),
        ] {
            let case = format!("{strategy:?} {restart:?} member {crashed} crashes, then {reason}");
            RESTARTED_INIT.with(|cell| cell.set(effect));
            let mut spec = SystemSpec::new(1);
            let first = spec.register::<Member<0>>(TypeConfig::new("member0").slots(1));
            let second = spec.register::<Member<1>>(TypeConfig::new("member1").slots(1));
            let root = spec.root(S0);
            spec.configure(root, GroupConfig::new(strategy).intensity(3, Duration::from_secs(1)));
            let members = [
                spec.add_child(root, first, (), restart),
                spec.add_child(root, second, (), restart),
            ];
            let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
            world.backend_mut(S0).clear_events();
            assert!(world.inject(members[crashed], &Job { seq: 1, finish: 0 }), "{case}");
            world.run_until_idle(10);

            let (restarts, init_failures, shutdowns, failed) = expected;
            let counters = *world.counters(S0);
            assert_eq!(
                (counters.restarts, counters.init_failures, counters.shutdowns),
                (restarts, init_failures, shutdowns),
                "{case}"
            );
            assert_eq!(counters.crashes, 1, "{case}");
            assert_eq!(world.scheduler(S0).failure().is_some(), failed, "{case}");
            let scheduler = world.scheduler(S0);
            assert!(scheduler.is_idle(), "{case}: no init left pending");
            let live = if failed { 0 } else { 1 };
            assert_eq!(scheduler.live_isolates(), live, "{case}");
            assert_eq!(scheduler.live_count(0) + scheduler.live_count(1), live, "{case}");
            for event in world.backend(S0).events() {
                if let Event::Exit { kind: ExitKind::InitFailed, reason: got, .. } = *event {
                    assert_eq!(got, reason, "{case}");
                }
            }
        }
    }
}
