//! Ping-pong on turmoil: a client and a server on two hosts exchange a 64-byte request and
//! a 64-byte response `--round-trips` times, one after the other, with a network latency
//! uniform in 1..=10 ms, from `--seed`. Prints `round_trips=<N> wall_ns=<ns>`, the wall
//! time of building the simulation and running it.
//!
//! Two modes:
//! - UDP (the default): the client sends each request as one datagram on a `UdpSocket`
//!   and the server sends it back as one datagram.
//! - TCP (`--tcp`): the client connects once to a `TcpListener` on the server host, then
//!   writes each request on the stream and reads exactly 64 bytes back; the server echoes
//!   64-byte messages until the client closes the stream. Turmoil sends each write as one
//!   data segment over the simulated network; the connect sends one SYN segment (its
//!   SYN-ACK does not cross the network), and there are no ACK segments.
//!
//! Latency: turmoil's own latency between `min_message_latency` and
//! `max_message_latency` follows an exponential curve (`Exp(5)` over the range, mean about
//! a fifth of it), not a uniform one. To get a uniform 1..=10 ms like the other systems,
//! the driver draws each message's latency from its own seeded stream and sets it on the
//! link with `Sim::set_link_latency` (min = max) before the step in which the message is
//! sent. Only one message is ever in flight (a datagram, or in TCP mode the SYN or a data
//! segment), so each message gets exactly one draw. Turmoil delivers on its 1 ms tick, so
//! a latency takes effect rounded up to the tick.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use turmoil::Sim;
use turmoil::net::{TcpListener, TcpStream, UdpSocket};

const BALL: usize = 64;
const PORT: u16 = 7000;
const LATENCY_MIN_NS: u64 = 1_000_000;
const LATENCY_MAX_NS: u64 = 10_000_000;

/// The transport the round trips run over.
#[derive(Clone, Copy)]
enum Mode {
    Udp,
    Tcp,
}

/// Messages sent so far over the simulated network, by either host: the driver draws a
/// fresh latency after each. A host counts a message in the same poll that sends it.
type Sends = Rc<Cell<u64>>;

fn main() {
    let (mode, seed, round_trips) = parse_args();
    let start = Instant::now();
    let sim_time = run(mode, seed, round_trips);
    let wall = start.elapsed();
    println!("round_trips={round_trips} wall_ns={}", wall.as_nanos());
    eprintln!("sim_time_ns={}", sim_time.as_nanos());
}

/// Runs the simulation and returns the simulated time it took.
fn run(mode: Mode, seed: u64, round_trips: u64) -> Duration {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        // Up to 20 ms a round trip for 200,000 round trips is 4,000 s (plus a SYN of at
        // most 10 ms in TCP mode); allow far more.
        .simulation_duration(Duration::from_secs(365 * 24 * 3600))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .build();

    let sends: Sends = Rc::new(Cell::new(0));
    let messages = match mode {
        Mode::Udp => udp(&mut sim, &sends, round_trips),
        Mode::Tcp => tcp(&mut sim, &sends, round_trips),
    };

    let client_ip = sim.lookup("client");
    let server_ip = sim.lookup("server");
    let mut latency = SplitMix64(seed ^ 0x6c61_7465_6e63_7921);
    let mut seen = 0u64;
    sim.set_link_latency(client_ip, server_ip, latency.draw());
    loop {
        let sent = sends.get();
        if sent != seen {
            assert_eq!(sent - seen, 1, "two messages sent in one step: one latency draw for both");
            seen = sent;
            sim.set_link_latency(client_ip, server_ip, latency.draw());
        }
        if sim.step().expect("simulation failed") {
            break;
        }
    }
    assert_eq!(sends.get(), messages, "messages sent");
    sim.elapsed()
}

/// UDP mode: one datagram per request and one per response. Returns the number of
/// messages the run sends.
fn udp(sim: &mut Sim<'_>, sends: &Sends, round_trips: u64) -> u64 {
    let server_sends = sends.clone();
    sim.host("server", move || {
        let sends = server_sends.clone();
        async move {
            let sock = UdpSocket::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
            let mut buf = [0u8; BALL];
            loop {
                let (len, from) = sock.recv_from(&mut buf).await?;
                sock.send_to(&buf[..len], from).await?;
                sends.set(sends.get() + 1);
            }
        }
    });

    let sends = sends.clone();
    sim.client("client", async move {
        let server = SocketAddr::new(turmoil::lookup("server"), PORT);
        let sock = UdpSocket::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
        let mut request = [0u8; BALL];
        let mut response = [0u8; BALL];
        for i in 0..round_trips {
            fill(&mut request, i);
            sock.send_to(&request, server).await?;
            sends.set(sends.get() + 1);
            let (len, from) = sock.recv_from(&mut response).await?;
            assert_eq!(from, server, "round trip {i}: response from {from}");
            assert_eq!(len, BALL, "round trip {i}: response of {len} bytes");
            assert_eq!(response, request, "round trip {i}: response does not echo the request");
        }
        Ok(())
    });

    2 * round_trips
}

