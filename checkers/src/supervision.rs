//! Supervision: within any window of a group's `restart_window`, the group makes at most
//! `restart_max` restart decisions, and it escalates for intensity exactly when the next
//! decision would exceed that (not earlier). Windows are measured on the node's own clock
//! (the stamp's `local_ns`), as the core measures them.
//!
//! A decision is a restart whose old incarnation stopped by itself (not shut down by its
//! supervisor: those are the siblings restarted with it), or the rebuild of a nested group
//! that escalated. Per group, a window of decision times, O(1) amortised per event. It does not
//! check which siblings a strategy restarts (the runtime's supervision tests do).

use std::collections::VecDeque;

use tina::{Event, ExitKind, GroupConfig, Handle, SystemSpec};

use crate::layout::Layout;
use crate::site::Site;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "supervision";

/// The supervision checker.
#[derive(Debug, Default)]
pub struct Supervision {
    layout: Layout,
    state: State,
}

/// The checker's history, resolved through a layout it does not own.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Per slot: the last incarnation that stopped and how.
    exits: Vec<(Handle, ExitKind)>,
    /// Per shard, per group: recent decision times.
    windows: Vec<Vec<VecDeque<u64>>>,
    /// Per shard, per group: whether it escalated and awaits its parent's decision.
    failed: Vec<Vec<bool>>,
}

impl State {
    pub(crate) fn new(layout: &Layout) -> State {
        State {
            exits: vec![(Handle::NONE, ExitKind::Normal); layout.slot_total()],
            windows: layout
                .shards
                .iter()
                .map(|shape| vec![VecDeque::new(); shape.groups.len()])
                .collect(),
            failed: layout.shards.iter().map(|shape| vec![false; shape.groups.len()]).collect(),
        }
    }

    #[inline(always)]
    pub(crate) fn observe(
        &mut self,
        layout: &Layout,
        site: &Site,
        stamp: &Stamp,
        event: &Event,
    ) -> Verdict {
        match *event {
            Event::Exit { handle, kind, .. } => {
                if let Some(slot) = site.slot() {
                    self.exits[slot] = (handle, kind);
                }
            }
            Event::Rebuild { parent, group } => {
                // A rebuilt group starts with a fresh history; rebuilding a group that
                // escalated is its parent's decision, rebuilding a sibling is not.
                let Some(shard) = site.shard() else {
                    return Verdict::Continue;
                };
                if let Some(times) = self.windows[shard].get_mut(usize::from(group)) {
                    times.clear();
                }
                let failed = self.failed[shard].get_mut(usize::from(group)).map(core::mem::take);
                if failed == Some(true) {
                    return self.decision(layout, site, stamp, parent);
                }
            }
            Event::Restart { group, old, .. } => {
                let stopped_by_itself = site.slot().is_some_and(|slot| {
                    self.exits[slot].0 == old && self.exits[slot].1 != ExitKind::Shutdown
                });
                if stopped_by_itself {
                    return self.decision(layout, site, stamp, group);
                }
            }
            Event::Escalate { group, exceeded } => {
                if let Some(shard) = site.shard()
                    && let Some(failed) = self.failed[shard].get_mut(usize::from(group))
                {
                    *failed = true;
                }
                let Some((times, config)) = self.window(layout, site, stamp, group) else {
                    return Verdict::Continue;
                };
                let decisions = times.len();
                times.clear();
                if exceeded && (decisions as u64) < u64::from(config.restart_max) {
                    return violated(
                        NAME,
                        format!(
                            "group {group} on shard {} escalated after {decisions} restarts; its intensity allows {}",
                            stamp.shard, config.restart_max
                        ),
                    );
                }
            }
            _ => {}
        }
        Verdict::Continue
    }

    /// Forgets the slots and groups of `node`, which crashed.
    pub(crate) fn reset_node(&mut self, layout: &Layout, node: u16) {
        self.exits[layout.node_slots(node)].fill((Handle::NONE, ExitKind::Normal));
        for shard in layout.node_shards(node) {
            self.reset_shard(shard);
        }
    }

    /// Forgets the groups of dense shard `shard`, whose tree was rebuilt by a restart.
    pub(crate) fn reset_shard(&mut self, shard: usize) {
        for times in &mut self.windows[shard] {
            times.clear();
        }
        self.failed[shard].fill(false);
    }

    /// The group's window with decisions older than `restart_window` dropped.
    fn window(
        &mut self,
        layout: &Layout,
        site: &Site,
        stamp: &Stamp,
        group: u16,
    ) -> Option<(&mut VecDeque<u64>, GroupConfig)> {
        let shard = site.shard()?;
        let config = *layout.shards[shard].groups.get(usize::from(group))?;
        let window_ns = u64::try_from(config.restart_window.as_nanos()).unwrap_or(u64::MAX);
        let times = &mut self.windows[shard][usize::from(group)];
        while times.front().is_some_and(|&t| stamp.local_ns.saturating_sub(t) >= window_ns) {
            times.pop_front();
        }
        Some((times, config))
    }

    fn decision(&mut self, layout: &Layout, site: &Site, stamp: &Stamp, group: u16) -> Verdict {
        let Some((times, config)) = self.window(layout, site, stamp, group) else {
            return Verdict::Continue;
        };
        times.push_back(stamp.local_ns);
        if times.len() as u64 > u64::from(config.restart_max) {
            return violated(
                NAME,
                format!(
                    "group {group} on shard {} restarted {} times within {}ns; its intensity allows {}",
                    stamp.shard,
                    times.len(),
                    config.restart_window.as_nanos(),
                    config.restart_max
                ),
            );
        }
        Verdict::Continue
    }
}

impl Observer for Supervision {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
        self.state = State::new(&self.layout);
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        let site = Site::of(&self.layout, stamp, event);
        self.state.observe(&self.layout, &site, stamp, event)
    }
}
