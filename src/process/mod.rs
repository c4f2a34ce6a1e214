//! OS: processes. fork, signals to children, reaping, the monotonic clock shared across processes,
//! the anonymous shared mapping behind heartbeats, and the process title. No policy: the master
//! decides, this module only does.
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::EXIT_OK;
use crate::{Error, Result};

mod frames;
pub use frames::{frame_pipe, FrameReader, FrameWriter, Receive, FRAME};

pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// fork(2). Call only from the single-threaded master: the child gets just the calling thread.
pub fn fork() -> Result<Forked> {
    // SAFETY: the master never starts threads (DESIGN.md hard rule), so the child cannot inherit
    // a lock held by another thread; the child only runs the worker's startup path.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Forked::Parent {
            child: child.as_raw(),
        }),
        Ok(nix::unistd::ForkResult::Child) => Ok(Forked::Child),
        Err(errno) => Err(Error::io("fork a worker", errno.into())),
    }
}

/// Like `fork`, but the child is a child of our parent (clone with CLONE_PARENT): the zygote
/// forks workers that the master reaps and signals as its own.
pub fn fork_sibling() -> Result<Forked> {
    let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: a clone without CLONE_VM copies the address space like fork(2); the caller is
    // single-threaded (the zygote), so no lock can be held by a thread the child would not have.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match pid {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent { child: pid as i32 }),
        _ => Err(Error::io(
            "fork a worker from the zygote",
            std::io::Error::last_os_error(),
        )),
    }
}

/// Asks the kernel to SIGKILL this process when its parent dies (the zygote must not outlive
/// the master).
pub fn die_with_parent() {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
}

/// Gives the C heap's free memory back to the kernel (malloc_trim): freed chunks otherwise stay
/// resident, and in a forked process they count as its own once touched.
pub fn release_free_heap() {
    // SAFETY: malloc_trim only rearranges the allocator's own free memory; no pointer we hold is
    // affected.
    unsafe { libc::malloc_trim(0) };
}

/// This process's unshared memory in bytes (USS: resident pages no other process maps, from
/// /proc/self/smaps_rollup), what it would give back by exiting; None when unreadable.
pub fn unshared_memory() -> Option<u64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    Some(private_kib(&rollup) * 1024)
}

/// Private_Clean + Private_Dirty + Private_Hugetlb of a smaps_rollup, in KiB.
fn private_kib(rollup: &str) -> u64 {
    let fields = ["Private_Clean:", "Private_Dirty:", "Private_Hugetlb:"];
    rollup
        .lines()
        .filter_map(|line| {
            let rest = fields.iter().find_map(|f| line.strip_prefix(f))?;
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Drops this process's resident pages of read-only file mappings that hold nothing but the file
/// (library code and constants): the zygote touched them while importing the app, and holding them
/// would count them against it alone. They come back from the page cache on the next access.
pub fn release_read_only_file_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, end) in clean_read_only_file_mappings(&smaps) {
        let Some(len) = std::num::NonZeroUsize::new(end - start) else {
            continue;
        };
        let Some(addr) = std::ptr::NonNull::new(start as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range is a whole private, non-writable file mapping of ours with no
        // anonymous (copied-on-write) page, so every resident page equals the file's contents and
        // MADV_DONTNEED only makes the kernel read it back from the file on the next access.
        let _ = unsafe {
            nix::sys::mman::madvise(addr, len.get(), nix::sys::mman::MmapAdvise::MADV_DONTNEED)
        };
    }
}

/// From /proc/self/smaps: the private, non-writable file mappings without any anonymous page
/// (RELRO segments, relocated then made read-only, have some and are left alone).
fn clean_read_only_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if is_mapping_header(line) {
            current = read_only_file_mapping(line);
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            if let Some(range) = current.take() {
                if kb.trim().trim_end_matches("kB").trim() == "0" {
                    found.push(range);
                }
            }
        }
    }
    found
}

/// A line of smaps that starts a mapping: its first field is a `start-end` range of hex numbers.
fn is_mapping_header(line: &str) -> bool {
    let range = line.split_whitespace().next().unwrap_or("");
    range.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_hexdigit())
    })
}

