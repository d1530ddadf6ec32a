//! Integration tests: the real `loadbal` binary, as separate processes on
//! loopback, each test on its own ports (chosen by the kernel) so tests run
//! in parallel. Every wait is bounded.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loadbal");

/// Two loopback ports nobody is using right now.
fn free_ports() -> (u16, u16) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// A fresh directory for one test.
fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a config with fresh ports and the given sections merged in.
fn write_config(dir: &Path, extra: Value) -> PathBuf {
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

fn spawn(args: &[&str], dir: &Path) -> Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child, killing it after `limit`.
fn wait(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "loadbal did not finish within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn run(args: &[&str], dir: &Path) -> Output {
    wait(spawn(args, dir), Duration::from_secs(60))
}

/// Runs a slave and a master as two processes, expects both to exit 0, and
/// returns their outputs (master, slave).
fn run_pair(dir: &Path, slave_args: &[&str], master_args: &[&str]) -> (Output, Output) {
    let slave = spawn(slave_args, dir);
    let master = spawn(master_args, dir);
    let master = wait(master, Duration::from_secs(120));
    let slave = wait(slave, Duration::from_secs(30));
    assert_eq!(master.status.code(), Some(0), "{}", stderr(&master));
    assert_eq!(slave.status.code(), Some(0), "{}", stderr(&slave));
    (master, slave)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The report's invariants for any verified run of `jobs` jobs.
fn check_verified_report(r: &Value, jobs: u64) {
    assert_eq!(r["verified"], true, "{r:#}");
    assert_eq!(r["jobs_total"], jobs);
    let master = r["jobs_done"]["master"].as_u64().unwrap();
    let slave = r["jobs_done"]["slave"].as_u64().unwrap();
    assert_eq!(master + slave, jobs, "{r:#}");
    assert_eq!(r["bootstrap_jobs"], jobs / 2);
    let to_slave = r["jobs_moved"]["to_slave"].as_u64().unwrap();
    let to_master = r["jobs_moved"]["to_master"].as_u64().unwrap();
    // Every job the master computed was kept at bootstrap or moved to it.
    assert_eq!(master + to_slave, jobs - jobs / 2 + to_master, "{r:#}");
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

/// The expected value of a workload, by repeated addition.
fn expected(initial: f64, addend: f64, iterations: u32) -> f64 {
    let mut v = initial;
    for _ in 0..iterations {
        v += addend;
    }
    v
}

#[test]
fn two_processes_with_throttles_1_and_half_finish_verified() {
    let dir = test_dir("two-processes");
    // Long enough jobs, a small threshold and frequent states, so the
    // throttled slave falls behind and the policy moves jobs to the master.
    let config = write_config(
        &dir,
        serde_json::json!({
            "workload": { "jobs": 96, "elements_per_job": 4096, "iterations": 3000 },
            "policy": { "threshold": 2 }
        }),
    );
    let config = config.to_str().unwrap();
    let (master, slave) = run_pair(
        &dir,
        &[
            "--role",
            "slave",
            "--config",
            config,
            "--throttle",
            "0.5",
            "--headless",
        ],
        &[
            "--role",
            "master",
            "--config",
            config,
            "--throttle",
            "1.0",
            "--headless",
            "--report",
            "report.json",
        ],
    );
    let r = read_report(&dir.join("report.json"));
    check_verified_report(&r, 96);
    assert_eq!(r["throttle"]["master"], 1.0);
    assert_eq!(r["throttle"]["slave"], 0.5);
    assert_eq!(r["expected_value"], expected(1.111111, 1.111111, 3000));
    assert!(
        r["jobs_moved"]["to_master"].as_u64().unwrap() > 0,
        "the slower slave should have sent jobs to the master: {r:#}"
    );
    // The job-id log: the bootstrap split and its acknowledgement.
    let m = stderr(&master);
    assert!(
        m.contains("bootstrap: keeping jobs [0-47], sending jobs [48-95] to the slave"),
        "{m}"
    );
    assert!(m.contains("verified: all 96 jobs present once"), "{m}");
    let s = stderr(&slave);
    assert!(
        s.contains("received 48 bootstrap jobs [48-95] from master"),
        "{s}"
    );
    assert!(
        s.contains("the master has every result (verified); exiting"),
        "{s}"
    );
}

/// Runs `demo --headless` on a config with `extra` merged in; expects exit 0
/// and returns the report and stderr.
fn run_demo_report(dir: &Path, extra: Value) -> (Value, String) {
    let config = write_config(dir, extra);
    let args = [
        "demo",
        "--headless",
        "--config",
        config.to_str().unwrap(),
        "--report",
        "r.json",
    ];
    let out = run(&args, dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (read_report(&dir.join("r.json")), stderr(&out))
}

#[test]
fn demo_headless_finishes_verified() {
    let dir = test_dir("demo");
    let (r, err) = run_demo_report(&dir, serde_json::json!({}));
    check_verified_report(&r, 64);
    assert_eq!(r["expected_value"], expected(1.111111, 1.111111, 200));
    assert_eq!(r["policy"]["transfer"], "sender");
    assert!(err.contains("VERIFIED: 64 jobs"), "{err}");
}

#[test]
fn a_demo_with_an_odd_job_count_and_large_datagrams_is_verified() {
    let dir = test_dir("odd");
    let (r, _) = run_demo_report(
        &dir,
        serde_json::json!({
            "workload": { "jobs": 37, "elements_per_job": 1000, "iterations": 7,
                          "initial": -3.25, "addend": 0.1 },
            "network": { "datagram_bytes": 65507 },
            "master": { "workers": 2 },
            "slave": { "workers": 2 }
        }),
    );
    check_verified_report(&r, 37);
    assert_eq!(r["bootstrap_jobs"], 18);
    assert_eq!(r["expected_value"], expected(-3.25, 0.1, 7));
}

/// Runs `loadbal` with a config file and returns (exit code, stderr).
fn with_config(text: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = test_dir(&format!("bad-{:x}", fxhash(text, args)));
    std::fs::write(dir.join("c.json"), text).unwrap();
    let mut all = vec!["--config", "c.json"];
    all.extend_from_slice(args);
    let out = run(&all, &dir);
    (out.status.code(), stderr(&out))
}

fn fxhash(text: &str, args: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes().chain(args.concat().bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[test]
fn bad_configs_exit_2_naming_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"master": {"throttle": 2}}"#,
            "loadbal: master.throttle: 2 is out of range: must be from 0 to 1",
        ),
        (
            "{\n \"colour\": 1}",
            "loadbal: c.json: colour: unknown field `colour`",
        ),
        (
            r#"{"workload": {"jobs": 0}}"#,
            "loadbal: workload.jobs: 0 is out of range: must be from 1 to 1048576",
        ),
        (
            r#"{"slave": {"address": "127.0.0.1:7001"}}"#,
            "loadbal: slave.address: 127.0.0.1:7001 is also the master's address",
        ),
        (
            r#"{"master": "#,
            "loadbal: c.json: master: EOF while parsing a value",
        ),
        (
            r#"{"policy": {"transfer": "magic"}}"#,
            "loadbal: policy.transfer: unknown policy \"magic\"",
        ),
    ];
    for (text, message) in cases {
        for args in [
            &["--role", "master", "--headless"][..],
            &["demo", "--headless"][..],
        ] {
            let (code, err) = with_config(text, args);
            assert_eq!(code, Some(2), "{text}: {err}");
            assert!(
                err.starts_with(message),
                "{text}: expected {message:?}, got {err:?}"
            );
        }
    }
    let (code, err) = with_config("{\n \"colour\": 1}", &["demo", "--headless"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("(at line 2, column 9)"), "{err}");
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    let dir = test_dir("args");
    let cases: &[(&[&str], &str)] = &[
        (&[], "loadbal: say what to run"),
        (
            &["--role", "master", "--throttle", "1.5", "--headless"],
            "1.5 is out of range: must be from 0.0 to 1.0",
        ),
        (&["--role", "chief"], "invalid value 'chief' for '--role"),
        (
            &["--role", "slave", "--headless", "--report", "r.json"],
            "--report is for the master and the demo",
        ),
        (
            &["--role", "master", "--headless", "--config", "missing.json"],
            "loadbal: cannot read config file missing.json",
        ),
        (
            &["demo", "--headless", "--report", "no/such/dir/r.json"],
            "directory no/such/dir does not exist",
        ),
    ];
    for (args, message) in cases {
        let out = run(args, &dir);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn help_explains_every_flag() {
    let out = run(&["--help"], Path::new("."));
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--role",
        "--config",
        "--throttle",
        "--headless",
        "--report",
        "demo",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn a_taken_port_is_a_runtime_failure() {
    let dir = test_dir("taken");
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = write_config(
        &dir,
        serde_json::json!({ "master": { "address": format!("127.0.0.1:{port}") } }),
    );
    let out = run(
        &[
            "--role",
            "master",
            "--headless",
            "--config",
            config.to_str().unwrap(),
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "loadbal: cannot start the master: cannot open UDP socket on 127.0.0.1:{port}"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_headless_master_gives_up_after_60_s_without_its_slave() {
    let dir = test_dir("no-slave");
    let config = write_config(&dir, serde_json::json!({}));
    let started = Instant::now();
    let out = wait(
        spawn(
            &[
                "--role",
                "master",
                "--headless",
                "--config",
                config.to_str().unwrap(),
            ],
            &dir,
        ),
        Duration::from_secs(90),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(started.elapsed() >= Duration::from_secs(60));
    let err = stderr(&out);
    let slave = config_address(&config, "slave");
    assert!(
        err.contains(&format!("waiting for the slave at {slave}")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "loadbal: no slave answered at {slave} within 60 s; start it with `loadbal --role slave`"
        )),
        "{err}"
    );
}

fn config_address(config: &Path, role: &str) -> String {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    v[role]["address"].as_str().unwrap().to_owned()
}

#[test]
fn a_slave_whose_master_dies_stops_with_exit_3() {
    let dir = test_dir("master-dies");
    // Slow enough that the run is still going when the master is killed.
    let config = write_config(
        &dir,
        serde_json::json!({
            "workload": { "jobs": 64, "elements_per_job": 4096, "iterations": 100000 },
            "peer_timeout_ms": 1000
        }),
    );
    let config = config.to_str().unwrap();
    let slave = spawn(&["--role", "slave", "--config", config, "--headless"], &dir);
    let mut master = spawn(
        &["--role", "master", "--config", config, "--headless"],
        &dir,
    );
    // Wait until the slave has its bootstrap jobs, then kill the master.
    std::thread::sleep(Duration::from_secs(2));
    master.kill().unwrap();
    let _ = master.wait();
    let out = wait(slave, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("received 32 bootstrap jobs [32-63] from master"),
        "{err}"
    );
    let master_address = config_address(Path::new(config), "master");
    assert!(
        err.contains(&format!(
            "loadbal: peer lost: nothing heard from the master at {master_address} for"
        )),
        "{err}"
    );
}

/// The report's network counters.
fn network(r: &Value, key: &str) -> u64 {
    r["network"][key].as_u64().unwrap()
}

#[test]
fn a_lossy_duplicating_reordering_link_loses_nothing() {
    let dir = test_dir("lossy");
    let link = |seed: u64| serde_json::json!({ "loss": 0.2, "duplicate": 0.05, "reorder": 0.1, "seed": seed });
    let config = write_config(
        &dir,
        serde_json::json!({
            "master": { "link": link(1) },
            "slave": { "link": link(2) },
            "workload": { "jobs": 48, "elements_per_job": 8192, "iterations": 300 },
            "policy": { "state_interval_ms": 100 }
        }),
    );
    let config = config.to_str().unwrap();
    let (master, _) = run_pair(
        &dir,
        &["--role", "slave", "--config", config, "--headless"],
        &[
            "--role",
            "master",
            "--config",
            config,
            "--headless",
            "--report",
            "r.json",
        ],
    );
    let r = read_report(&dir.join("r.json"));
    check_verified_report(&r, 48);
    // Losses were recovered by retransmission, duplicates dropped and counted.
    assert!(network(&r, "retransmitted") > 0, "{r:#}");
    assert!(network(&r, "rejected") > 0, "{r:#}");
    assert_eq!(r["link"]["master"]["loss"], 0.2);
    assert!(stderr(&master).contains(
        "the master's datagrams go through an emulated link: 20 % loss, 5 % duplication, \
         10 % reordering (seed 1)"
    ));
}

#[test]
fn the_assignments_wan_figures_finish_verified() {
    let dir = test_dir("wan");
    let link = |seed: u64| {
        serde_json::json!({ "loss": 0.002, "delay_ms": 54, "jitter_ms": 32,
                            "bandwidth_mbit": 10, "seed": seed })
    };
    let (r, err) = run_demo_report(
        &dir,
        serde_json::json!({
            "master": { "link": link(1) },
            "slave": { "link": link(2) },
            "workload": { "jobs": 16, "elements_per_job": 4096, "iterations": 200 }
        }),
    );
    check_verified_report(&r, 16);
    assert_eq!(r["link"]["slave"]["bandwidth_mbit"], 10.0);
    assert!(
        err.contains("54 ± 32 ms, 10 Mbit/s, 0.2 % loss (seed 2)"),
        "{err}"
    );
}
