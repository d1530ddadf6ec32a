//! What a node's threads share: the job queue (with its condition variable),
//! the results, a few counters as atomics, the peer's latest state, the
//! event log and the run record. Each piece has one writer or a short lock;
//! nothing here is held across a computation or a socket call.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::Role;
use crate::protocol::{Phase, RunParams, State};
use crate::transport::Transport;
use crate::workload::{Insert, Job, JobId, ResultStore};

/// An `f64` stored in an atomic.
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    /// A new value.
    pub fn new(v: f64) -> Self {
        AtomicF64(AtomicU64::new(v.to_bits()))
    }
    /// Reads it.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    /// Writes it.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
}

/// The job queue and the counters that must change together with it, so a
/// state message never shows a job in two places at once.
#[derive(Debug, Default)]
pub struct QueueState {
    /// Jobs not started, oldest first. Workers take from the front; the
    /// adaptor gives away from the back.
    pub jobs: VecDeque<Job>,
    /// Jobs being computed.
    pub busy: u32,
    /// Jobs computed on this node.
    pub done: u32,
    /// Jobs received from the peer (bootstrap and transfers).
    pub received: u32,
}

/// One entry of the event log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Time since the node started.
    pub at: Duration,
    /// What happened.
    pub text: String,
}

/// Most log entries kept in memory; older ones are dropped.
pub const LOG_CAPACITY: usize = 5000;

/// A bounded, timestamped log of what the node did, echoed to stderr when
/// running headless.
#[derive(Debug)]
pub struct EventLog {
    /// The kept entries, and how many were ever pushed.
    entries: Mutex<(VecDeque<LogEntry>, u64)>,
    echo: bool,
    /// Stderr is a terminal: clear a progress bar's line before a log line.
    terminal: bool,
    prefix: String,
    epoch: Instant,
}

impl EventLog {
    fn new(role: Role, echo: bool, epoch: Instant) -> Self {
        EventLog {
            entries: Mutex::new((VecDeque::new(), 0)),
            echo,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            prefix: role.name().to_owned(),
            epoch,
        }
    }

    /// Records an event.
    pub fn push(&self, text: impl Into<String>) {
        let entry = LogEntry {
            at: self.epoch.elapsed(),
            text: text.into(),
        };
        if self.echo {
            crate::say!(
                "{}[{:<6} {:>8.3}s] {}",
                if self.terminal { "\r\x1b[K" } else { "" },
                self.prefix,
                entry.at.as_secs_f64(),
                entry.text
            );
        }
        let mut guard = self.entries.lock();
        let (entries, total) = &mut *guard;
        if entries.len() == LOG_CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
        *total += 1;
    }

    /// A copy of the entries, oldest first.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.entries.lock().0.iter().cloned().collect()
    }

    /// The entries pushed after the first `seen` ones (those still kept),
    /// and the new count to pass next time: a viewer copies only what is new.
    pub fn since(&self, seen: u64) -> (Vec<LogEntry>, u64) {
        let guard = self.entries.lock();
        let (entries, total) = &*guard;
        let first_kept = total - entries.len() as u64;
        let skip = seen.saturating_sub(first_kept) as usize;
        (entries.iter().skip(skip).cloned().collect(), *total)
    }
}

