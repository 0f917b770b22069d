//! `cargo +nightly fuzz run scenarios`: every input becomes one simulator run (a scenario,
//! its parameters, a fault profile, a seed and per-site decision streams; see
//! `tina_sim::fuzz`), run through the `sim` command line itself. Any failure (a checker
//! objecting, a liveness failure, a panic, nondeterminism) is a fuzz crash whose message
//! holds the equivalent seed file; `sim --fuzz-input ARTIFACT` replays it.
//!
//! `TINA_FUZZ_PLANT=NAME` switches a planted bug on (see `sim list`), to measure how fast
//! the fuzzer finds it; replay its artifacts with `sim --fuzz-input ARTIFACT --plant NAME`.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tina_sim::fuzz::FuzzCase;
use tina_sim::plant::Plant;

/// The plant `TINA_FUZZ_PLANT` names, read once.
fn plant() -> Option<&'static Plant> {
    static PLANT: OnceLock<Option<&'static Plant>> = OnceLock::new();
    *PLANT.get_or_init(|| {
        // The fuzz target is a harness around the simulator, not part of it: reading its
        // configuration from the environment is how cargo-fuzz targets take options.
        let name = std::env::var("TINA_FUZZ_PLANT").ok().filter(|name| !name.is_empty())?;
        let plant = tina_sim::plant::find(&name);
        assert!(plant.is_some(), "TINA_FUZZ_PLANT={name}: no such plant (see `sim list`)");
        plant
    })
}

fuzz_target!(|data: &[u8]| {
    let catalog = tina_scenarios::catalog();
    // Inputs too short to be a case are not runs; the fuzzer soon grows past them.
    let Ok(case) = FuzzCase::from_bytes(data, catalog, plant()) else { return };
    let mut args = vec!["sim".to_string()];
    args.extend(case.args());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tina_sim::cli::main_with(&args, catalog, &mut out, &mut err);
    if code != 0 {
        let expect = match code {
            10 => "correctness",
            11 => "liveness",
            12 => "crash",
            13 => "nondeterminism",
            _ => "invalid",
        };
        let out = String::from_utf8_lossy(&out);
        let tail: Vec<&str> = out.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "the run failed (exit {code}):\n{}\n{}\nequivalent seed file:\n{}",
            tail.join("\n"),
            String::from_utf8_lossy(&err),
            case.seed_file("found by cargo fuzz run scenarios", expect)
        );
    }
});
