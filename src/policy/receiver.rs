//! The receiver-initiated threshold policy: a node whose queue falls below
//! `threshold` jobs asks the peer for jobs (a request on the wire), as many
//! as would level the two queues; the peer sends if its queue holds more
//! than `threshold`, no more than levels them. One request at a time: none
//! while an earlier one is unanswered or jobs are on their way here.

use super::{Decision, PolicyInput, TransferPolicy};

/// Receiver-initiated transfer with a queue threshold, in jobs.
#[derive(Debug, Clone)]
pub struct ReceiverInitiated {
    threshold: u32,
}

impl ReceiverInitiated {
    /// A policy that asks for jobs when its queue is below `threshold`.
    pub fn new(threshold: u32) -> Self {
        ReceiverInitiated { threshold }
    }

    /// The asking side: a request for half the difference, when due.
    pub(super) fn ask(threshold: u32, input: &PolicyInput) -> Decision {
        if input.requested > 0 || input.peer_in_flight > 0 {
            return Decision::Hold;
        }
        if input.local_queue >= threshold || input.peer_queue <= threshold {
            return Decision::Hold;
        }
        let difference = input.peer_queue.saturating_sub(input.local_queue);
        if difference < 2 {
            return Decision::Hold;
        }
        Decision::Request(difference / 2)
    }

    /// The answering side: how many of the `wanted` jobs to send.
    pub(super) fn answer(threshold: u32, input: &PolicyInput, wanted: u32) -> u32 {
        if input.in_flight > 0 || input.local_queue <= threshold {
            return 0;
        }
        // The peer's queue as this node sees it may be older than the
        // request: never send more than levels the queues.
        let level = input.local_queue.saturating_sub(input.peer_queue) / 2;
        wanted.min(level.max(1)).min(input.local_queue)
    }
}

impl TransferPolicy for ReceiverInitiated {
    fn name(&self) -> &'static str {
        "receiver"
    }

    fn on_state(&mut self, input: &PolicyInput) -> Decision {
        Self::ask(self.threshold, input)
    }

    fn on_request(&mut self, input: &PolicyInput, wanted: u32) -> u32 {
        Self::answer(self.threshold, input, wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_table() {
        // (local queue, peer queue, requested, peer in flight, threshold) -> decision
        let table = [
            (100, 100, 0, 0, 30, Decision::Hold),
            (29, 100, 0, 0, 30, Decision::Request(35)),
            (30, 100, 0, 0, 30, Decision::Hold),
            (0, 512, 0, 0, 30, Decision::Request(256)),
            (0, 512, 5, 0, 30, Decision::Hold),
            (0, 512, 0, 5, 30, Decision::Hold),
            (0, 30, 0, 0, 30, Decision::Hold),
            (0, 31, 0, 0, 30, Decision::Request(15)),
            (0, 1, 0, 0, 0, Decision::Hold),
            (0, 2, 0, 0, 0, Decision::Hold),
            (0, 2, 0, 0, 1, Decision::Request(1)),
            (0, u32::MAX, 0, 0, 30, Decision::Request(u32::MAX / 2)),
        ];
        for (local, peer, requested, peer_in_flight, threshold, expected) in table {
            let mut policy = ReceiverInitiated::new(threshold);
            let input = PolicyInput {
                local_queue: local,
                peer_queue: peer,
                requested,
                peer_in_flight,
                ..PolicyInput::default()
            };
            assert_eq!(
                policy.on_state(&input),
                expected,
                "local {local}, peer {peer}, requested {requested}, threshold {threshold}"
            );
        }
    }

    #[test]
    fn answer_table() {
        // (local queue, peer queue, in flight, wanted, threshold) -> jobs sent
        let table = [
            (100, 0, 0, 50, 30, 50),
            (100, 0, 0, 80, 30, 50),
            (100, 90, 0, 50, 30, 5),
            (100, 99, 0, 50, 30, 1),
            (30, 0, 0, 15, 30, 0),
            (31, 0, 0, 15, 30, 15),
            (100, 0, 3, 50, 30, 0),
            (1, 0, 0, 1, 0, 1),
            (0, 0, 0, 1, 0, 0),
        ];
        for (local, peer, in_flight, wanted, threshold, expected) in table {
            let mut policy = ReceiverInitiated::new(threshold);
            let input = PolicyInput {
                local_queue: local,
                peer_queue: peer,
                in_flight,
                ..PolicyInput::default()
            };
            assert_eq!(
                policy.on_request(&input, wanted),
                expected,
                "local {local}, peer {peer}, wanted {wanted}, threshold {threshold}"
            );
        }
    }
}
