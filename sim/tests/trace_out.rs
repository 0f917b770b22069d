//! `sim --trace-out FILE` writes a run as a Chrome trace (the Trace Event Format's JSON
//! object) that a viewer can load as it is: parsed back with serde_json, every flow has both
//! ends bound inside handler slices, the slices of each shard nest (they never partly
//! overlap) in time order, every process and thread is named, faults show as instants, the
//! run itself is unchanged, and a path that cannot be written is refused before the run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;
use tina_scenarios::catalog;
use tina_sim::cli::main_with;

/// Runs the command line and returns (exit code, stdout, stderr).
fn sim(args: &[&str]) -> (u8, String, String) {
    let args: Vec<String> =
        std::iter::once("sim").chain(args.iter().copied()).map(String::from).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = main_with(&args, catalog(), &mut out, &mut err);
    (code, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

/// A file of this test binary's own under the temporary directory.
fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tina-trace-out-{}-{name}.json", std::process::id()))
}

/// Runs `args` with `--trace-out` (and `--json`); returns the parsed trace and the run's
/// JSON report.
fn traced(name: &str, args: &[&str]) -> (Value, Value) {
    let path = temp(name);
    let path_text = path.to_str().expect("a UTF-8 temporary path");
    let mut all = args.to_vec();
    all.extend(["--json", "--trace-out", path_text]);
    let (code, out, err) = sim(&all);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).expect("the report is JSON");
    let text = std::fs::read_to_string(&path).expect("the trace was written");
    std::fs::remove_file(&path).expect("removable");
    // Perfetto's importer streams the object: the events come first, and no
    // `displayTimeUnit` (which it would apply to `ts`) precedes them.
    assert!(text.starts_with("{\"traceEvents\":[\n{"), "{}", &text[..80]);
    let trace: Value = serde_json::from_str(&text).expect("the trace is one JSON value");
    (trace, report)
}

/// A number field of a trace event.
fn number(event: &Value, key: &str) -> f64 {
    event[key].as_f64().unwrap_or_else(|| panic!("{key} is a number: {event}"))
}

/// (pid, tid) of an event.
fn track(event: &Value) -> (u64, u64) {
    let id = |key: &str| event[key].as_u64().unwrap_or_else(|| panic!("{key}: {event}"));
    (id("pid"), id("tid"))
}

/// What a valid trace holds.
#[derive(Debug, Default)]
struct Summary {
    /// Events per phase (`X`, `s`, `f`, `i`, `M`).
    phases: BTreeMap<String, u64>,
    /// Process names by pid, and thread names by (pid, tid).
    processes: BTreeMap<u64, String>,
    threads: BTreeMap<(u64, u64), String>,
    /// Instants as (category, name).
    instants: BTreeSet<(String, String)>,
}

/// Checks everything a viewer relies on and returns what the trace holds.
fn check(trace: &Value) -> Summary {
    let events = trace["traceEvents"].as_array().expect("a traceEvents array");
    assert!(trace.get("displayTimeUnit").is_none(), "timestamps are in microseconds");
    let mut summary = Summary::default();
    let mut slices: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
    let mut flows: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for event in events {
        let phase = event["ph"].as_str().expect("a phase");
        *summary.phases.entry(phase.to_string()).or_default() += 1;
        let (pid, tid) = track(event);
        if phase != "M" {
            assert!(number(event, "ts") >= 0.0, "{event}");
            assert!(event["name"].is_string(), "{event}");
        }
        match phase {
            "M" => {
                let name = event["args"]["name"].as_str().map(str::to_string);
                match event["name"].as_str() {
                    Some("process_name") => {
                        summary.processes.insert(pid, name.expect("a name"));
                    }
                    Some("thread_name") => {
                        summary.threads.insert((pid, tid), name.expect("a name"));
                    }
                    Some("process_sort_index" | "thread_sort_index") => {
                        assert!(event["args"]["sort_index"].is_u64(), "{event}");
                    }
                    other => panic!("unexpected metadata {other:?}"),
                }
            }
            "X" => {
                let (ts, dur) = (number(event, "ts"), number(event, "dur"));
                assert!(dur >= 0.0, "{event}");
                let track = slices.entry((pid, tid)).or_default();
                if let Some(&(last, _)) = track.last() {
                    assert!(ts >= last, "slices of a track are written in time order: {event}");
                }
                track.push((ts, dur));
            }
            "s" | "f" => {
                let id = event["id"].as_u64().expect("a flow id");
                flows.entry(id).or_default().push(event);
            }
            "i" => {
                let scope = event["s"].as_str().expect("an instant's scope");
                assert!(["t", "p", "g"].contains(&scope), "{event}");
                let category = event["cat"].as_str().expect("a category").to_string();
                let name = event["name"].as_str().expect("a name").to_string();
                summary.instants.insert((category, name));
            }
            other => panic!("unexpected phase {other}: {event}"),
        }
        if phase != "M" {
            assert!(summary.processes.contains_key(&pid), "process {pid} is named first");
            assert!(summary.threads.contains_key(&(pid, tid)), "thread {tid} is named first");
        }
    }
    for (track, slices) in &slices {
        nest(*track, slices);
    }
    for (id, ends) in &flows {
        let phases: Vec<&str> = ends.iter().map(|end| end["ph"].as_str().unwrap_or("")).collect();
        assert_eq!(phases, ["s", "f"], "flow {id} has one start, then one end");
        let (start, end) = (ends[0], ends[1]);
        assert_eq!((&start["name"], &start["cat"]), (&end["name"], &end["cat"]), "flow {id}");
        assert_eq!(end["bp"], "e", "flow {id} binds to the slice enclosing its end");
        assert!(number(end, "ts") > number(start, "ts"), "flow {id} goes forward in time");
        for point in [start, end] {
            let ts = number(point, "ts");
            let inside = slices
                .get(&track(point))
                .is_some_and(|track| track.iter().any(|&(at, dur)| at < ts && ts < at + dur));
            assert!(inside, "flow {id} has an end outside every slice of its track: {point}");
        }
    }
    for (&(pid, tid), name) in &summary.threads {
        assert_eq!(summary.processes[&pid], format!("node {}", pid - 1));
        assert_eq!(name, &format!("shard {}", tid % 1_000), "thread {tid} of process {pid}");
    }
    summary
}

