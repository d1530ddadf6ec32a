//! The batch job: jobs, the kernel that computes them, the expected value and
//! the verification of an assembled vector (pure: no I/O, no threads, no
//! clock). Its modules are the pieces of the other job kinds: the digit
//! sum ([`digits`]), and the command kind's program runs ([`command`]),
//! input pieces ([`split`]), outputs ([`output`]) and joblog ([`joblog`]),
//! which do read and write files and run processes.
//!
//! The contract fixes the arithmetic: every element receives `addend` exactly
//! `iterations` times, in order, by repeated addition. The kernel that does
//! it is in [`crate::kernel`].

use crate::config::WorkloadConfig;

pub use crate::ids::JobId;

pub mod command;
pub mod digits;
pub mod joblog;
pub mod kind;
pub mod output;
pub mod split;

/// A job: a contiguous slice of the vector and how far its computation
/// has got, or (the digits and command kinds) a piece of the user's input
/// and, once computed, its output.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Index of the slice in the vector, or of the job in the run.
    pub id: JobId,
    /// The slice's values (the vector kind; empty for the others).
    pub data: Vec<f64>,
    /// Elements `0..done` have received all their additions; the rest none.
    pub done: usize,
    /// The digits and command kinds: the job's bytes (none: not read from
    /// the input yet).
    pub piece: Option<Box<Piece>>,
}

/// A job of the digits or command kind: its input bytes, then its output.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The input before the job ran, its output (stdout, or the digits'
    /// sum as 8 bytes LE) after.
    pub bytes: Vec<u8>,
    /// How the run went; none before it.
    pub ran: Option<Outcome>,
}

/// How one attempt of a digits or command job went, as the node that ran
/// it tells the master.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The program's exit status (GNU parallel's Exitval: -1 for one we
    /// killed or could not start).
    pub exitval: i32,
    /// The signal that killed it (parallel's Signal), 0 for none.
    pub signal: i32,
    /// Why it failed, in words; none for a job done.
    pub failed: Option<String>,
    /// When it started, Unix seconds on the node that ran it.
    pub start_unix_s: f64,
    /// How long it ran, wall seconds (the throttle's pauses included).
    pub runtime_s: f64,
    /// Bytes of input it was given.
    pub input_bytes: u64,
    /// The last bytes of its stderr (a failed job's are logged).
    pub stderr_tail: Vec<u8>,
    /// BLAKE3 of the output, from the node that computed it.
    pub digest: [u8; 32],
}

impl Outcome {
    /// True for a job done.
    pub fn succeeded(&self) -> bool {
        self.failed.is_none()
    }
}

impl Job {
    /// A job not made yet: its data (every element the workload's initial
    /// value) is filled in by [`Job::make_ready`] when a worker or a
    /// transfer takes it from the queue, so a master does not hold its
    /// whole half of the vector before computing starts.
    pub fn unmade(id: JobId) -> Job {
        Job {
            id,
            data: Vec::new(),
            done: 0,
            piece: None,
        }
    }

    /// A job of the digits or command kind holding its input.
    pub fn with_input(id: JobId, bytes: Vec<u8>) -> Job {
        Job {
            piece: Some(Box::new(Piece { bytes, ran: None })),
            ..Job::unmade(id)
        }
    }

    /// A digits or command job's outcome, once it ran.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.piece.as_ref().and_then(|p| p.ran.as_ref())
    }

    /// Fills in the data of an [`unmade`](Job::unmade) job; any other job is
    /// left as it is.
    pub fn make_ready(&mut self, workload: &WorkloadConfig) {
        if self.piece.is_none() && self.data.is_empty() && self.done == 0 {
            self.data = vec![workload.initial; workload.elements_per_job as usize];
        }
    }

    /// True when every element has received all its additions (a piece:
    /// once it ran); never for an [`unmade`](Job::unmade) job.
    pub fn is_complete(&self) -> bool {
        match &self.piece {
            Some(p) => p.ran.is_some(),
            None => !self.data.is_empty() && self.done == self.data.len(),
        }
    }
}

