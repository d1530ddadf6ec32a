//! `loadbal bench`: measures, in one process where possible, each speed
//! figure of loadbal against its reference in the same run, and prints a
//! table (figure, value, reference, ratio, target) in Markdown, so it can go
//! into docs/speed.md as it is. Every figure is the median of several
//! repetitions; references and measurements are interleaved, so a noisy
//! neighbour slows both alike.
//!
//! | group       | what                                 | reference                        |
//! |-------------|--------------------------------------|----------------------------------|
//! | kernel      | the blocked kernel per instruction set | the plain loop                 |
//! | overhead    | one node's worker over a workload    | the bare kernel on the same data |
//! | scaling     | 1 … CPU-count workers                | one worker                       |
//! | throttle    | a worker's CPU time / wall time      | the throttle setting             |
//! | transport   | the bootstrap's 128 MiB over loopback UDP | a TCP stream of as many bytes, read into one buffer or kept |
//! | two nodes   | the reference run, four throttle pairs, sender and adaptive | the ideal makespan |
//! | original    | the original program's workload (10 iterations), end to end | its bytes out and back over TCP |
//! | job size    | the same vector in 128 … 8192 jobs   | 1024 jobs                        |
//! | memory      | the master's peak resident memory    | the vector's size                |
//! | compression | the bootstrap over the assignment's link | the same without compression |
//! | policies    | each throttle pair: the best policy's balance in the simulator; real runs of sender, completion and adaptive | the ideal; the simulator's prediction; sender |
//! | window      | the demo window's own threads under Xvfb, idle and during a run; the run's time | targets; the same run headless |

mod compute;
mod fidelity;
mod net;
mod window;
mod work;

use std::io::Write;
use std::time::Instant;

use serde::Serialize;

/// What `loadbal bench` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Smaller workloads and fewer repetitions: under a minute.
    pub quick: bool,
    /// Measure only these groups; all when empty.
    pub only: Vec<Group>,
    /// The machine profile the policies group's predictions read (else the
    /// user's, measured once if missing).
    pub machine: Option<std::path::PathBuf>,
}

/// The groups of figures, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Group {
    /// The blocked kernel against the plain loop.
    Kernel,
    /// One node's worker against the bare kernel.
    Overhead,
    /// 1 to CPU-count workers.
    Scaling,
    /// A throttled worker's CPU share against its setting.
    Throttle,
    /// The bootstrap over loopback UDP against TCP.
    Transport,
    /// The reference run at four throttle pairs, default and best policy,
    /// against the ideal.
    TwoNodes,
    /// The original program's workload (10 iterations) against moving its
    /// bytes over TCP.
    Original,
    /// The same vector in 128 to 8192 jobs.
    JobSize,
    /// The master's peak memory against the vector.
    Memory,
    /// The bootstrap over the assignment's link, compressed or not.
    Compression,
    /// The policies: how well the best balances, simulated with moving
    /// data free.
    Policies,
    /// The simulator against real runs: sender, completion and adaptive at
    /// the four throttle pairs, a throttle drop and arriving jobs, real
    /// (median of 5), predicted and replayed, and their rankings.
    Fidelity,
    /// The demo window's own CPU under Xvfb, idle and during a run.
    Window,
    /// A command over a large file against GNU parallel, and over a
    /// directory against `xargs -P 2`.
    Command,
    /// The seeds' digit-sum table: chunk sizes and workers against a
    /// straight pass.
    Digits,
}

impl Options {
    /// Repetitions of each measurement: `full` normally, fewer when quick.
    fn reps(&self, full: usize) -> usize {
        if self.quick { full.div_ceil(3) } else { full }
    }

    fn wants(&self, group: Group) -> bool {
        self.only.is_empty() || self.only.contains(&group)
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Which of the figures it belongs to.
    pub group: &'static str,
    /// What was measured.
    pub name: String,
    /// The measured value (a median).
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// What it is compared with.
    pub reference_name: String,
    /// The reference's value, in the same unit, measured in the same run
    /// (or the setting, for the throttle).
    pub reference: Option<f64>,
    /// `value / reference`, or what the row says it is.
    pub ratio: Option<f64>,
    /// The goal, in words.
    pub target: Option<String>,
    /// Whether the goal was met.
    pub met: Option<bool>,
    /// Repetitions behind the median.
    pub samples: usize,
}

impl Figure {
    fn new(group: &'static str, name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Figure {
            group,
            name: name.into(),
            value,
            unit,
            reference_name: String::new(),
            reference: None,
            ratio: None,
            target: None,
            met: None,
            samples: 1,
        }
    }

