//! The one file that owns the UDP socket: binding with explicit buffer sizes,
//! sealing every datagram sent with the run's [`Key`] and checking the tag
//! of every datagram received, sending to the peer and receiving with a
//! time-out, the datagram counters of the run report, and the link
//! emulator's shaping thread (which delays, drops and duplicates what this
//! node sends, as [`crate::link`] decides). Everything above it deals in
//! byte slices.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::auth::Key;
use crate::link::{LinkConfig, LinkModel};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Socket buffer size requested for each direction. The kernel may grant
/// less (Linux caps it at `net.core.rmem_max`); the flow-control window is
/// sized from what was actually granted, never from this request.
pub const REQUESTED_BUFFER_BYTES: usize = 8 << 20;

/// How long a receive waits before returning, so the reader thread can
/// notice a shutdown.
pub const RECV_TIMEOUT: Duration = Duration::from_millis(100);

/// Datagram counters of one socket, kept by the threads that send and
/// receive on it. What the node's core judges (format, session, replays,
/// chunks, batches) it counts itself; the report adds the two.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Datagrams sent.
    pub datagrams_sent: AtomicU64,
    /// Bytes sent (UDP payload).
    pub bytes_sent: AtomicU64,
    /// Datagrams received with the right source and tag.
    pub datagrams_received: AtomicU64,
    /// Bytes received (UDP payload).
    pub bytes_received: AtomicU64,
    /// Datagrams dropped because their tag was missing or wrong.
    pub rejected_unauthentic: AtomicU64,
    /// Datagrams dropped because they came from an address other than the peer.
    pub rejected_unknown_source: AtomicU64,
    /// Sends that failed (counted as losses; retransmission recovers them).
    pub send_errors: AtomicU64,
    /// Receives that failed (an ICMP error reported on the socket, say).
    pub receive_errors: AtomicU64,
    /// Authentic datagrams dropped because the core's inbox was full, as a
    /// full socket buffer drops them (the transfer layer resends).
    pub inbox_dropped: AtomicU64,
    /// Datagrams the emulated link dropped (random loss or a full queue).
    pub link_dropped: Arc<AtomicU64>,
}

/// The rejected datagrams by reason, as the report and the window show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// Not a well-formed loadbal message, though correctly tagged.
    pub malformed: u64,
    /// A missing or wrong authentication tag.
    pub unauthentic: u64,
    /// A sequence number seen before, or too old to judge.
    pub replayed: u64,
    /// From an address other than the peer's.
    pub unknown_source: u64,
    /// Of another session (an earlier run, or a restarted peer).
    pub stale_session: u64,
    /// Chunks of data already held or delivered.
    pub duplicate_chunks: u64,
    /// Chunks refused by the reassembly limits or inconsistent with their batch.
    pub refused_chunks: u64,
    /// Acks naming a chunk never sent.
    pub invalid_acks: u64,
}

impl Rejected {
    /// The sum over every reason.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.unauthentic
            + self.replayed
            + self.unknown_source
            + self.stale_session
            + self.duplicate_chunks
            + self.refused_chunks
            + self.invalid_acks
    }
}

impl std::fmt::Display for Rejected {
    /// "12 (malformed 1, unauthentic 9, replayed 2)": the total, then each
    /// reason that occurred.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.total())?;
        let reasons = [
            ("malformed", self.malformed),
            ("unauthentic", self.unauthentic),
            ("replayed", self.replayed),
            ("unknown source", self.unknown_source),
            ("stale session", self.stale_session),
            ("duplicate chunks", self.duplicate_chunks),
            ("refused chunks", self.refused_chunks),
            ("invalid acks", self.invalid_acks),
        ];
        let mut first = true;
        for (name, n) in reasons.into_iter().filter(|&(_, n)| n > 0) {
            write!(f, "{}{name} {n}", if first { " (" } else { ", " })?;
            first = false;
        }
        if !first {
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl NetStats {
    /// The counts as the report shows them.
    pub fn counts(&self) -> crate::report::SocketCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        crate::report::SocketCounts {
            datagrams_sent: get(&self.datagrams_sent),
            datagrams_received: get(&self.datagrams_received),
            bytes_sent: get(&self.bytes_sent),
            link_dropped: get(&self.link_dropped),
            inbox_dropped: get(&self.inbox_dropped),
            unauthentic: get(&self.rejected_unauthentic),
            unknown_source: get(&self.rejected_unknown_source),
        }
    }

    /// The datagrams the reader rejected, by reason (the others are the core's).
    pub fn rejected_by_reason(&self) -> Rejected {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Rejected {
            unauthentic: get(&self.rejected_unauthentic),
            unknown_source: get(&self.rejected_unknown_source),
            ..Rejected::default()
        }
    }
}

/// A bound UDP socket talking to one peer.
#[derive(Debug)]
pub struct Transport {
    socket: UdpSocket,
    local: SocketAddr,
    peer: SocketAddr,
    recv_buffer_bytes: usize,
    send_buffer_bytes: usize,
    /// The emulated link's shaping thread, if the link is not plain.
    shaper: Option<Shaper>,
    /// Seals what is sent and checks what is received.
    key: Key,
    /// The counters.
    pub stats: NetStats,
    /// Set when the node ends: receives return at once.
    closing: AtomicBool,
}

/// The shaping thread and its inbox of datagrams to send.
#[derive(Debug)]
struct Shaper {
    tx: Option<Sender<Vec<u8>>>,
    join: Option<JoinHandle<()>>,
    link: LinkConfig,
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(shaper) = &mut self.shaper {
            // Closing the inbox ends the thread; what it still holds is lost,
            // as on a link that goes down.
            shaper.tx.take();
            if let Some(join) = shaper.join.take() {
                let _ = join.join();
            }
        }
    }
}

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot open UDP socket on {address}: {cause}{hint}")]
pub struct BindError {
    address: SocketAddr,
    // Part of the message, not a separate source: the message already says
    // it, and a chain would say it twice.
    cause: io::Error,
    hint: &'static str,
}

