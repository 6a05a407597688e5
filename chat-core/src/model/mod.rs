//! The domain: users and their devices, conversations with members and
//! roles, the entries of a conversation's log (messages and events),
//! receipts, presence and retention.
//!
//! Ids are small newtypes so that a user id can never be passed where a
//! conversation id belongs. They serialize as plain JSON strings; a
//! [`MessageId`] serializes as a decimal string because JavaScript numbers
//! lose precision past 2^53.

mod account;
mod conversation;
mod ids;
mod message;
mod presence;

pub use account::{Account, Device, Profile};
pub use conversation::{
    Conversation, ConversationKind, ConversationSummary, Departure, GroupEvent, GroupEventKind,
    GroupSettings, Head, HistoryVisibility, Invite, JoinPolicy, Member, Role,
};
pub use ids::{ConversationId, DeviceId, MessageId, Millis, NodeId, UserId, now_millis};
pub use message::{Message, MessageKind, NewMessage, Reactions};
pub use presence::{Presence, PresenceStatus, Receipt, ReceiptStatus, Retention};
