//! A run as a trace file in the Trace Event Format (the JSON that
//! Perfetto and `chrome://tracing` open): a process per node, a track per
//! worker with a span per job it computed, the batches the node sent and
//! received as async spans (they overlap: several are in flight at once),
//! and counters for its queue and CPU.
//!
//! Times are microseconds since the earliest node's run started: in the
//! demo both nodes share one clock, so their tracks line up exactly; a
//! node's own trace starts at its own run.

use std::path::Path;

use serde_json::{Value, json};

use crate::ids::Role;
use crate::node::core::{JobCost, PathEstimate, RunInfo, Timeline};
use crate::node::{NodeView, Snapshot};
use crate::protocol::{BatchKind, Phase};

/// One node's part of a trace.
#[derive(Debug, Clone, Copy)]
pub struct TracedNode<'a> {
    /// The node's role.
    pub role: Role,
    /// Its worker threads (a track each, idle or not).
    pub workers: usize,
    /// Seconds from the trace's zero to this node's run start.
    pub offset_s: f64,
    /// What happened on it.
    pub timeline: &'a Timeline,
}

fn pid(role: Role) -> u32 {
    match role {
        Role::Master => 1,
        Role::Slave => 2,
    }
}

fn micros(seconds: f64) -> f64 {
    (seconds * 1e6 * 1000.0).round() / 1000.0
}

fn kind_name(kind: BatchKind) -> &'static str {
    match kind {
        BatchKind::Bootstrap => "bootstrap",
        BatchKind::Jobs => "jobs",
        BatchKind::Results => "results",
    }
}

/// The trace of `nodes` as Trace Event Format JSON.
pub fn to_json(nodes: &[TracedNode<'_>]) -> String {
    let mut events = Vec::new();
    for node in nodes {
        let pid = pid(node.role);
        let t = |s: f64| micros(node.offset_s + s);
        let meta = |name: &str, tid: u32, args: Value| json!({ "name": name, "ph": "M", "pid": pid, "tid": tid, "args": args });
        events.push(meta("process_name", 0, json!({ "name": node.role.name() })));
        events.push(meta("process_sort_index", 0, json!({ "sort_index": pid })));
        for worker in 0..node.workers {
            let tid = worker as u32;
            events.push(meta(
                "thread_name",
                tid,
                json!({ "name": format!("worker {worker}") }),
            ));
            events.push(meta("thread_sort_index", tid, json!({ "sort_index": tid })));
        }
        for span in node.timeline.jobs() {
            events.push(json!({
                "name": format!("job {}", span.id),
                "cat": format!("job,{}", span.origin.name()),
                "ph": "X",
                "ts": t(span.start_s),
                "dur": micros(span.end_s - span.start_s),
                "pid": pid,
                "tid": u32::from(span.worker),
                "args": {
                    "id": span.id,
                    "origin": span.origin.name(),
                    "kept": span.kept,
                    "prepare_s": span.cost.prepare_s,
                    "compute_s": span.cost.compute_s,
                },
            }));
        }
        if let Some(run) = node.timeline.run() {
            events.push(meta(
                RUN_EVENT,
                0,
                json!({ "run": run, "path": node.timeline.path() }),
            ));
            events.push(json!({
                "name": "throttle", "ph": "C", "ts": t(0.0), "pid": pid,
                "args": { "throttle": run.throttle },
            }));
        }
        for &(at_s, throttle) in node.timeline.throttles() {
            events.push(json!({
                "name": "throttle", "ph": "C", "ts": t(at_s), "pid": pid,
                "args": { "throttle": throttle },
            }));
        }
        for &(at_s, phase) in node.timeline.phases() {
            events.push(json!({
                "name": phase.name(), "cat": "phase", "ph": "i", "s": "p",
                "ts": t(at_s), "pid": pid,
            }));
        }
        // Batches overlap in time (several are in flight at once), so each
        // is an async span of its own (begin and end, keyed by its
        // direction and transfer id), which the viewer lays out on as many
        // rows as it needs under the node's "batches sent" or "batches
        // received" track.
        for b in node.timeline.batches() {
            let (way, peer_key) = if b.outbound {
                ("sent", "to")
            } else {
                ("received", "from")
            };
            let id = format!("{}-{way}-{}", node.role.name(), b.transfer);
            let name = format!(
                "{} batch {} ({} jobs)",
                kind_name(b.kind),
                b.transfer,
                b.jobs
            );
            let cat = format!("batches {way}");
            events.push(json!({
                "name": name, "cat": cat, "ph": "b", "id": id,
                "ts": t(b.start_s), "pid": pid,
                "args": {
                    "transfer": b.transfer,
                    "kind": kind_name(b.kind),
                    "jobs": b.jobs,
                    "bytes": b.bytes,
                    peer_key: node.role.peer().name(),
                },
            }));
            events.push(json!({
                "name": name, "cat": cat, "ph": "e", "id": id,
                "ts": t(b.end_s), "pid": pid,
            }));
        }
        for q in node.timeline.queue() {
            events.push(json!({
                "name": "queue", "ph": "C", "ts": t(q.at_s), "pid": pid,
                "args": { "queued": q.queue, "in flight": q.in_flight },
            }));
        }
        for c in node.timeline.cpu() {
            events.push(json!({
                "name": "CPU %", "ph": "C", "ts": t(c.at_s), "pid": pid,
                "args": { "node": c.node, "system": c.system },
            }));
        }
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": { "producer": format!("loadbal {}", env!("CARGO_PKG_VERSION")) },
    })
    .to_string()
}