/// TCP mode: one connection, then one data segment per request and one per response.
/// Returns the number of messages the run sends: the SYN and the data segments. (The
/// client's FIN goes out as its stream drops, when the simulation is already finished.)
fn tcp(sim: &mut Sim<'_>, sends: &Sends, round_trips: u64) -> u64 {
    let server_sends = sends.clone();
    sim.host("server", move || {
        let sends = server_sends.clone();
        async move {
            let listener = TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
            let (mut stream, _) = listener.accept().await?;
            let mut buf = [0u8; BALL];
            while read_message(&mut stream, &mut buf).await? {
                // A write of 64 bytes is sent whole, as one segment.
                stream.write_all(&buf).await?;
                sends.set(sends.get() + 1);
            }
            Ok(())
        }
    });

    let sends = sends.clone();
    sim.client("client", async move {
        let server = SocketAddr::new(turmoil::lookup("server"), PORT);
        // `connect` sends the SYN in its first poll, so counting it just before is
        // counting it in the same step.
        sends.set(sends.get() + 1);
        let mut stream = TcpStream::connect(server).await?;
        let mut request = [0u8; BALL];
        let mut response = [0u8; BALL];
        for i in 0..round_trips {
            fill(&mut request, i);
            stream.write_all(&request).await?;
            sends.set(sends.get() + 1);
            stream.read_exact(&mut response).await?;
            assert_eq!(response, request, "round trip {i}: response does not echo the request");
        }
        Ok(())
    });

    1 + 2 * round_trips
}

/// Reads one whole message into `buf`, across as many reads as it takes. Returns `false`
/// if the peer closed the stream before the message's first byte (the orderly end), and
/// an error if it closed the stream part way through a message.
async fn read_message(stream: &mut (impl AsyncRead + Unpin), buf: &mut [u8; BALL]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < BALL {
        match stream.read(&mut buf[filled..]).await? {
            0 if filled == 0 => return Ok(false),
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream closed after {filled} of {BALL} bytes"),
                ));
            }
            n => filled += n,
        }
    }
    Ok(true)
}

/// The per-message latency stream: SplitMix64, uniform in `[LATENCY_MIN_NS, LATENCY_MAX_NS]`.
struct SplitMix64(u64);

impl SplitMix64 {
    fn draw(&mut self) -> Duration {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let span = LATENCY_MAX_NS - LATENCY_MIN_NS + 1;
        Duration::from_nanos(LATENCY_MIN_NS + z % span)
    }
}

/// The request of round trip `i`: distinct per round trip and per byte.
fn fill(buf: &mut [u8; BALL], i: u64) {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
    for chunk in buf.chunks_exact_mut(8) {
        x ^= x >> 29;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
}

/// Parses `[--tcp] --seed S --round-trips N` (flags in any order).
fn parse_args() -> (Mode, u64, u64) {
    let mut mode = Mode::Udp;
    let mut seed = None;
    let mut round_trips = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--tcp" => {
                mode = Mode::Tcp;
                continue;
            }
            "--seed" => &mut seed,
            "--round-trips" => &mut round_trips,
            _ => fail(&format!("unknown argument {flag:?}")),
        };
        let value = args.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        let parsed = value
            .parse::<u64>()
            .unwrap_or_else(|_| fail(&format!("{flag}: {value:?} is not a non-negative integer")));
        *slot = Some(parsed);
    }
    match (seed, round_trips) {
        (Some(s), Some(n)) if n > 0 => (mode, s, n),
        (None, _) => fail("--seed is required"),
        (_, None) => fail("--round-trips is required"),
        _ => fail("--round-trips must be at least 1"),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("turmoil-ping-pong: {msg}");
    eprintln!("usage: turmoil-ping-pong [--tcp] --seed S --round-trips N");
    std::process::exit(2);
}
