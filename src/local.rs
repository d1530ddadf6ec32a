//! Two real nodes in this process on loopback ports the system picks:
//! what `compare --real`, `calibrate` and the bench run when they run a
//! run for real rather than simulate it.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config::{ConfigFile, Role, WorkloadConfig};
use crate::link::LinkConfig;
use crate::node::{self, Command, NodeOptions, Outcome};
use crate::protocol::Phase;
use crate::report::Report;

/// The most a bench run of two nodes may take before it is abandoned.
pub(crate) const PAIR_LIMIT: Duration = Duration::from_secs(600);

/// A loopback port nobody is using now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind loopback")?;
    Ok(socket.local_addr()?.port())
}

/// A config on two fresh loopback ports.
pub fn loopback(workload: WorkloadConfig) -> anyhow::Result<ConfigFile> {
    let mut file = ConfigFile {
        workload,
        ..ConfigFile::default()
    };
    let (m, s) = (free_port()?, free_port()?);
    file.master.address = Some(format!("127.0.0.1:{m}"));
    file.slave.address = Some(format!("127.0.0.1:{s}"));
    Ok(file)
}

/// What one in-process run of two nodes measured.
pub(crate) struct PairRun {
    /// The bootstrap's duration on the master.
    pub(crate) bootstrap: Duration,
    /// Jobs the slave received at bootstrap.
    pub(crate) slave_received: u32,
    /// Chunks the master sent again.
    pub(crate) retransmitted: u64,
    /// The master's report, when the run went to the end.
    pub(crate) report: Option<Report>,
}

/// How far a bench run of two nodes goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// To the end, verified.
    Verified,
    /// Both stopped as soon as the bootstrap is over.
    Bootstrap,
    /// As `Bootstrap`, with random values in the bootstrap's jobs (which
    /// do not compress).
    RandomBootstrap,
}

/// A verified run of two nodes in this process.
#[derive(Debug, Clone)]
pub struct LocalRun {
    /// The master's report.
    pub report: Report,
    /// Both nodes' trace, as `demo --trace` writes it.
    pub trace: String,
}

