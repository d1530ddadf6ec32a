//! The simulator (`loadbal simulate`): a whole run in virtual time through
//! the same node cores and policy code as the real nodes, over the link
//! model, with modelled compute: a job takes its elements x iterations over
//! the measured kernel rate, divided by its node's throttle. It predicts the
//! run report in a fraction of a second. The data is computed for real with
//! one iteration (so the run still verifies, cheaply) while time is
//! modelled with the workload's iterations.
//!
//! [`queueing`] is the classic two-queue experiment, and [`compare`] runs
//! every policy over a grid of scenarios.

mod chart;
pub mod compare;
pub mod profile;
pub mod queueing;
pub mod replay;
pub mod swarm;

pub use profile::MachineProfile;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{Config, Role};
use crate::link::LinkConfig;
use crate::node::core::End;
use crate::node::harness::Pair;
use crate::report::Report;

/// The loopback interface as the link model sees it in a simulation of
/// two nodes on one machine: no loss, a few microseconds, and the transfer
/// layer's measured throughput on it (`loadbal bench --only transport`).
pub const LOOPBACK_MBIT: f64 = 8_000.0;

/// A throttle change at a point of the run (`--throttle-at S:NODE:VALUE`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThrottleChange {
    /// Seconds from the bootstrap's start (the master's), as a report's
    /// times.
    pub at_s: f64,
    /// The node.
    pub role: Role,
    /// Its new throttle, 0 to 1.
    pub throttle: f64,
}

impl std::str::FromStr for ThrottleChange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let [at, node, value] = parts[..] else {
            return Err(format!(
                "\"{text}\" is not SECONDS:NODE:VALUE (for example 0.5:slave:0.25)"
            ));
        };
        let at_s: f64 = at
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| format!("\"{at}\" is not a number of seconds from 0 up"))?;
        let role = match node {
            "master" => Role::Master,
            "slave" => Role::Slave,
            other => return Err(format!("\"{other}\" is not a node: master or slave")),
        };
        let throttle: f64 = value
            .parse()
            .ok()
            .filter(|t| (0.0..=1.0).contains(t))
            .ok_or_else(|| format!("\"{value}\" is not a throttle from 0.0 to 1.0"))?;
        Ok(ThrottleChange {
            at_s,
            role,
            throttle,
        })
    }
}

/// What a simulation predicts, beside the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Seconds from the bootstrap to the end of aggregation.
    pub finish_s: f64,
    /// Seconds the workload takes on both nodes as one machine: all
    /// workers busy from the first instant, moving nothing.
    pub ideal_s: f64,
    /// `ideal_s / finish_s`.
    pub efficiency: f64,
    /// Jobs the policy moved, both ways.
    pub jobs_moved: u32,
    /// Their bytes (the jobs' data, uncompressed).
    pub bytes_moved: u64,
    /// Policy transfers (batches the policy sent, both ways).
    pub transfers: u32,
    /// The machine modelled.
    pub machine: MachineModel,
    /// Seconds of real time the simulation took.
    pub wall_s: f64,
}

/// A simulated run: the master's report and the prediction.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The run report, as the master would write it.
    pub report: Report,
    /// The figures the comparison needs.
    pub prediction: Prediction,
    /// The simulated run as a trace (Trace Event Format), as `--trace`
    /// writes a real run's.
    pub trace: String,
}

impl Simulation {
    /// The report's JSON with `"simulated": true` and the prediction.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(&self.report).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("simulated".to_owned(), serde_json::Value::Bool(true));
            map.insert(
                "prediction".to_owned(),
                serde_json::to_value(&self.prediction).unwrap_or_default(),
            );
        }
        // A map of plain values always serialises.
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

/// Why a simulation did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The run did not end within the virtual time allowed (both nodes
    /// paused for good, say).
    #[error("the simulated run had not ended after {0} s of virtual time: {1}")]
    NoEnd(u64, String),
    /// The run ended without a verified result.
    #[error("the simulated run ended without a verified result: {0}")]
    Failed(String),
    /// The nodes stopped making progress (a fault in the core: a timer
    /// handled over and over at one instant).
    #[error("the simulated run stopped making progress: {0}")]
    Stuck(String),
}

/// Virtual time a simulation may take before it is given up.
const VIRTUAL_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The config the simulation runs: the user's, with a loopback link
/// modelled where a node has none, and one iteration computed for real.
fn simulated_config(config: &Config) -> Config {
    let mut sim = config.clone();
    for role in [Role::Master, Role::Slave] {
        let node = sim.node_mut(role);
        if node.link.is_none() {
            node.link = Some(loopback_link());
        }
    }
    sim.workload.iterations = 1;
    sim
}

