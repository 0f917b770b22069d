//! Sim-versus-real conformance: one test body per behaviour, run by the simulator and by
//! the production runtime (`tina::prod::Runtime`, one thread per shard) on the very same
//! specs and isolates, asserting the same outcomes from each backend's counters.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::time::Duration;

use tina::prod::{Runtime, RuntimeConfig};
use tina::{Ctx, Effect, Handle, Isolate, Message, ShardId, SystemSpec, TypeConfig};
use tina_scenarios::{Goal, Params, Scenario, Setup, find};
use tina_sim::Simulation;

/// How long the real runtime may take to reach the end (far more than it needs).
const PATIENCE: Duration = Duration::from_secs(30);

/// Every counter summed over the shards, by name.
type Totals = BTreeMap<&'static str, u64>;

/// Runs `setup` in the simulator (seed 1), which must pass; returns its counters.
fn on_sim(name: &'static str, setup: fn() -> Setup) -> Totals {
    let report = Simulation::new(name, move |_| setup()).run(1).expect("a valid setup");
    assert!(report.passed(), "{name} passes in the simulator: {:?}", report.outcome);
    let mut totals = Totals::new();
    for shard in &report.counters {
        for &(key, value) in &shard.entries {
            *totals.entry(key).or_default() += value;
        }
    }
    totals
}

/// Runs `setup`'s node on real threads until no isolate of type `finisher` is alive;
/// returns its counters.
fn on_real(setup: fn() -> Setup, finisher: &str) -> Totals {
    on_real_until(setup, Some(finisher))
}

/// Runs `setup`'s first node on real threads until no isolate of type `finisher` is alive
/// (`None`: until no isolate at all is), then stops it and returns its counters.
fn on_real_until(setup: fn() -> Setup, finisher: Option<&str>) -> Totals {
    let spec = setup().nodes.into_iter().next().expect("one node");
    let finisher = finisher.map(|finisher| spec.type_named(finisher).expect("the finisher's type"));
    let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
    let finished = runtime.wait_until(PATIENCE, |reports| {
        reports.iter().all(|r| match finisher {
            Some(finisher) => r.live_in_type(finisher) == 0,
            None => r.live_isolates == 0,
        })
    });
    assert!(finished, "the finisher ended on real threads: {:?}", runtime.reports());
    let summary = runtime.stop();
    summary.total().into_iter().collect()
}

/// A catalog scenario's setup with `sets`.
fn scenario(name: &str, sets: &[(&str, u64)]) -> Setup {
    let scenario: &dyn Scenario = find(name).expect("in the catalog");
    let mut params = Params::defaults(scenario.params());
    for (key, value) in sets {
        assert!(params.set(key, *value), "{key} is a parameter of {name}");
    }
    scenario.build(&params)
}

#[test]
fn ping_pong_plays_every_round_and_loses_nothing() {
    fn setup() -> Setup {
        scenario("ping-pong", &[("round_trips", 300), ("retry", 0)])
    }
    let facts = |t: &Totals| (t["sent"], t["delivered"], t["exits_normal"], t["mailbox_full"]);
    let (sim, real) = (on_sim("ping-pong", setup), on_real(setup, "pinger"));
    assert_eq!(facts(&sim), facts(&real), "sent, delivered, normal exits, drops");
    assert_eq!(sim["delivered"], 600);
    let drops = |t: &Totals| t["mailbox_full"] + t["pool_exhausted"] + t["ring_full"];
    assert_eq!((drops(&sim), drops(&real)), (0, 0));
}

#[test]
fn dispatcher_workers_crash_and_are_restarted() {
    fn setup() -> Setup {
        scenario("dispatcher", &[("jobs", 60), ("crash_every", 5), ("job_timeout", 20_000_000)])
    }
    // Which worker gets which job depends on timing on real threads, so the counts differ;
    // what must hold on both is the supervision outcome.
    let facts = |t: &Totals| {
        (t["crashes"] > 0, t["crashes"] == t["restarts"], t["escalations"], t["init_failures"])
    };
    let (sim, real) = (on_sim("dispatcher", setup), on_real(setup, "dispatcher"));
    assert_eq!(facts(&sim), facts(&real), "{sim:?}\n{real:?}");
    assert_eq!(facts(&sim), (true, true, 0, 0));
}

