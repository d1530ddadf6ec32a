//! The digits and command kinds in the core: the master reads a job's
//! input when it sends the job, checks and keeps each attempt's output as
//! it comes back (its own workers' and the slave's), writes each attempt's
//! joblog line, and tries a failed job again, on the other node first,
//! until it has failed `retries + 1` times. The reading and keeping is
//! done by the node's [`ByteWork`](crate::workload::kind::ByteWork); the
//! core decides what happens to the job.

use std::collections::HashMap;
use std::time::Instant;

use super::{Failure, NodeCore};
use crate::config::{Kind, WorkloadConfig};
use crate::ids::Role;
use crate::protocol::BatchKind;
use crate::protocol::batch::Encoded;
use crate::workload::kind::{Finish, PieceRow};
use crate::workload::{Job, JobId};

/// What the master keeps of the attempts at the jobs.
#[derive(Debug, Default)]
pub(super) struct PieceBook {
    /// Failed attempts, by job.
    failures: HashMap<JobId, u32>,
    /// Jobs that failed for good, in the order they did.
    pub(super) failed: Vec<JobId>,
    /// Attempts made (each node's), failed or not.
    pub(super) attempts: u32,
    /// The output written, or the digits' total checked.
    pub(super) finish: Option<Result<Finish, String>>,
    /// Each job's attempts, by id (shared with the window's snapshots,
    /// copied only when one still holds it).
    pub(super) rows: std::sync::Arc<Vec<PieceRow>>,
    /// `verify_sample`: the slave's output digests of the jobs the master
    /// runs again, until it has.
    pub(super) checking: HashMap<JobId, [u8; 32]>,
    /// Jobs the master ran again, and of them those whose output differed.
    pub(super) sampled: u32,
    pub(super) mismatched: Vec<JobId>,
    /// The most jobs lent to the slave (or on their way) at once.
    pub(super) peak_lent: u32,
    /// The bootstrap waited for the memory budget (said once).
    pub(super) budget_said: bool,
}

/// `jobs` in order, cut into groups of at most `max` bytes of pieces each
/// (a job larger than that alone in its group).
pub(super) fn byte_groups(jobs: Vec<Job>, max: usize) -> Vec<Vec<Job>> {
    let mut groups: Vec<Vec<Job>> = Vec::new();
    let mut bytes = 0usize;
    for job in jobs {
        let len = job.piece.as_ref().map_or(0, |p| p.bytes.len());
        match groups.last_mut() {
            Some(group) if bytes.saturating_add(len) <= max => {
                bytes += len;
                group.push(job);
            }
            _ => {
                bytes = len;
                groups.push(vec![job]);
            }
        }
    }
    groups
}

/// A typical job's bytes, from the spec: what batch sizes are reckoned by
/// (the pieces of a directory differ; a guess of 64 KiB).
pub(super) fn typical_piece_bytes(w: &WorkloadConfig) -> usize {
    let bytes = match (w.kind, &w.split) {
        (Kind::Digits, _) => w
            .chunk_bytes
            .unwrap_or(crate::workload::digits::DEFAULT_CHUNK_BYTES),
        (_, Some(s)) => s.bytes.unwrap_or(s.lines.unwrap_or(1).saturating_mul(80)),
        (_, None) => 64 << 10,
    };
    usize::try_from(bytes).unwrap_or(usize::MAX).max(64)
}

impl NodeCore {
    /// Master: how many more jobs may be lent to the slave within the
    /// memory budget (their input bytes are held there until they come
    /// back); None when there is no budget (the vector kind).
    pub(super) fn piece_room(&self) -> Option<u32> {
        let work = self.settings.work.as_ref()?;
        if self.role != Role::Master {
            return None;
        }
        let mean = work.mean_piece_bytes().unwrap_or(1).max(1);
        let budget = work.memory_budget(self.settings.memory_bytes);
        let jobs = u32::try_from((budget / mean).max(1)).unwrap_or(u32::MAX);
        Some(jobs.saturating_sub(self.lent_now()))
    }

