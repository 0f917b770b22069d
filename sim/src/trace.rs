//! The run's trace: canonical encoding of events, the trace hash, replay-log lines, and the
//! sink every shard's backend feeds.
//!
//! # Canonical encoding
//!
//! The trace holds two kinds of events in one order: the core's (`tina::Event`) and the
//! world's (`tina_checkers::WorldEvent`: faults, crashes, restarts, clock jumps, phases).
//! Each event becomes a short list of little-endian `u64` words: word 0 packs the event
//! kind (bits 0..8; core kinds below 64, world kinds from 64), the node (bits 8..24) and
//! the shard (bits 24..32); word 1 is the true virtual time in nanoseconds, word 2 the
//! node's clock; the rest are the event's fields in declaration order (handles, message ids
//! and timer ids as their raw bits, tags and enums as their integer codes, labels as their
//! FNV-1a fingerprints, panic text as FNV-1a of its bytes). No pointer, `TypeId`, hash-map
//! order or float ever reaches it. The encoder and the log format match every kind of both
//! enums exhaustively, so a new kind does not compile until it is encoded.
//!
//! # Trace hash
//!
//! `h0 = 0x7469_6e61_7472_6163` (ASCII "tinatrac"). Each event's words are mixed two at a
//! time, `h = ((h.rotate_left(5) ^ a) * 0x517c_c1b7_2722_0a95) ^ (b * 0x9e37_79b9_7f4a_7c15)`
//! (wrapping), and an event's last odd word as `h = (h.rotate_left(5) ^ w) *
//! 0x517c_c1b7_2722_0a95`. The printed hash is the SplitMix64 finaliser of `h ^
//! event_count`. One multiply per word, and only one on the state's chain per two words,
//! keeps it cheap enough to compute on every run.
//!
//! This module does not decide when a run ends; it reports what observers say.

use std::fmt::Write as _;

use tina::{CallOutcome, Event, Handle, Label, ShardId, Tag, fnv1a_64};
use tina_checkers::{
    EndView, EventKinds, Observer, Stamp, Structural, Verdict, Violation, WorldEvent,
};

use crate::chain::{CausalChain, CausalIndex};
use crate::chrome::ChromeTrace;
use crate::plant::Mutator;

/// Most words one event encodes to.
pub const WORDS_MAX: usize = 11;

const HASH_SEED: u64 = 0x7469_6e61_7472_6163;
const HASH_MULTIPLIER: u64 = 0x517c_c1b7_2722_0a95;
const HASH_MULTIPLIER_ODD: u64 = 0x9e37_79b9_7f4a_7c15;

/// One event of the trace: a step of the core or of the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// A step of a shard's core.
    Core(Event),
    /// A step of the world around the cores.
    World(WorldEvent),
}

/// The kind code of every core event (below 64), in encoding order.
mod code {
    pub(super) const SPAWN: u64 = 1;
    pub(super) const SPAWN_FAILED: u64 = 2;
    pub(super) const SEND: u64 = 3;
    pub(super) const ENQUEUE: u64 = 4;
    pub(super) const DELIVER: u64 = 5;
    pub(super) const DROP: u64 = 6;
    pub(super) const EXIT: u64 = 7;
    pub(super) const RETIRE: u64 = 8;
    pub(super) const TIMER_SET: u64 = 9;
    pub(super) const TIMER_FIRE: u64 = 10;
    pub(super) const TIMER_CANCEL: u64 = 11;
    pub(super) const CALL_START: u64 = 12;
    pub(super) const CALL_END: u64 = 13;
    pub(super) const IO_SUBMIT: u64 = 14;
    pub(super) const IO_COMPLETE: u64 = 15;
    pub(super) const IO_STALE: u64 = 16;
    pub(super) const PANIC: u64 = 17;
    pub(super) const RESTART: u64 = 18;
    pub(super) const ESCALATE: u64 = 19;
    pub(super) const SHARD_FAILED: u64 = 20;
    pub(super) const LOG: u64 = 21;
    pub(super) const REBUILD: u64 = 22;
    pub(super) const IO_TIMEOUT: u64 = 23;
    pub(super) const SHUTDOWN_BEGIN: u64 = 24;
    pub(super) const SHUTDOWN_DRAINED: u64 = 25;
    pub(super) const SHUTDOWN_FORCED: u64 = 26;
}

/// The kind code and name of every core event.
fn kind(event: &Event) -> (u64, &'static str) {
    match event {
        Event::Spawn { .. } => (code::SPAWN, "spawn"),
        Event::SpawnFailed { .. } => (code::SPAWN_FAILED, "spawn-failed"),
        Event::Send { .. } => (code::SEND, "send"),
        Event::Enqueue { .. } => (code::ENQUEUE, "enqueue"),
        Event::Deliver { .. } => (code::DELIVER, "deliver"),
        Event::Drop { .. } => (code::DROP, "drop"),
        Event::Exit { .. } => (code::EXIT, "exit"),
        Event::Retire { .. } => (code::RETIRE, "retire"),
        Event::TimerSet { .. } => (code::TIMER_SET, "timer-set"),
        Event::TimerFire { .. } => (code::TIMER_FIRE, "timer-fire"),
        Event::TimerCancel { .. } => (code::TIMER_CANCEL, "timer-cancel"),
        Event::CallStart { .. } => (code::CALL_START, "call-start"),
        Event::CallEnd { .. } => (code::CALL_END, "call-end"),
        Event::IoSubmit { .. } => (code::IO_SUBMIT, "io-submit"),
        Event::IoComplete { .. } => (code::IO_COMPLETE, "io-complete"),
        Event::IoStale { .. } => (code::IO_STALE, "io-stale"),
        Event::IoTimeout { .. } => (code::IO_TIMEOUT, "io-timeout"),
        Event::Panic { .. } => (code::PANIC, "panic"),
        Event::Restart { .. } => (code::RESTART, "restart"),
        Event::Rebuild { .. } => (code::REBUILD, "rebuild"),
        Event::Escalate { .. } => (code::ESCALATE, "escalate"),
        Event::ShardFailed => (code::SHARD_FAILED, "shard-failed"),
        Event::Log { .. } => (code::LOG, "log"),
        Event::ShutdownBegin { .. } => (code::SHUTDOWN_BEGIN, "shutdown-begin"),
        Event::ShutdownDrained => (code::SHUTDOWN_DRAINED, "shutdown-drained"),
        Event::ShutdownForced { .. } => (code::SHUTDOWN_FORCED, "shutdown-forced"),
    }
}

