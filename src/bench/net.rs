//! The figures of two nodes: the transport, the reference run at several
//! throttle pairs, the master's memory, and compression over a slow link.
//! The nodes are real ones on loopback ports the system picks.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{Figure, Options, median};
use crate::config::WorkloadConfig;
use crate::link::LinkConfig;
use crate::local::{Until, bootstrap_once, loopback, verified_run};

/// Sends `bytes` through a loopback TCP connection in 1 MiB writes and
/// returns the time from connecting to the last byte read. The reader reads
/// into one reused 1 MiB buffer, or with `keep` into fresh memory of the
/// whole size, as a node that keeps what it receives must.
fn tcp_stream(bytes: &[u8], keep: bool) -> anyhow::Result<Duration> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let address = listener.local_addr()?;
    let total = bytes.len();
    let reader = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; if keep { total } else { 1 << 20 }];
        let mut got = 0;
        while got < total {
            let into = if keep { &mut buf[got..] } else { &mut buf[..] };
            match stream.read(into)? {
                0 => break,
                n => got += n,
            }
        }
        Ok(got)
    });
    let start = Instant::now();
    let mut stream = TcpStream::connect(address)?;
    for chunk in bytes.chunks(1 << 20) {
        stream.write_all(chunk)?;
    }
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the TCP reader panicked"))??;
    let elapsed = start.elapsed();
    if got != total {
        bail!("TCP delivered {got} of {total} bytes");
    }
    Ok(elapsed)
}

/// The bootstraps compared: compression off and on, for the reference data
/// and for random values.
const VARIANTS: [(bool, Until); 4] = [
    (false, Until::Bootstrap),
    (true, Until::Bootstrap),
    (false, Until::RandomBootstrap),
    (true, Until::RandomBootstrap),
];

/// Figure 5: the bootstrap (half the reference vector, 128 MiB of jobs)
/// between two nodes' transfer managers over loopback UDP, against a TCP
/// stream of as many bytes; then the same with compression forced on, for
/// the reference data and for random values, against off (the default on a
/// plain loopback).
pub fn transport(
    options: &Options,
    log: &mut dyn Write,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let workload = WorkloadConfig::default();
    let reps = options.reps(5);
    let sent_jobs = workload.jobs / 2;
    let bytes = crate::protocol::batch::job_bytes(workload.elements_per_job) * sent_jobs as usize;
    let payload = vec![0x5au8; bytes];
    let mb = bytes as f64 / 1e6;
    let mut tcp = Vec::new();
    let mut tcp_kept = Vec::new();
    // Plain, compressed; reference data, random data.
    let mut udp: [Vec<f64>; 4] = Default::default();
    let mut resent = 0;
    for rep in 0..reps {
        tcp.push(mb / tcp_stream(&payload, false)?.as_secs_f64());
        tcp_kept.push(mb / tcp_stream(&payload, true)?.as_secs_f64());
        // Each repetition starts with another variant, so none always runs
        // first (or right after the TCP stream).
        for k in 0..VARIANTS.len() {
            let i = (rep + k) % VARIANTS.len();
            let (compression, data) = VARIANTS[i];
            let (time, retransmitted) = bootstrap_once(workload.clone(), compression, None, data)?;
            resent += retransmitted;
            udp[i].push(mb / time.as_secs_f64());
        }
    }
    let tcp = median(&tcp);
    let tcp_kept = median(&tcp_kept);
    let [plain, packed, random_plain, random_packed] = udp.map(|v| median(&v));
    let _ = writeln!(
        log,
        "transport: bootstrap {plain:.0} MB/s, TCP {tcp:.0} MB/s, TCP into fresh memory \
         {tcp_kept:.0} MB/s; compressed {packed:.0} MB/s; \
         random values {random_plain:.0} MB/s, compression on {random_packed:.0} MB/s; \
         {resent} chunks resent in all"
    );
    let mib = bytes >> 20;
    out.push(
        Figure::new(
            "transport",
            format!("bootstrap, {mib} MiB over UDP, every byte sent"),
            plain,
            "MB/s",
        )
        .against("TCP", tcp)
        .target("≥ 0.5× TCP, nothing lost", plain >= 0.5 * tcp)
        .samples(reps),
    );
    out.push(
        Figure::new(
            "transport",
            "the same, against TCP into fresh memory",
            plain,
            "MB/s",
        )
        .against("TCP kept", tcp_kept)
        .note("a receiver that keeps 128 MiB faults in every page of it")
        .samples(reps),
    );
    out.push(
        Figure::new(
            "transport",
            "the same, compression on (the default; reference data)",
            packed,
            "MB/s",
        )
        .against("off", plain)
        .note("each job goes as its one value")
        .samples(reps),
    );
    out.push(
        Figure::new(
            "transport",
            "random values, compression on",
            random_packed,
            "MB/s",
        )
        .against("off", random_plain)
        .note("a 64 KiB trial per batch, then sent as it is")
        .samples(reps),
    );
    Ok(())
}