pub use crate::kernel::{add_repeated, add_repeated_plain};

/// Slices are cut at multiples of this, the widest kernel block (see
/// [`crate::kernel`]), so only a job's last slice has a remainder.
pub const BLOCK: usize = 64;

/// The value every element must hold at the end.
pub fn expected_value(workload: &WorkloadConfig) -> f64 {
    let mut v = workload.initial;
    for _ in 0..workload.iterations {
        v += workload.addend;
    }
    v
}

/// How many elements one slice of work covers: about a million additions,
/// a fraction of a millisecond optimised, so a worker checks its throttle
/// budget often even when one job takes far longer than a period.
pub fn slice_elements(iterations: u32) -> usize {
    let per = (1usize << 20) / (iterations.max(1) as usize);
    (per / BLOCK).max(1) * BLOCK
}

/// Computes the next slice of `job`: at most `max_elements` elements from
/// `job.done`. Returns the number of elements computed.
pub fn compute_slice(job: &mut Job, max_elements: usize, workload: &WorkloadConfig) -> usize {
    let start = job.done;
    let end = (start + max_elements).min(job.data.len());
    add_repeated(
        &mut job.data[start..end],
        workload.iterations,
        workload.addend,
    );
    job.done = end;
    end - start
}

/// Makes job `id` with its initial data.
pub fn make_job(workload: &WorkloadConfig, id: JobId) -> Job {
    let mut job = Job::unmade(id);
    job.make_ready(workload);
    job
}

/// Job `id` filled with values no compressor can shrink (every double a
/// distinct xorshift mantissa in [1, 2), seeded by the id), for measuring
/// and testing compression on data that does not compress. Such a job
/// cannot verify.
pub fn random_job(id: JobId, elements: u32) -> Job {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (u64::from(id) << 32 | 1);
    let data = (0..elements)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f64::from_bits(0x3ff0_0000_0000_0000 | (x >> 12))
        })
        .collect();
    Job {
        id,
        data,
        done: 0,
        piece: None,
    }
}

/// Formats job ids as compact ranges: `0-511, 600, 602-603`.
pub fn format_id_ranges(ids: &[JobId]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

/// The outcome of checking the assembled vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Every job present once and every element equal to the expected value.
    pub verified: bool,
    /// Job ids with no result.
    pub missing: Vec<JobId>,
    /// Job ids whose result arrived more than once.
    pub duplicated: Vec<JobId>,
    /// Elements (over all jobs) not bit-equal to the expected value.
    pub wrong_elements: u64,
    /// The value every element should hold.
    pub expected: f64,
}

/// Collects the results of a run on the master, indexed by job id, and
/// verifies them at the end.
#[derive(Debug)]
pub struct ResultStore {
    slots: Vec<Option<Vec<f64>>>,
    present: usize,
    duplicated: Vec<JobId>,
    out_of_range: u64,
    /// Jobs the master took back from a lost slave: a second result for one
    /// of them is expected (the slave's, arriving late, or the master's own
    /// after the slave's came first) and is dropped without fault.
    reclaimed: Vec<bool>,
    late: u64,
}

/// What [`ResultStore::insert`] did with a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// The first result for its job: kept.
    Stored,
    /// A second result for a reclaimed job: dropped, no fault.
    Late,
    /// A second result for a job never reclaimed: dropped, and the run
    /// fails verification.
    Duplicate,
    /// A job id outside the workload.
    OutOfRange,
}

impl ResultStore {
    /// An empty store for `jobs` jobs.
    pub fn new(jobs: u32) -> Self {
        ResultStore {
            slots: vec![None; jobs as usize],
            present: 0,
            duplicated: Vec::new(),
            out_of_range: 0,
            reclaimed: vec![false; jobs as usize],
            late: 0,
        }
    }