/// The kind code and name of every world event, in encoding order (from 64, clear of the
/// core's codes).
pub(crate) fn world_kind(event: &WorldEvent) -> (u64, &'static str) {
    match event {
        WorldEvent::ClockSkew { .. } => (64, "clock-skew"),
        WorldEvent::ClockJump { .. } => (65, "clock-jump"),
        WorldEvent::DelayTail { .. } => (66, "delay-tail"),
        WorldEvent::DelaySlow { .. } => (67, "delay-slow"),
        WorldEvent::ShardStall { .. } => (68, "shard-stall"),
        WorldEvent::IsolateCrash { .. } => (69, "isolate-crash"),
        WorldEvent::InitFailure { .. } => (70, "init-failure"),
        WorldEvent::ShardCrash => (71, "shard-crash"),
        WorldEvent::ShardRestart => (72, "shard-restart"),
        WorldEvent::ShardQuarantine => (73, "shard-quarantine"),
        WorldEvent::ShardRevive => (74, "shard-revive"),
        WorldEvent::NodeCrash => (75, "node-crash"),
        WorldEvent::NodeRestart => (76, "node-restart"),
        WorldEvent::Buggify { .. } => (77, "buggify"),
        WorldEvent::BuggifyActive { .. } => (78, "buggify-active"),
        WorldEvent::Phase { .. } => (79, "phase"),
        WorldEvent::DiskError => (80, "disk-error"),
        WorldEvent::DiskFsyncFailure => (81, "disk-fsync-failure"),
        WorldEvent::DiskCorruption => (82, "disk-corruption"),
        WorldEvent::DiskFull => (83, "disk-full"),
        WorldEvent::DiskCrash { .. } => (84, "disk-crash"),
        WorldEvent::NetFault { .. } => (85, "net-fault"),
        WorldEvent::Shutdown { .. } => (86, "shutdown"),
    }
}

fn outcome_code(outcome: CallOutcome) -> u64 {
    match outcome {
        CallOutcome::Replied => 0,
        CallOutcome::Failed(failure) => failure as u64,
    }
}

/// Word 0 of an event's encoding: its kind `code`, node and shard packed.
#[inline(always)]
fn word0(code: u64, stamp: &Stamp) -> u64 {
    code | (u64::from(stamp.node) << 8) | (u64::from(stamp.shard.0) << 24)
}

