//! Stable addresses, shard recovery and the simulator's fault hooks, through a small system:
//! a `Target` that logs what it receives (with its own handle) or crashes on request, a
//! `Relay` that forwards to a handle given at boot, and a `Holder` that holds a timer and a
//! buffer and waits for a reply that never comes. Tests assert events and counters: what
//! a latest handle reaches and which handle each event names, what a kill or a shard crash
//! tears down and frees, what a down shard drops, what a restart brings back and where.

use core::time::Duration;

use tina::io::{IoHandle, IoOp, IoResult};
use tina::testing::{TestBackend, TestConfig, TestWorld};
use tina::{
    Backend, Ctx, DropReason, Effect, Event, ExitKind, GroupConfig, Handle, Isolate, Label, Level,
    Message, Recovery, Restart, RestartBudget, Scheduler, ShardId, ShardRecovery, Strategy,
    SystemSpec, Timestamp, TypeConfig, TypeIndex, crash,
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
/// `Note::action`: spawn a temporary `Target` as a dynamic child of the own group.
const SPAWN: u64 = 2;

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
        if note.action == SPAWN {
            ctx.spawn_child::<Target>((), Restart::Temporary).expect("room for a dynamic child");
            return Effect::Receive;
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

/// Two shards. Shard 0's root (OneForOne, 10 restarts a second, room for 2 dynamic
/// children) holds a permanent `Target`
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
    let root_config =
        GroupConfig::new(Strategy::OneForOne).intensity(10, Duration::from_secs(1)).dynamic(2);
    spec.configure(root, root_config);
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

/// Exits among `events` as (handle, kind).
fn exits(events: &[Event]) -> Vec<(Handle, ExitKind)> {
    events
        .iter()
        .filter_map(|event| match *event {
            Event::Exit { handle, kind, .. } => Some((handle, kind)),
            _ => None,
        })
        .collect()
}

/// A shard crash tears every isolate down at once, in (type, slot) order, as
/// `ShardCrashed`, with no supervision decision: the holder's queued notes are dropped as
/// `TargetExited`, its timer is cancelled, its buffer freed, the dynamic child goes too.
/// Afterwards the pool is entirely free, no timer is pending, nothing is live (the slot
/// address reaches nothing) and the shard is down; the other shard runs on.
#[test]
fn a_crash_tears_down_every_isolate_and_frees_every_envelope_and_timer() {
    let System { mut world, target, relays, holder } = system();
    world.inject(target, &Note { value: 0, action: SPAWN });
    world.inject(holder, &note(1));
    world.inject(holder, &note(2));
    world.run_until_idle(10);
    let scheduler = world.scheduler(S0);
    assert_eq!(scheduler.live_isolates(), 4);
    let child = scheduler.nth_live(1).expect("the dynamic child");
    assert!(scheduler.pool_free() < SystemSpec::MESSAGE_POOL_SIZE_DEFAULT, "notes are queued");
    assert!(scheduler.timers_free().0 < scheduler.timers_free().1, "the holder's timer");
    assert!(scheduler.io_buffers_free() < SystemSpec::IO_BUFFER_COUNT_DEFAULT as usize);
    let before = *world.counters(S0);
    take_events(&mut world, S0);

    world.crash_shard(S0);
    let events = take_events(&mut world, S0);
    let crashed = ExitKind::ShardCrashed;
    assert_eq!(
        exits(&events),
        [(target, crashed), (child, crashed), (relays[0], crashed), (holder, crashed)]
    );
    assert_eq!(drops(&events, DropReason::TargetExited), [holder, holder]);
    let cancelled = events
        .iter()
        .filter(|event| matches!(event, Event::TimerCancel { owner, .. } if *owner == holder));
    assert_eq!(cancelled.count(), 1);
    let decided = events.iter().filter(|event| {
        matches!(event, Event::Spawn { .. } | Event::Restart { .. } | Event::Escalate { .. })
    });
    assert_eq!(decided.count(), 0, "no supervision decision");
    let scheduler = world.scheduler(S0);
    assert!(scheduler.is_down());
    assert_eq!(scheduler.pool_free(), SystemSpec::MESSAGE_POOL_SIZE_DEFAULT);
    assert_eq!(
        scheduler.timers_free(),
        (SystemSpec::TIMER_POOL_SIZE_DEFAULT, SystemSpec::TIMER_POOL_SIZE_DEFAULT)
    );
    assert_eq!(scheduler.io_buffers_free(), SystemSpec::IO_BUFFER_COUNT_DEFAULT as usize);
    assert_eq!((scheduler.live_isolates(), scheduler.nth_live(0)), (0, None));
    assert!(!scheduler.is_live(target.latest()) && !scheduler.is_live(holder));
    assert!((0..3).all(|t| scheduler.live_count(t) == 0), "every state dropped");
    assert!(scheduler.failure().is_none() && scheduler.is_idle());
    let counters = *world.counters(S0);
    assert_eq!((counters.shard_crashes, counters.shard_crash_exits), (1, 4));
    assert_eq!(counters.dropped_on_exit - before.dropped_on_exit, 2);
    assert_eq!(counters.timers_cancelled - before.timers_cancelled, 1);
    assert_eq!((counters.crashes, counters.shutdowns), (before.crashes, before.shutdowns));
    assert_eq!((counters.restarts, counters.spawned), (before.restarts, before.spawned));
    assert!(world.scheduler(S1).is_live(relays[1]), "shard 1 is untouched");
}

/// While a shard is down, what arrives for it is dropped as `ShardDown`, counted and
/// traced under the address it was sent to, in arrival order, whether it came from another
/// shard or from outside; nothing is enqueued. The sender sees an ordinary successful send.
/// `discard_inbound` takes nothing when nothing arrived.
#[test]
fn a_down_shard_discards_arrivals_as_shard_down() {
    let System { mut world, target, relays, .. } = system();
    world.crash_shard(S0);
    take_events(&mut world, S0);
    let sent = world.counters(S1).sent;
    let enqueued = world.counters(S0).enqueued;
    world.inject(relays[1], &note(1));
    world.inject(target.latest(), &note(2));
    world.inject(relays[0], &note(3));
    world.run_until_idle(10);
    let events = take_events(&mut world, S0);
    // Notes 2 and 3 were in shard 0's inbound queue first; note 1 came through shard 1.
    let latest = target.latest();
    assert_eq!(drops(&events, DropReason::ShardDown), [latest, relays[0], latest]);
    assert_eq!(events.len(), 3, "nothing but the drops: {events:?}");
    let counters = *world.counters(S0);
    assert_eq!((counters.shard_down, counters.enqueued), (3, enqueued));
    assert_eq!(counters.drops(), counters.shard_down + counters.dropped_on_exit);
    assert_eq!(world.counters(S1).sent, sent + 1, "the relay's send left shard 1");
    assert_eq!(world.counters(S1).drops(), 0);
    assert_eq!(world.tick().inbound, 0);
}

/// A restart boots the static children again as at boot, in the slots they had (slot k
/// for the k-th of a type) with bumped generations; the dynamic child is gone; the handles
/// from before are stale while their slot addresses reach the new incarnations, from both
/// shards; counters say one restart.
#[test]
fn a_restart_boots_the_static_children_into_their_slots() {
    let System { mut world, target, relays, holder } = system();
    world.inject(target, &Note { value: 0, action: SPAWN });
    world.run_until_idle(10);
    assert_eq!(world.scheduler(S0).live_isolates(), 4);
    world.crash_shard(S0);
    take_events(&mut world, S0);

    world.restart_shard(S0);
    let events = take_events(&mut world, S0);
    let spawned: Vec<Handle> = events
        .iter()
        .filter_map(|event| match *event {
            Event::Spawn { parent, child } if parent.is_none() => Some(child),
            _ => None,
        })
        .collect();
    let slots: Vec<(u8, u32, u32)> =
        spawned.iter().map(|h| (h.type_index(), h.slot(), h.generation())).collect();
    assert_eq!(slots, [(0, 0, 2), (1, 0, 2), (2, 0, 2)], "insertion order, same slots");
    let [new_target, new_relay, new_holder] = spawned[..] else { unreachable!() };
    assert_eq!(starts(&events), [new_target], "the target's init ran");
    assert_eq!(exits(&events), [], "every init succeeded");
    let scheduler = world.scheduler(S0);
    assert!(!scheduler.is_down() && scheduler.failure().is_none());
    assert_eq!(scheduler.live_isolates(), 3, "the dynamic child is gone");
    for (old, new) in [(target, new_target), (relays[0], new_relay), (holder, new_holder)] {
        assert!(
            !scheduler.is_live(old) && scheduler.is_live(new) && scheduler.is_live(old.latest())
        );
        assert_eq!(old.latest(), new.latest());
    }
    assert_eq!(world.counters(S0).shard_restarts, 1);

    world.inject(relays[1], &note(1));
    world.inject(new_relay, &note(2));
    world.inject(target, &note(3));
    world.run_until_idle(10);
    let events = take_events(&mut world, S0);
    // Notes 1 and 2 through the relays, and the request of the holder's new call (value
    // 100), which its restarted `init` made to the address.
    assert_eq!(got(&events), [(1, new_target), (2, new_target), (100, new_target)]);
    assert_eq!(drops(&events, DropReason::StaleHandle), [target]);
}

const SYNCED: Label = Label::new("reader.synced");

/// Fsyncs a file at `init` and logs `SYNCED` when the completion arrives.
struct Reader;

impl Isolate for Reader {
    type Args = ();

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Reader, Effect::Io(IoOp::FileFsync { file: IoHandle::from_raw(3) }))
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.io().is_some() {
            ctx.log(Level::Info, SYNCED, []);
        }
        Effect::Receive
    }
}

