//! `loadbal simulate` and `loadbal compare`: arguments, checks and output.

use std::path::{Path, PathBuf};

use anyhow::Context;
use loadbal::config::{self, Config, ConfigFile};
use loadbal::sim::{self, ThrottleChange, queueing};

use crate::{Failure, check_output_path, runtime, usage};

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Config file [default: config.json in the current directory, or the
    /// built-in defaults if there is none].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Jobs per second one worker computes at full throttle [default: the
    /// machine profile's kernel rate, on the config's jobs].
    #[arg(long, value_name = "JOBS_PER_S")]
    rate: Option<f64>,
    /// The machine profile (`loadbal calibrate --out PATH`) [default: the
    /// one in the user's cache directory, measured there once if missing].
    #[arg(long, value_name = "PATH")]
    machine: Option<PathBuf>,
    /// Also write the simulated run as a trace (Trace Event Format) to PATH.
    #[arg(long, value_name = "PATH")]
    trace: Option<PathBuf>,
    /// Change a node's throttle mid-run: seconds from the bootstrap's
    /// start, master or slave, and the new throttle (repeatable), e.g.
    /// 0.5:slave:0.25. With --replay, in place of the run's own changes.
    #[arg(long = "throttle-at", value_name = "S:NODE:VALUE")]
    throttle_at: Vec<ThrottleChange>,
    /// Run a real run again from its trace (`--trace` of a demo, or each
    /// node's: give both): each job's measured cost, the link each node
    /// measured, the run's settings and throttle changes. --policy,
    /// --threshold, --throttle-at and --link change what they say.
    #[arg(long, value_name = "TRACE", conflicts_with_all = ["config", "rate", "machine", "queueing"],
          help_heading = "Replay")]
    replay: Vec<PathBuf>,
    /// With --replay: both directions' link in place of the measured one,
    /// as config.json writes a link, e.g. '{"bandwidth_mbit": 10, "delay_ms": 20}'.
    #[arg(
        long,
        value_name = "JSON",
        requires = "replay",
        help_heading = "Replay"
    )]
    link: Option<String>,
    /// Also write the output as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// The classic two-queue experiment (Poisson arrivals, exponential
    /// service of mean 1, instantaneous transfers) instead of a run.
    #[arg(long, help_heading = "Queueing")]
    queueing: bool,
    /// The policy [run: default the config's; queueing: none, sender,
    /// receiver, symmetric or jsq].
    #[arg(long, value_name = "NAME")]
    policy: Option<String>,
    /// The policy's threshold, in its unit [default: the config's, or the
    /// policy's own].
    #[arg(long, value_name = "T")]
    threshold: Option<u32>,
    /// Queueing: arrivals per unit time at each node, from 0 to 1 (exclusive).
    #[arg(
        long,
        value_name = "RHO",
        requires = "queueing",
        help_heading = "Queueing"
    )]
    load: Option<f64>,
    /// Queueing: jobs measured.
    #[arg(
        long,
        value_name = "N",
        requires = "queueing",
        default_value_t = 1_000_000,
        help_heading = "Queueing"
    )]
    jobs: u64,
    /// The random seed (the session's nonces and the links' draws;
    /// queueing: arrivals and service). The same config, machine profile
    /// and seed give the same report and trace (a digits or command
    /// workload's jobs are timed first, so not for those).
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Config file [default: config.json in the current directory, or the
    /// built-in defaults if there is none].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Simulate every run (the default: seconds).
    #[arg(long, conflicts_with = "real")]
    sim: bool,
    /// Run every plain-link scenario for real on loopback, both nodes in
    /// this process (the WAN scenarios stay simulated).
    #[arg(long)]
    real: bool,
    /// Jobs per second one worker computes at full throttle, for the
    /// simulations [default: the machine profile's kernel rate].
    #[arg(long, value_name = "JOBS_PER_S")]
    rate: Option<f64>,
    /// The machine profile (`loadbal calibrate --out PATH`) [default: the
    /// one in the user's cache directory, measured there once if missing].
    #[arg(long, value_name = "PATH")]
    machine: Option<PathBuf>,
    /// Every policy on a real run replayed from its trace (a demo's, or
    /// each node's: give both), as `simulate --replay` runs one.
    #[arg(long, value_name = "TRACE", conflicts_with_all = ["config", "rate", "machine", "real", "sim"])]
    replay: Vec<PathBuf>,
    /// Where to write compare.md, compare.json, compare.csv and the charts
    /// (the repository's .gitignore leaves out the default).
    #[arg(long, value_name = "DIR", default_value = "compare")]
    out: PathBuf,
}