/// Hands the canonical words of core `event` at `stamp` to `put`, all at once (one slice,
/// no buffer: the hash mixes them as they come): word 0, true time, node time, then the
/// fields. At most `WORDS_MAX`.
#[inline(always)]
pub fn encode(stamp: &Stamp, event: &Event, mut put: impl FnMut(&[u64])) {
    use code::*;
    let h = |handle: Handle| handle.to_raw();
    let (s, t, l) = (stamp, stamp.time_ns, stamp.local_ns);
    match *event {
        Event::Spawn { parent, child } => put(&[word0(SPAWN, s), t, l, h(parent), h(child)]),
        Event::SpawnFailed { parent, type_index, reason } => put(&[
            word0(SPAWN_FAILED, s),
            t,
            l,
            h(parent),
            u64::from(type_index) | ((reason as u64) << 8),
        ]),
        Event::Send { id, from, to, tag } => {
            put(&[word0(SEND, s), t, l, id.to_raw(), h(from), h(to), u64::from(tag.to_raw())])
        }
        Event::Enqueue { id, to, mailbox_len, reply } => put(&[
            word0(ENQUEUE, s),
            t,
            l,
            id.to_raw(),
            h(to),
            u64::from(mailbox_len) | (u64::from(reply) << 32),
        ]),
        Event::Deliver { id, to, tag } => {
            put(&[word0(DELIVER, s), t, l, id.to_raw(), h(to), u64::from(tag.to_raw())])
        }
        Event::Drop { id, to, reason } => {
            put(&[word0(DROP, s), t, l, id.to_raw(), h(to), reason as u64])
        }
        Event::Exit { handle, kind, reason } => {
            put(&[word0(EXIT, s), t, l, h(handle), kind as u64, reason.fingerprint()])
        }
        Event::Retire { handle } => put(&[word0(RETIRE, s), t, l, h(handle)]),
        Event::TimerSet { owner, timer, deadline_ns } => {
            put(&[word0(TIMER_SET, s), t, l, h(owner), timer.to_raw(), deadline_ns])
        }
        Event::TimerFire { owner, timer } => {
            put(&[word0(TIMER_FIRE, s), t, l, h(owner), timer.to_raw()])
        }
        Event::TimerCancel { owner, timer } => {
            put(&[word0(TIMER_CANCEL, s), t, l, h(owner), timer.to_raw()])
        }
        Event::CallStart { caller, callee, correlation, request, deadline_ns } => put(&[
            word0(CALL_START, s),
            t,
            l,
            h(caller),
            h(callee),
            u64::from(correlation),
            request.to_raw(),
            deadline_ns,
        ]),
        Event::CallEnd { caller, correlation, outcome } => put(&[
            word0(CALL_END, s),
            t,
            l,
            h(caller),
            u64::from(correlation),
            outcome_code(outcome),
        ]),
        Event::IoSubmit { isolate, sequence, op } => {
            put(&[word0(IO_SUBMIT, s), t, l, h(isolate), u64::from(sequence), op as u64])
        }
        Event::IoComplete { isolate, sequence, op, ok } => put(&[
            word0(IO_COMPLETE, s),
            t,
            l,
            h(isolate),
            u64::from(sequence),
            op as u64 | (u64::from(ok) << 8),
        ]),
        Event::IoStale { isolate, sequence } => {
            put(&[word0(IO_STALE, s), t, l, h(isolate), u64::from(sequence)])
        }
        Event::IoTimeout { isolate, sequence } => {
            put(&[word0(IO_TIMEOUT, s), t, l, h(isolate), u64::from(sequence)])
        }
        Event::Panic { handle, text } => {
            put(&[word0(PANIC, s), t, l, h(handle), fnv1a_64(text.as_str().as_bytes())])
        }
        Event::Restart { group, old, new } => {
            put(&[word0(RESTART, s), t, l, u64::from(group), h(old), h(new)])
        }
        Event::Rebuild { parent, group } => {
            put(&[word0(REBUILD, s), t, l, u64::from(parent), u64::from(group)])
        }
        Event::Escalate { group, exceeded } => {
            put(&[word0(ESCALATE, s), t, l, u64::from(group) | (u64::from(exceeded) << 16)])
        }
        Event::ShardFailed => put(&[word0(SHARD_FAILED, s), t, l]),
        Event::Log { handle, level, tag, values, count } => put(&[
            word0(LOG, s),
            t,
            l,
            h(handle),
            level as u64 | (u64::from(count) << 8),
            tag.fingerprint(),
            values[0],
            values[1],
            values[2],
            values[3],
        ]),
        Event::ShutdownBegin { deadline_ns, live } => {
            put(&[word0(SHUTDOWN_BEGIN, s), t, l, deadline_ns, u64::from(live)])
        }
        Event::ShutdownDrained => put(&[word0(SHUTDOWN_DRAINED, s), t, l]),
        Event::ShutdownForced { remaining } => {
            put(&[word0(SHUTDOWN_FORCED, s), t, l, u64::from(remaining)])
        }
    }
}

/// Hands the canonical words of world `event` at `stamp` to `put`, like `encode`.
pub fn encode_world(stamp: &Stamp, event: &WorldEvent, mut put: impl FnMut(&[u64])) {
    let w0 = word0(world_kind(event).0, stamp);
    let (t, l) = (stamp.time_ns, stamp.local_ns);
    match *event {
        // The drift is a signed integer written as its two's complement bits.
        WorldEvent::ClockSkew { offset_ns, drift_ppm } => {
            put(&[w0, t, l, offset_ns, i64::from(drift_ppm) as u64])
        }
        WorldEvent::ClockJump { by_ns } => put(&[w0, t, l, by_ns]),
        WorldEvent::DelayTail { id, delay_ns } | WorldEvent::DelaySlow { id, delay_ns } => {
            put(&[w0, t, l, id.to_raw(), delay_ns])
        }
        WorldEvent::ShardStall { for_ns } => put(&[w0, t, l, for_ns]),
        WorldEvent::IsolateCrash { handle } | WorldEvent::InitFailure { handle } => {
            put(&[w0, t, l, handle.to_raw()])
        }
        WorldEvent::ShardCrash
        | WorldEvent::ShardRestart
        | WorldEvent::ShardQuarantine
        | WorldEvent::ShardRevive
        | WorldEvent::NodeCrash
        | WorldEvent::NodeRestart
        | WorldEvent::DiskError
        | WorldEvent::DiskFsyncFailure
        | WorldEvent::DiskCorruption
        | WorldEvent::DiskFull => put(&[w0, t, l]),
        WorldEvent::DiskCrash { lost, torn, kept } => {
            put(&[w0, t, l, u64::from(lost), u64::from(torn), u64::from(kept)])
        }
        WorldEvent::NetFault { fault, peer } => {
            put(&[w0, t, l, fault.fingerprint(), u64::from(peer)])
        }
        WorldEvent::Buggify { site } | WorldEvent::BuggifyActive { site } => {
            put(&[w0, t, l, site.fingerprint()])
        }
        WorldEvent::Phase { phase } => put(&[w0, t, l, phase as u64]),
        WorldEvent::Shutdown { drain_ns } => put(&[w0, t, l, drain_ns]),
    }
}

/// The running trace hash (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHash {
    state: u64,
    events: u64,
}

impl Default for TraceHash {
    fn default() -> TraceHash {
        TraceHash { state: HASH_SEED, events: 0 }
    }
}

