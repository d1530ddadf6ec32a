//! The session: the hello handshake (retried until the peer answers), the
//! master's bootstrap, the phases, when processing gives way to
//! aggregation, verification, the reliable finish (finish / finish-ack),
//! the peer's liveness and a lost slave's jobs taken back.

use std::time::{Duration, Instant};

use super::{End, Ending, Failure, NodeCore, id_range};
use crate::config::Role;
use crate::protocol::{self, Hello, Message, Phase, RunParams};
use crate::workload::{ResultStore, format_id_ranges};

/// How often a hello is repeated until the peer answers, at most: a
/// quarter of the peer time-out when that is shorter (see
/// [`NodeCore::hello_interval`]).
pub const HELLO_INTERVAL: Duration = Duration::from_millis(500);
/// How often "waiting for peer" is repeated in the log.
const WAIT_NOTICE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the master repeats its finish until the slave acknowledges.
pub const FINISH_INTERVAL: Duration = Duration::from_millis(200);
/// How long the master keeps repeating its finish.
pub const FINISH_PATIENCE: Duration = Duration::from_secs(3);
/// Least time between two go-aways to a stray slave.
const GO_AWAY_INTERVAL: Duration = Duration::from_millis(200);
/// How long the slave stays to re-acknowledge a repeated finish, unless
/// the master's bye comes first.
pub const SLAVE_LINGER: Duration = Duration::from_millis(500);

impl NodeCore {
    pub(super) fn start(&mut self, now: Instant, random: u64) {
        if self.started.is_some() || self.end.is_some() {
            return;
        }
        self.started = Some(now);
        let random = random.max(1);
        let peer = self.config.node(self.role.peer()).address;
        if self.role == Role::Master {
            self.session = random;
            let w = self.config.workload;
            self.schedule = w.schedule();
            let jobs = self.schedule.total();
            self.params = Some(RunParams::from_config(&self.config));
            self.book.begin(jobs);
            self.timeline = super::Timeline::new(jobs);
            self.log(
                now,
                format!(
                    "started: {} jobs of {} doubles{}, {} iterations; policy {}, threshold {} {}; waiting for the slave at {peer}",
                    w.jobs,
                    w.elements_per_job,
                    match &w.arrivals {
                        Some(a) => format!(
                            ", and {} arriving ({} a second at each node for {} s)",
                            jobs - w.jobs,
                            a.rate_per_s,
                            a.duration_s
                        ),
                        None => String::new(),
                    },
                    w.iterations,
                    self.config.policy.transfer,
                    self.config.policy.threshold(),
                    crate::policy::threshold_unit(&self.config.policy.transfer)
                ),
            );
        } else {
            self.nonce = random;
            self.log(
                now,
                format!("ready to receive; waiting for the master at {peer}"),
            );
        }
        self.last_wait_notice = Some(now);
        self.send_hello(now);
    }

    fn send_hello(&mut self, now: Instant) {
        // The slave's own until it joins the master's run (they are the
        // same, or it does not join).
        let params = self
            .params
            .unwrap_or_else(|| RunParams::from_config(&self.config));
        let hello = Hello {
            from_master: self.role == Role::Master,
            window_chunks: self.settings.window_chunks,
            datagram_bytes: self.config.datagram_bytes,
            compression: self.config.compression,
            params,
            nonce: self.nonce,
        };
        self.send_control(Message::Hello(hello));
        self.last_hello = Some(now);
    }

