//! Typed arenas: the isolate states of one type, apart from their slot metadata.
//!
//! Each registered type gets one `TypedArena<I>`, a boxed slice of `Option<I>` sized at boot.
//! The scheduler holds them as `Box<dyn ErasedArena>`, indexed by the type's dense index, and
//! calls `run_batch` once per batch: the loop inside is monomorphised for `I`, so dispatch
//! costs one virtual call per batch, not per message. Every `init` and `handle` call runs
//! inside `containment::contain`, so a panic tears down that isolate only.
//!
//! This module calls isolate code; it does not decide routing or lifecycle (see `shard`).

use zerocopy::TryFromBytes;

use crate::backend::Env;
use crate::containment::contain;
use crate::ctx::Ctx;
use crate::isolate::Isolate;
use crate::shard::{Fate, Phase, ShardCore};

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

    /// Runs `init` for the reserved slot (already marked running by the core).
    fn run_init(&mut self, core: &mut ShardCore, env: &mut dyn Env, type_index: usize, slot: usize);

    /// Drops the state of a slot whose isolate the core tore down from outside a dispatch.
    fn drop_state(&mut self, slot: usize);

    /// Isolates with state in this arena.
    fn live_count(&self) -> usize;
}

/// The states of every slot of isolate type `I`.
struct TypedArena<I> {
    states: Box<[Option<I>]>,
}

/// Allocates the arena for `slot_count` isolates of type `I` (stored in the spec at
/// registration, called at boot).
pub(crate) fn make_arena<I: Isolate>(slot_count: u32) -> Box<dyn ErasedArena> {
    let states: Box<[Option<I>]> = (0..slot_count).map(|_| None).collect();
    Box::new(TypedArena { states })
}

impl<I: Isolate> ErasedArena for TypedArena<I> {
    fn run_batch(
        &mut self,
        core: &mut ShardCore,
        env: &mut dyn Env,
        type_index: usize,
        budget: u32,
    ) -> Batch {
        let mut dispatched = 0;
        // Bounded by `budget`; spurious wake-ups consume ready entries, which are bounded by
        // the slot count.
        while dispatched < budget {
            let Some(slot) = core.types[type_index].pop_ready() else { break };
            let Some(message) = core.take_message(env, type_index, slot) else { continue };
            dispatched += 1;
            let handle = message.destination();
            let state = self.states[slot].as_mut().expect("a dispatched slot holds an isolate");
            let outcome = contain(|| state.handle(&message, &mut Ctx::new(core, env, handle)));
            let fate = match outcome {
                Ok(effect) => core.apply_effect(env, type_index, slot, effect, Phase::Handle),
                Err(text) => {
                    core.panicked(env, type_index, slot, text, Phase::Handle);
                    Fate::Stopped
                }
            };
            if fate == Fate::Stopped {
                self.states[slot] = None;
            }
            if !core.pending_inits.is_empty() || !core.exits.is_empty() {
                return Batch { dispatched, interrupted: true };
            }
        }
        Batch { dispatched, interrupted: false }
    }

    fn run_init(
        &mut self,
        core: &mut ShardCore,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
    ) {
        let handle = core.handle_of(type_index, slot);
        let args = I::Args::try_read_from_bytes(core.types[type_index].args(slot))
            .unwrap_or_else(|_| panic!("spawn arguments were stored from a valid value"));
        debug_assert!(self.states[slot].is_none());
        match contain(|| I::init(args, &mut Ctx::new(core, env, handle))) {
            Ok((state, effect)) => {
                self.states[slot] = Some(state);
                if core.apply_effect(env, type_index, slot, effect, Phase::Init) == Fate::Stopped {
                    self.states[slot] = None;
                }
            }
            Err(text) => core.panicked(env, type_index, slot, text, Phase::Init),
        }
    }

    fn drop_state(&mut self, slot: usize) {
        self.states[slot] = None;
    }

    fn live_count(&self) -> usize {
        self.states.iter().filter(|state| state.is_some()).count()
    }
}
