//! Who talks to whom: group membership, the connected users, and each
//! send's target ([`Targets`]).

use std::sync::Arc;

use chat_core::protocol::SendTarget;
use chat_core::{ConversationId, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::schedule::Kind;

/// The group of user `index` when there are `groups` groups (dealt
/// round-robin, so sizes differ by at most one).
pub(crate) fn group_of(index: usize, groups: usize) -> Option<usize> {
    (groups > 0).then(|| index % groups)
}

/// The users as they stand once connected.
#[derive(Debug)]
pub(crate) struct Roster {
    /// Every user's id, by index.
    users: Vec<UserId>,
    /// Indices of the users whose WebSocket opened.
    connected: Vec<usize>,
    /// Each group's id and how many of its members are connected.
    groups: Vec<(ConversationId, u64)>,
}

impl Roster {
    /// The roster of `users`, of whom `is_connected` opened, in `groups`.
    pub(crate) fn new(
        users: Vec<UserId>,
        is_connected: &[bool],
        groups: Vec<ConversationId>,
    ) -> Self {
        let connected: Vec<usize> = (0..users.len()).filter(|i| is_connected[*i]).collect();
        let mut counts = vec![0u64; groups.len()];
        for i in &connected {
            if let Some(g) = group_of(*i, groups.len()) {
                counts[g] += 1;
            }
        }
        Self {
            users,
            connected,
            groups: groups.into_iter().zip(counts).collect(),
        }
    }

    /// How many connected users a send of `kind` from user `sender` reaches.
    pub(crate) fn recipients(&self, kind: Kind, sender: usize) -> u64 {
        match kind {
            Kind::Direct => 1,
            Kind::Group => group_of(sender, self.groups.len())
                .map_or(0, |g| self.groups[g].1.saturating_sub(1)),
        }
    }
}

/// Picks the target of each send of one user.
#[derive(Debug)]
pub(crate) struct Targets {
    me: usize,
    roster: Arc<Roster>,
    direct_ratio: f64,
    rng: StdRng,
}

impl Targets {
    /// The targets of user `me`; `seed` makes a run repeatable.
    pub(crate) fn new(me: usize, roster: Arc<Roster>, direct_ratio: f64, seed: u64) -> Self {
        Self {
            me,
            roster,
            direct_ratio,
            rng: StdRng::seed_from_u64(seed ^ (me as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        }
    }

    /// The next send's kind and target: a direct chat with a random other
    /// connected user with probability `direct_ratio`, else the own group.
    pub(crate) fn next(&mut self) -> (Kind, SendTarget) {
        let group = group_of(self.me, self.roster.groups.len());
        let others = self.roster.connected.len().saturating_sub(1);
        let direct = match group {
            None => true,
            Some(_) if others == 0 => false,
            Some(_) => self.rng.random_bool(self.direct_ratio),
        };
        match (direct, group) {
            (false, Some(g)) => (
                Kind::Group,
                SendTarget::Conversation(self.roster.groups[g].0.clone()),
            ),
            _ => {
                // Connected users are at least two (checked before the run),
                // so a pick other than `me` comes after a few tries.
                let other = loop {
                    let pick = self.roster.connected
                        [self.rng.random_range(0..self.roster.connected.len())];
                    if pick != self.me {
                        break pick;
                    }
                };
                (
                    Kind::Direct,
                    SendTarget::User(self.roster.users[other].clone()),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster(n: usize, connected: &[bool], groups: usize) -> Arc<Roster> {
        let users = (0..n).map(|i| UserId::from(format!("u{i}"))).collect();
        let groups = (0..groups)
            .map(|g| ConversationId::from(format!("g{g}")))
            .collect();
        Arc::new(Roster::new(users, connected, groups))
    }

    #[test]
    fn groups_are_dealt_round_robin_and_count_connected_members() {
        assert_eq!(group_of(7, 0), None);
        assert_eq!(group_of(7, 3), Some(1));
        let r = roster(6, &[true, true, true, true, false, true], 2);
        // Group 0: users 0, 2, 4 (4 not connected); group 1: 1, 3, 5.
        assert_eq!(r.recipients(Kind::Group, 0), 1);
        assert_eq!(r.recipients(Kind::Group, 1), 2);
        assert_eq!(r.recipients(Kind::Direct, 1), 1);
    }

    #[test]
    fn direct_targets_are_other_connected_users() {
        let r = roster(4, &[true, false, true, true], 0);
        let mut t = Targets::new(0, r, 1.0, 7);
        for _ in 0..200 {
            let (kind, target) = t.next();
            assert_eq!(kind, Kind::Direct);
            let SendTarget::User(u) = target else {
                panic!("a direct send names a user")
            };
            assert!(u.as_str() == "u2" || u.as_str() == "u3", "{u:?}");
        }
    }

    #[test]
    fn the_ratio_splits_direct_and_group_sends() {
        let r = roster(10, &[true; 10], 2);
        let mut all_group = Targets::new(3, r.clone(), 0.0, 1);
        for _ in 0..50 {
            assert_eq!(
                all_group.next(),
                (Kind::Group, SendTarget::Conversation("g1".into()))
            );
        }
        let mut half = Targets::new(3, r, 0.5, 1);
        let direct = (0..1000).filter(|_| half.next().0 == Kind::Direct).count();
        assert!((350..650).contains(&direct), "{direct} of 1000 direct");
    }
}
