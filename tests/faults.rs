//! Faults and attacks with real processes on loopback: a slave killed in
//! mid-run, a slave restarted while the master's run goes on, and a
//! man-in-the-middle that forwards every datagram but also injects garbage,
//! forgeries and replays.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use loadbal::auth::Key;
use loadbal::protocol::{self, Header, Message};
use serde_json::Value;

mod common;
use common::*;

/// Both nodes' secret in these tests.
const SECRET: &str = "faults test secret, 32 characters";

#[test]
fn a_killed_slave_is_reclaimed_and_a_restarted_one_is_sent_away() {
    let dir = test_dir("slave-killed");
    // Jobs long enough that the run is mid-processing when the slave dies.
    let config = write_config(
        &dir,
        serde_json::json!({
            "workload": { "jobs": 32, "elements_per_job": 4096, "iterations": 500000 },
            "peer_timeout_ms": 1000,
            "secret": SECRET
        }),
    );
    let config = config.to_str().unwrap();
    let slave_args = ["--role", "slave", "--config", config, "--headless"];
    let mut slave = spawn(&slave_args, &dir);
    let master = Watched::spawn(
        &[
            "--role",
            "master",
            "--config",
            config,
            "--headless",
            "--report",
            "r.json",
        ],
        &dir,
    );
    // Mid-processing: the bootstrap delivered, the jobs long.
    master.wait_for("phase: processing", Duration::from_secs(60));
    slave.kill().unwrap(); // SIGKILL: no goodbye
    let _ = slave.wait();
    // The same slave, restarted with the same config while the master's run
    // goes on, is told its session is stale and stops.
    let restarted = wait(spawn(&slave_args, &dir), Duration::from_secs(30));
    let err = stderr(&restarted);
    assert_eq!(restarted.status.code(), Some(3), "{err}");
    assert!(
        err.contains("is in the middle of a run with another slave (this one was probably restarted), so this slave's session is stale"),
        "{err}"
    );
    let (code, m) = master.finish(Duration::from_secs(120));
    assert_eq!(code, Some(0), "{m}");
    let r = read_report(&dir.join("r.json"));
    check_verified_report(&r, 32);
    let reclaimed = r["jobs_reclaimed"].as_u64().unwrap();
    assert!(reclaimed > 0, "{r:#}");
    assert!(reclaimed <= 16 + r["jobs_moved"]["to_slave"].as_u64().unwrap());
    assert!(r["peer_lost_at_s"].as_f64().unwrap() > 0.0, "{r:#}");
    assert_eq!(r["verification"]["duplicated_jobs"], serde_json::json!([]));
    assert!(
        m.contains("peer lost: nothing heard from the slave at"),
        "{m}"
    );
    assert!(
        m.contains(&format!("reclaimed {reclaimed} jobs lent to the slave [")),
        "{m}"
    );
    assert!(
        m.contains("that is not in this run said hello (restarted?): told it to go away"),
        "{m}"
    );
}

#[test]
fn a_slave_killed_during_the_bootstrap_leaves_the_unsent_jobs_with_the_master() {
    let dir = test_dir("slave-killed-bootstrap");
    // A slow link and no compression: each 2 MiB bootstrap batch (8 jobs)
    // takes 3.4 s, and the slave dies once the sixth is queued, before it could acknowledge
    // one. The master encodes bootstrap batches only as the endpoint has
    // room (6 at a time), so 2 of the 8 have not left.
    let config = write_config(
        &dir,
        serde_json::json!({
            "workload": { "jobs": 128, "elements_per_job": 32768, "iterations": 10 },
            "master": { "link": { "bandwidth_mbit": 5, "seed": 3 } },
            "network": { "compression": false },
            "peer_timeout_ms": 1000,
            "secret": SECRET
        }),
    );
    let config = config.to_str().unwrap();
    let mut slave = spawn(&["--role", "slave", "--config", config, "--headless"], &dir);
    let master = Watched::spawn(
        &[
            "--role",
            "master",
            "--config",
            config,
            "--headless",
            "--verbose",
            "--report",
            "r.json",
        ],
        &dir,
    );
    // Six batches handed to the endpoint, none acknowledged yet (each
    // takes 3.4 s on this link): the slave dies now.
    master.wait_for(
        "sending 8 bootstrap jobs [104-111] to slave",
        Duration::from_secs(30),
    );
    slave.kill().unwrap();
    let _ = slave.wait();
    let (code, m) = master.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{m}");
    let r = read_report(&dir.join("r.json"));
    check_verified_report(&r, 128);
    assert_eq!(r["jobs_done"]["master"], 128, "{r:#}");
    // Jobs in batches already handed to the endpoint are reclaimed; the
    // others never left, and count as reclaimed too.
    assert_eq!(r["jobs_reclaimed"], 64, "{r:#}");
    assert!(
        m.contains("reclaimed 48 jobs lent to the slave [64-111]"),
        "{m}"
    );
    assert!(
        m.contains(
            "16 bootstrap jobs [112-127] were not sent yet: the master computes them itself"
        ),
        "{m}"
    );
}

