//! The figures of the digits and command kinds (issue 21): a command run
//! over a large text file against GNU parallel, and over a directory
//! against `xargs -P 2`, on this machine; and the seeds' digit-sum table
//! (runtime by chunk size and by workers, against a plain pass).
//!
//! The two nodes are real ones on loopback, in this process; the programs
//! are real processes. Inputs are written to a directory under the
//! system's temporary directory and removed afterwards.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{Figure, Options, median};
use crate::config::{Kind, Role, SplitConfig, WorkloadConfig};
use crate::node::{self, Command, NodeOptions, Outcome};
use crate::report::Report;

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("loadbal-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `bytes` of log-like text, the same for the same size: lines of words
/// from a small vocabulary and a counter, as a server's log is.
fn write_log(path: &Path, bytes: u64) -> anyhow::Result<()> {
    const WORDS: [&str; 12] = [
        "GET",
        "POST",
        "/index.html",
        "/api/v1/items",
        "200",
        "404",
        "user",
        "session",
        "ok",
        "slow",
        "cache",
        "miss",
    ];
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    let (mut written, mut x, mut n) = (0u64, 0x2545_f491_4f6c_dd1du64, 0u64);
    while written < bytes {
        let mut line = format!(
            "2026-12-07T{:02}:{:02}:{:02} ",
            n % 24,
            n % 60,
            (n / 7) % 60
        );
        for _ in 0..10 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            line.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
            line.push(' ');
        }
        line.push_str(&format!("{n}\n"));
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        n += 1;
    }
    out.flush()?;
    Ok(())
}

/// A config for a run of `workload` on two fresh loopback ports, with
/// `workers` workers on each node.
fn config(workload: WorkloadConfig, workers: u32) -> anyhow::Result<crate::config::Config> {
    let mut file = crate::local::loopback(workload)?;
    file.master.workers = workers;
    file.slave.workers = workers;
    file.validate().context("the bench's config")
}

/// Runs a master and a slave of a digits or command workload in this
/// process; returns the master's report and the wall time from start to
/// the master's end (the output written).
fn run_work(config: &crate::config::Config) -> anyhow::Result<(Report, Duration)> {
    let options = crate::workload::kind::MasterOptions::default();
    let mut master_config = config.clone();
    let master_work = node::prepare_work(&mut master_config, Role::Master, &options)
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut slave_config = config.clone();
    let slave_work = node::prepare_work(&mut slave_config, Role::Slave, &options)
        .map_err(|e| anyhow::anyhow!(e))?;
    let quiet = |work| NodeOptions {
        work,
        ..NodeOptions::quiet()
    };
    let started = Instant::now();
    let slave = node::start(Role::Slave, &slave_config, quiet(slave_work))
        .context("cannot start the slave")?;
    let master = node::start(Role::Master, &master_config, quiet(master_work))
        .context("cannot start the master")?;
    slave.command(Command::Start);
    master.command(Command::Start);
    let outcome = master.wait();
    let took = started.elapsed();
    let _ = slave.wait();
    match outcome {
        Outcome::Finished {
            verified: true,
            report: Some(report),
        } => Ok((*report, took)),
        Outcome::Finished { report, .. } => bail!(
            "the run was not verified: {:?}",
            report.and_then(|r| r.work).map(|w| w.output_error)
        ),
        Outcome::Failed { failure, .. } => bail!("the run failed: {failure}"),
        Outcome::Stopped => bail!("the run stopped"),
    }
}

/// Runs `sh -c script` in `dir`; its wall time.
fn shell(dir: &Path, script: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = Process::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run sh -c {script:?}"))?;
    if !status.success() {
        bail!("sh -c {script:?} failed: {status}");
    }
    Ok(started.elapsed())
}

