//! A deleted message's text is gone from everything the server sends,
//! including the edits of it: an edit event is an entry of its own that
//! carries the text it set, and the stores change only the deleted message
//! itself. So history pages and syncs serve an edit whose message is
//! deleted with an empty body (its place in the log stays, for clients that
//! apply events in order). A live edit never needs it: its delete comes
//! after it.

use std::collections::HashMap;

use super::Inner;
use crate::error::Result;
use crate::model::{ConversationId, Message, MessageId, MessageKind};

impl Inner {
    /// Empties the body of every edit in `entries` (of conversation `c`)
    /// whose message is deleted. Targets among `entries` cost nothing;
    /// others one store read each. A target no longer stored (purged once
    /// delivered) leaves its edits as they are.
    pub(crate) async fn redact_edits(
        &self,
        c: &ConversationId,
        entries: &mut [Message],
    ) -> Result<()> {
        let mut deleted: HashMap<MessageId, bool> = entries
            .iter()
            .filter(|m| m.kind == MessageKind::Text)
            .map(|m| (m.message_id, m.deleted))
            .collect();
        for entry in entries.iter_mut() {
            if entry.kind != MessageKind::Edit || entry.body.is_empty() {
                continue;
            }
            let Some(target) = entry.ref_id else { continue };
            let is_deleted = match deleted.get(&target) {
                Some(d) => *d,
                None => {
                    let d = self
                        .messages
                        .entry(c, target)
                        .await?
                        .is_some_and(|m| m.deleted);
                    deleted.insert(target, d);
                    d
                }
            };
            if is_deleted {
                entry.body.clear();
            }
        }
        Ok(())
    }
}
