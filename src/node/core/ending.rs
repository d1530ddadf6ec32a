//! The run's end: the master's verification and its reliable finish
//! (finish, finish-ack, bye), the slave's linger, and the summary lines a
//! reader without `-v` gets for the bootstrap and the results.

use std::time::Instant;

use super::session::SLAVE_LINGER;
use super::{End, Ending, NodeCore};
use crate::ids::Role;
use crate::protocol::{BatchKind, Message, Phase};

impl NodeCore {
    /// The lines a reader without `-v` gets instead of one per batch: the
    /// slave's bootstrap when it ends, the results when the run does.
    pub(super) fn summarise_batches(&mut self, now: Instant, old: Phase, new: Phase) {
        let sum = |kind: BatchKind, outbound: bool, timeline: &super::Timeline| {
            timeline
                .batches()
                .iter()
                .filter(|b| b.kind == kind && b.outbound == outbound)
                .fold((0u32, 0u32, 0usize), |(jobs, n, bytes), b| {
                    (jobs + b.jobs, n + 1, bytes + b.bytes)
                })
        };
        let peer = self.role.peer();
        if self.role == Role::Slave && old <= Phase::Bootstrap && new > Phase::Bootstrap {
            let (jobs, n, bytes) = sum(BatchKind::Bootstrap, false, &self.timeline);
            self.log(
                now,
                format!(
                    "bootstrap: received {jobs} jobs from the {peer} in {n} batches ({} \
                     reassembled)",
                    human_bytes(bytes)
                ),
            );
        }
        if new == Phase::Done {
            // The slave counts what the master has acknowledged so far (the
            // last batch's ack may still be on its way); the master, what
            // it received.
            let outbound = self.role == Role::Slave;
            let (jobs, n, bytes) = sum(BatchKind::Results, outbound, &self.timeline);
            let (way, size) = if outbound {
                ("acknowledged by", "on the wire")
            } else {
                ("received from", "reassembled")
            };
            self.log(
                now,
                format!(
                    "results: {jobs} {way} the {peer} in {n} batches ({} {size})",
                    human_bytes(bytes)
                ),
            );
        }
    }

    pub(super) fn verify_and_finish(&mut self, now: Instant) {
        let workload = self.config.workload.clone();
        let pieces = self.settings.work.is_some();
        let Some(mut verification) = self.book.results().map(|s| {
            if pieces {
                s.verify_present()
            } else {
                s.verify(&workload)
            }
        }) else {
            return;
        };
        self.set_phase(now, Phase::Done);
        if pieces {
            // Each output was checked against its digest as it came; what
            // is left is the output itself, or the digits' total.
            let finished = self.finish_pieces(now);
            verification.verified &= finished;
            if verification.verified {
                self.log(
                    now,
                    format!(
                        "verified: all {} jobs present once, every output as its node computed it",
                        self.session.params.map_or(workload.jobs, |p| p.jobs),
                    ),
                );
            } else {
                let failed = self.pieces.failed.len();
                self.log(
                    now,
                    format!(
                        "verification FAILED: {} missing, {} duplicated, {failed} failed for good",
                        verification.missing.len(),
                        verification.duplicated.len(),
                    ),
                );
            }
        } else if verification.verified {
            self.log(
                now,
                format!(
                    "verified: all {} jobs present once, every element equals {:.9}",
                    self.session.params.map_or(workload.jobs, |p| p.jobs),
                    verification.expected
                ),
            );
        } else {
            self.log(
                now,
                format!(
                    "verification FAILED: {} missing, {} duplicated, {} wrong elements",
                    verification.missing.len(),
                    verification.duplicated.len(),
                    verification.wrong_elements
                ),
            );
        }
        let verified = verification.verified;
        self.session.verification = Some(verification);
        if self.session.peer_lost {
            // Nobody to tell.
            self.session.end = Some(End::Finished { verified });
            return;
        }
        self.session.ending = Ending::Finishing {
            verified,
            since: now,
            last_sent: now,
        };
        self.send_control(Message::Finish { verified });
    }

    pub(super) fn on_finish(&mut self, now: Instant, verified: bool) {
        if self.role != Role::Slave || self.session.id == 0 {
            return;
        }
        self.send_control(Message::FinishAck);
        if matches!(self.session.ending, Ending::No) {
            self.set_phase(now, Phase::Done);
            self.log(
                now,
                format!(
                    "the master has every result ({}); exiting",
                    if verified {
                        "verified"
                    } else {
                        "verification failed"
                    }
                ),
            );
            self.session.ending = Ending::Lingering {
                verified,
                until: now + SLAVE_LINGER,
            };
        }
    }

    pub(super) fn on_finish_ack(&mut self, now: Instant) {
        if let Ending::Finishing { verified, .. } = self.session.ending
            && self.session.end.is_none()
        {
            self.log(now, "the slave acknowledged the finish");
            // Once, and not again for a repeated acknowledgement: a lost
            // bye only leaves the slave to its linger.
            self.send_control(Message::Bye);
            self.session.end = Some(End::Finished { verified });
        }
    }

    /// Slave: the master has our finish acknowledgement; nothing is left
    /// to answer, so the linger ends now.
    pub(super) fn on_bye(&mut self, now: Instant) {
        if let Ending::Lingering { verified, .. } = self.session.ending
            && self.session.end.is_none()
        {
            self.log(now, "the master said goodbye");
            self.session.end = Some(End::Finished { verified });
        }
    }
}

/// Bytes as B, KiB or MiB, for a log line.
fn human_bytes(bytes: usize) -> String {
    match bytes {
        b if b < 1 << 10 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
    }
}
