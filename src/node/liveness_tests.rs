//! Issue 20's regression tests in the two-node harness: every run ends.
//! A pause in any phase (the aggregation's included), datagram sizes that
//! differ, forged hellos with values no config could hold, a slave whose
//! short peer time-out runs while its answer to the master is lost, a
//! policy with threshold 0 on a link without delay, and a run in which
//! nothing moves (the watchdog).

use std::time::Duration;

use super::Pair;
use crate::config::{Machine, Role, parse};
use crate::node::core::{End, Failure, JobState};
use crate::protocol::{self, Message, Phase, RunParams};

/// Element updates a second: a job of 256 elements and 10 iterations takes 5 ms.
const RATE: f64 = 512_000.0;

fn config(text: &str) -> crate::config::Config {
    parse(text, "test")
        .unwrap()
        .validate_on(&Machine {
            memory_bytes: 0,
            logical_cpus: 2,
        })
        .unwrap()
}

/// 32 jobs of 5 ms, threshold 2, states every 50 ms, and `extra` fields.
fn small(extra: &str) -> crate::config::Config {
    config(&format!(
        r#"{{ "workload": {{ "jobs": 32, "elements_per_job": 256, "iterations": 10 }},
             "policy": {{ "threshold": 2, "state_interval_ms": 50 }},
             "peer_timeout_ms": 1000, "network": {{ "datagram_bytes": 1472 }} {extra} }}"#
    ))
}

/// The config of [`small`], changed by `change`.
fn small_changed(change: impl FnOnce(&mut serde_json::Value)) -> crate::config::Config {
    let mut file: serde_json::Value = serde_json::from_str(
        r#"{ "workload": { "jobs": 32, "elements_per_job": 256, "iterations": 10 },
             "policy": { "threshold": 2, "state_interval_ms": 50 },
             "peer_timeout_ms": 1000, "network": { "datagram_bytes": 1472 } }"#,
    )
    .unwrap();
    change(&mut file);
    config(&file.to_string())
}

/// The small run with every chunk the slave sends lost (its results never
/// arrive), everything else getting through: a run that cannot progress.
fn slave_chunks_lost() -> Pair {
    let mut pair = Pair::new(&small(""), RATE, 8);
    pair.filter = Some(Box::new(|from, m| {
        from == Role::Slave && matches!(m, Message::Chunk(_))
    }));
    pair
}

fn assert_verified(pair: &Pair) {
    assert_eq!(
        pair.master_end(),
        Some(&End::Finished { verified: true }),
        "master log:\n{}\nslave log:\n{}",
        pair.master.log_text(),
        pair.slave.log_text()
    );
    let m = &pair.master.core;
    let jobs = m.params().unwrap().jobs;
    assert_eq!(m.jobs_done() + m.results_received(), jobs);
    assert_eq!(m.ledger().count(JobState::Returned), jobs);
}

/// Runs the pair a millisecond at a time until `until` holds; false if it
/// never did within `limit` or before both nodes ended.
fn run_until(pair: &mut Pair, limit: Duration, until: impl Fn(&Pair) -> bool) -> bool {
    while pair.elapsed() < limit {
        if until(pair) {
            return true;
        }
        let next = pair.elapsed() + Duration::from_millis(1);
        if pair.run_until(next) {
            return until(pair);
        }
    }
    false
}

// Issue 20: a slave paused while it computes a job after processing ended
// held that job for ever: a paused node gave its queue away only while
// processing. Now the master takes it back in the aggregation.
#[test]
fn a_slave_paused_in_the_aggregation_gives_its_jobs_back() {
    // Jobs of 50 ms, 500 ms on the slave at 10 %: the slave is still on its
    // last job when the master, its queue empty, begins the aggregation.
    let cfg = config(
        r#"{ "workload": { "jobs": 32, "elements_per_job": 256, "iterations": 100 },
             "master": { "workers": 2 }, "slave": { "throttle": 0.1 },
             "policy": { "threshold": 2, "state_interval_ms": 50 }, "peer_timeout_ms": 1000 }"#,
    );
    let mut pair = Pair::new(&cfg, RATE, 3);
    pair.start();
    let paused_at = run_until(&mut pair, Duration::from_secs(60), |p| {
        p.master.core.phase() == Phase::Aggregation
            && p.slave.core.ledger().count(JobState::Computing) > 0
    });
    assert!(paused_at, "{}", pair.master.log_text());
    let now = pair.now;
    pair.slave.set_throttle(now, 0.0);
    assert!(
        pair.run(Duration::from_secs(60)),
        "{}",
        pair.master.log_text()
    );
    assert_verified(&pair);
    assert!(
        pair.slave
            .log_text()
            .contains("paused: giving away every queued job"),
        "{}",
        pair.slave.log_text()
    );
    assert_eq!(pair.slave_end(), Some(&End::Finished { verified: true }));
}

