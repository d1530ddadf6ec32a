//! `config.json`: the serde types, their defaults and the validation that
//! turns what a user wrote into a [`Config`] the node can trust.
//!
//! Everything has a default, so `{}` is a valid file. Unknown fields are
//! rejected with their path, line and column; values out of range are
//! rejected naming the field and the allowed range. Nothing here opens a
//! socket or starts a thread: a config is checked completely before anything
//! runs.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::{self, Key};
pub use crate::ids::Role;
pub use crate::link::LinkConfig;

/// The default master address.
pub const DEFAULT_MASTER_ADDRESS: &str = "127.0.0.1:7001";
/// The default slave address.
pub const DEFAULT_SLAVE_ADDRESS: &str = "127.0.0.1:7002";

/// One node's section as written in the file (`master` or `slave`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// `IP:PORT` or `host:PORT`; absent means the role's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Share of each 100 ms period the workers compute, 0.0 to 1.0.
    #[serde(default = "default_throttle")]
    pub throttle: f64,
    /// Worker threads; 0 means one per logical CPU.
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// The emulated link this node's datagrams go through; absent is plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkConfig>,
}

fn default_throttle() -> f64 {
    1.0
}
fn default_workers() -> u32 {
    1
}

impl NodeFile {
    fn with_address(address: &str) -> Self {
        NodeFile {
            address: Some(address.to_owned()),
            throttle: default_throttle(),
            workers: default_workers(),
            link: None,
        }
    }
}

/// The workload: by default (`kind` "vector") `jobs * elements_per_job`
/// doubles, each `initial`, each receiving `addend` exactly `iterations`
/// times; or the digit sums of a file (`"digits"`), or a program run over
/// the pieces of a file or the files of a directory (`"command"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// Number of jobs (contiguous slices of the vector).
    pub jobs: u32,
    /// Doubles in each job.
    pub elements_per_job: u32,
    /// Additions applied to every element.
    pub iterations: u32,
    /// The value every element starts at.
    pub initial: f64,
    /// The value added at each iteration.
    pub addend: f64,
    /// Jobs arriving at each node while the run goes (none by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrivals: Option<crate::arrivals::Arrivals>,
    /// The job kind.
    #[serde(skip_serializing_if = "Kind::is_vector")]
    pub kind: Kind,
    /// Digits and command: the input file (or, for a command, directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<std::path::PathBuf>,
    /// Digits: bytes per job (default 30,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_bytes: Option<u64>,
    /// Command: the program and its arguments (no shell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Command on a file: how it is cut into jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitConfig>,
    /// Command with `split.bytes`: `"lines"` cuts each piece at the next
    /// newline, `"none"` (the default) exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub align: Option<String>,
    /// Command: the output file (split file) or directory (directory input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<std::path::PathBuf>,
    /// Command: the longest a job's program may run, seconds (the
    /// throttle's pauses left out); none: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Command: how many times a failed job is tried again (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Command: the share of the slave's jobs the master runs again and
    /// compares byte for byte (for deterministic programs; default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_sample: Option<f64>,
    /// Digits and command: the most input bytes lent to the slave at once,
    /// MiB (default an eighth of the master's memory, 64 MiB to 2 GiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

/// The job kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The reference workload: a vector of doubles.
    #[default]
    Vector,
    /// The digit sum of a file, in chunks.
    Digits,
    /// A program run over pieces of the input.
    Command,
}

impl Kind {
    /// True for the vector kind.
    pub fn is_vector(&self) -> bool {
        *self == Kind::Vector
    }

    /// The name config.json gives it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vector => "vector",
            Kind::Digits => "digits",
            Kind::Command => "command",
        }
    }

    /// Its number on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind of a wire number.
    pub fn from_code(code: u8) -> Option<Kind> {
        [Kind::Vector, Kind::Digits, Kind::Command]
            .get(usize::from(code))
            .copied()
    }
}

/// How a command's input file is cut: exactly one of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Pieces of this many lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
    /// Pieces of this many bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            jobs: 1024,
            elements_per_job: 32768,
            iterations: 1000,
            initial: 1.111111,
            addend: 1.111111,
            arrivals: None,
            kind: Kind::Vector,
            input: None,
            chunk_bytes: None,
            command: None,
            split: None,
            align: None,
            output: None,
            timeout_s: None,
            retries: None,
            verify_sample: None,
            memory_mb: None,
        }
    }
}

/// The transfer policy section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// The policy's name, one of [`POLICIES`].
    pub transfer: String,
    /// The policy's threshold, in its unit (jobs, or milliseconds for
    /// `completion` and `adaptive`); absent means the policy's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    /// How often each node sends its state to the peer.
    pub state_interval_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            transfer: "sender".to_owned(),
            threshold: None,
            state_interval_ms: 500,
        }
    }
}

/// Transport settings (loadbal's own addition to the contract's schema).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Largest UDP payload a node sends, 576 to 65507. Absent means
    /// [`LOOPBACK_DATAGRAM_BYTES`] when both nodes are on loopback with no
    /// emulated link (the loopback interface takes 64 KiB frames, and each
    /// datagram costs a system call and a tag at each end, so large ones
    /// carry the bootstrap many times faster), and
    /// [`ETHERNET_DATAGRAM_BYTES`] otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datagram_bytes: Option<u32>,
    /// Compress each job of a batch on the wire when a trial on a sample of
    /// the batch halves it (a job of one repeated value goes as that value,
    /// others as LZ4 blocks). Absent means on: even on a loopback, where
    /// the link outruns LZ4, sending less saves the CPU the workers share
    /// with the transfer path; `false` sends every byte as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<bool>,
}

/// The datagram size that fits one Ethernet frame (1500 bytes less 28 of
/// IP and UDP headers): the default between machines.
pub const ETHERNET_DATAGRAM_BYTES: u32 = 1472;

/// How long a headless master waits for its slave by default.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 60_000;

/// The largest UDP payload, the default on loopback.
pub const LOOPBACK_DATAGRAM_BYTES: u32 = 65507;

