//! The one facade through which every atomic, `UnsafeCell`, `Arc` and spin hint of the
//! production plumbing (`spsc`, `park`) goes, so that loom can model-check them.
//!
//! Built normally, it re-exports `std`. Built for loom's tests (`cfg(all(loom, test))`,
//! that is `RUSTFLAGS="--cfg loom" cargo test --lib`), it re-exports loom's modelled
//! equivalents, and the modules above run unchanged inside `loom::model`. A `--cfg loom`
//! build that is not a unit test (clippy's lib target, the integration tests) still gets
//! `std`: loom is only a dev-dependency, and its types panic outside a model anyway.
//!
//! Not a general-purpose abstraction: it holds exactly what those modules use. Code that
//! reaches for `std::sync::atomic` directly in `prod/` escapes the model checker.

#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::Arc;
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
#[cfg(all(loom, test))]
pub(crate) use loom::sync::{Arc, Condvar, Mutex};

/// Tells the processor (or, under loom, the model's scheduler) that this thread is
/// busy-waiting. Under loom it yields, which lets a bounded model finish.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(all(loom, test)))]
    core::hint::spin_loop();
    #[cfg(all(loom, test))]
    loom::hint::spin_loop();
}

/// An `UnsafeCell` reached only through closures over its raw pointer, the shape loom's
/// `UnsafeCell` has, so that loom can check every access for a data race. The pointers
/// carry the usual raw-pointer obligations; dereferencing them is the caller's `unsafe`.
#[cfg(not(all(loom, test)))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(all(loom, test)))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer the caller may read through while no write is under way.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a pointer the caller may write through while it has exclusive access.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(all(loom, test))]
pub(crate) use loom::cell::UnsafeCell;

/// Bytes a `CachePadded` value occupies at least and is aligned to: two 64-byte lines,
/// because x86's adjacent-line prefetcher pulls lines in pairs and Apple's and some
/// Arm cores have 128-byte lines.
pub const CACHE_LINE_PAIR_SIZE: usize = 128;

/// A value alone on its own cache lines, so that a store to it by one core does not
/// invalidate a neighbour another core reads (false sharing).
///
/// Written here rather than taken from crossbeam so the core crate keeps its one
/// dependency; it is a dozen lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(128))]
pub struct CachePadded<T> {
    value: T,
}

const _: () = {
    assert!(align_of::<CachePadded<u8>>() == CACHE_LINE_PAIR_SIZE);
    assert!(size_of::<CachePadded<u64>>() == CACHE_LINE_PAIR_SIZE);
};

impl<T> CachePadded<T> {
    /// Pads `value`.
    pub const fn new(value: T) -> CachePadded<T> {
        CachePadded { value }
    }

    /// The value, unpadded.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> core::ops::DerefMut for CachePadded<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// Preemptions loom may force in one execution of a model (threads blocking or yielding
/// switch freely besides). The lost wake-up of the canary in `park` is found with none;
/// four still runs every `prod` model in about 20 seconds on two cores.
#[cfg(all(loom, test))]
const PREEMPTION_BOUND: usize = 4;

/// Runs `body` under loom over every interleaving within `PREEMPTION_BOUND`.
#[cfg(all(loom, test))]
pub(crate) fn model(body: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(PREEMPTION_BOUND);
    builder.check(body);
}