impl Transport {
    /// Binds `local` and sets buffer sizes and the receive time-out. With a
    /// `link`, what this node sends goes through the emulated link. `key`
    /// seals every datagram sent and checks every one received.
    pub fn bind(
        local: SocketAddr,
        peer: SocketAddr,
        link: Option<LinkConfig>,
        key: Key,
    ) -> Result<Transport, BindError> {
        Self::bind_supervised(
            local,
            peer,
            link,
            key,
            format!("link-{local}"),
            Box::new(|| {}),
            Box::new(()),
        )
    }

    /// [`bind`](Self::bind), the link emulator's thread named `name`,
    /// calling `check` as each datagram comes (the node's test-only panic
    /// hook) and holding `guard` until it ends, so that the guard's drop
    /// tells its supervisor (if the thread dies, every datagram is lost,
    /// and the node must say so).
    pub fn bind_supervised(
        local: SocketAddr,
        peer: SocketAddr,
        link: Option<LinkConfig>,
        key: Key,
        name: String,
        check: Box<dyn Fn() + Send>,
        guard: Box<dyn Send>,
    ) -> Result<Transport, BindError> {
        let wrap = |source: io::Error| {
            let hint = match source.kind() {
                io::ErrorKind::AddrInUse => {
                    " (is another loadbal node, or another program, using this port?)"
                }
                io::ErrorKind::AddrNotAvailable => {
                    " (this address does not belong to this machine: check the config)"
                }
                _ => "",
            };
            BindError {
                address: local,
                cause: source,
                hint,
            }
        };
        let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))
            .map_err(wrap)?;
        // A refused request is not fatal: the window adapts to what we get.
        let _ = socket.set_recv_buffer_size(REQUESTED_BUFFER_BYTES);
        let _ = socket.set_send_buffer_size(REQUESTED_BUFFER_BYTES);
        socket.bind(&SockAddr::from(local)).map_err(wrap)?;
        socket.set_read_timeout(Some(RECV_TIMEOUT)).map_err(wrap)?;
        let recv_buffer_bytes = socket.recv_buffer_size().map_err(wrap)?;
        let send_buffer_bytes = socket.send_buffer_size().map_err(wrap)?;
        let socket: UdpSocket = socket.into();
        // With port 0 the kernel picked one: report the real address.
        let local = socket.local_addr().unwrap_or(local);
        let stats = NetStats::default();
        let shaper = match link.filter(|l| !l.is_plain()) {
            None => None,
            Some(link) => {
                let out = socket.try_clone().map_err(wrap)?;
                let (tx, rx) = crossbeam_channel::unbounded();
                let dropped = stats.link_dropped.clone();
                let join = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || {
                        let _guard = guard;
                        shape(out, peer, link, rx, &dropped, &*check);
                    })
                    .map_err(wrap)?;
                Some(Shaper {
                    tx: Some(tx),
                    join: Some(join),
                    link,
                })
            }
        };
        Ok(Transport {
            socket,
            local,
            peer,
            recv_buffer_bytes,
            send_buffer_bytes,
            shaper,
            key,
            stats,
            closing: AtomicBool::new(false),
        })
    }

    /// True when datagrams are sealed with the public demo key.
    pub fn demo_key(&self) -> bool {
        self.key.is_demo()
    }

    /// The key that seals and checks this node's datagrams.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The emulated link of this node's datagrams, if any.
    pub fn link(&self) -> Option<LinkConfig> {
        self.shaper.as_ref().map(|s| s.link)
    }

    /// The bound address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The receive buffer the kernel granted, in bytes of its own accounting.
    pub fn recv_buffer_bytes(&self) -> usize {
        self.recv_buffer_bytes
    }

    /// The send buffer the kernel granted.
    pub fn send_buffer_bytes(&self) -> usize {
        self.send_buffer_bytes
    }

    /// How many datagrams of `datagram_bytes` the receive buffer holds with
    /// room to spare: the chunks this node lets its peer have in flight.
    /// The kernel charges each datagram its buffer's true size (payload
    /// rounded up to a power of two plus bookkeeping), and a quarter of the
    /// buffer is kept for state messages and acknowledgements.
    pub fn window_chunks(&self, datagram_bytes: usize) -> u32 {
        window_for(self.recv_buffer_bytes, datagram_bytes)
    }

    /// Seals one datagram (appending its tag to `datagram`) and sends it to
    /// the peer. A failed send is counted and treated as a loss.
    pub fn send(&self, datagram: &mut Vec<u8>) {
        self.key.seal(datagram);
        let bytes = datagram.as_slice();
        if let Some(tx) = self.shaper.as_ref().and_then(|s| s.tx.as_ref()) {
            self.stats.datagrams_sent.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes_sent
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let _ = tx.send(bytes.to_vec());
            return;
        }
        match self.socket.send_to(bytes, self.peer) {
            Ok(_) => {
                self.stats.datagrams_sent.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .bytes_sent
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Wakes a receive that is waiting and makes every later one return at
    /// once with nothing: the node is ending, so its reader need not wait
    /// out [`RECV_TIMEOUT`] to notice. The wake-up is an empty datagram to
    /// the socket's own address (shutting the socket for reading would
    /// wake it too, but a receive then returns no source address, which
    /// the standard library's `recv_from` treats as a bug and panics on);
    /// if it cannot be sent, the reader notices at its next time-out.
    pub fn close_receiving(&self) {
        self.closing.store(true, Ordering::Release);
        let mut to = self.local;
        if to.ip().is_unspecified() {
            to.set_ip(match to {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = self.socket.send_to(&[], to);
    }

    /// Receives one datagram into `buf`; `Ok(None)` when the time-out passed
    /// or receiving was closed.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        if self.closing.load(Ordering::Acquire) {
            // The node is ending and its reader about to: no need to wait
            // a whole time-out, nor to spin while it finishes.
            std::thread::sleep(Duration::from_millis(1));
            return Ok(None);
        }
        let got = self.socket.recv_from(buf);
        if self.closing.load(Ordering::Acquire) {
            return Ok(None);
        }
        match got {
            Ok((n, from)) => Ok(Some((n, from))),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// The shaping thread: admits each datagram to the link model and sends
/// every copy when the model says it arrives.
fn shape(
    socket: UdpSocket,
    peer: SocketAddr,
    link: LinkConfig,
    inbox: Receiver<Vec<u8>>,
    dropped: &AtomicU64,
    check: &dyn Fn(),
) {
    let mut model = LinkModel::new(link);
    // (arrival, order of admission, datagram): the earliest arrival first,
    // and datagrams due at the same instant in the order they were sent.
    let mut pending: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
    let mut order = 0u64;
    loop {
        let next = pending.peek().map(|Reverse((at, _, _))| *at);
        let received = match next {
            Some(at) => inbox.recv_deadline(at),
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(bytes) => {
                check();
                let arrivals = model.admit(Instant::now(), bytes.len());
                dropped.store(model.dropped, Ordering::Relaxed);
                // A duplicate needs a copy; the last (usually only) arrival
                // takes the datagram itself.
                if let Some((&last, extra)) = arrivals.split_last() {
                    for &at in extra {
                        order += 1;
                        pending.push(Reverse((at, order, bytes.clone())));
                    }
                    order += 1;
                    pending.push(Reverse((last, order, bytes)));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while pending.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
            if let Some(Reverse((_, _, bytes))) = pending.pop() {
                // A failed send is one more loss on an emulated lossy link.
                let _ = socket.send_to(&bytes, peer);
            }
        }
    }
}

/// The flow-control window for a receive buffer and datagram size.
pub fn window_for(recv_buffer_bytes: usize, datagram_bytes: usize) -> u32 {
    let per_datagram = datagram_bytes.next_power_of_two() + 512;
    let usable = recv_buffer_bytes / 4 * 3;
    // At least a few datagrams, or nothing moves; with 64 KiB datagrams and
    // Linux's default buffer (208 KiB, doubled) four still fit.
    (usable / per_datagram).clamp(4, 4096) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_read_as_a_total_and_the_reasons_that_occurred() {
        assert_eq!(Rejected::default().to_string(), "0");
        let r = Rejected {
            unauthentic: 9,
            malformed: 1,
            stale_session: 2,
            ..Rejected::default()
        };
        assert_eq!(
            r.to_string(),
            "12 (malformed 1, unauthentic 9, stale session 2)"
        );
    }

    #[test]
    fn window_follows_the_granted_buffer() {
        // Linux's common default (208 KiB, doubled): a small window.
        assert_eq!(window_for(425_984, 1472), 124);
        assert_eq!(window_for(16 << 20, 1472), 4096);
        assert_eq!(window_for(16 << 20, 65507), 190);
        assert_eq!(window_for(1000, 1472), 4);
        // Linux's default buffer still takes the floor of 64 KiB datagrams.
        assert_eq!(window_for(425_984, 65507), 4);
    }

    #[test]
    fn binds_seals_sends_receives_and_checks_on_loopback() {
        let key = Key::from_secret("a test secret of some length");
        let a_addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = Transport::bind(a_addr, b.local_addr().unwrap(), None, key.clone()).unwrap();
        assert!(a.recv_buffer_bytes() > 0);
        assert!(!a.demo_key());
        a.send(&mut b"hello".to_vec());
        let mut buf = [0u8; 64];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(n, 5 + crate::auth::TAG_BYTES);
        assert_eq!(key.open(&buf[..n]), Some(&b"hello"[..]));
        let mut back = b"back".to_vec();
        key.seal(&mut back);
        b.send_to(&back, from).unwrap();
        b.send_to(b"back, unsealed", from).unwrap();
        let (n, _) = a.recv(&mut buf).unwrap().unwrap();
        assert_eq!(a.key().open(&buf[..n]), Some(&b"back"[..]));
        let (n, _) = a.recv(&mut buf).unwrap().unwrap();
        assert_eq!(a.key().open(&buf[..n]), None);
        assert_eq!(a.stats.datagrams_sent.load(Ordering::Relaxed), 1);
        assert_eq!(
            a.stats.bytes_sent.load(Ordering::Relaxed),
            5 + crate::auth::TAG_BYTES as u64
        );
    }

    #[test]
    fn closing_wakes_a_waiting_receive_which_returns_nothing() {
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = Arc::new(
            Transport::bind(
                "127.0.0.1:0".parse().unwrap(),
                b.local_addr().unwrap(),
                None,
                Key::demo(),
            )
            .unwrap(),
        );
        let reader = {
            let a = a.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                let waited = Instant::now();
                let got = a.recv(&mut buf).unwrap();
                (got, waited.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        a.close_receiving();
        let (got, waited) = reader.join().expect("the reader must not panic");
        assert_eq!(got, None);
        // Woken, not timed out.
        assert!(waited < RECV_TIMEOUT, "{waited:?}");
        // Later receives return nothing, without waiting a time-out.
        let mut buf = [0u8; 64];
        let t = Instant::now();
        assert_eq!(a.recv(&mut buf).unwrap(), None);
        assert!(t.elapsed() < RECV_TIMEOUT);
        assert_eq!(a.stats.receive_errors.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_emulated_link_delays_and_drops_what_it_sends() {
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let link = LinkConfig {
            loss: 0.5,
            delay_ms: 30.0,
            seed: 11,
            ..LinkConfig::default()
        };
        let a = Transport::bind(
            "127.0.0.1:0".parse().unwrap(),
            b.local_addr().unwrap(),
            Some(link),
            Key::demo(),
        )
        .unwrap();
        assert_eq!(a.link(), Some(link));
        let sent_at = Instant::now();
        for i in 0..200u8 {
            a.send(&mut vec![i]);
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        b.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        while let Ok((17, _)) = b.recv_from(&mut buf) {
            if got.is_empty() {
                assert!(sent_at.elapsed() >= Duration::from_millis(30));
            }
            got.push(buf[0]);
        }
        let dropped = a.stats.link_dropped.load(Ordering::Relaxed);
        assert_eq!(got.len() as u64 + dropped, 200);
        assert!(
            (70..130).contains(&got.len()),
            "{} of 200 arrived",
            got.len()
        );
        // No jitter, no reordering: what arrives keeps its order.
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a.stats.datagrams_sent.load(Ordering::Relaxed), 200);
    }

    #[test]
    fn a_taken_port_is_a_clear_error() {
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Transport::bind(addr, addr, None, Key::demo())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot open UDP socket on {addr}: ")),
            "{err}"
        );
        assert!(err.ends_with("(is another loadbal node, or another program, using this port?)"));
    }
}
