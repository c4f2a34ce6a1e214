//! OS: systemd integration without libsystemd: sd_notify datagrams to NOTIFY_SOCKET and the
//! listeners handed over by socket activation (LISTEN_FDS). Never decides when to notify, never
//! binds or forks: the master calls it. Sending never blocks and never fails the caller.
use std::io;
use std::os::fd::RawFd;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::Duration;

/// The first fd of socket activation (SD_LISTEN_FDS_START).
const LISTEN_FDS_START: RawFd = 3;
/// The variables of socket activation, removed once read.
const LISTEN_VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// Sends sd_notify state to the service manager; inert when NOTIFY_SOCKET is unset.
///
/// NOTIFY_SOCKET stays in the environment: a master re-executed by USR2 needs it to send
/// `MAINPID=`. systemd accepts that only from the main pid (NotifyAccess=main) unless the unit
/// says NotifyAccess=all, so the old master should announce the new pid as well. The watchdog
/// follows WATCHDOG_PID: the re-exec should set it to the new master's pid (or remove it).
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

/// Where NOTIFY_SOCKET points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NotifyTarget {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    /// Reads NOTIFY_SOCKET (an absolute path or `@abstract-name`), WATCHDOG_USEC and
    /// WATCHDOG_PID. Unset, unsupported (e.g. `vsock:`) or unusable values give an inert notifier.
    pub fn from_env() -> Notifier {
        let var = |name| std::env::var(name).ok();
        let target = var("NOTIFY_SOCKET").and_then(|value| {
            let target = parse_notify_socket(&value)?;
            open(&target)
                .map_err(|e| tracing::debug!("NOTIFY_SOCKET {value:?} unusable: {e}"))
                .ok()
        });
        let watchdog = target.as_ref().and_then(|_| {
            let (usec, pid) = (var("WATCHDOG_USEC"), var("WATCHDOG_PID"));
            watchdog_interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
        });
        Notifier { target, watchdog }
    }

    /// A notifier that never sends anything.
    pub fn inert() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state` (newline-separated `KEY=VALUE` assignments) as one datagram. Failures,
    /// including a full receive queue, are logged at debug level and otherwise ignored.
    pub fn notify(&self, state: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
            tracing::debug!("sd_notify {state:?} failed: {e}");
        }
    }

    /// READY=1 with a STATUS= line: the workers have booted (first start or after a reload).
    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={}", status_value(status)));
    }

    /// RELOADING=1 with the MONOTONIC_USEC that Type=notify-reload requires.
    pub fn reloading(&self) {
        self.notify(&reloading_state(monotonic_usec()));
    }

    pub fn stopping(&self) {
        self.notify("STOPPING=1");
    }

    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={}", status_value(status)));
    }

    /// MAINPID=: the service's main process is now `pid` (after a USR2 re-exec).
    pub fn main_pid(&self, pid: i32) {
        self.notify(&format!("MAINPID={pid}"));
    }

    /// How often to call `watchdog`: half of WATCHDOG_USEC, when the watchdog is meant for us.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    pub fn watchdog(&self) {
        self.notify("WATCHDOG=1");
    }
}

fn parse_notify_socket(value: &str) -> Option<NotifyTarget> {
    match value.strip_prefix('@') {
        Some(name) if !name.is_empty() => Some(NotifyTarget::Abstract(name.as_bytes().to_vec())),
        Some(_) => None,
        None if value.starts_with('/') => Some(NotifyTarget::Path(PathBuf::from(value))),
        None => None,
    }
}

/// An unbound, non-blocking (the master must never wait on systemd), close-on-exec datagram
/// socket and the address to send to.
fn open(target: &NotifyTarget) -> io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match target {
        NotifyTarget::Path(path) => SocketAddr::from_pathname(path)?,
        NotifyTarget::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
    };
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    Ok((socket, addr))
}

/// A STATUS= value must stay on one line.
fn status_value(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

fn reloading_state(monotonic_usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}")
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC with.
fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(now) => {
            let secs = u64::try_from(now.tv_sec()).unwrap_or(0);
            let micros = u64::try_from(now.tv_nsec()).unwrap_or(0) / 1_000;
            secs.saturating_mul(1_000_000).saturating_add(micros)
        }
        Err(_) => 0,
    }
}

/// sd_watchdog_enabled: half of WATCHDOG_USEC, when it is a positive integer and WATCHDOG_PID
/// is unset or names `our_pid`.
fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, our_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&n| n > 0)?;
    let for_us = pid.is_none_or(|p| p.trim().parse::<u32>() == Ok(our_pid));
    for_us.then(|| Duration::from_micros(usec / 2))
}

/// Listeners passed by systemd socket activation: `Some((name, fd))` for each of LISTEN_FDS fds
/// (from 3 on) when LISTEN_PID is our pid; names come from LISTEN_FDNAMES (`unknown` where it
/// has none). Removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES in every case, so that workers
/// and a re-executed master do not see them, and marks the fds close-on-exec as sd_listen_fds
/// does (a USR2 re-exec clears that flag on purpose, as for every listener). Call it once,
/// early, while the master is still single-threaded.
pub fn activated_listeners() -> Option<Vec<(String, RawFd)>> {
    let var = |name| std::env::var(name).ok();
    let [pid, fds, names] = LISTEN_VARS.map(var);
    for name in LISTEN_VARS {
        std::env::remove_var(name);
    }
    let listeners = parse_listen_env(
        pid.as_deref(),
        fds.as_deref(),
        names.as_deref(),
        std::process::id(),
    )?;
    let usable: Vec<_> = listeners
        .into_iter()
        .filter(|(_, fd)| close_on_exec(*fd))
        .collect();
    (!usable.is_empty()).then_some(usable)
}

/// The pure part of `activated_listeners`.
fn parse_listen_env(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    our_pid: u32,
) -> Option<Vec<(String, RawFd)>> {
    if pid?.trim().parse::<u32>().ok()? != our_pid {
        return None;
    }
    let count: RawFd = fds?.trim().parse().ok().filter(|&n| n > 0)?;
    LISTEN_FDS_START.checked_add(count)?;
    let names: Vec<&str> = names.map(|n| n.split(':').collect()).unwrap_or_default();
    let name = |i: usize| match names.get(i) {
        Some(name) if !name.is_empty() => (*name).to_owned(),
        _ => "unknown".to_owned(),
    };
    Some(
        (0..count)
            .map(|i| (name(i as usize), LISTEN_FDS_START + i))
            .collect(),
    )
}

/// Sets FD_CLOEXEC; false (logged) when `fd` is not open.
fn close_on_exec(fd: RawFd) -> bool {
    // SAFETY: F_SETFD only sets the descriptor flags of a number; on a number that is not open
    // fcntl fails with EBADF and touches nothing.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    if rc == -1 {
        let e = io::Error::last_os_error();
        tracing::warn!("socket activation: fd {fd} is not usable: {e}");
    }
    rc != -1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_values() {
        let path = NotifyTarget::Path(PathBuf::from("/run/systemd/notify"));
        assert_eq!(parse_notify_socket("/run/systemd/notify"), Some(path));
        let abstract_name = NotifyTarget::Abstract(b"sd-notify/1".to_vec());
        assert_eq!(parse_notify_socket("@sd-notify/1"), Some(abstract_name));
        for unusable in ["", "@", "relative/path", "vsock:2:1234"] {
            assert_eq!(parse_notify_socket(unusable), None, "{unusable:?}");
        }
    }

    #[test]
    fn state_lines() {
        assert_eq!(status_value("2 workers\nbooting\r"), "2 workers booting ");
        assert_eq!(
            reloading_state(1_234_567),
            "RELOADING=1\nMONOTONIC_USEC=1234567"
        );
        let (a, b) = (monotonic_usec(), monotonic_usec());
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn watchdog_is_half_of_watchdog_usec_and_only_for_us() {
        let half = Some(Duration::from_millis(1500));
        assert_eq!(watchdog_interval_from(Some("3000000"), None, 42), half);
        assert_eq!(
            watchdog_interval_from(Some("3000000"), Some("42"), 42),
            half
        );
        assert_eq!(
            watchdog_interval_from(Some("3000000"), Some("43"), 42),
            None
        );
        assert_eq!(watchdog_interval_from(Some("0"), None, 42), None);
        assert_eq!(watchdog_interval_from(Some("soon"), None, 42), None);
        assert_eq!(watchdog_interval_from(None, Some("42"), 42), None);
    }

    #[test]
    fn listen_env_for_our_pid_names_each_fd() {
        let got = parse_listen_env(Some("7"), Some("3"), Some("web:api"), 7).unwrap();
        let want = [("web", 3), ("api", 4), ("unknown", 5)];
        let want: Vec<_> = want.iter().map(|(n, fd)| (n.to_string(), *fd)).collect();
        assert_eq!(got, want);
        let unnamed = parse_listen_env(Some("7"), Some("1"), None, 7).unwrap();
        assert_eq!(unnamed, [("unknown".to_owned(), 3)]);
        let empty_name = parse_listen_env(Some("7"), Some("2"), Some(":b"), 7).unwrap();
        assert_eq!(empty_name[0].0, "unknown");
    }

    #[test]
    fn listen_env_for_someone_else_or_malformed_is_ignored() {
        let cases = [
            (Some("8"), Some("1")),
            (None, Some("1")),
            (Some("7"), None),
            (Some("7"), Some("0")),
            (Some("7"), Some("-1")),
            (Some("x"), Some("1")),
            (Some("7"), Some("2147483647")),
        ];
        for (pid, fds) in cases {
            assert_eq!(parse_listen_env(pid, fds, None, 7), None, "{pid:?} {fds:?}");
        }
    }

    fn sent(receiver: &UnixDatagram, notify_socket: &str) -> Vec<Vec<u8>> {
        let target = parse_notify_socket(notify_socket).unwrap();
        let notifier = Notifier {
            target: Some(open(&target).unwrap()),
            watchdog: None,
        };
        assert!(notifier.enabled());
        notifier.ready("2 workers");
        notifier.main_pid(77);
        let recv = || {
            let mut buf = [0u8; 256];
            let n = receiver.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        };
        vec![recv(), recv()]
    }

    #[test]
    fn notifier_sends_datagrams_to_path_and_abstract_sockets() {
        let want = [
            b"READY=1\nSTATUS=2 workers".to_vec(),
            b"MAINPID=77".to_vec(),
        ];
        let dir = std::env::temp_dir().join(format!("rg-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        assert_eq!(sent(&receiver, path.to_str().unwrap()), want);
        std::fs::remove_dir_all(&dir).unwrap();

        use std::os::linux::net::SocketAddrExt;
        let name = format!("rg-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        assert_eq!(sent(&receiver, &format!("@{name}")), want);
    }

    #[test]
    fn inert_notifier_does_nothing() {
        let notifier = Notifier::inert();
        assert!(!notifier.enabled());
        assert_eq!(notifier.watchdog_interval(), None);
        notifier.ready("x");
    }
}
