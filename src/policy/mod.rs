//! Transfer policies: given what a node knows of itself and its peer, decide
//! whether to move jobs, and how many. Pure: no socket, no clock, no queue
//! access. The core's adaptor asks; its transfer manager carries it out.
//! One policy to a file, behind the [`TransferPolicy`] trait.

mod sender;

pub use sender::SenderInitiated;

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
    /// This node's measured jobs per second.
    pub local_rate: f64,
    /// The peer's measured jobs per second.
    pub peer_rate: f64,
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
    /// Bytes one job takes on the wire (uncompressed).
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

/// A policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Move nothing.
    Hold,
    /// Send this many unstarted jobs to the peer.
    Send(u32),
}

/// A transfer policy.
pub trait TransferPolicy: Send {
    /// The policy's name, as in `policy.transfer`.
    fn name(&self) -> &'static str;
    /// Called on every state update.
    fn on_state(&mut self, input: &PolicyInput) -> Decision;
}

/// Builds the policy named in the config. Names were checked by the config.
pub fn by_name(name: &str, threshold: u32) -> Option<Box<dyn TransferPolicy>> {
    match name {
        "sender" => Some(Box::new(SenderInitiated::new(threshold))),
        _ => None,
    }
}
