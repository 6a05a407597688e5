//! Groups with authority: creating one, adding and removing members (with
//! the role rules), roles, settings, and what a member may read of it.
//!
//! Every membership or settings change is also an entry of the group's
//! chain (a group event): members get it as a `group_event` frame in order
//! with the messages, and a send that raced a removal is refused (its
//! append expected the old membership version) rather than delivered after
//! it. Changes to one group are made one at a time on a node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::super::append::Appending;
use super::super::envelope::Header;
use super::super::frames::StoredEvent;
use super::super::{Engine, Inner};
use crate::error::{Error, Result};
use crate::model::{
    Conversation, ConversationId, ConversationKind, Departure, GroupEvent, GroupEventKind,
    GroupSettings, HistoryVisibility, JoinPolicy, Member, Message, MessageId, MessageKind, Role,
    UserId, now_millis,
};

/// Longest group name, in characters.
pub(crate) const MAX_GROUP_NAME_CHARS: usize = 100;

/// How long a membership change waits for this node's chain to deliver its
/// group event before it answers (so that nothing older reaches a removed
/// member after the answer).
const SETTLE: Duration = Duration::from_secs(2);

/// A group to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewGroup {
    /// Its name.
    pub name: String,
    /// Its first members besides the creator (who becomes owner).
    pub members: Vec<UserId>,
    /// Who may join.
    pub join: JoinPolicy,
    /// What history members read.
    pub history: HistoryVisibility,
}

/// A group as a member sees it: its settings and members with roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group (name, join policy, history visibility).
    pub conversation: Conversation,
    /// Its members, with their roles.
    pub members: Vec<Member>,
}

/// One async lock per group with changes in flight on this node.
#[derive(Default)]
pub(crate) struct GroupLocks {
    locks: Mutex<HashMap<ConversationId, Arc<tokio::sync::Mutex<()>>>>,
}