/// `config.json` exactly as written (before validation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    /// The master node.
    pub master: NodeFile,
    /// The slave node.
    pub slave: NodeFile,
    /// The batch job.
    pub workload: WorkloadConfig,
    /// The transfer policy.
    pub policy: PolicyConfig,
    /// Transport settings.
    pub network: NetworkConfig,
    /// A peer silent this long during a run is declared lost.
    pub peer_timeout_ms: u64,
    /// How long a headless master waits for its slave to answer before it
    /// gives up (exit 3).
    pub connect_timeout_ms: u64,
    /// The shared secret both nodes' datagram key is derived from; absent
    /// means the public demo key, allowed on loopback only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl Default for ConfigFile {
    fn default() -> Self {
        ConfigFile {
            master: NodeFile::with_address(DEFAULT_MASTER_ADDRESS),
            slave: NodeFile::with_address(DEFAULT_SLAVE_ADDRESS),
            workload: WorkloadConfig::default(),
            policy: PolicyConfig::default(),
            network: NetworkConfig::default(),
            peer_timeout_ms: 3000,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            secret: None,
        }
    }
}

/// One node's validated settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeConfig {
    /// The resolved socket address.
    pub address: SocketAddr,
    /// 0.0 to 1.0.
    pub throttle: f64,
    /// Worker threads, at least 1 (0 in the file was resolved to the CPU count).
    pub workers: usize,
    /// The emulated link of this node's datagrams, if not plain.
    pub link: Option<LinkConfig>,
}

/// A validated configuration: every value in range, addresses resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The master node.
    pub master: NodeConfig,
    /// The slave node.
    pub slave: NodeConfig,
    /// The batch job.
    pub workload: WorkloadConfig,
    /// The transfer policy.
    pub policy: PolicyConfig,
    /// Largest UDP payload a node sends (`network.datagram_bytes`, or its
    /// default for these addresses).
    pub datagram_bytes: u32,
    /// Compress batches that shrink by half or more.
    pub compression: bool,
    /// A peer silent this long during a run is declared lost.
    pub peer_timeout_ms: u64,
    /// How long a headless master waits for its slave.
    pub connect_timeout_ms: u64,
    /// The datagram key: from `secret`, or the demo key on loopback.
    pub key: Key,
}

impl Config {
    /// One role's node settings.
    pub fn node(&self, role: Role) -> &NodeConfig {
        match role {
            Role::Master => &self.master,
            Role::Slave => &self.slave,
        }
    }

    /// One role's node settings, mutable.
    pub fn node_mut(&mut self, role: Role) -> &mut NodeConfig {
        match role {
            Role::Master => &mut self.master,
            Role::Slave => &mut self.slave,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error. Part of the message, not a chained source, so
        /// that a printed chain says it once.
        cause: std::io::Error,
    },
    /// The JSON is malformed, has an unknown field or a value of the wrong type.
    #[error("{origin}: {message} (at line {line}, column {column})")]
    Parse {
        /// The file name, or "config".
        origin: String,
        /// What is wrong, naming the field's path.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A value is out of its range or otherwise invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field's dotted path, e.g. `master.throttle`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Bounds shared by validation and by the window's field editors.
pub mod limits {
    /// Most worker threads per node.
    pub const MAX_WORKERS: u32 = 256;
    /// Most jobs in a workload.
    pub const MAX_JOBS: u32 = 1 << 20;
    /// Digits and command: the largest piece of input (or output) one
    /// job may carry, bytes.
    pub const MAX_PIECE_BYTES: u64 = 64 << 20;
    /// Command: most retries of a failed job.
    pub const MAX_RETRIES: u32 = 100;
    /// Arrivals: jobs a second at each node.
    pub const MIN_ARRIVAL_RATE: f64 = 0.001;
    /// Arrivals: jobs a second at each node.
    pub const MAX_ARRIVAL_RATE: f64 = 100_000.0;
    /// Arrivals: seconds of arrivals.
    pub const MIN_ARRIVAL_DURATION_S: f64 = 0.001;
    /// Arrivals: seconds of arrivals (a day).
    pub const MAX_ARRIVAL_DURATION_S: f64 = 86_400.0;
    /// Most doubles in one job (64 MiB of data).
    pub const MAX_ELEMENTS_PER_JOB: u32 = 8 << 20;
    /// Most doubles in the whole vector (32 GiB).
    pub const MAX_TOTAL_ELEMENTS: u64 = 4 << 30;
    /// Most additions per element.
    pub const MAX_ITERATIONS: u32 = 100_000_000;
    /// Largest threshold, in jobs.
    pub const MAX_THRESHOLD: u32 = 1 << 20;
    /// State interval range, milliseconds.
    pub const STATE_INTERVAL_MS: (u64, u64) = (10, 60_000);
    /// Peer time-out range, milliseconds.
    pub const PEER_TIMEOUT_MS: (u64, u64) = (100, 3_600_000);
    /// `connect_timeout_ms`: from a tenth of a second to a day.
    pub const CONNECT_TIMEOUT_MS: (u64, u64) = (100, 86_400_000);
    /// `link.bandwidth_mbit`, when not 0 (unlimited): from 1 kbit/s, at
    /// which a 64 KiB datagram takes nine minutes.
    pub const MIN_BANDWIDTH_MBIT: f64 = 0.001;
    /// Datagram size range, bytes (576 is the smallest datagram every IPv4
    /// host must accept; 65507 the largest UDP payload over IPv4).
    pub const DATAGRAM_BYTES: (u32, u32) = (576, 65507);
}

/// The transfer policies this build knows.
pub const POLICIES: &[&str] = crate::policy::NAMES;

/// Reads and validates a config file. `None` means `config.json` in the
/// current directory, or the built-in defaults when that file is absent.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    load_file(path)?.validate()
}

/// Reads a config file as written, without validating it (the window edits
/// this form). `None` behaves as in [`load`].
pub fn load_file(path: Option<&Path>) -> Result<ConfigFile, ConfigError> {
    Ok(match path {
        Some(path) => read_file(path)?,
        None => {
            let default = Path::new("config.json");
            if default.exists() {
                read_file(default)?
            } else {
                ConfigFile::default()
            }
        }
    })
}

impl ConfigFile {
    /// One role's section as written.
    pub fn node(&self, role: Role) -> &NodeFile {
        match role {
            Role::Master => &self.master,
            Role::Slave => &self.slave,
        }
    }

    /// One role's section as written, mutable.
    pub fn node_mut(&mut self, role: Role) -> &mut NodeFile {
        match role {
            Role::Master => &mut self.master,
            Role::Slave => &mut self.slave,
        }
    }

    /// The file as pretty JSON, as the window saves it.
    pub fn to_json(&self) -> String {
        // Plain structs of numbers and strings always serialise.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        path: path.to_owned(),
        cause,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses JSON text into a [`ConfigFile`] (not yet validated). `origin`
/// names the text in errors.
pub fn parse(text: &str, origin: &str) -> Result<ConfigFile, ConfigError> {
    // Some editors start a UTF-8 file with a byte-order mark; JSON has no
    // use for it, and it says nothing: skip it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some((line, column)) = find_comment(text) {
        return Err(ConfigError::Parse {
            origin: origin.to_owned(),
            message: "comments are not JSON: remove the // or /* */ comment".to_owned(),
            line,
            column,
        });
    }
    // serde would also take an array for a struct: only an object will do.
    let start = text.len() - text.trim_start().len();
    if !text[start..].starts_with('{') && !text[start..].is_empty() {
        let before = &text[..start];
        return Err(ConfigError::Parse {
            origin: origin.to_owned(),
            message: "the config must be a JSON object ({ ... })".to_owned(),
            line: before.matches('\n').count() + 1,
            column: start - before.rfind('\n').map_or(0, |i| i + 1) + 1,
        });
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    let file: ConfigFile = serde_path_to_error::deserialize(&mut *de).map_err(|err| {
        let path = err.path().to_string();
        parse_error(origin, &path, err.into_inner())
    })?;
    // Text after the object is an error too.
    de.end().map_err(|err| parse_error(origin, "", err))?;
    Ok(file)
}

/// The 1-based line and column of the first `//` or `/*` outside a string.
fn find_comment(text: &str) -> Option<(usize, usize)> {
    let (mut in_string, mut escaped) = (false, false);
    let (mut line, mut column) = (1, 0);
    let mut prev = '\0';
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            (line, column) = (line + 1, 0);
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if prev == '/' && (c == '/' || c == '*') {
            return Some((line, column - 1));
        }
        prev = if in_string { '\0' } else { c };
    }
    None
}

/// A serde_json error as a [`ConfigError::Parse`] naming the field's path.
fn parse_error(origin: &str, path: &str, inner: serde_json::Error) -> ConfigError {
    let (line, column) = (inner.line(), inner.column());
    // serde_json appends its own " at line L column C"; we report the
    // position in our own words.
    let mut message = inner.to_string();
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    let message = if path == "." || path.is_empty() {
        message
    } else {
        format!("{path}: {message}")
    };
    ConfigError::Parse {
        origin: origin.to_owned(),
        message,
        line,
        column,
    }
}

/// Refuses `value` outside `[min, max]`, naming `field` and the range.
pub(crate) fn check_range<T: PartialOrd + fmt::Display + Copy>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::invalid(
            field,
            format!("{value} is out of range: must be from {min} to {max}"),
        ));
    }
    Ok(())
}

