//! The node's core: one sans-IO state machine per node, in the style of
//! quinn-proto's `Connection`. It owns the session (handshake, phases,
//! finish, liveness), the job book (every job's state, the queue, the
//! master's results), the transfer endpoint, the peer's view and the
//! transfer policy. It opens no socket, reads no clock, spawns no thread
//! and never sleeps: time comes in as `now`, randomness in
//! [`Input::Start`].
//!
//! - inputs: [`NodeCore::handle`] (commands, finished jobs, CPU samples,
//!   threads ending), [`NodeCore::handle_datagram`] (an authentic datagram's
//!   bytes, tag removed), [`NodeCore::handle_timeout`];
//! - outputs: [`NodeCore::poll_transmit`] (datagrams to seal and send),
//!   [`NodeCore::poll_work`] (jobs for workers), [`NodeCore::poll_event`]
//!   (log lines, phase and throttle changes), [`NodeCore::poll_timeout`]
//!   (when to call `handle_timeout` next) and [`NodeCore::end`].
//!
//! The five components of the assignment are its parts, each with its own
//! state: the session (`Session` in `session.rs`, its handshake in
//! `hello.rs`, its end in `ending.rs`), the state manager and the adaptor
//! (the peer's view and the policy: `Adaptor` in `state.rs`), and the
//! transfer manager in `jobs.rs` (batches in and out; `refuse.rs` for
//! batches refused, `arrivals.rs` for jobs that come during the run). The
//! worker and the hardware monitor are spokes outside it. Every job's
//! whereabouts are the job book's (`book.rs`): the parts decide when a job
//! moves, the book moves it and checks that its accounts agree.
//! `watchdog.rs` ends a run in which nothing moves; `inspect.rs` has the
//! getters.

mod admit;
mod arrivals;
mod book;
mod ending;
mod event;
mod hello;
mod inspect;
mod jobs;
pub mod ledger;
mod pieces;
mod refuse;
mod session;
mod state;
pub mod timeline;
mod watchdog;

use std::collections::VecDeque;
use std::time::Instant;

pub use admit::{Admission, admit};
pub use book::WORKER_DEPTH;
pub use event::{End, Event, Failure, Input, Rejection, Work};
pub use ledger::{JobState, Ledger};
pub use refuse::MAX_REFUSALS_IN_A_ROW;
use session::{Ending, Session};
use state::Adaptor;
pub use timeline::{
    BatchSpan, CpuSample, JobCost, JobSpan, Origin, PathEstimate, QueueSample, RunInfo, Timeline,
};
pub use watchdog::MIN_WATCHDOG;

use crate::config::{Config, Role};
use crate::ids::JobId;
use crate::protocol::{self, Header, Message, Phase};
use crate::transfer::{Endpoint, TransferConfig};

/// How a core is set up, besides the config.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// Chunks this node can take in flight (from its socket's buffer).
    pub window_chunks: u32,
    /// A headless master gives up after `connect_timeout_ms` without its slave.
    pub headless: bool,
    /// For the benchmark only: the bootstrap carries random values (which
    /// do not compress) instead of the workload's; such a run cannot verify.
    pub random_bootstrap: bool,
    /// This machine's memory, bytes (0: unknown): jobs added during a run
    /// must fit in it, as the config's workload must.
    pub memory_bytes: u64,
    /// The digits and command kinds: how this node runs their jobs (and,
    /// on the master, reads their input and keeps their output). None for
    /// the vector kind.
    pub work: Option<std::sync::Arc<crate::workload::kind::ByteWork>>,
}

/// What the core counts of datagrams and batches, for the report and the
/// window (what is sent and received on the socket, the socket counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams accepted.
    pub datagrams_received: u64,
    /// Rejected, by reason.
    pub rejected: crate::transport::Rejected,
    /// Batches sent (jobs, bootstrap jobs or results).
    pub batches_sent: u64,
    /// Of them, the ones sent compressed.
    pub batches_compressed: u64,
    /// Their bytes before compression.
    pub batch_raw_bytes: u64,
    /// Their bytes as sent.
    pub batch_wire_bytes: u64,
    /// Requests for jobs this node sent (receiver-initiated policies).
    pub requests_sent: u64,
    /// Requests for jobs the peer sent.
    pub requests_received: u64,
    /// Batches of the peer's this node's core could not take, and refused.
    pub batches_refused: u64,
}

