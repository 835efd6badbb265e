//! Changing the passphrase a device's data is sealed under.

use rand::rngs::OsRng;

use lookout_protocol::identity::Identity;
use lookout_protocol::passphrase::KdfParams;

use super::{store_error, Replica, KEY_IDENTITY};
use crate::api::{ApiError, ErrorCode};
use crate::store::Tree;

/// The identity sealed under a new passphrase, kept until the key file has changed too, so a
/// crash at any moment leaves a home that one of the two passphrases opens.
pub(super) const KEY_IDENTITY_NEXT: &[u8] = b"identity.next";

impl Replica {
    /// Re-seal this device's data under `new` (the storage key file and the identity). Once it
    /// returns, the old passphrase opens nothing: the key file it sealed is overwritten.
    pub fn change_passphrase(&mut self, new: &[u8], params: KdfParams) -> Result<(), ApiError> {
        let sealed = self
            .identity
            .seal_without_agreement(new, params, &mut OsRng)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        self.store
            .put(Tree::Identity, KEY_IDENTITY_NEXT, &sealed)
            .and_then(|()| self.store.flush())
            .map_err(store_error)?;
        self.store.change_passphrase(new).map_err(store_error)?;
        self.store
            .put(Tree::Identity, KEY_IDENTITY, &sealed)
            .and_then(|()| {
                self.store
                    .remove(Tree::Identity, KEY_IDENTITY_NEXT)
                    .map(|_| ())
            })
            .and_then(|()| self.store.flush())
            .map_err(store_error)
    }
}

/// Unseal the identity with `passphrase`: the current record, or the one a passphrase change
/// interrupted after replacing the key file left beside it.
pub(super) fn unseal_identity(
    current: &[u8],
    next: Option<&[u8]>,
    passphrase: &[u8],
    agreement: Option<&[u8]>,
) -> Option<Identity> {
    Identity::unseal_with_agreement(passphrase, current, agreement)
        .ok()
        .or_else(|| {
            next.and_then(|n| Identity::unseal_with_agreement(passphrase, n, agreement).ok())
        })
}

impl Replica {
    /// Set (`Some`) or clear (`None`) the duress passphrase: entering it wherever the
    /// passphrase is asked erases this device's data, and Lookout then behaves as if it had
    /// never been set up. Nothing on disk shows whether one is set.
    pub fn set_duress(&mut self, duress: Option<&[u8]>) -> Result<(), ApiError> {
        self.store.set_duress(duress).map_err(store_error)
    }
}
