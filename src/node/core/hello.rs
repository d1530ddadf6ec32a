//! The handshake: each node's hello, repeated until the peer answers;
//! every value in it checked as a config is, and the run's fields compared
//! with this node's (nodes whose configs differ refuse the run); the
//! datagram size and compression agreed; a stray slave told to go away;
//! and, while no peer has answered, a word on what is awaited.

use std::time::{Duration, Instant};

use super::{Ending, Failure, NodeCore};
use crate::ids::Role;
use crate::protocol::{self, Hello, Message, RunParams};

/// How often a hello is repeated until the peer answers, at most: a
/// quarter of the peer time-out when that is shorter (see
/// [`NodeCore::hello_interval`]).
pub const HELLO_INTERVAL: Duration = Duration::from_millis(500);
/// How often "waiting for peer" is repeated in the log.
pub(super) const WAIT_NOTICE_INTERVAL: Duration = Duration::from_secs(5);
/// Least time between two go-aways to a stray slave.
const GO_AWAY_INTERVAL: Duration = Duration::from_millis(200);
/// A master refusing a slave's run stops once the slave has said nothing
/// for this long: three of its hellos at the longest interval, so the
/// slave has had its answer (or is gone).
const REFUSAL_QUIET: Duration = HELLO_INTERVAL.saturating_mul(3);
/// ... and at the latest this long after it refused.
const REFUSAL_PATIENCE: Duration = Duration::from_secs(10);
/// Datagrams whose tags fail, from the peer's address, that make a stream
/// (a peer with another secret sends a hello every half second at most).
const BAD_TAGS_LEAST: u64 = 3;
/// The longest gap in such a stream.
const BAD_TAGS_GAP: Duration = Duration::from_secs(2);

/// Loadbal datagrams from the peer's address whose tags failed, while they
/// keep coming: when the stream began, the count before it, and when it
/// last grew.
#[derive(Debug, Clone, Copy)]
pub(super) struct BadTags {
    since: Instant,
    before: u64,
    last: Instant,
}

impl NodeCore {
    pub(super) fn send_hello(&mut self, now: Instant) {
        // The slave's own until it joins the master's run (they are the
        // same, or it does not join).
        let params = self
            .session
            .params
            .unwrap_or_else(|| RunParams::from_config(&self.config));
        let hello = Hello {
            from_master: self.role == Role::Master,
            window_chunks: self.settings.window_chunks,
            datagram_bytes: self.config.datagram_bytes,
            compression: self.config.compression,
            params,
            nonce: self.session.nonce,
        };
        self.send_control(Message::Hello(hello));
        self.session.last_hello = Some(now);
    }

    pub(super) fn on_hello(&mut self, now: Instant, session: u64, hello: Hello) {
        if self.session.started.is_none() {
            // Not started yet: the peer keeps retrying until we are.
            return;
        }
        if hello.from_master == (self.role == Role::Master) {
            self.log(
                now,
                format!(
                    "ignored a hello from another {} at the peer's address",
                    self.role
                ),
            );
            return;
        }
        if let Err(why) = hello.validate() {
            self.count_rejection(super::Rejection::Malformed);
            self.log(
                now,
                format!(
                    "ignored a hello from the {} with bad values: {why}",
                    self.role.peer()
                ),
            );
            return;
        }
        let ours = self.session.id;
        match self.role {
            Role::Master => {
                if let Some(slave_nonce) = self.session.slave_nonce {
                    if session == 0 && hello.nonce != slave_nonce {
                        self.go_away(now, hello.nonce);
                    }
                    // Otherwise a late or repeated hello of our own slave.
                } else if session == ours {
                    self.session.slave_nonce = Some(hello.nonce);
                    self.connect(now, &hello);
                    self.begin_bootstrap(now);
                } else if session == 0 {
                    let ours = self
                        .session
                        .params
                        .unwrap_or_else(|| RunParams::from_config(&self.config));
                    let mismatch = RunParams::mismatch(&ours, &hello.params);
                    if mismatch.is_none() && self.session.refusal.is_some() {
                        // Refusing a run already: a slave that would join
                        // it would join a master about to stop.
                        return;
                    }
                    // The slave has not heard us yet: answer at once,
                    // echoing its nonce so that it knows the answer is fresh.
                    // A slave whose config differs finds the same field in
                    // the answer and refuses too.
                    self.session.nonce = hello.nonce;
                    self.send_hello(now);
                    if let Some(mismatch) = mismatch {
                        self.refuse_run(now, mismatch);
                    }
                } else {
                    self.log(
                        now,
                        format!(
                            "ignored a hello from the slave for another session ({session:#x})"
                        ),
                    );
                }
            }
            Role::Slave => {
                if ours == 0 {
                    if session == 0 || hello.nonce != self.session.nonce {
                        // The master's hellos before it heard us, or a
                        // replay of an earlier run's: wait for the answer.
                        return;
                    }
                    let own = RunParams::from_config(&self.config);
                    if let Some(mismatch) = RunParams::mismatch(&hello.params, &own) {
                        self.fail(now, Failure::ConfigMismatch(mismatch));
                        return;
                    }
                    // Validated above: the policy is known, the jobs are
                    // those the arrivals make.
                    let policy = crate::policy::NAMES
                        .get(usize::from(hello.params.policy))
                        .and_then(|name| crate::policy::by_name(name, hello.params.threshold));
                    let Some(policy) = policy else {
                        return;
                    };
                    let schedule = hello.params.schedule();
                    self.schedule = schedule;
                    self.session.id = session;
                    self.session.params = Some(hello.params);
                    self.adaptor.policy = policy;
                    self.book.begin(hello.params.jobs);
                    self.timeline = super::Timeline::new(hello.params.jobs);
                    self.timeline.set_run(self.run_info());
                    let p = hello.params;
                    self.log(
                        now,
                        format!(
                            "joined the master's run {session:#018x}: {}; policy {}, threshold {} {}",
                            self.jobs_text(p.jobs, p.elements_per_job, p.iterations),
                            self.adaptor.policy.name(), p.threshold,
                            crate::policy::threshold_unit(self.adaptor.policy.name())
                        ),
                    );
                    self.connect(now, &hello);
                    self.send_hello(now);
                } else if session == ours {
                    // Our answer was lost: repeat it.
                    self.send_hello(now);
                } else {
                    self.log(
                        now,
                        format!(
                            "ignored a hello from the master for another session ({session:#x})"
                        ),
                    );
                }
            }
        }
    }

