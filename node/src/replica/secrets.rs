//! This device's secrets that must be gone once replaced: its X25519 agreement keys (rotated
//! every week, the old one destroyed after a short overlap), the collective's secret (names are
//! sealed under it and the hello secret comes from it; it came in the invite or was made at the
//! founding) and the epoch keys it holds (destroyed when every alert under them has expired). They live in the store's secrets file
//! ([`Store::write_secrets`](crate::store::Store::write_secrets)), which is overwritten when they
//! change, never in the database, whose old records stay readable with the passphrase. The
//! sealed identity in the database holds the signing key only.
//!
//! Once a replaced agreement secret is destroyed, a key delivery sealed to it, captured off the
//! wire or found in the store, cannot be opened with anything a seized device holds; the epoch
//! keys it carried are kept here (until they expire), not by keeping the old secret.

use std::collections::BTreeSet;

use rand::rngs::OsRng;
use tracing::{info, warn};
use zeroize::Zeroizing;

use lookout_protocol::epoch::EpochKey;
use lookout_protocol::identity::agreement_policy;
use lookout_protocol::membership::Action;
use lookout_protocol::text::CollectiveSecret;
use lookout_protocol::EpochId;

use super::{store_error, Replica};
use crate::api::ApiError;
use crate::store::{Store, StoreError};

/// Version 2 added the collective secret; version 1 files (no collective secret) are still read.
const SECRETS_VERSION: u8 = 2;

/// What the secrets file holds, decoded.
pub(super) struct Secrets {
    /// [`Identity::agreement_keys`](lookout_protocol::identity::Identity::agreement_keys).
    pub(super) agreement: Zeroizing<Vec<u8>>,
    /// The collective's secret, once this device founded or joined one.
    pub(super) collective: Option<CollectiveSecret>,
    /// The epoch keys held.
    pub(super) epoch_keys: Vec<EpochKey>,
}

/// Encode: version, agreement keys' length (u16le) and bytes, 1 and the collective secret (or
/// 0), then 32 bytes per epoch key.
fn encode(
    agreement: &[u8],
    collective: Option<&CollectiveSecret>,
    keys: &[Zeroizing<[u8; 32]>],
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(36 + agreement.len() + 32 * keys.len()));
    out.push(SECRETS_VERSION);
    out.extend_from_slice(
        &u16::try_from(agreement.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(agreement);
    match collective {
        Some(secret) => {
            out.push(1);
            out.extend_from_slice(secret.as_bytes());
        }
        None => out.push(0),
    }
    for key in keys {
        out.extend_from_slice(key.as_ref());
    }
    out
}

pub(super) fn decode(bytes: &[u8]) -> Option<Secrets> {
    let (&version, rest) = bytes.split_first()?;
    if version != 1 && version != SECRETS_VERSION {
        return None;
    }
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len));
    let agreement = Zeroizing::new(rest.get(..len)?.to_vec());
    let mut rest = rest.get(len..)?;
    let mut collective = None;
    if version == SECRETS_VERSION {
        let (&flag, after) = rest.split_first()?;
        rest = after;
        if flag == 1 {
            let (secret, after) = rest.split_first_chunk::<32>()?;
            collective = Some(CollectiveSecret::from_bytes(*secret));
            rest = after;
        } else if flag != 0 {
            return None;
        }
    }
    let keys = rest;
    if keys.len() % 32 != 0 {
        return None;
    }
    let epoch_keys = keys
        .chunks_exact(32)
        .filter_map(|c| c.try_into().ok().map(EpochKey::from_bytes))
        .collect();
    Some(Secrets {
        agreement,
        collective,
        epoch_keys,
    })
}

/// Read the secrets file of an open store (`None` for a home made before it existed).
pub(super) fn read(store: &Store) -> Result<Option<Secrets>, ApiError> {
    // The storage key opened the store, so a secrets file that does not open or decode is
    // damaged (Trial 12's T12-22: its tree's internal name was all the message said).
    let damaged = || super::identity_unopenable("this device's secrets file is damaged");
    let bytes = match store.read_secrets() {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(StoreError::TamperedValue { .. }) => return Err(damaged()),
        Err(error) => return Err(store_error(error)),
    };
    decode(&bytes).map(Some).ok_or_else(damaged)
}

