//! Sign-up, login and profiles: the engine calls behind the HTTP API.

use std::net::IpAddr;

use unicode_normalization::UnicodeNormalization;

use super::super::Engine;
use crate::auth::Identity;
use crate::error::{Error, Result};
use crate::model::{Account, DeviceId, Profile, UserId, now_millis};
use crate::names;
use crate::observe::Event;

/// Longest display name, in characters.
pub(crate) const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// What a sign-up returns.
#[derive(Clone, Debug)]
pub struct SignupOk {
    /// The new user's id.
    pub user_id: UserId,
    /// The device this sign-up created.
    pub device_id: DeviceId,
    /// A bearer token for that device.
    pub token: String,
}

impl SignupOk {
    /// The user and device the token is for.
    pub fn identity(&self) -> Identity {
        Identity {
            user_id: self.user_id.clone(),
            device_id: self.device_id.clone(),
        }
    }
}

/// What a login returns.
#[derive(Clone, Debug)]
pub struct LoginOk {
    /// The user's id.
    pub user_id: UserId,
    /// The device this login created.
    pub device_id: DeviceId,
    /// A bearer token for that device.
    pub token: String,
    /// The WebSocket URL of the node service discovery chose for this user.
    pub chat_url: String,
}

impl LoginOk {
    /// The user and device the token is for.
    pub fn identity(&self) -> Identity {
        Identity {
            user_id: self.user_id.clone(),
            device_id: self.device_id.clone(),
        }
    }
}

/// A fresh user id: `u` and 24 hex digits (never a ':', which direct ids use).
fn new_user_id() -> UserId {
    use rand::Rng;
    let bytes: [u8; 12] = rand::rng().random();
    let mut s = String::with_capacity(25);
    s.push('u');
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    UserId::from(s)
}

impl Engine {
    /// Creates an account and its first device (named `device`, optional)
    /// and returns a token for that device. The account's username is the
    /// name's key ([`names::username_key`]: `Alice` is stored as `alice`);
    /// the name as typed becomes its display name. [`Error::AlreadyExists`]
    /// when the key is taken; [`Error::InvalidInput`] for bad input (see
    /// [`names`]); [`Error::Unavailable`] when too many passwords are being
    /// hashed already.
    pub async fn signup(
        &self,
        username: &str,
        password: &str,
        device: Option<&str>,
    ) -> Result<SignupOk> {
        let key = names::username_key(username)?;
        names::check_new_password(password)?;
        if self
            .inner
            .accounts
            .account_by_username(&key)
            .await?
            .is_some()
        {
            return Err(Error::already_exists(format!("username {username:?}")));
        }
        let hash = self
            .inner
            .passwords
            .hash(password.to_owned())
            .await
            .inspect_err(|e| self.inner.hashing_refused(e))?;
        let display_name: String = username.nfc().collect();
        let account = Account {
            user_id: new_user_id(),
            username: key,
            password_hash: hash,
            display_name,
            created_at: now_millis(),
        };
        let user_id = account.user_id.clone();
        // The store's unique username settles a race between two sign-ups.
        self.inner.accounts.create_account(account).await?;
        let (device_id, token) = self.inner.new_device(&user_id, device).await?;
        Ok(SignupOk {
            user_id,
            device_id,
            token,
        })
    }

