//! End-to-end benchmark (`cargo bench --bench e2e`): runs rgunicorn (the cargo binary, and where a
//! scenario asks, the wheel it builds and installs into the bench venv) and its peers one at a time
//! on loopback under real load, and prints one table of the scenarios with ratios and
//! targets. It never installs anything into the project's ./venv.
//!
//! Arguments (after `cargo bench --bench e2e --`): `--quick` (also RGUNICORN_BENCH=quick) for a few
//! seconds a scenario, `--full` (the default) for seven rounds of 3 s; any other word keeps only
//! the scenarios whose id contains it. Exits 0 whether or not the targets are met: it is a report.

mod baseline;
mod client;
mod mixed;
mod procs;
mod report;
mod scenarios;
mod servers;
mod statsd;
mod transfer;
mod wrk;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command, Stdio};
use std::time::Duration;

use report::{Compared, Measured, ScenarioResult};
use scenarios::{Bench, Scenario, Timing};
use servers::{App, Kind, Paths, Spec};
use transfer::Files;

/// What the command line asked for.
struct Options {
    quick: bool,
    /// Run by `cargo bench` (which passes --bench) or with an explicit mode.
    benching: bool,
    filters: Vec<String>,
}

fn options() -> Options {
    let mut o = Options {
        quick: env::var("RGUNICORN_BENCH").is_ok_and(|v| v == "quick"),
        benching: false,
        filters: Vec::new(),
    };
    for arg in env::args().skip(1) {
        match arg.as_str() {
            "--quick" => (o.quick, o.benching) = (true, true),
            "--full" => (o.quick, o.benching) = (false, true),
            "--bench" => o.benching = true,
            flag if flag.starts_with('-') => eprintln!("e2e: ignoring unknown option {flag}"),
            word => o.filters.push(word.to_string()),
        }
    }
    o
}

fn timing(quick: bool) -> Timing {
    if quick {
        Timing {
            duration: Duration::from_secs(3),
            warmup: Duration::from_secs(1),
            transfer_reps: 2,
            rounds: 1,
        }
    } else {
        Timing {
            duration: Duration::from_secs(3),
            warmup: Duration::from_secs(1),
            transfer_reps: 2,
            rounds: 7,
        }
    }
}

fn paths() -> Paths {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = match env::var_os("RGUNICORN_BENCH_VENV") {
        Some(v) => PathBuf::from(v),
        None if root.join("venv-bench/bin/python").exists() => root.join("venv-bench"),
        None => root.join("venv"),
    };
    Paths {
        rgunicorn: PathBuf::from(env!("CARGO_BIN_EXE_rgunicorn")),
        venv,
        work: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e"),
        root,
    }
}

fn die(message: &str) -> ! {
    eprintln!("e2e: {message}");
    exit(1)
}

/// Create a fresh greenweb database (migrated and seeded) for this run.
fn migrate(paths: &Paths, db: &Path) {
    let _ = fs::remove_file(db);
    let status = Command::new(paths.venv_bin("python"))
        .arg(paths.root.join("examples/greenweb/manage.py"))
        .args(["migrate", "--noinput", "-v", "0"])
        .env("GREENWEB_DB", db)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        die(&format!(
            "migrating the greenweb database with {} failed",
            paths.venv.display()
        ));
    }
}

fn prepare(paths: Paths, timing: Timing, django: bool) -> Bench {
    let logs = paths.work.join("logs");
    fs::create_dir_all(&logs).unwrap_or_else(|e| die(&format!("{}: {e}", logs.display())));
    let db = paths.work.join("greenweb.sqlite3");
    let files = Files {
        download_dir: paths.work.join("downloads"),
    };
    if django {
        migrate(&paths, &db);
        files
            .prepare()
            .unwrap_or_else(|e| die(&format!("writing the transfer files: {e}")));
    }
    let env = vec![
        ("GREENWEB_DB".to_string(), db.to_string_lossy().into_owned()),
        (
            "GREENWEB_DOWNLOAD_DIR".to_string(),
            files.download_dir.to_string_lossy().into_owned(),
        ),
        ("GREENWEB_LOG_LEVEL".to_string(), "WARNING".to_string()),
    ];
    Bench {
        paths,
        timing,
        env,
        files,
        logs,
    }
}