    fn against(mut self, name: impl Into<String>, reference: f64) -> Self {
        self.reference_name = name.into();
        self.reference = Some(reference);
        self.ratio = Some(self.value / reference);
        self
    }

    fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = Some(ratio);
        self
    }

    fn target(mut self, text: impl Into<String>, met: bool) -> Self {
        self.target = Some(text.into());
        self.met = Some(met);
        self
    }

    fn note(mut self, text: impl Into<String>) -> Self {
        self.target = Some(text.into());
        self
    }

    fn samples(mut self, n: usize) -> Self {
        self.samples = n;
        self
    }
}

/// The machine the bench ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// The CPU's model name.
    pub cpu: String,
    /// Logical CPUs.
    pub logical_cpus: usize,
    /// The instruction set the kernel uses.
    pub kernel: &'static str,
    /// The operating system.
    pub os: String,
}

/// Everything one bench run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// loadbal's version.
    pub version: &'static str,
    /// `--quick` or not.
    pub quick: bool,
    /// Where it ran.
    pub machine: Machine,
    /// How long the bench took.
    pub seconds: f64,
    /// The rows of the table.
    pub figures: Vec<Figure>,
    /// Groups that failed (their figures are missing; the others stand).
    pub failed: Vec<GroupFailure>,
}

/// Runs every measurement, printing progress on `log` as it goes.
pub fn run(options: &Options, log: &mut dyn Write) -> anyhow::Result<BenchReport> {
    let started = Instant::now();
    let machine = machine();
    let _ = writeln!(
        log,
        "loadbal bench{}: {} ({} logical CPUs), kernel: {}",
        if options.quick { " --quick" } else { "" },
        machine.cpu,
        machine.logical_cpus,
        machine.kernel
    );
    let mut figures = Vec::new();
    let mut failed = Vec::new();
    // The two-node figure's ideal needs the kernel's rate.
    let kernel = if options.wants(Group::Kernel) || options.wants(Group::TwoNodes) {
        let mut rows = Vec::new();
        let k = compute::kernel(options, log, &mut rows);
        if options.wants(Group::Kernel) {
            figures.extend(rows);
        }
        Some(k)
    } else {
        None
    };
    if options.wants(Group::Overhead) {
        compute::overhead(options, log, &mut figures);
    }
    if options.wants(Group::Scaling) {
        compute::scaling(options, log, &mut figures);
    }
    if options.wants(Group::Throttle) {
        compute::throttle(options, log, &mut figures);
    }
    run_groups(
        options,
        log,
        &mut figures,
        &mut failed,
        &[(Group::Transport, net::transport)],
    );
    if let (true, Some(k)) = (options.wants(Group::TwoNodes), &kernel) {
        let result = net::two_nodes(options, log, &mut figures, k.updates_per_second);
        note_failure(Group::TwoNodes, result, log, &mut failed);
    }
    run_groups(
        options,
        log,
        &mut figures,
        &mut failed,
        &[
            (Group::Original, net::original),
            (Group::JobSize, net::job_size),
            (Group::Memory, net::memory),
            (Group::Compression, net::compression),
            (Group::Policies, net::policies),
            (Group::Fidelity, fidelity::fidelity),
            (Group::Window, window::window),
            (Group::Command, work::command),
            (Group::Digits, work::digits),
        ],
    );
    Ok(BenchReport {
        version: env!("CARGO_PKG_VERSION"),
        quick: options.quick,
        machine,
        seconds: started.elapsed().as_secs_f64(),
        figures,
        failed,
    })
}

/// A group of figures that can fail: it measures into the figures.
type GroupRun = fn(&Options, &mut dyn Write, &mut Vec<Figure>) -> anyhow::Result<()>;

/// Runs the wanted ones of `groups`, in order; one that fails is noted and
/// the next runs.
fn run_groups(
    options: &Options,
    log: &mut dyn Write,
    figures: &mut Vec<Figure>,
    failed: &mut Vec<GroupFailure>,
    groups: &[(Group, GroupRun)],
) {
    for &(group, run) in groups {
        if options.wants(group) {
            let result = run(options, log, figures);
            note_failure(group, result, log, failed);
        }
    }
}

