//! A whole run: setup, the timed schedule, the wait for stragglers, and
//! the merged counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::args::{Plan, SERVER_RATE_LIMIT};
use crate::client::{self, Shared, UserRun};
use crate::conn::{self, Ws};
use crate::error::{LoadError, Result};
use crate::procstat::{self, CpuSample};
use crate::report::{Connections, Outcome, Report, Usage};
use crate::schedule::{Clock, Schedule};
use crate::stats::{Progress, Recorder};
use crate::topology::{Roster, Targets};
use crate::{scheduler, users};

/// Time between the end of setup and the first due send, so that every
/// task is started and waiting when the schedule begins.
const LEAD: Duration = Duration::from_millis(200);
/// How often the drain checks whether everything has arrived.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// Runs `plan` and reports. Progress goes to stderr.
pub(crate) async fn run(plan: &Plan) -> Result<Report> {
    let setup_started = Instant::now();
    if plan.per_user_rate() > SERVER_RATE_LIMIT {
        say(&format!(
            "warning: {:.0} sends/s per user is above the server's default budget of {SERVER_RATE_LIMIT}/s per user: expect rate_limited errors unless it runs with --user-rate 0 --addr-rate 0",
            plan.per_user_rate()
        ));
    }
    let http = users::http_client()?;
    say(&format!("signing up {} users", plan.users));
    let users = users::sign_up_all(&http, plan).await?;
    if plan.groups > 0 {
        say(&format!("creating {} groups", plan.groups));
    }
    let groups = users::create_groups(&http, plan, &users).await?;
    say(&format!("opening {} WebSockets", plan.users));
    let opened: Vec<Result<Ws, String>> = futures::stream::iter(users.iter().enumerate())
        .map(|(i, u)| {
            let source = (!plan.sources.is_empty()).then(|| plan.sources[i % plan.sources.len()]);
            conn::open(plan.nodes[i % plan.nodes.len()], source, &u.token)
        })
        .buffered(plan.connect_concurrency)
        .collect()
        .await;
    let is_connected: Vec<bool> = opened.iter().map(Result::is_ok).collect();
    let first_failure = opened.iter().find_map(|r| r.as_ref().err().cloned());
    let open_count = is_connected.iter().filter(|c| **c).count();
    if open_count < 2 {
        return Err(LoadError::TooFewConnections {
            opened: open_count,
            users: plan.users,
            first_failure: first_failure.unwrap_or_default(),
        });
    }
    let roster = Arc::new(Roster::new(
        users.iter().map(|u| u.id.clone()).collect(),
        &is_connected,
        groups,
    ));
    let setup = setup_started.elapsed();

    let origin = Instant::now();
    let clock = Clock::new(origin, origin + LEAD, plan.warmup, plan.duration);
    let shared = Arc::new(Shared {
        clock,
        progress: Progress::default(),
        recorder: Recorder::new(),
        roster: roster.clone(),
        body_bytes: plan.body_bytes,
        read: plan.read,
        typing: plan.typing,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let seed: u64 = rand::random();
    say(&format!(
        "sending {} msgs/s for {:.1} s of warm-up and {:.1} s measured",
        plan.total_rate,
        plan.warmup.as_secs_f64(),
        plan.duration.as_secs_f64()
    ));
    let mut dues = Vec::with_capacity(plan.users);
    let mut tasks = Vec::with_capacity(open_count);
    for (index, (ws, user)) in opened.into_iter().zip(&users).enumerate() {
        let Ok(ws) = ws else {
            dues.push(None);
            continue;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        dues.push(Some(tx));
        let run = UserRun {
            index,
            id: user.id.clone(),
            ws,
            dues: rx,
            targets: Targets::new(index, roster.clone(), plan.direct_ratio, seed),
        };
        tasks.push(tokio::spawn(client::run(
            run,
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    let dispatcher = scheduler::spawn(Schedule::new(&clock, plan.total_rate, plan.users), dues)?;

    // CPU of the server and of this process over the measured window only.
    tokio::time::sleep_until(tokio::time::Instant::from_std(clock.start)).await;
    let cpu_before = (
        plan.server_pid.and_then(|pid| CpuSample::of(Some(pid))),
        CpuSample::of(None),
    );
    tokio::time::sleep_until(tokio::time::Instant::from_std(clock.end)).await;
    let cpu_after = (
        plan.server_pid.and_then(|pid| CpuSample::of(Some(pid))),
        CpuSample::of(None),
    );
    let usage = Usage {
        server_cpu: cpu_before.0.zip(cpu_after.0).map(|(a, b)| a.until(b)),
        client_cpu: cpu_before.1.zip(cpu_after.1).map(|(a, b)| a.until(b)),
        server_rss_kib: plan.server_pid.and_then(procstat::rss_kib),
    };
    let drain_started = Instant::now();
    while !shared.progress.settled() && drain_started.elapsed() < plan.drain {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let drain = drain_started.elapsed();
    // The receivers outlive this send: every task holds one until it ends.
    let _ = stop_tx.send(true);

    let failed_tasks = futures::future::join_all(tasks)
        .await
        .iter()
        .filter(|t| t.is_err())
        .count();
    let mut stats = shared.recorder.merged();
    for _ in 0..failed_tasks {
        stats.dropped += 1;
        stats.error("client_task_failed");
    }
    // The thread handed out its last send at the end of the schedule, before
    // the drain: this join does not block.
    if dispatcher.join().is_err() {
        stats.error("scheduler_failed");
    }
    let dropped = stats.dropped;
    Ok(Report::new(
        plan,
        Outcome {
            stats,
            connections: Connections {
                opened: open_count,
                failed: plan.users - open_count,
                dropped,
                first_failure,
            },
            setup,
            missing: shared.progress.missing(),
            drain,
            usage,
        },
    ))
}

/// A progress line on stderr (stdout holds only the report).
fn say(line: &str) {
    eprintln!("chat-load: {line}");
}
