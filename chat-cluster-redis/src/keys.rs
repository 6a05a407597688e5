//! [`Keys`]: every Redis key and channel name of one deployment, all under
//! its prefix, so deployments (and tests) sharing a Redis never meet.

use chat_core::cluster::Topic;
use chat_core::model::{NodeId, UserId};

/// Names of keys and channels under one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
    user_channel: String,
    presence_channel: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            user_channel: format!("{prefix}:user:"),
            presence_channel: format!("{prefix}:presence:"),
        }
    }

    /// The prefix itself: scripts build per-user and per-node keys from it.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The pub/sub channel of `topic`.
    pub(crate) fn channel(&self, topic: &Topic) -> String {
        match topic {
            Topic::User(user) => format!("{}{user}", self.user_channel),
            Topic::Presence(user) => format!("{}{user}", self.presence_channel),
            // Never published; a channel nobody subscribes to keeps this total.
            Topic::Resumed => format!("{}:resumed", self.prefix),
        }
    }

    /// The topic of a channel name, when it is one of ours.
    pub(crate) fn topic(&self, channel: &str) -> Option<Topic> {
        if let Some(user) = channel.strip_prefix(&self.user_channel) {
            return Some(Topic::User(UserId::from(user)));
        }
        channel
            .strip_prefix(&self.presence_channel)
            .map(|user| Topic::Presence(UserId::from(user)))
    }

    /// Hash: node → open connections of `user` on it.
    pub(crate) fn user_nodes(&self, user: &UserId) -> String {
        format!("{}:pu:{user}", self.prefix)
    }

    /// Set: users with connections on `node` (so reap finds them).
    pub(crate) fn node_users(&self, node: &NodeId) -> String {
        format!("{}:pn:{node}", self.prefix)
    }

    /// String: when `user` went offline last.
    pub(crate) fn last_seen(&self, user: &UserId) -> String {
        format!("{}:seen:{user}", self.prefix)
    }

    /// Sorted set: node → the time its presence heartbeat expires.
    pub(crate) fn beats(&self) -> String {
        format!("{}:beats", self.prefix)
    }

    /// Hash: node → the time of its last presence heartbeat.
    pub(crate) fn beat_at(&self) -> String {
        format!("{}:beat_at", self.prefix)
    }

    /// Sorted set: registered node → the time its registration expires.
    pub(crate) fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// Hash: registered node → its public URL.
    pub(crate) fn node_url(&self) -> String {
        format!("{}:node_url", self.prefix)
    }

    /// Hash: registered node → its load.
    pub(crate) fn node_load(&self) -> String {
        format!("{}:node_load", self.prefix)
    }

    /// String: the marker that this Redis holds the deployment's state
    /// (gone after a restart without persistence or a FLUSHALL).
    pub(crate) fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    /// String with a ttl: the deployment is settling after a loss of its
    /// state; offline answers are unsure and new claims wait.
    pub(crate) fn settling(&self) -> String {
        format!("{}:settling", self.prefix)
    }

    /// String with a ttl: the claim on worker id `id` (token|holder).
    pub(crate) fn claim(&self, id: u16) -> String {
        format!("{}:claim:{id}", self.prefix)
    }

    /// The channel each node's bus subscribes while it runs: a sign of
    /// running nodes that a FLUSHALL does not erase (subscriptions are not
    /// data). Nothing is published on it.
    pub(crate) fn beacon(&self, node: &NodeId) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    /// The pattern of every node's beacon channel.
    pub(crate) fn beacons(&self) -> String {
        format!("{}:node:*", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_and_foreign_channels_are_not_topics() {
        let keys = Keys::new("t:1");
        let user = UserId::from("a:b");
        for topic in [Topic::User(user.clone()), Topic::Presence(user)] {
            let channel = keys.channel(&topic);
            assert!(channel.starts_with("t:1:"));
            assert_eq!(keys.topic(&channel), Some(topic));
        }
        assert_eq!(keys.topic("t:2:user:a"), None);
        assert_eq!(keys.topic("t:1:other:a"), None);
    }
}
