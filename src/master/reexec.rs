//! USR2: starting a new master binary that inherits the listening sockets, and the new master's
//! side of that handover. The old master keeps serving until it is told to stop (WINCH, TERM).
use std::process::Command;

use super::Arbiter;
use crate::process::ExitStatus;
use crate::sockets::{inherit_fd, Listener};
use crate::{Error, Result};

/// The environment variable naming the inherited listener fds, as gunicorn's GUNICORN_FD.
const FDS_VAR: &str = "RGUNICORN_FD";

/// Set for a new master started by USR2 (cleared once read).
const UPGRADE_VAR: &str = "RGUNICORN_UPGRADE";

/// Whether this master was started by an old one's USR2 (to announce MAINPID=).
pub(super) fn is_upgrade() -> bool {
    let upgrade = std::env::var_os(UPGRADE_VAR).is_some();
    std::env::remove_var(UPGRADE_VAR);
    upgrade
}

/// The listeners handed over by an old master, if we are a new master started by USR2.
pub(super) fn inherited_listeners() -> Result<Option<Vec<Listener>>> {
    let Ok(list) = std::env::var(FDS_VAR) else {
        return Ok(None);
    };
    std::env::remove_var(FDS_VAR);
    let fds = parse_fds(&list)
        .ok_or_else(|| Error::config(FDS_VAR, &list, "comma-separated file descriptor numbers"))?;
    fds.into_iter()
        .map(inherit_fd)
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn parse_fds(list: &str) -> Option<Vec<i32>> {
    list.split(',')
        .map(|fd| fd.trim().parse().ok().filter(|fd: &i32| *fd >= 0))
        .collect()
}

impl Arbiter {
    /// USR2: the new master's pid, or None (logged) when it could not be started.
    pub(super) fn reexec(&mut self) -> Option<i32> {
        if let Some(pidfile) = &mut self.pidfile {
            if let Err(error) = pidfile.rename_to_oldbin() {
                tracing::error!("USR2 failed: {error}");
                return None;
            }
        }
        match self.spawn_new_master() {
            Ok(pid) => {
                tracing::info!("started a new master (pid {pid}) with the listening sockets");
                self.handed_over = true;
                self.notifier.main_pid(pid);
                Some(pid)
            }
            Err(error) => {
                tracing::error!("USR2 failed: {error}");
                self.restore_pidfile();
                None
            }
        }
    }

    fn spawn_new_master(&mut self) -> Result<i32> {
        let fds: Vec<String> = self
            .listeners
            .iter()
            .map(|l| std::os::fd::AsRawFd::as_raw_fd(l).to_string())
            .collect();
        for listener in &self.listeners {
            listener.set_inheritable(true)?;
        }
        let program = &self.launch.program;
        // The new master pings the watchdog itself once systemd follows its MAINPID=.
        let mut command = Command::new(&program.executable);
        command
            .args(&program.args)
            .current_dir(&self.launch.dir)
            .env(FDS_VAR, fds.join(","))
            .env(UPGRADE_VAR, "1")
            .env_remove("WATCHDOG_PID");
        let spawned = self.start_new_master(command);
        for listener in &self.listeners {
            listener.set_inheritable(false)?;
        }
        spawned.map_err(|e| Error::io("start the new master", e))
    }

    pub(super) fn reexec_ended(&mut self, status: ExitStatus) {
        tracing::info!("the new master exited: {status:?}");
        self.handed_over = false;
        self.restore_pidfile();
        self.notifier.main_pid(crate::process::current_pid());
    }

    fn restore_pidfile(&mut self) {
        if let Some(pidfile) = &mut self.pidfile {
            if let Err(error) = pidfile.restore_name() {
                tracing::error!("{error}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fd_lists_parse_strictly() {
        assert_eq!(super::parse_fds("3,4"), Some(vec![3, 4]));
        assert_eq!(super::parse_fds("3"), Some(vec![3]));
        assert_eq!(super::parse_fds("3,x"), None);
        assert_eq!(super::parse_fds("-1"), None);
    }
}
