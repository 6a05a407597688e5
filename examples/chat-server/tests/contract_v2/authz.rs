//! The authorization matrix: every HTTP call of the server and every
//! WebSocket frame type, tried by nine callers, against what [`ROWS`] says
//! each must get. docs/security.md prints the same table, rendered from
//! [`ROWS`] by [`render`]: a test fails when the two differ
//! (`CHAT_UPDATE_DOCS=1` rewrites the page's table instead).
//!
//! A cell whose call may change what the others find (a removal, a leave,
//! a revoked invite, a logout, …) runs in a world of its own (fresh users,
//! group, invite and messages); the other cells, and every cell of a bad
//! token (refused before anything happens), share one world. The cells run
//! a few at a time.

use std::fmt::Write as _;

use futures::StreamExt;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Env, User, Ws, str_of};
use crate::common::TestServer;
use crate::target::Store;

/// Who makes the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The group's owner.
    Owner,
    /// An admin of the group.
    Admin,
    /// A plain member.
    Member,
    /// A member the owner removed.
    Removed,
    /// A user who never was a member.
    Outsider,
    /// A member whom the owner blocked.
    Blocked,
    /// The owner's token of a device it logged out.
    Revoked,
    /// A token of the owner's device whose time ran out.
    Expired,
    /// A token for the owner's device signed with another secret.
    Forged,
}

/// The columns, in order.
pub const CALLERS: [Caller; 9] = [
    Caller::Owner,
    Caller::Admin,
    Caller::Member,
    Caller::Removed,
    Caller::Outsider,
    Caller::Blocked,
    Caller::Revoked,
    Caller::Expired,
    Caller::Forged,
];

const HEADERS: [&str; 9] = [
    "owner",
    "admin",
    "member",
    "removed member",
    "non-member",
    "blocked user",
    "revoked device",
    "expired token",
    "forged token",
];

/// What a row does.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Signup,
    Login,
    Me,
    PatchMe,
    UserById,
    UserByName,
    CreateGroupWithOwner,
    PatchGroup,
    Members,
    AddOther,
    AddSelf,
    RemovePlain,
    RemoveAdmin,
    Leave,
    SetRole,
    MakeInvite,
    RevokeInvite,
    AcceptInvite,
    Block,
    Blocks,
    Unblock,
    Devices,
    RemoveOwnDevice,
    RemoveOwnersDevice,
    Logout,
    Conversations,
    GroupHistory,
    DirectHistory,
    Healthz,
    Readyz,
    WebPage,
    Upgrade,
    Frame(Frame),
}

impl Op {
    /// Whether the call, when allowed, changes what other cells find (a
    /// member, the invite, the owner's devices, the caller's own token, the
    /// message, whom the caller shares a conversation with), so that each
    /// caller needs a world of its own.
    fn changes_the_world(self) -> bool {
        matches!(
            self,
            Self::CreateGroupWithOwner
                | Self::AddSelf
                | Self::RemovePlain
                | Self::RemoveAdmin
                | Self::Leave
                | Self::SetRole
                | Self::RevokeInvite
                | Self::AcceptInvite
                | Self::RemoveOwnersDevice
                | Self::Logout
                | Self::Frame(Frame::SendToOwner | Frame::Delete)
        )
    }
}

/// A WebSocket frame a row sends.
#[derive(Clone, Copy, Debug)]
pub enum Frame {
    SendGroup,
    SendToOwner,
    Edit,
    Delete,
    React,
    Ack,
    Read,
    Sync,
    History,
    Typing,
    Presence,
    Ping,
}