/// What the man in the middle injected at the master, by the reason the
/// master must reject it for.
#[derive(Debug, Default)]
struct Injected {
    unauthentic: u64,
    malformed: u64,
    replayed: u64,
    unknown_source: u64,
}

/// A relay between master and slave that forwards every datagram once and,
/// once it holds 100 datagrams of the slave's session, injects attacks at
/// the master: from the address the master knows as the slave's (so they
/// pass the source check) and from a stranger's.
fn relay(
    master: SocketAddr,
    to_master: UdpSocket,
    to_slave: UdpSocket,
    slave: SocketAddr,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Injected> {
    std::thread::spawn(move || {
        let timeout = Some(Duration::from_millis(5));
        to_master.set_read_timeout(timeout).unwrap();
        to_slave.set_read_timeout(timeout).unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut captured: Vec<Vec<u8>> = Vec::new();
        let mut injected = Injected::default();
        let mut attacked = false;
        let mut buf = vec![0u8; 65536];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        while !done.load(Ordering::Relaxed) {
            // Master to slave, as is: the master sends to `to_master`, the
            // slave hears it from `to_slave`.
            while let Ok((n, _)) = to_master.recv_from(&mut buf) {
                to_slave.send_to(&buf[..n], slave).unwrap();
            }
            // Slave to master, as is, keeping copies.
            while let Ok((n, _)) = to_slave.recv_from(&mut buf) {
                to_master.send_to(&buf[..n], master).unwrap();
                // Datagrams of the run's session (not the opening hellos,
                // which the master answers rather than rejects).
                let in_session = n > 24 && buf[8..16] != [0; 8];
                if captured.len() < 100 && in_session {
                    captured.push(buf[..n].to_vec());
                }
            }
            // Forty are enough to draw the attack from, and come early in
            // any run: on a machine whose kernel computes this workload in
            // 4 s, the slave sent fewer than 100 in session before the run
            // ended, and the attack never ran.
            if attacked || captured.len() < 40 {
                continue;
            }
            attacked = true;
            let wrong = Key::from_secret("not the secret, but as long");
            for (i, real) in captured.iter().cycle().enumerate().take(200) {
                let send = |bytes: &[u8]| {
                    to_master.send_to(bytes, master).unwrap();
                };
                match i % 8 {
                    // Random bytes.
                    0 => {
                        let len = (next() % 1500) as usize;
                        let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                        send(&junk);
                        injected.unauthentic += 1;
                    }
                    // A truncated copy.
                    1 => {
                        send(&real[..(next() as usize) % real.len()]);
                        injected.unauthentic += 1;
                    }
                    // A copy with one bit flipped.
                    2 => {
                        let mut bad = real.clone();
                        let bit = (next() as usize) % (bad.len() * 8);
                        bad[bit / 8] ^= 1 << (bit % 8);
                        send(&bad);
                        injected.unauthentic += 1;
                    }
                    // The same message, tagged with a wrong secret.
                    3 => {
                        let body = &real[..real.len() - loadbal::auth::TAG_BYTES];
                        let mut forged = body.to_vec();
                        wrong.seal(&mut forged);
                        send(&forged);
                        injected.unauthentic += 1;
                    }
                    // A forged abort with the public demo key.
                    4 => {
                        let mut forged = Vec::new();
                        let (header, _) =
                            protocol::decode(&real[..real.len() - loadbal::auth::TAG_BYTES])
                                .unwrap();
                        let header = Header {
                            seq: header.seq + 1_000_000,
                            ..header
                        };
                        let abort = Message::Abort { reason: "forged" };
                        protocol::encode(&header, &abort, &mut forged);
                        Key::demo().seal(&mut forged);
                        send(&forged);
                        injected.unauthentic += 1;
                    }
                    // A captured datagram, replayed.
                    5 | 6 => {
                        send(real);
                        injected.replayed += 1;
                    }
                    // A real datagram from a stranger.
                    _ => {
                        stranger.send_to(real, master).unwrap();
                        injected.unknown_source += 1;
                    }
                }
                if i % 20 == 19 {
                    // Spread the burst so no socket buffer overflows.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            // A correctly tagged datagram that is not a loadbal message.
            let secret = Key::from_secret(SECRET);
            let mut junk = b"LDBL but nothing after".to_vec();
            secret.seal(&mut junk);
            to_master.send_to(&junk, master).unwrap();
            injected.malformed += 1;
        }
        injected
    })
}

#[test]
fn forged_replayed_and_garbage_datagrams_change_nothing() {
    let dir = test_dir("attacks");
    // The relay's two sockets stand between the nodes: the master's config
    // names one as the slave, the slave's config names the other as the
    // master.
    let to_master = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to_slave = UdpSocket::bind("127.0.0.1:0").unwrap();
    let workload =
        serde_json::json!({ "jobs": 64, "elements_per_job": 4096, "iterations": 100000 });
    // Two ports chosen together, so they differ from each other and from
    // the relay's (which stay bound).
    let (master_port, slave_port) = free_ports();
    let master_addr: SocketAddr = format!("127.0.0.1:{master_port}").parse().unwrap();
    let slave_port: SocketAddr = format!("127.0.0.1:{slave_port}").parse().unwrap();
    write_config(
        &dir,
        serde_json::json!({
            "master": { "address": master_addr.to_string() },
            "slave": { "address": to_master.local_addr().unwrap().to_string() },
            "workload": workload,
            "secret": SECRET
        }),
    );
    let slave_config = serde_json::json!({
        "master": { "address": to_slave.local_addr().unwrap().to_string() },
        "slave": { "address": slave_port.to_string() },
        "workload": workload,
        "policy": { "state_interval_ms": 50 },
        "peer_timeout_ms": 10000,
        "secret": SECRET
    });
    std::fs::write(dir.join("slave.json"), slave_config.to_string()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let relay = relay(master_addr, to_master, to_slave, slave_port, done.clone());
    let (master, _) = run_pair(
        &dir,
        &["--role", "slave", "--config", "slave.json", "--headless"],
        &[
            "--role",
            "master",
            "--config",
            "config.json",
            "--headless",
            "--report",
            "r.json",
        ],
    );
    done.store(true, Ordering::Relaxed);
    let injected = relay.join().unwrap();
    let r = read_report(&dir.join("r.json"));
    check_verified_report(&r, 64);
    assert_eq!(r["jobs_reclaimed"], 0);
    assert_eq!(r["peer_lost_at_s"], Value::Null);
    let by = &r["network"]["rejected_by_reason"];
    assert!(injected.replayed > 0, "the attack never ran: {r:#}");
    assert_eq!(by["unauthentic"], injected.unauthentic, "{r:#}");
    assert_eq!(by["malformed"], injected.malformed, "{r:#}");
    assert_eq!(by["replayed"], injected.replayed, "{r:#}");
    assert_eq!(by["unknown_source"], injected.unknown_source, "{r:#}");
    let sum: u64 = by
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(network(&r, "rejected"), sum, "{r:#}");
    let m = stderr(&master);
    assert!(!m.contains("forged"), "{m}");
    assert!(!m.contains("public demo key"), "{m}");
}

#[test]
fn keygen_prints_a_fresh_64_digit_secret() {
    let dir = test_dir("keygen");
    let a = run(&["keygen"], &dir);
    let b = run(&["keygen"], &dir);
    assert_eq!(a.status.code(), Some(0));
    let secret = String::from_utf8(a.stdout.clone()).unwrap();
    let secret = secret.trim_end();
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(secret, String::from_utf8(b.stdout).unwrap().trim_end());
    assert!(stderr(&a).contains(&format!("\"secret\": \"{secret}\"")));
}

#[test]
fn without_a_secret_loopback_runs_say_the_link_is_not_secret() {
    let dir = test_dir("demo-key");
    let config = write_config(&dir, serde_json::json!({}));
    let out = run(
        &["demo", "--headless", "--config", config.to_str().unwrap()],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains(
            "no \"secret\" in the config: the datagrams are tagged with loadbal's public demo key \
             (allowed on loopback only), so the link is not secret"
        ),
        "{}",
        stderr(&out)
    );
}
