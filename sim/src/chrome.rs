//! `--trace-out`: a run as a Chrome trace, the JSON object form of the Trace Event Format,
//! which Perfetto (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! Layout: one process per node (`pid` = node + 1, named `node N`), one thread per shard
//! (`tid` = pid × 1000 + shard, named `shard S`; thread ids are unique across processes,
//! as Perfetto's importer prefers). Timestamps are virtual true time in microseconds with
//! three decimals (exact nanoseconds, no float formatting).
//!
//! - A handler call is a complete (`X`) slice named by the message's payload (or `timer`,
//!   `io`, `call-timeout`, `resume`). The simulator stamps every event of a tick with the
//!   tick's start and charges `dispatch_cost` per handler call, so the k-th delivery of a
//!   tick at `t` runs over `[t + k × cost, t + (k + 1) × cost]`: each slice starts where
//!   the previous one on its shard ended, or at its tick's start if that is later. Slices
//!   of a shard therefore never overlap (a crash that cuts a shard's busy time short can
//!   only push the next tick's slices later, by at most what it cut).
//! - A flow (`s` then `f`, `bp: "e"`) joins the handler that caused a delivery to the
//!   handler it started: a message from the handler that sent it, a timer from the handler
//!   that set it, an I/O completion from the handler that submitted the operation, a call
//!   failure from the handler that made the call. Causes come from `links`; a delivery
//!   whose cause ran in no handler (a boot's `init`) has no flow. Both ends are written
//!   together at the delivery, so every flow has both; each end sits in the middle of its
//!   slice, so the viewer binds it to that slice.
//! - An instant (`i`) marks each world event (faults, crashes, restarts, phases: shard
//!   scope, or process scope for a node-wide one, global for a phase), and each drop,
//!   crash, panic, supervision step, failed call and `ctx.log` record of the core; one
//!   inside a handler sits in the middle of its slice.
//!
//! Every slice and instant carries its replay-log line (`args.event`), so `--log` and the
//! trace can be read side by side. Streamed: events go to a buffered file as they come;
//! memory holds one end time per shard and `links`'s bounded maps. Written with `write!`
//! and `json::write_string` rather than serde: the events have half a dozen fixed shapes.
//!
//! This module does not decide anything about the run; it only reads the stamped events
//! the sink gets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use tina::{CallOutcome, Event, ExitKind, MessageId, ShardId, SystemSpec, Tag};
use tina_checkers::{Stamp, WorldEvent};

use crate::json::write_string;
use crate::links::Links;
use crate::trace::{Names, TraceEvent, format_line, world_kind};

/// Thread ids of a node's shards start at its process id times this.
const TIDS_PER_PID: u32 = 1_000;
const _: () = assert!(TIDS_PER_PID > u8::MAX as u32, "a tid per shard, and one to spare");

/// A place inside a handler's slice: where a flow leaves or arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Spot {
    node: u16,
    shard: ShardId,
    ts_ns: u64,
}

/// How many trace events of each kind were written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChromeCounts {
    /// Handler slices (`X`).
    pub slices: u64,
    /// Flows (each an `s` and an `f`).
    pub flows: u64,
    /// Instants (`i`).
    pub instants: u64,
    /// Metadata events (`M`): process and thread names and sort orders.
    pub metadata: u64,
}

/// A Chrome trace being written.
pub struct ChromeTrace {
    out: std::io::BufWriter<std::fs::File>,
    /// The first write error, reported by `finish`.
    error: Option<std::io::Error>,
    /// The event being written (reused).
    text: String,
    /// Whether an event was written (every later one is preceded by a comma).
    started: bool,
    /// What ends the file: the array's end and the run's description (`otherData`).
    tail: String,
    names: Names,
    /// Type names per node, for slice arguments.
    types: Vec<Vec<&'static str>>,
    dispatch_cost_ns: u64,
    links: Links<Spot>,
    /// Per (node, shard): where its last slice ended, in nanoseconds.
    ends: BTreeMap<(u16, u8), u64>,
    counts: ChromeCounts,
}

impl core::fmt::Debug for ChromeTrace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChromeTrace").field("counts", &self.counts).finish_non_exhaustive()
    }
}