/// Builds the wheel from this checkout and installs it into the bench venv when a selected scenario
/// starts it (`scripts/bench-setup --wheel`, which rebuilds and reinstalls only what changed), so
/// that the wheel's rows measure the same code as the cargo binary's. Exits with the reason when
/// it cannot.
fn install_wheel(selected: &[Scenario], bench: &Bench) {
    if !selected
        .iter()
        .any(|s| s.variants.contains(&Kind::RgunicornWheel))
    {
        return;
    }
    let paths = &bench.paths;
    if paths.venv == paths.root.join("venv") {
        die(
            "the wheel's rows need the bench venv (venv-bench/, or RGUNICORN_BENCH_VENV), \
             not the project's ./venv, to install the wheel into: run scripts/bench-setup, \
             or leave out django-pss-4 (name the scenarios to run)",
        );
    }
    let log = bench.logs.join("wheel-setup.log");
    eprintln!(
        "e2e: building the wheel and installing it into {} (scripts/bench-setup --wheel, log {})",
        paths.venv.display(),
        log.display()
    );
    if let Err(why) = bench_setup_wheel(paths, &log) {
        die(&format!(
            "the rgunicorn wheel could not be built or installed into {}: {why}; \
             the end of {}:\n{}",
            paths.venv.display(),
            log.display(),
            servers::log_tail(&log)
        ));
    }
}

/// Runs `scripts/bench-setup --wheel` on the bench venv, with its output in `log`.
fn bench_setup_wheel(paths: &Paths, log: &Path) -> Result<(), String> {
    let out = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let status = Command::new(paths.root.join("scripts/bench-setup"))
        .arg("--wheel")
        .env("RGUNICORN_BENCH_VENV", &paths.venv)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot run scripts/bench-setup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("scripts/bench-setup --wheel failed ({status})"))
    }
}

/// The first three fields of /proc/loadavg: other work on the machine skews every number.
fn loadavg() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn progress(id: &str, label: &str, m: &Measured) {
    let what = match m {
        Ok(o) => o.shown.clone(),
        Err(servers::StartError::NotInstalled) => "not installed, skipped".into(),
        Err(servers::StartError::Failed(_)) => "FAILED".into(),
    };
    eprintln!("e2e: {id:<20} {label:<38} {what}");
}

/// Each of `specs` measured as many rounds as the timing asks: the servers take turns, so a slow
/// spell of the machine falls on all of them.
fn measure_rounds(scenario: &Scenario, specs: &[Spec], bench: &Bench) -> Vec<Vec<Measured>> {
    let mut rounds: Vec<Vec<Measured>> = specs.iter().map(|_| Vec::new()).collect();
    for _ in 0..bench.timing.rounds {
        for (spec, measured) in specs.iter().zip(&mut rounds) {
            let m = scenarios::measure(scenario, spec, bench);
            progress(scenario.id, &spec.label(), &m);
            measured.push(m);
        }
    }
    rounds
}

/// Each variant of rgunicorn (the wheel) with the median of the rounds' ratios of it to the first
/// peer (`target`), judged by that peer's goal: the same target, met by another way of starting
/// rgunicorn.
fn compare_variants(
    scenario: &Scenario,
    specs: &[Spec],
    rounds: Vec<Vec<Measured>>,
    target: Option<&[Measured]>,
) -> Vec<Compared> {
    let goal = scenario.peers.first().and_then(|p| p.goal);
    let compared = specs.iter().zip(rounds).map(|(spec, r)| {
        let ratio = target.and_then(|t| report::median_ratio(&r, t));
        (spec.label(), goal, report::median_round(r), ratio)
    });
    compared.collect()
}

