//! The servers under test: how to start rgunicorn (the cargo binary or the wheel's console script)
//! and each peer (gunicorn, granian, bjoern, uwsgi) on loopback with a given app and process
//! layout, wait until it answers, and stop it. It never binds or sends off loopback, and stops only
//! the processes it started (through procs).

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::client;
use crate::procs;
use crate::statsd::StatsdSink;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The cargo binary (`--virtualenv` the bench venv).
    Rgunicorn,
    /// The wheel installed in the bench venv: its `rgunicorn` console script, whose master runs in
    /// the venv's Python.
    RgunicornWheel,
    /// rgunicorn with metrics, statsd and the JSON access log on (the cost of observing).
    RgunicornObserved,
    Gunicorn,
    Granian,
    Bjoern,
    Uwsgi,
}

/// Which app it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Tiny,
    Django,
}

/// Processes and threads; `gthread` picks gunicorn's/rgunicorn's threaded worker.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub workers: u32,
    pub threads: u32,
    pub gthread: bool,
}

impl Layout {
    pub const fn sync(workers: u32) -> Self {
        Layout {
            workers,
            threads: 1,
            gthread: false,
        }
    }
    pub const fn gthread(workers: u32, threads: u32) -> Self {
        Layout {
            workers,
            threads,
            gthread: true,
        }
    }
}

/// Where everything the bench uses lives.
pub struct Paths {
    pub root: PathBuf,
    pub rgunicorn: PathBuf,
    /// The virtualenv with the peers and Django (venv-bench), else the project's venv.
    pub venv: PathBuf,
    pub work: PathBuf,
}

impl Paths {
    pub fn venv_bin(&self, name: &str) -> PathBuf {
        self.venv.join("bin").join(name)
    }
}