/// Slices of one track nest: sorted by start (longest first), each one ends before the
/// next starts or contains it.
fn nest(track: (u64, u64), slices: &[(f64, f64)]) {
    let mut sorted = slices.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut open: Vec<f64> = Vec::new();
    for (ts, dur) in sorted {
        while open.last().is_some_and(|&end| end <= ts) {
            open.pop();
        }
        if let Some(&end) = open.last() {
            assert!(
                ts + dur <= end,
                "slice at {ts} partly overlaps one ending at {end} on {track:?}"
            );
        }
        open.push(ts + dur);
    }
}

/// The dispatcher at seed 1: a valid trace with one slice per handler call (the
/// `dispatched` counter), a named thread for each of its shards on node 0, flows for the
/// jobs and their timers, and instants for its crashes and restarts.
#[test]
fn dispatcher_is_a_valid_trace() {
    let (trace, report) = traced("dispatcher", &["--seed", "1", "--scenario", "dispatcher"]);
    let summary = check(&trace);
    assert_eq!(
        summary.phases.get("X").copied(),
        report["counters"]["dispatched"].as_u64(),
        "one slice per handler call"
    );
    let flows = summary.phases.get("s").copied().unwrap_or(0);
    assert!(flows > 100, "flows from sends to deliveries: {summary:?}");
    assert_eq!(summary.phases.get("f"), Some(&flows));
    let shards: u64 = report["parameters"]["shards"].as_str().expect("shards").parse().expect("n");
    let threads: Vec<String> = (0..shards).map(|shard| format!("shard {shard}")).collect();
    assert_eq!(summary.threads.values().cloned().collect::<Vec<_>>(), threads);
    assert_eq!(summary.processes.values().collect::<Vec<_>>(), ["node 0"]);
    for instant in [("crash", "exit crashed"), ("supervision", "restart")] {
        let instant = (instant.0.to_string(), instant.1.to_string());
        assert!(summary.instants.contains(&instant), "{instant:?} in {:?}", summary.instants);
    }
    assert_eq!(trace["otherData"]["seed"], "1");
}

/// Under the chaos profile, the faults the run injected are instants of category `fault`
/// (one per world event), and the recoveries after them of category `recovery`.
#[test]
fn faults_are_instants() {
    let args = ["--seed", "1", "--scenario", "dispatcher", "--faults", "chaos"];
    let (trace, report) = traced("chaos", &args);
    let summary = check(&trace);
    let injected: BTreeSet<String> = report["faults"]
        .as_object()
        .expect("fault counts")
        .iter()
        .filter(|(_, count)| count.as_u64() > Some(0))
        .map(|(kind, _)| kind.clone())
        .collect();
    let instants: BTreeSet<String> = summary
        .instants
        .iter()
        .filter(|(category, _)| category == "fault")
        .map(|(_, name)| name.clone())
        .collect();
    assert!(injected.contains("shard-crash"), "chaos crashes shards: {injected:?}");
    for kind in ["shard-crash", "isolate-crash", "shard-stall"] {
        assert_eq!(injected.contains(kind), instants.contains(kind), "{kind}: {instants:?}");
    }
    assert!(summary.instants.contains(&("recovery".to_string(), "shard-restart".to_string())));
}

/// A run over several nodes (echo: a server and its clients over the network) has one
/// named process per node, each with a named thread per shard.
#[test]
fn every_node_is_a_process() {
    let (trace, report) = traced("echo", &["--seed", "2", "--scenario", "echo"]);
    let summary = check(&trace);
    let clients: u64 =
        report["parameters"]["clients"].as_str().expect("clients").parse().expect("n");
    let names: Vec<String> = (0..=clients).map(|node| format!("node {node}")).collect();
    assert_eq!(summary.processes.values().cloned().collect::<Vec<_>>(), names);
    assert!(summary.threads.len() > names.len(), "{:?}", summary.threads);
}

/// Writing the trace only reads the run: the same seed gives the same trace hash with it
/// and without it.
#[test]
fn the_trace_does_not_change_the_run() {
    let args = ["--seed", "5", "--scenario", "bank", "--faults", "chaos"];
    let (_, with) = traced("bank", &args);
    let (code, out, _) = sim(&[&args[..], &["--json"]].concat());
    assert_eq!(code, 0);
    let without: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(with["trace"], without["trace"]);
    assert_eq!(with["events"], without["events"]);
}

/// A path that cannot be written exits 2 with a message naming the flag, before the run.
#[test]
fn unwritable_path_exits_2_before_the_run() {
    let path = temp("missing-dir").join("trace.json");
    let path = path.to_str().expect("UTF-8");
    let (code, out, err) = sim(&["--seed", "1", "--scenario", "dispatcher", "--trace-out", path]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--trace-out") && err.contains("cannot write"), "{err}");
    assert!(!out.contains("result:"), "nothing ran: {out}");
}