/// A group that failed says so on `log` and is listed; the others' figures
/// stand.
fn note_failure(
    group: Group,
    result: anyhow::Result<()>,
    log: &mut dyn Write,
    failed: &mut Vec<GroupFailure>,
) {
    if let Err(e) = result {
        let name = clap::ValueEnum::to_possible_value(&group)
            .map_or_else(|| format!("{group:?}"), |v| v.get_name().to_owned());
        let _ = writeln!(log, "{name}: FAILED: {e:#}");
        failed.push(GroupFailure {
            group: name,
            error: format!("{e:#}"),
        });
    }
}

/// A group of figures that could not be measured, and why.
#[derive(Debug, Clone, Serialize)]
pub struct GroupFailure {
    /// The group, as `--only` names it.
    pub group: String,
    /// What went wrong.
    pub error: String,
}

fn machine() -> Machine {
    let cpu = crate::local::cpu_model().unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    Machine {
        cpu,
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: crate::kernel::Isa::detect().name(),
        os: std::env::consts::OS.to_owned(),
    }
}

pub use crate::sim::median;

/// A value with its unit, for the table.
fn show(value: f64, unit: &str) -> String {
    match unit {
        "s" if value < 1.0 => format!("{:.0} ms", value * 1000.0),
        "s" => format!("{value:.2} s"),
        "MiB" => format!("{value:.0} MiB"),
        "%" => format!("{value:.1} %"),
        "MB/s" if value >= 1000.0 => format!("{:.2} GB/s", value / 1000.0),
        "MB/s" => format!("{value:.0} MB/s"),
        "jobs/s" => format!("{value:.0} jobs/s"),
        _ if value >= 100.0 => format!("{value:.0} {unit}"),
        _ => format!("{value:.2} {unit}"),
    }
}

impl BenchReport {
    /// The table in Markdown.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("| Figure | Value | Reference | Ratio | Target |\n");
        out.push_str("|---|---:|---:|---:|---|\n");
        for f in &self.figures {
            let reference = match f.reference {
                Some(r) => format!("{} {}", f.reference_name, show(r, f.unit)),
                None => f.reference_name.clone(),
            };
            let ratio = f.ratio.map_or(String::new(), |r| format!("{r:.3}"));
            let target = match (&f.target, f.met) {
                (Some(t), Some(true)) => format!("{t} ✓"),
                (Some(t), Some(false)) => format!("{t} ✗"),
                (Some(t), None) => t.clone(),
                (None, _) => String::new(),
            };
            out.push_str(&format!(
                "| {}: {} | {} | {} | {} | {} |\n",
                f.group,
                f.name,
                show(f.value, f.unit),
                reference.trim(),
                ratio,
                target
            ));
        }
        out
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // Plain structs of numbers and strings: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_takes_the_middle() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0]), 3.0);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 1.0, 2.0, 9.0]), 2.0);
    }

    #[test]
    fn the_table_shows_values_references_ratios_and_targets() {
        let report = BenchReport {
            version: "0",
            quick: true,
            machine: machine(),
            seconds: 1.0,
            figures: vec![
                Figure::new("kernel", "AVX-512", 31.25, "GFLOP/s")
                    .against("plain loop", 7.5)
                    .target("≥ 3× the plain loop", true)
                    .samples(5),
                Figure::new("memory", "master peak RSS", 300.0, "MiB")
                    .against("vector", 256.0)
                    .target("≤ 1.3×", false),
                Figure::new("two nodes", "throttles (1, 1)", 2.5, "s")
                    .against("ideal", 2.0)
                    .ratio(0.8)
                    .note("no target yet"),
            ],
            failed: Vec::new(),
        };
        assert_eq!(
            report.table(),
            "| Figure | Value | Reference | Ratio | Target |\n\
             |---|---:|---:|---:|---|\n\
             | kernel: AVX-512 | 31.25 GFLOP/s | plain loop 7.50 GFLOP/s | 4.167 | ≥ 3× the plain loop ✓ |\n\
             | memory: master peak RSS | 300 MiB | vector 256 MiB | 1.172 | ≤ 1.3× ✗ |\n\
             | two nodes: throttles (1, 1) | 2.50 s | ideal 2.00 s | 0.800 | no target yet |\n"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["figures"][0]["ratio"], 31.25 / 7.5);
        assert_eq!(json["figures"][0]["samples"], 5);
        assert_eq!(json["figures"][1]["met"], false);
    }
}