fn load(config: Option<&Path>) -> Result<(ConfigFile, Config), Failure> {
    let file = config::load_file(config).map_err(|e| usage(anyhow::Error::new(e)))?;
    let validated = file.validate().map_err(|e| usage(anyhow::Error::new(e)))?;
    Ok((file, validated))
}

fn check_rate(rate: Option<f64>) -> Result<(), Failure> {
    match rate {
        Some(r) if !(r.is_finite() && (1e-3..=1e9).contains(&r)) => Err(usage(anyhow::anyhow!(
            "--rate {r}: must be a number of jobs per second from 0.001 to 1e9"
        ))),
        _ => Ok(()),
    }
}

/// This machine, with the rate given or measured now (said on stderr).
/// How many jobs of a digits or command workload are run first to
/// measure what one costs.
const SAMPLE_JOBS: u32 = 5;

/// A digits or command workload, for the simulator: a few of its jobs run
/// here first (their mean running time and input bytes), and the run
/// modelled as a vector run of as many jobs, each that many bytes and that
/// long. Returns the model's config and its jobs per second; None for the
/// vector kind.
fn sampled_model(config: &Config) -> Result<Option<(Config, f64)>, Failure> {
    let mut master = config.clone();
    let Some(work) = loadbal::node::prepare_work(
        &mut master,
        loadbal::ids::Role::Master,
        &loadbal::workload::kind::MasterOptions::default(),
    )
    .map_err(|e| usage(anyhow::anyhow!("{e}")))?
    else {
        return Ok(None);
    };
    let (k, seconds, bytes) = work
        .sample(SAMPLE_JOBS)
        .map_err(|e| runtime(anyhow::anyhow!("sampling the jobs' cost: {e}")))?;
    loadbal::say!(
        "sampled {k} of the {} jobs of {}: {:.4} s and {:.0} bytes of input each on average; \
         the run is simulated as {} jobs of that cost and size",
        work.jobs(),
        work.describe(),
        seconds,
        bytes,
        work.jobs()
    );
    let mut model = master;
    model.workload = config::WorkloadConfig {
        jobs: work.jobs(),
        // Bytes as doubles (at least one); one iteration: the rate given
        // is the jobs' own.
        elements_per_job: ((bytes / 8.0).ceil() as u32).max(1),
        iterations: 1,
        ..config::WorkloadConfig::default()
    };
    Ok(Some((model, 1.0 / seconds.max(1e-6))))
}

/// The machine the simulator models for `config`: the machine profile at
/// `path` (or the user's, measured once if missing), with `rate` for the
/// kernel's when given. Says which profile and what it gives.
fn machine(
    rate: Option<f64>,
    config: &Config,
    path: Option<&Path>,
) -> Result<sim::MachineModel, Failure> {
    let mut say = |line: &str| loadbal::say!("{line}");
    let profile = sim::MachineProfile::obtain(path, &mut say).map_err(|e| {
        let e = anyhow::anyhow!("{e}");
        if path.is_some() { usage(e) } else { runtime(e) }
    })?;
    let m = profile.model(config, rate);
    let source = path
        .map(Path::to_path_buf)
        .or_else(sim::MachineProfile::default_path)
        .map_or_else(|| "measured now".to_owned(), |p| p.display().to_string());
    loadbal::say!(
        "machine profile {source} ({}, {} logical CPUs): one worker computes {:.1} jobs/s of {} \
         doubles x {} iterations{}; moving a byte costs {:.2} ns of CPU at each end",
        profile.cpu,
        m.cores,
        m.rate_jobs_per_s,
        config.workload.elements_per_job,
        config.workload.iterations,
        if rate.is_some() { " (--rate)" } else { "" },
        m.seconds_per_byte * 1e9
    );
    Ok(m)
}