/// The trace of the nodes behind `views` (one node's, or the demo's two),
/// as published when they last did: after a run, all of it. Each node's
/// times are shifted so that both share the earliest run start.
pub fn of_views(views: &[&NodeView]) -> String {
    let nodes: Vec<(Snapshot, Timeline)> = views
        .iter()
        .map(|v| {
            let mut timeline = Timeline::default();
            v.timeline_into(&mut timeline);
            ((*v.snapshot()).clone(), timeline)
        })
        .collect();
    let start = |s: &Snapshot| s.phase_started[Phase::Bootstrap as usize];
    let zero = nodes.iter().filter_map(|(s, _)| start(s)).min();
    let traced: Vec<TracedNode<'_>> = nodes
        .iter()
        .map(|(s, timeline)| TracedNode {
            role: s.role,
            workers: usize::from(s.local.workers),
            offset_s: match (start(s), zero) {
                (Some(t), Some(zero)) => t.duration_since(zero).as_secs_f64(),
                _ => 0.0,
            },
            timeline,
        })
        .collect();
    to_json(&traced)
}

/// The metadata event that describes a node's run (ignored by viewers).
const RUN_EVENT: &str = "loadbal_run";

/// A job as a trace recorded it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordedJob {
    /// The job.
    pub id: u32,
    /// The node's worker that computed it.
    pub worker: u32,
    /// When its worker took it and handed it back, seconds on the trace's
    /// clock.
    pub start_s: f64,
    /// See `start_s`.
    pub end_s: f64,
    /// What it cost the worker.
    pub cost: JobCost,
    /// Whether its result was the one kept.
    pub kept: bool,
}

/// One node's part of a trace, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedNode {
    /// The node.
    pub role: Role,
    /// Its run.
    pub run: RunInfo,
    /// Its pacer's last estimate of the path to the peer.
    pub path: Option<PathEstimate>,
    /// The jobs its workers computed.
    pub jobs: Vec<RecordedJob>,
    /// Its throttle over the run: (seconds on the trace's clock, throttle),
    /// the first at its run's start.
    pub throttles: Vec<(f64, f64)>,
    /// When it entered each phase, seconds on the trace's clock.
    pub phases: Vec<(f64, Phase)>,
    /// Its queue over the run: (seconds on the trace's clock, jobs queued).
    pub queue: Vec<(f64, u32)>,
    /// Bytes and jobs of the batches of jobs it sent (bootstrap and policy
    /// batches).
    pub jobs_sent: (u64, u64),
}