/// A transfer of jobs by the policy, as the report lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRecord {
    /// Seconds since the run started.
    pub at_s: f64,
    /// The sending role.
    pub from: Role,
    /// Jobs moved.
    pub jobs: u32,
}

/// The peer's latest state and when it arrived.
#[derive(Debug, Clone, Copy)]
pub struct PeerView {
    /// The state message.
    pub state: protocol::State,
    /// Its sequence number (newest wins).
    pub seq: u64,
    /// When it arrived.
    pub at: Instant,
}

/// One node's logic. See the module documentation.
pub struct NodeCore {
    role: Role,
    config: Config,
    settings: CoreSettings,
    epoch: Instant,

    /// The handshake, the phases, the end, the peer's liveness.
    session: Session,

    // The jobs: where each one is, and the one way to move one.
    book: book::JobBook,
    results_waiting_since: Option<Instant>,
    flush_results: bool,
    transfers: Vec<TransferRecord>,
    timeline: Timeline,
    /// The run's jobs: those present and those arriving, and the next of
    /// this node's arrivals.
    schedule: crate::arrivals::Schedule,
    next_arrival: usize,
    /// Master, its slave lost: the next of the slave's arrivals it takes
    /// on itself.
    adopted: Option<usize>,
    /// Master: when each job added by hand (Add jobs) came, run seconds,
    /// from the first id past the schedule.
    added_at: Vec<f64>,

    // The transfer manager.
    endpoint: Endpoint,
    batch_jobs: usize,
    transfer_jobs: usize,

    // The state manager and the adaptor.
    adaptor: Adaptor,
    throttle: f64,
    cpu: (f64, f64),
    /// True once the hardware monitor's first sample came.
    cpu_measured: bool,

    /// Ends a run in which nothing moves.
    watchdog: watchdog::Watchdog,
    /// Refusals in a row, and the fault injection's.
    refusals: refuse::Refusals,

    /// The digits and command kinds: attempts and failures.
    pieces: pieces::PieceBook,

    // Outputs.
    control: VecDeque<Message<'static>>,
    events: VecDeque<Event>,
    counters: Counters,
}

/// The data a bootstrap or results batch aims to carry.
const BATCH_BYTES: usize = 2 << 20;

/// The largest batch a policy transfer makes (the receiver's cap on a
/// decompressed batch).
pub const MAX_TRANSFER_BYTES: usize = protocol::batch::MAX_BATCH_DATA_BYTES;

impl NodeCore {
    /// A core for `role` under `config`, created at `now`.
    pub fn new(role: Role, config: &Config, settings: CoreSettings, now: Instant) -> Self {
        let me = config.node(role);
        let datagram_bytes = config.datagram_bytes as usize;
        let endpoint_cfg = TransferConfig::new(
            datagram_bytes - protocol::CHUNK_OVERHEAD - crate::auth::TAG_BYTES,
            settings.window_chunks,
        );
        let job_bytes = match &settings.work {
            None => protocol::batch::job_bytes(config.workload.elements_per_job),
            Some(work) => work.mean_piece_bytes().map_or_else(
                || pieces::typical_piece_bytes(&config.workload),
                |b| usize::try_from(b).unwrap_or(usize::MAX),
            ),
        };
        let threshold = config.policy.threshold();
        let policy = crate::policy::by_name(&config.policy.transfer, threshold)
            .unwrap_or_else(|| Box::new(crate::policy::SenderInitiated::new(threshold)));
        NodeCore {
            role,
            config: config.clone(),
            epoch: now,
            session: Session::new(),
            book: book::JobBook::new(role, me.workers),
            results_waiting_since: None,
            flush_results: false,
            transfers: Vec::new(),
            timeline: Timeline::default(),
            schedule: crate::arrivals::Schedule::default(),
            next_arrival: 0,
            adopted: None,
            added_at: Vec::new(),
            // Until the peer's hello says otherwise, a window that fits any socket.
            endpoint: Endpoint::new(endpoint_cfg, 32),
            // About 2 MiB of data per batch (8 reference jobs), whole jobs.
            batch_jobs: ((BATCH_BYTES + job_bytes / 2) / job_bytes).clamp(1, 64),
            transfer_jobs: (MAX_TRANSFER_BYTES / job_bytes).max(1),
            adaptor: Adaptor {
                peer: None,
                next_state: None,
                state_due: false,
                rate: state::RateMeter::new(now),
                capacity: state::CapacityMeter::default(),
                requested: 0,
                request_expires: None,
                departure_due: false,
                evaluate_due: false,
                paused_waiting: false,
                link_rate: 0.0,
                policy,
            },
            throttle: me.throttle,
            cpu: (0.0, 0.0),
            cpu_measured: false,
            watchdog: watchdog::Watchdog::default(),
            refusals: refuse::Refusals::default(),
            pieces: pieces::PieceBook::default(),
            control: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            settings,
        }
    }