/// One row: the call, what it is tried on, and each caller's answer.
pub struct Row {
    pub call: &'static str,
    pub op: Op,
    pub expect: [&'static str; 9],
}

// The answers, as the table prints them. HTTP: the status (and the error
// code); WebSocket: the answer's type, `ok` for a frame with no answer that
// raised no error, the error's code, or `401` when the upgrade is refused.
const S101: &str = "101";
const S200: &str = "200";
const S201: &str = "201";
const S204: &str = "204";
const UNAUTH: &str = "401";
const FORBIDDEN: &str = "403 forbidden";
const NOT_MEMBER: &str = "403 not_member";
const BLOCKED: &str = "403 blocked";
const NOT_FOUND: &str = "404 not_found";
const SENT: &str = "sent";
const OK: &str = "ok";
const W_FORBIDDEN: &str = "forbidden";
const W_NOT_MEMBER: &str = "not_member";
const W_BLOCKED: &str = "blocked";

/// Everyone with a valid token gets `ok`; the three bad tokens get 401.
const fn all(ok: &'static str) -> [&'static str; 9] {
    [ok, ok, ok, ok, ok, ok, UNAUTH, UNAUTH, UNAUTH]
}

/// The same answer for every caller, bad tokens included (no token needed).
const fn open(ok: &'static str) -> [&'static str; 9] {
    [ok; 9]
}

/// Owner, admin, member, removed, non-member, blocked; then the bad tokens.
const fn by_role(
    owner: &'static str,
    admin: &'static str,
    member: &'static str,
    removed: &'static str,
    outsider: &'static str,
    blocked: &'static str,
) -> [&'static str; 9] {
    [
        owner, admin, member, removed, outsider, blocked, UNAUTH, UNAUTH, UNAUTH,
    ]
}

/// The matrix. The group is `open` (anyone may add itself), its owner
/// blocked the "blocked user", who is a member; "a message" is the plain
/// member's, in the group.
pub const ROWS: &[Row] = &[
    Row {
        call: "`POST /api/signup` (a new name)",
        op: Op::Signup,
        expect: open(S201),
    },
    Row {
        call: "`POST /api/login` (own name and password)",
        op: Op::Login,
        expect: open(S200),
    },
    Row {
        call: "`GET /api/me`",
        op: Op::Me,
        expect: all(S200),
    },
    Row {
        call: "`PATCH /api/me`",
        op: Op::PatchMe,
        expect: all(S200),
    },
    Row {
        call: "`GET /api/users/{id}` (the owner)",
        op: Op::UserById,
        expect: all(S200),
    },
    Row {
        call: "`GET /api/users?username=` (the owner)",
        op: Op::UserByName,
        expect: all(S200),
    },
    Row {
        call: "`POST /api/groups` (with the owner)",
        op: Op::CreateGroupWithOwner,
        expect: by_role(S201, S201, S201, S201, S201, BLOCKED),
    },
    Row {
        call: "`PATCH /api/groups/{id}` (rename)",
        op: Op::PatchGroup,
        expect: by_role(S200, S200, FORBIDDEN, NOT_MEMBER, NOT_MEMBER, FORBIDDEN),
    },
    Row {
        call: "`GET /api/groups/{id}/members`",
        op: Op::Members,
        expect: by_role(S200, S200, S200, NOT_MEMBER, NOT_MEMBER, S200),
    },
    Row {
        call: "`POST /api/groups/{id}/members` (another user)",
        op: Op::AddOther,
        expect: by_role(S204, S204, FORBIDDEN, NOT_MEMBER, NOT_MEMBER, FORBIDDEN),
    },
    Row {
        call: "`POST /api/groups/{id}/members` (oneself)",
        op: Op::AddSelf,
        expect: by_role(S204, S204, S204, FORBIDDEN, S204, S204),
    },
    Row {
        call: "`DELETE /api/groups/{id}/members/{id}` (a plain member)",
        op: Op::RemovePlain,
        expect: by_role(S204, S204, FORBIDDEN, NOT_MEMBER, NOT_MEMBER, FORBIDDEN),
    },
    Row {
        call: "`DELETE /api/groups/{id}/members/{id}` (another admin)",
        op: Op::RemoveAdmin,
        expect: by_role(
            S204, FORBIDDEN, FORBIDDEN, NOT_MEMBER, NOT_MEMBER, FORBIDDEN,
        ),
    },
    Row {
        call: "`DELETE /api/groups/{id}/members/{id}` (oneself: leave)",
        op: Op::Leave,
        expect: by_role(S204, S204, S204, NOT_FOUND, NOT_FOUND, S204),
    },
    Row {
        call: "`PUT /api/groups/{id}/members/{id}/role` (a plain member to admin)",
        op: Op::SetRole,
        expect: by_role(
            S204, FORBIDDEN, FORBIDDEN, NOT_MEMBER, NOT_MEMBER, FORBIDDEN,
        ),
    },
    Row {
        call: "`POST /api/groups/{id}/invites`",
        op: Op::MakeInvite,
        expect: by_role(S201, S201, FORBIDDEN, NOT_MEMBER, NOT_MEMBER, FORBIDDEN),
    },
    Row {
        call: "`DELETE /api/groups/{id}/invites/{code}`",
        op: Op::RevokeInvite,
        expect: by_role(S204, S204, FORBIDDEN, NOT_MEMBER, NOT_MEMBER, FORBIDDEN),
    },
    Row {
        call: "`POST /api/invites/{code}`",
        op: Op::AcceptInvite,
        expect: all(S200),
    },
    Row {
        call: "`POST /api/blocks` (another user)",
        op: Op::Block,
        expect: all(S204),
    },
    Row {
        call: "`GET /api/blocks`",
        op: Op::Blocks,
        expect: all(S200),
    },
    Row {
        call: "`DELETE /api/blocks/{id}`",
        op: Op::Unblock,
        expect: all(S204),
    },
    Row {
        call: "`GET /api/devices`",
        op: Op::Devices,
        expect: all(S200),
    },
    Row {
        call: "`DELETE /api/devices/{id}` (one's own other device)",
        op: Op::RemoveOwnDevice,
        expect: all(S204),
    },
    Row {
        call: "`DELETE /api/devices/{id}` (the owner's other device)",
        op: Op::RemoveOwnersDevice,
        expect: by_role(S204, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    },
    Row {
        call: "`POST /api/logout`",
        op: Op::Logout,
        expect: all(S204),
    },
    Row {
        call: "`GET /api/conversations`",
        op: Op::Conversations,
        expect: all(S200),
    },
    Row {
        call: "`GET /api/conversations/{id}/messages` (the group)",
        op: Op::GroupHistory,
        expect: by_role(S200, S200, S200, NOT_MEMBER, NOT_MEMBER, S200),
    },
    Row {
        call: "`GET /api/conversations/{id}/messages` (owner and member's direct)",
        op: Op::DirectHistory,
        expect: by_role(S200, NOT_MEMBER, S200, NOT_MEMBER, NOT_MEMBER, NOT_MEMBER),
    },
    Row {
        call: "`GET /healthz`",
        op: Op::Healthz,
        expect: open(S200),
    },
    Row {
        call: "`GET /readyz`",
        op: Op::Readyz,
        expect: open(S200),
    },
    Row {
        call: "`GET /` (the web page and its files)",
        op: Op::WebPage,
        expect: open(S200),
    },
    Row {
        call: "`GET /ws` (the upgrade)",
        op: Op::Upgrade,
        expect: all(S101),
    },
    Row {
        call: "`send` (to the group)",
        op: Op::Frame(Frame::SendGroup),
        expect: by_role(SENT, SENT, SENT, W_NOT_MEMBER, W_NOT_MEMBER, SENT),
    },
    Row {
        call: "`send` (`to` the owner)",
        op: Op::Frame(Frame::SendToOwner),
        expect: by_role(SENT, SENT, SENT, SENT, SENT, W_BLOCKED),
    },
    Row {
        call: "`edit` (a message)",
        op: Op::Frame(Frame::Edit),
        expect: by_role(
            W_FORBIDDEN,
            W_FORBIDDEN,
            SENT,
            W_NOT_MEMBER,
            W_NOT_MEMBER,
            W_FORBIDDEN,
        ),
    },
    Row {
        call: "`delete` (a message)",
        op: Op::Frame(Frame::Delete),
        expect: by_role(SENT, SENT, SENT, W_NOT_MEMBER, W_NOT_MEMBER, W_FORBIDDEN),
    },
    Row {
        call: "`react` (a message)",
        op: Op::Frame(Frame::React),
        expect: by_role(SENT, SENT, SENT, W_NOT_MEMBER, W_NOT_MEMBER, SENT),
    },
    Row {
        call: "`ack` (a message)",
        op: Op::Frame(Frame::Ack),
        // A removed member acks up to the event that removed it (what its
        // devices that were away still get at their next sync).
        expect: by_role(OK, OK, OK, OK, W_NOT_MEMBER, OK),
    },
    Row {
        call: "`read` (a message)",
        op: Op::Frame(Frame::Read),
        expect: by_role(OK, OK, OK, W_NOT_MEMBER, W_NOT_MEMBER, OK),
    },
    Row {
        call: "`sync`",
        op: Op::Frame(Frame::Sync),
        expect: all("synced"),
    },
    Row {
        call: "`history` (the group)",
        op: Op::Frame(Frame::History),
        expect: by_role(
            "history",
            "history",
            "history",
            W_NOT_MEMBER,
            W_NOT_MEMBER,
            "history",
        ),
    },
    Row {
        call: "`typing` (the group)",
        op: Op::Frame(Frame::Typing),
        expect: by_role(OK, OK, OK, W_NOT_MEMBER, W_NOT_MEMBER, OK),
    },
    Row {
        call: "`presence_subscribe` (the owner)",
        op: Op::Frame(Frame::Presence),
        expect: by_role(
            "presence",
            "presence",
            "presence",
            W_FORBIDDEN,
            W_FORBIDDEN,
            W_FORBIDDEN,
        ),
    },
    Row {
        call: "`ping`",
        op: Op::Frame(Frame::Ping),
        expect: all("pong"),
    },
];

/// The matrix as docs/security.md prints it.
pub fn render() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| call | {} |", HEADERS.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(HEADERS.len()));
    for row in ROWS {
        let _ = writeln!(out, "| {} | {} |", row.call, row.expect.join(" | "));
    }
    out
}

const BEGIN: &str =
    "<!-- authz-matrix:begin (written by examples/chat-server/tests/contract_v2/authz.rs) -->\n";
const END: &str = "<!-- authz-matrix:end -->";

fn security_md() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md")
}

