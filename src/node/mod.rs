//! A node: the threads around the sans-IO core, and the handle a front end
//! (the headless runner now, the window later) drives it with.
//!
//! | thread              | owns                          | inbox            |
//! |---------------------|-------------------------------|------------------|
//! | `ROLE-worker-N`     | the job it computes           | the job queue    |
//! | `ROLE-hwmon`        | sysinfo                       | [`MonitorMsg`]   |
//! | `ROLE-state`        | the peer's latest state       | [`StateMsg`]     |
//! | `ROLE-transfer`     | the transfer endpoint         | `TransferMsg`    |
//! | `ROLE-adaptor`      | the transfer policy           | `AdaptorMsg`     |
//! | `ROLE-net-rx`       | the receiving side of the socket | (the socket)  |
//! | `ROLE-control`      | the session and phases        | `ControlMsg`     |
//!
//! Shutdown: the control thread decides the run is over, sets the stop
//! flag, sends each inbox its shutdown message, joins every thread and
//! returns the [`Outcome`]. Nothing here knows about egui: a viewer passes a
//! waker that is called whenever something worth redrawing happened.

mod adaptor;
mod control;
pub mod core;
pub mod harness;
mod monitor;
mod progress;
mod reader;
mod shared;
pub mod solo;
mod state;
mod transfer;
mod worker;

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, unbounded};

pub use monitor::MonitorMsg;
pub use progress::status_line;
pub use reader::{Rejection, receive};
pub use shared::{LogEntry, PeerView, Shared, TransferRecord};

use crate::config::{Config, Role};
use crate::protocol::{self, State};
use crate::report::Report;
use crate::transfer::TransferConfig;
use crate::transport::{BindError, Transport};
use control::{Control, ControlMsg};
use transfer::{TransferMsg, TransferSettings};

/// What a user (or the headless runner) can ask of a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// Begin the run (the Start button).
    Start,
    /// Set this node's throttle (0 to 1).
    SetThrottle(f64),
    /// Abandon the run and tell the peer.
    Stop,
}

/// How a node's part ended.
#[derive(Debug)]
pub enum Outcome {
    /// The run finished; the master's verification result (the slave learns
    /// it from the master). The master also has the report.
    Finished {
        /// Every job present once and every element exact.
        verified: bool,
        /// The run report (master only).
        report: Option<Box<Report>>,
    },
    /// A runtime failure (peer lost, peer aborted, thread failure).
    Failed(String),
    /// Stopped by the user.
    Stopped,
}

impl Outcome {
    /// The process exit code the contract gives this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Finished { verified: true, .. } => 0,
            Outcome::Finished {
                verified: false, ..
            } => 1,
            Outcome::Failed(_) | Outcome::Stopped => 3,
        }
    }
}

/// The state manager's inbox.
#[derive(Debug)]
pub enum StateMsg {
    /// A state from the peer, with its sequence number.
    Peer {
        /// The datagram's sequence number.
        seq: u64,
        /// The state.
        state: State,
    },
    /// This node's phase, queue or throttle changed: send the state now.
    LocalChanged,
    /// Stop the thread.
    Shutdown,
}

/// The inboxes the control thread talks to.
#[derive(Clone)]
pub(crate) struct Senders {
    state: Sender<StateMsg>,
    transfer: Sender<TransferMsg>,
    adaptor: Sender<adaptor::AdaptorMsg>,
    monitor: Sender<MonitorMsg>,
}

/// How to run a node.
#[derive(Clone)]
pub struct NodeOptions {
    /// Echo the event log and progress to stderr, and give up waiting for the
    /// peer after the config's `connect_timeout_ms` (master).
    pub headless: bool,
    /// Print a progress line or bar on stderr (headless only).
    pub progress: bool,
    /// Called whenever something worth redrawing happened.
    pub waker: Arc<dyn Fn() + Send + Sync>,
    /// For the benchmark only (master): send the bootstrap as random
    /// values, which do not compress, instead of the workload's. The run
    /// cannot verify.
    pub random_bootstrap: bool,
}

