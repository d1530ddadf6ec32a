//! Unit tests of the core: bad datagrams, the handshake and bootstrap, a
//! panicked thread, the invariants.

use std::time::Duration;

use super::*;
use crate::config::{Machine, parse};
use crate::protocol::Hello;

fn core(role: Role) -> (NodeCore, Instant) {
    let config = parse(r#"{"workload": {"jobs": 8, "elements_per_job": 4}}"#, "t")
        .unwrap()
        .validate_on(&Machine {
            memory_bytes: 0,
            logical_cpus: 1,
        })
        .unwrap();
    let now = Instant::now();
    let settings = CoreSettings {
        window_chunks: 64,
        headless: true,
        random_bootstrap: false,
        memory_bytes: 0,
        work: None,
    };
    (NodeCore::new(role, &config, settings, now), now)
}

/// The slave's hello answering master `m` (session 7), as a datagram.
fn slave_hello(m: &NodeCore) -> Vec<u8> {
    let hello = Hello {
        from_master: false,
        window_chunks: 64,
        datagram_bytes: 65507,
        compression: true,
        params: m.params().unwrap(),
        nonce: 5,
    };
    datagram(7, 1, &Message::Hello(hello))
}

fn datagram(session: u64, seq: u64, message: &Message<'_>) -> Vec<u8> {
    let mut bytes = Vec::new();
    protocol::encode(&Header { session, seq }, message, &mut bytes);
    bytes
}

#[test]
fn bad_datagrams_are_counted_by_reason_and_change_nothing() {
    let (mut c, now) = core(Role::Master);
    c.handle(now, Input::Start { random: 7 });
    let mut buf = Vec::new();
    assert!(c.poll_transmit(now, &mut buf), "the first hello");
    c.handle_datagram(now, b"garbage");
    // Not of this session, and not a handshake.
    c.handle_datagram(now, &datagram(8, 1, &Message::FinishAck));
    c.handle_datagram(now, &datagram(7, 1, &Message::FinishAck));
    c.handle_datagram(now, &datagram(7, 1, &Message::FinishAck));
    let r = c.counters().rejected;
    assert_eq!((r.malformed, r.stale_session, r.replayed), (1, 1, 1));
    assert_eq!(c.counters().datagrams_received, 1);
    assert!(!c.is_connected());
    assert_eq!(c.phase(), Phase::Idle);
}

#[test]
fn the_master_hellos_until_answered_then_bootstraps() {
    let (mut m, t0) = core(Role::Master);
    m.handle(t0, Input::Start { random: 7 });
    let mut buf = Vec::new();
    assert!(m.poll_transmit(t0, &mut buf));
    assert!(matches!(protocol::decode(&buf), Ok((h, Message::Hello(_))) if h.session == 7));
    assert!(!m.poll_transmit(t0, &mut buf));
    // Repeated every HELLO_INTERVAL until the slave answers.
    let t1 = m.poll_timeout().unwrap();
    assert_eq!(t1, t0 + hello::HELLO_INTERVAL);
    m.handle_timeout(t1);
    assert!(m.poll_transmit(t1, &mut buf));
    // The slave's hello in our session connects and starts the bootstrap.
    m.handle_datagram(t1, &slave_hello(&m));
    assert!(m.is_connected());
    assert_eq!(m.phase(), Phase::Bootstrap);
    assert_eq!(m.ledger().count(JobState::Queued), 4);
    assert_eq!(m.ledger().count(JobState::InFlight), 4);
    // The master's own jobs go to its one worker, one at a time.
    let w = m.poll_work().unwrap();
    assert_eq!((w.worker, w.job.id), (0, 0));
    assert!(m.poll_work().is_none());
    assert_eq!(m.ledger().count(JobState::Computing), 1);
    m.handle(
        t1,
        Input::JobDone {
            worker: 0,
            job: w.job,
            started: t1,
            preparing: Duration::ZERO,
            computing: Duration::from_millis(1),
        },
    );
    assert_eq!(m.ledger().state(0), JobState::Returned);
    assert_eq!(m.poll_work().unwrap().job.id, 1);
}

// Issue 20: the job accounting's invariants are checked in one place;
// a broken one is named, with the node's role.
#[test]
fn a_broken_invariant_is_named() {
    let (mut m, t0) = core(Role::Master);
    m.handle(t0, Input::Start { random: 7 });
    m.handle_datagram(t0, &slave_hello(&m));
    assert_eq!(m.check_invariants(), Ok(()));
    // The master keeps four of the bootstrap's eight jobs, queued.
    m.book.lose_queue();
    assert_eq!(
        m.check_invariants(),
        Err(
            "master invariant: 4 jobs queued in the ledger and 0 stale entries, 0 in the queue"
                .to_owned()
        )
    );
}

// Issue 20: with different secrets every datagram failed its tag and both
// nodes waited without a word. A headless slave, which waits for its
// master as long as it takes, stops once the master's address has sent
// nothing but datagrams whose tags fail, for the connect time-out: counted
// from the first of them (here the master came a minute late), and only
// while they keep coming (a stray one is not a master).
#[test]
fn a_slave_names_a_secret_that_differs_once_bad_tags_have_come_for_the_connect_timeout() {
    let (mut s, t0) = core(Role::Slave);
    s.handle(t0, Input::Start { random: 3 });
    let timeout = Duration::from_millis(s.config().connect_timeout_ms);
    let half = Duration::from_millis(500);
    // A stray datagram, then nothing: the slave still waits.
    s.handle(t0 + half, Input::BadTags { total: 1 });
    s.handle_timeout(t0 + Duration::from_secs(59));
    assert_eq!(s.end(), None, "a slave waits for its master");
    // A master with another secret, a hello every half second.
    let late = t0 + Duration::from_secs(60);
    let mut total = 1;
    let mut at = late;
    while at < late + timeout {
        total += 1;
        s.handle(at, Input::BadTags { total });
        s.handle_timeout(at);
        assert_eq!(s.end(), None, "{:?}", at - late);
        at += half;
    }
    s.handle(at, Input::BadTags { total: total + 1 });
    s.handle_timeout(at);
    let Some(End::Failed(failure)) = s.end() else {
        panic!("{:?}", s.end());
    };
    assert_eq!(
        failure,
        &Failure::SecretMismatch {
            peer: "master",
            address: "127.0.0.1:7001".to_owned(),
            count: total,
            waited_s: timeout.as_secs_f64(),
        }
    );
    assert_eq!(failure.exit_code(), 2);
}

// Issue 20, review: one stray datagram from the peer's address must not
// make a headless master blame the secret; it has simply no slave.
#[test]
fn a_stray_bad_datagram_does_not_make_a_master_blame_the_secret() {
    let (mut m, t0) = core(Role::Master);
    m.handle(t0, Input::Start { random: 7 });
    m.handle(t0 + Duration::from_millis(100), Input::BadTags { total: 1 });
    let timeout = Duration::from_millis(m.config().connect_timeout_ms);
    m.handle_timeout(t0 + timeout);
    assert!(
        matches!(m.end(), Some(End::Failed(Failure::NoSlave { .. }))),
        "{:?}",
        m.end()
    );
}

#[test]
fn a_panicked_thread_fails_the_node_naming_it() {
    let (mut c, now) = core(Role::Slave);
    c.handle(now, Input::Start { random: 3 });
    c.handle(
        now,
        Input::ThreadEnded {
            name: "slave-worker-0".to_owned(),
            panicked: true,
        },
    );
    assert_eq!(
        c.end(),
        Some(&End::Failed(Failure::Panicked {
            name: "slave-worker-0".to_owned()
        }))
    );
    assert_eq!(
        Failure::Panicked {
            name: "slave-worker-0".to_owned()
        }
        .to_string(),
        "thread slave-worker-0 panicked; the node stopped"
    );
    assert!(c.poll_timeout().is_none());
    assert!(c.poll_work().is_none());
}
