//! A node's workers computing a workload alone, with no peer: the same
//! worker loop, queue, throttle schedule and result store a run uses, and
//! nothing else. For the benchmark (node overhead, worker scaling, throttle
//! accuracy), which compares it with the bare kernel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::core::Work;
use super::worker::{self, Knob};
use crate::config::WorkloadConfig;
use crate::workload::{Insert, Job, ResultStore};

/// What a solo run measured.
#[derive(Debug)]
pub struct SoloRun {
    /// From the first job taken to the last finished (or the deadline).
    pub wall: Duration,
    /// Jobs finished.
    pub jobs_done: u32,
    /// Each worker thread's CPU time over the run, from the kernel's
    /// accounting (`None` where the system does not say).
    pub worker_cpu: Vec<Option<Duration>>,
    /// The result store, for checking.
    pub results: ResultStore,
}

/// Runs `workers` workers at `throttle` over `jobs` (already made, so the
/// time is the computing, not the allocating) until all are done or
/// `deadline` passes.
pub fn compute_alone(
    workload: &WorkloadConfig,
    jobs: Vec<Job>,
    workers: usize,
    throttle: f64,
    deadline: Option<Duration>,
) -> std::io::Result<SoloRun> {
    let total = jobs.len() as u32;
    // Every job in one channel that all the workers take from.
    let (tx, rx) = crossbeam_channel::unbounded();
    for job in jobs {
        let _ = tx.send(Work {
            worker: 0,
            job,
            workload: workload.clone(),
            pieces: None,
        });
    }
    drop(tx);
    let knob = Arc::new(Knob::new(throttle));
    // Dropped to stop every worker: at the deadline, or after the last job.
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let stop_tx = Arc::new(Mutex::new(Some(stop_tx)));
    let store = Arc::new(Mutex::new((ResultStore::new(workload.jobs), 0u32)));
    let start = Instant::now();
    let threads: Vec<_> = (0..workers.max(1))
        .map(|i| {
            let (rx, knob, stop, store, stopper) = (
                rx.clone(),
                knob.clone(),
                stop_rx.clone(),
                store.clone(),
                stop_tx.clone(),
            );
            std::thread::Builder::new()
                .name(format!("solo-worker-{i}"))
                .spawn(move || {
                    let before = thread_cpu_time();
                    worker::run(
                        &rx,
                        &knob,
                        &stop,
                        |job: Job, _, _, _| {
                            let mut s = store.lock();
                            if s.0.insert(job.id, job.data) == Insert::Stored {
                                s.1 += 1;
                            }
                            if s.1 == total {
                                stopper.lock().take();
                            }
                            true
                        },
                        || {},
                    );
                    Some(thread_cpu_time()? - before?)
                })
        })
        .collect::<Result<_, _>>()?;
    drop(stop_rx);
    if let Some(limit) = deadline {
        while start.elapsed() < limit && stop_tx.lock().is_some() {
            std::thread::sleep(Duration::from_millis(5).min(limit - start.elapsed().min(limit)));
        }
        stop_tx.lock().take();
    }
    let worker_cpu: Vec<Option<Duration>> = threads
        .into_iter()
        .map(|t| t.join().ok().flatten())
        .collect();
    let wall = start.elapsed();
    let (results, jobs_done) = std::mem::replace(&mut *store.lock(), (ResultStore::new(0), 0));
    Ok(SoloRun {
        wall,
        jobs_done,
        worker_cpu,
        results,
    })
}

/// The calling thread's CPU time so far, from `/proc/thread-self/schedstat`
/// (nanoseconds on a CPU, the scheduler's own accounting); `None` where
/// that file does not exist.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::make_job;

    fn small() -> WorkloadConfig {
        WorkloadConfig {
            jobs: 40,
            elements_per_job: 100,
            iterations: 50,
            ..WorkloadConfig::default()
        }
    }

    #[test]
    fn workers_alone_compute_every_job_exactly() {
        let w = small();
        for workers in [1, 3] {
            let jobs = (0..w.jobs).map(|id| make_job(&w, id)).collect();
            let run = compute_alone(&w, jobs, workers, 1.0, None).unwrap();
            assert_eq!(run.jobs_done, 40);
            assert_eq!(run.worker_cpu.len(), workers);
            let v = run.results.verify(&w);
            assert!(v.verified, "{v:?}");
        }
    }

    #[test]
    fn a_deadline_stops_a_paused_worker() {
        let w = small();
        let jobs = (0..w.jobs).map(|id| make_job(&w, id)).collect();
        let run = compute_alone(&w, jobs, 1, 0.0, Some(Duration::from_millis(50))).unwrap();
        assert_eq!(run.jobs_done, 0);
    }

    #[test]
    fn thread_cpu_time_grows_with_work_and_not_with_sleep() {
        let Some(t0) = thread_cpu_time() else {
            return; // No /proc here: nothing to check.
        };
        std::thread::sleep(Duration::from_millis(30));
        let slept = thread_cpu_time().unwrap() - t0;
        let t1 = thread_cpu_time().unwrap();
        let mut x = 0u64;
        while thread_cpu_time().unwrap() - t1 < Duration::from_millis(20) {
            x = std::hint::black_box(x + 1);
        }
        assert!(slept < Duration::from_millis(20), "slept {slept:?}");
    }
}
