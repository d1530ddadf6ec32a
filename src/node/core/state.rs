//! The state manager's and the adaptor's parts of the core. The state
//! manager sends this node's state to the peer every `state_interval_ms`
//! and at once on a phase or throttle change or when the queue runs dry,
//! measures the job rate, and keeps the peer's latest state (the newest
//! sequence number wins, so a late or duplicated state is ignored). The
//! adaptor asks the transfer policy, in the processing phase, whether to
//! move jobs, and hands them to the transfer manager; a paused node gives
//! its queue away in every phase that has jobs. The throttle's changes come
//! in here too.

use std::time::{Duration, Instant};

use super::{Event, NodeCore, PeerView};
use crate::ids::Role;
use crate::policy::TransferPolicy;
use crate::policy::{Decision, PolicyInput};
use crate::protocol::{Message, Phase, State};
use crate::workload::{Job, format_id_ranges};

/// Weight of the newest rate sample in the smoothed job rate.
const RATE_SMOOTHING: f64 = 0.3;

/// The capacity forgets a job's time with this time constant, so it follows
/// a machine whose speed changes (another program, a slider) within a
/// fraction of a second, yet averages over the throttle's 100 ms periods.
const CAPACITY_MEMORY: Duration = Duration::from_millis(250);

/// Shortest wait for the answer to a request before asking again.
const REQUEST_PATIENCE: Duration = Duration::from_millis(20);

/// The state manager's and the adaptor's: the peer's view (its latest
/// state), this node's measured rates, when the next state is due, and
/// the transfer policy with what it has asked for.
pub(super) struct Adaptor {
    /// The peer's latest state.
    pub(super) peer: Option<PeerView>,
    pub(super) next_state: Option<Instant>,
    pub(super) state_due: bool,
    pub(super) rate: RateMeter,
    pub(super) capacity: CapacityMeter,
    /// Jobs asked of the peer and not answered yet, and when the request
    /// counts as lost.
    pub(super) requested: u32,
    pub(super) request_expires: Option<Instant>,
    /// A job was done: the policy's departure rule is due.
    pub(super) departure_due: bool,
    pub(super) evaluate_due: bool,
    /// Paused with jobs and nobody to give them to (the peer paused or
    /// lost): said once until a throttle is raised.
    pub(super) paused_waiting: bool,
    /// The link's measured rate, bytes per second (smoothed; 0 before any
    /// batch was delivered).
    pub(super) link_rate: f64,
    pub(super) policy: Box<dyn TransferPolicy>,
}

impl NodeCore {
    pub(super) fn state_interval(&self) -> Duration {
        Duration::from_millis(self.config.policy.state_interval_ms)
    }

    pub(super) fn on_peer_state(&mut self, now: Instant, seq: u64, state: State) {
        if self.adaptor.peer.is_some_and(|p| p.seq >= seq) {
            return;
        }
        self.adaptor.peer = Some(PeerView {
            state,
            seq,
            at: now,
        });
        self.adaptor.evaluate_due = true;
        if self.role == Role::Slave {
            self.follow_master_phase(now);
        }
    }

    /// Sends the state, to a peer in the session only: not before the
    /// handshake, not after the peer was lost.
    pub(super) fn send_state(&mut self) {
        if self.session.id == 0 || !self.session.connected || self.session.peer_lost {
            return;
        }
        let state = self.local_state();
        self.send_control(Message::State(state));
    }

    /// The periodic state: the rate measured, the state sent, the policy asked.
    pub(super) fn tick_state(&mut self, now: Instant) {
        if self.adaptor.request_expires.is_some_and(|t| now >= t) {
            // The request or its answer was lost, or declined: ask anew
            // when the policy says so.
            self.adaptor.requested = 0;
            self.adaptor.request_expires = None;
            self.adaptor.evaluate_due = true;
        }
        if self.adaptor.next_state.is_some_and(|t| now >= t) {
            self.adaptor.rate.update(now, self.book.done());
            self.send_state();
            self.adaptor.evaluate_due = true;
            self.adaptor.next_state = Some(now + self.state_interval());
        }
    }

    /// What the policy sees at `now`, or `None` outside processing or
    /// before the peer's first state.
    pub fn policy_input(&self, now: Instant) -> Option<PolicyInput> {
        if self.session.phase != Phase::Processing {
            return None;
        }
        self.input_now(now)
    }

