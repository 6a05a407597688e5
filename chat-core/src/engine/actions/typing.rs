//! `typing`: the other members connected anywhere see that the user types.

use super::super::Inner;
use crate::error::Result;
use crate::model::{ConversationId, UserId};
use crate::protocol::ServerFrame;

impl Inner {
    /// Tells `c`'s other connected members that `user` types.
    pub(crate) async fn typing(&self, user: &UserId, c: &ConversationId) -> Result<()> {
        if c.is_direct() {
            self.direct_partner(c, user)?;
        }
        self.require_member(c, user).await?;
        let frame = ServerFrame::Typing {
            conversation_id: c.clone(),
            user_id: user.clone(),
        }
        .encode();
        self.to_members(c, frame, Some(user)).await;
        Ok(())
    }
}
