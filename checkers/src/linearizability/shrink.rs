//! Shrinking a non-linearizable partition to the few responses that contradict the model.
//!
//! Shrinking never deletes an operation to test whether the rest still fails: deleting a
//! write can make a read that it explained look wrong, and the report would then blame a
//! read for a bug the history does not show. It sets responses aside instead: an operation
//! whose response is set aside becomes free, allowed to take effect any number of times
//! after its invocation, or never. That only ever adds ways to linearize, so whatever
//! still fails with some operations free fails with them as no-response operations (at
//! most once), fails in the real history, and fails with the free operations deleted
//! (deleting takes ways away). Free rather than no-response keeps trials cheap: the
//! search need not remember which free operations it used.
//!
//! Two phases: a binary search for the shortest prefix in time that fails (operations
//! invoked at or after the cut are deleted, which no prefix of a linearization needs, and
//! those that completed at or after it are free), then delta debugging over the completed
//! operations, freeing them by halves, quarters and so on down to one at a time, until
//! freeing any single one makes the rest linearizable. Operations that had no response
//! stay as they are. Last, 1-minimality is confirmed in the terms the report uses: with
//! every other operation of the prefix as no-response, making any one kept operation
//! no-response too makes it linearizable. Every trial is a budgeted search; this module
//! does not decide what a budget is.

use super::history::Operation;
use super::model::Model;
use super::search::{Found, Member, Role, search};

/// What shrinking kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Shrunk {
    /// The members that keep their responses, in invocation order; not linearizable alone.
    pub(super) kept: Vec<Member>,
    /// Whether making any single kept member no-response, with every other member too, was
    /// shown to make the partition linearizable.
    pub(super) minimal: bool,
    /// Search steps spent, over every trial.
    pub(super) steps: u64,
}

/// Trials under one budget.
struct Trials<'a, M: Model> {
    model: &'a M,
    operations: &'a [Operation<M::Input, M::Output>],
    /// Steps one trial may take.
    trial_steps_max: u64,
    /// Steps left for all trials.
    steps_left: u64,
    steps: u64,
}

impl<M: Model> Trials<'_, M> {
    /// Whether `members` fail: `None` if a budget ran out first.
    fn fails(&mut self, members: &[Member]) -> Option<bool> {
        if self.steps_left == 0 {
            return None;
        }
        let steps_max = self.trial_steps_max.min(self.steps_left);
        let searched = search(self.model, self.operations, members, steps_max);
        self.steps_left -= searched.steps;
        self.steps += searched.steps;
        match searched.found {
            Found::NotLinearizable => Some(true),
            Found::Linearizable => Some(false),
            Found::Inconclusive => None,
        }
    }
}

/// Shrinks `members` (a partition found not linearizable, sorted by invocation) within
/// `steps_max` steps over all trials, each trial within `trial_steps_max`.
pub(super) fn shrink<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
    members: &[Member],
    trial_steps_max: u64,
    steps_max: u64,
) -> Shrunk {
    let mut trials = Trials { model, operations, trial_steps_max, steps_left: steps_max, steps: 0 };
    let prefix = shortest_failing_prefix(&mut trials, members);
    let (candidate, definitive) = free_responses(&mut trials, prefix);
    let minimal = definitive && each_needed(&mut trials, &candidate);
    let kept: Vec<Member> = candidate.into_iter().filter(|m| m.role == Role::Completed).collect();
    // Deleting the free members only takes ways away, so the kept ones fail alone; this
    // confirms it, outside the shrinking budget, before the report claims it.
    let confirm = search(model, operations, &kept, trial_steps_max);
    let steps = trials.steps + confirm.steps;
    if confirm.found != Found::NotLinearizable {
        return Shrunk { kept: members.to_vec(), minimal: false, steps };
    }
    Shrunk { kept, minimal, steps }
}

