//! The worker spoke: takes the jobs the core gives it and computes them
//! slice by slice, honouring the throttle: in each 100 ms period it computes
//! for `throttle * 100 ms` and sleeps the rest (a real sleep, never a spin).
//! Slices are about a million additions, so the throttle and a stop are
//! checked often even when one job takes many periods. It ends when its job
//! channel closes or the node's stop token is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::core::Work;
use crate::config::WorkloadConfig;
use crate::throttle::{Step, ThrottleSchedule};
use crate::workload::kind::ByteWork;
use crate::workload::{self, Job};

/// The throttle the workers read: an `f64` in an atomic, written by the
/// node's event loop when the core says the throttle changed.
#[derive(Debug, Default)]
pub struct Knob(AtomicU64);

impl Knob {
    /// A knob set to `v`.
    pub fn new(v: f64) -> Self {
        Knob(AtomicU64::new(v.to_bits()))
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

/// Runs one worker until its job channel closes or `stop` is dropped.
/// `done` gets each computed job, when the worker took it, the time spent
/// making its data ready and the time spent computing it (the throttle's
/// sleeps left out), and says whether to go on.
pub fn run(
    jobs: &Receiver<Work>,
    knob: &Knob,
    stop: &Receiver<()>,
    mut done: impl FnMut(Job, Instant, Duration, Duration) -> bool,
    mut check: impl FnMut(),
) {
    let mut schedule = ThrottleSchedule::new(Instant::now());
    while let Ok(work) = jobs.recv() {
        let started = Instant::now();
        let mut job = work.job;
        if let Some(pieces) = &work.pieces {
            let Some(computing) = run_piece(&mut job, pieces, knob, stop) else {
                return;
            };
            if !done(job, started, Duration::ZERO, computing) {
                return;
            }
            continue;
        }
        job.make_ready(&work.workload);
        let preparing = started.elapsed();
        let mut computing = Duration::ZERO;
        if !compute(
            &mut job,
            &work.workload,
            knob,
            stop,
            &mut schedule,
            &mut computing,
            &mut check,
        ) {
            // Stopping mid-job: the job is abandoned with the run.
            return;
        }
        if !done(job, started, preparing, computing) {
            return;
        }
    }
}

/// Runs a digits or command job under the throttle: reads its input if
/// it has none yet (the master; a slave's attempt at a job it has no
/// input for fails), runs it, and leaves its output and outcome in the
/// job. Returns the running time, or None if the node stopped first.
fn run_piece(
    job: &mut Job,
    pieces: &ByteWork,
    knob: &Knob,
    stop: &Receiver<()>,
) -> Option<Duration> {
    let stopped = || matches!(stop.try_recv(), Err(TryRecvError::Disconnected));
    let input = match job.piece.take() {
        Some(piece) => Ok(piece.bytes),
        None => pieces.read(job.id),
    };
    let (output, outcome, running) = match input {
        Ok(input) => pieces.run(input, &|| knob.get(), &stopped),
        Err(e) => pieces.cannot_read(&e),
    };
    if stopped() {
        return None;
    }
    job.piece = Some(Box::new(workload::Piece {
        bytes: output,
        ran: Some(outcome),
    }));
    Some(running)
}

/// Computes a whole job under the throttle. False if the node stopped first.
fn compute(
    job: &mut Job,
    workload: &WorkloadConfig,
    knob: &Knob,
    stop: &Receiver<()>,
    schedule: &mut ThrottleSchedule,
    computing: &mut Duration,
    check: &mut impl FnMut(),
) -> bool {
    let slice = workload::slice_elements(workload.iterations);
    while !job.is_complete() {
        if matches!(stop.try_recv(), Err(TryRecvError::Disconnected)) {
            return false;
        }
        check();
        let now = Instant::now();
        match schedule.next(now, knob.get()) {
            Step::Compute => {
                workload::compute_slice(job, slice, workload);
                let took = now.elapsed();
                *computing += took;
                schedule.record(took);
            }
            Step::SleepUntil(until) => {
                // The stop token doubles as the sleep: it wakes on a stop.
                match stop.recv_timeout(until.saturating_duration_since(now)) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return false,
                }
            }
        }
    }
    true
}
