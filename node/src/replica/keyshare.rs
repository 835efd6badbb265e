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

use lookout_protocol::replica::KeyAnswer;
use lookout_protocol::{EpochId, MemberId};

use super::{now, Replica, SetKind};
use crate::api::ApiError;

impl Replica {
    /// Epochs this device's member is entitled to whose key it lacks (newest first, at most
    /// [`MAX_KEY_REQUEST_EPOCHS`](lookout_protocol::epoch::MAX_KEY_REQUEST_EPOCHS)): asked for in
    /// every sync session this node starts.
    pub fn lacking_epochs(&self) -> Vec<EpochId> {
        let Some(state) = self.collective.as_ref() else {
            return Vec::new();
        };
        state.lacking_epochs(&self.identity.member_id(), now())
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
        let identity = &self.identity;
        let answers = self
            .collective
            .as_mut()
            .ok_or_else(super::no_collective)?
            .answer_key_request(identity, &requester, epochs, now(), &mut OsRng);
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            match answer {
                KeyAnswer::Again(bytes) => out.push(bytes),
                KeyAnswer::New(bytes) => {
                    self.accept_local(SetKind::Deliveries, bytes.clone(), None)?;
                    trace!("key shared on request");
                    out.push(bytes);
                }
            }
        }
        Ok(out)
    }
}
