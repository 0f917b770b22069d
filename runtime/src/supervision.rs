//! Supervision: the groups of one shard and the decisions taken when a child stops.
//!
//! Each shard holds its supervision tree from the spec: groups with a strategy
//! (`OneForOne`, `OneForAll`, `RestForOne`), a restart intensity over a sliding window on
//! the backend clock, static members (isolates and nested groups) and a bounded number of
//! dynamic children. When a supervised isolate stops, the scheduler calls `child_stopped`:
//! `Permanent` children always restart, `Transient` ones after a crash or failed `init`,
//! `Temporary` ones never (and are removed, also when a sibling's restart stops them). The
//! (MaxR+1)-th restart within MaxT escalates: the group stops all its children and fails as
//! a member of its parent; the root's escalation is a shard failure. While the shard shuts
//! down, no child is restarted and no group escalates (`isolate_stopped_during_shutdown`).
//!
//! This module decides; stopping and starting isolates goes through `Actions`, which the
//! scheduler implements with the core and the arenas.

use crate::backend::Timestamp;
use crate::footprint::array_bytes;
use crate::handle::Handle;
use crate::spec::{ArgsBytes, GroupConfig, MemberSpec, Restart, Strategy, SystemSpec};
use crate::trace::ExitKind;

/// The group index of an unsupervised isolate.
pub(crate) const NO_GROUP: u16 = u16::MAX;

/// A member of a group.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Member {
    /// An isolate and its current incarnation (`NONE` when not running).
    Isolate { type_index: u16, args: ArgsBytes, restart: Restart, handle: Handle },
    /// A nested group (always restarted like a permanent child).
    Group(u16),
}

