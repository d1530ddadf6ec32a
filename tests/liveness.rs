//! Issue 20 with real processes: every run ends. Two machines whose configs
//! give different datagram sizes agree on one; a stderr nobody reads never
//! stops a run; the simulator's run ends whenever the slave is paused.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

// Issue 20: a `link` section or a `network.datagram_bytes` on one machine
// only gave the two nodes different datagram sizes, and the master stayed
// at "bootstrap 4/8" without a word. Both now send the smaller size.
#[test]
fn two_machines_with_different_datagram_sizes_agree_on_the_smaller() {
    let dir = test_dir("datagram-sizes");
    let config = write_config(
        &dir,
        serde_json::json!({ "network": { "datagram_bytes": 65507 } }),
    );
    slave_config(&dir, &config, |s| {
        s["network"]["datagram_bytes"] = 1472.into();
    });
    let (master, slave) = run_pair(
        &dir,
        &["--role", "slave", "--config", "slave.json", "--headless"],
        &["--role", "master", "--headless", "--report", "r.json"],
    );
    let r = read_report(&dir.join("r.json"));
    check_verified_report(&r, 64);
    for (out, line) in [
        (
            &master,
            "datagram size: the slave's is 1472 bytes, this node's 65507: both send 1472",
        ),
        (
            &slave,
            "datagram size: the master's is 65507 bytes, this node's 1472: both send 1472",
        ),
    ] {
        assert!(stderr(out).contains(line), "{line}:\n{}", stderr(out));
    }
    // Nothing was cut: no datagram failed its tag on either side.
    assert_eq!(r["network"]["rejected"], 0, "{r:#}");
}

/// Writes `slave.json`: the config at `config`, changed by `change`.
fn slave_config(
    dir: &std::path::Path,
    config: &std::path::Path,
    change: impl FnOnce(&mut serde_json::Value),
) {
    let mut slave: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    change(&mut slave);
    std::fs::write(dir.join("slave.json"), slave.to_string()).unwrap();
}

/// Runs a slave on `slave.json` and a master on `config.json`, both
/// headless, and returns their exit codes and stderr (master, slave).
fn run_both(dir: &std::path::Path) -> [(Option<i32>, String); 2] {
    let slave = spawn(
        &["--role", "slave", "--config", "slave.json", "--headless"],
        dir,
    );
    let master = spawn(&["--role", "master", "--headless"], dir);
    let master = wait(master, Duration::from_secs(60));
    let slave = wait_or(slave, Duration::from_secs(60), &stderr(&master));
    [
        (master.status.code(), stderr(&master)),
        (slave.status.code(), stderr(&slave)),
    ]
}

// Issue 20: a slave followed whatever workload and policy the master's hello
// named, whatever its own config said. The two must now agree: each node
// refuses the run with exit 2, naming the field and both values.
#[test]
fn configs_that_differ_in_the_run_are_refused_by_both_nodes_naming_the_field() {
    let dir = test_dir("configs-differ");
    let config = write_config(&dir, serde_json::json!({}));
    slave_config(&dir, &config, |s| s["workload"]["iterations"] = 300.into());
    let message = "the two nodes' configs differ in workload.iterations: the master's is 200, \
                   the slave's 300; make them the same in both config.json files and start again";
    for (role, (code, err)) in ["master", "slave"].iter().zip(run_both(&dir)) {
        assert_eq!(code, Some(2), "{role}: {err}");
        assert!(err.contains(message), "{role}: {err}");
        // Refused at the hello: no job moved, no phase began.
        assert!(!err.contains("phase: bootstrap"), "{role}: {err}");
    }
}