    /// Makes room for `more` jobs added to the run.
    pub fn grow(&mut self, more: u32) {
        let jobs = self.slots.len() + more as usize;
        self.slots.resize(jobs, None);
        self.reclaimed.resize(jobs, false);
    }

    /// Stores a job's result. A second result for the same id is dropped:
    /// expected for a reclaimed job, a duplicate (it would be computed into
    /// the vector twice, and fails verification) for any other.
    pub fn insert(&mut self, id: JobId, data: Vec<f64>) -> Insert {
        let i = id as usize;
        match self.slots.get_mut(i) {
            None => {
                self.out_of_range += 1;
                Insert::OutOfRange
            }
            Some(Some(_)) if self.reclaimed[i] => {
                self.late += 1;
                Insert::Late
            }
            Some(Some(_)) => {
                self.duplicated.push(id);
                Insert::Duplicate
            }
            Some(slot) => {
                *slot = Some(data);
                self.present += 1;
                Insert::Stored
            }
        }
    }

    /// True when the job's result is held.
    pub fn contains(&self, id: JobId) -> bool {
        matches!(self.slots.get(id as usize), Some(Some(_)))
    }

    /// Marks jobs as reclaimed from a lost peer; returns those of them
    /// whose result is not yet held (the ones to compute again).
    pub fn reclaim(&mut self, ids: impl IntoIterator<Item = JobId>) -> Vec<JobId> {
        let mut missing = Vec::new();
        for id in ids {
            if let Some(flag) = self.reclaimed.get_mut(id as usize) {
                *flag = true;
                if self.slots[id as usize].is_none() {
                    missing.push(id);
                }
            }
        }
        missing
    }

    /// Second results dropped for reclaimed jobs.
    pub fn late_results(&self) -> u64 {
        self.late
    }

    /// Results held.
    pub fn len(&self) -> usize {
        self.present
    }

    /// True when no result is held.
    pub fn is_empty(&self) -> bool {
        self.present == 0
    }

    /// True when every job has a result.
    pub fn is_complete(&self) -> bool {
        self.present == self.slots.len()
    }

    /// Checks every job present once (the digits and command kinds, whose
    /// outputs are checked as they come and are not held here).
    pub fn verify_present(&self) -> Verification {
        let missing: Vec<JobId> = (0..self.slots.len() as JobId)
            .filter(|&id| self.slots[id as usize].is_none())
            .collect();
        Verification {
            verified: missing.is_empty() && self.duplicated.is_empty() && self.out_of_range == 0,
            missing,
            duplicated: self.duplicated.clone(),
            wrong_elements: 0,
            expected: f64::NAN,
        }
    }

