//! Pools conserve their slots: the envelopes queued, the timers pending and the isolates
//! alive, counted from the trace, never exceed their pools and at the end equal what the
//! shards report (free + used = total); at quiescence no envelope is still queued.
//!
//! O(1) per event with per-shard and per-type counters. It does not check which message
//! or timer is which (see `accounting` and `timers`).

use tina::{DropReason, Event, MessageId, SystemSpec, Tag};

use crate::layout::Layout;
use crate::site::Site;
use crate::{EndView, Observer, Stamp, Verdict, violated};

const NAME: &str = "pools";

#[derive(Clone, Debug, Default)]
struct Counts {
    envelopes: u64,
    timers: u64,
    live: Vec<u64>,
    /// The shard's envelope pool, from its shape (kept here to spare a lookup per event).
    pool_size: u32,
    /// The shard's timer pool, likewise.
    timer_pool: u32,
}

/// The pool conservation checker.
#[derive(Debug, Default)]
pub struct Pools {
    layout: Layout,
    state: State,
}

/// The checker's history, resolved through a layout it does not own.
#[derive(Debug, Default)]
pub(crate) struct State {
    shards: Vec<Counts>,
}

impl State {
    pub(crate) fn new(layout: &Layout) -> State {
        let shards = layout
            .shards
            .iter()
            .map(|shape| Counts {
                envelopes: 0,
                timers: 0,
                live: vec![0; shape.slot_counts.len()],
                pool_size: shape.pool_size,
                timer_pool: shape.timer_pool,
            })
            .collect();
        State { shards }
    }

    #[inline(always)]
    pub(crate) fn observe(&mut self, site: &Site, stamp: &Stamp, event: &Event) -> Verdict {
        let Some(index) = site.shard() else {
            return Verdict::Continue;
        };
        let counts = &mut self.shards[index];
        match *event {
            Event::Enqueue { .. } => {
                counts.envelopes += 1;
                if counts.envelopes > u64::from(counts.pool_size) {
                    return violated(
                        NAME,
                        format!("shard {} queues more envelopes than its pool has", stamp.shard),
                    );
                }
            }
            Event::Deliver { id, tag, .. } => {
                if id != MessageId::NONE {
                    counts.envelopes = counts.envelopes.saturating_sub(1);
                } else if tag == Tag::TIMER {
                    counts.timers = counts.timers.saturating_sub(1);
                }
            }
            Event::Drop { reason: DropReason::TargetExited, .. } => {
                counts.envelopes = counts.envelopes.saturating_sub(1)
            }
            Event::TimerSet { .. } => {
                counts.timers += 1;
                if counts.timers > u64::from(counts.timer_pool) {
                    return violated(
                        NAME,
                        format!("shard {} has more timers pending than its pool has", stamp.shard),
                    );
                }
            }
            Event::TimerCancel { .. } => counts.timers = counts.timers.saturating_sub(1),
            Event::Spawn { child, .. } => {
                if let Some(live) = counts.live.get_mut(usize::from(child.type_index())) {
                    *live += 1;
                }
            }
            Event::Exit { handle, .. } => {
                if let Some(live) = counts.live.get_mut(usize::from(handle.type_index())) {
                    *live = live.saturating_sub(1);
                }
            }
            _ => {}
        }
        Verdict::Continue
    }

    /// Forgets the counts of `node`, which crashed: its shards boot again with full pools.
    pub(crate) fn reset_node(&mut self, layout: &Layout, node: u16) {
        for counts in &mut self.shards[layout.node_shards(node)] {
            counts.envelopes = 0;
            counts.timers = 0;
            counts.live.fill(0);
        }
    }

    pub(crate) fn finish(&self, layout: &Layout, view: &EndView) -> Verdict {
        for shard in &view.shards {
            let Some(index) = layout.shard_index(shard.node, shard.shard) else { continue };
            let (counts, shape) = (&self.shards[index], &layout.shards[index]);
            let used = u64::from(shape.pool_size - shard.pool_free);
            if used != counts.envelopes {
                return violated(
                    NAME,
                    format!(
                        "shard {}: {used} envelopes in use, the trace accounts for {}",
                        shard.shard, counts.envelopes
                    ),
                );
            }
            if view.quiescent && used != 0 {
                return violated(
                    NAME,
                    format!("shard {}: {used} envelopes still queued at quiescence", shard.shard),
                );
            }
            let pending = u64::from(shape.timer_pool - shard.timers_free);
            if pending != counts.timers {
                return violated(
                    NAME,
                    format!(
                        "shard {}: {pending} timers pending, the trace accounts for {}",
                        shard.shard, counts.timers
                    ),
                );
            }
            for (type_index, (&live, &traced)) in shard.live.iter().zip(&counts.live).enumerate() {
                if live as u64 != traced {
                    return violated(
                        NAME,
                        format!(
                            "shard {} type {type_index}: {live} slots in use, the trace accounts for {traced} (a slot never freed?)",
                            shard.shard
                        ),
                    );
                }
            }
        }
        Verdict::Continue
    }
}

impl Observer for Pools {
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

    fn finish(&mut self, view: &EndView) -> Verdict {
        self.state.finish(&self.layout, view)
    }
}