    /// Master: jobs lent to the slave or on their way to it now.
    fn lent_now(&self) -> u32 {
        let on_the_way = self.book.in_flight() - self.book.bootstrap_unsent();
        self.book.count(super::JobState::Lent) + on_the_way
    }

    /// Master: notes how many jobs are lent now (for the report's peak).
    pub(super) fn note_lent(&mut self) {
        if self.settings.work.is_some() && self.role == Role::Master {
            self.pieces.peak_lent = self.pieces.peak_lent.max(self.lent_now());
        }
    }

    /// Master: the slave has no room for more of the bootstrap. Said
    /// once; and a master with nothing to do takes a batch of the rest
    /// itself rather than wait (a paused or slow slave).
    pub(super) fn bootstrap_waits_for_room(&mut self, now: Instant) {
        if !self.pieces.budget_said {
            self.pieces.budget_said = true;
            let budget = self
                .settings
                .work
                .as_ref()
                .map_or(0, |w| w.memory_budget(self.settings.memory_bytes));
            self.log(
                now,
                format!(
                    "the slave holds as many jobs' input as the memory budget allows ({} MiB): \
                     the rest of the bootstrap waits for its results",
                    budget >> 20
                ),
            );
        }
        if self.queued() > 0
            || self.book.count(super::JobState::Computing) > 0
            || self.throttle <= 0.0
        {
            return;
        }
        let keep = u32::try_from(self.batch_jobs).unwrap_or(u32::MAX);
        let kept = self.book.keep_bootstrap(keep);
        self.log(
            now,
            format!(
                "the master has nothing to do and the slave no room: it computes bootstrap jobs \
                 [{}] itself",
                crate::workload::format_id_ranges(&kept)
            ),
        );
        self.adaptor.state_due = true;
        self.bootstrap_delivered(now, kept.len() as u32);
    }

    /// `n` jobs to lend, as the memory budget allows.
    pub(super) fn within_budget(&self, n: u32) -> u32 {
        self.piece_room().map_or(n, |room| n.min(room))
    }

    /// Sends `jobs` (read, or results) as batches of at most
    /// [`MAX_BATCH_DATA_BYTES`](crate::protocol::batch::MAX_BATCH_DATA_BYTES)
    /// of bytes each (a single job may be that large alone): what every
    /// receiver takes.
    pub(super) fn send_pieces(&mut self, now: Instant, kind: BatchKind, jobs: Vec<Job>) {
        for group in byte_groups(jobs, crate::protocol::batch::MAX_BATCH_DATA_BYTES) {
            let ids: Vec<JobId> = group.iter().map(|j| j.id).collect();
            let encoded: Encoded = crate::protocol::pieces::encode(&group, self.config.compression);
            drop(group);
            self.send_batch(now, kind, ids, encoded);
            self.note_lent();
        }
    }

    /// Master: reads the input of every job of `jobs` not read yet (a
    /// slave gets each job's bytes). None when the input cannot be read:
    /// the run has failed.
    pub(super) fn read_pieces(&mut self, now: Instant, mut jobs: Vec<Job>) -> Option<Vec<Job>> {
        let Some(work) = self.settings.work.clone() else {
            return Some(jobs);
        };
        if self.role != Role::Master {
            // A slave gives its jobs back as ids only: the master reads its
            // own input again rather than trust bytes from the peer.
            for job in &mut jobs {
                job.piece = None;
            }
            return Some(jobs);
        }
        for job in &mut jobs {
            if job.piece.is_none() {
                match work.read(job.id) {
                    Ok(bytes) => *job = Job::with_input(job.id, bytes),
                    Err(e) => {
                        self.fail(
                            now,
                            Failure::Files(format!(
                                "cannot read the input of job {} ({}): {e}",
                                job.id,
                                work.piece_name(job.id)
                            )),
                        );
                        return None;
                    }
                }
            }
        }
        Some(jobs)
    }

