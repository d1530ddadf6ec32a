//! loadbal: balances a CPU-heavy batch job between two peer nodes over UDP.
//!
//! A map of the crate, from the pure core outwards:
//!
//! - [`ids`]: the two words every module shares (a node's role, a job's
//!   id); imports nothing of the crate.
//! - [`config`]: `config.json`, its defaults and validation.
//! - [`auth`]: datagram tags (HMAC-SHA-256-128, keyed BLAKE3 for large
//!   datagrams) and the replay window. Pure.
//! - [`kernel`]: the numeric kernel, vectorised for the CPU at run time. Pure.
//! - [`workload`]: jobs, the expected value, verification. Pure.
//! - [`arrivals`]: jobs arriving during a run (Poisson streams). Pure.
//! - [`throttle`]: the worker's compute/sleep schedule. Pure.
//! - [`protocol`]: the wire format and the batch payload. Sans-IO.
//! - [`transfer`]: reliable chunked batches with selective acks,
//!   retransmission and receiver flow control. Sans-IO.
//! - [`policy`]: the transfer policies behind one trait. Pure.
//! - [`link`]: the link emulator's model (loss, delay, bandwidth). Pure.
//! - [`transport`]: the one file that owns the UDP socket.
//! - [`node`]: the threads of a node (worker, hardware monitor, state
//!   manager, transfer manager, adaptor, socket reader) and the run's
//!   phases, around the sans-IO core.
//! - [`report`]: the run report; [`trace`]: the run as a trace file
//!   (Trace Event Format, for Perfetto).
//! - [`files`]: writing a user's output files without destroying what is
//!   at the path; [`term`]: stderr output that a closed pipe cannot stop.
//! - [`run`]: a run's life around its nodes (starting them, waiting for the
//!   demo's two together, writing the report and the trace so neither is
//!   lost), for the command line and the window alike.
//! - [`bench`]: `loadbal bench`, every speed figure against its reference.
//!
//! The binary (`src/main.rs`) parses arguments and calls [`run`] (or opens
//! the window, [`gui`], which calls it too).

pub mod arrivals;
pub mod auth;
pub mod bench;
pub mod config;
pub mod files;
pub mod gui;
pub mod ids;
pub mod kernel;
pub mod link;
pub mod local;
pub mod node;
pub mod policy;
pub mod protocol;
pub mod report;
pub mod run;
pub mod sim;
pub mod term;
pub mod throttle;
pub mod trace;
pub mod transfer;
pub mod transport;
pub mod workload;
