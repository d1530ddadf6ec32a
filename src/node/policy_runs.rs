//! Whole runs of every transfer policy in virtual time: each finishes with
//! a node paused, and the completion-time policies come near the ideal
//! finishing time where the queue-levelling ones do not.

use std::time::Duration;

use super::Pair;
use crate::config::{ConfigFile, Machine, Role, parse};
use crate::node::core::End;
use crate::protocol::Phase;

const JOBS: u32 = 256;
/// Element updates a second: a job of 256 elements and 20 iterations takes 10 ms.
const RATE: f64 = 512_000.0;

fn config(policy: &str, throttles: (f64, f64)) -> crate::config::Config {
    let text = format!(
        r#"{{
            "master": {{ "throttle": {} }},
            "slave": {{ "throttle": {} }},
            "workload": {{ "jobs": {JOBS}, "elements_per_job": 256, "iterations": 20 }},
            "policy": {{ "transfer": "{policy}", "state_interval_ms": 100 }},
            "network": {{ "datagram_bytes": 1472 }}
        }}"#,
        throttles.0, throttles.1
    );
    let file: ConfigFile = parse(&text, "test").unwrap();
    file.validate_on(&Machine {
        memory_bytes: 0,
        logical_cpus: 2,
    })
    .unwrap()
}

/// Runs to the end; the virtual seconds from the bootstrap to done.
fn run(policy: &str, throttles: (f64, f64)) -> (Pair, f64) {
    let mut pair = Pair::new(&config(policy, throttles), RATE, 7);
    pair.start();
    let ended = pair.run(Duration::from_secs(600));
    assert!(ended, "{policy} {throttles:?}:\n{}", pair.master.log_text());
    assert_eq!(
        pair.master_end(),
        Some(&End::Finished { verified: true }),
        "{policy} {throttles:?}:\n{}",
        pair.master.log_text()
    );
    let started = pair.master.core.phase_started();
    let (Some(a), Some(b)) = (
        started[Phase::Bootstrap as usize],
        started[Phase::Done as usize],
    ) else {
        panic!("{policy}: no phase times");
    };
    let seconds = b.saturating_duration_since(a).as_secs_f64();
    (pair, seconds)
}

/// Seconds the whole workload takes on both nodes as one machine.
fn ideal(throttles: (f64, f64)) -> f64 {
    let job = 256.0 * 20.0 / RATE;
    f64::from(JOBS) * job / (throttles.0 + throttles.1)
}

#[test]
fn every_policy_finishes_with_a_node_paused() {
    for name in crate::policy::NAMES {
        for (paused, throttles) in [(Role::Slave, (1.0, 0.0)), (Role::Master, (0.0, 1.0))] {
            let (mut pair, _) = run(name, throttles);
            let paused_node = pair.node(paused);
            assert_eq!(
                paused_node.core.jobs_done(),
                0,
                "{name}: the paused {paused:?} computed jobs"
            );
            let log = paused_node.log_text();
            assert!(
                log.contains("paused: giving away every queued job"),
                "{name}, {paused:?} paused:\n{log}"
            );
        }
    }
}

#[test]
fn the_slave_follows_the_masters_policy() {
    let (pair, _) = run("completion", (1.0, 0.3));
    let slave_log = pair.slave.log_text();
    assert!(
        slave_log.contains("policy completion, threshold 10 ms"),
        "{slave_log}"
    );
}

#[test]
fn completion_time_policies_come_near_the_ideal() {
    for throttles in [(1.0, 1.0), (1.0, 0.3), (0.25, 1.0), (0.5, 0.75)] {
        let ideal = ideal(throttles);
        let (_, sender) = run("sender", throttles);
        for name in ["completion", "adaptive"] {
            let (pair, seconds) = run(name, throttles);
            let efficiency = ideal / seconds;
            assert!(
                efficiency >= 0.9,
                "{name} {throttles:?}: {seconds:.3} s against {ideal:.3} s ideal ({efficiency:.3}):\n{}",
                pair.master.log_text()
            );
            if throttles.0 != throttles.1 {
                assert!(
                    seconds < sender,
                    "{name} {throttles:?}: {seconds:.3} s, sender {sender:.3} s"
                );
            }
        }
    }
}