tina::payload! {
    /// A question nobody answers.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Question { pub n: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct CallerArgs { pub callee: Handle }
}

/// Calls a silent isolate on another shard and ends when the call times out.
struct Caller;

impl Isolate for Caller {
    type Args = CallerArgs;

    fn init(args: CallerArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Caller, Effect::call(args.callee, &Question { n: 1 }, Duration::from_millis(20)))
    }

    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        match message.call_failure() {
            Some(tina::CallFailure::Timeout) => Effect::Done,
            _ => Effect::Crash(tina::Label::new("not-a-timeout")),
        }
    }
}

/// Receives questions and never answers.
struct Silent;

impl Isolate for Silent {
    type Args = ();

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Silent, Effect::Receive)
    }

    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

#[test]
fn a_call_nobody_answers_times_out() {
    fn setup() -> Setup {
        let mut spec = SystemSpec::new(2);
        let caller = spec.register::<Caller>(TypeConfig::new("caller").slots(1));
        let silent = spec.register::<Silent>(TypeConfig::new("silent").slots(1));
        spec.register_payload::<Question>();
        let callee = spec.boot_child(ShardId(1), silent, ());
        spec.boot_child(ShardId(0), caller, CallerArgs { callee });
        // The silent isolate stays; the goal is the caller's normal end.
        Setup::new(spec).goal(Goal::EndState(Box::new(|view| view.live_isolates() == 1)))
    }
    let facts = |t: &Totals| (t["call_timeouts"], t["exits_normal"], t["crashes"]);
    let (sim, real) = (on_sim("call-timeout", setup), on_real(setup, "caller"));
    assert_eq!(facts(&sim), facts(&real), "{sim:?}\n{real:?}");
    assert_eq!(facts(&sim), (1, 1, 0));
}

#[test]
fn bank_clients_all_finish_without_loss() {
    fn setup() -> Setup {
        scenario("bank", &[("transfers", 20), ("timeout", 50_000_000)])
    }
    // The simulator also checks conservation (the scenario's observer); on threads the
    // outcome visible from outside is that every client finished, none crashed, and no
    // message was dropped.
    let facts = |t: &Totals| {
        (t["exits_normal"], t["crashes"], t["mailbox_full"] + t["pool_exhausted"] + t["ring_full"])
    };
    let (sim, real) = (on_sim("bank", setup), on_real(setup, "client"));
    assert_eq!(facts(&sim), facts(&real), "{sim:?}\n{real:?}");
    assert_eq!(facts(&sim).1, 0);
}

/// The test-API issue's pipeline, the very file of the user crate in `fixtures/pipeline/`
/// (which is outside this workspace, so it is included rather than depended on).
#[path = "../../fixtures/pipeline/src/lib.rs"]
#[allow(dead_code, unreachable_pub)]
mod pipeline;

#[test]
fn the_credit_pipeline_delivers_every_item_in_order() {
    fn setup() -> Setup {
        pipeline::setup(5_000, pipeline::Variant::Flow)
    }
    // The sink crashes on an item out of order or a wrong sum, and the source and the
    // transform on a drop: three normal exits and no crash mean every item arrived, in
    // order, with the right sum, on both backends.
    let facts = |t: &Totals| {
        (t["exits_normal"], t["crashes"], t["mailbox_full"] + t["pool_exhausted"] + t["ring_full"])
    };
    // Every isolate must have ended: the sink finishes at the last item, while the source
    // and the transform end only when the last credits reach them.
    let (sim, real) = (on_sim("pipeline", setup), on_real_until(setup, None));
    assert_eq!(facts(&sim), facts(&real), "{sim:?}\n{real:?}");
    assert_eq!(facts(&sim), (3, 0, 0));
}