    /// Checks a username and password; creates a device (named `device`,
    /// optional) and returns a token for it and the node to chat on.
    /// [`Error::Unauthorized`] for an unknown user or a wrong password alike.
    /// The same as [`Engine::login_from`] with no client address.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device: Option<&str>,
    ) -> Result<LoginOk> {
        self.login_from(username, password, device, None).await
    }

    /// [`Engine::login`] from the client address `client`: failed logins
    /// are throttled per username and per address
    /// ([`crate::engine::LoginThrottleConfig`]), answered [`Error::RateLimited`]
    /// while locked out. An unknown username costs the same hashing as a
    /// known one, so the time of the answer tells nothing.
    pub async fn login_from(
        &self,
        username: &str,
        password: &str,
        device: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<LoginOk> {
        let wrong = || Error::unauthorized("wrong username or password");
        let throttle = &self.inner.login_throttle;
        // A name that can be no username's is as wrong as an unknown one;
        // it is throttled under its raw form.
        let key = names::username_key(username).unwrap_or_else(|_| username.to_owned());
        let observer = &self.inner.observer;
        let wrong = || {
            observer.event(&Event::LoginFailed);
            wrong()
        };
        if let Err(e) = throttle.check(&key, client) {
            observer.event(&Event::LoginThrottled);
            return Err(e);
        }
        if password.len() > names::MAX_PASSWORD_BYTES {
            throttle.failed(&key, client);
            return Err(wrong());
        }
        let account = self.account_by_name(username).await?;
        let (hash, user_id) = match &account {
            Some(a) => (a.password_hash.clone(), Some(a.user_id.clone())),
            None => (self.inner.passwords.dummy().to_owned(), None),
        };
        let ok = self
            .inner
            .passwords
            .verify(password.to_owned(), hash)
            .await
            .inspect_err(|e| self.inner.hashing_refused(e))?;
        let user_id = match (ok, user_id) {
            (true, Some(id)) => id,
            _ => {
                throttle.failed(&key, client);
                return Err(wrong());
            }
        };
        throttle.succeeded(&key);
        let (device_id, token) = self.inner.new_device(&user_id, device).await?;
        let chat_url = self.chat_url_for(&user_id).await;
        Ok(LoginOk {
            user_id,
            device_id,
            token,
            chat_url,
        })
    }

    /// The account a typed username names: by its key, or (for accounts
    /// stored before usernames were folded) by the name exactly as typed.
    async fn account_by_name(&self, typed: &str) -> Result<Option<Account>> {
        if let Ok(key) = names::username_key(typed) {
            if let Some(account) = self.inner.accounts.account_by_username(&key).await? {
                return Ok(Some(account));
            }
            if key == typed {
                return Ok(None);
            }
        }
        self.inner.accounts.account_by_username(typed).await
    }

    /// Password hashes queued or running now, and the threads that run them.
    pub fn password_hashing_load(&self) -> (usize, usize) {
        (
            self.inner.passwords.pending(),
            self.inner.passwords.threads(),
        )
    }

    /// The WebSocket URL service discovery picks for `user` (this node's own
    /// when discovery knows no live node or cannot be reached).
    pub async fn chat_url_for(&self, user: &UserId) -> String {
        match self.inner.discovery.pick(user, now_millis()).await {
            Ok(Some(node)) => node.public_url,
            Ok(None) => self.inner.public_url.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "discovery unavailable; answering with this node");
                self.inner.public_url.clone()
            }
        }
    }

    /// A user's public profile; [`Error::NotFound`] when there is none.
    pub async fn profile(&self, user: &UserId) -> Result<Profile> {
        self.inner
            .accounts
            .account(user)
            .await?
            .map(|a| Profile::from(&a))
            .ok_or_else(|| Error::not_found(format!("user {user}")))
    }

    /// Changes a user's display name (trimmed; no controls, bidi controls
    /// or separators: see [`names::check_display_text`]).
    pub async fn set_display_name(&self, user: &UserId, display_name: &str) -> Result<Profile> {
        let name = names::check_display_text(display_name, "display_name", MAX_DISPLAY_NAME_CHARS)?;
        let account = self.inner.accounts.set_display_name(user, name).await?;
        Ok(Profile::from(&account))
    }

    /// A profile by username (compared by its key: `ALICE` finds `alice`).
    pub async fn profile_by_username(&self, username: &str) -> Result<Profile> {
        self.account_by_name(username)
            .await?
            .map(|a| Profile::from(&a))
            .ok_or_else(|| Error::not_found(format!("user {username:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_have_no_colon() {
        let id = new_user_id();
        assert_eq!(id.as_str().len(), 25);
        assert!(!id.as_str().contains(':'));
    }
}
