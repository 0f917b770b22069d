//! How long the linearizability checker takes on large key-value histories: 8 clients over
//! 1,000 keys, operations with overlapping intervals, each taking effect at a point inside
//! its interval (a few percent get no response and take effect later, or never), checked
//! at 10k, 100k and 1M operations.
//!
//! Not a correctness test (the tests are); it asserts only that every history passes.
//! Wall time covers `check` alone, not generating the history.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tina_checkers::linearizability::{
    History, Kv, KvInput, KvOutput, Model, Options, Report, check,
};

const CLIENTS: u64 = 8;
const KEYS: u64 = 1_000;
const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const RUNS: usize = 3;
/// Values written are below this.
const VALUES: u64 = 100;
/// Out of 1,000: operations whose client gives up waiting.
const NO_RESPONSE_PER_MILLE: u64 = 30;
/// Longest operation, and longest pause between a client's operations.
const DURATION_NS_MAX: u64 = 1_000;
const PAUSE_NS_MAX: u64 = 100;

/// SplitMix64: a small deterministic generator, so every run checks the same histories.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// One generated operation before the store has run.
struct Planned {
    client: u64,
    input: KvInput,
    invoke_ns: u64,
    /// Completion time, or `None` for no response.
    complete_ns: Option<u64>,
    /// When it takes effect, or `None` for never.
    point_ns: Option<u64>,
}

/// A linearizable history of `size` operations: clients run one operation at a time, each
/// operation takes effect at a point inside its interval, and outputs are what a real
/// store gave at those points.
fn generate(size: usize, rng: &mut SplitMix64) -> History<KvInput, KvOutput> {
    let mut planned = Vec::with_capacity(size);
    let mut now = [0u64; CLIENTS as usize];
    for index in 0..size {
        let client = index as u64 % CLIENTS;
        let key = rng.below(KEYS);
        let input = match rng.below(10) {
            0..4 => KvInput::Put { key, value: rng.below(VALUES) },
            4..9 => KvInput::Get { key },
            _ => KvInput::Cas { key, expected: Some(rng.below(VALUES)), new: rng.below(VALUES) },
        };
        let invoke_ns = now[client as usize] + rng.below(PAUSE_NS_MAX + 1);
        let duration_ns = 1 + rng.below(DURATION_NS_MAX);
        let complete_ns = invoke_ns + duration_ns;
        let point_ns = invoke_ns + rng.below(duration_ns + 1);
        now[client as usize] = complete_ns;
        let op = if rng.below(1_000) < NO_RESPONSE_PER_MILLE {
            let late = point_ns + rng.below(3 * duration_ns);
            Planned { client, input, invoke_ns, complete_ns: None, point_ns: Some(late) }
        } else {
            Planned {
                client,
                input,
                invoke_ns,
                complete_ns: Some(complete_ns),
                point_ns: Some(point_ns),
            }
        };
        planned.push(op);
    }
    // Half the operations without a response never take effect.
    for op in &mut planned {
        if op.complete_ns.is_none() && rng.below(2) == 0 {
            op.point_ns = None;
        }
    }
    let outputs = run_store(&planned);
    let mut history = History::new();
    for (op, output) in planned.iter().zip(outputs) {
        let id = history.invoke(op.client, op.input, op.invoke_ns);
        if let Some(complete_ns) = op.complete_ns {
            history.complete(id, output, complete_ns).expect("a well-formed history");
        }
    }
    history
}

/// Each operation's output from a real store run in linearization-point order.
fn run_store(planned: &[Planned]) -> Vec<KvOutput> {
    let mut order: Vec<usize> =
        (0..planned.len()).filter(|&i| planned[i].point_ns.is_some()).collect();
    order.sort_by_key(|&index| (planned[index].point_ns, index));
    let mut outputs = vec![KvOutput::Ok; planned.len()];
    let mut store: BTreeMap<u64, u64> = BTreeMap::new();
    for index in order {
        let input = &planned[index].input;
        let (state, output) = Kv.step(&store.get(&input.key()).copied(), input);
        if let Some(value) = state {
            store.insert(input.key(), value);
        }
        outputs[index] = output;
    }
    outputs
}

#[expect(clippy::disallowed_methods, reason = "benchmarks measure wall time")]
fn timed<T>(work: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let value = work();
    (start.elapsed(), value)
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn main() {
    println!("linearizability check, {CLIENTS} clients, {KEYS} keys, median of {RUNS} runs");
    println!("{:>9} {:>6} {:>11} {:>21} {:>12}", "ops", "keys", "median ms", "range ms", "steps");
    let mut rng = SplitMix64(0x11ea_4be4c4);
    for size in SIZES {
        let history = generate(size, &mut rng);
        let mut samples = Vec::with_capacity(RUNS);
        let mut last: Option<Report<u64, KvInput, KvOutput>> = None;
        for _ in 0..RUNS {
            let (elapsed, report) = timed(|| check(&Kv, &history, &Options::default()));
            assert!(report.outcome.is_linearizable(), "{}", report.outcome);
            if let Some(previous) = &last {
                assert_eq!(previous, &report, "the same history gave two reports");
            }
            samples.push(elapsed);
            last = Some(report);
        }
        samples.sort();
        let report = last.expect("at least one run");
        println!(
            "{:>9} {:>6} {:>11.1} {:>9.1} .. {:>8.1} {:>12}",
            size,
            report.partition_count,
            milliseconds(samples[RUNS / 2]),
            milliseconds(samples[0]),
            milliseconds(samples[RUNS - 1]),
            report.steps,
        );
    }
}
