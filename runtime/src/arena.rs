//! Typed arenas: the isolate states of one type, apart from their slot metadata.
//!
//! Each registered type gets one `TypedArena<I>`, a boxed slice of `Option<I>` sized at boot.
//! The scheduler holds them as `Box<dyn ErasedArena>`, indexed by the type's dense index, and
//! calls `run_batch` once per batch: the loop inside is monomorphised for `I`, so dispatch
//! costs one virtual call per batch, not per message. Isolate code runs inside
//! `containment::contain`, entered once per batch (and again after a contained panic), so a
//! panic tears down the isolate that raised it and the batch goes on. Dropping an isolate's
//! state runs isolate code too (its `Drop`): every drop is contained as well, and happens
//! before the core tears the incarnation down, so a panic there decides its exit.
//!
//! This module calls isolate code; it does not decide routing or lifecycle (see `shard`).

use zerocopy::TryFromBytes;

use crate::backend::Env;
use crate::containment::{Panicked, contain};
use crate::ctx::Ctx;
use crate::footprint::array_bytes;
use crate::handle::Handle;
use crate::isolate::Isolate;
use crate::message::Message;
use crate::shard::{Fate, Phase, ShardCore, Stop};
use crate::trace::PanicText;

/// What one batch did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Batch {
    /// Handler calls made.
    pub(crate) dispatched: u32,
    /// The batch stopped early because a handler spawned children (whose `init` must run
    /// now) or a supervised isolate stopped (whose group must decide now).
    pub(crate) interrupted: bool,
}

/// One isolate type's arena, with the type erased.
pub(crate) trait ErasedArena {
    /// Dispatches ready isolates of this type, at most `budget` handler calls. Returns early
    /// after a handler that spawned or stopped a supervised isolate.
    fn run_batch(
        &mut self,
        core: &mut ShardCore,
        env: &mut dyn Env,
        type_index: usize,
        budget: u32,
    ) -> Batch;

    /// Runs `init` for the reserved slot (already marked running by the core), whose
    /// incarnation is `handle`.
    fn run_init(
        &mut self,
        core: &mut ShardCore,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        handle: Handle,
    );

    /// Drops the state of a slot whose isolate is stopped from outside a dispatch (by its
    /// supervisor), before the core tears it down. Returns the message of a panic its `Drop`
    /// raised, contained: it is the isolate's.
    fn drop_state(&mut self, slot: usize) -> Option<PanicText>;

    /// Drops every state (the shard crashed), each under `contain`: a `Drop` that panics
    /// changes nothing of a crash, whose exits are already `ShardCrashed`. Returns how many
    /// panicked. O(slots).
    fn clear(&mut self) -> u64;

    /// Isolates with state in this arena.
    fn live_count(&self) -> usize;
}

/// The states of every slot of isolate type `I`.
struct TypedArena<I> {
    states: Box<[Option<I>]>,
    /// Where a batch copies each message before handing it to `handle`. Kept here rather
    /// than on the batch's stack so that it is not cleared at every batch; every dispatch
    /// overwrites the header, and a payload is only readable up to the length it sets.
    message: Message,
}

/// Allocates the arena for `slot_count` isolates of type `I` (stored in the spec at
/// registration, called at boot).
pub(crate) fn make_arena<I: Isolate>(slot_count: u32) -> Box<dyn ErasedArena> {
    let states: Box<[Option<I>]> = (0..slot_count).map(|_| None).collect();
    Box::new(TypedArena { states, message: Message::BLANK })
}

/// Bytes `make_arena::<I>(slot_count)` allocates: a state per slot and the arena itself
/// (its message buffer). Stored in the spec next to `make_arena`, so a spec can size its
/// shards without booting one (`SystemSpec::memory`).
pub(crate) fn arena_bytes<I: Isolate>(slot_count: u32) -> u64 {
    array_bytes(u64::from(slot_count), size_of::<Option<I>>())
        .saturating_add(size_of::<TypedArena<I>>() as u64)
}

/// Where a batch is, shared between the contained loop and its caller.
struct Progress {
    dispatched: u32,
    /// The slot whose handler is on the stack, if any.
    running: Option<usize>,
}

