//! `echo` on real sockets: Tina's TCP echo server, the very `Listener` and `Connection`
//! isolates the simulator's `echo` scenario runs, on one pinned thread per shard with
//! io_uring (or epoll).
//!
//! Server (the default mode): shard `s` listens on `ip:port+s` and echoes every byte it
//! receives. It prints a line per shard every `report` interval, and at once when a shard
//! is quarantined by a fatal signal; the other shards keep serving. The first SIGINT or
//! SIGTERM drains it (listeners close, connections finish the echo in hand and close),
//! the second exits at once.
//!
//! ```text
//! cargo run --release -p tina-scenarios --example echo
//! cargo run --release -p tina-scenarios --example echo -- port=7000 shards=2 io=epoll
//! ```
//!
//! A person can drive it with `nc 127.0.0.1 7000`. A line starting `tina:fatal`
//! (optionally followed by `segv`, `bus`, `ill` or `fpe`) makes the connection isolate
//! that receives it raise that fatal signal on its shard's thread: the demonstration of
//! containment (`printf 'tina:fatal\n' | nc 127.0.0.1 7001` quarantines shard 1).
//!
//! Client mode (`mode=client`) runs the scenario's checking clients on real threads
//! against a running server: each sends `round_trips` numbered packets of `size` bytes one
//! at a time and checks every echo byte for byte; with `chaos=1` client 0 crashes after
//! three round trips and is restarted by its supervisor. With `fatal=SIGNAL` it first asks
//! the server's last shard to raise SIGNAL, and sends every client to the other shards.
//!
//! ```text
//! cargo run --release -p tina-scenarios --example echo -- mode=client clients=8 chaos=1 fatal=segv
//! ```
//!
//! Exit status: 0 after a clean stop (server: the drain finished; client: every client
//! got every echo), 2 for bad arguments, 1 when the runtime cannot boot or a client did
//! not finish, 3 when a drain did not finish before `drain`.

#![allow(
    clippy::disallowed_methods,
    reason = "a program on real threads: its report interval is wall-clock time"
)]

use std::cell::Cell;
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tina::io::IoResult;
use tina::prod::fatal::FatalSignal;
use tina::prod::{IoDriverChoice, Runtime, RuntimeConfig, ShardReport};
use tina::{Ctx, Effect, Isolate, Message};
use tina_scenarios::echo::{
    self, ClientArgs, Connection, ConnectionArgs, PACKET_SIZE_MAX, PACKET_SIZE_MIN, ServerConfig,
};

/// What a connection that receives it does: raise a fatal signal (the rest of the packet
/// names which; SIGSEGV when it names none).
const FATAL_REQUEST: &[u8] = b"tina:fatal";

/// The echoing connection of the `echo` scenario, unchanged, plus the containment demo: a
/// packet starting with `FATAL_REQUEST` raises a fatal signal on this shard's thread.
struct DemoConnection(Connection);

impl Isolate for DemoConnection {
    type Args = ConnectionArgs;

