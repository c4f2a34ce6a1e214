//! Counters and gauges in shared memory: the workers count their requests and connections in
//! their own lane, the master its restarts, timeouts, boot failures and reloads; the master reads
//! the sums for /metrics and `rgunicorn ctl` without asking any worker. Also the workers' ids
//! (`RGUNICORN_WORKER_ID`). Never does I/O besides the mapping; never decides anything.
pub mod exposition;
pub mod labels;
mod shared;

use std::sync::OnceLock;

pub use labels::{ReloadOutcome, RestartReason};
pub use shared::{Lane, Shared, Totals};

static SHARED: OnceLock<Shared> = OnceLock::new();

/// Maps the process-wide record; the master calls it once, before its first fork, so that every
/// child shares it. Later calls return the same record.
pub fn install() -> crate::Result<&'static Shared> {
    if let Some(shared) = SHARED.get() {
        return Ok(shared);
    }
    let shared = Shared::new()?;
    Ok(SHARED.get_or_init(|| shared))
}

/// The record `install` mapped in this process or an ancestor; None before it.
pub fn shared() -> Option<&'static Shared> {
    SHARED.get()
}
