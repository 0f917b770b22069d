//! What caused each event of a run: for every traced event, the earlier event that led to
//! it, found from the ids and handles the events carry. A delivery's cause is its send (by
//! message id), an enqueue's and a drop's too; an event inside a handler (a send, a timer
//! set, a call, an I/O submission, a crash, a spawn) is caused by the delivery that started
//! the handler; a timer firing by its setting, the timer's delivery by its firing; an I/O
//! completion by its submission and its delivery by the completion; a call's end by the
//! accepted reply (or, for a failure, by the call's start) and a call failure's delivery by
//! that end; a supervisor's restart, escalation and shutdowns by the exit it acted on; an
//! exit the world injected by the world's event; a shard's restart by its crash.
//!
//! `Links<T>` keeps, for each id an event may still be named by, the payload `T` its owner
//! chose for the origin event (an event index for the causal chain, a place in a handler
//! slice for the Chrome trace), and hands back the cause's payload. The sink feeds it the
//! same stamped events the replay log and the observers see; it is a second reader of that
//! stream, never a second source of events.
//!
//! Bounded: an entry lives while its id can still be named (a message until its delivery
//! or drop, a timer until delivered or cancelled, a call until it ends, an isolate's last
//! two incarnations per slot), a node's entries go when it crashes, and no map grows past
//! `LINKS_MAX` (an id past it is simply not linked). Deterministic: ordered maps only, and
//! nothing is iterated but the entries of one node or one owner.
//!
//! What it does not know: which tick an event belongs to. Events of a tick share their
//! stamp's time, so "the current handler" of a shard is the last delivery on that shard at
//! the same instant, forgotten when the time changes or the world crashes, restarts or
//! stalls the shard. With `dispatch_cost=0`, two ticks of a shard can share an instant, and
//! an event at the start of the second (an arrival's drop notice) may be put in the first
//! tick's last handler.

use std::collections::BTreeMap;

use tina::{CallOutcome, Event, ExitKind, Handle, MessageId, ShardId, Tag};
use tina_checkers::{Stamp, WorldEvent};

use crate::trace::TraceEvent;

/// Entries any one map of `Links` holds at most. Ids are removed when they can no longer
/// be named, so a run reaches this only with that many messages (or timers, calls, I/O
/// operations, slots) under way at once; past it, new ids are not linked.
pub const LINKS_MAX: usize = 1 << 20;

/// Incarnations remembered per slot: the live one and the one before (a supervisor's
/// restart names the old incarnation after the new one was spawned).
const INCARNATIONS_KEPT: usize = 2;

/// A slot's last incarnations, newest first, each with its last wake-up's payload.
type Incarnations<T> = [Option<(Handle, T)>; INCARNATIONS_KEPT];

/// What one shard is doing at the instant of its last event.
#[derive(Clone, Copy, Debug)]
struct Track<T> {
    /// The true time of the shard's last event: events of one tick share it.
    tick_ns: u64,
    /// The handler running (its isolate and its delivery's payload), if any.
    handler: Option<(Handle, T)>,
    /// The last exit of this instant a supervisor acts on (not a shutdown it ordered).
    trigger: Option<T>,
    /// The last drop of this instant (the cause of a drop notice or call-failure notice).
    drop: Option<T>,
    /// The shard's or its node's restart at this instant (the cause of its boot spawns).
    recovery: Option<T>,
    /// The shard's last crash (the cause of its `shard-crashed` exits and its restart).
    crash: Option<T>,
    /// The shard's shutdown's beginning (the cause of its notices and of its end).
    shutdown: Option<T>,
}

impl<T> Track<T> {
    fn new(tick_ns: u64) -> Track<T> {
        Track {
            tick_ns,
            handler: None,
            trigger: None,
            drop: None,
            recovery: None,
            crash: None,
            shutdown: None,
        }
    }

    /// Forgets what belonged to the previous instant.
    fn enter(&mut self, time_ns: u64) {
        if self.tick_ns != time_ns {
            self.tick_ns = time_ns;
            self.handler = None;
            self.trigger = None;
            self.drop = None;
            self.recovery = None;
        }
    }

