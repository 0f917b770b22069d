//! The linearizability checker against histories of the `Kv` model whose verdicts are
//! known: classic small histories, P-compositionality, the claims a counterexample makes,
//! the step budget, bad input, and generated histories that are linearizable by
//! construction (and stop being so when one read is corrupted).

use tina_checkers::linearizability::{
    Counterexample, History, HistoryError, Kv, KvInput, KvOutput, OpId, Options, Outcome, check,
};

/// One operation: client, input, invocation time, and the output and completion time if
/// it completed.
type Op = (u64, KvInput, u64, Option<(KvOutput, u64)>);

type KvHistory = History<KvInput, KvOutput>;

fn put(key: u64, value: u64) -> KvInput {
    KvInput::Put { key, value }
}

fn get(key: u64) -> KvInput {
    KvInput::Get { key }
}

fn cas(key: u64, expected: Option<u64>, new: u64) -> KvInput {
    KvInput::Cas { key, expected, new }
}

fn ok(at_ns: u64) -> Option<(KvOutput, u64)> {
    Some((KvOutput::Ok, at_ns))
}

fn read(value: Option<u64>, at_ns: u64) -> Option<(KvOutput, u64)> {
    Some((KvOutput::Value(value), at_ns))
}

fn history(ops: &[Op]) -> KvHistory {
    let mut history = History::new();
    for &(client, input, invoke_ns, response) in ops {
        let op = history.invoke(client, input, invoke_ns);
        if let Some((output, complete_ns)) = response {
            history.complete(op, output, complete_ns).expect("a well-formed test history");
        }
    }
    history
}

/// The verdict on `ops`, as the checker prints it.
fn verdict(ops: &[Op]) -> String {
    check(&Kv, &history(ops), &Options::default()).outcome.to_string()
}

const LINEARIZABLE: &str = "linearizable";

#[test]
fn a_read_after_a_completed_write_sees_it() {
    // Proves a stale read (the key still absent after a put completed) is caught, and that
    // both operations are needed to show it.
    let ops = [(1, put(7, 1), 0, ok(10)), (2, get(7), 20, read(None, 30))];
    assert_eq!(
        verdict(&ops),
        "not linearizable: partition 7, 2 of its 2 operations (1-minimal):\n\
         \x20 op 0: client 1 [0 ns, 10 ns] Put { key: 7, value: 1 } -> Ok\n\
         \x20 op 1: client 2 [20 ns, 30 ns] Get { key: 7 } -> Value(None)\n"
    );
    // Overlapping the put, the same read may come first.
    let ops = [(1, put(7, 1), 0, ok(25)), (2, get(7), 20, read(None, 30))];
    assert_eq!(verdict(&ops), LINEARIZABLE);
}

#[test]
fn a_read_of_a_value_never_written_is_reported_alone() {
    // Proves a read of a value nobody wrote fails, and that the report names that read
    // only: the writes around it are innocent.
    let ops = [
        (1, put(3, 1), 0, ok(10)),
        (2, get(3), 20, read(Some(1), 30)),
        (1, put(3, 2), 40, ok(50)),
        (2, get(3), 60, read(Some(9), 70)),
        (1, get(3), 80, read(Some(2), 90)),
    ];
    assert_eq!(
        verdict(&ops),
        "not linearizable: partition 3, 1 of its 5 operations (1-minimal):\n\
         \x20 op 3: client 2 [60 ns, 70 ns] Get { key: 3 } -> Value(Some(9))\n"
    );
}

#[test]
fn concurrent_writes_may_take_effect_in_either_order() {
    // Proves two overlapping puts may be linearized either way round, but a later read
    // must see one of them.
    let writes = [(1, put(1, 1), 0, ok(10)), (2, put(1, 2), 5, ok(15))];
    for (seen, expected) in [(Some(1), true), (Some(2), true), (None, false)] {
        let ops = [writes[0], writes[1], (3, get(1), 20, read(seen, 30))];
        assert_eq!(verdict(&ops) == LINEARIZABLE, expected, "read {seen:?}");
    }
}

#[test]
fn a_write_without_a_response_may_or_may_not_have_happened() {
    // Proves a timed-out put may be seen or not, at any time after its invocation, but at
    // most once: once seen, it cannot be unseen.
    let timed_out = (1, put(5, 1), 0, None);
    assert_eq!(verdict(&[timed_out, (2, get(5), 100, read(None, 110))]), LINEARIZABLE);
    assert_eq!(verdict(&[timed_out, (2, get(5), 100, read(Some(1), 110))]), LINEARIZABLE);
    let seen_then_gone = [
        timed_out,
        (2, get(5), 100, read(Some(1), 110)),
        (2, put(5, 2), 120, ok(130)),
        (2, get(5), 140, read(Some(1), 150)),
    ];
    assert!(verdict(&seen_then_gone).starts_with("not linearizable"));
    // Before it was invoked, it cannot have been seen.
    let early = [(2, get(5), 0, read(Some(1), 10)), (1, put(5, 1), 20, None)];
    assert!(verdict(&early).starts_with("not linearizable"));
}

