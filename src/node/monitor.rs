//! The hardware monitor spoke: samples CPU use (the whole system and this
//! process) twice a second and sends it to the core. It ends when the
//! node's stop token is dropped.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// How often CPU use is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// Runs the monitor until `stop` is dropped; `send` gets each sample
/// (whole-system percent, this process's percent of one core) and says
/// whether to go on.
pub fn run(stop: &Receiver<()>, mut send: impl FnMut(f64, f64) -> bool, mut check: impl FnMut()) {
    let mut sampler = Sampler::new();
    loop {
        // The stop token doubles as the sleep between samples.
        match stop.recv_timeout(SAMPLE_INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        check();
        // Where sysinfo cannot read the CPUs, the node reports 0 %.
        let (system, process) = sampler.as_mut().map_or((0.0, 0.0), Sampler::sample);
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

    /// (whole-system percent, this process's percent of one core)
    fn sample(&mut self) -> (f64, f64) {
        self.system.refresh_cpu_usage();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            false,
            ProcessRefreshKind::nothing().with_cpu(),
        );
        let system = f64::from(self.system.global_cpu_usage());
        let process = self
            .system
            .process(self.pid)
            .map_or(0.0, |p| f64::from(p.cpu_usage()));
        (system, process)
    }
}