/// The members invoked before the `cut`-th one's invocation, those completed at or after
/// it free; every member if `cut` is past the end.
fn prefix<I, O>(operations: &[Operation<I, O>], members: &[Member], cut: usize) -> Vec<Member> {
    let Some(at) = members.get(cut) else {
        return members.to_vec();
    };
    let cut_ns = operations[at.index].invoke_ns;
    let invoked = members.iter().take_while(|m| operations[m.index].invoke_ns < cut_ns);
    invoked
        .map(|&member| {
            let late =
                operations[member.index].response.as_ref().is_some_and(|r| r.complete_ns >= cut_ns);
            if member.role == Role::Completed && late {
                Member { role: Role::Free, ..member }
            } else {
                member
            }
        })
        .collect()
}

/// The shortest prefix (by binary search over cuts) that still fails.
fn shortest_failing_prefix<M: Model>(
    trials: &mut Trials<'_, M>,
    members: &[Member],
) -> Vec<Member> {
    // Invariant: the prefix at `failing` fails (every member does); the one at `passing`
    // was not shown to.
    let (mut passing, mut failing) = (0, members.len());
    while failing - passing > 1 {
        let cut = passing + (failing - passing) / 2;
        if trials.fails(&prefix(trials.operations, members, cut)) == Some(true) {
            failing = cut;
        } else {
            passing = cut;
        }
    }
    prefix(trials.operations, members, failing)
}

/// Frees as many responses of `candidate` as it can while it still fails; the result,
/// and whether it is 1-minimal (freeing any one more response was shown to pass).
fn free_responses<M: Model>(
    trials: &mut Trials<'_, M>,
    mut candidate: Vec<Member>,
) -> (Vec<Member>, bool) {
    // Positions in `candidate` of the members that keep their responses, in order.
    let mut bound: Vec<usize> =
        (0..candidate.len()).filter(|&p| candidate[p].role == Role::Completed).collect();
    let mut chunk = (bound.len() / 2).max(1);
    // Each round either halves the chunk or, at one, frees a member or ends.
    for _ in 0..=bound.len() + usize::BITS as usize {
        let (freed, definitive) = free_round(trials, &mut candidate, &mut bound, chunk);
        if trials.steps_left == 0 {
            return (candidate, false);
        }
        if chunk == 1 && !freed {
            return (candidate, definitive);
        }
        chunk = (chunk / 2).max(1);
    }
    unreachable!("every round frees a member or halves the chunk");
}

/// One pass over `bound` in chunks of `chunk`, freeing each chunk whose freeing still
/// fails. Whether anything was freed, and whether every trial had an answer.
fn free_round<M: Model>(
    trials: &mut Trials<'_, M>,
    candidate: &mut Vec<Member>,
    bound: &mut Vec<usize>,
    chunk: usize,
) -> (bool, bool) {
    let (mut freed, mut definitive) = (false, true);
    let mut start = 0;
    while start < bound.len() {
        let end = (start + chunk).min(bound.len());
        if end - start == bound.len() {
            // Freeing every response leaves nothing to contradict the model.
            start = end;
            continue;
        }
        let mut trial = candidate.clone();
        for &position in &bound[start..end] {
            trial[position].role = Role::Free;
        }
        match trials.fails(&trial) {
            Some(true) => {
                *candidate = trial;
                bound.drain(start..end);
                freed = true;
            }
            Some(false) => start = end,
            None => {
                definitive = false;
                start = end;
            }
        }
    }
    (freed, definitive)
}

/// Whether, with every member of `candidate` but the completed ones as no-response, making
/// any single completed one no-response as well makes it linearizable.
fn each_needed<M: Model>(trials: &mut Trials<'_, M>, candidate: &[Member]) -> bool {
    let loosened = |member: &Member| Member { role: Role::NoResponse, ..*member };
    let base: Vec<Member> = candidate
        .iter()
        .map(|member| if member.role == Role::Completed { *member } else { loosened(member) })
        .collect();
    for (position, member) in base.iter().enumerate() {
        if member.role != Role::Completed {
            continue;
        }
        let mut trial = base.clone();
        trial[position] = loosened(member);
        if trials.fails(&trial) != Some(false) {
            return false;
        }
    }
    true
}
