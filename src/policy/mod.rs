//! Transfer policies: given what a node knows of itself and its peer, decide
//! whether to move jobs, and how many. Pure: no socket, no clock, no queue
//! access. The core's adaptor asks; its transfer manager carries it out.
//! One policy to a file, behind the [`TransferPolicy`] trait.
//!
//! | name | file | moves when | threshold's unit |
//! |---|---|---|---|
//! | `sender` | `sender.rs` | this queue exceeds the peer's by more than T | jobs |
//! | `receiver` | `receiver.rs` | this queue fell below T: asks the peer | jobs |
//! | `symmetric` | `symmetric.rs` | either of the two | jobs |
//! | `completion` | `completion.rs` | predicted finishing times differ by more than T | milliseconds |
//! | `adaptive` | `adaptive.rs` | as `completion`, when the time saved beats the time to move | milliseconds |
//! | `none`, `classic-sender`, `classic-receiver`, `classic-symmetric`, `jsq` | `classic.rs` | Eager, Lazowska and Zahorjan's rules on jobs at a node | jobs |

mod adaptive;
mod classic;
mod completion;
mod receiver;
mod sender;
mod symmetric;

pub use adaptive::Adaptive;
pub use classic::{Classic, ClassicRule};
pub use completion::Completion;
pub use receiver::ReceiverInitiated;
pub use sender::SenderInitiated;
pub use symmetric::Symmetric;

/// Every policy's name, as `policy.transfer` takes it. The index of a name
/// is its number on the wire (the master's hello tells the slave).
pub const NAMES: &[&str] = &[
    "sender",
    "receiver",
    "symmetric",
    "completion",
    "adaptive",
    "none",
    "classic-sender",
    "classic-receiver",
    "classic-symmetric",
    "jsq",
];

/// The threshold a policy takes when the config gives none, in its unit.
pub fn default_threshold(name: &str) -> u32 {
    match name {
        // Milliseconds of predicted finishing time.
        "completion" | "adaptive" => 10,
        // Jobs at a node: the classic experiments' best thresholds are 1 - 2.
        "none" | "classic-sender" | "classic-receiver" | "classic-symmetric" | "jsq" => 2,
        // Jobs of queue difference (the assignment's card).
        _ => 30,
    }
}

/// The unit of a policy's threshold, for messages and the window.
pub fn threshold_unit(name: &str) -> &'static str {
    match name {
        "completion" | "adaptive" => "ms",
        _ => "jobs",
    }
}

/// What the adaptor tells a policy: everything a node knows that a policy
/// may weigh, so that a new policy needs no change outside this module.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PolicyInput {
    /// Jobs waiting in this node's queue (not started).
    pub local_queue: u32,
    /// Jobs waiting in the peer's queue, as its latest state said, plus jobs
    /// this node delivered to it since (so a transfer is not counted twice
    /// while the peer's next state is on its way).
    pub peer_queue: u32,
    /// Jobs in this node's outbound job batches not yet acknowledged.
    pub in_flight: u32,
    /// Jobs in the peer's outbound job batches (coming to this node), as its
    /// latest state said.
    pub peer_in_flight: u32,
    /// Jobs this node asked the peer for and has not had an answer to.
    pub requested: u32,
    /// This node's measured jobs per second.
    pub local_rate: f64,
    /// The peer's measured jobs per second.
    pub peer_rate: f64,
    /// Jobs per second of one of this node's workers at full throttle,
    /// measured from the jobs it computed; 0 before the first one.
    pub local_capacity: f64,
    /// The same for the peer, as its latest state said.
    pub peer_capacity: f64,
    /// Jobs being computed on this node.
    pub local_busy: u32,
    /// Worker threads on this node.
    pub local_workers: u32,
    /// Jobs being computed on the peer, as its latest state said.
    pub peer_busy: u32,
    /// Worker threads on the peer.
    pub peer_workers: u32,
    /// This node's throttle, 0 to 1.
    pub local_throttle: f64,
    /// The peer's throttle, 0 to 1.
    pub peer_throttle: f64,
    /// Bytes one job takes on the wire: its data, times the ratio
    /// compression achieved on the batches this node sent so far.
    pub bytes_per_job: u64,
    /// The link's smoothed round-trip time, once measured.
    pub rtt: Option<std::time::Duration>,
    /// The link's measured rate, bytes per second: the last delivered
    /// batches' bytes over the time from their sending to their ack,
    /// smoothed; 0 before any batch was delivered.
    pub link_bytes_per_s: f64,
    /// Seconds since the run started.
    pub run_seconds: f64,
    /// Seconds since the peer's latest state arrived (it left the peer about
    /// half a round trip earlier).
    pub peer_state_age_s: f64,
}

impl PolicyInput {
    /// Jobs at this node: queued and being computed (the classic `n`).
    pub fn local_jobs(&self) -> u32 {
        self.local_queue.saturating_add(self.local_busy)
    }

    /// Jobs at the peer: queued and being computed.
    pub fn peer_jobs(&self) -> u32 {
        self.peer_queue.saturating_add(self.peer_busy)
    }

