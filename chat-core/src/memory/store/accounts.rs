//! [`AccountStore`] for [`MemoryStore`].

use std::collections::HashMap;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::model::{Account, UserId};
use crate::store::AccountStore;

/// Accounts by id, and the unique username index.
#[derive(Debug, Default)]
pub(super) struct AccountState {
    by_id: HashMap<UserId, Account>,
    by_username: HashMap<String, UserId>,
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn create_account(&self, account: Account) -> Result<()> {
        let mut state = self.accounts.write();
        if state.by_username.contains_key(&account.username) {
            return Err(Error::already_exists(format!(
                "username {}",
                account.username
            )));
        }
        if state.by_id.contains_key(&account.user_id) {
            return Err(Error::already_exists(format!("user {}", account.user_id)));
        }
        state
            .by_username
            .insert(account.username.clone(), account.user_id.clone());
        state.by_id.insert(account.user_id.clone(), account);
        Ok(())
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        let state = self.accounts.read();
        Ok(state
            .by_username
            .get(username)
            .and_then(|id| state.by_id.get(id))
            .cloned())
    }

    async fn account(&self, id: &UserId) -> Result<Option<Account>> {
        Ok(self.accounts.read().by_id.get(id).cloned())
    }

    async fn set_display_name(&self, id: &UserId, display_name: &str) -> Result<Account> {
        let mut state = self.accounts.write();
        let account = state
            .by_id
            .get_mut(id)
            .ok_or_else(|| Error::not_found(format!("user {id}")))?;
        account.display_name = display_name.to_owned();
        Ok(account.clone())
    }

    /// In-process: it answers whenever it is asked.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
