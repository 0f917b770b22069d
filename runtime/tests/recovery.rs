//! Stable addresses, shard recovery and the simulator's fault hooks, through a small system:
//! a `Target` that logs what it receives (with its own handle) or crashes on request, a
//! `Relay` that forwards to a handle given at boot, and a `Holder` that holds a timer and a
//! buffer and waits for a reply that never comes. Tests assert events and counters: what
//! a latest handle reaches and which handle each event names, what a kill or a shard crash
//! tears down and frees, what a down shard drops, what a restart brings back and where.

use core::time::Duration;

use tina::testing::{TestConfig, TestWorld};
use tina::{
    Ctx, DropReason, Effect, Event, ExitKind, GroupConfig, Handle, Isolate, Label, Level, Message,
    Restart, ShardId, Strategy, SystemSpec, TypeConfig, TypeIndex, crash,
};

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);
const STARTED: Label = Label::new("target.started");
const GOT: Label = Label::new("target.got");
const ASKED_TO_CRASH: Label = Label::new("asked to crash");
const HOLDING: Label = Label::new("holder.started");
const KILLED: Label = Label::new("killed by the test");
/// Far enough that no timer or call of the holder comes due in a test.
const FOREVER: Duration = Duration::from_secs(3600);

/// `Note::action`: log the value.
const LOG: u64 = 0;
/// `Note::action`: crash.
const CRASH: u64 = 1;

tina::payload! {
    /// What targets receive and relays forward.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Note { pub value: u64, pub action: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct RelayArgs { pub target: Handle }
}

/// Logs `STARTED` at `init` and `GOT [value, own handle]` for each note; crashes on request.
/// Requests (calls) are received like notes and never answered.
struct Target;

impl Isolate for Target {
    type Args = ();

    fn init(_args: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let me = ctx.self_handle();
        ctx.log(Level::Info, STARTED, [me.to_raw()]);
        (Target, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Ok(note) = message.decode::<Note>() else { return Effect::Receive };
        if note.action == CRASH {
            return Effect::Crash(ASKED_TO_CRASH);
        }
        let me = ctx.self_handle();
        ctx.log(Level::Info, GOT, [note.value, me.to_raw()]);
        Effect::Receive
    }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct HolderArgs { pub peer: Handle }
}

/// At `init`: sets a timer, takes a buffer, logs `HOLDING`, and calls its peer, which
/// never answers (a note with action `LOG`). Notes sent to it meanwhile queue.
struct Holder;

impl Isolate for Holder {
    type Args = HolderArgs;

    fn init(args: HolderArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        ctx.timer_set(FOREVER, 7).expect("a timer is free");
        ctx.buffer_alloc().expect("a buffer is free");
        let me = ctx.self_handle();
        ctx.log(Level::Info, HOLDING, [me.to_raw()]);
        (Holder, Effect::call(args.peer, &note(100), FOREVER))
    }

    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

/// Forwards every note to the handle it was booted with.
struct Relay {
    target: Handle,
}

impl Isolate for Relay {
    type Args = RelayArgs;