    pub(super) fn on_hello(&mut self, now: Instant, session: u64, hello: Hello) {
        if self.started.is_none() {
            // Not started yet: the peer keeps retrying until we are.
            return;
        }
        if hello.from_master == (self.role == Role::Master) {
            self.log(
                now,
                format!(
                    "ignored a hello from another {} at the peer's address",
                    self.role
                ),
            );
            return;
        }
        if let Err(why) = hello.validate() {
            self.count_rejection(super::Rejection::Malformed);
            self.log(
                now,
                format!(
                    "ignored a hello from the {} with bad values: {why}",
                    self.role.peer()
                ),
            );
            return;
        }
        let ours = self.session;
        match self.role {
            Role::Master => {
                if let Some(slave_nonce) = self.slave_nonce {
                    if session == 0 && hello.nonce != slave_nonce {
                        self.go_away(now, hello.nonce);
                    }
                    // Otherwise a late or repeated hello of our own slave.
                } else if session == ours {
                    self.slave_nonce = Some(hello.nonce);
                    self.connect(now, &hello);
                    self.begin_bootstrap(now);
                } else if session == 0 {
                    // The slave has not heard us yet: answer at once,
                    // echoing its nonce so that it knows the answer is fresh.
                    self.nonce = hello.nonce;
                    self.send_hello(now);
                    let ours = self
                        .params
                        .unwrap_or_else(|| RunParams::from_config(&self.config));
                    if let Some(mismatch) = RunParams::mismatch(&ours, &hello.params) {
                        // The answer tells the slave, which finds the same
                        // field; twice, so that one lost datagram does not
                        // leave it waiting.
                        self.send_hello(now);
                        self.fail(now, Failure::ConfigMismatch(mismatch));
                    }
                } else {
                    self.log(
                        now,
                        format!(
                            "ignored a hello from the slave for another session ({session:#x})"
                        ),
                    );
                }
            }
            Role::Slave => {
                if ours == 0 {
                    if session == 0 || hello.nonce != self.nonce {
                        // The master's hellos before it heard us, or a
                        // replay of an earlier run's: wait for the answer.
                        return;
                    }
                    let own = RunParams::from_config(&self.config);
                    if let Some(mismatch) = RunParams::mismatch(&hello.params, &own) {
                        self.fail(now, Failure::ConfigMismatch(mismatch));
                        return;
                    }
                    // Validated above: the policy is known, the jobs are
                    // those the arrivals make.
                    let policy = crate::policy::NAMES
                        .get(usize::from(hello.params.policy))
                        .and_then(|name| crate::policy::by_name(name, hello.params.threshold));
                    let Some(policy) = policy else {
                        return;
                    };
                    let schedule = hello.params.schedule();
                    self.schedule = schedule;
                    self.session = session;
                    self.params = Some(hello.params);
                    self.policy = policy;
                    self.book.begin(hello.params.jobs);
                    self.timeline = super::Timeline::new(hello.params.jobs);
                    let p = hello.params;
                    self.log(
                        now,
                        format!(
                            "joined the master's run {session:#018x}: {} jobs of {} doubles, {} iterations; policy {}, threshold {} {}",
                            p.jobs, p.elements_per_job, p.iterations, self.policy.name(), p.threshold,
                            crate::policy::threshold_unit(self.policy.name())
                        ),
                    );
                    self.connect(now, &hello);
                    self.send_hello(now);
                } else if session == ours {
                    // Our answer was lost: repeat it.
                    self.send_hello(now);
                } else {
                    self.log(
                        now,
                        format!(
                            "ignored a hello from the master for another session ({session:#x})"
                        ),
                    );
                }
            }
        }
    }

    /// Master: a slave that is not the one in this run said hello (most
    /// likely it was restarted): tell it to go away, at most every
    /// [`GO_AWAY_INTERVAL`].
    fn go_away(&mut self, now: Instant, nonce: u64) {
        if self
            .last_go_away
            .is_some_and(|t| now.saturating_duration_since(t) < GO_AWAY_INTERVAL)
        {
            return;
        }
        if self.last_go_away.is_none() {
            let peer = self.config.node(self.role.peer()).address;
            self.log(
                now,
                format!(
                    "a slave at {peer} that is not in this run said hello (restarted?): told it to go away"
                ),
            );
        }
        self.last_go_away = Some(now);
        self.send_control(Message::GoAway { nonce });
    }

    /// Slave: the master is in a run with another slave.
    pub(super) fn on_go_away(&mut self, now: Instant, nonce: u64) {
        if self.role != Role::Slave
            || self.started.is_none()
            || self.connected
            || nonce != self.nonce
        {
            return;
        }
        let address = self.config.node(self.role.peer()).address.to_string();
        self.fail(now, Failure::Stale { address });
    }

