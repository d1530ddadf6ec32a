//! The run as it happened on this node, for the task stream, the jobs
//! table and the trace file: a span per job computed (which worker, from
//! when to when, where the job came from), a span per batch sent or
//! received, and the queue sampled over time. Times are seconds since the
//! node's run started, like the report's.
//!
//! The core appends; nothing is ever changed or removed, so a viewer copies
//! only what is new ([`Timeline::jobs`] from the index it had reached).

use serde::{Deserialize, Serialize};

use crate::ids::JobId;
use crate::protocol::BatchKind;

/// Where a job this node computed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The master's own share (kept at the bootstrap).
    Own,
    /// Sent to the slave by the bootstrap.
    Bootstrap,
    /// Moved here by the transfer policy.
    Moved,
    /// Lent to a slave that was lost, and taken back by the master.
    Reclaimed,
    /// Added to the run while it went (the master's Add jobs).
    Added,
}

impl Origin {
    /// Every origin, in the legend's order.
    pub const ALL: [Origin; 5] = [
        Origin::Own,
        Origin::Bootstrap,
        Origin::Moved,
        Origin::Reclaimed,
        Origin::Added,
    ];

    /// The origin's name, as the legend and the trace write it.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Own => "own",
            Origin::Bootstrap => "bootstrap",
            Origin::Moved => "moved",
            Origin::Reclaimed => "reclaimed",
            Origin::Added => "added",
        }
    }
}

/// One job computed by one of this node's workers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobSpan {
    /// The job.
    pub id: JobId,
    /// The worker's index on this node.
    pub worker: u16,
    /// When the worker took it, seconds since the run started.
    pub start_s: f64,
    /// When it handed the result back.
    pub end_s: f64,
    /// Where the job came from.
    pub origin: Origin,
    /// What it cost the worker, its sleeps left out.
    pub cost: JobCost,
    /// False when the result was not the one kept (a reclaimed job's late
    /// copy, or a job paused meanwhile): the worker's time was spent, the
    /// job counts elsewhere.
    pub kept: bool,
}

/// What a job cost the worker that computed it, the throttle's sleeps
/// left out: what a replay of the run (`loadbal simulate --replay`) gives
/// the job.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct JobCost {
    /// Seconds making its data ready, before computing (outside the
    /// throttle's budget).
    pub prepare_s: f64,
    /// Seconds computing it.
    pub compute_s: f64,
}

/// What the run was, as this node ran it: enough for a replay to run it
/// again in virtual time (`loadbal simulate --replay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The job kind's name.
    pub kind: String,
    /// Jobs present from the start.
    pub jobs: u32,
    /// Doubles per job (the vector kind).
    pub elements_per_job: u32,
    /// Additions per element.
    pub iterations: u32,
    /// Every element's initial value.
    pub initial: f64,
    /// The value added.
    pub addend: f64,
    /// Jobs arriving while the run goes, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrivals: Option<crate::arrivals::Arrivals>,
    /// The transfer policy.
    pub policy: String,
    /// Its threshold, in its unit.
    pub threshold: u32,
    /// How often this node sends its state to the peer, milliseconds.
    pub state_interval_ms: u64,
    /// This node's workers.
    pub workers: u32,
    /// This node's throttle when the run started.
    pub throttle: f64,
    /// The largest datagram this node sends.
    pub datagram_bytes: u32,
    /// Whether batches were compressed where it pays.
    pub compression: bool,
    /// Both nodes on this machine's loopback.
    pub local: bool,
    /// This node's emulated link, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<crate::link::LinkConfig>,
}

/// The path to the peer as this node's pacer estimated it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathEstimate {
    /// Bytes a second the path delivered.
    pub rate_bytes_per_s: f64,
    /// The smallest round trip seen, seconds.
    pub min_rtt_s: f64,
}

/// One batch of jobs or results, sent or received.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchSpan {
    /// The sender's transfer id.
    pub transfer: u32,
    /// What it carried.
    pub kind: BatchKind,
    /// True for a batch this node sent (from its first send to the peer's
    /// last ack; one whose ack never came, the run over first, has no
    /// span), false for one it received (first chunk to last).
    pub outbound: bool,
    /// Jobs or results in it.
    pub jobs: u32,
    /// Its bytes on the wire (sent) or reassembled (received).
    pub bytes: usize,
    /// Seconds since the run started.
    pub start_s: f64,
    /// Seconds since the run started.
    pub end_s: f64,
}

