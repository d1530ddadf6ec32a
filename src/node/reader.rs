//! The socket-reader thread: the only thread that receives. In order, it
//! drops datagrams from anyone but the configured peer, those whose tag is
//! wrong (before reading a byte of them), malformed ones, those of another
//! session and replays; each is counted by reason and changes nothing else.
//! An accepted datagram of the current session marks the peer as heard, and
//! every accepted message goes to the inbox of the thread that owns it. No
//! thread waits on two sources: this one turns the socket into inbox
//! messages.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::StateMsg;
use super::control::ControlMsg;
use super::shared::Shared;
use super::transfer::TransferMsg;
use crate::auth::ReplayWindow;
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
    state: Sender<StateMsg>,
    control: Sender<ControlMsg>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut replay = ReplayWindow::default();
    let stats = &shared.transport.stats;
    let peer = shared.transport.peer();
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
        if from != peer {
            stats
                .rejected_unknown_source
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // Counted by the transport when the tag is wrong.
        let Some(bytes) = shared.transport.open(&buf[..len]) else {
            continue;
        };
        let (header, message) = match protocol::decode(bytes) {
            Ok(decoded) => decoded,
            Err(_) => {
                stats.rejected_malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let ours = shared.session.load(Ordering::Relaxed);
        match admit(ours, &header, &message, &mut replay) {
            Admission::Current => shared.mark_heard(),
            Admission::Handshake => {}
            Admission::Stale => {
                stats.rejected_stale.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Admission::Replayed => {
                stats.rejected_replayed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        stats.datagrams_received.fetch_add(1, Ordering::Relaxed);
        stats
            .bytes_received
            .fetch_add(len as u64, Ordering::Relaxed);
        let routed = match message {
            Message::Chunk(_) | Message::Ack(_) => {
                transfer.send(TransferMsg::Datagram(bytes.to_vec())).is_ok()
            }
            Message::State(s) => state
                .send(StateMsg::Peer {
                    seq: header.seq,
                    state: s,
                })
                .is_ok(),
            Message::Hello(hello) => control
                .send(ControlMsg::Hello {
                    session: header.session,
                    hello,
                })
                .is_ok(),
            Message::GoAway { nonce } => control.send(ControlMsg::GoAway { nonce }).is_ok(),
            Message::Finish { verified } => control.send(ControlMsg::Finish { verified }).is_ok(),
            Message::FinishAck => control.send(ControlMsg::FinishAck).is_ok(),
            Message::Abort { reason } => control
                .send(ControlMsg::PeerAborted(reason.to_owned()))
                .is_ok(),
        };
        if !routed {
            // An inbox is gone: the node is shutting down.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