    /// What the policy sees at `now`, in any phase of a connected run.
    fn input_now(&self, now: Instant) -> Option<PolicyInput> {
        if self.session.peer_lost {
            return None;
        }
        let peer = self.adaptor.peer?;
        if peer.state.phase > Phase::Processing {
            return None;
        }
        // Jobs we delivered that the peer's state does not show yet.
        let unseen = self
            .book
            .delivered_to_peer()
            .saturating_sub(peer.state.jobs_received);
        let params = self.session.params?;
        Some(PolicyInput {
            local_queue: self.queued(),
            peer_queue: peer.state.queue.saturating_add(unseen),
            in_flight: self.book.in_flight(),
            peer_in_flight: peer.state.in_flight,
            requested: self.adaptor.requested,
            local_rate: self.adaptor.rate.value(),
            peer_rate: f64::from(peer.state.rate),
            local_capacity: self.adaptor.capacity.value(),
            peer_capacity: f64::from(peer.state.capacity),
            local_busy: self.book.count(super::JobState::Computing),
            local_workers: self.book.workers(),
            peer_busy: u32::from(peer.state.busy),
            peer_workers: u32::from(peer.state.workers),
            local_throttle: self.throttle,
            peer_throttle: f64::from(peer.state.throttle),
            bytes_per_job: self.wire_bytes_per_job(params.elements_per_job),
            rtt: self.endpoint.rtt().srtt(),
            link_bytes_per_s: self.adaptor.link_rate,
            run_seconds: self.run_seconds(now),
            peer_state_age_s: now.saturating_duration_since(peer.at).as_secs_f64(),
        })
    }

    /// A job's bytes on the wire: its data, times what compression made of
    /// the batches sent so far.
    fn wire_bytes_per_job(&self, elements_per_job: u32) -> u64 {
        let raw = crate::protocol::batch::job_bytes(elements_per_job) as f64;
        let c = &self.counters;
        let ratio = if c.batch_raw_bytes > 0 {
            c.batch_wire_bytes as f64 / c.batch_raw_bytes as f64
        } else {
            1.0
        };
        (raw * ratio).ceil().max(1.0) as u64
    }

    /// The adaptor: asks the policy and carries out its decision.
    pub(super) fn evaluate(&mut self, now: Instant) {
        if self.throttle <= 0.0 {
            self.give_away_paused(now);
            return;
        }
        self.adaptor.paused_waiting = false;
        if self.role == Role::Master && self.session.phase == Phase::Bootstrap {
            self.evaluate_bootstrap(now);
            return;
        }
        let Some(input) = self.policy_input(now) else {
            return;
        };
        let decision = self.adaptor.policy.on_state(&input);
        self.act(now, &input, decision);
    }

    /// Paused: every job not started goes to a peer that computes, whatever
    /// the policy and in every phase that has jobs (the bootstrap, the
    /// processing and the aggregation, where the master takes back what a
    /// paused slave holds): a queue that never shrinks would keep the run
    /// from ever ending. One batch at a time, so that its ack comes before
    /// the next. When the peer is paused too, or lost, the run waits, and
    /// says so once.
    fn give_away_paused(&mut self, now: Instant) {
        if !matches!(
            self.session.phase,
            Phase::Bootstrap | Phase::Processing | Phase::Aggregation
        ) || !self.session.connected
            || self.queued() == 0
        {
            return;
        }
        let peer = if self.session.peer_lost {
            None
        } else {
            self.adaptor.peer
        };
        if peer.is_some_and(|p| p.state.phase >= Phase::Done) {
            return;
        }
        if !peer.is_some_and(|p| p.state.throttle > 0.0) {
            if !self.adaptor.paused_waiting {
                self.adaptor.paused_waiting = true;
                let why = if self.session.peer_lost {
                    "with no peer to give them to"
                } else {
                    "and so is the peer"
                };
                self.log(
                    now,
                    format!(
                        "paused with {} jobs queued here, {why}: the run waits until a throttle \
                         is raised",
                        self.queued()
                    ),
                );
            }
            return;
        }
        self.adaptor.paused_waiting = false;
        if self.book.in_flight() > 0 {
            return;
        }
        let jobs = self
            .book
            .take_for_transfer(self.within_budget(self.queued()));
        self.send_decided(now, jobs, "paused: giving away every queued job".to_owned());
    }