// Issue 20: both nodes paused: the run waits and says so (it does not fail
// and the watchdog does not fire), then goes on when a throttle comes back.
#[test]
fn both_paused_the_run_waits_and_says_so_then_goes_on() {
    let mut pair = Pair::new(&small(""), RATE, 4);
    pair.start();
    pair.run_until(Duration::from_millis(30));
    let now = pair.now;
    pair.master.set_throttle(now, 0.0);
    pair.slave.set_throttle(now, 0.0);
    // Far past the watchdog's limit.
    pair.run_until(Duration::from_secs(60));
    assert!(pair.master_end().is_none() && pair.slave_end().is_none());
    let said = |log: String| {
        log.matches("the run waits until a throttle is raised")
            .count()
    };
    assert_eq!(
        said(pair.master.log_text()),
        1,
        "{}",
        pair.master.log_text()
    );
    let now = pair.now;
    pair.slave.set_throttle(now, 1.0);
    assert!(pair.run(Duration::from_secs(60)));
    assert_verified(&pair);
    // The paused master gave the slave everything it had not started.
    assert_eq!(
        pair.master.core.jobs_done() + pair.slave.core.jobs_done(),
        32
    );
}

// Issue 20: `network.datagram_bytes` differing on the two nodes stalled the
// bootstrap silently (the smaller node's reader cut the larger datagrams).
// Now both send the smaller size, and say so.
#[test]
fn nodes_with_different_datagram_sizes_agree_on_the_smaller() {
    for (m, s) in [(65507, 576), (576, 9000), (1472, 65507)] {
        let master = config(&format!(
            r#"{{ "workload": {{ "jobs": 32, "elements_per_job": 256, "iterations": 10 }},
                 "policy": {{ "threshold": 2, "state_interval_ms": 50 }},
                 "peer_timeout_ms": 1000, "network": {{ "datagram_bytes": {m} }} }}"#
        ));
        let slave = config(&format!(
            r#"{{ "workload": {{ "jobs": 32, "elements_per_job": 256, "iterations": 10 }},
                 "policy": {{ "threshold": 2, "state_interval_ms": 50 }},
                 "peer_timeout_ms": 1000, "network": {{ "datagram_bytes": {s} }} }}"#
        ));
        let mut pair = Pair::with_configs(&master, &slave, [RATE, RATE], 5);
        pair.start();
        assert!(pair.run(Duration::from_secs(60)), "{m} / {s}");
        assert_verified(&pair);
        assert_eq!(pair.cut, [0, 0], "{m} / {s}: datagrams cut");
        let line = format!("both send {}", m.min(s));
        assert!(pair.master.log_text().contains(&line), "{m} / {s}");
        assert!(pair.slave.log_text().contains(&line), "{m} / {s}");
    }
}