impl TraceHash {
    /// Events mixed so far.
    #[inline]
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Mixes one core event, encoding it on the way.
    #[inline]
    pub fn add(&mut self, stamp: &Stamp, event: &Event) {
        encode(stamp, event, |words| self.mix(words));
        self.events += 1;
    }

    /// Mixes one world event, encoding it on the way.
    pub fn add_world(&mut self, stamp: &Stamp, event: &WorldEvent) {
        encode_world(stamp, event, |words| self.mix(words));
        self.events += 1;
    }

    /// Mixes one event of either kind.
    pub fn add_any(&mut self, stamp: &Stamp, event: &TraceEvent) {
        match event {
            TraceEvent::Core(event) => self.add(stamp, event),
            TraceEvent::World(event) => self.add_world(stamp, event),
        }
    }

    /// Mixes the words of one event, two at a time: the second word's multiply does not
    /// wait for the state, so the chain through the state (rotate, xor, multiply, xor) is
    /// as long for two words as it was for one.
    #[inline(always)]
    fn mix(&mut self, words: &[u64]) {
        let mut pairs = words.chunks_exact(2);
        for pair in &mut pairs {
            self.state = (self.state.rotate_left(5) ^ pair[0]).wrapping_mul(HASH_MULTIPLIER)
                ^ pair[1].wrapping_mul(HASH_MULTIPLIER_ODD);
        }
        if let [word] = pairs.remainder() {
            self.state = (self.state.rotate_left(5) ^ *word).wrapping_mul(HASH_MULTIPLIER);
        }
    }

