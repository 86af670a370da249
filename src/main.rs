//! The `airlock` binary: parse the command line, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = airlock::cli::Cli::parse();
    match airlock::app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if !airlock::app::is_broken_pipe(&e) {
                airlock::app::print_error(&e);
            }
            airlock::app::exit_code(&e)
        }
    }
}