    /// Predicted jobs per second of this node and of the peer at their
    /// throttles now: workers x throttle x capacity. A capacity not
    /// measured yet is taken to be the other node's (machines alike until
    /// shown otherwise), and 1 if neither is known (then only the ratio
    /// means anything).
    pub fn predicted_rates(&self) -> (f64, f64) {
        let (l, p) = match (self.local_capacity > 0.0, self.peer_capacity > 0.0) {
            (true, true) => (self.local_capacity, self.peer_capacity),
            (true, false) => (self.local_capacity, self.local_capacity),
            (false, true) => (self.peer_capacity, self.peer_capacity),
            (false, false) => (1.0, 1.0),
        };
        (
            f64::from(self.local_workers) * self.local_throttle * l,
            f64::from(self.peer_workers) * self.peer_throttle * p,
        )
    }

    /// Whether at least one capacity is measured (then predicted times are
    /// seconds: the other node is taken to be alike).
    pub fn rates_measured(&self) -> bool {
        self.local_capacity > 0.0 || self.peer_capacity > 0.0
    }
}

/// A policy's answer to a state update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Move nothing.
    Hold,
    /// Send this many unstarted jobs to the peer.
    Send(u32),
    /// Ask the peer for this many jobs (a request message on the wire).
    Request(u32),
}

/// Where a job that arrives at a node goes (jobs that arrive over time:
/// the queueing experiments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// It stays at the node it arrived at.
    Local,
    /// It is sent to the peer.
    Peer,
}

/// A transfer policy.
pub trait TransferPolicy: Send {
    /// The policy's name, as in `policy.transfer`.
    fn name(&self) -> &'static str;
    /// Called on every state update of either node, and after this node's
    /// own changes (a job done, jobs received).
    fn on_state(&mut self, input: &PolicyInput) -> Decision;
    /// The peer asked for `wanted` jobs: how many to send it (0: none).
    fn on_request(&mut self, _input: &PolicyInput, _wanted: u32) -> u32 {
        0
    }
    /// A job arrives at this node (the input counts the jobs there before
    /// it): keep it or send it to the peer.
    fn on_arrival(&mut self, _input: &PolicyInput) -> Placement {
        Placement::Local
    }
    /// This node finished a job (the input counts the jobs after it): the
    /// classic receiver-initiated rules act here.
    fn on_departure(&mut self, _input: &PolicyInput) -> Decision {
        Decision::Hold
    }
    /// The master, during the bootstrap: `unsent` jobs of the slave's half
    /// have not left yet. How many of them it keeps and computes itself
    /// (the assignment's bootstrap sends them all: 0). The input's
    /// `in_flight` counts the bootstrap jobs sent and not yet acknowledged.
    fn on_bootstrap(&mut self, _input: &PolicyInput, _unsent: u32) -> u32 {
        0
    }
}

/// Builds the named policy with `threshold` in its unit; `None` for a name
/// not in [`NAMES`].
pub fn by_name(name: &str, threshold: u32) -> Option<Box<dyn TransferPolicy>> {
    Some(match name {
        "sender" => Box::new(SenderInitiated::new(threshold)),
        "receiver" => Box::new(ReceiverInitiated::new(threshold)),
        "symmetric" => Box::new(Symmetric::new(threshold)),
        "completion" => Box::new(Completion::new(threshold)),
        "adaptive" => Box::new(Adaptive::new(threshold)),
        "none" => Box::new(Classic::new(ClassicRule::None, threshold)),
        "classic-sender" => Box::new(Classic::new(ClassicRule::Sender, threshold)),
        "classic-receiver" => Box::new(Classic::new(ClassicRule::Receiver, threshold)),
        "classic-symmetric" => Box::new(Classic::new(ClassicRule::Symmetric, threshold)),
        "jsq" => Box::new(Classic::new(ClassicRule::Jsq, threshold)),
        _ => return None,
    })
}

/// The wire number of a policy name.
pub fn index_of(name: &str) -> Option<u8> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_its_policy() {
        for (i, name) in NAMES.iter().enumerate() {
            let p = by_name(name, 1).unwrap();
            assert_eq!(p.name(), *name);
            assert_eq!(index_of(name), Some(i as u8));
        }
        assert!(by_name("nope", 1).is_none());
        assert_eq!(index_of("nope"), None);
    }

    #[test]
    fn predicted_rates_fall_back_to_the_known_capacity() {
        let mut input = PolicyInput {
            local_workers: 2,
            peer_workers: 1,
            local_throttle: 0.5,
            peer_throttle: 1.0,
            ..PolicyInput::default()
        };
        assert_eq!(input.predicted_rates(), (1.0, 1.0));
        assert!(!input.rates_measured());
        input.peer_capacity = 100.0;
        assert_eq!(input.predicted_rates(), (100.0, 100.0));
        input.local_capacity = 40.0;
        assert_eq!(input.predicted_rates(), (40.0, 100.0));
        input.local_throttle = 0.0;
        assert_eq!(input.predicted_rates(), (0.0, 100.0));
    }
}
