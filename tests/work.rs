//! Issue 21: the digits and command kinds, run as a user runs them (the
//! `loadbal` binary, real processes, real files, loopback).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Runs `demo --headless` on `workload` (merged into the test config) with
/// `args`; returns the exit code, stderr and the report (if written).
fn demo(dir: &Path, workload: Value, args: &[&str]) -> (Option<i32>, String, Option<Value>) {
    let config = write_config(dir, json!({ "workload": workload }));
    let mut all = vec![
        "demo",
        "--headless",
        "--config",
        config.to_str().unwrap(),
        "--report",
        "r.json",
    ];
    all.extend_from_slice(args);
    let _ = std::fs::remove_file(dir.join("r.json"));
    let out = run(&all, dir);
    let report = dir
        .join("r.json")
        .exists()
        .then(|| read_report(&dir.join("r.json")));
    (out.status.code(), stderr(&out), report)
}

/// Lines `0..n` of a text that no two pieces share.
fn numbered_lines(n: usize) -> String {
    (0..n)
        .map(|i| format!("line {i} of the input, some words to fill it out\n"))
        .collect()
}

#[test]
fn the_digit_sum_is_split_between_both_nodes_and_verified_against_a_straight_pass() {
    let dir = test_dir("work-digits");
    let out = run(
        &[
            "digits", "--make", "nums.txt", "--count", "3000000", "--seed", "7",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let digits = std::fs::read(dir.join("nums.txt")).unwrap();
    let sum: u64 = digits
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|&b| u64::from(b - b'0'))
        .sum();
    let (code, err, report) = demo(
        &dir,
        json!({ "kind": "digits", "input": "nums.txt", "chunk_bytes": 30000 }),
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    let r = report.unwrap();
    assert_eq!(r["verified"], true, "{r:#}");
    // 3,000,001 bytes in chunks of 30,000: 101 jobs.
    assert_eq!(r["jobs_total"], 101);
    assert_eq!(r["work"]["kind"], "digits");
    assert_eq!(r["work"]["digits_total"], sum);
    assert_eq!(r["work"]["straight_total"], sum);
    assert_eq!(r["work"]["attempts"], 101);
    let done = &r["jobs_done"];
    assert_eq!(
        done["master"].as_u64().unwrap() + done["slave"].as_u64().unwrap(),
        101
    );
    assert!(done["slave"].as_u64().unwrap() > 0, "{r:#}");
    assert!(
        err.contains(&format!("VERIFIED: 101 jobs of digit sum, digit sum {sum}")),
        "{err}"
    );
}

#[test]
fn a_command_over_a_split_file_writes_every_piece_in_order_with_a_joblog_line_each() {
    let dir = test_dir("work-split");
    let text = numbered_lines(20_000);
    std::fs::write(dir.join("in.txt"), &text).unwrap();
    let (code, err, report) = demo(
        &dir,
        json!({ "kind": "command", "command": ["tr", "a-z", "A-Z"], "input": "in.txt",
                "split": { "bytes": 16384 }, "align": "lines", "output": "out.txt" }),
        &["--joblog", "jobs.log"],
    );
    assert_eq!(code, Some(0), "{err}");
    let r = report.unwrap();
    assert_eq!(r["verified"], true, "{r:#}");
    let out = std::fs::read_to_string(dir.join("out.txt")).unwrap();
    assert_eq!(out, text.to_uppercase());
    let jobs = r["jobs_total"].as_u64().unwrap();
    assert_eq!(jobs as usize, text.len().div_ceil(16384));
    assert_eq!(r["work"]["output_bytes"], text.len());
    assert!(r["jobs_done"]["slave"].as_u64().unwrap() > 0, "{r:#}");
    // The joblog: parallel's header, then one line per attempt, every one
    // of them exit 0; Seq counts every piece once.
    let log = std::fs::read_to_string(dir.join("jobs.log")).unwrap();
    let mut lines = log.lines();
    assert_eq!(
        lines.next(),
        Some("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand")
    );
    let mut seqs: Vec<u64> = Vec::new();
    let mut sent = 0;
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 9, "{line}");
        assert!(f[1] == "master" || f[1] == "slave", "{line}");
        assert_eq!((f[6], f[7], f[8]), ("0", "0", "tr a-z A-Z"), "{line}");
        assert_eq!(f[4], f[5], "tr gives as many bytes as it takes: {line}");
        sent += f[4].parse::<usize>().unwrap();
        seqs.push(f[0].parse().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=jobs).collect::<Vec<_>>());
    assert_eq!(sent, text.len());
    // The spool is gone once the output is whole.
    assert!(!dir.join(".out.txt.loadbal-parts").exists());
}

