use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fleetcare::cli::Cli::parse();
    fleetcare::cli::init_tracing();
    match fleetcare::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One sentence that says what went wrong and what to do.
            eprintln!("fleetcare: {}", fleetcare::cli::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