/// Fails when docs/security.md's table is not [`render`]'s (rewrites it
/// under `CHAT_UPDATE_DOCS=1`).
pub fn check_docs() {
    let path = security_md();
    let page = std::fs::read_to_string(&path).expect("docs/security.md");
    let (Some(start), Some(end)) = (page.find(BEGIN), page.find(END)) else {
        panic!("docs/security.md has no authorization matrix markers ({BEGIN:?} … {END:?})");
    };
    let printed = &page[start + BEGIN.len()..end];
    let table = render();
    if printed == table {
        return;
    }
    if std::env::var("CHAT_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        let updated = format!("{}{table}{}", &page[..start + BEGIN.len()], &page[end..]);
        std::fs::write(&path, updated).expect("write docs/security.md");
        return;
    }
    panic!(
        "docs/security.md's authorization matrix differs from the test's table; \
         run with CHAT_UPDATE_DOCS=1 to rewrite it. The table is:\n{table}"
    );
}

/// One cell's world: fresh users in every role, the open group, an invite,
/// a message of the member, the owner's direct conversation with the
/// member, and the owner's spare device and bad tokens.
struct World {
    owner: User,
    admin: User,
    member: User,
    removed: User,
    outsider: User,
    blocked: User,
    /// A plain member, the target of removals and role changes.
    plain: User,
    /// A second admin, the target of an admin removal.
    admin2: User,
    group: String,
    code: String,
    message: String,
    direct: String,
    /// The owner's second device (the target of a device removal).
    spare: String,
    revoked: String,
    expired: String,
    forged: String,
}