    fn init(args: ConnectionArgs, ctx: &mut Ctx<'_>) -> (DemoConnection, Effect) {
        let (connection, effect) = Connection::init(args, ctx);
        (DemoConnection(connection), effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Some(io) = message.io()
            && matches!(io.result, IoResult::Received { .. })
            && let Some(signal) = fatal_request(ctx.io_data())
        {
            tina::prod::fatal::provoke(signal);
        }
        self.0.handle(message, ctx)
    }
}

/// The signal a packet asks for, if it is a fatal request.
fn fatal_request(data: &[u8]) -> Option<FatalSignal> {
    let rest = data.strip_prefix(FATAL_REQUEST)?;
    let name = std::str::from_utf8(rest).ok()?.trim();
    if name.is_empty() { Some(FatalSignal::Segv) } else { FatalSignal::from_name(name) }
}

/// The example's settings, from `KEY=VALUE` arguments.
struct Options {
    client_mode: bool,
    ip: Ipv4Addr,
    port: u16,
    shards: usize,
    io: IoDriverChoice,
    report: Duration,
    drain: Duration,
    connections: u32,
    pin: bool,
    clients: u64,
    round_trips: u64,
    size: u64,
    chaos: bool,
    fatal: Option<FatalSignal>,
}

const USAGE: &str = "usage: echo [mode=server|client] [ip=127.0.0.1] [port=7000] [shards=2] \
[io=auto|io_uring|epoll] [pin=1|0] [report=1s, 0: never] [drain=5s] [connections=64 per shard] \
(server) [clients=8] [round_trips=1000] [size=64] [chaos=0|1] [fatal=segv|bus|ill|fpe] (client)";

fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        client_mode: false,
        ip: Ipv4Addr::LOCALHOST,
        port: 7000,
        shards: 2,
        io: IoDriverChoice::Auto,
        report: Duration::from_secs(1),
        drain: Duration::from_secs(5),
        connections: echo::CONNECTIONS_PER_SHARD,
        pin: true,
        clients: 8,
        round_trips: 1000,
        size: 64,
        chaos: false,
        fatal: None,
    };
    for arg in args {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?}: write KEY=VALUE, e.g. port=7000"))?;
        let bad = || format!("{key}={value}: not a valid value");
        match key {
            "mode" => {
                options.client_mode = match value {
                    "server" => false,
                    "client" => true,
                    _ => return Err(format!("mode={value}: write mode=server or mode=client")),
                }
            }
            "ip" => options.ip = value.parse().map_err(|_| bad())?,
            "port" => options.port = value.parse().map_err(|_| bad())?,
            "shards" => options.shards = value.parse().map_err(|_| bad())?,
            "io" => options.io = value.parse().map_err(|error| format!("io={value}: {error}"))?,
            "report" => options.report = duration(value).ok_or_else(bad)?,
            "drain" => options.drain = duration(value).ok_or_else(bad)?,
            "clients" => options.clients = value.parse().map_err(|_| bad())?,
            "round_trips" => options.round_trips = value.parse().map_err(|_| bad())?,
            "size" => options.size = value.parse().map_err(|_| bad())?,
            "connections" => options.connections = value.parse().map_err(|_| bad())?,
            "pin" => {
                options.pin = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(format!("pin={value}: write 0 or 1")),
                }
            }
            "chaos" => {
                options.chaos = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(format!("chaos={value}: write 0 or 1")),
                }
            }
            "fatal" => {
                options.fatal = Some(
                    FatalSignal::from_name(value)
                        .ok_or_else(|| format!("fatal={value}: write segv, bus, ill or fpe"))?,
                )
            }
            _ => return Err(format!("{key:?} is not a setting")),
        }
    }
    if !(1..=16).contains(&options.shards) {
        return Err(format!("shards={}: use 1 to 16", options.shards));
    }
    if usize::from(options.port) + options.shards > usize::from(u16::MAX) + 1 || options.port == 0 {
        return Err(format!("port={}: shard ports port..port+shards must be valid", options.port));
    }
    if !(1..=echo::CONNECTIONS_PER_SHARD_MAX).contains(&options.connections) {
        return Err(format!(
            "connections={}: use 1 to {} per shard",
            options.connections,
            echo::CONNECTIONS_PER_SHARD_MAX
        ));
    }
    if !(1..=echo::CLIENT_COUNT_MAX).contains(&options.clients) {
        return Err(format!("clients={}: use 1 to {}", options.clients, echo::CLIENT_COUNT_MAX));
    }
    if !(PACKET_SIZE_MIN as u64..=PACKET_SIZE_MAX as u64).contains(&options.size) {
        return Err(format!("size={}: use {PACKET_SIZE_MIN} to {PACKET_SIZE_MAX}", options.size));
    }
    if options.round_trips == 0 {
        return Err("round_trips=0: use at least 1".to_string());
    }
    if options.fatal.is_some() && options.shards < 2 {
        return Err("fatal= needs shards=2 or more: one shard to fault, one to serve".to_string());
    }
    Ok(options)
}

/// `250ms`, `2s`, `100us`: an integer and a unit; or `0`.
fn duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit {
        "us" => Some(Duration::from_micros(number)),
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        _ => None,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match options(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if options.client_mode { client(&options) } else { server(&options) }
}

/// The per-shard line of the server's report.
fn shard_line(index: usize, report: &ShardReport, connection_type: usize) -> String {
    let c = &report.counters;
    let state = match (report.quarantined, report.shutdown) {
        (Some(fault), _) => format!("QUARANTINED ({fault})"),
        (None, Some(shutdown)) if shutdown.drained => format!(
            "drained ({} isolate(s) ended in {} us)",
            shutdown.isolates_at_start,
            shutdown.ended_at.as_nanos().saturating_sub(shutdown.began_at.as_nanos()) / 1_000
        ),
        (None, Some(shutdown)) => {
            format!("drain forced ({} isolates torn down)", shutdown.remaining_isolates)
        }
        (None, None) => "serving".to_string(),
    };
    format!(
        "shard {index}: {state} io={} connections={} io_completed={} accepts_refused={} spawn_failed={} crashes={} restarts={}",
        report.io.driver.map_or("-", |driver| driver.name()),
        report.live_in_type(connection_type),
        c.io_completed,
        report.io.accepts_refused,
        c.spawn_failed,
        c.crashes,
        c.restarts,
    )
}

/// Boots `spec` with the driver and pinning of `options`; exit status 1, said on stderr,
/// when it cannot.
fn boot(spec: tina::SystemSpec, options: &Options) -> Result<Runtime, ExitCode> {
    let config =
        RuntimeConfig { io_driver: options.io, pin: options.pin, ..RuntimeConfig::default() };
    Runtime::boot(spec, config).map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::from(1)
    })
}

