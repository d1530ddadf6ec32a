//! The machine profile: what this machine does, measured once by
//! `loadbal calibrate` and read by every prediction (`simulate`, `compare`,
//! `bench`, the window), so that the same config, profile and seed give the
//! same answer every time. Nothing is timed behind the user's back: a
//! prediction without a profile at hand measures this machine once, says
//! so, and keeps the profile in the user's cache directory for the next.
//!
//! The file is JSON ([`MachineProfile`], documented field by field in
//! docs/policies-and-simulator.md):
//!
//! ```json
//! { "version": 2, "measured_by": "0.10.0", "cpu": "AMD EPYC", "logical_cpus": 2,
//!   "kernel_updates_per_s": 6.4e10, "seconds_per_byte": 3.1e-10,
//!   "transfers": [ { "bytes": 16777216, "cpu_s": 0.021, "wall_s": 0.015 }, ... ],
//!   "jobs": { "master": { "wait_s": 3e-5, "prepare_s": 1e-4, "handoff_s": 2e-5 },
//!             "slave": { "wait_s": 9e-5, "prepare_s": 1e-5, "handoff_s": 1e-5 } },
//!   "runs": [ { "jobs": 1024, "cpu_s": 0.61, "wall_s": 0.31 }, ... ] }
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{JobCosts, MachineModel};
use crate::config::{Config, ConfigFile, WorkloadConfig};

/// The profile format's version.
pub const PROFILE_VERSION: u32 = 2;

/// Jobs of the two bootstraps whose difference prices a byte moved: half
/// of each is sent (8 MiB and 64 MiB of reference jobs).
const TRANSFER_JOBS: [u32; 2] = [64, 512];

/// Rounds of the two bootstraps; the median slope is kept.
const TRANSFER_ROUNDS: usize = 3;

/// Reference runs that price a job; the median is kept.
const RUNS: usize = 3;

/// This machine as the simulator models it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineProfile {
    /// The format's version ([`PROFILE_VERSION`]).
    pub version: u32,
    /// The loadbal version that measured it.
    pub measured_by: String,
    /// The processor, as the system names it.
    pub cpu: String,
    /// Logical CPUs.
    pub logical_cpus: u32,
    /// Element updates one worker makes a second at full throttle, on the
    /// reference job (32768 doubles, 1000 additions each), as the workers
    /// ran it in real reference runs of two nodes: from their traces, the
    /// median job's computing time (the throttle's sleeps left out), the
    /// median of the runs.
    pub kernel_updates_per_s: f64,
    /// CPU seconds a byte moved costs at each end: the slope of this
    /// process's CPU time over the bytes of real loopback bootstraps of two
    /// sizes (so a run's fixed costs cancel), halved for the two ends.
    pub seconds_per_byte: f64,
    /// The bootstraps behind `seconds_per_byte`.
    pub transfers: Vec<TransferSample>,
    /// What a job costs each node beyond computing it, from the traces of
    /// real reference runs of two nodes in this process at full throttle:
    /// each figure the mean over a run's jobs, the median of the runs.
    pub jobs: RoleCosts,
    /// The runs behind `jobs`.
    pub runs: Vec<RunSample>,
}

/// [`JobCosts`] of each node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleCosts {
    /// The master's (it makes its jobs' data).
    pub master: JobCosts,
    /// The slave's (its jobs arrive with their data).
    pub slave: JobCosts,
}

/// One reference run of `calibrate` (its job costs are in the profile's
/// `jobs`, medians over the runs; this is what each run took).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSample {
    /// Jobs computed.
    pub jobs: u32,
    /// CPU seconds of the whole process over the run.
    pub cpu_s: f64,
    /// Its wall-clock seconds.
    pub wall_s: f64,
}

/// One loopback bootstrap of `calibrate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSample {
    /// Bytes of jobs sent, every byte as it is (compression off).
    pub bytes: u64,
    /// CPU seconds of the whole process (both nodes) over the run.
    pub cpu_s: f64,
    /// Its wall-clock seconds.
    pub wall_s: f64,
}

