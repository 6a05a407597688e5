//! `chat-cli`: a terminal client for the example chat server (see
//! docs/protocol.md). `chat-cli --help` lists the commands.
//!
//! `signup` and `login` save a session file (server, user id, token and chat
//! URL); the other commands read it, unless `--token`/`CHAT_TOKEN` is given.
//! Errors print the server's code and message, and exit with status 1.

mod args;
mod commands;
mod error;
mod http;
mod output;
mod repl;
mod session;
mod ws;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    // One thread: a client has one connection and one terminal to serve.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chat-cli: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-cli: {e}");
            ExitCode::FAILURE
        }
    }
}
