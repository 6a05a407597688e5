//! [`HotQuery`] and [`PostgresStore::explain`]: the plans of the queries
//! that run most, for tests and operators.

use chat_core::Result;

use crate::conversations::{CONVERSATIONS_OF, MEMBERS};
use crate::ids::to_db;
use crate::messages::{HISTORY_BEFORE, PENDING};
use crate::store::PostgresStore;

/// A query the store runs on every page load, sync or send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HotQuery {
    /// A history page: a conversation's 50 newest messages before an id.
    History,
    /// Sync: a user's 100 oldest pending messages.
    Pending,
    /// Fan-out: a conversation's members.
    Members,
    /// The conversation list: a user's conversations.
    ConversationsOf,
}

impl PostgresStore {
    /// PostgreSQL's plan (`EXPLAIN`, text format) for `query` about
    /// `subject`: a conversation id for [`HotQuery::History`] and
    /// [`HotQuery::Members`], a user id for the others.
    pub async fn explain(&self, query: HotQuery, subject: &str) -> Result<String> {
        let mut conn = self.shared.conn("explain").await?;
        let rows = match query {
            HotQuery::History => {
                let sql = format!("EXPLAIN {HISTORY_BEFORE}");
                let before = to_db(chat_core::MessageId(u64::MAX));
                conn.query("explain", &sql, &[&subject, &before, &50_i64])
                    .await?
            }
            HotQuery::Pending => {
                let sql = format!("EXPLAIN {PENDING}");
                let from = to_db(chat_core::MessageId(0));
                conn.query("explain", &sql, &[&subject, &from, &100_i64])
                    .await?
            }
            HotQuery::Members => {
                let sql = format!("EXPLAIN {MEMBERS}");
                conn.query("explain", &sql, &[&subject]).await?
            }
            HotQuery::ConversationsOf => {
                let sql = format!("EXPLAIN {CONVERSATIONS_OF}");
                conn.query("explain", &sql, &[&subject]).await?
            }
        };
        Ok(rows
            .iter()
            .map(|r| r.get::<_, &str>(0))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}