/// The peer's latest state and when it arrived.
#[derive(Debug, Clone, Copy)]
pub struct PeerView {
    /// The state message.
    pub state: State,
    /// Its sequence number (newest wins).
    pub seq: u64,
    /// When it arrived.
    pub at: Instant,
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

/// What the run did, for the report and the window.
#[derive(Debug, Default)]
pub struct RunRecord {
    /// When the bootstrap began (the run's time zero).
    pub started: Option<Instant>,
    /// When each phase began, indexed by `Phase as usize`.
    pub phase_started: [Option<Instant>; 5],
    /// Jobs the master sent at bootstrap.
    pub bootstrap_jobs: u32,
    /// Policy transfers, in the order they completed.
    pub transfers: Vec<TransferRecord>,
    /// Results received from the peer (the master's count of the slave's jobs).
    pub results_received: u32,
    /// Master: jobs taken back from a lost slave and computed here.
    pub jobs_reclaimed: u32,
    /// Seconds since the run started when the peer was declared lost.
    pub peer_lost_at_s: Option<f64>,
}

/// Everything a node's threads share.
pub struct Shared {
    /// This node's role.
    pub role: Role,
    /// When the node was created.
    pub epoch: Instant,
    /// Set once to stop every thread.
    pub stop: AtomicBool,
    /// The job queue.
    pub queue: Mutex<QueueState>,
    /// Signalled when jobs arrive or the node stops.
    pub queue_cv: Condvar,
    /// Share of each period the workers compute.
    pub throttle: AtomicF64,
    /// Whole-system CPU use, percent.
    pub cpu_system: AtomicF64,
    /// This process's CPU use, percent of one core.
    pub cpu_process: AtomicF64,
    /// Measured jobs per second.
    pub rate: AtomicF64,
    /// The phase (`Phase as u8`).
    pub phase: AtomicU8,
    /// True once the peer has answered the handshake.
    pub connected: AtomicBool,
    /// The run's session id; 0 before it is known.
    pub session: AtomicU64,
    /// The last sequence number used on this node's socket.
    pub seq: AtomicU64,
    /// Nanoseconds since `epoch` when the peer was last heard; 0 never.
    pub last_heard_ns: AtomicU64,
    /// Jobs in this node's unacknowledged outbound job batches.
    pub in_flight_jobs: AtomicU32,
    /// Jobs this node has delivered to the peer (bootstrap and transfers).
    pub delivered_to_peer: AtomicU32,
    /// Master: the jobs handed to the slave (sent or being sent) whose
    /// results have not come back, to reclaim if the slave is lost.
    pub lent: Mutex<BTreeSet<JobId>>,
    /// Set when the peer was declared lost: nothing more is sent to it.
    pub peer_lost: AtomicBool,
    /// The peer's latest state.
    pub peer: Mutex<Option<PeerView>>,
    /// The run's parameters (the slave learns them from the master).
    pub params: Mutex<Option<RunParams>>,
    /// The master's results, indexed by job id.
    pub results: Mutex<Option<ResultStore>>,
    /// The slave's computed jobs waiting to go to the master.
    pub ready_results: Mutex<Vec<Job>>,
    /// The event log.
    pub log: EventLog,
    /// What the run did.
    pub run: Mutex<RunRecord>,
    /// The socket.
    pub transport: Transport,
    /// Called after anything a viewer would want to redraw.
    pub waker: Arc<dyn Fn() + Send + Sync>,
}

impl Shared {
    /// Creates the shared state of a node that owns `transport`.
    pub fn new(
        role: Role,
        throttle: f64,
        transport: Transport,
        echo_log: bool,
        waker: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        let epoch = Instant::now();
        Shared {
            role,
            epoch,
            stop: AtomicBool::new(false),
            queue: Mutex::new(QueueState::default()),
            queue_cv: Condvar::new(),
            throttle: AtomicF64::new(throttle),
            cpu_system: AtomicF64::new(0.0),
            cpu_process: AtomicF64::new(0.0),
            rate: AtomicF64::new(0.0),
            phase: AtomicU8::new(Phase::Idle as u8),
            connected: AtomicBool::new(false),
            session: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            last_heard_ns: AtomicU64::new(0),
            in_flight_jobs: AtomicU32::new(0),
            delivered_to_peer: AtomicU32::new(0),
            lent: Mutex::new(BTreeSet::new()),
            peer_lost: AtomicBool::new(false),
            peer: Mutex::new(None),
            params: Mutex::new(None),
            results: Mutex::new(None),
            ready_results: Mutex::new(Vec::new()),
            log: EventLog::new(role, echo_log, epoch),
            run: Mutex::new(RunRecord::default()),
            transport,
            waker,
        }
    }

