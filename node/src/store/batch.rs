//! Atomic multi-tree writes.

use std::fmt;

use zeroize::Zeroizing;

use super::Tree;

/// A set of writes applied all together or not at all by
/// [`Store::apply_batch`](super::Store::apply_batch), across any trees.
///
/// Operations apply in the order they were added, so a later write to the
/// same entry wins. Values are held in zeroizing buffers until applied.
///
/// ```
/// # use lookout_node::store::{Batch, Tree};
/// let mut batch = Batch::new();
/// batch
///     .put(Tree::Alerts, b"<content hash>", b"<alert bytes>")
///     .remove(Tree::Outbox, b"<message id>");
/// assert_eq!(batch.len(), 2);
/// ```
#[derive(Default)]
pub struct Batch {
    pub(super) ops: Vec<Op>,
}

/// One write of a [`Batch`].
pub(super) enum Op {
    Put {
        tree: Tree,
        key: Vec<u8>,
        value: Zeroizing<Vec<u8>>,
        /// Sealed under the data key of this expiry time, if any.
        expires: Option<u64>,
    },
    Remove {
        tree: Tree,
        key: Vec<u8>,
    },
}

impl Op {
    pub(super) fn tree(&self) -> Tree {
        match self {
            Op::Put { tree, .. } | Op::Remove { tree, .. } => *tree,
        }
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a write of `value` under `key` in `tree`, as [`Store::put`](super::Store::put).
    pub fn put(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push(Op::Put {
            tree,
            key: key.to_vec(),
            value: Zeroizing::new(value.to_vec()),
            expires: None,
        });
        self
    }

    /// Adds a write of a value that expires at `expires`, as
    /// [`Store::put_expiring`](super::Store::put_expiring).
    pub fn put_expiring(
        &mut self,
        tree: Tree,
        key: &[u8],
        value: &[u8],
        expires: u64,
    ) -> &mut Self {
        self.put_expiring_owned(tree, key, Zeroizing::new(value.to_vec()), expires)
    }

    /// As [`Batch::put_expiring`], taking the value's buffer instead of copying it.
    pub fn put_expiring_owned(
        &mut self,
        tree: Tree,
        key: &[u8],
        value: Zeroizing<Vec<u8>>,
        expires: u64,
    ) -> &mut Self {
        self.ops.push(Op::Put {
            tree,
            key: key.to_vec(),
            value,
            expires: Some(expires),
        });
        self
    }

    /// Adds a removal of `key` from `tree`.
    pub fn remove(&mut self, tree: Tree, key: &[u8]) -> &mut Self {
        self.ops.push(Op::Remove {
            tree,
            key: key.to_vec(),
        });
        self
    }

    /// Number of operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Shows only the number of operations: values may be secret.
impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("ops", &self.ops.len())
            .finish_non_exhaustive()
    }
}
