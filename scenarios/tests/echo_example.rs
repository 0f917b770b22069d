//! The `echo` example as a person runs it: a server child process driven by many
//! concurrent TCP clients over loopback, a fatal signal provoked in one shard, and a
//! SIGTERM during load; on io_uring and on epoll.
#![cfg(target_os = "linux")]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "these tests drive a child process and client threads in real time"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes per request, as the bench uses.
const SIZE: usize = 64;
/// Clients per shard.
const CLIENTS_PER_SHARD: usize = 8;
/// How long anything here may take before the test calls it stuck.
const PATIENCE: Duration = Duration::from_secs(20);

/// The tests here run one at a time: each is a server with two pinned shards and up to 16
/// busy client threads, and the machine may have two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The example binary, built by the cargo running this test, in this test's profile.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "-p", "tina-scenarios", "--example", "echo"]);
    if profile.file_name().is_some_and(|dir| dir == "release") {
        build.arg("--release");
    }
    assert!(build.status().expect("cargo runs").success(), "cargo build --example echo");
    profile.join("examples").join("echo")
}

/// Two consecutive free ports on loopback (the server's shards listen on `p` and `p+1`).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
        let port = first.local_addr().expect("bound").port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free ports");
}

/// The server child, its output collected line by line as it comes.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Server {
    fn start(port: u16, io: &str) -> Server {
        Server::start_with(port, io, &[])
    }

    /// Starts the server with `extra` settings after the port, driver and report interval.
    fn start_with(port: u16, io: &str, extra: &[&str]) -> Server {
        let mut args = vec![format!("port={port}"), format!("io={io}"), "report=200ms".to_string()];
        args.extend(extra.iter().map(|arg| (*arg).to_string()));
        let mut child = Command::new(example())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the example starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped"));
        let readers = [stdout, stderr]
            .into_iter()
            .map(|stream| {
                let lines = Arc::clone(&lines);
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { return };
                        lines.lock().expect("lines").push(line);
                    }
                })
            })
            .collect();
        let server = Server { child, lines, readers };
        server.wait_for(&format!("shard 1 listens on 127.0.0.1:{}", port + 1));
        server
    }

    /// The server's resident memory in KiB, from `/proc/<pid>/status`.
    fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Waits until a line contains `text`.
    fn wait_for(&self, text: &str) {
        let started = Instant::now();
        while !self.lines.lock().expect("lines").iter().any(|line| line.contains(text)) {
            assert!(started.elapsed() < PATIENCE, "no line with {text:?} in:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the exit; returns the exit code and the whole output.
    fn finish(mut self) -> (Option<i32>, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if started.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("the server did not exit:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for reader in self.readers.drain(..) {
            reader.join().expect("reader");
        }
        (status.code(), self.output())
    }
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    /// Requests whose whole echo came back, byte for byte.
    echoed: AtomicU64,
    /// Echoes that differed from their request (must stay 0).
    mismatched: AtomicU64,
    /// Connections that failed or ended (reset, end of stream, timeout).
    failures: AtomicU64,
}

/// A client thread: connects to `port`, and until `stop` sends numbered 64-byte requests
/// one at a time, checking each echo; reconnects after a failure.
fn client(port: u16, id: u64, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                tally.failures.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let mut request = [0u8; SIZE];
                request[..8].copy_from_slice(&id.to_le_bytes());
                request[8..16].copy_from_slice(&round.to_le_bytes());
                for (index, byte) in request[16..].iter_mut().enumerate() {
                    *byte = (id as usize * 7 + round as usize + index) as u8;
                }
                let mut echo = [0u8; SIZE];
                if stream.write_all(&request).is_err() || stream.read_exact(&mut echo).is_err() {
                    tally.failures.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if echo == request {
                    tally.echoed.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.mismatched.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

/// The stop flag, the tallies per shard and the threads of `load`'s clients.
type Load = (Arc<AtomicBool>, [Vec<Arc<Tally>>; 2], Vec<JoinHandle<()>>);

/// Clients on both shards of a server on `port`.
fn load(port: u16) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tallies: [Vec<Arc<Tally>>; 2] = [Vec::new(), Vec::new()];
    let mut threads = Vec::new();
    for (shard, tallies) in tallies.iter_mut().enumerate() {
        for index in 0..CLIENTS_PER_SHARD {
            let tally = Arc::new(Tally::default());
            let id = (shard * CLIENTS_PER_SHARD + index) as u64;
            threads.push(client(port + shard as u16, id, Arc::clone(&stop), Arc::clone(&tally)));
            tallies.push(tally);
        }
    }
    (stop, tallies, threads)
}

fn echoed(tallies: &[Arc<Tally>]) -> Vec<u64> {
    tallies.iter().map(|tally| tally.echoed.load(Ordering::Relaxed)).collect()
}

fn mismatched(tallies: &[[Vec<Arc<Tally>>; 2]]) -> u64 {
    tallies.iter().flatten().flatten().map(|tally| tally.mismatched.load(Ordering::Relaxed)).sum()
}

/// Waits until every client in `tallies` has more echoes than in `before`.
fn each_makes_progress(tallies: &[Arc<Tally>], before: &[u64], what: &str) {
    let started = Instant::now();
    while echoed(tallies).iter().zip(before).any(|(now, then)| now <= then) {
        assert!(started.elapsed() < PATIENCE, "{what}: {:?} -> {:?}", before, echoed(tallies));
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A server on `io` with both shards busy: every client has had at least one echo.
fn busy_server(io: &str) -> (u16, Server, Load) {
    let port = free_port_pair();
    let server = Server::start(port, io);
    let load = load(port);
    each_makes_progress(&load.1[0], &[0; CLIENTS_PER_SHARD], "shard 0 serves");
    each_makes_progress(&load.1[1], &[0; CLIENTS_PER_SHARD], "shard 1 serves");
    (port, server, load)
}

/// Stops the clients and waits for their threads.
fn end_load(stop: &AtomicBool, threads: Vec<JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("client");
    }
}

#[test]
fn a_fatal_signal_quarantines_one_shard_and_the_other_keeps_serving() {
    let _serial = one_at_a_time();
    for io in ["io_uring", "epoll"] {
        let (port, server, (stop, tallies, threads)) = busy_server(io);

        // A person's request on its own connection to shard 1.
        let mut fatal = TcpStream::connect(("127.0.0.1", port + 1)).expect("shard 1 accepts");
        fatal.write_all(b"tina:fatal segv\n").expect("sent");
        server.wait_for("shard 1 quarantined: SIGSEGV");

        // Shard 0's clients all keep getting their echoes after the fault.
        let before = echoed(&tallies[0]);
        each_makes_progress(&tallies[0], &before, "shard 0 keeps serving");
        server.wait_for("shard 1: QUARANTINED (SIGSEGV");
        let again = echoed(&tallies[0]);
        each_makes_progress(&tallies[0], &again, "shard 0 keeps serving");

        end_load(&stop, threads);
        assert_eq!(mismatched(std::slice::from_ref(&tallies)), 0, "every echo byte-exact ({io})");
        server.signal("TERM");
        let (code, output) = server.finish();
        assert!(
            output.contains(&format!("shard 0 listens on 127.0.0.1:{port} ({io})")),
            "{output}"
        );
        assert!(output.contains("shard 0: serving"), "{output}");
        // The healthy shard drains; the quarantined one has nothing to drain and does not
        // hold the stop up.
        assert!(output.contains("stopped: drain finished"), "{output}");
        assert!(output.contains("shard 0: drained ("), "{output}");
        assert!(output.contains("shard 1: QUARANTINED (SIGSEGV"), "{output}");
        assert_eq!(code, Some(0), "a clean stop ({io}):\n{output}");
    }
}

fn failures(tallies: &[Arc<Tally>]) -> Vec<u64> {
    tallies.iter().map(|tally| tally.failures.load(Ordering::Relaxed)).collect()
}

/// SIGTERM while 16 clients keep both shards busy: the listeners close, every connection
/// answers the request in hand byte for byte and closes, and the server exits 0 saying
/// its drain finished.
#[test]
fn sigterm_under_load_drains_and_every_echo_stays_byte_exact() {
    let _serial = one_at_a_time();
    for io in ["io_uring", "epoll"] {
        let (_port, server, (stop, tallies, threads)) = busy_server(io);
        let failed_before: Vec<Vec<u64>> = tallies.iter().map(|t| failures(t)).collect();

        server.signal("TERM");
        let (code, output) = server.finish();
        // The clients ran on through the drain; stop them now that the server is gone.
        end_load(&stop, threads);
        assert_eq!(mismatched(std::slice::from_ref(&tallies)), 0, "every echo byte-exact ({io})");
        // Every client saw its connection end: the drain closed them, it did not wait for
        // the clients to leave.
        for (shard, tallies) in tallies.iter().enumerate() {
            for (client, (now, then)) in
                failures(tallies).iter().zip(&failed_before[shard]).enumerate()
            {
                assert!(
                    now > then,
                    "shard {shard} client {client} was never closed ({io}):\n{output}"
                );
            }
        }
        assert!(output.contains("stopped: drain finished"), "{io}:\n{output}");
        assert!(output.contains("shard 0: drained ("), "{io}:\n{output}");
        assert!(output.contains("shard 1: drained ("), "{io}:\n{output}");
        assert_eq!(code, Some(0), "a drained stop ({io}):\n{output}");
    }
}

/// Sends `SIZE` bytes of `byte` and checks they come back.
fn echo_once(stream: &mut TcpStream, byte: u8) {
    stream.write_all(&[byte; SIZE]).expect("sent");
    let mut echo = [0u8; SIZE];
    stream.read_exact(&mut echo).expect("echoed");
    assert_eq!(echo, [byte; SIZE]);
}

/// A flood of connections far beyond the server's limit (8 connection isolates per shard
/// here): the excess is closed at once and counted, the resident memory stays flat, and a
/// client that comes afterwards is served.
#[test]
fn a_connection_flood_beyond_the_limit_is_refused_and_memory_stays_flat() {
    let _serial = one_at_a_time();
    const LIMIT: usize = 8;
    const FLOOD: usize = 2_048;
    const FLOOD_CHUNK: usize = 32;
    for io in ["io_uring", "epoll"] {
        let port = free_port_pair();
        let server = Server::start_with(port, io, &[&format!("connections={LIMIT}")]);
        // Warm up: a full set of connections, each echoed once, so every page the limit
        // allows has been touched before the baseline.
        let mut held: Vec<TcpStream> = (0..LIMIT)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("shard 0 accepts"))
            .collect();
        for stream in &mut held {
            stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
            echo_once(stream, 7);
        }
        let before = server.resident_kib();
        // The flood, while the limit's worth of connections stays open and busy (each echoes
        // once per chunk, so the server's idle timeout never closes one): every one of these
        // is refused (closed by the server at once). Chunks stay below the listen backlog,
        // so no connect waits out a SYN retransmission on a slow machine.
        let mut refused = 0;
        for chunk in 0..FLOOD / FLOOD_CHUNK {
            let flood: Vec<TcpStream> = (0..FLOOD_CHUNK)
                .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("the kernel accepts"))
                .collect();
            for mut stream in flood {
                stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
                let mut byte = [0u8; 1];
                match stream.read(&mut byte) {
                    Ok(0) => refused += 1,
                    Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                        refused += 1
                    }
                    other => panic!("{io} chunk {chunk}: a connection past the limit: {other:?}"),
                }
            }
            for stream in &mut held {
                echo_once(stream, chunk as u8);
            }
        }
        let after = server.resident_kib();
        assert_eq!(refused, FLOOD, "{io}: every connection past the limit was closed");
        assert!(
            after <= before + 1024,
            "{io}: resident memory grew from {before} KiB to {after} KiB under the flood"
        );
        // The held connections still echo; a newcomer is served once one of them leaves.
        for stream in &mut held {
            echo_once(stream, 9);
        }
        drop(held.pop());
        let started = Instant::now();
        loop {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("shard 0 accepts");
            stream.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
            let mut echo = [0u8; SIZE];
            if stream.write_all(&[5u8; SIZE]).is_ok() && stream.read_exact(&mut echo).is_ok() {
                assert_eq!(echo, [5u8; SIZE]);
                break;
            }
            // The freed slot is not back yet (its close is still under way).
            assert!(started.elapsed() < PATIENCE, "{io}: no slot came back");
        }
        drop(held);
        server.signal("TERM");
        let (code, output) = server.finish();
        let refusals: u64 = output
            .lines()
            .filter(|line| line.starts_with("shard 0: drained"))
            .filter_map(|line| {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|word| word.strip_prefix(name))
                        .and_then(|value| value.parse::<u64>().ok())
                };
                Some(field("spawn_failed=")? + field("accepts_refused=")?)
            })
            .next()
            .expect("shard 0's final line");
        assert!(refusals >= FLOOD as u64, "{io}: {refusals} refusals counted:\n{output}");
        assert_eq!(code, Some(0), "{io}:\n{output}");
    }
}
