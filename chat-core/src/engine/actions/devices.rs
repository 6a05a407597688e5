//! Devices: each sign-up or login is one; its owner lists them and logs any
//! of them out, which makes its tokens stop working at once on every node
//! and closes its connections (4001).

use super::super::envelope::Header;
use super::super::registry::CloseReason;
use super::super::{Engine, Inner};
use crate::auth::Identity;
use crate::error::{Error, Result};
use crate::model::{Device, DeviceId, Millis, UserId, now_millis};

/// Longest device name, in characters.
pub(crate) const MAX_DEVICE_NAME_CHARS: usize = 64;

/// A device as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its id.
    pub device_id: DeviceId,
    /// The name given at login.
    pub name: String,
    /// When it last connected or disconnected (`None`: never connected).
    pub last_seen: Option<Millis>,
    /// Whether it is the device asking.
    pub current: bool,
}

fn new_device_id() -> DeviceId {
    let bytes: [u8; 12] = rand::random();
    let mut s = String::with_capacity(26);
    s.push_str("dv");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    DeviceId::from(s)
}

impl Inner {
    /// A new device of `user` (a sign-up or login) and a token for it. The
    /// device starts where the user is: what it still had unacked reaches it.
    pub(crate) async fn new_device(
        &self,
        user: &UserId,
        name: Option<&str>,
    ) -> Result<(DeviceId, String)> {
        let name = name.unwrap_or("").trim();
        if name.chars().count() > MAX_DEVICE_NAME_CHARS {
            return Err(Error::invalid(format!(
                "device name is longer than {MAX_DEVICE_NAME_CHARS} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "device name may not contain control characters",
            ));
        }
        let device = Device {
            device_id: new_device_id(),
            user_id: user.clone(),
            name: name.to_owned(),
            created_at: now_millis(),
            last_seen: None,
        };
        let id = device.device_id.clone();
        self.accounts.create_device(device).await?;
        self.messages.start_device(user, &id).await?;
        let token = self.auth.issue(user, &id).await?;
        Ok((id, token))
    }
}

impl Engine {
    /// The devices of the caller's user, its own marked `current`.
    pub async fn devices(&self, me: &Identity) -> Result<Vec<DeviceInfo>> {
        Ok(self
            .inner
            .accounts
            .devices(&me.user_id)
            .await?
            .into_iter()
            .map(|d| DeviceInfo {
                current: d.device_id == me.device_id,
                device_id: d.device_id,
                name: d.name,
                last_seen: d.last_seen,
            })
            .collect())
    }

    /// Logs out device `device` of `user`: its tokens stop working at once,
    /// on every node, and its connections close with 4001; it holds no
    /// message back any more. [`Error::NotFound`] when `user` has no such device.
    pub async fn remove_device(&self, user: &UserId, device: &DeviceId) -> Result<()> {
        let inner = &self.inner;
        if !inner.accounts.remove_device(user, device).await? {
            return Err(Error::not_found(format!("device {device}")));
        }
        inner.caches.forget_device(device);
        inner.registry.for_each(user, |s| {
            if s.device == *device {
                s.close(CloseReason::Revoked);
            }
        });
        // Answered once every node forgot the device: its tokens fail at once.
        inner
            .notice_cluster_confirmed(|ack| Header::DeviceRemoved {
                user: user.clone(),
                device: device.clone(),
                ack,
            })
            .await;
        inner.messages.forget_device(device).await?;
        for (c, _) in inner.conversations.memberships(user).await? {
            inner.after_ack(&c).await;
        }
        Ok(())
    }

    /// Logs out the caller's own device.
    pub async fn logout(&self, me: &Identity) -> Result<()> {
        self.remove_device(&me.user_id, &me.device_id).await
    }
}