    /// The world acted on the shard between its ticks: what ran before is over.
    fn interrupt(&mut self, time_ns: u64) {
        self.tick_ns = time_ns;
        self.handler = None;
        self.trigger = None;
        self.drop = None;
        self.recovery = None;
    }
}

/// The causes of a run's events, carrying a payload `T` per origin event (see the module
/// documentation).
#[derive(Debug)]
pub struct Links<T> {
    /// Per (node, shard).
    tracks: BTreeMap<(u16, u8), Track<T>>,
    /// Each node's last crash, the cause of its restart.
    node_crashes: BTreeMap<u16, T>,
    /// The world's shutdown, the cause of every shard's shutdown beginning.
    shutdown: Option<T>,
    /// Messages sent and not yet delivered or dropped: (node, id) to the send.
    sends: BTreeMap<(u16, u64), T>,
    /// Timers set and not yet fired or cancelled: (node, owner, timer) to the setting.
    timers: BTreeMap<(u16, u64, u64), T>,
    /// Timers fired and not yet delivered: (node, owner, order of firing) to (timer, the
    /// firing). An owner's timers are delivered in the order they fired.
    fired: BTreeMap<(u16, u64, u64), (u64, T)>,
    /// Counts firings, to order `fired`.
    fired_count: u64,
    /// Calls in progress: (node, caller, correlation) to the call's start.
    calls: BTreeMap<(u16, u64, u32), T>,
    /// Replies accepted and not yet ending their call: (node, caller) to the enqueue.
    replies: BTreeMap<(u16, u64), T>,
    /// Calls that failed and whose failure is not yet delivered: (node, caller) to the end.
    call_failures: BTreeMap<(u16, u64), T>,
    /// I/O operations submitted and not yet completed: (node, isolate, sequence).
    io: BTreeMap<(u16, u64, u32), T>,
    /// I/O completions not yet delivered: (node, isolate) to the completion.
    io_done: BTreeMap<(u16, u64), T>,
    /// Per (node, slot address): the last event that woke or changed each of the slot's
    /// last incarnations (spawned, delivered to, ended, crashed by the world, its call
    /// ended, its timer fired, its I/O completed), newest first.
    actors: BTreeMap<(u16, u64), Incarnations<T>>,
}

impl<T> Default for Links<T> {
    fn default() -> Links<T> {
        Links {
            tracks: BTreeMap::new(),
            node_crashes: BTreeMap::new(),
            shutdown: None,
            sends: BTreeMap::new(),
            timers: BTreeMap::new(),
            fired: BTreeMap::new(),
            fired_count: 0,
            calls: BTreeMap::new(),
            replies: BTreeMap::new(),
            call_failures: BTreeMap::new(),
            io: BTreeMap::new(),
            io_done: BTreeMap::new(),
            actors: BTreeMap::new(),
        }
    }
}

/// Inserts unless the map is full (a key already there is always updated).
fn put<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, value: V) {
    if map.len() < LINKS_MAX || map.contains_key(&key) {
        map.insert(key, value);
    }
}

/// Removes every entry of `node` from a map keyed by node first.
fn forget_node<K: Ord + Copy, V>(map: &mut BTreeMap<K, V>, node: u16, node_of: impl Fn(&K) -> u16) {
    map.retain(|key, _| node_of(key) != node);
}

impl<T: Copy> Links<T> {
    /// Links one event: returns the payload of its cause (`None` for an event nothing
    /// traced caused: a boot, an injected fault, or a cause no longer linked), then records
    /// `this(cause)` as the event's own payload wherever a later event may name it (`None`:
    /// nothing is recorded, and later events it caused find no cause).
    pub fn link(
        &mut self,
        stamp: &Stamp,
        event: &TraceEvent,
        this: impl FnOnce(Option<T>) -> Option<T>,
    ) -> Option<T> {
        match event {
            TraceEvent::Core(event) => {
                self.track(stamp).enter(stamp.time_ns);
                let cause = self.core_cause(stamp, event);
                if let Some(payload) = this(cause) {
                    self.note_core(stamp, event, payload);
                }
                cause
            }
            TraceEvent::World(event) => {
                let cause = self.world_cause(stamp, event);
                let payload = this(cause);
                self.note_world(stamp, event, payload);
                cause
            }
        }
    }

