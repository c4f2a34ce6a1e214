//! The scenarios of the performance issue (which servers, which app, which load, which target)
//! and how one server is measured in each of them. It never judges a result against its target:
//! report.rs does.

use std::path::PathBuf;
use std::thread::sleep;
use std::time::Duration;

use crate::mixed;
use crate::procs;
use crate::servers::{self, App, Kind, Layout, Paths, Running, Spec, StartError};
use crate::transfer::{self, Files};
use crate::wrk::{self, Load};

/// How a scenario loads the server and what number it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// wrk on keep-alive connections; compares req/s.
    KeepAlive,
    /// wrk with `Connection: close` (a new connection per request); compares req/s.
    Close,
    /// wrk on keep-alive connections, the server pinned to one CPU and wrk to the others; compares
    /// the CPU time per request of the server's processes (what observing costs: with wrk on the
    /// same cores, req/s also measures wrk and where the scheduler puts it).
    Cost,
    /// Total Pss of the master and all its descendants after warm-up; compares MiB.
    Pss,
    /// 100 MiB uploads and downloads; compares MiB/s (and checks worker RSS growth).
    Transfer,
    /// 10 % slow requests; compares the p99 of the fast ones.
    Mixed,
}

/// A target on the ratio rgunicorn / peer.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

/// One peer of a scenario; `goal` is None for peers shown for orientation only.
pub struct Peer {
    pub kind: Kind,
    pub layout: Layout,
    pub goal: Option<Goal>,
}

pub struct Scenario {
    pub id: &'static str,
    pub title: &'static str,
    pub app: App,
    pub path: &'static str,
    pub method: Method,
    pub ours: Layout,
    /// How rgunicorn is started for the first row (the cargo binary, unless a scenario says).
    pub ours_kind: Kind,
    /// Other ways of starting rgunicorn (the wheel), measured with `ours` in the same rounds; each
    /// is compared with the first peer, against that peer's goal.
    pub variants: Vec<Kind>,
    pub peers: Vec<Peer>,
}

impl Scenario {
    fn also(mut self, variants: Vec<Kind>) -> Scenario {
        self.variants = variants;
        self
    }

    fn started_as(mut self, kind: Kind) -> Scenario {
        self.ours_kind = kind;
        self
    }
}

/// Bound on worker RSS growth across the transfers, in MiB (an absolute target of rgunicorn).
pub const RSS_GROWTH_LIMIT_MIB: f64 = 16.0;
/// Connections of the mixed load: as many as the 2 x 4 threads, so that an even spread of the
/// connections over the threads keeps fast requests from ever waiting behind a slow one.
const MIXED_CONNECTIONS: usize = 8;
const WRK_CONNECTIONS: u32 = 64;

const fn peer(kind: Kind, layout: Layout, goal: Option<Goal>) -> Peer {
    Peer { kind, layout, goal }
}

