//! The simulation loop allocates nothing in its steady state (no log, no determinism
//! check): after a warm-up, 200,000 more trace events of two-shard ping-pong run under a
//! counting allocator armed only for that window, on this thread. And a world's memory at
//! boot grows with what it uses, not with nodes x shards^2 x ring capacity. Alone in its
//! binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tina::{Ctx, Effect, Isolate, Message, ShardId, SystemSpec, TypeConfig};
use tina_scenarios::{Params, find};
use tina_sim::trace::{Names, Sink, Tape};
use tina_sim::world::{Ending, Limits, World, WorldConfig};

struct CountingAllocator;

thread_local! {
    // Const-initialised, so reading it from the allocator never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    // Allocations and bytes requested on this thread while armed (tests run in parallel).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn count(size: usize) {
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    let _ = BYTES.try_with(|bytes| bytes.set(bytes.get() + size as u64));
}

fn armed() -> bool {
    ARMED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if armed() {
            count(layout.size());
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
            count(new_size);
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
    assert_eq!(ALLOCATIONS.with(Cell::get), 0, "allocations in the steady state");
}

/// Waits for messages; never gets any.
struct Idle;

impl Isolate for Idle {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Idle, Effect) {
        (Idle, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

/// Eight nodes of 32 shards with rings of 1,024 would reserve over a gigabyte if the
/// world's memory followed nodes x shards^2 x ring capacity. Booted, such a world takes
/// what its shards' specs ask for (their pools and buffers) plus a bounded reserve: rings
/// of 1,024 cost at most a few MiB more than rings of 1.
#[test]
fn a_large_world_boots_in_bounded_memory() {
    const SHARDS: u8 = 32;
    let boot_bytes = |transport_capacity: u32| {
        let nodes: Vec<SystemSpec> = (0..8)
            .map(|_| {
                let mut spec = SystemSpec::new(usize::from(SHARDS));
                let idle = spec.register::<Idle>(TypeConfig::new("idle").slots(1));
                for shard in 0..SHARDS {
                    spec.boot_child(ShardId(shard), idle, ());
                }
                spec
            })
            .collect();
        let config = WorldConfig { transport_capacity, ..WorldConfig::default() };
        BYTES.with(|bytes| bytes.set(0));
        ARMED.with(|armed| armed.set(true));
        let sink = Sink::new(Vec::new(), Names::new(&nodes), None, Tape::Off);
        let world = World::boot(nodes, config, 1, sink).expect("valid specs");
        ARMED.with(|armed| armed.set(false));
        drop(world);
        BYTES.with(Cell::get)
    };
    let (small, large) = (boot_bytes(1), boot_bytes(1024));
    let extra_mib = large.saturating_sub(small) >> 20;
    eprintln!(
        "8 nodes x 32 shards: {} MiB with rings of 1, {extra_mib} MiB more with 1,024",
        small >> 20
    );
    assert!(extra_mib < 32, "rings of 1,024 cost {extra_mib} MiB more at boot");
}
