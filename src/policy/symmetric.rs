//! The symmetric policy: sender- and receiver-initiated at once. A node
//! whose queue exceeds the peer's by more than `threshold` sends half the
//! difference; one whose queue fell below `threshold` asks for jobs; a
//! request is answered as the receiver-initiated policy answers it.

use super::{Decision, PolicyInput, ReceiverInitiated, SenderInitiated, TransferPolicy};

/// Sender- and receiver-initiated transfer, threshold in jobs.
#[derive(Debug, Clone)]
pub struct Symmetric {
    sender: SenderInitiated,
    threshold: u32,
}

impl Symmetric {
    /// A policy that sends above and asks below `threshold`.
    pub fn new(threshold: u32) -> Self {
        Symmetric {
            sender: SenderInitiated::new(threshold),
            threshold,
        }
    }
}

impl TransferPolicy for Symmetric {
    fn name(&self) -> &'static str {
        "symmetric"
    }

    fn on_state(&mut self, input: &PolicyInput) -> Decision {
        match self.sender.on_state(input) {
            Decision::Hold => ReceiverInitiated::ask(self.threshold, input),
            send => send,
        }
    }

    fn on_request(&mut self, input: &PolicyInput, wanted: u32) -> u32 {
        ReceiverInitiated::answer(self.threshold, input, wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_table() {
        // (local queue, peer queue, in flight, requested, threshold) -> decision
        let table = [
            (100, 100, 0, 0, 30, Decision::Hold),
            (131, 100, 0, 0, 30, Decision::Send(15)),
            (131, 100, 1, 0, 30, Decision::Hold),
            (10, 100, 0, 0, 30, Decision::Request(45)),
            (10, 100, 0, 1, 30, Decision::Hold),
            (10, 30, 0, 0, 30, Decision::Hold),
            (40, 0, 0, 0, 30, Decision::Send(20)),
        ];
        for (local, peer, in_flight, requested, threshold, expected) in table {
            let mut policy = Symmetric::new(threshold);
            let input = PolicyInput {
                local_queue: local,
                peer_queue: peer,
                in_flight,
                requested,
                ..PolicyInput::default()
            };
            assert_eq!(
                policy.on_state(&input),
                expected,
                "local {local}, peer {peer}, in flight {in_flight}, requested {requested}"
            );
        }
        let mut policy = Symmetric::new(30);
        let input = PolicyInput {
            local_queue: 100,
            ..PolicyInput::default()
        };
        assert_eq!(policy.on_request(&input, 20), 20);
    }
}