fn check_finite(field: &str, value: f64) -> Result<(), ConfigError> {
    if !value.is_finite() {
        return Err(ConfigError::invalid(
            field,
            format!("{value} is not a finite number"),
        ));
    }
    Ok(())
}

/// Resolves `IP:PORT` or `host:PORT` once, preferring IPv4.
pub fn resolve_address(field: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return check_port(field, addr);
    }
    if !text.contains(':') {
        return Err(ConfigError::invalid(
            field,
            format!("\"{text}\" is not an address: expected IP:PORT, e.g. 127.0.0.1:7001"),
        ));
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|err| ConfigError::invalid(field, format!("cannot resolve \"{text}\": {err}")))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| ConfigError::invalid(field, format!("\"{text}\" resolves to no address")))?;
    check_port(field, addr)
}

/// Two addresses that can never talk to each other are refused, naming both
/// fields: each must be a unicast address one can send to, and both of one
/// family (an IPv4 socket cannot reach an IPv6 address).
fn check_address_pair(master: SocketAddr, slave: SocketAddr) -> Result<(), ConfigError> {
    for (field, addr) in [("master.address", master), ("slave.address", slave)] {
        let ip = addr.ip();
        let what = if ip.is_unspecified() {
            Some("the unspecified address (it means \"any\" to bind, and reaches no one)")
        } else if ip.is_multicast() {
            Some("a multicast address")
        } else if matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast()) {
            Some("the broadcast address")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(ConfigError::invalid(
                field,
                format!(
                    "{addr} is {what}: the master and the slave each need an address of \
                     their own that the other can send to (master.address {master}, \
                     slave.address {slave})"
                ),
            ));
        }
    }
    if master.is_ipv4() != slave.is_ipv4() {
        return Err(ConfigError::invalid(
            "slave.address",
            format!(
                "{slave} and master.address {master} are of different address families \
                 (IPv4 and IPv6): the two nodes could never talk; give both IPv4 or both \
                 IPv6 addresses"
            ),
        ));
    }
    Ok(())
}

fn check_port(field: &str, addr: SocketAddr) -> Result<SocketAddr, ConfigError> {
    if addr.port() == 0 {
        return Err(ConfigError::invalid(
            field,
            format!("{addr}: port must be from 1 to 65535"),
        ));
    }
    Ok(addr)
}

/// What validation needs to know of the machine it runs on. Probed once
/// and passed in, so that validation itself is pure: the window checks a
/// config on every keystroke without asking the system again, and a test
/// states the machine it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// Physical memory in bytes; 0 if unknown (then not checked).
    pub memory_bytes: u64,
    /// Logical CPUs, for `workers: 0`.
    pub logical_cpus: usize,
}

