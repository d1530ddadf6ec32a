//! Fuzzes everything a datagram from the network reaches: the receive
//! checks (tag, format, session, replay window), the message decoder, the
//! transfer endpoint's chunk and ack handling, and the batch decoder. The
//! input is tried both as it is (so almost always rejected by its tag) and
//! sealed with the right key (so the decoder behind the tag is reached).
//!
//! Run: `cargo +nightly fuzz run receive -- -max_total_time=300`

#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use loadbal::auth::{Key, ReplayWindow};
use loadbal::node::{Rejection, receive};
use loadbal::protocol::{self, Message, RunParams, batch};
use loadbal::transfer::{Endpoint, TransferConfig};

const OURS: u64 = 0x5e55_1011;

fuzz_target!(|data: &[u8]| {
    let key = Key::from_secret("fuzzing secret, long enough");
    let peer: SocketAddr = "127.0.0.1:7002".parse().unwrap();
    let mut window = ReplayWindow::default();
    window.accept(OURS, 5).unwrap();

    // As it came: only a forged tag could pass, so it must be refused and
    // leave the window alone.
    let before = window.clone();
    if receive(&key, peer, peer, data, OURS, &mut window).is_err() {
        assert_eq!(window, before);
    }

    // Sealed with the right key: the tag passes, the rest is judged.
    let mut sealed = data.to_vec();
    key.seal(&mut sealed);
    let before = window.clone();
    match receive(&key, peer, peer, &sealed, OURS, &mut window) {
        Err(Rejection::Unauthentic | Rejection::UnknownSource) => {
            panic!("a correctly sealed datagram from the peer was refused as unauthentic")
        }
        Err(_) => assert_eq!(window, before),
        Ok((_, message, _)) => {
            let mut endpoint = Endpoint::new(TransferConfig::new(1411, 256), 256);
            let now = Instant::now();
            match &message {
                Message::Chunk(c) => endpoint.handle_chunk(now, c),
                Message::Ack(a) => endpoint.handle_ack(now, a),
                _ => {}
            }
            while endpoint.poll_transmit(now).is_some() {}
            while endpoint.poll_event().is_some() {}
        }
    }

    // The decoders on their own.
    let _ = protocol::decode(data);
    let params = RunParams {
        jobs: 64,
        elements_per_job: 4,
        iterations: 3,
        initial: 1.0,
        addend: 0.5,
        threshold: 2,
    };
    let _ = batch::decode(data, &params, false);
    let _ = batch::decode(data, &params, true);
});
