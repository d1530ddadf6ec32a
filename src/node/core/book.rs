//! The job book: where every job of the run is, as this node sees it, and
//! the one way to move one. It owns the ledger (each job's state), the
//! queue, what each worker holds, the master's bootstrap not sent yet, our
//! batches on their way, the slave's results waiting for a batch, the
//! master's results, and the counts the state, the report and the
//! watchdog read. Its methods are the only moves a job can make; each
//! keeps every structure in step, and [`JobBook::check`] says whether they
//! agree (after every step in debug builds, and in the swarm).
//!
//! It does no I/O and keeps no time of its own: the core decides when a
//! job moves (the policy, the endpoint, the session) and records the
//! timeline and the log; the book does the moving.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::{JobState, Ledger};
use crate::ids::Role;
use crate::protocol::BatchKind;
use crate::workload::{Insert, Job, JobId, ResultStore};

/// Jobs a worker holds at once. One: a second one held back would be out
/// of the policy's reach (measured: a run with a slave at 10 % took 35 %
/// longer with two), while the round trip to the core between two jobs
/// costs microseconds against a job's milliseconds.
pub const WORKER_DEPTH: u32 = 1;

/// An outbound batch of ours, the jobs in it, and when and how big it
/// went (for the link's measured rate).
#[derive(Debug)]
pub(super) struct Outbound {
    pub(super) kind: BatchKind,
    pub(super) ids: Vec<JobId>,
    pub(super) sent_at: Instant,
    pub(super) wire_bytes: usize,
}

/// What became of a job a worker finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finished {
    /// It was not computing here any more (a pause put it back in the
    /// queue, or it moved on): dropped.
    NotHere,
    /// Master: its result is held.
    Stored,
    /// Master: the lost slave's result came back first; dropped.
    Late,
    /// Master: a duplicate or an unknown id; not stored.
    NotStored,
    /// Slave: computed; its result waits for a batch to the master.
    Computed,
}

impl Finished {
    /// True when this result is the one the run keeps.
    pub(super) fn kept(self) -> bool {
        matches!(self, Finished::Stored | Finished::Computed)
    }
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct JobBook {
    role: Role,
    ledger: Ledger,
    /// Queued jobs in the order workers take them; an entry whose job left
    /// the queued state by another way (a reclaimed job whose late result
    /// came) stays until it is reached, counted in `stale`.
    queue: VecDeque<Job>,
    stale: u32,
    /// Jobs given to each worker and not returned yet.
    assigned: Vec<u32>,
    /// Master: the slave's half of the bootstrap, not sent yet (in flight
    /// in the ledger).
    bootstrap: std::ops::Range<JobId>,
    /// Our batches the peer has not acknowledged or refused, by transfer.
    outbound: HashMap<u32, Outbound>,
    /// Slave: results computed, waiting for a batch to the master.
    ready: Vec<Job>,
    /// Master: the results held.
    results: Option<ResultStore>,
    /// Master: when each job's result was held (run seconds; NaN before).
    result_at: Vec<f64>,
    /// Jobs computed here whose result is the one kept.
    done: u32,
    /// Jobs taken from the peer's batches.
    received: u32,
    /// Master: results taken from the slave's batches.
    results_received: u32,
    /// Master: jobs taken back from a lost slave.
    reclaimed: u32,
    /// Jobs the peer acknowledged (bootstrap and transfers).
    delivered_to_peer: u32,
    /// Master: jobs of the bootstrap's slave half (less those kept or
    /// refused), and of them those not delivered yet.
    bootstrap_jobs: u32,
    bootstrap_pending: u32,
}

impl JobBook {
    /// An empty book for a node of `role` with `workers` workers.
    pub(super) fn new(role: Role, workers: usize) -> Self {
        JobBook {
            role,
            ledger: Ledger::default(),
            queue: VecDeque::new(),
            stale: 0,
            assigned: vec![0; workers.max(1)],
            bootstrap: 0..0,
            outbound: HashMap::new(),
            ready: Vec::new(),
            results: None,
            result_at: Vec::new(),
            done: 0,
            received: 0,
            results_received: 0,
            reclaimed: 0,
            delivered_to_peer: 0,
            bootstrap_jobs: 0,
            bootstrap_pending: 0,
        }
    }

