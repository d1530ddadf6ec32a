//! The figures of one machine's computing: the kernel, a node's overhead
//! over it, worker scaling and the throttle's accuracy.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{Figure, Options, median};
use crate::config::WorkloadConfig;
use crate::kernel::{self, Isa};
use crate::node::solo;
use crate::workload::{Job, make_job};

/// What later figures need from the kernel's.
pub struct KernelResult {
    /// Element updates per second of the picked kernel on one core.
    pub updates_per_second: f64,
}

fn jobs(workload: &WorkloadConfig) -> Vec<Job> {
    (0..workload.jobs)
        .map(|id| make_job(workload, id))
        .collect()
}

fn bits(data: &[f64]) -> Vec<u64> {
    data.iter().map(|x| x.to_bits()).collect()
}

/// Figure 1: element updates per second of the kernel, each instruction set
/// this CPU has, against the plain loop on the same data (reference jobs:
/// 32 Ki doubles, 1000 additions each).
pub fn kernel(options: &Options, log: &mut dyn Write, out: &mut Vec<Figure>) -> KernelResult {
    let w = WorkloadConfig {
        jobs: if options.quick { 4 } else { 8 },
        ..WorkloadConfig::default()
    };
    let updates = f64::from(w.jobs) * f64::from(w.elements_per_job) * f64::from(w.iterations);
    let reps = options.reps(7);
    let isas = Isa::available();
    let mut plain = Vec::new();
    let mut fast: Vec<Vec<f64>> = vec![Vec::new(); isas.len()];
    for _ in 0..reps {
        let mut reference = jobs(&w);
        let t = Instant::now();
        for job in &mut reference {
            kernel::add_repeated_plain(&mut job.data, w.iterations, w.addend);
        }
        plain.push(updates / t.elapsed().as_secs_f64());
        for (i, &isa) in isas.iter().enumerate() {
            let mut data = jobs(&w);
            let t = Instant::now();
            for job in &mut data {
                kernel::add_repeated_with(isa, &mut job.data, w.iterations, w.addend);
            }
            fast[i].push(updates / t.elapsed().as_secs_f64());
            // Speed is worth nothing if a single bit differs.
            let same = data
                .iter()
                .zip(&reference)
                .all(|(a, b)| bits(&a.data) == bits(&b.data));
            assert!(
                same,
                "the {} kernel differs from the plain loop",
                isa.name()
            );
        }
    }
    let plain = median(&plain);
    let _ = writeln!(
        log,
        "kernel: plain loop {:.2} GFLOP/s ({reps} runs)",
        plain / 1e9
    );
    let mut picked = plain;
    for (i, &isa) in isas.iter().enumerate() {
        let rate = median(&fast[i]);
        let _ = writeln!(log, "kernel: {} {:.2} GFLOP/s", isa.name(), rate / 1e9);
        let mut f = Figure::new(
            "kernel",
            format!("{} blocks of {}", isa.name(), isa.block()),
            rate / 1e9,
            "GFLOP/s",
        )
        .against("plain loop", plain / 1e9)
        .samples(reps);
        if i == 0 {
            picked = rate;
            f.name.push_str(" (picked)");
            f = f.target("≥ 3× plain, bit-identical", rate >= 3.0 * plain);
        } else {
            f = f.note("bit-identical");
        }
        out.push(f);
    }
    KernelResult {
        updates_per_second: picked,
    }
}