/// A JWT with `claims`, signed with `secret`.
fn jwt(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a signed token")
}

fn now_secs() -> i64 {
    chat_core::model::now_millis() / 1000
}

impl World {
    async fn new(env: &Env, secret: &str) -> Self {
        let names = [
            "owner", "admin", "member", "removed", "outsider", "blocked", "plain", "admin2",
        ];
        let users: Vec<User> = join_all(names.iter().map(|n| env.user(n))).await;
        let [
            owner,
            admin,
            member,
            removed,
            outsider,
            blocked,
            plain,
            admin2,
        ] = <[User; 8]>::try_from(users).expect("eight users");
        let group = env
            .group(
                &owner,
                &[&admin, &member, &removed, &blocked, &plain, &admin2],
                json!({"join": "open"}),
            )
            .await;
        for a in [&admin, &admin2] {
            env.call(
                &owner,
                Method::PUT,
                &format!("/api/groups/{group}/members/{}/role", a.id),
                Some(json!({"role": "admin"})),
            )
            .await
            .expect(204, "an admin");
        }
        env.delete(
            &owner,
            &format!("/api/groups/{group}/members/{}", removed.id),
        )
        .await
        .expect(204, "removed");
        env.post(&owner, "/api/blocks", json!({"user_id": blocked.id}))
            .await
            .expect(204, "blocked");
        let code = env
            .post(
                &owner,
                &format!("/api/groups/{group}/invites"),
                json!({"max_uses": 100}),
            )
            .await;
        let code = str_of(&code.expect(201, "an invite")["code"]);
        let (mut ws, _) = env.ws(&member).await;
        let message = ws.say(&group, "a message").await;
        let (sent, _) = ws
            .ask(json!({"type": "send", "id": "d", "to": owner.id, "body": "hi owner"}))
            .await;
        let direct = str_of(&sent["conversation_id"]);
        ws.close().await;
        let spare = env.login_on(&owner, "spare", owner.node).await.device_id;
        let old = env.login_on(&owner, "old", owner.node).await;
        env.delete(&owner, &format!("/api/devices/{}", old.device_id))
            .await
            .expect(204, "log the old device out");
        let now = now_secs();
        let claims = |iat: i64, exp: i64| {
            json!({"sub": owner.id, "dev": owner.device_id, "iat": iat, "nbf": iat, "exp": exp,
                   "jti": format!("{:032x}", rand::random::<u128>())})
        };
        Self {
            expired: jwt(secret, &claims(now - 7200, now - 3600)),
            forged: jwt(
                "not the server's secret, 32+ bytes",
                &claims(now, now + 3600),
            ),
            revoked: old.token,
            owner,
            admin,
            member,
            removed,
            outsider,
            blocked,
            plain,
            admin2,
            group,
            code,
            message,
            direct,
            spare,
        }
    }

