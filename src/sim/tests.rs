use super::*;
use crate::config::{ConfigFile, Machine, parse};

fn config(extra: &str) -> Config {
    let text = format!(
        r#"{{ "workload": {{ "jobs": 256, "elements_per_job": 4096, "iterations": 1000 }} {extra} }}"#
    );
    let file: ConfigFile = parse(&text, "test").unwrap();
    file.validate_on(&Machine {
        memory_bytes: 0,
        logical_cpus: 2,
    })
    .unwrap()
}

#[test]
fn a_simulated_run_verifies_and_predicts_near_the_ideal() {
    let c = config(r#", "policy": {"transfer": "completion"}, "slave": {"throttle": 0.3}"#);
    let sim = simulate(&c, &MachineModel::compute_only(500.0), &[], 1).unwrap();
    let p = &sim.prediction;
    assert!(sim.report.verified);
    assert_eq!(sim.report.jobs_total, 256);
    assert_eq!(
        sim.report.jobs_done.master + sim.report.jobs_done.slave,
        256
    );
    // 256 jobs at 500 a second on 1.3 workers' worth of throttle.
    assert!((p.ideal_s - 256.0 / (500.0 * 1.3)).abs() < 1e-9);
    assert!(p.efficiency > 0.9 && p.efficiency <= 1.0, "{p:?}");
    assert!(p.jobs_moved > 0);
    assert_eq!(p.bytes_moved, u64::from(p.jobs_moved) * (8 + 4096 * 8));
    let json: serde_json::Value = serde_json::from_str(&sim.to_json()).unwrap();
    assert_eq!(json["simulated"], true);
    assert_eq!(json["verified"], true);
    assert_eq!(json["policy"]["transfer"], "completion");
    assert_eq!(json["policy"]["threshold"], 10);
    // The expected value of the workload's iterations, not of the one computed.
    assert_eq!(
        json["expected_value"],
        crate::workload::expected_value(&c.workload)
    );
}

#[test]
fn the_same_simulation_gives_the_same_prediction() {
    let c = config(r#", "slave": {"throttle": 0.5}"#);
    let a = simulate(&c, &MachineModel::compute_only(500.0), &[], 3)
        .unwrap()
        .prediction;
    let b = simulate(&c, &MachineModel::compute_only(500.0), &[], 3)
        .unwrap()
        .prediction;
    assert_eq!((a.finish_s, a.jobs_moved), (b.finish_s, b.jobs_moved));
}

#[test]
fn a_throttle_drop_mid_run_is_followed() {
    let c = config(r#", "policy": {"transfer": "completion"}"#);
    let change: ThrottleChange = "0.1:slave:0.1".parse().unwrap();
    let steady = simulate(&c, &MachineModel::compute_only(500.0), &[], 1)
        .unwrap()
        .prediction;
    let dropped = simulate(&c, &MachineModel::compute_only(500.0), &[change], 1).unwrap();
    let p = &dropped.prediction;
    assert!(p.finish_s > steady.finish_s);
    assert_eq!(dropped.report.throttle.slave, 0.1_f32 as f64);
    // Ideal: 100 jobs in the first 0.1 s, the other 156 at 550 a second.
    assert!((p.ideal_s - (0.1 + 156.0 / 550.0)).abs() < 1e-9, "{p:?}");
    assert!(p.efficiency > 0.85, "{p:?}");
    assert!(dropped.report.jobs_moved.to_master > 0);
}

#[test]
fn a_run_that_cannot_end_is_reported() {
    let c = config(r#", "master": {"throttle": 0}, "slave": {"throttle": 0}"#);
    let e = simulate(&c, &MachineModel::compute_only(500.0), &[], 1).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the simulated run had not ended after 86400 s"),
        "{e}"
    );
}

#[test]
fn throttle_changes_parse_or_say_why() {
    let ok: ThrottleChange = "1.5:master:0.25".parse().unwrap();
    assert_eq!(
        ok,
        ThrottleChange {
            at_s: 1.5,
            role: Role::Master,
            throttle: 0.25
        }
    );
    let err = |s: &str| s.parse::<ThrottleChange>().unwrap_err();
    assert_eq!(
        err("1.5:master"),
        "\"1.5:master\" is not SECONDS:NODE:VALUE (for example 0.5:slave:0.25)"
    );
    assert_eq!(
        err("x:master:1"),
        "\"x\" is not a number of seconds from 0 up"
    );
    assert_eq!(
        err("-1:master:1"),
        "\"-1\" is not a number of seconds from 0 up"
    );
    assert_eq!(err("1:boss:1"), "\"boss\" is not a node: master or slave");
    assert_eq!(err("1:slave:2"), "\"2\" is not a throttle from 0.0 to 1.0");
    assert_eq!(
        err("1:slave:NaN"),
        "\"NaN\" is not a throttle from 0.0 to 1.0"
    );
}

#[test]
fn the_ideal_follows_the_throttles() {
    let c = config("");
    assert!((ideal_seconds(&c, 100.0, &[]) - 1.28).abs() < 1e-12);
    let pause = |at_s, role| ThrottleChange {
        at_s,
        role,
        throttle: 0.0,
    };
    // Both paused after 1 s: never ends.
    assert!(
        ideal_seconds(
            &c,
            100.0,
            &[pause(1.0, Role::Master), pause(1.0, Role::Slave)]
        )
        .is_infinite()
    );
    // One paused at 1 s: 200 jobs done, 56 left at 100 a second.
    assert!((ideal_seconds(&c, 100.0, &[pause(1.0, Role::Slave)]) - 1.56).abs() < 1e-12);
}