/// Process id of `node`.
fn pid(node: u16) -> u32 {
    u32::from(node) + 1
}

/// Thread id of `shard` of `node` (`ShardId::EXTERNAL` maps to the node's shard 0: a
/// process-scoped instant still names a thread).
fn tid(node: u16, shard: ShardId) -> u32 {
    let shard = if shard == ShardId::EXTERNAL { 0 } else { u32::from(shard.0) };
    pid(node) * TIDS_PER_PID + shard
}

/// Appends `ns` as microseconds with three decimals.
fn micros(text: &mut String, ns: u64) {
    // Writing to a String cannot fail.
    let _ = write!(text, "{}.{:03}", ns / 1_000, ns % 1_000);
}

/// The flow a delivery ends, by what it carries (none for a resume after `Yield`).
fn flow_name(id: MessageId, tag: Tag) -> Option<&'static str> {
    if id != MessageId::NONE {
        return Some("message");
    }
    match tag {
        Tag::TIMER => Some("timer"),
        Tag::IO => Some("io"),
        Tag::CALL_TIMEOUT => Some("call-failure"),
        Tag::SHUTDOWN => Some("shutdown"),
        _ => None,
    }
}

/// The category of a world event's instant.
fn world_category(event: &WorldEvent) -> &'static str {
    match event {
        WorldEvent::ShardRestart
        | WorldEvent::ShardQuarantine
        | WorldEvent::ShardRevive
        | WorldEvent::NodeRestart => "recovery",
        WorldEvent::Phase { .. }
        | WorldEvent::BuggifyActive { .. }
        | WorldEvent::Shutdown { .. } => "world",
        _ => "fault",
    }
}

/// The name and category of a core event's instant, for the kinds that have one.
fn core_instant(event: &Event) -> Option<(String, &'static str)> {
    Some(match *event {
        Event::Drop { reason, .. } => (format!("drop {}", reason.name()), "drop"),
        Event::Exit { kind, .. } if kind != ExitKind::Normal => {
            (format!("exit {}", kind.name()), "crash")
        }
        Event::Panic { .. } => ("panic".to_string(), "crash"),
        Event::SpawnFailed { reason, .. } => {
            (format!("spawn-failed {}", reason.name()), "supervision")
        }
        Event::Restart { .. } => ("restart".to_string(), "supervision"),
        Event::Rebuild { .. } => ("rebuild".to_string(), "supervision"),
        Event::Escalate { .. } => ("escalate".to_string(), "supervision"),
        Event::ShardFailed => ("shard-failed".to_string(), "supervision"),
        Event::CallEnd { outcome: CallOutcome::Failed(failure), .. } => {
            (format!("call-failed {}", failure.name()), "call")
        }
        Event::Log { tag, .. } => (tag.text().to_string(), "log"),
        Event::ShutdownBegin { .. } => ("shutdown-begin".to_string(), "shutdown"),
        Event::ShutdownDrained => ("shutdown-drained".to_string(), "shutdown"),
        Event::ShutdownForced { .. } => ("shutdown-forced".to_string(), "shutdown"),
        _ => return None,
    })
}