/// The policies the two-node figures run: the default, and the best of the
/// policies issue.
const TWO_NODE_POLICIES: [&str; 2] = ["sender", "adaptive"];

/// Figure 6: the reference run at four throttle pairs, with the default
/// policy and the best one, against the ideal makespan W / (r·t_m + r·t_s)
/// from the kernel's measured rate r (both nodes are on this machine, so r
/// is the same).
pub fn two_nodes(
    options: &Options,
    log: &mut dyn Write,
    out: &mut Vec<Figure>,
    rate: f64,
) -> anyhow::Result<()> {
    let workload = WorkloadConfig {
        jobs: if options.quick { 256 } else { 1024 },
        ..WorkloadConfig::default()
    };
    let reps = options.reps(3);
    let updates = f64::from(workload.jobs)
        * f64::from(workload.elements_per_job)
        * f64::from(workload.iterations);
    for (tm, ts) in [(1.0, 1.0), (1.0, 0.3), (0.25, 1.0), (0.5, 0.75)] {
        for policy in TWO_NODE_POLICIES {
            let mut totals = Vec::new();
            let mut phases = [Vec::new(), Vec::new(), Vec::new()];
            let mut split = (0, 0);
            for _ in 0..reps {
                let mut file = loopback(workload.clone())?;
                file.master.throttle = tm;
                file.slave.throttle = ts;
                file.policy.transfer = policy.to_owned();
                let r = verified_run(&file)?;
                totals.push(r.elapsed_s.total);
                phases[0].push(r.elapsed_s.bootstrap);
                phases[1].push(r.elapsed_s.processing);
                phases[2].push(r.elapsed_s.aggregation);
                split = (r.jobs_done.master, r.jobs_done.slave);
            }
            let actual = median(&totals);
            let ideal = updates / (rate * (tm + ts));
            let efficiency = ideal / actual;
            let [b, p, a] = phases.map(|v| median(&v));
            let _ = writeln!(
                log,
                "two nodes ({tm}, {ts}) {policy}: {actual:.2} s, ideal {ideal:.2} s; \
                 bootstrap {b:.3} s, processing {p:.3} s, aggregation {a:.3} s"
            );
            let (goal, want) = match (policy, tm == ts) {
                ("sender", _) => ("≥ 0.85", 0.85),
                (_, true) => ("≥ 0.90", 0.90),
                (_, false) => ("≥ 0.95", 0.95),
            };
            out.push(
                Figure::new(
                    "two nodes",
                    format!("throttles ({tm}, {ts}), {policy}"),
                    actual,
                    "s",
                )
                .against("ideal", ideal)
                .ratio(efficiency)
                .target(format!("efficiency {goal}"), efficiency >= want)
                .note(format!(
                    "bootstrap {:.0} ms, processing {:.2} s, aggregation {:.0} ms; jobs {} + {}",
                    b * 1000.0,
                    p,
                    a * 1000.0,
                    split.0,
                    split.1
                ))
                .samples(reps),
            );
        }
    }
    Ok(())
}

/// The original program's workload: the reference vector with 10
/// iterations, so the run is nearly all moving data: half the vector out
/// and its results back. Against the ideal of moving those bytes (both
/// ways) over a loopback TCP connection into fresh memory; compression on
/// (the default) and off.
pub fn original(
    options: &Options,
    log: &mut dyn Write,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let workload = WorkloadConfig {
        jobs: if options.quick { 256 } else { 1024 },
        iterations: 10,
        ..WorkloadConfig::default()
    };
    let reps = options.reps(5);
    let half =
        crate::protocol::batch::job_bytes(workload.elements_per_job) * (workload.jobs / 2) as usize;
    let payload = vec![0x5au8; half];
    let (mut tcp, mut on, mut off) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        // Out and back: two streams of half the vector.
        let there = tcp_stream(&payload, true)?;
        let back = tcp_stream(&payload, true)?;
        tcp.push((there + back).as_secs_f64());
        for (compression, into) in [(true, &mut on), (false, &mut off)] {
            let mut file = loopback(workload.clone())?;
            file.network.compression = Some(compression);
            into.push(verified_run(&file)?.elapsed_s.total);
        }
    }
    let (tcp, on, off) = (median(&tcp), median(&on), median(&off));
    let mib = (2 * half) >> 20;
    let _ = writeln!(
        log,
        "original workload (10 iterations): {on:.3} s, compression off {off:.3} s; \
         {mib} MiB over TCP {tcp:.3} s"
    );
    out.push(
        Figure::new("original", "10 iterations, end to end", on, "s")
            .against(format!("TCP, {mib} MiB"), tcp)
            .target("≤ 1.5× TCP", on <= 1.5 * tcp)
            .note("compression on (the default): the data is one value per job")
            .samples(reps),
    );
    out.push(
        Figure::new("original", "the same, compression off", off, "s")
            .against(format!("TCP, {mib} MiB"), tcp)
            .target("≤ 1.5× TCP", off <= 1.5 * tcp)
            .note("every byte sent as it is")
            .samples(reps),
    );
    Ok(())
}