/// The command kind: gzip over a log in 1 MiB line-aligned pieces against
/// `parallel -j 2 --pipe --block 1M -k gzip -c`, and gzip over each file
/// of a directory against `xargs -P 2`. Both on this machine, loadbal's
/// two nodes with one worker each.
pub(super) fn command(
    options: &Options,
    log: &mut dyn Write,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let reps = options.reps(3);
    let scratch = Scratch::new("command")?;
    let dir = &scratch.0;
    let mib = if options.quick { 20 } else { 200 };
    let input = dir.join("big.log");
    let _ = writeln!(log, "command: writing a {mib} MB log");
    write_log(&input, mib * 1_000_000)?;
    let workload = WorkloadConfig {
        kind: Kind::Command,
        command: Some(vec!["gzip".into(), "-c".into()]),
        input: Some(input.clone()),
        split: Some(SplitConfig {
            lines: None,
            bytes: Some(1 << 20),
        }),
        align: Some("lines".into()),
        output: Some(dir.join("big.log.gz")),
        ..WorkloadConfig::default()
    };
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let parallel = super::window::have("parallel");
    for _ in 0..reps {
        let (report, took) = run_work(&config(workload.clone(), 1)?)?;
        ours.push(took.as_secs_f64());
        let _ = writeln!(
            log,
            "command: gzip of {mib} MB in {} jobs: {:.2} s (master {}, slave {})",
            report.jobs_total,
            took.as_secs_f64(),
            report.jobs_done.master,
            report.jobs_done.slave
        );
        if parallel {
            let t = shell(
                dir,
                "parallel -j 2 --pipe --block 1M -k gzip -c < big.log > parallel.gz",
            )?;
            theirs.push(t.as_secs_f64());
        }
    }
    // The output is the input, compressed.
    shell(dir, "gunzip -c big.log.gz | cmp -s - big.log")
        .context("gunzip -c of loadbal's output differs from the input")?;
    let name = format!("gzip -c, {mib} MB in 1 MiB line-aligned pieces, both nodes");
    let figure = Figure::new("command", name, median(&ours), "s").samples(reps);
    if parallel {
        let reference = median(&theirs);
        let ratio = median(&ours) / reference;
        out.push(
            figure
                .against("parallel -j 2 --pipe --block 1M -k", reference)
                .target("≤ 1.15 × parallel", ratio <= 1.15),
        );
    } else {
        let _ = writeln!(log, "command: GNU parallel is not installed: no reference");
        out.push(figure.note("GNU parallel not installed (Debian package parallel): no reference"));
    }

    // A directory of files, gzip on each.
    let files = dir.join("files");
    let outputs = dir.join("gz");
    std::fs::create_dir_all(&files)?;
    let count = if options.quick { 40 } else { 300 };
    let each = mib * 1_000_000 / count;
    for i in 0..count {
        write_log(&files.join(format!("part{i:04}.log")), each)?;
    }
    let workload = WorkloadConfig {
        input: Some(files.clone()),
        split: None,
        align: None,
        output: Some(outputs.clone()),
        ..workload
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let _ = std::fs::remove_dir_all(&outputs);
        let (_, took) = run_work(&config(workload.clone(), 1)?)?;
        ours.push(took.as_secs_f64());
        let t = shell(
            dir,
            "mkdir -p xargs-out && cd files && ls | xargs -P 2 -I{} sh -c 'gzip -c \"$1\" > \"../xargs-out/$1\"' _ {}",
        )?;
        theirs.push(t.as_secs_f64());
    }
    shell(
        dir,
        "cd files && for f in *; do gunzip -c ../gz/$f | cmp -s - $f || exit 1; done",
    )
    .context("an output of the directory run differs from its input")?;
    let reference = median(&theirs);
    let ratio = median(&ours) / reference;
    let _ = writeln!(
        log,
        "command: gzip of {count} files: {:.2} s, xargs -P 2 {reference:.2} s",
        median(&ours)
    );
    out.push(
        Figure::new(
            "command",
            format!(
                "gzip -c over {count} files of {} kB, both nodes",
                each / 1000
            ),
            median(&ours),
            "s",
        )
        .samples(reps)
        .against("xargs -P 2", reference)
        .target("≤ 1.15 × xargs", ratio <= 1.15),
    );
    Ok(())
}

/// The seeds' digit-sum table: the same file summed in chunks of several
/// sizes, and with one and two workers a node, against a straight pass.
pub(super) fn digits(
    options: &Options,
    log: &mut dyn Write,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let reps = options.reps(3);
    let scratch = Scratch::new("digits")?;
    let input = scratch.0.join("nums.txt");
    let count = if options.quick { 3_000_000 } else { 30_000_000 };
    let sum = {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input)?);
        let sum = crate::workload::digits::write_digits(&mut file, count, 1)?;
        file.flush()?;
        sum
    };
    let mut plain = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        let (total, _) = crate::workload::digits::total_of(&input)?;
        plain.push(started.elapsed().as_secs_f64());
        if total != sum {
            bail!("a straight pass found {total}, not {sum}");
        }
    }
    let plain = median(&plain);
    let _ = writeln!(
        log,
        "digits: a straight pass over {count} digits: {plain:.4} s"
    );
    for (chunk, workers) in [
        (3_000, 1),
        (30_000, 1),
        (300_000, 1),
        (3_000_000, 1),
        (30_000, 2),
    ] {
        let workload = WorkloadConfig {
            kind: Kind::Digits,
            input: Some(input.clone()),
            chunk_bytes: Some(chunk),
            ..WorkloadConfig::default()
        };
        let mut times = Vec::new();
        let mut slave_share = Vec::new();
        let mut jobs = 0;
        for _ in 0..reps {
            let (report, took) = run_work(&config(workload.clone(), workers)?)?;
            let work = report.work.context("no work in the report")?;
            if work.digits_total != Some(sum) {
                bail!("the run's total {:?} is not {sum}", work.digits_total);
            }
            times.push(took.as_secs_f64());
            jobs = report.jobs_total;
            slave_share.push(f64::from(report.jobs_done.slave) / f64::from(report.jobs_total));
        }
        let t = median(&times);
        let _ = writeln!(
            log,
            "digits: chunks of {chunk} bytes ({jobs} jobs), {workers} worker(s) a node: {t:.4} s"
        );
        out.push(
            Figure::new(
                "digits",
                format!(
                    "{count} digits in chunks of {chunk} B ({jobs} jobs), {workers} worker{} a node",
                    if workers == 1 { "" } else { "s" }
                ),
                t,
                "s",
            )
            .samples(reps)
            .against("a straight pass", plain)
            .note(format!(
                "slave computed {:.0} % of the jobs; total verified",
                median(&slave_share) * 100.0
            )),
        );
    }
    Ok(())
}
