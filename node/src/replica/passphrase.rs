//! Changing the passphrase a device's data is sealed under.

use rand::rngs::OsRng;

use lookout_protocol::identity::Identity;
use lookout_protocol::passphrase::KdfParams;

use super::{store_error, Replica, KEY_IDENTITY};
use crate::api::{ApiError, ErrorCode};
use crate::store::{KdfUpgrade, Tree};

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

/// What [`Replica::upgrade_kdf`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfUpgraded {
    /// The storage key file.
    pub key_file: KdfUpgrade,
    /// Whether the sealed identity record was re-sealed (it had weaker parameters).
    pub identity: bool,
}

impl KdfUpgraded {
    /// Whether anything was re-sealed.
    pub fn any(&self) -> bool {
        self.identity || matches!(self.key_file, KdfUpgrade::Upgraded { .. })
    }
}

impl Replica {
    /// Re-seal, under the same `passphrase` (the one this store was opened with), whatever of
    /// this device's passphrase-sealed data (the storage key file, the sealed identity) has
    /// key-derivation parameters below `params` in memory, passes or lanes: a home made by a
    /// test build (`KdfParams::TESTING`) opened by a normal one, with
    /// [`KdfParams::strengthened`], so none of the three is lowered. Each file
    /// is replaced atomically, and either version opens with `passphrase`. See
    /// [`Store::upgrade_kdf`](crate::store::Store::upgrade_kdf) for a key file with a duress
    /// passphrase, which is left as it is.
    pub fn upgrade_kdf(
        &mut self,
        passphrase: &[u8],
        params: KdfParams,
    ) -> Result<KdfUpgraded, ApiError> {
        let key_file = self
            .store
            .upgrade_kdf(passphrase, params)
            .map_err(store_error)?;
        let sealed = self
            .store
            .get(Tree::Identity, KEY_IDENTITY)
            .map_err(store_error)?
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the store has no identity"))?;
        let had = lookout_protocol::passphrase::params_of(&sealed).ok();
        let weak = had.is_none_or(|had| had.is_weaker_than(&params));
        if weak {
            let params = had.map_or(params, |had| had.strengthened(&params));
            let resealed = self
                .identity
                .seal_without_agreement(passphrase, params, &mut OsRng)
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            // One record replaced (sled writes it atomically), then made durable. What an
            // interrupted passphrase change left beside it goes: the key file opened with
            // `passphrase`, so the record sealed under it is the one that belongs.
            self.store
                .put(Tree::Identity, KEY_IDENTITY, &resealed)
                .and_then(|()| {
                    self.store
                        .remove(Tree::Identity, KEY_IDENTITY_NEXT)
                        .map(|_| ())
                })
                .and_then(|()| self.store.flush())
                .map_err(store_error)?;
        }
        Ok(KdfUpgraded {
            key_file,
            identity: weak,
        })
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
