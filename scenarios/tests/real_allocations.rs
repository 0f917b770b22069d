//! No allocation after boot on the real runtime: a counting global allocator, armed once
//! every shard has booted (and its first report is out), sees the steady state of
//! ping-pong and of the dispatcher (crashes and restarts included) allocate nothing.
//! Alone in its binary, so no other test's allocations are counted; only the shard threads
//! run while it is armed (the test's own thread sleeps).
#![cfg(target_os = "linux")]
#![allow(clippy::disallowed_methods, reason = "the test waits in real time for real threads")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tina::prod::{Runtime, RuntimeConfig};
use tina_scenarios::{Params, catalog};

struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counting beside it touches only atomics, never the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc` or `realloc` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Boots `name` with `sets` on real threads, lets it run `warm` then counts allocations
/// over `window`; returns them with the messages delivered during the window.
fn allocations_in_steady_state(name: &str, sets: &[(&str, u64)]) -> (u64, u64, u64) {
    let scenario = catalog().iter().copied().find(|s| s.name() == name).expect("in the catalog");
    let mut params = Params::defaults(scenario.params());
    for (key, value) in sets {
        assert!(params.set(key, *value), "{key} is a parameter of {name}");
    }
    let spec = scenario.build(&params).nodes.into_iter().next().expect("a node");
    let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
    std::thread::sleep(Duration::from_millis(200));
    let delivered = |runtime: &Runtime| -> u64 {
        runtime.reports().iter().map(|report| report.counters.delivered).sum()
    };
    let crashes = |runtime: &Runtime| -> u64 {
        runtime.reports().iter().map(|report| report.counters.crashes).sum()
    };
    let (before, crashes_before) = (delivered(&runtime), crashes(&runtime));
    ALLOCATIONS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    ARMED.store(false, Ordering::SeqCst);
    let counted = ALLOCATIONS.load(Ordering::SeqCst);
    let (after, crashes_after) = (delivered(&runtime), crashes(&runtime));
    drop(runtime.stop());
    (counted, after - before, crashes_after - crashes_before)
}

#[test]
fn the_steady_state_allocates_nothing() {
    // Long enough to be running through the whole window.
    let (allocations, delivered, _) =
        allocations_in_steady_state("ping-pong", &[("round_trips", 1 << 40), ("retry", 0)]);
    eprintln!("ping-pong: {allocations} allocations while {delivered} messages were delivered");
    assert!(delivered > 1_000, "ping-pong made progress during the window: {delivered}");
    assert_eq!(allocations, 0, "ping-pong allocated in its steady state");

    let (allocations, delivered, crashes) = allocations_in_steady_state(
        "dispatcher",
        // A worker crashes every 50th job; the dispatcher gives up on a lost job after 1 ms.
        &[("jobs", 1 << 32), ("crash_every", 50), ("job_interval", 0), ("job_timeout", 1_000_000)],
    );
    eprintln!(
        "dispatcher: {allocations} allocations while {delivered} messages were delivered and {crashes} workers crashed"
    );
    assert!(delivered > 1_000, "the dispatcher made progress during the window: {delivered}");
    assert_eq!(allocations, 0, "the dispatcher allocated in its steady state (crashes included)");
    assert!(crashes > 0, "workers crashed and were restarted during the window");
}
