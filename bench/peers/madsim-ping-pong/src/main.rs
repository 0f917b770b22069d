//! Ping-pong on madsim: two endpoints on two simulated nodes exchange a 64-byte request
//! and a 64-byte response `--round-trips` times, one after the other, with a network
//! latency uniform in 1..=10 ms, from `--seed`. Prints `round_trips=<N> wall_ns=<ns>`,
//! the wall time of building the runtime and running the simulation.
//!
//! Build with `RUSTFLAGS="--cfg madsim"`; without it madsim is plain tokio.

#[cfg(not(madsim))]
compile_error!("build with RUSTFLAGS=\"--cfg madsim\" to get madsim's simulation mode");

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use madsim::net::{Config as NetConfig, Endpoint};
use madsim::runtime::Runtime;

const BALL: usize = 64;
const TAG: u64 = 0;
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const PORT: u16 = 7000;

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
    let config = madsim::Config {
        net: NetConfig {
            packet_loss_rate: 0.0,
            // madsim draws the latency with `gen_range` over a half-open range; one
            // nanosecond past 10 ms makes it 1..=10 ms like the other systems.
            send_latency: Duration::from_millis(1)..Duration::from_millis(10) + Duration::from_nanos(1),
        },
        ..Default::default()
    };
    let rt = Runtime::with_seed_and_config(seed, config);
    let client = rt.create_node().name("client").ip(CLIENT_IP).build();
    let server = rt.create_node().name("server").ip(SERVER_IP).build();
    let server_addr = SocketAddr::new(SERVER_IP, PORT);
    rt.block_on(async move {
        let sim_start = madsim::time::Instant::now();
        // Bind the server before the client sends anything: UDP to an unbound port is lost.
        let ep = server
            .spawn(async move { Endpoint::bind(server_addr).await.expect("server bind") })
            .await
            .expect("server bind task");
        server.spawn(async move {
            let mut buf = [0u8; BALL];
            loop {
                let (len, from) = ep.recv_from(TAG, &mut buf).await.expect("server recv");
                ep.send_to(from, TAG, &buf[..len]).await.expect("server send");
            }
        });
        client
            .spawn(async move {
                let ep = Endpoint::bind(SocketAddr::new(CLIENT_IP, PORT)).await.expect("client bind");
                let mut request = [0u8; BALL];
                let mut response = [0u8; BALL];
                for i in 0..round_trips {
                    fill(&mut request, i);
                    ep.send_to(server_addr, TAG, &request).await.expect("client send");
                    let (len, from) = ep.recv_from(TAG, &mut response).await.expect("client recv");
                    assert_eq!(from, server_addr, "round trip {i}: response from {from}");
                    assert_eq!(len, BALL, "round trip {i}: response of {len} bytes");
                    assert_eq!(response, request, "round trip {i}: response does not echo the request");
                }
            })
            .await
            .expect("client task");
        sim_start.elapsed()
    })
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
    const USAGE: &str = "usage: madsim-ping-pong --seed S --round-trips N";
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
