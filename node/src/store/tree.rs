//! The named trees of the store.

/// Declares [`Tree`] with its on-disk names in one place, so adding a tree is
/// one line here.
macro_rules! trees {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )+) => {
        /// A named tree (keyspace) of the store.
        ///
        /// Each tree is a separate sled tree whose name is written to disk in
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

    #[test]
    fn index_matches_position_in_all() {
        for (position, tree) in Tree::ALL.iter().enumerate() {
            assert_eq!(tree.index(), position);
        }
    }
}
