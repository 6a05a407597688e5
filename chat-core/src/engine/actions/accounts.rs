//! Sign-up, login and profiles: the engine calls behind the HTTP API.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::super::Engine;
use crate::auth::Identity;
use crate::error::{Error, Result};
use crate::model::{Account, DeviceId, Profile, UserId, now_millis};

/// Longest username, in characters.
pub(crate) const MAX_USERNAME_CHARS: usize = 64;
/// Longest password, in bytes (argon2 takes any length; this bounds the work).
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;
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

/// Argon2id parameters.
#[derive(Clone, Debug)]
pub(crate) struct PasswordHashing {
    params: Params,
}

impl Default for PasswordHashing {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self {
            params: Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params"),
        }
    }
}

impl PasswordHashing {
    pub(crate) fn insecure_fast() -> Self {
        Self {
            params: Params::new(8, 1, 1, None).expect("valid argon2 params"),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes on a blocking thread: argon2 is deliberately slow.
    async fn hash(&self, password: String) -> Result<String> {
        let argon = self.argon2();
        tokio::task::spawn_blocking(move || {
            let salt =
                SaltString::from_b64(&random_salt()).map_err(|e| Error::invalid(e.to_string()))?;
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::invalid(format!("cannot hash password: {e}")))
        })
        .await
        .map_err(|e| Error::unavailable("password hashing task", e))?
    }

    /// Verifies on a blocking thread. A hash that does not parse never matches.
    async fn verify(&self, password: String, hash: String) -> Result<bool> {
        let argon = self.argon2();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .map_err(|e| Error::unavailable("password hashing task", e))
    }
}

fn random_salt() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    // SaltString wants unpadded standard base64 without '+' issues: hex is a safe subset.
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

fn check_username(username: &str) -> Result<()> {
    let chars = username.chars().count();
    if chars == 0 {
        return Err(Error::invalid("username is empty"));
    }
    if chars > MAX_USERNAME_CHARS {
        return Err(Error::invalid(format!(
            "username is longer than {MAX_USERNAME_CHARS} characters"
        )));
    }
    if username
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "username may not contain spaces or control characters",
        ));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(Error::invalid("password is empty"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid(format!(
            "password is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A hash that matches no password, verified when the username is unknown so
/// that a wrong username takes as long as a wrong password.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=8,t=1,p=1$MDAwMDAwMDAwMDAwMDAwMA$Q0dJOUZTUm9HdnZ3U2ZOWlR0eXVqQQ";

impl Engine {
    /// Creates an account and its first device (named `device`, optional)
    /// and returns a token for that device. [`Error::AlreadyExists`] when
    /// the username is taken; [`Error::InvalidInput`] for bad input.
    pub async fn signup(
        &self,
        username: &str,
        password: &str,
        device: Option<&str>,
    ) -> Result<SignupOk> {
        check_username(username)?;
        check_password(password)?;
        if self
            .inner
            .accounts
            .account_by_username(username)
            .await?
            .is_some()
        {
            return Err(Error::already_exists(format!("username {username:?}")));
        }
        let hash = self.inner.passwords.hash(password.to_owned()).await?;
        let account = Account {
            user_id: new_user_id(),
            username: username.to_owned(),
            password_hash: hash,
            display_name: username.to_owned(),
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
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device: Option<&str>,
    ) -> Result<LoginOk> {
        let account = self.inner.accounts.account_by_username(username).await?;
        let (hash, user_id) = match &account {
            Some(a) => (a.password_hash.clone(), Some(a.user_id.clone())),
            None => (DUMMY_HASH.to_owned(), None),
        };
        let ok = self
            .inner
            .passwords
            .verify(password.to_owned(), hash)
            .await?;
        let user_id = match (ok, user_id) {
            (true, Some(id)) => id,
            _ => return Err(Error::unauthorized("wrong username or password")),
        };
        let (device_id, token) = self.inner.new_device(&user_id, device).await?;
        let chat_url = self.chat_url_for(&user_id).await;
        Ok(LoginOk {
            user_id,
            device_id,
            token,
            chat_url,
        })
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

    /// Changes a user's display name.
    pub async fn set_display_name(&self, user: &UserId, display_name: &str) -> Result<Profile> {
        let name = display_name.trim();
        if name.is_empty() {
            return Err(Error::invalid("display_name is empty"));
        }
        if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(Error::invalid(format!(
                "display_name is longer than {MAX_DISPLAY_NAME_CHARS} characters"
            )));
        }
        let account = self.inner.accounts.set_display_name(user, name).await?;
        Ok(Profile::from(&account))
    }

    /// A profile by username.
    pub async fn profile_by_username(&self, username: &str) -> Result<Profile> {
        self.inner
            .accounts
            .account_by_username(username)
            .await?
            .map(|a| Profile::from(&a))
            .ok_or_else(|| Error::not_found(format!("user {username:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked() {
        assert!(check_username("alice_1").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
        assert!(check_username(&"x".repeat(65)).is_err());
        assert!(check_password("").is_err());
        assert!(check_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn user_ids_have_no_colon() {
        let id = new_user_id();
        assert_eq!(id.as_str().len(), 25);
        assert!(!id.as_str().contains(':'));
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let p = PasswordHashing::insecure_fast();
        let h = p.hash("secret".into()).await.unwrap();
        assert!(p.verify("secret".into(), h.clone()).await.unwrap());
        assert!(!p.verify("wrong".into(), h).await.unwrap());
        assert!(!p.verify("x".into(), DUMMY_HASH.into()).await.unwrap());
    }
}
