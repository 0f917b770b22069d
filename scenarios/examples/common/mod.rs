//! Running a scenario's isolates on real threads (`tina::prod::Runtime`), for the examples
//! in `scenarios/examples/`: the same specs the simulator boots, with zero `cfg` branches
//! in any isolate.

use std::process::ExitCode;
use std::time::Duration;

use tina::prod::{Runtime, RuntimeConfig, ShardReport};

use tina_scenarios::{ParamKind, Params, Scenario, catalog};

/// Parses `KEY=VALUE` arguments over `scenario`'s parameters: counts as integers,
/// durations as an integer and a unit (`ns`, `us`, `ms`, `s`). The error says what to fix.
pub fn params_from_args(scenario: &dyn Scenario, args: &[String]) -> Result<Params, String> {
    let specs = scenario.params();
    let mut params = Params::defaults(specs);
    for arg in args {
        let (key, text) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?}: write KEY=VALUE, for example round_trips=1000"))?;
        let spec = specs.iter().find(|spec| spec.name == key).ok_or_else(|| {
            let names: Vec<&str> = specs.iter().map(|spec| spec.name).collect();
            format!(
                "{key:?} is not a parameter of {}; it has {}",
                scenario.name(),
                names.join(", ")
            )
        })?;
        let value = match spec.kind {
            ParamKind::Count => text.parse::<u64>().ok(),
            ParamKind::Duration => parse_duration(text),
        }
        .ok_or_else(|| match spec.kind {
            ParamKind::Count => format!("{key}={text}: write a non-negative integer"),
            ParamKind::Duration => format!("{key}={text}: write an integer and ns, us, ms or s"),
        })?;
        if value < spec.min || value > spec.max {
            return Err(format!("{key}={text} is out of range; use {} to {}", spec.min, spec.max));
        }
        params.set(spec.name, value);
    }
    Ok(params)
}

fn parse_duration(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(scale)
}

/// How long a signalled example lets its isolates drain before it tears them down.
pub const DRAIN: Duration = Duration::from_secs(1);

/// Exit code of an example whose shutdown, after a signal, did not drain in time.
pub const EXIT_NOT_DRAINED: u8 = 3;

/// Boots `scenario_name`'s first node on real threads with the process's arguments as
/// parameters, runs until no isolate of type `finisher` is alive (or a signal: then it
/// shuts down gracefully, `DRAIN` at most), stops and prints a summary with counters.
/// Exit 0 after a clean stop or a drained shutdown, 3 when the shutdown's drain did not
/// finish in time (isolates were torn down at its deadline), 2 for bad arguments, 1 when
/// the runtime cannot boot.
pub fn run_example(scenario_name: &str, finisher: &str) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(scenario) = catalog().iter().copied().find(|s| s.name() == scenario_name) else {
        eprintln!("error: no scenario {scenario_name} in the catalog");
        return ExitCode::from(2);
    };
    let params = match params_from_args(scenario, &args) {
        Ok(params) => params,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let setup = scenario.build(&params);
    let Some(spec) = setup.nodes.into_iter().next() else {
        eprintln!("error: scenario {scenario_name} has no node");
        return ExitCode::from(2);
    };
    let finisher_type = spec.type_named(finisher);
    let Some(finisher_type) = finisher_type else {
        eprintln!("error: scenario {scenario_name} has no isolate type {finisher}");
        return ExitCode::from(2);
    };
    let shards = spec.shard_count();
    let runtime = match Runtime::boot(spec, RuntimeConfig::default()) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    let settings: Vec<String> =
        params.entries().iter().map(|(key, value)| format!("{key}={value}")).collect();
    println!("{scenario_name} on {shards} shard threads: {}", settings.join(" "));
    let done = |reports: &[ShardReport]| reports.iter().all(|r| r.live_in_type(finisher_type) == 0);
    let (summary, ended) = match runtime.run_until_signal(DRAIN, done) {
        Ok(ended) => ended,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    println!(
        "stopped: {}",
        match ended {
            tina::prod::Ended::Signal => "by a signal",
            tina::prod::Ended::Condition => "every {finisher} finished",
        }
        .replace("{finisher}", finisher)
    );
    for (index, report) in summary.shards.iter().enumerate() {
        let c = &report.counters;
        println!(
            "shard {index}: core={} ticks={} parks={} dispatched={} sent={} delivered={} crashes={} restarts={} drops={}",
            report.core.map_or("unpinned".to_string(), |core| core.to_string()),
            report.ticks,
            report.parks,
            c.dispatched,
            c.sent,
            c.delivered,
            c.crashes,
            c.restarts,
            c.drops()
        );
    }
    if ended == tina::prod::Ended::Condition {
        return ExitCode::SUCCESS;
    }
    let left: usize = summary
        .shards
        .iter()
        .filter_map(|r| r.shutdown)
        .map(|s| s.remaining_isolates as usize)
        .sum();
    if summary.drained() {
        println!("drain: finished, every isolate ended before the deadline");
        ExitCode::SUCCESS
    } else {
        println!("drain: not finished, {left} isolates torn down at the deadline ({DRAIN:?})");
        ExitCode::from(EXIT_NOT_DRAINED)
    }
}