#[test]
fn two_reads_cannot_see_values_in_an_impossible_order() {
    // Proves a new-old inversion is caught: one client reads the new value, then another
    // client, strictly later, reads the old one while the new write is still in progress.
    let ops = [
        (1, put(2, 1), 0, ok(10)),
        (2, put(2, 2), 20, ok(100)),
        (3, get(2), 30, read(Some(2), 40)),
        (4, get(2), 50, read(Some(1), 60)),
    ];
    assert_eq!(
        verdict(&ops),
        "not linearizable: partition 2, 3 of its 4 operations (1-minimal):\n\
         \x20 op 0: client 1 [0 ns, 10 ns] Put { key: 2, value: 1 } -> Ok\n\
         \x20 op 2: client 3 [30 ns, 40 ns] Get { key: 2 } -> Value(Some(2))\n\
         \x20 op 3: client 4 [50 ns, 60 ns] Get { key: 2 } -> Value(Some(1))\n"
    );
    // Overlapping reads may see the values in either order.
    let ops =
        [ops[0], ops[1], (3, get(2), 30, read(Some(2), 60)), (4, get(2), 50, read(Some(1), 60))];
    assert_eq!(verdict(&ops), LINEARIZABLE);
}

#[test]
fn compare_and_set_succeeds_for_one_of_two_racers() {
    // Proves the model's compare-and-set: of two racing sets from absent, one wins.
    let race =
        |second| [(1, cas(4, None, 1), 0, ok(10)), (2, cas(4, None, 2), 0, Some((second, 10)))];
    assert_eq!(verdict(&race(KvOutput::Mismatch)), LINEARIZABLE);
    assert!(verdict(&race(KvOutput::Ok)).starts_with("not linearizable"));
}

#[test]
fn a_failure_is_reported_for_its_key_only() {
    // Proves P-compositionality: keys are checked apart, and a stale read on key 2 is
    // reported with key 2's operations only, among busy linearizable keys 1 and 3.
    let mut ops = Vec::new();
    for round in 0..10 {
        let at = round * 100;
        ops.push((1, put(1, round), at, ok(at + 10)));
        ops.push((2, get(1), at + 20, read(Some(round), at + 30)));
        ops.push((3, put(3, round), at, ok(at + 50)));
        ops.push((4, get(3), at + 20, read(Some(round), at + 60)));
    }
    ops.push((5, put(2, 1), 0, ok(10)));
    ops.push((5, get(2), 20, read(Some(1), 30)));
    ops.push((6, get(2), 500, read(None, 510)));
    let report = check(&Kv, &history(&ops), &Options::default());
    assert_eq!(report.partition_count, 3);
    let Outcome::NotLinearizable(counterexample) = report.outcome else {
        panic!("key 2 is not linearizable: {}", report.outcome);
    };
    assert_eq!(counterexample.key, 2);
    assert_eq!(counterexample.partition_operation_count, 3);
    // The two reads: 1, then absent again, whatever the put did.
    let ids: Vec<OpId> = counterexample.operations.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [OpId(41), OpId(42)]);
}

/// `ops` with only the operations in `keep` completed and every other one of `key`'s as
/// no response; the operations of other keys are left out.
fn loosened(ops: &[Op], key: u64, keep: &[OpId]) -> KvHistory {
    let partition = ops.iter().enumerate().filter(|(_, op)| op.1.key() == key);
    let ops: Vec<Op> = partition
        .map(|(index, &(client, input, invoke_ns, response))| {
            let response = if keep.contains(&OpId(index)) { response } else { None };
            (client, input, invoke_ns, response)
        })
        .collect();
    history(&ops)
}

/// Asserts what a counterexample claims about the history `ops` it came from: its
/// operations alone fail; they still fail with every other operation of the partition as
/// no response; and (1-minimal) making any one of them no response too passes.
fn assert_claims(ops: &[Op], counterexample: &Counterexample<u64, KvInput, KvOutput>) {
    let options = Options::default();
    let kept: Vec<OpId> = counterexample.operations.iter().map(|(id, _)| *id).collect();
    let alone: Vec<Op> = kept.iter().map(|id| ops[id.0]).collect();
    assert!(!check(&Kv, &history(&alone), &options).outcome.is_linearizable());
    let key = counterexample.key;
    let others_loose = loosened(ops, key, &kept);
    assert!(!check(&Kv, &others_loose, &options).outcome.is_linearizable());
    assert!(counterexample.minimal);
    for id in &kept {
        let fewer: Vec<OpId> = kept.iter().copied().filter(|other| other != id).collect();
        let outcome = check(&Kv, &loosened(ops, key, &fewer), &options).outcome;
        assert!(outcome.is_linearizable(), "without {id}: {outcome}");
    }
}