    /// Master: an attempt at `job` came back from `on` (its worker
    /// `worker`, or the slave). Its joblog line is written; a job done has
    /// its output checked against the digest its node computed and kept
    /// (then dropped from memory), and is returned for the book to store;
    /// a failed one goes again while it has retries left (None), and is
    /// returned as given up (stored with no output) when it has none.
    pub(super) fn piece_back(
        &mut self,
        now: Instant,
        mut job: Job,
        on: Role,
        worker: Option<usize>,
    ) -> Option<Job> {
        let work = self.settings.work.clone()?;
        let id = job.id;
        let Some(mut outcome) = job.outcome().cloned() else {
            // A worker stopped with the node: nothing ran.
            return Some(job);
        };
        let output_len = job.piece.as_ref().map_or(0, |p| p.bytes.len()) as u64;
        // Only the attempt of the node that has the job now counts: a late
        // one (a slave's after the master took the job back, a worker's
        // after a pause) is logged and dropped, its output not kept.
        let state = self.book.ledger().state(id);
        let current = match on {
            Role::Slave => matches!(state, super::JobState::Lent | super::JobState::InFlight),
            Role::Master => state == super::JobState::Computing,
        };
        if !current {
            self.pieces.attempts += 1;
            if let Err(e) = work.log_attempt(id, on, &outcome, outcome.input_bytes, output_len) {
                self.log(now, format!("cannot write the joblog: {e}"));
            }
            self.log(
                now,
                format!(
                    "job {id}: the {}'s attempt came after the job had moved on; dropped",
                    on.name()
                ),
            );
            if on == Role::Master
                && let Some(worker) = worker
            {
                // The worker is free again.
                self.book.release_worker(worker);
            }
            return None;
        }
        if outcome.succeeded()
            && let Some(p) = &job.piece
            && *blake3::hash(&p.bytes).as_bytes() != outcome.digest
        {
            outcome.failed = Some("its output does not match the digest its node computed".into());
        }
        self.pieces.attempts += 1;
        {
            let rows = std::sync::Arc::make_mut(&mut self.pieces.rows);
            if rows.len() <= id as usize {
                rows.resize(id as usize + 1, PieceRow::default());
            }
            let row = &mut rows[id as usize];
            row.attempts = row.attempts.saturating_add(1);
            row.exitval = outcome.exitval;
            row.signal = outcome.signal;
            row.failed = outcome.failed.is_some();
            row.runtime_s = outcome.runtime_s as f32;
            row.output_bytes = output_len;
        }
        if let Err(e) = work.log_attempt(id, on, &outcome, outcome.input_bytes, output_len) {
            self.log(now, format!("cannot write the joblog: {e}"));
        }
        if outcome.failed.is_none() {
            match on {
                // A sampled job of the slave's: the master runs it again
                // before its output is kept.
                Role::Slave if work.sampled(id) && self.book.retry_lent(id) => {
                    self.pieces.checking.insert(id, outcome.digest);
                    self.pieces.sampled += 1;
                    self.log(
                        now,
                        format!("job {id}: the slave's output is sampled; the master runs it again to compare"),
                    );
                    return None;
                }
                Role::Master => {
                    if let Some(theirs) = self.pieces.checking.remove(&id)
                        && theirs != outcome.digest
                    {
                        outcome.failed = Some(
                            "the slave's output and the master's differ (verify_sample): the program is not deterministic, or one node computes wrongly".into(),
                        );
                        self.pieces.mismatched.push(id);
                        // Given up at once: another attempt cannot say
                        // which output is right.
                        self.pieces.failures.insert(id, work.retries());
                    }
                }
                Role::Slave => {}
            }
        }
        let Some(why) = outcome.failed.clone() else {
            let kept = job
                .piece
                .as_ref()
                .map(|p| work.keep(id, &p.bytes))
                .unwrap_or(Ok(()));
            if let Err(e) = kept {
                self.fail(
                    now,
                    Failure::Files(format!(
                        "cannot keep the output of job {id} ({}): {e}",
                        work.piece_name(id)
                    )),
                );
                return None;
            }
            // Kept on disk: the book holds only that it is done.
            job.piece = None;
            return Some(job);
        };
        let failures = {
            let n = self.pieces.failures.entry(id).or_insert(0);
            *n += 1;
            *n
        };
        let tail = String::from_utf8_lossy(&outcome.stderr_tail);
        let tail: Vec<&str> = tail.lines().rev().take(3).collect();
        let tail = if tail.is_empty() {
            String::new()
        } else {
            let lines: Vec<&str> = tail.into_iter().rev().collect();
            format!("; its stderr ends: {}", lines.join(" | "))
        };
        self.log(
            now,
            format!(
                "job {id} ({}) failed on the {}: {why}{tail}",
                work.piece_name(id),
                on.name()
            ),
        );
        if failures > work.retries() {
            self.log(
                now,
                format!(
                    "job {id} failed {failures} times: given up (workload.retries is {})",
                    work.retries()
                ),
            );
            if !self.pieces.failed.contains(&id) {
                self.pieces.failed.push(id);
            }
            if let Some(row) = std::sync::Arc::make_mut(&mut self.pieces.rows).get_mut(id as usize)
            {
                row.given_up = true;
            }
            job.piece = None;
            return Some(job);
        }
        // Again, on the other node first.
        let peer_there = self.session.connected && !self.session.peer_lost;
        match on {
            Role::Slave => {
                if self.book.retry_lent(id) {
                    self.log(now, format!("job {id}: trying it again on the master"));
                }
            }
            Role::Master => {
                let worker = worker?;
                if !self.book.retry_own(worker, id, !peer_there) {
                    return None;
                }
                if peer_there {
                    let jobs = self.book.take_for_transfer(1);
                    self.log(now, format!("job {id}: trying it again on the slave"));
                    self.send_jobs(now, jobs);
                } else {
                    self.log(now, format!("job {id}: trying it again on the master"));
                }
            }
        }
        self.adaptor.state_due = true;
        None
    }

