//! [`AccountStore`] for [`MemoryStore`].

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::model::{Account, Device, DeviceId, Millis, UserId};
use crate::store::AccountStore;

/// Accounts by id, the unique username index, devices, and blocks.
#[derive(Debug, Default)]
pub(super) struct AccountState {
    by_id: HashMap<UserId, Account>,
    by_username: HashMap<String, UserId>,
    devices: HashMap<DeviceId, Device>,
    /// Blocker to the users it blocks.
    blocks: HashMap<UserId, BTreeSet<UserId>>,
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

    async fn create_device(&self, device: Device) -> Result<()> {
        let mut state = self.accounts.write();
        if state.devices.contains_key(&device.device_id) {
            return Err(Error::already_exists(format!(
                "device {}",
                device.device_id
            )));
        }
        state.devices.insert(device.device_id.clone(), device);
        Ok(())
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<Device>> {
        Ok(self.accounts.read().devices.get(id).cloned())
    }

    async fn devices(&self, user: &UserId) -> Result<Vec<Device>> {
        let state = self.accounts.read();
        let mut out: Vec<Device> = state
            .devices
            .values()
            .filter(|d| d.user_id == *user)
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.device_id).cmp(&(b.created_at, &b.device_id)));
        Ok(out)
    }

    async fn remove_device(&self, user: &UserId, id: &DeviceId) -> Result<bool> {
        let mut state = self.accounts.write();
        if state.devices.get(id).is_some_and(|d| d.user_id == *user) {
            state.devices.remove(id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn touch_device(&self, id: &DeviceId, at: Millis) -> Result<()> {
        if let Some(device) = self.accounts.write().devices.get_mut(id) {
            device.last_seen = Some(device.last_seen.map_or(at, |seen| seen.max(at)));
        }
        Ok(())
    }

    async fn block(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        Ok(self
            .accounts
            .write()
            .blocks
            .entry(blocker.clone())
            .or_default()
            .insert(blocked.clone()))
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let mut state = self.accounts.write();
        let Some(set) = state.blocks.get_mut(blocker) else {
            return Ok(false);
        };
        let removed = set.remove(blocked);
        if set.is_empty() {
            state.blocks.remove(blocker);
        }
        Ok(removed)
    }

    async fn blocked_by(&self, blocker: &UserId) -> Result<Vec<UserId>> {
        let state = self.accounts.read();
        Ok(state
            .blocks
            .get(blocker)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn is_blocked(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let state = self.accounts.read();
        Ok(state
            .blocks
            .get(blocker)
            .is_some_and(|set| set.contains(blocked)))
    }

    /// In-process: it answers whenever it is asked.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