    fn connect(&mut self, now: Instant, hello: &Hello) {
        let peer_window = hello.window_chunks;
        self.connected = true;
        self.last_heard = Some(now);
        self.endpoint.set_peer_window(peer_window);
        // Both nodes send datagrams of the smaller of the two sizes, so
        // neither's reader ever cuts one of the other's (the larger node's
        // link may not carry it, the smaller one's buffer does not hold it).
        let ours = self.config.datagram_bytes;
        let size = ours.min(hello.datagram_bytes);
        self.endpoint
            .set_chunk_bytes(size as usize - protocol::CHUNK_OVERHEAD - crate::auth::TAG_BYTES);
        if !hello.compression && self.config.compression {
            self.config.compression = false;
            self.log(
                now,
                format!(
                    "compression: the {}'s config turns it off, so neither node compresses",
                    self.role.peer()
                ),
            );
        }
        if hello.datagram_bytes != ours {
            self.log(
                now,
                format!(
                    "datagram size: the {}'s is {} bytes, this node's {ours}: both send {size}",
                    self.role.peer(),
                    hello.datagram_bytes
                ),
            );
        }
        self.state_due = true;
        self.next_state = Some(now + self.state_interval());
        let peer = self.config.node(self.role.peer()).address;
        self.log(
            now,
            format!(
                "connected to the {} at {peer} (its window: {peer_window} datagrams)",
                self.role.peer()
            ),
        );
    }

    pub(super) fn set_phase(&mut self, now: Instant, phase: Phase) {
        let old = self.phase;
        if phase <= old {
            return;
        }
        // A phase skipped over (the slave may learn of two at once) starts
        // and ends at the same moment.
        for p in (old as usize + 1)..=(phase as usize) {
            self.phase_started[p].get_or_insert(now);
        }
        self.phase = phase;
        if phase == Phase::Done {
            self.sample_queue(now, true);
        }
        self.summarise_batches(now, old, phase);
        self.log(now, format!("phase: {}", phase.name()));
        self.events.push_back(super::Event::Phase(phase));
        self.state_due = true;
        if phase == Phase::Aggregation && self.role == Role::Slave {
            self.flush_results = true;
        }
        if phase == Phase::Processing {
            // Jobs timed during the bootstrap shared the CPU with moving
            // it: the policies weigh the speed the processing phase shows.
            self.capacity = super::state::CapacityMeter::default();
        }
    }