#[test]
fn a_command_over_a_directory_writes_one_output_per_file() {
    use sha2::Digest;
    let dir = test_dir("work-dir");
    std::fs::create_dir_all(dir.join("files")).unwrap();
    for i in 0..60u32 {
        let bytes: Vec<u8> = (0..i * 97).map(|j| (j * 31 + i) as u8).collect();
        std::fs::write(dir.join("files").join(format!("f{i:02}.bin")), bytes).unwrap();
    }
    let (code, err, report) = demo(
        &dir,
        json!({ "kind": "command", "command": ["sha256sum"], "input": "files",
                "output": "sums" }),
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(report.unwrap()["jobs_total"], 60);
    for i in 0..60u32 {
        let name = format!("f{i:02}.bin");
        let input = std::fs::read(dir.join("files").join(&name)).unwrap();
        let want = format!("{:x}  -\n", sha2::Sha256::digest(&input));
        let got = std::fs::read_to_string(dir.join("sums").join(&name)).unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_failing_job_is_tried_again_on_the_other_node_then_given_up_with_exit_4() {
    let dir = test_dir("work-fail");
    let text: String = (1..=40).map(|i| format!("{i}\n")).collect();
    std::fs::write(dir.join("n.txt"), &text).unwrap();
    // Fails on every line holding a 7 (7, 17, 27, 37), on either node.
    let script = "read x; case $x in *7*) echo no sevens here >&2; exit 3;; esac; echo $x";
    let (code, err, report) = demo(
        &dir,
        json!({ "kind": "command", "command": ["sh", "-c", script], "input": "n.txt",
                "split": { "lines": 1 }, "output": "out.txt", "retries": 1 }),
        &["--joblog", "jobs.log"],
    );
    assert_eq!(code, Some(4), "{err}");
    let r = report.unwrap();
    assert_eq!(r["verified"], false);
    assert_eq!(r["work"]["jobs_failed"], json!([6, 16, 26, 36]));
    // 40 jobs, four of them tried twice.
    assert_eq!(r["work"]["attempts"], 44);
    assert!(
        err.contains("failed 2 times: given up (workload.retries is 1)"),
        "{err}"
    );
    assert!(err.contains("its stderr ends: no sevens here"), "{err}");
    assert!(err.contains("JOBS FAILED: 40 jobs"), "{err}");
    // Every other job's output is written, in order.
    let want: String = (1..=40)
        .filter(|i| !i.to_string().contains('7'))
        .map(|i| format!("{i}\n"))
        .collect();
    assert_eq!(std::fs::read_to_string(dir.join("out.txt")).unwrap(), want);
    // Each failing job's two attempts ran on different nodes.
    let log = std::fs::read_to_string(dir.join("jobs.log")).unwrap();
    for seq in [7, 17, 27, 37] {
        let hosts: Vec<&str> = log
            .lines()
            .filter(|l| l.split('\t').next() == Some(&seq.to_string()))
            .map(|l| {
                assert_eq!(l.split('\t').nth(6), Some("3"), "{l}");
                l.split('\t').nth(1).unwrap()
            })
            .collect();
        assert_eq!(hosts.len(), 2, "{log}");
        assert_ne!(
            hosts[0], hosts[1],
            "job {seq} ran twice on one node:\n{log}"
        );
    }
    assert_eq!(log.lines().count(), 1 + 44);
}

#[test]
fn a_killed_master_resumes_running_only_the_jobs_not_done() {
    let dir = test_dir("work-resume");
    let text = numbered_lines(3000);
    std::fs::write(dir.join("in.txt"), &text).unwrap();
    let workload = json!({ "kind": "command", "command": ["sh", "-c", "sleep 0.1; tr a-z A-Z"],
                           "input": "in.txt", "split": { "lines": 50 }, "output": "out.txt" });
    let config = write_config(&dir, json!({ "workload": workload }));
    let args = ["demo", "--headless", "--config", config.to_str().unwrap()];
    // Its stderr read as it comes, so that nothing it writes can hold it.
    let mut first = Watched::spawn(&args, &dir);
    // Killed once a third of the 60 parts are on disk.
    let spool = dir.join(".out.txt.loadbal-parts");
    let parts = || {
        std::fs::read_dir(&spool).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            })
            .count()
        })
    };
    let start = std::time::Instant::now();
    while parts() < 20 {
        assert!(start.elapsed() < Duration::from_secs(60), "no parts came");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill();
    let held = parts();
    assert!((20..60).contains(&held), "{held} parts");
    assert!(!dir.join("out.txt").exists());
    let (code, err, report) = demo(&dir, workload, &["--resume"]);
    assert_eq!(code, Some(0), "{err}");
    let r = report.unwrap();
    assert_eq!(r["work"]["pieces"], 60);
    let resumed = r["work"]["resumed"].as_u64().unwrap();
    assert!(resumed >= held as u64, "{r:#}");
    assert_eq!(r["jobs_total"].as_u64().unwrap(), 60 - resumed);
    assert_eq!(r["work"]["attempts"].as_u64().unwrap(), 60 - resumed);
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        text.to_uppercase()
    );
    assert!(!spool.exists());
}

