//! A real run again, in virtual time (`loadbal simulate --replay TRACE`):
//! the trace a run wrote (`--trace`) gives each job's measured cost on the
//! node that computed it (the worker's wait for it through the event loop,
//! making its data ready, computing it at full throttle, handing its result
//! back), the path each node's pacer measured (rate and smallest round
//! trip), each node's throttle over the run and the run's settings. The
//! simulator runs the run on those instead of a machine profile, with the
//! same policy or another, other throttle changes or another link: "what
//! would adaptive have done on the run I just had".
//!
//! A job's cost on the node that did not compute it is its cost where it
//! was computed, scaled by the ratio of the two nodes' median computing
//! times (1 when a node computed none). The measured times
//! hold what slowed the workers in the real run (the event loops, moving
//! data), so the replay charges nothing more for moving bytes.

use std::sync::Arc;

use crate::config::{Config, ConfigFile, Role};
use crate::link::LinkConfig;
use crate::node::core::RunInfo;
use crate::node::harness::MeasuredJobs;
use crate::protocol::Phase;
use crate::trace::RecordedNode;

use super::{MachineModel, SimError, Simulation, ThrottleChange};

/// A recorded run, ready to run again.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The run's settings, as a config (the master's, each node's
    /// throttle, workers and link its own).
    pub config: Config,
    /// Each node's jobs' costs (master, slave).
    pub measured: [Arc<MeasuredJobs>; 2],
    /// The throttle changes of the run, seconds from its start.
    pub changes: Vec<ThrottleChange>,
    /// How long the real run took, from the bootstrap to the master's end
    /// of aggregation (None: the trace has no master, or it did not finish).
    pub real_finish_s: Option<f64>,
    /// Median seconds a job took to compute at full throttle (master,
    /// slave).
    pub median_compute_s: [f64; 2],
    /// Mean seconds a job took to prepare (master, slave).
    pub mean_prepare_s: [f64; 2],
    /// Mean seconds from a job computed to its node's core taking it
    /// (master, slave).
    pub mean_handoff_s: [f64; 2],
    /// Mean seconds a worker waited for its next job while its node had
    /// one (master, slave).
    pub mean_wait_s: [f64; 2],
    /// What the replay assumed for lack of a measurement, in words.
    pub assumed: Vec<String>,
}

/// A job's measured cost on the node that computed it.
#[derive(Debug, Clone, Copy)]
struct Cost {
    /// From the worker's previous job taken by the core to this one
    /// reaching it; None when the node had no job for it meanwhile (or
    /// this was the worker's first).
    wait: Option<f64>,
    prepare: f64,
    compute: f64,
    /// From computed to taken by the core; None when the job's span held
    /// one of the throttle's sleeps too (the two cannot be told apart).
    handoff: Option<f64>,
}

impl Cost {
    /// None when a time is not a duration (negative, not a number, or
    /// past a day: a trace edited by hand, or broken).
    fn of(job: &crate::trace::RecordedJob, node: &RecordedNode, wait: Option<f64>) -> Option<Cost> {
        let duration = |v: f64| (v.is_finite() && (0.0..86_400.0).contains(&v)).then_some(v);
        let prepare = duration(job.cost.prepare_s)?;
        let compute = duration(job.cost.compute_s)?;
        duration(job.end_s - job.start_s)?;
        let extra = (job.end_s - job.start_s - prepare - compute).max(0.0);
        // The throttle when the job started: a span longer than half the
        // period's idle part holds a sleep.
        let throttle = node
            .throttles
            .iter()
            .take_while(|(at, _)| *at <= job.start_s)
            .last()
            .map_or(node.run.throttle, |(_, t)| *t);
        let idle = crate::throttle::PERIOD.as_secs_f64() * (1.0 - throttle.clamp(0.0, 1.0));
        let handoff = (throttle >= 1.0 || extra < idle / 2.0).then_some(extra);
        Some(Cost {
            wait,
            prepare,
            compute,
            handoff,
        })
    }
}

/// The longest gap between two jobs of a worker counted as the round trip
/// through the event loop rather than the node having no job for it.
const LONGEST_WAIT_S: f64 = 0.005;

