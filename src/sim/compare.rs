//! `loadbal compare`: every policy over a grid of scenarios — the four
//! throttle pairs of the bench on a plain link and on the assignment's WAN,
//! and a throttle drop mid-run — simulated (seconds) or run for real on
//! loopback. Writes `compare.md`, `compare.json` and charts of finish time,
//! jobs moved and bytes moved as PNG and SVG.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, Role};
use crate::link::LinkConfig;

use super::ThrottleChange;

/// The throttle pairs (master, slave) of the comparison and the bench.
pub const THROTTLE_PAIRS: [(f64, f64); 4] = [(1.0, 1.0), (1.0, 0.3), (0.25, 1.0), (0.5, 0.75)];

/// The link of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// Loopback, no emulation.
    Plain,
    /// The assignment's WAN: 10 Mbit/s, 54 +- 32 ms, 0.2 % loss each way.
    Wan,
    /// The link a replayed run had (`compare --replay`).
    Replayed,
}

impl Link {
    /// The emulated link of one direction.
    pub fn config(self, seed: u64) -> Option<LinkConfig> {
        match self {
            Link::Plain | Link::Replayed => None,
            Link::Wan => Some(LinkConfig::assignment(seed)),
        }
    }
}

/// One scenario of the grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// A short name for tables and charts.
    pub name: String,
    /// Throttles at the start (master, slave).
    pub throttles: (f64, f64),
    /// The link, both ways.
    pub link: Link,
    /// A throttle change mid-run.
    pub change: Option<ThrottleChange>,
}

/// The grid: the throttle pairs on each link, then a drop of the slave to
/// 0.2 a third of the way through an ideal run at (1, 1).
pub fn grid(ideal_at_full: f64) -> Vec<Scenario> {
    let mut scenarios = Vec::new();
    for link in [Link::Plain, Link::Wan] {
        for throttles in THROTTLE_PAIRS {
            let link_name = match link {
                Link::Plain | Link::Replayed => "plain",
                Link::Wan => "WAN",
            };
            scenarios.push(Scenario {
                name: format!("{}/{} {link_name}", throttles.0, throttles.1),
                throttles,
                link,
                change: None,
            });
        }
    }
    let at_s = (ideal_at_full / 3.0 * 1000.0).round() / 1000.0;
    scenarios.push(Scenario {
        name: format!("1/1, slave to 0.2 at {at_s} s"),
        throttles: (1.0, 1.0),
        link: Link::Plain,
        change: Some(ThrottleChange {
            at_s,
            role: Role::Slave,
            throttle: 0.2,
        }),
    });
    scenarios
}

/// The config of one scenario and policy, from the user's; `compression`
/// is the config file's `network.compression` (None: on except on a plain
/// loopback, as for a run).
pub fn scenario_config(
    base: &Config,
    compression: Option<bool>,
    scenario: &Scenario,
    policy: &str,
) -> Config {
    let mut c = base.clone();
    c.master.throttle = scenario.throttles.0;
    c.slave.throttle = scenario.throttles.1;
    c.master.link = scenario.link.config(1);
    c.slave.link = scenario.link.config(2);
    if scenario.link == Link::Wan {
        // As the config gives them for an emulated link, unless it says.
        c.datagram_bytes = crate::config::ETHERNET_DATAGRAM_BYTES;
        c.compression = compression.unwrap_or(true);
    }
    // The config's threshold is its own policy's; the others take theirs.
    let threshold = if policy == base.policy.transfer {
        base.policy.threshold
    } else {
        None
    };
    c.policy.transfer = policy.to_owned();
    c.policy.threshold = threshold;
    c
}

/// One policy in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The scenario's name.
    pub scenario: String,
    /// The policy.
    pub policy: String,
    /// Seconds from the bootstrap to the end (None if it did not finish).
    pub finish_s: Option<f64>,
    /// The ideal finishing time.
    pub ideal_s: f64,
    /// `ideal_s / finish_s`.
    pub efficiency: Option<f64>,
    /// Jobs the policy moved, both ways.
    pub jobs_moved: u32,
    /// Their bytes.
    pub bytes_moved: u64,
    /// Policy transfers.
    pub transfers: u32,
    /// Why there is no result, if there is none.
    pub error: Option<String>,
}