/// This node's queue at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueSample {
    /// Seconds since the run started.
    pub at_s: f64,
    /// Jobs waiting in the queue.
    pub queue: u32,
    /// Jobs in batches to the peer not acknowledged yet.
    pub in_flight: u32,
}

/// The node's CPU use at one moment, as the hardware monitor measured it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSample {
    /// Seconds since the run started.
    pub at_s: f64,
    /// The node's own threads, percent of one core.
    pub node: f32,
    /// The whole machine, percent of one core (N busy cores: N × 100).
    pub system: f32,
}

/// Shortest time between two queue samples: often enough to show every
/// rise and fall a policy causes, few enough for an hour's run (180,000
/// samples at most).
pub const SAMPLE_EVERY_S: f64 = 0.02;

/// The run on this node so far.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    origins: Vec<Origin>,
    jobs: Vec<JobSpan>,
    batches: Vec<BatchSpan>,
    queue: Vec<QueueSample>,
    cpu: Vec<CpuSample>,
    throttles: Vec<(f64, f64)>,
    phases: Vec<(f64, crate::protocol::Phase)>,
    run: Option<RunInfo>,
    path: Option<PathEstimate>,
}

impl Timeline {
    /// A timeline for a run of `jobs` jobs.
    pub fn new(jobs: u32) -> Self {
        Timeline {
            origins: vec![Origin::Own; jobs as usize],
            ..Timeline::default()
        }
    }

    /// Makes the run `jobs` jobs long; never shrinks.
    pub fn grow_to(&mut self, jobs: u32) {
        if jobs as usize > self.origins.len() {
            self.origins.resize(jobs as usize, Origin::Own);
        }
    }

    /// Job `id` entered this node's queue from `origin`.
    pub fn arrived(&mut self, id: JobId, origin: Origin) {
        if let Some(o) = self.origins.get_mut(id as usize) {
            *o = origin;
        }
    }

    /// Where job `id` last came from.
    pub fn origin(&self, id: JobId) -> Origin {
        self.origins
            .get(id as usize)
            .copied()
            .unwrap_or(Origin::Own)
    }

    /// A worker finished job `id`.
    pub fn computed(
        &mut self,
        id: JobId,
        worker: u16,
        (start_s, end_s): (f64, f64),
        cost: JobCost,
        kept: bool,
    ) {
        let origin = self.origin(id);
        self.jobs.push(JobSpan {
            id,
            worker,
            start_s: start_s.min(end_s),
            end_s,
            origin,
            cost,
            kept,
        });
    }

    /// What the run is (set when it starts).
    pub fn set_run(&mut self, run: RunInfo) {
        self.run = Some(run);
    }

    /// What the run is, once it started.
    pub fn run(&self) -> Option<&RunInfo> {
        self.run.as_ref()
    }

    /// The throttle changed to `throttle` at `at_s`.
    pub fn throttle(&mut self, at_s: f64, throttle: f64) {
        self.throttles.push((at_s, throttle));
    }

    /// The run entered `phase` at `at_s`.
    pub fn phase(&mut self, at_s: f64, phase: crate::protocol::Phase) {
        self.phases.push((at_s, phase));
    }

    /// When the run entered each phase it reached (seconds since its start).
    pub fn phases(&self) -> &[(f64, crate::protocol::Phase)] {
        &self.phases
    }

    /// Every throttle change in the run: (seconds since its start, throttle).
    pub fn throttles(&self) -> &[(f64, f64)] {
        &self.throttles
    }

    /// The pacer's latest estimate of the path to the peer.
    pub fn set_path(&mut self, path: PathEstimate) {
        self.path = Some(path);
    }

    /// The pacer's latest estimate of the path, if it made one.
    pub fn path(&self) -> Option<PathEstimate> {
        self.path
    }

    /// A batch was delivered (sent) or received.
    pub fn batch(&mut self, span: BatchSpan) {
        self.batches.push(span);
    }