    /// The payload of the handler running on `node`/`shard` at its last event, if any.
    pub fn handler(&self, node: u16, shard: ShardId) -> Option<T> {
        self.tracks.get(&(node, shard.0)).and_then(|track| track.handler).map(|(_, at)| at)
    }

    fn track(&mut self, stamp: &Stamp) -> &mut Track<T> {
        self.tracks.entry((stamp.node, stamp.shard.0)).or_insert_with(|| Track::new(stamp.time_ns))
    }

    /// The last event that woke or changed incarnation `handle` of `node`.
    fn actor(&self, node: u16, handle: Handle) -> Option<T> {
        let kept = self.actors.get(&(node, handle.latest().to_raw()))?;
        kept.iter().flatten().find(|(h, _)| *h == handle).map(|(_, at)| *at)
    }

    /// What `handle` did this with: the handler it runs, else its last wake-up.
    fn acted(&self, stamp: &Stamp, handle: Handle) -> Option<T> {
        match self.tracks.get(&(stamp.node, stamp.shard.0)).and_then(|track| track.handler) {
            Some((running, at)) if running == handle => Some(at),
            _ => self.actor(stamp.node, handle),
        }
    }

    fn set_actor(&mut self, node: u16, handle: Handle, payload: T) {
        if handle.is_none() {
            return;
        }
        let key = (node, handle.latest().to_raw());
        let mut kept = self.actors.get(&key).copied().unwrap_or([None; INCARNATIONS_KEPT]);
        if kept[0].is_some_and(|(h, _)| h == handle) {
            kept[0] = Some((handle, payload));
        } else {
            kept.rotate_right(1);
            kept[0] = Some((handle, payload));
        }
        put(&mut self.actors, key, kept);
    }

    /// The cause of core event `event`; takes the ids it ends out of their maps.
    fn core_cause(&mut self, stamp: &Stamp, event: &Event) -> Option<T> {
        let node = stamp.node;
        let track = self.tracks.get(&(node, stamp.shard.0)).copied();
        let track = track.expect("entered before");
        match *event {
            Event::Spawn { parent, .. } if parent.is_none() => track.trigger.or(track.recovery),
            Event::Spawn { parent, .. } | Event::SpawnFailed { parent, .. } => {
                self.acted(stamp, parent)
            }
            Event::Send { from, .. } if from.is_none() => track.drop,
            Event::Send { from, .. } => self.acted(stamp, from),
            Event::Enqueue { id, .. } => self.sends.get(&(node, id.to_raw())).copied(),
            Event::Deliver { id, tag: Tag::SHUTDOWN, .. } if id == MessageId::NONE => {
                track.shutdown
            }
            Event::Deliver { id, to, tag } => self.delivery_cause(node, id, to, tag),
            Event::Drop { id, .. } => self.sends.remove(&(node, id.to_raw())),
            Event::Exit { kind: ExitKind::ShardCrashed, .. } => track.crash,
            Event::Exit { handle, kind: ExitKind::Shutdown, .. } => {
                track.trigger.or_else(|| self.acted(stamp, handle))
            }
            Event::Exit { handle, .. } => self.acted(stamp, handle),
            Event::Retire { handle } => self.actor(node, handle),
            Event::TimerSet { owner, .. } => self.acted(stamp, owner),
            Event::TimerFire { owner, timer } => {
                self.timers.remove(&(node, owner.to_raw(), timer.to_raw()))
            }
            Event::TimerCancel { owner, timer } => {
                let set = self.timers.remove(&(node, owner.to_raw(), timer.to_raw()));
                set.or_else(|| self.cancel_fired(node, owner, timer.to_raw()))
            }
            Event::CallStart { caller, .. } => self.acted(stamp, caller),
            Event::CallEnd { caller, correlation, outcome } => {
                let start = self.calls.remove(&(node, caller.to_raw(), correlation));
                match outcome {
                    CallOutcome::Replied => self.replies.remove(&(node, caller.to_raw())).or(start),
                    CallOutcome::Failed(_) => start,
                }
            }
            Event::IoSubmit { isolate, .. } => self.acted(stamp, isolate),
            Event::IoComplete { isolate, sequence, .. } | Event::IoStale { isolate, sequence } => {
                self.io.remove(&(node, isolate.to_raw(), sequence))
            }
            Event::IoTimeout { isolate, sequence } => {
                self.io.get(&(node, isolate.to_raw(), sequence)).copied()
            }
            Event::Panic { handle, .. } | Event::Log { handle, .. } => self.acted(stamp, handle),
            Event::Restart { old, .. } => self.actor(node, old),
            Event::Rebuild { .. } | Event::Escalate { .. } | Event::ShardFailed => track.trigger,
            Event::ShutdownBegin { .. } => self.shutdown,
            Event::ShutdownDrained | Event::ShutdownForced { .. } => track.shutdown,
        }
    }

