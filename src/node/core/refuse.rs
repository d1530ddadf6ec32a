//! Acceptance end to end. A batch's jobs belong to the receiver only once
//! its core has taken them, not when its transport has every chunk: a core
//! that cannot take a batch it has whole (the run's parameters not known
//! yet, a batch that does not decode, results sent to a slave, or a fault
//! injected by a test) refuses it. The refusal rides on the batch's complete
//! ack, which the transport repeats whenever the sender sends a chunk of
//! it again, so the sender learns of a refusal exactly as reliably as of a
//! delivery, and in its place; it then takes the batch's jobs back into its
//! own queue at once.

use std::time::Instant;

use super::{Failure, NodeCore, Origin};
use crate::ids::Role;
use crate::protocol::{BatchKind, RefuseReason};
use crate::workload::format_id_ranges;

/// Batches refused in a row (none delivered between) after which the
/// node stops: a peer that refuses everything (another version, a bug)
/// would otherwise have the same jobs sent to it for ever.
pub const MAX_REFUSALS_IN_A_ROW: u32 = 8;

/// The peer's refusals of our batches in a row, and the fault injection
/// that makes this core refuse some of the peer's.
#[derive(Debug)]
pub(super) struct Refusals {
    /// Our batches the peer refused since one was last delivered.
    pub(super) in_a_row: u32,
    /// Refuse every this many batches received (0: none).
    pub(super) inject_every: u32,
    /// The reason the fault injection gives (a test may name a real one).
    pub(super) injected_reason: RefuseReason,
    /// Batches received and looked at by the fault injection.
    pub(super) seen: u64,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals {
            in_a_row: 0,
            inject_every: 0,
            injected_reason: RefuseReason::Injected,
            seen: 0,
        }
    }
}

impl NodeCore {
    /// Refuses batch `transfer` of the peer's, which the endpoint has
    /// whole: says why in the log and, through the batch's complete ack, to
    /// the peer. Its jobs stay the peer's.
    pub(super) fn refuse(&mut self, now: Instant, transfer: u32, reason: RefuseReason) {
        self.counters.batches_refused += 1;
        self.endpoint.refuse(transfer, reason);
        let peer = self.role.peer();
        self.log(
            now,
            format!(
                "refused batch {transfer} from the {peer}: {}; its jobs are still the {peer}'s",
                reason.describe()
            ),
        );
    }

    /// For the swarm and the tests: refuse every `every`th batch this core
    /// has whole, as if it could not take it (0: never).
    pub fn inject_refusals(&mut self, every: u32) {
        self.refusals.inject_every = every;
    }

    /// As [`inject_refusals`](Self::inject_refusals), the refusals giving
    /// `reason` as a core that really could not take the batches would.
    #[cfg(test)]
    pub(crate) fn inject_refusals_naming(&mut self, every: u32, reason: RefuseReason) {
        self.refusals.inject_every = every;
        self.refusals.injected_reason = reason;
    }

    /// True when the fault injection refuses the batch now at hand.
    pub(super) fn refusal_injected(&mut self) -> bool {
        if self.refusals.inject_every == 0 {
            return false;
        }
        self.refusals.seen += 1;
        self.refusals
            .seen
            .is_multiple_of(u64::from(self.refusals.inject_every))
    }

    /// The peer refused our batch `transfer`: what it carries is ours again.
    pub(super) fn on_refuse(&mut self, now: Instant, transfer: u32, reason: RefuseReason) {
        let Some((p, back)) = self.book.refused(transfer) else {
            return;
        };
        if p.kind != BatchKind::Results && self.role == Role::Master {
            // The master's own again; a slave's job keeps the origin it
            // came with, and a refused result was computed here.
            for &id in &back {
                self.timeline.arrived(id, Origin::Own);
            }
        }
        self.log(
            now,
            format!(
                "the {} refused batch {transfer} ({}): {} jobs [{}] are this node's again",
                self.role.peer(),
                reason.describe(),
                back.len(),
                format_id_ranges(&back)
            ),
        );
        if p.kind == BatchKind::Bootstrap {
            // No longer on its way: the bootstrap may end without it.
            self.bootstrap_delivered(now, p.ids.len() as u32);
        }
        if p.kind == BatchKind::Results
            && self.settings.work.is_some()
            && !back.is_empty()
            && !self.session.peer_lost
        {
            // A slave's refused results of the digits or command kinds:
            // their outputs went with the batch and their input is gone,
            // so the jobs go back to the master as ids, which reads its
            // own input and runs them. (They were queued last: the back
            // of the queue is exactly them.)
            let jobs = self.book.take_for_transfer(back.len() as u32);
            self.log(
                now,
                format!(
                    "their input is not here: giving jobs [{}] back to the {} to run",
                    format_id_ranges(&back),
                    self.role.peer()
                ),
            );
            self.send_jobs(now, jobs);
        }
        self.adaptor.state_due = true;
        self.adaptor.evaluate_due = true;
        // A refusal by the fault injection is the test's own doing.
        if reason != RefuseReason::Injected {
            self.refusals.in_a_row += 1;
            if self.refusals.in_a_row >= MAX_REFUSALS_IN_A_ROW {
                let failure = Failure::PeerRefuses {
                    peer: self.role.peer().name(),
                    times: self.refusals.in_a_row,
                    reason: reason.describe(),
                };
                self.fail(now, failure);
            }
        }
    }
}
