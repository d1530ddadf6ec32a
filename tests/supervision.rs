//! Supervision: a panic in any one thread of a node ends that node at once
//! with exit 3 naming the thread, every other thread is joined and the
//! socket freed; its peer reclaims (a master) or stops (a slave). Issue 11:
//! before, a dead thread went unnoticed and the run hung.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use loadbal::config::{Machine, Role, parse};
use loadbal::node::{self, Command as NodeCommand, Failure, NodeOptions, Outcome};

mod common;
use common::*;

/// Runs a pair with a panic injected into `thread` once its node has
/// computed two jobs (an event of the run, after the handshake and the
/// bootstrap, well before the end: each node has dozens; issue 20: it was a
/// second of wall-clock time); returns (master, slave) outputs.
fn pair_with_panic(thread: &str) -> (std::process::Output, std::process::Output) {
    let (master, slave, _) = pair_with_panic_in(thread);
    (master, slave)
}

/// As [`pair_with_panic`], with the directory the master's report is in.
fn pair_with_panic_in(
    thread: &str,
) -> (
    std::process::Output,
    std::process::Output,
    std::path::PathBuf,
) {
    let dir = test_dir(&format!("panic-{thread}"));
    // A link emulator's thread only where a node has a link.
    let slave = if thread.ends_with("-link") {
        serde_json::json!({ "throttle": 0.5, "link": { "delay_ms": 0.5 } })
    } else {
        serde_json::json!({ "throttle": 0.5 })
    };
    let config = write_config(
        &dir,
        serde_json::json!({
            "workload": { "jobs": 64, "elements_per_job": 8192, "iterations": 30000 },
            "slave": slave,
            "peer_timeout_ms": 1000
        }),
    );
    let config = config.to_str().unwrap();
    let spawn_with = |args: &[&str], panic: bool| {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if panic {
            c.env(node::PANIC_HOOK_VAR, format!("{thread}@jobs:2"));
        }
        c.spawn().unwrap()
    };
    let in_master = thread.starts_with("master");
    let slave = spawn_with(
        &["--role", "slave", "--headless", "--config", config],
        !in_master,
    );
    let master = spawn_with(
        &[
            "--role",
            "master",
            "--headless",
            "--config",
            config,
            "--report",
            "r.json",
        ],
        in_master,
    );
    let master = wait(master, Duration::from_secs(120));
    let slave = wait(slave, Duration::from_secs(60));
    if !in_master && master.status.code() == Some(0) {
        let r = read_report(&dir.join("r.json"));
        check_verified_report(&r, 64);
        assert!(r["peer_lost_at_s"].is_number(), "{r:#}");
    }
    (master, slave, dir)
}

#[test]
fn a_panic_in_any_slave_thread_stops_the_slave_and_the_master_finishes_alone() {
    // Issue 20: the link emulator's thread was spawned outside the
    // supervision; had it died, every datagram would have been lost
    // without a word until the master called the slave lost.
    for thread in [
        "slave-worker-0",
        "slave-hwmon",
        "slave-net-rx",
        "slave-core",
        "slave-link",
    ] {
        let (master, slave) = pair_with_panic(thread);
        assert_eq!(slave.status.code(), Some(3), "{thread}: {}", stderr(&slave));
        assert!(
            stderr(&slave).contains(&format!(
                "loadbal: thread {thread} panicked; the node stopped"
            )),
            "{thread}: {}",
            stderr(&slave)
        );
        assert_eq!(
            master.status.code(),
            Some(0),
            "{thread}: {}",
            stderr(&master)
        );
    }
}

#[test]
fn a_panic_in_a_master_thread_stops_both() {
    for thread in ["master-worker-0", "master-net-rx", "master-core"] {
        let (master, slave, dir) = pair_with_panic_in(thread);
        assert_eq!(
            master.status.code(),
            Some(3),
            "{thread}: {}",
            stderr(&master)
        );
        assert!(
            stderr(&master).contains(&format!(
                "loadbal: thread {thread} panicked; the node stopped"
            )),
            "{thread}: {}",
            stderr(&master)
        );
        assert_eq!(slave.status.code(), Some(3), "{thread}: {}", stderr(&slave));
        // Issue 20: a failed run's report says what failed and where every
        // job stood; a core that died has no report to give.
        let path = dir.join("r.json");
        if thread == "master-core" {
            assert!(!path.exists(), "{thread}");
            continue;
        }
        let r = read_report(&path);
        assert_eq!(r["verified"], false, "{thread}: {r:#}");
        assert_eq!(
            r["failure"],
            format!("thread {thread} panicked; the node stopped"),
            "{thread}"
        );
        let ledger = &r["ledger"];
        let states = [
            "queued",
            "computing",
            "in_flight",
            "lent",
            "returned",
            "absent",
        ];
        let sum: u64 = states.iter().map(|s| ledger[s].as_u64().unwrap()).sum();
        assert_eq!(sum, 64, "{thread}: {r:#}");
        // The master computed two jobs before its worker panicked.
        assert!(ledger["returned"].as_u64().unwrap() >= 2, "{thread}: {r:#}");
        let missing = r["verification"]["missing_jobs"].as_array().unwrap().len() as u64;
        assert_eq!(missing, 64 - ledger["returned"].as_u64().unwrap(), "{r:#}");
    }
}

/// A node whose thread panicked has joined every thread and closed its
/// socket when `wait` returns: the same address binds at once.
#[test]
fn after_a_panic_every_thread_is_joined_and_the_port_is_free() {
    let (m, s) = free_ports();
    let text = format!(
        r#"{{"master": {{"address": "127.0.0.1:{m}"}}, "slave": {{"address": "127.0.0.1:{s}"}}}}"#
    );
    let config = parse(&text, "test")
        .unwrap()
        .validate_on(&Machine {
            memory_bytes: 0,
            logical_cpus: 1,
        })
        .unwrap();
    // (A worker checks its hook while computing, and a slave with no master
    // has nothing to compute: the pair tests above cover the workers.)
    for thread in ["slave-hwmon", "slave-net-rx", "slave-core"] {
        let options = NodeOptions {
            progress: false,
            inject_panic: Some((thread.to_owned(), node::PanicTrigger::After(Duration::ZERO))),
            ..NodeOptions::headless()
        };
        let node = node::start(Role::Slave, &config, options).unwrap();
        node.command(NodeCommand::Start);
        match node.wait() {
            Outcome::Failed {
                failure: Failure::Panicked { name },
                ..
            } => assert_eq!(name, thread),
            other => panic!("{thread}: {other:?}"),
        }
        UdpSocket::bind(("127.0.0.1", s)).unwrap_or_else(|e| panic!("{thread}: {e}"));
    }
}