impl ChromeTrace {
    /// Creates the trace at `path` for a run of `nodes`, whose handler calls each cost
    /// `dispatch_cost_ns`; `about` goes to the trace's `otherData` (seed, scenario, ...).
    /// Writes the header and every process and thread name.
    pub fn create(
        path: &Path,
        nodes: &[SystemSpec],
        names: Names,
        dispatch_cost_ns: u64,
        about: &[(&str, String)],
    ) -> Result<ChromeTrace, String> {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let types = nodes
            .iter()
            .map(|spec| (0..spec.type_count()).filter_map(|at| spec.type_name(at)).collect())
            .collect();
        let mut trace = ChromeTrace {
            out: std::io::BufWriter::new(file),
            error: None,
            text: String::new(),
            started: false,
            tail: String::new(),
            names,
            types,
            dispatch_cost_ns,
            links: Links::default(),
            ends: BTreeMap::new(),
            counts: ChromeCounts::default(),
        };
        // `traceEvents` first: Perfetto's importer reads the object as a stream and, in
        // some versions, stops at a key it does not know. No `displayTimeUnit`: Perfetto
        // applies it to `ts` itself (the format says it only picks the display), so "ns"
        // would read these microseconds as nanoseconds.
        trace.put("{\"traceEvents\":[\n");
        let mut tail = String::from("\n],\"otherData\":{");
        for (at, (key, value)) in about.iter().enumerate() {
            if at > 0 {
                tail.push(',');
            }
            write_string(&mut tail, key);
            tail.push(':');
            write_string(&mut tail, value);
        }
        tail.push_str("}}\n");
        trace.tail = tail;
        for (node, spec) in nodes.iter().enumerate() {
            // At most 65,536 nodes: node ids are 16 bits in the trace.
            let node = node as u16;
            trace.metadata(node, None, "process_name", &format!("node {node}"));
            trace.sort_index(node, None, u64::from(node));
            for shard in 0..spec.shard_count() {
                // Validated: at most 255 shards.
                let shard = ShardId(shard as u8);
                trace.metadata(node, Some(shard), "thread_name", &format!("shard {}", shard.0));
                trace.sort_index(node, Some(shard), u64::from(shard.0));
            }
        }
        Ok(trace)
    }

    /// Takes the next event of the run.
    pub fn event(&mut self, stamp: &Stamp, event: &TraceEvent) {
        match event {
            TraceEvent::Core(Event::Deliver { id, to, tag }) => {
                let (start, spot) = self.next_slice(stamp);
                let cause = self.links.link(stamp, event, |_| Some(spot));
                self.slice(stamp, event, start, *to, *tag);
                if let (Some(from), Some(name)) = (cause, flow_name(*id, *tag)) {
                    self.flow(from, spot, name);
                }
            }
            TraceEvent::Core(core) => {
                self.links.link(stamp, event, |cause| cause);
                if let Some((name, category)) = core_instant(core) {
                    let ts_ns = match self.links.handler(stamp.node, stamp.shard) {
                        Some(spot) => spot.ts_ns,
                        None => stamp.time_ns,
                    };
                    self.instant(stamp, event, ts_ns, &name, category);
                }
            }
            TraceEvent::World(world) => {
                self.links.link(stamp, event, |cause| cause);
                let ts_ns = match world {
                    WorldEvent::Buggify { .. } => self.links.handler(stamp.node, stamp.shard),
                    _ => None,
                }
                .map_or(stamp.time_ns, |spot| spot.ts_ns);
                let name = world_kind(world).1;
                self.instant(stamp, event, ts_ns, name, world_category(world));
            }
        }
    }

    /// Writes the end of the trace and flushes it; returns what was written, or the first
    /// write error.
    pub fn finish(mut self) -> Result<ChromeCounts, std::io::Error> {
        let tail = core::mem::take(&mut self.tail);
        self.put(&tail);
        if let Some(error) = self.error {
            return Err(error);
        }
        self.out.flush()?;
        Ok(self.counts)
    }

    /// Where the slice of the delivery at `stamp` starts, and its middle; moves the shard's
    /// end past it.
    fn next_slice(&mut self, stamp: &Stamp) -> (u64, Spot) {
        let end = self.ends.entry((stamp.node, stamp.shard.0)).or_insert(0);
        let start = stamp.time_ns.max(*end);
        *end = start + self.dispatch_cost_ns;
        let spot =
            Spot { node: stamp.node, shard: stamp.shard, ts_ns: start + self.dispatch_cost_ns / 2 };
        (start, spot)
    }

    fn slice(&mut self, stamp: &Stamp, event: &TraceEvent, start: u64, to: tina::Handle, tag: Tag) {
        self.counts.slices += 1;
        let type_name = self
            .types
            .get(usize::from(stamp.node))
            .and_then(|types| types.get(usize::from(to.type_index())))
            .copied()
            .unwrap_or("?");
        let mut text = core::mem::take(&mut self.text);
        text.clear();
        self.separate(&mut text);
        text.push_str("{\"ph\":\"X\",\"cat\":\"handler\",\"name\":");
        write_string(&mut text, &self.names.tag(tag));
        self.place(&mut text, stamp.node, stamp.shard, start);
        text.push_str(",\"dur\":");
        micros(&mut text, self.dispatch_cost_ns);
        text.push_str(",\"args\":{\"isolate\":");
        write_string(&mut text, &format!("{type_name} {to}"));
        text.push_str(",\"event\":");
        write_string(&mut text, &format_line(stamp, event, &self.names));
        text.push_str("}}");
        self.put(&text);
        self.text = text;
    }