    // ----- Inputs -----

    /// Handles one input.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Start { random } => self.start(now, random),
            Input::SetThrottle(t) => self.set_throttle(now, t),
            Input::AddJobs(n) => self.add_jobs(now, n),
            Input::Stop => {
                if self.session.end.is_none() {
                    self.send_control(Message::Abort {
                        reason: "stopped by the user",
                    });
                    self.log(now, "stopped by the user");
                    self.session.end = Some(End::Stopped);
                }
            }
            Input::JobDone {
                worker,
                job,
                started,
                preparing,
                computing,
            } => self.job_done(
                now,
                worker,
                job,
                started,
                JobCost {
                    prepare_s: preparing.as_secs_f64(),
                    compute_s: computing.as_secs_f64(),
                },
            ),
            Input::BadTags { total } => self.note_bad_tags(now, total),
            Input::Cpu { system, process } => {
                self.cpu = (system, process);
                self.cpu_measured = true;
                if self.session.phase_started[Phase::Bootstrap as usize].is_some()
                    && self.session.end.is_none()
                {
                    self.timeline.cpu_sample(CpuSample {
                        at_s: self.run_seconds(now),
                        node: process as f32,
                        system: system as f32,
                    });
                }
            }
            Input::ThreadEnded { name, panicked } => {
                if self.session.end.is_none() {
                    let failure = if panicked {
                        Failure::Panicked { name }
                    } else {
                        Failure::ThreadEnded { name }
                    };
                    self.fail(now, failure);
                }
            }
        }
        self.process(now);
    }

    /// Handles an authentic datagram (its tag checked and removed).
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        let Ok((header, message)) = protocol::decode(bytes) else {
            self.count_rejection(Rejection::Malformed);
            return;
        };
        let current = match admit(self.session.id, &header, &message, &mut self.session.replay) {
            Admission::Current => true,
            Admission::Handshake => false,
            Admission::Stale => {
                self.count_rejection(Rejection::Stale);
                return;
            }
            Admission::Replayed => {
                self.count_rejection(Rejection::Replayed);
                return;
            }
        };
        self.counters.datagrams_received += 1;
        if current && self.session.connected {
            self.session.last_heard = Some(now);
        }
        match message {
            Message::Hello(hello) => self.on_hello(now, header.session, hello),
            Message::State(state) => self.on_peer_state(now, header.seq, state),
            Message::Chunk(chunk) => self.endpoint.handle_chunk(now, &chunk),
            Message::Ack(ack) => self.endpoint.handle_ack(now, &ack),
            Message::Finish { verified } => self.on_finish(now, verified),
            Message::FinishAck => self.on_finish_ack(now),
            Message::Bye => self.on_bye(now),
            Message::Abort { reason } => self.on_abort(now, reason),
            Message::GoAway { nonce } => self.on_go_away(now, nonce),
            Message::Request { jobs } => self.on_request(now, jobs),
        }
        self.process(now);
    }

    /// Acts on every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.tick(now);
        self.process(now);
    }

    // ----- Outputs -----

    /// The next datagram to send, encoded into `buf` (the caller seals and
    /// sends it); false when there is none.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        let message = match self.control.pop_front() {
            Some(message) => message,
            None if self.session.id == 0 || self.session.peer_lost || !self.session.connected => {
                return false;
            }
            None => match self.endpoint.poll_transmit(now) {
                Some(message) => message,
                None => return false,
            },
        };
        self.session.seq += 1;
        let header = Header {
            session: self.session.id,
            seq: self.session.seq,
        };
        protocol::encode(&header, &message, buf);
        true
    }

    /// The next job for a worker that has room for one. None while the
    /// throttle is 0: a paused node starts nothing, so its policy can give
    /// every job away.
    pub fn poll_work(&mut self) -> Option<Work> {
        let workload = self.session.params?.workload();
        if self.session.end.is_some() || self.throttle <= 0.0 {
            return None;
        }
        let (worker, job) = self.book.take_work()?;
        Some(Work {
            worker,
            job,
            workload,
            pieces: self.settings.work.clone(),
        })
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called;
    /// `None` while nothing is timed.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.session.end.is_some() {
            return None;
        }
        let mut next = self.endpoint.poll_timeout();
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        at(self.session_deadline());
        at(self.adaptor.next_state);
        at(self.next_arrival_at());
        at(self.adaptor.request_expires);
        at(self
            .results_waiting_since
            .map(|t| t + jobs::RESULTS_MAX_WAIT));
        at(self.watchdog_deadline());
        next
    }

    /// How the node's part ended, once it has.
    pub fn end(&self) -> Option<&End> {
        self.session.end.as_ref()
    }

    // ----- Helpers shared by the parts -----

    /// Jobs waiting in the queue (not given to a worker).
    fn queued(&self) -> u32 {
        self.book.queued()
    }

    fn log(&mut self, now: Instant, text: impl Into<String>) {
        self.events.push_back(Event::Log {
            at: now.saturating_duration_since(self.epoch),
            text: text.into(),
            detail: false,
        });
    }

    /// A log line that only a verbose reader wants (every batch of the
    /// bootstrap and the results, with its job ids): the window shows it,
    /// a headless node prints it only with `-v`.
    fn log_detail(&mut self, now: Instant, text: impl Into<String>) {
        self.events.push_back(Event::Log {
            at: now.saturating_duration_since(self.epoch),
            text: text.into(),
            detail: true,
        });
    }

    fn send_control(&mut self, message: Message<'static>) {
        self.control.push_back(message);
    }

    fn fail(&mut self, now: Instant, failure: Failure) {
        if self.session.end.is_some() {
            return;
        }
        self.log(now, failure.to_string());
        // A peer still in the run hears of it at once, rather than after
        // its time-out; one that stopped the run itself needs no answer.
        if self.session.connected
            && !self.session.peer_lost
            && !matches!(failure, Failure::PeerAborted { .. })
        {
            self.send_control(Message::Abort {
                reason: "it failed; its log says why",
            });
        }
        self.session.end = Some(End::Failed(failure));
        self.session.failed_at = Some(now);
    }

    fn count_rejection(&mut self, why: Rejection) {
        let r = &mut self.counters.rejected;
        match why {
            Rejection::UnknownSource => r.unknown_source += 1,
            Rejection::Unauthentic => r.unauthentic += 1,
            Rejection::Malformed => r.malformed += 1,
            Rejection::Stale => r.stale_session += 1,
            Rejection::Replayed => r.replayed += 1,
        }
    }

    /// Everything that follows an input: batches delivered or received,
    /// the bootstrap fed, results sent, the policy asked, progress checked,
    /// a state sent when due.
    fn process(&mut self, now: Instant) {
        if self.session.end.is_some() {
            return;
        }
        self.drain_endpoint(now);
        self.admit_arrivals(now);
        if self.role == Role::Master && self.session.phase == Phase::Bootstrap {
            // Before the next batch is encoded: the policy may keep it.
            self.evaluate_bootstrap(now);
        }
        self.feed_bootstrap(now);
        self.send_ready_results(now);
        if self.adaptor.departure_due {
            self.adaptor.departure_due = false;
            self.departed(now);
        }
        if self.adaptor.evaluate_due {
            self.adaptor.evaluate_due = false;
            self.evaluate(now);
        }
        self.check_progress(now);
        if self.adaptor.state_due {
            self.adaptor.state_due = false;
            self.send_state();
            self.evaluate(now);
        }
        self.sample_queue(now, false);
        self.watch(now);
        #[cfg(debug_assertions)]
        if let Err(broken) = self.check_invariants() {
            panic!("{broken}");
        }
    }

    /// The job accounting's invariants (see `JobBook::check` in `book.rs`),
    /// checked after every step in debug builds and by the swarm after
    /// every step of every run; a broken one is named.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.book
            .check()
            .map_err(|broken| format!("{} invariant: {broken}", self.role))
    }

    /// Adds a queue sample to the timeline once the run has started;
    /// `force` takes it however soon after the last (the run's end).
    fn sample_queue(&mut self, now: Instant, force: bool) {
        if self.session.phase_started[Phase::Bootstrap as usize].is_some() {
            let (at_s, queue) = (self.run_seconds(now), self.queued());
            self.timeline
                .sample(at_s, queue, self.book.in_flight(), force);
        }
    }
}

/// Jobs `[from, to)` as a list.
fn id_range(from: u32, to: u32) -> Vec<JobId> {
    (from..to).collect()
}

#[cfg(test)]
mod tests;
