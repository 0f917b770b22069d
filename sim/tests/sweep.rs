//! `sim sweep` as a user meets it: a passing sweep whose runs are exactly the plain runs, a
//! planted bug's failures grouped and written as seed files that replay, four parts merged
//! into the summary of one sweep, output independent of `--jobs`, and bad input. Seed
//! ranges stay small: CI runs this in a debug build on two cores.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tina_scenarios::catalog;
use tina_sim::cli::main_with;
use tina_sim::seedfile::{parse, replay_dir};

/// Runs the command line and returns (exit code, stdout, stderr).
fn sim(args: &[&str]) -> (u8, String, String) {
    let args: Vec<String> =
        std::iter::once("sim").chain(args.iter().copied()).map(String::from).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = main_with(&args, catalog(), &mut out, &mut err);
    (code, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

/// `sim sweep ARGS --progress off`.
fn sweep(args: &[&str]) -> (u8, String, String) {
    let mut all = vec!["sweep", "--progress", "off"];
    all.extend_from_slice(args);
    sim(&all)
}

/// The JSON lines of a `--json` sweep: the run lines and the summary line.
fn lines(out: &str) -> (Vec<Value>, Value) {
    let mut values: Vec<Value> =
        out.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect();
    let summary = values.pop().expect("a summary line");
    assert_eq!(summary["type"], "summary", "the last line is the summary");
    assert!(values.iter().all(|value| value["type"] == "run"), "the others are runs");
    (values, summary)
}

/// The value without its wall times, which are the only part of a sweep's output that
/// may differ between two sweeps of the same seeds.
fn without_wall(mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        for key in ["wall_ns", "run_wall_ns", "elapsed_ns"] {
            object.remove(key);
        }
    }
    value
}

/// The human lines without the wall line.
fn without_wall_line(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.starts_with("wall: ") && !line.starts_with("sweep: "))
        .collect()
}