    /// The master, during the bootstrap: the policy may keep some of the
    /// slave's half not sent yet (a link too slow to carry it in time).
    pub(super) fn evaluate_bootstrap(&mut self, now: Instant) {
        if self.book.bootstrap_unsent() == 0 || self.throttle <= 0.0 {
            return;
        }
        let Some(mut input) = self.input_now(now) else {
            return;
        };
        let unsent = self.book.bootstrap_unsent();
        // Jobs sent and not yet acknowledged, the unsent ones aside.
        input.in_flight = input.in_flight.saturating_sub(unsent);
        let keep = self.adaptor.policy.on_bootstrap(&input, unsent).min(unsent);
        if keep == 0 {
            return;
        }
        let kept = self.book.keep_bootstrap(keep);
        let rtt_ms = input.rtt.map_or(0.0, |r| r.as_secs_f64() * 1000.0);
        self.log(
            now,
            format!(
                "policy {}: the link carries a job in {:.1} ms (RTT {rtt_ms:.0} ms), a worker here computes one in {:.1} ms: keeping {keep} bootstrap jobs [{}] not sent yet",
                self.adaptor.policy.name(),
                input.bytes_per_job as f64 / input.link_bytes_per_s.max(1.0) * 1000.0,
                1000.0 / input.predicted_rates().0.max(1e-9),
                format_id_ranges(&kept)
            ),
        );
        self.adaptor.state_due = true;
        // Nothing left to deliver ends the bootstrap.
        self.bootstrap_delivered(now, keep);
    }

    /// The policy's departure rule, after a job was done here.
    pub(super) fn departed(&mut self, now: Instant) {
        let Some(input) = self.policy_input(now) else {
            return;
        };
        if self.throttle <= 0.0 {
            return;
        }
        let decision = self.adaptor.policy.on_departure(&input);
        self.act(now, &input, decision);
    }

    fn act(&mut self, now: Instant, input: &PolicyInput, decision: Decision) {
        let why = |verb: String| {
            format!(
                "queue {} vs peer {}, {:.0} vs {:.0} jobs/s predicted: {verb}",
                input.local_queue,
                input.peer_queue,
                input.predicted_rates().0,
                input.predicted_rates().1,
            )
        };
        match decision {
            Decision::Hold => {}
            // A paused peer would only give them back.
            Decision::Send(_) if input.peer_throttle <= 0.0 => {}
            Decision::Send(n) => {
                let jobs = self.book.take_for_transfer(self.within_budget(n));
                self.send_decided(now, jobs, why("sending".to_owned()));
            }
            Decision::Request(n)
                if n > 0 && self.adaptor.requested == 0 && input.peer_throttle > 0.0 =>
            {
                self.adaptor.requested = n;
                let patience = self
                    .endpoint
                    .rtt()
                    .srtt()
                    .map_or(REQUEST_PATIENCE, |r| (2 * r).max(REQUEST_PATIENCE));
                self.adaptor.request_expires = Some(now + patience);
                self.counters.requests_sent += 1;
                self.log(
                    now,
                    format!(
                        "policy {}: {}",
                        self.adaptor.policy.name(),
                        why(format!("asking {} for {n} jobs", self.role.peer()))
                    ),
                );
                self.send_control(Message::Request { jobs: n });
            }
            Decision::Request(_) => {}
        }
    }

    /// Sends the policy's jobs, logging why.
    fn send_decided(&mut self, now: Instant, jobs: Vec<Job>, why: String) {
        if jobs.is_empty() {
            return;
        }
        let ids: Vec<u32> = jobs.iter().map(|j| j.id).collect();
        self.log(
            now,
            format!(
                "policy {}: {why} {} jobs [{}] to {}",
                self.adaptor.policy.name(),
                jobs.len(),
                format_id_ranges(&ids),
                self.role.peer()
            ),
        );
        self.send_jobs(now, jobs);
        self.adaptor.state_due = true;
    }