    /// Samples the queue, unless the last sample is under
    /// [`SAMPLE_EVERY_S`] old and `force` is false.
    pub fn sample(&mut self, at_s: f64, queue: u32, in_flight: u32, force: bool) {
        if let Some(last) = self.queue.last() {
            let same = last.queue == queue && last.in_flight == in_flight;
            if same || (!force && at_s - last.at_s < SAMPLE_EVERY_S) {
                return;
            }
        }
        self.queue.push(QueueSample {
            at_s,
            queue,
            in_flight,
        });
    }

    /// The hardware monitor's sample.
    pub fn cpu_sample(&mut self, sample: CpuSample) {
        self.cpu.push(sample);
    }

    /// Every job computed here, in the order they finished.
    pub fn jobs(&self) -> &[JobSpan] {
        &self.jobs
    }

    /// Every batch sent or received, in the order they ended.
    pub fn batches(&self) -> &[BatchSpan] {
        &self.batches
    }

    /// The queue over time (a sample when it changed, at most every
    /// [`SAMPLE_EVERY_S`]).
    pub fn queue(&self) -> &[QueueSample] {
        &self.queue
    }

    /// The node's CPU use over time.
    pub fn cpu(&self) -> &[CpuSample] {
        &self.cpu
    }

    /// Appends what `source` has beyond this copy: a viewer's copy of a
    /// timeline that only grows takes only what is new.
    pub fn catch_up(&mut self, source: &Timeline) {
        fn extend<T: Copy>(into: &mut Vec<T>, from: &[T]) {
            if let Some(new) = from.get(into.len()..) {
                into.extend_from_slice(new);
            }
        }
        extend(&mut self.jobs, &source.jobs);
        extend(&mut self.batches, &source.batches);
        extend(&mut self.queue, &source.queue);
        extend(&mut self.cpu, &source.cpu);
        extend(&mut self.throttles, &source.throttles);
        extend(&mut self.phases, &source.phases);
        if self.run.is_none() {
            self.run.clone_from(&source.run);
        }
        self.path = source.path;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_catches_up_with_only_what_is_new() {
        let mut t = Timeline::new(4);
        let mut copy = Timeline::default();
        t.computed(0, 0, (0.0, 0.1), JobCost::default(), true);
        t.sample(0.0, 3, 0, false);
        copy.catch_up(&t);
        t.computed(1, 0, (0.1, 0.2), JobCost::default(), true);
        copy.catch_up(&t);
        copy.catch_up(&t);
        assert_eq!(copy.jobs(), t.jobs());
        assert_eq!(copy.queue(), t.queue());
        assert!(copy.batches().is_empty());
    }

    #[test]
    fn a_span_takes_the_origin_its_job_last_arrived_with() {
        let mut t = Timeline::new(4);
        t.arrived(2, Origin::Bootstrap);
        t.arrived(2, Origin::Moved);
        t.computed(2, 1, (0.5, 0.75), JobCost::default(), true);
        t.computed(0, 0, (0.1, 0.2), JobCost::default(), false);
        // An id out of range is own and recorded: nothing is lost.
        t.computed(9, 0, (0.3, 0.2), JobCost::default(), true);
        assert_eq!(
            t.jobs()
                .iter()
                .map(|s| (s.id, s.worker, s.origin, s.kept, s.start_s, s.end_s))
                .collect::<Vec<_>>(),
            [
                (2, 1, Origin::Moved, true, 0.5, 0.75),
                (0, 0, Origin::Own, false, 0.1, 0.2),
                (9, 0, Origin::Own, true, 0.2, 0.2),
            ]
        );
    }

    #[test]
    fn the_queue_is_sampled_when_it_changes_and_not_too_often() {
        let mut t = Timeline::new(0);
        t.sample(0.0, 10, 0, false);
        t.sample(0.005, 9, 0, false); // too soon
        t.sample(0.03, 9, 0, false);
        t.sample(0.1, 9, 0, false); // unchanged
        t.sample(0.101, 0, 0, true); // forced: the run's end
        assert_eq!(
            t.queue()
                .iter()
                .map(|q| (q.at_s, q.queue))
                .collect::<Vec<_>>(),
            [(0.0, 10), (0.03, 9), (0.101, 0)]
        );
    }
}
