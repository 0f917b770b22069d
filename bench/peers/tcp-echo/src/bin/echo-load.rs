//! The TCP echo bench's load client, a process of its own (not part of any server).
//!
//! Opens `--connections` connections spread round robin over the `--addr` list, and on each
//! sends a `--size`-byte message, waits for its whole echo, checks it byte for byte and
//! sends the next: closed loop at full speed, or paced to a total of `--rate` requests per
//! second. After `--warmup` seconds it counts for `--seconds` seconds and prints one line
//! of `key=value` fields: requests, requests per second, latency p50/p99/max in
//! microseconds, mismatched echoes, failed connections, and with `--pid` the server's CPU
//! time over the counted window (utime + stime from /proc/PID/stat) per request.
//!
//! Usage: echo-load --addr HOST:PORT [--addr ...] [--connections 64] [--size 64]
//!                  [--seconds 5] [--warmup 1] [--rate RPS] [--pid PID]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Options {
    addrs: Vec<SocketAddr>,
    connections: usize,
    size: usize,
    seconds: f64,
    warmup: f64,
    rate: Option<f64>,
    pid: Option<u32>,
}

fn usage(problem: &str) -> ! {
    eprintln!("echo-load: {problem}");
    eprintln!(
        "usage: echo-load --addr HOST:PORT [--addr ...] [--connections N] [--size BYTES] \
         [--seconds S] [--warmup S] [--rate RPS] [--pid PID]"
    );
    std::process::exit(2)
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> T {
    value.parse().unwrap_or_else(|_| usage(&format!("{flag}: not a valid value: {value}")))
}

fn options() -> Options {
    let mut options = Options {
        addrs: Vec::new(),
        connections: 64,
        size: 64,
        seconds: 5.0,
        warmup: 1.0,
        rate: None,
        pid: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--addr" => options.addrs.push(parse(&flag, &value)),
            "--connections" => options.connections = parse(&flag, &value),
            "--size" => options.size = parse(&flag, &value),
            "--seconds" => options.seconds = parse(&flag, &value),
            "--warmup" => options.warmup = parse(&flag, &value),
            "--rate" => options.rate = Some(parse(&flag, &value)),
            "--pid" => options.pid = Some(parse(&flag, &value)),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    if options.addrs.is_empty() {
        usage("at least one --addr");
    }
    if options.connections == 0 || options.size == 0 || options.size > 4096 {
        usage("--connections at least 1, --size from 1 to 4096");
    }
    options
}

/// The server's CPU time so far (user + system), from /proc/PID/stat.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = 100u64; // CLK_TCK on Linux is 100 on every common configuration.
    Some(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
}

#[derive(Default)]
struct Tally {
    requests: u64,
    mismatches: u64,
    failures: u64,
}

async fn connection(
    addr: SocketAddr,
    index: usize,
    options: &Options,
    start: Instant,
    counted_from: Instant,
    end: Instant,
) -> (Tally, Histogram<u64>) {
    let mut tally = Tally::default();
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        tally.failures += 1;
        return (tally, latencies);
    };
    let _ = stream.set_nodelay(true);
    let mut message = vec![0u8; options.size];
    let mut echo = vec![0u8; options.size];
    // Each connection sends at rate / connections, offset so that sends spread evenly.
    let period =
        options.rate.map(|rate| Duration::from_secs_f64(options.connections as f64 / rate));
    let mut next = start
        + period.map_or(Duration::ZERO, |p| p.mul_f64(index as f64 / options.connections as f64));
    let mut sequence = 0u64;
    loop {
        if let Some(period) = period {
            tokio::time::sleep_until(next.into()).await;
            next += period;
        }
        let now = Instant::now();
        if now >= end {
            break;
        }
        sequence += 1;
        for (offset, byte) in message.iter_mut().enumerate() {
            *byte =
                (sequence as usize).wrapping_mul(31).wrapping_add(index).wrapping_add(offset) as u8;
        }
        if stream.write_all(&message).await.is_err() || stream.read_exact(&mut echo).await.is_err()
        {
            tally.failures += 1;
            break;
        }
        if echo != message {
            tally.mismatches += 1;
        }
        if now >= counted_from {
            tally.requests += 1;
            let micros = now.elapsed().as_micros().max(1) as u64;
            let _ = latencies.record(micros.min(60_000_000));
        }
    }
    (tally, latencies)
}

fn main() {
    let options: &'static Options = Box::leak(Box::new(options()));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let start = Instant::now() + Duration::from_millis(100);
    let counted_from = start + Duration::from_secs_f64(options.warmup);
    let end = counted_from + Duration::from_secs_f64(options.seconds);
    let (tally, latencies, cpu) = runtime.block_on(async move {
        let tasks: Vec<_> = (0..options.connections)
            .map(|index| {
                let addr = options.addrs[index % options.addrs.len()];
                tokio::spawn(connection(addr, index, options, start, counted_from, end))
            })
            .collect();
        tokio::time::sleep_until(counted_from.into()).await;
        let cpu_before = options.pid.and_then(cpu_time);
        tokio::time::sleep_until(end.into()).await;
        let cpu_after = options.pid.and_then(cpu_time);
        let mut tally = Tally::default();
        let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for task in tasks {
            let (one, histogram) = task.await.expect("a connection task");
            tally.requests += one.requests;
            tally.mismatches += one.mismatches;
            tally.failures += one.failures;
            latencies.add(histogram).expect("same bounds");
        }
        let cpu = cpu_before.zip(cpu_after).map(|(before, after)| after.saturating_sub(before));
        (tally, latencies, cpu)
    });
    let rps = tally.requests as f64 / options.seconds;
    print!(
        "requests={} rps={:.0} p50_us={} p99_us={} max_us={} mismatches={} failures={}",
        tally.requests,
        rps,
        latencies.value_at_quantile(0.50),
        latencies.value_at_quantile(0.99),
        latencies.max(),
        tally.mismatches,
        tally.failures,
    );
    if let Some(cpu) = cpu {
        let per_request = cpu.as_nanos() as f64 / tally.requests.max(1) as f64;
        print!(" server_cpu_ms={} cpu_ns_per_req={:.0}", cpu.as_millis(), per_request);
    }
    println!();
    if tally.mismatches > 0 {
        std::process::exit(1);
    }
}
