//! Conversations, their heads, members with roles, group settings, group
//! events and invites.

use serde::{Deserialize, Serialize};

use super::{ConversationId, MessageId, Millis, UserId};

/// One-to-one or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    /// Exactly two users; the id is derived from the pair.
    Direct,
    /// Any number of members who join and leave.
    Group,
}

/// Who may add themselves to a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinPolicy {
    /// Only owners and admins add members (or an invite code does).
    #[default]
    Invite,
    /// Anyone may add itself, unless an owner or admin removed it.
    Open,
}

/// What history a member of a group may read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryVisibility {
    /// History starts at the member's latest join.
    #[default]
    SinceJoin,
    /// History shows everything the group still stores.
    All,
}

/// A member's role in a group.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A plain member.
    #[default]
    Member,
    /// Adds anyone, removes plain members, changes settings.
    Admin,
    /// The creator (or whom the group passed to): everything an admin does,
    /// plus removing admins and changing roles.
    Owner,
}

impl Role {
    /// The role as the wire spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// The role a wire name spells, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Member, Self::Admin, Self::Owner]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Owner or admin.
    pub fn manages(self) -> bool {
        self >= Self::Admin
    }
}

/// A conversation's stored facts (members are kept apart, see
/// [`crate::store::ConversationStore`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// A group's name; `None` for direct conversations.
    pub name: Option<String>,
    /// Who created it.
    pub created_by: UserId,
    /// When it was created.
    pub created_at: Millis,
    /// Who may join (groups; direct conversations keep the default).
    pub join: JoinPolicy,
    /// What history members read (groups; direct conversations keep the default).
    pub history: HistoryVisibility,
}

impl Conversation {
    /// The direct conversation of `a` and `b`, created by `a` now.
    pub fn direct(a: &UserId, b: &UserId, created_at: Millis) -> Self {
        Self {
            id: ConversationId::direct(a, b),
            kind: ConversationKind::Direct,
            name: None,
            created_by: a.clone(),
            created_at,
            join: JoinPolicy::Invite,
            history: HistoryVisibility::SinceJoin,
        }
    }
}

/// A change to a group's settings (absent fields stay as they are).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSettings {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new join policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinPolicy>,
    /// A new history visibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryVisibility>,
}

/// The head of a conversation's log (see docs/storage.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The newest entry ever appended (purges do not move it back).
    pub last_id: Option<MessageId>,
    /// How many text entries were ever appended: `unread = seq - read_seq`.
    pub seq: u64,
    /// Bumped by every group event entry: a send that read the members at an
    /// older version is refused and retried.
    pub version: u64,
}

/// One member of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Who.
    pub user_id: UserId,
    /// Its role (direct conversations: both are plain members).
    pub role: Role,
    /// The head's `last_id` when it (last) joined: it is delivered, synced
    /// and counted unread only entries after this one. `MessageId(0)` for
    /// founding members.
    pub joined: MessageId,
    /// When it (last) joined, in ms: the longest-standing admin or member
    /// becomes owner when the owner leaves.
    pub joined_at: Millis,
}

impl Member {
    /// A member since the conversation began.
    pub fn founding(user_id: UserId, role: Role, joined_at: Millis) -> Self {
        Self {
            user_id,
            role,
            joined: MessageId(0),
            joined_at,
        }
    }
}

/// A membership that ended (the user left or was removed): what its devices
/// that were away still get of the group at their next sync, namely the
/// entries after [`Departure::joined`] they had not acked, up to and
/// including the group event that ended it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departure {
    /// The group.
    pub conversation_id: ConversationId,
    /// The join point of the membership that ended.
    pub joined: MessageId,
    /// The id of the group event (`left` or `removed`) that ended it.
    pub left: MessageId,
    /// That event's sender (who removed the user, or the user itself).
    pub by: UserId,
    /// That event's time.
    pub ts: Millis,
    /// That event's stored body, so that it reaches the user even when the
    /// log no longer holds it (until_delivered retention purged it).
    pub body: String,
}

impl Departure {
    /// The group event that ended the membership, as a log entry.
    pub fn event(&self) -> super::Message {
        super::Message {
            kind: super::MessageKind::GroupEvent,
            ..super::Message::text(
                self.left,
                self.conversation_id.clone(),
                self.by.clone(),
                self.body.clone(),
                self.ts,
            )
        }
    }
}

/// What a group event says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupEventKind {
    /// `user_id` was added (or added itself, or joined by invite).
    Added,
    /// `user_id` was removed by `by`.
    Removed,
    /// `user_id` left.
    Left,
    /// `user_id`'s role became `role`.
    Role,
    /// The group's name, join policy or history visibility changed.
    Settings,
}

/// A membership or settings change, as the `group_event` frame carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEvent {
    /// What happened.
    pub event: GroupEventKind,
    /// Whom it is about (absent for settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// Who did it.
    pub by: UserId,
    /// The new role (role events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// What one user sees of one conversation in its list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// A group's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The newest entry, if any.
    pub last_message_id: Option<MessageId>,
    /// Messages from others newer than this user's read cursor (and its join).
    pub unread: u64,
}

/// A stored invite to a group. The code itself is never stored: only its
/// SHA-256 (`code_hash`), so a leak of the store gives no usable code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// SHA-256 of the code, hex.
    pub code_hash: String,
    /// The group it joins.
    pub conversation_id: ConversationId,
    /// The owner or admin who made it.
    pub created_by: UserId,
    /// When, in ms.
    pub created_at: Millis,
    /// How many joins it allows (`None`: unlimited).
    pub max_uses: Option<u32>,
    /// How many it has allowed.
    pub uses: u32,
    /// When it stops working, in ms (`None`: never).
    pub expires_at: Option<Millis>,
    /// Revoked by an owner or admin.
    pub revoked: bool,
}