/// The loopback interface, as the link model sees it.
pub fn loopback_link() -> LinkConfig {
    LinkConfig {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        delay_ms: 0.005,
        jitter_ms: 0.0,
        bandwidth_mbit: LOOPBACK_MBIT,
        seed: 1,
    }
}

/// What a job costs a node beyond computing it, seconds: each a worker's
/// time that is not the kernel's and not the throttle's (a replay measures
/// them job by job, `calibrate` their means on reference runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobCosts {
    /// The worker idle between two jobs while its node has one for it:
    /// the round trip of the last one's result and this one through the
    /// node's event loop.
    pub wait_s: f64,
    /// Making the job's data ready, before computing it (outside the
    /// throttle's budget, as the real worker's).
    pub prepare_s: f64,
    /// From the job computed to its node's core taking the result, the
    /// worker idle.
    pub handoff_s: f64,
}

/// The machine a simulation models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MachineModel {
    /// Jobs per second one worker computes at full throttle.
    pub rate_jobs_per_s: f64,
    /// CPU seconds a byte moved costs each end (0: moving data is free).
    pub seconds_per_byte: f64,
    /// What a job costs each node (master, slave) beyond computing it.
    pub jobs: [JobCosts; 2],
    /// Logical CPUs of a machine (each node's, or both nodes' when both
    /// run on one).
    pub cores: u32,
}

impl MachineModel {
    /// Workers at `rate` jobs a second, and data that moves for free.
    pub fn compute_only(rate: f64) -> Self {
        MachineModel {
            rate_jobs_per_s: rate,
            seconds_per_byte: 0.0,
            jobs: [JobCosts::default(); 2],
            cores: u32::MAX,
        }
    }
}

/// Simulates a run of `config` on `machine`, with the throttle changes
/// given (their times counted from the bootstrap's start, as a report's).
pub fn simulate(
    config: &Config,
    machine: &MachineModel,
    changes: &[ThrottleChange],
    seed: u64,
) -> Result<Simulation, SimError> {
    simulate_measured(config, machine, changes, seed, None)
}

/// What a replay gives a simulation: each node's jobs' measured costs, and
/// each node's rate (jobs a second of one worker at full throttle) for the
/// ideal.
pub(crate) struct Measured {
    pub(crate) jobs: [std::sync::Arc<crate::node::harness::MeasuredJobs>; 2],
    pub(crate) rates: [f64; 2],
}

/// [`simulate`], each node's jobs costing what `measured` says (a replay).
pub(crate) fn simulate_measured(
    config: &Config,
    machine: &MachineModel,
    changes: &[ThrottleChange],
    seed: u64,
    measured: Option<Measured>,
) -> Result<Simulation, SimError> {
    let wall = Instant::now();
    let rate = machine.rate_jobs_per_s;
    let w = config.workload.clone();
    let per_job = f64::from(w.elements_per_job) * f64::from(w.iterations);
    let mut pair = Pair::new(&simulated_config(config), rate * per_job, seed);
    if machine.seconds_per_byte > 0.0 {
        // Two nodes on loopback share this machine's cores.
        let shared =
            config.master.address.ip().is_loopback() && config.slave.address.ip().is_loopback();
        pair.cpu = Some(crate::node::harness::CpuModel {
            cores: machine.cores,
            seconds_per_byte: machine.seconds_per_byte,
            shared,
        });
    }
    for (node, costs) in [
        (&mut pair.master, machine.jobs[0]),
        (&mut pair.slave, machine.jobs[1]),
    ] {
        node.job_overhead = costs.prepare_s;
        node.job_wait = costs.wait_s;
        node.job_handoff = costs.handoff_s;
    }
    pair.master.modelled_iterations = Some(w.iterations);
    pair.slave.modelled_iterations = Some(w.iterations);
    let rates = measured.as_ref().map_or([rate, rate], |m| m.rates);
    if let Some(Measured { jobs: [m, s], .. }) = measured {
        pair.master.measured = Some(m);
        pair.slave.measured = Some(s);
    }
    pair.start();
    let mut changes = changes.to_vec();
    changes.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    // A change's time counts from the bootstrap's start, as the report's
    // times do (and the slider's moves in a trace).
    let origin = if changes.is_empty() {
        None
    } else {
        pair.run_to_bootstrap(VIRTUAL_LIMIT)
    };
    if let Some(origin) = origin {
        let origin = origin.saturating_duration_since(pair.start_instant());
        for change in &changes {
            // Past the virtual limit nothing changes any more.
            let Some(at) = Duration::try_from_secs_f64(change.at_s)
                .ok()
                .and_then(|d| d.checked_add(origin))
                .filter(|at| *at < VIRTUAL_LIMIT)
            else {
                break;
            };
            if pair.run_until(at) || pair.stuck.is_some() {
                break;
            }
            let now = pair.now;
            pair.node(change.role).set_throttle(now, change.throttle);
        }
    }
    let remaining = VIRTUAL_LIMIT.saturating_sub(pair.elapsed());
    let ended = pair.run(remaining);
    if let Some(stuck) = pair.stuck.take() {
        return Err(SimError::Stuck(stuck));
    }
    if !ended {
        return Err(SimError::NoEnd(
            VIRTUAL_LIMIT.as_secs(),
            last_line(&pair.master.log_text()),
        ));
    }
    let core = &pair.master.core;
    let (Some(End::Finished { verified: true }), Some(verification)) =
        (core.end(), core.verification())
    else {
        return Err(SimError::Failed(last_line(&pair.master.log_text())));
    };
    // The master's socket, as the link model saw it.
    let stats = crate::report::SocketCounts {
        datagrams_sent: pair.sent[0],
        bytes_sent: pair.bytes_sent[0],
        datagrams_received: pair.delivered[0],
        link_dropped: pair.link_dropped(Role::Master),
        ..crate::report::SocketCounts::default()
    };
    let mut report = Report::build(core, &stats, verification);
    // Computed with one iteration, predicted for the workload's.
    report.expected_value = crate::workload::expected_value(&w);
    report.peak_rss_bytes = None;
    report.log_lines_dropped = 0;
    // The report's total (its phases, to the microsecond), so the two agree.
    let finish_s = report.elapsed_s.total;
    let jobs_moved = report.jobs_moved.to_slave + report.jobs_moved.to_master;
    let ideal_s = ideal_seconds_at(config, rates, &changes);
    let prediction = Prediction {
        finish_s,
        ideal_s,
        efficiency: if finish_s > 0.0 {
            ideal_s / finish_s
        } else {
            0.0
        },
        jobs_moved,
        bytes_moved: u64::from(jobs_moved)
            * crate::protocol::batch::job_bytes(w.elements_per_job) as u64,
        transfers: report.transfers.len() as u32,
        machine: *machine,
        wall_s: wall.elapsed().as_secs_f64(),
    };
    let trace = simulated_trace(&pair, config);
    Ok(Simulation {
        report,
        prediction,
        trace,
    })
}

