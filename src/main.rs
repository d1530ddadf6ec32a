//! The `loadbal` command: parses arguments, loads the config and runs a
//! node (or both, for the demo) headless. Exit codes follow the contract:
//! 0 verified, 1 finished but not verified, 2 bad arguments or config,
//! 3 runtime failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use loadbal::config::{self, Config, Role};
use loadbal::gui;
use loadbal::node::{self, Command, NodeOptions, Outcome};

mod sim_cmd;

/// Balances a CPU-heavy batch job between two machines over UDP.
///
/// Run `loadbal --role slave` on one machine and `loadbal --role master` on
/// the other (addresses in config.json), or `loadbal demo` to run both on
/// this one.
#[derive(Debug, Parser)]
#[command(name = "loadbal", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,

    /// This node's role: the master holds the workload and verifies the
    /// result; the slave receives half and returns its results.
    #[arg(long, value_enum)]
    role: Option<RoleArg>,

    /// Override this node's throttle from the config: the share of each
    /// 100 ms period its workers compute, from 0.0 (paused) to 1.0.
    #[arg(long, value_name = "F", value_parser = parse_throttle)]
    throttle: Option<f64>,

    #[command(flatten)]
    run: RunArgs,
}

/// The options of a run: a node's (`--role`) or the demo's.
#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Config file [default: config.json in the current directory, or the
    /// built-in defaults if there is none].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Run without a window: start at once, print progress to stderr and exit
    /// when this node's part is over. Without it, a window opens and the run
    /// begins with its Start button.
    #[arg(long)]
    headless: bool,

    /// Write the run report as JSON to PATH when the run ends (master and
    /// demo; `-` is standard output).
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,

    /// Write the run as a trace to PATH when it ends: Trace Event Format
    /// JSON, a span per job and per batch, for https://ui.perfetto.dev or
    /// chrome://tracing (`-` is standard output).
    #[arg(long, value_name = "PATH")]
    trace: Option<PathBuf>,

    /// Headless: print every line of the log, each batch with its job ids.
    #[arg(short, long, conflicts_with = "quiet")]
    verbose: bool,

    /// Headless: print only errors and the result.
    #[arg(short, long)]
    quiet: bool,

    /// Command workloads (master and demo, headless): write one line per
    /// job attempt to PATH, in GNU parallel's joblog format.
    #[arg(long, value_name = "PATH")]
    joblog: Option<PathBuf>,

    /// Command workloads (master and demo, headless): keep the outputs of
    /// the jobs a killed run finished and run only the others.
    #[arg(long)]
    resume: bool,

    /// The window: the machine profile its predictions read (Compare, the
    /// finished run's prediction) [default: the one in the user's cache
    /// directory, measured there once if missing].
    #[arg(long, value_name = "PATH")]
    machine: Option<PathBuf>,
}

impl RunArgs {
    /// True when any option was given.
    fn any(&self) -> bool {
        self.config.is_some()
            || self.headless
            || self.report.is_some()
            || self.trace.is_some()
            || self.verbose
            || self.quiet
            || self.joblog.is_some()
            || self.resume
            || self.machine.is_some()
    }

    /// These options, with those not given here taken from `outer` (the
    /// ones written before the subcommand: `loadbal --config c.json demo`).
    fn or(self, outer: RunArgs) -> RunArgs {
        RunArgs {
            config: self.config.or(outer.config),
            headless: self.headless || outer.headless,
            report: self.report.or(outer.report),
            trace: self.trace.or(outer.trace),
            verbose: self.verbose || outer.verbose,
            quiet: self.quiet || outer.quiet,
            joblog: self.joblog.or(outer.joblog),
            resume: self.resume || outer.resume,
            machine: self.machine.or(outer.machine),
        }
    }