/// Each of `node`'s jobs' wait (in the order of `node.jobs`): the gap on its
/// worker since the job before, when the node had jobs queued then and the
/// gap is under [`LONGEST_WAIT_S`].
fn waits(node: &RecordedNode) -> Vec<Option<f64>> {
    let mut order: Vec<usize> = (0..node.jobs.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&node.jobs[a], &node.jobs[b]);
        (a.worker, a.start_s)
            .partial_cmp(&(b.worker, b.start_s))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let queued_at = |t: f64| {
        node.queue
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0, |(_, q)| *q)
    };
    let mut waits = vec![None; node.jobs.len()];
    for pair in order.windows(2) {
        let (before, job) = (&node.jobs[pair[0]], &node.jobs[pair[1]]);
        if before.worker != job.worker {
            continue;
        }
        let gap = job.start_s - before.end_s;
        if (0.0..LONGEST_WAIT_S).contains(&gap) && queued_at(before.end_s) > 0 {
            waits[pair[1]] = Some(gap);
        }
    }
    waits
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn median(values: Vec<f64>) -> Option<f64> {
    (!values.is_empty()).then(|| super::median(&values))
}

/// The link of one direction from what its sender's pacer measured: the
/// rate as a bottleneck, half the smallest round trip as the delay.
/// A measured figure the link model cannot take is brought within its
/// range (a rate, say, beyond what a link config allows).
fn measured_link(node: &RecordedNode) -> Option<LinkConfig> {
    let path = node.path?;
    let usable = |v: f64| v.is_finite() && v >= 0.0;
    (usable(path.rate_bytes_per_s) && path.rate_bytes_per_s > 0.0 && usable(path.min_rtt_s)).then(
        || LinkConfig {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay_ms: (path.min_rtt_s * 1000.0 / 2.0).min(60_000.0),
            jitter_ms: 0.0,
            bandwidth_mbit: (path.rate_bytes_per_s * 8.0 / 1e6)
                .clamp(crate::config::limits::MIN_BANDWIDTH_MBIT, 1_000_000.0),
            seed: 1,
        },
    )
}

