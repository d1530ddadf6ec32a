//! What the core shows: getters for the window, the report, the swarm and
//! the tests. They read the core and change nothing.

use std::time::{Duration, Instant};

use super::{Counters, JobState, Ledger, NodeCore, PeerView, Timeline, TransferRecord};
use crate::config::{Config, Role};
use crate::protocol::{self, Phase, RunParams};
use crate::workload::{JobId, ResultStore, Verification};

impl NodeCore {
    /// This node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The longest datagram, tag included, this node's reader takes in
    /// whole: its receive buffers are this long.
    pub fn receive_bytes(&self) -> usize {
        self.config.datagram_bytes as usize
    }

    /// The slave's hello nonce (0 before Start, and on the master until a
    /// slave's hello): what a forged hello must echo, for the swarm.
    pub fn hello_nonce(&self) -> u64 {
        self.session.nonce
    }

    /// The config the core runs under.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// When the run failed, if it did.
    pub fn failed_at(&self) -> Option<Instant> {
        self.session.failed_at
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.session.phase
    }

    /// True once the peer has answered the handshake.
    pub fn is_connected(&self) -> bool {
        self.session.connected
    }

    /// True once the peer was declared lost.
    pub fn is_peer_lost(&self) -> bool {
        self.session.peer_lost
    }

    /// The run's parameters, once known.
    pub fn params(&self) -> Option<RunParams> {
        self.session.params
    }

    /// The job ledger.
    pub fn ledger(&self) -> &Ledger {
        self.book.ledger()
    }

    /// The peer's latest state.
    pub fn peer(&self) -> Option<PeerView> {
        self.adaptor.peer
    }

    /// When the peer was last heard; `None` if never.
    pub fn last_heard(&self) -> Option<Instant> {
        self.session.last_heard
    }

    /// How long since the peer was last heard; `None` if never.
    pub fn silence(&self, now: Instant) -> Option<Duration> {
        self.session
            .last_heard
            .map(|t| now.saturating_duration_since(t))
    }

    /// The master's verification, once made.
    pub fn verification(&self) -> Option<&Verification> {
        self.session.verification.as_ref()
    }

    /// The master's results.
    pub fn results(&self) -> Option<&ResultStore> {
        self.book.results()
    }

    /// The transfer pacer's view of the path to the peer: bottleneck rate
    /// (bytes of chunk payload per second), minimum RTT, phase.
    pub fn endpoint_path_estimate(
        &self,
    ) -> (Option<f64>, Option<Duration>, crate::transfer::PacerPhase) {
        self.endpoint.path_estimate()
    }

