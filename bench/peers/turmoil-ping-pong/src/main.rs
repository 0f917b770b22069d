//! Ping-pong on turmoil: two hosts with UDP sockets exchange a 64-byte request and a
//! 64-byte response `--round-trips` times, one after the other, with a network latency
//! uniform in 1..=10 ms, from `--seed`. Prints `round_trips=<N> wall_ns=<ns>`, the wall
//! time of building the simulation and running it.
//!
//! Latency: turmoil's own latency between `min_message_latency` and
//! `max_message_latency` follows an exponential curve (`Exp(5)` over the range, mean about
//! a fifth of it), not a uniform one. To get a uniform 1..=10 ms like the other systems,
//! the driver draws each message's latency from its own seeded stream and sets it on the
//! link with `Sim::set_link_latency` (min = max) before the step in which the message is
//! sent. Only one message is ever in flight, so each message gets exactly one draw.
//! Turmoil delivers on its 1 ms tick, so a latency takes effect rounded up to the tick.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use turmoil::net::UdpSocket;

const BALL: usize = 64;
const PORT: u16 = 7000;
const LATENCY_MIN_NS: u64 = 1_000_000;
const LATENCY_MAX_NS: u64 = 10_000_000;

fn main() {
    let (seed, round_trips) = parse_args();
    let start = Instant::now();
    let sim_time = run(seed, round_trips);
    let wall = start.elapsed();
    println!("round_trips={round_trips} wall_ns={}", wall.as_nanos());
    eprintln!("sim_time_ns={}", sim_time.as_nanos());
}

/// Runs the simulation and returns the simulated time it took.
fn run(seed: u64, round_trips: u64) -> Duration {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        // Up to 20 ms a round trip for 200,000 round trips is 4,000 s; allow far more.
        .simulation_duration(Duration::from_secs(365 * 24 * 3600))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .build();

    // Messages sent so far, by either host: the driver draws a fresh latency after each.
    let sends = Rc::new(Cell::new(0u64));

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

    let client_sends = sends.clone();
    sim.client("client", async move {
        let sends = client_sends;
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
    assert_eq!(sends.get(), 2 * round_trips, "messages sent");
    sim.elapsed()
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

fn parse_args() -> (u64, u64) {
    const USAGE: &str = "usage: turmoil-ping-pong --seed S --round-trips N";
    let mut seed = None;
    let mut round_trips = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| fail(USAGE));
        let parsed = value.parse::<u64>().unwrap_or_else(|_| fail(USAGE));
        match flag.as_str() {
            "--seed" => seed = Some(parsed),
            "--round-trips" => round_trips = Some(parsed),
            _ => fail(USAGE),
        }
    }
    match (seed, round_trips) {
        (Some(s), Some(n)) if n > 0 => (s, n),
        _ => fail(USAGE),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(2);
}
