use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A job's spare process (vigil exec'd as a trampoline, src/jobs/launch.rs): before
    // anything else.
    if std::env::args_os()
        .next()
        .is_some_and(|a| a == vigil::jobs::SPARE_ARG0)
    {
        vigil::jobs::spare_main();
    }
    let cli = vigil::cli::Cli::parse();
    match vigil::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
