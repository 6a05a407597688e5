//! Invite codes: an owner or admin makes one (with optional use and time
//! limits), anyone holding it joins, an owner or admin revokes it. A code is
//! 128 random bits; the store keeps only its SHA-256, so a leaked database
//! gives no usable code, and the store counts uses atomically.

use sha2::{Digest, Sha256};

use super::super::Engine;
use crate::error::{Error, Result};
use crate::model::{ConversationId, Invite, UserId, now_millis};

/// Most joins one invite may allow.
pub(crate) const MAX_INVITE_USES: u32 = 1_000_000;
/// Longest an invite may live, in seconds (a year).
pub(crate) const MAX_INVITE_SECS: u64 = 365 * 24 * 3600;

/// A fresh code: 16 random bytes as 32 hex digits.
fn new_code() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the store keeps of a code.
pub(crate) fn code_hash(code: &str) -> String {
    Sha256::digest(code.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A code as clients may send it: 32 hex digits. Anything else is unknown
/// (never looked up).
fn well_formed(code: &str) -> bool {
    code.len() == 32 && code.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Engine {
    /// An owner or admin of group `c` makes an invite code.
    pub async fn create_invite(
        &self,
        actor: &UserId,
        c: &ConversationId,
        max_uses: Option<u32>,
        expires_in_secs: Option<u64>,
    ) -> Result<String> {
        let inner = &self.inner;
        if max_uses.is_some_and(|n| n == 0 || n > MAX_INVITE_USES) {
            return Err(Error::invalid(format!(
                "max_uses is from 1 to {MAX_INVITE_USES}"
            )));
        }
        if expires_in_secs.is_some_and(|s| s == 0 || s > MAX_INVITE_SECS) {
            return Err(Error::invalid(format!(
                "expires_in_secs is from 1 to {MAX_INVITE_SECS}"
            )));
        }
        inner.require_group(c).await?;
        let me = inner.member_record(c, actor).await?;
        if !me.role.manages() {
            return Err(Error::forbidden("only owners and admins make invites"));
        }
        let code = new_code();
        let now = now_millis();
        inner
            .conversations
            .create_invite(Invite {
                code_hash: code_hash(&code),
                conversation_id: c.clone(),
                created_by: actor.clone(),
                created_at: now,
                max_uses,
                uses: 0,
                expires_at: expires_in_secs.map(|s| now + (s as i64) * 1000),
                revoked: false,
            })
            .await?;
        Ok(code)
    }

    /// `user` joins the group of invite `code`. [`Error::NotFound`] for an
    /// unknown code, [`Error::Gone`] for an expired, used-up or revoked one.
    pub async fn accept_invite(&self, user: &UserId, code: &str) -> Result<ConversationId> {
        if !well_formed(code) {
            return Err(Error::not_found("invite"));
        }
        let inner = &self.inner;
        let c = inner
            .conversations
            .redeem_invite(&code_hash(code), now_millis())
            .await?;
        inner.join_by_invite(&c, user).await?;
        Ok(c)
    }

    /// An owner or admin revokes an invite of group `c`: it stops working at once.
    pub async fn revoke_invite(
        &self,
        actor: &UserId,
        c: &ConversationId,
        code: &str,
    ) -> Result<()> {
        let inner = &self.inner;
        inner.require_group(c).await?;
        let me = inner.member_record(c, actor).await?;
        if !me.role.manages() {
            return Err(Error::forbidden("only owners and admins revoke invites"));
        }
        if !well_formed(code)
            || !inner
                .conversations
                .revoke_invite(c, &code_hash(code))
                .await?
        {
            return Err(Error::not_found("invite"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_128_bits_and_only_their_hash_is_kept() {
        let code = new_code();
        assert!(well_formed(&code));
        assert_ne!(code, new_code());
        let hash = code_hash(&code);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&code));
        assert!(!well_formed("../../etc"));
        assert_eq!(
            code_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
