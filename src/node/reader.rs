//! The socket-reader thread: the only thread that receives. It drops
//! datagrams from anyone but the configured peer, drops and counts malformed
//! ones and those of another session, marks the peer as heard, and routes
//! each message to the inbox of the thread that owns it. No thread waits on
//! two sources: this one turns the socket into inbox messages.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::StateMsg;
use super::control::ControlMsg;
use super::shared::Shared;
use super::transfer::TransferMsg;
use crate::protocol::{self, Message};

/// The largest UDP payload: a receive buffer this size never truncates.
const MAX_DATAGRAM: usize = 65536;

/// Runs the reader until the node stops.
pub fn run(
    shared: Arc<Shared>,
    transfer: Sender<TransferMsg>,
    state: Sender<StateMsg>,
    control: Sender<ControlMsg>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
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
        let bytes = &buf[..len];
        let (header, message) = match protocol::decode(bytes) {
            Ok(decoded) => decoded,
            Err(_) => {
                stats.rejected_malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let session = shared.session.load(Ordering::Relaxed);
        let is_hello = matches!(message, Message::Hello(_));
        if !is_hello && (session == 0 || header.session != session) {
            stats.rejected_stale.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        stats.datagrams_received.fetch_add(1, Ordering::Relaxed);
        stats
            .bytes_received
            .fetch_add(len as u64, Ordering::Relaxed);
        shared.mark_heard();
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