impl RecordedNode {
    /// When this node entered `phase`, if it did.
    pub fn phase_at(&self, phase: Phase) -> Option<f64> {
        self.phases
            .iter()
            .find(|(_, p)| *p == phase)
            .map(|(t, _)| *t)
    }
}

/// Reads back a trace this program wrote (`--trace`): each node's run,
/// jobs, throttle and phases. Errors name what is missing.
pub fn read(text: &str) -> Result<Vec<RecordedNode>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("is not a trace (JSON): {e}"))?;
    let events = value
        .get("traceEvents")
        .and_then(Value::as_array)
        .ok_or("is not a trace: it has no \"traceEvents\" list")?;
    let role_of = |e: &Value| match e.get("pid").and_then(Value::as_u64) {
        Some(1) => Some(Role::Master),
        Some(2) => Some(Role::Slave),
        _ => None,
    };
    let seconds = |e: &Value| e.get("ts").and_then(Value::as_f64).map(|us| us / 1e6);
    let mut nodes: Vec<RecordedNode> = Vec::new();
    for e in events {
        if e.get("name").and_then(Value::as_str) != Some(RUN_EVENT) {
            continue;
        }
        let Some(role) = role_of(e) else { continue };
        let args = &e["args"];
        let run: RunInfo = serde_json::from_value(args["run"].clone()).map_err(|err| {
            format!(
                "the {} node's run description does not read: {err}",
                role.name()
            )
        })?;
        let path = serde_json::from_value(args["path"].clone()).ok();
        nodes.push(RecordedNode {
            role,
            run,
            path,
            jobs: Vec::new(),
            throttles: Vec::new(),
            phases: Vec::new(),
            queue: Vec::new(),
            jobs_sent: (0, 0),
        });
    }
    if nodes.is_empty() {
        return Err(format!(
            "has no run description (a \"{RUN_EVENT}\" event): it was not written by `--trace` \
             of loadbal 0.10 or later"
        ));
    }
    for e in events {
        let Some(role) = role_of(e) else { continue };
        let Some(node) = nodes.iter_mut().find(|n| n.role == role) else {
            continue;
        };
        let (Some(ph), Some(at)) = (e.get("ph").and_then(Value::as_str), seconds(e)) else {
            continue;
        };
        let args = &e["args"];
        let number = |key: &str| args.get(key).and_then(Value::as_f64);
        match ph {
            "X" => {
                let id = args
                    .get("id")
                    .and_then(Value::as_u64)
                    .and_then(|i| u32::try_from(i).ok());
                let dur = e.get("dur").and_then(Value::as_f64).unwrap_or(0.0) / 1e6;
                if let Some(id) = id {
                    node.jobs.push(RecordedJob {
                        id,
                        worker: e
                            .get("tid")
                            .and_then(Value::as_u64)
                            .and_then(|t| u32::try_from(t).ok())
                            .unwrap_or(0),
                        start_s: at,
                        end_s: at + dur,
                        cost: JobCost {
                            prepare_s: number("prepare_s").unwrap_or(0.0),
                            compute_s: number("compute_s").unwrap_or(dur),
                        },
                        kept: args.get("kept").and_then(Value::as_bool).unwrap_or(true),
                    });
                }
            }
            "b" if e["cat"] == "batches sent" && args["kind"] != "results" => {
                let count = |key: &str| args.get(key).and_then(Value::as_u64).unwrap_or(0);
                node.jobs_sent.0 += count("bytes");
                node.jobs_sent.1 += count("jobs");
            }
            "C" if e["name"] == "queue" => {
                if let Some(q) = args.get("queued").and_then(Value::as_u64) {
                    node.queue.push((at, u32::try_from(q).unwrap_or(u32::MAX)));
                }
            }
            "C" if e["name"] == "throttle" => {
                if let Some(t) = number("throttle") {
                    node.throttles.push((at, t));
                }
            }
            "i" if e["cat"] == "phase" => {
                let phase = [
                    Phase::Bootstrap,
                    Phase::Processing,
                    Phase::Aggregation,
                    Phase::Done,
                ]
                .into_iter()
                .find(|p| e["name"] == p.name());
                if let Some(p) = phase {
                    node.phases.push((at, p));
                }
            }
            _ => {}
        }
    }
    for node in &mut nodes {
        node.throttles.sort_by(|a, b| a.0.total_cmp(&b.0));
        node.queue.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok(nodes)
}