    /// The printed value.
    pub fn value(&self) -> u64 {
        let mut z = self.state ^ self.events;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Payload names for log lines, from the specs' registrations.
#[derive(Clone, Debug, Default)]
pub struct Names {
    tags: Vec<(Tag, &'static str)>,
}

impl Names {
    /// Names for every payload registered in `specs`.
    pub fn new(specs: &[tina::SystemSpec]) -> Names {
        let mut tags: Vec<(Tag, &'static str)> = specs
            .iter()
            .flat_map(|spec| spec.payloads())
            .map(|(tag, name)| (tag, short_name(name)))
            .collect();
        tags.sort_by_key(|(tag, _)| *tag);
        tags.dedup_by_key(|(tag, _)| *tag);
        Names { tags }
    }

    /// The payload's short name (`ping_pong::Ball`), or the tag itself (`timer`, `0x0100`).
    pub(crate) fn tag(&self, tag: Tag) -> String {
        match self.tags.binary_search_by_key(&tag, |(t, _)| *t) {
            Ok(index) => self.tags[index].1.to_string(),
            Err(_) => tag.to_string(),
        }
    }
}

/// The last two segments of a type path (`ping_pong::Ball`).
fn short_name(path: &'static str) -> &'static str {
    let mut cut = path.len();
    for _ in 0..2 {
        match path[..cut].rfind("::") {
            Some(at) => cut = at,
            None => return path,
        }
    }
    &path[cut + 2..]
}

/// One replay-log line: `index time node/shard kind fields`. The place is `n<node>/s<shard>`,
/// or `n<node>/*` for a world event about the node as a whole; when the node's clock
/// differs from true time it follows as `@<node time>`.
pub fn format_line(stamp: &Stamp, event: &TraceEvent, names: &Names) -> String {
    let name = match event {
        TraceEvent::Core(event) => kind(event).1,
        TraceEvent::World(event) => world_kind(event).1,
    };
    let mut line = format!("{} {} n{}/", stamp.index, stamp.time_ns, stamp.node);
    // Writing to a String cannot fail.
    let _ = if stamp.shard == tina::ShardId::EXTERNAL {
        write!(line, "*")
    } else {
        write!(line, "s{}", stamp.shard.0)
    };
    if stamp.local_ns != stamp.time_ns {
        let _ = write!(line, "@{}", stamp.local_ns);
    }
    let _ = write!(line, " {name}");
    match event {
        TraceEvent::Core(event) => core_fields(&mut line, event, names),
        TraceEvent::World(event) => world_fields(&mut line, event),
    }
    line
}

fn label_text(label: &Label) -> String {
    if label.text().is_empty() { "-".to_string() } else { label.text().replace(' ', "_") }
}

/// The fields of a world event, as ` key=value` pairs.
fn world_fields(line: &mut String, event: &WorldEvent) {
    // Writing to a String cannot fail.
    let _ = match *event {
        WorldEvent::ClockSkew { offset_ns, drift_ppm } => {
            write!(line, " offset={offset_ns} drift_ppm={drift_ppm}")
        }
        WorldEvent::ClockJump { by_ns } => write!(line, " by={by_ns}"),
        WorldEvent::DelayTail { id, delay_ns } | WorldEvent::DelaySlow { id, delay_ns } => {
            write!(line, " id={id} delay={delay_ns}")
        }
        WorldEvent::ShardStall { for_ns } => write!(line, " for={for_ns}"),
        WorldEvent::IsolateCrash { handle } | WorldEvent::InitFailure { handle } => {
            write!(line, " handle={handle}")
        }
        WorldEvent::ShardCrash
        | WorldEvent::ShardRestart
        | WorldEvent::ShardQuarantine
        | WorldEvent::ShardRevive
        | WorldEvent::NodeCrash
        | WorldEvent::NodeRestart
        | WorldEvent::DiskError
        | WorldEvent::DiskFsyncFailure
        | WorldEvent::DiskCorruption
        | WorldEvent::DiskFull => Ok(()),
        WorldEvent::DiskCrash { lost, torn, kept } => {
            write!(line, " lost={lost} torn={torn} kept={kept}")
        }
        WorldEvent::NetFault { fault, peer } => {
            write!(line, " fault={} peer=n{peer}", fault.text())
        }
        WorldEvent::Buggify { site } | WorldEvent::BuggifyActive { site } => {
            write!(line, " site={}", label_text(&site))
        }
        WorldEvent::Phase { phase } => write!(line, " phase={}", phase.name()),
        WorldEvent::Shutdown { drain_ns } => write!(line, " drain={drain_ns}"),
    };
}

/// The fields of a core event, as ` key=value` pairs.
fn core_fields(line: &mut String, event: &Event, names: &Names) {
    let label = label_text;
    // Writing to a String cannot fail.
    let _ = match *event {
        Event::Spawn { parent, child } => write!(line, " parent={parent} child={child}"),
        Event::SpawnFailed { parent, type_index, reason } => {
            write!(line, " parent={parent} type={type_index} reason={}", reason.name())
        }
        Event::Send { id, from, to, tag } => {
            write!(line, " id={id} from={from} to={to} tag={}", names.tag(tag))
        }
        Event::Enqueue { id, to, mailbox_len, reply } => {
            write!(line, " id={id} to={to} len={mailbox_len}{}", if reply { " reply" } else { "" })
        }
        Event::Deliver { id, to, tag } => write!(line, " id={id} to={to} tag={}", names.tag(tag)),
        Event::Drop { id, to, reason } => write!(line, " id={id} to={to} reason={}", reason.name()),
        Event::Exit { handle, kind, reason } => {
            write!(line, " handle={handle} kind={} reason={}", kind.name(), label(&reason))
        }
        Event::Retire { handle } => write!(line, " handle={handle}"),
        Event::TimerSet { owner, timer, deadline_ns } => {
            write!(line, " owner={owner} timer={timer} deadline={deadline_ns}")
        }
        Event::TimerFire { owner, timer } | Event::TimerCancel { owner, timer } => {
            write!(line, " owner={owner} timer={timer}")
        }
        Event::CallStart { caller, callee, correlation, request, deadline_ns } => write!(
            line,
            " caller={caller} callee={callee} correlation={correlation} request={request} deadline={deadline_ns}"
        ),
        Event::CallEnd { caller, correlation, outcome } => {
            let outcome = match outcome {
                CallOutcome::Replied => "replied",
                CallOutcome::Failed(failure) => failure.name(),
            };
            write!(line, " caller={caller} correlation={correlation} outcome={outcome}")
        }
        Event::IoSubmit { isolate, sequence, op } => {
            write!(line, " isolate={isolate} sequence={sequence} op={op:?}")
        }
        Event::IoComplete { isolate, sequence, op, ok } => {
            write!(line, " isolate={isolate} sequence={sequence} op={op:?} ok={ok}")
        }
        Event::IoStale { isolate, sequence } | Event::IoTimeout { isolate, sequence } => {
            write!(line, " isolate={isolate} sequence={sequence}")
        }
        Event::Panic { handle, text } => write!(line, " handle={handle} text={:?}", text.as_str()),
        Event::Restart { group, old, new } => write!(line, " group={group} old={old} new={new}"),
        Event::Rebuild { parent, group } => write!(line, " parent={parent} group={group}"),
        Event::Escalate { group, exceeded } => {
            let reason = if exceeded { "intensity" } else { "no-slot" };
            write!(line, " group={group} reason={reason}")
        }
        Event::ShardFailed => Ok(()),
        Event::Log { handle, level, tag, values, count } => {
            let values = &values[..usize::from(count)];
            write!(
                line,
                " handle={handle} level={} tag={} values={values:?}",
                level.name(),
                label(&tag)
            )
        }
        Event::ShutdownBegin { deadline_ns, live } => {
            write!(line, " deadline={deadline_ns} live={live}")
        }
        Event::ShutdownDrained => Ok(()),
        Event::ShutdownForced { remaining } => write!(line, " remaining={remaining}"),
    };
}

/// When and where an event happens, before the sink numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// True virtual time, in nanoseconds.
    pub time_ns: u64,
    /// The node's clock, in nanoseconds.
    pub local_ns: u64,
    /// The node.
    pub node: u16,
    /// The shard, or `ShardId::EXTERNAL` for the node as a whole.
    pub shard: tina::ShardId,
}

impl Place {
    /// The stamp of the event numbered `index`.
    #[inline(always)]
    pub fn stamp(self, index: u64) -> Stamp {
        Stamp {
            index,
            time_ns: self.time_ns,
            local_ns: self.local_ns,
            node: self.node,
            shard: self.shard,
        }
    }
}

/// Where replay-log lines go. The header is written when the log is finished, ahead of
/// the events, because part of it (the buggify sites a run activated) is known only then:
/// a file's events go to a `.part` file beside it first.
#[derive(Debug)]
pub enum LogOut {
    /// Kept in memory (tests, snapshots).
    Memory(String),
    /// Written to a file: the final path, the events so far (in the `.part` file beside it)
    /// and the first write error, reported at the end.
    File {
        /// Where the finished log goes.
        path: std::path::PathBuf,
        /// Where the events go meanwhile.
        part: std::path::PathBuf,
        /// The events' writer.
        body: std::io::BufWriter<std::fs::File>,
        /// The first write error.
        error: Option<std::io::Error>,
    },
}

impl LogOut {
    /// A log kept in memory.
    pub fn memory() -> LogOut {
        LogOut::Memory(String::new())
    }

    /// A log for `path`; its events go to `path.part` until it is finished.
    pub fn file(path: &std::path::Path) -> Result<LogOut, String> {
        let mut part = path.as_os_str().to_owned();
        part.push(".part");
        let part = std::path::PathBuf::from(part);
        let file = std::fs::File::create(&part)
            .map_err(|e| format!("cannot create {}: {e}", part.display()))?;
        Ok(LogOut::File {
            path: path.to_path_buf(),
            part,
            body: std::io::BufWriter::new(file),
            error: None,
        })
    }

    /// Appends one line.
    pub fn line(&mut self, line: &str) {
        match self {
            LogOut::Memory(text) => {
                text.push_str(line);
                text.push('\n');
            }
            LogOut::File { body, error, .. } => {
                if error.is_none()
                    && let Err(e) = std::io::Write::write_all(body, line.as_bytes())
                        .and_then(|()| std::io::Write::write_all(body, b"\n"))
                {
                    *error = Some(e);
                }
            }
        }
    }

    /// Writes `header` followed by every line so far; returns the text of a memory log, or
    /// the first error of a file.
    pub fn finish(self, header: &[String]) -> Result<Option<String>, std::io::Error> {
        let mut head = String::new();
        for line in header {
            head.push_str(line);
            head.push('\n');
        }
        match self {
            LogOut::Memory(text) => Ok(Some(head + &text)),
            LogOut::File { path, part, body, error } => {
                if let Some(error) = error {
                    return Err(error);
                }
                // Flushes the events and closes the part file.
                drop(body.into_inner().map_err(|e| e.into_error())?);
                let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
                std::io::Write::write_all(&mut out, head.as_bytes())?;
                std::io::copy(&mut std::fs::File::open(&part)?, &mut out)?;
                std::io::Write::flush(&mut out)?;
                std::fs::remove_file(&part).map(|()| None)
            }
        }
    }
}

/// The structural checkers (if on), then the other observers, in the order they judge.
fn all_observers<'a>(
    structural: &'a mut Option<Box<Structural>>,
    observers: &'a mut [Box<dyn Observer>],
) -> impl Iterator<Item = &'a mut dyn Observer> {
    let structural = structural.as_deref_mut().map(|s| s as &mut dyn Observer);
    structural.into_iter().chain(observers.iter_mut().map(|o| o.as_mut() as &mut dyn Observer))
}

/// A recorded event, for comparing two runs of one seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// When and where.
    pub stamp: Stamp,
    /// What.
    pub event: TraceEvent,
}

/// Where two runs of one seed first differed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The index of the first differing event.
    pub index: u64,
    /// The first run's event there (`None` if the first run ended before).
    pub first: Option<String>,
    /// The second run's event there (`None` if the second run ended before).
    pub second: Option<String>,
}

