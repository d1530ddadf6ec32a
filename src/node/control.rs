//! The control thread: a node's session and phases. It opens the session
//! (the hello handshake, retried until the peer answers), runs the master's
//! bootstrap, decides when processing gives way to aggregation, verifies the
//! result, closes the run reliably (finish / finish-ack) and watches the
//! peer's liveness. At the end it stops every other thread, joins them and
//! returns the node's [`Outcome`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::shared::Shared;
use super::transfer::TransferMsg;
use super::{Command, Outcome, Senders, StateMsg};
use crate::config::{Config, Role};
use crate::protocol::{self, Header, Hello, Message, Phase, RunParams};
use crate::report::Report;
use crate::workload::{Job, ResultStore, Verification, format_id_ranges};

/// How often the control loop wakes without a message.
const TICK: Duration = Duration::from_millis(100);
/// How often a hello is repeated until the peer answers.
const HELLO_INTERVAL: Duration = Duration::from_millis(500);
/// How often "waiting for peer" is repeated in the log.
const WAIT_NOTICE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the master repeats its finish until the slave acknowledges.
const FINISH_INTERVAL: Duration = Duration::from_millis(200);
/// How long the master keeps repeating its finish.
const FINISH_PATIENCE: Duration = Duration::from_secs(3);
/// Least time between two go-aways to a stray slave.
const GO_AWAY_INTERVAL: Duration = Duration::from_millis(200);
/// How long the slave stays to re-acknowledge a repeated finish.
const SLAVE_LINGER: Duration = Duration::from_millis(500);

/// The control thread's inbox.
#[derive(Debug)]
pub enum ControlMsg {
    /// From the user (window or headless start).
    Command(Command),
    /// The peer's hello, with the session its header carried.
    Hello {
        /// The header's session id.
        session: u64,
        /// The hello.
        hello: Hello,
    },
    /// The master's finish (slave side).
    Finish {
        /// The master's verification outcome.
        verified: bool,
    },
    /// The slave acknowledged the finish (master side).
    FinishAck,
    /// The master says this slave is not in its run (slave side).
    GoAway {
        /// The hello nonce it answers.
        nonce: u64,
    },
    /// The peer stopped the run.
    PeerAborted(String),
    /// A new peer state arrived.
    PeerState,
    /// A job finished, results arrived or a batch was delivered.
    Progress,
    /// Bootstrap jobs were delivered to the slave.
    BootstrapDelivered(u32),
}

/// Where the run's end stands.
enum Ending {
    /// Not ending.
    No,
    /// Master: verified (or not), repeating finish until acknowledged.
    Finishing {
        verified: bool,
        since: Instant,
        last_sent: Instant,
    },
    /// Slave: acknowledged the finish; lingers to answer repeats.
    Lingering { verified: bool, until: Instant },
}

pub(super) struct Control {
    shared: Arc<Shared>,
    config: Config,
    role: Role,
    headless: bool,
    senders: Senders,
    inbox: Receiver<ControlMsg>,
    started: Option<Instant>,
    connected: bool,
    last_hello: Option<Instant>,
    last_wait_notice: Option<Instant>,
    bootstrap_pending: u32,
    /// The slave's: its hello nonce for this run. The master's: the nonce of
    /// the last slave hello heard before connecting, echoed in its hellos.
    nonce: u64,
    /// The master's: the nonce of the slave in its run, once connected.
    slave_nonce: Option<u64>,
    /// The master's: when it last told a stray slave to go away.
    last_go_away: Option<Instant>,
    /// The master's verification, once made.
    verification: Option<Verification>,
    ending: Ending,
    outcome: Option<Outcome>,
    progress: super::progress::Progress,
    buf: Vec<u8>,
}

impl Control {
    pub(super) fn new(
        shared: Arc<Shared>,
        config: Config,
        headless: bool,
        progress: bool,
        senders: Senders,
        inbox: Receiver<ControlMsg>,
    ) -> Self {
        let role = shared.role;
        Control {
            shared,
            config,
            role,
            headless,
            senders,
            inbox,
            started: None,
            connected: false,
            last_hello: None,
            last_wait_notice: None,
            bootstrap_pending: 0,
            nonce: 0,
            slave_nonce: None,
            last_go_away: None,
            verification: None,
            ending: Ending::No,
            outcome: None,
            progress: super::progress::Progress::new(progress),
            buf: Vec::with_capacity(256),
        }
    }