/// The batch loop proper: returns whether it was interrupted. Runs inside `contain`.
#[inline]
fn dispatch_loop<I: Isolate>(
    states: &mut [Option<I>],
    message: &mut Message,
    core: &mut ShardCore,
    env: &mut dyn Env,
    type_index: usize,
    budget: u32,
    progress: &mut Progress,
) -> bool {
    // Bounded by `budget`; spurious wake-ups consume ready entries, which are bounded by the
    // slot count.
    while progress.dispatched < budget {
        let Some(slot) = core.types[type_index].pop_ready() else { return false };
        if !core.take_message(env, type_index, slot, message) {
            continue;
        }
        progress.dispatched += 1;
        let state = states[slot].as_mut().expect("a dispatched slot holds an isolate");
        progress.running = Some(slot);
        let effect = state.handle(message, &mut Ctx::new(core, env, message.destination()));
        progress.running = None;
        if let Fate::Stops(stop) = core.apply_effect(env, type_index, slot, effect, Phase::Handle) {
            end(&mut states[slot], core, env, type_index, slot, stop);
        }
        if core.interrupted() {
            return true;
        }
    }
    false
}

/// Ends an incarnation that stopped: drops its state, containing a panic in its `Drop`,
/// then lets the core tear it down with the exit the drop leaves. Out of line: a stop is
/// not the per-message path.
#[cold]
#[inline(never)]
fn end<I>(
    state: &mut Option<I>,
    core: &mut ShardCore,
    env: &mut dyn Env,
    type_index: usize,
    slot: usize,
    stop: Stop,
) {
    let drop_panic = drop_contained(state);
    core.stopped(env, type_index, slot, stop, drop_panic);
}

/// Drops an isolate's state under `contain` and returns the message of the panic its `Drop`
/// raised, if any: such a panic is the isolate's, never the core's (no `Ctx` call is on the
/// stack). The slot is empty afterwards either way.
fn drop_contained<I>(state: &mut Option<I>) -> Option<PanicText> {
    let state = state.take();
    contain(move || drop(state)).err().map(|panic| panic.text)
}

/// A contained panic: the core's own panics are re-raised; an isolate's is the crash of
/// the slot that was running, returned with the panic's message.
fn panicked_in(
    core: &mut ShardCore,
    panic: Panicked,
    running: Option<usize>,
) -> (usize, PanicText) {
    match running {
        Some(slot) if core.in_core == 0 => (slot, panic.text),
        _ => {
            core.in_core = 0;
            panic.reraise_as_core()
        }
    }
}

impl<I: Isolate> ErasedArena for TypedArena<I> {
    fn run_batch(
        &mut self,
        core: &mut ShardCore,
        env: &mut dyn Env,
        type_index: usize,
        budget: u32,
    ) -> Batch {
        let mut progress = Progress { dispatched: 0, running: None };
        // Bounded: each iteration after the first follows a contained panic, which
        // consumed a dispatch from the budget.
        loop {
            let (states, message) = (&mut self.states, &mut self.message);
            let outcome = contain(|| {
                dispatch_loop(states, message, core, &mut *env, type_index, budget, &mut progress)
            });
            match outcome {
                Ok(interrupted) => return Batch { dispatched: progress.dispatched, interrupted },
                Err(panic) => {
                    let (slot, text) = panicked_in(core, panic, progress.running.take());
                    let stop = core.panicked(env, type_index, slot, text, Phase::Handle);
                    end(&mut self.states[slot], core, env, type_index, slot, stop);
                    if core.interrupted() {
                        return Batch { dispatched: progress.dispatched, interrupted: true };
                    }
                }
            }
        }
    }

    fn run_init(
        &mut self,
        core: &mut ShardCore,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        handle: Handle,
    ) {
        debug_assert_eq!(handle, core.handle_of(type_index, slot));
        let args = I::Args::try_read_from_bytes(core.types[type_index].args(slot))
            .unwrap_or_else(|_| panic!("spawn arguments were stored from a valid value"));
        debug_assert!(self.states[slot].is_none());
        match contain(|| I::init(args, &mut Ctx::new(core, &mut *env, handle))) {
            Ok((state, effect)) => {
                self.states[slot] = Some(state);
                if let Fate::Stops(stop) =
                    core.apply_effect(env, type_index, slot, effect, Phase::Init)
                {
                    end(&mut self.states[slot], core, env, type_index, slot, stop);
                }
            }
            Err(panic) => {
                let (slot, text) = panicked_in(core, panic, Some(slot));
                let stop = core.panicked(env, type_index, slot, text, Phase::Init);
                // `init` returned no state: there is nothing to drop.
                core.stopped(env, type_index, slot, stop, None);
            }
        }
    }

    fn drop_state(&mut self, slot: usize) -> Option<PanicText> {
        drop_contained(&mut self.states[slot])
    }

    fn clear(&mut self) -> u64 {
        let mut panics = 0;
        for state in self.states.iter_mut().filter(|state| state.is_some()) {
            panics += u64::from(drop_contained(state).is_some());
        }
        panics
    }

    fn live_count(&self) -> usize {
        self.states.iter().filter(|state| state.is_some()).count()
    }
}
