//! Where log lines go: stdout, stderr or an append-mode file that can be reopened after
//! rotation. Writes each line with one write(2) so that lines from many processes never
//! interleave; never formats, and never panics on a write error.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use crate::{Error, Result};

/// The stream that "-" means for this log.
#[derive(Debug, Clone, Copy)]
pub enum Console {
    Stdout,
    Stderr,
}

#[derive(Debug)]
pub struct Sink {
    target: Target,
}

#[derive(Debug)]
enum Target {
    Console(Console),
    File { path: PathBuf, file: RwLock<File> },
}

/// Every file sink opened by this process, so that `reopen_all` can find them. Weak: a sink
/// dropped by its owner is simply skipped.
static FILES: Mutex<Vec<Weak<Sink>>> = Mutex::new(Vec::new());

impl Sink {
    /// Opens `name`: "-" is `console`, anything else a file created if missing.
    pub fn open(name: &str, console: Console) -> Result<Arc<Sink>> {
        if name == "-" {
            return Ok(Arc::new(Sink {
                target: Target::Console(console),
            }));
        }
        let path = PathBuf::from(name);
        let file = open_append(&path)?;
        let sink = Arc::new(Sink {
            target: Target::File {
                path,
                file: RwLock::new(file),
            },
        });
        let mut files = FILES.lock().unwrap_or_else(PoisonError::into_inner);
        files.push(Arc::downgrade(&sink));
        Ok(sink)
    }

    /// Writes one complete line (ending in '\n'); errors are dropped because a full disk must
    /// not take the server down.
    pub fn write_line(&self, line: &[u8]) {
        let _ = match &self.target {
            Target::Console(Console::Stderr) => io::stderr().lock().write_all(line),
            Target::Console(Console::Stdout) => {
                let mut out = io::stdout().lock();
                out.write_all(line).and_then(|()| out.flush())
            }
            Target::File { file, .. } => {
                let file = file.read().unwrap_or_else(PoisonError::into_inner);
                (&*file).write_all(line)
            }
        };
    }

    /// The most bytes one write(2) keeps whole here: PIPE_BUF for the console (a pipe, shared by
    /// every process), more for an O_APPEND file.
    pub fn whole_write_limit(&self) -> usize {
        match self.target {
            Target::Console(_) => 4096,
            Target::File { .. } => 64 * 1024,
        }
    }

    /// Opens the path again, so that a rotated file is replaced by a fresh one.
    fn reopen(&self) -> Result<()> {
        if let Target::File { path, file } = &self.target {
            let fresh = open_append(path)?;
            *file.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        }
        Ok(())
    }
}

/// Reopens every live file sink of this process; tries them all and reports the first failure.
pub fn reopen_all() -> Result<()> {
    let live: Vec<Arc<Sink>> = {
        let mut files = FILES.lock().unwrap_or_else(PoisonError::into_inner);
        files.retain(|weak| weak.strong_count() > 0);
        files.iter().filter_map(Weak::upgrade).collect()
    };
    let mut first_error = None;
    for sink in live {
        if let Err(e) = sink.reopen() {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(format!("open log file {}", path.display()), e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A path unique to this test process and `name`, removed first.
    pub fn temp_log(name: &str) -> PathBuf {
        let file = format!("rgunicorn-log-{}-{name}.log", std::process::id());
        let path = std::env::temp_dir().join(file);
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn appends_and_survives_rotation() {
        let path = temp_log("rotate");
        std::fs::write(&path, "old\n").unwrap();
        let sink = Sink::open(path.to_str().unwrap(), Console::Stderr).unwrap();
        sink.write_line(b"one\n");
        let rotated = path.with_extension("log.1");
        std::fs::rename(&path, &rotated).unwrap();
        sink.write_line(b"two\n");
        reopen_all().unwrap();
        sink.write_line(b"three\n");
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "old\none\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        let _ = (std::fs::remove_file(rotated), std::fs::remove_file(path));
    }

    #[test]
    fn unopenable_file_names_the_path() {
        let err = Sink::open("/nonexistent-dir/x.log", Console::Stdout).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.log"), "{err}");
    }

    #[test]
    fn dash_is_the_console() {
        let sink = Sink::open("-", Console::Stdout).unwrap();
        assert!(matches!(sink.target, Target::Console(Console::Stdout)));
    }
}
