//! The classic experiment of Eager, Lazowska and Zahorjan (1986): two
//! identical nodes, each with Poisson arrivals at rate `load` and one
//! server of exponential service time with mean 1; transfers instantaneous
//! and each node's state known to the other at once. The policies are the
//! same [`TransferPolicy`] objects a real run uses: each arrival asks the
//! node's policy where the job goes ([`TransferPolicy::on_arrival`]), each
//! departure asks its departure rule ([`TransferPolicy::on_departure`]),
//! whose request the peer's policy answers ([`TransferPolicy::on_request`]).
//!
//! The mean response time (arrival to departure) is estimated over `jobs`
//! jobs after a warm-up of a twentieth as many, with a 95 % confidence
//! interval from 20 batch means.

use std::collections::VecDeque;

use serde::Serialize;

use crate::arrivals::Rng;
use crate::policy::{Decision, Placement, PolicyInput, TransferPolicy};

/// The experiment's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Experiment {
    /// Arrivals per unit time at each node (the load, below 1).
    pub load: f64,
    /// The policy's threshold, jobs at a node.
    pub threshold: u32,
    /// Jobs measured (after the warm-up).
    pub jobs: u64,
    /// The random seed.
    pub seed: u64,
}

/// The experiment's result, as `simulate --queueing` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The policy's name.
    pub policy: String,
    /// Its threshold.
    pub threshold: u32,
    /// The load at each node.
    pub load: f64,
    /// Jobs measured.
    pub jobs: u64,
    /// Mean response time, in mean service times.
    pub mean_response: f64,
    /// Half-width of its 95 % confidence interval.
    pub ci95: f64,
    /// Transfers per job measured.
    pub transfers_per_job: f64,
}

/// The policies of the classic experiment, by the names the queueing mode
/// takes (`sender` here is the classic rule, not the queue-difference one).
pub const POLICIES: &[(&str, &str)] = &[
    ("none", "none"),
    ("sender", "classic-sender"),
    ("receiver", "classic-receiver"),
    ("symmetric", "classic-symmetric"),
    ("jsq", "jsq"),
];

/// The policy's name as `policy.transfer` spells it, for a queueing-mode
/// name (`sender`) or a full one (`classic-sender`).
pub fn policy_name(name: &str) -> Option<&'static str> {
    POLICIES
        .iter()
        .find(|(short, full)| *short == name || *full == name)
        .map(|(_, full)| *full)
}

/// One node: its jobs' arrival times (the first in service) and when the
/// one in service leaves.
#[derive(Default)]
struct Node {
    jobs: VecDeque<f64>,
    departs: Option<f64>,
    next_arrival: f64,
}

impl Node {
    fn n(&self) -> u32 {
        self.jobs.len().min(u32::MAX as usize) as u32
    }
}

/// What node `i`'s policy sees: both nodes' jobs, known at once.
fn input(nodes: &[Node; 2], i: usize) -> PolicyInput {
    let view = |n: &Node| (n.n().saturating_sub(1), n.n().min(1));
    let (lq, lb) = view(&nodes[i]);
    let (pq, pb) = view(&nodes[1 - i]);
    PolicyInput {
        local_queue: lq,
        local_busy: lb,
        peer_queue: pq,
        peer_busy: pb,
        local_workers: 1,
        peer_workers: 1,
        local_throttle: 1.0,
        peer_throttle: 1.0,
        local_capacity: 1.0,
        peer_capacity: 1.0,
        local_rate: 1.0,
        peer_rate: 1.0,
        ..PolicyInput::default()
    }
}