impl MachineProfile {
    /// Measures this machine: the kernel's rate on the reference job, what
    /// moving a byte costs from real loopback bootstraps between two nodes
    /// in this process, and what a job costs beyond the kernel from real
    /// reference runs. A few seconds; `say` hears each step.
    pub fn calibrate(say: &mut dyn FnMut(&str)) -> anyhow::Result<MachineProfile> {
        let reference = WorkloadConfig::default();
        let config = ConfigFile {
            workload: reference.clone(),
            ..ConfigFile::default()
        }
        .validate()?;
        let mut transfers = Vec::new();
        let mut slopes = Vec::new();
        for _ in 0..TRANSFER_ROUNDS {
            let mut round = Vec::new();
            for jobs in TRANSFER_JOBS {
                let (bytes, cpu_s, wall_s) = crate::local::bootstrap_cpu(jobs)?;
                round.push(TransferSample {
                    bytes,
                    cpu_s,
                    wall_s,
                });
            }
            let (small, large) = (round[0], round[1]);
            // The two sizes differ by 56 MiB: never a division by zero.
            let bytes = large.bytes as f64 - small.bytes as f64;
            slopes.push((large.cpu_s - small.cpu_s) / bytes.max(1.0) / 2.0);
            transfers.extend(round);
        }
        slopes.sort_by(f64::total_cmp);
        // A slope below zero is noise on a machine too fast to see it.
        let seconds_per_byte = slopes[slopes.len() / 2].max(0.0);
        say(&format!(
            "calibrate: moving a byte over loopback costs {:.2} ns of CPU at each end \
             (bootstraps of {} and {} MiB, {} rounds)",
            seconds_per_byte * 1e9,
            transfers[0].bytes >> 20,
            transfers[1].bytes >> 20,
            TRANSFER_ROUNDS
        ));
        // Real reference runs at full throttle: each job's costs beyond
        // computing it, as its trace shows them (a replay reads them so).
        let mut runs = Vec::new();
        let mut measured: Vec<[JobCosts; 2]> = Vec::new();
        let mut rates = Vec::new();
        for _ in 0..RUNS {
            let (cpu, wall) = (crate::local::process_cpu_seconds(), Instant::now());
            let run = crate::local::run(&config, &[])?;
            let cpu_s = crate::local::process_cpu_seconds() - cpu;
            let report = &run.report;
            let jobs = report.jobs_done.master + report.jobs_done.slave;
            let nodes = crate::trace::read(&run.trace).map_err(|e| anyhow::anyhow!(e))?;
            let replay =
                super::replay::Replay::from_trace(&nodes).map_err(|e| anyhow::anyhow!(e))?;
            measured.push(replay.machine().jobs);
            // The kernel as the workers ran it: the median job's computing
            // time (the two nodes' medians' mean), sleeps left out.
            let [m, s] = replay.median_compute_s;
            rates.push(per_job_updates(&reference) / ((m + s) / 2.0).max(1e-12));
            runs.push(RunSample {
                jobs,
                cpu_s,
                wall_s: wall.elapsed().as_secs_f64(),
            });
        }
        let kernel_updates_per_s = super::median(&rates);
        say(&format!(
            "calibrate: the kernel, one worker at full throttle: {kernel_updates_per_s:.2e} element \
             updates a second (the median job's computing time in {RUNS} reference runs of two \
             nodes)"
        ));
        let middle = |role: usize, field: fn(&JobCosts) -> f64| {
            super::median(&measured.iter().map(|m| field(&m[role])).collect::<Vec<_>>())
        };
        let costs = |role: usize| JobCosts {
            wait_s: middle(role, |c| c.wait_s),
            prepare_s: middle(role, |c| c.prepare_s),
            handoff_s: middle(role, |c| c.handoff_s),
        };
        let jobs = RoleCosts {
            master: costs(0),
            slave: costs(1),
        };
        for (name, c) in [("master", jobs.master), ("slave", jobs.slave)] {
            say(&format!(
                "calibrate: a job on the {name}: {:.1} µs waiting for it, {:.1} µs preparing it, \
                 {:.1} µs handing it back ({RUNS} reference runs of two nodes, from their traces)",
                c.wait_s * 1e6,
                c.prepare_s * 1e6,
                c.handoff_s * 1e6
            ));
        }
        let profile = MachineProfile {
            version: PROFILE_VERSION,
            measured_by: env!("CARGO_PKG_VERSION").to_owned(),
            cpu: crate::local::cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            kernel_updates_per_s,
            seconds_per_byte,
            transfers,
            jobs,
            runs,
        };
        // A measurement that went wrong is an error, not a profile that
        // every later prediction would refuse.
        profile
            .check()
            .map_err(|why| anyhow::anyhow!("the measurements make no profile: {why}"))?;
        Ok(profile)
    }