    /// The reader's count of loadbal datagrams from the peer's address
    /// whose tags failed. They make a stream while they keep coming (gaps
    /// under [`BAD_TAGS_GAP`]); a stray one starts a stream that soon ends.
    pub(super) fn note_bad_tags(&mut self, now: Instant, total: u64) {
        let before = self.session.bad_tags;
        if total <= before || self.session.started.is_none() {
            self.session.bad_tags = total.max(before);
            return;
        }
        self.session.bad_tags = total;
        self.session.bad_tags_stream = match self.session.bad_tags_stream {
            Some(s) if now.saturating_duration_since(s.last) <= BAD_TAGS_GAP => {
                Some(BadTags { last: now, ..s })
            }
            _ => Some(BadTags {
                since: now,
                before,
                last: now,
            }),
        };
    }

    /// Whether the two secrets differ, by what came: no datagram of the
    /// peer's has passed its tag, and loadbal datagrams from its address
    /// that fail theirs keep coming (at least [`BAD_TAGS_LEAST`], the last
    /// within [`BAD_TAGS_GAP`]). Their count and for how long they came.
    fn secret_differs(&self, now: Instant) -> Option<(u64, Duration)> {
        let stream = self.session.bad_tags_stream?;
        let count = self.session.bad_tags - stream.before;
        let going = now.saturating_duration_since(stream.last) <= BAD_TAGS_GAP;
        let none_passed = self.counters.datagrams_received == 0;
        (none_passed && going && count >= BAD_TAGS_LEAST)
            .then(|| (count, now.saturating_duration_since(stream.since)))
    }

    /// Master: the slave's config differs from ours in a field of the run.
    /// Its hellos are answered a while longer (each answer tells it, and
    /// one may be lost, or held up in an emulated link), until it has gone
    /// quiet; then the master stops, naming the field.
    fn refuse_run(&mut self, now: Instant, mismatch: protocol::Mismatch) {
        if self.session.refusal.is_none() {
            self.log(
                now,
                format!(
                    "the slave's config differs in {}: refusing the run (the slave is told)",
                    mismatch.field
                ),
            );
            self.session.ending = Ending::Refusing { since: now };
            self.session.refusal = Some(mismatch);
        }
        self.session.refused_hello_at = Some(now);
    }

    /// Master, refusing the run: when to stop, the slave quiet for
    /// [`REFUSAL_QUIET`] (it has refused too) or [`REFUSAL_PATIENCE`] gone.
    pub(super) fn refusal_deadline(&self, since: Instant) -> Instant {
        let quiet = self.session.refused_hello_at.unwrap_or(since) + REFUSAL_QUIET;
        quiet.min(since + REFUSAL_PATIENCE)
    }

    /// Master: the refusal's time is up.
    pub(super) fn end_refusal(&mut self, now: Instant) {
        if let Some(mismatch) = self.session.refusal.clone() {
            self.fail(now, Failure::ConfigMismatch(mismatch));
        }
    }