/// I/O across crashes: a submission still queued in the shard when it crashes (right after
/// boot, before any tick) never reaches the backend and is discarded as stale; an operation
/// the backend holds when the shard crashes completes after the restart as stale, its
/// entry freed, while the new incarnation's operation completes normally.
#[test]
fn io_across_a_crash_completes_as_stale() {
    let mut spec = SystemSpec::new(1);
    let reader_type = spec.register::<Reader>(TypeConfig::new("reader").slots(1));
    let first = spec.boot_child(S0, reader_type, ());
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.crash_shard(S0);
    let events = take_events(&mut world, S0);
    assert!(events.contains(&Event::IoStale { isolate: first, sequence: 1 }), "{events:?}");
    assert_eq!(exits(&events), [(first, ExitKind::ShardCrashed)]);
    assert!(world.backend(S0).io_submissions().is_empty(), "never handed to the backend");

    world.restart_shard(S0);
    world.tick();
    let second = world.scheduler(S0).nth_live(0).expect("the reader again");
    world.crash_shard(S0);
    world.restart_shard(S0);
    world.tick();
    let third = world.scheduler(S0).nth_live(0).expect("the reader once more");
    assert_eq!((second.generation(), third.generation()), (2, 3));
    let submitted: Vec<Handle> =
        world.backend(S0).io_submissions().iter().map(|s| s.token.isolate()).collect();
    assert_eq!(submitted, [second, third]);
    take_events(&mut world, S0);

    world.backend_mut(S0).script_io(IoResult::Done, b"");
    world.backend_mut(S0).script_io(IoResult::Done, b"");
    world.run_until_idle(10);
    let events = take_events(&mut world, S0);
    // A slot's I/O sequence keeps counting across incarnations.
    assert!(events.contains(&Event::IoStale { isolate: second, sequence: 2 }), "{events:?}");
    let synced = events.iter().filter(|event| matches!(event, Event::Log { handle, tag, .. } if *handle == third && *tag == SYNCED));
    assert_eq!(synced.count(), 1);
    let counters = *world.counters(S0);
    assert_eq!((counters.io_submitted, counters.io_completed, counters.io_stale), (3, 1, 2));
    assert_eq!(world.tick().io_in_flight, 0, "every entry is free again");
}

