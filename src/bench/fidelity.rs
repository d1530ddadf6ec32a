//! `bench --only fidelity`: the simulator against real runs. At the four
//! throttle pairs, a drop of the slave's throttle mid-run and a run whose
//! jobs keep arriving, sender, completion and adaptive each run for real
//! (the median of several runs, with their spread) beside the simulator's
//! prediction on this machine's profile, and each real run replayed from
//! its own trace; then the ranking of the three, real and predicted.

use std::io::Write;

use super::{Figure, Options, median};
use crate::config::{Config, Role, WorkloadConfig};
use crate::sim::{self, ThrottleChange, compare::THROTTLE_PAIRS};

/// The policies compared.
const POLICIES: [&str; 3] = ["sender", "completion", "adaptive"];

/// Real medians that differ by more than this are a ranking the
/// prediction must keep.
const RANKED_APART: f64 = 0.10;

/// A spread of the real runs past which they are widened.
const WIDEN_PAST: f64 = 0.10;

/// One scenario of the group.
struct Case {
    name: String,
    throttles: (f64, f64),
    changes: Vec<ThrottleChange>,
    /// Jobs arriving at each node while the run goes, if any.
    arrivals: Option<crate::arrivals::Arrivals>,
    /// A throttle pair's own scenario: its best policy is held to sender's.
    pair: bool,
}

/// One policy in one case: the real runs, the prediction, the replays.
struct Measured {
    policy: &'static str,
    real: Vec<f64>,
    predicted: f64,
    /// Each run's replay over the run.
    replayed: Vec<f64>,
}

impl Measured {
    fn median(&self) -> f64 {
        median(&self.real)
    }

    /// (max - min) / median of the real runs.
    fn spread(&self) -> f64 {
        let (lo, hi) = self
            .real
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        (hi - lo) / self.median()
    }

    fn error(&self) -> f64 {
        self.predicted / self.median() - 1.0
    }
}

fn cases(base: &Config, rate: f64) -> Vec<Case> {
    let mut cases: Vec<Case> = THROTTLE_PAIRS
        .iter()
        .map(|&(m, s)| Case {
            name: format!("({m}, {s})"),
            throttles: (m, s),
            changes: Vec::new(),
            arrivals: None,
            pair: true,
        })
        .collect();
    let mut full = base.clone();
    (full.master.throttle, full.slave.throttle) = (1.0, 1.0);
    // A third of the way into an ideal run at (1, 1), as compare's.
    let at_s = (sim::ideal_seconds(&full, rate, &[]) / 3.0 * 1000.0).round() / 1000.0;
    cases.push(Case {
        name: format!("(1, 1), slave to 0.2 at {at_s} s"),
        throttles: (1.0, 1.0),
        changes: vec![ThrottleChange {
            at_s,
            role: Role::Slave,
            throttle: 0.2,
        }],
        arrivals: None,
        pair: false,
    });
    // Half the jobs present, as many again arriving at the two nodes over
    // about the time an ideal run of them all would take at (1, 0.5).
    let jobs = base.workload.jobs;
    let mut half = base.clone();
    (half.master.throttle, half.slave.throttle) = (1.0, 0.5);
    let duration_s = (sim::ideal_seconds(&half, rate, &[]) * 1000.0).round() / 1000.0;
    let rate_per_s = (f64::from(jobs / 2) / 2.0 / duration_s.max(1e-3)).round();
    cases.push(Case {
        name: format!("(1, 0.5), {rate_per_s} jobs/s arriving at each for {duration_s} s"),
        throttles: (1.0, 0.5),
        changes: Vec::new(),
        arrivals: Some(crate::arrivals::Arrivals {
            rate_per_s,
            duration_s,
            seed: 1,
        }),
        pair: false,
    });
    cases
}

fn config_of(base: &Config, case: &Case, policy: &str) -> Config {
    let mut c = base.clone();
    (c.master.throttle, c.slave.throttle) = case.throttles;
    c.policy.transfer = policy.to_owned();
    c.policy.threshold = None;
    if case.arrivals.is_some() {
        c.workload.jobs = base.workload.jobs / 2;
        c.workload.arrivals = case.arrivals;
    }
    c
}