impl Machine {
    /// Asks the system.
    pub fn probe() -> Machine {
        let memory_bytes = sysinfo::System::new().map_or(0, |mut system| {
            system.refresh_memory();
            system.total_memory()
        });
        Machine {
            memory_bytes,
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl NodeFile {
    fn validate(&self, role: Role, machine: &Machine) -> Result<NodeConfig, ConfigError> {
        let name = role.name();
        let default = match role {
            Role::Master => DEFAULT_MASTER_ADDRESS,
            Role::Slave => DEFAULT_SLAVE_ADDRESS,
        };
        let address = resolve_address(
            &format!("{name}.address"),
            self.address.as_deref().unwrap_or(default),
        )?;
        let field = format!("{name}.throttle");
        check_finite(&field, self.throttle)?;
        check_range(&field, self.throttle, 0.0, 1.0)?;
        check_range(
            &format!("{name}.workers"),
            self.workers,
            0,
            limits::MAX_WORKERS,
        )?;
        let workers = if self.workers == 0 {
            machine.logical_cpus.max(1)
        } else {
            self.workers as usize
        };
        let link = match &self.link {
            Some(link) => {
                link.validate(&format!("{name}.link"))?;
                Some(*link).filter(|l| !l.is_plain())
            }
            None => None,
        };
        Ok(NodeConfig {
            address,
            throttle: self.throttle,
            workers,
            link,
        })
    }
}

impl LinkConfig {
    /// Checks every field's range; `field` is the object's path.
    pub fn validate(&self, field: &str) -> Result<(), ConfigError> {
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            let f = format!("{field}.{name}");
            check_finite(&f, p)?;
            check_range(&f, p, 0.0, 1.0)?;
        }
        for (name, v, max) in [
            ("delay_ms", self.delay_ms, 60_000.0),
            ("jitter_ms", self.jitter_ms, 60_000.0),
            ("bandwidth_mbit", self.bandwidth_mbit, 1_000_000.0),
        ] {
            let f = format!("{field}.{name}");
            check_finite(&f, v)?;
            check_range(&f, v, 0.0, max)?;
        }
        let bandwidth = self.bandwidth_mbit;
        if bandwidth > 0.0 && bandwidth < limits::MIN_BANDWIDTH_MBIT {
            return Err(ConfigError::invalid(
                format!("{field}.bandwidth_mbit"),
                format!(
                    "{bandwidth:?} is out of range: must be 0 (unlimited) or from {} to 1000000",
                    limits::MIN_BANDWIDTH_MBIT
                ),
            ));
        }
        Ok(())
    }
}

impl WorkloadConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("workload.jobs", self.jobs, 1, limits::MAX_JOBS)?;
        check_range(
            "workload.elements_per_job",
            self.elements_per_job,
            1,
            limits::MAX_ELEMENTS_PER_JOB,
        )?;
        let total = u64::from(self.jobs) * u64::from(self.elements_per_job);
        if total > limits::MAX_TOTAL_ELEMENTS {
            return Err(ConfigError::invalid(
                "workload",
                format!(
                    "jobs * elements_per_job = {total} doubles is too large: at most {}",
                    limits::MAX_TOTAL_ELEMENTS
                ),
            ));
        }
        check_range(
            "workload.iterations",
            self.iterations,
            0,
            limits::MAX_ITERATIONS,
        )?;
        check_finite("workload.initial", self.initial)?;
        check_finite("workload.addend", self.addend)?;
        if let Some(a) = &self.arrivals {
            check_finite("workload.arrivals.rate_per_s", a.rate_per_s)?;
            check_range(
                "workload.arrivals.rate_per_s",
                a.rate_per_s,
                limits::MIN_ARRIVAL_RATE,
                limits::MAX_ARRIVAL_RATE,
            )?;
            check_finite("workload.arrivals.duration_s", a.duration_s)?;
            check_range(
                "workload.arrivals.duration_s",
                a.duration_s,
                limits::MIN_ARRIVAL_DURATION_S,
                limits::MAX_ARRIVAL_DURATION_S,
            )?;
            // Drawn one past the largest run, so that a stream too long shows.
            let all =
                crate::arrivals::Schedule::new(self.jobs, Some(a), limits::MAX_JOBS + 1).total();
            let vector = u64::from(all) * u64::from(self.elements_per_job);
            if all > limits::MAX_JOBS || vector > limits::MAX_TOTAL_ELEMENTS {
                let arriving = if all > limits::MAX_JOBS {
                    format!("more than {}", limits::MAX_JOBS - self.jobs)
                } else {
                    (all - self.jobs).to_string()
                };
                return Err(ConfigError::invalid(
                    "workload.arrivals",
                    format!(
                        "{arriving} jobs would arrive on top of the {} present: at most {} jobs \
                         and {} doubles in all; lower rate_per_s or duration_s",
                        self.jobs,
                        limits::MAX_JOBS,
                        limits::MAX_TOTAL_ELEMENTS
                    ),
                ));
            }
        }
        self.validate_kind()
    }

    /// The digits and command kinds in words (the program, the input and
    /// how it is cut, the output), from the config alone; None for the
    /// vector kind.
    pub fn kind_text(&self) -> Option<String> {
        let input = self
            .input
            .as_ref()
            .map_or_else(|| "(no input)".to_owned(), |p| p.display().to_string());
        match self.kind {
            Kind::Vector => None,
            Kind::Digits => Some(format!(
                "the digit sum of {input} in chunks of {} bytes",
                self.chunk_bytes
                    .unwrap_or(crate::workload::digits::DEFAULT_CHUNK_BYTES)
            )),
            Kind::Command => {
                let program = crate::workload::joblog::shell_words(
                    self.command.as_deref().unwrap_or_default(),
                );
                let cut = match self.split {
                    Some(SplitConfig { lines: Some(n), .. }) => format!(" in pieces of {n} lines"),
                    Some(SplitConfig { bytes: Some(n), .. }) => format!(
                        " in pieces of {n} bytes{}",
                        if self.align.as_deref() == Some("lines") {
                            " cut at line ends"
                        } else {
                            ""
                        }
                    ),
                    _ => " (a directory: one job per file)".to_owned(),
                };
                let output = self
                    .output
                    .as_ref()
                    .map_or_else(String::new, |p| format!(" -> {}", p.display()));
                let limits = format!(
                    "; retries {}{}",
                    self.retries.unwrap_or(1),
                    self.timeout_s
                        .map_or_else(String::new, |t| format!(", time-out {t} s"))
                );
                Some(format!("`{program}` over {input}{cut}{output}{limits}"))
            }
        }
    }

