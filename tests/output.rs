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
                "loadbal: --report {report} is the config file: the report would overwrite it; \
                 name another file, or - for standard output\n"
            )
        );
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    // Without --config, config.json in the directory is the config.
    let out = run(&["demo", "--headless", "--report", "config.json"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
}
