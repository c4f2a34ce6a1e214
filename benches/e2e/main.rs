//! End-to-end benchmark (`cargo bench --bench e2e`): runs rgunicorn and its peers one at a time on
//! loopback under real load, and prints one table of the scenarios with ratios and targets.
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
mod transfer;
mod wrk;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};
use std::time::Duration;

use report::ScenarioResult;
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

/// The first three fields of /proc/loadavg: other work on the machine skews every number.
fn loadavg() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn progress(id: &str, label: &str, m: &report::Measured) {
    let what = match m {
        Ok(o) => o.shown.clone(),
        Err(servers::StartError::NotInstalled) => "not installed, skipped".into(),
        Err(servers::StartError::Failed(_)) => "FAILED".into(),
    };
    eprintln!("e2e: {id:<20} {label:<38} {what}");
}

/// Measures rgunicorn and then each peer, as many rounds as the timing asks: the servers take
/// turns, so a slow spell of the machine falls on all of them. Each keeps its median round, and
/// each ratio is the median of the rounds' ratios.
fn run_scenario<'a>(scenario: &'a Scenario, bench: &Bench) -> ScenarioResult<'a> {
    let ours = Spec {
        kind: Kind::Rgunicorn,
        app: scenario.app,
        layout: scenario.ours,
    };
    let peers = scenario.peers.iter().map(|p| Spec {
        kind: p.kind,
        app: scenario.app,
        layout: p.layout,
    });
    let specs: Vec<Spec> = std::iter::once(ours).chain(peers).collect();
    let mut rounds: Vec<Vec<report::Measured>> = specs.iter().map(|_| Vec::new()).collect();
    for _ in 0..bench.timing.rounds {
        for (spec, measured) in specs.iter().zip(&mut rounds) {
            let m = scenarios::measure(scenario, spec, bench);
            progress(scenario.id, &spec.label(), &m);
            measured.push(m);
        }
    }
    let ratios: Vec<Option<f64>> = rounds[1..]
        .iter()
        .map(|peer| report::median_ratio(&rounds[0], peer))
        .collect();
    let mut results = rounds.into_iter().map(report::median_round);
    let ours = results.next().expect("rgunicorn was measured");
    let peers = scenario
        .peers
        .iter()
        .zip(&specs[1..])
        .zip(results.zip(ratios))
        .map(|((peer, spec), (measured, ratio))| (spec.label(), peer.goal, measured, ratio))
        .collect();
    ScenarioResult {
        scenario,
        ours_label: specs[0].label(),
        ours,
        peers,
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
    let selected: Vec<Scenario> = scenarios::all()
        .into_iter()
        .filter(|s| {
            opts.filters.is_empty() || opts.filters.iter().any(|f| s.id.contains(f.as_str()))
        })
        .collect();
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
    let load_before = loadavg();
    let results: Vec<ScenarioResult> = selected.iter().map(|s| run_scenario(s, &bench)).collect();
    let django = selected.iter().any(|s| s.app == App::Django);
    let baseline = baseline::report(&bench, django);
    let (table, tally) = report::table(&results);
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