impl Replay {
    /// The replay of a trace's nodes (one trace with both, as the demo
    /// writes, or each node's own).
    pub fn from_trace(nodes: &[RecordedNode]) -> Result<Replay, String> {
        let find = |role: Role| nodes.iter().find(|n| n.role == role);
        let (master, slave) = (find(Role::Master), find(Role::Slave));
        let Some(first) = master.or(slave) else {
            return Err("the trace holds no node".to_owned());
        };
        let mut assumed = Vec::new();
        let run: &RunInfo = &first.run;
        if master.is_none() {
            assumed.push(
                "the trace has no master: its workers, throttle and link are taken as the slave's"
                    .to_owned(),
            );
        }
        if slave.is_none() {
            assumed.push(
                "the trace has no slave: its workers, throttle and link are taken as the master's \
                 (give the slave's trace too: --replay twice)"
                    .to_owned(),
            );
        }
        // Two traces of one run: each node's says the same of the run.
        if let (Some(m), Some(s)) = (master, slave) {
            let run_of = |r: &RunInfo| {
                (
                    r.kind.clone(),
                    r.jobs,
                    r.elements_per_job,
                    r.iterations,
                    r.initial.to_bits(),
                    r.addend.to_bits(),
                    r.arrivals
                        .map(|a| (a.rate_per_s.to_bits(), a.duration_s.to_bits(), a.seed)),
                    r.policy.clone(),
                    r.threshold,
                )
            };
            if run_of(&m.run) != run_of(&s.run) {
                return Err(
                    "the master's and the slave's traces are of different runs (their workloads \
                     or policies differ)"
                        .to_owned(),
                );
            }
        }
        let node_run = |role: Role| find(role).map_or(run, |n| &n.run);
        let vector = run.kind == "vector";
        let mut file = ConfigFile::default();
        file.workload.jobs = run.jobs;
        file.workload.iterations = run.iterations.max(1);
        file.workload.initial = run.initial;
        file.workload.addend = run.addend;
        file.workload.arrivals = run.arrivals;
        file.workload.elements_per_job = if vector {
            run.elements_per_job
        } else {
            // A digits or command job is bytes: modelled as doubles of the
            // mean batch's bytes per job (within the config's limit), each
            // one iteration; the time is the measured one anyway.
            let (bytes, jobs) = nodes.iter().fold((0u64, 0u64), |a, n| {
                (a.0 + n.jobs_sent.0, a.1 + n.jobs_sent.1)
            });
            file.workload.iterations = 1;
            let limit = crate::config::limits::MAX_ELEMENTS_PER_JOB;
            let elements = bytes.checked_div(jobs).map_or(1, |b| b.div_ceil(8).max(1));
            let elements = u32::try_from(elements).unwrap_or(u32::MAX).min(limit);
            assumed.push(match bytes.checked_div(jobs) {
                Some(mean) => format!(
                    "a {} job moves as its mean bytes in a batch: {mean} ({jobs} jobs sent){}",
                    run.kind,
                    if elements == limit {
                        ", cut to the config's largest job"
                    } else {
                        ""
                    }
                ),
                None => format!(
                    "a {} job moves as 8 bytes: the trace shows no batch of jobs sent",
                    run.kind
                ),
            });
            elements
        };
        file.policy.transfer = run.policy.clone();
        file.policy.threshold = Some(run.threshold);
        file.policy.state_interval_ms = run.state_interval_ms;
        file.network.datagram_bytes = Some(run.datagram_bytes);
        file.network.compression = Some(run.compression);
        for role in [Role::Master, Role::Slave] {
            let r = node_run(role);
            let node = if role == Role::Master {
                &mut file.master
            } else {
                &mut file.slave
            };
            node.throttle = r.throttle;
            node.workers = r.workers;
        }
        let mut config = file
            .validate()
            .map_err(|e| format!("the trace's run does not make a config: {e}"))?;
        // Each direction's link: the emulated one the node ran with, or
        // what its pacer measured (or the other direction's, or loopback).
        let measured_or = |role: Role| {
            find(role)
                .and_then(measured_link)
                .or_else(|| find(role.peer()).and_then(measured_link))
        };
        for role in [Role::Master, Role::Slave] {
            let link = match node_run(role).link {
                Some(link) => {
                    link.validate(&format!("the {} node's link", role.name()))
                        .map_err(|e| format!("the trace's run does not make a config: {e}"))?;
                    link
                }
                None => measured_or(role).unwrap_or_else(|| {
                    assumed.push(format!(
                        "no path measured from the {}: loopback assumed",
                        role.name()
                    ));
                    super::loopback_link()
                }),
            };
            config.node_mut(role).link = Some(link);
        }
        // Each node's jobs' costs.
        let total = run
            .arrivals
            .as_ref()
            .map_or(run.jobs, |_| file.workload.schedule().total());
        let mut by_node: [Vec<Option<Cost>>; 2] =
            [vec![None; total as usize], vec![None; total as usize]];
        for (i, role) in [Role::Master, Role::Slave].into_iter().enumerate() {
            let Some(node) = find(role) else { continue };
            let waits = waits(node);
            let (mut past, mut unusable) = (0u32, 0u32);
            for (job, wait) in node.jobs.iter().zip(waits) {
                let Some(slot) = by_node[i].get_mut(job.id as usize) else {
                    past += 1;
                    continue;
                };
                let Some(cost) = Cost::of(job, node, wait) else {
                    unusable += 1;
                    continue;
                };
                if job.kept || slot.is_none() {
                    *slot = Some(cost);
                }
            }
            if past > 0 {
                assumed.push(format!(
                    "{past} jobs the {} computed are past the run's {total} (added while it \
                     went): left out",
                    role.name()
                ));
            }
            if unusable > 0 {
                assumed.push(format!(
                    "{unusable} jobs of the {} have times that are not durations (negative, or \
                     past a day): left out, the node's typical job in their place",
                    role.name()
                ));
            }
        }
        let costs = |i: usize, f: fn(&Cost) -> Option<f64>| -> Vec<f64> {
            by_node[i].iter().flatten().filter_map(f).collect()
        };
        let compute = [0, 1].map(|i| median(costs(i, |c| Some(c.compute))));
        let prepare = [0, 1].map(|i| mean(&costs(i, |c| Some(c.prepare))));
        let handoff = [0, 1].map(|i| mean(&costs(i, |c| c.handoff)));
        let wait = [0, 1].map(|i| mean(&costs(i, |c| c.wait)));
        let Some(any_compute) = compute[0].or(compute[1]) else {
            return Err("the trace holds no computed job to take costs from".to_owned());
        };
        let either = |pair: [Option<f64>; 2], none: f64| {
            let any = pair[0].or(pair[1]).unwrap_or(none);
            [pair[0].unwrap_or(any), pair[1].unwrap_or(any)]
        };
        let median_compute_s = either(compute, any_compute);
        let mean_prepare_s = either(prepare, 0.0);
        let mean_handoff_s = either(handoff, 0.0);
        let mean_wait_s = either(wait, 0.0);
        let measured = [0, 1].map(|i| {
            let other = 1 - i;
            // A job the other node computed takes it this node's typical
            // time for that node's (1 where either has none to compare).
            let scale = if median_compute_s[i] > 0.0 && median_compute_s[other] > 0.0 {
                median_compute_s[i] / median_compute_s[other]
            } else {
                1.0
            };
            let mut m = MeasuredJobs {
                wait_s: Vec::with_capacity(total as usize),
                prepare_s: Vec::with_capacity(total as usize),
                compute_s: Vec::with_capacity(total as usize),
                handoff_s: Vec::with_capacity(total as usize),
            };
            for (mine, theirs) in by_node[i].iter().zip(&by_node[other]) {
                let (wait, prepare, handoff) = match mine {
                    Some(c) => (
                        c.wait.unwrap_or(mean_wait_s[i]),
                        c.prepare,
                        c.handoff.unwrap_or(mean_handoff_s[i]),
                    ),
                    None => (mean_wait_s[i], mean_prepare_s[i], mean_handoff_s[i]),
                };
                let compute = match (mine, theirs) {
                    (Some(c), _) => c.compute,
                    (None, Some(c)) => c.compute * scale,
                    (None, None) => median_compute_s[i],
                };
                m.wait_s.push(wait);
                m.prepare_s.push(prepare);
                m.compute_s.push(compute);
                m.handoff_s.push(handoff);
            }
            Arc::new(m)
        });
        // The throttle over the run: every recorded move after the first
        // (the run's start).
        let mut changes = Vec::new();
        for role in [Role::Master, Role::Slave] {
            if let Some(n) = find(role) {
                for &(at_s, throttle) in n.throttles.iter().skip(1) {
                    changes.push(ThrottleChange {
                        at_s: at_s.max(0.0),
                        role,
                        throttle: throttle.clamp(0.0, 1.0),
                    });
                }
            }
        }
        changes.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let real_finish_s =
            master.and_then(|m| Some(m.phase_at(Phase::Done)? - m.phase_at(Phase::Bootstrap)?));
        Ok(Replay {
            config,
            measured,
            changes,
            real_finish_s,
            median_compute_s,
            mean_prepare_s,
            mean_handoff_s,
            mean_wait_s,
            assumed,
        })
    }

