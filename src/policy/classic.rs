//! The classic threshold policies of Eager, Lazowska and Zahorjan (1986),
//! on n, the jobs at a node (queued plus in service), with threshold T:
//!
//! - `none`: jobs stay where they arrive.
//! - `classic-sender`: an arrival that would make its node's n exceed T
//!   goes to the peer if the peer's n is below T.
//! - `classic-receiver`: after a departure leaves a node with n below T,
//!   it takes one job from the peer if the peer's n exceeds T and is at
//!   least 2 (so the peer keeps the one in service).
//! - `classic-symmetric`: both.
//! - `jsq` (join the shortest queue): an arrival goes to the peer if the
//!   peer has fewer jobs than its own node had before it arrived.
//!
//! The queueing simulator drives them through arrivals and departures. A
//! run whose jobs are all there at the start has no arrivals: there each
//! state update applies the same rules to the jobs already queued, one
//! job's worth of rule for each job above (or below) the threshold.

use super::{Decision, Placement, PolicyInput, TransferPolicy};

/// Which classic rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicRule {
    /// No transfers.
    None,
    /// Sender-initiated.
    Sender,
    /// Receiver-initiated.
    Receiver,
    /// Both.
    Symmetric,
    /// Join the shortest queue.
    Jsq,
}

/// A classic threshold policy; threshold in jobs at a node.
#[derive(Debug, Clone)]
pub struct Classic {
    rule: ClassicRule,
    threshold: u32,
}

impl Classic {
    /// The policy of `rule` with threshold `threshold`.
    pub fn new(rule: ClassicRule, threshold: u32) -> Self {
        Classic { rule, threshold }
    }

    fn sends(&self) -> bool {
        matches!(self.rule, ClassicRule::Sender | ClassicRule::Symmetric)
    }

    fn receives(&self) -> bool {
        matches!(self.rule, ClassicRule::Receiver | ClassicRule::Symmetric)
    }

    /// The receiver rule: a node below T takes from a peer above T with at
    /// least 2 jobs.
    fn should_take(&self, input: &PolicyInput) -> bool {
        let peer = input.peer_jobs();
        input.local_jobs() < self.threshold && peer > self.threshold && peer >= 2
    }
}

