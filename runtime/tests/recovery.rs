//! Stable addresses, shard recovery and the simulator's fault hooks, through a small system:
//! a `Target` that logs what it receives (with its own handle) or crashes on request, and a
//! `Relay` that forwards to a handle given at boot. Tests assert events and counters: what
//! a latest handle reaches and which handle each event names, what a shard crash tears
//! down and frees, what a down shard drops, what a restart brings back and where.

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
/// (mailbox of 2) and a `Relay` toward the target's slot address; shard 1 holds another
/// such relay, so the address is used from the same shard and from another one.
struct Addressed {
    world: TestWorld,
    target: Handle,
    relays: [Handle; 2],
}

fn addressed() -> Addressed {
    let mut spec = SystemSpec::new(2);
    let target_type: TypeIndex<Target> =
        spec.register::<Target>(TypeConfig::new("target").slots(2).mailbox(2));
    let relay_type = spec.register::<Relay>(TypeConfig::new("relay").slots(1));
    spec.register_payload::<Note>();
    let root = spec.root(S0);
    spec.configure(
        root,
        GroupConfig::new(Strategy::OneForOne).intensity(10, core::time::Duration::from_secs(1)),
    );
    let target = spec.add_child(root, target_type, (), Restart::Permanent);
    let relay_args = RelayArgs { target: target.latest() };
    let relays = [
        spec.add_child(root, relay_type, relay_args, Restart::Permanent),
        spec.boot_child(S1, relay_type, relay_args),
    ];
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.run_until_idle(10);
    Addressed { world, target, relays }
}

/// A latest handle reaches the incarnation in its slot before and after a supervised
/// restart, from the same shard, from another shard and from outside; the old concrete
/// handle is stale after the restart. Every event about the receiver names the concrete
/// incarnation (only `Send.to` keeps the address the sender wrote), the handler sees its
/// concrete handle as its own, and a drop at the live slot (mailbox full) names it too.
#[test]
fn latest_handles_reach_a_restarted_child_and_trace_concrete_handles() {
    let Addressed { mut world, target, relays } = addressed();
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

    // Over the whole run, the address appears on shard 0 only as `Send.to` of the relay
    // there (notes 1 and 3); every other handle is concrete. Shard 1 only sends.
    let sends = all.iter().filter(|event| matches!(event, Event::Send { to, .. } if *to == latest));
    assert_eq!(sends.count(), 2);
    for event in &all {
        for (field, handle) in handles_of(event) {
            assert!(field == "Send.to" || !handle.is_latest(), "{field} of {event:?}");
        }
    }
    let enqueued =
        all.iter().filter(|event| matches!(event, Event::Enqueue { to, .. } if *to == restarted));
    assert_eq!(enqueued.count(), 5, "notes 3, 4, 5, 7 and 8");
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
    let Addressed { mut world, target, .. } = addressed();
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