// Issue 20: each node compressed by its own config. Batches are now
// compressed only when both configs say so, and both nodes say which.
#[test]
fn batches_are_compressed_only_when_both_configs_say_so() {
    for (m, s, compressed) in [
        (true, true, true),
        (true, false, false),
        (false, true, false),
    ] {
        let file = |on: bool| small_changed(|f| f["network"]["compression"] = on.into());
        let mut pair = Pair::with_configs(&file(m), &file(s), [RATE, RATE], 3);
        pair.start();
        assert!(pair.run(Duration::from_secs(60)), "{m} / {s}");
        assert_verified(&pair);
        // The bootstrap's jobs all hold the initial value: one that is
        // compressed goes as that value.
        let counters = [pair.master.core.counters(), pair.slave.core.counters()];
        assert!(counters[0].batches_sent > 0);
        for c in counters {
            assert_eq!(c.batches_compressed > 0, compressed, "{m} / {s}: {c:?}");
        }
        for (node, off) in [(&pair.master, !m), (&pair.slave, !s)] {
            let said = node
                .log_text()
                .contains("config turns it off, so neither node compresses");
            // The node whose own config compresses is the one told.
            assert_eq!(said, !compressed && !off, "{m} / {s}");
        }
    }
}

// Issue 20: a slave followed whatever workload and policy the master's
// hello named. Nodes whose configs differ in a field of the run now both
// refuse it, naming the field and both values, and nothing moves.
#[test]
fn configs_that_differ_in_the_run_are_refused_by_both_nodes() {
    type Change = fn(&mut serde_json::Value);
    let cases: [(Change, &str, &str, &str); 5] = [
        (
            |f| f["workload"]["jobs"] = 33.into(),
            "workload.jobs",
            "32",
            "33",
        ),
        (
            |f| f["workload"]["addend"] = 2.5.into(),
            "workload.addend",
            "1.111111",
            "2.5",
        ),
        (
            |f| f["policy"]["transfer"] = "receiver".into(),
            "policy.transfer",
            "\"sender\"",
            "\"receiver\"",
        ),
        (
            |f| f["policy"]["threshold"] = 3.into(),
            "policy.threshold",
            "2",
            "3",
        ),
        (
            |f| {
                f["workload"]["arrivals"] = serde_json::json!({ "rate_per_s": 10, "duration_s": 2 })
            },
            "workload.arrivals",
            "none",
            "10 a second for 2 s, seed 1",
        ),
    ];
    for (change, field, master_value, slave_value) in cases {
        let master = small("");
        let slave = small_changed(change);
        let mut pair = Pair::with_configs(&master, &slave, [RATE, RATE], 4);
        pair.start();
        assert!(pair.run(Duration::from_secs(10)), "{field}");
        let expected = Failure::ConfigMismatch(protocol::Mismatch {
            field,
            master: master_value.to_owned(),
            slave: slave_value.to_owned(),
        });
        assert_eq!(
            pair.master_end(),
            Some(&End::Failed(expected.clone())),
            "{field}"
        );
        assert_eq!(
            pair.slave.core.end(),
            Some(&End::Failed(expected.clone())),
            "{field}"
        );
        assert_eq!(expected.exit_code(), 2);
        assert!(!pair.master.core.is_connected() && !pair.slave.core.is_connected());
        assert_eq!(pair.master.core.counters().batches_sent, 0, "{field}");
        assert!(
            pair.master
                .log_text()
                .contains(&format!("configs differ in {field}"))
        );
    }
}

