//! Driving wrk (the load generator) and reading its `--latency` report: requests/s, p50, p99,
//! socket errors and non-2xx/3xx responses. It never judges the result against a target: report.rs
//! does.

use std::process::{Command, Stdio};
use std::time::Duration;

/// The load of one wrk run.
#[derive(Debug, Clone)]
pub struct Load {
    pub url: String,
    pub connections: u32,
    pub duration: Duration,
    /// Send `Connection: close` so that every request opens a new connection.
    pub close: bool,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Default)]
pub struct WrkResult {
    pub req_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub socket_errors: u64,
    pub non_2xx: u64,
    pub requests: u64,
}

impl WrkResult {
    pub fn errors(&self) -> u64 {
        self.socket_errors + self.non_2xx
    }
}

/// Whether wrk is on PATH.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Run wrk with 2 threads; wrk stops by itself after the duration.
pub fn run(load: &Load) -> Result<WrkResult, String> {
    let mut cmd = Command::new("wrk");
    cmd.arg("-t2")
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .arg("--latency");
    if load.close {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd
        .arg(&load.url)
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("wrk failed ({}): {text}{err}", out.status));
    }
    parse(&text).ok_or_else(|| format!("cannot read wrk's report:\n{text}"))
}

/// Read "1.23ms", "456.78us", "2.00s" or "1.5m" as a duration.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let value: f64 = text[..split].parse().ok()?;
    let seconds = match &text[split..] {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// The number after "name N" in a comma-separated list such as wrk's socket-error line.
fn count_after(text: &str, name: &str) -> u64 {
    text.split(',')
        .filter_map(|part| part.trim().strip_prefix(name))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

/// Parse wrk's report (with `--latency`).
pub fn parse(text: &str) -> Option<WrkResult> {
    let mut r = WrkResult::default();
    let mut found_rate = false;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => r.p50 = parse_duration(v)?,
            ["99%", v] => r.p99 = parse_duration(v)?,
            ["Requests/sec:", v] => {
                r.req_per_sec = v.parse().ok()?;
                found_rate = true;
            }
            [n, "requests", "in", ..] => r.requests = n.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => r.non_2xx = n.parse().ok()?,
            ["Socket", "errors:", ..] => {
                let rest = line.trim_start_matches("Socket errors:");
                r.socket_errors = ["connect", "read", "write", "timeout"]
                    .iter()
                    .map(|name| count_after(rest, name))
                    .sum();
            }
            _ => {}
        }
    }
    found_rate.then_some(r)
}