    fn verbosity(&self) -> node::Verbosity {
        if self.quiet {
            node::Verbosity::Quiet
        } else if self.verbose {
            node::Verbosity::Verbose
        } else {
            node::Verbosity::Normal
        }
    }
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run a master and a slave in this process on the config's addresses.
    Demo(RunArgs),
    /// Print a fresh random secret for the config's "secret" (the same on
    /// both nodes).
    Keygen,
    /// Measure loadbal's speed against references on this machine and print
    /// a table: the kernel, a node's overhead, worker scaling, throttle
    /// accuracy, the transport, two-node runs, memory and compression.
    Bench {
        /// A smoke check of under a minute: smaller workloads, fewer repetitions.
        #[arg(long)]
        quick: bool,
        /// Also write the figures as JSON to PATH.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Measure only these groups (repeatable).
        #[arg(long, value_enum, value_name = "GROUP")]
        only: Vec<loadbal::bench::Group>,
        /// The machine profile the policies group predicts with [default:
        /// the one in the user's cache directory, measured once if missing].
        #[arg(long, value_name = "PATH")]
        machine: Option<PathBuf>,
    },
    /// Predict a run in virtual time: the same node cores and policies as a
    /// real run, modelled compute and the link model; prints the predicted
    /// report. With --queueing, the classic two-queue experiment instead.
    Simulate(sim_cmd::SimulateArgs),
    /// Run every policy over a grid of scenarios (throttle pairs, a plain
    /// link and the assignment's WAN, a throttle drop) and write a table,
    /// JSON and charts.
    Compare(sim_cmd::CompareArgs),
    /// Make a file of random decimal digits, the digit-sum job's input (the
    /// seeds' nums.txt: 30 million digits).
    Digits(DigitsArgs),
    /// Measure this machine for the simulator (the kernel's rate, what
    /// moving a byte costs over loopback, what a job costs beyond its
    /// kernel) and write the machine profile that simulate, compare, bench
    /// and the window read.
    Calibrate {
        /// Write the profile to PATH [default: loadbal/machine.json in the
        /// user's cache directory, the one predictions read unless told].
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Run thousands of seeded two-node runs in virtual time with faults
    /// (loss, pauses, lost and restarted nodes, differing configs, forged
    /// hellos), each checked for safety and liveness and replayed once.
    Swarm(sim_cmd::SwarmArgs),
}

#[derive(Debug, clap::Args)]
struct DigitsArgs {
    /// Write the digits to PATH (replaced atomically; `-` for standard output).
    #[arg(long, value_name = "PATH")]
    make: PathBuf,
    /// How many digits.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// The random digits' seed: the same seed makes the same file.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Master,
    Slave,
}

fn parse_throttle(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("{value} is out of range: must be from 0.0 to 1.0"));
    }
    Ok(value)
}

/// A failure with its exit code.
pub(crate) struct Failure {
    code: u8,
    error: anyhow::Error,
}

pub(crate) fn usage(error: anyhow::Error) -> Failure {
    Failure { code: 2, error }
}

pub(crate) fn runtime(error: anyhow::Error) -> Failure {
    Failure { code: 3, error }
}

/// Asks glibc's allocator to keep freed memory for reuse. By default it
/// gives every block over 128 KiB back to the system when freed (a job's
/// data is 256 KiB, a batch 2 MiB), so the next one comes back as fresh
/// pages that the kernel must fault in and zero one by one: measured on the
/// bootstrap, that was half of all the CPU time spent moving it. With these
/// settings blocks up to 32 MiB (glibc's ceiling for this setting) come from
/// the heap and freed ones are reused; the peak memory does not change,
/// only how often the same pages are handed back and forth.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tunables; it is called
    // first thing in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    // Only a node's run may drop a line of output rather than wait for a
    // stderr nobody reads (see loadbal::term); everything else waits.
    let runs_a_node = cli.role.is_some() || matches!(cli.command, Some(Sub::Demo(_)));
    if !runs_a_node {
        loadbal::term::keep_every_line();
    }
    let code = match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            loadbal::term::keep_every_line();
            loadbal::say!("loadbal: {:#}", f.error);
            ExitCode::from(f.code)
        }
    };
    loadbal::term::flush();
    code
}