    /// The run is `jobs` long, none of them here yet; the master keeps a
    /// place for every result.
    pub(super) fn begin(&mut self, jobs: u32) {
        self.ledger = Ledger::new(jobs);
        if self.role == Role::Master {
            self.results = Some(ResultStore::new(jobs));
            self.result_at = vec![f64::NAN; jobs as usize];
        }
    }

    /// Makes the run `jobs` long (jobs added by the master); never shrinks.
    pub(super) fn grow_to(&mut self, jobs: u32) {
        let more = jobs.saturating_sub(self.ledger.jobs());
        self.ledger.grow_to(jobs);
        if let Some(store) = self.results.as_mut() {
            store.grow(more);
            self.result_at.resize(jobs as usize, f64::NAN);
        }
    }

    // ----- The one place a job's state changes -----

    /// Moves `id` to `to` and returns where it was. A job that leaves the
    /// queue this way (not taken from it) leaves its entry behind, stale.
    fn set(&mut self, id: JobId, to: JobState) -> JobState {
        let from = self.ledger.set(id, to);
        if from == JobState::Queued && to != JobState::Queued {
            self.stale += 1;
        }
        from
    }

    /// The next live entry of the queue, from the front or the back, taken
    /// out of it (stale ones on the way are dropped).
    fn pop_live(&mut self, front: bool) -> Option<Job> {
        loop {
            let job = if front {
                self.queue.pop_front()?
            } else {
                self.queue.pop_back()?
            };
            if self.ledger.state(job.id) == JobState::Queued {
                return Some(job);
            }
            // A stale entry; were it uncounted, `check` names the broken
            // invariant, and the count stays in step from here on.
            self.stale = self.stale.saturating_sub(1);
        }
    }

    /// Moves a job just taken from the queue (its entry gone) to `to`.
    fn leave_queue(&mut self, id: JobId, to: JobState) {
        self.ledger.set(id, to);
    }

    // ----- The queue and the workers -----

    /// Queues job `id` at the back, not made yet (a job's data before
    /// computing is the workload's initial value, so a worker makes it).
    pub(super) fn queue_unmade(&mut self, id: JobId) {
        self.queue_job(Job::unmade(id));
    }

    fn queue_job(&mut self, job: Job) {
        self.set(job.id, JobState::Queued);
        self.queue.push_back(job);
    }

    /// The next job for a worker with room for one, and that worker.
    pub(super) fn take_work(&mut self) -> Option<(usize, Job)> {
        let worker = self.assigned.iter().position(|&n| n < WORKER_DEPTH)?;
        let job = self.pop_live(true)?;
        self.leave_queue(job.id, JobState::Computing);
        self.assigned[worker] += 1;
        Some((worker, job))
    }

    /// Paused: every job computing here goes back to the front of the
    /// queue, in id order, unmade; the workers keep their copies until they
    /// return them (which are then dropped). Returns their ids.
    pub(super) fn requeue_computing(&mut self) -> Vec<JobId> {
        let started = self.ledger.ids_in(JobState::Computing);
        for &id in started.iter().rev() {
            self.set(id, JobState::Queued);
            self.queue.push_front(Job::unmade(id));
        }
        started
    }

    /// A worker returned job `job`, computed at `at_s` (run seconds).
    pub(super) fn finished(&mut self, worker: usize, job: Job, at_s: f64) -> Finished {
        if let Some(n) = self.assigned.get_mut(worker) {
            *n = n.saturating_sub(1);
        }
        let id = job.id;
        if self.ledger.state(id) != JobState::Computing {
            return Finished::NotHere;
        }
        match self.role {
            Role::Master => {
                let inserted = match self.results.as_mut() {
                    Some(store) => store.insert(id, job.data),
                    None => Insert::OutOfRange,
                };
                self.set(id, JobState::Returned);
                match inserted {
                    Insert::Stored => {
                        self.done += 1;
                        self.held_at(id, at_s);
                        Finished::Stored
                    }
                    Insert::Late => Finished::Late,
                    Insert::Duplicate | Insert::OutOfRange => Finished::NotStored,
                }
            }
            Role::Slave => {
                self.set(id, JobState::Computed);
                self.ready.push(job);
                self.done += 1;
                Finished::Computed
            }
        }
    }

    /// A worker returned a job that is no longer computing here (dropped):
    /// it has room again.
    pub(super) fn release_worker(&mut self, worker: usize) {
        if let Some(n) = self.assigned.get_mut(worker) {
            *n = n.saturating_sub(1);
        }
    }