    /// The peer asked for jobs: the policy says how many it gets.
    pub(super) fn on_request(&mut self, now: Instant, wanted: u32) {
        self.counters.requests_received += 1;
        // Whatever the answer, the asker hears this node's state at once.
        self.adaptor.state_due = true;
        let Some(input) = self.policy_input(now) else {
            return;
        };
        let n = if self.throttle <= 0.0 {
            // A paused node gives its queue away on its own.
            0
        } else {
            self.adaptor.policy.on_request(&input, wanted)
        };
        let n = self.within_budget(n);
        let jobs = if n > 0 {
            self.book.take_for_transfer(n)
        } else {
            Vec::new()
        };
        if jobs.is_empty() {
            self.log(
                now,
                format!(
                    "policy {}: {} asked for {wanted} jobs; none sent (queue {}, peer {})",
                    self.adaptor.policy.name(),
                    self.role.peer(),
                    input.local_queue,
                    input.peer_queue
                ),
            );
            return;
        }
        let why = format!(
            "{} asked for {wanted} jobs (queue {} vs peer {}): sending",
            self.role.peer(),
            input.local_queue,
            input.peer_queue
        );
        self.send_decided(now, jobs, why);
    }

    /// The user's throttle (from the hardware monitor's knob): a change is
    /// said, sent to the peer, and a pause puts the started jobs back.
    pub(super) fn set_throttle(&mut self, now: Instant, t: f64) {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let old = self.throttle;
        if (old - t).abs() > f64::EPSILON {
            self.throttle = t;
            if self.timeline.run().is_some() {
                let at = self.run_seconds(now);
                self.timeline.throttle(at, t);
            }
            self.events.push_back(Event::Throttle(t));
            self.log(
                now,
                format!(
                    "throttle changed from {:.0} % to {:.0} %",
                    old * 100.0,
                    t * 100.0
                ),
            );
            self.adaptor.state_due = true;
            if t <= 0.0 && old > 0.0 {
                self.requeue_started(now);
            }
        }
    }

    /// Paused: the jobs the workers hold will not progress, so they go back
    /// to the queue (a job's data before computing is the initial value, so
    /// it is made again), where the policy can give them away. A worker that
    /// finishes its copy later has its result kept only if the job is still
    /// computing here; any other copy is dropped, so none counts twice.
    fn requeue_started(&mut self, now: Instant) {
        if self.settings.work.is_some() {
            // A program is paused where it is (stopped, not killed) and a
            // slave could not make its job again: the worker keeps it.
            return;
        }
        let started = self.book.requeue_computing();
        if started.is_empty() {
            return;
        }
        self.log(
            now,
            format!(
                "paused: {} started jobs [{}] back in the queue",
                started.len(),
                crate::workload::format_id_ranges(&started)
            ),
        );
    }
}

/// A worker's jobs per second at full throttle, from the times jobs took:
/// jobs over their full-throttle seconds, both sums fading with
/// [`CAPACITY_MEMORY`].
#[derive(Debug, Default)]
pub struct CapacityMeter {
    jobs: f64,
    seconds: f64,
    last: Option<Instant>,
}

impl CapacityMeter {
    /// A job took `seconds` at full throttle, done at `now`.
    pub fn add(&mut self, now: Instant, seconds: f64) {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            let keep = (-dt / CAPACITY_MEMORY.as_secs_f64()).exp();
            self.jobs *= keep;
            self.seconds *= keep;
        }
        self.last = Some(now);
        self.jobs += 1.0;
        self.seconds += seconds;
    }

    /// Jobs per second per worker at full throttle; 0 before any job.
    pub fn value(&self) -> f64 {
        if self.seconds > 0.0 {
            self.jobs / self.seconds
        } else {
            0.0
        }
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
    fn capacity_is_jobs_over_their_full_throttle_seconds() {
        let t0 = Instant::now();
        let mut c = CapacityMeter::default();
        assert_eq!(c.value(), 0.0);
        c.add(t0, 0.01);
        assert!((c.value() - 100.0).abs() < 1e-9);
        c.add(t0, 0.03);
        assert!((c.value() - 50.0).abs() < 1e-9);
        // Long after, the old jobs are forgotten: the newest speed rules.
        c.add(t0 + Duration::from_secs(10), 0.002);
        assert!((c.value() - 500.0).abs() < 1.0, "{}", c.value());
    }

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