    fn init(args: RelayArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Relay { target: args.target }, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(note) = message.decode::<Note>() {
            // A full mailbox or a stale target is counted and traced by the core.
            let _ = ctx.send(self.target, &note);
        }
        Effect::Receive
    }
}

fn note(value: u64) -> Note {
    Note { value, action: LOG }
}

/// Takes the events `shard` recorded since the last call.
fn take_events(world: &mut TestWorld, shard: ShardId) -> Vec<Event> {
    let events = world.backend(shard).events().to_vec();
    world.backend_mut(shard).clear_events();
    events
}

/// `GOT` records among `events` as (value, the handle the target saw as its own), sorted.
fn got(events: &[Event]) -> Vec<(u64, Handle)> {
    let mut got: Vec<(u64, Handle)> = events
        .iter()
        .filter_map(|event| match *event {
            Event::Log { tag, values, .. } if tag == GOT => {
                Some((values[0], Handle::from_raw(values[1])))
            }
            _ => None,
        })
        .collect();
    got.sort();
    got
}

/// The destinations of drops for `reason` among `events`.
fn drops(events: &[Event], reason: DropReason) -> Vec<Handle> {
    events
        .iter()
        .filter_map(|event| match *event {
            Event::Drop { to, reason: r, .. } if r == reason => Some(to),
            _ => None,
        })
        .collect()
}

/// Every handle an event carries, with the field's name.
fn handles_of(event: &Event) -> Vec<(&'static str, Handle)> {
    match *event {
        Event::Spawn { parent, child } => vec![("Spawn.parent", parent), ("Spawn.child", child)],
        Event::Send { from, to, .. } => vec![("Send.from", from), ("Send.to", to)],
        Event::Enqueue { to, .. } => vec![("Enqueue.to", to)],
        Event::Deliver { to, .. } => vec![("Deliver.to", to)],
        Event::Drop { to, .. } => vec![("Drop.to", to)],
        Event::Exit { handle, .. } => vec![("Exit.handle", handle)],
        Event::Restart { old, new, .. } => vec![("Restart.old", old), ("Restart.new", new)],
        Event::Log { handle, .. } => vec![("Log.handle", handle)],
        Event::TimerSet { owner, .. } | Event::TimerCancel { owner, .. } => {
            vec![("Timer.owner", owner)]
        }
        Event::CallStart { caller, callee, .. } => {
            vec![("CallStart.caller", caller), ("CallStart.callee", callee)]
        }
        Event::CallEnd { caller, .. } => vec![("CallEnd.caller", caller)],
        _ => Vec::new(),
    }
}

/// Two shards. Shard 0's root (OneForOne, 10 restarts a second) holds a permanent `Target`
/// (mailbox of 2), a `Relay` toward the target's slot address and a `Holder` whose call
/// goes to that address too; shard 1 holds another relay toward it, so the address is used
/// from the same shard and from another one.
struct System {
    world: TestWorld,
    target: Handle,
    relays: [Handle; 2],
    holder: Handle,
}

fn system() -> System {
    let mut spec = SystemSpec::new(2);
    let target_type: TypeIndex<Target> =
        spec.register::<Target>(TypeConfig::new("target").slots(2).mailbox(2));
    let relay_type = spec.register::<Relay>(TypeConfig::new("relay").slots(1));
    let holder_type = spec.register::<Holder>(TypeConfig::new("holder").slots(2));
    spec.register_payload::<Note>();
    let root = spec.root(S0);
    spec.configure(
        root,
        GroupConfig::new(Strategy::OneForOne).intensity(10, Duration::from_secs(1)),
    );
    let target = spec.add_child(root, target_type, (), Restart::Permanent);
    let relay_args = RelayArgs { target: target.latest() };
    let relays = [
        spec.add_child(root, relay_type, relay_args, Restart::Permanent),
        spec.boot_child(S1, relay_type, relay_args),
    ];
    let holder_args = HolderArgs { peer: target.latest() };
    let holder = spec.add_child(root, holder_type, holder_args, Restart::Permanent);
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.run_until_idle(10);
    System { world, target, relays, holder }
}

/// A latest handle reaches the incarnation in its slot before and after a supervised
/// restart, from the same shard, from another shard and from outside; the old concrete
/// handle is stale after the restart. Every event about the receiver names the concrete
/// incarnation (only `Send.to` keeps the address the sender wrote), the handler sees its
/// concrete handle as its own, and a drop at the live slot (mailbox full) names it too.
#[test]
fn latest_handles_reach_a_restarted_child_and_trace_concrete_handles() {
    let System { mut world, target, relays, .. } = system();
    let latest = target.latest();
    let mut all = take_events(&mut world, S0);
    world.inject(relays[0], &note(1));
    world.inject(relays[1], &note(2));
    world.run_until_idle(10);
    let events = take_events(&mut world, S0);
    assert_eq!(got(&events), [(1, target), (2, target)], "the first incarnation");
    all.extend(events);

    world.inject(target, &Note { value: 0, action: CRASH });
    world.run_until_idle(10);
    let events = take_events(&mut world, S0);
    let restarts: Vec<(Handle, Handle)> = events
        .iter()
        .filter_map(|event| match *event {
            Event::Restart { old, new, .. } => Some((old, new)),
            _ => None,
        })
        .collect();
    let [(old, restarted)] = restarts[..] else { panic!("one restart: {restarts:?}") };
    assert_eq!(old, target);
    assert_eq!((restarted.slot(), restarted.generation()), (target.slot(), 2), "same slot");
    assert!(world.scheduler(S0).is_live(latest) && world.scheduler(S0).is_live(restarted));
    assert!(!world.scheduler(S0).is_live(target));
    all.extend(events);

    world.inject(relays[0], &note(3));
    world.inject(relays[1], &note(4));
    world.inject(latest, &note(5));
    world.inject(target, &note(6));
    world.run_until_idle(10);
    let events = take_events(&mut world, S0);
    assert_eq!(got(&events), [(3, restarted), (4, restarted), (5, restarted)]);
    assert_eq!(drops(&events, DropReason::StaleHandle), [target], "the old handle is stale");
    assert_eq!(world.counters(S0).stale_handle, 1);
    all.extend(events);

    // Three notes in one tick toward a mailbox of two: the third is dropped at the live
    // slot, under the incarnation's name.
    for value in 7..10 {
        world.inject(latest, &note(value));
    }
    world.run_until_idle(10);
    let events = take_events(&mut world, S0);
    assert_eq!(got(&events), [(7, restarted), (8, restarted)]);
    assert_eq!(drops(&events, DropReason::MailboxFull), [restarted]);
    assert_eq!(world.counters(S0).mailbox_full, 1);
    all.extend(events);

    // Over the whole run, the address appears on shard 0 only where a sender wrote it: as
    // `Send.to` of the relay there (notes 1 and 3) and of the holder's call at boot, whose
    // `CallStart.callee` it is too. Every other handle is concrete. Shard 1 only sends.
    let sends = all.iter().filter(|event| matches!(event, Event::Send { to, .. } if *to == latest));
    assert_eq!(sends.count(), 3);
    for event in &all {
        for (field, handle) in handles_of(event) {
            let written = field == "Send.to" || field == "CallStart.callee";
            assert!(written || !handle.is_latest(), "{field} of {event:?}");
        }
    }
    let enqueued =
        all.iter().filter(|event| matches!(event, Event::Enqueue { to, .. } if *to == restarted));
    assert_eq!(enqueued.count(), 5, "notes 3, 4, 5, 7 and 8");
    let to_first =
        all.iter().filter(|event| matches!(event, Event::Enqueue { to, .. } if *to == target));
    assert_eq!(to_first.count(), 4, "the holder's request at boot, notes 1 and 2, the crash note");
}

/// The handles of the `STARTED` records among `events`: the targets whose `init` ran.
fn starts(events: &[Event]) -> Vec<Handle> {
    events
        .iter()
        .filter_map(|event| match *event {
            Event::Log { handle, tag, .. } if tag == STARTED => Some(handle),
            _ => None,
        })
        .collect()
}

/// `Backend::fail_init` stops an isolate before its `init` runs: an `Exit` as `InitFailed`
/// with the injected-failure reason, counted as an init failure (not a panic), and its
/// supervisor decides as for any failed init: here it restarts the target again, whose
/// next `init` runs.
#[test]
fn fail_init_stops_an_isolate_with_init_failed_and_the_reason() {
    let System { mut world, target, .. } = system();
    take_events(&mut world, S0);
    world.backend_mut(S0).fail_next_init(target);
    world.inject(target, &Note { value: 0, action: CRASH });
    world.run_until_idle(10);
    let events = take_events(&mut world, S0);
    let exits: Vec<(Handle, ExitKind, Label)> = events
        .iter()
        .filter_map(|event| match *event {
            Event::Exit { handle, kind, reason } => Some((handle, kind, reason)),
            _ => None,
        })
        .collect();
    let second = target.latest();
    assert_eq!(exits.len(), 2, "{exits:?}");
    assert_eq!((exits[0].0, exits[0].1, exits[0].2), (target, ExitKind::Crashed, ASKED_TO_CRASH));
    let (failed, kind, reason) = exits[1];
    assert_eq!((failed.slot(), failed.generation()), (second.slot(), 2));
    assert_eq!((kind, reason), (ExitKind::InitFailed, crash::INJECTED_INIT_FAILURE));
    let started = starts(&events);
    assert_eq!(started.len(), 1, "the failed init never ran; the next one did");
    assert_eq!((started[0].slot(), started[0].generation()), (target.slot(), 3));
    let counters = world.counters(S0);
    assert_eq!((counters.init_failures, counters.crashes, counters.panics), (1, 1, 0));
    assert_eq!(counters.restarts, 2);
    assert!(world.scheduler(S0).is_live(started[0]));
}

/// `kill` crashes an isolate from outside any dispatch: a holder waiting for a reply, with
/// two notes queued behind the call, a timer and a buffer, exits as `Crashed` with the
/// given reason; its notes are dropped as `TargetExited`, its timer is cancelled, its
/// buffer freed; its supervisor restarts it at once into the same slot, where the new
/// `init` runs. A stale handle kills nothing; the slot address kills the new incarnation.
/// `live_isolates` and `nth_live` walk the live slots in (type, slot) order throughout.
#[test]
fn kill_crashes_a_waiting_isolate_and_its_supervisor_restarts_it_in_place() {
    let System { mut world, target, relays, holder } = system();
    let scheduler = world.scheduler(S0);
    assert_eq!(scheduler.live_isolates(), 3);
    let walk: Vec<Option<Handle>> = (0..4).map(|n| scheduler.nth_live(n)).collect();
    assert_eq!(walk, [Some(target), Some(relays[0]), Some(holder), None]);
    world.inject(holder, &note(1));
    world.inject(holder, &note(2));
    world.run_until_idle(10);
    let enqueued = world.counters(S0).enqueued;
    take_events(&mut world, S0);
    let buffers_free = world.scheduler(S0).io_buffers_free();
    let timers_free = world.scheduler(S0).timers_free();

    assert!(world.kill(holder, KILLED));
    let events = take_events(&mut world, S0);
    assert_eq!(events[0], Event::Exit { handle: holder, kind: ExitKind::Crashed, reason: KILLED });
    assert_eq!(drops(&events, DropReason::TargetExited), [holder, holder]);
    let cancelled = events
        .iter()
        .filter(|event| matches!(event, Event::TimerCancel { owner, .. } if *owner == holder));
    assert_eq!(cancelled.count(), 1);
    let restarted = events
        .iter()
        .find_map(|event| match *event {
            Event::Restart { old, new, .. } if old == holder => Some(new),
            _ => None,
        })
        .expect("the supervisor restarted the holder");
    assert_eq!((restarted.slot(), restarted.generation()), (holder.slot(), 2));
    let holding: Vec<Handle> = events
        .iter()
        .filter_map(|event| match *event {
            Event::Log { handle, tag, .. } if tag == HOLDING => Some(handle),
            _ => None,
        })
        .collect();
    assert_eq!(holding, [restarted], "the new incarnation's init ran");
    let counters = *world.counters(S0);
    assert_eq!((counters.crashes, counters.dropped_on_exit), (1, 2));
    assert_eq!((counters.timers_cancelled, counters.restarts), (1, 1));
    // The new incarnation holds a timer and a buffer again: the old ones were freed.
    assert_eq!(world.scheduler(S0).io_buffers_free(), buffers_free);
    assert_eq!(world.scheduler(S0).timers_free(), timers_free);
    assert_eq!(world.counters(S0).enqueued, enqueued + 1, "the new call's request");
    assert_eq!(world.scheduler(S0).nth_live(2), Some(restarted));

    assert!(!world.kill(holder, KILLED), "the old handle is stale");
    assert!(!world.kill(Handle::NONE, KILLED));
    assert_eq!(world.counters(S0).crashes, 1);
    assert!(world.kill(holder.latest(), KILLED), "the address names the new incarnation");
    let events = take_events(&mut world, S0);
    assert_eq!(
        events[0],
        Event::Exit { handle: restarted, kind: ExitKind::Crashed, reason: KILLED }
    );
    assert_eq!(world.counters(S0).restarts, 2);
    assert_eq!(world.scheduler(S0).live_isolates(), 3);
}
