//! `SystemSpec::shard_memory` tells what booting a shard allocates: each spec below is
//! booted shard by shard under a global allocator that adds up the bytes the booting
//! thread still holds when `Scheduler::boot` returns, and the estimate must equal that to
//! the byte. So the memory check at production boot refuses what boot would really take,
//! and a change to a table that forgets its `bytes_for` fails here. Alone in its binary,
//! so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use core::time::Duration;

use tina::testing::{TestBackend, TestConfig};
use tina::{
    Ctx, Effect, GroupConfig, Isolate, Message, Restart, Scheduler, ShardId, Strategy, SystemSpec,
    TypeConfig,
};

/// Adds up the bytes allocated minus the bytes freed by a thread while its `ARMED` flag is
/// set; forwards everything to the system allocator. Flag and sum are per thread, so tests
/// running in parallel and the harness's own threads do not count into each other.
struct CountingAllocator;

thread_local! {
    // Const-initialised, so reading them from the allocator never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: i64) {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = LIVE_BYTES.try_with(|live| live.set(live.get() + delta));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s
        // contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as i64));
        // SAFETY: `ptr` came from `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as i64 - layout.size() as i64);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// A small isolate that waits.
struct Small;

impl Isolate for Small {
    type Args = u64;
    fn init(_args: u64, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Small, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

/// An isolate with a large state, so its arena dominates.
struct Large {
    _table: [u64; 100],
}

impl Isolate for Large {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Large { _table: [0; 100] }, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

/// Boots every shard of `spec` and returns, per shard, (estimated, allocated) bytes.
fn measure(spec: &SystemSpec) -> Vec<(u64, u64)> {
    (0..spec.shard_count())
        .map(|index| {
            let shard = ShardId(index as u8);
            let mut backend =
                TestBackend::new(shard, &TestConfig { event_capacity: 0, ..TestConfig::default() });
            // A first boot installs the process's panic hook, once: not the spec's memory.
            drop(Scheduler::boot(spec, shard, &mut backend).expect("a valid spec"));
            LIVE_BYTES.with(|live| live.set(0));
            ARMED.with(|armed| armed.set(true));
            let scheduler = Scheduler::boot(spec, shard, &mut backend).expect("a valid spec");
            ARMED.with(|armed| armed.set(false));
            let allocated = LIVE_BYTES.with(Cell::get);
            drop(scheduler);
            let estimated = spec.shard_memory(shard, 0).total();
            (estimated, u64::try_from(allocated).expect("boot holds memory"))
        })
        .collect()
}

/// The estimate of every shard is what its boot allocated, to the byte.
fn check(spec: &SystemSpec) {
    for (shard, (estimated, allocated)) in measure(spec).into_iter().enumerate() {
        assert_eq!(
            estimated, allocated,
            "shard {shard}: estimated {estimated} bytes, boot allocated {allocated}; a table \
             changed without its `bytes_for`"
        );
    }
}

/// The defaults with one small type: the message pool and I/O tables dominate.
#[test]
fn default_sizes() {
    let mut spec = SystemSpec::new(2);
    let small = spec.register::<Small>(TypeConfig::new("small"));
    spec.boot_child(ShardId(0), small, 1);
    check(&spec);
}

/// Several types with large states, a nested supervision tree with dynamic children, I/O
/// buffers and a timer pool: every part of the estimate is exercised, and shards with
/// different trees get different numbers.
#[test]
fn every_part() {
    let mut spec = SystemSpec::new(3);
    spec.message_pool_size(10_000).timer_pool_size(5_000).io_buffers(100, 16_384);
    spec.io_in_flight_max(1_000);
    let small = spec.register::<Small>(TypeConfig::new("small").slots(2_000));
    let large = spec.register::<Large>(TypeConfig::new("large").slots(300));
    let root = spec.root(ShardId(1));
    let group = spec.add_group(
        root,
        GroupConfig::new(Strategy::OneForAll).intensity(100, Duration::from_secs(1)).dynamic(500),
    );
    for value in 0..10 {
        spec.add_child(group, small, value, Restart::Permanent);
    }
    spec.add_child(root, large, (), Restart::Transient);
    spec.boot_child(ShardId(2), large, ());
    check(&spec);
    let shards: Vec<u64> =
        (0..3).map(|index| spec.shard_memory(ShardId(index), 0).supervision).collect();
    assert!(shards[1] > shards[2] && shards[2] > shards[0], "{shards:?}");
}

/// Without I/O buffers and timers, with a tiny pool: the slot tables dominate.
#[test]
fn slots_only() {
    let mut spec = SystemSpec::new(1);
    spec.message_pool_size(1).timer_pool_size(0).io_buffers(0, 0).io_in_flight_max(0);
    spec.register::<Small>(TypeConfig::new("small").slots(50_000));
    check(&spec);
}