#[test]
fn nodes_whose_commands_differ_refuse_each_other_with_exit_2() {
    let dir = test_dir("work-differ");
    std::fs::write(dir.join("in.txt"), numbered_lines(100)).unwrap();
    let workload = |argv: Value| {
        json!({ "kind": "command", "command": argv, "input": "in.txt",
                "split": { "lines": 10 }, "output": "out.txt" })
    };
    let master = write_config(&dir, json!({ "workload": workload(json!(["gzip", "-c"])) }));
    let text = std::fs::read_to_string(&master).unwrap();
    let slave_text = text.replace("\"-c\"", "\"-9c\"");
    assert_ne!(text, slave_text);
    std::fs::write(dir.join("slave.json"), slave_text).unwrap();
    let slave = spawn(
        &["--role", "slave", "--headless", "--config", "slave.json"],
        &dir,
    );
    let master = spawn(
        &["--role", "master", "--headless", "--config", "config.json"],
        &dir,
    );
    let master = wait(master, Duration::from_secs(60));
    let slave = wait(slave, Duration::from_secs(60));
    for (who, out) in [("master", &master), ("slave", &slave)] {
        assert_eq!(out.status.code(), Some(2), "{who}: {}", stderr(out));
        assert!(
            stderr(out).contains("the two nodes' configs differ in workload.command"),
            "{who}: {}",
            stderr(out)
        );
    }
    assert!(!dir.join("out.txt").exists());
}