fn run(cli: Cli) -> Result<u8, Failure> {
    let outer = cli.run;
    // Options written before a subcommand are a run's: only the demo takes
    // them (and simulate and compare a --config).
    let only_its_own = |command: &str, config_too: bool| -> Result<(), Failure> {
        let config_ok = if config_too {
            outer.config.is_none()
        } else {
            true
        };
        let others = RunArgs {
            config: None,
            ..outer.clone()
        };
        if cli.role.is_some() || cli.throttle.is_some() || others.any() || !config_ok {
            let config = if config_too { "--config, " } else { "" };
            return Err(usage(anyhow::anyhow!(
                "{command} takes only its own options (see `loadbal {command} --help`); \
                 --role, --throttle, {config}--headless, --report, --trace, -v and -q are for runs"
            )));
        }
        Ok(())
    };
    let (role, args) = match (cli.command, cli.role) {
        (Some(Sub::Demo(_)), Some(_)) => {
            return Err(usage(anyhow::anyhow!(
                "--role does not go with demo: the demo runs both roles"
            )));
        }
        (Some(Sub::Demo(_)), None) if cli.throttle.is_some() => {
            return Err(usage(anyhow::anyhow!(
                "--throttle does not go with demo: set each node's throttle in the config"
            )));
        }
        (Some(Sub::Demo(args)), None) => {
            let args = args.or(outer);
            if args.quiet && args.verbose {
                return Err(usage(anyhow::anyhow!(
                    "-q (--quiet) and -v (--verbose) ask for opposite things: give one"
                )));
            }
            (None, args)
        }
        (Some(Sub::Keygen), _) => {
            only_its_own("keygen", true)?;
            return keygen();
        }
        (Some(Sub::Simulate(mut args)), _) => {
            only_its_own("simulate", false)?;
            args.config = args.config.or(outer.config);
            return sim_cmd::simulate(&args);
        }
        (Some(Sub::Compare(mut args)), _) => {
            only_its_own("compare", false)?;
            args.config = args.config.or(outer.config);
            return sim_cmd::compare(&args);
        }
        (Some(Sub::Calibrate { out }), _) => {
            only_its_own("calibrate", true)?;
            return calibrate(out.as_deref());
        }
        (Some(Sub::Swarm(args)), _) => {
            only_its_own("swarm", true)?;
            return sim_cmd::swarm(&args);
        }
        (Some(Sub::Digits(args)), _) => {
            only_its_own("digits", true)?;
            return make_digits(&args);
        }
        (
            Some(Sub::Bench {
                quick,
                json,
                only,
                machine,
            }),
            _,
        ) => {
            only_its_own("bench", true)?;
            return bench(quick, json.as_deref(), &only, machine);
        }
        (None, Some(RoleArg::Master)) => (Some(Role::Master), outer),
        (None, Some(RoleArg::Slave)) => (Some(Role::Slave), outer),
        (None, None) => {
            return Err(usage(anyhow::anyhow!(
                "say what to run: `loadbal --role master`, `loadbal --role slave` or \
                 `loadbal demo` (see --help)"
            )));
        }
    };
    if role == Some(Role::Slave) && args.report.is_some() {
        return Err(usage(anyhow::anyhow!(
            "--report is for the master and the demo: the slave has no report to write"
        )));
    }
    let config_path = args.config.as_deref().unwrap_or(Path::new("config.json"));
    for (option, path) in [("--report", &args.report), ("--trace", &args.trace)] {
        if let Some(path) = path {
            check_output_path(option, path).map_err(usage)?;
            loadbal::files::check_not_config(path, config_path)
                .map_err(|why| usage(anyhow::anyhow!("{option} {why}")))?;
        }
    }
    if let (Some(report), Some(trace)) = (&args.report, &args.trace) {
        if report.as_os_str() == "-" && trace.as_os_str() == "-" {
            return Err(usage(anyhow::anyhow!(
                "--report - and --trace - would both go to standard output as one stream that \
                 is neither: send one of them to a file"
            )));
        }
        if loadbal::files::same_path(report, trace) {
            return Err(usage(anyhow::anyhow!(
                "--report {} and --trace {} are the same file: give each its own",
                report.display(),
                trace.display()
            )));
        }
    }
    if (args.joblog.is_some() || args.resume) && role == Some(Role::Slave) {
        return Err(usage(anyhow::anyhow!(
            "--joblog and --resume are the master's (and the demo's): the master keeps the \
             joblog and the outputs"
        )));
    }
    if (args.joblog.is_some() || args.resume) && !args.headless {
        return Err(usage(anyhow::anyhow!(
            "--joblog and --resume work with --headless (the window does not take them yet)"
        )));
    }
    if args.machine.is_some() && args.headless {
        return Err(usage(anyhow::anyhow!(
            "--machine is for the window's predictions; a headless run predicts nothing \
             (`loadbal simulate --machine PATH` does)"
        )));
    }
    if let Some(path) = &args.machine {
        // Read now: a bad profile is said before the window opens.
        loadbal::sim::MachineProfile::load(path).map_err(|e| usage(anyhow::anyhow!("{e}")))?;
    }
    if let Some(path) = &args.joblog {
        check_output_path("--joblog", path).map_err(usage)?;
    }
    if args.joblog.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        return Err(usage(anyhow::anyhow!(
            "--joblog needs a file: the joblog is written as the run goes, beside the log on \
             stderr"
        )));
    }
    if let Some(path) = &args.joblog {
        loadbal::files::check_not_config(path, config_path)
            .map_err(|why| usage(anyhow::anyhow!("--joblog {why}")))?;
        for (option, other) in [("--report", &args.report), ("--trace", &args.trace)] {
            if let Some(other) = other
                && loadbal::files::same_path(other, path)
            {
                return Err(usage(anyhow::anyhow!(
                    "--joblog {} and {option} {} are the same file: give each its own",
                    path.display(),
                    other.display()
                )));
            }
        }
    }
    let mut file =
        config::load_file(args.config.as_deref()).map_err(|e| usage(anyhow::Error::new(e)))?;
    if let (Some(role), Some(t)) = (role, cli.throttle) {
        file.node_mut(role).throttle = t;
    }
    // Checked in full before anything starts, window or not.
    let config = file.validate().map_err(|e| usage(anyhow::Error::new(e)))?;
    check_work_paths(&config, config_path, &args)?;
    let outputs = Outputs {
        report: args.report.clone(),
        trace: args.trace.clone(),
        verbosity: args.verbosity(),
        master: loadbal::workload::kind::MasterOptions {
            resume: args.resume,
            joblog: args.joblog.clone(),
        },
    };
    if !args.headless {
        let mode = match role {
            Some(role) => gui::Mode::Node(role),
            None => gui::Mode::Demo,
        };
        let gui_outputs = gui::Outputs {
            report: outputs.report,
            trace: outputs.trace,
            machine: args.machine.clone(),
        };
        gui::run(mode, config_path.to_owned(), file, gui_outputs)
            .map_err(|e| runtime(anyhow::anyhow!(e)))?;
        return Ok(0);
    }
    match role {
        Some(role) => run_node(role, &config, &outputs),
        None => run_demo(&config, &outputs),
    }
}

