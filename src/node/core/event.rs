//! What goes into a node's core and what comes out of it: every input a
//! spoke can send, every output the core hands back, and how a node's part
//! ends. One file, so that the core's whole surface reads in one place.

use std::time::Duration;

use crate::config::WorkloadConfig;
use crate::protocol::Phase;
use crate::workload::Job;

/// An input to the core from a spoke or the user. Datagrams come in
/// through [`NodeCore::handle_datagram`](super::NodeCore::handle_datagram)
/// instead, as borrowed bytes, so that the reader's buffer is reused.
#[derive(Debug)]
pub enum Input {
    /// Begin the run (the Start button, or at once when headless). The
    /// number is random and nonzero: the master's session id or the
    /// slave's hello nonce. Randomness comes from the caller, so a test
    /// or the simulator chooses it.
    Start {
        /// The session id (master) or hello nonce (slave).
        random: u64,
    },
    /// Set this node's throttle (0 to 1).
    SetThrottle(f64),
    /// Abandon the run and tell the peer.
    Stop,
    /// Master: add this many jobs of the same kind to the run while it
    /// goes (before its aggregation).
    AddJobs(u32),
    /// A worker finished a job it was given (its data computed).
    JobDone {
        /// The worker's index.
        worker: usize,
        /// The job, computed.
        job: Job,
        /// When the worker took it.
        started: std::time::Instant,
        /// Time spent preparing its data (before computing, outside the
        /// throttle's budget).
        preparing: std::time::Duration,
        /// Time spent computing it, the throttle's sleeps left out.
        computing: std::time::Duration,
    },
    /// The reader's count of loadbal datagrams (whole, with loadbal's
    /// magic) from the peer's address whose tags failed: what a peer with
    /// another secret sends. Sent at most four times a second while it
    /// grows.
    BadTags {
        /// The count since the node began.
        total: u64,
    },
    /// The hardware monitor's latest sample.
    Cpu {
        /// Whole-system CPU use, percent.
        system: f64,
        /// This process's CPU use, percent of one core.
        process: f64,
    },
    /// A thread of the node ended; `panicked` says whether by a panic.
    ThreadEnded {
        /// The thread's name.
        name: String,
        /// True when it panicked.
        panicked: bool,
    },
}

/// Why a datagram was dropped, in the order the checks run: the reader's
/// (source, tag), then the core's (format, session, replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// From an address other than the peer's.
    UnknownSource,
    /// Its tag is missing or wrong.
    Unauthentic,
    /// Authentic but not a well-formed message.
    Malformed,
    /// Of another session, or a message that needs one.
    Stale,
    /// Seen before, or too old to tell.
    Replayed,
}

/// A job for a worker.
#[derive(Debug)]
pub struct Work {
    /// The worker's index.
    pub worker: usize,
    /// The job; its data may not be made yet ([`Job::make_ready`]).
    pub job: Job,
    /// The workload it belongs to.
    pub workload: WorkloadConfig,
    /// The digits and command kinds: how to run it (and, on the master,
    /// read its input).
    pub pieces: Option<std::sync::Arc<crate::workload::kind::ByteWork>>,
}

/// Something the core tells its shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A line for the event log.
    Log {
        /// Time since the node was created.
        at: Duration,
        /// What happened.
        text: String,
        /// Only for a verbose reader: one batch of the bootstrap or the
        /// results.
        detail: bool,
    },
    /// The phase changed.
    Phase(Phase),
    /// The throttle changed: the workers' knob must follow.
    Throttle(f64),
}

/// How a node's part failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The peer went silent (the slave's view: the master is gone).
    #[error(
        "peer lost: nothing heard from the {peer} at {address} for {silent_s:.1} s; stopping (the master keeps the run)"
    )]
    PeerLost {
        /// The peer's role name.
        peer: &'static str,
        /// Its address.
        address: String,
        /// Seconds of silence.
        silent_s: f64,
    },
    /// The peer said it stopped the run.
    #[error("the {peer} stopped the run: {reason}")]
    PeerAborted {
        /// The peer's role name.
        peer: &'static str,
        /// Its reason.
        reason: String,
    },
    /// The master is in a run with another slave.
    #[error(
        "the master at {address} is in the middle of a run with another slave (this one was \
         probably restarted), so this slave's session is stale; start it again when that run \
         has ended, or restart the master"
    )]
    Stale {
        /// The master's address.
        address: String,
    },
    /// No slave answered within the connect time-out.
    #[error(
        "no slave answered at {address} within {waited_s} s; start it with `loadbal --role slave`"
    )]
    NoSlave {
        /// The slave's address.
        address: String,
        /// The time-out, in seconds.
        waited_s: f64,
    },
    /// Nothing moved for the watchdog's limit: no job changed state, no
    /// chunk came or was acknowledged, no worker computed, and neither node
    /// was paused.
    #[error("no progress for {seconds:.0} s: {detail}; stopping")]
    NoProgress {
        /// The watchdog's limit, seconds.
        seconds: f64,
        /// Where the jobs stand and whether the peer is alive.
        detail: String,
    },
    /// The peer refused batch after batch of this node's (not one taken):
    /// the two cannot work together.
    #[error(
        "the {peer} refused {times} batches in a row ({reason}): its version or its config does \
         not match this node's; stopping"
    )]
    PeerRefuses {
        /// The peer's role name.
        peer: &'static str,
        /// Refusals in a row.
        times: u32,
        /// The last one's reason, in words.
        reason: &'static str,
    },
    /// The two nodes' configs differ in a field they must share: neither
    /// starts (exit code 2, as for a bad config).
    #[error(
        "the two nodes' configs differ in {}: the master's is {}, the slave's {}; make them the \
         same in both config.json files and start again", .0.field, .0.master, .0.slave
    )]
    ConfigMismatch(crate::protocol::Mismatch),
    /// Only datagrams that failed authentication came from the peer's
    /// address: the two configs' secrets differ (exit code 2).
    #[error(
        "the {peer}'s address {address} sent loadbal datagrams that failed authentication for \
         {waited_s} s ({count} of them) and none that passed: the two configs' `secret`s differ \
         (or another program sends from that address); make them the same and start again"
    )]
    SecretMismatch {
        /// The peer's role name.
        peer: &'static str,
        /// Its address.
        address: String,
        /// Datagrams from it that failed authentication.
        count: u64,
        /// How long they came, seconds.
        waited_s: f64,
    },
    /// The master could not read its input or keep an output.
    #[error("{0}; stopping")]
    Files(String),
    /// A thread of the node panicked.
    #[error("thread {name} panicked; the node stopped")]
    Panicked {
        /// The thread's name.
        name: String,
    },
    /// A thread of the node ended before the run did.
    #[error("thread {name} ended before the run did; the node stopped")]
    ThreadEnded {
        /// The thread's name.
        name: String,
    },
}

impl Failure {
    /// The process exit code the contract gives it: 2 when the configs are
    /// to blame (nothing was run), 3 for every other runtime failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::ConfigMismatch(_) | Failure::SecretMismatch { .. } => 2,
            _ => 3,
        }
    }
}

/// How a node's part ended, as the core sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The run finished; the master's verification result (the slave
    /// learns it from the master).
    Finished {
        /// Every job present once and every element exact.
        verified: bool,
    },
    /// A runtime failure.
    Failed(Failure),
    /// Stopped by the user.
    Stopped,
}