/// A shard whose root escalated comes back by a crash and a restart: the restart clears
/// the failure, and a later escalation is reported to the backend again.
#[test]
fn a_restart_clears_the_shard_failure() {
    let mut spec = SystemSpec::new(1);
    let target_type = spec.register::<Target>(TypeConfig::new("target").slots(1));
    spec.register_payload::<Note>();
    let root = spec.root(S0);
    spec.configure(
        root,
        GroupConfig::new(Strategy::OneForOne).intensity(0, Duration::from_secs(1)),
    );
    let target = spec.add_child(root, target_type, (), Restart::Permanent);
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    for round in 1..=2 {
        world.inject(target.latest(), &Note { value: 0, action: CRASH });
        world.run_until_idle(10);
        assert!(world.scheduler(S0).failure().is_some(), "round {round}");
        assert_eq!(world.backend(S0).failures().len(), round, "reported once per failure");
        world.crash_shard(S0);
        world.restart_shard(S0);
        assert!(world.scheduler(S0).failure().is_none());
        assert!(world.scheduler(S0).is_live(target.latest()));
    }
    let counters = *world.counters(S0);
    assert_eq!(
        (counters.shard_failures, counters.shard_crashes, counters.shard_restarts),
        (2, 2, 2)
    );
    assert_eq!(counters.shard_crash_exits, 0, "the escalation had stopped everything");
}