/// What chunking costs: the same vector (and iterations) in 128 to 8192
/// jobs, each run end to end, against the reference's 1024.
pub fn job_size(
    options: &Options,
    log: &mut dyn Write,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let reference = WorkloadConfig::default();
    let total = u64::from(reference.jobs) * u64::from(reference.elements_per_job);
    let iterations = if options.quick {
        100
    } else {
        reference.iterations
    };
    let reps = options.reps(3);
    let mut rows = Vec::new();
    for jobs in [128u32, 256, 512, 1024, 2048, 4096, 8192] {
        let workload = WorkloadConfig {
            jobs,
            elements_per_job: (total / u64::from(jobs)) as u32,
            iterations,
            ..reference.clone()
        };
        let mut totals = Vec::new();
        for _ in 0..reps {
            totals.push(verified_run(&loopback(workload.clone())?)?.elapsed_s.total);
        }
        let t = median(&totals);
        let _ = writeln!(
            log,
            "job size: {jobs} jobs of {} KiB: {t:.3} s",
            workload.elements_per_job / 128
        );
        rows.push((jobs, workload.elements_per_job, t));
    }
    let base = rows
        .iter()
        .find(|r| r.0 == reference.jobs)
        .map_or(f64::NAN, |r| r.2);
    for (jobs, elements, t) in rows {
        out.push(
            Figure::new(
                "job size",
                format!("{jobs} jobs of {} KiB", elements / 128),
                t,
                "s",
            )
            .against("1024 jobs", base)
            .samples(reps),
        );
    }
    Ok(())
}