/// Writes a trace's JSON to `path` (`-` is standard output).
pub fn write(path: &Path, json: &str) -> std::io::Result<()> {
    let text = format!("{json}\n");
    if path.as_os_str() == "-" {
        crate::term::out(&text)
    } else {
        crate::files::write(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::core::{BatchSpan, CpuSample, JobCost, Origin};

    #[test]
    fn every_job_and_batch_is_a_span_on_its_track() {
        let mut master = Timeline::new(3);
        master.computed(0, 0, (0.0, 0.5), JobCost::default(), true);
        master.arrived(2, Origin::Moved);
        master.computed(2, 1, (0.5, 0.75), JobCost::default(), true);
        master.batch(BatchSpan {
            transfer: 4,
            kind: BatchKind::Bootstrap,
            outbound: true,
            jobs: 1,
            bytes: 20,
            start_s: 0.0,
            end_s: 0.001,
        });
        master.sample(0.0, 2, 1, false);
        master.cpu_sample(CpuSample {
            at_s: 0.5,
            node: 99.5,
            system: 50.0,
        });
        let mut slave = Timeline::new(3);
        slave.arrived(1, Origin::Bootstrap);
        slave.computed(1, 0, (0.0, 0.25), JobCost::default(), true);
        let json = to_json(&[
            TracedNode {
                role: Role::Master,
                workers: 2,
                offset_s: 0.0,
                timeline: &master,
            },
            TracedNode {
                role: Role::Slave,
                workers: 1,
                offset_s: 0.002,
                timeline: &slave,
            },
        ]);
        let v: Value = serde_json::from_str(&json).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        let spans: Vec<(&str, u64, u64, f64, f64)> = events
            .iter()
            .filter(|e| e["ph"] == "X")
            .map(|e| {
                (
                    e["name"].as_str().unwrap(),
                    e["pid"].as_u64().unwrap(),
                    e["tid"].as_u64().unwrap(),
                    e["ts"].as_f64().unwrap(),
                    e["dur"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            [
                ("job 0", 1, 0, 0.0, 500_000.0),
                ("job 2", 1, 1, 500_000.0, 250_000.0),
                ("job 1", 2, 0, 2000.0, 250_000.0),
            ]
        );
        // The batch: an async span, its begin and end under one id.
        let ends: Vec<(&str, &str, f64)> = events
            .iter()
            .filter(|e| e["ph"] == "b" || e["ph"] == "e")
            .map(|e| {
                (
                    e["ph"].as_str().unwrap(),
                    e["id"].as_str().unwrap(),
                    e["ts"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            ends,
            [("b", "master-sent-4", 0.0), ("e", "master-sent-4", 1000.0)]
        );
        let origin = |name: &str| {
            events.iter().find(|e| e["name"] == name).unwrap()["args"]["origin"].clone()
        };
        assert_eq!(origin("job 2"), "moved");
        assert_eq!(origin("job 1"), "bootstrap");
        let counters: Vec<&Value> = events.iter().filter(|e| e["ph"] == "C").collect();
        assert_eq!(counters.len(), 2);
        assert_eq!(counters[0]["args"]["queued"], 2);
        assert_eq!(counters[1]["args"]["node"], 99.5);
        // Each worker and each batch track is named.
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["worker 0", "worker 1", "worker 0"]);
    }
}