fn server(options: &Options) -> ExitCode {
    let config = ServerConfig {
        shards: options.shards,
        ip: options.ip,
        port_base: options.port,
        udp: false,
        connections: options.connections,
    };
    let spec = echo::server_spec::<DemoConnection>(&config);
    let connection_type =
        spec.type_named("connection").expect("the echo server registers its connections");
    let runtime = match boot(spec, options) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let reports = runtime.reports();
    let driver = reports[0].io.driver.map_or("-", |driver| driver.name());
    for shard in 0..options.shards {
        println!(
            "shard {shard} listens on {}:{} ({driver})",
            options.ip,
            options.port as usize + shard
        );
    }
    let _ = std::io::stdout().flush();
    // Watch while waiting for a signal: announce each quarantine once, and report every
    // `report` interval (`report=0s`: never).
    let announced: Vec<Cell<bool>> = (0..options.shards).map(|_| Cell::new(false)).collect();
    let last_report = Cell::new(Instant::now());
    let watch = |reports: &[ShardReport]| {
        for (index, report) in reports.iter().enumerate() {
            if let Some(fault) = report.quarantined
                && !announced[index].replace(true)
            {
                println!("shard {index} quarantined: {fault}; the other shards keep serving");
            }
        }
        if !options.report.is_zero() && last_report.get().elapsed() >= options.report {
            last_report.set(Instant::now());
            for (index, report) in reports.iter().enumerate() {
                println!("{}", shard_line(index, report, connection_type));
            }
        }
        let _ = std::io::stdout().flush();
        false
    };
    let (summary, _ended) = match runtime.run_until_signal(options.drain, watch) {
        Ok(ended) => ended,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    let drained = summary.drained();
    println!("stopped: {}", if drained { "drain finished" } else { "drain did not finish" });
    for (index, report) in summary.shards.iter().enumerate() {
        println!("{}", shard_line(index, report, connection_type));
    }
    if drained { ExitCode::SUCCESS } else { ExitCode::from(EXIT_NOT_DRAINED) }
}

/// Exit status of a server whose drain did not finish before `drain`.
const EXIT_NOT_DRAINED: u8 = 3;

fn client(options: &Options) -> ExitCode {
    // Shards that serve the clients: all, or all but the last when it is asked to fault.
    let serving = if options.fatal.is_some() { options.shards - 1 } else { options.shards };
    if let Some(signal) = options.fatal {
        let shard = options.shards - 1;
        let addr = (options.ip, options.port + shard as u16);
        let request = format!("tina:fatal {}", signal.name());
        match TcpStream::connect(addr).and_then(|mut stream| stream.write_all(request.as_bytes())) {
            Ok(()) => println!("asked shard {shard} to raise {signal}"),
            Err(error) => {
                eprintln!("error: cannot reach shard {shard} at {}:{}: {error}", addr.0, addr.1);
                return ExitCode::from(1);
            }
        }
    }
    let clients: Vec<ClientArgs> = (0..options.clients)
        .map(|client| ClientArgs {
            client,
            round_trips: options.round_trips,
            port: u64::from(options.port) + client % serving as u64,
            chaos: u64::from(options.chaos && client == 0),
            size: options.size,
            give_up: 0,
            server_ip: u64::from(options.ip.to_bits()),
        })
        .collect();
    let spec = echo::client_spec(&clients, true, false);
    let client_type = spec.type_named("client").expect("the client node registers its clients");
    let runtime = match boot(spec, options) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    println!(
        "{} clients x {} round trips of {} bytes against {}:{}..{}",
        options.clients,
        options.round_trips,
        options.size,
        options.ip,
        options.port,
        options.port as usize + serving - 1
    );
    let done = |reports: &[ShardReport]| reports.iter().all(|r| r.live_in_type(client_type) == 0);
    let (summary, ended) = match runtime.run_until_signal(options.drain, done) {
        Ok(ended) => ended,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    let c = &summary.shards[0].counters;
    let finished = c.exits_normal;
    println!(
        "clients finished={finished} of {} crashes={} restarts={} io_completed={}",
        options.clients, c.crashes, c.restarts, c.io_completed
    );
    match ended {
        tina::prod::Ended::Condition if finished >= options.clients => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}
