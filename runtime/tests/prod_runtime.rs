//! `tina::prod::Runtime` as an embedding application meets it: boot, injectors, reports,
//! stop, and every bad input as a typed error, never a panic.
#![cfg(target_os = "linux")]

use std::time::Duration;

use tina::prod::{InjectError, Runtime, RuntimeConfig, RuntimeError};
use tina::{Ctx, Effect, Handle, Isolate, Message, ShardId, SystemSpec, TypeConfig};

mod common;
use common::Ball;

/// How long a test waits for the shards (far more than they need).
const PATIENCE: Duration = Duration::from_secs(20);

/// Counts the balls it is sent, checking they arrive in order.
struct Counter {
    next: u64,
}

impl Isolate for Counter {
    type Args = ();

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Counter { next: 0 }, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        let Ok(ball) = message.decode::<Ball>() else { return Effect::Receive };
        if ball.round != self.next {
            return Effect::Crash(tina::Label::new("out-of-order"));
        }
        self.next += 1;
        Effect::Receive
    }
}

/// Two shards, a counter on each.
fn counters() -> (SystemSpec, [Handle; 2]) {
    let mut spec = SystemSpec::new(2);
    let counter = spec.register::<Counter>(TypeConfig::new("counter").slots(1));
    spec.register_payload::<Ball>();
    let first = spec.boot_child(ShardId(0), counter, ());
    let second = spec.boot_child(ShardId(1), counter, ());
    (spec, [first, second])
}

#[test]
fn ping_pong_runs_across_two_shard_threads_and_stops() {
    let (spec, pinger) = common::ping_pong_spec(2, 1, 10_000);
    let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
    assert_eq!(runtime.shard_count(), 2);
    let pinger = pinger.index();
    let done = runtime.wait_until(PATIENCE, |reports| reports[0].live_by_type[pinger] == 0);
    assert!(done, "the pinger finished: {:?}", runtime.reports());
    let summary = runtime.stop();
    assert!(summary.shards.iter().all(|report| report.stopped));
    let delivered = |shard: usize| summary.shards[shard].counters.delivered;
    assert_eq!((delivered(0), delivered(1)), (10_000, 10_000), "{summary:?}");
    let total = summary.total();
    let drops = summary.shards.iter().map(|r| r.counters.drops()).sum::<u64>();
    assert_eq!(drops, 0, "{total:?}");
}

#[test]
fn injectors_reach_isolates_in_order_and_refuse_what_they_cannot_take() {
    let (spec, [first, second]) = counters();
    let config =
        RuntimeConfig { inject_capacity: 64, injectors_per_shard: 1, ..Default::default() };
    let runtime = Runtime::boot(spec, config).expect("boots");
    let mut injector = runtime.injector(ShardId(1)).expect("one injector per shard");
    assert!(matches!(
        runtime.injector(ShardId(1)),
        Err(RuntimeError::NoInjector { shard: ShardId(1) })
    ));
    assert!(matches!(runtime.injector(ShardId(7)), Err(RuntimeError::NoInjector { .. })));
    assert_eq!(
        injector.send(first, &Ball { round: 0, data: [0; 56] }),
        Err(InjectError::WrongShard { handle: ShardId(0), injector: ShardId(1) })
    );
    // 10,000 balls through a ring of 64: a full ring is a typed refusal to retry later.
    let (mut sent, mut refused) = (0u64, 0u64);
    while sent < 10_000 {
        match injector.send(second, &Ball { round: sent, data: [1; 56] }) {
            Ok(()) => sent += 1,
            Err(InjectError::Full) => {
                refused += 1;
                std::thread::yield_now();
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let all = runtime.wait_until(PATIENCE, |reports| reports[1].counters.delivered == 10_000);
    assert!(all, "every ball arrived: {:?}", runtime.reports()[1]);
    let summary = runtime.stop();
    assert_eq!(summary.shards[1].counters.crashes, 0, "in order: {:?}", summary.shards[1]);
    assert_eq!(summary.shards[0].counters.delivered, 0);
    eprintln!("injected 10000, refused as full {refused} times");
    assert_eq!(
        injector.send(second, &Ball { round: sent, data: [1; 56] }),
        Err(InjectError::Stopped)
    );
}

#[test]
fn bad_specs_and_configurations_are_typed_errors() {
    let (spec, _) = counters();
    let zero_ring = RuntimeConfig { ring_capacity: 0, ..Default::default() };
    assert!(matches!(Runtime::boot(spec, zero_ring), Err(RuntimeError::Config(_))));

    let (spec, _) = counters();
    let zero_inject = RuntimeConfig { inject_capacity: 0, ..Default::default() };
    assert!(matches!(Runtime::boot(spec, zero_inject), Err(RuntimeError::Config(_))));

    let error = Runtime::boot(SystemSpec::new(0), RuntimeConfig::default()).unwrap_err();
    assert!(matches!(error, RuntimeError::Spec(_)), "{error}");

    let (mut spec, _) = counters();
    spec.cores(&[0, 1000]);
    let error = Runtime::boot(spec, RuntimeConfig::default()).unwrap_err();
    assert!(matches!(error, RuntimeError::Affinity(_)), "{error}");
    assert!(error.to_string().contains("1000"), "{error}");

    // 64 shards with rings of 2^20 envelopes: 64 * 63 rings of 128 MiB, far beyond any
    // machine here, refused before anything is allocated.
    let mut spec = SystemSpec::new(64);
    let counter = spec.register::<Counter>(TypeConfig::new("counter").slots(1));
    spec.boot_child(ShardId(0), counter, ());
    let huge = RuntimeConfig { ring_capacity: 1 << 20, ..Default::default() };
    let error = Runtime::boot(spec, huge).unwrap_err();
    assert!(matches!(error, RuntimeError::Memory(_)), "{error}");
    assert!(error.to_string().contains("rings"), "names the largest part: {error}");
}

#[test]
fn dropping_a_runtime_stops_it() {
    let (spec, _) = counters();
    let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
    drop(runtime);
    let (spec, _) = counters();
    let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots again");
    let summary = runtime.stop();
    assert_eq!(summary.shards.len(), 2);
}

/// This process's resident memory, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("kB");
    kib * 1024
}

/// Boot touches what the spec allocates, so a machine that cannot back it fails at boot,
/// not in the middle of a run: resident memory grows by what `SystemSpec::memory` counts.
#[test]
fn boot_touches_the_memory_it_allocates() {
    let (mut spec, _) = common::ping_pong_spec(2, 1, 10);
    // About 256 MiB of envelopes, far above what the other tests of this binary hold.
    spec.message_pool_size(1 << 20);
    let needed = spec.memory_bytes(RuntimeConfig::default().ring_capacity);
    let before = resident_bytes();
    let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
    let grown = resident_bytes().saturating_sub(before);
    drop(runtime);
    assert!(
        grown >= needed / 10 * 9,
        "boot made {grown} of the {needed} bytes it allocates resident"
    );
}
