//! The simulator and the comparison from the command line: `loadbal
//! simulate`, `simulate --queueing` and `loadbal compare`, their outputs
//! and their refusals.

use serde_json::Value;

mod common;
use common::*;

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

#[test]
fn simulate_prints_the_predicted_report_and_writes_it() {
    let dir = test_dir("simulate");
    let config = write_config(
        &dir,
        serde_json::json!({
            "policy": { "transfer": "completion" },
            "slave": { "throttle": 0.3 }
        }),
    );
    let out = run(
        &[
            "simulate",
            "--config",
            config.to_str().unwrap(),
            "--rate",
            "500",
            "--throttle-at",
            "0.02:slave:0.5",
            "--json",
            "sim.json",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["simulated"], true);
    check_verified_report(&r, 64);
    assert_eq!(r["policy"]["transfer"], "completion");
    assert_eq!(r["policy"]["threshold"], 10);
    assert_eq!(r["throttle"]["slave"], 0.5);
    let p = &r["prediction"];
    assert_eq!(p["machine"]["rate_jobs_per_s"], 500.0);
    let (finish, ideal) = (
        p["finish_s"].as_f64().unwrap(),
        p["ideal_s"].as_f64().unwrap(),
    );
    // 64 jobs at 500 a second: 0.02 s at 1.3 workers' worth, then 1.5.
    let expected_ideal = 0.02 + (64.0 - 0.02 * 500.0 * 1.3) / (500.0 * 1.5);
    assert!((ideal - expected_ideal).abs() < 1e-9, "{ideal}");
    assert!(
        finish >= ideal && finish < 2.0 * ideal,
        "{finish} against {ideal}"
    );
    assert_eq!(
        r["elapsed_s"]["total"].as_f64().unwrap(),
        (finish * 1e6).round() / 1e6
    );
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sim.json")).unwrap()).unwrap();
    assert_eq!(written, r);
    let err = stderr(&out);
    assert!(
        err.contains("simulated (completion policy): finishes in"),
        "{err}"
    );
}

#[test]
fn simulate_measures_the_rate_when_not_given() {
    let dir = test_dir("simulate-measure");
    let config = write_config(&dir, serde_json::json!({}));
    let out = run(&["simulate", "--config", config.to_str().unwrap()], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("measured: one worker computes")
            && err.contains("jobs/s of 4096 doubles x 200 iterations"),
        "{err}"
    );
    assert!(
        json(&out)["prediction"]["machine"]["rate_jobs_per_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn simulate_refuses_bad_arguments_with_a_reason() {
    let dir = test_dir("simulate-refusals");
    let config = write_config(&dir, serde_json::json!({}));
    let c = config.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["simulate", "--config", c, "--throttle-at", "1:boss:0.5"],
            "\"boss\" is not a node: master or slave",
        ),
        (
            &["simulate", "--config", c, "--rate", "0"],
            "--rate 0: must be a number of jobs per second from 0.001 to 1e9",
        ),
        (
            &[
                "simulate", "--config", c, "--rate", "10", "--policy", "fastest",
            ],
            "policy.transfer: unknown policy \"fastest\"",
        ),
        (
            &["simulate", "--config", c, "--json", "no/such/dir/x.json"],
            "--json no/such/dir/x.json: directory no/such/dir does not exist",
        ),
        (&["simulate", "--load", "0.5"], "--queueing"),
        (
            &[
                "simulate",
                "--queueing",
                "--threshold",
                "1",
                "--load",
                "0.5",
            ],
            "--queueing needs --policy NAME (none, sender, receiver, symmetric, jsq)",
        ),
        (
            &[
                "simulate",
                "--queueing",
                "--policy",
                "completion",
                "--threshold",
                "1",
                "--load",
                "0.5",
            ],
            "--policy completion: the queueing mode has none, sender, receiver, symmetric, jsq",
        ),
        (
            &[
                "simulate",
                "--queueing",
                "--policy",
                "sender",
                "--load",
                "0.5",
            ],
            "--queueing needs --threshold T",
        ),
        (
            &[
                "simulate",
                "--queueing",
                "--policy",
                "sender",
                "--threshold",
                "1",
                "--load",
                "1",
            ],
            "--load 1: must be above 0 and below 1",
        ),
        (
            &[
                "simulate",
                "--queueing",
                "--policy",
                "sender",
                "--threshold",
                "1",
            ],
            "--queueing needs --load RHO",
        ),
        (
            &[
                "simulate",
                "--queueing",
                "--policy",
                "sender",
                "--threshold",
                "1",
                "--load",
                "0.5",
                "--jobs",
                "10",
            ],
            "--jobs 10: at least 1000",
        ),
        (
            &[
                "simulate",
                "--queueing",
                "--rate",
                "5",
                "--policy",
                "sender",
                "--threshold",
                "1",
                "--load",
                "0.5",
            ],
            "--rate and --throttle-at are for simulated runs, not --queueing",
        ),
        (
            &["simulate", "--headless"],
            "unexpected argument '--headless' found",
        ),
        (
            &["--headless", "simulate"],
            "simulate takes only its own options (see `loadbal simulate --help`)",
        ),
        (&["compare", "--sim", "--real"], "cannot be used with"),
    ];
    for (args, message) in cases {
        let out = run(args, &dir);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn the_queueing_mode_prints_its_figures() {
    let dir = test_dir("queueing");
    let out = run(
        &[
            "simulate",
            "--queueing",
            "--policy",
            "none",
            "--threshold",
            "1",
            "--load",
            "0.5",
            "--jobs",
            "200000",
            "--seed",
            "3",
            "--json",
            "q.json",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let q = json(&out);
    let mut keys: Vec<&String> = q.as_object().unwrap().keys().collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "ci95",
            "jobs",
            "load",
            "mean_response",
            "policy",
            "threshold",
            "transfers_per_job"
        ]
    );
    assert_eq!(q["policy"], "none");
    assert_eq!(q["jobs"], 200_000);
    assert_eq!(q["transfers_per_job"], 0.0);
    // M/M/1 at 0.5: a mean response of 2 service times.
    let (mean, ci) = (
        q["mean_response"].as_f64().unwrap(),
        q["ci95"].as_f64().unwrap(),
    );
    assert!((mean - 2.0).abs() <= ci, "{mean} +- {ci}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("q.json")).unwrap()).unwrap();
    assert_eq!(written, q);
}

#[test]
fn compare_writes_the_table_the_json_and_the_charts() {
    let dir = test_dir("compare");
    let config = write_config(
        &dir,
        serde_json::json!({ "workload": { "jobs": 32, "elements_per_job": 1024, "iterations": 100 } }),
    );
    let out = run(
        &[
            "compare",
            "--config",
            config.to_str().unwrap(),
            "--rate",
            "200",
            "--out",
            "out",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out_dir = dir.join("out");
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("compare.json")).unwrap())
            .unwrap();
    assert_eq!(c["mode"], "simulated");
    assert_eq!(c["policies"].as_array().unwrap().len(), 10);
    assert_eq!(c["scenarios"].as_array().unwrap().len(), 9);
    let rows = c["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 90);
    for row in rows {
        assert!(row["error"].is_null(), "{row}");
        let (finish, ideal) = (
            row["finish_s"].as_f64().unwrap(),
            row["ideal_s"].as_f64().unwrap(),
        );
        assert!(finish >= ideal * 0.999, "{row}");
    }
    let none_moves: u64 = rows
        .iter()
        .filter(|r| r["policy"] == "none")
        .map(|r| r["jobs_moved"].as_u64().unwrap())
        .sum();
    assert_eq!(none_moves, 0);
    // The same rows as CSV: a header, then one line per row, in order.
    let csv = std::fs::read_to_string(out_dir.join("compare.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("scenario,policy,finish_s,ideal_s,efficiency,jobs_moved,bytes_moved,transfers,error")
    );
    let lines: Vec<&str> = lines.collect();
    assert_eq!(lines.len(), rows.len());
    for (line, row) in lines.iter().zip(rows) {
        let want = format!(
            "\"{}\",\"{}\",{:.6},",
            row["scenario"].as_str().unwrap(),
            row["policy"].as_str().unwrap(),
            row["finish_s"].as_f64().unwrap()
        );
        assert!(line.starts_with(&want), "{line} vs {want}");
        let jobs_moved = row["jobs_moved"].as_u64().unwrap().to_string();
        // From the right: a scenario's name may hold a comma (quoted).
        assert_eq!(line.rsplit(',').nth(3), Some(jobs_moved.as_str()), "{line}");
    }
    let md = std::fs::read_to_string(out_dir.join("compare.md")).unwrap();
    for heading in [
        "## Finish time, s",
        "## Efficiency against the ideal",
        "## Jobs moved",
        "## Bytes moved, MiB",
        "## Transfers",
        "## Best policy per scenario",
    ] {
        assert!(md.contains(heading), "{heading}:\n{md}");
    }
    assert!(md.contains("| completion |"));
    for chart in ["finish_time", "jobs_moved", "bytes_moved"] {
        let png = std::fs::read(out_dir.join(format!("{chart}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{chart}");
        let svg = std::fs::read_to_string(out_dir.join(format!("{chart}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("completion"),
            "{chart}"
        );
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("best"));
    // An --out that is a file is refused before anything runs.
    let out = run(
        &[
            "compare",
            "--config",
            config.to_str().unwrap(),
            "--out",
            "out/compare.md",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--out out/compare.md: is not a directory"),
        "{}",
        stderr(&out)
    );
}
