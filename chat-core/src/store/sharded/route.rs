//! Where data lives: a stable hash of an id, and the shards a conversation
//! occupies.
//!
//! The hash is part of the data layout. Every process that opens the same
//! shards must compute the same index for the same id, today and after an
//! upgrade, so it is written out here (FNV-1a then murmur3's finalizer)
//! instead of borrowed from `std`, whose `RandomState` is seeded per process
//! and whose `DefaultHasher` algorithm is explicitly allowed to change.
//! Changing this function, or the number of shards, moves data to other
//! shards; resharding is not something this module does.

use crate::model::{ConversationId, UserId};

use super::ShardBy;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits, continuing from `hash`.
fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// murmur3's 64-bit finalizer. FNV-1a alone leaves its low bits weakly
/// mixed (the lowest bit is the parity of the input's lowest bits), and a
/// modulo by a small shard count reads exactly those bits.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The stable hash of `parts`, joined by a 0xFF byte (which never occurs in
/// UTF-8, so ("ab", "c") and ("a", "bc") differ).
pub(super) fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash = FNV_OFFSET;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash = fnv1a64(hash, &[0xff]);
        }
        hash = fnv1a64(hash, part);
    }
    fmix64(hash)
}

/// The shard, out of `shards` (at least 1), that `key` belongs to.
pub(super) fn shard_index(key: &str, shards: usize) -> usize {
    // usize -> u64 is lossless on every supported target, and the remainder
    // is below `shards`, so it fits back into usize.
    (stable_hash(&[key.as_bytes()]) % shards as u64) as usize
}

/// The shards that hold one conversation's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// One shard holds everything of the conversation.
    One(usize),
    /// A direct conversation under [`ShardBy::User`] whose two users live on
    /// different shards: each holds a full copy (messages, pending
    /// deliveries, cursors). `first` is the shard of the user that
    /// [`ConversationId::direct`] names first, `second` the other's.
    Mirrored {
        /// The first-named user's shard.
        first: usize,
        /// The second-named user's shard.
        second: usize,
        /// The first-named user.
        first_user: UserId,
    },
}

/// Where `conversation` lives among `shards` shards under `by`.
pub(super) fn placement(by: ShardBy, shards: usize, conversation: &ConversationId) -> Placement {
    match (by, conversation.direct_pair()) {
        (ShardBy::User, Some((a, b))) => {
            let first = shard_index(a.as_str(), shards);
            let second = shard_index(b.as_str(), shards);
            if first == second {
                Placement::One(first)
            } else {
                Placement::Mirrored {
                    first,
                    second,
                    first_user: a,
                }
            }
        }
        // Groups under ShardBy::User live by conversation too: see the
        // module docs of `sharded` for why.
        _ => Placement::One(shard_index(conversation.as_str(), shards)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn parts_are_separated() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_ne!(stable_hash(&[b"abc"]), stable_hash(&[b"ab", b"c"]));
    }

    #[test]
    fn shard_indices_are_pinned() {
        // These values are the data layout of every deployed ShardedStore:
        // if this test fails, existing data would be looked for on the
        // wrong shard after an upgrade.
        let got: Vec<usize> = ["alice", "bob", "carol", "dave", "g:1", "g:2"]
            .iter()
            .map(|k| shard_index(k, 4))
            .collect();
        assert_eq!(got, PINNED_4);
        assert_eq!(stable_hash(&[b"alice"]), 3_821_251_815_001_557_236);
    }

    #[test]
    fn keys_spread_over_every_shard() {
        let mut seen = [0usize; 4];
        for i in 0..400 {
            seen[shard_index(&format!("user-{i}"), 4)] += 1;
        }
        // A hash that ignored most of its input would pile keys up; 400
        // keys over 4 shards should give each well over 50.
        assert!(seen.iter().all(|&n| n > 50), "uneven spread {seen:?}");
    }

    #[test]
    fn direct_conversations_under_user_follow_their_users() {
        let (a, b) = (UserId::from("alice"), UserId::from("bob"));
        let c = ConversationId::direct(&b, &a);
        let (sa, sb) = (shard_index("alice", 4), shard_index("bob", 4));
        let expected = if sa == sb {
            Placement::One(sa)
        } else {
            Placement::Mirrored {
                first: sa,
                second: sb,
                first_user: a,
            }
        };
        assert_eq!(placement(ShardBy::User, 4, &c), expected);
        assert_eq!(
            placement(ShardBy::Conversation, 4, &c),
            Placement::One(shard_index(c.as_str(), 4))
        );
        let g = ConversationId::from("g:7");
        assert_eq!(
            placement(ShardBy::User, 4, &g),
            Placement::One(shard_index("g:7", 4))
        );
    }

    const PINNED_4: [usize; 6] = [0, 0, 2, 2, 3, 0];
}