    /// Checks the fields of the digits and command kinds: each kind takes
    /// its own, and a field of another kind is an error naming it.
    fn validate_kind(&self) -> Result<(), ConfigError> {
        let present = |field: &'static str, set: bool| set.then_some(field);
        let digits_only = [present("chunk_bytes", self.chunk_bytes.is_some())];
        let either = [present("memory_mb", self.memory_mb.is_some())];
        let command_only = [
            present("command", self.command.is_some()),
            present("split", self.split.is_some()),
            present("align", self.align.is_some()),
            present("output", self.output.is_some()),
            present("timeout_s", self.timeout_s.is_some()),
            present("retries", self.retries.is_some()),
            present("verify_sample", self.verify_sample.is_some()),
        ];
        let not_here: Vec<&str> = match self.kind {
            Kind::Vector => digits_only
                .iter()
                .chain(&command_only)
                .chain(&either)
                .chain(&[present("input", self.input.is_some())])
                .flatten()
                .copied()
                .collect(),
            Kind::Digits => command_only.iter().flatten().copied().collect(),
            Kind::Command => digits_only.iter().flatten().copied().collect(),
        };
        if let Some(field) = not_here.first() {
            return Err(ConfigError::invalid(
                format!("workload.{field}"),
                format!(
                    "is not a field of the {:?} kind (workload.kind is {:?})",
                    self.kind.name(),
                    self.kind.name()
                ),
            ));
        }
        if self.kind.is_vector() {
            return Ok(());
        }
        if self.arrivals.is_some() {
            return Err(ConfigError::invalid(
                "workload.arrivals",
                "jobs arrive only in the vector kind; remove arrivals or workload.kind",
            ));
        }
        match &self.input {
            None => {
                return Err(ConfigError::invalid(
                    "workload.input",
                    format!("the {} kind needs an input file", self.kind.name()),
                ));
            }
            Some(p) if p.as_os_str().is_empty() => {
                return Err(ConfigError::invalid("workload.input", "is empty"));
            }
            Some(_) => {}
        }
        if let Some(c) = self.chunk_bytes {
            check_range("workload.chunk_bytes", c, 1, limits::MAX_PIECE_BYTES)?;
        }
        if let Some(m) = self.memory_mb {
            check_range("workload.memory_mb", m, 1, 1 << 20)?;
        }
        if self.kind == Kind::Digits {
            return Ok(());
        }
        match &self.command {
            None => {
                return Err(ConfigError::invalid(
                    "workload.command",
                    "the command kind needs a program: [\"prog\", \"arg\", ...]",
                ));
            }
            Some(argv) if argv.first().is_none_or(|p| p.is_empty()) => {
                return Err(ConfigError::invalid(
                    "workload.command",
                    "needs a program name first: [\"prog\", \"arg\", ...]",
                ));
            }
            Some(_) => {}
        }
        match &self.output {
            None => {
                return Err(ConfigError::invalid(
                    "workload.output",
                    "the command kind needs an output: a file for a split file, a directory \
                     for a directory",
                ));
            }
            Some(p) if p.as_os_str().is_empty() => {
                return Err(ConfigError::invalid("workload.output", "is empty"));
            }
            Some(_) => {}
        }
        if let Some(split) = &self.split {
            match (split.lines, split.bytes) {
                (Some(n), None) => check_range("workload.split.lines", n, 1, u64::MAX)?,
                (None, Some(n)) => {
                    check_range("workload.split.bytes", n, 1, limits::MAX_PIECE_BYTES)?
                }
                _ => {
                    return Err(ConfigError::invalid(
                        "workload.split",
                        "takes exactly one of {\"lines\": N} and {\"bytes\": N}",
                    ));
                }
            }
        }
        match self.align.as_deref() {
            None | Some("none") => {}
            Some("lines") if self.split.is_some_and(|s| s.bytes.is_some()) => {}
            Some("lines") => {
                return Err(ConfigError::invalid(
                    "workload.align",
                    "\"lines\" applies to a split by bytes ({\"bytes\": N})",
                ));
            }
            Some(other) => {
                return Err(ConfigError::invalid(
                    "workload.align",
                    format!("{other:?} is not one of \"lines\", \"none\""),
                ));
            }
        }
        if let Some(t) = self.timeout_s {
            check_finite("workload.timeout_s", t)?;
            check_range("workload.timeout_s", t, 0.001, 7.0 * 86_400.0)?;
        }
        if let Some(r) = self.retries {
            check_range("workload.retries", r, 0, limits::MAX_RETRIES)?;
        }
        if let Some(f) = self.verify_sample {
            check_finite("workload.verify_sample", f)?;
            check_range("workload.verify_sample", f, 0.0, 1.0)?;
        }
        Ok(())
    }

    /// The run's jobs: the initial ones and those arriving (at most the
    /// largest run; validation refuses a stream that would go past it).
    pub fn schedule(&self) -> crate::arrivals::Schedule {
        crate::arrivals::Schedule::new(self.jobs, self.arrivals.as_ref(), limits::MAX_JOBS)
    }
}

impl WorkloadConfig {
    /// The whole vector must fit in the master's memory.
    fn check_fits(&self, machine: &Machine) -> Result<(), ConfigError> {
        let total = u64::from(self.jobs) * u64::from(self.elements_per_job);
        let bytes = total * 8;
        let memory = machine.memory_bytes;
        if memory > 0 && bytes > memory {
            return Err(ConfigError::invalid(
                "workload",
                format!(
                    "jobs * elements_per_job = {total} doubles ({:.1} GiB) is more than this \
                     machine's memory ({:.1} GiB): the master holds the whole vector",
                    bytes as f64 / f64::from(1u32 << 30),
                    memory as f64 / f64::from(1u32 << 30)
                ),
            ));
        }
        Ok(())
    }
}