/// What a headless run writes besides its progress.
struct Outputs {
    report: Option<PathBuf>,
    trace: Option<PathBuf>,
    verbosity: node::Verbosity,
    /// The master's `--resume` and `--joblog`.
    master: loadbal::workload::kind::MasterOptions,
}

/// The files a digits or command run writes (its output, and `--report`,
/// `--trace` and `--joblog`) must not be its input, inside its input
/// directory, the config, or one another.
fn check_work_paths(config: &Config, config_path: &Path, args: &RunArgs) -> Result<(), Failure> {
    let w = &config.workload;
    let bad = |why: String| Err(usage(anyhow::anyhow!(why)));
    if w.kind.is_vector() {
        if args.joblog.is_some() {
            return bad("--joblog applies to a digits or command workload (workload.kind)".into());
        }
        return Ok(());
    }
    let files: Vec<(&str, &Path)> = [
        ("--report", args.report.as_deref()),
        ("--trace", args.trace.as_deref()),
        ("--joblog", args.joblog.as_deref()),
    ]
    .into_iter()
    .filter_map(|(o, p)| p.filter(|p| p.as_os_str() != "-").map(|p| (o, p)))
    .collect();
    if let Some(output) = &w.output {
        if let Err(why) = loadbal::files::check_not_config(output, config_path) {
            return bad(format!("workload.output {why}"));
        }
        for &(option, path) in &files {
            if loadbal::files::within(path, output) {
                return bad(format!(
                    "{option} {} would be written over workload.output {} (or inside it)",
                    path.display(),
                    output.display()
                ));
            }
        }
    }
    if let Some(input) = &w.input {
        if loadbal::files::within(config_path, input) && input.is_file() {
            return bad(format!(
                "workload.input {} is the config file",
                input.display()
            ));
        }
        for &(option, path) in &files {
            if loadbal::files::within(path, input) {
                return bad(format!(
                    "{option} {} is the input, or inside the input directory {}: writing it \
                     would change the input",
                    path.display(),
                    input.display()
                ));
            }
        }
    }
    Ok(())
}

