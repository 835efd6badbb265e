//! Getting an epoch key again when our share of it did not open, and giving it to a member who
//! asks.
//!
//! Only the recipient can check its HPKE share, so a member can rotate with a junk share for one
//! victim and every other node takes the rotation as valid. The victim's node keeps the
//! delivery, does not count the epoch as held, and asks the peer of every sync session for the
//! epochs it lacks ([`Replica::lacking_epochs`]); any member holding the key answers with a share
//! sealed to the asker's current key ([`Replica::answer_key_request`]), under the rules of
//! [`EpochBook::shareable`](lookout_protocol::epoch::EpochBook::shareable).

use rand::rngs::OsRng;
use tracing::trace;

use lookout_protocol::epoch::{DeliveryKind, KeyDelivery};
use lookout_protocol::identity::PublicIdentity;
use lookout_protocol::{EpochId, MemberId};

use super::{now, Collective, Replica, SetKind};
use crate::api::{ApiError, ErrorCode};

impl Replica {
    /// Epochs this device's member is entitled to whose key it lacks (newest first, at most
    /// [`MAX_KEY_REQUEST_EPOCHS`](lookout_protocol::epoch::MAX_KEY_REQUEST_EPOCHS)): asked for in
    /// every sync session this node starts.
    pub fn lacking_epochs(&self) -> Vec<EpochId> {
        let Some(state) = self.collective.as_ref() else {
            return Vec::new();
        };
        state
            .book
            .lacking(&self.identity.member_id(), state.log.roster(), now())
    }

    /// Answer a request by `requester` (the authenticated peer, never a name in the request)
    /// for the keys of `epochs`: the encodings of key deliveries that give them each key they
    /// are entitled to, sealed to their current key.
    ///
    /// A share this node already made for them is sent again rather than a new one made, so
    /// however often a member asks, this node makes at most one share per member, epoch and
    /// agreement key (each is a new item every member stores).
    pub fn answer_key_request(
        &mut self,
        requester: MemberId,
        epochs: &[EpochId],
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        let me = self.identity.member_id();
        let mut answers = Vec::new();
        for epoch in epochs {
            let state = self.collective()?;
            let roster = state.log.roster();
            if requester == me || !roster.is_member(&me) {
                return Ok(answers);
            }
            let key = match state.book.shareable(epoch, &requester, roster) {
                Ok(key) => key.clone(),
                Err(refusal) => {
                    trace!(epoch = %epoch.short(), reason = %refusal, "key request not answered");
                    continue;
                }
            };
            let Some(current) = roster.member(&requester).map(|m| m.identity.clone()) else {
                continue;
            };
            if let Some(bytes) = own_share(state, &me, epoch, &current) {
                answers.push(bytes);
                continue;
            }
            let delivery = KeyDelivery::create(
                &self.identity,
                state.log.collective(),
                &key,
                DeliveryKind::Share,
                roster.heads().to_vec(),
                now(),
                &[current],
                &mut OsRng,
            )
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            let bytes = delivery.encoded().to_vec();
            self.accept_local(SetKind::Deliveries, bytes.clone())?;
            trace!(epoch = %epoch.short(), "key shared on request");
            answers.push(bytes);
        }
        Ok(answers)
    }
}

/// A delivery of `epoch` this node signed that carries a share for `member` at their current
/// agreement key.
fn own_share(
    state: &Collective,
    me: &MemberId,
    epoch: &EpochId,
    member: &PublicIdentity,
) -> Option<Vec<u8>> {
    state
        .deliveries
        .values()
        .filter(|d| d.epoch() == *epoch && d.body().author == *me)
        .find(|d| {
            d.body()
                .shares
                .iter()
                .any(|s| s.recipient == member.member && s.agreement == member.agreement)
        })
        .map(|d| d.encoded().to_vec())
}