/// A fresh directory under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tina-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// A small sweep passes with exit 0 and the documented summary; with `--json` it prints
/// one run line per seed in seed order and a summary line; each run line is the plain
/// run of that seed (same scenario pick, same trace), also when seeds pick the scenario.
#[test]
fn a_small_sweep_passes_and_each_run_is_the_plain_run() {
    let (code, out, err) = sweep(&["--scenario", "bank", "--seeds", "1..=40"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("sweep: scenario=bank seeds=1..=40 part 1/1: 40 runs"), "{out}{err}");
    assert_eq!(
        without_wall_line(&out),
        ["runs: 40, passed: 40, failed: 0", "failures: none"],
        "{out}"
    );
    assert!(out.lines().last().unwrap().starts_with("wall: "), "{out}");

    // No --scenario: each seed picks, as `sim --seed N` does, under swarm.
    let (code, out, _) = sweep(&["--seeds", "2..9", "--json"]);
    assert_eq!(code, 0);
    let (runs, summary) = lines(&out);
    let seeds: Vec<u64> = runs.iter().map(|run| run["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, (2..9).collect::<Vec<u64>>());
    for run in &runs {
        let seed = run["seed"].to_string();
        let (_, plain, _) = sim(&["--seed", &seed, "--json"]);
        let plain: Value = serde_json::from_str(&plain).expect("one JSON object");
        assert_eq!(run["scenario"], plain["scenario"], "seed {seed}");
        assert_eq!(run["trace"], plain["trace"], "seed {seed}");
        assert_eq!(run["fault_profile"], "swarm");
        let mut plain = without_wall(plain);
        plain.as_object_mut().unwrap().insert("type".to_string(), "run".into());
        assert_eq!(without_wall(run.clone()), plain, "the run line is `sim --json`'s object");
    }
    assert_eq!((summary["runs"].as_u64(), summary["passed"].as_u64()), (Some(7), Some(7)));
    assert_eq!(summary["sweep"]["scenarios"], Value::Null);
    assert_eq!(summary["sweep"]["catalog"].as_array().map(Vec::len), Some(catalog().len()));
}

/// A planted bug that fails some seeds: exit 1, the failures grouped by class, checker
/// and scenario with their smallest seeds, and one seed file per failure that parses,
/// expects the failure's class and replays to it through the seed-file runner.
#[test]
fn a_planted_bug_is_grouped_and_its_seed_files_replay() {
    let dir = scratch("found");
    let plant = ["--plant", "bank-stale-branch", "--fault", "shard_crash_every=2s"];
    let mut args = plant.to_vec();
    args.extend(["--seeds", "1..=40", "--json", "--out", text(&dir)]);
    let (code, out, err) = sweep(&args);
    assert_eq!(code, 1, "{err}");
    let (runs, summary) = lines(&out);
    let failing: Vec<u64> = runs
        .iter()
        .filter(|run| run["result"] == "fail")
        .map(|run| run["seed"].as_u64().unwrap())
        .collect();
    assert!(!failing.is_empty() && failing.len() < 40, "some seeds fail, not all: {failing:?}");
    assert!(
        runs.iter().filter(|run| run["result"] == "fail").all(|run| run["class"] == "liveness")
    );
    let groups = summary["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (&groups[0]["class"], &groups[0]["checker"], &groups[0]["scenario"]),
        (&"liveness".into(), &"goal".into(), &"bank".into())
    );
    assert_eq!(groups[0]["count"].as_u64(), Some(failing.len() as u64));
    let shown: Vec<u64> = failing.iter().copied().take(5).collect();
    assert_eq!(groups[0]["seeds"], serde_json::json!(shown));
    let human = err.lines().find(|line| line.starts_with("  liveness goal in bank: ")).expect(&err);
    assert!(human.contains(&format!("{} runs, seeds {}", failing.len(), shown[0])), "{human}");

    // One seed file per failure, named for seeds/, that replays to the same class.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the --out directory")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> =
        failing.iter().map(|seed| format!("sweep-bank-{seed}.seed")).collect();
    expected.sort();
    assert_eq!(names, expected);
    let file = std::fs::read_to_string(dir.join(&names[0])).expect("a seed file");
    let parsed = parse(&names[0], &file).expect("the seed file parses");
    assert_eq!(parsed.expect, Some(tina_sim::FailureClass::Liveness));
    assert!(parsed.why.starts_with("liveness failure, checker goal: "), "{}", parsed.why);
    let replays = replay_dir(&dir, catalog()).expect("a readable directory");
    assert_eq!(replays.len(), failing.len());
    for replay in &replays {
        assert!(
            replay.matched(),
            "{} replays with exit {}:\n{}",
            replay.file,
            replay.code,
            replay.output
        );
        assert_eq!(replay.code, 11);
    }
    let _ = std::fs::remove_dir_all(&dir);

    // Several scenarios: every seed runs in each, in --scenario order, grouped apart.
    let (code, out, _) = sweep(&[
        "--scenario",
        "ping-pong,bank",
        "--plant",
        "lose-message",
        "--seeds",
        "1..4",
        "--json",
    ]);
    assert_eq!(code, 1);
    let (runs, summary) = lines(&out);
    let order: Vec<(u64, &str)> = runs
        .iter()
        .map(|run| (run["seed"].as_u64().unwrap(), run["scenario"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            (1, "ping-pong"),
            (1, "bank"),
            (2, "ping-pong"),
            (2, "bank"),
            (3, "ping-pong"),
            (3, "bank")
        ]
    );
    let groups: Vec<(&str, &str, u64)> = summary["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["checker"].as_str().unwrap(),
                g["scenario"].as_str().unwrap(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, [("accounting", "bank", 3), ("accounting", "ping-pong", 3)]);
}

/// The "done when": four parts run separately and merged give exactly the summary
/// of one unpartitioned sweep (counts, groups, failing seeds; wall times aside), as JSON
/// and as human lines; their run lines together are the sweep's. A merge refuses missing,
/// repeated and foreign parts and a cut file.
#[test]
fn four_parts_merge_into_the_unpartitioned_summary() {
    let dir = scratch("parts");
    let sweep_of =
        ["--plant", "bank-stale-branch", "--fault", "shard_crash_every=2s", "--seeds", "1..41"];
    let mut args = sweep_of.to_vec();
    args.push("--json");
    let (code, whole_out, whole_err) = sweep(&args);
    assert_eq!(code, 1);
    let (whole_runs, whole_summary) = lines(&whole_out);
    let mut files = Vec::new();
    let mut part_runs = Vec::new();
    for index in 1..=4 {
        let partition = format!("{index}/4");
        let mut args = args.clone();
        args.extend(["--partition", &partition]);
        let (code, out, err) = sweep(&args);
        assert!(code <= 1, "{err}");
        let (runs, summary) = lines(&out);
        assert_eq!(summary["partition"], serde_json::json!({ "index": index, "count": 4 }));
        assert!(runs.iter().all(|run| (run["seed"].as_u64().unwrap() - 1) % 4 == index - 1));
        part_runs.extend(runs);
        let file = dir.join(format!("part-{index}.jsonl"));
        std::fs::write(&file, out).expect("written");
        files.push(text(&file).to_string());
    }
    part_runs.sort_by_key(|run| run["seed"].as_u64());
    let strip = |runs: Vec<Value>| runs.into_iter().map(without_wall).collect::<Vec<_>>();
    assert_eq!(strip(part_runs), strip(whole_runs), "the parts' runs are the sweep's runs");

    // Merged in any order: the same summary, as JSON and as human lines.
    let mut merge = vec!["sweep", "merge", "--json"];
    merge.extend(files.iter().rev().map(String::as_str));
    let (code, merged_out, merged_err) = sim(&merge);
    assert_eq!(code, 1, "{merged_err}");
    let merged: Value = serde_json::from_str(&merged_out).expect("one summary line");
    assert_eq!(without_wall(merged), without_wall(whole_summary));
    let (code, human, _) = sim(&["sweep", "merge", &files[0], &files[1], &files[2], &files[3]]);
    assert_eq!(code, 1);
    assert_eq!(without_wall_line(&human), without_wall_line(&whole_err));
    assert!(human.contains("elapsed in the longest of 4 parts"), "{human}");

    // What a merge refuses, with exit 2 and what to do.
    let other = dir.join("other-2.jsonl");
    let (_, out, _) =
        sweep(&["--scenario", "bank", "--seeds", "1..41", "--partition", "2/4", "--json"]);
    std::fs::write(&other, out).expect("written");
    let cut = dir.join("cut-3.jsonl");
    let part3 = std::fs::read_to_string(&files[2]).expect("part 3");
    let kept: Vec<&str> = part3.lines().skip(1).collect();
    std::fs::write(&cut, kept.join("\n")).expect("written");
    let cases: [(Vec<&str>, &str); 5] = [
        (
            vec![&files[0], &files[1], &files[3]],
            "parts missing (1 of 4): 3/4; run each with --partition I/4",
        ),
        (vec![&files[0], &files[1], &files[1], &files[2], &files[3]], "part 2/4 is given twice"),
        (
            vec![&files[0], text(&other), &files[2], &files[3]],
            "are from different sweeps: their `faults` values differ (\"none\" vs \"default\")",
        ),
        (vec![&files[0], &files[1], text(&cut), &files[3]], "the file is cut or edited"),
        (vec![&files[0], "no-such-file.jsonl"], "cannot read no-such-file.jsonl"),
    ];
    for (given, message) in cases {
        let mut args = vec!["sweep", "merge"];
        args.extend(given);
        let (code, out, err) = sim(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The output is the same, wall times aside, whether one thread runs the seeds or three.
#[test]
fn output_does_not_depend_on_jobs() {
    let run = |jobs: &str| {
        let (code, out, _) =
            sweep(&["--scenario", "ping-pong,bank", "--seeds", "1..=8", "--jobs", jobs, "--json"]);
        assert_eq!(code, 0);
        out.lines()
            .map(|line| without_wall(serde_json::from_str(line).expect("JSON")))
            .collect::<Vec<Value>>()
    };
    assert_eq!(run("1"), run("3"));
}

/// Bad input exits 2 before any run, saying what to write instead.
#[test]
fn bad_input_exits_2() {
    let file = scratch("bad").join("a-file");
    std::fs::write(&file, "").expect("written");
    let cases: [(&[&str], &str); 16] = [
        (&["--seeds", "1..5", "--partition", "3/2"], "there are only 2 parts"),
        (&["--seeds", "1..5", "--partition", "0/4"], "parts count from 1"),
        (&["--seeds", "1..5", "--partition", "a/b"], "write I/N"),
        (&["--seeds", "5..5"], "is empty"),
        (&["--seeds", "9..3"], "write the smaller seed first: 3..9"),
        (&["--seeds", "0..=18446744073709551615"], "2^64 seeds"),
        (&["--seeds", "7"], "write A..B"),
        (&["--seeds", "1..x"], "\"x\" is not a seed"),
        (&["--scenario", "bank"], "--seeds <RANGE>"),
        (&["--seeds", "1..5", "--jobs", "0"], "from 1 to 1024"),
        (&["--seeds", "1..5", "--scenario", "bank,nope"], "unknown scenario \"nope\""),
        (&["--seeds", "1..5", "--scenario", "bank,bank"], "named twice"),
        (&["--seeds", "1..5", "--scenario", "kv", "--plant", "bank-no-dedup"], "drop --scenario"),
        (&["--seeds", "1..5", "--set", "round_trips=5"], "without --scenario a seed may pick any"),
        (&["--seeds", "1..5", "--scenario", "bank", "--fault", "nope=1"], "nope"),
        (&["--seeds", "1..5", "--scenario", "bank", "--out", text(&file)], "cannot create it"),
    ];
    for (args, message) in cases {
        let (code, out, err) = sweep(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let (code, _, err) = sim(&["sweep", "--seeds", "1..3", "merge", "a"]);
    assert_eq!(code, 2, "{err}");
    // A plain run's flag before `sweep` would be ignored; it is refused instead.
    let (code, _, err) = sim(&["--faults", "chaos", "sweep", "--seeds", "1..3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("write them after it"), "{err}");
    let (code, out, _) = sim(&["sweep", "--help"]);
    assert_eq!(code, 0);
    for documented in
        ["1   at least one run failed", "A..=B", "--partition", "sweep-SCENARIO-SEED.seed"]
    {
        assert!(out.contains(documented), "{documented}");
    }
}
