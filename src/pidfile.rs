//! OS: the master's pid file (gunicorn's `pidfile`): written atomically, refused while another
//! live process holds it, renamed to `.oldbin` for a USR2 upgrade, removed on exit. Knows
//! nothing of signals or workers; the master decides when to call it.
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::{Error, Result};

/// A pid file this process wrote; dropping it removes the file if it still holds our pid.
#[derive(Debug)]
pub struct Pidfile {
    /// Where the file is now (`<pidfile>.oldbin` after `rename_to_oldbin`).
    path: PathBuf,
    /// The configured path.
    configured: PathBuf,
    pid: i32,
}

impl Pidfile {
    /// Writes `pid` to `path` through a temporary file in the same directory and a rename, mode
    /// 0644 whatever the umask (as gunicorn). Refuses when the file names a live process other
    /// than `pid` and this process: gunicorn's "Already running on PID" check. A file naming a
    /// dead process, or holding no pid, is stale and replaced.
    pub fn create(path: &Path, pid: i32) -> Result<Pidfile> {
        let action = || format!("create pid file {}", path.display());
        let ours = [pid, std::process::id() as i32];
        if let Some(holder) = live_holder(path, &ours).map_err(|e| Error::io(action(), e))? {
            let message = format!("already running on PID {holder} (or the pid file is stale)");
            let source = io::Error::new(io::ErrorKind::AlreadyExists, message);
            return Err(Error::io(action(), source));
        }
        write_atomically(path, pid).map_err(|e| Error::io(action(), e))?;
        Ok(Pidfile {
            path: path.to_owned(),
            configured: path.to_owned(),
            pid,
        })
    }

    /// Renames the file to `<path>.oldbin` (USR2: the new master writes `<path>`).
    pub fn rename_to_oldbin(&mut self) -> Result<()> {
        self.move_to(oldbin_path(&self.configured))
    }

    /// Renames the file back to the configured path (the new master of a USR2 died).
    pub fn restore_name(&mut self) -> Result<()> {
        self.move_to(self.configured.clone())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn move_to(&mut self, to: PathBuf) -> Result<()> {
        if to != self.path {
            std::fs::rename(&self.path, &to).map_err(|e| {
                let action = format!("rename {} to {}", self.path.display(), to.display());
                Error::io(action, e)
            })?;
            self.path = to;
        }
        Ok(())
    }
}

impl Drop for Pidfile {
    /// Removes the file if it still holds our pid and we are that process (a forked worker
    /// dropping its copy removes nothing).
    fn drop(&mut self) {
        let ours = std::process::id() as i32 == self.pid;
        if ours && read_pid(&self.path).ok().flatten() == Some(self.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `<path>.oldbin`, gunicorn's name for the old master's pid file.
fn oldbin_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".oldbin");
    PathBuf::from(name)
}

/// The pid in the file, None when the file is missing or holds no positive pid.
fn read_pid(path: &Path) -> io::Result<Option<i32>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_pid(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse_pid(text: &str) -> Option<i32> {
    text.trim().parse().ok().filter(|&pid| pid > 0)
}

/// The live process, other than `ours`, that the file names.
fn live_holder(path: &Path, ours: &[i32]) -> io::Result<Option<i32>> {
    let holder = read_pid(path)?;
    Ok(holder.filter(|pid| !ours.contains(pid) && is_alive(*pid)))
}

/// kill(pid, 0): EPERM still means the process exists.
fn is_alive(pid: i32) -> bool {
    match nix::sys::signal::kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

fn write_atomically(path: &Path, pid: i32) -> io::Result<()> {
    let temp = temp_path(path, pid)?;
    let _ = std::fs::remove_file(&temp);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)?;
        file.write_all(format!("{pid}\n").as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// `.<name>.<pid>.tmp` next to `path`, so that the rename stays on one file system.
fn temp_path(path: &Path, pid: i32) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".{pid}.tmp"));
    Ok(path.with_file_name(temp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory unique to this test process and `name`, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = format!("rgunicorn-pidfile-{}-{name}", std::process::id());
            let dir = std::env::temp_dir().join(dir);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn me() -> i32 {
        std::process::id() as i32
    }

    fn entries(dir: &Path) -> Vec<String> {
        let names = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name());
        let mut names: Vec<_> = names.map(|n| n.to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn writes_our_pid_with_mode_0644_and_removes_it_on_drop() {
        let dir = TempDir::new("create");
        let path = dir.0.join("app.pid");
        let pidfile = Pidfile::create(&path, me()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", me())
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(entries(&dir.0), ["app.pid"], "no temporary file left");
        assert_eq!(pidfile.path(), path);
        drop(pidfile);
        assert!(!path.exists());
    }

    #[test]
    fn refuses_a_file_held_by_a_live_process() {
        let dir = TempDir::new("live");
        let path = dir.0.join("app.pid");
        // pid 1 is always alive; kill(1, 0) gives EPERM to non-root, which still counts.
        std::fs::write(&path, "1\n").unwrap();
        let err = Pidfile::create(&path, me()).unwrap_err().to_string();
        assert!(err.contains("already running on PID 1"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
    }

    #[test]
    fn replaces_stale_or_own_files() {
        let dir = TempDir::new("stale");
        let path = dir.0.join("app.pid");
        for stale in [
            String::new(),
            "garbage".into(),
            "0".into(),
            "-1".into(),
            me().to_string(),
        ] {
            std::fs::write(&path, &stale).unwrap();
            let pidfile = Pidfile::create(&path, me()).unwrap();
            assert_eq!(read_pid(&path).unwrap(), Some(me()), "{stale:?}");
            drop(pidfile);
        }
        assert!(!is_alive(i32::MAX), "no process has the largest pid");
    }

    #[test]
    fn oldbin_round_trip_and_drop_removes_the_current_name() {
        let dir = TempDir::new("oldbin");
        let path = dir.0.join("app.pid");
        let mut pidfile = Pidfile::create(&path, me()).unwrap();
        pidfile.rename_to_oldbin().unwrap();
        assert_eq!(pidfile.path(), dir.0.join("app.pid.oldbin"));
        assert_eq!(entries(&dir.0), ["app.pid.oldbin"]);
        pidfile.rename_to_oldbin().unwrap();
        pidfile.restore_name().unwrap();
        assert_eq!(entries(&dir.0), ["app.pid"]);
        pidfile.rename_to_oldbin().unwrap();
        drop(pidfile);
        assert!(entries(&dir.0).is_empty());
    }

    #[test]
    fn drop_leaves_a_file_that_another_process_took_over() {
        let dir = TempDir::new("taken");
        let path = dir.0.join("app.pid");
        let pidfile = Pidfile::create(&path, me()).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(pidfile);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
    }

    #[test]
    fn missing_directory_is_an_io_error_naming_the_file() {
        let path = Path::new("/nonexistent-rgunicorn-dir/app.pid");
        let err = Pidfile::create(path, me()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("app.pid"), "{err}");
    }
}