    /// The user behind `caller` (the owner for the bad tokens).
    fn user(&self, caller: Caller) -> &User {
        match caller {
            Caller::Owner | Caller::Revoked | Caller::Expired | Caller::Forged => &self.owner,
            Caller::Admin => &self.admin,
            Caller::Member => &self.member,
            Caller::Removed => &self.removed,
            Caller::Outsider => &self.outsider,
            Caller::Blocked => &self.blocked,
        }
    }

    fn token(&self, caller: Caller) -> &str {
        match caller {
            Caller::Revoked => &self.revoked,
            Caller::Expired => &self.expired,
            Caller::Forged => &self.forged,
            _ => &self.user(caller).token,
        }
    }
}

/// An HTTP answer as the table prints it.
fn shown(a: &crate::client::Answer) -> String {
    match (a.status, a.code()) {
        (401, _) => UNAUTH.to_owned(),
        (s, Some(code)) if s >= 400 => format!("{s} {code}"),
        (s, _) => s.to_string(),
    }
}

/// Runs `op` as `caller` in world `w`; returns the answer as shown.
async fn cell(env: &Env, w: &World, op: Op, caller: Caller) -> String {
    let me = w.user(caller);
    let token = w.token(caller);
    let node = me.node;
    let g = &w.group;
    let http = |method: Method, path: String, body: Option<Value>| async move {
        shown(&env.call_on(node, method, &path, Some(token), body).await)
    };
    match op {
        Op::Signup => {
            let name = format!("new{:08x}", rand::random::<u32>());
            http(
                Method::POST,
                "/api/signup".into(),
                Some(json!({"username": name, "password": "password-new"})),
            )
            .await
        }
        Op::Login => {
            let body = json!({"username": me.name, "password": crate::client::password(&me.name)});
            http(Method::POST, "/api/login".into(), Some(body)).await
        }
        Op::Me => http(Method::GET, "/api/me".into(), None).await,
        Op::PatchMe => {
            http(
                Method::PATCH,
                "/api/me".into(),
                Some(json!({"display_name": "Renamed"})),
            )
            .await
        }
        Op::UserById => http(Method::GET, format!("/api/users/{}", w.owner.id), None).await,
        Op::UserByName => {
            http(
                Method::GET,
                format!("/api/users?username={}", w.owner.name),
                None,
            )
            .await
        }
        Op::CreateGroupWithOwner => {
            let body = json!({"name": "another", "members": [w.owner.id]});
            http(Method::POST, "/api/groups".into(), Some(body)).await
        }
        Op::PatchGroup => {
            http(
                Method::PATCH,
                format!("/api/groups/{g}"),
                Some(json!({"name": "renamed"})),
            )
            .await
        }
        Op::Members => http(Method::GET, format!("/api/groups/{g}/members"), None).await,
        Op::AddOther => {
            let x = env.user("extra").await;
            let body = json!({"user_id": x.id});
            http(Method::POST, format!("/api/groups/{g}/members"), Some(body)).await
        }
        Op::AddSelf => {
            let body = json!({"user_id": me.id});
            http(Method::POST, format!("/api/groups/{g}/members"), Some(body)).await
        }
        Op::RemovePlain => {
            http(
                Method::DELETE,
                format!("/api/groups/{g}/members/{}", w.plain.id),
                None,
            )
            .await
        }
        Op::RemoveAdmin => {
            http(
                Method::DELETE,
                format!("/api/groups/{g}/members/{}", w.admin2.id),
                None,
            )
            .await
        }
        Op::Leave => {
            http(
                Method::DELETE,
                format!("/api/groups/{g}/members/{}", me.id),
                None,
            )
            .await
        }
        Op::SetRole => {
            let path = format!("/api/groups/{g}/members/{}/role", w.plain.id);
            http(Method::PUT, path, Some(json!({"role": "admin"}))).await
        }
        Op::MakeInvite => {
            http(
                Method::POST,
                format!("/api/groups/{g}/invites"),
                Some(json!({})),
            )
            .await
        }
        Op::RevokeInvite => {
            http(
                Method::DELETE,
                format!("/api/groups/{g}/invites/{}", w.code),
                None,
            )
            .await
        }
        Op::AcceptInvite => {
            http(
                Method::POST,
                format!("/api/invites/{}", w.code),
                Some(json!({})),
            )
            .await
        }
        Op::Block => {
            let body = json!({"user_id": w.plain.id});
            http(Method::POST, "/api/blocks".into(), Some(body)).await
        }
        Op::Blocks => http(Method::GET, "/api/blocks".into(), None).await,
        Op::Unblock => http(Method::DELETE, format!("/api/blocks/{}", w.plain.id), None).await,
        Op::Devices => http(Method::GET, "/api/devices".into(), None).await,
        Op::RemoveOwnDevice => {
            let other = env.login_on(me, "other", node).await;
            http(
                Method::DELETE,
                format!("/api/devices/{}", other.device_id),
                None,
            )
            .await
        }
        Op::RemoveOwnersDevice => {
            http(Method::DELETE, format!("/api/devices/{}", w.spare), None).await
        }
        Op::Logout => http(Method::POST, "/api/logout".into(), None).await,
        Op::Conversations => http(Method::GET, "/api/conversations".into(), None).await,
        Op::GroupHistory => {
            http(
                Method::GET,
                format!("/api/conversations/{g}/messages"),
                None,
            )
            .await
        }
        Op::DirectHistory => {
            http(
                Method::GET,
                format!("/api/conversations/{}/messages", w.direct),
                None,
            )
            .await
        }
        Op::Healthz => http(Method::GET, "/healthz".into(), None).await,
        Op::Readyz => http(Method::GET, "/readyz".into(), None).await,
        Op::WebPage => {
            let mut statuses = Vec::new();
            for path in ["/", "/app.js", "/style.css"] {
                statuses.push(http(Method::GET, path.into(), None).await);
            }
            statuses.dedup();
            statuses.join(", ")
        }
        Op::Upgrade => match env.ws_raw(node, token).await {
            Ok(ws) => {
                ws.close().await;
                S101.to_owned()
            }
            Err(401) => UNAUTH.to_owned(),
            Err(status) => status.to_string(),
        },
        Op::Frame(frame) => match env.ws_raw(node, token).await {
            Err(401) => UNAUTH.to_owned(),
            Err(status) => format!("upgrade {status}"),
            Ok(mut ws) => {
                ws.until(|f| f["type"] == "synced").await;
                let answer = frame_answer(&mut ws, frame, w).await;
                ws.close().await;
                answer
            }
        },
    }
}