impl Row {
    /// A simulated run's row.
    fn predicted(scenario: &Scenario, policy: &str, p: &super::Prediction) -> Self {
        Row {
            scenario: scenario.name.clone(),
            policy: policy.to_owned(),
            finish_s: Some(p.finish_s),
            ideal_s: p.ideal_s,
            efficiency: Some(p.efficiency),
            jobs_moved: p.jobs_moved,
            bytes_moved: p.bytes_moved,
            transfers: p.transfers,
            error: None,
        }
    }

    /// A run that gave no result, and why.
    fn failed(scenario: &Scenario, policy: &str, ideal_s: f64, why: String) -> Self {
        Row {
            scenario: scenario.name.clone(),
            policy: policy.to_owned(),
            finish_s: None,
            ideal_s,
            efficiency: None,
            jobs_moved: 0,
            bytes_moved: 0,
            transfers: 0,
            error: Some(why),
        }
    }
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// "simulated" or "real".
    pub mode: String,
    /// The machine the simulations model.
    pub machine: super::MachineModel,
    /// The workload, in words.
    pub workload: String,
    /// The scenarios.
    pub scenarios: Vec<Scenario>,
    /// The policies, in the order of the tables.
    pub policies: Vec<String>,
    /// Every policy in every scenario.
    pub rows: Vec<Row>,
    /// Seconds the comparison took.
    pub seconds: f64,
}

