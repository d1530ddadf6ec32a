//! The adaptor thread: on each state update, asks the transfer policy
//! whether to move jobs and, if so, takes unstarted jobs from the back of
//! the queue and hands them to the transfer manager. It acts only in the
//! processing phase: the bootstrap is the master's fixed split, and once
//! aggregation starts there is nothing left to move.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};

use super::shared::Shared;
use super::transfer::TransferMsg;
use crate::policy::{Decision, PolicyInput, TransferPolicy};
use crate::protocol::Phase;
use crate::workload::format_id_ranges;

/// The adaptor's inbox.
#[derive(Debug)]
pub enum AdaptorMsg {
    /// Something changed: consult the policy.
    Evaluate,
    /// Stop the thread.
    Shutdown,
}

/// Runs the adaptor until told to stop.
pub fn run(
    shared: Arc<Shared>,
    inbox: Receiver<AdaptorMsg>,
    mut policy: Box<dyn TransferPolicy>,
    transfer: Sender<TransferMsg>,
) {
    while let Ok(msg) = inbox.recv() {
        if matches!(msg, AdaptorMsg::Shutdown) {
            return;
        }
        // Many state updates may have queued up: one decision for all, but
        // never swallow a shutdown among them.
        for queued in inbox.try_iter() {
            if matches!(queued, AdaptorMsg::Shutdown) {
                return;
            }
        }
        evaluate(&shared, policy.as_mut(), &transfer);
    }
}

/// What the policy sees now, or `None` outside processing or before the
/// peer's first state.
pub fn policy_input(shared: &Shared) -> Option<PolicyInput> {
    if shared.phase() != Phase::Processing || shared.peer_lost.load(Ordering::Relaxed) {
        return None;
    }
    let peer = (*shared.peer.lock())?;
    if peer.state.phase > Phase::Processing {
        return None;
    }
    let local_queue = shared.queue.lock().jobs.len() as u32;
    // Jobs we delivered that the peer's state does not show yet.
    let unseen = shared
        .delivered_to_peer
        .load(Ordering::Relaxed)
        .saturating_sub(peer.state.jobs_received);
    Some(PolicyInput {
        local_queue,
        peer_queue: peer.state.queue.saturating_add(unseen),
        in_flight: shared.in_flight_jobs.load(Ordering::Relaxed),
        local_rate: shared.rate.get(),
        peer_rate: f64::from(peer.state.rate),
    })
}

fn evaluate(shared: &Shared, policy: &mut dyn TransferPolicy, transfer: &Sender<TransferMsg>) {
    let Some(input) = policy_input(shared) else {
        return;
    };
    let Decision::Send(n) = policy.on_state(&input) else {
        return;
    };
    let jobs = shared.take_for_transfer(n);
    if jobs.is_empty() {
        return;
    }
    let ids: Vec<u32> = jobs.iter().map(|j| j.id).collect();
    shared
        .in_flight_jobs
        .fetch_add(jobs.len() as u32, Ordering::Relaxed);
    shared.log.push(format!(
        "policy {}: queue {} vs peer {} (threshold exceeded): sending {} jobs [{}] to {}",
        policy.name(),
        input.local_queue,
        input.peer_queue,
        jobs.len(),
        format_id_ranges(&ids),
        shared.role.peer()
    ));
    if transfer.send(TransferMsg::SendJobs(jobs)).is_err() {
        // The transfer manager has stopped: the node is shutting down.
        shared
            .in_flight_jobs
            .fetch_sub(ids.len() as u32, Ordering::Relaxed);
    }
    shared.wake();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;
    use crate::policy::SenderInitiated;
    use crate::transport::Transport;
    use std::time::Duration;

    // Regression (issue 2): the adaptor coalesced queued `Evaluate`s with a
    // loop that also consumed a `Shutdown` behind them, then blocked for
    // ever, so a finished node never exited.
    #[test]
    fn a_shutdown_queued_behind_evaluations_stops_the_adaptor() {
        let any = "127.0.0.1:0".parse().unwrap();
        let transport = Transport::bind(any, any, None, crate::auth::Key::demo()).unwrap();
        let shared = Arc::new(Shared::new(
            Role::Master,
            1.0,
            transport,
            false,
            Arc::new(|| {}),
        ));
        let (tx, rx) = crossbeam_channel::unbounded();
        let (transfer_tx, _transfer_rx) = crossbeam_channel::unbounded();
        for msg in [
            AdaptorMsg::Evaluate,
            AdaptorMsg::Evaluate,
            AdaptorMsg::Shutdown,
        ] {
            tx.send(msg).unwrap();
        }
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            run(shared, rx, Box::new(SenderInitiated::new(30)), transfer_tx);
            let _ = done_tx.send(());
        });
        // `tx` stays alive: only the Shutdown message can end the thread.
        assert!(done_rx.recv_timeout(Duration::from_secs(5)).is_ok());
        drop(tx);
    }
}