    /// Runs until the node's part is over; returns the outcome.
    pub(super) fn run(mut self) -> Outcome {
        while self.outcome.is_none() {
            match self.inbox.recv_timeout(TICK) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail("the node's inbox closed unexpectedly".to_owned());
                }
            }
            self.tick(Instant::now());
        }
        self.progress.finish();
        self.outcome.take().unwrap_or(Outcome::Stopped)
    }

    fn handle(&mut self, msg: ControlMsg) {
        match msg {
            ControlMsg::Command(Command::Start) => self.start(),
            ControlMsg::Command(Command::SetThrottle(t)) => {
                let _ = self.senders.monitor.send(super::MonitorMsg::SetThrottle(t));
            }
            ControlMsg::Command(Command::Stop) => {
                self.send(&Message::Abort {
                    reason: "stopped by the user",
                });
                self.shared.log.push("stopped by the user");
                self.outcome = Some(Outcome::Stopped);
            }
            ControlMsg::Hello { session, hello } => self.on_hello(session, hello),
            ControlMsg::Finish { verified } => self.on_finish(verified),
            ControlMsg::GoAway { nonce } => self.on_go_away(nonce),
            ControlMsg::FinishAck => {
                if let Ending::Finishing { verified, .. } = self.ending {
                    self.shared.log.push("the slave acknowledged the finish");
                    self.outcome = Some(self.finished(verified));
                }
            }
            ControlMsg::PeerAborted(reason) => {
                self.fail(format!(
                    "the {} stopped the run: {reason}",
                    self.role.peer()
                ));
            }
            ControlMsg::PeerState => {
                if self.role == Role::Slave {
                    self.follow_master_phase();
                }
                self.check_progress();
            }
            ControlMsg::Progress => self.check_progress(),
            ControlMsg::BootstrapDelivered(n) => {
                self.bootstrap_pending = self.bootstrap_pending.saturating_sub(n);
                if self.bootstrap_pending == 0 && self.shared.phase() == Phase::Bootstrap {
                    let elapsed = self.phase_elapsed(Phase::Bootstrap);
                    let params = self.config.workload;
                    let bytes = f64::from(params.jobs / 2)
                        * protocol::batch::job_bytes(params.elements_per_job) as f64;
                    self.shared.log.push(format!(
                        "bootstrap done: {} jobs ({:.1} MB) delivered in {:.3} s ({:.0} MB/s)",
                        params.jobs / 2,
                        bytes / 1e6,
                        elapsed.as_secs_f64(),
                        bytes / 1e6 / elapsed.as_secs_f64().max(1e-9)
                    ));
                    self.set_phase(Phase::Processing);
                }
                self.check_progress();
            }
        }
    }

    fn fail(&mut self, why: String) {
        self.shared.log.push(why.clone());
        self.outcome = Some(Outcome::Failed(why));
    }

    fn send(&mut self, message: &Message<'_>) {
        let header = Header {
            session: self.shared.session.load(Ordering::Relaxed),
            seq: self.shared.next_seq(),
        };
        protocol::encode(&header, message, &mut self.buf);
        self.shared.transport.send(&mut self.buf);
    }

    fn peer_address(&self) -> std::net::SocketAddr {
        self.shared.transport.peer()
    }

    fn start(&mut self) {
        if self.started.is_some() {
            return;
        }
        let now = Instant::now();
        self.started = Some(now);
        if self.role == Role::Master {
            self.shared
                .session
                .store(random_nonzero(), Ordering::Relaxed);
            let w = self.config.workload;
            *self.shared.params.lock() = Some(RunParams {
                jobs: w.jobs,
                elements_per_job: w.elements_per_job,
                iterations: w.iterations,
                initial: w.initial,
                addend: w.addend,
                threshold: self.config.policy.threshold,
            });
            *self.shared.results.lock() = Some(ResultStore::new(w.jobs));
            self.shared.log.push(format!(
                "started: {} jobs of {} doubles, {} iterations; waiting for the slave at {}",
                w.jobs,
                w.elements_per_job,
                w.iterations,
                self.peer_address()
            ));
        } else {
            self.nonce = random_nonzero();
            self.shared.log.push(format!(
                "ready to receive; waiting for the master at {}",
                self.peer_address()
            ));
        }
        self.last_wait_notice = Some(now);
        self.send_hello();
        self.shared.wake();
    }

    fn send_hello(&mut self) {
        let params = self.shared.params().unwrap_or(RunParams {
            jobs: 0,
            elements_per_job: 0,
            iterations: 0,
            initial: 0.0,
            addend: 0.0,
            threshold: 0,
        });
        let datagram_bytes = self.config.datagram_bytes;
        let hello = Hello {
            from_master: self.role == Role::Master,
            window_chunks: self.shared.transport.window_chunks(datagram_bytes as usize),
            datagram_bytes,
            params,
            nonce: self.nonce,
        };
        self.send(&Message::Hello(hello));
        self.last_hello = Some(Instant::now());
    }

    fn on_hello(&mut self, session: u64, hello: Hello) {
        if self.started.is_none() {
            // Not started yet: the peer keeps retrying until we are.
            return;
        }
        if hello.from_master == (self.role == Role::Master) {
            self.shared.log.push(format!(
                "ignored a hello from another {} at the peer's address",
                self.role
            ));
            return;
        }
        let ours = self.shared.session.load(Ordering::Relaxed);
        match self.role {
            Role::Master => {
                if let Some(slave_nonce) = self.slave_nonce {
                    if session == 0 && hello.nonce != slave_nonce {
                        self.go_away(hello.nonce);
                    }
                    // Otherwise a late or repeated hello of our own slave.
                } else if session == ours {
                    self.slave_nonce = Some(hello.nonce);
                    self.connect(hello.window_chunks);
                    self.begin_bootstrap();
                } else if session == 0 {
                    // The slave has not heard us yet: answer at once,
                    // echoing its nonce so that it knows the answer is fresh.
                    self.nonce = hello.nonce;
                    self.send_hello();
                } else {
                    self.shared.log.push(format!(
                        "ignored a hello from the slave for another session ({session:#x})"
                    ));
                }
            }
            Role::Slave => {
                if ours == 0 {
                    if session == 0 || hello.nonce != self.nonce {
                        // The master's hellos before it heard us, or a
                        // replay of an earlier run's: wait for the answer.
                        return;
                    }
                    if !valid_params(&hello.params) {
                        self.shared
                            .log
                            .push("ignored a hello from the master with bad parameters");
                        return;
                    }
                    self.shared.session.store(session, Ordering::Relaxed);
                    *self.shared.params.lock() = Some(hello.params);
                    let p = hello.params;
                    self.shared.log.push(format!(
                        "joined the master's run {session:#018x}: {} jobs of {} doubles, {} iterations",
                        p.jobs, p.elements_per_job, p.iterations
                    ));
                    self.connect(hello.window_chunks);
                    self.send_hello();
                } else if session == ours {
                    // Our answer was lost: repeat it.
                    self.send_hello();
                } else {
                    self.shared.log.push(format!(
                        "ignored a hello from the master for another session ({session:#x})"
                    ));
                }
            }
        }
    }

    /// Master: a slave that is not the one in this run said hello (most
    /// likely it was restarted): tell it to go away, at most every
    /// [`GO_AWAY_INTERVAL`].
    fn go_away(&mut self, nonce: u64) {
        let now = Instant::now();
        if self
            .last_go_away
            .is_some_and(|t| now.duration_since(t) < GO_AWAY_INTERVAL)
        {
            return;
        }
        if self.last_go_away.is_none() {
            self.shared.log.push(format!(
                "a slave at {} that is not in this run said hello (restarted?): told it to go away",
                self.peer_address()
            ));
        }
        self.last_go_away = Some(now);
        self.send(&Message::GoAway { nonce });
    }

    /// Slave: the master is in a run with another slave.
    fn on_go_away(&mut self, nonce: u64) {
        if self.role != Role::Slave
            || self.started.is_none()
            || self.connected
            || nonce != self.nonce
        {
            return;
        }
        self.fail(format!(
            "the master at {} is in the middle of a run with another slave (this one was \
             probably restarted), so this slave's session is stale; start it again when that \
             run has ended, or restart the master",
            self.peer_address()
        ));
    }

    fn connect(&mut self, peer_window: u32) {
        self.connected = true;
        self.shared.connected.store(true, Ordering::Relaxed);
        self.shared.mark_heard();
        let _ = self
            .senders
            .transfer
            .send(TransferMsg::PeerWindow(peer_window));
        let _ = self.senders.state.send(StateMsg::LocalChanged);
        self.shared.log.push(format!(
            "connected to the {} at {} (its window: {peer_window} datagrams)",
            self.role.peer(),
            self.peer_address()
        ));
    }

    fn set_phase(&mut self, phase: Phase) {
        let old = self.shared.phase();
        if phase <= old {
            return;
        }
        let now = Instant::now();
        {
            let mut run = self.shared.run.lock();
            if phase == Phase::Bootstrap {
                run.started = Some(now);
            }
            // A phase skipped over (the slave may learn of two at once)
            // starts and ends at the same moment.
            for p in (old as usize + 1)..=(phase as usize) {
                run.phase_started[p].get_or_insert(now);
            }
        }
        self.shared.phase.store(phase as u8, Ordering::Relaxed);
        self.shared.log.push(format!("phase: {}", phase.name()));
        let _ = self.senders.state.send(StateMsg::LocalChanged);
        if phase == Phase::Aggregation && self.role == Role::Slave {
            let _ = self.senders.transfer.send(TransferMsg::Flush);
        }
        self.shared.wake();
    }

    fn phase_elapsed(&self, phase: Phase) -> Duration {
        self.shared.run.lock().phase_started[phase as usize].map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// The master's bootstrap: keep the first half of the jobs, send the
    /// second half to the slave. Neither half is made here: the transfer
    /// manager encodes the slave's jobs from the workload as it sends them,
    /// and the master's own are made as its workers take them.
    fn begin_bootstrap(&mut self) {
        self.set_phase(Phase::Bootstrap);
        let w = self.config.workload;
        let send = w.jobs / 2;
        let keep = w.jobs - send;
        self.shared.run.lock().bootstrap_jobs = send;
        self.bootstrap_pending = send;
        let sent_ids: Vec<u32> = (keep..w.jobs).collect();
        self.shared.log.push(format!(
            "bootstrap: keeping jobs [{}], sending jobs [{}] to the slave",
            format_id_ranges(&(0..keep).collect::<Vec<_>>()),
            format_id_ranges(&sent_ids)
        ));
        if send > 0 {
            self.shared
                .in_flight_jobs
                .fetch_add(send, Ordering::Relaxed);
            let _ = self.senders.transfer.send(TransferMsg::Bootstrap(sent_ids));
        }
        // Made by whoever takes them from the queue, as they are taken.
        let local: Vec<_> = (0..keep).map(Job::unmade).collect();
        self.shared.push_jobs(local, false);
        if send == 0 {
            self.set_phase(Phase::Processing);
        }
    }

    /// Slave: the master's phase is the run's phase.
    fn follow_master_phase(&mut self) {
        let peer = *self.shared.peer.lock();
        if let Some(peer) = peer
            && peer.state.phase > self.shared.phase()
            && peer.state.phase < Phase::Done
        {
            self.set_phase(peer.state.phase);
        }
    }

    /// Master: moves to aggregation when no job waits anywhere, and finishes
    /// when every result is in.
    fn check_progress(&mut self) {
        if self.role != Role::Master || !matches!(self.ending, Ending::No) {
            return;
        }
        let phase = self.shared.phase();
        if phase == Phase::Processing && self.nothing_left_to_start() {
            self.set_phase(Phase::Aggregation);
        }
        let complete = self
            .shared
            .results
            .lock()
            .as_ref()
            .is_some_and(ResultStore::is_complete);
        if complete && phase >= Phase::Bootstrap {
            self.set_phase(Phase::Aggregation);
            self.verify_and_finish();
        }
    }

    /// Master: the slave is lost. From now on nothing is sent to it; the
    /// transfer manager gives up its outbound batches and reclaims every job
    /// lent to the slave whose result has not come back (it owns the record
    /// of lent jobs, so no batch it is still sending can slip past).
    fn reclaim(&mut self, why: String) {
        self.shared.peer_lost.store(true, Ordering::Relaxed);
        self.shared.log.push(why);
        let _ = self.senders.transfer.send(TransferMsg::PeerLost);
        if self.shared.phase() == Phase::Bootstrap {
            // The rest of the bootstrap will never be delivered.
            self.bootstrap_pending = 0;
            self.set_phase(Phase::Processing);
        }
        let _ = self.senders.state.send(StateMsg::LocalChanged);
        self.shared.wake();
    }

    fn nothing_left_to_start(&self) -> bool {
        let local_queue = self.shared.queue.lock().jobs.len();
        if local_queue > 0 || self.shared.in_flight_jobs.load(Ordering::Relaxed) > 0 {
            return false;
        }
        if self.shared.peer_lost.load(Ordering::Relaxed) {
            // Reclaimed jobs are queued before the in-flight count drops.
            return true;
        }
        let Some(peer) = *self.shared.peer.lock() else {
            return false;
        };
        let delivered = self.shared.delivered_to_peer.load(Ordering::Relaxed);
        peer.state.queue == 0 && peer.state.in_flight == 0 && peer.state.jobs_received >= delivered
    }

    fn verify_and_finish(&mut self) {
        let workload = self.config.workload;
        let verification = match self.shared.results.lock().as_ref() {
            Some(store) => store.verify(&workload),
            None => return,
        };
        self.set_phase(Phase::Done);
        if verification.verified {
            self.shared.log.push(format!(
                "verified: all {} jobs present once, every element equals {:.9}",
                workload.jobs, verification.expected
            ));
        } else {
            self.shared.log.push(format!(
                "verification FAILED: {} missing, {} duplicated, {} wrong elements",
                verification.missing.len(),
                verification.duplicated.len(),
                verification.wrong_elements
            ));
        }
        let verified = verification.verified;
        self.verification = Some(verification);
        if self.shared.peer_lost.load(Ordering::Relaxed) {
            // Nobody to tell.
            self.outcome = Some(self.finished(verified));
            return;
        }
        let now = Instant::now();
        self.ending = Ending::Finishing {
            verified,
            since: now,
            last_sent: now,
        };
        self.send(&Message::Finish { verified });
    }

    fn on_finish(&mut self, verified: bool) {
        if self.role != Role::Slave || self.shared.session.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.send(&Message::FinishAck);
        if matches!(self.ending, Ending::No) {
            self.set_phase(Phase::Done);
            self.shared.log.push(format!(
                "the master has every result ({}); exiting",
                if verified {
                    "verified"
                } else {
                    "verification failed"
                }
            ));
            self.ending = Ending::Lingering {
                verified,
                until: Instant::now() + SLAVE_LINGER,
            };
        }
    }

    fn finished(&self, verified: bool) -> Outcome {
        let report = self
            .verification
            .as_ref()
            .map(|v| Box::new(Report::build(&self.shared, &self.config, v)));
        Outcome::Finished { verified, report }
    }

    fn tick(&mut self, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        match self.ending {
            Ending::Finishing {
                verified,
                since,
                last_sent,
            } => {
                if now.duration_since(since) >= FINISH_PATIENCE {
                    self.shared.log.push(
                        "the slave did not acknowledge the finish; it will notice the master is gone",
                    );
                    self.outcome = Some(self.finished(verified));
                } else if now.duration_since(last_sent) >= FINISH_INTERVAL {
                    self.send(&Message::Finish { verified });
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
                    self.outcome = Some(self.finished(verified));
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
        } else if !self.shared.peer_lost.load(Ordering::Relaxed)
            && let Some(silence) = self.shared.silence()
        {
            let limit = Duration::from_millis(self.config.peer_timeout_ms);
            if silence > limit {
                let why = format!(
                    "peer lost: nothing heard from the {} at {} for {:.1} s",
                    self.role.peer(),
                    self.peer_address(),
                    silence.as_secs_f64()
                );
                match self.role {
                    Role::Slave => {
                        self.fail(format!("{why}; stopping (the master keeps the run)"));
                        return;
                    }
                    Role::Master => self.reclaim(why),
                }
            }
        }
        if self.role == Role::Master {
            self.check_progress();
        }
        self.progress.tick(&self.shared, now);
    }

    fn tick_waiting(&mut self, now: Instant, started: Instant) {
        if self
            .last_hello
            .is_none_or(|t| now.duration_since(t) >= HELLO_INTERVAL)
        {
            self.send_hello();
        }
        let waited = now.duration_since(started);
        let limit = Duration::from_millis(self.config.connect_timeout_ms);
        if self.role == Role::Master && self.headless && waited >= limit {
            self.fail(format!(
                "no slave answered at {} within {} s; start it with `loadbal --role slave`",
                self.peer_address(),
                limit.as_secs_f64()
            ));
            return;
        }
        if self
            .last_wait_notice
            .is_none_or(|t| now.duration_since(t) >= WAIT_NOTICE_INTERVAL)
        {
            self.last_wait_notice = Some(now);
            self.shared.log.push(format!(
                "waiting for the {} at {} ({} s so far)",
                self.role.peer(),
                self.peer_address(),
                waited.as_secs()
            ));
        }
    }
}

/// A random nonzero number for a session id or a hello nonce. If the
/// system's generator fails, the clock and the process id stand in: these
/// only have to differ between runs, and authentication never rests on them.
fn random_nonzero() -> u64 {
    let n = getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ u64::from(std::process::id()) << 32
    });
    n.max(1)
}

/// The master's parameters must describe a workload this node could check.
fn valid_params(p: &RunParams) -> bool {
    p.workload().validate().is_ok()
}
