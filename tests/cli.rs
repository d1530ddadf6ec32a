//! Integration tests of the command line: runs, configs, arguments and
//! links, with the real `loadbal` binary as separate processes on loopback.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::*;

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
            "-v",
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
    // The master, not verbose, sums its bootstrap and results up; the
    // slave, with -v, logs every batch with its job ids.
    assert!(!m.contains("acknowledged 48 jobs [48-95]"), "{m}");
    assert!(m.contains("bootstrap done: 48 jobs"), "{m}");
    assert!(m.contains("results: "), "{m}");
    let s = stderr(&slave);
    assert!(
        s.contains("received 48 bootstrap jobs [48-95] from master"),
        "{s}"
    );
    assert!(
        s.contains("bootstrap: received 48 jobs from the master in 1 batches"),
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
    // Regression: waking the readers as the nodes ended made them panic
    // after the run (a receive with no source address).
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
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
            "network": { "datagram_bytes": 65507, "compression": true },
            "master": { "workers": 2 },
            "slave": { "workers": 2 }
        }),
    );
    check_verified_report(&r, 37);
    assert_eq!(r["bootstrap_jobs"], 18);
    // One value repeated compresses: the bootstrap batch went compressed.
    let batches = &r["network"]["batches"];
    assert!(batches["compressed"].as_u64().unwrap() >= 1, "{r:#}");
    let (raw, wire) = (
        batches["raw_bytes"].as_u64().unwrap(),
        batches["wire_bytes"].as_u64().unwrap(),
    );
    assert!(raw >= 18 * 8008 && wire * 10 < raw, "{r:#}");
    assert_eq!(r["expected_value"], expected(-3.25, 0.1, 7));
}

/// Runs `loadbal` with a config file and returns (exit code, stderr, the
/// directory it ran in).
fn with_config(text: &str, args: &[&str]) -> (Option<i32>, String, PathBuf) {
    let dir = test_dir(&format!("bad-{:x}", fxhash(text, args)));
    std::fs::write(dir.join("c.json"), text).unwrap();
    let mut all = vec!["--config", "c.json"];
    all.extend_from_slice(args);
    let out = run(&all, &dir);
    (out.status.code(), stderr(&out), dir)
}