/// Figure 2: one node's worker computing a whole workload alone against the
/// bare kernel over the same jobs, one thread each.
pub fn overhead(options: &Options, log: &mut dyn Write, out: &mut Vec<Figure>) {
    let w = WorkloadConfig {
        jobs: if options.quick { 128 } else { 1024 },
        ..WorkloadConfig::default()
    };
    let reps = options.reps(5);
    let (mut bare, mut node) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let mut data = jobs(&w);
        let t = Instant::now();
        for job in &mut data {
            kernel::add_repeated(&mut job.data, w.iterations, w.addend);
        }
        bare.push(t.elapsed().as_secs_f64());
        drop(data);
        match solo::compute_alone(&w, jobs(&w), 1, 1.0, None) {
            Ok(run) => {
                assert!(run.results.verify(&w).verified, "the solo run is wrong");
                node.push(run.wall.as_secs_f64());
            }
            Err(e) => {
                let _ = writeln!(log, "overhead: cannot run a node alone: {e}");
                return;
            }
        }
    }
    let (bare, node) = (median(&bare), median(&node));
    let _ = writeln!(
        log,
        "overhead: bare kernel {bare:.3} s, node {node:.3} s ({} jobs)",
        w.jobs
    );
    out.push(
        Figure::new(
            "overhead",
            format!("one worker, {} jobs", w.jobs),
            node,
            "s",
        )
        .against("bare kernel", bare)
        .target("≤ 1.02×", node <= 1.02 * bare)
        .samples(reps),
    );
}

/// Figure 3: jobs per second with 1 to CPU-count workers on one node.
pub fn scaling(options: &Options, log: &mut dyn Write, out: &mut Vec<Figure>) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let w = WorkloadConfig {
        jobs: if options.quick { 64 } else { 256 } * cpus as u32,
        ..WorkloadConfig::default()
    };
    let reps = options.reps(3);
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cpus];
    for _ in 0..reps {
        for workers in 1..=cpus {
            match solo::compute_alone(&w, jobs(&w), workers, 1.0, None) {
                Ok(run) => {
                    rates[workers - 1].push(f64::from(run.jobs_done) / run.wall.as_secs_f64())
                }
                Err(e) => {
                    let _ = writeln!(log, "scaling: cannot run a node alone: {e}");
                    return;
                }
            }
        }
    }
    let one = median(&rates[0]);
    for (i, r) in rates.iter().enumerate() {
        let workers = i + 1;
        let rate = median(r);
        let _ = writeln!(log, "scaling: {workers} workers {rate:.0} jobs/s");
        let mut f = Figure::new(
            "scaling",
            format!("{workers} worker{}", if workers == 1 { "" } else { "s" }),
            rate,
            "jobs/s",
        )
        .samples(reps);
        if workers > 1 {
            f = f.against("1 worker", one);
        }
        if workers == 2 {
            f = f.target("≥ 1.8×", rate >= 1.8 * one);
        }
        out.push(f);
    }
}

/// Figure 4: the share of wall time a throttled worker spends on a CPU, by
/// the scheduler's accounting, against the setting.
pub fn throttle(options: &Options, log: &mut dyn Write, out: &mut Vec<Figure>) {
    let reps = options.reps(3);
    let span = Duration::from_millis(if options.quick { 1000 } else { 2000 });
    for setting in [0.1, 0.25, 0.5, 0.75, 1.0] {
        // Jobs of 4 Ki doubles (a few hundred microseconds each), and
        // enough of them to outlast the span at full speed.
        let mut w = WorkloadConfig {
            elements_per_job: 4096,
            ..WorkloadConfig::default()
        };
        let per_job = f64::from(w.elements_per_job) * f64::from(w.iterations);
        let rate = 40e9; // above any single core's kernel rate today
        w.jobs = (rate * span.as_secs_f64() * setting / per_job) as u32 + 64;
        let mut shares = Vec::new();
        for _ in 0..reps {
            match solo::compute_alone(&w, jobs(&w), 1, setting, Some(span)) {
                Ok(run) => match run.worker_cpu.first().copied().flatten() {
                    Some(cpu) => shares.push(cpu.as_secs_f64() / run.wall.as_secs_f64()),
                    None => {
                        let _ = writeln!(log, "throttle: no thread CPU accounting here");
                        return;
                    }
                },
                Err(e) => {
                    let _ = writeln!(log, "throttle: cannot run a node alone: {e}");
                    return;
                }
            }
        }
        let share = median(&shares) * 100.0;
        let _ = writeln!(
            log,
            "throttle: set {:.0} %, used {share:.1} %",
            setting * 100.0
        );
        out.push(
            Figure::new("throttle", format!("{setting}"), share, "%")
                .against("setting", setting * 100.0)
                .target("within 3 points", (share - setting * 100.0).abs() <= 3.0)
                .samples(reps),
        );
    }
}