    /// The cause of a delivery: its send, or what the system message it carries stands for
    /// (a fired timer, a failed call, a completed I/O operation, a resume after `Yield`).
    fn delivery_cause(&mut self, node: u16, id: MessageId, to: Handle, tag: Tag) -> Option<T> {
        if id != MessageId::NONE {
            return self.sends.remove(&(node, id.to_raw()));
        }
        match tag {
            Tag::TIMER => {
                let owner = to.to_raw();
                let first = self.fired.range((node, owner, 0)..=(node, owner, u64::MAX)).next();
                let key = *first?.0;
                self.fired.remove(&key).map(|(_, at)| at)
            }
            Tag::CALL_TIMEOUT => self.call_failures.remove(&(node, to.to_raw())),
            Tag::IO => self.io_done.remove(&(node, to.to_raw())),
            _ => self.actor(node, to),
        }
    }

    /// Takes a fired, undelivered timer of `owner` out of `fired`; returns its firing.
    fn cancel_fired(&mut self, node: u16, owner: Handle, timer: u64) -> Option<T> {
        let owner = owner.to_raw();
        // Bounded by the owner's fired timers.
        let key = self
            .fired
            .range((node, owner, 0)..=(node, owner, u64::MAX))
            .find(|(_, (fired, _))| *fired == timer)
            .map(|(key, _)| *key)?;
        self.fired.remove(&key).map(|(_, at)| at)
    }

    /// Records core event `event`'s payload where later events may name it.
    fn note_core(&mut self, stamp: &Stamp, event: &Event, payload: T) {
        let node = stamp.node;
        let track = self.tracks.get_mut(&(node, stamp.shard.0)).expect("entered before");
        match *event {
            Event::Spawn { child, .. } => self.set_actor(node, child, payload),
            Event::Send { id, .. } => put(&mut self.sends, (node, id.to_raw()), payload),
            Event::Enqueue { to, reply: true, .. } => {
                put(&mut self.replies, (node, to.to_raw()), payload)
            }
            Event::Deliver { to, .. } => {
                track.handler = Some((to, payload));
                self.set_actor(node, to, payload);
            }
            Event::Drop { .. } => track.drop = Some(payload),
            Event::Exit { handle, kind, .. } => {
                if kind != ExitKind::Shutdown {
                    track.trigger = Some(payload);
                }
                self.set_actor(node, handle, payload);
                self.forget_isolate(node, handle);
            }
            Event::TimerSet { owner, timer, .. } => {
                put(&mut self.timers, (node, owner.to_raw(), timer.to_raw()), payload)
            }
            Event::TimerFire { owner, timer } => {
                self.fired_count += 1;
                let key = (node, owner.to_raw(), self.fired_count);
                put(&mut self.fired, key, (timer.to_raw(), payload));
                self.set_actor(node, owner, payload);
            }
            Event::CallStart { caller, correlation, .. } => {
                put(&mut self.calls, (node, caller.to_raw(), correlation), payload)
            }
            Event::CallEnd { caller, outcome, .. } => {
                if let CallOutcome::Failed(_) = outcome {
                    put(&mut self.call_failures, (node, caller.to_raw()), payload);
                }
                self.set_actor(node, caller, payload);
            }
            Event::IoSubmit { isolate, sequence, .. } => {
                put(&mut self.io, (node, isolate.to_raw(), sequence), payload)
            }
            Event::IoComplete { isolate, .. } => {
                put(&mut self.io_done, (node, isolate.to_raw()), payload);
                self.set_actor(node, isolate, payload);
            }
            Event::ShardFailed => {
                // The root escalated: the shard crashes next, without a world event.
                track.crash = Some(payload);
            }
            Event::ShutdownBegin { .. } => track.shutdown = Some(payload),
            // The teardowns that follow at the deadline.
            Event::ShutdownForced { .. } => track.trigger = Some(payload),
            Event::Enqueue { .. }
            | Event::SpawnFailed { .. }
            | Event::Retire { .. }
            | Event::TimerCancel { .. }
            | Event::IoStale { .. }
            | Event::IoTimeout { .. }
            | Event::Panic { .. }
            | Event::Restart { .. }
            | Event::Rebuild { .. }
            | Event::Escalate { .. }
            | Event::ShutdownDrained
            | Event::Log { .. } => {}
        }
    }