fn fxhash(text: &str, args: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes().chain(args.concat().bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Malformed configs, each with the start of the message it must give.
const BAD_CONFIGS: &[(&str, &str)] = &[
    // Broken JSON and wrong shapes.
    (
        r#"{"master": "#,
        "c.json: master: EOF while parsing a value",
    ),
    (
        "",
        "c.json: EOF while parsing a value (at line 1, column 0)",
    ),
    (
        "[]",
        "c.json: the config must be a JSON object ({ ... }) (at line 1, column 1)",
    ),
    ("{} x", "c.json: trailing characters (at line 1, column 4)"),
    (
        r#"{"master": null}"#,
        "c.json: master: invalid type: null, expected struct NodeFile",
    ),
    // Unknown keys.
    (
        "{\n \"colour\": 1}",
        "c.json: colour: unknown field `colour`",
    ),
    (
        r#"{"slave": {"link": {"speed": 1}}}"#,
        "c.json: slave.link.speed: unknown field `speed`",
    ),
    // Wrong types.
    (
        r#"{"master": {"throttle": "fast"}}"#,
        "c.json: master.throttle: invalid type: string \"fast\", expected f64",
    ),
    (
        r#"{"master": {"workers": -1}}"#,
        "c.json: master.workers: invalid value: integer `-1`, expected u32",
    ),
    (
        r#"{"workload": {"initial": "x"}}"#,
        "c.json: workload.initial: invalid type: string \"x\", expected f64",
    ),
    (
        r#"{"policy": {"threshold": -5}}"#,
        "c.json: policy.threshold: invalid value: integer `-5`, expected u32",
    ),
    (
        r#"{"secret": 1234567890123456}"#,
        "c.json: secret: invalid type: integer `1234567890123456`, expected a string",
    ),
    (
        r#"{"workload": {"addend": 1e400}}"#,
        "c.json: workload.addend: number out of range",
    ),
    // Addresses.
    (
        r#"{"master": {"address": "not an address"}}"#,
        "master.address: \"not an address\" is not an address: expected IP:PORT, e.g. 127.0.0.1:7001",
    ),
    (
        r#"{"master": {"address": "127.0.0.1"}}"#,
        "master.address: \"127.0.0.1\" is not an address",
    ),
    (
        r#"{"master": {"address": "127.0.0.1:0"}}"#,
        "master.address: 127.0.0.1:0: port must be from 1 to 65535",
    ),
    (
        r#"{"slave": {"address": "127.0.0.1:99999"}}"#,
        "slave.address: cannot resolve \"127.0.0.1:99999\": invalid port value",
    ),
    (
        r#"{"slave": {"address": "127.0.0.1:7001"}}"#,
        "slave.address: 127.0.0.1:7001 is also the master's address",
    ),
    // Throttles and workers.
    (
        r#"{"master": {"throttle": 2}}"#,
        "master.throttle: 2 is out of range: must be from 0 to 1",
    ),
    (
        r#"{"slave": {"throttle": -0.1}}"#,
        "slave.throttle: -0.1 is out of range: must be from 0 to 1",
    ),
    (
        r#"{"master": {"workers": 1000}}"#,
        "master.workers: 1000 is out of range: must be from 0 to 256",
    ),
    // The workload.
    (
        r#"{"workload": {"jobs": 0}}"#,
        "workload.jobs: 0 is out of range: must be from 1 to 1048576",
    ),
    (
        r#"{"workload": {"elements_per_job": 0}}"#,
        "workload.elements_per_job: 0 is out of range: must be from 1 to 8388608",
    ),
    (
        r#"{"workload": {"jobs": 2000000}}"#,
        "workload.jobs: 2000000 is out of range: must be from 1 to 1048576",
    ),
    (
        r#"{"workload": {"iterations": 100000001}}"#,
        "workload.iterations: 100000001 is out of range: must be from 0 to 100000000",
    ),
    // (A vector larger than the machine's memory: a unit test in config.rs,
    // with the machine stated, since this machine's memory is not the test's.)
    (
        r#"{"master": {"address": "[::1]:7001"}}"#,
        "slave.address: 127.0.0.1:7002 and master.address [::1]:7001 are of different address families",
    ),
    (
        r#"{"slave": {"link": {"bandwidth_mbit": 1e-300}}}"#,
        "slave.link.bandwidth_mbit: 1e-300 is out of range: must be 0 (unlimited) or from 0.001 to 1000000",
    ),
    (
        "{ // comment\n}",
        "c.json: comments are not JSON: remove the // or /* */ comment (at line 1, column 3)",
    ),
    // Policy, time-outs, network.
    (
        r#"{"policy": {"transfer": "magic"}}"#,
        "policy.transfer: unknown policy \"magic\": expected one of \"sender\"",
    ),
    (
        r#"{"policy": {"state_interval_ms": 5}}"#,
        "policy.state_interval_ms: 5 is out of range: must be from 10 to 60000",
    ),
    (
        r#"{"peer_timeout_ms": 50}"#,
        "peer_timeout_ms: 50 is out of range: must be from 100 to 3600000",
    ),
    (
        r#"{"peer_timeout_ms": 900}"#,
        "peer_timeout_ms: 900 must be at least twice policy.state_interval_ms (500)",
    ),
    (
        r#"{"network": {"datagram_bytes": 100}}"#,
        "network.datagram_bytes: 100 is out of range: must be from 576 to 65507",
    ),
    // Links.
    (
        r#"{"slave": {"link": {"loss": 1.5}}}"#,
        "slave.link.loss: 1.5 is out of range: must be from 0 to 1",
    ),
    (
        r#"{"master": {"link": {"duplicate": -0.1}}}"#,
        "master.link.duplicate: -0.1 is out of range: must be from 0 to 1",
    ),
    (
        r#"{"slave": {"link": {"reorder": 2}}}"#,
        "slave.link.reorder: 2 is out of range: must be from 0 to 1",
    ),
    (
        r#"{"slave": {"link": {"jitter_ms": -1}}}"#,
        "slave.link.jitter_ms: -1 is out of range: must be from 0 to 60000",
    ),
    // Arrivals.
    (
        r#"{"workload": {"arrivals": {"rate_per_s": 0, "duration_s": 1}}}"#,
        "workload.arrivals.rate_per_s: 0 is out of range: must be from 0.001 to 100000",
    ),
    (
        r#"{"workload": {"arrivals": {"rate_per_s": 10, "duration_s": 100000}}}"#,
        "workload.arrivals.duration_s: 100000 is out of range: must be from 0.001 to 86400",
    ),
    (
        r#"{"workload": {"arrivals": {"rate_per_s": 10}}}"#,
        "c.json: workload.arrivals: missing field `duration_s`",
    ),
    (
        r#"{"workload": {"arrivals": {"rate_per_s": 10, "duration_s": 1, "burst": 2}}}"#,
        "c.json: workload.arrivals.burst: unknown field `burst`, expected one of `rate_per_s`, `duration_s`, `seed`",
    ),
    (
        r#"{"workload": {"arrivals": {"rate_per_s": 100000, "duration_s": 60}}}"#,
        "workload.arrivals: more than 1047552 jobs would arrive on top of the 1024 present: at most 1048576 jobs",
    ),
    // Secrets.
    (
        r#"{"secret": "short"}"#,
        "secret: is 5 characters long: it needs at least 16 (`loadbal keygen` prints a good one)",
    ),
    (
        r#"{"master": {"address": "10.1.2.3:7001"}}"#,
        "secret: not set, and the master's address 10.1.2.3:7001 is not a loopback address: datagrams between machines must be authenticated with a shared secret. Run `loadbal keygen`",
    ),
];

#[test]
fn bad_configs_exit_2_naming_the_problem_and_start_nothing() {
    assert!(BAD_CONFIGS.len() >= 30);
    for (text, message) in BAD_CONFIGS {
        for args in [
            &["--role", "master", "--headless", "--report", "r.json"][..],
            &["demo", "--headless", "--report", "r.json"][..],
            &["--role", "slave", "--headless"][..],
        ] {
            let (code, err, dir) = with_config(text, args);
            assert_eq!(code, Some(2), "{text}: {err}");
            let expected = format!("loadbal: {message}");
            assert!(
                err.starts_with(&expected),
                "{text}: expected {expected:?}, got {err:?}"
            );
            // Nothing ran: no node said hello, no report was written.
            assert_eq!(err.lines().count(), 1, "{text}: {err}");
            assert!(!dir.join("r.json").exists(), "{text}");
        }
    }
    let (code, err, _) = with_config("{\n \"colour\": 1}", &["demo", "--headless"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("(at line 2, column 9)"), "{err}");
}

#[test]
fn a_config_that_cannot_be_read_exits_2() {
    let dir = test_dir("unreadable");
    std::fs::create_dir_all(dir.join("a-directory.json")).unwrap();
    for (file, message) in [
        (
            "missing.json",
            "loadbal: cannot read config file missing.json: No such file or directory",
        ),
        (
            "a-directory.json",
            "loadbal: cannot read config file a-directory.json: Is a directory",
        ),
    ] {
        let out = run(&["--role", "master", "--headless", "--config", file], &dir);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).starts_with(message), "{}", stderr(&out));
    }
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
    // The whole message, once: the cause is not repeated after the hint.
    assert!(
        stderr(&out).contains(&format!(
            "loadbal: cannot start the master: cannot open UDP socket on 127.0.0.1:{port}: \
             Address already in use (os error 98) (is another loadbal node, or another program, \
             using this port?)\n"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_headless_master_gives_up_after_its_connect_timeout_without_its_slave() {
    let dir = test_dir("no-slave");
    let config = write_config(&dir, serde_json::json!({"connect_timeout_ms": 1000}));
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
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(started.elapsed() >= Duration::from_secs(1));
    let err = stderr(&out);
    let slave = config_address(&config, "slave");
    assert!(
        err.contains(&format!("waiting for the slave at {slave}")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "loadbal: no slave answered at {slave} within 1 s; start it with `loadbal --role slave`"
        )),
        "{err}"
    );
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
    let slave = Watched::spawn(
        &["--role", "slave", "--config", config, "--headless", "-v"],
        &dir,
    );
    let mut master = spawn(
        &["--role", "master", "--config", config, "--headless"],
        &dir,
    );
    // Once the slave has its bootstrap jobs, the master is killed.
    slave.wait_for(
        "received 32 bootstrap jobs [32-63] from master",
        Duration::from_secs(30),
    );
    master.kill().unwrap();
    let _ = master.wait();
    let (code, err) = slave.finish(Duration::from_secs(30));
    assert_eq!(code, Some(3), "{err}");
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
            "policy": { "state_interval_ms": 100 },
            // Uncompressed, the batches are hundreds of datagrams each.
            "network": { "compression": false }
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
    assert_eq!(r["network"]["batches"]["compressed"], 0, "{r:#}");
    assert_eq!(
        r["network"]["batches"]["raw_bytes"],
        r["network"]["batches"]["wire_bytes"]
    );
    // An emulated link stands for a network: Ethernet-sized datagrams.
    assert_eq!(r["network"]["datagram_bytes"], 1472);
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

#[test]
fn bench_measures_the_kernel_and_compression_and_writes_json() {
    let dir = test_dir("bench");
    let out = run(
        &[
            "bench",
            "--quick",
            "--only",
            "kernel",
            "--only",
            "compression",
            "--json",
            "bench.json",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("| Figure | Value | Reference | Ratio | Target |"),
        "{table}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).unwrap()).unwrap();
    assert_eq!(json["quick"], true);
    assert!(json["machine"]["logical_cpus"].as_u64().unwrap() >= 1);
    let figures = json["figures"].as_array().unwrap();
    let groups: Vec<&str> = figures
        .iter()
        .map(|f| f["group"].as_str().unwrap())
        .collect();
    // One row per instruction set the CPU has, then the two compression rows.
    assert!(groups.iter().all(|g| *g == "kernel" || *g == "compression"));
    assert_eq!(groups.iter().filter(|g| **g == "compression").count(), 2);
    for f in figures {
        let (value, reference) = (
            f["value"].as_f64().unwrap(),
            f["reference"].as_f64().unwrap(),
        );
        assert!(value > 0.0 && reference > 0.0, "{f}");
        if f["group"] == "kernel" {
            assert!(
                (f["ratio"].as_f64().unwrap() - value / reference).abs() < 1e-9,
                "{f}"
            );
            // Each kernel row's samples were checked bit for bit against
            // the plain loop, or the bench would have failed.
            assert!(f["name"].as_str().unwrap().contains("blocks of"), "{f}");
        }
    }
    // Over the emulated 10 Mbit/s link, the reference data compresses so
    // well that the 2 MiB bootstrap is several times faster compressed;
    // random values take the same time either way (the trial is cheap).
    let compressed = &figures[figures.len() - 2];
    let random = &figures[figures.len() - 1];
    assert!(
        compressed["value"].as_f64().unwrap() * 3.0 < compressed["reference"].as_f64().unwrap(),
        "{compressed}"
    );
    // 2 MiB at 10 Mbit/s takes at least 1.6 s, compressed or not.
    assert!(random["value"].as_f64().unwrap() > 1.6, "{random}");
    assert!(random["reference"].as_f64().unwrap() > 1.6, "{random}");
}

#[test]
fn bench_takes_no_config_and_checks_its_json_path() {
    let dir = test_dir("bench-args");
    // Its help lists only its own options, and a run's option is refused
    // after it or before it.
    let help = run(&["bench", "--help"], &dir);
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for own in ["--quick", "--json", "--only"] {
        assert!(help.contains(own), "{help}");
    }
    for other in ["--config", "--headless", "--report", "--trace", "--role"] {
        assert!(!help.contains(other), "{other} in {help}");
    }
    let out = run(&["bench", "--config", "c.json"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: unexpected argument '--config' found"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--config", "c.json", "bench"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "loadbal: bench takes only its own options (see `loadbal bench --help`); --role, \
         --throttle, --config, --headless, --report, --trace, -v and -q are for runs"
    );
    let out = run(&["bench", "--json", "no/such/dir/b.json"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "loadbal: --json no/such/dir/b.json: directory no/such/dir does not exist"
    );
    let out = run(&["bench", "--only", "everything"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid value 'everything' for '--only <GROUP>'"));
}

#[test]
fn jobs_arriving_during_a_demo_are_verified_and_their_response_times_reported() {
    let dir = test_dir("arrivals");
    let (r, err) = run_demo_report(
        &dir,
        serde_json::json!({
            "workload": { "arrivals": { "rate_per_s": 200, "duration_s": 0.5, "seed": 3 } }
        }),
    );
    // Both streams drawn from the seed: the total is the same every run.
    let config: loadbal::config::ConfigFile = loadbal::config::parse(
        &std::fs::read_to_string(dir.join("config.json")).unwrap(),
        "c",
    )
    .unwrap();
    let total = config.workload.schedule().total();
    assert!(total > 64 + 100, "{total}");
    assert_eq!(r["verified"], true, "{r:#}");
    assert_eq!(r["jobs_total"], total, "{r:#}");
    let done =
        r["jobs_done"]["master"].as_u64().unwrap() + r["jobs_done"]["slave"].as_u64().unwrap();
    assert_eq!(done, u64::from(total), "{r:#}");
    // The bootstrap split the jobs present at the start only.
    assert_eq!(r["bootstrap_jobs"], 32);
    let response = &r["response_s"];
    assert_eq!(response["jobs"], total - 64, "{r:#}");
    let (mean, p50, p99) = (
        response["mean"].as_f64().unwrap(),
        response["p50"].as_f64().unwrap(),
        response["p99"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && mean <= p99, "{response}");
    assert!(err.contains("VERIFIED"), "{err}");
    // Without arrivals there is no such field.
    let (plain, _) = run_demo_report(&test_dir("no-arrivals"), serde_json::json!({}));
    assert!(plain.get("response_s").is_none(), "{plain:#}");
}

// Issue 21: `loadbal digits --make` writes the digit-sum job's input (the
// seeds' nums.txt): N random digits and a newline, the same for a seed, and
// says their sum, which a straight pass over the file must find.
#[test]
fn digits_make_writes_count_digits_the_same_for_a_seed_and_says_their_sum() {
    let dir = test_dir("digits-make");
    let made = |name: &str, seed: &str| {
        let out = run(
            &[
                "digits", "--make", name, "--count", "100003", "--seed", seed,
            ],
            &dir,
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let bytes = std::fs::read(dir.join(name)).unwrap();
        (bytes, stderr(&out))
    };
    let (a, said) = made("a.txt", "5");
    assert_eq!(a.len(), 100_004);
    assert_eq!(a[100_003], b'\n');
    assert!(a[..100_003].iter().all(u8::is_ascii_digit));
    let sum: u64 = a[..100_003].iter().map(|&b| u64::from(b - b'0')).sum();
    assert!(
        said.contains(&format!(
            "wrote 100003 digits (seed 5) to a.txt; their sum is {sum}"
        )),
        "{said}"
    );
    assert_eq!(made("b.txt", "5").0, a);
    assert_ne!(made("c.txt", "6").0, a);
    // Bad arguments start nothing: exit 2, saying why.
    for (args, why) in [
        (
            &["digits", "--make", "d.txt", "--count", "0"][..],
            "invalid value '0' for '--count <N>'",
        ),
        (
            &["digits", "--make", ".", "--count", "5"][..],
            "cannot write .: is a directory",
        ),
        (&["digits", "--count", "5"][..], "--make <PATH>"),
    ] {
        let out = run(args, &dir);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
    assert!(!dir.join("d.txt").exists());
}

// Issue 22: a bench where the demo cannot open a window (here an `Xvfb`
// that starts no server) skips the window group with one line, and the
// other groups' figures stand.
#[test]
fn bench_skips_the_window_group_when_the_demo_cannot_open_a_window() {
    use std::os::unix::fs::PermissionsExt;
    let dir = test_dir("bench-no-display");
    let fake = dir.join("bin");
    std::fs::create_dir_all(&fake).unwrap();
    for program in ["Xvfb", "xdotool"] {
        let path = fake.join(program);
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadbal"))
        .args(["bench", "--quick", "--only", "window", "--only", "digits"])
        .current_dir(&dir)
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "window: skipped: the demo cannot open a window here: loadbal: cannot open a window"
        ),
        "{err}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!table.contains("| window:"), "{table}");
    assert_eq!(table.matches("| digits:").count(), 5, "{table}");
}