    /// The machine the simulator models for `config`: a worker computes
    /// its jobs at the profile's kernel rate, or at `rate` jobs a second
    /// when given (`--rate` overrides the kernel's rate only).
    pub fn model(&self, config: &Config, rate: Option<f64>) -> MachineModel {
        let per_job = per_job_updates(&config.workload).max(1.0);
        MachineModel {
            rate_jobs_per_s: rate.unwrap_or(self.kernel_updates_per_s / per_job),
            seconds_per_byte: self.seconds_per_byte,
            jobs: [self.jobs.master, self.jobs.slave],
            cores: self.logical_cpus,
        }
    }

    /// Reads a profile, checking every figure.
    pub fn load(path: &Path) -> Result<MachineProfile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the machine profile {}: {e}", path.display()))?;
        let again = |why: String| {
            format!(
                "the machine profile {}: {why}; run `loadbal calibrate --out {}` to measure \
                 this machine again",
                path.display(),
                path.display()
            )
        };
        // Another version's fields differ: its version says so first.
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
        if let Some(v) = version.filter(|v| *v != u64::from(PROFILE_VERSION)) {
            return Err(again(format!(
                "version {v} (this loadbal reads version {PROFILE_VERSION})"
            )));
        }
        let profile: MachineProfile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "the machine profile {} is not one: {e}; run `loadbal calibrate --out {}` \
                 to measure this machine again",
                path.display(),
                path.display()
            )
        })?;
        profile.check().map_err(again)?;
        Ok(profile)
    }

    fn check(&self) -> Result<(), String> {
        if self.version != PROFILE_VERSION {
            return Err(format!(
                "version {} (this loadbal reads version {PROFILE_VERSION})",
                self.version
            ));
        }
        if !(self.kernel_updates_per_s.is_finite() && self.kernel_updates_per_s > 0.0) {
            return Err(format!(
                "kernel_updates_per_s is {}: must be a number above 0",
                self.kernel_updates_per_s
            ));
        }
        if !(self.seconds_per_byte.is_finite() && (0.0..1e-3).contains(&self.seconds_per_byte)) {
            return Err(format!(
                "seconds_per_byte is {}: must be a number from 0 up to 0.001",
                self.seconds_per_byte
            ));
        }
        for (role, c) in [("master", &self.jobs.master), ("slave", &self.jobs.slave)] {
            for (field, v) in [
                ("wait_s", c.wait_s),
                ("prepare_s", c.prepare_s),
                ("handoff_s", c.handoff_s),
            ] {
                if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                    return Err(format!(
                        "jobs.{role}.{field} is {v}: must be a number from 0 up to 1"
                    ));
                }
            }
        }
        if self.logical_cpus == 0 {
            return Err("logical_cpus is 0: must be 1 or more".to_owned());
        }
        Ok(())
    }

    /// Writes the profile (atomically: a reader never sees half of one).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::files::write(path, format!("{text}\n").as_bytes())
    }

    /// Where a profile is kept unless told: `loadbal/machine.json` in the
    /// user's cache directory (`$XDG_CACHE_HOME`, else `~/.cache`); `None`
    /// when there is neither.
    pub fn default_path() -> Option<PathBuf> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|d| !d.is_empty())
                    .map(|home| PathBuf::from(home).join(".cache"))
            })?;
        Some(cache.join("loadbal").join("machine.json"))
    }

    /// The profile a prediction uses: the one at `path` when given (which
    /// must exist); else the one in the cache directory, measured there
    /// first if there is none yet (said through `say`, with how to measure
    /// again).
    pub fn obtain(
        path: Option<&Path>,
        say: &mut dyn FnMut(&str),
    ) -> Result<MachineProfile, String> {
        if let Some(path) = path {
            return MachineProfile::load(path);
        }
        // One calibration at a time in this process (the window's Compare
        // and its prediction may both need one): each would count the
        // other's CPU as its own. The second then reads the first's.
        static CALIBRATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = CALIBRATING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(path) = MachineProfile::default_path() else {
            say(
                "no cache directory ($XDG_CACHE_HOME or $HOME): measuring this machine for this \
                 run only; `loadbal calibrate --out PATH` and --machine PATH keep a profile",
            );
            return MachineProfile::calibrate(say).map_err(|e| format!("calibrating: {e:#}"));
        };
        if path.exists() {
            match MachineProfile::load(&path) {
                Ok(profile) => return Ok(profile),
                // The cache's own profile (an older loadbal's, say) is
                // measured again rather than standing in the way.
                Err(why) => say(&format!(
                    "{why}: measuring this machine again (a few seconds) into {}",
                    path.display()
                )),
            }
        } else {
            say(&format!(
                "no machine profile yet: measuring this machine once (a few seconds) into {}; \
                 `loadbal calibrate` measures it again",
                path.display()
            ));
        }
        let started = Instant::now();
        let profile = MachineProfile::calibrate(say).map_err(|e| format!("calibrating: {e:#}"))?;
        match profile.save(&path) {
            Ok(()) => say(&format!(
                "machine profile written to {} ({:.1} s)",
                path.display(),
                started.elapsed().as_secs_f64()
            )),
            Err(e) => say(&format!(
                "cannot keep the machine profile at {}: {e}; it is used for this run only",
                path.display()
            )),
        }
        Ok(profile)
    }

    /// A profile of fixed figures, for tests that need no measurement.
    pub fn fixed(kernel_updates_per_s: f64, seconds_per_byte: f64, logical_cpus: u32) -> Self {
        MachineProfile {
            version: PROFILE_VERSION,
            measured_by: env!("CARGO_PKG_VERSION").to_owned(),
            cpu: "fixed".to_owned(),
            logical_cpus,
            kernel_updates_per_s,
            seconds_per_byte,
            transfers: Vec::new(),
            jobs: RoleCosts::default(),
            runs: Vec::new(),
        }
    }
}