    /// Master: an attempt at job `id` by worker `worker` failed and the
    /// job goes again: back in the queue, unmade (its input is read again),
    /// at the front or the back (where a transfer takes it). False when it
    /// was not computing here any more.
    pub(super) fn retry_own(&mut self, worker: usize, id: JobId, front: bool) -> bool {
        if let Some(n) = self.assigned.get_mut(worker) {
            *n = n.saturating_sub(1);
        }
        if self.ledger.state(id) != JobState::Computing {
            return false;
        }
        self.set(id, JobState::Queued);
        if front {
            self.queue.push_front(Job::unmade(id));
        } else {
            self.queue.push_back(Job::unmade(id));
        }
        true
    }

    /// Master: the slave's attempt at job `id` failed and the job goes
    /// again here, first in the queue. False when it was not the slave's
    /// (a reclaimed job, or one whose result is held).
    pub(super) fn retry_lent(&mut self, id: JobId) -> bool {
        let state = self.ledger.state(id);
        if state != JobState::Lent && state != JobState::InFlight {
            return false;
        }
        self.set(id, JobState::Queued);
        self.queue.push_front(Job::unmade(id));
        true
    }

    /// Master: job `id`'s result is held from `at_s` (run seconds).
    fn held_at(&mut self, id: JobId, at_s: f64) {
        if let Some(t) = self.result_at.get_mut(id as usize) {
            *t = at_s;
        }
    }

    /// Takes up to `n` jobs nobody has started from the back of the queue,
    /// for a transfer, in id order; they are in flight from now on (the
    /// caller sends them, see [`sent`](Self::sent)).
    pub(super) fn take_for_transfer(&mut self, n: u32) -> Vec<Job> {
        let mut jobs = Vec::new();
        while (jobs.len() as u32) < n {
            let Some(job) = self.pop_live(false) else {
                break;
            };
            self.leave_queue(job.id, JobState::InFlight);
            jobs.push(job);
        }
        jobs.sort_unstable_by_key(|j| j.id);
        jobs
    }

    // ----- The master's bootstrap -----

    /// Master: keeps jobs `[0, keep)` (queued here) and puts `[keep, jobs)`
    /// in flight to the slave, to be sent a batch at a time.
    pub(super) fn begin_bootstrap(&mut self, keep: u32, jobs: u32) {
        let send = jobs - keep;
        self.bootstrap_jobs = send;
        self.bootstrap_pending = send;
        for id in keep..jobs {
            self.set(id, JobState::InFlight);
        }
        self.bootstrap = keep..jobs;
        for id in 0..keep {
            self.queue_unmade(id);
        }
    }

    /// Bootstrap jobs not sent yet.
    pub(super) fn bootstrap_unsent(&self) -> u32 {
        self.bootstrap.end - self.bootstrap.start
    }

    /// The next `n` bootstrap jobs to send.
    pub(super) fn take_bootstrap(&mut self, n: usize) -> Vec<JobId> {
        let n = u32::try_from(n)
            .unwrap_or(u32::MAX)
            .min(self.bootstrap_unsent());
        let from = self.bootstrap.start;
        self.bootstrap.start += n;
        (from..from + n).collect()
    }

    /// The policy keeps the last `n` bootstrap jobs not sent yet: they
    /// queue here. Returns their ids.
    pub(super) fn keep_bootstrap(&mut self, n: u32) -> Vec<JobId> {
        let at = self.bootstrap.end - n.min(self.bootstrap_unsent());
        let kept: Vec<JobId> = (at..self.bootstrap.end).collect();
        self.bootstrap.end = at;
        for &id in &kept {
            self.queue_unmade(id);
        }
        self.bootstrap_jobs = self.bootstrap_jobs.saturating_sub(kept.len() as u32);
        kept
    }

    /// `n` bootstrap jobs need no delivery any more (delivered, kept or
    /// refused); true when none is left to deliver.
    pub(super) fn bootstrap_done(&mut self, n: u32) -> bool {
        self.bootstrap_pending = self.bootstrap_pending.saturating_sub(n);
        self.bootstrap_pending == 0
    }

    /// Master, the slave lost during the bootstrap: nothing more of it
    /// will be delivered.
    pub(super) fn abandon_bootstrap(&mut self) {
        self.bootstrap_pending = 0;
    }

