//! Helpers shared by the integration tests: the real `loadbal` binary as
//! separate processes on loopback, each test on its own ports so tests run
//! in parallel. Every wait is bounded.

#![allow(dead_code)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_loadbal");

/// Two loopback ports nobody is using right now, and that nobody will be
/// given later by the kernel: they come from below its ephemeral range
/// (32768 and up), one after another for this test binary, starting at a
/// place set by its process id. Ports the kernel chose (bind to port 0) were
/// freed again at once, so a socket another test bound to port 0 could get
/// the same one before the node did, and the node then failed to bind.
pub fn free_ports() -> (u16, u16) {
    (free_port(), free_port())
}

/// One port as [`free_ports`] gives them.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let _ = NEXT.compare_exchange(
        0,
        (std::process::id() % 1_000) * 20 + 1,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A fresh directory for one test.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a config with fresh ports and the given sections merged in.
pub fn write_config(dir: &Path, extra: Value) -> PathBuf {
    let (m, s) = free_ports();
    let mut config = serde_json::json!({
        "master": { "address": format!("127.0.0.1:{m}") },
        "slave": { "address": format!("127.0.0.1:{s}") },
        "workload": { "jobs": 64, "elements_per_job": 4096, "iterations": 200 },
        "policy": { "state_interval_ms": 50 },
        "peer_timeout_ms": 10000
    });
    merge(&mut config, extra);
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// The tests' own cache directory: the machine profile a prediction
/// measures once is kept here, never in the user's.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache")
}

/// A machine profile of fixed figures (a worker at 6.4e10 element updates
/// a second, 0.3 ns a byte moved, 2 CPUs), written once: predictions that
/// read it measure nothing.
pub fn fixed_profile() -> PathBuf {
    // Written once a process (the GUI tests are threads of one), and each
    // time through a file of its own renamed into place, so a reader never
    // sees half of it.
    static WRITTEN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WRITTEN.get_or_init(write_fixed_profile).clone()
}

fn write_fixed_profile() -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixed-machine.json");
    let text = r#"{ "version": 2, "measured_by": "test", "cpu": "fixed", "logical_cpus": 2,
  "kernel_updates_per_s": 6.4e10, "seconds_per_byte": 3e-10, "transfers": [],
  "jobs": { "master": { "wait_s": 1e-5, "prepare_s": 2e-5, "handoff_s": 1e-5 },
            "slave": { "wait_s": 1e-5, "prepare_s": 0, "handoff_s": 1e-5 } },
  "runs": [] }
"#;
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
        let spare = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&spare, text).unwrap();
        std::fs::rename(&spare, &path).unwrap();
    }
    path
}

pub fn spawn(args: &[&str], dir: &Path) -> Child {
    Command::new(BIN)
        .args(args)
        .env("XDG_CACHE_HOME", cache_dir())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child, killing it after `limit`.
pub fn wait(child: Child, limit: Duration) -> Output {
    wait_or(child, limit, "")
}

/// Reads all of `pipe` on a thread of its own, as it comes.
fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Waits for a child, killing it after `limit` and failing with its stderr
/// and `context` (another process's output, say). Its stdout and stderr
/// are read as they come, so a child that writes more than a pipe holds
/// never waits on the test.
pub fn wait_or(mut child: Child, limit: Duration, context: &str) -> Output {
    let start = Instant::now();
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap();
            panic!(
                "loadbal did not finish within {limit:?}; stderr:\n{}{context}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

pub fn run(args: &[&str], dir: &Path) -> Output {
    wait(spawn(args, dir), Duration::from_secs(60))
}

/// Runs a slave and a master as two processes, expects both to exit 0, and
/// returns their outputs (master, slave).
pub fn run_pair(dir: &Path, slave_args: &[&str], master_args: &[&str]) -> (Output, Output) {
    let slave = spawn(slave_args, dir);
    let master = spawn(master_args, dir);
    let master = wait(master, Duration::from_secs(120));
    let context = format!(
        "\nthe master exited with {:?}; its stderr:\n{}",
        master.status.code(),
        stderr(&master)
    );
    let slave = wait_or(slave, Duration::from_secs(30), &context);
    assert_eq!(master.status.code(), Some(0), "{}", stderr(&master));
    assert_eq!(slave.status.code(), Some(0), "{}", stderr(&slave));
    (master, slave)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The report's invariants for any verified run of `jobs` jobs.
pub fn check_verified_report(r: &Value, jobs: u64) {
    assert_eq!(r["verified"], true, "{r:#}");
    assert_eq!(r["jobs_total"], jobs);
    let master = r["jobs_done"]["master"].as_u64().unwrap();
    let slave = r["jobs_done"]["slave"].as_u64().unwrap();
    assert_eq!(master + slave, jobs, "{r:#}");
    assert_eq!(r["bootstrap_jobs"], jobs / 2);
    let to_slave = r["jobs_moved"]["to_slave"].as_u64().unwrap();
    let to_master = r["jobs_moved"]["to_master"].as_u64().unwrap();
    // Every job the master computed was kept at bootstrap, moved to it or
    // reclaimed from a lost slave (none of whose results came back late).
    let reclaimed = r["jobs_reclaimed"].as_u64().unwrap();
    assert_eq!(
        master + to_slave,
        jobs - jobs / 2 + to_master + reclaimed,
        "{r:#}"
    );
    let listed: u64 = r["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["jobs"].as_u64().unwrap())
        .sum();
    assert_eq!(listed, to_slave + to_master);
    assert_eq!(r["verification"]["wrong_elements"], 0);
    let e = &r["elapsed_s"];
    let parts = e["bootstrap"].as_f64().unwrap()
        + e["processing"].as_f64().unwrap()
        + e["aggregation"].as_f64().unwrap();
    assert!((parts - e["total"].as_f64().unwrap()).abs() < 1e-9, "{e}");
    assert!(r["network"]["datagrams_sent"].as_u64().unwrap() > 0);
    assert!(r["network"]["bytes_sent"].as_u64().unwrap() > 0);
}

pub fn config_address(config: &Path, role: &str) -> String {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    v[role]["address"].as_str().unwrap().to_owned()
}

/// The report's network counters.
pub fn network(r: &Value, key: &str) -> u64 {
    r["network"][key].as_u64().unwrap()
}

/// A child whose stderr is read as it comes, so a test can wait for a line
/// instead of sleeping and hoping the run got that far.
pub struct Watched {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watched {
    /// Spawns `loadbal` with `args` in `dir`, reading its stderr.
    pub fn spawn(args: &[&str], dir: &Path) -> Watched {
        let mut child = spawn(args, dir);
        let err = child.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Watched {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Waits until stderr has a line containing `needle`; fails after `limit`.
    pub fn wait_for(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.lines.lock().unwrap().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "no line with {needle:?} within {limit:?}; stderr:\n{}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the exit (killing after `limit`): the exit code and stderr.
    pub fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                self.kill();
                panic!(
                    "loadbal did not finish within {limit:?}; stderr:\n{}",
                    self.lines.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let text = self.lines.lock().unwrap().clone();
        (status.code(), text)
    }
}
