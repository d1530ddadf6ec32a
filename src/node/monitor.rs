//! The hardware monitor spoke: samples CPU use (the whole system and this
//! node's own threads) four times a second and sends it to the core. It ends
//! when the node's stop token is dropped.
//!
//! A node's threads are named after its role (`master-core`,
//! `master-worker-0`, ...), so in the demo, where both nodes share one
//! process, each counts only its own: on Linux from `/proc/self/task`,
//! elsewhere (or if that cannot be read) the whole process's figure.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// How often CPU use is sampled.
/// sysinfo's whole-system figure needs 200 ms between samples at least;
/// a run's first figure comes after this long.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the monitor until `stop` is dropped; `send` gets each sample
/// (the whole machine's and the node's threads' use, each in percent of one core) and
/// says whether to go on. The node's threads are those whose names start
/// with `prefix` followed by `-`.
pub fn run(
    stop: &Receiver<()>,
    prefix: &str,
    mut send: impl FnMut(f64, f64) -> bool,
    mut check: impl FnMut(),
) {
    let mut sampler = Sampler::new();
    let mut threads = ThreadsCpu::new(format!("{prefix}-"));
    // The baseline: the first sample then covers the first interval.
    let _ = threads.sample(Instant::now());
    loop {
        // The stop token doubles as the sleep between samples.
        match stop.recv_timeout(SAMPLE_INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        check();
        // Where sysinfo cannot read the CPUs, the node reports 0 %.
        let (system, process) = sampler.as_mut().map_or((0.0, 0.0), Sampler::sample);
        let process = threads.sample(Instant::now()).unwrap_or(process);
        if !send(system, process) {
            return;
        }
    }
}

/// sysinfo's view of the CPUs and of this process.
struct Sampler {
    system: System,
    pid: Pid,
}

impl Sampler {
    fn new() -> Option<Sampler> {
        let pid = sysinfo::get_current_pid().ok()?;
        let mut system = System::new().ok()?;
        system.refresh_cpu_usage();
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing().with_cpu(),
        );
        Some(Sampler { system, pid })
    }

    /// (the whole machine's and this process's use, each in percent of one
    /// core)
    fn sample(&mut self) -> (f64, f64) {
        self.system.refresh_cpu_usage();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            false,
            ProcessRefreshKind::nothing().with_cpu(),
        );
        // Percent of one core, as the node's own figure: a machine of N
        // cores all busy is N × 100 %.
        let cores = self.system.cpus().len().max(1) as f64;
        let system = f64::from(self.system.global_cpu_usage()) * cores;
        let process = self
            .system
            .process(self.pid)
            .map_or(0.0, |p| f64::from(p.cpu_usage()));
        (system, process)
    }
}

/// CPU use of the threads whose names start with a prefix, from
/// `/proc/self/task/*/stat` (utime + stime, in clock ticks).
struct ThreadsCpu {
    prefix: String,
    ticks_per_s: f64,
    last: Option<(Instant, u64)>,
}

impl ThreadsCpu {
    fn new(prefix: String) -> Self {
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        ThreadsCpu {
            prefix,
            ticks_per_s: if ticks > 0 { ticks as f64 } else { 100.0 },
            last: None,
        }
    }

    /// Percent of one core since the last sample; None on the first call
    /// or when `/proc` cannot be read.
    fn sample(&mut self, now: Instant) -> Option<f64> {
        let ticks = threads_ticks(&self.prefix)?;
        let previous = self.last.replace((now, ticks));
        let (then, before) = previous?;
        let seconds = now.duration_since(then).as_secs_f64();
        (seconds > 0.0)
            .then(|| ticks.saturating_sub(before) as f64 / self.ticks_per_s / seconds * 100.0)
    }
}

/// Clock ticks spent so far by this process's threads named `prefix...`
/// (threads that ended take theirs with them). None where `/proc` cannot
/// be read.
fn threads_ticks(prefix: &str) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        if let Some((name, ticks)) = parse_stat(&stat)
            && name.starts_with(prefix)
        {
            total += ticks;
        }
    }
    Some(total)
}

/// A task's name and its utime + stime from its `stat` line. The name is
/// between the first `(` and the last `)` (it may hold either); utime and
/// stime are the 12th and 13th fields after it.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut fields = stat.get(close + 1..)?.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_cpu_ticks() {
        let line = "4242 (master-worker-0) R 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(("master-worker-0", 175)));
        // A name with a space and a parenthesis is still read whole.
        let odd = "7 (a) b) S 1 2 3 4 5 6 7 8 9 10 3 4 0 0";
        assert_eq!(parse_stat(odd), Some(("a) b", 7)));
        assert_eq!(parse_stat("7 (x) S 1 2"), None);
    }

    #[test]
    fn only_the_named_threads_are_counted() {
        if crate::node::solo::thread_cpu_time().is_none() {
            return; // No /proc here: nothing to check.
        }
        let (spun, spun_rx) = crossbeam_channel::bounded(0);
        let (release, release_rx) = crossbeam_channel::bounded::<()>(0);
        let busy = std::thread::Builder::new()
            .name("cputest-busy".to_owned())
            .spawn(move || {
                // Spins until it has had 300 ms of CPU, however loaded the
                // machine, then waits to be counted.
                let cpu = || crate::node::solo::thread_cpu_time().unwrap_or(Duration::MAX);
                let mut x = 0u64;
                while cpu() < Duration::from_millis(300) {
                    x = x.wrapping_mul(31).wrapping_add(1);
                }
                std::hint::black_box(x);
                let _ = spun.send(());
                let _ = release_rx.recv();
            })
            .unwrap();
        spun_rx.recv().unwrap();
        // 300 ms of CPU is 30 ticks at 100 a second; the rounding of each
        // tick loses at most one each of utime and stime.
        assert!(threads_ticks("cputest-busy").unwrap() >= 28);
        assert_eq!(threads_ticks("no-such-thread-"), Some(0));
        release.send(()).unwrap();
        busy.join().unwrap();
    }
}
