//! GUI tests with egui_kittest: the real window code, driven by label, no
//! display needed. Nodes are real (threads, UDP on loopback, each test on
//! its own ports); every wait is bounded.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eframe::egui;
use eframe::egui::accesskit::Role as A11yRole;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use loadbal::config::{self, Role};
use loadbal::gui::jobs::Where;
use loadbal::gui::{LoadbalApp, Mode};
use loadbal::node::Outcome;
use loadbal::protocol::Phase;
use loadbal::report::Report;

mod common;
use common::free_port;

/// As [`config_file`], with `iterations` per element instead of 100.
fn config_file_iterating(name: &str, iterations: u32) -> PathBuf {
    let path = config_file(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replace(
        r#""iterations": 100"#,
        &format!(r#""iterations": {iterations}"#),
    );
    assert_ne!(text, changed);
    std::fs::write(&path, changed).unwrap();
    path
}

/// As [`config_file_iterating`], with the slave's throttle at `throttle`:
/// a run still going when the test acts on it.
fn config_file_slow_slave(name: &str, iterations: u32, throttle: f64) -> PathBuf {
    let path = config_file_iterating(name, iterations);
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replace(
        r#""slave": {"#,
        &format!(r#""slave": {{ "throttle": {throttle},"#),
    );
    assert_ne!(text, changed);
    std::fs::write(&path, changed).unwrap();
    path
}

/// A config file with fresh ports and a small workload, in its own directory.
fn config_file(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gui-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    let text = format!(
        r#"{{
  "master": {{ "address": "127.0.0.1:{}" }},
  "slave": {{ "address": "127.0.0.1:{}" }},
  "workload": {{ "jobs": 32, "elements_per_job": 2048, "iterations": 100 }},
  "policy": {{ "state_interval_ms": 50 }}
}}"#,
        free_port(),
        free_port()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The window's outputs with the fixed machine profile: its predictions
/// measure nothing (and write nothing to the user's cache).
fn fixed_machine() -> loadbal::gui::Outputs {
    loadbal::gui::Outputs {
        machine: Some(common::fixed_profile()),
        ..Default::default()
    }
}

fn window(mode: Mode, path: &Path) -> Harness<'static, LoadbalApp> {
    let file = config::load_file(Some(path)).unwrap();
    let app = LoadbalApp::with_outputs(mode, path.to_owned(), file, fixed_machine());
    Harness::builder()
        .with_size(egui::Vec2::new(1280.0, 800.0))
        .build_ui_state(
            |ui, app: &mut LoadbalApp| {
                app.poll();
                app.show(ui);
            },
            app,
        )
}

/// Steps the harnesses (real time passing) until `done` holds.
fn step_until(
    harnesses: &mut [&mut Harness<'static, LoadbalApp>],
    limit: Duration,
    what: &str,
    done: impl Fn(&[&mut Harness<'static, LoadbalApp>]) -> bool,
) {
    let start = Instant::now();
    loop {
        for h in harnesses.iter_mut() {
            h.step();
        }
        if done(harnesses) {
            return;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A slave's and a master's window on `path`, Start pressed in each.
fn start_pair(path: &Path) -> (Harness<'static, LoadbalApp>, Harness<'static, LoadbalApp>) {
    let mut slave = window(Mode::Node(Role::Slave), path);
    let mut master = window(Mode::Node(Role::Master), path);
    slave.step();
    master.step();
    slave.get_by_label("Start").click();
    master.get_by_label("Start").click();
    (slave, master)
}

/// Presses Start in a slave's window with no master anywhere: its node
/// runs, waiting, until it is stopped.
fn start_lone_slave(h: &mut Harness<'static, LoadbalApp>) {
    h.get_by_label("Start").click();
    step_until(
        &mut [h],
        Duration::from_secs(10),
        "the slave to start",
        |h| h[0].state().panel(Role::Slave).unwrap().is_running(),
    );
    // The frame that carried out Start was drawn before it: the next one
    // shows the running node's window.
    h.step();
}

/// The event log of `role`'s node, as the window's panel holds it.
fn log_of(h: &Harness<'static, LoadbalApp>, role: Role) -> Vec<loadbal::node::LogEntry> {
    h.state().panel(role).unwrap().view().unwrap().log.entries()
}

fn outcome_of<'h>(h: &'h Harness<'_, LoadbalApp>, role: Role) -> Option<&'h Outcome> {
    h.state().panel(role).and_then(|p| p.outcome())
}

/// Steps the demo window until both nodes have ended (within `limit`) and
/// returns the master's report, which must say the run verified.
fn verified_report_after_run(
    h: &mut Harness<'static, LoadbalApp>,
    limit: Duration,
) -> loadbal::report::Report {
    step_until(&mut [h], limit, "the run to end", |h| {
        outcome_of(h[0], Role::Master).is_some() && outcome_of(h[0], Role::Slave).is_some()
    });
    match outcome_of(h, Role::Master) {
        Some(Outcome::Finished {
            verified: true,
            report: Some(r),
        }) => (**r).clone(),
        other => panic!("the master ended with {other:?}"),
    }
}

#[test]
fn the_demos_start_button_runs_a_verified_run_and_shows_the_result() {
    let path = config_file("demo");
    let mut h = window(Mode::Demo, &path);
    h.step();
    assert!(h.query_by_label("Result: verified").is_none());
    h.get_by_label("Start").click();
    let r = verified_report_after_run(&mut h, Duration::from_secs(60));
    assert_eq!(r.jobs_done.master + r.jobs_done.slave, 32);
    assert_eq!(r.bootstrap_jobs, 16);
    h.step();
    h.get_by_label("Result: verified");
    h.get_by_label_contains("results kept: master ");
    // The details are folded, to keep the plots in view.
    assert!(h.query_by_label("Slave lost").is_none());
    h.get_by_label("Run details").click();
    h.run_steps(2);
    h.get_by_label_contains("Jobs computed");
    // No slave was lost; each node shows its rejected datagrams.
    h.get_by_label("Slave lost");
    h.get_by_label("no");
    assert_eq!(
        h.query_all_by_label_contains("Datagrams rejected: ")
            .count(),
        2
    );
    // On loopback without a secret both headers say the link is not secret.
    assert_eq!(h.query_all_by_label("· link not secret").count(), 2);
    // The simulator's prediction of the same run comes in beside the time.
    step_until(
        &mut [&mut h],
        Duration::from_secs(30),
        "the prediction",
        |h| {
            h[0].state()
                .panel(Role::Master)
                .unwrap()
                .predicted_s()
                .is_some()
        },
    );
    h.step();
    h.get_by_label("Simulator's prediction");
    let predicted = h
        .state()
        .panel(Role::Master)
        .unwrap()
        .predicted_s()
        .cloned();
    let Some(Ok(seconds)) = predicted else {
        panic!("no prediction: {predicted:?}");
    };
    assert!(seconds > 0.0);
    h.get_by_label_contains("at the throttles the run ended with: the run took");
    // Start is offered again, and a second run works: the first run's
    // sockets were freed when its nodes ended (issue 11).
    h.get_by_label("Start").click();
    step_until(
        &mut [&mut h],
        Duration::from_secs(60),
        "the second run to end",
        |h| outcome_of(h[0], Role::Master).is_some() && outcome_of(h[0], Role::Slave).is_some(),
    );
    for role in [Role::Master, Role::Slave] {
        assert!(
            matches!(
                outcome_of(&h, role),
                Some(Outcome::Finished { verified: true, .. })
            ),
            "{role}: {:?}",
            outcome_of(&h, role)
        );
    }
}

// Regression (issue 11): a window could not stop its node, and the master
// of a stopped slave waited for it.
#[test]
fn stopping_the_slave_leaves_the_master_to_finish_alone() {
    // Long enough jobs and a slow slave, so the run is still going at Stop.
    let path = config_file_slow_slave("stop", 20000, 0.2);
    let (mut slave, mut master) = start_pair(&path);
    step_until(
        &mut [&mut slave, &mut master],
        Duration::from_secs(60),
        "the run to begin",
        |h| h[1].state().panel(Role::Master).unwrap().phase() >= Phase::Processing,
    );
    slave.get_by_label("Stop the slave").click();
    step_until(
        &mut [&mut slave, &mut master],
        Duration::from_secs(60),
        "both to end",
        |h| outcome_of(h[0], Role::Slave).is_some() && outcome_of(h[1], Role::Master).is_some(),
    );
    assert!(matches!(
        outcome_of(&slave, Role::Slave),
        Some(Outcome::Stopped)
    ));
    match outcome_of(&master, Role::Master) {
        Some(Outcome::Finished {
            verified: true,
            report: Some(r),
        }) => assert!(r.peer_lost_at_s.is_some(), "{r:?}"),
        other => panic!("the master ended with {other:?}"),
    }
    slave.step();
    slave.get_by_label("Run stopped.");
    // The slave's window starts again on the same address: the stopped
    // node's socket was freed.
    slave.get_by_label("Start").click();
    step_until(
        &mut [&mut slave],
        Duration::from_secs(10),
        "the slave to start again",
        |h| h[0].state().panel(Role::Slave).unwrap().is_running(),
    );
    slave.step();
    assert!(slave.query_by_label_contains("cannot start").is_none());
}

#[test]
fn pressing_start_on_a_connected_pair_of_windows_starts_the_run() {
    let path = config_file("pair");
    let (mut slave, mut master) = start_pair(&path);
    step_until(
        &mut [&mut slave, &mut master],
        Duration::from_secs(60),
        "the master to leave idle",
        |h| h[1].state().panel(Role::Master).unwrap().phase() >= Phase::Bootstrap,
    );
    step_until(
        &mut [&mut slave, &mut master],
        Duration::from_secs(60),
        "both windows to show the result",
        |h| outcome_of(h[0], Role::Slave).is_some() && outcome_of(h[1], Role::Master).is_some(),
    );
    master.step();
    slave.step();
    master.get_by_label("Result: verified");
    slave.get_by_label("Result: verified");
}

// Issue 13: an animation draws a frame every few milliseconds until it is
// done, CPU the workers pay for under software rendering.
#[test]
fn animations_are_off_while_a_node_runs_and_back_on_after() {
    let path = config_file("animations");
    let mut h = window(Mode::Node(Role::Slave), &path);
    // The test harness turns animations off; a window has them on.
    let animation_time = 0.2;
    h.ctx.all_styles_mut(|s| s.animation_time = animation_time);
    h.step();
    assert_eq!(h.ctx.global_style().animation_time, animation_time);
    // A slave with no master runs until it is stopped.
    start_lone_slave(&mut h);
    h.step();
    assert_eq!(h.ctx.global_style().animation_time, 0.0);
    h.get_by_label("Stop the slave").click();
    step_until(
        &mut [&mut h],
        Duration::from_secs(10),
        "the slave to stop",
        |h| !h[0].state().is_running(),
    );
    h.step();
    assert_eq!(h.ctx.global_style().animation_time, animation_time);
}

#[test]
fn moving_the_throttle_slider_changes_the_running_nodes_throttle() {
    let path = config_file("throttle");
    let mut h = window(Mode::Node(Role::Slave), &path);
    h.step();
    // A slave waits for its master: its node runs, so the change is live.
    start_lone_slave(&mut h);
    h.get_by_role_and_label(A11yRole::Slider, "slave throttle")
        .set_value_accesskit(25.0);
    step_until(
        &mut [&mut h],
        Duration::from_secs(10),
        "the throttle to apply",
        |h| {
            let view = h[0].state().panel(Role::Slave).unwrap().view().unwrap();
            view.snapshot().local.throttle == 0.25
        },
    );
    let logged = log_of(&h, Role::Slave);
    assert!(
        logged
            .iter()
            .any(|e| e.text == "throttle changed from 100 % to 25 %"),
        "{logged:?}"
    );
}

#[test]
fn an_invalid_address_shows_its_error_and_disables_save() {
    let path = config_file("invalid");
    let mut h = window(Mode::Node(Role::Master), &path);
    h.step();
    h.get_by_label("Configuration").click();
    h.step();
    assert!(!h.get_by_label("Save").accesskit_node().is_disabled());
    let field = h.get_by_label("Master address");
    field.focus();
    field.set_text_value_accesskit("not an address");
    h.run_steps(2);
    h.get_by_label("\"not an address\" is not an address: expected IP:PORT, e.g. 127.0.0.1:7001");
    assert!(h.get_by_label("Save").accesskit_node().is_disabled());
    assert!(!h.state().editor().is_valid());
    // The same address for both nodes is caught too, beside the slave's field.
    let slave_address = config::load(Some(&path)).unwrap().slave.address.to_string();
    let field = h.get_by_label("Master address");
    field.set_text_value_accesskit(&slave_address);
    h.run_steps(2);
    assert_eq!(
        h.state().editor().error("slave.address"),
        Some(
            format!(
                "{slave_address} is also the master's address: the two nodes need different \
                 addresses (on one machine, different ports)"
            )
            .as_str()
        )
    );
    assert!(h.get_by_label("Save").accesskit_node().is_disabled());
}

#[test]
fn save_writes_a_config_that_loads_back_equal() {
    let path = config_file("save");
    let before = std::fs::read_to_string(&path).unwrap();
    let mut h = window(Mode::Demo, &path);
    h.step();
    h.get_by_label("Configuration").click();
    h.step();
    let jobs = h.get_by_label("Jobs");
    jobs.focus();
    jobs.set_text_value_accesskit("48");
    h.run_steps(2);
    h.get_by_role_and_label(A11yRole::Slider, "master throttle")
        .set_value_accesskit(40.0);
    h.run_steps(2);
    // A slider is not a config edit until the user asks for it.
    h.get_by_label("Keep the sliders' throttles (master 40 %)")
        .click();
    h.run_steps(2);
    h.get_by_label("Save").click();
    h.run_steps(2);
    let after = std::fs::read_to_string(&path).unwrap();
    assert_ne!(before, after);
    let saved = config::load(Some(&path)).unwrap();
    assert_eq!(Some(&saved), h.state().editor().config());
    assert_eq!(saved.workload.jobs, 48);
    assert_eq!(saved.master.throttle, 0.4);
    // Only what changed was written: the file keeps its own fields, in
    // its own order, and gains no defaults.
    let mut expected: serde_json::Value = serde_json::from_str(&before).unwrap();
    expected["workload"]["jobs"] = 48.into();
    expected["master"]["throttle"] = 0.4.into();
    let written: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(written, expected);
    let keys: Vec<&String> = written.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["master", "slave", "workload", "policy"]);
    assert!(!h.state().editor().is_dirty());
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["config.json".to_owned()]);
}

#[test]
fn the_compare_view_simulates_the_chosen_policies() {
    let path = config_file("compare");
    // Jobs long enough (milliseconds; the run several throttle periods
    // long) for the policies to matter.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["workload"]["iterations"] = 200_000.into();
    std::fs::write(&path, v.to_string()).unwrap();
    let mut h = window(Mode::Demo, &path);
    h.step();
    h.get_by_label("Compare policies").click();
    // A new window is measured on its first frame and shown on the next.
    h.step();
    h.step();
    h.state_mut().compare().set_throttles(1.0, 0.25);
    h.get_by_label("Simulate").click();
    step_until(
        &mut [&mut h],
        Duration::from_secs(60),
        "the simulations",
        |h| !h[0].state().compare_busy(),
    );
    h.step();
    let results = h.state_mut().compare().results().to_vec();
    let names: Vec<&str> = results.iter().map(|r| r.policy).collect();
    // The classic policies are unticked at first.
    assert_eq!(
        names,
        [
            "sender",
            "receiver",
            "symmetric",
            "completion",
            "adaptive",
            "none",
            "jsq"
        ]
    );
    let finish = |name: &str| results.iter().find(|r| r.policy == name).unwrap().finish_s;
    assert!(finish("completion") < finish("none"));
    assert_eq!(
        results
            .iter()
            .find(|r| r.policy == "none")
            .unwrap()
            .jobs_moved,
        0
    );
    h.get_by_label_contains("7 policies simulated in");
}

#[test]
fn a_throttle_slider_alone_leaves_the_config_file_unchanged() {
    let path = config_file("slider");
    let mut h = window(Mode::Node(Role::Master), &path);
    h.step();
    h.get_by_label("Configuration").click();
    h.step();
    h.get_by_role_and_label(A11yRole::Slider, "master throttle")
        .set_value_accesskit(30.0);
    h.run_steps(2);
    assert!(!h.state().editor().is_dirty());
    assert!(h.query_by_label_contains("Unsaved changes").is_none());
    // What the run would start with says the slider's throttle.
    h.get_by_label_contains("throttle 30 %");
}

// Regression: `demo --report PATH` with a window wrote nothing.
#[test]
fn with_report_every_finished_run_is_written_there() {
    let path = config_file("report");
    let report = path.with_file_name("report.json");
    let trace = path.with_file_name("trace.json");
    let file = config::load_file(Some(&path)).unwrap();
    let outputs = loadbal::gui::Outputs {
        report: Some(report.clone()),
        trace: Some(trace.clone()),
        ..fixed_machine()
    };
    let app = LoadbalApp::with_outputs(Mode::Demo, path.clone(), file, outputs);
    let mut h = Harness::builder()
        .with_size(egui::Vec2::new(1280.0, 800.0))
        .build_ui_state(
            |ui, app: &mut LoadbalApp| {
                app.poll();
                app.show(ui);
            },
            app,
        );
    h.step();
    h.get_by_label("Start").click();
    step_until(
        &mut [&mut h],
        Duration::from_secs(60),
        "the run to end",
        |h| outcome_of(h[0], Role::Master).is_some(),
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["verified"], true);
    assert_eq!(value["jobs_total"], 32);
    h.step();
    h.get_by_label(&format!("report written to {}", report.display()));
    // The trace (`--trace`) is written once both nodes have ended: it
    // parses, and has one kept span per job, on both nodes' workers.
    step_until(&mut [&mut h], Duration::from_secs(30), "the trace", |_| {
        trace.exists()
    });
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let mut ids: Vec<u64> = value["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["args"]["kept"] == true)
        .map(|e| e["args"]["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..32).collect::<Vec<_>>());
}

#[test]
fn after_a_run_the_views_show_all_of_it_and_stop() {
    // Jobs of a few milliseconds: each wider than a pixel of the stream.
    let path = config_file_iterating("views", 5000);
    let mut h = window(Mode::Demo, &path);
    h.step();
    // Before Start: what the run will be, and the plots' axes.
    h.get_by_label_contains(
        "32 jobs of 2048 doubles (512 KiB), each element 1.111111 + 1.111111 × 5000 times",
    );
    h.get_by_label("Queue length (jobs)");
    h.get_by_label("Start").click();
    let report = verified_report_after_run(&mut h, Duration::from_secs(60));
    assert!(!h.state().is_running());
    h.step();
    // The plots end where the run did, and sampling has stopped.
    let panel = h.state().panel(Role::Master).unwrap();
    let end = panel.history().last_t().unwrap();
    assert!(
        (end - report.elapsed_s.total).abs() < 0.002,
        "{end} vs {}",
        report.elapsed_s.total
    );
    let samples = panel.history().len();
    // A panel samples only while its node runs (issue 20: this waited
    // 600 ms of wall-clock time and hoped a sample would have come).
    for role in [Role::Master, Role::Slave] {
        assert!(!h.state().panel(role).unwrap().is_running(), "{role:?}");
    }
    h.run_steps(3);
    assert_eq!(
        h.state().panel(Role::Master).unwrap().history().len(),
        samples
    );
    h.get_by_label_contains("run over (verified): ended at");
    assert_eq!(
        h.query_all_by_label_contains("Run over: the figures as it ended")
            .count(),
        2
    );
    // The task stream: one bar per job computed.
    h.get_by_label("Task stream").click();
    h.run_steps(2);
    assert_eq!(h.state().stream().bars_drawn(), 32);
    let jobs = format!(
        "32 jobs computed (master {}, slave {})",
        report.jobs_done.master, report.jobs_done.slave
    );
    h.get_by_label_contains(&jobs);
    // The jobs table: every job done, on the node that computed it.
    h.get_by_label("Jobs table").click();
    h.run_steps(2);
    h.get_by_label("32 of 32 jobs shown");
    let table = h.state_mut().jobs();
    table.set_filters(Some(Where::Done), Some(Role::Slave));
    assert_eq!(table.visible().len() as u32, report.jobs_done.slave);
    table.set_filters(Some(Where::Queued), None);
    assert!(table.visible().is_empty());
}

#[test]
fn add_jobs_during_a_run_ends_verified_with_the_new_total() {
    // Jobs long enough (tens of milliseconds) to press Add jobs mid-run.
    let path = config_file_iterating("add-jobs", 40000);
    let mut h = window(Mode::Demo, &path);
    h.step();
    h.get_by_label("Start").click();
    step_until(
        &mut [&mut h],
        Duration::from_secs(60),
        "the run to compute",
        |h| h[0].state().panel(Role::Master).unwrap().phase() == Phase::Processing,
    );
    h.step();
    h.get_by_label("Add jobs").click();
    let r = verified_report_after_run(&mut h, Duration::from_secs(120));
    assert_eq!(r.jobs_total, 32 + 64);
    assert_eq!(r.jobs_done.master + r.jobs_done.slave, 96);
    // The added jobs' response times, from the press of the button.
    let response = r.response_s.expect("response times of the added jobs");
    assert_eq!(response.jobs, 64);
    assert!(0.0 < response.p50 && response.p50 <= response.p99);
    h.step();
    h.get_by_label("run: 96 / 96 results held by the master");
    assert!(
        log_of(&h, Role::Master)
            .iter()
            .any(|e| e.text == "added 64 jobs [32-95]: the run has 96 jobs now")
    );
}

// Issue 20: the slave's slider moved to 0 after the processing ended, while
// the slave computed its last job, held that job for ever (a paused node
// gave its queue away only while processing). The master now takes it back
// and the run ends verified.
#[test]
fn the_slaves_slider_at_0_during_the_aggregation_still_ends_verified() {
    // Jobs long enough that the slave, at 10 %, is still on its last one
    // when the master has run out of work and begun the aggregation.
    let path = config_file_slow_slave("pause-aggregation", 100_000, 0.1);
    let mut h = window(Mode::Demo, &path);
    h.step();
    h.get_by_label("Start").click();
    step_until(
        &mut [&mut h],
        Duration::from_secs(120),
        "the aggregation, with the slave computing",
        |h| {
            let app = h[0].state();
            let slave = app.panel(Role::Slave).unwrap().view().unwrap().snapshot();
            app.panel(Role::Master).unwrap().phase() == Phase::Aggregation && slave.local.busy > 0
        },
    );
    // At once, while the slave's job (seconds long at 10 %) still runs.
    h.get_by_role_and_label(A11yRole::Slider, "slave throttle")
        .set_value_accesskit(0.0);
    let r = verified_report_after_run(&mut h, Duration::from_secs(120));
    assert_eq!(r.jobs_done.master + r.jobs_done.slave, 32);
    let logged = log_of(&h, Role::Slave);
    assert!(
        logged.iter().any(|e| e
            .text
            .starts_with("policy sender: paused: giving away every queued job")),
        "{logged:?}"
    );
}

/// Every view of `h`'s run, once it is over, against one another and
/// against the master's report when there is one (issue 22): the task
/// stream's jobs per node, the jobs table's, the report's; the run's
/// progress; each node's phase in its header; where the plots end, and
/// that a lost slave's figures are not drawn on past its loss.
fn assert_every_view_agrees(h: &mut Harness<'static, LoadbalApp>, report: Option<&Report>) {
    h.get_by_label("Task stream").click();
    h.run_steps(2);
    let (kept, again) = h.state().stream().kept_counts();
    let parts: Vec<String> = kept
        .iter()
        .map(|(role, n)| format!("{} {n}", role.name()))
        .collect();
    let total_kept: usize = kept.iter().map(|(_, n)| n).sum();
    h.get_by_label_contains(&format!(
        "{total_kept} jobs computed ({})",
        parts.join(", ")
    ));
    if again > 0 {
        h.get_by_label_contains(&format!("· {again} more computed by the slave and again"));
    }
    // The stream's counts (from the nodes' timelines) against each node's
    // own count of the jobs it computed (its core's), a source of its own:
    // the master's are all kept; the slave's are those kept plus those the
    // master computed again.
    for &(role, n) in &kept {
        let own = h.state().panel(role).unwrap().view().unwrap().snapshot();
        let extra = if role == Role::Slave { again } else { 0 };
        assert_eq!(own.local.jobs_done as usize, n + extra, "{role:?}");
    }
    h.get_by_label("Jobs table").click();
    h.run_steps(2);
    let table = h.state_mut().jobs();
    let done_on = |table: &mut loadbal::gui::jobs::JobsTable, role| {
        table.set_filters(Some(Where::Done), Some(role));
        table.visible().len()
    };
    for (role, n) in &kept {
        assert_eq!(done_on(table, *role), *n, "{role:?}");
    }
    if let Some(r) = report {
        let done = [
            (Role::Master, r.jobs_done.master),
            (Role::Slave, r.jobs_done.slave),
        ];
        for (role, n) in done {
            assert_eq!(done_on(table, role), n as usize, "{role:?}: {r:?}");
            if let Some((_, k)) = kept.iter().find(|(k, _)| *k == role) {
                assert_eq!(*k, n as usize, "{role:?}");
            }
        }
        table.set_filters(Some(Where::Done), None);
        let held = r.jobs_done.master + r.jobs_done.slave;
        assert_eq!(table.visible().len(), held as usize);
        if r.verified {
            assert_eq!(held, r.jobs_total);
        }
        h.get_by_label("Overview").click();
        h.run_steps(2);
        h.get_by_label(&format!(
            "run: {held} / {} results held by the master",
            r.jobs_total
        ));
        h.get_by_label(&format!(
            "· results kept: master {}, slave {}",
            r.jobs_done.master, r.jobs_done.slave
        ));
        // The slave's own count, beside the master's: the difference is
        // what the stream and the result line say was computed twice.
        if let Some(slave) = h.state().panel(Role::Slave).and_then(|p| p.view()) {
            let computed = slave.snapshot().local.jobs_done;
            assert_eq!(computed - r.jobs_done.slave, again as u32);
            if again > 0 {
                h.get_by_label(&format!(
                    "· {again} more computed by the slave and not kept (the master computed \
                     them again)"
                ));
            }
        }
        let history = h.state().panel(Role::Master).unwrap().history();
        let end = history.last_t().unwrap();
        assert!((end - r.elapsed_s.total).abs() < 0.002, "{end} vs {r:?}");
        if let Some(lost) = r.peer_lost_at_s {
            // The slave's queue is not drawn on, flat, after its loss (it
            // was drawn before: its states came while it ran).
            let last = history
                .queue_peer
                .last()
                .expect("the slave's queue plotted")
                .x;
            assert!(
                last <= lost + 0.1,
                "slave plotted at {last} s, lost at {lost} s"
            );
        }
    }
    h.get_by_label("Overview").click();
    h.run_steps(2);
    for role in [Role::Master, Role::Slave] {
        let Some(p) = h.state().panel(role) else {
            continue;
        };
        let phase = p.phase_text();
        let verified = matches!(p.outcome(), Some(Outcome::Finished { verified: true, .. }));
        assert_eq!(verified, phase == "done", "{role:?}: {phase}");
        if !verified {
            assert!(phase.starts_with("ended in "), "{role:?}: {phase}");
        }
        let history = p.history();
        let end = history.last_t().unwrap();
        for series in [&history.queue_local, &history.done_local] {
            assert!(series.last().is_some_and(|p| p.x == end), "{role:?}");
        }
        // A run shorter than the first CPU measurement has no CPU point.
        assert!(history.cpu_local.last().is_none_or(|p| p.x <= end));
        assert!(!p.is_running(), "{role:?}");
    }
    let phrases: Vec<String> = [Role::Master, Role::Slave]
        .iter()
        .filter_map(|&role| h.state().panel(role))
        .map(|p| format!("· phase: {}", p.phase_text()))
        .collect();
    for phrase in &phrases {
        let shown = h.query_all_by_label(phrase).count();
        assert_eq!(
            shown,
            phrases.iter().filter(|p| *p == phrase).count(),
            "{phrase}"
        );
    }
}

/// Steps `h` until every node it shows has ended.
fn step_until_ended(h: &mut Harness<'static, LoadbalApp>, limit: Duration) {
    step_until(&mut [h], limit, "the run to end", |h| {
        [Role::Master, Role::Slave].iter().all(|&role| {
            h[0].state()
                .panel(role)
                .is_none_or(|p| p.outcome().is_some())
        })
    });
    h.run_steps(3);
}

/// Steps `h` until the slave has computed jobs and holds more, as the
/// panel of `seen_by` shows it (the slave's own figures, or the master's
/// view of its peer).
fn step_until_the_slave_holds_jobs(h: &mut Harness<'static, LoadbalApp>, seen_by: Role) {
    step_until(
        &mut [h],
        Duration::from_secs(60),
        "the slave to compute and hold jobs",
        |h| {
            let Some(s) = h[0].state().panel(seen_by).and_then(|p| p.view()) else {
                return false;
            };
            let s = s.snapshot();
            let slave = if seen_by == Role::Slave {
                Some(s.local)
            } else {
                s.peer
            };
            slave.is_some_and(|p| p.queue > 0 && p.jobs_done >= 2)
        },
    );
}

/// Starts the demo on `path` and steps it until the slave has computed
/// jobs and holds more.
fn demo_with_slave_holding_jobs(path: &Path) -> Harness<'static, LoadbalApp> {
    let mut h = window(Mode::Demo, path);
    h.step();
    h.get_by_label("Start").click();
    step_until_the_slave_holds_jobs(&mut h, Role::Slave);
    h.step();
    h
}

// Issue 22: every kind of ending leaves one set of figures in every view.
// A verified run:
#[test]
fn a_verified_run_every_view_agrees_with_the_report() {
    let path = config_file_iterating("agree-verified", 5000);
    let mut h = window(Mode::Demo, &path);
    h.step();
    h.get_by_label("Start").click();
    let report = verified_report_after_run(&mut h, Duration::from_secs(60));
    h.run_steps(3);
    assert_every_view_agrees(&mut h, Some(&report));
}

// After the demo's slave is stopped mid-run, every view agrees with the
// master's verified report: the run's progress counts the results the
// master holds, the jobs table has every job done and none queued (the
// stopped slave's last view of its queue is not the truth), the slave's
// header says the phase it ended in, the task stream counts the slave's
// jobs that the master computed again once, as the master's.
#[test]
fn after_the_slave_is_stopped_the_views_agree_with_the_report() {
    // Jobs of tens of milliseconds, and a slow slave: the run is still
    // going, the slave holding jobs, when Stop is pressed.
    let path = config_file_slow_slave("stopped-slave", 200_000, 0.2);
    let mut h = demo_with_slave_holding_jobs(&path);
    h.get_by_label("Stop the slave").click();
    let report = verified_report_after_run(&mut h, Duration::from_secs(120));
    assert!(
        report.peer_lost_at_s.is_some() || report.jobs_reclaimed > 0,
        "{report:?}"
    );
    assert_eq!(report.jobs_done.master + report.jobs_done.slave, 32);
    h.run_steps(3);
    h.get_by_label_contains("· phase: ended in");
    assert_every_view_agrees(&mut h, Some(&report));
    h.get_by_label("Jobs table").click();
    h.run_steps(2);
    let table = h.state_mut().jobs();
    table.set_filters(Some(Where::Queued), None);
    assert!(table.visible().is_empty());
}

// The master stopped mid-run: no report; the slave fails (its master
// stopped), and the views agree with one another.
#[test]
fn after_the_master_is_stopped_the_views_agree() {
    let path = config_file_slow_slave("stopped-master", 200_000, 0.2);
    let mut h = demo_with_slave_holding_jobs(&path);
    h.get_by_label("Stop the master").click();
    step_until_ended(&mut h, Duration::from_secs(120));
    assert!(matches!(
        outcome_of(&h, Role::Master),
        Some(Outcome::Stopped)
    ));
    assert!(
        matches!(outcome_of(&h, Role::Slave), Some(Outcome::Failed { .. })),
        "{:?}",
        outcome_of(&h, Role::Slave)
    );
    h.get_by_label_contains("run over (stopped)");
    assert_every_view_agrees(&mut h, None);
}

// The slave's process killed (no goodbye): the master's window, alone,
// finishes the run and every view agrees with its report.
#[test]
fn after_the_slave_is_lost_the_masters_views_agree_with_the_report() {
    let path = config_file_slow_slave("lost-slave", 200_000, 0.2);
    let dir = path.parent().unwrap();
    let config = path.to_str().unwrap();
    let mut slave = common::spawn(&["--role", "slave", "--config", config, "--headless"], dir);
    let mut h = window(Mode::Node(Role::Master), &path);
    h.step();
    h.get_by_label("Start").click();
    step_until_the_slave_holds_jobs(&mut h, Role::Master);
    slave.kill().unwrap(); // SIGKILL: no goodbye
    let _ = slave.wait();
    step_until_ended(&mut h, Duration::from_secs(120));
    let report = match outcome_of(&h, Role::Master) {
        Some(Outcome::Finished {
            verified: true,
            report: Some(r),
        }) => (**r).clone(),
        other => panic!("the master ended with {other:?}"),
    };
    assert!(report.peer_lost_at_s.is_some(), "{report:?}");
    assert!(report.jobs_reclaimed > 0, "{report:?}");
    assert_every_view_agrees(&mut h, Some(&report));
}

// Issue 22: a slave with another secret is not "no slave": the master's
// window names the datagrams that fail authentication, and the slave's
// names the master's.
#[test]
fn windows_whose_secrets_differ_say_so() {
    let path = config_file("secrets");
    let text = std::fs::read_to_string(&path).unwrap();
    let with_secret =
        |secret: &str| text.replacen('{', &format!("{{\n  \"secret\": \"{secret}\","), 1);
    std::fs::write(&path, with_secret("one secret of the master's")).unwrap();
    let other = path.with_file_name("slave.json");
    std::fs::write(&other, with_secret("another secret, the slave's")).unwrap();
    let mut slave = window(Mode::Node(Role::Slave), &other);
    let mut master = window(Mode::Node(Role::Master), &path);
    slave.step();
    master.step();
    slave.get_by_label("Start").click();
    master.get_by_label("Start").click();
    let config = config::load_file(Some(&path)).unwrap().validate().unwrap();
    let says = |h: &Harness<'static, LoadbalApp>, role: Role| {
        h.state().panel(role).unwrap().connection_text()
    };
    step_until(
        &mut [&mut slave, &mut master],
        Duration::from_secs(30),
        "both windows to name the failing datagrams",
        |h| {
            says(h[0], Role::Slave).contains("fail authentication")
                && says(h[1], Role::Master).contains("fail authentication")
        },
    );
    let master_says = says(&master, Role::Master);
    let expected = format!("waiting for the slave at {0}: ", config.slave.address);
    assert!(master_says.starts_with(&expected), "{master_says}");
    assert!(
        master_says.ends_with(&format!(
            " datagrams from {} fail authentication: the two configs' secrets differ?",
            config.slave.address
        )),
        "{master_says}"
    );
    let slave_says = says(&slave, Role::Slave);
    assert!(
        slave_says.contains(&format!("datagrams from {} fail", config.master.address)),
        "{slave_says}"
    );
    master.step();
    master.get_by_label_contains("the two configs' secrets differ?");
    for (h, role) in [(&mut slave, Role::Slave), (&mut master, Role::Master)] {
        h.get_by_label(&format!("Stop the {role}")).click();
        h.step();
    }
}

/// A widget's rect, as the layout check sees it.
#[derive(Debug, Clone)]
struct Placed {
    what: String,
    rect: egui::Rect,
    /// Its visible part: the rect within its panel.
    visible: egui::Rect,
    /// Its panel's rect (or its scroll area's view).
    panel: egui::Rect,
    /// True inside a scroll area that scrolls sideways.
    scrolls_sideways: bool,
    /// Ancestors' ids and its own, to tell nesting from overlap.
    id: egui::accesskit::NodeId,
    ancestors: Vec<egui::accesskit::NodeId>,
}

/// Every widget of the window with its panel, from egui's own layout (the
/// accesskit tree): the panels' edges from their resize splitters, the
/// header's from its widgets.
fn placed_widgets(h: &Harness<'static, LoadbalApp>, size: egui::Vec2) -> Vec<Placed> {
    use egui::accesskit::Role as R;
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, size);
    let rect_of = |n: &egui_kittest::Node<'_>| {
        n.accesskit_node().bounding_box().map(|r| {
            egui::Rect::from_min_max(
                egui::pos2(r.x0 as f32, r.y0 as f32),
                egui::pos2(r.x1 as f32, r.y1 as f32),
            )
        })
    };
    // The panes, in the order they were shown, each with the splitter
    // that follows it, if any.
    let root = h.root();
    let mut panes: Vec<(egui_kittest::Node<'_>, Option<egui::Rect>)> = Vec::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        let children: Vec<_> = n.children().collect();
        if children
            .iter()
            .any(|c| c.accesskit_node().role() == R::Pane)
        {
            for c in children {
                match c.accesskit_node().role() {
                    R::Pane => panes.push((c, None)),
                    R::Splitter => {
                        if let Some(last) = panes.last_mut() {
                            last.1 = rect_of(&c);
                        }
                    }
                    _ => {}
                }
            }
            break;
        }
        stack.extend(children);
    }
    assert!(panes.len() >= 2, "no panels found");
    // Every widget under a node, with its ancestors and the clip of the
    // scroll areas it is in (a scroll area's bars are its children: a
    // horizontal bar spans its view's width, a vertical one its height).
    type Found<'t> = (
        egui_kittest::Node<'t>,
        Vec<egui::accesskit::NodeId>,
        egui::Rect,
        bool,
    );
    fn widgets<'t>(
        n: &egui_kittest::Node<'t>,
        ancestors: &mut Vec<egui::accesskit::NodeId>,
        (clip, sideways): (egui::Rect, bool),
        out: &mut Vec<Found<'t>>,
    ) {
        use egui::accesskit::Role as R;
        let role = n.accesskit_node().role();
        let is_widget = !matches!(
            role,
            R::GenericContainer
                | R::TextRun
                | R::Pane
                | R::Window
                | R::Splitter
                | R::Unknown
                | R::ScrollBar
        ) && n.accesskit_node().bounding_box().is_some();
        if is_widget {
            out.push((*n, ancestors.clone(), clip, sideways));
        }
        let (mut clip, mut sideways) = (clip, sideways);
        for c in n.children() {
            if c.accesskit_node().role() != R::ScrollBar {
                continue;
            }
            let Some(r) = c.accesskit_node().bounding_box() else {
                continue;
            };
            let (x0, y0, x1, y1) = (r.x0 as f32, r.y0 as f32, r.x1 as f32, r.y1 as f32);
            let bar = if x1 - x0 > y1 - y0 {
                // A horizontal bar: this area scrolls sideways.
                sideways = true;
                egui::Rect::from_x_y_ranges(x0..=x1, f32::NEG_INFINITY..=y1)
            } else {
                egui::Rect::from_x_y_ranges(f32::NEG_INFINITY..=x1, y0..=y1)
            };
            clip = clip.intersect(bar);
        }
        ancestors.push(n.accesskit_node().locate().0);
        for c in n.children() {
            widgets(&c, ancestors, (clip, sideways), out);
        }
        ancestors.pop();
    }
    let everywhere = egui::Rect::EVERYTHING;
    let mut header_bottom = 0.0f32;
    let mut right_left = screen.max.x;
    let mut bottom_top = screen.max.y;
    for (i, (pane, splitter)) in panes.iter().enumerate() {
        match splitter {
            Some(s) if s.height() > s.width() => right_left = s.center().x,
            Some(s) => bottom_top = s.center().y,
            None if i == 0 => {
                let mut found = Vec::new();
                widgets(pane, &mut Vec::new(), (everywhere, false), &mut found);
                header_bottom = found
                    .iter()
                    .filter_map(|(n, ..)| rect_of(n))
                    .map(|r| r.max.y)
                    .fold(0.0, f32::max);
            }
            None => {}
        }
    }
    let mut placed = Vec::new();
    for (i, (pane, splitter)) in panes.iter().enumerate() {
        let panel = match splitter {
            Some(s) if s.height() > s.width() => egui::Rect::from_x_y_ranges(
                s.center().x..=screen.max.x,
                header_bottom..=screen.max.y,
            ),
            Some(s) => {
                egui::Rect::from_x_y_ranges(screen.min.x..=right_left, s.center().y..=screen.max.y)
            }
            None if i == 0 => egui::Rect::from_x_y_ranges(
                screen.min.x..=screen.max.x,
                screen.min.y..=header_bottom,
            ),
            None => {
                egui::Rect::from_x_y_ranges(screen.min.x..=right_left, header_bottom..=bottom_top)
            }
        };
        let mut found = Vec::new();
        widgets(pane, &mut Vec::new(), (everywhere, false), &mut found);
        for (n, ancestors, clip, sideways) in found {
            let rect = rect_of(&n).unwrap();
            let a = n.accesskit_node();
            let text = a.label().or_else(|| a.value()).unwrap_or_default();
            placed.push(Placed {
                what: format!(
                    "{:?} {:?}",
                    a.role(),
                    text.chars().take(60).collect::<String>()
                ),
                rect,
                visible: rect.intersect(panel).intersect(clip),
                // What it may fill: its panel, or the view of the scroll
                // area it is in.
                panel: if clip == everywhere {
                    panel
                } else {
                    panel.intersect(clip)
                },
                scrolls_sideways: sideways,
                id: a.locate().0,
                ancestors,
            });
        }
    }
    placed
}

/// What is wrong with the layout: widgets cut off at their panel's side
/// (nothing scrolls sideways) and widgets that overlap.
fn layout_faults(placed: &[Placed]) -> Vec<String> {
    let mut faults = Vec::new();
    let shown: Vec<&Placed> = placed.iter().filter(|p| p.visible.is_positive()).collect();
    // In view from top to bottom (a vertical scroll area shows it, or
    // would), yet wholly past its panel's side: cut off as well.
    let beside = placed
        .iter()
        .filter(|p| !p.visible.is_positive() && !p.scrolls_sideways)
        .filter(|p| p.rect.max.y > p.panel.min.y && p.rect.min.y < p.panel.max.y)
        .filter(|p| p.rect.min.x >= p.panel.max.x || p.rect.max.x <= p.panel.min.x);
    for p in beside {
        faults.push(format!(
            "wholly past its panel's side: {} at {:?} in {:?}",
            p.what, p.rect, p.panel
        ));
    }
    for p in &shown {
        let out = p.rect.min.x < p.panel.min.x - 1.0 || p.rect.max.x > p.panel.max.x + 1.0;
        if out && !p.scrolls_sideways {
            faults.push(format!(
                "cut off at its panel's side: {} at {:?} in {:?}",
                p.what, p.rect, p.panel
            ));
        }
    }
    for (i, a) in shown.iter().enumerate() {
        for b in &shown[i + 1..] {
            if a.ancestors.contains(&b.id) || b.ancestors.contains(&a.id) {
                continue;
            }
            let both = a.visible.intersect(b.visible);
            if both.is_positive() && both.area() > 4.0 {
                faults.push(format!(
                    "overlap: {} at {:?} and {} at {:?}",
                    a.what, a.rect, b.what, b.rect
                ));
            }
        }
    }
    faults
}

// Issue 22: at 1280 x 800 and at 1024 x 700, before and after a run, on
// each tab, with the Configuration and Compare panels open or not, no
// widget overlaps another and none is cut off at a panel's side.
#[test]
fn the_layout_holds_at_both_sizes_with_every_panel() {
    let path = config_file_iterating("layout", 2000);
    let mut faults = Vec::new();
    let windows = [
        (Mode::Demo, egui::Vec2::new(1280.0, 800.0)),
        (Mode::Demo, egui::Vec2::new(1024.0, 700.0)),
        (Mode::Node(Role::Master), egui::Vec2::new(1024.0, 700.0)),
        (Mode::Node(Role::Slave), egui::Vec2::new(1024.0, 700.0)),
    ];
    for (mode, size) in windows {
        let file = config::load_file(Some(&path)).unwrap();
        let app = LoadbalApp::with_outputs(mode, path.clone(), file, fixed_machine());
        let mut h = Harness::builder().with_size(size).build_ui_state(
            |ui, app: &mut LoadbalApp| {
                app.poll();
                app.show(ui);
            },
            app,
        );
        h.run_steps(2);
        // A node's window alone has no run to show.
        let stages: &[&str] = match mode {
            Mode::Demo => &["before Start", "after a run"],
            Mode::Node(_) => &["before Start"],
        };
        for &stage in stages {
            if stage == "after a run" {
                h.get_by_label("Start").click();
                verified_report_after_run(&mut h, Duration::from_secs(60));
                // The Compare panel (left open by the stage before) with
                // its chart and table filled in.
                h.get_by_label("Simulate").click();
                step_until(
                    &mut [&mut h],
                    Duration::from_secs(120),
                    "the simulations",
                    |h| {
                        let app = h[0].state();
                        !app.compare_busy() && app.compare_results() > 0
                    },
                );
                h.run_steps(3);
            }
            for tab in ["Overview", "Task stream", "Jobs table", "Log"] {
                h.get_by_label(tab).click();
                for (config, compare) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    for (label, on) in [("Configuration", config), ("Compare policies", compare)] {
                        let node = h.get_by_role_and_label(A11yRole::Button, label);
                        let toggled =
                            node.accesskit_node().toggled() == Some(egui::accesskit::Toggled::True);
                        if toggled != on {
                            node.click();
                            h.run_steps(2);
                        }
                    }
                    h.run_steps(3);
                    for fault in layout_faults(&placed_widgets(&h, size)) {
                        faults.push(format!(
                            "{mode:?} {}x{} {stage}, {tab}, configuration {config}, compare \
                             {compare}: {fault}",
                            size.x, size.y
                        ));
                    }
                }
            }
        }
    }
    assert!(
        faults.is_empty(),
        "{} faults:\n{}",
        faults.len(),
        faults.join("\n")
    );
}
