//! [`ConversationStore`]: conversations, members with roles and join
//! points, bans, and invites.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{
    Conversation, ConversationId, Departure, GroupSettings, Invite, Member, Millis, Role, UserId,
};

/// Conversations and membership, both ways, with roles, bans and invites.
///
/// Promises every implementation keeps (the [`crate::testkit`] suite checks
/// them): each call is atomic on its own; `add_member` racing itself adds
/// once; `redeem_invite` racing itself never lets more joins through than
/// `max_uses`.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// Creates a group with `members` (the creator included by the caller,
    /// as owner). [`crate::Error::AlreadyExists`] when the id is taken.
    async fn create_group(&self, conversation: Conversation, members: &[Member]) -> Result<()>;

    /// Creates the direct conversation of its two users (both plain
    /// members, founding) if missing. Returns it, and whether this call
    /// created it.
    async fn ensure_direct(&self, conversation: Conversation) -> Result<(Conversation, bool)>;

    /// A conversation by id.
    async fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>>;

    /// Changes a group's settings (fields left `None` stay) and returns the
    /// group as it is now. [`crate::Error::NotFound`] when there is no such group.
    async fn update_group(
        &self,
        id: &ConversationId,
        settings: &GroupSettings,
    ) -> Result<Conversation>;

    /// The members of a conversation (empty when it does not exist), in a
    /// stable order.
    async fn members(&self, id: &ConversationId) -> Result<Vec<Member>>;

    /// One member, if `user` is a member.
    async fn member(&self, id: &ConversationId, user: &UserId) -> Result<Option<Member>>;

    /// How many members the conversation has.
    async fn member_count(&self, id: &ConversationId) -> Result<u64>;

    /// Adds `member`, clearing any ban of it; returns false (and changes
    /// nothing) when it was a member already. [`crate::Error::NotFound`]
    /// when the conversation does not exist.
    async fn add_member(&self, id: &ConversationId, member: Member) -> Result<bool>;

    /// Removes `user`; with `ban`, it also stays banned (it cannot add
    /// itself back) until [`ConversationStore::add_member`] adds it.
    /// Returns the member it was, or `None` (and changes nothing) when it
    /// was not a member.
    async fn remove_member(
        &self,
        id: &ConversationId,
        user: &UserId,
        ban: bool,
    ) -> Result<Option<Member>>;

    /// Sets a member's role; returns false when `user` is not a member.
    async fn set_role(&self, id: &ConversationId, user: &UserId, role: Role) -> Result<bool>;

    /// Whether an owner or admin removed `user` and nobody added it since.
    async fn is_banned(&self, id: &ConversationId, user: &UserId) -> Result<bool>;

    /// The conversations `user` is a member of, with its membership in each.
    async fn memberships(&self, user: &UserId) -> Result<Vec<(ConversationId, Member)>>;

    /// Remembers that `user`'s membership of `departure.conversation_id`
    /// ended, so that its devices that were away still get the end of it
    /// (see [`Departure`]). One departure is kept per user and group: a
    /// later one (greater `left`) replaces it, an older or equal one
    /// changes nothing.
    async fn record_departure(&self, user: &UserId, departure: Departure) -> Result<()>;

    /// Every departure of `user` kept by
    /// [`ConversationStore::record_departure`], in no particular order.
    async fn departures(&self, user: &UserId) -> Result<Vec<Departure>>;

    /// Stores a new invite. [`crate::Error::AlreadyExists`] when its hash is taken.
    async fn create_invite(&self, invite: Invite) -> Result<()>;

    /// Uses the invite whose code hashes to `code_hash`, once, at `now`:
    /// answers its group. [`crate::Error::NotFound`] for an unknown hash;
    /// [`crate::Error::Gone`] when it expired, is used up or was revoked
    /// (nothing counted).
    async fn redeem_invite(&self, code_hash: &str, now: Millis) -> Result<ConversationId>;

    /// Revokes the invite of group `id` whose code hashes to `code_hash`;
    /// returns false when the group has no such invite.
    async fn revoke_invite(&self, id: &ConversationId, code_hash: &str) -> Result<bool>;

    /// One cheap real round trip to the backend, as [`crate::store::MessageStore::ping`].
    async fn ping(&self) -> Result<()>;
}
