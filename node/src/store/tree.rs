//! The named trees of the store.

/// Declares [`Tree`] with its on-disk names in one place, so adding a tree is
/// one line here.
macro_rules! trees {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )+) => {
        /// A named tree (keyspace) of the store.
        ///
        /// Each tree is a sled tree (the post index shares the posts' one, under
        /// prefixed keys: [`Tree::sled_name`]) whose name is written to disk in
        /// the clear, so names say what kind of data a tree holds but never
        /// anything about its contents. Names are part of the on-disk format
        /// and of every value's associated data: never rename one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Tree {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl Tree {
            /// Every tree, in declaration order.
            pub const ALL: &'static [Tree] = &[$(Tree::$variant),+];

            /// The tree's name on disk.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Tree::$variant => $name,)+
                }
            }
        }
    };
}

trees! {
    /// This device's own identity (sealed key material, public keys).
    Identity => "identity",
    /// The collective's roster: members, their public keys and roles.
    Membership => "membership",
    /// Group keys per epoch.
    EpochKeys => "epoch_keys",
    /// Accepted alerts, keyed by content hash.
    Alerts => "alerts",
    /// Messages waiting to be sent to peers.
    Outbox => "outbox",
    /// What is known about peers (addresses, last seen).
    Peers => "peers",
    /// Small bookkeeping values under fixed names (schema version, counters).
    Meta => "meta",
    /// What the replica keeps in memory of each stored post (kind, author, dates, the alert
    /// it refers to), in chunks of many posts per expiry hour (`replica/post_index.rs`): read
    /// at start instead of every post.
    PostIndex => "post_index",
}

impl Tree {
    /// Position of this tree in [`Tree::ALL`]; the store keeps its sled
    /// handles in that order.
    pub(super) const fn index(self) -> usize {
        self as usize
    }

    /// The sled tree holding this tree's entries. The post index shares the posts' sled tree,
    /// so that a post and its index entry are written by one sled batch (atomic within a sled
    /// tree) rather than a transaction over two trees, which reads every key it writes first.
    /// Before the replica's `post_index_v3` the post index had a sled tree of its own
    /// ([`Tree::name`]), which opening a store drops (the replica then builds the index again).
    pub(super) const fn sled_name(self) -> &'static str {
        match self {
            Tree::PostIndex => Tree::Alerts.name(),
            other => other.name(),
        }
    }

    /// What this tree's sled keys start with, before the 32-byte keyed hash: distinguishes the
    /// entries of trees sharing a sled tree ([`Tree::sled_name`]) without decrypting them.
    pub(crate) const fn key_prefix(self) -> &'static [u8] {
        match self {
            Tree::PostIndex => b"i",
            _ => b"",
        }
    }

    /// Whether another tree shares this one's sled tree.
    pub(super) fn shares_sled_tree(self) -> bool {
        Tree::ALL
            .iter()
            .any(|&other| other != self && other.sled_name() == self.sled_name())
    }

    /// Whether `sled_key`, a key of this tree's sled tree, is an entry of this tree.
    pub(crate) fn owns(self, sled_key: &[u8]) -> bool {
        let prefix = self.key_prefix();
        sled_key.len() == prefix.len() + 32 && sled_key.starts_with(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_plain() {
        let names: HashSet<_> = Tree::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Tree::ALL.len());
        for name in names {
            assert!(!name.is_empty() && name.len() < 64);
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            // Names starting with "__" are reserved for the store itself.
            assert!(!name.starts_with("__"));
        }
    }

    /// Every sled key of one tree is owned by it and by no other tree of its sled tree.
    #[test]
    fn trees_sharing_a_sled_tree_own_disjoint_keys() {
        for &tree in Tree::ALL {
            let mut key = tree.key_prefix().to_vec();
            key.extend_from_slice(&[0x69; 32]);
            assert!(tree.owns(&key));
            for &other in Tree::ALL {
                if other != tree && other.sled_name() == tree.sled_name() {
                    assert!(!other.owns(&key), "{tree:?} and {other:?}");
                }
            }
        }
        assert!(Tree::PostIndex.shares_sled_tree() && Tree::Alerts.shares_sled_tree());
        assert!(!Tree::Outbox.shares_sled_tree());
    }

    #[test]
    fn index_matches_position_in_all() {
        for (position, tree) in Tree::ALL.iter().enumerate() {
            assert_eq!(tree.index(), position);
        }
    }
}