/// A server to start: what, serving which app, laid out how.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub kind: Kind,
    pub app: App,
    pub layout: Layout,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rgunicorn => "rgunicorn",
            Kind::RgunicornWheel => "rgunicorn-wheel",
            Kind::RgunicornObserved => "rgunicorn-observed",
            Kind::Gunicorn => "gunicorn",
            Kind::Granian => "granian",
            Kind::Bjoern => "bjoern",
            Kind::Uwsgi => "uwsgi",
        }
    }

    /// rgunicorn in any form: it binds port 0 and logs the port it got.
    fn is_rgunicorn(self) -> bool {
        matches!(
            self,
            Kind::Rgunicorn | Kind::RgunicornWheel | Kind::RgunicornObserved
        )
    }

    /// The executable that must exist for this server to run (the bjoern module is checked by
    /// importing it).
    fn installed(self, paths: &Paths) -> bool {
        match self {
            Kind::Rgunicorn | Kind::RgunicornObserved => paths.rgunicorn.exists(),
            Kind::RgunicornWheel => paths.venv_bin("rgunicorn").exists(),
            Kind::Bjoern => Command::new(paths.venv_bin("python"))
                .args(["-c", "import bjoern"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            other => paths.venv_bin(other.name()).exists(),
        }
    }
}

impl Spec {
    /// How the server is invoked, for the table: "gunicorn -k gthread -w 2 --threads 4".
    pub fn label(&self) -> String {
        let Layout {
            workers,
            threads,
            gthread,
        } = self.layout;
        match self.kind {
            Kind::Rgunicorn | Kind::Gunicorn if gthread => {
                format!(
                    "{} -k gthread -w {workers} --threads {threads}",
                    self.kind.name()
                )
            }
            Kind::Rgunicorn | Kind::Gunicorn => format!("{} -w {workers}", self.kind.name()),
            Kind::RgunicornWheel => {
                let cargo = Spec {
                    kind: Kind::Rgunicorn,
                    ..*self
                };
                format!("{} (wheel)", cargo.label())
            }
            Kind::RgunicornObserved => format!(
                "rgunicorn -k gthread -w {workers} --threads {threads} + metrics, statsd, JSON log"
            ),
            Kind::Granian => format!("granian --workers {workers}"),
            Kind::Bjoern => "bjoern (1 process)".to_string(),
            Kind::Uwsgi => format!("uwsgi --processes {workers}"),
        }
    }

    fn module_and_dir(&self, paths: &Paths) -> (&'static str, PathBuf) {
        match self.app {
            App::Tiny => ("tiny", paths.root.join("benches/apps")),
            App::Django => ("greenweb.wsgi", paths.root.join("examples/greenweb")),
        }
    }

    /// The command line; `port` is 0 for rgunicorn (it logs the port it got).
    fn command(&self, paths: &Paths, port: u16) -> Command {
        if self.kind == Kind::RgunicornObserved {
            let plain = Spec {
                kind: Kind::Rgunicorn,
                ..*self
            };
            let mut cmd = plain.command(paths, port);
            let access = paths.work.join("observed-access.log");
            let _ = fs::remove_file(&access);
            cmd.args([
                "--metrics-bind",
                "127.0.0.1:0",
                "--access-log-format",
                "json",
            ])
            .arg("--access-logfile")
            .arg(access);
            return cmd;
        }
        let (module, dir) = self.module_and_dir(paths);
        let dir = dir.to_string_lossy().into_owned();
        let app = format!("{module}:application");
        let Layout {
            workers,
            threads,
            gthread,
        } = self.layout;
        let (workers, threads, port) = (workers.to_string(), threads.to_string(), port.to_string());
        let bind = format!("127.0.0.1:{port}");
        let (program, args): (PathBuf, Vec<&str>) = match self.kind {
            Kind::Rgunicorn | Kind::RgunicornObserved | Kind::RgunicornWheel | Kind::Gunicorn => {
                let mut args = vec![module, "--chdir", &dir, "-b", &bind, "-w", &workers];
                if gthread {
                    args.extend(["-k", "gthread", "--threads", &threads]);
                }
                match self.kind {
                    Kind::Gunicorn => (paths.venv_bin("gunicorn"), args),
                    // The venv's own Python runs it: --virtualenv has no use there.
                    Kind::RgunicornWheel => (paths.venv_bin("rgunicorn"), args),
                    _ => {
                        args.extend([
                            "--virtualenv",
                            paths.venv.to_str().expect("UTF-8 venv path"),
                        ]);
                        (paths.rgunicorn.clone(), args)
                    }
                }
            }
            Kind::Granian => {
                let mut args: Vec<&str> = "--interface wsgi --host 127.0.0.1".split(' ').collect();
                args.extend([
                    "--port",
                    &port,
                    "--workers",
                    &workers,
                    "--working-dir",
                    &dir,
                    &app,
                ]);
                (paths.venv_bin("granian"), args)
            }
            Kind::Bjoern => {
                let script = paths.root.join("benches/apps/run_bjoern.py");
                let script = script.to_str().expect("UTF-8 checkout path").to_string();
                let args = vec![script.as_str(), &app, "127.0.0.1", &port, &dir];
                return with_args(paths.venv_bin("python"), &args);
            }
            Kind::Uwsgi => {
                let mut args = vec![
                    "--http-socket",
                    &bind,
                    "--processes",
                    &workers,
                    "--chdir",
                    &dir,
                ];
                args.extend(["--module", &app]);
                args.extend("--master --die-on-term --need-app --disable-logging".split(' '));
                // Its http-socket closes the connection after each response; saying so in a
                // header keeps wrk from counting every close as a read error.
                args.extend(["--add-header", "Connection: close"]);
                (paths.venv_bin("uwsgi"), args)
            }
        };
        with_args(program, &args)
    }
}

fn with_args(program: PathBuf, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

/// A started server; stopped (with all its processes) when dropped.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    /// Where an observed rgunicorn sends statsd, read as a statsd server would.
    _statsd: Option<StatsdSink>,
}

impl Running {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// The pids of the worker processes (every descendant of the master).
    pub fn workers(&self) -> Vec<i32> {
        procs::descendants(self.pid())
            .iter()
            .map(|p| p.pid)
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        procs::stop_tree(&mut self.child, Duration::from_secs(10));
    }
}

/// Why a server was not measured.
pub enum StartError {
    NotInstalled,
    Failed(String),
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind port 0: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// The last lines of a log, to show why something failed.
pub fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The port rgunicorn logged in "Listening at: http://127.0.0.1:PORT (PID)".
fn logged_port(log: &Path) -> Option<u16> {
    let text = fs::read_to_string(log).ok()?;
    let rest = text.split("Listening at: http://127.0.0.1:").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Start `spec` with its output in `log`, and wait (at most 60 s) until GET `probe_path` answers.
pub fn start(
    spec: &Spec,
    paths: &Paths,
    env: &[(String, String)],
    log: PathBuf,
    probe_path: &str,
) -> Result<Running, StartError> {
    if !spec.kind.installed(paths) {
        return Err(StartError::NotInstalled);
    }
    let ours = spec.kind.is_rgunicorn();
    let port = if ours {
        0
    } else {
        free_port().map_err(StartError::Failed)?
    };
    let (child, statsd) = spawn(spec, paths, env, &log, port)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut running = Running {
        child,
        addr,
        log,
        _statsd: statsd,
    };
    wait_ready(&mut running, ours, probe_path).map_err(|why| {
        StartError::Failed(format!(
            "{why}; log {}:\n{}",
            running.log.display(),
            log_tail(&running.log)
        ))
    })?;
    Ok(running)
}

/// Spawns `spec`'s command with its output in `log`; an observed rgunicorn gets a statsd sink.
fn spawn(
    spec: &Spec,
    paths: &Paths,
    env: &[(String, String)],
    log: &Path,
    port: u16,
) -> Result<(Child, Option<StatsdSink>), StartError> {
    let out =
        File::create(log).map_err(|e| StartError::Failed(format!("{}: {e}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| StartError::Failed(e.to_string()))?;
    let mut cmd = spec.command(paths, port);
    let statsd = match spec.kind {
        Kind::RgunicornObserved => {
            let sink = StatsdSink::start().map_err(StartError::Failed)?;
            cmd.arg("--statsd-host").arg(sink.address());
            Some(sink)
        }
        _ => None,
    };
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .env("VIRTUAL_ENV", &paths.venv);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| StartError::Failed(format!("cannot start {}: {e}", spec.label())))?;
    Ok((child, statsd))
}

fn wait_ready(running: &mut Running, port_from_log: bool, probe_path: &str) -> Result<(), String> {
    let mut exited = None;
    let ready = procs::wait_until(Duration::from_secs(60), || {
        if let Ok(Some(status)) = running.child.try_wait() {
            exited = Some(status);
            return true;
        }
        if port_from_log && running.addr.port() == 0 {
            match logged_port(&running.log) {
                Some(port) => running.addr.set_port(port),
                None => return false,
            }
        }
        client::probe(running.addr, probe_path).is_ok_and(|status| status == 200)
    });
    match (ready, exited) {
        (_, Some(status)) => Err(format!("exited during start-up ({status})")),
        (false, None) => Err(format!("no 200 for GET {probe_path} within 60 s")),
        (true, None) => Ok(()),
    }
}