    /// An incarnation ended: what only it could still be named by goes (its call in
    /// progress, its reply, call failure and completion not yet delivered). Its timers
    /// and I/O end by their own events (cancels, stale completions).
    fn forget_isolate(&mut self, node: u16, handle: Handle) {
        let raw = handle.to_raw();
        self.replies.remove(&(node, raw));
        self.call_failures.remove(&(node, raw));
        self.io_done.remove(&(node, raw));
        // Bounded: an isolate has at most one call in progress.
        let calls: Vec<_> =
            self.calls.range((node, raw, 0)..=(node, raw, u32::MAX)).map(|(key, _)| *key).collect();
        for key in calls {
            self.calls.remove(&key);
        }
    }

    /// The cause of world event `event`.
    fn world_cause(&self, stamp: &Stamp, event: &WorldEvent) -> Option<T> {
        let track = self.tracks.get(&(stamp.node, stamp.shard.0));
        match *event {
            WorldEvent::DelayTail { id, .. } | WorldEvent::DelaySlow { id, .. } => {
                self.sends.get(&(stamp.node, id.to_raw())).copied()
            }
            WorldEvent::ShardRestart | WorldEvent::ShardQuarantine => track?.crash,
            WorldEvent::NodeRestart | WorldEvent::DiskCrash { .. } => {
                self.node_crashes.get(&stamp.node).copied()
            }
            // Inside a handler (a buggify site), or inside the tick of its last handler
            // (a disk fault of the operation it submitted).
            WorldEvent::Buggify { .. }
            | WorldEvent::DiskError
            | WorldEvent::DiskFsyncFailure
            | WorldEvent::DiskCorruption
            | WorldEvent::DiskFull => {
                track.filter(|t| t.tick_ns == stamp.time_ns)?.handler.map(|(_, at)| at)
            }
            WorldEvent::ClockSkew { .. }
            | WorldEvent::ClockJump { .. }
            | WorldEvent::ShardStall { .. }
            | WorldEvent::IsolateCrash { .. }
            | WorldEvent::InitFailure { .. }
            | WorldEvent::ShardCrash
            | WorldEvent::ShardRevive
            | WorldEvent::NodeCrash
            | WorldEvent::BuggifyActive { .. }
            | WorldEvent::Phase { .. }
            | WorldEvent::Shutdown { .. }
            | WorldEvent::NetFault { .. } => None,
        }
    }

