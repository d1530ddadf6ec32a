//! The state manager's and the adaptor's parts of the core. The state
//! manager sends this node's state to the peer every `state_interval_ms`
//! and at once on a phase or throttle change or when the queue runs dry,
//! measures the job rate, and keeps the peer's latest state (the newest
//! sequence number wins, so a late or duplicated state is ignored). The
//! adaptor asks the transfer policy, in the processing phase only, whether
//! to move jobs, and hands them to the transfer manager.

use std::time::{Duration, Instant};

use super::{NodeCore, PeerView};
use crate::config::Role;
use crate::policy::{Decision, PolicyInput};
use crate::protocol::{Message, Phase, State};
use crate::workload::format_id_ranges;

/// Weight of the newest rate sample in the smoothed job rate.
const RATE_SMOOTHING: f64 = 0.3;

impl NodeCore {
    pub(super) fn state_interval(&self) -> Duration {
        Duration::from_millis(self.config.policy.state_interval_ms)
    }

    pub(super) fn on_peer_state(&mut self, now: Instant, seq: u64, state: State) {
        if self.peer.is_some_and(|p| p.seq >= seq) {
            return;
        }
        self.peer = Some(PeerView {
            state,
            seq,
            at: now,
        });
        self.evaluate_due = true;
        if self.role == Role::Slave {
            self.follow_master_phase(now);
        }
    }

    /// Sends the state, to a peer in the session only: not before the
    /// handshake, not after the peer was lost.
    pub(super) fn send_state(&mut self) {
        if self.session == 0 || !self.connected || self.peer_lost {
            return;
        }
        let state = self.local_state();
        self.send_control(Message::State(state));
    }

    /// The periodic state: the rate measured, the state sent, the policy asked.
    pub(super) fn tick_state(&mut self, now: Instant) {
        if self.next_state.is_some_and(|t| now >= t) {
            self.rate.update(now, self.done);
            self.send_state();
            self.evaluate_due = true;
            self.next_state = Some(now + self.state_interval());
        }
    }

    /// What the policy sees at `now`, or `None` outside processing or
    /// before the peer's first state.
    pub fn policy_input(&self, now: Instant) -> Option<PolicyInput> {
        if self.phase != Phase::Processing || self.peer_lost {
            return None;
        }
        let peer = self.peer?;
        if peer.state.phase > Phase::Processing {
            return None;
        }
        // Jobs we delivered that the peer's state does not show yet.
        let unseen = self
            .delivered_to_peer
            .saturating_sub(peer.state.jobs_received);
        let params = self.params?;
        Some(PolicyInput {
            local_queue: self.queued(),
            peer_queue: peer.state.queue.saturating_add(unseen),
            in_flight: self.in_flight_jobs,
            local_rate: self.rate.value(),
            peer_rate: f64::from(peer.state.rate),
            local_busy: self.ledger.count(super::JobState::Computing),
            local_workers: self.assigned.len() as u32,
            peer_busy: u32::from(peer.state.busy),
            peer_workers: u32::from(peer.state.workers),
            local_throttle: self.throttle,
            peer_throttle: f64::from(peer.state.throttle),
            bytes_per_job: crate::protocol::batch::job_bytes(params.elements_per_job) as u64,
            rtt: self.endpoint.rtt().srtt(),
            link_bytes_per_s: self.link_rate,
            run_seconds: self.run_seconds(now),
            peer_state_age_s: now.saturating_duration_since(peer.at).as_secs_f64(),
        })
    }

    /// The adaptor: asks the policy and carries out its decision.
    pub(super) fn evaluate(&mut self, now: Instant) {
        let Some(input) = self.policy_input(now) else {
            return;
        };
        let Decision::Send(n) = self.policy.on_state(&input) else {
            return;
        };
        let jobs = self.take_for_transfer(n);
        if jobs.is_empty() {
            return;
        }
        let ids: Vec<u32> = jobs.iter().map(|j| j.id).collect();
        self.log(
            now,
            format!(
                "policy {}: queue {} vs peer {} (threshold exceeded): sending {} jobs [{}] to {}",
                self.policy.name(),
                input.local_queue,
                input.peer_queue,
                jobs.len(),
                format_id_ranges(&ids),
                self.role.peer()
            ),
        );
        self.send_jobs(now, jobs);
        self.state_due = true;
    }
}

/// Jobs per second, smoothed over successive samples.
#[derive(Debug)]
pub struct RateMeter {
    last: Instant,
    last_done: u32,
    rate: f64,
}

impl RateMeter {
    /// A meter starting at `now`.
    pub fn new(now: Instant) -> Self {
        RateMeter {
            last: now,
            last_done: 0,
            rate: 0.0,
        }
    }

    /// The smoothed rate.
    pub fn value(&self) -> f64 {
        self.rate
    }

    /// Takes a sample: `done` jobs in all at `now`.
    pub fn update(&mut self, now: Instant, done: u32) -> f64 {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        if dt > 0.0 {
            let sample = f64::from(done.saturating_sub(self.last_done)) / dt;
            self.rate = if self.rate == 0.0 {
                sample
            } else {
                RATE_SMOOTHING * sample + (1.0 - RATE_SMOOTHING) * self.rate
            };
        }
        self.last = now;
        self.last_done = done;
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_smoothed_jobs_per_second() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        assert_eq!(m.update(t0 + Duration::from_millis(500), 10), 20.0);
        // 0 jobs in the next half second: 0.3 * 0 + 0.7 * 20.
        let r = m.update(t0 + Duration::from_secs(1), 10);
        assert!((r - 14.0).abs() < 1e-9, "{r}");
    }
}
