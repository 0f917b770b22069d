//! After boot, the scheduler allocates nothing: 100,000 ticks of two-shard ping-pong with
//! tracing on run under a counting global allocator that is armed only for that window.
//! This test is alone in its binary so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tina::ShardId;
use tina::testing::{TestConfig, TestWorld};

mod common;

/// Counts allocations while `ARMED` is set; forwards everything to the system allocator.
struct CountingAllocator;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
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
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn no_allocation_after_boot() {
    const TICKS: u64 = 100_000;
    // Enough rounds that the game outlasts the window.
    let (spec, _) = common::ping_pong_spec(2, 1, u64::MAX);
    // Tracing on: the recorder fills its fixed capacity, then only counts.
    let config = TestConfig { event_capacity: 1024, ..TestConfig::default() };
    let mut world = TestWorld::boot(&spec, config).expect("valid spec");

    ARMED.store(true, Ordering::SeqCst);
    for _ in 0..TICKS {
        world.tick();
    }
    ARMED.store(false, Ordering::SeqCst);

    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    let delivered = world.counters(ShardId(0)).delivered + world.counters(ShardId(1)).delivered;
    assert!(delivered >= TICKS, "the game ran: {delivered} deliveries");
    assert!(world.backend(ShardId(0)).events_seen() > 1024, "tracing was on past the recorder");
    assert_eq!(allocations, 0, "allocations after boot");
}