    /// Master, every job back: writes the output, or checks the digits'
    /// total. Returns whether that went well.
    pub(super) fn finish_pieces(&mut self, now: Instant) -> bool {
        let Some(work) = self.settings.work.clone() else {
            return true;
        };
        let failed = self.pieces.failed.clone();
        let finish = work.finish(&failed);
        let ok = match &finish {
            Ok(f) => {
                self.log(now, f.text.clone());
                f.verified
            }
            Err(e) => {
                self.log(now, format!("the output could not be written: {e}"));
                false
            }
        };
        self.pieces.finish = Some(finish);
        ok && failed.is_empty()
    }

    /// The run's jobs in words, for the log: `N jobs of E doubles, I
    /// iterations`, or of the kind's program and input.
    pub(super) fn jobs_text(&self, jobs: u32, elements: u32, iterations: u32) -> String {
        match &self.settings.work {
            None => format!("{jobs} jobs of {elements} doubles, {iterations} iterations"),
            Some(work) => format!("{jobs} jobs: {}", work.describe()),
        }
    }

    /// The digits and command kinds: how this node runs their jobs.
    pub fn work(&self) -> Option<&std::sync::Arc<crate::workload::kind::ByteWork>> {
        self.settings.work.as_ref()
    }

    /// Each job's attempts so far, by id (digits and command kinds, master).
    pub fn piece_rows(&self) -> std::sync::Arc<Vec<PieceRow>> {
        self.pieces.rows.clone()
    }

    /// `verify_sample`: jobs of the slave's the master ran again, and the
    /// ones whose outputs differed.
    pub fn verify_counts(&self) -> (u32, &[JobId]) {
        (self.pieces.sampled, &self.pieces.mismatched)
    }

    /// Master: the most jobs lent to the slave at once (digits and command
    /// kinds).
    pub fn peak_lent(&self) -> u32 {
        self.pieces.peak_lent
    }

    /// The jobs that failed for good.
    pub fn failed_jobs(&self) -> &[JobId] {
        &self.pieces.failed
    }

    /// Attempts made at the jobs (digits and command kinds).
    pub fn attempts(&self) -> u32 {
        self.pieces.attempts
    }

    /// What the master's last step gave: the output written or the
    /// digits' total (digits and command kinds).
    pub fn pieces_finish(&self) -> Option<&Result<Finish, String>> {
        self.pieces.finish.as_ref()
    }
}