    // ----- Our batches -----

    /// Batch `transfer` went out.
    pub(super) fn sent(&mut self, transfer: u32, batch: Outbound) {
        self.outbound.insert(transfer, batch);
    }

    /// The peer acknowledged batch `transfer`: its jobs are the peer's
    /// (the master's lent), its results held by the master.
    pub(super) fn delivered(&mut self, transfer: u32) -> Option<Outbound> {
        let batch = self.outbound.remove(&transfer)?;
        match batch.kind {
            BatchKind::Results => {
                for &id in &batch.ids {
                    if self.ledger.state(id) == JobState::Computed {
                        self.set(id, JobState::Returned);
                    }
                }
            }
            BatchKind::Bootstrap | BatchKind::Jobs => {
                let to = match self.role {
                    Role::Master => JobState::Lent,
                    Role::Slave => JobState::Absent,
                };
                for &id in &batch.ids {
                    // A job whose result came back before the ack (the
                    // slave computed it first) stays returned.
                    if self.ledger.state(id) == JobState::InFlight {
                        self.set(id, to);
                    }
                }
                self.delivered_to_peer += batch.ids.len() as u32;
            }
        }
        Some(batch)
    }

    /// The peer refused batch `transfer`: its jobs queue here again, as do
    /// the jobs of refused results (their data went with the batch, so
    /// they are computed again). Returns the batch and the jobs taken back.
    pub(super) fn refused(&mut self, transfer: u32) -> Option<(Outbound, Vec<JobId>)> {
        let batch = self.outbound.remove(&transfer)?;
        // Still in flight (none can have come back as a result: the peer
        // never had them), or computed and not acknowledged.
        let from = match batch.kind {
            BatchKind::Bootstrap | BatchKind::Jobs => JobState::InFlight,
            BatchKind::Results => JobState::Computed,
        };
        let back: Vec<JobId> = batch
            .ids
            .iter()
            .copied()
            .filter(|&id| self.ledger.state(id) == from)
            .collect();
        for &id in &back {
            self.queue_unmade(id);
        }
        match batch.kind {
            BatchKind::Results => self.done = self.done.saturating_sub(back.len() as u32),
            BatchKind::Bootstrap => {
                // No longer on its way: the bootstrap may end without it.
                self.bootstrap_jobs = self.bootstrap_jobs.saturating_sub(batch.ids.len() as u32);
            }
            BatchKind::Jobs => {}
        }
        Some((batch, back))
    }

    // ----- The peer's batches -----

    /// Takes the jobs of a batch from the peer that this node can be given:
    /// the master's lent ones, the slave's absent ones, either's jobs in
    /// flight to the peer (which may send them back before its ack of them
    /// arrives), and on the master the slave's own arrivals (`ids` of the
    /// slave's stream, never the master's to lend). Returns the ids taken.
    pub(super) fn take_jobs(
        &mut self,
        jobs: Vec<Job>,
        slave_arrivals: std::ops::Range<JobId>,
    ) -> Vec<JobId> {
        let given = match self.role {
            Role::Master => JobState::Lent,
            Role::Slave => JobState::Absent,
        };
        let mut taken = Vec::new();
        for job in jobs {
            let state = self.ledger.state(job.id);
            if self.bootstrap.contains(&job.id) {
                // Not sent yet, so no peer can give it back: a peer that
                // does is wrong, and the job stays where it is.
                continue;
            }
            let slave_arrival = self.role == Role::Master
                && state == JobState::Absent
                && slave_arrivals.contains(&job.id);
            if state != given && state != JobState::InFlight && !slave_arrival {
                continue;
            }
            taken.push(job.id);
            self.queue_job(job);
        }
        self.received += taken.len() as u32;
        taken
    }

    /// Master: the results of a batch from the slave, held at `at_s` (run
    /// seconds). Returns how many were stored, and how many came late (a
    /// reclaimed job computed here first).
    pub(super) fn take_results(&mut self, jobs: Vec<Job>, at_s: f64) -> (u32, u32) {
        let (mut stored, mut late) = (0, 0);
        let Some(store) = self.results.as_mut() else {
            return (0, 0);
        };
        let mut held = Vec::new();
        for job in jobs {
            let id = job.id;
            match store.insert(id, job.data) {
                Insert::Stored => {
                    stored += 1;
                    held.push(id);
                }
                Insert::Late => late += 1,
                Insert::Duplicate | Insert::OutOfRange => {}
            }
        }
        for id in held {
            self.set(id, JobState::Returned);
            self.held_at(id, at_s);
        }
        self.results_received += stored;
        (stored, late)
    }

