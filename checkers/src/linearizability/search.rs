//! The Wing–Gong–Lowe search over one partition: is there an order of these operations,
//! each placed between its invocation and its response, that the model accepts?
//!
//! Lowe's refinement of Wing and Gong's algorithm: the operations' calls and returns are
//! one doubly linked list in time order. The search walks it from the front; at a call it
//! tries to linearize that operation now (the model must give its recorded output), and if
//! that leads to a configuration not seen before it lifts the call and its return out of
//! the list, pushes what it needs to undo that, and starts again from the front. Reaching
//! a return means its operation should have been linearized already: the search undoes
//! the last choice and tries the next call after it. Configurations already entered are
//! skipped (see `visited`): they failed, or the search would have ended. Each walk makes
//! two passes up to the first return: completed operations first, then those without an
//! output to match, which are kept in a chain of their own.
//!
//! This module answers one question about one set of operations within a step budget; it
//! does not partition a history or explain a failure.

use core::mem;

use super::history::Operation;
use super::model::Model;
use super::visited::{Bits, Visited};

/// How the search treats one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Takes effect once, between its invocation and its response, giving its output.
    Completed,
    /// No response: takes effect once at any time after its invocation, or never.
    NoResponse,
    /// Takes effect any number of times after its invocation, or never, and its output is
    /// ignored: looser than `NoResponse`, so that shrinking can set an operation's response
    /// aside without the search remembering which of them were used.
    Free,
}

/// One operation of the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Member {
    /// Its position in the history.
    pub(super) index: usize,
    pub(super) role: Role,
}

/// What a search found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Found {
    Linearizable,
    NotLinearizable,
    /// The step budget ran out first.
    Inconclusive,
}

/// What a search found, and how many steps it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Searched {
    pub(super) found: Found,
    pub(super) steps: u64,
}

/// Operations one partition may hold: entry and bit indices are `u32`, with one value kept
/// for `NIL`, and each operation has two entries.
pub(super) const PARTITION_OPERATIONS_MAX: usize = (u32::MAX / 4) as usize;

/// No entry (the end of a chain), or no bit (a free operation).
const NIL: u32 = u32::MAX;
/// The first entry of the chain of completed calls and all returns; no call or return.
const HEAD: u32 = 0;
/// The first entry of the chain of loose calls (members without a return); no call.
const LOOSE_HEAD: u32 = 1;
/// Entries before the first call or return.
const HEAD_COUNT: u32 = 2;

/// A call or a return in the list.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The member it belongs to.
    member: u32,
    /// For a call, its return's entry (`NIL` if it has none); for a return, `NIL`.
    ret: u32,
    call: bool,
    prev: u32,
    next: u32,
}

/// The calls and returns not yet linearized, in time order, as two chains: completed
/// calls with every return, and loose calls (no response, or free), which have no return.
/// Entries are numbered in time order across both, so comparing two numbers says which
/// came first. Keeping loose calls apart spares the walk from stepping over the ones that
/// never take effect: they stay in the list to the end.
#[derive(Debug)]
struct List {
    entries: Vec<Entry>,
}

impl List {
    /// The list of `members`. At equal times calls come before returns: operations that
    /// touch at an instant count as concurrent.
    fn new<I, O>(operations: &[Operation<I, O>], members: &[Member]) -> List {
        let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(members.len() * 2);
        for (position, member) in members.iter().enumerate() {
            let operation = &operations[member.index];
            events.push((operation.invoke_ns, false, position as u32));
            if let (Role::Completed, Some(response)) = (member.role, &operation.response) {
                events.push((response.complete_ns, true, position as u32));
            }
        }
        events.sort_unstable();
        let head = Entry { member: NIL, ret: NIL, call: false, prev: NIL, next: NIL };
        let mut entries = vec![head; HEAD_COUNT as usize];
        entries.reserve(events.len());
        // Per chain, its last entry so far.
        let mut last = [HEAD, LOOSE_HEAD];
        let mut call_entry = vec![NIL; members.len()];
        for (&(_, is_return, member), entry) in events.iter().zip(HEAD_COUNT..) {
            let chain = usize::from(!is_return && members[member as usize].role != Role::Completed);
            let prev = last[chain];
            entries.push(Entry { member, ret: NIL, call: !is_return, prev, next: NIL });
            entries[prev as usize].next = entry;
            last[chain] = entry;
            if is_return {
                let call = call_entry[member as usize];
                assert_ne!(call, NIL, "a return before its call");
                entries[call as usize].ret = entry;
            } else {
                call_entry[member as usize] = entry;
            }
        }
        List { entries }
    }