#[test]
fn a_counterexample_is_one_minimal_and_still_fails() {
    // Proves the three claims of a counterexample on histories whose core is several
    // operations deep among innocent ones.
    let ops = [
        (1, put(2, 1), 0, ok(10)),
        (5, get(2), 5, read(Some(1), 15)),
        (2, put(2, 2), 20, ok(100)),
        (5, put(2, 3), 25, None),
        (3, get(2), 30, read(Some(2), 40)),
        (6, get(2), 35, read(Some(3), 45)),
        (4, get(2), 50, read(Some(1), 60)),
        (1, put(2, 4), 110, ok(120)),
        (3, get(2), 130, read(Some(4), 140)),
    ];
    let Outcome::NotLinearizable(counterexample) =
        check(&Kv, &history(&ops), &Options::default()).outcome
    else {
        panic!("a new-old inversion");
    };
    assert_claims(&ops, &counterexample);
}

#[test]
fn an_exhausted_budget_is_inconclusive_and_names_its_partition() {
    // Proves the step budget bounds the search: a partition that needs more steps than
    // allowed is reported inconclusive, by key, with no verdict claimed.
    let mut ops: Vec<Op> = (0..12).map(|value| (value, put(9, value), 0, ok(100))).collect();
    ops.push((20, get(9), 200, read(Some(50), 210)));
    ops.push((21, get(1), 0, read(None, 10)));
    let options = Options { partition_steps_max: 5, ..Options::default() };
    let report = check(&Kv, &history(&ops), &options);
    assert_eq!(report.outcome, Outcome::Inconclusive { key: 9, steps_max: 5 });
    assert_eq!(
        report.outcome.to_string(),
        "inconclusive: partition 9 was neither linearized nor refuted in 5 search steps"
    );
    assert!(report.steps <= 5 + 1, "key 1 takes one step: {}", report.steps);
    // With the default budget the same history is refuted.
    assert!(verdict(&ops).starts_with("not linearizable: partition 9, 1 of its 13"));
}

#[test]
fn bad_completions_are_typed_errors() {
    // Proves a history refuses a second completion, a completion before the invocation and
    // an unknown operation, with errors that say which, and is left as it was.
    let mut history: KvHistory = History::new();
    let op = history.invoke(1, get(1), 50);
    assert_eq!(
        history.complete(op, KvOutput::Value(None), 40),
        Err(HistoryError::CompletedBeforeInvoked { op, invoke_ns: 50, complete_ns: 40 })
    );
    assert_eq!(history.complete(op, KvOutput::Value(None), 60), Ok(()));
    assert_eq!(
        history.complete(op, KvOutput::Value(Some(1)), 70),
        Err(HistoryError::CompletedTwice { op })
    );
    assert_eq!(
        history.complete(OpId(1), KvOutput::Ok, 70),
        Err(HistoryError::UnknownOperation { op: OpId(1) })
    );
    assert_eq!(
        HistoryError::CompletedBeforeInvoked { op, invoke_ns: 50, complete_ns: 40 }.to_string(),
        "op 0 completed at 40 ns, before it was invoked at 50 ns"
    );
    let response = history.operation(op).and_then(|operation| operation.response.clone());
    assert_eq!(response.map(|r| (r.output, r.complete_ns)), Some((KvOutput::Value(None), 60)));
    assert_eq!(history.len(), 1);
}

// ----- generated histories ---------------------------------------------------------------

/// SplitMix64: a small deterministic generator, so that every run tests the same histories.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bias negligible for these bounds).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

const RUNS: u64 = 300;
const CLIENTS: u64 = 4;
const KEYS: u64 = 3;
const OPS_PER_CLIENT: usize = 15;
/// Values written are below this; a read of `VALUE_NEVER_WRITTEN` cannot be explained.
const VALUES: u64 = 4;
const VALUE_NEVER_WRITTEN: u64 = VALUES + 100;
/// Out of 100: operations whose client gives up waiting.
const NO_RESPONSE_PERCENT: u64 = 8;

