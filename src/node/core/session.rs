//! The session: the run's start, the master's bootstrap, the phases, when
//! processing gives way to aggregation, the reliable finish (finish /
//! finish-ack), the peer's liveness and a lost slave's jobs taken back.
//! The handshake is in `hello.rs`, the end in `ending.rs`.

use std::time::{Duration, Instant};

use super::hello::WAIT_NOTICE_INTERVAL;
use super::{End, Failure, NodeCore, id_range};
use crate::auth::ReplayWindow;
use crate::ids::Role;
use crate::protocol::{self, Message, Phase, RunParams};
use crate::workload::Verification;
use crate::workload::{ResultStore, format_id_ranges};

/// How often the master repeats its finish until the slave acknowledges.
pub const FINISH_INTERVAL: Duration = Duration::from_millis(200);
/// How long the master keeps repeating its finish.
pub const FINISH_PATIENCE: Duration = Duration::from_secs(3);
/// How long the slave stays to re-acknowledge a repeated finish, unless
/// the master's bye comes first.
pub const SLAVE_LINGER: Duration = Duration::from_millis(500);

/// Where the run's end stands.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ending {
    /// Not ending.
    No,
    /// Master: verified (or not), repeating finish until acknowledged.
    Finishing {
        verified: bool,
        since: Instant,
        last_sent: Instant,
    },
    /// Master: refusing the run (the slave's config differs), answering
    /// the slave's hellos until it has gone quiet.
    Refusing { since: Instant },
    /// Slave: acknowledged the finish; lingers to answer repeats.
    Lingering { verified: bool, until: Instant },
}

/// The session: the handshake (retried until the peer answers), the
/// run's parameters and phases, the peer's liveness and the run's end.
pub(super) struct Session {
    /// When Start was given.
    pub(super) started: Option<Instant>,
    /// The session's id: the master's random number (0 on a slave until it
    /// joins).
    pub(super) id: u64,
    /// The slave's hello nonce, or the master's echo of it.
    pub(super) nonce: u64,
    /// Master: the nonce of the slave in this run.
    pub(super) slave_nonce: Option<u64>,
    pub(super) connected: bool,
    pub(super) peer_lost: bool,
    /// Master: seconds into the run when its slave was declared lost.
    pub(super) peer_lost_at_s: Option<f64>,
    pub(super) params: Option<RunParams>,
    pub(super) phase: Phase,
    pub(super) phase_started: [Option<Instant>; 5],
    pub(super) last_hello: Option<Instant>,
    pub(super) last_wait_notice: Option<Instant>,
    pub(super) last_go_away: Option<Instant>,
    pub(super) last_heard: Option<Instant>,
    /// Datagrams from the peer's address that failed authentication (the
    /// reader's count).
    pub(super) bad_tags: u64,
    /// Those that keep coming since Start, if they do.
    pub(super) bad_tags_stream: Option<super::hello::BadTags>,
    pub(super) replay: ReplayWindow,
    /// The last datagram sequence number sent.
    pub(super) seq: u64,
    pub(super) ending: Ending,
    pub(super) end: Option<End>,
    /// Master: the field in which the slave's config differs, while it
    /// refuses the run.
    pub(super) refusal: Option<crate::protocol::Mismatch>,
    /// Master, refusing: when the slave last said hello.
    pub(super) refused_hello_at: Option<Instant>,
    /// When the run failed, if it did.
    pub(super) failed_at: Option<Instant>,
    pub(super) verification: Option<Verification>,
}

impl Session {
    pub(super) fn new() -> Self {
        Session {
            started: None,
            id: 0,
            nonce: 0,
            slave_nonce: None,
            connected: false,
            peer_lost: false,
            peer_lost_at_s: None,
            params: None,
            phase: Phase::Idle,
            phase_started: [None; 5],
            last_hello: None,
            last_wait_notice: None,
            last_go_away: None,
            last_heard: None,
            bad_tags: 0,
            bad_tags_stream: None,
            replay: ReplayWindow::default(),
            seq: 0,
            ending: Ending::No,
            end: None,
            refusal: None,
            refused_hello_at: None,
            failed_at: None,
            verification: None,
        }
    }
}

impl NodeCore {
    pub(super) fn start(&mut self, now: Instant, random: u64) {
        if self.session.started.is_some() || self.session.end.is_some() {
            return;
        }
        self.session.started = Some(now);
        let random = random.max(1);
        let peer = self.config.node(self.role.peer()).address;
        if self.role == Role::Master {
            self.session.id = random;
            let w = self.config.workload.clone();
            self.schedule = w.schedule();
            let jobs = self.schedule.total();
            self.session.params = Some(RunParams::from_config(&self.config));
            self.book.begin(jobs);
            self.timeline = super::Timeline::new(jobs);
            self.timeline.set_run(self.run_info());
            self.log(
                now,
                format!(
                    "started: {}{}; policy {}, threshold {} {}; waiting for the slave at {peer}",
                    self.jobs_text(w.jobs, w.elements_per_job, w.iterations),
                    match &w.arrivals {
                        Some(a) => format!(
                            ", and {} arriving ({} a second at each node for {} s)",
                            jobs - w.jobs,
                            a.rate_per_s,
                            a.duration_s
                        ),
                        None => String::new(),
                    },
                    self.config.policy.transfer,
                    self.config.policy.threshold(),
                    crate::policy::threshold_unit(&self.config.policy.transfer)
                ),
            );
        } else {
            self.session.nonce = random;
            self.log(
                now,
                format!("ready to receive; waiting for the master at {peer}"),
            );
        }
        self.session.last_wait_notice = Some(now);
        self.send_hello(now);
    }