/// Element updates of one job of `w`.
fn per_job_updates(w: &WorkloadConfig) -> f64 {
    f64::from(w.elements_per_job) * f64::from(w.iterations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_round_trips_and_a_bad_one_is_named() {
        let dir = std::env::temp_dir().join(format!("loadbal-profile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("machine.json");
        let mut profile = MachineProfile::fixed(6.4e10, 3e-10, 2);
        profile.jobs.slave.wait_s = 2e-5;
        profile.save(&path).unwrap();
        assert_eq!(MachineProfile::load(&path).unwrap(), profile);
        // The model: the kernel's rate over the config's job, or --rate.
        let config = ConfigFile::default().validate().unwrap();
        let m = profile.model(&config, None);
        assert!((m.rate_jobs_per_s - 6.4e10 / (32768.0 * 1000.0)).abs() < 1e-9);
        assert_eq!((m.seconds_per_byte, m.cores), (3e-10, 2));
        assert_eq!(profile.model(&config, Some(5.0)).rate_jobs_per_s, 5.0);
        // Each node's job costs, as measured.
        assert_eq!(m.jobs[1].wait_s, 2e-5);
        assert_eq!(m.jobs[0], JobCosts::default());
        // Every figure checked, the fix named.
        let bad = MachineProfile {
            kernel_updates_per_s: -1.0,
            ..profile.clone()
        };
        bad.save(&path).unwrap();
        let err = MachineProfile::load(&path).unwrap_err();
        assert_eq!(
            err,
            format!(
                "the machine profile {0}: kernel_updates_per_s is -1: must be a number above 0; \
                 run `loadbal calibrate --out {0}` to measure this machine again",
                path.display()
            )
        );
        let mut bad = profile.clone();
        bad.jobs.master.handoff_s = f64::INFINITY;
        assert_eq!(
            bad.check().unwrap_err(),
            "jobs.master.handoff_s is inf: must be a number from 0 up to 1"
        );
        // A profile of the version before: named as such (the cache's is
        // measured again).
        std::fs::write(
            &path,
            r#"{ "version": 1, "measured_by": "0.9.0", "seconds_per_job": 2e-5 }"#,
        )
        .unwrap();
        assert_eq!(
            MachineProfile::load(&path).unwrap_err(),
            format!(
                "the machine profile {0}: version 1 (this loadbal reads version 2); run \
                 `loadbal calibrate --out {0}` to measure this machine again",
                path.display()
            )
        );
        std::fs::write(&path, "{\"version\": 2}").unwrap();
        let err = MachineProfile::load(&path).unwrap_err();
        assert!(err.contains("is not one: missing field"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