// Issue 20: a hello with arrivals no config could hold (a rate of 1e-300
// for 1e300 s) panicked the slave converting them to a Duration. Every
// value of a hello is now checked as the config is, and a bad hello is
// dropped, counted and named in the log; the real master's run goes on.
#[test]
fn forged_hellos_with_values_no_config_holds_are_dropped_and_named() {
    let good = crate::sim::swarm::SMALL_PARAMS;
    // Jobs as many as the arrivals make, so that only their values are wrong.
    let arrivals = |rate_per_s: f64, duration_s: f64| {
        let p = RunParams {
            arrivals: Some(crate::arrivals::Arrivals {
                rate_per_s,
                duration_s,
                seed: 1,
            }),
            ..good
        };
        RunParams {
            jobs: p.schedule().total(),
            ..p
        }
    };
    let cases = [
        (
            1472,
            arrivals(1e-300, 1e300),
            "workload.arrivals.rate_per_s",
        ),
        (
            1472,
            arrivals(1e300, 1e-300),
            "workload.arrivals.rate_per_s",
        ),
        (1472, arrivals(1.0, 1e300), "workload.arrivals.duration_s"),
        (1472, RunParams { jobs: 9, ..good }, "workload.jobs"),
        (
            1472,
            RunParams {
                elements_per_job: u32::MAX,
                ..good
            },
            "workload.elements_per_job",
        ),
        (
            1472,
            RunParams {
                policy: 200,
                ..good
            },
            "policy.transfer",
        ),
        (
            1472,
            RunParams {
                threshold: u32::MAX,
                ..good
            },
            "policy.threshold",
        ),
        (100, good, "network.datagram_bytes"),
    ];
    for (i, (datagram_bytes, params, field)) in cases.into_iter().enumerate() {
        let mut pair = Pair::new(&small(""), RATE, 6);
        let now = pair.now;
        pair.slave
            .core
            .handle(now, crate::node::core::Input::Start { random: 77 });
        let nonce = pair.slave.core.hello_nonce();
        pair.inject(
            Role::Slave,
            &crate::sim::swarm::hello_from_master(nonce, datagram_bytes, params),
        );
        pair.run_until(Duration::from_millis(1));
        assert!(
            pair.slave.log_text().contains(&format!(
                "ignored a hello from the master with bad values: {field}"
            )),
            "case {i}: {}",
            pair.slave.log_text()
        );
        assert_eq!(pair.slave.core.counters().rejected.malformed, 1, "case {i}");
        assert!(!pair.slave.core.is_connected(), "case {i}");
        // The real master starts now; the slave joins it and the run verifies.
        let now = pair.now;
        pair.master
            .core
            .handle(now, crate::node::core::Input::Start { random: 5 });
        assert!(pair.run(Duration::from_secs(60)), "case {i}");
        assert_verified(&pair);
    }
}

// Issue 20 (found by the swarm): a slave joins on the master's hello and
// counts the master's silence from then on; the master, whose copy of the
// slave's answer was lost, repeated its hello only every 500 ms, past a
// peer time-out of 300 ms, and the slave gave up on a live master. The
// hello is now repeated within a quarter of the time-out.
#[test]
fn a_lost_answer_is_asked_again_within_the_slaves_peer_timeout() {
    let cfg = config(
        r#"{ "workload": { "jobs": 16, "elements_per_job": 256, "iterations": 10 },
             "policy": { "threshold": 2, "state_interval_ms": 25 },
             "peer_timeout_ms": 300 }"#,
    );
    let mut pair = Pair::new(&cfg, RATE, 7);
    // The slave's first two answers in the master's session are lost.
    let mut lost = 0;
    pair.filter = Some(Box::new(move |from, m| {
        if from == Role::Slave && matches!(m, Message::Hello(_)) && lost < 2 {
            lost += 1;
            return true;
        }
        false
    }));
    pair.start();
    assert!(pair.run(Duration::from_secs(30)));
    assert_verified(&pair);
    assert_eq!(pair.slave_end(), Some(&End::Finished { verified: true }));
    assert_eq!(pair.master.core.hello_interval(), Duration::from_millis(75));
}

// Issue 20 (found by the swarm): the sender policy with threshold 0 sent one
// job whenever the queues differed by one, and the peer sent it straight
// back: on a link without delay the two nodes passed it back and forth for
// ever at one instant.
#[test]
fn threshold_zero_does_not_bounce_a_job_between_the_nodes() {
    for policy in ["sender", "symmetric"] {
        let cfg = config(&format!(
            r#"{{ "workload": {{ "jobs": 13, "elements_per_job": 200, "iterations": 7 }},
                 "master": {{ "workers": 3 }}, "slave": {{ "workers": 3, "throttle": 0.05 }},
                 "policy": {{ "transfer": "{policy}", "threshold": 0, "state_interval_ms": 25 }} }}"#
        ));
        let mut pair = Pair::new(&cfg, RATE, 4873);
        pair.start();
        assert!(pair.run(Duration::from_secs(60)), "{policy}");
        assert_verified(&pair);
        let moved = pair.master.core.transfers().len();
        assert!(moved < 20, "{policy}: {moved} transfers for 13 jobs");
    }
}