impl GroupLocks {
    async fn lock(&self, c: &ConversationId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock();
            // Forget locks nobody holds or waits for, so the map stays small.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(c.clone()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// A group name as stored: trimmed, not empty, no controls, bidi controls
/// or separators (see [`crate::names::check_display_text`]).
pub(crate) fn check_group_name(name: &str) -> Result<String> {
    crate::names::check_display_text(name, "group name", MAX_GROUP_NAME_CHARS).map(str::to_owned)
}

fn new_group_id() -> ConversationId {
    let bytes: [u8; 12] = rand::random();
    let mut s = String::with_capacity(26);
    s.push_str("g_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    ConversationId::from(s)
}

impl Inner {
    /// The group `c`; one `NotFound` for no such conversation and for a
    /// direct one, so that outsiders learn nothing from the difference.
    pub(crate) async fn require_group(&self, c: &ConversationId) -> Result<Conversation> {
        match self.conversations.conversation(c).await? {
            Some(conv) if conv.kind == ConversationKind::Group => Ok(conv),
            _ => Err(Error::not_found(format!("group {c}"))),
        }
    }

    /// Appends a group event (as the engine, not as a session) and waits for
    /// this node to deliver it; answers the stored entry.
    pub(crate) async fn group_event(
        &self,
        c: &ConversationId,
        by: &UserId,
        event: GroupEventKind,
        user: Option<&UserId>,
        role: Option<Role>,
        joined: Option<MessageId>,
    ) -> Result<Message> {
        let stored = StoredEvent {
            event: GroupEvent {
                event,
                user_id: user.cloned(),
                by: by.clone(),
                role,
            },
            joined,
        };
        let appended = self
            .append_entry(
                Appending {
                    conversation: c.clone(),
                    sender: by.clone(),
                    device: None,
                    kind: MessageKind::GroupEvent,
                    body: stored.body(),
                    ref_id: None,
                    in_reply_to: None,
                    client_msg_id: None,
                    check_member: false,
                },
                None,
            )
            .await?;
        self.forget_members(c);
        self.settle(c, appended.message.message_id).await;
        Ok(appended.message)
    }

    /// Waits until this node's chain of `c` let `id` through (or `c` is not
    /// followed here), at most [`SETTLE`].
    async fn settle(&self, c: &ConversationId, id: MessageId) {
        let until = Instant::now() + SETTLE;
        while Instant::now() < until {
            match self.local.last(c) {
                Some(last) if last < id => tokio::time::sleep(Duration::from_millis(2)).await,
                _ => return,
            }
        }
    }

    /// Makes `user` a member of group `c` (it was checked): its join point
    /// is the head now, its cursors start there, everyone learns it.
    async fn join(&self, c: &ConversationId, user: &UserId, by: &UserId) -> Result<()> {
        let head = self.messages.head(c).await?;
        let joined = head.last_id.unwrap_or(MessageId(0));
        let member = Member {
            user_id: user.clone(),
            role: Role::Member,
            joined,
            joined_at: now_millis(),
        };
        if !self.conversations.add_member(c, member).await? {
            return Ok(());
        }
        self.messages.start_member(user, c, head).await?;
        self.group_event(c, by, GroupEventKind::Added, Some(user), None, Some(joined))
            .await?;
        self.notice_user(user, Header::Attach { c: c.clone() })
            .await;
        self.attach_joined(user, c).await;
        Ok(())
    }
}

impl Engine {
    /// Creates a group; the creator is its owner. Every member must be an
    /// existing user who has not blocked the creator.
    pub async fn create_group(&self, creator: &UserId, group: NewGroup) -> Result<ConversationId> {
        let inner = &self.inner;
        let name = check_group_name(&group.name)?;
        let mut all: Vec<UserId> = vec![creator.clone()];
        for m in group.members {
            if !all.contains(&m) {
                all.push(m);
            }
        }
        if all.len() > inner.limits.max_group_members {
            return Err(Error::invalid(format!(
                "a group has at most {} members",
                inner.limits.max_group_members
            )));
        }
        for m in &all[1..] {
            self.require_user(m).await?;
            if inner.blocks(m, creator).await? {
                return Err(Error::blocked(format!("{m} blocked you")));
            }
        }
        let now = now_millis();
        let conversation = Conversation {
            id: new_group_id(),
            kind: ConversationKind::Group,
            name: Some(name),
            created_by: creator.clone(),
            created_at: now,
            join: group.join,
            history: group.history,
        };
        let id = conversation.id.clone();
        let members: Vec<Member> = all
            .iter()
            .map(|u| {
                let role = if u == creator {
                    Role::Owner
                } else {
                    Role::Member
                };
                Member::founding(u.clone(), role, now)
            })
            .collect();
        inner
            .conversations
            .create_group(conversation, &members)
            .await?;
        for u in &all {
            inner.notice_user(u, Header::Attach { c: id.clone() }).await;
            inner.attach_joined(u, &id).await;
        }
        Ok(id)
    }

    /// Adds `user` to group `c`: owners and admins add anyone (who has not
    /// blocked them); a user adds itself to an open group it was not
    /// removed from. Adding a member again changes nothing.
    pub async fn add_member(
        &self,
        actor: &UserId,
        c: &ConversationId,
        user: &UserId,
    ) -> Result<()> {
        let inner = &self.inner;
        let _guard = inner.group_locks.lock(c).await;
        let group = inner.require_group(c).await?;
        if actor == user {
            if inner.conversations.member(c, user).await?.is_some() {
                return Ok(());
            }
            if group.join != JoinPolicy::Open {
                return Err(Error::forbidden(
                    "the group is invite-only: an owner or admin adds members",
                ));
            }
            if inner.conversations.is_banned(c, user).await? {
                return Err(Error::forbidden(
                    "an owner or admin removed you: only they can add you back",
                ));
            }
        } else {
            let me = inner.member_record(c, actor).await?;
            if !me.role.manages() {
                return Err(Error::forbidden("only owners and admins add members"));
            }
            self.require_user(user).await?;
            if inner.blocks(user, actor).await? {
                return Err(Error::blocked(format!("{user} blocked you")));
            }
            if inner.conversations.member(c, user).await?.is_some() {
                return Ok(());
            }
        }
        let count = inner.conversations.member_count(c).await?;
        if count as usize >= inner.limits.max_group_members {
            return Err(Error::invalid(format!(
                "a group has at most {} members",
                inner.limits.max_group_members
            )));
        }
        inner.join(c, user, actor).await
    }

    /// Removes `user` from group `c`: anyone may leave; an admin removes
    /// plain members, the owner anyone. A removed member stays out until an
    /// owner or admin adds it (or it uses an invite). When the owner leaves,
    /// the longest-standing admin (else member) becomes owner.
    pub async fn remove_member(
        &self,
        actor: &UserId,
        c: &ConversationId,
        user: &UserId,
    ) -> Result<()> {
        let inner = &self.inner;
        let _guard = inner.group_locks.lock(c).await;
        inner.require_group(c).await?;
        let Some(target) = inner.conversations.member(c, user).await? else {
            if actor != user {
                inner.member_record(c, actor).await?;
            }
            return Err(Error::not_found(format!("{user} is not a member of {c}")));
        };
        let (kind, ban) = if actor == user {
            (GroupEventKind::Left, false)
        } else {
            let me = inner.member_record(c, actor).await?;
            let allowed =
                me.role == Role::Owner || (me.role == Role::Admin && target.role == Role::Member);
            if !allowed {
                return Err(Error::forbidden(
                    "admins remove plain members; the owner removes anyone",
                ));
            }
            (GroupEventKind::Removed, true)
        };
        if inner
            .conversations
            .remove_member(c, user, ban)
            .await?
            .is_none()
        {
            return Ok(());
        }
        let event = inner
            .group_event(c, actor, kind, Some(user), None, None)
            .await?;
        // Its devices that are away get the rest of their membership, up to
        // this event, at their next sync.
        inner
            .conversations
            .record_departure(
                user,
                Departure {
                    conversation_id: c.clone(),
                    joined: target.joined,
                    left: event.message_id,
                    by: event.sender_id,
                    ts: event.ts,
                    body: event.body,
                },
            )
            .await?;
        if target.role == Role::Owner {
            let successor = inner
                .conversations
                .members(c)
                .await?
                .into_iter()
                .min_by_key(|m| (m.role != Role::Admin, m.joined_at, m.user_id.clone()));
            if let Some(next) = successor {
                inner
                    .conversations
                    .set_role(c, &next.user_id, Role::Owner)
                    .await?;
                inner
                    .group_event(
                        c,
                        actor,
                        GroupEventKind::Role,
                        Some(&next.user_id),
                        Some(Role::Owner),
                        None,
                    )
                    .await?;
            }
        }
        // What the removed member held back may go now.
        inner.after_ack(c).await;
        Ok(())
    }

    /// The owner makes a member an admin or a plain member again.
    pub async fn set_role(
        &self,
        actor: &UserId,
        c: &ConversationId,
        user: &UserId,
        role: Role,
    ) -> Result<()> {
        let inner = &self.inner;
        if role == Role::Owner {
            return Err(Error::invalid(
                "the role is admin or member (the owner passes on when it leaves)",
            ));
        }
        let _guard = inner.group_locks.lock(c).await;
        inner.require_group(c).await?;
        let me = inner.member_record(c, actor).await?;
        if me.role != Role::Owner {
            return Err(Error::forbidden("only the owner changes roles"));
        }
        let Some(target) = inner.conversations.member(c, user).await? else {
            return Err(Error::not_found(format!("{user} is not a member of {c}")));
        };
        if target.role == Role::Owner {
            return Err(Error::invalid(
                "the owner's role changes only when it leaves",
            ));
        }
        if target.role == role {
            return Ok(());
        }
        inner.conversations.set_role(c, user, role).await?;
        inner
            .group_event(c, actor, GroupEventKind::Role, Some(user), Some(role), None)
            .await?;
        Ok(())
    }

    /// An owner or admin changes the group's name, join policy or history visibility.
    pub async fn update_group(
        &self,
        actor: &UserId,
        c: &ConversationId,
        settings: GroupSettings,
    ) -> Result<GroupInfo> {
        let inner = &self.inner;
        let settings = GroupSettings {
            name: settings.name.as_deref().map(check_group_name).transpose()?,
            ..settings
        };
        let _guard = inner.group_locks.lock(c).await;
        inner.require_group(c).await?;
        let me = inner.member_record(c, actor).await?;
        if !me.role.manages() {
            return Err(Error::forbidden(
                "only owners and admins change the group's settings",
            ));
        }
        let conversation = inner.conversations.update_group(c, &settings).await?;
        inner
            .group_event(c, actor, GroupEventKind::Settings, None, None, None)
            .await?;
        let members = inner.conversations.members(c).await?;
        Ok(GroupInfo {
            conversation,
            members,
        })
    }

    /// A group as its member `actor` sees it; a non-member reads nothing.
    pub async fn group(&self, actor: &UserId, c: &ConversationId) -> Result<GroupInfo> {
        let inner = &self.inner;
        let conversation = match inner.conversations.conversation(c).await? {
            Some(conv) => conv,
            None => {
                return Err(Error::NotMember {
                    conversation: c.clone(),
                });
            }
        };
        let members = inner.conversations.members(c).await?;
        if !members.iter().any(|m| m.user_id == *actor) {
            return Err(Error::NotMember {
                conversation: c.clone(),
            });
        }
        Ok(GroupInfo {
            conversation,
            members,
        })
    }

    /// The members of `conversation` (ids only); only members may ask.
    pub async fn members(&self, actor: &UserId, c: &ConversationId) -> Result<Vec<UserId>> {
        Ok(self
            .group(actor, c)
            .await?
            .members
            .into_iter()
            .map(|m| m.user_id)
            .collect())
    }

    /// The direct conversation of `user` and `other`, created when missing
    /// (refused when `other` blocked `user`).
    pub async fn direct_conversation(
        &self,
        user: &UserId,
        other: &UserId,
    ) -> Result<ConversationId> {
        self.inner.open_direct(user, other).await
    }

    pub(crate) async fn require_user(&self, user: &UserId) -> Result<()> {
        match self.inner.accounts.account(user).await? {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!("user {user}"))),
        }
    }
}

impl Inner {
    /// Joins `user` to `c` through an invite (bypasses the join policy and a
    /// ban: an owner or admin chose to hand the code out).
    pub(crate) async fn join_by_invite(&self, c: &ConversationId, user: &UserId) -> Result<()> {
        let _guard = self.group_locks.lock(c).await;
        self.require_group(c).await?;
        if self.conversations.member(c, user).await?.is_some() {
            return Ok(());
        }
        let count = self.conversations.member_count(c).await?;
        if count as usize >= self.limits.max_group_members {
            return Err(Error::invalid(format!(
                "a group has at most {} members",
                self.limits.max_group_members
            )));
        }
        self.join(c, user, user).await
    }
}