    /// The first entry of the chain starting at `head`.
    fn first(&self, head: u32) -> u32 {
        self.entries[head as usize].next
    }

    fn unlink(&mut self, entry: u32) {
        let Entry { prev, next, .. } = self.entries[entry as usize];
        self.entries[prev as usize].next = next;
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }

    /// Puts back an entry taken out by `unlink`, whose own links were left as they were.
    fn relink(&mut self, entry: u32) {
        let Entry { prev, next, .. } = self.entries[entry as usize];
        self.entries[prev as usize].next = entry;
        if next != NIL {
            self.entries[next as usize].prev = entry;
        }
    }

    /// Takes a call and its return out of the list.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let ret = self.entries[call as usize].ret;
        if ret != NIL {
            self.unlink(ret);
        }
    }

    /// Undoes the latest `lift`, which was of `call`.
    fn unlift(&mut self, call: u32) {
        let ret = self.entries[call as usize].ret;
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// What undoing one linearization takes.
#[derive(Debug)]
struct Frame<S> {
    /// The call linearized.
    entry: u32,
    /// The walk's barrier then, if it was in its loose pass.
    barrier: u32,
    /// The state before it.
    state: S,
}

/// The search in progress.
struct Search<'a, M: Model> {
    model: &'a M,
    operations: &'a [Operation<M::Input, M::Output>],
    members: &'a [Member],
    /// Per member, its bit in `completed` or `loose` (by its role), or `NIL` for a free
    /// member.
    bit: Vec<u32>,
    list: List,
    completed: Bits,
    loose: Bits,
    visited: Visited<M::State>,
    stack: Vec<Frame<M::State>>,
    state: M::State,
    /// Completed members not linearized: the search succeeds when none is left.
    completed_left: usize,
    /// The entry the walk visits next.
    entry: u32,
    /// `NIL` while the walk is in its first pass, over the completed calls up to the first
    /// return; then that return, while it tries the loose calls before it. Trying loose
    /// calls last places them only when nothing else will do: linearizing every write
    /// without a response as soon as it is invoked sends the search down long wrong paths.
    barrier: u32,
}

/// Searches for a linearization of `members` (sorted by invocation) within `steps_max`
/// steps, a step being a visit to one entry of the list.
pub(super) fn search<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
    members: &[Member],
    steps_max: u64,
) -> Searched {
    if members.len() > PARTITION_OPERATIONS_MAX {
        return Searched { found: Found::Inconclusive, steps: 0 };
    }
    debug_assert!(members.is_sorted_by_key(|member| operations[member.index].invoke_ns));
    let mut search = Search::new(model, operations, members);
    let mut steps = 0;
    while steps < steps_max {
        if search.completed_left == 0 {
            return Searched { found: Found::Linearizable, steps };
        }
        steps += 1;
        if !search.visit() {
            return Searched { found: Found::NotLinearizable, steps };
        }
    }
    let found = if search.completed_left == 0 { Found::Linearizable } else { Found::Inconclusive };
    Searched { found, steps }
}