impl TransferPolicy for Classic {
    fn name(&self) -> &'static str {
        match self.rule {
            ClassicRule::None => "none",
            ClassicRule::Sender => "classic-sender",
            ClassicRule::Receiver => "classic-receiver",
            ClassicRule::Symmetric => "classic-symmetric",
            ClassicRule::Jsq => "jsq",
        }
    }

    fn on_arrival(&mut self, input: &PolicyInput) -> Placement {
        let (local, peer) = (input.local_jobs(), input.peer_jobs());
        let to_peer = match self.rule {
            ClassicRule::None | ClassicRule::Receiver => false,
            ClassicRule::Sender | ClassicRule::Symmetric => {
                local + 1 > self.threshold && peer < self.threshold
            }
            ClassicRule::Jsq => peer < local,
        };
        if to_peer {
            Placement::Peer
        } else {
            Placement::Local
        }
    }

    fn on_departure(&mut self, input: &PolicyInput) -> Decision {
        if self.receives() && input.requested == 0 && self.should_take(input) {
            Decision::Request(1)
        } else {
            Decision::Hold
        }
    }

    fn on_request(&mut self, input: &PolicyInput, wanted: u32) -> u32 {
        // The asker checked the rule on what it knew; the jobs are here.
        let local = input.local_jobs();
        if !self.receives() || local <= self.threshold || local < 2 {
            return 0;
        }
        wanted.min(local - self.threshold).min(input.local_queue)
    }

    fn on_state(&mut self, input: &PolicyInput) -> Decision {
        if input.in_flight > 0 || input.requested > 0 || input.peer_in_flight > 0 {
            return Decision::Hold;
        }
        let (local, peer) = (input.local_jobs(), input.peer_jobs());
        let sender_jobs = match self.rule {
            // The jobs above T that the peer, below T, would have taken.
            _ if self.sends() && local > self.threshold && peer < self.threshold => {
                (local - self.threshold).min(self.threshold - peer)
            }
            // Every job that would have joined the shorter queue.
            ClassicRule::Jsq if local.saturating_sub(peer) > 1 => (local - peer) / 2,
            _ => 0,
        };
        let sender_jobs = sender_jobs.min(input.local_queue);
        if sender_jobs > 0 {
            return Decision::Send(sender_jobs);
        }
        if self.receives() && self.should_take(input) {
            let peer_spare = peer - self.threshold;
            return Decision::Request(peer_spare.min(self.threshold - local).max(1));
        }
        Decision::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n jobs at each node: one in service and the rest queued.
    fn at(local: u32, peer: u32) -> PolicyInput {
        PolicyInput {
            local_queue: local.saturating_sub(1),
            local_busy: local.min(1),
            peer_queue: peer.saturating_sub(1),
            peer_busy: peer.min(1),
            ..PolicyInput::default()
        }
    }

    #[test]
    fn arrivals_table() {
        use ClassicRule::*;
        use Placement::{Local as L, Peer as P};
        // (rule, T, n here before the arrival, n at the peer) -> placement
        let table = [
            (None, 1, 5, 0, L),
            (Receiver, 1, 5, 0, L),
            (Sender, 1, 0, 0, L),
            (Sender, 1, 1, 0, P),
            (Sender, 1, 1, 1, L),
            (Sender, 2, 1, 1, L),
            (Sender, 2, 2, 1, P),
            (Sender, 2, 2, 2, L),
            (Symmetric, 1, 1, 0, P),
            (Jsq, 1, 1, 0, P),
            (Jsq, 1, 1, 1, L),
            (Jsq, 1, 0, 0, L),
            (Jsq, 1, 3, 2, P),
        ];
        for (rule, t, local, peer, expected) in table {
            let mut p = Classic::new(rule, t);
            assert_eq!(
                p.on_arrival(&at(local, peer)),
                expected,
                "{rule:?} T={t} n={local} peer={peer}"
            );
        }
    }

    #[test]
    fn departures_and_requests_table() {
        use ClassicRule::*;
        // (rule, T, n here after the departure, n at the peer) -> decision
        let table = [
            (Receiver, 1, 0, 2, Decision::Request(1)),
            (Receiver, 1, 0, 1, Decision::Hold),
            (Receiver, 1, 1, 5, Decision::Hold),
            (Receiver, 2, 1, 3, Decision::Request(1)),
            (Receiver, 2, 1, 2, Decision::Hold),
            // T = 0: n below 0 never happens.
            (Receiver, 0, 0, 5, Decision::Hold),
            (Symmetric, 1, 0, 2, Decision::Request(1)),
            (Sender, 1, 0, 5, Decision::Hold),
            (None, 1, 0, 5, Decision::Hold),
            (Jsq, 1, 0, 5, Decision::Hold),
        ];
        for (rule, t, local, peer, expected) in table {
            let mut p = Classic::new(rule, t);
            assert_eq!(
                p.on_departure(&at(local, peer)),
                expected,
                "{rule:?} T={t} n={local} peer={peer}"
            );
        }
        // Answering: jobs above T, queued ones only.
        let mut p = Classic::new(Receiver, 1);
        assert_eq!(p.on_request(&at(2, 0), 1), 1);
        assert_eq!(p.on_request(&at(1, 0), 1), 0);
        assert_eq!(p.on_request(&at(5, 0), 9), 4);
        let mut p = Classic::new(Sender, 1);
        assert_eq!(p.on_request(&at(5, 0), 1), 0);
    }

    #[test]
    fn state_updates_apply_the_rules_to_queued_jobs() {
        use ClassicRule::*;
        // (rule, T, n here, n at the peer) -> decision
        let table = [
            (None, 2, 100, 0, Decision::Hold),
            (Sender, 2, 100, 0, Decision::Send(2)),
            (Sender, 2, 100, 1, Decision::Send(1)),
            (Sender, 2, 100, 2, Decision::Hold),
            (Receiver, 2, 0, 100, Decision::Request(2)),
            (Receiver, 2, 0, 2, Decision::Hold),
            (Symmetric, 2, 100, 0, Decision::Send(2)),
            (Symmetric, 2, 0, 100, Decision::Request(2)),
            (Jsq, 2, 100, 0, Decision::Send(50)),
            (Jsq, 2, 3, 2, Decision::Hold),
        ];
        for (rule, t, local, peer, expected) in table {
            let mut p = Classic::new(rule, t);
            assert_eq!(
                p.on_state(&at(local, peer)),
                expected,
                "{rule:?} T={t} n={local} peer={peer}"
            );
        }
    }
}
