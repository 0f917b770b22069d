//! Timers: a timer never fires before its deadline, fires at most once, and never fires
//! after it was cancelled. Deadlines are on the node's own clock, so they are judged against
//! the stamp's `local_ns`, never true time.
//!
//! O(1) per event: per shard, timer state by pool index (timer ids carry the pool index
//! and a generation). It does not check that timers fire at all (a timer that never fires
//! leaves its isolate waiting, which the run's goal notices).

use tina::{Event, SystemSpec, TimerId};

use crate::layout::Layout;
use crate::site::Site;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "timers";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Unknown,
    Pending,
    Fired,
    Cancelled,
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    generation: u32,
    deadline_ns: u64,
    phase: Phase,
}

/// The timer checker.
#[derive(Debug, Default)]
pub struct Timers {
    layout: Layout,
    state: State,
}

/// The checker's history, resolved through a layout it does not own.
#[derive(Debug, Default)]
pub(crate) struct State {
    shards: Vec<Vec<Entry>>,
}

impl State {
    pub(crate) fn new(layout: &Layout) -> State {
        let shards = layout
            .shards
            .iter()
            .map(|shape| vec![Entry::default(); shape.timer_pool as usize])
            .collect();
        State { shards }
    }

    #[inline(always)]
    pub(crate) fn observe(&mut self, site: &Site, stamp: &Stamp, event: &Event) -> Verdict {
        let (timer, owner) = match *event {
            Event::TimerSet { timer, deadline_ns, .. } => {
                if let Some(entry) = self.entry(site, timer) {
                    // Generations are the low 32 bits of the raw id.
                    *entry = Entry {
                        generation: timer.to_raw() as u32,
                        deadline_ns,
                        phase: Phase::Pending,
                    };
                }
                return Verdict::Continue;
            }
            Event::TimerFire { timer, owner } | Event::TimerCancel { timer, owner } => {
                (timer, owner)
            }
            _ => return Verdict::Continue,
        };
        let fire = matches!(event, Event::TimerFire { .. });
        let now = stamp.local_ns;
        let Some(entry) = self.entry(site, timer) else { return Verdict::Continue };
        if entry.generation != timer.to_raw() as u32 || entry.phase == Phase::Unknown {
            return violated(NAME, format!("{timer} of {owner} was never set"));
        }
        match (fire, entry.phase) {
            (true, Phase::Pending) if now < entry.deadline_ns => violated(
                NAME,
                format!(
                    "{timer} of {owner} fired at {now}ns, before its deadline {}ns",
                    entry.deadline_ns
                ),
            ),
            (true, Phase::Pending) => {
                entry.phase = Phase::Fired;
                Verdict::Continue
            }
            (true, Phase::Fired) => violated(NAME, format!("{timer} of {owner} fired twice")),
            (true, _) => violated(NAME, format!("{timer} of {owner} fired after it was cancelled")),
            (false, Phase::Pending | Phase::Fired) => {
                entry.phase = Phase::Cancelled;
                Verdict::Continue
            }
            (false, _) => violated(NAME, format!("{timer} of {owner} was cancelled twice")),
        }
    }

    /// Forgets the timers of `node`, which crashed.
    pub(crate) fn reset_node(&mut self, layout: &Layout, node: u16) {
        for entries in &mut self.shards[layout.node_shards(node)] {
            entries.fill(Entry::default());
        }
    }

    fn entry(&mut self, site: &Site, timer: TimerId) -> Option<&mut Entry> {
        let index = (timer.to_raw() >> 32) as usize;
        let entries = &mut self.shards[site.shard()?];
        if index >= entries.len() {
            entries.resize(index + 1, Entry::default());
        }
        Some(&mut entries[index])
    }
}

impl Observer for Timers {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
        self.state = State::new(&self.layout);
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        let site = Site::of(&self.layout, stamp, event);
        self.state.observe(&site, stamp, event)
    }
}