/// Clients of the echo conformance test.
const ECHO_CLIENTS: u64 = 4;
/// Round trips of each.
const ECHO_ROUND_TRIPS: u64 = 50;

/// The `echo` scenario's client nodes' counters in the simulator (the server is node 0).
fn echo_on_sim() -> Totals {
    fn setup() -> Setup {
        let sets = [
            ("clients", ECHO_CLIENTS),
            ("round_trips", ECHO_ROUND_TRIPS),
            ("server_shards", 2),
            ("chaos", 1),
            ("udp", 0),
            ("size", 64),
        ];
        scenario("echo", &sets)
    }
    let report = Simulation::new("echo", move |_| setup()).run(1).expect("a valid setup");
    assert!(report.passed(), "echo passes in the simulator: {:?}", report.outcome);
    let mut totals = Totals::new();
    for shard in report.counters.iter().filter(|shard| shard.node != 0) {
        for &(key, value) in &shard.entries {
            *totals.entry(key).or_default() += value;
        }
    }
    totals
}

/// The same server and clients on real loopback sockets with the I/O driver `io`: the
/// server on two shard threads, the clients on a runtime of their own; the clients'
/// counters.
fn echo_on_real(io: tina::prod::IoDriverChoice) -> Totals {
    use tina_scenarios::echo;
    // Two consecutive free ports: the server's shards listen on `port` and `port + 1`.
    let port = (0..100)
        .find_map(|_| {
            let first = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
            let port = first.local_addr().ok()?.port();
            std::net::TcpListener::bind(("127.0.0.1", port.checked_add(1)?)).ok()?;
            Some(port)
        })
        .expect("two consecutive free ports");
    let ip = std::net::Ipv4Addr::LOCALHOST;
    let config = RuntimeConfig { io_driver: io, ..RuntimeConfig::default() };
    let server_config = echo::ServerConfig {
        shards: 2,
        ip,
        port_base: port,
        udp: false,
        connections: echo::CONNECTIONS_PER_SHARD,
    };
    let server = Runtime::boot(echo::server_spec::<echo::Connection>(&server_config), config)
        .expect("the server boots");
    let clients: Vec<echo::ClientArgs> = (0..ECHO_CLIENTS)
        .map(|client| echo::ClientArgs {
            client,
            round_trips: ECHO_ROUND_TRIPS,
            port: u64::from(port) + client % 2,
            chaos: u64::from(client == 0),
            size: 64,
            give_up: 0,
            server_ip: u64::from(ip.to_bits()),
        })
        .collect();
    let spec = echo::client_spec(&clients, true, false);
    let client_type = spec.type_named("client").expect("clients");
    let runtime = Runtime::boot(spec, config).expect("the clients boot");
    let finished = runtime
        .wait_until(PATIENCE, |reports| reports.iter().all(|r| r.live_in_type(client_type) == 0));
    assert!(finished, "every client ended on real sockets ({io:?}): {:?}", runtime.reports());
    let totals = runtime.stop().total().into_iter().collect();
    drop(server.stop());
    totals
}

#[test]
fn echo_clients_get_every_echo_over_real_sockets_as_in_the_simulator() {
    // Every client logs `echo.done` after its last echo (the simulator's run ends on the
    // last of these, so before the last client's close completes: compare the logs, not
    // the exits); a mismatched echo would log an error and crash the client again, and the
    // chaos client crashes exactly once and is restarted once.
    let facts = |t: &Totals| (t["logs"], t["crashes"], t["restarts"]);
    let sim = echo_on_sim();
    assert_eq!(facts(&sim), (ECHO_CLIENTS, 1, 1), "{sim:?}");
    for io in [tina::prod::IoDriverChoice::IoUring, tina::prod::IoDriverChoice::Epoll] {
        let real = echo_on_real(io);
        assert_eq!(facts(&sim), facts(&real), "{io:?}\n{sim:?}\n{real:?}");
        assert!(real["io_completed"] >= ECHO_CLIENTS * ECHO_ROUND_TRIPS * 2, "{real:?}");
    }
}