/// What the sink does with each event beyond hashing.
#[derive(Debug, Default)]
pub enum Tape {
    /// Nothing.
    #[default]
    Off,
    /// Keep every event (the first run of a determinism check).
    Record(Vec<Recorded>),
    /// Compare every event with a recording (the second run).
    Compare(Vec<Recorded>),
    /// Keep the replay-log lines of events `from..=to` (the events before a failure).
    Window {
        /// First index kept.
        from: u64,
        /// Last index kept.
        to: u64,
        /// The lines.
        lines: Vec<String>,
    },
}

/// Where every event of a run goes: counted, hashed, optionally logged, recorded or
/// compared, and shown to the observers until one of them ends the run.
pub struct Sink {
    /// Also the event count.
    hash: TraceHash,
    /// No mutator, no log, no tape and no violation yet: an event is only hashed and
    /// observed (the path nearly every event of nearly every run takes).
    plain: bool,
    names: Names,
    log: Option<LogOut>,
    tape: Tape,
    /// The structural checkers, called statically (they see every event of most runs).
    structural: Option<Box<Structural>>,
    /// Further observers (the scenario's goal, tests' probes), after `structural`.
    observers: Vec<Box<dyn Observer>>,
    /// The kinds each of `observers` looks at (`Observer::kinds`), in the same order.
    kinds: Vec<EventKinds>,
    /// Every kind any of `observers` looks at: an event of another kind skips them all.
    kinds_any: EventKinds,
    mutator: Option<Mutator>,
    /// The last events and their causes, to show a violation's causal chain (the replay
    /// of a failure only).
    causes: Option<Box<CausalIndex>>,
    /// The run as a Chrome trace (`--trace-out`).
    chrome: Option<Box<ChromeTrace>>,
    verdict: Verdict,
    violation_index: Option<u64>,
    divergence: Option<Divergence>,
    /// Whether an observer's `Done` stops the run (not in a run that shuts down: it ends
    /// when its shutdown does).
    stop_at_done: bool,
}