/// `start-end perms offset dev inode path` of a private, non-writable mapping of a file.
fn read_only_file_mapping(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let (range, perms) = (fields.next()?, fields.next()?);
    let path = fields.nth(3)?;
    let private_read_only =
        perms.starts_with('r') && perms.as_bytes().get(1) == Some(&b'-') && perms.ends_with('p');
    if !private_read_only || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    ))
}

/// Sends `signal` to `pid`; false when the process is already gone.
pub fn send_signal(pid: i32, signal: Signal) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid), signal).is_ok()
}

pub fn current_pid() -> i32 {
    std::process::id() as i32
}

pub fn parent_pid() -> i32 {
    nix::unistd::getppid().as_raw()
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

/// Collects every child that has exited, without blocking.
pub fn reap_children() -> Vec<(i32, ExitStatus)> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                reaped.push((pid.as_raw(), ExitStatus::Code(code)))
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) => {
                reaped.push((pid.as_raw(), ExitStatus::Signal(signal as i32)))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return reaped,
            Ok(_) => continue,
        }
    }
}

/// Milliseconds on CLOCK_MONOTONIC: the same clock in every process of the machine, so a worker's
/// heartbeat stamps mean the same to the master.
pub fn monotonic_ms() -> u64 {
    // The coarse clock (the last timer tick, a few ms behind) is the same clock without the
    // hardware counter read; heartbeats run per request and only need milliseconds.
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE) {
        Ok(now) => (now.tv_sec() as u64) * 1000 + (now.tv_nsec() as u64) / 1_000_000,
        Err(_) => 0,
    }
}

/// Nanoseconds on CLOCK_MONOTONIC, for a request's duration: a pair of these costs less than an
/// `Instant` and its `elapsed` (no Timespec arithmetic), and it runs twice per observed request.
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(now) => (now.tv_sec() as u64) * 1_000_000_000 + now.tv_nsec() as u64,
        Err(_) => 0,
    }
}

/// Words of memory shared between the master and every worker forked after it was made.
pub struct SharedWords {
    ptr: NonNull<AtomicU64>,
    len: usize,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    pub fn new(len: usize) -> Result<Self> {
        let bytes = std::num::NonZeroUsize::new(len.max(1) * 8).expect("non-zero");
        let prot = nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE;
        let flags = nix::sys::mman::MapFlags::MAP_SHARED;
        // SAFETY: a fresh anonymous mapping aliases nothing; it is zero-filled, and all-zero is a
        // valid AtomicU64. It is unmapped only in Drop.
        let ptr = unsafe { nix::sys::mman::mmap_anonymous(None, bytes, prot, flags) }
            .map_err(|e| Error::io("map shared heartbeat memory", e.into()))?;
        Ok(SharedWords {
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: ptr points to `len` zero-initialised, 8-byte aligned words mapped for our lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `new`; no reference outlives self.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len.max(1) * 8) };
    }
}

/// Sets the title `ps` shows: the command line (rewritten in place, as setproctitle does, within
/// the length of the original one) and the 15-byte thread name `top` shows.
pub fn set_process_title(title: &str) {
    if let Ok(name) = std::ffi::CString::new(title.replace('\0', "")) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    if let Some((start, end)) = argv_area() {
        let len = end - start;
        let mut bytes = vec![0u8; len];
        let title = title.as_bytes();
        let shown = title.len().min(len.saturating_sub(1));
        bytes[..shown].copy_from_slice(&title[..shown]);
        // SAFETY: [start, end) is this process's own argument strings (arg_start..arg_end from
        // /proc/self/stat), mapped read-write for the whole life of the process; the program read
        // its arguments at startup and does not read them through these pointers again.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), start as *mut u8, len) };
    }
}

/// arg_start and arg_end of /proc/self/stat (fields 48 and 49, counted from 1).
fn argv_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let start: usize = fields.get(48 - 3)?.parse().ok()?;
    let end: usize = fields.get(49 - 3)?.parse().ok()?;
    (start != 0 && end > start).then_some((start, end))
}