/// Simulates every policy in every scenario of the grid.
pub fn simulate_all(
    base: &Config,
    compression: Option<bool>,
    machine: &super::MachineModel,
    progress: &mut dyn FnMut(&str),
) -> Comparison {
    let started = std::time::Instant::now();
    let rate = machine.rate_jobs_per_s;
    // The drop comes a third of the way into an ideal run at (1, 1).
    let mut full = base.clone();
    (full.master.throttle, full.slave.throttle) = (1.0, 1.0);
    let scenarios = grid(super::ideal_seconds(&full, rate, &[]));
    let policies: Vec<String> = crate::policy::NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut rows = Vec::new();
    for scenario in &scenarios {
        for policy in &policies {
            let config = scenario_config(base, compression, scenario, policy);
            let changes: Vec<ThrottleChange> = scenario.change.into_iter().collect();
            let ideal_s = super::ideal_seconds(&config, rate, &changes);
            let row = match super::simulate(&config, machine, &changes, 1) {
                Ok(sim) => Row::predicted(scenario, policy, &sim.prediction),
                Err(e) => Row::failed(scenario, policy, ideal_s, e.to_string()),
            };
            progress(&format!(
                "{:<28} {:<18} {}",
                scenario.name,
                policy,
                row.finish_s
                    .map_or_else(|| "no result".to_owned(), |f| format!("{f:.3} s"))
            ));
            rows.push(row);
        }
    }
    Comparison {
        mode: "simulated".to_owned(),
        machine: *machine,
        workload: describe(base),
        scenarios,
        policies,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Every policy on a replayed run (`compare --replay`): one scenario,
/// `name`, the run's own throttles, throttle changes and link.
pub fn replay_all(
    replay: &super::replay::Replay,
    name: &str,
    progress: &mut dyn FnMut(&str),
) -> Comparison {
    let started = std::time::Instant::now();
    let machine = replay.machine();
    let base = &replay.config;
    let scenario = Scenario {
        name: name.to_owned(),
        throttles: (base.master.throttle, base.slave.throttle),
        link: Link::Replayed,
        change: replay.changes.first().copied(),
    };
    let policies: Vec<String> = crate::policy::NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let ideal_s = replay.ideal_s(base, &replay.changes);
    let mut rows = Vec::new();
    for policy in &policies {
        let mut config = base.clone();
        if *policy != base.policy.transfer {
            config.policy.transfer = policy.clone();
            config.policy.threshold = None;
        }
        let row = match replay.run(&config, &replay.changes, 1) {
            Ok(sim) => Row::predicted(&scenario, policy, &sim.prediction),
            Err(e) => Row::failed(&scenario, policy, ideal_s, e.to_string()),
        };
        progress(&format!(
            "{:<18} {}",
            policy,
            row.finish_s
                .map_or_else(|| "no result".to_owned(), |f| format!("{f:.3} s"))
        ));
        rows.push(row);
    }
    Comparison {
        mode: "replayed".to_owned(),
        machine,
        workload: describe(base),
        scenarios: vec![scenario],
        policies,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Runs every policy for real in the plain-link scenarios, both nodes in
/// this process on loopback; the WAN scenarios (minutes per run at
/// 10 Mbit/s) are simulated, and marked so.
pub fn run_real(
    base: &Config,
    compression: Option<bool>,
    machine: &super::MachineModel,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Comparison> {
    let started = std::time::Instant::now();
    let rate = machine.rate_jobs_per_s;
    let mut simulated = simulate_all(base, compression, machine, &mut |_| {});
    let scenarios = simulated.scenarios.clone();
    for scenario in scenarios.iter().filter(|s| s.link == Link::Plain) {
        for policy in simulated.policies.clone() {
            let config = scenario_config(base, compression, scenario, &policy);
            let changes: Vec<ThrottleChange> = scenario.change.into_iter().collect();
            let ideal_s = super::ideal_seconds(&config, rate, &changes);
            let row = match crate::local::run(&config, &changes) {
                Ok(crate::local::LocalRun { report, .. }) => {
                    let moved = report.jobs_moved.to_master + report.jobs_moved.to_slave;
                    let finish = report.elapsed_s.total;
                    Row {
                        scenario: scenario.name.clone(),
                        policy: policy.clone(),
                        finish_s: Some(finish),
                        ideal_s,
                        efficiency: (finish > 0.0).then(|| ideal_s / finish),
                        jobs_moved: moved,
                        bytes_moved: u64::from(moved)
                            * crate::protocol::batch::job_bytes(base.workload.elements_per_job)
                                as u64,
                        transfers: report.transfers.len() as u32,
                        error: None,
                    }
                }
                Err(e) => Row::failed(scenario, &policy, ideal_s, format!("{e:#}")),
            };
            progress(&format!(
                "{:<28} {:<18} {} (real)",
                scenario.name,
                policy,
                row.finish_s
                    .map_or_else(|| "no result".to_owned(), |f| format!("{f:.3} s"))
            ));
            if let Some(slot) = simulated
                .rows
                .iter_mut()
                .find(|r| r.scenario == row.scenario && r.policy == row.policy)
            {
                *slot = row;
            }
        }
    }
    for scenario in simulated.scenarios.iter_mut() {
        if scenario.link == Link::Wan {
            let old = scenario.name.clone();
            scenario.name = format!("{old} (sim)");
            for row in simulated.rows.iter_mut().filter(|r| r.scenario == old) {
                row.scenario = scenario.name.clone();
            }
        }
    }
    simulated.mode = "real".to_owned();
    simulated.seconds = started.elapsed().as_secs_f64();
    Ok(simulated)
}

/// The workload in words.
pub fn describe(c: &Config) -> String {
    let w = c.workload.clone();
    format!(
        "{} jobs of {} doubles, {} iterations; {} + {} workers",
        w.jobs,
        w.elements_per_job,
        w.iterations,
        c.master.workers.max(1),
        c.slave.workers.max(1)
    )
}

impl Comparison {
    fn row(&self, scenario: &str, policy: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.scenario == scenario && r.policy == policy)
    }

    /// The best policy of a scenario: the earliest finish.
    pub fn best(&self, scenario: &str) -> Option<&Row> {
        self.rows
            .iter()
            .filter(|r| r.scenario == scenario && r.finish_s.is_some())
            .min_by(|a, b| {
                a.finish_s
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.finish_s.unwrap_or(f64::MAX))
            })
    }

    /// The Markdown report: one table per measure, policies down, scenarios
    /// across.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# loadbal compare ({})\n\n{}; {} policies in {} scenarios{}; {:.1} s.\n\n",
            self.mode,
            self.workload,
            self.policies.len(),
            self.scenarios.len(),
            if self.mode == "simulated" {
                format!(
                    ", a worker computing {:.1} jobs/s at full throttle, moving a byte costing {:.2} ns of CPU at each end, {} logical CPUs",
                    self.machine.rate_jobs_per_s,
                    self.machine.seconds_per_byte * 1e9,
                    self.machine.cores
                )
            } else {
                String::new()
            },
            self.seconds
        );
        if self.mode == "replayed" {
            s.push_str(
                "Every policy on a real run replayed: each job's measured cost, the link each \
                 node measured, the run's throttles and throttle changes.\n\n",
            );
        } else {
            s.push_str(
                "Scenarios: throttles master/slave; `plain` is loopback, `WAN` the assignment's \
                 10 Mbit/s, 54 +- 32 ms, 0.2 % loss each way.\n\n",
            );
        }
        type Cell = fn(&Row) -> String;
        let tables: [(&str, Cell); 5] = [
            ("Finish time, s", |r| {
                r.finish_s
                    .map_or_else(|| "-".to_owned(), |f| format!("{f:.3}"))
            }),
            ("Efficiency against the ideal", |r| {
                r.efficiency
                    .map_or_else(|| "-".to_owned(), |e| format!("{e:.3}"))
            }),
            ("Jobs moved", |r| r.jobs_moved.to_string()),
            ("Bytes moved, MiB", |r| {
                format!("{:.1}", r.bytes_moved as f64 / f64::from(1 << 20))
            }),
            ("Transfers", |r| r.transfers.to_string()),
        ];
        for (title, cell) in tables {
            s.push_str(&format!("## {title}\n\n| policy |"));
            for sc in &self.scenarios {
                s.push_str(&format!(" {} |", sc.name));
            }
            s.push_str("\n|---|");
            for _ in &self.scenarios {
                s.push_str("---:|");
            }
            s.push('\n');
            for policy in &self.policies {
                s.push_str(&format!("| {policy} |"));
                for sc in &self.scenarios {
                    let text = self
                        .row(&sc.name, policy)
                        .map_or_else(|| "-".to_owned(), cell);
                    let best = self.best(&sc.name).is_some_and(|b| b.policy == *policy);
                    if best && title.starts_with("Finish") {
                        s.push_str(&format!(" **{text}** |"));
                    } else {
                        s.push_str(&format!(" {text} |"));
                    }
                }
                s.push('\n');
            }
            s.push('\n');
        }
        s.push_str("## Best policy per scenario\n\n| scenario | policy | finish, s | efficiency |\n|---|---|---:|---:|\n");
        for sc in &self.scenarios {
            if let Some(b) = self.best(&sc.name) {
                s.push_str(&format!(
                    "| {} | {} | {:.3} | {:.3} |\n",
                    sc.name,
                    b.policy,
                    b.finish_s.unwrap_or(0.0),
                    b.efficiency.unwrap_or(0.0)
                ));
            }
        }
        let errors: Vec<&Row> = self.rows.iter().filter(|r| r.error.is_some()).collect();
        if !errors.is_empty() {
            s.push_str("\n## Runs without a result\n\n");
            for r in errors {
                s.push_str(&format!(
                    "- {} / {}: {}\n",
                    r.scenario,
                    r.policy,
                    r.error.as_deref().unwrap_or("")
                ));
            }
        }
        s
    }

    /// Writes `compare.md`, `compare.json` and the charts into `dir`
    /// (created if missing); returns the files written.
    pub fn write(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        use anyhow::Context;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut written = Vec::new();
        let md = dir.join("compare.md");
        crate::files::write(&md, self.markdown().as_bytes())
            .with_context(|| format!("cannot write {}", md.display()))?;
        written.push(md);
        let json = dir.join("compare.json");
        // Plain structs of numbers and strings always serialise.
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        crate::files::write(&json, text.as_bytes())
            .with_context(|| format!("cannot write {}", json.display()))?;
        written.push(json);
        let csv = dir.join("compare.csv");
        // `files::write` ends the file with its newline.
        crate::files::write(&csv, self.csv().trim_end().as_bytes())
            .with_context(|| format!("cannot write {}", csv.display()))?;
        written.push(csv);
        written.extend(super::chart::write_all(self, dir)?);
        Ok(written)
    }

    /// Every row as CSV, a header first: for a spreadsheet or a script.
    /// Empty cells where a run gave no result; its error in the last
    /// column, quoted.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "scenario,policy,finish_s,ideal_s,efficiency,jobs_moved,bytes_moved,transfers,error\n",
        );
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let num = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.6}"));
        for r in &self.rows {
            out.push_str(&format!(
                "{},{},{},{:.6},{},{},{},{},{}\n",
                quote(&r.scenario),
                quote(&r.policy),
                num(r.finish_s),
                r.ideal_s,
                num(r.efficiency),
                r.jobs_moved,
                r.bytes_moved,
                r.transfers,
                r.error.as_deref().map_or_else(String::new, quote)
            ));
        }
        out
    }
}