    /// Reads the traces at `paths` (a demo's, or each node's) and makes
    /// their replay.
    pub fn read(paths: &[std::path::PathBuf]) -> Result<Replay, String> {
        let mut nodes: Vec<RecordedNode> = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: cannot read it: {e}", path.display()))?;
            let read = crate::trace::read(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            for node in read {
                if nodes.iter().any(|n| n.role == node.role) {
                    return Err(format!(
                        "{}: a second trace of the {} node (give each node's once)",
                        path.display(),
                        node.role.name()
                    ));
                }
                nodes.push(node);
            }
        }
        let mut replay = Replay::from_trace(&nodes)?;
        if paths.len() > 1 {
            replay.assumed.push(
                "each node's trace is on its own clock, from its own bootstrap: the slave's \
                 throttle moves may come early by the time the bootstrap took to reach it"
                    .to_owned(),
            );
        }
        Ok(replay)
    }

    /// Each node's workers' rate, jobs a second at full throttle (master,
    /// slave): one over its median job.
    pub fn rates(&self) -> [f64; 2] {
        self.median_compute_s.map(|s| 1.0 / s.max(1e-9))
    }

    /// The ideal finishing time of the replayed run under `config` and
    /// `changes`, each node at its own rate.
    pub fn ideal_s(&self, config: &Config, changes: &[ThrottleChange]) -> f64 {
        super::ideal_seconds_at(config, self.rates(), changes)
    }

