//! Offering ops to a membership log as sync does.

use lookout_protocol::membership::{InsertOutcome, MembershipLog, Op};

/// A replica offered `ops` in this order, with later syncs offering every refused op again
/// until nothing more is taken (what reconciliation does).
pub fn offer(log: &mut MembershipLog, ops: &[Op]) {
    let mut refused: Vec<&Op> = ops
        .iter()
        .filter(|op| matches!(log.insert((*op).clone()), InsertOutcome::Refused(_)))
        .collect();
    loop {
        let before = refused.len();
        refused.retain(|op| matches!(log.insert((*op).clone()), InsertOutcome::Refused(_)));
        if refused.len() == before {
            return;
        }
    }
}
