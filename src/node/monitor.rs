//! The hardware monitor thread: samples CPU use (the whole system and this
//! process) twice a second, and is where a throttle change from the user
//! enters the node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::StateMsg;
use super::shared::Shared;

/// How often CPU use is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// The monitor's inbox.
#[derive(Debug)]
pub enum MonitorMsg {
    /// The user set a new throttle (0 to 1).
    SetThrottle(f64),
    /// Stop the thread.
    Shutdown,
}

/// Runs the monitor until told to stop.
pub fn run(shared: Arc<Shared>, inbox: Receiver<MonitorMsg>, state: Sender<StateMsg>) {
    let mut sampler = Sampler::new();
    let mut next_sample = Instant::now() + SAMPLE_INTERVAL;
    loop {
        match inbox.recv_deadline(next_sample) {
            Ok(MonitorMsg::SetThrottle(t)) => {
                let t = t.clamp(0.0, 1.0);
                let old = shared.throttle.get();
                if (old - t).abs() > f64::EPSILON {
                    shared.throttle.set(t);
                    shared.log.push(format!(
                        "throttle changed from {:.0} % to {:.0} %",
                        old * 100.0,
                        t * 100.0
                    ));
                    let _ = state.send(StateMsg::LocalChanged);
                    shared.wake();
                }
            }
            Ok(MonitorMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(s) = sampler.as_mut() {
                    let (system, process) = s.sample();
                    shared.cpu_system.set(system);
                    shared.cpu_process.set(process);
                }
                next_sample = Instant::now() + SAMPLE_INTERVAL;
            }
        }
    }
}

/// sysinfo's view of the CPUs and of this process. `None` where sysinfo
/// cannot read them; the node then reports 0 % rather than failing.
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
