//! The simulation loop allocates nothing in its steady state (no log, no determinism
//! check): after a warm-up, 200,000 more trace events of two-shard ping-pong run under a
//! counting allocator armed only for that window, on this thread. Alone in its binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use tina_scenarios::{Params, find};
use tina_sim::trace::{Names, Sink, Tape};
use tina_sim::world::{Ending, Limits, World, WorldConfig};

struct CountingAllocator;

thread_local! {
    // Const-initialised, so reading it from the allocator never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn armed() -> bool {
    ARMED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if armed() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if armed() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn steady_state_allocates_nothing() {
    let scenario = find("ping-pong").expect("in the catalog");
    let mut params = Params::defaults(scenario.params());
    params.set("round_trips", 1 << 40);
    let setup = scenario.build(&params);
    let sink = Sink::new(setup.observers, Names::new(&setup.nodes), None, Tape::Off);
    let mut world = World::boot(setup.nodes, WorldConfig::default(), 3, sink).expect("valid spec");
    let limits = |events_max| Limits { time_max_ns: u64::MAX, events_max };
    assert_eq!(world.run(limits(10_000)), Ending::EventsMax, "warm-up");

    ARMED.with(|armed| armed.set(true));
    let ending = world.run(limits(210_000));
    ARMED.with(|armed| armed.set(false));

    assert_eq!(ending, Ending::EventsMax);
    assert!(world.sink_mut().events() >= 210_000);
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0, "allocations in the steady state");
}