impl PolicyConfig {
    /// The threshold in force: the config's, or the policy's default.
    pub fn threshold(&self) -> u32 {
        self.threshold
            .unwrap_or_else(|| crate::policy::default_threshold(&self.transfer))
    }

    /// Checks every field's range and the policy's name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !POLICIES.contains(&self.transfer.as_str()) {
            return Err(ConfigError::invalid(
                "policy.transfer",
                format!(
                    "unknown policy \"{}\": expected one of {}",
                    self.transfer,
                    POLICIES
                        .iter()
                        .map(|p| format!("\"{p}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        check_range(
            "policy.threshold",
            self.threshold(),
            0,
            limits::MAX_THRESHOLD,
        )?;
        let (lo, hi) = limits::STATE_INTERVAL_MS;
        check_range("policy.state_interval_ms", self.state_interval_ms, lo, hi)?;
        Ok(())
    }
}

impl ConfigFile {
    /// Checks every value and resolves the addresses, on this machine.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        self.validate_on(&Machine::probe())
    }

    /// Checks every value and resolves the addresses, for `machine`.
    pub fn validate_on(&self, machine: &Machine) -> Result<Config, ConfigError> {
        let master = self.master.validate(Role::Master, machine)?;
        let slave = self.slave.validate(Role::Slave, machine)?;
        check_address_pair(master.address, slave.address)?;
        if master.address == slave.address {
            return Err(ConfigError::invalid(
                "slave.address",
                format!(
                    "{} is also the master's address: the two nodes need different addresses \
                     (on one machine, different ports)",
                    slave.address
                ),
            ));
        }
        self.workload.validate()?;
        self.workload.check_fits(machine)?;
        self.policy.validate()?;
        let plain_loopback = |n: &NodeConfig| n.address.ip().is_loopback() && n.link.is_none();
        let plain_loopback = plain_loopback(&master) && plain_loopback(&slave);
        let datagram_bytes = match self.network.datagram_bytes {
            Some(bytes) => {
                let (lo, hi) = limits::DATAGRAM_BYTES;
                check_range("network.datagram_bytes", bytes, lo, hi)?;
                bytes
            }
            None if plain_loopback => LOOPBACK_DATAGRAM_BYTES,
            None => ETHERNET_DATAGRAM_BYTES,
        };
        let (lo, hi) = limits::PEER_TIMEOUT_MS;
        check_range("peer_timeout_ms", self.peer_timeout_ms, lo, hi)?;
        if self.peer_timeout_ms < 2 * self.policy.state_interval_ms {
            return Err(ConfigError::invalid(
                "peer_timeout_ms",
                format!(
                    "{} must be at least twice policy.state_interval_ms ({}), or a healthy peer \
                     would be declared lost between two state messages",
                    self.peer_timeout_ms, self.policy.state_interval_ms
                ),
            ));
        }
        let (lo, hi) = limits::CONNECT_TIMEOUT_MS;
        check_range("connect_timeout_ms", self.connect_timeout_ms, lo, hi)?;
        let key = self.key(&master, &slave)?;
        Ok(Config {
            master,
            slave,
            workload: self.workload.clone(),
            policy: self.policy.clone(),
            datagram_bytes,
            compression: self.network.compression.unwrap_or(true),
            peer_timeout_ms: self.peer_timeout_ms,
            connect_timeout_ms: self.connect_timeout_ms,
            key,
        })
    }

    /// The datagram key: from the secret, or the demo key when both nodes
    /// are on loopback and no secret is set.
    fn key(&self, master: &NodeConfig, slave: &NodeConfig) -> Result<Key, ConfigError> {
        match &self.secret {
            Some(secret) => {
                let chars = secret.chars().count();
                if chars < auth::MIN_SECRET_CHARS {
                    return Err(ConfigError::invalid(
                        "secret",
                        format!(
                            "is {chars} characters long: it needs at least {} \
                             (`loadbal keygen` prints a good one)",
                            auth::MIN_SECRET_CHARS
                        ),
                    ));
                }
                if chars > auth::MAX_SECRET_CHARS {
                    return Err(ConfigError::invalid(
                        "secret",
                        format!(
                            "is {chars} characters long: at most {} are allowed",
                            auth::MAX_SECRET_CHARS
                        ),
                    ));
                }
                Ok(Key::from_secret(secret))
            }
            None => {
                for (role, node) in [(Role::Master, master), (Role::Slave, slave)] {
                    if !node.address.ip().is_loopback() {
                        return Err(ConfigError::invalid(
                            "secret",
                            format!(
                                "not set, and the {role}'s address {} is not a loopback \
                                 address: datagrams between machines must be authenticated \
                                 with a shared secret. Run `loadbal keygen` and add \
                                 \"secret\": \"<what it prints>\" to the config.json of both \
                                 nodes",
                                node.address
                            ),
                        ));
                    }
                }
                Ok(Key::demo())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, ConfigError> {
        parse(text, "test.json")?.validate()
    }

    fn err(text: &str) -> String {
        check(text).expect_err(text).to_string()
    }

    #[test]
    fn empty_object_is_the_defaults() {
        let config = check("{}").unwrap();
        assert_eq!(config.master.address, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(config.slave.address, "127.0.0.1:7002".parse().unwrap());
        assert_eq!(config.master.throttle, 1.0);
        assert_eq!(config.master.workers, 1);
        assert_eq!(config.workload, WorkloadConfig::default());
        assert_eq!(config.workload.jobs, 1024);
        assert_eq!(config.workload.elements_per_job, 32768);
        assert_eq!(config.policy.transfer, "sender");
        assert_eq!(config.policy.threshold(), 30);
        assert_eq!(config.policy.threshold, None);
        assert_eq!(config.policy.state_interval_ms, 500);
        assert_eq!(config.peer_timeout_ms, 3000);
        // Both on loopback: the largest datagrams.
        assert_eq!(config.datagram_bytes, 65507);
    }

    #[test]
    fn datagrams_are_large_only_on_a_plain_loopback() {
        let size = |text: &str| check(text).unwrap().datagram_bytes;
        assert_eq!(size("{}"), 65507);
        assert_eq!(
            size(r#"{"slave": {"address": "127.0.0.2:7002"}}"#),
            65507,
            "all of 127.0.0.0/8 is loopback"
        );
        assert_eq!(
            size(r#"{"slave": {"link": {"delay_ms": 5}}}"#),
            1472,
            "an emulated link stands for a real network"
        );
        assert_eq!(
            size(r#"{"slave": {"address": "10.1.2.3:7002"}, "secret": "0123456789abcdef"}"#),
            1472
        );
        assert_eq!(size(r#"{"network": {"datagram_bytes": 9000}}"#), 9000);
        assert_eq!(size(r#"{"network": {}}"#), 65507);
    }

    #[test]
    fn compression_is_on_unless_the_config_turns_it_off() {
        let on = |text: &str| check(text).unwrap().compression;
        assert!(on("{}"));
        assert!(!on(r#"{"network": {"compression": false}}"#));
        assert!(on(r#"{"master": {"link": {"bandwidth_mbit": 10}}}"#));
        assert!(on(
            r#"{"slave": {"address": "10.1.2.3:7002"}, "secret": "0123456789abcdef"}"#
        ));
        assert!(on(r#"{"network": {"compression": true}}"#));
        assert!(!on(
            r#"{"master": {"link": {"delay_ms": 5}}, "network": {"compression": false}}"#
        ));
    }

    #[test]
    fn the_shipped_config_json_is_the_defaults() {
        let text = include_str!("../config.json");
        let shipped = parse(text, "config.json").unwrap();
        // It spells out the sender policy's threshold, for a user to edit.
        let mut defaults = ConfigFile::default();
        assert_eq!(defaults.policy.threshold(), 30);
        defaults.policy.threshold = Some(30);
        assert_eq!(shipped, defaults);
    }

    #[test]
    fn a_partial_node_keeps_its_roles_default_address() {
        let config = check(r#"{"slave": {"throttle": 0.5}}"#).unwrap();
        assert_eq!(config.slave.address, "127.0.0.1:7002".parse().unwrap());
        assert_eq!(config.slave.throttle, 0.5);
    }

    #[test]
    fn host_names_resolve() {
        let config = check(r#"{"master": {"address": "localhost:7101"}}"#).unwrap();
        assert_eq!(config.master.address.port(), 7101);
        assert!(config.master.address.ip().is_loopback());
    }

    #[test]
    fn workers_zero_means_one_per_cpu() {
        let config = check(r#"{"master": {"workers": 0}}"#).unwrap();
        assert_eq!(config.master.workers, Machine::probe().logical_cpus);
    }

    #[test]
    fn unknown_fields_name_field_line_and_column() {
        assert_eq!(
            err("{\n  \"master\": {\"adress\": \"1.2.3.4:5\"}\n}"),
            "test.json: master.adress: unknown field `adress`, expected one of `address`, \
             `throttle`, `workers`, `link` (at line 2, column 21)"
        );
        assert_eq!(
            err("{\"colour\": 1}"),
            "test.json: colour: unknown field `colour`, expected one of `master`, `slave`, `workload`, \
             `policy`, `network`, `peer_timeout_ms`, `connect_timeout_ms`, `secret` (at line 1, column 9)"
        );
    }

    #[test]
    fn wrong_types_and_broken_json_are_parse_errors() {
        assert_eq!(
            err(r#"{"workload": {"jobs": "many"}}"#),
            "test.json: workload.jobs: invalid type: string \"many\", expected u32 \
             (at line 1, column 28)"
        );
        assert_eq!(
            err(r#"{"workload": {"jobs": -1}}"#),
            "test.json: workload.jobs: invalid value: integer `-1`, expected u32 \
             (at line 1, column 24)"
        );
        assert!(err("{\"master\": ").contains("EOF while parsing"));
    }

    #[test]
    fn out_of_range_values_name_field_and_range() {
        assert_eq!(
            err(r#"{"master": {"throttle": 1.5}}"#),
            "master.throttle: 1.5 is out of range: must be from 0 to 1"
        );
        assert_eq!(
            err(r#"{"slave": {"throttle": -0.1}}"#),
            "slave.throttle: -0.1 is out of range: must be from 0 to 1"
        );
        assert_eq!(
            err(r#"{"workload": {"jobs": 0}}"#),
            "workload.jobs: 0 is out of range: must be from 1 to 1048576"
        );
        assert_eq!(
            err(r#"{"workload": {"elements_per_job": 0}}"#),
            "workload.elements_per_job: 0 is out of range: must be from 1 to 8388608"
        );
        assert_eq!(
            err(r#"{"policy": {"state_interval_ms": 5}}"#),
            "policy.state_interval_ms: 5 is out of range: must be from 10 to 60000"
        );
        assert_eq!(
            err(r#"{"network": {"datagram_bytes": 70000}}"#),
            "network.datagram_bytes: 70000 is out of range: must be from 576 to 65507"
        );
        assert_eq!(
            err(r#"{"master": {"workers": 1000}}"#),
            "master.workers: 1000 is out of range: must be from 0 to 256"
        );
        assert!(
            err(r#"{"workload": {"jobs": 1048576, "elements_per_job": 8388608}}"#).starts_with(
                "workload: jobs * elements_per_job = 8796093022208 doubles is too large"
            )
        );
        assert_eq!(
            err(r#"{"peer_timeout_ms": 600}"#),
            "peer_timeout_ms: 600 must be at least twice policy.state_interval_ms (500), or a \
             healthy peer would be declared lost between two state messages"
        );
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            err(r#"{"slave": {"address": "127.0.0.1:7001"}}"#),
            "slave.address: 127.0.0.1:7001 is also the master's address: the two nodes need \
             different addresses (on one machine, different ports)"
        );
        assert_eq!(
            err(r#"{"master": {"address": "nonsense"}}"#),
            "master.address: \"nonsense\" is not an address: expected IP:PORT, e.g. 127.0.0.1:7001"
        );
        assert_eq!(
            err(r#"{"master": {"address": "127.0.0.1:0"}}"#),
            "master.address: 127.0.0.1:0: port must be from 1 to 65535"
        );
        assert!(
            err(r#"{"master": {"address": "no-such-host.invalid:7001"}}"#)
                .starts_with("master.address: cannot resolve \"no-such-host.invalid:7001\"")
        );
    }

    #[test]
    fn links_are_checked_and_a_plain_link_is_none() {
        let config = check(
            r#"{"slave": {"link": {"loss": 0.002, "delay_ms": 54, "jitter_ms": 32,
                                    "bandwidth_mbit": 10, "seed": 1}}}"#,
        )
        .unwrap();
        let link = config.slave.link.unwrap();
        assert_eq!((link.loss, link.delay_ms, link.seed), (0.002, 54.0, 1));
        assert_eq!(config.master.link, None);
        assert_eq!(
            check(r#"{"master": {"link": {}}}"#).unwrap().master.link,
            None
        );
        assert_eq!(
            err(r#"{"master": {"link": {"loss": 1.5}}}"#),
            "master.link.loss: 1.5 is out of range: must be from 0 to 1"
        );
        assert_eq!(
            err(r#"{"slave": {"link": {"jitter_ms": -1}}}"#),
            "slave.link.jitter_ms: -1 is out of range: must be from 0 to 60000"
        );
        assert!(
            err(r#"{"slave": {"link": {"drop": 0.1}}}"#)
                .starts_with("test.json: slave.link.drop: unknown field `drop`")
        );
    }

    #[test]
    fn unknown_policy_is_named() {
        assert_eq!(
            err(r#"{"policy": {"transfer": "random"}}"#),
            "policy.transfer: unknown policy \"random\": expected one of \"sender\", \
             \"receiver\", \"symmetric\", \"completion\", \"adaptive\", \"none\", \
             \"classic-sender\", \"classic-receiver\", \"classic-symmetric\", \"jsq\""
        );
    }

    #[test]
    fn a_missing_named_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/loadbal.json"))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read config file /nonexistent/loadbal.json:"),
            "{e}"
        );
    }

    // Regression (issue 11): address pairs that could never talk passed
    // validation, and the master then waited a minute for a running slave.
    #[test]
    fn addresses_that_can_never_talk_name_both_fields() {
        assert_eq!(
            err(r#"{"master": {"address": "[::1]:7001"}, "slave": {"address": "127.0.0.1:7002"}}"#),
            "slave.address: 127.0.0.1:7002 and master.address [::1]:7001 are of different \
             address families (IPv4 and IPv6): the two nodes could never talk; give both IPv4 \
             or both IPv6 addresses"
        );
        assert_eq!(
            err(r#"{"master": {"address": "0.0.0.0:7001"}}"#),
            "master.address: 0.0.0.0:7001 is the unspecified address (it means \"any\" to \
             bind, and reaches no one): the master and the slave each need an address of their \
             own that the other can send to (master.address 0.0.0.0:7001, slave.address \
             127.0.0.1:7002)"
        );
        assert!(
            err(r#"{"master": {"address": "255.255.255.255:7001"}}"#)
                .starts_with("master.address: 255.255.255.255:7001 is the broadcast address:")
        );
        assert!(
            err(r#"{"slave": {"address": "239.1.2.3:7002"}}"#)
                .starts_with("slave.address: 239.1.2.3:7002 is a multicast address:")
        );
        assert!(
            err(r#"{"slave": {"address": "[::]:7002"}, "master": {"address": "[::1]:7001"}}"#)
                .starts_with("slave.address: [::]:7002 is the unspecified address")
        );
        // Both IPv6 on loopback is fine.
        check(r#"{"master": {"address": "[::1]:7001"}, "slave": {"address": "[::1]:7002"}}"#)
            .unwrap();
    }

    // Regression (issue 11): a bandwidth of 1e-300 passed and panicked the
    // link thread, which then dropped every datagram.
    #[test]
    fn a_vanishing_bandwidth_is_refused() {
        assert_eq!(
            err(r#"{"slave": {"link": {"bandwidth_mbit": 1e-300}}}"#),
            "slave.link.bandwidth_mbit: 1e-300 is out of range: must be 0 (unlimited) or from \
             0.001 to 1000000"
        );
        check(r#"{"slave": {"link": {"bandwidth_mbit": 0.001}}}"#).unwrap();
    }

    #[test]
    fn a_byte_order_mark_is_accepted_and_a_comment_named() {
        let config = check("\u{feff}{\"workload\": {\"jobs\": 8}}").unwrap();
        assert_eq!(config.workload.jobs, 8);
        assert_eq!(
            err("{\n  // the slave\n  \"slave\": {}\n}"),
            "test.json: comments are not JSON: remove the // or /* */ comment (at line 2, column 3)"
        );
        assert_eq!(
            err("{\"workload\": /* x */ {}}"),
            "test.json: comments are not JSON: remove the // or /* */ comment (at line 1, column 14)"
        );
        // Inside a string it is text, not a comment.
        assert!(err(r#"{"secret": "http://x/y*/z"}"#).starts_with("secret: is 13 characters"));
    }

    #[test]
    fn the_vector_must_fit_the_machine_given() {
        let small = Machine {
            memory_bytes: 1 << 30,
            logical_cpus: 3,
        };
        let file = parse(
            r#"{"workload": {"jobs": 1024, "elements_per_job": 262144}, "master": {"workers": 0}}"#,
            "test.json",
        )
        .unwrap();
        assert_eq!(
            file.validate_on(&small).unwrap_err().to_string(),
            "workload: jobs * elements_per_job = 268435456 doubles (2.0 GiB) is more than this \
             machine's memory (1.0 GiB): the master holds the whole vector"
        );
        let big = Machine {
            memory_bytes: 4 << 30,
            ..small
        };
        let config = file.validate_on(&big).unwrap();
        assert_eq!(config.master.workers, 3);
        // Unknown memory is not checked.
        let unknown = Machine {
            memory_bytes: 0,
            ..small
        };
        assert!(file.validate_on(&unknown).is_ok());
    }

    #[test]
    fn a_read_error_names_its_cause_once() {
        let e = load(Some(Path::new("/nonexistent/loadbal.json"))).unwrap_err();
        let chained = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(chained.matches("No such file").count(), 1, "{chained}");
    }
}