    pub(super) fn set_phase(&mut self, now: Instant, phase: Phase) {
        let old = self.session.phase;
        if phase <= old {
            return;
        }
        // A phase skipped over (the slave may learn of two at once) starts
        // and ends at the same moment.
        for p in (old as usize + 1)..=(phase as usize) {
            self.session.phase_started[p].get_or_insert(now);
        }
        for p in (old as u8 + 1)..=(phase as u8) {
            if let Some(p) = Phase::from_u8(p) {
                let at = self.run_seconds(now);
                self.timeline.phase(at, p);
            }
        }
        self.session.phase = phase;
        if phase == Phase::Done {
            self.sample_queue(now, true);
        }
        self.summarise_batches(now, old, phase);
        self.log(now, format!("phase: {}", phase.name()));
        self.events.push_back(super::Event::Phase(phase));
        self.adaptor.state_due = true;
        if phase == Phase::Aggregation && self.role == Role::Slave {
            self.flush_results = true;
        }
        if phase == Phase::Processing {
            // Jobs timed during the bootstrap shared the CPU with moving
            // it: the policies weigh the speed the processing phase shows.
            self.adaptor.capacity = super::state::CapacityMeter::default();
        }
    }

    /// The master's bootstrap: keep the first half of the jobs, send the
    /// second half to the slave. Neither half is made here: the slave's
    /// are encoded from the workload as they are sent, the master's own
    /// made by the worker that takes them.
    pub(super) fn begin_bootstrap(&mut self, now: Instant) {
        self.set_phase(now, Phase::Bootstrap);
        let w = self.config.workload.clone();
        let send = w.jobs / 2;
        let keep = w.jobs - send;
        self.log(
            now,
            format!(
                "bootstrap: keeping jobs [{}], sending jobs [{}] to the slave",
                format_id_ranges(&id_range(0, keep)),
                format_id_ranges(&id_range(keep, w.jobs))
            ),
        );
        self.book.begin_bootstrap(keep, w.jobs);
        if send == 0 {
            self.set_phase(now, Phase::Processing);
        }
    }

    /// Bootstrap jobs were delivered to the slave.
    pub(super) fn bootstrap_delivered(&mut self, now: Instant, n: u32) {
        if self.book.bootstrap_done(n) && self.session.phase == Phase::Bootstrap {
            let elapsed = self.session.phase_started[Phase::Bootstrap as usize]
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            let params = self.config.workload.clone();
            let bytes = if self.settings.work.is_some() {
                // The pieces differ: what the batches carried so far.
                self.counters.batch_raw_bytes as f64
            } else {
                f64::from(self.book.bootstrap_jobs())
                    * protocol::batch::job_bytes(params.elements_per_job) as f64
            };
            let (rate, min_rtt, _) = self.endpoint.path_estimate();
            let path = match (rate, min_rtt) {
                (Some(rate), Some(rtt)) => format!(
                    "; the link: {:.1} Mbit/s, {:.1} ms min RTT",
                    rate * 8.0 / 1e6,
                    rtt.as_secs_f64() * 1000.0
                ),
                _ => String::new(),
            };
            self.log(
                now,
                format!(
                    "bootstrap done: {} jobs ({:.1} MB) delivered in {:.3} s ({:.0} MB/s){path}",
                    self.book.bootstrap_jobs(),
                    bytes / 1e6,
                    elapsed.as_secs_f64(),
                    bytes / 1e6 / elapsed.as_secs_f64().max(1e-9)
                ),
            );
            self.set_phase(now, Phase::Processing);
        }
    }

    /// Slave: the master's phase is the run's phase.
    pub(super) fn follow_master_phase(&mut self, now: Instant) {
        if let Some(peer) = self.adaptor.peer
            && peer.state.phase > self.session.phase
            && peer.state.phase < Phase::Done
        {
            self.set_phase(now, peer.state.phase);
        }
    }

    /// Master: moves to aggregation when no job waits anywhere, and
    /// finishes when every result is in.
    pub(super) fn check_progress(&mut self, now: Instant) {
        if self.role != Role::Master
            || !matches!(self.session.ending, Ending::No)
            || self.session.end.is_some()
        {
            return;
        }
        if self.session.phase == Phase::Processing && self.nothing_left_to_start(now) {
            self.set_phase(now, Phase::Aggregation);
        }
        let complete = self.book.results().is_some_and(ResultStore::is_complete);
        if complete && self.session.phase >= Phase::Bootstrap {
            self.set_phase(now, Phase::Aggregation);
            self.verify_and_finish(now);
        }
    }