    /// Records world event `event`'s payload, and ends the handler of every shard it
    /// interrupts (the world acts between ticks).
    fn note_world(&mut self, stamp: &Stamp, event: &WorldEvent, payload: Option<T>) {
        let node = stamp.node;
        match *event {
            WorldEvent::IsolateCrash { handle } => {
                // Between ticks: the isolate is killed outside any handler.
                self.world_track(stamp);
                if let Some(payload) = payload {
                    self.set_actor(node, handle, payload);
                }
            }
            WorldEvent::InitFailure { handle } => {
                // Inside a boot, a restart or a tick: whatever runs goes on.
                if let Some(payload) = payload {
                    self.set_actor(node, handle, payload);
                }
            }
            WorldEvent::ShardCrash => {
                let track = self.world_track(stamp);
                track.crash = payload;
            }
            WorldEvent::ShardRestart | WorldEvent::ShardRevive => {
                let track = self.world_track(stamp);
                track.recovery = payload;
            }
            WorldEvent::ShardStall { .. } | WorldEvent::ShardQuarantine => {
                self.world_track(stamp);
            }
            WorldEvent::NodeCrash => {
                self.forget_node(node);
                if let Some(payload) = payload {
                    put(&mut self.node_crashes, node, payload);
                }
                self.interrupt_node(node, stamp.time_ns, None);
            }
            WorldEvent::NodeRestart => self.interrupt_node(node, stamp.time_ns, payload),
            WorldEvent::ClockJump { .. } => self.interrupt_node(node, stamp.time_ns, None),
            WorldEvent::Phase { .. } => {
                // The liveness phase restarts and unstalls shards of every node.
                for track in self.tracks.values_mut() {
                    track.interrupt(stamp.time_ns);
                }
            }
            WorldEvent::Shutdown { .. } => {
                // Every shard's shutdown begins next, between its ticks.
                for track in self.tracks.values_mut() {
                    track.interrupt(stamp.time_ns);
                }
                self.shutdown = payload;
            }
            WorldEvent::ClockSkew { .. }
            | WorldEvent::DelayTail { .. }
            | WorldEvent::DelaySlow { .. }
            | WorldEvent::Buggify { .. }
            | WorldEvent::BuggifyActive { .. }
            | WorldEvent::DiskError
            | WorldEvent::DiskFsyncFailure
            | WorldEvent::DiskCorruption
            | WorldEvent::DiskFull
            | WorldEvent::DiskCrash { .. }
            | WorldEvent::NetFault { .. } => {}
        }
    }

    /// The track of a world event about one shard, at a new instant of its own: what the
    /// world does to a shard happens between its ticks.
    fn world_track(&mut self, stamp: &Stamp) -> &mut Track<T> {
        let track = self.track(stamp);
        track.interrupt(stamp.time_ns);
        track
    }

    /// The world acted on every shard of `node` (crash, restart, clock jump): no handler
    /// runs there; a restart's boot spawns are caused by `recovery`.
    fn interrupt_node(&mut self, node: u16, time_ns: u64, recovery: Option<T>) {
        // Bounded by the node's shards.
        for (_, track) in self.tracks.range_mut((node, 0)..=(node, u8::MAX)) {
            track.interrupt(time_ns);
            track.recovery = recovery;
        }
    }

