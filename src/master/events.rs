//! The vocabulary between the master's loop and its model: the events the loop observes and the
//! actions the model asks for. Plain data; no decisions and no system calls here.
use nix::sys::signal::Signal;

use super::workers::Timeout;
pub use crate::metrics::{ReloadOutcome, RestartReason};
use crate::process::ExitStatus;

/// What the model needs to know of one configuration generation (a HUP makes a new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSpec {
    pub id: u64,
    pub workers: usize,
    pub graceful_ms: u64,
    /// Heartbeat slots of the generation's table: the most workers it can have at once.
    pub slots: usize,
    /// Workers are forked by a zygote (not with preload_app or reload).
    pub zygote: bool,
    /// How long a zygote may take to import the app (gunicorn's `timeout`; 0: no limit).
    pub boot_timeout_ms: u64,
}

/// Something that happened, as the loop saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Time passed (also sent after every batch, so deadlines are checked).
    Tick,
    Signal(Signal),
    /// A HUP's configuration was read: the new generation, or why it could not be.
    Reloaded(Result<GenSpec, String>),
    ZygoteStarted {
        generation: u64,
        pid: i32,
    },
    ZygoteStartFailed {
        generation: u64,
        error: String,
    },
    /// The zygote imported the app and takes fork requests.
    ZygoteReady {
        generation: u64,
    },
    Forked {
        generation: u64,
        slot: usize,
        pid: i32,
    },
    /// No worker came of a fork request; `zygote_lost` when the zygote did not answer in time or
    /// its link broke, so it cannot be trusted with another request.
    ForkFailed {
        generation: u64,
        slot: usize,
        zygote_lost: bool,
        error: String,
    },
    /// A child was reaped.
    Exited {
        pid: i32,
        status: ExitStatus,
    },
    /// The worker's heartbeat says it finished booting.
    Booted {
        pid: i32,
    },
    /// The worker's heartbeat says it stopped taking work on its own (max_requests, code reload).
    SelfRetiring {
        pid: i32,
        reason: RestartReason,
    },
    /// The worker is to finish its requests and be replaced: its memory passed max_worker_memory,
    /// or `rgunicorn ctl worker kill`.
    Retire {
        pid: i32,
        reason: RestartReason,
    },
    /// A request (or the worker itself) ran past `timeout`; the record names it.
    TimedOut(Timeout),
    ReexecStarted {
        pid: i32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// What systemd is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Ready(String),
    Status(String),
    Reloading,
    Stopping,
}

/// Something the model counts, for /metrics, statsd and `rgunicorn ctl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// A worker that served exited while the server runs.
    Restart(RestartReason),
    Timeout,
    /// A worker or zygote exited before it could serve.
    BootFailure,
    /// A reload ended; `generation` is the one it made (None: the configuration was unreadable).
    Reload {
        generation: Option<u64>,
        outcome: ReloadOutcome,
    },
}

/// Something the model asks the loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Log(Level, String),
    /// The "WORKER TIMEOUT" record of a worker just sent SIGABRT.
    ReportTimeout(Timeout),
    Count(Tally),
    /// Re-read the configuration (HUP); answered by `Event::Reloaded`.
    ReadConfig,
    /// Answered by `ZygoteStarted` or `ZygoteStartFailed`, later `ZygoteReady`.
    StartZygote {
        generation: u64,
    },
    /// SIGKILL a zygote; its exit is then expected.
    KillZygote {
        pid: i32,
    },
    /// Answered by `Forked` or `ForkFailed`.
    Fork {
        generation: u64,
        slot: usize,
    },
    Signal {
        pid: i32,
        signal: Signal,
    },
    Kill {
        pid: i32,
    },
    /// The generation has no process left: free its heartbeat table.
    DropGeneration {
        generation: u64,
    },
    Notify(Notice),
    ReopenLogs,
    /// USR2: start a new master with the listeners; answered by `ReexecStarted` if it started.
    Reexec,
    /// The new master exited: take the pid file back.
    ReexecEnded {
        status: ExitStatus,
    },
    Exit {
        code: i32,
    },
}