// Issue 20: nothing watched whether the run as a whole moved. Here every
// chunk the slave sends is lost while everything else gets through: the
// slave's results never arrive, its states keep it alive, and nothing
// computes. The watchdog ends the run, naming where the jobs are.
#[test]
fn a_run_in_which_nothing_moves_ends_with_a_named_failure() {
    let mut pair = slave_chunks_lost();
    pair.start();
    assert!(
        pair.run(Duration::from_secs(120)),
        "{}",
        pair.master.log_text()
    );
    let Some(End::Failed(Failure::NoProgress { seconds, detail })) = pair.master_end() else {
        panic!("{:?}\n{}", pair.master_end(), pair.master.log_text());
    };
    assert_eq!(*seconds, 10.0);
    let lent = pair.master.core.ledger().count(JobState::Lent);
    assert!(lent > 0);
    assert!(
        detail.contains(&format!("{lent} jobs lent to the slave"))
            && detail.contains("the slave alive (heard"),
        "{detail}"
    );
    // The slave, which saw nothing move either, stopped too: by its own
    // watchdog or by the master's word, whichever came first.
    assert!(
        matches!(
            pair.slave_end(),
            Some(End::Failed(
                Failure::PeerAborted { .. } | Failure::NoProgress { .. }
            ))
        ),
        "{:?}",
        pair.slave_end()
    );
    // It fired the limit after the last progress, not before.
    let failed_at = pair.master.log.last().unwrap().0;
    assert!(failed_at >= Duration::from_secs(10), "{failed_at:?}");
    // The master's report of the failed run: what it holds, verified, the
    // failure, and where every job stood.
    let failure = Failure::NoProgress {
        seconds: *seconds,
        detail: detail.clone(),
    };
    let net = crate::report::SocketCounts::default();
    let report = crate::report::Report::build_failed(&pair.master.core, &net, &failure).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let m = &pair.master.core;
    let returned = m.ledger().count(JobState::Returned);
    assert_eq!(json["verified"], false);
    assert_eq!(json["failure"], failure.to_string());
    assert_eq!(json["ledger"]["lent"], lent);
    assert_eq!(json["ledger"]["returned"], returned);
    assert_eq!(json["jobs_done"]["master"], m.jobs_done());
    assert_eq!(m.jobs_done() + m.results_received(), returned);
    let missing = json["verification"]["missing_jobs"].as_array().unwrap();
    assert_eq!(missing.len() as u32, 32 - returned);
    // Its time runs to the failure, in the phase the run failed in.
    let began = m.phase_started()[Phase::Bootstrap as usize].unwrap();
    let lasted = m.failed_at().unwrap() - began;
    let total = json["elapsed_s"]["total"].as_f64().unwrap();
    assert!(
        (total - lasted.as_secs_f64()).abs() < 1e-5,
        "{total} vs {lasted:?}"
    );
    // Here the aggregation: the master computed its own jobs, and waited
    // for the slave's results the link never carried.
    assert_eq!(m.phase(), Phase::Aggregation);
    assert!(
        json["elapsed_s"]["aggregation"].as_f64().unwrap() >= 10.0,
        "{json:#}"
    );
    // A run that never began (no slave came) has nothing to report.
    let mut alone = Pair::new(&small(""), RATE, 8);
    alone
        .master
        .core
        .handle(alone.now, crate::node::core::Input::Start { random: 3 });
    let no_slave = Failure::NoSlave {
        address: "127.0.0.1:7002".to_owned(),
        waited_s: 3.0,
    };
    assert!(crate::report::Report::build_failed(&alone.master.core, &net, &no_slave).is_none());
}