    /// A node crashed: its message ids, timers, calls, I/O and incarnations start again, so
    /// nothing of it may link to what comes after.
    fn forget_node(&mut self, node: u16) {
        forget_node(&mut self.sends, node, |key| key.0);
        forget_node(&mut self.timers, node, |key| key.0);
        forget_node(&mut self.fired, node, |key| key.0);
        forget_node(&mut self.calls, node, |key| key.0);
        forget_node(&mut self.replies, node, |key| key.0);
        forget_node(&mut self.call_failures, node, |key| key.0);
        forget_node(&mut self.io, node, |key| key.0);
        forget_node(&mut self.io_done, node, |key| key.0);
        forget_node(&mut self.actors, node, |key| key.0);
        for (_, track) in self.tracks.range_mut((node, 0)..=(node, u8::MAX)) {
            track.crash = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tina::{CallFailure, Label, TimerId};

    /// Incarnation `generation` of slot `slot` of type 1 on shard 0.
    fn isolate(slot: u64, generation: u64) -> Handle {
        Handle::from_raw((1 << 48) | (slot << 28) | generation)
    }

    fn message(sequence: u64) -> MessageId {
        MessageId::from_raw(sequence)
    }

    /// Links `events` (each at a true time, on node 0, shard 0, or the whole node for a
    /// node-wide world event) and prints `index <- cause` per event, `-` for none.
    fn check(events: &[(u64, TraceEvent)]) -> String {
        let mut links = Links::<u64>::default();
        let mut out = String::new();
        for (index, (time_ns, event)) in events.iter().enumerate() {
            let shard = match event {
                TraceEvent::World(WorldEvent::NodeCrash | WorldEvent::NodeRestart) => {
                    ShardId::EXTERNAL
                }
                _ => ShardId(0),
            };
            let index = index as u64;
            let stamp = Stamp { index, time_ns: *time_ns, local_ns: *time_ns, node: 0, shard };
            let cause = links.link(&stamp, event, |_| Some(index));
            let cause = cause.map_or("-".to_string(), |cause| cause.to_string());
            out.push_str(&format!("{index} <- {cause}\n"));
        }
        out
    }

    /// Each kind of cause the module documents, in one small run: boot spawns and an
    /// init's send and timer, a delivery and what its handler did, a timer's firing and
    /// delivery, a crash in a handler and the supervisor's restart, a call that times out
    /// and the delivery of its failure, an injected crash, a node crash that forgets ids.
    #[test]
    fn links_each_kind_of_cause() {
        use Event::*;
        use TraceEvent::{Core, World};
        let (a, b, b2) = (isolate(0, 1), isolate(1, 1), isolate(1, 2));
        let timer = TimerId::from_raw(7);
        let reason = Label::new("test");
        let events = [
            (0, Core(Spawn { parent: Handle::NONE, child: a })),
            (0, Core(Spawn { parent: Handle::NONE, child: b })),
            (0, Core(Send { id: message(1), from: a, to: b, tag: Tag::from_raw(0x100) })),
            (0, Core(Enqueue { id: message(1), to: b, mailbox_len: 1, reply: false })),
            (0, Core(TimerSet { owner: b, timer, deadline_ns: 20 })),
            (10, Core(Deliver { id: message(1), to: b, tag: Tag::from_raw(0x100) })),
            (10, Core(Send { id: message(2), from: b, to: a, tag: Tag::from_raw(0x100) })),
            (10, Core(Enqueue { id: message(2), to: a, mailbox_len: 1, reply: false })),
            (10, Core(Deliver { id: message(2), to: a, tag: Tag::from_raw(0x100) })),
            (
                10,
                Core(CallStart {
                    caller: a,
                    callee: b,
                    correlation: 1,
                    request: message(3),
                    deadline_ns: 30,
                }),
            ),
            (20, Core(TimerFire { owner: b, timer })),
            (20, Core(Deliver { id: MessageId::NONE, to: b, tag: Tag::TIMER })),
            (20, Core(Exit { handle: b, kind: ExitKind::Crashed, reason })),
            (20, Core(Spawn { parent: Handle::NONE, child: b2 })),
            (20, Core(Restart { group: 0, old: b, new: b2 })),
            (
                30,
                Core(CallEnd {
                    caller: a,
                    correlation: 1,
                    outcome: CallOutcome::Failed(CallFailure::Timeout),
                }),
            ),
            (30, Core(Deliver { id: MessageId::NONE, to: a, tag: Tag::CALL_TIMEOUT })),
            (40, World(WorldEvent::IsolateCrash { handle: b2 })),
            (40, Core(Exit { handle: b2, kind: ExitKind::Crashed, reason })),
            (50, Core(Send { id: message(4), from: a, to: b2, tag: Tag::from_raw(0x100) })),
            (60, World(WorldEvent::NodeCrash)),
            (70, World(WorldEvent::NodeRestart)),
            (70, Core(Spawn { parent: Handle::NONE, child: a })),
            (80, Core(Drop { id: message(4), to: b2, reason: tina::DropReason::ShardDown })),
        ];
        let expected = "\
0 <- -
1 <- -
2 <- 0
3 <- 2
4 <- 1
5 <- 2
6 <- 5
7 <- 6
8 <- 6
9 <- 8
10 <- 4
11 <- 10
12 <- 11
13 <- 12
14 <- 12
15 <- 9
16 <- 15
17 <- -
18 <- 17
19 <- 16
20 <- -
21 <- 20
22 <- 21
23 <- -
";
        assert_eq!(check(&events), expected);
    }
}