// Issue 20: with different secrets every datagram failed its tag, and each
// node waited without saying why. Both now name the secret and exit 2.
#[test]
fn nodes_with_different_secrets_say_so_and_exit_2() {
    let dir = test_dir("secrets-differ");
    let config = write_config(
        &dir,
        serde_json::json!({ "secret": "the master's own secret", "connect_timeout_ms": 3000 }),
    );
    slave_config(&dir, &config, |s| {
        s["secret"] = "the slave's other secret".into();
    });
    for (role, peer, (code, err)) in [("master", "slave"), ("slave", "master")]
        .iter()
        .zip(run_both(&dir))
        .map(|((r, p), out)| (r, p, out))
    {
        assert_eq!(code, Some(2), "{role}: {err}");
        let needle = format!("the {peer}'s address");
        let line = err
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("{role}: no line names the {peer}'s datagrams:\n{err}"));
        // For how long, and how many, depends on when the other started.
        assert!(
            line.contains("sent loadbal datagrams that failed authentication for "),
            "{role}: {line}"
        );
        assert!(
            line.contains(" and none that passed: the two configs' `secret`s differ"),
            "{role}: {line}"
        );
    }
}

// Issue 20: the core thread wrote the log and the progress line to stderr
// itself, so a parent that stopped reading a piped stderr froze the
// protocol. Here nobody reads the demo's stderr until it has exited: the
// run completes, the lines that did not fit are dropped and counted, and
// the reader, once it reads, gets the result line last.
#[test]
fn a_stderr_nobody_reads_never_stops_the_run() {
    let dir = test_dir("unread-stderr");
    // A hundred thousand tiny jobs and -v: a log line per batch of 64, about
    // 400 KB, far more than a pipe (64 KiB) and the writer's queue hold.
    write_config(
        &dir,
        serde_json::json!({
            "workload": { "jobs": 100_000, "elements_per_job": 1, "iterations": 1 },
        }),
    );
    let mut child = Command::new(BIN)
        .args(["demo", "--headless", "-v", "--report", "r.json"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The report appears when the run has ended, while stderr is unread.
    let start = Instant::now();
    while !dir.join("r.json").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run did not end while its stderr was not read"
        );
        assert!(child.try_wait().unwrap().is_none() || dir.join("r.json").exists());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Now read: the process, which waited only to write its last lines,
    // finishes.
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let r = read_report(&dir.join("r.json"));
    check_verified_report(&r, 100_000);
    let dropped = r["log_lines_dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{r:#}");
    assert!(
        err.contains(&format!("loadbal: {dropped} lines of output were dropped")),
        "{err}"
    );
    let verified = err.rfind("VERIFIED: 100000 jobs").expect("the result line");
    // The result and its details are the last lines.
    assert!(!err[verified..].contains("[master"), "{}", &err[verified..]);
}

// Issue 20: `simulate --throttle-at T:slave:0` ends for every T from the
// start to past the end, in steps of a tenth of the run: the slave paused
// in the aggregation (it was computing its last job) used to hold that job
// for ever. Then with the throttle restored a second later, each verifies.
#[test]
fn the_simulated_run_ends_whenever_the_slave_is_paused() {
    let dir = test_dir("simulate-pause");
    let config = dir.join("c.json");
    std::fs::write(
        &config,
        r#"{"workload": {"jobs": 64, "elements_per_job": 8192, "iterations": 1000},
            "slave": {"throttle": 0.1}, "policy": {"threshold": 2}}"#,
    )
    .unwrap();
    let simulate = |changes: &[String]| {
        let mut args = vec!["simulate", "--config", "c.json", "--rate", "10"];
        for c in changes {
            args.extend(["--throttle-at", c.as_str()]);
        }
        let out = run(&args, &dir);
        assert_eq!(out.status.code(), Some(0), "{changes:?}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["verified"], true, "{changes:?}");
        v["prediction"]["finish_s"].as_f64().unwrap()
    };
    let whole = simulate(&[]);
    for tenth in 0..=11 {
        let at = whole * f64::from(tenth) / 10.0;
        let paused = format!("{at}:slave:0");
        simulate(std::slice::from_ref(&paused));
        simulate(&[paused, format!("{}:slave:0.1", at + 1.0)]);
    }
}