impl Member {
    fn restart(&self) -> Restart {
        match self {
            Member::Isolate { restart, .. } => *restart,
            Member::Group(_) => Restart::Permanent,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Child {
    member: Member,
    dynamic: bool,
}

/// The times of recent restarts within a sliding window, oldest first: a ring of
/// `restart_max` entries allocated at construction. A supervision group's intensity and a
/// shard's restart budget (`crate::recovery`) both count with it.
#[derive(Debug)]
pub(crate) struct RestartHistory {
    times: Box<[u64]>,
    head: usize,
    len: usize,
}

impl RestartHistory {
    /// An empty history that allows `restart_max` restarts per window.
    pub(crate) fn new(restart_max: u32) -> RestartHistory {
        RestartHistory { times: vec![0; restart_max as usize].into_boxed_slice(), head: 0, len: 0 }
    }

    /// Forgets restarts at least `window_ns` before `now`, then records one at `now` unless
    /// that would make more than `restart_max` within the window: false then (the caller
    /// escalates, or quarantines).
    pub(crate) fn record(&mut self, now: u64, window_ns: u64) -> bool {
        let capacity = self.times.len();
        // Bounded by the ring's capacity. The clock is monotonic; saturating keeps a
        // backwards step from panicking (it only keeps old restarts a little longer).
        while self.len > 0 && now.saturating_sub(self.times[self.head]) >= window_ns {
            self.head = (self.head + 1) % capacity;
            self.len -= 1;
        }
        if self.len >= capacity {
            return false;
        }
        self.times[(self.head + self.len) % capacity] = now;
        self.len += 1;
        true
    }

    /// Forgets every restart.
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// One supervision group at run time.
#[derive(Debug)]
struct Group {
    config: GroupConfig,
    parent: Option<u16>,
    /// Members in start order; capacity `statics.len() + dynamic_children_max`, never more.
    children: Vec<Child>,
    /// The static members, to rebuild the group after it escalated.
    statics: Vec<Member>,
    /// Recent restarts, against `config.restart_max` and `config.restart_window`.
    restarts: RestartHistory,
    dynamic_count: u32,
}

impl Group {
    /// Forgets restarts older than the window, then records one at `now` unless that would
    /// exceed `restart_max` (the caller escalates then).
    fn record_restart(&mut self, now: u64) -> bool {
        let window = u64::try_from(self.config.restart_window.as_nanos()).unwrap_or(u64::MAX);
        self.restarts.record(now, window)
    }
}

/// Every group of one shard; the root is index 0.
#[derive(Debug)]
pub(crate) struct Groups {
    groups: Box<[Group]>,
}

impl Groups {
    /// The groups of `shard`'s tree, with static isolate members not yet started.
    pub(crate) fn new(spec: &SystemSpec, shard: usize) -> Groups {
        let tree = spec.trees.get(shard).map(Vec::as_slice).unwrap_or(&[]);
        let groups: Box<[Group]> = tree
            .iter()
            .map(|group| {
                let statics: Vec<Member> = group
                    .members
                    .iter()
                    .map(|member| match *member {
                        MemberSpec::Child(index) => {
                            let child = &spec.children[index];
                            Member::Isolate {
                                type_index: child.type_index,
                                args: child.args,
                                restart: child.restart,
                                handle: Handle::NONE,
                            }
                        }
                        MemberSpec::Group(index) => Member::Group(index),
                    })
                    .collect();
                let capacity = statics.len() + group.config.dynamic_children_max as usize;
                let mut children = Vec::with_capacity(capacity);
                children.extend(statics.iter().map(|&member| Child { member, dynamic: false }));
                Group {
                    config: group.config,
                    parent: group.parent,
                    children,
                    statics,
                    restarts: RestartHistory::new(group.config.restart_max),
                    dynamic_count: 0,
                }
            })
            .collect();
        Groups { groups }
    }

    /// Bytes `new(spec, shard)` allocates: each group, its restart history, its children
    /// (room for the static ones and every dynamic child it admits) and its static members.
    pub(crate) fn bytes_for(spec: &SystemSpec, shard: usize) -> u64 {
        let tree = spec.trees.get(shard).map(Vec::as_slice).unwrap_or(&[]);
        tree.iter().fold(array_bytes(tree.len() as u64, size_of::<Group>()), |bytes, group| {
            let statics = group.members.len() as u64;
            let children = statics.saturating_add(u64::from(group.config.dynamic_children_max));
            bytes
                .saturating_add(array_bytes(u64::from(group.config.restart_max), size_of::<u64>()))
                .saturating_add(array_bytes(children, size_of::<Child>()))
                .saturating_add(array_bytes(statics, size_of::<Member>()))
        })
    }

    /// Records that the static isolate member at `position` of `group` runs as `handle`
    /// (boot).
    pub(crate) fn set_static_handle(&mut self, group: u16, position: usize, handle: Handle) {
        if let Member::Isolate { handle: slot, .. } =
            &mut self.groups[group as usize].children[position].member
        {
            *slot = handle;
        }
    }

    /// Static members of `group` in start order: `Ok(position)` for isolates, `Err(group)`
    /// for nested groups (boot walks them depth first).
    pub(crate) fn static_members(
        &self,
        group: u16,
    ) -> impl Iterator<Item = Result<(usize, Handle), u16>> + '_ {
        self.groups[group as usize].children.iter().enumerate().map(|(position, child)| match child
            .member
        {
            Member::Isolate { handle, .. } => Ok((position, handle)),
            Member::Group(index) => Err(index),
        })
    }

    /// Whether the shard has a tree at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Checks that `group` may take one more dynamic child.
    pub(crate) fn dynamic_room(&self, group: u16) -> bool {
        let group = &self.groups[group as usize];
        group.dynamic_count < group.config.dynamic_children_max
    }

    /// Adds a dynamic isolate child to `group` (room checked by `dynamic_room`).
    pub(crate) fn add_dynamic(
        &mut self,
        group: u16,
        type_index: u16,
        args: ArgsBytes,
        restart: Restart,
        handle: Handle,
    ) {
        let group = &mut self.groups[group as usize];
        assert!(group.dynamic_count < group.config.dynamic_children_max);
        group.dynamic_count += 1;
        assert!(group.children.len() < group.children.capacity(), "group children preallocated");
        group.children.push(Child {
            member: Member::Isolate { type_index, args, restart, handle },
            dynamic: true,
        });
    }

    fn position_of(&self, group: u16, handle: Handle) -> Option<usize> {
        self.groups[group as usize].children.iter().position(
            |child| matches!(child.member, Member::Isolate { handle: h, .. } if h == handle),
        )
    }

    fn position_of_group(&self, parent: u16, group: u16) -> Option<usize> {
        self.groups[parent as usize]
            .children
            .iter()
            .position(|child| matches!(child.member, Member::Group(g) if g == group))
    }

    /// The member at `position` of `group` stopped and is not restarted: a dynamic or
    /// `Temporary` child is removed, a static one keeps its place with no incarnation.
    fn forget(&mut self, group: u16, position: usize) {
        let child = &mut self.groups[group as usize].children[position];
        if child.dynamic || child.member.restart() == Restart::Temporary {
            self.remove(group, position);
        } else if let Member::Isolate { handle, .. } = &mut child.member {
            *handle = Handle::NONE;
        }
    }

    fn remove(&mut self, group: u16, position: usize) {
        let group = &mut self.groups[group as usize];
        let child = group.children.remove(position);
        if child.dynamic {
            group.dynamic_count -= 1;
        }
    }
}

/// What supervision asks of the shard.
pub(crate) trait Actions {
    /// The groups.
    fn groups(&mut self) -> &mut Groups;
    /// The backend clock.
    fn now(&self) -> Timestamp;
    /// Stops a live isolate as `Shutdown` (no supervision follows).
    fn stop(&mut self, handle: Handle);
    /// Starts a new incarnation of a member of `group`; `None` if no slot was free.
    fn start(
        &mut self,
        group: u16,
        type_index: u16,
        args: &ArgsBytes,
        old: Handle,
    ) -> Option<Handle>;
    /// Records an escalation of `group` (`exceeded`: by intensity, not a failed start).
    fn escalated(&mut self, group: u16, exceeded: bool);
    /// Records a restart of nested `group` as a member of `parent`.
    fn group_restarted(&mut self, parent: u16, group: u16);
    /// The root escalated: the shard failed.
    fn shard_failed(&mut self);
}

/// A supervised isolate stopped (not by its supervisor): apply its group's policy.
pub(crate) fn isolate_stopped(
    actions: &mut impl Actions,
    group: u16,
    handle: Handle,
    kind: ExitKind,
) {
    debug_assert_ne!(kind, ExitKind::Shutdown);
    // A child removed or replaced meanwhile (it cannot be, decisions are immediate) is
    // simply not found.
    if let Some(position) = actions.groups().position_of(group, handle) {
        member_stopped(actions, group, position, kind);
    }
}

/// A supervised isolate stopped by itself while its shard shuts down: its group decides
/// nothing (no restart, whatever its restart type, and no escalation, whatever its
/// intensity: the drain must converge); the member is forgotten as one that is not
/// restarted. The `Exit` event and the counters already recorded how it stopped.
pub(crate) fn isolate_stopped_during_shutdown(groups: &mut Groups, group: u16, handle: Handle) {
    if let Some(position) = groups.position_of(group, handle) {
        groups.forget(group, position);
    }
}

/// The member at `position` of `group` stopped with `kind`. Recursion (through escalation to
/// the parent) is bounded by the tree's depth.
fn member_stopped(actions: &mut impl Actions, group: u16, position: usize, kind: ExitKind) {
    let groups = actions.groups();
    let member = groups.groups[group as usize].children[position].member;
    let restart = match member.restart() {
        Restart::Permanent => true,
        Restart::Transient => kind != ExitKind::Normal,
        Restart::Temporary => false,
    };
    if !restart {
        groups.forget(group, position);
        return;
    }
    let now = actions.now().as_nanos();
    if !actions.groups().groups[group as usize].record_restart(now) {
        escalate(actions, group, true);
        return;
    }
    let len = actions.groups().groups[group as usize].children.len();
    let range = match actions.groups().groups[group as usize].config.strategy {
        Strategy::OneForOne => position..position + 1,
        Strategy::OneForAll => 0..len,
        Strategy::RestForOne => position..len,
    };
    // Stop the siblings in the range, the last started first.
    for sibling in range.clone().rev() {
        if sibling != position {
            stop_member(actions, group, sibling);
        }
    }
    // Start the range again in order; temporary siblings stopped above are removed.
    let (mut index, mut end) = (range.start, range.end);
    while index < end {
        let child = actions.groups().groups[group as usize].children[index];
        if index != position && child.member.restart() == Restart::Temporary {
            actions.groups().remove(group, index);
            end -= 1;
            continue;
        }
        if !start_member(actions, group, index) {
            escalate(actions, group, false);
            return;
        }
        index += 1;
    }
}

/// Stops a member: an isolate, or every child of a nested group (last started first).
fn stop_member(actions: &mut impl Actions, group: u16, position: usize) {
    match actions.groups().groups[group as usize].children[position].member {
        Member::Isolate { handle, .. } => {
            if !handle.is_none() {
                actions.stop(handle);
            }
        }
        Member::Group(nested) => stop_all(actions, nested),
    }
}

/// Stops every child of `group`, last started first, and forgets its dynamic children.
fn stop_all(actions: &mut impl Actions, group: u16) {
    let len = actions.groups().groups[group as usize].children.len();
    for position in (0..len).rev() {
        stop_member(actions, group, position);
    }
    let groups = actions.groups();
    let target = &mut groups.groups[group as usize];
    target.children.retain(|child| !child.dynamic);
    target.dynamic_count = 0;
    for child in &mut target.children {
        if let Member::Isolate { handle, .. } = &mut child.member {
            *handle = Handle::NONE;
        }
    }
}

/// Starts a member again: a new incarnation of an isolate, or a nested group rebuilt from
/// its static members with a fresh restart history. `false` if an isolate found no slot.
fn start_member(actions: &mut impl Actions, group: u16, position: usize) -> bool {
    match actions.groups().groups[group as usize].children[position].member {
        Member::Isolate { type_index, args, handle: old, .. } => {
            let Some(new) = actions.start(group, type_index, &args, old) else { return false };
            if let Member::Isolate { handle, .. } =
                &mut actions.groups().groups[group as usize].children[position].member
            {
                *handle = new;
            }
            true
        }
        Member::Group(nested) => {
            actions.group_restarted(group, nested);
            rebuild(actions, nested)
        }
    }
}

/// Rebuilds `group` from its static members (dynamic children are gone) and starts them.
/// On a start failure it stops what it started and returns `false`, so the caller's group
/// escalates (no decision re-enters a group in the middle of its own restart).
fn rebuild(actions: &mut impl Actions, group: u16) -> bool {
    let target = &mut actions.groups().groups[group as usize];
    target.restarts.clear();
    target.children.clear();
    target.dynamic_count = 0;
    // Pushing into the preallocated children never allocates.
    for index in 0..target.statics.len() {
        let member = target.statics[index];
        target.children.push(Child { member, dynamic: false });
    }
    let len = actions.groups().groups[group as usize].children.len();
    for position in 0..len {
        if !start_member(actions, group, position) {
            stop_all(actions, group);
            return false;
        }
    }
    true
}

/// `group` exceeded its intensity or could not restart: stop its children and fail as a
/// member of the parent, or fail the shard at the root.
fn escalate(actions: &mut impl Actions, group: u16, exceeded: bool) {
    actions.escalated(group, exceeded);
    stop_all(actions, group);
    match actions.groups().groups[group as usize].parent {
        Some(parent) => {
            if let Some(position) = actions.groups().position_of_group(parent, group) {
                member_stopped(actions, parent, position, ExitKind::Crashed);
            }
        }
        None => actions.shard_failed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn group(restart_max: u32, window_ns: u64) -> Group {
        Group {
            config: GroupConfig::new(Strategy::OneForOne)
                .intensity(restart_max, Duration::from_nanos(window_ns)),
            parent: None,
            children: Vec::new(),
            statics: Vec::new(),
            restarts: RestartHistory::new(restart_max),
            dynamic_count: 0,
        }
    }

    /// The window slides: the (MaxR+1)-th restart within MaxT is refused, and restarts
    /// older than MaxT stop counting one by one, not all at once.
    #[test]
    fn sliding_window() {
        let mut g = group(3, 100);
        assert!(g.record_restart(0));
        assert!(g.record_restart(10));
        assert!(g.record_restart(50));
        assert!(!g.record_restart(99), "the fourth restart within 100ns");
        assert!(g.record_restart(100), "the restart at 0 left the window");
        assert!(!g.record_restart(105), "10, 50 and 100 are still inside");
        assert!(g.record_restart(110));
        let mut zero = group(0, 100);
        assert!(!zero.record_restart(0), "MaxR = 0 escalates on the first restart");
    }
}
