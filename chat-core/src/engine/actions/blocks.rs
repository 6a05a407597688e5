//! Blocking: a blocked user cannot write to the blocker's direct
//! conversation, add it to groups, or see its presence.

use super::super::envelope::Header;
use super::super::{Engine, Inner};
use crate::error::{Error, Result};
use crate::model::UserId;

impl Inner {
    /// Answered once every node forgot `user`'s blocks: the next send of
    /// a blocked user is refused wherever it is made.
    async fn blocks_changed(&self, user: &UserId) {
        self.caches.forget_blocks(user);
        self.notice_cluster_confirmed(|ack| Header::BlocksChanged {
            user: user.clone(),
            ack,
        })
        .await;
    }
}

impl Engine {
    /// `user` blocks `other` (idempotent).
    pub async fn block(&self, user: &UserId, other: &UserId) -> Result<()> {
        if user == other {
            return Err(Error::invalid("you cannot block yourself"));
        }
        self.require_user(other).await?;
        if self.inner.accounts.block(user, other).await? {
            self.inner.blocks_changed(user).await;
        }
        Ok(())
    }

    /// `user` unblocks `other` (idempotent).
    pub async fn unblock(&self, user: &UserId, other: &UserId) -> Result<()> {
        if self.inner.accounts.unblock(user, other).await? {
            self.inner.blocks_changed(user).await;
        }
        Ok(())
    }

    /// Whom `user` blocks.
    pub async fn blocked(&self, user: &UserId) -> Result<Vec<UserId>> {
        self.inner.accounts.blocked_by(user).await
    }
}
