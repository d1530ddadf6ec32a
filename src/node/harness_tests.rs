//! Whole runs of the node's core in virtual time: loss, duplication and
//! reordering over many seeds, a slave lost in every phase, a restarted
//! slave, replays, a lost finish and its ack, a lost master, and random
//! fault schedules. Each run takes milliseconds.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::Pair;
use crate::config::{ConfigFile, Machine, Role, parse};
use crate::node::core::{End, Failure, JobState};
use crate::protocol::{self, Header, Hello, Message, Phase, RunParams};

const JOBS: u32 = 64;
/// Element updates a second: a job of 256 elements and 10 iterations takes 5 ms.
const RATE: f64 = 512_000.0;

fn config(extra: &str) -> crate::config::Config {
    let base = format!(
        r#"{{
            "workload": {{ "jobs": {JOBS}, "elements_per_job": 256, "iterations": 10 }},
            "policy": {{ "threshold": 2, "state_interval_ms": 50 }},
            "peer_timeout_ms": 1000,
            "network": {{ "datagram_bytes": 1472 }}
            {extra}
        }}"#
    );
    let file: ConfigFile = parse(&base, "test").unwrap();
    file.validate_on(&Machine {
        memory_bytes: 0,
        logical_cpus: 2,
    })
    .unwrap()
}

/// The test config, with `arrivals` (a `workload.arrivals` object) and a
/// peer time-out of 1 s.
fn with_arrivals(arrivals: &str) -> crate::config::Config {
    let file: ConfigFile = parse(
        &format!(
            r#"{{
                "workload": {{ "jobs": {JOBS}, "elements_per_job": 256, "iterations": 10,
                    "arrivals": {arrivals} }},
                "policy": {{ "threshold": 2, "state_interval_ms": 50 }},
                "peer_timeout_ms": 1000,
                "network": {{ "datagram_bytes": 1472 }}
            }}"#
        ),
        "test",
    )
    .unwrap();
    file.validate_on(&Machine {
        memory_bytes: 0,
        logical_cpus: 2,
    })
    .unwrap()
}

fn lossy(loss: f64, duplicate: f64, reorder: f64, seed: u64) -> crate::config::Config {
    let link = format!(
        r#"{{ "loss": {loss}, "duplicate": {duplicate}, "reorder": {reorder},
              "delay_ms": 2, "jitter_ms": 1, "seed": {seed} }}"#
    );
    config(&format!(
        r#", "master": {{ "link": {link} }}, "slave": {{ "link": {} }}"#,
        link.replace(
            &format!("\"seed\": {seed}"),
            &format!("\"seed\": {}", seed + 1)
        )
    ))
}

/// Every job exactly once, on one node or the other, and the master's
/// ledger holds every result.
fn assert_verified(pair: &Pair) {
    assert_eq!(
        pair.master_end(),
        Some(&End::Finished { verified: true }),
        "master log:\n{}",
        pair.master.log_text()
    );
    let m = &pair.master.core;
    let v = m.verification().unwrap();
    assert!(v.missing.is_empty() && v.duplicated.is_empty() && v.wrong_elements == 0);
    assert_eq!(m.ledger().count(JobState::Returned), JOBS);
    assert_eq!(m.jobs_done() + m.results_received(), JOBS);
}