/// Both nodes' timelines as one trace, on the virtual clock.
fn simulated_trace(pair: &Pair, config: &Config) -> String {
    let start = |role: Role| {
        pair.node_ref(role).core.phase_started()[crate::protocol::Phase::Bootstrap as usize]
    };
    let zero = [Role::Master, Role::Slave]
        .into_iter()
        .filter_map(start)
        .min();
    let nodes: Vec<crate::trace::TracedNode<'_>> = [Role::Master, Role::Slave]
        .into_iter()
        .map(|role| crate::trace::TracedNode {
            role,
            workers: config.node(role).workers.max(1),
            offset_s: match (start(role), zero) {
                (Some(t), Some(zero)) => t.duration_since(zero).as_secs_f64(),
                _ => 0.0,
            },
            timeline: pair.node_ref(role).core.timeline(),
        })
        .collect();
    crate::trace::to_json(&nodes)
}

/// The median of some samples (the mean of the middle two for an even
/// count); 0 for none.
pub fn median(samples: &[f64]) -> f64 {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn last_line(log: &str) -> String {
    log.lines().last().unwrap_or("no log").to_owned()
}

/// The ideal finishing time: the workload over both nodes' capacity, every
/// worker busy from the first instant and nothing moved, following the
/// throttle changes.
pub fn ideal_seconds(config: &Config, rate: f64, changes: &[ThrottleChange]) -> f64 {
    ideal_seconds_at(config, [rate, rate], changes)
}

/// [`ideal_seconds`] with each node's workers at a rate of their own
/// (master, slave), as a replay measures them.
pub fn ideal_seconds_at(config: &Config, rates: [f64; 2], changes: &[ThrottleChange]) -> f64 {
    let workers = |role: Role| config.node(role).workers.max(1) as f64;
    let mut throttle = [config.master.throttle, config.slave.throttle];
    let capacity = |t: &[f64; 2]| {
        rates[0] * workers(Role::Master) * t[0] + rates[1] * workers(Role::Slave) * t[1]
    };
    let mut left = f64::from(config.workload.jobs);
    let mut now = 0.0;
    let mut sorted = changes.to_vec();
    sorted.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    for change in sorted {
        let c = capacity(&throttle);
        let span = (change.at_s - now).max(0.0);
        if c * span >= left {
            return now + left / c;
        }
        left -= c * span;
        now = change.at_s.max(now);
        throttle[usize::from(change.role == Role::Slave)] = change.throttle;
    }
    let c = capacity(&throttle);
    if c > 0.0 {
        now + left / c
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests;