    // ----- The slave's results -----

    /// Slave: results ready to send.
    pub(super) fn ready_results(&self) -> usize {
        self.ready.len()
    }

    /// Slave: the first `n` results ready, for a batch.
    pub(super) fn take_ready(&mut self, n: usize) -> Vec<Job> {
        let n = n.min(self.ready.len());
        self.ready.drain(..n).collect()
    }

    // ----- A lost slave -----

    /// Master, the slave lost: every outbound batch is given up; the
    /// bootstrap not sent yet, and every job lent to the slave or on its
    /// way (and those of `slave_due`, the slave's arrivals already come)
    /// whose result is not held, queue here. Returns (the bootstrap jobs
    /// not sent, the other jobs taken back).
    pub(super) fn reclaim(
        &mut self,
        slave_due: std::ops::Range<JobId>,
    ) -> (Vec<JobId>, Vec<JobId>) {
        self.outbound.clear();
        let unsent: Vec<JobId> = self.bootstrap.clone().collect();
        self.bootstrap.start = self.bootstrap.end;
        for &id in &unsent {
            self.queue_unmade(id);
        }
        let mut lent = self.ledger.ids_in(JobState::Lent);
        lent.extend(self.ledger.ids_in(JobState::InFlight));
        lent.extend(slave_due.filter(|&id| self.ledger.state(id) == JobState::Absent));
        lent.sort_unstable();
        let missing = match self.results.as_mut() {
            Some(store) => store.reclaim(lent),
            None => Vec::new(),
        };
        for &id in &missing {
            self.queue_unmade(id);
        }
        // Meant for the slave and taken back: the unsent are counted with
        // the reclaimed.
        self.reclaimed += (unsent.len() + missing.len()) as u32;
        (unsent, missing)
    }

    // ----- What the book shows -----

    /// The ledger.
    pub(super) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Jobs in `state`.
    pub(super) fn count(&self, state: JobState) -> u32 {
        self.ledger.count(state)
    }

    /// Jobs waiting in the queue.
    pub(super) fn queued(&self) -> u32 {
        self.ledger.count(JobState::Queued)
    }

    /// Jobs on their way to the peer: the bootstrap not sent yet, and our
    /// batches of jobs not acknowledged or refused.
    pub(super) fn in_flight(&self) -> u32 {
        let outbound: usize = self
            .outbound
            .values()
            .filter(|b| b.kind != BatchKind::Results)
            .map(|b| b.ids.len())
            .sum();
        self.bootstrap_unsent() + outbound as u32
    }

    /// The node's workers.
    pub(super) fn workers(&self) -> u32 {
        self.assigned.len() as u32
    }

    /// Master: the results held.
    pub(super) fn results(&self) -> Option<&ResultStore> {
        self.results.as_ref()
    }

    /// Master: when each job's result was held (run seconds; NaN before).
    pub(super) fn result_at(&self) -> &[f64] {
        &self.result_at
    }

    /// Jobs computed here whose result is the one kept.
    pub(super) fn done(&self) -> u32 {
        self.done
    }

    /// Jobs taken from the peer's batches.
    pub(super) fn received(&self) -> u32 {
        self.received
    }

    /// Master: results taken from the slave's batches.
    pub(super) fn results_received(&self) -> u32 {
        self.results_received
    }

    /// Master: jobs taken back from a lost slave.
    pub(super) fn reclaimed(&self) -> u32 {
        self.reclaimed
    }

    /// Jobs the peer acknowledged.
    pub(super) fn delivered_to_peer(&self) -> u32 {
        self.delivered_to_peer
    }

    /// Master: the jobs of the bootstrap's slave half.
    pub(super) fn bootstrap_jobs(&self) -> u32 {
        self.bootstrap_jobs
    }
}

#[cfg(test)]
impl JobBook {
    /// Empties the queue behind the ledger's back, for a test of
    /// [`check`](Self::check).
    pub(super) fn lose_queue(&mut self) {
        self.queue.clear();
    }
}

mod invariants;
#[cfg(test)]
mod tests;