/// gunicorn's --daemon: detach from the terminal and the session (fork, setsid, fork), with the
/// standard streams on /dev/null. The original process exits 0 at once.
pub fn daemonize() -> Result<()> {
    for step in 0..2 {
        if let Forked::Parent { .. } = fork()? {
            exit_immediately(EXIT_OK);
        }
        if step == 0 {
            nix::unistd::setsid().map_err(|e| Error::io("setsid", e.into()))?;
        }
    }
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open /dev/null", e))?;
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors replaces them atomically; `null` stays open
        // for the duration of the call.
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), target) };
    }
    Ok(())
}

/// Makes INT and QUIT end the process at once with exit code 0, even while the thread that would
/// otherwise notice is busy in the app (a worker's part of gunicorn's fast stop).
pub fn exit_on_interrupt_or_quit() -> Result<()> {
    for signal in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: the action only calls _exit, which is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(signal as i32, || {
                signal_hook::low_level::exit(EXIT_OK)
            })
        }
        .map_err(|e| Error::io("install a signal handler", e))?;
    }
    Ok(())
}

/// Makes a second TERM end the process at once with exit code 0 (the first one is left to the
/// worker's drain), even while the thread that would otherwise notice is busy in the app.
pub fn exit_on_second_term() -> Result<()> {
    let drained = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let term = Signal::SIGTERM as i32;
    // Registered first, so it runs first: it sees the flag only from the second TERM on.
    signal_hook::flag::register_conditional_shutdown(term, EXIT_OK, drained.clone())
        .and_then(|_| signal_hook::flag::register(term, drained))
        .map_err(|e| Error::io("install a signal handler", e))?;
    Ok(())
}

/// Unblocks every signal on the calling thread (a worker, once its handlers are installed; threads
/// it started before keep theirs blocked, so signals reach the reactor thread).
pub fn unblock_all_signals() {
    let none = nix::sys::signal::SigSet::empty();
    let _ =
        nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&none), None);
}

/// Exits at once without running Rust destructors or atexit hooks: for a forked child that must
/// not flush or finalise state it shares with the parent.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and always safe to call.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_private_read_only_file_mappings_are_released() {
        let mapping = super::read_only_file_mapping;
        assert_eq!(
            mapping("7f00-7f10 r-xp 00000000 08:01 123 /usr/lib/libpython3.11.so"),
            Some((0x7f00, 0x7f10))
        );
        assert_eq!(
            mapping("7f00-7f10 r--p 00001000 08:01 123 /usr/lib/libc.so.6"),
            Some((0x7f00, 0x7f10))
        );
        assert_eq!(
            mapping("7f00-7f10 rw-p 00002000 08:01 123 /usr/lib/libc.so.6"),
            None
        );
        assert_eq!(
            mapping("7f00-7f10 r--s 00000000 08:01 123 /dev/shm/x"),
            None
        );
        assert_eq!(mapping("7f00-7f10 r--p 00000000 00:00 0 [vvar]"), None);
        assert_eq!(mapping("7f00-7f10 rw-p 00000000 00:00 0"), None);
    }

    #[test]
    fn unshared_memory_is_the_private_pages() {
        let rollup = "Rss: 900 kB\nPss: 500 kB\nShared_Clean: 300 kB\nPrivate_Clean: 40 kB\n\
                      Private_Dirty: 160 kB\nPrivate_Hugetlb: 0 kB\nSwap: 0 kB\n";
        assert_eq!(super::private_kib(rollup), 200);
        assert!(super::unshared_memory().is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn mappings_with_copied_pages_are_kept() {
        let smaps = "7f00-7f10 r--p 00000000 08:01 1 /lib/a.so\nSize: 64 kB\nAnonymous: 0 kB\n\
                     7f10-7f20 r--p 00010000 08:01 1 /lib/a.so\nSize: 64 kB\nAnonymous: 8 kB\n\
                     7f20-7f30 rw-p 00020000 08:01 1 /lib/a.so\nSize: 64 kB\nAnonymous: 0 kB\n";
        assert_eq!(
            super::clean_read_only_file_mappings(smaps),
            vec![(0x7f00, 0x7f10)]
        );
    }
}