    fn nothing_left_to_start(&self, now: Instant) -> bool {
        if self.queued() > 0 || self.book.in_flight() > 0 {
            return false;
        }
        // Jobs still to arrive, here or (by this node's clock) at the peer.
        if self.next_arrival < self.schedule.arrivals(self.role).1.len()
            || self.run_seconds(now) < self.schedule.last_arrival()
        {
            return false;
        }
        if self.session.peer_lost {
            return true;
        }
        let Some(peer) = self.adaptor.peer else {
            return false;
        };
        peer.state.queue == 0
            && peer.state.in_flight == 0
            && peer.state.jobs_received >= self.book.delivered_to_peer()
    }

    /// Master: the slave is lost. From now on nothing is sent to it; every
    /// outbound batch is given up and every job lent to the slave whose
    /// result has not come back is queued here again.
    fn reclaim(&mut self, now: Instant, why: String) {
        self.session.peer_lost = true;
        self.log(now, why);
        self.reclaim_jobs(now);
        if self.session.phase == Phase::Bootstrap {
            // The rest of the bootstrap will never be delivered.
            self.book.abandon_bootstrap();
            self.set_phase(now, Phase::Processing);
        }
        self.adaptor.state_due = true;
    }

    /// The peer stopped its run. A slave whose master stopped fails; a
    /// master whose slave stopped takes its jobs back and goes on alone, as
    /// for a slave that went silent.
    pub(super) fn on_abort(&mut self, now: Instant, reason: &str) {
        let peer = self.role.peer().name();
        match self.role {
            Role::Master
                if self.session.connected
                    && !self.session.peer_lost
                    && self.session.end.is_none() =>
            {
                self.reclaim(
                    now,
                    format!("the slave stopped its run ({reason}): the master goes on alone"),
                );
            }
            Role::Master => {}
            Role::Slave => self.fail(
                now,
                Failure::PeerAborted {
                    peer,
                    reason: reason.to_owned(),
                },
            ),
        }
    }

    /// The earliest time a session timer is due.
    pub(super) fn session_deadline(&self) -> Option<Instant> {
        match self.session.ending {
            Ending::Finishing {
                since, last_sent, ..
            } => return Some((since + FINISH_PATIENCE).min(last_sent + FINISH_INTERVAL)),
            Ending::Lingering { until, .. } => return Some(until),
            Ending::Refusing { since } => return Some(self.refusal_deadline(since)),
            Ending::No => {}
        }
        let started = self.session.started?;
        if !self.session.connected {
            let hello = self
                .session
                .last_hello
                .map_or(started, |t| t + self.hello_interval());
            let notice = self
                .session
                .last_wait_notice
                .map_or(started, |t| t + WAIT_NOTICE_INTERVAL);
            let mut next = hello.min(notice);
            if self.role == Role::Master && self.settings.headless {
                next = next.min(started + self.connect_timeout());
            }
            return Some(next);
        }
        if self.session.peer_lost {
            return None;
        }
        self.session.last_heard.map(|t| t + self.peer_timeout())
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.config.connect_timeout_ms)
    }

    pub(super) fn peer_timeout(&self) -> Duration {
        Duration::from_millis(self.config.peer_timeout_ms)
    }

    /// The session's timers.
    pub(super) fn tick(&mut self, now: Instant) {
        if self.session.end.is_some() {
            return;
        }
        if self.session.connected {
            // The state goes out to the end, finish included.
            self.tick_state(now);
        }
        match self.session.ending {
            Ending::Finishing {
                verified,
                since,
                last_sent,
            } => {
                if now.saturating_duration_since(since) >= FINISH_PATIENCE {
                    self.log(
                        now,
                        "the slave did not acknowledge the finish; it will notice the master is gone",
                    );
                    self.session.end = Some(End::Finished { verified });
                } else if now.saturating_duration_since(last_sent) >= FINISH_INTERVAL {
                    self.send_control(Message::Finish { verified });
                    self.session.ending = Ending::Finishing {
                        verified,
                        since,
                        last_sent: now,
                    };
                }
                return;
            }
            Ending::Lingering { verified, until } => {
                if now >= until {
                    self.session.end = Some(End::Finished { verified });
                }
                return;
            }
            Ending::Refusing { since } => {
                if now >= self.refusal_deadline(since) {
                    self.end_refusal(now);
                }
                return;
            }
            Ending::No => {}
        }
        let Some(started) = self.session.started else {
            return;
        };
        if !self.session.connected {
            self.tick_waiting(now, started);
            return;
        }
        if !self.session.peer_lost
            && let Some(silence) = self.silence(now)
            && silence >= self.peer_timeout()
        {
            let peer = self.role.peer();
            let address = self.config.node(peer).address.to_string();
            match self.role {
                Role::Slave => self.fail(
                    now,
                    Failure::PeerLost {
                        peer: peer.name(),
                        address,
                        silent_s: silence.as_secs_f64(),
                    },
                ),
                Role::Master => self.reclaim(
                    now,
                    format!(
                        "peer lost: nothing heard from the {peer} at {address} for {:.1} s",
                        silence.as_secs_f64()
                    ),
                ),
            }
        }
    }
}
