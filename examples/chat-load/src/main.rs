//! `chat-load`: the project's load generator. It drives a running
//! chat-server over the real contract (docs/protocol.md): N users sign up
//! over HTTP, join their groups, open one WebSocket each, and send on a
//! fixed open-loop schedule; every recipient times each `message` frame
//! from the moment its send was due, and acks it. At the end it reports
//! send rate, `send → sent` and `send → delivered` percentiles (HDR
//! histograms), deliveries per second, errors by code and connections
//! (with the close code of each one closed early); with `--server-pid`,
//! the server's CPU time per message and per delivery over the measured
//! window, read from /proc (and its memory).
//!
//! ```text
//! chat-server --listen 127.0.0.1:18080 --insecure-fast-hashing &
//! chat-load --server 127.0.0.1:18080 --users 1000 --rate 2000 --duration 10
//! chat-load --server 127.0.0.1:18080 --users 1000 --group-size 50 --rate 200 --json
//! chat-load --server 127.0.0.1:18080 --users 1000 --groups 1 --rate 10 --read --typing \
//!     --server-pid "$(pgrep -n chat-server)"
//! ```
//!
//! Loopback servers only; users, rate, body size and time are bounded.
//! `chat-load --help` lists the flags.

mod args;
mod client;
mod conn;
mod error;
mod procstat;
mod report;
mod run;
mod schedule;
mod scheduler;
mod stats;
mod topology;
mod users;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let plan = match args::Args::parse().plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("chat-load: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chat-load: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run(&plan)) {
        Ok(report) if plan.json => {
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chat-load: {e}");
            ExitCode::FAILURE
        }
    }
}