#[test]
fn bad_work_configs_exit_2_naming_the_field() {
    let dir = test_dir("work-bad");
    std::fs::write(dir.join("in.txt"), "a\nb\n").unwrap();
    std::fs::create_dir_all(dir.join("d")).unwrap();
    for (workload, why) in [
        (
            json!({ "kind": "command", "input": "in.txt", "output": "o", "split": {"lines": 1} }),
            "workload.command",
        ),
        (
            json!({ "kind": "command", "command": ["cat"], "input": "in.txt", "output": "o" }),
            "workload.split: in.txt is a file: say how to cut it",
        ),
        (
            json!({ "kind": "command", "command": ["cat"], "input": "in.txt", "output": "in.txt",
                    "split": {"lines": 1} }),
            "workload.output in.txt is the input",
        ),
        (
            json!({ "kind": "command", "command": ["cat"], "input": "in.txt", "output": "d",
                    "split": {"lines": 1} }),
            "workload.output d is not a regular file",
        ),
        (
            json!({ "kind": "digits", "input": "missing.txt" }),
            "workload.input missing.txt: No such file",
        ),
        (
            json!({ "kind": "digits", "input": "in.txt", "command": ["cat"] }),
            "workload.command: is not a field of the \"digits\" kind",
        ),
        (
            json!({ "kind": "command", "command": ["cat"], "input": "in.txt", "output": "o",
                    "split": {"lines": 1, "bytes": 5} }),
            "workload.split: takes exactly one of",
        ),
        (json!({ "kind": "pictures" }), "pictures"),
    ] {
        let (code, err, _) = demo(&dir, workload.clone(), &[]);
        assert_eq!(code, Some(2), "{workload}: {err}");
        assert!(err.contains(why), "{workload}: {err}");
    }
    let (code, err, _) = demo(&dir, json!({}), &["--resume"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--resume applies to a command workload"),
        "{err}"
    );
    // Nothing a run writes may land on its input, in its input directory,
    // on the config or on its output.
    std::fs::write(dir.join("d").join("x.txt"), "x\n").unwrap();
    let split = json!({ "kind": "command", "command": ["cat"], "input": "in.txt",
                        "output": "o.txt", "split": {"lines": 1} });
    for (workload, args, why) in [
        (
            split.clone(),
            &["--joblog", "in.txt"][..],
            "--joblog in.txt is the input",
        ),
        (
            split.clone(),
            &["--joblog", "o.txt"][..],
            "would be written over workload.output o.txt",
        ),
        (
            split.clone(),
            &["--joblog", "-"][..],
            "--joblog needs a file",
        ),
        (
            json!({}),
            &["--joblog", "j.log"][..],
            "--joblog applies to a digits or command workload",
        ),
        (
            json!({ "kind": "command", "command": ["cat"], "input": "in.txt",
                    "output": "config.json", "split": {"lines": 1} }),
            &[][..],
            "workload.output config.json is the config file",
        ),
        (
            json!({ "kind": "command", "command": ["cat"], "input": "d", "output": "d/out" }),
            &[][..],
            "workload.output d/out is inside the input directory",
        ),
        (
            json!({ "kind": "command", "command": ["cat"], "input": "d", "output": "out" }),
            &["--joblog", "d/j.log"][..],
            "--joblog d/j.log is the input, or inside the input directory d",
        ),
    ] {
        let (code, err, _) = demo(&dir, workload.clone(), args);
        assert_eq!(code, Some(2), "{workload} {args:?}: {err}");
        assert!(err.contains(why), "{workload} {args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("in.txt")).unwrap(),
        "a\nb\n"
    );
    assert!(!dir.join("d").join("out").exists() && !dir.join("d").join("j.log").exists());
}

#[test]
fn verify_sample_runs_the_slaves_jobs_again_and_fails_those_whose_outputs_differ() {
    let dir = test_dir("work-sample");
    let text = numbered_lines(400);
    std::fs::write(dir.join("in.txt"), &text).unwrap();
    // A deterministic program: every sampled job agrees.
    let (code, err, report) = demo(
        &dir,
        json!({ "kind": "command", "command": ["tr", "a-z", "A-Z"], "input": "in.txt",
                "split": { "lines": 10 }, "output": "out.txt", "verify_sample": 0.5 }),
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    let r = report.unwrap();
    let sampled = r["work"]["verify_sampled"].as_u64().unwrap();
    assert!(sampled > 0, "{r:#}");
    assert_eq!(r["work"]["verify_mismatches"], json!([]));
    // Each sampled job ran twice: the slave's attempt and the master's.
    assert_eq!(r["work"]["attempts"].as_u64().unwrap(), 40 + sampled);
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        text.to_uppercase()
    );
    // A program whose output names its process: every job of the slave's
    // the master runs again differs, and is failed for good.
    let (code, err, report) = demo(
        &dir,
        json!({ "kind": "command", "command": ["sh", "-c", "cat; echo $$"], "input": "in.txt",
                "split": { "lines": 10 }, "output": "out2.txt", "verify_sample": 1.0 }),
        &[],
    );
    assert_eq!(code, Some(4), "{err}");
    let r = report.unwrap();
    let sampled = r["work"]["verify_sampled"].as_u64().unwrap();
    let slave = r["jobs_done"]["slave"].as_u64().unwrap();
    assert!(sampled > 0, "{r:#}");
    assert_eq!(
        r["work"]["verify_mismatches"].as_array().unwrap().len() as u64,
        sampled
    );
    assert_eq!(r["work"]["jobs_failed"], r["work"]["verify_mismatches"]);
    // Every job of the slave's was run again by the master, so none of
    // the results kept is the slave's.
    assert_eq!(slave, 0, "{r:#}");
    assert_eq!(r["jobs_done"]["master"], 40);
    assert!(
        err.contains("the slave's output and the master's differ"),
        "{err}"
    );
}

#[test]
fn the_memory_budget_bounds_the_jobs_lent_to_the_slave_and_the_run_still_ends() {
    let dir = test_dir("work-budget");
    let text = numbered_lines(130_000);
    std::fs::write(dir.join("in.txt"), &text).unwrap();
    let (code, err, report) = demo(
        &dir,
        json!({ "kind": "command", "command": ["tr", "a-z", "A-Z"], "input": "in.txt",
                "split": { "bytes": 65536 }, "output": "out.txt", "memory_mb": 1 }),
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    let r = report.unwrap();
    let jobs = r["jobs_total"].as_u64().unwrap();
    assert_eq!(jobs as usize, text.len().div_ceil(65536));
    // 1 MiB of 64 KiB pieces (the last one shorter, so the mean a little
    // less): at most 16 jobs' input at the slave at once.
    let peak = r["work"]["peak_lent_jobs"].as_u64().unwrap();
    assert!((1..=16).contains(&peak), "{peak}: {r:#}");
    assert!(
        err.contains("the slave holds as many jobs' input as the memory budget allows (1 MiB)"),
        "{err}"
    );
    assert!(r["jobs_done"]["slave"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        text.to_uppercase()
    );
}

// A node paused while its program runs holds the job, its program stopped
// where it is: the run waits for the user, past the progress watchdog's
// limit (10 s), and ends verified once the node goes on.
#[test]
fn a_pause_while_a_program_runs_waits_for_the_user_past_the_watchdog() {
    use loadbal::config::Role;
    use loadbal::node::{self, Command, NodeOptions, Outcome};
    use loadbal::workload::kind::MasterOptions;
    use std::time::Instant;

    let dir = test_dir("work-pause");
    std::fs::write(dir.join("in.txt"), "a\nb\nc\nd\n").unwrap();
    let path = write_config(
        &dir,
        json!({ "workload": { "kind": "command", "command": ["sh", "-c", "cat; sleep 1"],
                              "input": dir.join("in.txt"), "split": { "lines": 1 },
                              "output": dir.join("out.txt") } }),
    );
    let config = loadbal::config::load_file(Some(&path))
        .unwrap()
        .validate()
        .unwrap();
    let start = |role: Role| {
        let mut config = config.clone();
        let work = node::prepare_work(&mut config, role, &MasterOptions::default()).unwrap();
        let options = NodeOptions {
            work,
            progress: false,
            verbosity: node::Verbosity::Quiet,
            ..NodeOptions::headless()
        };
        node::start(role, &config, options).unwrap()
    };
    let slave = start(Role::Slave);
    let master = start(Role::Master);
    slave.command(Command::Start);
    master.command(Command::Start);
    // Paused once its first program is running.
    let since = Instant::now();
    while master.view().snapshot().local.busy == 0 {
        assert!(since.elapsed() < Duration::from_secs(30), "nothing ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    master.command(Command::SetThrottle(0.0));
    let paused = Instant::now();
    while paused.elapsed() < Duration::from_secs(13) {
        assert!(!master.is_finished(), "the paused master ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    master.command(Command::SetThrottle(1.0));
    match master.wait() {
        Outcome::Finished { verified, report } => {
            assert!(verified, "{:?}", report.map(|r| r.to_json()));
        }
        other => panic!("the master did not finish: {other:?}"),
    }
    let _ = slave.wait();
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        "a\nb\nc\nd\n"
    );
}

#[test]
fn a_resume_keeps_the_parts_of_the_same_input_and_refuses_them_for_a_changed_one() {
    let dir = test_dir("work-resume-id");
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for (name, text) in [("a", "apple\n"), ("b", "bad\n"), ("c", "cherry\n")] {
        std::fs::write(dir.join("in").join(name), text).unwrap();
    }
    let workload = |retries: u32| {
        json!({ "kind": "command", "command": ["sh", "-c", "read x; [ $x != bad ] && echo $x"],
                "input": "in", "output": "out", "retries": retries })
    };
    let (code, err, _) = demo(&dir, workload(0), &[]);
    assert_eq!(code, Some(4), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/a")).unwrap(),
        "apple\n"
    );
    assert!(!dir.join("out/b").exists());
    // More retries change nothing the outputs depend on: the parts of a
    // and c are kept and only b runs (and fails) again.
    let (code, err, report) = demo(&dir, workload(2), &["--resume"]);
    assert_eq!(code, Some(4), "{err}");
    let r = report.unwrap();
    assert_eq!(r["work"]["resumed"], 2, "{r:#}");
    assert_eq!(r["work"]["attempts"], 3, "{r:#}");
    // A file of the input changed: its part would be stale, so none is used.
    std::fs::write(dir.join("in").join("c"), "cranberry\n").unwrap();
    let (code, err, _) = demo(&dir, workload(2), &["--resume"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("holds the parts of another run"), "{err}");
    assert!(
        err.contains("the input's files (names, sizes, times) changed"),
        "{err}"
    );
}

#[test]
fn bench_only_digits_prints_the_seeds_table_every_total_verified() {
    let dir = test_dir("work-bench");
    let out = run(
        &[
            "bench",
            "--quick",
            "--only",
            "digits",
            "--json",
            "bench.json",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).unwrap()).unwrap();
    let figures = json["figures"].as_array().unwrap();
    // Four chunk sizes with one worker a node, and one with two.
    assert_eq!(figures.len(), 5, "{json:#}");
    for (f, chunk) in figures
        .iter()
        .zip(["3000 B", "30000 B", "300000 B", "3000000 B", "30000 B"])
    {
        assert_eq!(f["group"], "digits");
        let name = f["name"].as_str().unwrap();
        assert!(name.starts_with("3000000 digits in chunks of "), "{name}");
        assert!(name.contains(chunk), "{name}");
        assert_eq!(f["reference_name"], "a straight pass");
        assert!(f["value"].as_f64().unwrap() > 0.0 && f["reference"].as_f64().unwrap() > 0.0);
        assert!(
            f["target"].as_str().unwrap().ends_with("total verified"),
            "{f}"
        );
    }
    assert!(
        figures[4]["name"]
            .as_str()
            .unwrap()
            .ends_with("2 workers a node")
    );
}
