//! The socket-reader thread: the only thread that receives. In order, it
//! drops datagrams from anyone but the configured peer, those whose tag is
//! wrong (before reading a byte of them), malformed ones, those of another
//! session and replays; each is counted by reason and changes nothing else.
//! An accepted datagram of the current session marks the peer as heard, and
//! every accepted message goes to the inbox of the thread that owns it. No
//! thread waits on two sources: this one turns the socket into inbox
//! messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::StateMsg;
use super::control::ControlMsg;
use super::shared::Shared;
use super::transfer::TransferMsg;
use crate::auth::{Key, ReplayWindow};
use crate::protocol::{self, Header, Message};

/// The largest UDP payload: a receive buffer this size never truncates.
const MAX_DATAGRAM: usize = 65536;

/// Whether an authentic, well-formed datagram belongs to this node's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A datagram of the current session, new: the peer is alive.
    Current,
    /// A handshake message outside the current session (a slave's hello
    /// before it has joined, the master's hello to a slave that has not):
    /// passed on without marking the peer heard; the control thread judges it.
    Handshake,
    /// Of another session, or a message that needs one.
    Stale,
    /// Seen before, or too old to tell.
    Replayed,
}

/// Why a datagram was dropped, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// From an address other than the peer's.
    UnknownSource,
    /// Its tag is missing or wrong.
    Unauthentic,
    /// Authentic but not a well-formed message.
    Malformed,
    /// Of another session, or a message that needs one.
    Stale,
    /// Seen before, or too old to tell.
    Replayed,
}

/// An accepted datagram: its header, its message, and whether it belongs
/// to the current session (which marks the peer as heard).
pub type Accepted<'a> = (Header, Message<'a>, bool);

/// The whole receive check of one datagram, pure: the source, the tag
/// (before any byte is parsed), the format, the session and the replay
/// window, which changes only when the datagram is accepted in the current
/// session.
pub fn receive<'a>(
    key: &Key,
    peer: SocketAddr,
    from: SocketAddr,
    sealed: &'a [u8],
    ours: u64,
    replay: &mut ReplayWindow,
) -> Result<Accepted<'a>, Rejection> {
    if from != peer {
        return Err(Rejection::UnknownSource);
    }
    let bytes = key.open(sealed).ok_or(Rejection::Unauthentic)?;
    let (header, message) = protocol::decode(bytes).map_err(|_| Rejection::Malformed)?;
    match admit(ours, &header, &message, replay) {
        Admission::Current => Ok((header, message, true)),
        Admission::Handshake => Ok((header, message, false)),
        Admission::Stale => Err(Rejection::Stale),
        Admission::Replayed => Err(Rejection::Replayed),
    }
}

/// Decides whether a datagram is admitted; records its sequence number in
/// `replay` only when it is [`Admission::Current`].
pub fn admit(
    ours: u64,
    header: &Header,
    message: &Message<'_>,
    replay: &mut ReplayWindow,
) -> Admission {
    if ours != 0 && header.session == ours {
        return match replay.accept(ours, header.seq) {
            Ok(()) => Admission::Current,
            Err(_) => Admission::Replayed,
        };
    }
    let handshake = matches!(message, Message::Hello(_) | Message::GoAway { .. });
    if handshake && (header.session == 0 || ours == 0) {
        Admission::Handshake
    } else {
        Admission::Stale
    }
}

