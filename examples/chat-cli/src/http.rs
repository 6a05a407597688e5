//! The HTTP API client: one method per call of the contract, errors turned
//! into [`CliError::Api`] with the server's code and message.

use std::collections::BTreeMap;

use chat_core::{
    ConversationSummary, GroupSettings, HistoryVisibility, JoinPolicy, Message, Millis, Profile,
    Role,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{CliError, Result};

/// A client of one server, with or without a token.
pub(crate) struct Api {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

/// What `signup` and `login` answer. `chat_url` comes with login only.
#[derive(Debug, Deserialize)]
pub(crate) struct LoggedIn {
    /// The user.
    pub(crate) user_id: String,
    /// The device this login is (servers before devices do not say).
    #[serde(default)]
    pub(crate) device_id: Option<String>,
    /// Its bearer token.
    pub(crate) token: String,
    /// The WebSocket URL for this user.
    #[serde(default)]
    pub(crate) chat_url: Option<String>,
}

/// A group as `GET /api/groups/{id}/members` (and `PATCH /api/groups/{id}`) answer it.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct Group {
    /// Its conversation id.
    pub(crate) conversation_id: String,
    /// Its name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// The members' user ids.
    pub(crate) members: Vec<String>,
    /// Owners and admins; a member missing here is a plain member.
    #[serde(default)]
    pub(crate) roles: BTreeMap<String, Role>,
    /// Who may join.
    #[serde(default)]
    pub(crate) join: JoinPolicy,
    /// What history new members see.
    #[serde(default)]
    pub(crate) history: HistoryVisibility,
}

impl Group {
    /// A member's role.
    pub(crate) fn role_of(&self, user_id: &str) -> Role {
        self.roles.get(user_id).copied().unwrap_or_default()
    }
}

/// One of the user's devices, as `GET /api/devices` lists it.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct Device {
    /// Its id.
    pub(crate) device_id: String,
    /// The name given at login.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// When it was last connected, if ever.
    #[serde(default)]
    pub(crate) last_seen: Option<Millis>,
    /// Whether it is the device of the token used.
    #[serde(default)]
    pub(crate) current: bool,
}

/// The contract's error body.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    message: String,
}

impl Api {
    /// A client of the server at `base` (`http://host:port`).
    pub(crate) fn new(base: &str, token: Option<String>) -> Result<Self> {
        let base = parse_base(base)?;
        Ok(Self {
            http: reqwest::Client::new(),
            base,
            token,
        })
    }

    /// The server's base URL.
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// `POST /api/signup`: a new account, and a device named `device`.
    pub(crate) async fn signup(
        &self,
        username: &str,
        password: &str,
        device: &str,
    ) -> Result<LoggedIn> {
        let body = json!({ "username": username, "password": password, "device": device });
        self.json(self.request(Method::POST, &["api", "signup"]).json(&body))
            .await
    }

    /// `POST /api/login`: a new device named `device`.
    pub(crate) async fn login(
        &self,
        username: &str,
        password: &str,
        device: &str,
    ) -> Result<LoggedIn> {
        let body = json!({ "username": username, "password": password, "device": device });
        self.json(self.request(Method::POST, &["api", "login"]).json(&body))
            .await
    }

    /// `GET /api/devices`.
    pub(crate) async fn devices(&self) -> Result<Vec<Device>> {
        #[derive(Deserialize)]
        struct List {
            devices: Vec<Device>,
        }
        let list: List = self
            .json(self.request(Method::GET, &["api", "devices"]))
            .await?;
        Ok(list.devices)
    }

    /// `DELETE /api/devices/{device_id}`: logs that device out.
    pub(crate) async fn remove_device(&self, device_id: &str) -> Result<()> {
        self.empty(self.request(Method::DELETE, &["api", "devices", device_id]))
            .await
    }

    /// `POST /api/logout`: logs the token's own device out.
    pub(crate) async fn logout(&self) -> Result<()> {
        self.empty(self.request(Method::POST, &["api", "logout"]))
            .await
    }

    /// `POST /api/blocks`.
    pub(crate) async fn block(&self, user_id: &str) -> Result<()> {
        let req = self
            .request(Method::POST, &["api", "blocks"])
            .json(&json!({ "user_id": user_id }));
        self.empty(req).await
    }

    /// `DELETE /api/blocks/{user_id}`.
    pub(crate) async fn unblock(&self, user_id: &str) -> Result<()> {
        self.empty(self.request(Method::DELETE, &["api", "blocks", user_id]))
            .await
    }