impl<'a, M: Model> Search<'a, M> {
    fn new(
        model: &'a M,
        operations: &'a [Operation<M::Input, M::Output>],
        members: &'a [Member],
    ) -> Self {
        let mut bit = vec![NIL; members.len()];
        let (mut completed_count, mut loose_count) = (0u32, 0u32);
        for (member, bit) in members.iter().zip(&mut bit) {
            let count = match member.role {
                Role::Completed => &mut completed_count,
                Role::NoResponse => &mut loose_count,
                Role::Free => continue,
            };
            *bit = *count;
            *count += 1;
        }
        let completed = Bits::new(completed_count as usize);
        let loose = Bits::new(loose_count as usize);
        let state = model.init();
        let mut visited = Visited::new(loose.words().len());
        visited.insert(&completed, &loose, &state);
        let list = List::new(operations, members);
        let entry = list.first(HEAD);
        Search {
            model,
            operations,
            members,
            bit,
            list,
            completed,
            loose,
            visited,
            stack: Vec::new(),
            state,
            completed_left: completed_count as usize,
            entry,
            barrier: NIL,
        }
    }

    /// Visits one entry of the walk; false if the search is over, not linearizable.
    fn visit(&mut self) -> bool {
        if self.barrier != NIL {
            // The loose pass: loose calls made before the barrier.
            if self.entry == NIL || self.entry > self.barrier {
                return self.backtrack();
            }
            self.try_call(self.entry);
            return true;
        }
        // A completed member is left, so its return is in the chain ahead of the walk.
        assert_ne!(self.entry, NIL, "the walk passed every return");
        if self.list.entries[self.entry as usize].call {
            self.try_call(self.entry);
            true
        } else if self.list.first(LOOSE_HEAD) != NIL {
            self.barrier = self.entry;
            self.entry = self.list.first(LOOSE_HEAD);
            true
        } else {
            self.backtrack()
        }
    }

    /// Tries to linearize the call at `entry` now, and moves the walk on.
    fn try_call(&mut self, entry: u32) {
        let Entry { member: position, next, .. } = self.list.entries[entry as usize];
        let member = self.members[position as usize];
        let operation = &self.operations[member.index];
        let (state, output) = self.model.step(&self.state, &operation.input);
        let accepted = match member.role {
            Role::Completed => operation.response.as_ref().is_some_and(|r| r.output == output),
            // Without an output to match, an operation that changes nothing is never worth
            // linearizing: leaving it out reaches the same states with more choices left.
            Role::NoResponse | Role::Free => state != self.state,
        };
        if !accepted || !self.enter(position, &state) {
            self.entry = next;
            return;
        }
        let before = mem::replace(&mut self.state, state);
        self.stack.push(Frame { entry, barrier: self.barrier, state: before });
        if member.role != Role::Free {
            self.list.lift(entry);
        }
        if member.role == Role::Completed {
            self.completed_left -= 1;
        }
        self.entry = self.list.first(HEAD);
        self.barrier = NIL;
    }

    /// Linearizes the member at `position` into `state` if that configuration is new.
    fn enter(&mut self, position: u32, state: &M::State) -> bool {
        let bit = self.bit[position as usize];
        let role = self.members[position as usize].role;
        if role == Role::Free {
            return self.visited.insert(&self.completed, &self.loose, state);
        }
        self.bits_of(role).set(bit);
        let entered = self.visited.insert(&self.completed, &self.loose, state);
        if !entered {
            self.bits_of(role).clear(bit);
        }
        entered
    }

    /// The bits of members in `role`.
    fn bits_of(&mut self, role: Role) -> &mut Bits {
        if role == Role::Completed { &mut self.completed } else { &mut self.loose }
    }

    /// Undoes the latest linearization and resumes the walk after it; false if there was
    /// nothing to undo.
    fn backtrack(&mut self) -> bool {
        let Some(Frame { entry, barrier, state }) = self.stack.pop() else {
            return false;
        };
        let position = self.list.entries[entry as usize].member;
        let role = self.members[position as usize].role;
        if role != Role::Free {
            self.list.unlift(entry);
            let bit = self.bit[position as usize];
            self.bits_of(role).clear(bit);
        }
        if role == Role::Completed {
            self.completed_left += 1;
        }
        self.state = state;
        self.entry = self.list.entries[entry as usize].next;
        self.barrier = barrier;
        true
    }
}
