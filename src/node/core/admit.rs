//! Whether an authentic, well-formed datagram belongs to this node's run:
//! the session and the replay window. Pure; the core calls it for every
//! datagram, the fuzzer and the reader's property test through
//! [`crate::node::receive`].

use crate::auth::ReplayWindow;
use crate::protocol::{Header, Message};

/// Whether an authentic, well-formed datagram belongs to this node's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A datagram of the current session, new: the peer is alive.
    Current,
    /// A handshake message outside the current session (a slave's hello
    /// before it has joined, the master's hello to a slave that has not):
    /// passed on without marking the peer heard; the session judges it.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol;

    fn hello() -> Message<'static> {
        Message::Hello(protocol::Hello {
            from_master: false,
            window_chunks: 8,
            datagram_bytes: 1472,
            compression: true,
            params: crate::sim::swarm::SMALL_PARAMS,
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
