//! The worker thread: takes jobs from the front of the queue and computes
//! them slice by slice, honouring the throttle: in each 100 ms period it
//! computes for `throttle * 100 ms` and sleeps the rest (a real sleep).
//! Slices are about a million additions, so the budget is checked often
//! even when one job takes many periods.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::config::WorkloadConfig;
use crate::throttle::{Step, ThrottleSchedule};
use crate::workload::{self, Job};

/// How often an idle worker re-checks for a stop.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// Runs one worker until the node stops. `on_done` is called after each job.
pub fn run(shared: Arc<Shared>, on_done: impl Fn()) {
    let mut schedule = ThrottleSchedule::new(Instant::now());
    while let Some(mut job) = shared.take_job(IDLE_POLL) {
        let Some(params) = shared.params() else {
            // Jobs only exist once the run's parameters are known.
            shared
                .log
                .push("worker: a job arrived before the run parameters");
            shared.finish_job(job);
            continue;
        };
        if shared.result_held(job.id) {
            // A job reclaimed from a lost slave whose result came back late.
            shared.log.push(format!(
                "job {}: the lost slave's result came back late; not computed again",
                job.id
            ));
            shared.skip_job();
            on_done();
            continue;
        }
        let workload = params.workload();
        if compute(&shared, &mut job, &workload, &mut schedule) {
            shared.finish_job(job);
            on_done();
        } else {
            // Stopping mid-job: the job is abandoned with the run.
            return;
        }
    }
}

/// Computes a whole job under the throttle. Returns false if the node
/// stopped first.
fn compute(
    shared: &Shared,
    job: &mut Job,
    workload: &WorkloadConfig,
    schedule: &mut ThrottleSchedule,
) -> bool {
    let slice = workload::slice_elements(workload.iterations);
    while !job.is_complete() {
        if shared.stopping() {
            return false;
        }
        let now = Instant::now();
        match schedule.next(now, shared.throttle.get()) {
            Step::Compute => {
                workload::compute_slice(job, slice, workload);
                schedule.record(now.elapsed());
            }
            Step::SleepUntil(until) => {
                std::thread::sleep(until.saturating_duration_since(now));
            }
        }
    }
    true
}
