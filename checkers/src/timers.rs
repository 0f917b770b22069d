//! Timers: a timer never fires before its deadline, fires at most once, and never fires
//! after it was cancelled.
//!
//! O(1) per event: per shard, timer state by pool index (timer ids carry the pool index
//! and a generation). It does not check that timers fire at all (a timer that never fires
//! leaves its isolate waiting, which the run's goal notices).

use tina::{Event, SystemSpec, TimerId};

use crate::layout::Layout;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "timers";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
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
    state: State,
}

/// The timer checker.
#[derive(Debug, Default)]
pub struct Timers {
    layout: Layout,
    shards: Vec<Vec<Entry>>,
}

impl Timers {
    fn entry(&mut self, stamp: &Stamp, timer: TimerId) -> Option<&mut Entry> {
        let shard = self.layout.shard_index(stamp.node, stamp.shard)?;
        let index = (timer.to_raw() >> 32) as usize;
        let entries = &mut self.shards[shard];
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
        self.shards = self
            .layout
            .shards
            .iter()
            .map(|shape| vec![Entry::default(); shape.timer_pool as usize])
            .collect();
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        let (timer, owner) = match *event {
            Event::TimerSet { timer, deadline_ns, .. } => {
                if let Some(entry) = self.entry(stamp, timer) {
                    // Generations are the low 32 bits of the raw id.
                    *entry = Entry {
                        generation: timer.to_raw() as u32,
                        deadline_ns,
                        state: State::Pending,
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
        let now = stamp.time_ns;
        let Some(entry) = self.entry(stamp, timer) else { return Verdict::Continue };
        if entry.generation != timer.to_raw() as u32 || entry.state == State::Unknown {
            return violated(NAME, format!("{timer} of {owner} was never set"));
        }
        match (fire, entry.state) {
            (true, State::Pending) if now < entry.deadline_ns => violated(
                NAME,
                format!(
                    "{timer} of {owner} fired at {now}ns, before its deadline {}ns",
                    entry.deadline_ns
                ),
            ),
            (true, State::Pending) => {
                entry.state = State::Fired;
                Verdict::Continue
            }
            (true, State::Fired) => violated(NAME, format!("{timer} of {owner} fired twice")),
            (true, _) => violated(NAME, format!("{timer} of {owner} fired after it was cancelled")),
            (false, State::Pending | State::Fired) => {
                entry.state = State::Cancelled;
                Verdict::Continue
            }
            (false, _) => violated(NAME, format!("{timer} of {owner} was cancelled twice")),
        }
    }
}