/// Every scenario, in the order.
pub fn all() -> Vec<Scenario> {
    use Goal::{AtLeast, AtMost};
    use Kind::{Bjoern, Granian, Gunicorn, Rgunicorn, RgunicornObserved, RgunicornWheel, Uwsgi};
    // The "small Django JSON view": /api/status/ (no query). /api/plants/ runs an ORM query
    // on SQLite and is app-bound (about 1.5k calls/s in-process), which hides any server.
    let (tiny, django, plants) = (App::Tiny, App::Django, "/api/status/");
    let s = |id, title, app, path, method, ours, peers| Scenario {
        id,
        title,
        app,
        path,
        method,
        ours,
        ours_kind: Kind::Rgunicorn,
        variants: Vec::new(),
        peers,
    };
    vec![
        s(
            "tiny-keepalive-1",
            "tiny app, keep-alive, 1 process 1 thread",
            tiny,
            "/",
            Method::KeepAlive,
            Layout::gthread(1, 1),
            vec![
                peer(Bjoern, Layout::sync(1), Some(AtLeast(1.1))),
                peer(Granian, Layout::sync(1), None),
            ],
        ),
        s(
            "tiny-observed-1",
            "tiny app, keep-alive, 1 x 1: CPU per request with metrics + statsd + JSON access log on vs off",
            tiny,
            "/",
            Method::Cost,
            Layout::gthread(1, 1),
            // The ratio is on / off: what observing costs, at most 3 %.
            vec![peer(Rgunicorn, Layout::gthread(1, 1), Some(AtMost(1.03)))],
        )
        .started_as(RgunicornObserved),
        s(
            "tiny-keepalive-2",
            "tiny app, keep-alive, 2 processes",
            tiny,
            "/",
            Method::KeepAlive,
            Layout::gthread(2, 1),
            vec![peer(Granian, Layout::sync(2), Some(AtLeast(1.5)))],
        ),
        s(
            "tiny-close-2",
            "tiny app, Connection: close, 2 workers",
            tiny,
            "/",
            Method::Close,
            Layout::sync(2),
            vec![
                peer(Gunicorn, Layout::sync(2), Some(AtLeast(4.0))),
                peer(Uwsgi, Layout::sync(2), None),
            ],
        ),
        s(
            "django-keepalive-2",
            "Django JSON, keep-alive, 2 processes",
            django,
            plants,
            Method::KeepAlive,
            Layout::gthread(2, 1),
            vec![peer(Granian, Layout::sync(2), Some(AtLeast(1.05)))],
        ),
        s(
            "django-close-2",
            "Django JSON, Connection: close, 2 workers",
            django,
            plants,
            Method::Close,
            Layout::sync(2),
            vec![
                peer(Gunicorn, Layout::sync(2), Some(AtLeast(1.4))),
                peer(Uwsgi, Layout::sync(2), None),
            ],
        ),
        s(
            "django-pss-4",
            "Django, total PSS after warm-up, 4 workers; rgunicorn from the cargo binary and \
             from the wheel",
            django,
            plants,
            Method::Pss,
            Layout::sync(4),
            vec![
                peer(Gunicorn, Layout::sync(4), Some(AtMost(0.5))),
                peer(Granian, Layout::sync(4), None),
                peer(Uwsgi, Layout::sync(4), None),
            ],
        )
        .also(vec![RgunicornWheel]),
        s(
            "transfer-2",
            "Django, 100 MiB upload + download, 2 workers",
            django,
            plants,
            Method::Transfer,
            Layout::sync(2),
            vec![peer(Gunicorn, Layout::sync(2), Some(AtLeast(2.0)))],
        ),
        s(
            "mixed-2x4",
            "Django, 10% of requests take 100 ms, gthread 2 x 4",
            django,
            plants,
            Method::Mixed,
            Layout::gthread(2, 4),
            vec![peer(Gunicorn, Layout::gthread(2, 4), Some(AtMost(0.5)))],
        ),
    ]
}

/// How long things run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub duration: Duration,
    pub warmup: Duration,
    pub transfer_reps: u32,
    /// Times each server is measured, taking turns with the others.
    pub rounds: u32,
}

/// Everything a measurement needs besides the scenario.
pub struct Bench {
    pub paths: Paths,
    pub timing: Timing,
    /// Environment for the servers (the Django database and download directory).
    pub env: Vec<(String, String)>,
    pub files: Files,
    pub logs: PathBuf,
}

/// What one server did in one scenario. `value` is the number the target compares.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub req_per_sec: Option<f64>,
    /// CPU time of the server's processes (all threads) per request of the measured run.
    pub cpu_us_per_req: Option<f64>,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    pub errors: u64,
    pub value: f64,
    /// Human-readable form of `value` (and any detail), e.g. "123.4 MiB (5 processes)".
    pub shown: String,
    pub rss_growth_mib: Option<f64>,
}

/// Start `spec`, measure it the scenario's way, stop it.
pub fn measure(scenario: &Scenario, spec: &Spec, bench: &Bench) -> Result<Outcome, StartError> {
    let log = bench
        .logs
        .join(format!("{}-{}.log", scenario.id, spec.kind.name()));
    let server = servers::start(spec, &bench.paths, &bench.env, log, scenario.path)?;
    let outcome = match scenario.method {
        Method::KeepAlive | Method::Close | Method::Cost => by_wrk(scenario, &server, bench),
        Method::Pss => by_pss(scenario, spec, &server, bench),
        Method::Transfer => by_transfer(&server, bench),
        Method::Mixed => by_mixed(scenario, &server, bench),
    };
    drop(server);
    outcome.map_err(StartError::Failed)
}