/// Misuse is a crash of the driver, not a silent no-op: a down shard must not tick.
#[test]
#[should_panic(expected = "a down shard does not tick")]
fn a_down_shard_does_not_tick() {
    let mut backend = TestBackend::new(S0, &TestConfig::default());
    let mut spec = SystemSpec::new(1);
    spec.register::<Target>(TypeConfig::new("target").slots(1));
    let mut scheduler = Scheduler::boot(&spec, S0, &mut backend).expect("valid spec");
    scheduler.crash(&mut backend);
    assert!(scheduler.is_down());
    scheduler.tick(&mut backend);
}

/// A restart checks that it is given the spec the shard booted from.
#[test]
#[should_panic(expected = "restart from the spec the shard booted")]
fn a_restart_from_another_spec_panics() {
    let mut backend = TestBackend::new(S0, &TestConfig::default());
    let mut spec = SystemSpec::new(1);
    spec.register::<Target>(TypeConfig::new("target").slots(1));
    let mut scheduler = Scheduler::boot(&spec, S0, &mut backend).expect("valid spec");
    scheduler.crash(&mut backend);
    spec.register::<Relay>(TypeConfig::new("relay").slots(1));
    scheduler.restart(&spec, &mut backend);
}

/// `ShardRecovery` restarts within its budget and quarantines past it: with 2 restarts per
/// second, two failures within a second restart, the third quarantines, and a quarantined
/// shard stays so whatever the time. `revive` leaves quarantine with a fresh history; then
/// failures that left the window stop counting one by one. `restart_max = 0` quarantines
/// on the first failure.
#[test]
fn shard_recovery_restarts_within_budget_and_quarantines_past_it() {
    let at = |ms: u64| Timestamp::from_nanos(ms * 1_000_000);
    let budget = RestartBudget { restart_max: 2, window: Duration::from_secs(1) };
    let mut recovery = ShardRecovery::new(budget);
    assert_eq!(recovery.budget(), budget);
    assert_eq!(recovery.on_failure(at(0)), Recovery::Restart);
    assert_eq!(recovery.on_failure(at(400)), Recovery::Restart);
    assert!(!recovery.is_quarantined());
    assert_eq!(recovery.on_failure(at(999)), Recovery::Quarantine, "the third within 1 s");
    assert!(recovery.is_quarantined());
    assert_eq!(recovery.on_failure(at(60_000)), Recovery::Quarantine, "quarantine stays");

    recovery.revive();
    assert!(!recovery.is_quarantined());
    assert_eq!(recovery.on_failure(at(60_000)), Recovery::Restart, "a fresh history");
    assert_eq!(recovery.on_failure(at(60_500)), Recovery::Restart);
    assert_eq!(recovery.on_failure(at(61_000)), Recovery::Restart, "60 000 left the window");
    assert_eq!(recovery.on_failure(at(61_100)), Recovery::Quarantine, "60 500 had not");

    let mut strict = ShardRecovery::new(RestartBudget { restart_max: 0, window: budget.window });
    assert_eq!(strict.on_failure(at(0)), Recovery::Quarantine);
}

/// The policy driving the mechanism, as a driver does: each crash of shard 0 asks
/// `ShardRecovery`; within budget the shard restarts and serves again, past it the shard
/// stays down and its arrivals are discarded; `revive` and a restart bring it back.
#[test]
fn a_quarantined_shard_stays_down_until_revived() {
    let System { mut world, target, .. } = system();
    let mut recovery =
        ShardRecovery::new(RestartBudget { restart_max: 1, window: Duration::from_secs(10) });
    let mut decisions = Vec::new();
    for _ in 0..2 {
        world.advance(Duration::from_secs(1));
        world.crash_shard(S0);
        let now = world.backend(S0).now();
        let decision = recovery.on_failure(now);
        if decision == Recovery::Restart {
            world.restart_shard(S0);
        }
        decisions.push(decision);
    }
    assert_eq!(decisions, [Recovery::Restart, Recovery::Quarantine]);
    assert!(world.scheduler(S0).is_down());
    world.inject(target.latest(), &note(1));
    world.run_until_idle(10);
    assert_eq!(world.counters(S0).shard_down, 1);

    take_events(&mut world, S0);
    recovery.revive();
    world.restart_shard(S0);
    world.inject(target.latest(), &note(2));
    world.run_until_idle(10);
    let events = take_events(&mut world, S0);
    let revived = world.scheduler(S0).nth_live(0).expect("the target");
    assert_eq!(revived.generation(), 3, "booted, restarted, revived");
    // Note 2, and the request the holder's `init` sent to the address.
    assert_eq!(got(&events), [(2, revived), (100, revived)]);
    let counters = *world.counters(S0);
    assert_eq!((counters.shard_crashes, counters.shard_restarts), (2, 2));
}