/// Each peer with the median of the rounds' ratios of rgunicorn (`ours`) to it.
fn compare_peers(
    scenario: &Scenario,
    specs: &[Spec],
    ours: &[Measured],
    rounds: Vec<Vec<Measured>>,
) -> Vec<Compared> {
    let compared = specs.iter().zip(&scenario.peers).zip(rounds);
    let compared = compared.map(|((spec, peer), r)| {
        let ratio = report::median_ratio(ours, &r);
        (spec.label(), peer.goal, report::median_round(r), ratio)
    });
    compared.collect()
}

/// Measures rgunicorn, its variants (the wheel) and then each peer; each keeps its median round.
fn run_scenario<'a>(scenario: &'a Scenario, bench: &Bench) -> ScenarioResult<'a> {
    let spec = |kind, layout| Spec {
        kind,
        app: scenario.app,
        layout,
    };
    let variants = scenario.variants.iter().map(|&k| spec(k, scenario.ours));
    let peers = scenario.peers.iter().map(|p| spec(p.kind, p.layout));
    let specs: Vec<Spec> = std::iter::once(spec(scenario.ours_kind, scenario.ours))
        .chain(variants)
        .chain(peers)
        .collect();
    let first_peer = 1 + scenario.variants.len();
    let mut rounds = measure_rounds(scenario, &specs, bench).into_iter();
    let ours = rounds.next().expect("rgunicorn was measured");
    let variant_rounds: Vec<Vec<Measured>> = rounds.by_ref().take(first_peer - 1).collect();
    let peer_rounds: Vec<Vec<Measured>> = rounds.collect();
    let (variant_specs, peer_specs) = specs[1..].split_at(first_peer - 1);
    ScenarioResult {
        scenario,
        ours_label: specs[0].label(),
        variants: compare_variants(
            scenario,
            variant_specs,
            variant_rounds,
            peer_rounds.first().map(Vec::as_slice),
        ),
        peers: compare_peers(scenario, peer_specs, &ours, peer_rounds),
        ours: report::median_round(ours),
    }
}

fn main() {
    let opts = options();
    if !opts.benching {
        println!("e2e: an end-to-end benchmark; run it with `cargo bench --bench e2e`");
        return;
    }
    if !wrk::available() {
        die("wrk is not installed: run scripts/bench-setup");
    }
    let selected = select(&opts.filters);
    let timing = timing(opts.quick);
    let bench = prepare(
        paths(),
        timing,
        selected.iter().any(|s| s.app == App::Django),
    );
    eprintln!(
        "e2e: {} mode ({} s a run after {} s warm-up), {} scenarios, Python env {}, logs in {}",
        if opts.quick { "quick" } else { "full" },
        timing.duration.as_secs(),
        timing.warmup.as_secs(),
        selected.len(),
        bench.paths.venv.display(),
        bench.logs.display()
    );
    install_wheel(&selected, &bench);
    let load_before = loadavg();
    let results: Vec<ScenarioResult> = selected.iter().map(|s| run_scenario(s, &bench)).collect();
    let django = selected.iter().any(|s| s.app == App::Django);
    print_report(&results, &bench, django, &load_before);
}

/// The scenarios whose id contains one of `filters` (all of them without filters).
fn select(filters: &[String]) -> Vec<Scenario> {
    let wanted = |s: &Scenario| filters.is_empty() || filters.iter().any(|f| s.id.contains(f));
    scenarios::all().into_iter().filter(wanted).collect()
}

/// The table, the no-server baseline, the machine's load and the tally of targets met.
fn print_report(results: &[ScenarioResult], bench: &Bench, django: bool, load_before: &str) {
    let baseline = baseline::report(bench, django);
    let (table, tally) = report::table(results);
    println!("\n{table}\n\n{baseline}\n");
    println!(
        "machine: {} CPUs; load average (1/5/15 min) {load_before} at start, {} at end",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    println!("TARGETS MET: {}/{}", tally.met, tally.total);
    if tally.unmeasured > 0 {
        println!(
            "({} of the targets not measured: peer not installed or a run failed)",
            tally.unmeasured
        );
    }
}