/// Builds how `role` runs a digits or command workload, and gives the
/// master's config its job count; a bad input or output is a bad config
/// (exit 2, nothing started).
fn prepare(
    config: &Config,
    role: Role,
    outputs: &Outputs,
) -> Result<(Config, Option<Arc<loadbal::workload::kind::ByteWork>>), Failure> {
    let mut config = config.clone();
    let work = node::prepare_work(&mut config, role, &outputs.master)
        .map_err(|e| usage(anyhow::anyhow!("{e}")))?;
    if let Some(w) = &work
        && role == Role::Master
    {
        let (pieces, resumed) = w.pieces();
        if outputs.verbosity != node::Verbosity::Quiet {
            loadbal::say!(
                "{}{}",
                w.describe(),
                if resumed > 0 {
                    format!("; {resumed} of the {pieces} jobs were done by an earlier run")
                } else {
                    String::new()
                }
            );
        }
    }
    Ok((config, work))
}

/// `loadbal calibrate`: measures this machine and writes its profile.
fn calibrate(out: Option<&Path>) -> Result<u8, Failure> {
    let path = match out {
        Some(path) => {
            check_output_path("--out", path).map_err(usage)?;
            path.to_path_buf()
        }
        None => loadbal::sim::MachineProfile::default_path().ok_or_else(|| {
            usage(anyhow::anyhow!(
                "no cache directory ($XDG_CACHE_HOME or $HOME): say where with --out PATH"
            ))
        })?,
    };
    let mut say = |line: &str| loadbal::say!("{line}");
    let profile = loadbal::sim::MachineProfile::calibrate(&mut say)
        .context("calibrate")
        .map_err(runtime)?;
    profile
        .save(&path)
        .with_context(|| format!("cannot write the machine profile to {}", path.display()))
        .map_err(runtime)?;
    loadbal::say!(
        "machine profile written to {} ({}, {} logical CPUs)",
        path.display(),
        profile.cpu,
        profile.logical_cpus
    );
    Ok(0)
}

/// `loadbal keygen`: a fresh secret on stdout, how to use it on stderr.
fn keygen() -> Result<u8, Failure> {
    let secret = loadbal::auth::generate_secret()
        .context("cannot read the system's random number generator")
        .map_err(runtime)?;
    loadbal::term::out(&format!("{secret}\n"))
        .context("cannot write the secret to standard output")
        .map_err(runtime)?;
    loadbal::say!(
        "put this line in the config.json of both nodes (top level):\n  \"secret\": \"{secret}\""
    );
    Ok(0)
}

/// `loadbal digits --make PATH --count N [--seed S]`: the file, and its
/// digits' sum (what a run over it must find) on stderr.
fn make_digits(args: &DigitsArgs) -> Result<u8, Failure> {
    // A path that cannot be written to (a directory) is a bad argument.
    loadbal::files::target(&args.make)
        .with_context(|| format!("cannot write {}", args.make.display()))
        .map_err(usage)?;
    let mut sum = 0;
    loadbal::files::write_with(&args.make, |out| {
        sum = loadbal::workload::digits::write_digits(out, args.count, args.seed)?;
        Ok(())
    })
    .with_context(|| format!("cannot write {}", args.make.display()))
    .map_err(runtime)?;
    // On stderr, so that `--make -` keeps standard output for the digits.
    loadbal::say!(
        "wrote {} digits (seed {}) to {}; their sum is {sum}",
        args.count,
        args.seed,
        if args.make.as_os_str() == "-" {
            "standard output".to_owned()
        } else {
            args.make.display().to_string()
        }
    );
    Ok(0)
}