/// The policies in order of their times, fastest first, joined by " < ".
fn ranking(times: &[(&'static str, f64)]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1));
    sorted
        .iter()
        .map(|(p, _)| *p)
        .collect::<Vec<_>>()
        .join(" < ")
}

/// Whether the prediction orders every two policies whose real medians
/// differ by more than [`RANKED_APART`] as the real runs do.
fn ranking_kept(measured: &[Measured]) -> bool {
    measured.iter().enumerate().all(|(i, a)| {
        measured[i + 1..].iter().all(|b| {
            let (ra, rb) = (a.median(), b.median());
            (ra - rb).abs() <= RANKED_APART * ra.min(rb) || (ra < rb) == (a.predicted < b.predicted)
        })
    })
}

/// See the module documentation.
pub fn fidelity(
    options: &Options,
    log: &mut dyn Write,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let reps = options.reps(5);
    // Quick: an eighth of the jobs, a tenth of the iterations (a check
    // that every part runs, in seconds; the figures are the full run's).
    let workload = WorkloadConfig {
        jobs: if options.quick { 128 } else { 1024 },
        iterations: if options.quick { 100 } else { 1000 },
        ..WorkloadConfig::default()
    };
    let base = crate::local::loopback(workload)?
        .validate()
        .context("the bench's config")?;
    // The machine as it is now: a shared machine's speed drifts (kernel
    // rates a fifth apart in calibrations twenty minutes apart), and the
    // group measures the model, not the drift since a cached profile.
    let mut say = |line: &str| {
        let _ = writeln!(log, "fidelity: {line}");
    };
    let profile = match options.machine.as_deref() {
        Some(path) => sim::MachineProfile::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => sim::MachineProfile::calibrate(&mut say)?,
    };
    let machine = profile.model(&base, None);
    let mut table = String::from(
        "| scenario | policy | real, s (median, spread, runs) | predicted, s | error | replayed |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    let mut rankings = String::from(
        "| scenario | real ranking | predicted ranking | kept where real differs > 10 % |\n\
         |---|---|---|---|\n",
    );
    for case in cases(&base, machine.rate_jobs_per_s) {
        let mut measured = Vec::new();
        for policy in POLICIES {
            let config = config_of(&base, &case, policy);
            let predicted = sim::simulate(&config, &machine, &case.changes, 1)?
                .prediction
                .finish_s;
            let mut m = Measured {
                policy,
                real: Vec::new(),
                predicted,
                replayed: Vec::new(),
            };
            // Runs whose spread passes 10 % are widened to nearly twice as
            // many, so that their median stands on more.
            let mut wanted = reps;
            while m.real.len() < wanted {
                let run = crate::local::run(&config, &case.changes)
                    .with_context(|| format!("{} {policy}", case.name))?;
                let real = run.report.elapsed_s.total;
                let nodes = crate::trace::read(&run.trace).map_err(|e| anyhow::anyhow!(e))?;
                let replay =
                    sim::replay::Replay::from_trace(&nodes).map_err(|e| anyhow::anyhow!(e))?;
                let again = replay.run(&replay.config, &replay.changes, 1)?;
                m.real.push(real);
                m.replayed.push(again.prediction.finish_s / real);
                if m.real.len() == reps && m.spread() > WIDEN_PAST {
                    wanted = 2 * reps - 1;
                }
            }
            let replay_ratio = median(&m.replayed);
            let _ = writeln!(
                log,
                "fidelity {} {policy}: real {:.3} s (spread {:.1} %: {}), predicted {:.3} s ({:+.1} %), \
                 replayed {:+.1} %",
                case.name,
                m.median(),
                m.spread() * 100.0,
                m.real
                    .iter()
                    .zip(&m.replayed)
                    .map(|(t, r)| format!("{t:.3} ({:+.1} %)", (r - 1.0) * 100.0))
                    .collect::<Vec<_>>()
                    .join(", "),
                m.predicted,
                m.error() * 100.0,
                (replay_ratio - 1.0) * 100.0
            );
            table.push_str(&format!(
                "| {} | {policy} | {:.3} ({:.1} %, {}) | {:.3} | {:+.1} % | {:+.1} % |\n",
                case.name,
                m.median(),
                m.spread() * 100.0,
                m.real.len(),
                m.predicted,
                m.error() * 100.0,
                (replay_ratio - 1.0) * 100.0
            ));
            out.push(
                Figure::new(
                    "fidelity",
                    format!("{} {policy}, real", case.name),
                    m.median(),
                    "s",
                )
                .against("predicted", m.predicted)
                .target(
                    format!("within 10 % (spread {:.1} %)", m.spread() * 100.0),
                    m.error().abs() <= 0.10,
                )
                .samples(m.real.len()),
            );
            out.push(
                Figure::new(
                    "fidelity",
                    format!("{} {policy}, replayed over real", case.name),
                    replay_ratio,
                    "",
                )
                .target("within 5 %", (replay_ratio - 1.0).abs() <= 0.05)
                .samples(m.real.len()),
            );
            measured.push(m);
        }
        let real: Vec<(&'static str, f64)> =
            measured.iter().map(|m| (m.policy, m.median())).collect();
        let predicted: Vec<(&'static str, f64)> =
            measured.iter().map(|m| (m.policy, m.predicted)).collect();
        let kept = ranking_kept(&measured);
        rankings.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            case.name,
            ranking(&real),
            ranking(&predicted),
            if kept { "yes" } else { "no" }
        ));
        out.push(
            Figure::new(
                "fidelity",
                format!(
                    "{} ranking: real {}, predicted {}",
                    case.name,
                    ranking(&real),
                    ranking(&predicted)
                ),
                if kept { 1.0 } else { 0.0 },
                "",
            )
            .target("kept where real medians differ > 10 %", kept),
        );
        if case.pair {
            // The policy a user who trusts the prediction would pick,
            // against sender's real runs.
            let Some(pick) = measured
                .iter()
                .min_by(|a, b| a.predicted.total_cmp(&b.predicted))
            else {
                continue;
            };
            let sender = &measured[0];
            let not_slower = pick.median() <= sender.median() * (1.0 + sender.spread());
            out.push(
                Figure::new(
                    "fidelity",
                    format!("{} predicted best ({}), real", case.name, pick.policy),
                    pick.median(),
                    "s",
                )
                .against("sender's", sender.median())
                .target("not slower than sender beyond its spread", not_slower)
                .samples(pick.real.len()),
            );
        }
    }
    let _ = writeln!(log, "fidelity: the table\n\n{table}\n{rankings}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(policy: &'static str, real: f64, predicted: f64) -> Measured {
        Measured {
            policy,
            real: vec![real * 0.99, real, real * 1.02],
            predicted,
            replayed: vec![1.0],
        }
    }

    #[test]
    fn the_ranking_is_kept_only_where_the_real_runs_differ() {
        // Sender 10 % slower than completion or more: the prediction must
        // say so; adaptive within 10 % of completion may go either way.
        let kept = [
            measured("sender", 1.3, 1.25),
            measured("completion", 1.0, 1.05),
            measured("adaptive", 1.05, 1.0),
        ];
        assert!(ranking_kept(&kept));
        let flipped = [
            measured("sender", 1.3, 1.0),
            measured("completion", 1.0, 1.05),
            measured("adaptive", 1.05, 1.02),
        ];
        assert!(!ranking_kept(&flipped));
        let real: Vec<_> = flipped.iter().map(|m| (m.policy, m.median())).collect();
        assert_eq!(ranking(&real), "completion < adaptive < sender");
        assert!((flipped[0].spread() - 0.03).abs() < 1e-9);
        assert!((flipped[0].error() + 1.0 - 1.0 / 1.3).abs() < 1e-9);
    }
}
