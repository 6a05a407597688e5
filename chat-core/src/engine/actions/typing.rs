//! `typing`: the other members connected anywhere see that the user types.

use super::super::Inner;
use super::super::budget::TYPING_GATED_ABOVE;
use super::super::queue::SlotKey;
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
        // Typing is a hint: in a big group what the gate holds back is
        // dropped (one typing frame is a frame per online member).
        if !c.is_direct() {
            let version = self.caches.head(c).map_or(0, |h| h.version);
            let members = self.members_at(c, version).await?;
            if members.len() > TYPING_GATED_ABOVE + 1 && !self.typing_gate.pass(c) {
                return Ok(());
            }
        }
        let frame = ServerFrame::Typing {
            conversation_id: c.clone(),
            user_id: user.clone(),
        }
        .encode();
        let key = SlotKey::Typing(c.clone(), user.clone());
        self.to_members(c, frame, Some(user), key).await;
        Ok(())
    }
}
