//! The sender-initiated threshold policy (the assignment's default): when
//! this node's queue exceeds the peer's by more than `threshold` jobs, send
//! half the difference, so both queues end up level. Never while a previous
//! transfer from this node is still unacknowledged.

use super::{Decision, PolicyInput, TransferPolicy};

/// Sender-initiated transfer with a queue-difference threshold.
#[derive(Debug, Clone)]
pub struct SenderInitiated {
    threshold: u32,
}

impl SenderInitiated {
    /// A policy that moves jobs when the queues differ by more than `threshold`.
    pub fn new(threshold: u32) -> Self {
        SenderInitiated { threshold }
    }
}

impl TransferPolicy for SenderInitiated {
    fn name(&self) -> &'static str {
        "sender"
    }

    fn on_state(&mut self, input: &PolicyInput) -> Decision {
        if input.in_flight > 0 {
            return Decision::Hold;
        }
        let difference = input.local_queue.saturating_sub(input.peer_queue);
        if difference <= self.threshold {
            return Decision::Hold;
        }
        // Half the difference levels the queues.
        let half = difference / 2;
        if half > 0 {
            return Decision::Send(half);
        }
        // One job from a difference of one only turns the difference round,
        // and the peer would send it back: a job bouncing once a round trip
        // for as long as the queues stay within one (the swarm found it,
        // threshold 0). It moves only to a peer with a worker idle and
        // nothing queued, from a node with no worker idle.
        let peer_idle = input.peer_queue == 0 && input.peer_busy < input.peer_workers;
        let none_idle_here = input.local_busy >= input.local_workers;
        if peer_idle && none_idle_here {
            Decision::Send(1)
        } else {
            Decision::Hold
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_table() {
        // (local queue, peer queue, in flight, threshold) -> decision
        let table = [
            (100, 100, 0, 30, Decision::Hold),
            (130, 100, 0, 30, Decision::Hold),
            (131, 100, 0, 30, Decision::Send(15)),
            (512, 0, 0, 30, Decision::Send(256)),
            (512, 0, 1, 30, Decision::Hold),
            (0, 512, 0, 30, Decision::Hold),
            (40, 0, 0, 30, Decision::Send(20)),
            // One job would only turn the difference round.
            (1, 0, 0, 0, Decision::Hold),
            (2, 1, 0, 0, Decision::Hold),
            (2, 0, 0, 0, Decision::Send(1)),
            (0, 0, 0, 0, Decision::Hold),
            (31, 0, 0, 30, Decision::Send(15)),
            (30, 0, 0, 30, Decision::Hold),
            (u32::MAX, 0, 0, 30, Decision::Send(u32::MAX / 2)),
        ];
        for (local, peer, in_flight, threshold, expected) in table {
            let mut policy = SenderInitiated::new(threshold);
            let input = PolicyInput {
                local_queue: local,
                peer_queue: peer,
                in_flight,
                ..PolicyInput::default()
            };
            assert_eq!(
                policy.on_state(&input),
                expected,
                "local {local}, peer {peer}, in flight {in_flight}, threshold {threshold}"
            );
        }
    }

    #[test]
    fn a_single_job_moves_only_to_an_idle_peer_from_a_busy_node() {
        // (local busy of 2 workers, peer busy of 2 workers) -> decision,
        // with 1 job queued here and none at the peer.
        for (local_busy, peer_busy, expected) in [
            (2, 1, Decision::Send(1)),
            (2, 2, Decision::Hold),
            (1, 0, Decision::Hold),
        ] {
            let input = PolicyInput {
                local_queue: 1,
                local_busy,
                local_workers: 2,
                peer_busy,
                peer_workers: 2,
                ..PolicyInput::default()
            };
            assert_eq!(
                SenderInitiated::new(0).on_state(&input),
                expected,
                "busy here {local_busy}, at the peer {peer_busy}"
            );
        }
    }

    #[test]
    fn named_in_the_config() {
        let mut p = super::super::by_name("sender", 30).unwrap();
        assert_eq!(p.name(), "sender");
        assert_eq!(
            p.on_state(&PolicyInput {
                local_queue: 100,
                ..PolicyInput::default()
            }),
            Decision::Send(50)
        );
        assert!(super::super::by_name("nope", 1).is_none());
    }
}
