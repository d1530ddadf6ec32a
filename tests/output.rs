//! Output a user can break: a closed or full stderr, a report path that
//! cannot be written, names a device or is the config itself. The run goes
//! on, its exit code stands, and nothing the user cares about is lost or
//! destroyed (issue 11).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::*;

/// Runs `args` with stderr (and stdout) into a pipe whose reader takes
/// `lines` lines and then closes it, as `loadbal ... 2>&1 | head -N` does.
fn with_stderr_closed_after(args: &[&str], lines: usize, dir: &std::path::Path) -> Option<i32> {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let mut reader = BufReader::new(err);
    let mut line = String::new();
    for _ in 0..lines {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    drop(reader);
    wait(child, Duration::from_secs(60)).status.code()
}

// Regression (issue 11): `demo --headless 2>&1 | head -3` exited 101 (a
// panic in the log), and with `head -20` the run hung for ever.
#[test]
fn a_closed_stderr_does_not_stop_the_demo() {
    for lines in [1, 3, 20] {
        let dir = test_dir(&format!("closed-stderr-{lines}"));
        let config = write_config(&dir, serde_json::json!({}));
        let code = with_stderr_closed_after(
            &[
                "demo",
                "--headless",
                "--config",
                config.to_str().unwrap(),
                "--report",
                "r.json",
            ],
            lines,
            &dir,
        );
        assert_eq!(code, Some(0), "stderr closed after {lines} lines");
        check_verified_report(&read_report(&dir.join("r.json")), 64);
    }
}

// Regression (issue 11): `--role master --headless 2>/dev/full` exited 101
// and its slave waited for ever.
#[test]
fn a_full_stderr_does_not_stop_a_master() {
    let dir = test_dir("full-stderr");
    let config = write_config(&dir, serde_json::json!({}));
    let config = config.to_str().unwrap();
    let slave = spawn(&["--role", "slave", "--headless", "--config", config], &dir);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let master = Command::new(BIN)
        .args([
            "--role",
            "master",
            "--headless",
            "--config",
            config,
            "--report",
            "r.json",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(full)
        .spawn()
        .unwrap();
    let master = wait(master, Duration::from_secs(60));
    let slave = wait(slave, Duration::from_secs(30));
    assert_eq!(master.status.code(), Some(0));
    assert_eq!(slave.status.code(), Some(0), "{}", stderr(&slave));
    check_verified_report(&read_report(&dir.join("r.json")), 64);
}

fn demo(dir: &std::path::Path, report: &str) -> std::process::Output {
    let config = write_config(dir, serde_json::json!({}));
    run(
        &[
            "demo",
            "--headless",
            "--config",
            config.to_str().unwrap(),
            "--report",
            report,
        ],
        dir,
    )
}

// Regression (issue 11): a report that could not be written was lost after
// a verified run, with exit 3.
#[test]
fn a_report_that_cannot_be_written_goes_to_stdout_and_the_run_keeps_its_code() {
    let dir = test_dir("report-full");
    let out = demo(&dir, "/dev/full");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("loadbal: cannot write the report to /dev/full: No space left on device"),
        "{err}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("the report on stdout");
    check_verified_report(&r, 64);
}

#[test]
fn report_dash_is_stdout() {
    let dir = test_dir("report-dash");
    let out = demo(&dir, "-");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("the report on stdout");
    check_verified_report(&r, 64);
    assert!(!dir.join("-").exists());
}

// Regression (issue 11): as root, `--report /dev/null` replaced the device
// with a regular file.
#[test]
fn a_report_to_a_device_writes_it_in_place() {
    let dir = test_dir("report-null");
    let out = demo(&dir, "/dev/null");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(!meta.is_file(), "/dev/null must stay a device");
    assert!(stderr(&out).contains("report written to /dev/null"));
}

// Regression (issue 11): `--report` naming the config overwrote it.
#[test]
fn a_report_over_the_config_is_refused_before_the_run() {
    let dir = test_dir("report-config");
    let config = write_config(&dir, serde_json::json!({}));
    let before = std::fs::read_to_string(&config).unwrap();
    for report in [config.to_str().unwrap(), "config.json", "./config.json"] {
        let out = run(
            &[
                "demo",
                "--headless",
                "--config",
                config.to_str().unwrap(),
                "--report",
                report,
            ],
            &dir,
        );
        assert_eq!(out.status.code(), Some(2), "{report}");
        assert_eq!(
            stderr(&out),
            format!(
                "loadbal: --report {report} is the config file: writing there would overwrite \
                 it; name another file, or - for standard output\n"
            )
        );
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    // Without --config, config.json in the directory is the config.
    let out = run(&["demo", "--headless", "--report", "config.json"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
}

/// `demo --headless` on the test config with `args` added.
fn demo_with(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let config = write_config(dir, serde_json::json!({}));
    let mut all = vec!["demo", "--headless", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all, dir)
}

#[test]
fn trace_writes_a_span_per_job_on_both_nodes_workers() {
    let dir = test_dir("trace");
    let out = demo_with(&dir, &["--trace", "t.json", "--report", "r.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("trace written to t.json"),
        "{}",
        stderr(&out)
    );
    let r = read_report(&dir.join("r.json"));
    let t: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("t.json")).unwrap())
        .expect("the trace parses");
    let events = t["traceEvents"].as_array().unwrap();
    // A kept span per job, on the node the report says computed it.
    let kept: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["args"]["kept"] == true)
        .collect();
    let mut ids: Vec<u64> = kept
        .iter()
        .map(|e| e["args"]["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..64).collect::<Vec<_>>());
    let on = |pid: u64| kept.iter().filter(|e| e["pid"] == pid).count() as u64;
    assert_eq!(on(1), r["jobs_done"]["master"].as_u64().unwrap());
    assert_eq!(on(2), r["jobs_done"]["slave"].as_u64().unwrap());
    // Each node is named, its batches are spans, its queue a counter.
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["master", "slave"]);
    // Batches are async spans, a begin and an end each, never overlapping
    // spans on one track.
    let begins = events.iter().filter(|e| e["ph"] == "b").count();
    let ends = events.iter().filter(|e| e["ph"] == "e").count();
    assert!(begins > 0 && begins == ends);
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "b" && e["args"]["kind"] == "bootstrap")
    );
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "C" && e["name"] == "queue")
    );
}

#[test]
fn a_trace_that_cannot_be_written_goes_to_stdout() {
    let dir = test_dir("trace-full");
    let out = demo_with(&dir, &["--trace", "/dev/full"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("loadbal: cannot write the trace to /dev/full: No space left on device"),
        "{}",
        stderr(&out)
    );
    let t: Value = serde_json::from_slice(&out.stdout).expect("the trace on stdout");
    assert!(t["traceEvents"].as_array().unwrap().len() > 64);
}

#[test]
fn quiet_prints_the_result_only_and_verbose_every_batch() {
    let dir = test_dir("verbosity");
    let quiet = stderr(&demo_with(&dir, &["-q"]));
    let lines: Vec<&str> = quiet.lines().collect();
    assert!(lines[0].starts_with("VERIFIED: 64 jobs"), "{quiet}");
    assert!(lines[1].starts_with("time: "), "{quiet}");
    // The result's last line, when a loaded machine made a datagram come
    // twice: that is part of the result too.
    assert!(
        lines[2..]
            .iter()
            .all(|l| l.starts_with("rejected datagrams: ")),
        "{quiet}"
    );
    assert!(lines.len() <= 3, "{quiet}");
    let normal = stderr(&demo_with(&dir, &[]));
    assert!(normal.contains("phase: processing"), "{normal}");
    assert!(
        normal.contains("bootstrap: received 32 jobs from the master in "),
        "{normal}"
    );
    assert!(normal.contains("results: "), "{normal}");
    assert!(!normal.contains("bootstrap jobs ["), "{normal}");
    let verbose = stderr(&demo_with(&dir, &["-v"]));
    assert!(verbose.contains("bootstrap jobs [32-"), "{verbose}");
    assert!(verbose.lines().count() > normal.lines().count());
    let both = run(&["demo", "--headless", "-q", "-v"], &dir);
    assert_eq!(both.status.code(), Some(2));
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
}

#[test]
fn report_and_trace_cannot_share_a_file_or_standard_output() {
    let dir = test_dir("report-trace");
    for (args, message) in [
        (
            &["--report", "r.json", "--trace", "./r.json"][..],
            "loadbal: --report r.json and --trace ./r.json are the same file: give each its own",
        ),
        (
            &["--report", "-", "--trace", "-"][..],
            "loadbal: --report - and --trace - would both go to standard output",
        ),
        (
            &["--trace", "config.json"][..],
            "loadbal: --trace config.json is the config file: writing there would overwrite it",
        ),
    ] {
        let out = demo_with(&dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).starts_with(message),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!dir.join("r.json").exists());
    }
    // -q and -v on either side of the subcommand.
    let out = run(&["-q", "demo", "--headless", "-v"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "loadbal: -q (--quiet) and -v (--verbose) ask for opposite things: give one\n"
    );
}