    /// The machine the replay models: its workers at the master's median
    /// job (for the ideal), moving data charged nothing more.
    pub fn machine(&self) -> MachineModel {
        MachineModel {
            rate_jobs_per_s: 1.0 / self.median_compute_s[0].max(1e-9),
            seconds_per_byte: 0.0,
            jobs: [0, 1].map(|i| super::JobCosts {
                wait_s: self.mean_wait_s[i],
                prepare_s: self.mean_prepare_s[i],
                handoff_s: self.mean_handoff_s[i],
            }),
            cores: u32::MAX,
        }
    }

    /// Runs the replay under `config` (this replay's, or one with another
    /// policy or link) and `changes` (this replay's, or others).
    pub fn run(
        &self,
        config: &Config,
        changes: &[ThrottleChange],
        seed: u64,
    ) -> Result<Simulation, SimError> {
        super::simulate_measured(
            config,
            &self.machine(),
            changes,
            seed,
            Some(super::Measured {
                jobs: self.measured.clone(),
                rates: self.rates(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Machine, parse};
    use crate::node::core::JobCost;
    use crate::trace::RecordedJob;

    fn config(extra: &str) -> Config {
        let text = format!(
            r#"{{ "workload": {{ "jobs": 128, "elements_per_job": 4096, "iterations": 1000 }} {extra} }}"#
        );
        let file: ConfigFile = parse(&text, "test").unwrap();
        file.validate_on(&Machine {
            memory_bytes: 0,
            logical_cpus: 2,
        })
        .unwrap()
    }

    fn machine() -> MachineModel {
        MachineModel {
            rate_jobs_per_s: 400.0,
            seconds_per_byte: 0.0,
            jobs: [super::super::JobCosts {
                prepare_s: 1e-4,
                ..super::super::JobCosts::default()
            }; 2],
            cores: u32::MAX,
        }
    }

    #[test]
    fn a_simulated_run_replayed_finishes_when_it_did() {
        let c = config(r#", "policy": {"transfer": "completion"}, "slave": {"throttle": 0.4}"#);
        let change: ThrottleChange = "0.05:master:0.5".parse().unwrap();
        let sim = super::super::simulate(&c, &machine(), &[change], 1).unwrap();
        let nodes = crate::trace::read(&sim.trace).unwrap();
        let replay = Replay::from_trace(&nodes).unwrap();
        assert!(replay.assumed.is_empty(), "{:?}", replay.assumed);
        // The run's settings and its throttle change, as it had them.
        assert_eq!(replay.config.workload.jobs, 128);
        assert_eq!(replay.config.workload.elements_per_job, 4096);
        assert_eq!(replay.config.policy.transfer, "completion");
        assert_eq!(
            (replay.config.master.throttle, replay.config.slave.throttle),
            (1.0, 0.4)
        );
        assert_eq!(replay.changes.len(), 1);
        assert_eq!(
            (replay.changes[0].role, replay.changes[0].throttle),
            (Role::Master, 0.5)
        );
        assert!(
            (replay.changes[0].at_s - 0.05).abs() < 1e-6,
            "{:?}",
            replay.changes
        );
        // Each job's cost as modelled: 4096 x 1000 updates at 400 jobs a
        // second of them, and the overhead.
        assert!((replay.median_compute_s[0] - 1.0 / 400.0).abs() < 1e-9);
        assert!((replay.mean_prepare_s[1] - 1e-4).abs() < 1e-9);
        let real = replay.real_finish_s.unwrap();
        assert!((real - sim.prediction.finish_s).abs() < 1e-6);
        let again = replay.run(&replay.config, &replay.changes, 1).unwrap();
        assert!(again.report.verified);
        let off = again.prediction.finish_s / real - 1.0;
        assert!(
            off.abs() < 0.02,
            "replayed {} against {real}",
            again.prediction.finish_s
        );
        // Another policy on the same run: a run of its own, verified.
        let mut other = replay.config.clone();
        other.policy.transfer = "none".to_owned();
        other.policy.threshold = None;
        let none = replay.run(&other, &replay.changes, 1).unwrap();
        assert_eq!(
            none.report.jobs_moved.to_slave + none.report.jobs_moved.to_master,
            0
        );
        assert!(none.prediction.finish_s > again.prediction.finish_s);
    }

    fn job(id: u32, start_s: f64, end_s: f64, compute_s: f64) -> RecordedJob {
        RecordedJob {
            id,
            worker: 0,
            start_s,
            end_s,
            cost: JobCost {
                prepare_s: 0.001,
                compute_s,
            },
            kept: true,
        }
    }

    fn node(role: Role, throttle: f64, jobs: Vec<RecordedJob>) -> RecordedNode {
        let run = crate::node::core::RunInfo {
            kind: "vector".to_owned(),
            jobs: 4,
            elements_per_job: 8,
            iterations: 10,
            initial: 1.0,
            addend: 1.0,
            arrivals: None,
            policy: "sender".to_owned(),
            threshold: 2,
            state_interval_ms: 50,
            workers: 1,
            throttle,
            datagram_bytes: 65507,
            compression: false,
            local: true,
            link: None,
        };
        RecordedNode {
            role,
            run,
            path: Some(crate::node::core::PathEstimate {
                rate_bytes_per_s: 1.25e6,
                min_rtt_s: 0.004,
            }),
            jobs,
            throttles: vec![(0.0, throttle)],
            phases: vec![(0.0, Phase::Bootstrap), (0.1, Phase::Done)],
            queue: vec![(0.0, 3), (0.025, 0)],
            jobs_sent: (0, 0),
        }
    }

    #[test]
    fn each_job_costs_what_its_trace_measured() {
        // The master: job 0, then job 1 after a 2 ms round trip (jobs were
        // queued), then job 2 after 20 ms with the queue empty (no job for
        // the worker: not a cost). Each span 1 ms longer than its prepare
        // and compute: the handoff.
        let master = node(
            Role::Master,
            1.0,
            vec![
                job(0, 0.000, 0.012, 0.010),
                job(1, 0.014, 0.026, 0.010),
                job(2, 0.046, 0.058, 0.010),
            ],
        );
        // The slave, at 0.5, twice as slow: job 3's span holds a sleep of
        // the throttle.
        let slave = node(Role::Slave, 0.5, vec![job(3, 0.0, 0.072, 0.020)]);
        let replay = Replay::from_trace(&[master, slave]).unwrap();
        let m = &replay.measured[0];
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
        };
        // Waits: none measured for job 0 or 2 (the mean of the others: job 1's).
        assert!(
            close(&m.wait_s, &[0.002, 0.002, 0.002, 0.002]),
            "{:?}",
            m.wait_s
        );
        assert!(close(&m.prepare_s, &[0.001; 4]), "{:?}", m.prepare_s);
        assert!(close(&m.handoff_s, &[0.001; 4]), "{:?}", m.handoff_s);
        // Job 3 was the slave's: the master's cost for it is the slave's
        // scaled by the two medians (10 ms against 20), and the other way.
        assert!(close(&m.compute_s, &[0.010; 4]), "{:?}", m.compute_s);
        let s = &replay.measured[1];
        assert!(close(&s.compute_s, &[0.020; 4]), "{:?}", s.compute_s);
        assert_eq!(replay.rates(), [100.0, 50.0]);
        // The slave's job 3 span holds a sleep: its handoff is not known,
        // and the slave has no other, so the master's mean stands in.
        assert!(close(&s.handoff_s, &[0.001; 4]), "{:?}", s.handoff_s);
        // The link each way from the pacer: 10 Mbit/s, 2 ms one way.
        let link = replay.config.master.link.unwrap();
        assert!((link.bandwidth_mbit - 10.0).abs() < 1e-9 && (link.delay_ms - 2.0).abs() < 1e-9);
        assert_eq!(replay.real_finish_s, Some(0.1));
    }

    #[test]
    fn a_trace_that_cannot_be_replayed_says_why() {
        let err = crate::trace::read("{}").unwrap_err();
        assert!(err.contains("no \"traceEvents\" list"), "{err}");
        let err = crate::trace::read(r#"{"traceEvents": []}"#).unwrap_err();
        assert!(err.contains("has no run description"), "{err}");
        let err = crate::trace::read("not json").unwrap_err();
        assert!(err.starts_with("is not a trace (JSON)"), "{err}");
        let lonely = node(Role::Master, 1.0, Vec::new());
        let err = Replay::from_trace(&[lonely]).unwrap_err();
        assert_eq!(err, "the trace holds no computed job to take costs from");
        let err = crate::trace::read(r#"{"traceEvents": [{"name": "loadbal_run""#).unwrap_err();
        assert!(err.starts_with("is not a trace (JSON)"), "{err}");
        // One node alone replays, saying what it assumed.
        let master = node(Role::Master, 1.0, vec![job(0, 0.0, 0.012, 0.010)]);
        let replay = Replay::from_trace(std::slice::from_ref(&master)).unwrap();
        assert_eq!(replay.assumed.len(), 1);
        assert!(replay.assumed[0].starts_with("the trace has no slave"));
        let slave = node(Role::Slave, 1.0, vec![job(1, 0.0, 0.012, 0.010)]);
        let replay = Replay::from_trace(std::slice::from_ref(&slave)).unwrap();
        assert!(replay.assumed[0].starts_with("the trace has no master"));
        assert_eq!(replay.real_finish_s, None);
        // Two traces of different runs do not make one.
        let mut other = slave.clone();
        other.run.jobs = 5;
        let err = Replay::from_trace(&[master.clone(), other]).unwrap_err();
        assert!(err.contains("traces are of different runs"), "{err}");
        // Jobs past the run, and times that are not durations, are left
        // out and counted.
        let mut odd = master.clone();
        odd.jobs.push(job(9, 0.0, 0.012, 0.010));
        odd.jobs.push(job(2, 0.0, 0.012, -1.0));
        let replay = Replay::from_trace(&[odd, slave.clone()]).unwrap();
        assert_eq!(
            replay.assumed,
            [
                "1 jobs the master computed are past the run's 4 (added while it went): left out",
                "1 jobs of the master have times that are not durations (negative, or past a \
                 day): left out, the node's typical job in their place"
            ]
        );
        // A link the run's description gives that no link can be is named.
        let mut bad = master.clone();
        bad.run.link = Some(crate::link::LinkConfig {
            loss: 2.0,
            ..crate::link::LinkConfig::default()
        });
        let err = Replay::from_trace(&[bad, slave]).unwrap_err();
        assert!(err.contains("the master node's link.loss"), "{err}");
    }

    #[test]
    fn a_run_with_arriving_jobs_replays() {
        let text = r#"{ "workload": { "jobs": 64, "elements_per_job": 4096, "iterations": 1000,
            "arrivals": { "rate_per_s": 200, "duration_s": 0.2 } } }"#;
        let file: ConfigFile = parse(text, "test").unwrap();
        let c = file
            .validate_on(&Machine {
                memory_bytes: 0,
                logical_cpus: 2,
            })
            .unwrap();
        let sim = super::super::simulate(&c, &machine(), &[], 1).unwrap();
        let total = sim.report.jobs_total;
        assert!(total > 64, "{total}");
        let replay = Replay::from_trace(&crate::trace::read(&sim.trace).unwrap()).unwrap();
        assert_eq!(replay.measured[0].compute_s.len(), total as usize);
        let again = replay.run(&replay.config, &replay.changes, 1).unwrap();
        assert!(again.report.verified);
        assert_eq!(again.report.jobs_total, total);
        let off = again.prediction.finish_s / sim.prediction.finish_s - 1.0;
        assert!(off.abs() < 0.02, "{off}");
    }
}
