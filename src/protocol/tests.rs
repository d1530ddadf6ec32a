use super::*;
use proptest::prelude::*;

fn params() -> RunParams {
    RunParams {
        jobs: 1024,
        elements_per_job: 32768,
        iterations: 1000,
        initial: 1.111111,
        addend: 1.111111,
        threshold: 30,
        policy: 3,
        present: 1024,
        arrivals: None,
        kind: 0,
        spec: Default::default(),
    }
}

const SACK: [u8; 3] = [0b1010_0001, 0, 0xff];
const PAYLOAD: [u8; 5] = [9, 8, 7, 6, 5];

fn samples() -> Vec<Message<'static>> {
    vec![
        Message::Hello(Hello {
            from_master: true,
            window_chunks: 2048,
            datagram_bytes: 1472,
            compression: true,
            params: params(),
            nonce: 0x0123_4567_89ab_cdef,
        }),
        Message::State(State {
            phase: Phase::Processing,
            queue: 480,
            jobs_done: 32,
            jobs_received: 512,
            in_flight: 15,
            busy: 1,
            workers: 2,
            throttle: 0.5,
            cpu_system: 97.5,
            cpu_process: 51.0,
            rate: 12.25,
            capacity: 700.5,
        }),
        Message::Chunk(Chunk {
            transfer: 3,
            kind: BatchKind::Results,
            index: 2,
            count: 3,
            chunk_bytes: 10,
            total_bytes: 25,
            payload: &PAYLOAD,
        }),
        Message::Ack(Ack {
            transfer: 3,
            next: 17,
            window: 900,
            complete: false,
            refused: None,
            sack: &SACK,
        }),
        Message::Finish { verified: true },
        Message::FinishAck,
        Message::Bye,
        Message::Request { jobs: 17 },
        Message::Abort {
            reason: "master stopped by the user",
        },
        Message::GoAway { nonce: 77 },
        Message::Ack(Ack {
            transfer: 9,
            next: 0,
            window: 900,
            complete: true,
            refused: Some(crate::protocol::RefuseReason::Malformed),
            sack: &[],
        }),
    ]
}

fn header() -> Header {
    Header {
        session: 0xdead_beef_0123_4567,
        seq: 42,
    }
}

#[test]
fn every_message_round_trips() {
    let mut buf = Vec::new();
    for message in samples() {
        encode(&header(), &message, &mut buf);
        let (h, back) = decode(&buf).unwrap();
        assert_eq!(h, header());
        assert_eq!(back, message);
    }
}

#[test]
fn every_truncated_prefix_is_an_error() {
    let mut buf = Vec::new();
    for message in samples() {
        encode(&header(), &message, &mut buf);
        for len in 0..buf.len() {
            let result = decode(&buf[..len]);
            assert!(
                result.is_err(),
                "{} cut to {len} bytes decoded",
                message.name()
            );
        }
    }
}

#[test]
fn truncation_is_told_apart_from_corruption() {
    let mut buf = Vec::new();
    encode(&header(), &samples()[1], &mut buf);
    assert_eq!(
        decode(&buf[..30]),
        Err(DecodeError::Truncated {
            needed: 33,
            got: 30
        })
    );
    // A chunk whose payload was cut short is truncated, not invalid.
    encode(&header(), &samples()[2], &mut buf);
    assert!(matches!(
        decode(&buf[..buf.len() - 1]),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn corrupted_datagrams_are_rejected() {
    let mut buf = Vec::new();
    let corrupt = |message: &Message<'_>, at: usize, value: u8| {
        let mut buf = Vec::new();
        encode(&header(), message, &mut buf);
        buf[at] = value;
        decode(&buf).map(|_| ())
    };
    let s = samples();
    assert_eq!(corrupt(&s[0], 0, b'X'), Err(DecodeError::BadMagic));
    assert_eq!(corrupt(&s[0], 4, 1), Err(DecodeError::BadVersion(1)));
    assert_eq!(corrupt(&s[0], 5, 99), Err(DecodeError::UnknownKind(99)));
    assert_eq!(
        corrupt(&s[0], 6, 1),
        Err(DecodeError::Invalid("reserved flags set"))
    );
    assert_eq!(
        corrupt(&s[0], HEADER_BYTES, 2),
        Err(DecodeError::Invalid("boolean not 0 or 1"))
    );
    assert_eq!(
        corrupt(&s[1], HEADER_BYTES, 9),
        Err(DecodeError::Invalid("unknown phase"))
    );
    // Chunk: kind byte, an index beyond the count, a count that does not match.
    assert_eq!(
        corrupt(&s[2], HEADER_BYTES + 4, 4),
        Err(DecodeError::Invalid("unknown batch kind"))
    );
    assert_eq!(
        corrupt(&s[2], HEADER_BYTES + 5, 3),
        Err(DecodeError::Invalid("chunk index beyond count"))
    );
    assert_eq!(
        corrupt(&s[2], HEADER_BYTES + 9, 4),
        Err(DecodeError::Invalid("chunk count does not match sizes"))
    );
    assert_eq!(
        corrupt(&s[3], HEADER_BYTES + 13, 200),
        Err(DecodeError::Invalid("selective-ack bitmap too long"))
    );
    // Sequence number zero is never sent.
    encode(&Header { session: 1, seq: 0 }, &s[5], &mut buf);
    assert_eq!(decode(&buf), Err(DecodeError::Invalid("sequence number 0")));
    // Trailing bytes after a fixed-size message.
    encode(&header(), &s[4], &mut buf);
    buf.push(0);
    assert_eq!(decode(&buf), Err(DecodeError::Trailing(1)));
    // A state with a NaN throttle.
    let mut nan = Vec::new();
    encode(&header(), &s[1], &mut nan);
    let at = HEADER_BYTES + 1 + 16 + 4;
    nan[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_eq!(decode(&nan), Err(DecodeError::Invalid("non-finite number")));
}

#[test]
fn a_long_abort_reason_is_cut_on_a_character_boundary() {
    let reason = "é".repeat(150);
    let mut buf = Vec::new();
    encode(&header(), &Message::Abort { reason: &reason }, &mut buf);
    let (_, back) = decode(&buf).unwrap();
    match back {
        Message::Abort { reason } => assert_eq!(reason.len(), MAX_REASON_BYTES),
        other => panic!("decoded {other:?}"),
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn arbitrary_bodies_after_a_valid_header_never_panic(
        kind in 0u8..10,
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = Vec::new();
        encode(&header(), &Message::FinishAck, &mut bytes);
        bytes[5] = kind;
        bytes.extend_from_slice(&body);
        let _ = decode(&bytes);
    }

    #[test]
    fn chunks_round_trip(
        transfer in any::<u32>(),
        chunk_bytes in 1u32..2000,
        total in 1u32..100_000,
        pick in any::<u32>(),
    ) {
        let count = total.div_ceil(chunk_bytes);
        let index = pick % count;
        let len = (total - index * chunk_bytes).min(chunk_bytes) as usize;
        let payload = vec![0xa5u8; len];
        let chunk = Chunk {
            transfer,
            kind: BatchKind::Jobs,
            index,
            count,
            chunk_bytes,
            total_bytes: total,
            payload: &payload,
        };
        let mut buf = Vec::new();
        encode(&header(), &Message::Chunk(chunk.clone()), &mut buf);
        prop_assert_eq!(buf.len(), CHUNK_OVERHEAD + len);
        let (_, back) = decode(&buf).unwrap();
        prop_assert_eq!(back, Message::Chunk(chunk));
    }
}
