//! Ping-pong on madsim: a client and a server on two simulated nodes exchange a 64-byte
//! request and a 64-byte response `--round-trips` times, one after the other, with a
//! network latency uniform in 1..=10 ms, from `--seed`. Prints `round_trips=<N> wall_ns=<ns>`,
//! the wall time of building the runtime and running the simulation.
//!
//! Two modes:
//! - UDP (the default): the client sends each request as one datagram on a madsim
//!   `Endpoint` and the server sends it back as one datagram.
//! - TCP (`--tcp`): the client connects once to a `TcpListener` on the server node, then
//!   writes each request on the stream and reads exactly 64 bytes back; the server echoes
//!   64-byte messages until the client closes the stream. madsim's `TcpStream` sends what
//!   was written on `flush`, as one message with its own latency draw, so both ends flush
//!   after each write. Connection setup itself takes no network latency in madsim.
//!
//! Build with `RUSTFLAGS="--cfg madsim"`; without it madsim is plain tokio.

#[cfg(not(madsim))]
compile_error!("build with RUSTFLAGS=\"--cfg madsim\" to get madsim's simulation mode");

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use madsim::net::{Config as NetConfig, Endpoint, TcpListener, TcpStream};
use madsim::runtime::{NodeHandle, Runtime};
// madsim's `TcpStream` implements tokio's `AsyncRead`/`AsyncWrite`; the extension traits
// with `read_exact`/`write_all` come from tokio itself (the same tokio madsim builds on).
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const BALL: usize = 64;
const TAG: u64 = 0;
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const PORT: u16 = 7000;

/// The transport the round trips run over.
#[derive(Clone, Copy)]
enum Mode {
    Udp,
    Tcp,
}

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
    rt.block_on(async move {
        let sim_start = madsim::time::Instant::now();
        match mode {
            Mode::Udp => udp(client, server, round_trips).await,
            Mode::Tcp => tcp(client, server, round_trips).await,
        }
        sim_start.elapsed()
    })
}

/// UDP mode: one datagram per request and one per response.
async fn udp(client: NodeHandle, server: NodeHandle, round_trips: u64) {
    let server_addr = SocketAddr::new(SERVER_IP, PORT);
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
}

/// TCP mode: one connection; each request and response is a 64-byte write and flush.
async fn tcp(client: NodeHandle, server: NodeHandle, round_trips: u64) {
    let server_addr = SocketAddr::new(SERVER_IP, PORT);
    // Bind the listener before the client connects: a connect to an unbound port is refused.
    let listener = server
        .spawn(async move { TcpListener::bind(server_addr).await.expect("server bind") })
        .await
        .expect("server bind task");
    server.spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("server accept");
        let mut buf = [0u8; BALL];
        while read_message(&mut stream, &mut buf).await.expect("server read") {
            stream.write_all(&buf).await.expect("server write");
            stream.flush().await.expect("server flush");
        }
    });
    client
        .spawn(async move {
            let mut stream = TcpStream::connect(server_addr).await.expect("client connect");
            let mut request = [0u8; BALL];
            let mut response = [0u8; BALL];
            for i in 0..round_trips {
                fill(&mut request, i);
                stream.write_all(&request).await.expect("client write");
                stream.flush().await.expect("client flush");
                stream.read_exact(&mut response).await.expect("client read");
                assert_eq!(response, request, "round trip {i}: response does not echo the request");
            }
        })
        .await
        .expect("client task");
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
    eprintln!("madsim-ping-pong: {msg}");
    eprintln!("usage: madsim-ping-pong [--tcp] --seed S --round-trips N");
    std::process::exit(2);
}
