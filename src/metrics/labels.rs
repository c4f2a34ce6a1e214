//! The bounded label values of the metrics: HTTP methods, status classes, duration buckets,
//! restart reasons and reload outcomes. Plain data shared by the workers, the master's model and
//! the exposition; no behaviour.

/// OpenTelemetry's known methods; every other method counts as `_OTHER`.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "_OTHER",
];

pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// OpenTelemetry's buckets for http.server.request.duration (seconds), in nanoseconds.
pub const BUCKETS_NS: [u64; 14] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    75_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    750_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    7_500_000_000,
    10_000_000_000,
];

/// Why a worker was replaced (or went without replacement: scale down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// It exited, or was killed by a signal, without being asked to.
    Crash,
    Timeout,
    MaxRequests,
    /// A reload: HUP's new generation took over, or `--reload` saw the code change.
    Reload,
    /// TTOU, WINCH or `rgunicorn ctl workers remove`.
    ScaleDown,
    /// Its unshared memory passed max_worker_memory.
    Memory,
    /// `rgunicorn ctl worker kill`.
    Killed,
}

impl RestartReason {
    pub const ALL: [RestartReason; 7] = [
        RestartReason::Crash,
        RestartReason::Timeout,
        RestartReason::MaxRequests,
        RestartReason::Reload,
        RestartReason::ScaleDown,
        RestartReason::Memory,
        RestartReason::Killed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RestartReason::Crash => "crash",
            RestartReason::Timeout => "timeout",
            RestartReason::MaxRequests => "max_requests",
            RestartReason::Reload => "reload",
            RestartReason::ScaleDown => "scale_down",
            RestartReason::Memory => "memory",
            RestartReason::Killed => "killed",
        }
    }
}

/// How a reload (HUP or `rgunicorn ctl reload`) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new generation serves with all its workers.
    Success,
    /// The configuration could not be read, or the new generation could not boot.
    Failed,
    /// A newer reload replaced it before it booted.
    Superseded,
}

impl ReloadOutcome {
    pub const ALL: [ReloadOutcome; 3] = [
        ReloadOutcome::Success,
        ReloadOutcome::Failed,
        ReloadOutcome::Superseded,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ReloadOutcome::Success => "success",
            ReloadOutcome::Failed => "failed",
            ReloadOutcome::Superseded => "superseded",
        }
    }
}
