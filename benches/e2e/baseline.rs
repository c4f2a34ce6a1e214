//! The no-server baseline: the same apps called in a loop inside one Python process (one core),
//! to show how much of a request's cost is the app's own. It never starts a server.

use std::process::Command;
use std::time::Duration;

use crate::scenarios::Bench;

/// Calls per second of GET `path` on `module:application` in `dir` (relative to the checkout),
/// or why it could not be measured.
fn calls_per_sec(bench: &Bench, dir: &str, module: &str, path: &str, seconds: Duration) -> String {
    let out = Command::new(bench.paths.venv_bin("python"))
        .arg(bench.paths.root.join("benches/apps/inprocess.py"))
        .arg(bench.paths.root.join(dir))
        .arg(format!("{module}:application"))
        .arg(path)
        .arg(seconds.as_secs().to_string())
        .envs(bench.env.iter().map(|(k, v)| (k, v)))
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            match text.trim().parse::<f64>() {
                Ok(rate) => format!("{rate:.0} calls/s"),
                Err(_) => format!("unreadable output {text:?}"),
            }
        }
        Ok(o) => format!("failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => format!("failed: {e}"),
    }
}

/// One line per app, for under the table.
pub fn report(bench: &Bench, django: bool) -> String {
    let seconds = bench.timing.duration.min(Duration::from_secs(5));
    let mut text = format!(
        "no-server baseline (each app called in a loop in one Python process, {} s):\n  tiny app GET /: {}",
        seconds.as_secs(),
        calls_per_sec(bench, "benches/apps", "tiny", "/", seconds)
    );
    if django {
        for path in ["/api/status/", "/api/plants/"] {
            let rate = calls_per_sec(bench, "examples/greenweb", "greenweb.wsgi", path, seconds);
            text.push_str(&format!("\n  Django GET {path}: {rate}"));
        }
    }
    text
}