impl NodeOptions {
    /// Options for a headless run.
    pub fn headless() -> Self {
        NodeOptions {
            headless: true,
            progress: true,
            waker: Arc::new(|| {}),
            random_bootstrap: false,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The socket could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A thread could not be spawned.
    #[error("cannot start thread {name}: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A running node.
pub struct NodeHandle {
    control: Sender<ControlMsg>,
    shared: Arc<Shared>,
    join: Option<JoinHandle<Outcome>>,
}

impl NodeHandle {
    /// Sends a command to the node.
    pub fn command(&self, command: Command) {
        let _ = self.control.send(ControlMsg::Command(command));
    }

    /// The node's shared state, for viewers (read-only use).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// True once the node's part is over.
    pub fn is_finished(&self) -> bool {
        self.join.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the node's part to end.
    pub fn wait(mut self) -> Outcome {
        match self.join.take().map(JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Outcome::Failed("the control thread panicked".to_owned()),
            None => Outcome::Stopped,
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if let Some(join) = self.join.take() {
            self.command(Command::Stop);
            let _ = join.join();
        }
    }
}

/// The data a batch of jobs or results aims to carry.
const BATCH_BYTES: usize = 2 << 20;

fn spawn<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, StartError> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(|source| StartError::Spawn { name, source })
}

/// Starts a node of `role`: binds its socket and spawns its threads. The run
/// begins on [`Command::Start`].
pub fn start(role: Role, config: &Config, options: NodeOptions) -> Result<NodeHandle, StartError> {
    let me = *config.node(role);
    let peer = *config.node(role.peer());
    let transport = Transport::bind(me.address, peer.address, me.link, config.key.clone())?;
    let datagram_bytes = config.datagram_bytes as usize;
    let window = transport.window_chunks(datagram_bytes);
    let shared = Arc::new(Shared::new(
        role,
        me.throttle,
        transport,
        options.headless,
        options.waker.clone(),
    ));
    let job_bytes = protocol::batch::job_bytes(config.workload.elements_per_job);
    // About 2 MiB of data per batch (8 reference jobs), rounded to whole jobs.
    let batch_jobs = ((BATCH_BYTES + job_bytes / 2) / job_bytes).clamp(1, 64);
    let settings = TransferSettings {
        // Each datagram is the chunk's header and payload, then its tag.
        endpoint: TransferConfig::new(
            datagram_bytes - protocol::CHUNK_OVERHEAD - crate::auth::TAG_BYTES,
            window,
        ),
        batch_jobs,
        transfer_jobs: (transfer::MAX_TRANSFER_BYTES / job_bytes).max(1),
        compress: config.compression,
        random_bootstrap: options.random_bootstrap,
    };

    let (state_tx, state_rx) = unbounded();
    let (transfer_tx, transfer_rx) = unbounded();
    let (adaptor_tx, adaptor_rx) = unbounded();
    let (monitor_tx, monitor_rx) = unbounded();
    let (control_tx, control_rx) = unbounded();
    // Receive buffers the transfer manager hands back to the reader: enough
    // for a full window in flight between the two.
    let (recycle_tx, recycle_rx) = crossbeam_channel::bounded(256);
    let senders = Senders {
        state: state_tx.clone(),
        transfer: transfer_tx.clone(),
        adaptor: adaptor_tx.clone(),
        monitor: monitor_tx,
    };

    let name = role.name();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let spawned = (|| -> Result<(), StartError> {
        for i in 0..me.workers {
            let s = shared.clone();
            let transfer = transfer_tx.clone();
            let control = control_tx.clone();
            let state = state_tx.clone();
            let queue = s.clone();
            threads.push(spawn(format!("{name}-worker-{i}"), move || {
                worker::run(s, || {
                    // The slave's results go to the master; the master's
                    // progress check wants to know a result is in. A closed
                    // inbox means the node is stopping: nothing to tell.
                    match role {
                        Role::Master => drop(control.send(ControlMsg::Progress)),
                        Role::Slave => drop(transfer.send(TransferMsg::ResultsReady)),
                    }
                    // A node that has run dry says so at once rather than at
                    // the next state interval, so the peer's policy can send
                    // it work before it sits idle.
                    if queue.queue.lock().jobs.is_empty() {
                        let _ = state.send(StateMsg::LocalChanged);
                    }
                })
            })?);
        }
        let (s, st) = (shared.clone(), state_tx.clone());
        threads.push(spawn(format!("{name}-hwmon"), move || {
            monitor::run(s, monitor_rx, st)
        })?);
        let (s, a, c) = (shared.clone(), adaptor_tx.clone(), control_tx.clone());
        let interval = std::time::Duration::from_millis(config.policy.state_interval_ms);
        let workers = me.workers.min(usize::from(u16::MAX)) as u16;
        threads.push(spawn(format!("{name}-state"), move || {
            state::run(s, state_rx, interval, workers, a, c)
        })?);
        let (s, st, a, c) = (
            shared.clone(),
            state_tx.clone(),
            adaptor_tx.clone(),
            control_tx.clone(),
        );
        let recycle = recycle_tx.clone();
        threads.push(spawn(format!("{name}-transfer"), move || {
            transfer::run(s, transfer_rx, settings, recycle, st, a, c)
        })?);
        let policy = crate::policy::by_name(&config.policy.transfer, config.policy.threshold)
            .unwrap_or_else(|| {
                Box::new(crate::policy::SenderInitiated::new(config.policy.threshold))
            });
        let (s, t) = (shared.clone(), transfer_tx.clone());
        threads.push(spawn(format!("{name}-adaptor"), move || {
            adaptor::run(s, adaptor_rx, policy, t)
        })?);
        let (s, t, st, c) = (
            shared.clone(),
            transfer_tx.clone(),
            state_tx.clone(),
            control_tx.clone(),
        );
        threads.push(spawn(format!("{name}-net-rx"), move || {
            reader::run(s, t, recycle_rx, st, c)
        })?);
        Ok(())
    })();
    if let Err(e) = spawned {
        shutdown(&shared, &senders, threads);
        return Err(e);
    }

    let control = Control::new(
        shared.clone(),
        config.clone(),
        options.headless,
        options.headless && options.progress,
        senders.clone(),
        control_rx,
    );
    let s = shared.clone();
    let join = spawn(format!("{name}-control"), move || {
        let outcome = control.run();
        shutdown(&s, &senders, threads);
        outcome
    });
    let join = match join {
        Ok(join) => join,
        Err(e) => {
            // The closure (with the threads) was dropped unrun: stop them.
            shared.request_stop();
            return Err(e);
        }
    };
    Ok(NodeHandle {
        control: control_tx,
        shared,
        join: Some(join),
    })
}

/// Stops every thread of a node and joins them.
fn shutdown(shared: &Shared, senders: &Senders, threads: Vec<JoinHandle<()>>) {
    shared.request_stop();
    let _ = senders.state.send(StateMsg::Shutdown);
    let _ = senders.transfer.send(TransferMsg::Shutdown);
    let _ = senders.adaptor.send(adaptor::AdaptorMsg::Shutdown);
    let _ = senders.monitor.send(MonitorMsg::Shutdown);
    for t in threads {
        let _ = t.join();
    }
}