impl core::fmt::Debug for Sink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sink")
            .field("events", &self.hash.events())
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// A sink feeding `observers`, writing replay-log lines to `log` if given.
    pub fn new(
        observers: Vec<Box<dyn Observer>>,
        names: Names,
        log: Option<LogOut>,
        tape: Tape,
    ) -> Sink {
        let kinds: Vec<EventKinds> = observers.iter().map(|observer| observer.kinds()).collect();
        let kinds_any = kinds.iter().fold(EventKinds::NONE, |any, &kinds| any | kinds);
        let mut sink = Sink {
            hash: TraceHash::default(),
            plain: false,
            names,
            log,
            tape,
            structural: None,
            observers,
            kinds,
            kinds_any,
            mutator: None,
            causes: None,
            chrome: None,
            verdict: Verdict::Continue,
            violation_index: None,
            divergence: None,
            stop_at_done: true,
        };
        sink.refresh_plain();
        sink
    }

    /// An observer's `Done` no longer stops the run (it is kept as the verdict); a
    /// violation still does. For a run that ends with its shutdown.
    pub fn run_past_done(mut self) -> Sink {
        self.stop_at_done = false;
        self
    }

    /// Recomputes `plain` after a change to the mutator, the log, the tape, the causal
    /// index, the Chrome trace or the verdict.
    fn refresh_plain(&mut self) {
        self.plain = self.mutator.is_none()
            && self.log.is_none()
            && self.causes.is_none()
            && self.chrome.is_none()
            && matches!(self.tape, Tape::Off)
            && !matches!(self.verdict, Verdict::Violated(_));
    }

    /// Keeps the last events and their causes, for `causal_chain`.
    pub fn with_causes(mut self) -> Sink {
        self.causes = Some(Box::default());
        self.refresh_plain();
        self
    }

    /// Writes every event to `trace` as well.
    pub fn with_chrome(mut self, trace: ChromeTrace) -> Sink {
        self.chrome = Some(Box::new(trace));
        self.refresh_plain();
        self
    }

    /// Puts the structural checkers ahead of the other observers.
    pub fn with_structural(mut self) -> Sink {
        self.structural = Some(Box::default());
        self
    }

    /// Takes one core event at a place (true time, node time, node, shard), rewritten first
    /// by the trace plant's mutator, if any. Scalars rather than a `Place`: this is the
    /// per-event path, and they stay in registers.
    #[inline(always)]
    pub fn record(
        &mut self,
        time_ns: u64,
        local_ns: u64,
        node: u16,
        shard: ShardId,
        event: &Event,
    ) {
        if !self.plain {
            let place = Place { time_ns, local_ns, node, shard };
            return self.record_rare(place, &TraceEvent::Core(*event));
        }
        let stamp = Stamp { index: self.hash.events(), time_ns, local_ns, node, shard };
        self.hash.add(&stamp, event);
        self.observe(&stamp, event);
    }

    /// Takes one world event at `place` (a node-wide one has shard `ShardId::EXTERNAL`).
    /// World events are rare: they take the sink's general path.
    pub fn record_world(&mut self, place: Place, event: &WorldEvent) {
        self.record_rare(place, &TraceEvent::World(*event));
    }

    /// `record` when the sink is not plain (a mutator, a log or a tape is on, or an
    /// observer found a violation), and every world event.
    #[cold]
    #[inline(never)]
    fn record_rare(&mut self, place: Place, event: &TraceEvent) {
        match self.mutator.take() {
            None => self.record_one(place, event),
            Some(mut mutator) => {
                mutator.rewrite(place, event, &mut |rewritten| self.record_one(place, rewritten));
                self.mutator = Some(mutator);
            }
        }
    }

    /// Switches on a trace plant: every later event passes through `mutator`.
    pub fn plant(&mut self, mutator: Mutator) {
        self.mutator = Some(mutator);
        self.refresh_plain();
    }

    fn record_one(&mut self, place: Place, event: &TraceEvent) {
        let stamp = place.stamp(self.hash.events());
        self.hash.add_any(&stamp, event);
        if let Some(log) = &mut self.log {
            log.line(&format_line(&stamp, event, &self.names));
        }
        match &mut self.tape {
            Tape::Off => {}
            Tape::Record(tape) => tape.push(Recorded { stamp, event: *event }),
            Tape::Compare(_) => self.compare(stamp, event),
            Tape::Window { from, to, lines } => {
                if (*from..=*to).contains(&stamp.index) {
                    lines.push(format_line(&stamp, event, &self.names));
                }
            }
        }
        if let Some(causes) = &mut self.causes {
            causes.record(&stamp, event);
        }
        if let Some(chrome) = &mut self.chrome {
            chrome.event(&stamp, event);
        }
        // Observers see every event until one finds a violation: after the goal is
        // reached, the rest of the tick still happens and must still be accounted for.
        if matches!(self.verdict, Verdict::Violated(_)) {
            return;
        }
        match event {
            TraceEvent::Core(event) => self.observe(&stamp, event),
            TraceEvent::World(event) => self.observe_world(&stamp, event),
        }
    }

    /// Shows one world event to every observer, until one finds a violation.
    fn observe_world(&mut self, stamp: &Stamp, event: &WorldEvent) {
        let Sink { structural, observers, verdict: first, violation_index, plain, .. } = self;
        for observer in all_observers(structural, observers) {
            let verdict = observer.observe_world(stamp, event);
            if !matches!(verdict, Verdict::Continue)
                && Sink::settle(first, violation_index, stamp.index, verdict)
            {
                *plain = false;
                return;
            }
        }
    }

    /// Shows one event to the structural checkers, then to the other observers, until one
    /// finds a violation.
    #[inline(always)]
    fn observe(&mut self, stamp: &Stamp, event: &Event) {
        // Fields one by one, so that the observers stay borrowed across the loop.
        let Sink {
            structural,
            observers,
            kinds,
            kinds_any,
            verdict: first,
            violation_index,
            plain,
            ..
        } = self;
        if let Some(structural) = structural {
            let verdict = structural.observe(stamp, event);
            if !matches!(verdict, Verdict::Continue)
                && Sink::settle(first, violation_index, stamp.index, verdict)
            {
                *plain = false;
                return;
            }
        }
        let kind = EventKinds::of(event);
        if !kinds_any.intersects(kind) {
            return;
        }
        // Bounded by the observers given at construction.
        for (observer, kinds) in observers.iter_mut().zip(kinds.iter()) {
            if !kinds.intersects(kind) {
                continue;
            }
            let verdict = observer.observe(stamp, event);
            if !matches!(verdict, Verdict::Continue)
                && Sink::settle(first, violation_index, stamp.index, verdict)
            {
                *plain = false;
                return;
            }
        }
    }

    /// Takes an observer's `Done` or violation at event `index` into `first` (the first
    /// verdict that is not `Continue`, a violation overriding `Done`); true for a
    /// violation (the other observers do not see the event).
    #[cold]
    #[inline(never)]
    fn settle(
        first: &mut Verdict,
        violation_index: &mut Option<u64>,
        index: u64,
        verdict: Verdict,
    ) -> bool {
        match verdict {
            Verdict::Continue => false,
            Verdict::Done => {
                *first = Verdict::Done;
                false
            }
            violation @ Verdict::Violated(_) => {
                *violation_index = Some(index);
                *first = violation;
                true
            }
        }
    }

    fn compare(&mut self, stamp: Stamp, event: &TraceEvent) {
        let Tape::Compare(tape) = &self.tape else { return };
        if self.divergence.is_some() {
            return;
        }
        let here = Recorded { stamp, event: *event };
        let expected = tape.get(stamp.index as usize).copied();
        if expected != Some(here) {
            self.divergence = Some(Divergence {
                index: stamp.index,
                first: expected.map(|r| format_line(&r.stamp, &r.event, &self.names)),
                second: Some(format_line(&stamp, event, &self.names)),
            });
        }
    }

    /// After the second run ended: a divergence if it saw fewer events than the first.
    pub fn finish_compare(&mut self) {
        if self.divergence.is_some() {
            return;
        }
        let events = self.hash.events();
        if let Tape::Compare(tape) = &self.tape
            && (tape.len() as u64) > events
        {
            let first = tape[events as usize];
            self.divergence = Some(Divergence {
                index: events,
                first: Some(format_line(&first.stamp, &first.event, &self.names)),
                second: None,
            });
        }
    }

    /// Starts every observer with the system's shape.
    pub fn start_observers(&mut self, nodes: &[tina::SystemSpec]) {
        for observer in all_observers(&mut self.structural, &mut self.observers) {
            observer.start(nodes);
        }
    }

    /// Asks every observer for end-of-run properties, unless the run already failed. A
    /// goal reached only at quiescence is reported here as `Done`.
    pub fn finish_observers(&mut self, view: &EndView) {
        if matches!(self.verdict, Verdict::Violated(_)) || self.divergence.is_some() {
            return;
        }
        let mut done = false;
        for observer in all_observers(&mut self.structural, &mut self.observers) {
            match observer.finish(view) {
                Verdict::Violated(violation) => {
                    self.verdict = Verdict::Violated(violation);
                    self.violation_index = Some(self.hash.events());
                    self.plain = false;
                    return;
                }
                Verdict::Done => done = true,
                Verdict::Continue => {}
            }
        }
        if done && matches!(self.verdict, Verdict::Continue) {
            self.verdict = Verdict::Done;
        }
    }

    /// The index of the event at which the first violation was found (the event count for
    /// a violation found at the end).
    pub fn violation_index(&self) -> Option<u64> {
        self.violation_index
    }

    /// Events so far.
    pub fn events(&self) -> u64 {
        self.hash.events()
    }

    /// The trace hash so far.
    pub fn hash(&self) -> u64 {
        self.hash.value()
    }

    /// What the observers said first (`Continue` if nothing yet).
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Whether the run must stop: goal reached (unless `run_past_done`), property violated,
    /// the runs diverged, or a window of events is complete.
    pub fn stop(&self) -> bool {
        let window_done = matches!(self.tape, Tape::Window { to, .. } if self.hash.events() > to);
        let verdict = match self.verdict {
            Verdict::Continue => false,
            Verdict::Done => self.stop_at_done,
            Verdict::Violated(_) => true,
        };
        verdict || self.divergence.is_some() || window_done
    }

    /// The first divergence from the recording, if any.
    pub fn divergence(&self) -> Option<&Divergence> {
        self.divergence.as_ref()
    }

    /// Takes the recording (after a recording run).
    pub fn take_tape(&mut self) -> Tape {
        let tape = core::mem::take(&mut self.tape);
        self.refresh_plain();
        tape
    }

    /// The causal chain of the event at `index` (empty without `with_causes`, or if that
    /// event is not one of the last kept).
    pub fn causal_chain(&self, index: u64) -> CausalChain {
        match &self.causes {
            Some(causes) => causes.chain(index, &self.names),
            None => CausalChain::default(),
        }
    }

    /// Takes the Chrome trace back (to finish it).
    pub fn take_chrome(&mut self) -> Option<ChromeTrace> {
        let chrome = self.chrome.take();
        self.refresh_plain();
        chrome.map(|chrome| *chrome)
    }

    /// Takes the replay log back (to write its footer).
    pub fn take_log(&mut self) -> Option<LogOut> {
        let log = self.log.take();
        self.refresh_plain();
        log
    }

    /// A violation reported by the observers, if any.
    pub fn violation(&self) -> Option<&Violation> {
        match &self.verdict {
            Verdict::Violated(violation) => Some(violation),
            _ => None,
        }
    }
}