fn write_json(path: Option<&Path>, text: &str) -> Result<(), Failure> {
    if let Some(path) = path {
        loadbal::files::write(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(runtime)?;
    }
    Ok(())
}

/// `loadbal simulate`.
pub fn simulate(args: &SimulateArgs) -> Result<u8, Failure> {
    let config_path = args.config.as_deref();
    if let Some(path) = &args.json {
        check_output_path("--json", path).map_err(usage)?;
    }
    if args.queueing {
        return queueing_mode(args);
    }
    if !args.replay.is_empty() {
        return replay_mode(args);
    }
    check_rate(args.rate)?;
    let (mut file, _) = load(config_path)?;
    if let Some(policy) = &args.policy {
        file.policy.transfer = policy.clone();
        file.policy.threshold = None;
    }
    if let Some(t) = args.threshold {
        file.policy.threshold = Some(t);
    }
    let config = file.validate().map_err(|e| usage(anyhow::Error::new(e)))?;
    let (config, rate) = match sampled_model(&config)? {
        Some((model, rate)) => (model, Some(args.rate.unwrap_or(rate))),
        None => (config, args.rate),
    };
    if let Some(path) = &args.trace {
        check_output_path("--trace", path).map_err(usage)?;
    }
    let machine = machine(rate, &config, args.machine.as_deref())?;
    let result = sim::simulate(&config, &machine, &args.throttle_at, args.seed)
        .context("simulate")
        .map_err(runtime)?;
    emit(&result, args)?;
    let p = &result.prediction;
    loadbal::say!(
        "simulated ({} policy): finishes in {:.3} s against an ideal {:.3} s (efficiency {:.3}); \
         {} jobs moved in {} transfers; {:.2} s to simulate",
        config.policy.transfer,
        p.finish_s,
        p.ideal_s,
        p.efficiency,
        p.jobs_moved,
        p.transfers,
        p.wall_s
    );
    Ok(0)
}

/// Writes a simulated run's trace (`--trace`), prints its report and
/// writes it (`--json`).
fn emit(result: &sim::Simulation, args: &SimulateArgs) -> Result<(), Failure> {
    if let Some(path) = &args.trace {
        loadbal::trace::write(path, &result.trace)
            .with_context(|| format!("cannot write the trace to {}", path.display()))
            .map_err(runtime)?;
    }
    let json = result.to_json();
    let _ = loadbal::term::out(&format!("{json}\n"));
    write_json(args.json.as_deref(), &json)
}

/// `loadbal simulate --replay TRACE`.
fn replay_mode(args: &SimulateArgs) -> Result<u8, Failure> {
    if let Some(path) = &args.trace {
        check_output_path("--trace", path).map_err(usage)?;
    }
    let replay = sim::replay::Replay::read(&args.replay)
        .map_err(|e| usage(anyhow::anyhow!("--replay {e}")))?;
    for line in &replay.assumed {
        loadbal::say!("replay: {line}");
    }
    let mut config = replay.config.clone();
    let recorded_policy = config.policy.transfer.clone();
    if let Some(policy) = &args.policy {
        if loadbal::policy::index_of(policy).is_none() {
            return Err(usage(anyhow::anyhow!(
                "--policy {policy}: not a policy ({})",
                loadbal::policy::NAMES.join(", ")
            )));
        }
        if *policy != config.policy.transfer {
            config.policy.transfer = policy.clone();
            config.policy.threshold = None;
        }
    }
    if let Some(t) = args.threshold {
        config.policy.threshold = Some(t);
    }
    config
        .policy
        .validate()
        .map_err(|e| usage(anyhow::Error::new(e)))?;
    if let Some(text) = &args.link {
        let link: loadbal::link::LinkConfig = serde_json::from_str(text)
            .map_err(|e| usage(anyhow::anyhow!("--link {text}: not a link ({e})")))?;
        link.validate("--link")
            .map_err(|e| usage(anyhow::Error::new(e)))?;
        config.master.link = Some(link);
        config.slave.link = Some(link);
    }
    let changes = if args.throttle_at.is_empty() {
        replay.changes.clone()
    } else {
        args.throttle_at.clone()
    };
    loadbal::say!(
        "replaying {}: {} jobs; a job computes in {:.4} s at the master and {:.4} s at the slave \
         (medians, full throttle); the link {}",
        args.replay
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and "),
        config.workload.jobs,
        replay.median_compute_s[0],
        replay.median_compute_s[1],
        describe_link(config.master.link.as_ref()),
    );
    let result = replay
        .run(&config, &changes, args.seed)
        .context("replay")
        .map_err(runtime)?;
    emit(&result, args)?;
    let p = &result.prediction;
    let same =
        config.policy == replay.config.policy && args.throttle_at.is_empty() && args.link.is_none();
    let against = match replay.real_finish_s {
        Some(real) if same => format!(
            "; the real run took {real:.3} s ({:+.1} %)",
            (p.finish_s / real - 1.0) * 100.0
        ),
        Some(real) => format!("; the real run ({recorded_policy}) took {real:.3} s"),
        None => String::new(),
    };
    loadbal::say!(
        "replayed ({} policy): finishes in {:.3} s{against}; {} jobs moved in {} transfers",
        config.policy.transfer,
        p.finish_s,
        p.jobs_moved,
        p.transfers
    );
    Ok(0)
}

/// A link in words.
fn describe_link(link: Option<&loadbal::link::LinkConfig>) -> String {
    match link {
        None => "plain".to_owned(),
        Some(l) => {
            let mut parts = vec![if l.bandwidth_mbit > 0.0 {
                format!("{:.0} Mbit/s", l.bandwidth_mbit)
            } else {
                "no bandwidth limit".to_owned()
            }];
            parts.push(format!("{:.3} ms one way", l.delay_ms));
            if l.loss > 0.0 {
                parts.push(format!("{:.2} % loss", l.loss * 100.0));
            }
            parts.join(", ")
        }
    }
}

fn queueing_mode(args: &SimulateArgs) -> Result<u8, Failure> {
    if args.rate.is_some()
        || !args.throttle_at.is_empty()
        || args.machine.is_some()
        || args.trace.is_some()
    {
        return Err(usage(anyhow::anyhow!(
            "--rate, --machine, --throttle-at and --trace are for simulated runs, not --queueing"
        )));
    }
    let names = queueing::POLICIES
        .iter()
        .map(|(short, _)| *short)
        .collect::<Vec<_>>()
        .join(", ");
    let Some(policy) = args.policy.as_deref() else {
        return Err(usage(anyhow::anyhow!(
            "--queueing needs --policy NAME ({names}), --threshold T and --load RHO"
        )));
    };
    if queueing::policy_name(policy).is_none() {
        return Err(usage(anyhow::anyhow!(
            "--policy {policy}: the queueing mode has {names}"
        )));
    }
    let Some(threshold) = args.threshold else {
        return Err(usage(anyhow::anyhow!(
            "--queueing needs --threshold T (jobs at a node, 1 or 2 in the classic experiments)"
        )));
    };
    let load = match args.load {
        Some(l) if l > 0.0 && l < 1.0 => l,
        Some(l) => {
            return Err(usage(anyhow::anyhow!(
                "--load {l}: must be above 0 and below 1 (a queue at 1 or more never settles)"
            )));
        }
        None => {
            return Err(usage(anyhow::anyhow!(
                "--queueing needs --load RHO, the arrivals per unit time at each node (0 to 1)"
            )));
        }
    };
    if args.jobs < 1000 {
        return Err(usage(anyhow::anyhow!(
            "--jobs {}: at least 1000, for 20 batches of 50 to estimate the interval",
            args.jobs
        )));
    }
    let experiment = queueing::Experiment {
        load,
        threshold,
        jobs: args.jobs,
        seed: args.seed,
    };
    let Some(outcome) = queueing::run_named(policy, &experiment) else {
        return Err(usage(anyhow::anyhow!("--policy {policy}: unknown")));
    };
    // A struct of numbers and a name always serialises.
    let json = serde_json::to_string_pretty(&outcome).unwrap_or_default();
    let _ = loadbal::term::out(&format!("{json}\n"));
    write_json(args.json.as_deref(), &json)?;
    Ok(0)
}

/// `loadbal compare`.
pub fn compare(args: &CompareArgs) -> Result<u8, Failure> {
    let config_path = args.config.as_deref();
    check_rate(args.rate)?;
    if args.out.exists() && !args.out.is_dir() {
        return Err(usage(anyhow::anyhow!(
            "--out {}: is not a directory",
            args.out.display()
        )));
    }
    let replay = if args.replay.is_empty() {
        None
    } else {
        let replay = sim::replay::Replay::read(&args.replay)
            .map_err(|e| usage(anyhow::anyhow!("--replay {e}")))?;
        for line in &replay.assumed {
            loadbal::say!("replay: {line}");
        }
        Some(replay)
    };
    let (file, config) = match &replay {
        Some(r) => (ConfigFile::default(), r.config.clone()),
        None => load(config_path)?,
    };
    if replay.is_none() && !config.workload.kind.is_vector() {
        return Err(usage(anyhow::anyhow!(
            "compare runs the vector kind only; for a {} workload, `loadbal simulate --policy NAME` \
             predicts a run from a few of its jobs run first",
            config.workload.kind.name()
        )));
    }
    let compression = file.network.compression;
    // The output directory is made, and written to, before any work.
    std::fs::create_dir_all(&args.out)
        .and_then(|()| {
            let probe = args.out.join(".loadbal-write-test");
            std::fs::write(&probe, b"")?;
            std::fs::remove_file(&probe)
        })
        .map_err(|e| {
            usage(anyhow::anyhow!(
                "--out {}: cannot write there ({e})",
                args.out.display()
            ))
        })?;
    let mut progress = |line: &str| loadbal::say!("{line}");
    let comparison = if let Some(replay) = &replay {
        let name = args
            .replay
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" + ");
        sim::compare::replay_all(replay, &format!("replay of {name}"), &mut progress)
    } else if args.real {
        let machine = machine(args.rate, &config, args.machine.as_deref())?;
        sim::compare::run_real(&config, compression, &machine, &mut progress)
            .context("compare --real")
            .map_err(runtime)?
    } else {
        let machine = machine(args.rate, &config, args.machine.as_deref())?;
        sim::compare::simulate_all(&config, compression, &machine, &mut progress)
    };
    let files = comparison.write(&args.out).map_err(runtime)?;
    let mut summary = String::new();
    for sc in &comparison.scenarios {
        if let Some(best) = comparison.best(&sc.name) {
            summary.push_str(&format!(
                "  {:<30} best {:<18} {:.3} s (efficiency {:.3})\n",
                sc.name,
                best.policy,
                best.finish_s.unwrap_or(0.0),
                best.efficiency.unwrap_or(0.0)
            ));
        }
    }
    let _ = loadbal::term::out(&format!(
        "loadbal compare ({}), {:.1} s:\n{summary}",
        comparison.mode, comparison.seconds
    ));
    loadbal::say!(
        "written: {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct SwarmArgs {
    /// Seeds to run.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, value_name = "S", default_value_t = 0)]
    from: u64,
    /// Most jobs a scenario starts with.
    #[arg(long = "jobs-max", value_name = "J", default_value_t = 48,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    jobs_max: u32,
    /// Also write the summary as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Print each seed's scenario and both nodes' logs (for replaying one
    /// seed: --from S --seeds 1 -v).
    #[arg(short, long)]
    verbose: bool,
}

/// `loadbal swarm`: exit 0 when every seed ended verified or with a failure
/// its scenario allows, 1 otherwise.
pub fn swarm(args: &SwarmArgs) -> Result<u8, Failure> {
    use loadbal::sim::swarm;
    if let Some(path) = &args.json {
        check_output_path("--json", path).map_err(usage)?;
    }
    if args.seeds == 0 {
        return Err(usage(anyhow::anyhow!("--seeds: give at least 1")));
    }
    // A seed's panic is caught and reported as a violation; the default
    // hook would print it too, between the progress lines.
    if !args.verbose {
        std::panic::set_hook(Box::new(|_| {}));
    }
    if args.verbose {
        let mut summary = swarm::Summary::default();
        let wall = std::time::Instant::now();
        for seed in args.from..args.from.saturating_add(args.seeds) {
            let mut text = String::new();
            let r = swarm::run_seed(seed, args.jobs_max, Some(&mut text));
            loadbal::term::err(&text);
            summary.add(r);
        }
        summary.wall_s = wall.elapsed().as_secs_f64();
        return finish_swarm(args, &summary);
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let total = args.seeds;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let step = (total / 100).max(1);
    let progress = move |done: u64| {
        if done.is_multiple_of(step) || done == total {
            let line = format!("swarm: {done}/{total} seeds");
            if tty {
                loadbal::term::err(&format!("\r{line}"));
            } else if done.is_multiple_of(step * 10) || done == total {
                loadbal::term::err_line(&line);
            }
        }
    };
    let summary = swarm::run(args.from, args.seeds, args.jobs_max, threads, &progress);
    if tty {
        loadbal::term::err("\n");
    }
    finish_swarm(args, &summary)
}

fn finish_swarm(args: &SwarmArgs, summary: &loadbal::sim::swarm::Summary) -> Result<u8, Failure> {
    loadbal::term::err_line(&summary.text());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(summary)
            .context("encode the summary")
            .map_err(runtime)?;
        write_json(Some(path), &json)?;
    }
    Ok(if summary.passed() { 0 } else { 1 })
}