    /// Master: a slave that is not the one in this run said hello (most
    /// likely it was restarted): tell it to go away, at most every
    /// [`GO_AWAY_INTERVAL`].
    fn go_away(&mut self, now: Instant, nonce: u64) {
        if self
            .session
            .last_go_away
            .is_some_and(|t| now.saturating_duration_since(t) < GO_AWAY_INTERVAL)
        {
            return;
        }
        if self.session.last_go_away.is_none() {
            let peer = self.config.node(self.role.peer()).address;
            self.log(
                now,
                format!(
                    "a slave at {peer} that is not in this run said hello (restarted?): told it to go away"
                ),
            );
        }
        self.session.last_go_away = Some(now);
        self.send_control(Message::GoAway { nonce });
    }

    /// Slave: the master is in a run with another slave.
    pub(super) fn on_go_away(&mut self, now: Instant, nonce: u64) {
        if self.role != Role::Slave
            || self.session.started.is_none()
            || self.session.connected
            || nonce != self.session.nonce
        {
            return;
        }
        let address = self.config.node(self.role.peer()).address.to_string();
        self.fail(now, Failure::Stale { address });
    }

    fn connect(&mut self, now: Instant, hello: &Hello) {
        let peer_window = hello.window_chunks;
        self.session.connected = true;
        self.session.last_heard = Some(now);
        self.endpoint.set_peer_window(peer_window);
        // Both nodes send datagrams of the smaller of the two sizes, so
        // neither's reader ever cuts one of the other's (the larger node's
        // link may not carry it, the smaller one's buffer does not hold it).
        let ours = self.config.datagram_bytes;
        let size = ours.min(hello.datagram_bytes);
        self.endpoint
            .set_chunk_bytes(size as usize - protocol::CHUNK_OVERHEAD - crate::auth::TAG_BYTES);
        if !hello.compression && self.config.compression {
            self.config.compression = false;
            self.log(
                now,
                format!(
                    "compression: the {}'s config turns it off, so neither node compresses",
                    self.role.peer()
                ),
            );
        }
        if hello.datagram_bytes != ours {
            self.log(
                now,
                format!(
                    "datagram size: the {}'s is {} bytes, this node's {ours}: both send {size}",
                    self.role.peer(),
                    hello.datagram_bytes
                ),
            );
        }
        self.adaptor.state_due = true;
        self.adaptor.next_state = Some(now + self.state_interval());
        let peer = self.config.node(self.role.peer()).address;
        self.log(
            now,
            format!(
                "connected to the {} at {peer} (its window: {peer_window} datagrams)",
                self.role.peer()
            ),
        );
    }

    /// How often the hello is repeated until the peer answers. A slave
    /// that joined counts the master's silence from then on, and hears
    /// nothing more until the master has its answer: a lost answer must be
    /// asked for again well within the slave's peer time-out (the swarm
    /// found slaves declaring a live master lost, with a time-out of
    /// 300 ms and one answer lost).
    pub fn hello_interval(&self) -> Duration {
        HELLO_INTERVAL.min(self.peer_timeout() / 4)
    }

    pub(super) fn tick_waiting(&mut self, now: Instant, started: Instant) {
        if self
            .session
            .last_hello
            .is_none_or(|t| now.saturating_duration_since(t) >= self.hello_interval())
        {
            self.send_hello(now);
        }
        let waited = now.saturating_duration_since(started);
        let peer = self.config.node(self.role.peer()).address;
        let timeout = self.connect_timeout();
        // A headless master gives up at its connect time-out. A slave waits
        // for its master as long as it takes, unless the master's address
        // has sent nothing but datagrams whose tags fail for that long (the
        // master may have started long after it).
        let bad_tags = self.secret_differs(now);
        let give_up = match (self.role, bad_tags) {
            (Role::Master, _) => waited >= timeout,
            (Role::Slave, Some((_, lasted))) => lasted >= timeout,
            (Role::Slave, None) => false,
        };
        if self.settings.headless && give_up {
            let failure = match bad_tags {
                Some((count, lasted)) => Failure::SecretMismatch {
                    peer: self.role.peer().name(),
                    address: peer.to_string(),
                    count,
                    waited_s: (lasted.as_secs_f64() * 10.0).round() / 10.0,
                },
                None => Failure::NoSlave {
                    address: peer.to_string(),
                    waited_s: timeout.as_secs_f64(),
                },
            };
            self.fail(now, failure);
            return;
        }
        if self
            .session
            .last_wait_notice
            .is_none_or(|t| now.saturating_duration_since(t) >= WAIT_NOTICE_INTERVAL)
        {
            self.session.last_wait_notice = Some(now);
            let unauthentic = match self.session.bad_tags {
                0 => String::new(),
                1 => "; a loadbal datagram from its address failed authentication".to_owned(),
                n => format!(
                    "; {n} loadbal datagrams from its address failed authentication: are both \
                     configs' `secret`s the same?"
                ),
            };
            self.log(
                now,
                format!(
                    "waiting for the {} at {peer} ({} s so far){unauthentic}",
                    self.role.peer(),
                    waited.as_secs()
                ),
            );
        }
    }
}