    /// Writes both ends of a flow from `from` to `to`.
    fn flow(&mut self, from: Spot, to: Spot, name: &str) {
        self.counts.flows += 1;
        let id = self.counts.flows;
        let mut text = core::mem::take(&mut self.text);
        text.clear();
        for (phase, spot) in [("s", from), ("f", to)] {
            self.separate(&mut text);
            let _ = write!(text, "{{\"ph\":\"{phase}\",\"id\":{id},\"cat\":\"flow\",\"name\":");
            write_string(&mut text, name);
            self.place(&mut text, spot.node, spot.shard, spot.ts_ns);
            if phase == "f" {
                text.push_str(",\"bp\":\"e\"");
            }
            text.push('}');
        }
        self.put(&text);
        self.text = text;
    }

    fn instant(
        &mut self,
        stamp: &Stamp,
        event: &TraceEvent,
        ts_ns: u64,
        name: &str,
        category: &str,
    ) {
        self.counts.instants += 1;
        let scope = match event {
            TraceEvent::World(WorldEvent::Phase { .. }) => "g",
            _ if stamp.shard == ShardId::EXTERNAL => "p",
            _ => "t",
        };
        let mut text = core::mem::take(&mut self.text);
        text.clear();
        self.separate(&mut text);
        let _ = write!(text, "{{\"ph\":\"i\",\"s\":\"{scope}\",\"cat\":\"{category}\",\"name\":");
        write_string(&mut text, name);
        self.place(&mut text, stamp.node, stamp.shard, ts_ns);
        text.push_str(",\"args\":{\"event\":");
        write_string(&mut text, &format_line(stamp, event, &self.names));
        text.push_str("}}");
        self.put(&text);
        self.text = text;
    }

    /// Appends `,"pid":..,"tid":..,"ts":..`.
    fn place(&self, text: &mut String, node: u16, shard: ShardId, ts_ns: u64) {
        let _ = write!(text, ",\"pid\":{},\"tid\":{},\"ts\":", pid(node), tid(node, shard));
        micros(text, ts_ns);
    }

    /// A process (`shard` `None`) or thread name.
    fn metadata(&mut self, node: u16, shard: Option<ShardId>, key: &str, name: &str) {
        self.counts.metadata += 1;
        let mut text = String::new();
        self.separate(&mut text);
        let tid = tid(node, shard.unwrap_or(ShardId(0)));
        let _ = write!(
            text,
            "{{\"ph\":\"M\",\"name\":\"{key}\",\"pid\":{},\"tid\":{tid},\"args\":{{\"name\":",
            pid(node)
        );
        write_string(&mut text, name);
        text.push_str("}}");
        self.put(&text);
    }

    /// A process's or thread's place in the viewer's order.
    fn sort_index(&mut self, node: u16, shard: Option<ShardId>, index: u64) {
        self.counts.metadata += 1;
        let key = if shard.is_some() { "thread_sort_index" } else { "process_sort_index" };
        let tid = tid(node, shard.unwrap_or(ShardId(0)));
        let mut text = String::new();
        self.separate(&mut text);
        let _ = write!(
            text,
            "{{\"ph\":\"M\",\"name\":\"{key}\",\"pid\":{},\"tid\":{tid},\"args\":{{\"sort_index\":{index}}}}}",
            pid(node)
        );
        self.put(&text);
    }

    /// Starts an event: a comma and a line break after the first.
    fn separate(&mut self, text: &mut String) {
        if self.started {
            text.push_str(",\n");
        }
        self.started = true;
    }

    /// Writes `text`, keeping the first error.
    fn put(&mut self, text: &str) {
        if self.error.is_none()
            && let Err(error) = self.out.write_all(text.as_bytes())
        {
            self.error = Some(error);
        }
    }
}