/// Runs `config` for real with both nodes in this process, on two fresh
/// loopback ports, applying the throttle changes as the run goes (seconds
/// from the bootstrap's start); returns the master's report of a verified
/// run and the run's trace.
pub fn run(
    config: &crate::config::Config,
    changes: &[crate::sim::ThrottleChange],
) -> anyhow::Result<LocalRun> {
    let mut config = config.clone();
    config.master.address = (Ipv4Addr::LOCALHOST, free_port()?).into();
    config.slave.address = (Ipv4Addr::LOCALHOST, free_port()?).into();
    let quiet = NodeOptions::quiet();
    let slave =
        node::start(Role::Slave, &config, quiet.clone()).context("cannot start the slave")?;
    let master = node::start(Role::Master, &config, quiet).context("cannot start the master")?;
    slave.command(Command::Start);
    master.command(Command::Start);
    let started = Instant::now();
    let mut pending: Vec<_> = changes.to_vec();
    pending.sort_by(|a, b| b.at_s.total_cmp(&a.at_s));
    while !master.is_finished() {
        if started.elapsed() > PAIR_LIMIT {
            master.command(Command::Stop);
            slave.command(Command::Stop);
        }
        // Throttle changes count from the bootstrap, as in the simulator.
        let run_s = master.view().snapshot().phase_started[Phase::Bootstrap as usize]
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        while pending
            .last()
            .is_some_and(|c| run_s >= c.at_s && run_s > 0.0)
        {
            if let Some(c) = pending.pop() {
                let node = if c.role == Role::Master {
                    &master
                } else {
                    &slave
                };
                node.command(Command::SetThrottle(c.throttle));
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let views = (master.view().clone(), slave.view().clone());
    let outcome = master.wait();
    let _ = slave.wait();
    match outcome {
        Outcome::Finished {
            verified: true,
            report: Some(report),
        } => Ok(LocalRun {
            report: *report,
            trace: crate::trace::of_views(&[&views.0, &views.1]),
        }),
        Outcome::Finished { verified: true, .. } => bail!("the master made no report"),
        Outcome::Finished { .. } => bail!("the run did not verify"),
        Outcome::Failed { failure: why, .. } => bail!("the run failed: {why}"),
        Outcome::Stopped => bail!("the run was stopped"),
    }
}

/// Runs a master and a slave in this process to the end; the master's
/// report of the verified run.
pub(crate) fn verified_run(file: &ConfigFile) -> anyhow::Result<Report> {
    run_pair(file, Until::Verified)?
        .report
        .context("the master made no report")
}

/// Runs a master and a slave in this process.
pub(crate) fn run_pair(file: &ConfigFile, until: Until) -> anyhow::Result<PairRun> {
    let config = file.validate().context("the bench's config")?;
    let quiet = |random_bootstrap| NodeOptions {
        random_bootstrap,
        ..NodeOptions::quiet()
    };
    let slave =
        node::start(Role::Slave, &config, quiet(false)).context("cannot start the slave")?;
    let random = until == Until::RandomBootstrap;
    let master =
        node::start(Role::Master, &config, quiet(random)).context("cannot start the master")?;
    slave.command(Command::Start);
    master.command(Command::Start);
    let started = Instant::now();
    let bootstrap = loop {
        let phases = master.view().snapshot().phase_started;
        if let (Some(a), Some(b)) = (
            phases[Phase::Bootstrap as usize],
            phases[Phase::Processing as usize],
        ) {
            break b.saturating_duration_since(a);
        }
        if master.is_finished() || started.elapsed() > PAIR_LIMIT {
            bail!("the bootstrap did not finish");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // The slave publishes its figures at least every 100 ms: wait for the
    // snapshot that counts the last batch (or for a count that will not come).
    let expected = config.workload.jobs / 2;
    let settled = Instant::now();
    let slave_received = loop {
        let received = slave.view().snapshot().local.jobs_received;
        if received >= expected || settled.elapsed() > Duration::from_millis(500) {
            break received;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let retransmitted = master.view().snapshot().retransmitted;
    if until != Until::Verified {
        master.command(Command::Stop);
        slave.command(Command::Stop);
        let _ = master.wait();
        let _ = slave.wait();
        return Ok(PairRun {
            bootstrap,
            slave_received,
            retransmitted,
            report: None,
        });
    }
    let outcome = master.wait();
    let _ = slave.wait();
    match outcome {
        Outcome::Finished {
            verified: true,
            report,
        } => Ok(PairRun {
            bootstrap,
            slave_received,
            retransmitted,
            report: report.map(|r| *r),
        }),
        Outcome::Finished { .. } => bail!("the run did not verify"),
        Outcome::Failed { failure: why, .. } => bail!("the run failed: {why}"),
        Outcome::Stopped => bail!("the run was stopped"),
    }
}

/// One bootstrap between two in-process nodes, both throttles at 0 so
/// nothing else runs: its time, after checking every job arrived.
pub(crate) fn bootstrap_once(
    workload: WorkloadConfig,
    compression: bool,
    link: Option<LinkConfig>,
    data: Until,
) -> anyhow::Result<(Duration, u64)> {
    let mut file = loopback(workload.clone())?;
    file.master.throttle = 0.0;
    file.slave.throttle = 0.0;
    file.master.link = link;
    file.slave.link = link;
    file.network.compression = Some(compression);
    let run = run_pair(&file, data)?;
    let sent = workload.jobs / 2;
    if run.slave_received != sent {
        bail!(
            "the slave received {} of {sent} bootstrap jobs",
            run.slave_received
        );
    }
    Ok((run.bootstrap, run.retransmitted))
}

/// One bootstrap of `jobs / 2` reference jobs between two nodes in this
/// process (compression off, every byte sent, throttles at 0): its bytes,
/// the process's CPU seconds over it and its wall-clock seconds. What
/// `loadbal calibrate` prices a moved byte by.
pub fn bootstrap_cpu(jobs: u32) -> anyhow::Result<(u64, f64, f64)> {
    let workload = WorkloadConfig {
        jobs,
        ..WorkloadConfig::default()
    };
    let bytes =
        crate::protocol::batch::job_bytes(workload.elements_per_job) as u64 * u64::from(jobs / 2);
    let (cpu, wall) = (process_cpu_seconds(), Instant::now());
    bootstrap_once(workload, false, None, Until::Bootstrap)?;
    Ok((
        bytes,
        process_cpu_seconds() - cpu,
        wall.elapsed().as_secs_f64(),
    ))
}

/// This process's CPU time so far (user and system), seconds.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: rusage is a plain C struct of integers and timevals, for
    // which all zeros is a valid value; getrusage overwrites it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The processor's name from `/proc/cpuinfo`, if it says.
pub fn cpu_model() -> Option<String> {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
}