    /// `GET /api/blocks`: the users this user blocked.
    pub(crate) async fn blocked(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct List {
            blocked: Vec<String>,
        }
        let list: List = self
            .json(self.request(Method::GET, &["api", "blocks"]))
            .await?;
        Ok(list.blocked)
    }

    /// `GET /api/me`.
    pub(crate) async fn me(&self) -> Result<Profile> {
        self.json(self.request(Method::GET, &["api", "me"])).await
    }

    /// `GET /api/users/{user_id}`.
    pub(crate) async fn user(&self, user_id: &str) -> Result<Profile> {
        self.json(self.request(Method::GET, &["api", "users", user_id]))
            .await
    }

    /// `GET /api/users?username=NAME` (the server's extension).
    pub(crate) async fn user_by_name(&self, username: &str) -> Result<Profile> {
        let req = self
            .request(Method::GET, &["api", "users"])
            .query(&[("username", username)]);
        self.json(req).await
    }

    /// The user id of `who`: a username first, else a user id the server knows.
    pub(crate) async fn resolve_user(&self, who: &str) -> Result<String> {
        match self.user_by_name(who).await {
            Ok(profile) => return Ok(profile.user_id.to_string()),
            Err(e) if !is_not_found(&e) => return Err(e),
            Err(_) => {}
        }
        match self.user(who).await {
            Ok(profile) => Ok(profile.user_id.to_string()),
            Err(e) if is_not_found(&e) => Err(CliError::UnknownUser(who.to_owned())),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/groups` → the new group's conversation id.
    pub(crate) async fn create_group(
        &self,
        name: &str,
        members: &[String],
        join: Option<JoinPolicy>,
        history: Option<HistoryVisibility>,
    ) -> Result<String> {
        let mut body = json!({ "name": name, "members": members });
        if let Some(join) = join {
            body["join"] = json!(join);
        }
        if let Some(history) = history {
            body["history"] = json!(history);
        }
        let created: Created = self
            .json(self.request(Method::POST, &["api", "groups"]).json(&body))
            .await?;
        Ok(created.conversation_id)
    }

    /// `PATCH /api/groups/{id}` → the group with its new settings.
    pub(crate) async fn update_group(
        &self,
        group: &str,
        settings: &GroupSettings,
    ) -> Result<Group> {
        let req = self
            .request(Method::PATCH, &["api", "groups", group])
            .json(settings);
        self.json(req).await
    }

    /// `PUT /api/groups/{id}/members/{user_id}/role`.
    pub(crate) async fn set_role(&self, group: &str, user_id: &str, role: Role) -> Result<()> {
        let req = self
            .request(
                Method::PUT,
                &["api", "groups", group, "members", user_id, "role"],
            )
            .json(&json!({ "role": role }));
        self.empty(req).await
    }

    /// `POST /api/groups/{id}/invites` → the invite code.
    pub(crate) async fn create_invite(
        &self,
        group: &str,
        max_uses: Option<u32>,
        expires_in_secs: Option<u64>,
    ) -> Result<String> {
        #[derive(Deserialize)]
        struct Invite {
            code: String,
        }
        let mut body = json!({});
        if let Some(n) = max_uses {
            body["max_uses"] = json!(n);
        }
        if let Some(secs) = expires_in_secs {
            body["expires_in_secs"] = json!(secs);
        }
        let req = self
            .request(Method::POST, &["api", "groups", group, "invites"])
            .json(&body);
        let invite: Invite = self.json(req).await?;
        Ok(invite.code)
    }

    /// `DELETE /api/groups/{id}/invites/{code}`.
    pub(crate) async fn revoke_invite(&self, group: &str, code: &str) -> Result<()> {
        let req = self.request(Method::DELETE, &["api", "groups", group, "invites", code]);
        self.empty(req).await
    }

    /// `POST /api/invites/{code}` → the group joined.
    pub(crate) async fn accept_invite(&self, code: &str) -> Result<String> {
        let joined: Created = self
            .json(self.request(Method::POST, &["api", "invites", code]))
            .await?;
        Ok(joined.conversation_id)
    }

    /// `POST /api/groups/{id}/members`.
    pub(crate) async fn add_member(&self, group: &str, user_id: &str) -> Result<()> {
        let req = self
            .request(Method::POST, &["api", "groups", group, "members"])
            .json(&json!({ "user_id": user_id }));
        self.empty(req).await
    }

    /// `DELETE /api/groups/{id}/members/{user_id}`.
    pub(crate) async fn remove_member(&self, group: &str, user_id: &str) -> Result<()> {
        let req = self.request(
            Method::DELETE,
            &["api", "groups", group, "members", user_id],
        );
        self.empty(req).await
    }

    /// `GET /api/groups/{id}/members`: the members with their roles, and
    /// the group's settings.
    pub(crate) async fn group(&self, group: &str) -> Result<Group> {
        self.json(self.request(Method::GET, &["api", "groups", group, "members"]))
            .await
    }

    /// `GET /api/conversations`, most recent first.
    pub(crate) async fn conversations(&self) -> Result<Vec<ConversationSummary>> {
        #[derive(Deserialize)]
        struct List {
            conversations: Vec<ConversationSummary>,
        }
        let list: List = self
            .json(self.request(Method::GET, &["api", "conversations"]))
            .await?;
        Ok(list.conversations)
    }

    /// `GET /api/conversations/{id}/messages?before=&limit=`, newest first.
    pub(crate) async fn messages(
        &self,
        conversation: &str,
        before: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<Message>> {
        #[derive(Deserialize)]
        struct Page {
            messages: Vec<Message>,
        }
        let mut req = self.request(
            Method::GET,
            &["api", "conversations", conversation, "messages"],
        );
        if let Some(before) = before {
            req = req.query(&[("before", before)]);
        }
        if let Some(limit) = limit {
            req = req.query(&[("limit", limit)]);
        }
        let page: Page = self.json(req).await?;
        Ok(page.messages)
    }

    /// A request to the path made of `segments`, each percent-encoded (ids
    /// are opaque and may hold characters a path reserves).
    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("the base URL is http(s), so it has a path")
            .pop_if_empty()
            .extend(segments);
        let req = self.http.request(method, url);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let res = checked(req.send().await?).await?;
        let text = res.text().await?;
        serde_json::from_str(&text)
            .map_err(|e| CliError::Protocol(format!("{e} in {}", shorten(&text))))
    }

    async fn empty(&self, req: RequestBuilder) -> Result<()> {
        checked(req.send().await?).await.map(drop)
    }
}

/// `{"conversation_id"}`: what creating a group and accepting an invite answer.
#[derive(Deserialize)]
struct Created {
    conversation_id: String,
}

/// Parses a server base URL; only http and https are served.
fn parse_base(base: &str) -> Result<Url> {
    let bad = |reason: String| CliError::BadUrl {
        url: base.to_owned(),
        reason,
    };
    let url = Url::parse(base).map_err(|e| bad(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(bad(format!("expected http:// or https://, not {other}://"))),
    }
}

/// The response when its status is a success, else its error as [`CliError::Api`].
async fn checked(res: Response) -> Result<Response> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let text = res.text().await.unwrap_or_default();
    Err(api_error(status, &text))
}

/// The contract's error body, or for any other body the status and the text.
pub(crate) fn api_error(status: StatusCode, text: &str) -> CliError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => CliError::Api {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => CliError::Api {
            status: status.as_u16(),
            code: status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "_"),
            message: if text.trim().is_empty() {
                format!("HTTP {status}")
            } else {
                shorten(text)
            },
        },
    }
}

fn is_not_found(e: &CliError) -> bool {
    matches!(e, CliError::Api { status: 404, .. })
}

/// At most a line's worth of a body, for an error message.
fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_keeps_the_servers_code_and_message() {
        let err = api_error(
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"code":"unauthorized","message":"wrong username or password"}}"#,
        );
        assert_eq!(
            err.to_string(),
            "wrong username or password (server said unauthorized, HTTP 401)"
        );
    }

    #[test]
    fn a_bare_error_status_is_named_by_its_reason() {
        let err = api_error(StatusCode::BAD_GATEWAY, "");
        assert_eq!(
            err.to_string(),
            "HTTP 502 Bad Gateway (server said bad_gateway, HTTP 502)"
        );
    }

    #[test]
    fn only_http_base_urls_are_taken() {
        assert!(parse_base("http://127.0.0.1:8080").is_ok());
        assert!(matches!(
            parse_base("ws://127.0.0.1:8080"),
            Err(CliError::BadUrl { .. })
        ));
        assert!(matches!(parse_base("nope"), Err(CliError::BadUrl { .. })));
    }
}