    /// Checks every job present once and every element bit-equal to the
    /// expected value.
    pub fn verify(&self, workload: &WorkloadConfig) -> Verification {
        let expected = expected_value(workload);
        let bits = expected.to_bits();
        let mut missing = Vec::new();
        let mut wrong_elements = 0u64;
        for (id, slot) in self.slots.iter().enumerate() {
            match slot {
                None => missing.push(id as JobId),
                Some(data) => {
                    if data.len() != workload.elements_per_job as usize {
                        wrong_elements += workload.elements_per_job as u64;
                    }
                    wrong_elements += data.iter().filter(|v| v.to_bits() != bits).count() as u64;
                }
            }
        }
        let verified = missing.is_empty()
            && self.duplicated.is_empty()
            && self.out_of_range == 0
            && wrong_elements == 0;
        Verification {
            verified,
            missing,
            duplicated: self.duplicated.clone(),
            wrong_elements,
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> WorkloadConfig {
        WorkloadConfig {
            jobs: 4,
            elements_per_job: 100,
            iterations: 1000,
            initial: 1.111111,
            addend: 1.111111,
            arrivals: None,
            ..Default::default()
        }
    }

    #[test]
    fn expected_value_is_repeated_addition_not_multiplication() {
        let w = WorkloadConfig::default();
        let e = expected_value(&w);
        // The reference figure: 1.111111 plus a thousand additions of it.
        assert_eq!(format!("{e:.9}"), "1112.222111000");
        // Repeated addition accumulates rounding that multiplication does not.
        assert_ne!(e.to_bits(), (1001.0 * 1.111111f64).to_bits());
    }

    #[test]
    fn slices_add_up_to_the_whole_job() {
        let w = small();
        let mut job = make_job(&w, 2);
        let mut slices = 0;
        while !job.is_complete() {
            assert_eq!(compute_slice(&mut job, 32, &w), 32.min(100 - 32 * slices));
            slices += 1;
        }
        assert_eq!(slices, 4);
        let e = expected_value(&w).to_bits();
        assert!(job.data.iter().all(|v| v.to_bits() == e));
    }

    #[test]
    fn slice_size_is_about_a_million_additions() {
        assert_eq!(slice_elements(1000), 1024);
        assert_eq!(slice_elements(0), 1 << 20);
        assert_eq!(slice_elements(u32::MAX), BLOCK);
    }

    #[test]
    fn id_ranges_are_compact() {
        assert_eq!(format_id_ranges(&[5, 0, 1, 2, 7, 8, 10]), "0-2, 5, 7-8, 10");
        assert_eq!(format_id_ranges(&[]), "");
    }

    #[test]
    fn verification_finds_missing_duplicated_and_wrong() {
        let w = small();
        let mut store = ResultStore::new(w.jobs);
        for id in 0..w.jobs {
            let mut job = make_job(&w, id);
            compute_slice(&mut job, usize::MAX, &w);
            assert_eq!(store.insert(id, job.data), Insert::Stored);
        }
        assert!(store.is_complete());
        let v = store.verify(&w);
        assert!(v.verified, "{v:?}");

        let mut job = make_job(&w, 1);
        compute_slice(&mut job, usize::MAX, &w);
        assert_eq!(store.insert(1, job.data), Insert::Duplicate);
        assert_eq!(store.insert(99, vec![]), Insert::OutOfRange);
        let v = store.verify(&w);
        assert!(!v.verified);
        assert_eq!(v.duplicated, vec![1]);

        let mut store = ResultStore::new(w.jobs);
        let mut job = make_job(&w, 0);
        compute_slice(&mut job, usize::MAX, &w);
        job.data[7] += f64::EPSILON * 1024.0;
        store.insert(0, job.data);
        let uncomputed = make_job(&w, 3);
        store.insert(3, uncomputed.data);
        let v = store.verify(&w);
        assert!(!v.verified);
        assert_eq!(v.missing, vec![1, 2]);
        assert_eq!(v.wrong_elements, 1 + 100);
    }

    #[test]
    fn a_reclaimed_job_takes_its_first_result_and_drops_the_second_without_fault() {
        let w = small();
        let mut store = ResultStore::new(w.jobs);
        let computed = |id| {
            let mut job = make_job(&w, id);
            compute_slice(&mut job, usize::MAX, &w);
            job.data
        };
        assert_eq!(store.insert(0, computed(0)), Insert::Stored);
        // Jobs 0 and 1 were lent to a slave that was lost; 0's result had
        // already come back, so only 1 needs computing again.
        assert_eq!(store.reclaim([0, 1, 77]), vec![1]);
        assert!(!store.contains(1));
        assert_eq!(store.insert(1, computed(1)), Insert::Stored);
        // The slave's results, arriving late.
        assert_eq!(store.insert(0, computed(0)), Insert::Late);
        assert_eq!(store.insert(1, computed(1)), Insert::Late);
        assert_eq!(store.late_results(), 2);
        for id in 2..w.jobs {
            assert_eq!(store.insert(id, computed(id)), Insert::Stored);
        }
        // A job never reclaimed is still a duplicate.
        assert_eq!(store.insert(2, computed(2)), Insert::Duplicate);
        let v = store.verify(&w);
        assert_eq!(v.duplicated, vec![2]);
        assert!(v.missing.is_empty());
    }
}
