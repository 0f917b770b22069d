//! `--check-determinism` passes on both scenarios for seeds 1 to 20: the same seed gives
//! the same events, byte for byte, twice in one process; and different seeds explore
//! different runs.

mod common;

use tina_sim::run::{Outcome, run};

#[test]
fn both_scenarios_are_deterministic_for_seeds_1_to_20() {
    for scenario in ["ping-pong", "dispatcher"] {
        let mut traces = Vec::new();
        for seed in 1..=20 {
            let mut config = common::config(
                scenario,
                seed,
                &["round_trips=200"][..usize::from(scenario == "ping-pong")],
            );
            config.check_determinism = true;
            let report = run(&config);
            assert_eq!(
                report.outcome,
                Outcome::Pass,
                "{scenario} seed {seed}: {:?}",
                report.divergence
            );
            assert!(report.divergence.is_none());
            traces.push(report.trace);
        }
        traces.sort_unstable();
        traces.dedup();
        assert_eq!(traces.len(), 20, "{scenario}: twenty seeds give twenty different traces");
    }
}
