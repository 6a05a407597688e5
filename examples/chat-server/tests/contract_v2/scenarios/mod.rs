//! The scenarios, a file per part of "Version 2", and the runner that runs
//! them all at once against one target.

mod blocks;
mod devices;
mod events;
mod groups;
mod hardening;
mod invites;
mod retention;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::Retention;
use futures::future::BoxFuture;

use crate::client::Env;
use crate::target::Store;

/// A scenario: its name, whether it runs in both retention modes (else
/// under `forever` only), and its body.
struct Scenario {
    name: &'static str,
    both_modes: bool,
    run: fn(Arc<Env>) -> BoxFuture<'static, ()>,
}

macro_rules! scenario {
    ($path:path, $both:expr) => {
        Scenario {
            name: stringify!($path),
            both_modes: $both,
            run: |env| Box::pin(async move { $path(&env).await }),
        }
    };
}

/// Every scenario. Groups, invites, blocks and names are about membership
/// and accounts, which retention does not touch; devices, events, retention
/// and history pages run in both modes.
const ALL: &[Scenario] = &[
    scenario!(groups::roles_decide_who_changes_what, false),
    scenario!(groups::the_owner_leaving_hands_the_group_over, false),
    scenario!(groups::join_policy_bans_and_coming_back, false),
    scenario!(groups::history_visibility_since_join_and_all, false),
    scenario!(
        groups::a_member_removed_while_away_gets_the_rest_then_its_removal,
        false
    ),
    scenario!(invites::invites_create_accept_expire_revoke, false),
    scenario!(invites::a_one_use_invite_accepted_at_once_admits_one, false),
    scenario!(blocks::blocks_stop_direct_messages_adds_and_presence, false),
    scenario!(
        devices::each_device_gets_messages_and_syncs_for_itself,
        true
    ),
    scenario!(devices::a_logged_out_device_stops_everywhere_at_once, true),
    scenario!(events::replies_edits_deletes_and_reactions, true),
    scenario!(events::events_are_refused_unless_allowed, true),
    scenario!(events::an_offline_device_converges_through_sync, true),
    scenario!(retention::every_device_of_every_recipient_must_ack, true),
    scenario!(
        retention::removed_and_unconnected_devices_hold_nothing_back,
        true
    ),
    scenario!(retention::an_edit_or_delete_changes_the_stored_text, true),
    scenario!(
        hardening::names_passwords_and_device_names_are_checked,
        false
    ),
    scenario!(hardening::history_pages_walk_a_conversation_once, true),
    scenario!(hardening::every_node_answers_health_and_readiness, true),
];

/// Longest a scenario may take, all its waits included.
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

/// Scenarios that run at once against one server: all of them at once made
/// a PostgreSQL server's 16-connection pool wait past its 5 s bound on a
/// loaded 2-core machine (thirteen servers run side by side in this binary).
const AT_ONCE: usize = 4;

/// Starts `store` in `retention` mode and runs every scenario of that mode
/// against it, [`AT_ONCE`] at a time; fails naming each scenario that failed.
pub async fn run(store: Store, retention: Retention) {
    let started = Instant::now();
    let Some((env, running)) = store.start(retention).await else {
        return;
    };
    let env = Arc::new(env);
    let label = env.label.clone();
    let ready = started.elapsed();
    let slots = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let tasks: Vec<_> = ALL
        .iter()
        .filter(|s| s.both_modes || retention == Retention::Forever)
        .map(|s| {
            let env = env.clone();
            let body = (s.run)(env);
            let slots = slots.clone();
            (
                s.name,
                tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await.expect("never closed");
                    let t = Instant::now();
                    tokio::time::timeout(SCENARIO_LIMIT, body)
                        .await
                        .map(|()| t.elapsed())
                }),
            )
        })
        .collect();
    let mut failures = Vec::new();
    let mut times = Vec::new();
    for (name, task) in tasks {
        match task.await {
            Ok(Ok(took)) => times.push(format!("{name} {:.1}s", took.as_secs_f64())),
            Ok(Err(_)) => failures.push(format!("{name}: took over {SCENARIO_LIMIT:?}")),
            Err(e) => failures.push(format!("{name}: {}", panic_text(e))),
        }
    }
    drop(env);
    running.stop().await;
    eprintln!(
        "contract_v2 on {label}: ready in {:.1}s, all in {:.1}s; {}",
        ready.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        times.join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed on {label}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".to_owned()),
        Err(e) => e.to_string(),
    }
}