/// Both nodes' timelines of a run where neither was lost: every job has
/// exactly one kept span, on the node that computed it, with the origin it
/// arrived with; every span and batch ends by the run's end; the bootstrap
/// batches the slave received carry the bootstrap's jobs.
fn assert_timelines(pair: &Pair) {
    use crate::node::core::Origin;
    let (m, s) = (&pair.master.core, &pair.slave.core);
    let mut kept = vec![0u32; JOBS as usize];
    for (node, allowed) in [
        (m, [Origin::Own, Origin::Moved]),
        (s, [Origin::Bootstrap, Origin::Moved]),
    ] {
        let spans = node.timeline().jobs();
        for span in spans.iter().filter(|span| span.kept) {
            kept[span.id as usize] += 1;
            assert!(
                allowed.contains(&span.origin),
                "{:?}: {span:?}",
                node.role()
            );
            assert!(
                0.0 <= span.start_s && span.start_s <= span.end_s,
                "{span:?}"
            );
        }
        assert_eq!(
            spans.iter().filter(|span| span.kept).count() as u32,
            node.jobs_done(),
            "{:?}",
            node.role()
        );
        let end = node.run_seconds(pair.now);
        assert!(spans.iter().all(|span| span.end_s <= end));
        let queue = node.timeline().queue();
        assert!(queue.windows(2).all(|w| w[0].at_s <= w[1].at_s));
        assert_eq!(queue.last().map(|q| q.queue), Some(0), "{:?}", node.role());
    }
    assert!(kept.iter().all(|&n| n == 1), "{kept:?}");
    let bootstrap = |node: &crate::node::core::NodeCore, outbound: bool| -> u32 {
        node.timeline()
            .batches()
            .iter()
            .filter(|b| b.kind == protocol::BatchKind::Bootstrap && b.outbound == outbound)
            .map(|b| b.jobs)
            .sum()
    };
    // A batch counts as sent once acknowledged, and the run can end
    // before a lost ack is repeated (the results say it arrived).
    assert!(bootstrap(m, true) <= m.bootstrap_jobs());
    assert_eq!(bootstrap(s, false), m.bootstrap_jobs());
    // Every result the master stored came in a results batch it received.
    let results: u32 = m
        .timeline()
        .batches()
        .iter()
        .filter(|b| b.kind == protocol::BatchKind::Results && !b.outbound)
        .map(|b| b.jobs)
        .sum();
    assert!(results >= m.results_received());
}

#[test]
fn a_plain_run_verifies_and_the_slave_finishes_too() {
    let mut pair = Pair::new(&config(""), RATE, 1);
    pair.start();
    assert!(
        pair.run(Duration::from_secs(30)),
        "{}",
        pair.master.log_text()
    );
    assert_verified(&pair);
    assert_eq!(pair.slave_end(), Some(&End::Finished { verified: true }));
    // The master's bye ends the slave's linger: it is gone one round trip
    // after the master's finish, not SLAVE_LINGER later.
    assert!(pair.slave.log_text().contains("the master said goodbye"));
    let done = pair.master.core.phase_started()[Phase::Done as usize].unwrap();
    assert!(
        pair.now.duration_since(done) < Duration::from_millis(5),
        "{:?}",
        pair.now.duration_since(done)
    );
    let m = &pair.master.core;
    assert_eq!(m.bootstrap_jobs(), JOBS / 2);
    assert_eq!(m.phase(), Phase::Done);
    // The slave's ledger: every job it was given went back as a result or
    // a moved job; none is left anywhere on it.
    let s = &pair.slave.core;
    assert_eq!(
        s.ledger().count(JobState::Returned) + s.ledger().count(JobState::Absent),
        JOBS
    );
    assert_eq!(s.ledger().count(JobState::Returned), m.results_received());
    assert_timelines(&pair);
}

