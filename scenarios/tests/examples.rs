//! The examples as a person runs them: child processes on real threads, shut down by SIGINT
//! (exit 0 when the drain finishes, 3 when isolates were torn down at its deadline), idle at
//! close to no CPU.
#![cfg(target_os = "linux")]
#![allow(
    clippy::disallowed_methods,
    reason = "these tests drive child processes on real threads, in real time"
)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example binary `name`, built (if it is not up to date) by the cargo running this
/// test, in this test's profile, next to this test's directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let profile = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "-p", "tina-scenarios", "--example", name]);
    if profile.file_name().is_some_and(|dir| dir == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build --example {name}");
    let path = profile.join("examples").join(name);
    assert!(path.exists(), "{} was built", path.display());
    path
}

/// Starts `name` with `args` and waits for its first line (printed after boot).
fn start(name: &str, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(example(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let mut first = String::new();
    let stdout = child.stdout.as_mut().expect("piped");
    BufReader::new(stdout).read_line(&mut first).expect("its first line");
    (child, first)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for `child` to exit, at most `patience`; returns its exit code and output.
fn finish(mut child: Child, patience: Duration) -> (Option<i32>, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut out = String::new();
            if let Some(stdout) = child.stdout.as_mut() {
                stdout.read_to_string(&mut out).expect("stdout");
            }
            let mut err = String::new();
            if let Some(stderr) = child.stderr.as_mut() {
                stderr.read_to_string(&mut err).expect("stderr");
            }
            return (status.code(), format!("{out}{err}"));
        }
        if started.elapsed() > patience {
            let _ = child.kill();
            panic!("the example did not exit within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn each_example_runs_to_its_end_and_exits_0() {
    for (name, args) in [
        ("ping_pong", &["round_trips=2000"][..]),
        ("dispatcher", &["jobs=100"][..]),
        ("bank", &["transfers=20"][..]),
    ] {
        let (child, first) = start(name, args);
        let (code, out) = finish(child, Duration::from_secs(60));
        assert_eq!(code, Some(0), "{name}: {first}{out}");
        assert!(out.contains("stopped: every"), "{name}: {out}");
        assert!(out.contains("shard 1: core="), "{name}: {out}");
    }
}

#[test]
fn sigint_during_dispatcher_stops_it_cleanly() {
    // A job every millisecond for a very long time: only a signal ends it.
    let (child, first) = start("dispatcher", &["jobs=1000000000", "job_interval=1ms"]);
    assert!(first.starts_with("dispatcher on 2 shard threads"), "{first}");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    let (code, out) = finish(child, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("stopped: by a signal"), "{out}");
    assert!(out.contains("shard 0: core="), "{out}");
    // The dispatcher and its workers end on their shutdown notice: the drain finishes.
    assert!(out.contains("drain: finished"), "{out}");
}

#[test]
fn sigint_during_endless_ping_pong_drains_in_vain_and_exits_3() {
    // Ping-pong's isolates ignore the shutdown notice: they are torn down at the deadline.
    let (child, _) = start("ping_pong", &["round_trips=1000000000000"]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    let (code, out) = finish(child, Duration::from_secs(20));
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("stopped: by a signal"), "{out}");
    assert!(out.contains("drain: not finished, 2 isolates torn down at the deadline"), "{out}");
}

#[test]
fn bad_arguments_exit_2_with_what_to_fix() {
    let output = Command::new(example("ping_pong")).arg("rounds=5").output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("not a parameter of ping-pong"), "{err}");
    let output = Command::new(example("dispatcher")).arg("jobs=x").output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn an_idle_runtime_uses_close_to_no_cpu() {
    // A job a second: the shards park between jobs (and between the workers' check-ins).
    let (child, _) = start("dispatcher", &["jobs=1000000", "job_interval=1s"]);
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id();
    let before = tina::prod::cpu::process_cpu_ns(pid).expect("its CPU time");
    let window = Duration::from_secs(2);
    std::thread::sleep(window);
    let after = tina::prod::cpu::process_cpu_ns(pid).expect("its CPU time");
    signal(&child, "INT");
    let (code, out) = finish(child, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{out}");
    let used = after - before;
    let share = used as f64 / window.as_nanos() as f64;
    eprintln!("idle dispatcher: {used} ns of CPU in {window:?} ({:.2}%)", share * 100.0);
    // Two shards, each waking for a job a second and the workers' check-ins: well under
    // 5% of one core (clock ticks are 10 ms, so the reading itself is coarse).
    assert!(share < 0.05, "an idle runtime used {:.2}% of a core", share * 100.0);
}
