//! The handshake: each node's hello, repeated until the peer answers;
//! every value in it checked as a config is, and the run's fields compared
//! with this node's (nodes whose configs differ refuse the run); the
//! datagram size and compression agreed; a stray slave told to go away;
//! and, while no peer has answered, a word on what is awaited.

use std::time::{Duration, Instant};

use super::{Failure, NodeCore};
use crate::config::Role;
use crate::protocol::{self, Hello, Message, RunParams};

/// How often a hello is repeated until the peer answers, at most: a
/// quarter of the peer time-out when that is shorter (see
/// [`NodeCore::hello_interval`]).
pub const HELLO_INTERVAL: Duration = Duration::from_millis(500);
/// How often "waiting for peer" is repeated in the log.
pub(super) const WAIT_NOTICE_INTERVAL: Duration = Duration::from_secs(5);
/// Least time between two go-aways to a stray slave.
const GO_AWAY_INTERVAL: Duration = Duration::from_millis(200);

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
                    // The slave has not heard us yet: answer at once,
                    // echoing its nonce so that it knows the answer is fresh.
                    self.session.nonce = hello.nonce;
                    self.send_hello(now);
                    let ours = self
                        .session
                        .params
                        .unwrap_or_else(|| RunParams::from_config(&self.config));
                    if let Some(mismatch) = RunParams::mismatch(&ours, &hello.params) {
                        // The answer tells the slave, which finds the same
                        // field; twice, so that one lost datagram does not
                        // leave it waiting.
                        self.send_hello(now);
                        self.fail(now, Failure::ConfigMismatch(mismatch));
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
                    let p = hello.params;
                    self.log(
                        now,
                        format!(
                            "joined the master's run {session:#018x}: {} jobs of {} doubles, {} iterations; policy {}, threshold {} {}",
                            p.jobs, p.elements_per_job, p.iterations, self.adaptor.policy.name(), p.threshold,
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
        let waited_s = self.connect_timeout().as_secs_f64();
        // A slave waits for its master as long as it takes, unless what
        // comes from the master's address has failed authentication for the
        // connect time-out (counted from the first such datagram: the
        // master may have started long after it).
        let rejected_for = self
            .session
            .unauthentic_since
            .map(|t| now.saturating_duration_since(t));
        let timed_out = match self.role {
            Role::Master => waited,
            Role::Slave => rejected_for.unwrap_or_default(),
        } >= self.connect_timeout();
        if self.settings.headless && timed_out {
            if self.session.unauthentic > 0 {
                let failure = Failure::SecretMismatch {
                    peer: self.role.peer().name(),
                    address: peer.to_string(),
                    count: self.session.unauthentic,
                    waited_s,
                };
                self.fail(now, failure);
                return;
            }
            if self.role == Role::Master {
                let failure = Failure::NoSlave {
                    address: peer.to_string(),
                    waited_s,
                };
                self.fail(now, failure);
                return;
            }
        }
        if self
            .session
            .last_wait_notice
            .is_none_or(|t| now.saturating_duration_since(t) >= WAIT_NOTICE_INTERVAL)
        {
            self.session.last_wait_notice = Some(now);
            let unauthentic = match self.session.unauthentic {
                0 => String::new(),
                n => format!(
                    "; {n} datagrams from its address failed authentication: are both configs' \
                     `secret`s the same?"
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