/// Runs the experiment with `make` building each node's policy.
pub fn run(make: &dyn Fn() -> Box<dyn TransferPolicy>, experiment: &Experiment) -> Outcome {
    let mut rng = Rng(experiment.seed);
    let mut policies = [make(), make()];
    let mut nodes: [Node; 2] = Default::default();
    let load = experiment.load;
    for node in &mut nodes {
        node.next_arrival = rng.exp(1.0 / load);
    }
    let warmup = (experiment.jobs / 20).max(1);
    let total = warmup + experiment.jobs;
    const BATCHES: u64 = 20;
    let per_batch = experiment.jobs.div_ceil(BATCHES).max(1);
    let mut batch_sums = vec![0.0; BATCHES as usize];
    let mut batch_counts = vec![0u64; BATCHES as usize];
    let (mut departed, mut transfers) = (0u64, 0u64);
    let mut now;
    while departed < total {
        // The next event: an arrival or a departure at either node.
        let (mut at, mut which, mut arrival) = (f64::INFINITY, 0, true);
        for (i, node) in nodes.iter().enumerate() {
            if node.next_arrival < at {
                (at, which, arrival) = (node.next_arrival, i, true);
            }
            if let Some(d) = node.departs
                && d < at
            {
                (at, which, arrival) = (d, i, false);
            }
        }
        now = at;
        let i = which;
        if arrival {
            nodes[i].next_arrival = now + rng.exp(1.0 / load);
            let target = match policies[i].on_arrival(&input(&nodes, i)) {
                Placement::Local => i,
                Placement::Peer => {
                    if departed >= warmup {
                        transfers += 1;
                    }
                    1 - i
                }
            };
            nodes[target].jobs.push_back(now);
            if nodes[target].departs.is_none() {
                nodes[target].departs = Some(now + rng.exp(1.0));
            }
        } else {
            let arrived = nodes[i].jobs.pop_front().unwrap_or(now);
            if departed >= warmup {
                let k = ((departed - warmup) / per_batch) as usize;
                batch_sums[k] += now - arrived;
                batch_counts[k] += 1;
            }
            departed += 1;
            nodes[i].departs = None;
            if let Decision::Request(wanted) = policies[i].on_departure(&input(&nodes, i)) {
                let j = 1 - i;
                let give = policies[j].on_request(&input(&nodes, j), wanted);
                // Queued jobs only (never the one in service), newest first.
                let give = give.min(nodes[j].n().saturating_sub(1));
                for _ in 0..give {
                    if let Some(job) = nodes[j].jobs.pop_back() {
                        nodes[i].jobs.push_back(job);
                        if departed > warmup {
                            transfers += 1;
                        }
                    }
                }
            }
            if !nodes[i].jobs.is_empty() {
                nodes[i].departs = Some(now + rng.exp(1.0));
            }
        }
    }
    let means: Vec<f64> = batch_sums
        .iter()
        .zip(&batch_counts)
        .filter(|(_, c)| **c > 0)
        .map(|(s, c)| s / *c as f64)
        .collect();
    let measured: u64 = batch_counts.iter().sum();
    let mean = batch_sums.iter().sum::<f64>() / measured.max(1) as f64;
    let k = means.len() as f64;
    let variance = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (k - 1.0).max(1.0);
    // Student's t for 19 degrees of freedom, 95 % two-sided.
    let ci95 = 2.093 * (variance / k.max(1.0)).sqrt();
    let name = policies[0].name().to_owned();
    Outcome {
        policy: name,
        threshold: experiment.threshold,
        load,
        jobs: measured,
        mean_response: mean,
        ci95,
        transfers_per_job: transfers as f64 / measured.max(1) as f64,
    }
}

/// Runs the experiment for the named policy (a queueing-mode name or a
/// full one); `None` for a name not in [`POLICIES`].
pub fn run_named(name: &str, experiment: &Experiment) -> Option<Outcome> {
    let full = policy_name(name)?;
    let threshold = experiment.threshold;
    let make = move || {
        // The name came from POLICIES, which are all built by by_name.
        crate::policy::by_name(full, threshold).expect("a classic policy")
    };
    Some(run(&make, experiment))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment(load: f64, threshold: u32) -> Experiment {
        Experiment {
            load,
            threshold,
            jobs: 400_000,
            seed: 11,
        }
    }

    fn within(outcome: &Outcome, expected: f64) {
        assert!(
            (outcome.mean_response - expected).abs() <= outcome.ci95,
            "{} at load {}: {:.4} +- {:.4}, expected {expected:.4}",
            outcome.policy,
            outcome.load,
            outcome.mean_response,
            outcome.ci95
        );
        assert!(outcome.ci95 < 0.05 * expected, "{outcome:?}");
    }

    #[test]
    fn no_transfers_is_two_m_m_1_queues() {
        for load in [0.5, 0.7] {
            let o = run_named("none", &experiment(load, 1)).unwrap();
            within(&o, 1.0 / (1.0 - load));
            assert_eq!(o.transfers_per_job, 0.0);
            assert_eq!(o.jobs, 400_000);
        }
    }

    #[test]
    fn symmetric_with_threshold_one_is_m_m_2() {
        for load in [0.5, 0.7] {
            let o = run_named("symmetric", &experiment(load, 1)).unwrap();
            within(&o, 1.0 / (1.0 - load * load));
            assert!(o.transfers_per_job > 0.0);
        }
    }

    #[test]
    fn the_published_shape() {
        let at = |name: &str, load: f64, t: u32| {
            run_named(name, &experiment(load, t)).unwrap().mean_response
        };
        let none = at("none", 0.8, 1);
        let mm2 = 1.0 / (1.0 - 0.8 * 0.8);
        // A threshold of 1 or 2 gives each of them most of what M/M/2
        // gains over M/M/1.
        for name in ["sender", "receiver", "symmetric", "jsq"] {
            let best = at(name, 0.8, 1).min(at(name, 0.8, 2));
            assert!(
                best < none - 0.6 * (none - mm2),
                "{name}: {best} against {none}"
            );
        }
        // Receiver-initiated beats sender-initiated at high load.
        assert!(at("receiver", 0.9, 1) < at("sender", 0.9, 1));
        // Higher thresholds give the gain away.
        assert!(at("symmetric", 0.8, 1) < at("symmetric", 0.8, 2));
        assert!(at("symmetric", 0.8, 2) < at("symmetric", 0.8, 3));
    }

    #[test]
    fn names() {
        assert_eq!(policy_name("sender"), Some("classic-sender"));
        assert_eq!(policy_name("classic-sender"), Some("classic-sender"));
        assert_eq!(policy_name("completion"), None);
        assert!(run_named("completion", &experiment(0.5, 1)).is_none());
    }
}
