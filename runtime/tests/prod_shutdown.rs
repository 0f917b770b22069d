//! `Runtime::shutdown` on real shard threads: every shard, parked or busy, begins its
//! shutdown; isolates that end on the notice drain it (messages and timers still work
//! across shards meanwhile) long before the deadline; an isolate that ignores it is torn
//! down at the deadline, and the summary says the drain did not finish.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use tina::prod::{Runtime, RuntimeConfig};
use tina::{Ctx, Effect, Handle, Isolate, Message, ShardId, SystemSpec, TypeConfig};

tina::payload! {
    /// Something to keep, and its acknowledgement.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Save { pub n: u64 }
}

/// Ends on the shutdown notice.
struct Leaver;

impl Isolate for Leaver {
    type Args = ();
    fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Leaver, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() { Effect::Done } else { Effect::Receive }
    }
}

/// Ticks every millisecond until the shutdown, then ends.
struct Ticker;

impl Isolate for Ticker {
    type Args = ();
    fn init(_: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let _ = ctx.timer_set(Duration::from_millis(1), 0);
        (Ticker, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() {
            return Effect::Done;
        }
        let _ = ctx.timer_set(Duration::from_millis(1), 0);
        Effect::Receive
    }
}

/// On the notice, waits 5 ms (a timer), then saves to the keeper on another shard and ends
/// when the keeper acknowledges.
struct Saver {
    keeper: Handle,
}

impl Isolate for Saver {
    type Args = Handle;
    fn init(keeper: Handle, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Saver { keeper }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() {
            let _ = ctx.timer_set(Duration::from_millis(5), 0);
        } else if message.timer().is_some() {
            let _ = ctx.send(self.keeper, &Save { n: 1 });
        } else if message.is::<Save>() {
            return Effect::Done;
        }
        Effect::Receive
    }
}

/// Acknowledges saves; once shutting down, ends after the next one.
struct Keeper;

impl Isolate for Keeper {
    type Args = ();
    fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Keeper, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(save) = message.decode::<Save>() {
            let _ = ctx.send(message.source(), &save);
            if ctx.shutting_down() {
                return Effect::Done;
            }
        }
        Effect::Receive
    }
}

/// Ignores the notice.
struct Stayer;

impl Isolate for Stayer {
    type Args = ();
    fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Stayer, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

#[test]
#[cfg_attr(miri, ignore)]
#[expect(clippy::disallowed_methods, reason = "real shard threads, timed on the real clock")]
fn shutdown_drains_isolates_that_end_on_the_notice() {
    let mut spec = SystemSpec::new(3);
    let leaver = spec.register::<Leaver>(TypeConfig::new("leaver").slots(4));
    let ticker = spec.register::<Ticker>(TypeConfig::new("ticker").slots(1));
    let saver = spec.register::<Saver>(TypeConfig::new("saver").slots(1));
    let keeper = spec.register::<Keeper>(TypeConfig::new("keeper").slots(1));
    spec.register_payload::<Save>();
    let keeper = spec.boot_child(ShardId(1), keeper, ());
    spec.boot_child(ShardId(0), saver, keeper);
    spec.boot_child(ShardId(0), ticker, ());
    spec.boot_child(ShardId(1), leaver, ());
    // Shard 2 only waits: it is parked when the shutdown begins.
    spec.boot_child(ShardId(2), leaver, ());
    let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
    std::thread::sleep(Duration::from_millis(50));

    let started = Instant::now();
    let summary = runtime.shutdown(Duration::from_secs(10));
    let took = started.elapsed();
    assert!(summary.drained(), "{summary:?}");
    assert!(took < Duration::from_secs(5), "drained long before the deadline: {took:?}");
    for report in &summary.shards {
        assert!(report.stopped && report.shutting_down);
        let shutdown = report.shutdown.expect("finished");
        assert!(shutdown.drained && shutdown.remaining_isolates == 0, "{shutdown:?}");
        assert!(shutdown.ended_at < shutdown.deadline);
        assert_eq!(report.live_isolates, 0);
    }
    let total: u64 = summary.shards.iter().map(|r| r.counters.exits_normal).sum();
    assert_eq!(total, 5, "every isolate ended by itself");
    assert_eq!(summary.shards[0].shutdown.map(|s| s.isolates_at_start), Some(2));
}

#[test]
#[cfg_attr(miri, ignore)]
#[expect(clippy::disallowed_methods, reason = "real shard threads, timed on the real clock")]
fn shutdown_reports_a_drain_that_did_not_finish() {
    let mut spec = SystemSpec::new(2);
    let leaver = spec.register::<Leaver>(TypeConfig::new("leaver").slots(1));
    let stayer = spec.register::<Stayer>(TypeConfig::new("stayer").slots(2));
    spec.boot_child(ShardId(0), leaver, ());
    spec.boot_child(ShardId(1), stayer, ());
    spec.boot_child(ShardId(1), stayer, ());
    let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");

    let drain = Duration::from_millis(100);
    let started = Instant::now();
    let summary = runtime.shutdown(drain);
    let took = started.elapsed();
    assert!(!summary.drained(), "{summary:?}");
    assert!(took >= drain, "the stayers had until the deadline: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let first = summary.shards[0].shutdown.expect("finished");
    assert!(first.drained, "shard 0 drained: {first:?}");
    let second = summary.shards[1].shutdown.expect("forced");
    assert!(!second.drained);
    assert_eq!((second.isolates_at_start, second.remaining_isolates), (2, 2));
    assert!(second.ended_at >= second.deadline);
    assert_eq!(summary.shards[1].counters.shutdowns, 2, "torn down at the deadline");
    assert_eq!(summary.shards[1].live_isolates, 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn stop_is_not_a_drain() {
    let mut spec = SystemSpec::new(1);
    let leaver = spec.register::<Leaver>(TypeConfig::new("leaver").slots(1));
    spec.boot_child(ShardId(0), leaver, ());
    let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
    let summary = runtime.stop();
    assert!(!summary.drained(), "no shutdown ran");
    assert!(summary.shards[0].shutdown.is_none() && !summary.shards[0].shutting_down);
}