fn wrk_load(scenario: &Scenario, server: &Running, duration: Duration) -> Load {
    Load {
        url: server.url(scenario.path),
        connections: WRK_CONNECTIONS,
        duration,
        close: !matches!(scenario.method, Method::KeepAlive | Method::Cost),
    }
}

fn by_wrk(scenario: &Scenario, server: &Running, bench: &Bench) -> Result<Outcome, String> {
    let _pinned = (scenario.method == Method::Cost).then(|| procs::Pinned::split(server.pid()));
    wrk::run(&wrk_load(scenario, server, bench.timing.warmup))?;
    let cpu_before = procs::tree_cpu_ns(server.pid());
    let r = wrk::run(&wrk_load(scenario, server, bench.timing.duration))?;
    let cpu_ns = procs::tree_cpu_ns(server.pid()).saturating_sub(cpu_before);
    let cpu_us = (r.requests > 0).then(|| cpu_ns as f64 / 1e3 / r.requests as f64);
    let (value, shown) = match (scenario.method, cpu_us) {
        (Method::Cost, Some(us)) => (us, format!("{us:.2} us CPU/req")),
        (Method::Cost, None) => return Err("wrk completed no request".into()),
        _ => (r.req_per_sec, format!("{:.0} req/s", r.req_per_sec)),
    };
    Ok(Outcome {
        req_per_sec: Some(r.req_per_sec),
        cpu_us_per_req: cpu_us,
        p50: Some(r.p50),
        p99: Some(r.p99),
        errors: r.errors(),
        value,
        shown,
        rss_growth_mib: None,
    })
}

fn by_pss(
    scenario: &Scenario,
    spec: &Spec,
    server: &Running,
    bench: &Bench,
) -> Result<Outcome, String> {
    let r = wrk::run(&wrk_load(scenario, server, bench.timing.warmup))?;
    let workers = spec.layout.workers as usize;
    if !procs::wait_until(Duration::from_secs(30), || {
        server.workers().len() >= workers
    }) {
        return Err(format!(
            "fewer than {workers} worker processes after warm-up"
        ));
    }
    sleep(Duration::from_secs(1));
    let (mib, count) = procs::tree_pss_mib(server.pid());
    Ok(Outcome {
        errors: r.errors(),
        value: mib,
        shown: format!("{mib:.1} MiB PSS, {count} procs"),
        ..Outcome::default()
    })
}

fn by_transfer(server: &Running, bench: &Bench) -> Result<Outcome, String> {
    let r = transfer::run(server, &bench.files, bench.timing.transfer_reps)?;
    Ok(Outcome {
        errors: r.failures,
        value: r.mib_per_sec(),
        shown: format!(
            "{:.0} MiB/s (up {:.0}, down {:.0})",
            r.mib_per_sec(),
            r.up_mib_s,
            r.down_mib_s
        ),
        rss_growth_mib: Some(r.max_rss_growth_mib),
        ..Outcome::default()
    })
}

fn by_mixed(scenario: &Scenario, server: &Running, bench: &Bench) -> Result<Outcome, String> {
    let paths = mixed::Paths {
        fast: scenario.path,
        slow: "/api/slow/?ms=100",
    };
    mixed::run(server.addr, MIXED_CONNECTIONS, bench.timing.warmup, &paths);
    let mut r = mixed::run(
        server.addr,
        MIXED_CONNECTIONS,
        bench.timing.duration,
        &paths,
    );
    if r.fast.is_empty() {
        return Err(format!("no fast request succeeded ({} errors)", r.errors));
    }
    let p99 = mixed::quantile(&mut r.fast, 0.99);
    let slow_p99 = mixed::quantile(&mut r.slow, 0.99);
    Ok(Outcome {
        req_per_sec: Some(r.req_per_sec()),
        p50: Some(mixed::quantile(&mut r.fast, 0.50)),
        p99: Some(p99),
        errors: r.errors,
        cpu_us_per_req: None,
        value: p99.as_secs_f64() * 1e3,
        shown: format!(
            "fast p99 {:.1} ms (slow p99 {:.0} ms)",
            p99.as_secs_f64() * 1e3,
            slow_p99.as_secs_f64() * 1e3
        ),
        rss_growth_mib: None,
    })
}
