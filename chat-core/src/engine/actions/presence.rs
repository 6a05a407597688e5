//! `presence_subscribe`: presence now and at every change, for users who
//! share a conversation with the caller and have not blocked it.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::join_all;

use super::super::Inner;
use super::super::registry::SessionShared;
use crate::cluster::Topic;
use crate::error::{Error, Result};
use crate::model::{ConversationId, UserId};
use crate::protocol::ServerFrame;

impl Inner {
    /// Follows the presence of those of `users` the caller may see, and
    /// sends theirs now. Answers the refusal for the others, if any (the
    /// session sends it as one `forbidden` error after the presence frames).
    pub(crate) async fn watch(
        &self,
        session: &Arc<SessionShared>,
        watching: &mut HashSet<UserId>,
        users: Vec<UserId>,
    ) -> Result<Option<Error>> {
        let limit = self.limits.max_presence_watch;
        let mut wanted: Vec<UserId> = Vec::new();
        for u in users {
            if !wanted.contains(&u) {
                wanted.push(u);
            }
        }
        let new: Vec<&UserId> = wanted.iter().filter(|u| !watching.contains(*u)).collect();
        if new.len() + watching.len() > limit {
            return Err(Error::invalid(format!(
                "a session may watch the presence of at most {limit} users"
            )));
        }
        let me = &session.user;
        let mine: HashSet<ConversationId> = match self.local.conversations_of(me) {
            attached if !attached.is_empty() => attached.into_iter().collect(),
            _ => self
                .conversations
                .memberships(me)
                .await?
                .into_iter()
                .map(|(c, _)| c)
                .collect(),
        };
        let checks = wanted.iter().map(|u| self.may_see(me, u, &mine));
        let verdicts = join_all(checks).await;
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for (u, verdict) in wanted.into_iter().zip(verdicts) {
            if verdict? {
                allowed.push(u);
            } else {
                refused.push(u);
            }
        }
        let fresh = self.watchers.watch(session, &allowed);
        for u in fresh {
            if let Err(e) = self.bus.subscribe(&Topic::Presence(u)).await {
                tracing::warn!(error = %e, "bus subscribe for presence failed");
            }
        }
        watching.extend(allowed.iter().cloned());
        for entry in self.presence.presence(&allowed).await? {
            session
                .push_wait(ServerFrame::Presence(entry.presence).encode())
                .await;
        }
        Ok((!refused.is_empty()).then(|| {
            let names: Vec<&str> = refused.iter().map(UserId::as_str).collect();
            Error::forbidden(format!(
                "presence of {} is not yours to see (no shared conversation, or blocked)",
                names.join(", ")
            ))
        }))
    }

    /// Whether `watcher` may see `user`'s presence: itself, or someone it
    /// shares a conversation with who has not blocked it.
    async fn may_see(
        &self,
        watcher: &UserId,
        user: &UserId,
        mine: &HashSet<ConversationId>,
    ) -> Result<bool> {
        if user == watcher {
            return Ok(true);
        }
        let shares = self
            .conversations
            .memberships(user)
            .await?
            .iter()
            .any(|(c, _)| mine.contains(c));
        Ok(shares && !self.blocks(user, watcher).await?)
    }
}
