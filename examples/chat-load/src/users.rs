//! Setup over the HTTP API: sign up the users and create their groups.
//!
//! The server should run with `--insecure-fast-hashing`, or thousands of
//! sign-ups spend most of the setup hashing passwords.

use std::time::Duration;

use chat_core::{ConversationId, UserId};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;

use crate::args::Plan;
use crate::error::{LoadError, Result};
use crate::topology::group_of;

/// How long one setup call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A signed-up user.
#[derive(Clone, Debug)]
pub(crate) struct User {
    /// Its id.
    pub(crate) id: UserId,
    /// Its bearer token.
    pub(crate) token: String,
}

/// The HTTP client of the setup.
pub(crate) fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?)
}

/// Signs up `plan.users` users with fresh names, in order, a few at a time.
pub(crate) async fn sign_up_all(http: &reqwest::Client, plan: &Plan) -> Result<Vec<User>> {
    // A per-run prefix so that runs against the same server do not collide.
    let run = format!("load{:08x}", rand::random::<u32>());
    futures::stream::iter(0..plan.users)
        .map(|i| sign_up(http, plan, format!("{run}_{i}")))
        .buffered(plan.connect_concurrency)
        .try_collect()
        .await
}

#[derive(Deserialize)]
struct SignupOk {
    user_id: UserId,
    token: String,
}

async fn sign_up(http: &reqwest::Client, plan: &Plan, username: String) -> Result<User> {
    let res = send_retrying(|| {
        http.post(format!("http://{}/api/signup", plan.server))
            .json(&json!({ "username": username, "password": "load-test password" }))
    })
    .await?;
    let ok: SignupOk = answer(res, 201, || format!("signup of {username}")).await?;
    Ok(User {
        id: ok.user_id,
        token: ok.token,
    })
}

#[derive(Deserialize)]
struct GroupOk {
    conversation_id: ConversationId,
}

/// Creates `plan.groups` groups, user `i` a member of group `i % groups`;
/// each is created by its first member. Returns their ids by group number.
pub(crate) async fn create_groups(
    http: &reqwest::Client,
    plan: &Plan,
    users: &[User],
) -> Result<Vec<ConversationId>> {
    futures::stream::iter(0..plan.groups)
        .map(|g| {
            let members: Vec<&User> = users
                .iter()
                .enumerate()
                .filter(|(i, _)| group_of(*i, plan.groups) == Some(g))
                .map(|(_, u)| u)
                .collect();
            create_group(http, plan, g, members)
        })
        .buffered(plan.connect_concurrency)
        .try_collect()
        .await
}

async fn create_group(
    http: &reqwest::Client,
    plan: &Plan,
    g: usize,
    members: Vec<&User>,
) -> Result<ConversationId> {
    let (creator, others) = members
        .split_first()
        .ok_or_else(|| LoadError::Protocol(format!("group {g} has no members")))?;
    let ids: Vec<&UserId> = others.iter().map(|u| &u.id).collect();
    let res = send_retrying(|| {
        http.post(format!("http://{}/api/groups", plan.server))
            .bearer_auth(&creator.token)
            .json(&json!({ "name": format!("load group {g}"), "members": ids }))
    })
    .await?;
    let ok: GroupOk = answer(res, 201, || format!("creating group {g}")).await?;
    Ok(ok.conversation_id)
}

/// Tries of one setup call that the server answers 429 or 503.
const SETUP_TRIES: u32 = 20;

/// Sends the request `make` builds; a 429 (a budget spent) or 503 (the
/// hashing queue full) is tried again after its `Retry-After`, up to
/// [`SETUP_TRIES`] times, so that a server with its default limits slows the
/// setup down instead of failing it.
async fn send_retrying(make: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response> {
    let mut tries = 1;
    loop {
        let res = make().send().await?;
        let status = res.status().as_u16();
        if !matches!(status, 429 | 503) || tries >= SETUP_TRIES {
            return Ok(res);
        }
        let wait = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(wait.clamp(1, 30))).await;
        tries += 1;
    }
}

/// The body of an answer with the `expected` status, or the error it is.
async fn answer<T: serde::de::DeserializeOwned>(
    res: reqwest::Response,
    expected: u16,
    call: impl FnOnce() -> String,
) -> Result<T> {
    let status = res.status().as_u16();
    let text = res.text().await?;
    if status != expected {
        return Err(LoadError::Api {
            call: call(),
            status,
            body: text,
        });
    }
    serde_json::from_str(&text).map_err(|e| LoadError::Protocol(format!("{}: {e}: {text}", call())))
}
