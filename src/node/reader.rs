//! The socket-reader spoke, the only thread that receives, and the pure
//! receive checks. The reader drops datagrams from anyone but the configured
//! peer and those whose tag is wrong (before reading a byte of them),
//! counting each; it hands the rest, tag removed, to the core's inbox in the
//! buffer they were received into, which comes back for reuse. A full inbox
//! drops the datagram and counts it, as a full socket buffer would. The
//! core then judges the format, the session and replays ([`admit`]).
//! [`receive`] is the whole check in one pure function, for tests and the
//! fuzzer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use super::Msg;
use super::core::{Admission, Input, Rejection, admit};
use crate::auth::{Key, ReplayWindow, TAG_BYTES};
use crate::protocol::{self, Header, Message};
use crate::transport::Transport;

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
    let bytes = open(key, peer, from, sealed)?;
    let (header, message) = protocol::decode(bytes).map_err(|_| Rejection::Malformed)?;
    match admit(ours, &header, &message, replay) {
        Admission::Current => Ok((header, message, true)),
        Admission::Handshake => Ok((header, message, false)),
        Admission::Stale => Err(Rejection::Stale),
        Admission::Replayed => Err(Rejection::Replayed),
    }
}

/// Checks a datagram's source and tag; the body (tag removed) if both
/// are right.
pub fn open<'a>(
    key: &Key,
    peer: SocketAddr,
    from: SocketAddr,
    sealed: &'a [u8],
) -> Result<&'a [u8], Rejection> {
    if from != peer {
        return Err(Rejection::UnknownSource);
    }
    key.open(sealed).ok_or(Rejection::Unauthentic)
}

/// Runs the reader until `stop` is dropped or the core's inbox closes.
/// Receive buffers are the datagram size in use, and come back through
/// `recycled` once the core has handled them.
pub fn run(
    transport: &Arc<Transport>,
    inbox: &Sender<Msg>,
    recycled: &Receiver<Vec<u8>>,
    stop: &Receiver<()>,
    datagram_bytes: usize,
    mut check: impl FnMut(),
) {
    // One byte more than the largest datagram, so one too long shows as
    // such (and fails its tag) instead of being cut to fit.
    let size = datagram_bytes + 1;
    let fresh = || recycled.try_recv().unwrap_or_else(|_| vec![0u8; size]);
    let mut buf = fresh();
    let stats = &transport.stats;
    let peer = transport.peer();
    let key = transport.key();
    // Loadbal datagrams whose tags failed, and when the core last heard
    // their count.
    let mut bad_tags = 0u64;
    let mut told: Option<std::time::Instant> = None;
    loop {
        if matches!(stop.try_recv(), Err(TryRecvError::Disconnected)) {
            return;
        }
        check();
        let (len, from) = match transport.recv(&mut buf) {
            Ok(Some(got)) => got,
            Ok(None) => continue,
            Err(_) => {
                // ICMP errors and the like: counted, and the transfer
                // layer recovers whatever was lost.
                stats.receive_errors.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if let Err(why) = open(key, peer, from, &buf[..len]) {
            if why == Rejection::UnknownSource {
                stats
                    .rejected_unknown_source
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            stats.rejected_unauthentic.fetch_add(1, Ordering::Relaxed);
            // A whole datagram with loadbal's magic whose tag failed is what
            // a peer with another secret sends: the core names that. (One
            // cut short by the buffer, or without the magic, is not.)
            if len > datagram_bytes || !buf[..len].starts_with(&protocol::MAGIC) {
                continue;
            }
            bad_tags += 1;
            // Told at most four times a second: a flood cannot fill its inbox.
            let now = std::time::Instant::now();
            if told.is_none_or(|t| now.duration_since(t) >= Duration::from_millis(250)) {
                told = Some(now);
                let total = bad_tags;
                if let Err(TrySendError::Disconnected(_)) =
                    inbox.try_send(Msg::Input(Input::BadTags { total }))
                {
                    return;
                }
            }
            continue;
        }
        stats.datagrams_received.fetch_add(1, Ordering::Relaxed);
        stats
            .bytes_received
            .fetch_add(len as u64, Ordering::Relaxed);
        let datagram = std::mem::replace(&mut buf, fresh());
        match inbox.try_send(Msg::Datagram {
            buf: datagram,
            len: len - TAG_BYTES,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(Msg::Datagram { buf: back, .. })) => {
                stats.inbox_dropped.fetch_add(1, Ordering::Relaxed);
                buf = back;
            }
            Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => return,
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
            policy: 0,
            present: 64,
            arrivals: None,
            kind: 0,
            spec: Default::default(),
        };
        vec![
            Message::Hello(protocol::Hello {
                from_master: true,
                window_chunks: 64,
                datagram_bytes: 1472,
                compression: true,
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
                capacity: 7.0,
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
                refused: None,
                sack: &SACK,
            }),
            Message::Finish { verified: true },
            Message::FinishAck,
            Message::Abort { reason: "why" },
            Message::GoAway { nonce: 99 },
            Message::Request { jobs: 4 },
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
}