#[test]
fn receiver_initiated_policies_ask_and_are_answered() {
    for name in ["receiver", "symmetric", "classic-receiver"] {
        let (pair, _) = run(name, (1.0, 0.3));
        let asked = pair.master.core.counters().requests_sent;
        let answered = pair.slave.core.counters().requests_received;
        assert!(
            asked > 0,
            "{name}: the master never asked:\n{}",
            pair.master.log_text()
        );
        assert!(
            answered > 0 && answered <= asked,
            "{name}: {answered} of {asked}"
        );
        let moved: u32 = pair
            .master
            .core
            .transfers()
            .iter()
            .filter(|t| t.from == Role::Slave)
            .map(|t| t.jobs)
            .sum();
        assert!(moved > 0, "{name}: nothing came of the requests");
    }
}

#[test]
fn none_moves_nothing_between_computing_nodes() {
    let (pair, _) = run("none", (1.0, 0.3));
    assert!(pair.master.core.transfers().is_empty());
    assert_eq!(pair.master.core.counters().requests_sent, 0);
}

#[test]
fn adaptive_keeps_the_bootstrap_a_slow_link_cannot_carry() {
    // 128 jobs of 256 KiB, 10 ms each to compute (one iteration computed
    // for real, twenty modelled), over 20 Mbit/s each way: 105 ms a job on
    // the wire.
    let slow = |policy: &str| {
        let text = format!(
            r#"{{
                "workload": {{ "jobs": 128, "elements_per_job": 32768, "iterations": 1 }},
                "policy": {{ "transfer": "{policy}", "state_interval_ms": 100 }},
                "network": {{ "datagram_bytes": 1472, "compression": false }},
                "master": {{ "link": {{ "bandwidth_mbit": 20, "delay_ms": 20 }} }},
                "slave": {{ "link": {{ "bandwidth_mbit": 20, "delay_ms": 20 }} }}
            }}"#
        );
        let c = parse(&text, "test")
            .unwrap()
            .validate_on(&Machine {
                memory_bytes: 0,
                logical_cpus: 2,
            })
            .unwrap();
        let mut pair = Pair::new(&c, 32768.0 * 20.0 / 0.01, 7);
        pair.master.modelled_iterations = Some(20);
        pair.slave.modelled_iterations = Some(20);
        pair.start();
        assert!(pair.run(Duration::from_secs(600)));
        assert_eq!(pair.master_end(), Some(&End::Finished { verified: true }));
        pair
    };
    let adaptive = slow("adaptive");
    let completion = slow("completion");
    let sent = |p: &Pair| p.master.core.bootstrap_jobs();
    assert_eq!(sent(&completion), 64);
    // The first batches leave at once (48 jobs); the rest it keeps.
    assert!(sent(&adaptive) < 56, "{}", adaptive.master.log_text());
    assert!(
        adaptive.master.log_text().contains("not sent yet"),
        "{}",
        adaptive.master.log_text()
    );
    // The batches that left before the link was measured still take their
    // time out and back: 7.1 s against 8.9 s.
    assert!(
        adaptive.elapsed() < completion.elapsed() * 9 / 10,
        "{:?} {:?}",
        adaptive.elapsed(),
        completion.elapsed()
    );
}

#[test]
fn every_policy_finishes_when_a_node_pauses_mid_run() {
    for name in crate::policy::NAMES {
        for paused in [Role::Slave, Role::Master] {
            let mut pair = Pair::new(&config(name, (1.0, 1.0)), RATE, 7);
            pair.start();
            assert!(!pair.run_until(Duration::from_millis(300)));
            let now = pair.now;
            pair.node(paused).set_throttle(now, 0.0);
            let done_then = pair.node(paused).core.jobs_done();
            assert!(
                pair.run(Duration::from_secs(600)),
                "{name}, {paused:?} paused at 0.3 s:\n{}",
                pair.node(paused).log_text()
            );
            assert_eq!(
                pair.master_end(),
                Some(&End::Finished { verified: true }),
                "{name}, {paused:?}:\n{}",
                pair.master.log_text()
            );
            // The paused node finished nothing after the pause; its started
            // job went back to the queue and away.
            assert_eq!(pair.node(paused).core.jobs_done(), done_then, "{name}");
            assert!(
                pair.node(paused).log_text().contains("started jobs ["),
                "{name}, {paused:?}:\n{}",
                pair.node(paused).log_text()
            );
        }
    }
}