#[test]
fn unequal_throttles_move_jobs_to_the_faster_node() {
    let mut pair = Pair::new(&config(r#", "slave": { "throttle": 0.2 }"#), RATE, 2);
    pair.start();
    assert!(pair.run(Duration::from_secs(30)));
    assert_verified(&pair);
    let m = &pair.master.core;
    assert!(
        m.transfers().iter().any(|t| t.from == Role::Slave),
        "{}",
        pair.master.log_text()
    );
    assert!(m.jobs_done() > JOBS / 2);
    assert_timelines(&pair);
    // The slave's jobs the policy moved back are computed here as moved.
    assert!(
        m.timeline()
            .jobs()
            .iter()
            .any(|span| span.origin == crate::node::core::Origin::Moved)
    );
}

#[test]
fn loss_duplication_and_reordering_lose_nothing_over_many_seeds() {
    for seed in 0..40 {
        let mut pair = Pair::new(&lossy(0.2, 0.05, 0.1, seed * 7), RATE, seed);
        pair.start();
        assert!(
            pair.run(Duration::from_secs(120)),
            "seed {seed}: not finished\n{}",
            pair.master.log_text()
        );
        assert_verified(&pair);
        assert_eq!(
            pair.slave_end(),
            Some(&End::Finished { verified: true }),
            "seed {seed}"
        );
        assert_timelines(&pair);
    }
}

/// Kills the slave `at` into the run and checks the master reclaims and
/// verifies, counting nothing twice; or, if the slave never answered, that
/// the master gives up after its connect time-out.
fn slave_lost_at(cfg: &crate::config::Config, at: Duration, seed: u64) -> Pair {
    let mut pair = Pair::new(cfg, RATE, seed);
    pair.start();
    pair.run_until(at);
    pair.kill(Role::Slave);
    assert!(
        pair.run(Duration::from_secs(120)),
        "{}",
        pair.master.log_text()
    );
    if pair.master.core.is_connected() {
        assert_verified(&pair);
    } else {
        assert!(matches!(
            pair.master_end(),
            Some(End::Failed(Failure::NoSlave { .. }))
        ));
    }
    pair
}

#[test]
fn a_slave_lost_in_any_phase_is_reclaimed_and_nothing_counts_twice() {
    // Before the handshake ends, in the bootstrap, in processing and after:
    // every millisecond of the first 40 (a 2 ms link makes the handshake
    // and bootstrap take a few), then every 5.
    let cfg = lossy(0.0, 0.0, 0.0, 11);
    let mut phases = std::collections::BTreeSet::new();
    for ms in (0..40).chain((40..400).step_by(5)) {
        let probe = {
            let mut p = Pair::new(&cfg, RATE, 3);
            p.start();
            p.run_until(Duration::from_millis(ms));
            p.master.core.phase()
        };
        phases.insert(probe as u8);
        let pair = slave_lost_at(&cfg, Duration::from_millis(ms), 3);
        let m = &pair.master.core;
        if m.is_peer_lost() {
            assert!(m.peer_lost_at_s().is_some());
            // Every job the master took back is computed as reclaimed.
            let reclaimed = m
                .timeline()
                .jobs()
                .iter()
                .filter(|span| span.kept && span.origin == crate::node::core::Origin::Reclaimed)
                .count() as u32;
            assert!(reclaimed <= m.jobs_reclaimed(), "at {ms} ms");
            assert_eq!(reclaimed > 0, m.jobs_reclaimed() > 0, "at {ms} ms");
            // Reclaimed jobs were computed here unless the slave's result
            // had come back.
            assert_eq!(
                m.jobs_done() + m.results_received(),
                JOBS,
                "at {ms} ms\n{}",
                pair.master.log_text()
            );
        }
    }
    // The kill times covered the run: before the handshake, the bootstrap,
    // processing and after the end (aggregation lasts only moments here).
    let all = [
        Phase::Idle,
        Phase::Bootstrap,
        Phase::Processing,
        Phase::Done,
    ];
    assert!(
        all.iter().all(|p| phases.contains(&(*p as u8))),
        "{phases:?}"
    );
}

#[test]
fn late_results_of_a_lost_slave_are_dropped_once() {
    // The slave goes silent (its datagrams dropped) but keeps computing;
    // once the master declares it lost and reclaims, the link heals and
    // the slave's results arrive late.
    let mut pair = Pair::new(&config(""), RATE, 4);
    pair.start();
    pair.run_until(Duration::from_millis(60));
    pair.filter = Some(Box::new(|from, _| from == Role::Slave));
    pair.run_until(Duration::from_millis(1400));
    assert!(
        pair.master.core.is_peer_lost(),
        "{}",
        pair.master.log_text()
    );
    pair.filter = None;
    assert!(pair.run(Duration::from_secs(30)));
    assert_verified(&pair);
    assert!(pair.master.core.jobs_reclaimed() > 0);
}

#[test]
fn a_restarted_slave_is_sent_away_as_stale() {
    let mut pair = Pair::new(&config(""), RATE, 5);
    pair.start();
    pair.run_until(Duration::from_millis(80));
    assert!(pair.master.core.is_connected());
    pair.restart_slave();
    assert!(pair.run(Duration::from_secs(30)));
    match pair.slave_end() {
        Some(End::Failed(Failure::Stale { .. })) => {}
        other => panic!("{other:?}\n{}", pair.slave.log_text()),
    }
    // The master, its slave gone silent, reclaims and verifies.
    assert_verified(&pair);
    assert!(pair.master.core.is_peer_lost());
    assert!(pair.master.log_text().contains("told it to go away"));
}

#[test]
fn a_replayed_hello_cannot_draw_a_slave_into_an_old_session() {
    let cfg = config("");
    let mut pair = Pair::new(&cfg, RATE, 6);
    let hello = Hello {
        from_master: true,
        window_chunks: 64,
        datagram_bytes: 1472,
        compression: true,
        params: RunParams {
            jobs: JOBS,
            elements_per_job: 256,
            iterations: 10,
            initial: 1.111111,
            addend: 1.111111,
            threshold: 2,
            policy: 0,
            present: JOBS,
            arrivals: None,
            kind: 0,
            spec: Default::default(),
        },
        // An earlier run's nonce, not this slave's.
        nonce: 12345,
    };
    let mut bytes = Vec::new();
    protocol::encode(
        &Header {
            session: 0xdead_beef,
            seq: 9,
        },
        &Message::Hello(hello),
        &mut bytes,
    );
    let now = pair.now;
    pair.slave
        .core
        .handle(now, crate::node::core::Input::Start { random: 777 });
    pair.inject(Role::Slave, &bytes);
    assert!(!pair.slave.core.is_connected());
    assert_eq!(pair.slave.core.params(), None);
    // The real master still gets its run.
    let now = pair.now;
    pair.master
        .core
        .handle(now, crate::node::core::Input::Start { random: 99 });
    assert!(pair.run(Duration::from_secs(30)));
    assert_verified(&pair);
}

/// A reference pair (seed `seed`) whose datagrams `drop` says to lose,
/// run to its end, which must be verified.
fn verified_dropping(seed: u64, drop: crate::node::harness::DropFilter) -> Pair {
    let mut pair = Pair::new(&config(""), RATE, seed);
    pair.filter = Some(drop);
    pair.start();
    assert!(pair.run(Duration::from_secs(30)));
    assert_verified(&pair);
    pair
}

#[test]
fn a_lost_finish_is_repeated_and_a_lost_ack_waited_out() {
    // The first finish is lost: the master repeats it.
    let mut dropped = false;
    let pair = verified_dropping(
        7,
        Box::new(move |_, m| {
            if matches!(m, Message::Finish { .. }) && !dropped {
                dropped = true;
                return true;
            }
            false
        }),
    );
    assert_eq!(pair.slave_end(), Some(&End::Finished { verified: true }));
    assert_eq!(pair.filtered, 1);

    // The bye is lost: the slave lingers its full time, then ends finished.
    let pair = verified_dropping(9, Box::new(|_, m| matches!(m, Message::Bye)));
    assert_eq!(pair.slave_end(), Some(&End::Finished { verified: true }));
    assert_eq!(pair.filtered, 1);
    assert!(!pair.slave.log_text().contains("said goodbye"));
    let done = pair.master.core.phase_started()[Phase::Done as usize].unwrap();
    assert!(pair.now.duration_since(done) >= Duration::from_millis(500));

    // Every ack is lost: the master gives up waiting after its patience
    // and still ends verified; the slave, which had the finish, too.
    let pair = verified_dropping(8, Box::new(|_, m| matches!(m, Message::FinishAck)));
    assert_eq!(pair.slave_end(), Some(&End::Finished { verified: true }));
    assert!(
        pair.master
            .log_text()
            .contains("the slave did not acknowledge the finish")
    );
}

#[test]
fn a_lost_master_ends_the_slave_with_peer_lost() {
    let mut pair = Pair::new(&config(""), RATE, 9);
    pair.start();
    pair.run_until(Duration::from_millis(100));
    pair.kill(Role::Master);
    let killed_at = pair.elapsed();
    assert!(pair.run(Duration::from_secs(30)));
    match pair.slave_end() {
        Some(End::Failed(Failure::PeerLost { peer: "master", .. })) => {}
        other => panic!("{other:?}"),
    }
    // Declared lost after the time-out, not before.
    assert!(pair.elapsed() >= killed_at + Duration::from_millis(1000));
}

#[test]
fn a_master_alone_gives_up_after_its_connect_timeout() {
    let mut pair = Pair::new(&config(r#", "connect_timeout_ms": 2000"#), RATE, 10);
    pair.kill(Role::Slave);
    pair.start();
    assert!(pair.run(Duration::from_secs(30)));
    match pair.master_end() {
        Some(End::Failed(Failure::NoSlave { waited_s, .. })) => assert_eq!(*waited_s, 2.0),
        other => panic!("{other:?}"),
    }
    assert_eq!(pair.elapsed(), Duration::from_secs(2));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random fault schedules: any loss, duplication and reordering, either
    /// throttle, and the slave perhaps killed at any moment. The master
    /// always ends verified, every job exactly once.
    #[test]
    fn any_fault_schedule_ends_verified(
        loss in 0.0f64..0.3,
        duplicate in 0.0f64..0.2,
        reorder in 0.0f64..0.2,
        link_seed in 0u64..1000,
        seed in any::<u64>(),
        slave_throttle in 0.05f64..1.0,
        kill_at_ms in proptest::option::of(0u64..600),
    ) {
        let mut cfg = lossy(loss, duplicate, reorder, link_seed);
        cfg.slave.throttle = slave_throttle;
        let mut pair = Pair::new(&cfg, RATE, seed);
        pair.start();
        if let Some(ms) = kill_at_ms {
            pair.run_until(Duration::from_millis(ms));
            pair.kill(Role::Slave);
        }
        prop_assert!(pair.run(Duration::from_secs(300)), "{}", pair.master.log_text());
        if pair.master.core.is_connected() {
            assert_verified(&pair);
        } else {
            // Killed before it ever answered: the master gives up.
            let gave_up = matches!(
                pair.master_end(),
                Some(End::Failed(Failure::NoSlave { .. }))
            );
            prop_assert!(gave_up, "{:?}", pair.master_end());
        }
    }
}

#[test]
fn the_policy_is_told_everything_it_may_weigh() {
    let mut pair = Pair::new(
        &config(r#", "slave": { "throttle": 0.5, "link": { "delay_ms": 5, "seed": 1 } }"#),
        RATE,
        12,
    );
    pair.start();
    // Into processing, with the bootstrap delivered and states exchanged.
    pair.run_until(Duration::from_millis(120));
    let now = pair.now;
    let m = &pair.master.core;
    assert_eq!(m.phase(), Phase::Processing, "{}", pair.master.log_text());
    let input = m.policy_input(now).unwrap();
    // A job's 2056 bytes, as compressed on the wire (the emulated link
    // turns compression on; the workload's equal values shrink well).
    let c = m.counters();
    let ratio = c.batch_wire_bytes as f64 / c.batch_raw_bytes as f64;
    assert!(ratio < 0.1, "{ratio}");
    assert_eq!(input.bytes_per_job, (2056.0 * ratio).ceil() as u64);
    assert_eq!((input.local_workers, input.peer_workers), (1, 1));
    assert_eq!((input.local_throttle, input.peer_throttle), (1.0, 0.5));
    // The slave's datagrams take 5 ms, the master's none.
    let rtt = input.rtt.unwrap();
    assert!(
        rtt >= Duration::from_millis(5) && rtt < Duration::from_millis(20),
        "{rtt:?}"
    );
    assert!(input.link_bytes_per_s > 0.0);
    assert!(input.run_seconds > 0.0 && input.run_seconds <= 0.12);
    // States come every 50 ms.
    assert!(input.peer_state_age_s < 0.06, "{}", input.peer_state_age_s);
}

/// A 10 Mbit/s bottleneck with a short queue (20 datagrams, as a `tc tbf`
/// with a 30 KB limit), `delay_ms` each way, nothing compressed: the
/// bootstrap's 4 MB.
fn bottleneck_pair(delay_ms: f64, seed: u64) -> Pair {
    let link =
        |s: u64| format!(r#"{{ "bandwidth_mbit": 10, "delay_ms": {delay_ms}, "seed": {s} }}"#);
    let text = format!(
        r#"{{
            "workload": {{ "jobs": 64, "elements_per_job": 16384, "iterations": 1 }},
            "policy": {{ "state_interval_ms": 50 }},
            "network": {{ "datagram_bytes": 1472, "compression": false }},
            "master": {{ "link": {} }},
            "slave": {{ "link": {} }}
        }}"#,
        link(seed),
        link(seed + 1)
    );
    let file: ConfigFile = parse(&text, "test").unwrap();
    let config = file
        .validate_on(&Machine {
            memory_bytes: 0,
            logical_cpus: 2,
        })
        .unwrap();
    let mut pair = Pair::new(&config, RATE, seed);
    pair.set_queue_limit(20);
    pair
}

#[test]
fn a_bottleneck_is_paced_not_overrun() {
    // A LAN and a WAN: the window must not starve the pacer when the RTT
    // is short and acks wait behind results on the way back.
    for (delay_ms, seed) in [(0.1, 3), (1.0, 4), (10.0, 5)] {
        paced_through_bottleneck(delay_ms, seed);
    }
}

fn paced_through_bottleneck(delay_ms: f64, seed: u64) {
    let mut pair = bottleneck_pair(delay_ms, seed);
    pair.start();
    assert!(
        pair.run(Duration::from_secs(60)),
        "{}",
        pair.master.log_text()
    );
    let m = &pair.master.core;
    assert_eq!(m.verification().map(|v| v.verified), Some(true));
    // The bootstrap: 32 jobs of 128 KiB through 10 Mbit/s.
    let phases = m.phase_started();
    let bootstrap =
        phases[Phase::Processing as usize].unwrap() - phases[Phase::Bootstrap as usize].unwrap();
    let bytes = 32.0 * crate::protocol::batch::job_bytes(16384) as f64;
    let goodput = bytes * 8.0 / bootstrap.as_secs_f64() / 10e6;
    let (sent, dropped) = (pair.sent[0], pair.link_dropped(Role::Master));
    let share = dropped as f64 / sent as f64;
    assert!(
        goodput >= 0.85,
        "{delay_ms} ms: goodput {goodput:.3} of the bottleneck"
    );
    assert!(
        share < 0.05,
        "{delay_ms} ms: {dropped} of {sent} datagrams dropped"
    );
    // The master says what it learnt of the link.
    let log = pair.master.log_text();
    assert!(
        log.contains("Mbit/s") && log.contains("ms min RTT"),
        "{log}"
    );
}

#[test]
fn jobs_added_while_running_are_balanced_and_verified() {
    use crate::node::core::{Event, Input, Origin};
    let mut pair = Pair::new(&config(""), RATE, 5);
    pair.start();
    pair.run_until(Duration::from_millis(60));
    assert_eq!(pair.master.core.phase(), Phase::Processing);
    let now = pair.now;
    pair.master.core.handle(now, Input::AddJobs(32));
    assert!(
        pair.run(Duration::from_secs(30)),
        "{}",
        pair.master.log_text()
    );
    let total = JOBS + 32;
    let m = &pair.master.core;
    assert_eq!(m.end(), Some(&End::Finished { verified: true }));
    assert_eq!(m.params().unwrap().jobs, total);
    assert_eq!(m.ledger().count(JobState::Returned), total);
    assert_eq!(m.jobs_done() + m.results_received(), total);
    assert!(
        pair.master
            .log_text()
            .contains("added 32 jobs [64-95]: the run has 96 jobs now")
    );
    // Each added job computed once, on one node or the other; the policy
    // moved some to the slave, which grew to hold them.
    let added = |core: &crate::node::core::NodeCore| -> Vec<u32> {
        core.timeline()
            .jobs()
            .iter()
            .filter(|s| s.kept && s.id >= JOBS)
            .map(|s| s.id)
            .collect()
    };
    let mut ids = added(m);
    let on_slave = added(&pair.slave.core);
    assert!(!on_slave.is_empty(), "{}", pair.slave.log_text());
    ids.extend(&on_slave);
    ids.sort_unstable();
    assert_eq!(ids, (JOBS..total).collect::<Vec<_>>());
    assert!(
        m.timeline()
            .jobs()
            .iter()
            .filter(|s| s.id >= JOBS)
            .all(|s| s.origin == Origin::Added)
    );
    // The added jobs are timed from when they were added: at least a
    // job's computing time (5 ms) each.
    assert!(m.jobs_came_during_run());
    let times = m.response_times();
    assert_eq!(times.len(), 32);
    assert!(times.iter().all(|&t| t >= 0.004), "{times:?}");
    // After the run it is too late, and the master says so.
    let now = pair.now;
    let m = &mut pair.master.core;
    while m.poll_event().is_some() {}
    m.handle(now, Input::AddJobs(1));
    let said: Vec<String> = std::iter::from_fn(|| m.poll_event())
        .filter_map(|e| match e {
            Event::Log { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(said, ["add 1 jobs: the run is past its processing (done)"]);
    assert_eq!(m.params().unwrap().jobs, total);
}

#[test]
fn jobs_arriving_at_both_nodes_are_computed_verified_and_timed() {
    use crate::node::core::Origin;
    let cfg = with_arrivals(r#"{ "rate_per_s": 100, "duration_s": 0.4, "seed": 9 }"#);
    let mut pair = Pair::new(&cfg, RATE, 8);
    pair.start();
    assert!(
        pair.run(Duration::from_secs(30)),
        "{}",
        pair.master.log_text()
    );
    let m = &pair.master.core;
    let schedule = m.schedule().clone();
    let total = schedule.total();
    let (slave_first, slave_times) = schedule.arrivals(Role::Slave);
    assert!(total > JOBS + 40 && !slave_times.is_empty(), "{total}");
    assert_eq!(m.end(), Some(&End::Finished { verified: true }));
    assert_eq!(m.params().unwrap().jobs, total);
    assert_eq!(m.jobs_done() + m.results_received(), total);
    // The slave knew the same schedule, and its own arrivals came to it.
    assert_eq!(pair.slave.core.schedule(), &schedule);
    let s = &pair.slave.core;
    let arrived_here = s
        .timeline()
        .jobs()
        .iter()
        .filter(|span| span.id >= slave_first && span.origin == Origin::Added)
        .count();
    assert!(arrived_here > 0, "{}", pair.slave.log_text());
    // No job computed before it arrived.
    for core in [m, s] {
        for span in core.timeline().jobs() {
            let arrival = schedule.arrival_of(span.id).unwrap();
            assert!(span.start_s + 1e-9 >= arrival, "{span:?} arrived {arrival}");
        }
    }
    // A response time per arrived job, none negative, none before the
    // job's own computing time (5 ms).
    let times = m.response_times();
    assert_eq!(times.len() as u32, total - JOBS);
    assert!(times.iter().all(|&t| t >= 0.004), "{times:?}");
}

#[test]
fn a_lost_slaves_arrivals_are_computed_by_the_master() {
    let cfg = with_arrivals(r#"{ "rate_per_s": 30, "duration_s": 2.5, "seed": 4 }"#);
    // Lost (after the 1 s peer time-out) before, during and after the
    // arrivals' 2.5 s.
    for ms in [50, 150, 1800, 3000] {
        let mut pair = Pair::new(&cfg, RATE, 2);
        pair.start();
        pair.run_until(Duration::from_millis(ms));
        pair.kill(Role::Slave);
        assert!(
            pair.run(Duration::from_secs(60)),
            "at {ms} ms\n{}",
            pair.master.log_text()
        );
        let m = &pair.master.core;
        let total = m.schedule().total();
        assert_eq!(
            m.end(),
            Some(&End::Finished { verified: true }),
            "at {ms} ms"
        );
        assert_eq!(m.jobs_done() + m.results_received(), total, "at {ms} ms");
        // The slave's arrivals still to come were taken on as they came:
        // none computed before its arrival, so every response time is at
        // least a job's computing time (5 ms).
        for span in m.timeline().jobs() {
            let arrival = m.schedule().arrival_of(span.id).unwrap();
            assert!(
                span.start_s + 1e-9 >= arrival,
                "at {ms} ms: {span:?} arrived {arrival}"
            );
        }
        let times = m.response_times();
        assert_eq!(times.len() as u32, total - JOBS);
        assert!(times.iter().all(|&t| t >= 0.004), "at {ms} ms: {times:?}");
    }
}

// Issue 23: the simulator's workers keep the real worker's throttle
// periods (on for throttle × 100 ms, then asleep to the period's end)
// rather than a smooth pace.
#[test]
fn a_modelled_worker_computes_in_its_throttle_periods() {
    let t0 = Instant::now();
    let ms = |n: u64| Duration::from_millis(n);
    let close = |a: Instant, b: Instant| {
        let d = if a > b { a - b } else { b - a };
        assert!(d < Duration::from_micros(1), "{:?} vs {:?}", a - t0, b - t0);
    };
    let fresh = super::Periods::new(t0);
    // 80 ms of work at 0.5: 50 ms, asleep to 100 ms, 30 ms more.
    let (end, after) = fresh.compute(t0, 0.080, 0.5);
    close(end.unwrap(), t0 + ms(130));
    // The next job, at once: 20 ms of this period's budget are left, then
    // asleep to 200 ms, then 10 ms more.
    let (end, _) = after.compute(t0 + ms(130), 0.030, 0.5);
    close(end.unwrap(), t0 + ms(210));
    // Full throttle is a plain pace; throttle 0 never ends.
    close(fresh.compute(t0, 0.250, 1.0).0.unwrap(), t0 + ms(250));
    assert!(fresh.compute(t0, 0.010, 0.0).0.is_none());
    // The work done by an instant, as far as the periods allow: 50 ms in
    // the first period, none asleep, 10 ms into the second.
    let (done, _) = fresh.computed(t0, t0 + ms(75), 0.5);
    assert!((done - 0.050).abs() < 1e-9, "{done}");
    let (done, _) = fresh.computed(t0, t0 + ms(110), 0.5);
    assert!((done - 0.060).abs() < 1e-9, "{done}");
    // A worker idle past its period's end starts a new one on its next job:
    // 25 ms of budget at 0.25, asleep to 600 ms, then 5 ms more.
    let (end, _) = after.compute(t0 + ms(500), 0.030, 0.25);
    close(end.unwrap(), t0 + ms(605));
}

// Issue 23 (review): a throttle change mid-job gives the same end as one
// computation; a tiny throttle ends (or never does) at once, not after a
// walk through every period.
#[test]
fn the_periods_split_anywhere_and_a_tiny_throttle_costs_nothing() {
    let t0 = Instant::now();
    let fresh = super::Periods::new(t0);
    for (work, split_ms, throttle) in [
        (0.080, 30, 0.5),
        (0.080, 75, 0.5),
        (0.300, 420, 0.3),
        (0.010, 5, 1.0),
    ] {
        let (whole, _) = fresh.compute(t0, work, throttle);
        let at = t0 + Duration::from_millis(split_ms);
        let (done, periods) = fresh.computed(t0, at, throttle);
        let (rest, _) = periods.compute(at, work - done, throttle);
        let (a, b) = (whole.unwrap(), rest.unwrap());
        let d = if a > b { a - b } else { b - a };
        assert!(
            d < Duration::from_micros(1),
            "{work} split at {split_ms} ms: {:?} vs {:?}",
            a - t0,
            b - t0
        );
    }
    // 1e-9 of a 100 ms period, 0.1 ns: ten million periods for a
    // millisecond of work, ending 0.1 ns into the last (walked one by one,
    // this took minutes; with smaller throttles, for ever).
    let (end, _) = fresh.compute(t0, 0.001, 1e-9);
    let expected = t0 + Duration::from_millis(999_999_900);
    let got = end.unwrap();
    let d = if got > expected {
        got - expected
    } else {
        expected - got
    };
    assert!(d < Duration::from_millis(200), "{:?}", got - t0);
    let (done, _) = fresh.computed(t0, expected, 1e-9);
    assert!((done - 0.001).abs() < 1e-9, "{done}");
}

// Issue 23 (review): a job computed and being handed back to its core is
// not held back by a throttle change meanwhile (its handoff used to start
// again at the change: 30 ms here, not 25).
#[test]
fn a_throttle_change_during_a_handoff_leaves_the_job_as_it_was() {
    let cfg = config("");
    let mut pair = Pair::new(&cfg, RATE, 1);
    // Every job: 5 ms computing, then 20 ms handed back.
    let measured = std::sync::Arc::new(super::MeasuredJobs {
        wait_s: vec![0.0; JOBS as usize],
        prepare_s: vec![0.0; JOBS as usize],
        compute_s: vec![0.005; JOBS as usize],
        handoff_s: vec![0.020; JOBS as usize],
    });
    pair.master.measured = Some(measured.clone());
    pair.slave.measured = Some(measured);
    pair.start();
    pair.run_to_bootstrap(Duration::from_secs(1)).unwrap();
    // Until the master's worker has its first job.
    let mut step = pair.elapsed();
    let started = loop {
        if let Some(t) = pair.master.workers[0].started {
            break t;
        }
        step += Duration::from_micros(100);
        assert!(!pair.run_until(step));
    };
    // 10 ms in: computed, 15 ms of its handoff left.
    assert!(!pair.run_until(started - pair.start_instant() + Duration::from_millis(10)));
    let now = pair.now;
    pair.master.set_throttle(now, 0.5);
    assert!(pair.run(Duration::from_secs(60)));
    assert_verified(&pair);
    let first = pair.master.core.timeline().jobs()[0];
    assert!(
        (first.end_s - first.start_s - 0.025).abs() < 1e-6,
        "{first:?}"
    );
}
