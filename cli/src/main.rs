//! `gust`: the command line. Parses the arguments and hands them to [`gust_cli::run`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = gust_cli::args::Cli::parse();
    match gust_cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // Every message already says its cause; `{:#}` would repeat each source after it.
            eprintln!("gust: {error}");
            ExitCode::from(2)
        }
    }
}