/// Runs the reader until the node stops.
pub fn run(
    shared: Arc<Shared>,
    transfer: Sender<TransferMsg>,
    recycled: Receiver<Vec<u8>>,
    state: Sender<StateMsg>,
    control: Sender<ControlMsg>,
) {
    // A chunk or ack goes to the transfer manager in the buffer it was
    // received into, which comes back through `recycled` once handled: no
    // copy, and no fresh memory per datagram.
    let fresh = || {
        recycled
            .try_recv()
            .unwrap_or_else(|_| vec![0u8; MAX_DATAGRAM])
    };
    let mut buf = fresh();
    let mut replay = ReplayWindow::default();
    let stats = &shared.transport.stats;
    let peer = shared.transport.peer();
    let key = shared.transport.key();
    while !shared.stopping() {
        let (len, from) = match shared.transport.recv(&mut buf) {
            Ok(Some(got)) => got,
            Ok(None) => continue,
            Err(e) => {
                // ICMP errors and the like: note them and carry on; the
                // transfer layer recovers whatever was lost.
                shared.log.push(format!("socket receive error: {e}"));
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let ours = shared.session.load(Ordering::Relaxed);
        let (header, message, current) =
            match receive(key, peer, from, &buf[..len], ours, &mut replay) {
                Ok(accepted) => accepted,
                Err(why) => {
                    let counter = match why {
                        Rejection::UnknownSource => &stats.rejected_unknown_source,
                        Rejection::Unauthentic => &stats.rejected_unauthentic,
                        Rejection::Malformed => &stats.rejected_malformed,
                        Rejection::Stale => &stats.rejected_stale,
                        Rejection::Replayed => &stats.rejected_replayed,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
        if current {
            shared.mark_heard();
        }
        stats.datagrams_received.fetch_add(1, Ordering::Relaxed);
        stats
            .bytes_received
            .fetch_add(len as u64, Ordering::Relaxed);
        let routed = match message {
            // Sent below, once nothing borrows the buffer.
            Message::Chunk(_) | Message::Ack(_) => None,
            Message::State(s) => Some(
                state
                    .send(StateMsg::Peer {
                        seq: header.seq,
                        state: s,
                    })
                    .is_ok(),
            ),
            Message::Hello(hello) => Some(
                control
                    .send(ControlMsg::Hello {
                        session: header.session,
                        hello,
                    })
                    .is_ok(),
            ),
            Message::GoAway { nonce } => Some(control.send(ControlMsg::GoAway { nonce }).is_ok()),
            Message::Finish { verified } => {
                Some(control.send(ControlMsg::Finish { verified }).is_ok())
            }
            Message::FinishAck => Some(control.send(ControlMsg::FinishAck).is_ok()),
            Message::Abort { reason } => Some(
                control
                    .send(ControlMsg::PeerAborted(reason.to_owned()))
                    .is_ok(),
            ),
        };
        let routed = routed.unwrap_or_else(|| {
            // The opened datagram: everything but the tag.
            let datagram = std::mem::replace(&mut buf, fresh());
            transfer
                .send(TransferMsg::Datagram {
                    buf: datagram,
                    len: len - crate::auth::TAG_BYTES,
                })
                .is_ok()
        });
        if !routed {
            // An inbox is gone: the node is shutting down.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Ack, BatchKind, Chunk, Phase, RunParams, State};
    use crate::transfer::{Endpoint, TransferConfig};
    use proptest::prelude::*;

    const OURS: u64 = 0x5e55_1011;
    const PAYLOAD: [u8; 40] = [0xab; 40];
    const SACK: [u8; 2] = [0b101, 1];

    /// One message of every kind.
    fn samples() -> Vec<Message<'static>> {
        let params = RunParams {
            jobs: 64,
            elements_per_job: 5,
            iterations: 3,
            initial: 1.0,
            addend: 0.5,
            threshold: 2,
        };
        vec![
            Message::Hello(protocol::Hello {
                from_master: true,
                window_chunks: 64,
                datagram_bytes: 1472,
                params,
                nonce: 99,
            }),
            Message::State(State {
                phase: Phase::Processing,
                queue: 3,
                jobs_done: 1,
                jobs_received: 2,
                in_flight: 0,
                busy: 1,
                workers: 1,
                throttle: 0.5,
                cpu_system: 50.0,
                cpu_process: 25.0,
                rate: 3.5,
            }),
            Message::Chunk(Chunk {
                transfer: 4,
                kind: BatchKind::Jobs,
                index: 1,
                count: 3,
                chunk_bytes: 40,
                total_bytes: 100,
                payload: &PAYLOAD,
            }),
            Message::Ack(Ack {
                transfer: 4,
                next: 1,
                window: 64,
                complete: false,
                sack: &SACK,
            }),
            Message::Finish { verified: true },
            Message::FinishAck,
            Message::Abort { reason: "why" },
            Message::GoAway { nonce: 99 },
        ]
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:7002".parse().unwrap()
    }

    /// A window that has seen some of the current session's numbers.
    fn used_window() -> ReplayWindow {
        let mut w = ReplayWindow::default();
        for seq in (1..3000).step_by(3) {
            w.accept(OURS, seq).unwrap();
        }
        w
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 100_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// 100,000 datagrams, real ones and mutations of them: whatever
        /// `receive` rejects leaves the replay window as it was; what it
        /// accepts in the current session is accepted once only; nothing
        /// panics; and an accepted chunk or ack never grows an endpoint
        /// past its caps.
        #[test]
        fn a_rejected_datagram_changes_nothing(
            sample in 0usize..8,
            session in prop_oneof![Just(0u64), Just(OURS), any::<u64>()],
            seq in 1u64..4000,
            key_choice in 0u8..3,
            mutation in 0u8..7,
            at in any::<usize>(),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
            from_stranger in proptest::bool::weighted(0.05),
        ) {
            let key = Key::from_secret("property test secret");
            let mut bytes = Vec::new();
            protocol::encode(&Header { session, seq }, &samples()[sample], &mut bytes);
            match key_choice {
                0 => key.seal(&mut bytes),
                1 => Key::demo().seal(&mut bytes),
                _ => {}
            }
            let original = bytes.clone();
            let mut resealed = false;
            match mutation {
                0 => {}
                1 => {
                    let bit = at % (bytes.len() * 8);
                    bytes[bit / 8] ^= 1 << (bit % 8);
                }
                2 => bytes.truncate(at % bytes.len()),
                3 => bytes.extend_from_slice(&junk),
                4 => bytes = junk.clone(),
                // Authentic but damaged: the body changed, then sealed
                // with the right key (what only a key holder could send).
                5 => {
                    let body = bytes.len() - crate::auth::TAG_BYTES.min(bytes.len());
                    bytes.truncate(body);
                    if !bytes.is_empty() {
                        let i = at % bytes.len();
                        bytes[i] = bytes[i].wrapping_add(1 + (at >> 32) as u8 % 255);
                    }
                    key.seal(&mut bytes);
                    resealed = true;
                }
                _ => {
                    let body = bytes.len() - crate::auth::TAG_BYTES.min(bytes.len());
                    bytes.truncate(body);
                    bytes.truncate(at % (bytes.len() + 1));
                    key.seal(&mut bytes);
                    resealed = true;
                }
            }
            let from = if from_stranger { "127.0.0.1:9".parse().unwrap() } else { peer() };
            let mut window = used_window();
            let before = window.clone();
            let result = receive(&key, peer(), from, &bytes, OURS, &mut window);
            let tampered = !resealed && (key_choice != 0 || bytes != original);
            match result {
                Err(why) => {
                    prop_assert_eq!(&window, &before);
                    if from_stranger {
                        prop_assert_eq!(why, Rejection::UnknownSource);
                    } else if tampered {
                        prop_assert_eq!(why, Rejection::Unauthentic);
                    }
                }
                Ok((header, message, current)) => {
                    prop_assert!(!from_stranger && !tampered);
                    if current {
                        prop_assert_eq!(header.session, OURS);
                        prop_assert!(before.clone().accept(OURS, header.seq).is_ok());
                        prop_assert_eq!(
                            window.clone().accept(OURS, header.seq),
                            Err(crate::auth::Replay::Repeated)
                        );
                    } else {
                        prop_assert_eq!(&window, &before);
                        let handshake =
                            matches!(message, Message::Hello(_) | Message::GoAway { .. });
                        prop_assert!(handshake, "{}", message.name());
                    }
                    let mut endpoint = Endpoint::new(TransferConfig::new(40, 64), 64);
                    let cap = 2 * TransferConfig::new(40, 64).max_batch_bytes;
                    let now = std::time::Instant::now();
                    match &message {
                        Message::Chunk(c) => endpoint.handle_chunk(now, c),
                        Message::Ack(a) => endpoint.handle_ack(now, a),
                        _ => {}
                    }
                    prop_assert!(endpoint.inbound_usage().1 <= cap);
                    prop_assert!(endpoint.poll_event().is_none());
                }
            }
        }
    }

    fn hello() -> Message<'static> {
        Message::Hello(protocol::Hello {
            from_master: false,
            window_chunks: 8,
            datagram_bytes: 1472,
            params: protocol::RunParams {
                jobs: 0,
                elements_per_job: 0,
                iterations: 0,
                initial: 0.0,
                addend: 0.0,
                threshold: 0,
            },
            nonce: 5,
        })
    }

    fn h(session: u64, seq: u64) -> Header {
        Header { session, seq }
    }

    #[test]
    fn current_session_datagrams_are_admitted_once() {
        let mut w = ReplayWindow::default();
        let m = Message::FinishAck;
        assert_eq!(admit(7, &h(7, 1), &m, &mut w), Admission::Current);
        assert_eq!(admit(7, &h(7, 1), &m, &mut w), Admission::Replayed);
        assert_eq!(admit(7, &h(7, 2), &hello(), &mut w), Admission::Current);
    }

    #[test]
    fn other_sessions_pass_only_as_handshakes() {
        let mut w = ReplayWindow::default();
        let m = Message::FinishAck;
        // A non-handshake message needs the current session.
        assert_eq!(admit(7, &h(8, 1), &m, &mut w), Admission::Stale);
        assert_eq!(admit(7, &h(0, 1), &m, &mut w), Admission::Stale);
        assert_eq!(admit(0, &h(8, 1), &m, &mut w), Admission::Stale);
        assert_eq!(admit(0, &h(0, 1), &m, &mut w), Admission::Stale);
        // A slave's hello before it joined; the master's before we did.
        assert_eq!(admit(7, &h(0, 1), &hello(), &mut w), Admission::Handshake);
        assert_eq!(admit(0, &h(9, 1), &hello(), &mut w), Admission::Handshake);
        let go = Message::GoAway { nonce: 5 };
        assert_eq!(admit(0, &h(9, 2), &go, &mut w), Admission::Handshake);
        // A hello of another nonzero session while we have one is stale.
        assert_eq!(admit(7, &h(9, 1), &hello(), &mut w), Admission::Stale);
        // None of these touched the window.
        assert_eq!(admit(7, &h(7, 1), &m, &mut w), Admission::Current);
    }
}