/// Sends `frame` and a ping after it; the answer as the table shows it.
async fn frame_answer(ws: &mut Ws, frame: Frame, w: &World) -> String {
    let (g, m) = (&w.group, &w.message);
    let sent = match frame {
        Frame::SendGroup => json!({"type": "send", "id": "x", "conversation_id": g, "body": "hi"}),
        Frame::SendToOwner => json!({"type": "send", "id": "x", "to": w.owner.id, "body": "hi"}),
        Frame::Edit => {
            json!({"type": "edit", "id": "x", "conversation_id": g, "message_id": m, "body": "new"})
        }
        Frame::Delete => {
            json!({"type": "delete", "id": "x", "conversation_id": g, "message_id": m})
        }
        Frame::React => {
            json!({"type": "react", "id": "x", "conversation_id": g, "message_id": m, "emoji": "👍"})
        }
        Frame::Ack => json!({"type": "ack", "conversation_id": g, "message_id": m}),
        Frame::Read => json!({"type": "read", "conversation_id": g, "message_id": m}),
        Frame::Sync => json!({"type": "sync", "id": "x"}),
        Frame::History => json!({"type": "history", "id": "x", "conversation_id": g}),
        Frame::Typing => json!({"type": "typing", "conversation_id": g}),
        Frame::Presence => {
            json!({"type": "presence_subscribe", "id": "x", "user_ids": [w.owner.id]})
        }
        Frame::Ping => json!({"type": "ping", "id": "x"}),
    };
    ws.send(sent).await;
    let frames = ws.roundtrip("end").await;
    let ours = |f: &&Value| f["reply_to"] == "x" || f.get("reply_to").is_none();
    if let Some(error) = frames.iter().filter(ours).find(|f| f["type"] == "error") {
        return str_of(&error["code"]);
    }
    if let Some(answer) = frames.iter().find(|f| f["reply_to"] == "x") {
        return str_of(&answer["type"]);
    }
    if frames
        .iter()
        .any(|f| f["type"] == "presence" && f["user_id"] == w.owner.id.as_str())
    {
        return "presence".to_owned();
    }
    OK.to_owned()
}

