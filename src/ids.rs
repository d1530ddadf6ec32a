//! The two words every part of loadbal shares, in a module that imports
//! nothing of the crate: which of the two peers a node is, and a job's id.
//! The config, the arrivals, the workload and the core all speak of them;
//! with them here, none of those imports another for them (the config, the
//! arrivals and the workload used to import each other in a circle).
//! `config::Role` and `workload::JobId` name them too.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A job's identifier: its index in the run, `0..jobs`.
pub type JobId = u32;

/// Which of the two peers a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds the whole workload, sends half at bootstrap, verifies at the end.
    Master,
    /// Receives half the workload and returns every result to the master.
    Slave,
}

impl Role {
    /// The other role.
    pub fn peer(self) -> Role {
        match self {
            Role::Master => Role::Slave,
            Role::Slave => Role::Master,
        }
    }

    /// The lower-case name used in config keys, logs and the report.
    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave => "slave",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