    /// The master's bootstrap: keep the first half of the jobs, send the
    /// second half to the slave. Neither half is made here: the slave's
    /// are encoded from the workload as they are sent, the master's own
    /// made by the worker that takes them.
    fn begin_bootstrap(&mut self, now: Instant) {
        self.set_phase(now, Phase::Bootstrap);
        let w = self.config.workload;
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
        if self.book.bootstrap_done(n) && self.phase == Phase::Bootstrap {
            let elapsed = self.phase_started[Phase::Bootstrap as usize]
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            let params = self.config.workload;
            let bytes = f64::from(self.book.bootstrap_jobs())
                * protocol::batch::job_bytes(params.elements_per_job) as f64;
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
        if let Some(peer) = self.peer
            && peer.state.phase > self.phase
            && peer.state.phase < Phase::Done
        {
            self.set_phase(now, peer.state.phase);
        }
    }

    /// Master: moves to aggregation when no job waits anywhere, and
    /// finishes when every result is in.
    pub(super) fn check_progress(&mut self, now: Instant) {
        if self.role != Role::Master || !matches!(self.ending, Ending::No) || self.end.is_some() {
            return;
        }
        if self.phase == Phase::Processing && self.nothing_left_to_start(now) {
            self.set_phase(now, Phase::Aggregation);
        }
        let complete = self.book.results().is_some_and(ResultStore::is_complete);
        if complete && self.phase >= Phase::Bootstrap {
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
        if self.peer_lost {
            return true;
        }
        let Some(peer) = self.peer else {
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
        self.peer_lost = true;
        self.log(now, why);
        self.reclaim_jobs(now);
        if self.phase == Phase::Bootstrap {
            // The rest of the bootstrap will never be delivered.
            self.book.abandon_bootstrap();
            self.set_phase(now, Phase::Processing);
        }
        self.state_due = true;
    }

    /// The peer stopped its run. A slave whose master stopped fails; a
    /// master whose slave stopped takes its jobs back and goes on alone, as
    /// for a slave that went silent.
    pub(super) fn on_abort(&mut self, now: Instant, reason: &str) {
        let peer = self.role.peer().name();
        match self.role {
            Role::Master if self.connected && !self.peer_lost && self.end.is_none() => {
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
        match self.ending {
            Ending::Finishing {
                since, last_sent, ..
            } => return Some((since + FINISH_PATIENCE).min(last_sent + FINISH_INTERVAL)),
            Ending::Lingering { until, .. } => return Some(until),
            Ending::No => {}
        }
        let started = self.started?;
        if !self.connected {
            let hello = self
                .last_hello
                .map_or(started, |t| t + self.hello_interval());
            let notice = self
                .last_wait_notice
                .map_or(started, |t| t + WAIT_NOTICE_INTERVAL);
            let mut next = hello.min(notice);
            if self.role == Role::Master && self.settings.headless {
                next = next.min(started + self.connect_timeout());
            }
            return Some(next);
        }
        if self.peer_lost {
            return None;
        }
        self.last_heard.map(|t| t + self.peer_timeout())
    }

    /// How often the hello is repeated until the peer answers. A slave
    /// that joined counts the master's silence from then on, and hears
    /// nothing more until the master has its answer: a lost answer must be
    /// asked for again well within the slave's peer time-out (the swarm
    /// found slaves declaring a live master lost, with a time-out of
    /// 300 ms and one answer lost).
    pub fn hello_interval(&self) -> Duration {
        HELLO_INTERVAL.min(self.peer_timeout() / 4)
    }

    fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.config.connect_timeout_ms)
    }

    fn peer_timeout(&self) -> Duration {
        Duration::from_millis(self.config.peer_timeout_ms)
    }

    /// The session's timers.
    pub(super) fn tick(&mut self, now: Instant) {
        if self.end.is_some() {
            return;
        }
        if self.connected {
            // The state goes out to the end, finish included.
            self.tick_state(now);
        }
        match self.ending {
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
                    self.end = Some(End::Finished { verified });
                } else if now.saturating_duration_since(last_sent) >= FINISH_INTERVAL {
                    self.send_control(Message::Finish { verified });
                    self.ending = Ending::Finishing {
                        verified,
                        since,
                        last_sent: now,
                    };
                }
                return;
            }
            Ending::Lingering { verified, until } => {
                if now >= until {
                    self.end = Some(End::Finished { verified });
                }
                return;
            }
            Ending::No => {}
        }
        let Some(started) = self.started else {
            return;
        };
        if !self.connected {
            self.tick_waiting(now, started);
            return;
        }
        if !self.peer_lost
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

    fn tick_waiting(&mut self, now: Instant, started: Instant) {
        if self
            .last_hello
            .is_none_or(|t| now.saturating_duration_since(t) >= self.hello_interval())
        {
            self.send_hello(now);
        }
        let waited = now.saturating_duration_since(started);
        let peer = self.config.node(self.role.peer()).address;
        let waited_s = self.connect_timeout().as_secs_f64();
        if self.settings.headless && waited >= self.connect_timeout() {
            // A slave waits for its master as long as it takes, unless
            // what comes from the master's address fails authentication.
            if self.unauthentic > 0 {
                let failure = Failure::SecretMismatch {
                    peer: self.role.peer().name(),
                    address: peer.to_string(),
                    count: self.unauthentic,
                    waited_s,
                };
                self.fail(now, failure);
                return;
            }
            if self.role == Role::Master {
                let failure = Failure::NoSlave {
                    address: peer.to_string(),
                    waited_s,
                };
                self.fail(now, failure);
                return;
            }
        }
        if self
            .last_wait_notice
            .is_none_or(|t| now.saturating_duration_since(t) >= WAIT_NOTICE_INTERVAL)
        {
            self.last_wait_notice = Some(now);
            let unauthentic = match self.unauthentic {
                0 => String::new(),
                n => format!(
                    "; {n} datagrams from its address failed authentication: are both configs' \
                     `secret`s the same?"
                ),
            };
            self.log(
                now,
                format!(
                    "waiting for the {} at {peer} ({} s so far){unauthentic}",
                    self.role.peer(),
                    waited.as_secs()
                ),
            );
        }
    }
}
