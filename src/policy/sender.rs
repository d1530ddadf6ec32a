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
        if difference > self.threshold {
            // Half the difference levels the queues; at least one job moves.
            Decision::Send((difference / 2).max(1))
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
            (1, 0, 0, 0, Decision::Send(1)),
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