// Issue 20: a batch was the receiver's once its transport had every chunk,
// even when its core then dropped it (parameters not known, a decode
// error, results sent to a slave): the sender marked the jobs lent and the
// run waited for ever. Now a core that cannot take a batch refuses it on
// the batch's complete ack, and the sender takes the jobs back. Here every
// other batch (or every one) is refused, on either side and on both, over a
// lossy link.
#[test]
fn refused_batches_are_taken_back_and_the_run_verifies() {
    let link = r#"{ "loss": 0.1, "duplicate": 0.05, "reorder": 0.1, "delay_ms": 2, "seed": 3 }"#;
    let cfg = small(&format!(
        r#", "master": {{ "throttle": 0.3, "link": {link} }}, "slave": {{ "link": {link} }}"#
    ));
    // (The slave refusing every batch leaves the master to compute alone.)
    for (seed, refuse) in [(1, [0, 1]), (2, [2, 0]), (3, [2, 2]), (4, [2, 2])] {
        let mut pair = Pair::new(&cfg, RATE, seed);
        pair.master.core.inject_refusals(refuse[0]);
        pair.slave.core.inject_refusals(refuse[1]);
        pair.start();
        assert!(pair.run(Duration::from_secs(120)), "{refuse:?}");
        assert_verified(&pair);
        for (role, node, refusing) in [
            (Role::Master, &pair.master, refuse[0]),
            (Role::Slave, &pair.slave, refuse[1]),
        ] {
            let refused = node.core.counters().batches_refused;
            assert_eq!(refused > 0, refusing > 0, "{role:?} {refuse:?}");
            // Each refusal was heard by the other side, which took the
            // batch's jobs back.
            let other = match role {
                Role::Master => &pair.slave,
                Role::Slave => &pair.master,
            };
            let taken_back = other.log_text().matches(" are this node's again").count();
            assert_eq!(taken_back as u64, refused, "{role:?} {refuse:?}");
        }
    }
}

// Issue 20 (the watchdog): jobs that arrive far apart are worth waiting
// for. Here one arrives about every 20 s at each node, twice the
// watchdog's limit, and nothing else moves between them: the run ends
// verified, never "no progress".
#[test]
fn the_watchdog_waits_for_jobs_still_to_arrive() {
    let cfg = config(
        r#"{ "workload": { "jobs": 2, "elements_per_job": 256, "iterations": 10,
                "arrivals": { "rate_per_s": 0.05, "duration_s": 120, "seed": 4 } },
             "policy": { "threshold": 2, "state_interval_ms": 50 }, "peer_timeout_ms": 1000 }"#,
    );
    let arriving = cfg.workload.schedule().total() - 2;
    assert!(arriving >= 4, "{arriving} arrivals");
    let mut pair = Pair::new(&cfg, RATE, 9);
    pair.start();
    assert!(
        pair.run(Duration::from_secs(400)),
        "{}",
        pair.master.log_text()
    );
    assert_verified(&pair);
}

// Issue 20 (found in review): a pause anywhere used to switch the watchdog
// off. Here every chunk the slave sends is lost (its results never come)
// and the slave is paused early: the run is stalled, not waiting for its
// user, and the watchdog still ends it.
#[test]
fn a_pause_that_holds_nothing_up_does_not_hide_a_stall() {
    let mut pair = slave_chunks_lost();
    pair.start();
    pair.run_until(Duration::from_millis(40));
    let now = pair.now;
    pair.slave.set_throttle(now, 0.0);
    assert!(
        pair.run(Duration::from_secs(120)),
        "{}",
        pair.master.log_text()
    );
    assert!(
        matches!(
            pair.master_end(),
            Some(End::Failed(Failure::NoProgress { .. }))
        ),
        "{:?}\n{}",
        pair.master_end(),
        pair.master.log_text()
    );
}

// Issue 20 (found in review): a peer that refuses every batch (another
// version, a bug) had the same jobs sent to it for ever. After eight
// refusals in a row the node stops, naming why.
#[test]
fn a_peer_that_refuses_every_batch_ends_the_run_named() {
    let mut pair = Pair::new(&small(r#", "master": { "throttle": 0.0 }"#), RATE, 8);
    pair.slave
        .core
        .inject_refusals_naming(1, crate::protocol::RefuseReason::Malformed);
    pair.start();
    assert!(
        pair.run(Duration::from_secs(120)),
        "{}",
        pair.master.log_text()
    );
    assert_eq!(
        pair.master_end(),
        Some(&End::Failed(Failure::PeerRefuses {
            peer: "slave",
            times: crate::node::core::MAX_REFUSALS_IN_A_ROW,
            reason: "it did not decode",
        })),
        "{}",
        pair.master.log_text()
    );
}