    /// Datagram and batch counters.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        let s = self.endpoint.stats();
        c.rejected.duplicate_chunks = s.duplicate_chunks;
        c.rejected.refused_chunks = s.refused_chunks;
        c.rejected.invalid_acks = s.invalid_acks;
        c
    }

    /// Chunks sent again.
    pub fn retransmitted(&self) -> u64 {
        self.endpoint.stats().retransmitted
    }

    /// Policy transfers, in the order they completed.
    pub fn transfers(&self) -> &[TransferRecord] {
        &self.transfers
    }

    /// When each phase began, indexed by `Phase as usize`.
    pub fn phase_started(&self) -> [Option<Instant>; 5] {
        self.session.phase_started
    }

    /// Jobs this node computed (results kept).
    pub fn jobs_done(&self) -> u32 {
        self.book.done()
    }

    /// Master: results received from the slave and kept.
    pub fn results_received(&self) -> u32 {
        self.book.results_received()
    }

    /// Master: jobs taken back from a lost slave.
    pub fn jobs_reclaimed(&self) -> u32 {
        self.book.reclaimed()
    }

    /// Seconds into the run when the peer was declared lost.
    pub fn peer_lost_at_s(&self) -> Option<f64> {
        self.session.peer_lost_at_s
    }

    /// Jobs the master sent at bootstrap.
    pub fn bootstrap_jobs(&self) -> u32 {
        self.book.bootstrap_jobs()
    }

    /// Jobs delivered to the peer (bootstrap and transfers).
    pub fn delivered_to_peer(&self) -> u32 {
        self.book.delivered_to_peer()
    }

    /// The throttle.
    pub fn throttle(&self) -> f64 {
        self.throttle
    }

    /// When the core was created: the log's clock starts here.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The run's jobs: those present from the start and those arriving.
    pub fn schedule(&self) -> &crate::arrivals::Schedule {
        &self.schedule
    }

    /// Master: the response time of each job that came during the run
    /// (arrived, or added by hand), seconds from its coming to its result
    /// held here, in id order (only jobs whose result is in).
    pub fn response_times(&self) -> Vec<f64> {
        let (first, _) = self.schedule.arrivals(Role::Master);
        let scheduled = self.schedule.total();
        let came = |id: JobId| match id.checked_sub(scheduled) {
            Some(i) => self.added_at.get(i as usize).copied(),
            None => self.schedule.arrival_of(id),
        };
        let result_at = self.book.result_at();
        (first..result_at.len() as JobId)
            .filter_map(|id| {
                let held = *result_at.get(id as usize)?;
                let came = came(id)?;
                (!held.is_nan()).then_some((held - came).max(0.0))
            })
            .collect()
    }

    /// True when jobs came during the run (arrivals, or Add jobs).
    pub fn jobs_came_during_run(&self) -> bool {
        self.schedule.has_arrivals() || !self.added_at.is_empty()
    }

    /// The run as it happened here: jobs computed, batches, the queue.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The run as this node runs it, for its trace (see [`super::RunInfo`]).
    pub(super) fn run_info(&self) -> super::RunInfo {
        let p = self
            .session
            .params
            .unwrap_or_else(|| RunParams::from_config(&self.config));
        let local = self.config.master.address.ip().is_loopback()
            && self.config.slave.address.ip().is_loopback();
        let me = self.config.node(self.role);
        super::RunInfo {
            kind: crate::config::Kind::from_code(p.kind)
                .map_or("vector", |k| k.name())
                .to_owned(),
            jobs: p.present,
            elements_per_job: p.elements_per_job,
            iterations: p.iterations,
            initial: p.initial,
            addend: p.addend,
            arrivals: p.arrivals,
            policy: self.adaptor.policy.name().to_owned(),
            threshold: p.threshold,
            state_interval_ms: self.config.policy.state_interval_ms,
            workers: u32::try_from(me.workers).unwrap_or(u32::MAX),
            throttle: self.throttle,
            datagram_bytes: self.config.datagram_bytes,
            compression: self.config.compression,
            local,
            link: me.link,
        }
    }

    /// Seconds since the run started (0 before).
    pub fn run_seconds(&self, now: Instant) -> f64 {
        self.session.phase_started[Phase::Bootstrap as usize]
            .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64())
    }

    /// Whole loadbal datagrams from the peer's address whose tags failed.
    pub fn bad_tags(&self) -> u64 {
        self.session.bad_tags
    }

    /// True once the hardware monitor has measured the node's CPU use.
    pub fn cpu_measured(&self) -> bool {
        self.cpu_measured
    }

    /// This node's state as the state manager sends it.
    pub fn local_state(&self) -> protocol::State {
        let busy = self.book.count(JobState::Computing);
        protocol::State {
            phase: self.session.phase,
            queue: self.queued(),
            jobs_done: self.book.done(),
            jobs_received: self.book.received(),
            in_flight: self.book.in_flight(),
            busy: busy.min(u32::from(u16::MAX)) as u16,
            workers: self.book.workers().min(u32::from(u16::MAX)) as u16,
            throttle: self.throttle as f32,
            cpu_system: self.cpu.0 as f32,
            cpu_process: self.cpu.1 as f32,
            rate: self.adaptor.rate.value() as f32,
            capacity: self.adaptor.capacity.value() as f32,
        }
    }
}
