//! The large-body scenario: 100 MiB uploads (POST /upload/, hashed by the app) and 100 MiB
//! downloads (GET /download/, a FileResponse) with curl, giving MiB/s and the growth of each
//! worker's VmRSS across the transfers. It never judges the result against a target: report.rs
//! does.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::procs;
use crate::servers::Running;

pub const MIB: u64 = 1024 * 1024;
pub const SIZE: u64 = 100 * MIB;

/// What the transfers measured.
#[derive(Debug, Default)]
pub struct TransferResult {
    pub bytes: u64,
    pub seconds: f64,
    pub up_mib_s: f64,
    pub down_mib_s: f64,
    pub failures: u64,
    /// The largest VmRSS growth of one worker, in MiB.
    pub max_rss_growth_mib: f64,
}

impl TransferResult {
    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / MIB as f64 / self.seconds.max(1e-9)
    }
}

/// Write a file of `size` bytes of greenweb's download pattern (bytes 0..=255 repeated), unless
/// one of that size is there already. The same file is uploaded and served for download.
pub fn pattern_file(path: &Path, size: u64) -> io::Result<()> {
    if fs::metadata(path).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    let block: Vec<u8> = (0..MIB).map(|i| (i % 256) as u8).collect();
    let mut out = io::BufWriter::new(File::create(path)?);
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB);
        out.write_all(&block[..n as usize])?;
        left -= n;
    }
    out.flush()
}

/// Where the bench keeps its body files; greenweb reads GREENWEB_DOWNLOAD_DIR/<size>.bin.
pub struct Files {
    pub download_dir: PathBuf,
}

impl Files {
    fn body(&self, size: u64) -> PathBuf {
        self.download_dir.join(format!("{size}.bin"))
    }

    /// Make the bodies used by warm-up (1 MiB) and measurement (100 MiB).
    pub fn prepare(&self) -> io::Result<()> {
        fs::create_dir_all(&self.download_dir)?;
        pattern_file(&self.body(MIB), MIB)?;
        pattern_file(&self.body(SIZE), SIZE)
    }
}

/// One curl transfer; returns seconds taken. Fails on a non-200 status or a short body.
fn curl(args: &[&str], url: &str, expect_bytes: u64, upload: bool) -> Result<f64, String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "120",
            "-H",
            "Expect:",
            "-o",
            "/dev/null",
        ])
        .args([
            "-w",
            "%{http_code} %{size_upload} %{size_download} %{time_total}",
        ])
        .args(args)
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [code, up, down, secs] = fields.as_slice() else {
        return Err(format!(
            "curl: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    };
    let moved: u64 = if upload {
        up.parse().unwrap_or(0)
    } else {
        down.parse().unwrap_or(0)
    };
    if *code != "200" || moved != expect_bytes {
        return Err(format!(
            "{url}: status {code}, {moved} of {expect_bytes} bytes"
        ));
    }
    secs.parse().map_err(|_| format!("curl time {secs:?}"))
}

fn upload(server: &Running, files: &Files, size: u64) -> Result<f64, String> {
    // Not -T: with a URL ending in '/' it would append the file's name to the path.
    let body = format!("@{}", files.body(size).display());
    let args = [
        "-X",
        "POST",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &body,
    ];
    curl(&args, &server.url("/upload/"), size, true)
}

fn download(server: &Running, size: u64) -> Result<f64, String> {
    curl(
        &[],
        &server.url(&format!("/download/?size={size}")),
        size,
        false,
    )
}

/// Successful 100 MiB transfers in one direction and the time they took.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    seconds: f64,
}

impl Tally {
    fn add(&mut self, result: Result<f64, String>, last_error: &mut String) {
        match result {
            Ok(seconds) => {
                self.ok += 1;
                self.seconds += seconds;
            }
            Err(e) => {
                self.failed += 1;
                *last_error = e;
            }
        }
    }

    fn mib_per_sec(&self) -> f64 {
        (self.ok * SIZE) as f64 / MIB as f64 / self.seconds.max(1e-9)
    }
}

fn worker_rss(server: &Running) -> HashMap<i32, u64> {
    server
        .workers()
        .into_iter()
        .filter_map(|pid| Some((pid, procs::rss_kib(pid)?)))
        .collect()
}

/// Warm up with a few 1 MiB transfers, then run `reps` uploads and downloads of 100 MiB.
pub fn run(server: &Running, files: &Files, reps: u32) -> Result<TransferResult, String> {
    for _ in 0..4 {
        upload(server, files, MIB)?;
        download(server, MIB)?;
    }
    let before = worker_rss(server);
    let mut up = Tally::default();
    let mut down = Tally::default();
    let mut last_error = String::new();
    for _ in 0..reps {
        up.add(upload(server, files, SIZE), &mut last_error);
        down.add(download(server, SIZE), &mut last_error);
    }
    if up.ok + down.ok == 0 {
        return Err(format!("every transfer failed; last: {last_error}"));
    }
    let after = worker_rss(server);
    let growth = before
        .iter()
        .filter_map(|(pid, kib)| Some(after.get(pid)?.saturating_sub(*kib)));
    Ok(TransferResult {
        bytes: (up.ok + down.ok) * SIZE,
        seconds: up.seconds + down.seconds,
        up_mib_s: up.mib_per_sec(),
        down_mib_s: down.mib_per_sec(),
        failures: up.failed + down.failed,
        max_rss_growth_mib: growth.max().unwrap_or(0) as f64 / 1024.0,
    })
}