/// Figure 7: the master's peak resident memory over a reference run, the
/// master and the slave each a process of its own (this program, run again).
pub fn memory(options: &Options, log: &mut dyn Write, out: &mut Vec<Figure>) -> anyhow::Result<()> {
    let workload = WorkloadConfig {
        jobs: if options.quick { 256 } else { 1024 },
        ..WorkloadConfig::default()
    };
    let vector = f64::from(workload.jobs) * f64::from(workload.elements_per_job) * 8.0;
    let exe = std::env::current_exe().context("cannot find this program")?;
    let dir = std::env::temp_dir().join(format!("loadbal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = (|| -> anyhow::Result<Vec<f64>> {
        let mut peaks = Vec::new();
        for _ in 0..options.reps(3) {
            peaks.push(master_peak(&exe, &dir, workload.clone())?);
        }
        Ok(peaks)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let peaks = result?;
    let peak = median(&peaks);
    let _ = writeln!(
        log,
        "memory: master peak {:.0} MiB for a {:.0} MiB vector",
        peak / 1048576.0,
        vector / 1048576.0
    );
    out.push(
        Figure::new("memory", "master's peak RSS", peak / 1048576.0, "MiB")
            .against("vector", vector / 1048576.0)
            .target("≤ 1.3×", peak <= 1.3 * vector)
            .samples(peaks.len()),
    );
    Ok(())
}

/// One reference run as two processes; the master's peak memory in bytes.
fn master_peak(exe: &Path, dir: &Path, workload: WorkloadConfig) -> anyhow::Result<f64> {
    let config = dir.join("config.json");
    let report = dir.join("report.json");
    std::fs::write(&config, loopback(workload)?.to_json())?;
    let spawn = |role: &str| {
        let mut p = Process::new(exe);
        p.args(["--role", role, "--headless", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if role == "master" {
            p.arg("--report").arg(&report);
        }
        p.spawn()
    };
    let mut slave = spawn("slave").context("cannot start a slave process")?;
    let master = spawn("master").context("cannot start a master process")?;
    let status = master.wait_with_output()?.status;
    if !status.success() {
        // A slave whose master failed would wait for it until its own
        // time-out: the bench does not.
        let _ = slave.kill();
        let _ = slave.wait();
        bail!("the master process ended with {status}");
    }
    let _ = slave.wait();
    let text = std::fs::read_to_string(&report)?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    value["peak_rss_bytes"]
        .as_f64()
        .context("the report has no peak_rss_bytes")
}

/// The assignment's link, as the faults issue emulates it.
pub fn assignment_link(seed: u64) -> LinkConfig {
    LinkConfig::assignment(seed)
}

/// The bootstrap over the assignment's link (10 Mbit/s, 54 ± 32 ms, 0.2 %
/// loss, on both nodes) with and without compression, for the reference
/// data and for random values: 16 reference jobs, so 2 MiB to send.
pub fn compression(
    options: &Options,
    log: &mut dyn Write,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let workload = WorkloadConfig {
        jobs: 16,
        ..WorkloadConfig::default()
    };
    let reps = options.reps(3);
    let mut times: [Vec<f64>; 4] = Default::default();
    for rep in 0..reps {
        let link = assignment_link(rep as u64 + 1);
        for k in 0..VARIANTS.len() {
            let i = (rep + k) % VARIANTS.len();
            let (compression, data) = VARIANTS[i];
            let (time, _) = bootstrap_once(workload.clone(), compression, Some(link), data)?;
            times[i].push(time.as_secs_f64());
        }
    }
    let [plain, packed, random_plain, random_packed] = times.map(|v| median(&v));
    let _ = writeln!(
        log,
        "compression: assignment link, reference data {plain:.2} s → {packed:.2} s compressed; \
         random values {random_plain:.2} s → {random_packed:.2} s"
    );
    let mib = (workload.jobs / 2 * workload.elements_per_job * 8) >> 20;
    out.push(
        Figure::new(
            "compression",
            format!("bootstrap of {mib} MiB over the assignment link, compressed"),
            packed,
            "s",
        )
        .against("not compressed", plain)
        .note("reference data")
        .samples(reps),
    );
    out.push(
        Figure::new(
            "compression",
            "the same, random values, compression on",
            random_packed,
            "s",
        )
        .against("off", random_plain)
        .note("data that does not compress")
        .samples(reps),
    );
    Ok(())
}

/// Figure 9 (the policies issue): at each throttle pair, how well the best
/// policy balances in the simulator with moving data free (the policy's
/// own quality). The real runs against the predictions are the fidelity
/// group's.
pub fn policies(
    options: &Options,
    log: &mut dyn Write,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    use crate::sim::{self, MachineModel};
    let workload = WorkloadConfig {
        jobs: if options.quick { 256 } else { 1024 },
        ..WorkloadConfig::default()
    };
    let base = loopback(workload)?
        .validate()
        .context("the bench's config")?;
    let profile = crate::sim::MachineProfile::obtain(options.machine.as_deref(), &mut |line| {
        let _ = writeln!(log, "policies: {line}");
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let machine = profile.model(&base, None);
    let free = MachineModel::compute_only(machine.rate_jobs_per_s);
    for (tm, ts) in sim::compare::THROTTLE_PAIRS {
        let with = |policy: &str| {
            let mut c = base.clone();
            c.master.throttle = tm;
            c.slave.throttle = ts;
            c.policy.transfer = policy.to_owned();
            c.policy.threshold = None;
            c
        };
        let mut best = ("", 0.0);
        for name in crate::policy::NAMES {
            let e = sim::simulate(&with(name), &free, &[], 1)?
                .prediction
                .efficiency;
            if e > best.1 {
                best = (name, e);
            }
        }
        let _ = writeln!(
            log,
            "policies ({tm}, {ts}): best balance, moving free: {} at {:.3} of the ideal",
            best.0, best.1
        );
        out.push(
            Figure::new(
                "policies",
                format!("({tm}, {ts}) balance, moving free: {}", best.0),
                best.1,
                "",
            )
            .against("ideal", 1.0)
            .target(">= 0.97", best.1 >= 0.97),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tcp_reference_carries_every_byte_into_either_buffer() {
        // Not a multiple of the 1 MiB writes or reads.
        let bytes: Vec<u8> = (0..(3 << 20) + 5).map(|i| i as u8).collect();
        for keep in [false, true] {
            let elapsed = tcp_stream(&bytes, keep).expect("loopback TCP works");
            assert!(elapsed > Duration::ZERO);
        }
    }
}
