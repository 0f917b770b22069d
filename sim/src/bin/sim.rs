//! `sim`: run one deterministic simulation of a scenario from a seed. See `sim --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let code = tina_sim::cli::main_with(
        &args,
        tina_scenarios::catalog(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    ExitCode::from(code)
}