/// `loadbal bench`: the table on stdout, progress on stderr.
fn bench(
    quick: bool,
    json: Option<&Path>,
    only: &[loadbal::bench::Group],
    machine: Option<PathBuf>,
) -> Result<u8, Failure> {
    if let Some(path) = json {
        check_output_path("--json", path).map_err(usage)?;
    }
    if let Some(path) = &machine {
        loadbal::sim::MachineProfile::load(path).map_err(|e| usage(anyhow::anyhow!("{e}")))?;
    }
    let options = loadbal::bench::Options {
        quick,
        only: only.to_vec(),
        machine,
    };
    let report = loadbal::bench::run(&options, &mut std::io::stderr())
        .context("the bench failed")
        .map_err(runtime)?;
    // A closed stdout (`| head`) loses the table, not the JSON file.
    let _ = loadbal::term::out(&format!(
        "loadbal bench{} on {} ({} logical CPUs, kernel {}), {:.0} s\n\n{}",
        if quick { " --quick" } else { "" },
        report.machine.cpu,
        report.machine.logical_cpus,
        report.machine.kernel,
        report.seconds,
        report.table()
    ));
    if let Some(path) = json {
        loadbal::files::write(path, report.to_json().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(runtime)?;
        loadbal::say!("figures written to {}", path.display());
    }
    if !report.failed.is_empty() {
        let groups: Vec<&str> = report.failed.iter().map(|f| f.group.as_str()).collect();
        return Err(runtime(anyhow::anyhow!(
            "the bench's {} group{} failed (the other figures are above): {}",
            groups.join(", "),
            if groups.len() == 1 { "" } else { "s" },
            report
                .failed
                .iter()
                .map(|f| format!("{}: {}", f.group, f.error))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    Ok(0)
}

/// An output file's directory must exist before hours of work are spent.
/// `-` is standard output.
pub(crate) fn check_output_path(option: &str, path: &Path) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    if path.is_dir() {
        anyhow::bail!("{option} {}: is a directory", path.display());
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        anyhow::bail!(
            "{option} {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

fn run_node(role: Role, config: &Config, outputs: &Outputs) -> Result<u8, Failure> {
    let (config, work) = prepare(config, role, outputs)?;
    if let Some(code) = all_done_before(role, work.as_deref(), outputs)? {
        return Ok(code);
    }
    let config = &config;
    let me = config.node(role);
    if outputs.verbosity != node::Verbosity::Quiet {
        loadbal::say!(
            "loadbal {role} on {} (peer {}), throttle {:.0} %, {} worker{}",
            me.address,
            config.node(role.peer()).address,
            me.throttle * 100.0,
            me.workers,
            if me.workers == 1 { "" } else { "s" }
        );
        announce_links(config, &[role]);
    }
    let options = NodeOptions {
        inject_panic: node::panic_hook_from_env(),
        progress: outputs.verbosity != node::Verbosity::Quiet,
        verbosity: outputs.verbosity,
        work,
        ..NodeOptions::headless()
    };
    let handle = node::start(role, config, options)
        .with_context(|| format!("cannot start the {role}"))
        .map_err(runtime)?;
    let view = handle.view().clone();
    handle.command(Command::Start);
    let outcome = handle.wait();
    // The node is done: no line of the result may be dropped.
    loadbal::term::keep_every_line();
    write_trace(outputs, &[&view]);
    finish(&outcome, outputs)
}

fn run_demo(config: &Config, outputs: &Outputs) -> Result<u8, Failure> {
    let (_, slave_work) = prepare(config, Role::Slave, outputs)?;
    let (config, master_work) = prepare(config, Role::Master, outputs)?;
    if let Some(code) = all_done_before(Role::Master, master_work.as_deref(), outputs)? {
        return Ok(code);
    }
    let config = &config;
    let quiet = outputs.verbosity == node::Verbosity::Quiet;
    if !quiet {
        let w = &config.workload;
        let arriving = w.schedule().total() - w.jobs;
        loadbal::say!(
            "loadbal demo: master on {}, slave on {}, {} jobs{}",
            config.master.address,
            config.slave.address,
            w.jobs,
            if arriving > 0 {
                format!(" and {arriving} arriving during the run")
            } else {
                String::new()
            }
        );
        announce_links(config, &[Role::Master, Role::Slave]);
    }
    // One progress display for the demo: the master's counts the whole run.
    let inject_panic = node::panic_hook_from_env();
    let slave_options = NodeOptions {
        progress: false,
        verbosity: outputs.verbosity,
        inject_panic: inject_panic.clone(),
        work: slave_work,
        ..NodeOptions::headless()
    };
    let slave = node::start(Role::Slave, config, slave_options)
        .context("cannot start the slave")
        .map_err(runtime)?;
    let master_options = NodeOptions {
        progress: !quiet,
        verbosity: outputs.verbosity,
        inject_panic,
        work: master_work,
        ..NodeOptions::headless()
    };
    let master = node::start(Role::Master, config, master_options)
        .context("cannot start the master")
        .map_err(runtime)?;
    let views = [master.view().clone(), slave.view().clone()];
    slave.command(Command::Start);
    master.command(Command::Start);
    let (master_outcome, slave_outcome) = loadbal::run::wait_together(master, slave);
    // The nodes are done: no line of the result may be dropped.
    loadbal::term::keep_every_line();
    if let Outcome::Failed { failure: why, .. } = &slave_outcome {
        loadbal::say!("loadbal: the slave failed: {why}");
    }
    write_trace(outputs, &[&views[0], &views[1]]);
    let code = finish(&master_outcome, outputs)?;
    Ok(code.max(slave_outcome.exit_code()))
}

/// A resumed master whose earlier run finished every job (killed before
/// it wrote the output): writes the output, with no run. None when there
/// are jobs to run.
fn all_done_before(
    role: Role,
    work: Option<&loadbal::workload::kind::ByteWork>,
    outputs: &Outputs,
) -> Result<Option<u8>, Failure> {
    let Some(work) = work.filter(|w| role == Role::Master && w.jobs() == 0) else {
        return Ok(None);
    };
    let finish = work
        .finish(&[])
        .map_err(|e| runtime(anyhow::anyhow!("{e}")))?;
    if outputs.verbosity != node::Verbosity::Quiet {
        loadbal::say!("every job was done by the earlier run: {}", finish.text);
    }
    if let Some(path) = &outputs.report {
        loadbal::say!(
            "no report written to {}: no run was needed (the earlier run's outputs were all kept)",
            path.display()
        );
    }
    Ok(Some(0))
}

/// With `--trace`, writes the run's trace, however it ended (one that
/// cannot be written goes elsewhere, and stderr says where).
fn write_trace(outputs: &Outputs, views: &[&node::NodeView]) {
    let Some(path) = &outputs.trace else {
        return;
    };
    let stdout_taken = outputs.report.as_deref() == Some(Path::new("-"));
    let written = loadbal::run::write_trace(path, views, stdout_taken);
    if let loadbal::run::Written::Done(line) = written
        && outputs.verbosity != node::Verbosity::Quiet
    {
        loadbal::say!("{line}");
    }
}

/// Says which nodes send through an emulated link, and when the datagrams
/// are sealed with the public demo key.
fn announce_links(config: &Config, roles: &[Role]) {
    if config.key.is_demo() {
        loadbal::say!("{}", loadbal::auth::DEMO_KEY_NOTICE);
    }
    for &role in roles {
        if let Some(link) = config.node(role).link {
            loadbal::say!(
                "the {role}'s datagrams go through an emulated link: {}",
                link.describe()
            );
        }
    }
}

fn finish(outcome: &Outcome, outputs: &Outputs) -> Result<u8, Failure> {
    let quiet = outputs.verbosity == node::Verbosity::Quiet;
    match outcome {
        Outcome::Finished { verified, report } => {
            if let Some(report) = report {
                // Every node is done and no line is dropped any more: the
                // count is final (the slave's last lines came after the
                // master's report was made).
                let report = loadbal::report::Report {
                    log_lines_dropped: loadbal::term::dropped(),
                    ..(**report).clone()
                };
                print_summary(&report);
                if let Some(path) = &outputs.report {
                    write_report(&report, path, quiet);
                }
                if report.work.as_ref().is_some_and(|w| w.has_failures()) {
                    return Ok(4);
                }
            }
            Ok(if *verified { 0 } else { 1 })
        }
        Outcome::Failed {
            failure: why,
            report,
        } => {
            // The run so far, and where its jobs stood, for whoever asked.
            if let (Some(report), Some(path)) = (report, &outputs.report) {
                let report = loadbal::report::Report {
                    log_lines_dropped: loadbal::term::dropped(),
                    ..(**report).clone()
                };
                write_report(&report, path, quiet);
            }
            Err(Failure {
                code: outcome.exit_code(),
                error: anyhow::anyhow!("{why}"),
            })
        }
        Outcome::Stopped => Err(runtime(anyhow::anyhow!("stopped before the run finished"))),
    }
}

/// Writes the report to `path`. One that cannot be written is not lost: its
/// JSON goes to stdout, the reason to stderr, and the run's exit code
/// stands.
fn write_report(report: &loadbal::report::Report, path: &Path, quiet: bool) {
    if let loadbal::run::Written::Done(line) = loadbal::run::write_report(report, path)
        && !quiet
    {
        loadbal::say!("{line}");
    }
}

fn print_summary(r: &loadbal::report::Report) {
    if let Some(w) = &r.work {
        let what = match (w.digits_total, w.straight_total, w.output_bytes) {
            (Some(total), Some(straight), _) => {
                format!("digit sum {total} (a straight pass: {straight})")
            }
            (_, _, Some(bytes)) => format!("{bytes} bytes of output"),
            _ => w
                .output_error
                .clone()
                .unwrap_or_else(|| "no output".to_owned()),
        };
        loadbal::say!(
            "{}: {} jobs of {}, {what}; {} attempts, {} failed for good; master computed {}, \
             slave {}; moved {} to the slave and {} to the master",
            if r.verified {
                "VERIFIED"
            } else if w.has_failures() {
                "JOBS FAILED"
            } else {
                "NOT VERIFIED"
            },
            r.jobs_total,
            w.program,
            w.attempts,
            w.jobs_failed.len(),
            r.jobs_done.master,
            r.jobs_done.slave,
            r.jobs_moved.to_slave,
            r.jobs_moved.to_master
        );
    } else {
        print_vector_summary(r);
    }
    print_times(r);
}

fn print_vector_summary(r: &loadbal::report::Report) {
    loadbal::say!(
        "{}: {} jobs, every element {} {:.9}; master computed {}, slave {}; \
         moved {} to the slave and {} to the master",
        if r.verified {
            "VERIFIED"
        } else {
            "NOT VERIFIED"
        },
        r.jobs_total,
        if r.verified { "equals" } else { "should equal" },
        r.expected_value,
        r.jobs_done.master,
        r.jobs_done.slave,
        r.jobs_moved.to_slave,
        r.jobs_moved.to_master
    );
}

fn print_times(r: &loadbal::report::Report) {
    loadbal::say!(
        "time: {:.3} s total (bootstrap {:.3} s, processing {:.3} s, aggregation {:.3} s)",
        r.elapsed_s.total,
        r.elapsed_s.bootstrap,
        r.elapsed_s.processing,
        r.elapsed_s.aggregation
    );
    if let Some(at) = r.peer_lost_at_s {
        loadbal::say!(
            "the slave was lost at {at:.3} s; the master reclaimed {} of its jobs",
            r.jobs_reclaimed
        );
    }
    let rejected = &r.network.rejected_by_reason;
    if rejected.total() > 0 {
        loadbal::say!("rejected datagrams: {rejected}");
    }
}