/// Write the secrets file for a new identity (no epoch keys yet).
pub(super) fn write_initial(store: &Store, agreement: &[u8]) -> Result<(), ApiError> {
    store
        .write_secrets(&encode(agreement, None, &[]))
        .map_err(store_error)
}

impl Replica {
    /// Rewrite the secrets file from the identity and the epoch keys held now.
    pub(super) fn write_secrets(&mut self) -> Result<(), ApiError> {
        let (ids, keys): (BTreeSet<EpochId>, Vec<Zeroizing<[u8; 32]>>) = self
            .collective
            .as_ref()
            .map(|c| c.book().held_keys().map(|k| (k.id(), k.to_bytes())).unzip())
            .unwrap_or_default();
        self.store
            .write_secrets(&encode(
                &self.identity.agreement_keys(),
                self.collective_secret.as_ref(),
                &keys,
            ))
            .map_err(store_error)?;
        self.secrets_epochs = ids;
        Ok(())
    }

    /// Rewrite the secrets file at once if it lacks an epoch key held (one a rotation made or a
    /// delivery just brought): a post is kept as its envelope only (`post_record.rs`), so its
    /// epoch key must be in the file as soon as a post can be stored under it, not only after
    /// the next [`Replica::maintain_secrets`] (keys that expired are still dropped there).
    pub(super) fn keep_new_epoch_keys(&mut self) -> Result<(), ApiError> {
        let Some(state) = self.collective.as_ref() else {
            return Ok(());
        };
        if state
            .book()
            .held_keys()
            .all(|k| self.secrets_epochs.contains(&k.id()))
        {
            return Ok(());
        }
        self.write_secrets()
    }

    /// The agreement-key policy and the epoch keys kept, at `now`: rotate this member's X25519
    /// key when due ([`agreement_policy`]) and publish it, destroy retired secrets past their
    /// overlap, and keep the secrets file's epoch keys the ones held (new keys in, expired ones
    /// overwritten). Run by [`Replica::maintain`].
    pub fn maintain_secrets(&mut self, now: u64) -> Result<(), ApiError> {
        let Some(state) = self.collective.as_ref() else {
            return Ok(());
        };
        let me = self.identity.member_id();
        let roster_key = state
            .log()
            .roster()
            .member(&me)
            .map(|m| m.identity.agreement);
        let actions = agreement_policy(&self.identity, roster_key.as_ref(), now);
        let held: BTreeSet<EpochId> = state.book().held_keys().map(EpochKey::id).collect();
        let mut dirty = held != self.secrets_epochs;
        if actions.rotate {
            let public = self.identity.rotate_agreement(now, &mut OsRng);
            // Durable before anyone can seal to it.
            self.write_secrets()?;
            dirty = false;
            match self.make_op(Action::RotateAgreementKey { identity: public }) {
                Ok(_) => info!("encryption key rotated"),
                Err(e) => warn!(error = %e, "encryption key rotation not taken"),
            }
        }
        for public in &actions.forget {
            dirty |= self.identity.forget_agreement(public);
        }
        if dirty {
            self.write_secrets()?;
            if !actions.forget.is_empty() {
                info!(
                    count = actions.forget.len(),
                    "old encryption keys destroyed"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_round_trip_and_garbage_is_refused() {
        let keys = [Zeroizing::new([7u8; 32]), Zeroizing::new([9u8; 32])];
        let secret = CollectiveSecret::from_bytes([5; 32]);
        let bytes = encode(&[1, 2, 3], Some(&secret), &keys);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.agreement.as_slice(), &[1, 2, 3]);
        assert_eq!(back.collective, Some(secret));
        assert_eq!(back.epoch_keys.len(), 2);
        assert_eq!(*back.epoch_keys[1].to_bytes(), [9u8; 32]);
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        let none = decode(&encode(&[1], None, &keys)).unwrap();
        assert!(none.collective.is_none());
        assert_eq!(none.epoch_keys.len(), 2);
        // A version 1 file (before the collective secret) still reads.
        let mut v1 = vec![1, 1, 0, 4];
        v1.extend_from_slice(&[7u8; 32]);
        let old = decode(&v1).unwrap();
        assert!(old.collective.is_none());
        assert_eq!(old.epoch_keys.len(), 1);
        assert!(decode(&[2, 0, 0]).is_none());
        assert!(decode(&[3, 0, 0, 0]).is_none());
        assert!(decode(&[]).is_none());
    }
}