    /// True once the node is stopping.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Tells every thread to stop and wakes the workers.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _guard = self.queue.lock();
        self.queue_cv.notify_all();
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed)).unwrap_or(Phase::Idle)
    }

    /// The run's parameters, once known.
    pub fn params(&self) -> Option<RunParams> {
        *self.params.lock()
    }

    /// The next sequence number for a datagram from this node.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records that the peer was heard now.
    pub fn mark_heard(&self) {
        let ns = self.epoch.elapsed().as_nanos() as u64;
        self.last_heard_ns.store(ns.max(1), Ordering::Relaxed);
    }

    /// How long since the peer was last heard; `None` if never.
    pub fn silence(&self) -> Option<Duration> {
        match self.last_heard_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(ns)),
            ),
        }
    }

    /// Adds jobs at the back of the queue. `from_peer` counts them as received.
    pub fn push_jobs(&self, jobs: Vec<Job>, from_peer: bool) {
        let mut q = self.queue.lock();
        if from_peer {
            q.received += jobs.len() as u32;
        }
        q.jobs.extend(jobs);
        self.queue_cv.notify_all();
    }

    /// Blocks until a job is available (taking it and counting it busy) or
    /// the node stops (`None`). Wakes every `poll` to re-check. An unmade
    /// job is made here, outside the queue's lock.
    pub fn take_job(&self, poll: Duration) -> Option<Job> {
        let mut q = self.queue.lock();
        let mut job = loop {
            if self.stopping() {
                return None;
            }
            if let Some(job) = q.jobs.pop_front() {
                q.busy += 1;
                break job;
            }
            self.queue_cv.wait_for(&mut q, poll);
        };
        drop(q);
        self.make_ready(std::slice::from_mut(&mut job));
        Some(job)
    }

    /// Takes up to `n` jobs nobody has started, from the back of the queue.
    pub fn take_for_transfer(&self, n: u32) -> Vec<Job> {
        let mut q = self.queue.lock();
        let n = (n as usize).min(q.jobs.len());
        let at = q.jobs.len() - n;
        let mut jobs: Vec<Job> = q.jobs.drain(at..).collect();
        drop(q);
        jobs.sort_unstable_by_key(|j| j.id);
        self.make_ready(&mut jobs);
        jobs
    }

    /// Makes the data of unmade jobs (see [`Job::unmade`]).
    fn make_ready(&self, jobs: &mut [Job]) {
        if let Some(params) = self.params() {
            let workload = params.workload();
            for job in jobs {
                job.make_ready(&workload);
            }
        }
    }

    /// Records a finished job: the master stores the result, the slave keeps
    /// it for the master. A job counts as this node's only if its result is
    /// the one kept.
    pub fn finish_job(&self, job: Job) {
        let id = job.id;
        let inserted = match self.role {
            Role::Master => match self.results.lock().as_mut() {
                Some(store) => store.insert(id, job.data),
                None => Insert::OutOfRange,
            },
            Role::Slave => {
                self.ready_results.lock().push(job);
                Insert::Stored
            }
        };
        match inserted {
            Insert::Stored => {}
            Insert::Late => self.log.push(format!(
                "job {id}: the lost slave's result came back first; this one is dropped"
            )),
            Insert::Duplicate | Insert::OutOfRange => self.log.push(format!(
                "job {id}: result not stored (duplicate or unknown id)"
            )),
        }
        let mut q = self.queue.lock();
        q.busy -= 1;
        if inserted == Insert::Stored {
            q.done += 1;
        }
    }

    /// Master: jobs came back from the slave (as results or moved jobs):
    /// they are no longer lent.
    pub fn returned(&self, ids: &[JobId]) {
        if self.role == Role::Master {
            let mut lent = self.lent.lock();
            for id in ids {
                lent.remove(id);
            }
        }
    }

    /// Master: true when the job's result is already held, so a worker
    /// about to compute a reclaimed job can skip it. Only reclaimed jobs can
    /// have one, and only once the slave was lost: before that the check
    /// costs one atomic load, not the results' lock.
    pub fn result_held(&self, id: JobId) -> bool {
        self.role == Role::Master
            && self.peer_lost.load(Ordering::Relaxed)
            && self
                .results
                .lock()
                .as_ref()
                .is_some_and(|store| store.contains(id))
    }

    /// A worker gives back a job it took but will not compute.
    pub fn skip_job(&self) {
        self.queue.lock().busy -= 1;
    }

    /// This node's state as the state manager sends it.
    pub fn local_state(&self) -> State {
        let q = self.queue.lock();
        let (queue, busy, done, received) = (q.jobs.len() as u32, q.busy, q.done, q.received);
        drop(q);
        State {
            phase: self.phase(),
            queue,
            jobs_done: done,
            jobs_received: received,
            in_flight: self.in_flight_jobs.load(Ordering::Relaxed),
            busy: busy.min(u32::from(u16::MAX)) as u16,
            workers: 0,
            throttle: self.throttle.get() as f32,
            cpu_system: self.cpu_system.get() as f32,
            cpu_process: self.cpu_process.get() as f32,
            rate: self.rate.get() as f32,
        }
    }

    /// Seconds since the run started (0 before).
    pub fn run_seconds(&self) -> f64 {
        self.run
            .lock()
            .started
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    /// Wakes whoever is viewing the node.
    pub fn wake(&self) {
        (self.waker)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_hands_out_only_what_is_new_and_stays_bounded() {
        let log = EventLog::new(Role::Master, false, Instant::now());
        log.push("a");
        log.push("b");
        let (first, seen) = log.since(0);
        assert_eq!(
            first.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        log.push("c");
        let (next, seen) = log.since(seen);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].text, "c");
        for i in 0..LOG_CAPACITY + 10 {
            log.push(format!("{i}"));
        }
        assert_eq!(log.entries().len(), LOG_CAPACITY);
        // A viewer that fell behind gets what is still kept.
        let (rest, total) = log.since(seen);
        assert_eq!(rest.len(), LOG_CAPACITY);
        assert_eq!(total, 3 + LOG_CAPACITY as u64 + 10);
        assert_eq!(rest.last().unwrap().text, format!("{}", LOG_CAPACITY + 9));
    }
}