/// A history of clients over a real sequential store: each operation takes effect at a
/// point inside its interval (after its invocation if it got no response, or never), and
/// its output is what the store gave at that point.
fn generated(rng: &mut SplitMix64) -> Vec<Op> {
    // (op, linearization point or None for never)
    let mut ops: Vec<(Op, Option<u64>)> = Vec::new();
    for client in 0..CLIENTS {
        let mut now = rng.below(10);
        for _ in 0..OPS_PER_CLIENT {
            let key = rng.below(KEYS);
            let input = match rng.below(10) {
                0..5 => put(key, rng.below(VALUES)),
                5..9 => get(key),
                _ => cas(
                    key,
                    Some(rng.below(VALUES)).filter(|_| rng.below(3) > 0),
                    rng.below(VALUES),
                ),
            };
            let invoke_ns = now + rng.below(5);
            let duration_ns = 1 + rng.below(30);
            let complete_ns = invoke_ns + duration_ns;
            let point = invoke_ns + rng.below(duration_ns + 1);
            let op = if rng.below(100) < NO_RESPONSE_PERCENT {
                let point = (rng.below(2) == 0).then(|| point + rng.below(3 * duration_ns));
                ((client, input, invoke_ns, None), point)
            } else {
                // The output is filled in once the store has run.
                ((client, input, invoke_ns, Some((KvOutput::Ok, complete_ns))), Some(point))
            };
            ops.push(op);
            now = complete_ns;
        }
    }
    apply(&mut ops);
    ops.into_iter().map(|(op, _)| op).collect()
}

/// Runs the store over `ops` in linearization-point order and records each output.
fn apply(ops: &mut [(Op, Option<u64>)]) {
    use tina_checkers::linearizability::Model;
    let mut order: Vec<usize> = (0..ops.len()).filter(|&index| ops[index].1.is_some()).collect();
    order.sort_by_key(|&index| (ops[index].1, index));
    let mut store = std::collections::BTreeMap::new();
    for index in order {
        let (op, _) = &mut ops[index];
        let key = op.1.key();
        let (state, output) = Kv.step(&store.get(&key).copied(), &op.1);
        if let Some(value) = state {
            store.insert(key, value);
        }
        if let Some((recorded, _)) = &mut op.3 {
            *recorded = output;
        }
    }
}

#[test]
fn generated_histories_pass_and_fail_when_a_read_is_corrupted() {
    // Proves no false alarms and no misses on generated histories: each is linearizable by
    // construction and passes; with one completed read changed to a value never written it
    // fails, and the counterexample is that read alone.
    let mut rng = SplitMix64(0x11ea_4ab1e);
    let mut corrupted = 0;
    for run in 0..RUNS {
        let ops = generated(&mut rng);
        assert_eq!(verdict(&ops), LINEARIZABLE, "run {run}");
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&index| matches!(ops[index], (_, KvInput::Get { .. }, _, Some(_))))
            .collect();
        let Some(&target) = reads.get(rng.below(reads.len().max(1) as u64) as usize) else {
            continue;
        };
        let mut bad = ops.clone();
        let response = bad[target].3.as_mut().expect("a completed read");
        response.0 = KvOutput::Value(Some(VALUE_NEVER_WRITTEN));
        let report = check(&Kv, &history(&bad), &Options::default());
        let Outcome::NotLinearizable(counterexample) = report.outcome else {
            panic!("run {run}: corrupted read {target} passed: {}", report.outcome);
        };
        let ids: Vec<OpId> = counterexample.operations.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [OpId(target)], "run {run}");
        assert!(counterexample.minimal, "run {run}");
        corrupted += 1;
    }
    assert!(corrupted > RUNS * 9 / 10, "only {corrupted} runs had a read to corrupt");
}

#[test]
fn generated_stale_reads_give_counterexamples_that_keep_their_claims() {
    // Proves the counterexample's claims on many shapes: reads changed to a value that was
    // written to their key (or to absent) sometimes stay linearizable; when they do not,
    // the counterexample fails alone, fails among the rest as no-response operations, and
    // is 1-minimal.
    let mut rng = SplitMix64(0x57a1e);
    let mut failed = 0;
    for run in 0..RUNS {
        let mut ops = generated(&mut rng);
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&index| matches!(ops[index], (_, KvInput::Get { .. }, _, Some(_))))
            .collect();
        let Some(&target) = reads.get(rng.below(reads.len().max(1) as u64) as usize) else {
            continue;
        };
        let value = Some(rng.below(VALUES)).filter(|_| rng.below(4) > 0);
        ops[target].3.as_mut().expect("a completed read").0 = KvOutput::Value(value);
        let report = check(&Kv, &history(&ops), &Options::default());
        match report.outcome {
            Outcome::Linearizable => {}
            Outcome::NotLinearizable(counterexample) => {
                assert_claims(&ops, &counterexample);
                failed += 1;
            }
            Outcome::Inconclusive { .. } => panic!("run {run}: {}", report.outcome),
        }
    }
    assert!(failed > RUNS / 4, "only {failed} of {RUNS} corrupted histories failed");
}