/// How many cells run at once.
const AT_ONCE: usize = 8;

/// Runs the whole matrix on `store`; fails listing every cell whose
/// answer is not the table's.
pub async fn run(store: Store) {
    let Some((env, running)) = store.start(chat_core::Retention::Forever).await else {
        return;
    };
    let secret = TestServer::config().jwt_secret.expect("the test secret");
    let started = std::time::Instant::now();
    let cells = ROWS
        .iter()
        .flat_map(|row| CALLERS.iter().enumerate().map(move |(i, c)| (row, i, *c)));
    let shared = World::new(&env, &secret).await;
    let mismatches: Vec<String> = futures::stream::iter(cells)
        .map(|(row, i, caller)| {
            let (env, secret, shared) = (&env, &secret, &shared);
            async move {
                let bad_token =
                    matches!(caller, Caller::Revoked | Caller::Expired | Caller::Forged);
                let own;
                let world = if row.op.changes_the_world() && !bad_token {
                    own = World::new(env, secret).await;
                    &own
                } else {
                    shared
                };
                let got = cell(env, world, row.op, caller).await;
                (got != row.expect[i]).then(|| {
                    format!(
                        "{} as {}: got {got:?}, the table says {:?}",
                        row.call, HEADERS[i], row.expect[i]
                    )
                })
            }
        })
        .buffer_unordered(AT_ONCE)
        .filter_map(|m| async move { m })
        .collect()
        .await;
    let took = started.elapsed();
    running.stop().await;
    eprintln!(
        "authorization matrix on {}: {} cells in {:.1}s",
        store.name(),
        ROWS.len() * CALLERS.len(),
        took.as_secs_f64()
    );
    assert!(
        mismatches.is_empty(),
        "{} cell(s) of the authorization matrix differ on {}:\n{}",
        mismatches.len(),
        store.name(),
        mismatches.join("\n")
    );
}
