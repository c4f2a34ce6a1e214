//! The process tree of a server the bench started: finding its descendants in /proc, reading their
//! memory (Pss, VmRSS) and CPU time, pinning it apart from the load generator, and stopping exactly
//! those processes (TERM, then KILL after a grace time). It never signals a process it did not
//! find below the server's master.

use std::collections::HashMap;
use std::fs;
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// One process, identified by pid and start time so that a reused pid is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    start: u64,
}

/// What /proc/PID/stat tells about a process: parent, state letter and start time.
struct Stat {
    ppid: i32,
    state: char,
    start: u64,
}

fn read_stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The process `pid` as it is now, if it exists.
pub fn lookup(pid: i32) -> Option<Proc> {
    read_stat(pid).map(|s| Proc {
        pid,
        start: s.start,
    })
}

/// Every live process below `root` (children, grandchildren, ...), not `root` itself.
pub fn descendants(root: i32) -> Vec<Proc> {
    let mut children: HashMap<i32, Vec<Proc>> = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        if let Some(stat) = read_stat(pid).filter(|s| s.state != 'Z') {
            children.entry(stat.ppid).or_default().push(Proc {
                pid,
                start: stat.start,
            });
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        for child in children.remove(&parent).unwrap_or_default() {
            queue.push(child.pid);
            found.push(child);
        }
    }
    found
}

/// Whether `p` still runs (not gone, not a zombie, pid not reused).
pub fn alive(p: &Proc) -> bool {
    read_stat(p.pid).is_some_and(|s| s.start == p.start && s.state != 'Z')
}

fn status_kib(path: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Proportional set size of one process, in KiB.
pub fn pss_kib(pid: i32) -> Option<u64> {
    status_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// Resident set size of one process, in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    status_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Total Pss of `root` and all its descendants, in MiB, and how many processes that covers.
pub fn tree_pss_mib(root: i32) -> (f64, usize) {
    let mut pids = vec![root];
    pids.extend(descendants(root).iter().map(|p| p.pid));
    let kib: u64 = pids.iter().filter_map(|&pid| pss_kib(pid)).sum();
    (kib as f64 / 1024.0, pids.len())
}

/// CPU time `root` and its descendants have used so far, in ns: every thread's run time from
/// /proc/PID/task/TID/schedstat, finer than the clock ticks of /proc/PID/stat. A thread that ends
/// between two readings takes its time with it; the servers measured keep theirs for the run.
pub fn tree_cpu_ns(root: i32) -> u64 {
    let mut pids = vec![root];
    pids.extend(descendants(root).iter().map(|p| p.pid));
    pids.iter().map(|&pid| process_cpu_ns(pid)).sum()
}

fn process_cpu_ns(pid: i32) -> u64 {
    let run_ns = |task: i32| {
        let text = fs::read_to_string(format!("/proc/{pid}/task/{task}/schedstat")).ok()?;
        text.split_whitespace().next()?.parse::<u64>().ok()
    };
    tasks(pid).into_iter().filter_map(run_ns).sum()
}

/// While it lives, the server's threads run on the last CPU and this process and what it starts
/// (wrk) on the others: the server's CPU time per request is then not shared out by where the
/// scheduler happens to put wrk. Does nothing on a single CPU.
pub struct Pinned {
    before: Option<CpuSet>,
}

impl Pinned {
    pub fn split(server: i32) -> Pinned {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let (Ok(before), true) = (sched_getaffinity(Pid::from_raw(0)), cpus > 1) else {
            return Pinned { before: None };
        };
        let (mut server_cpu, mut others) = (CpuSet::new(), CpuSet::new());
        let _ = server_cpu.set(cpus - 1);
        for cpu in 0..cpus - 1 {
            let _ = others.set(cpu);
        }
        let mut pids = vec![server];
        pids.extend(descendants(server).iter().map(|p| p.pid));
        for task in pids.iter().flat_map(|&pid| tasks(pid)) {
            let _ = sched_setaffinity(Pid::from_raw(task), &server_cpu);
        }
        let _ = sched_setaffinity(Pid::from_raw(0), &others);
        Pinned {
            before: Some(before),
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(before) = &self.before {
            let _ = sched_setaffinity(Pid::from_raw(0), before);
        }
    }
}

/// The thread ids of process `pid`.
fn tasks(pid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let tid = |e: fs::DirEntry| e.file_name().to_str()?.parse().ok();
    entries.flatten().filter_map(tid).collect()
}

fn signal(p: &Proc, sig: Signal) {
    if alive(p) {
        // The process may exit between the check and the signal: nothing to do then.
        let _ = kill(Pid::from_raw(p.pid), sig);
    }
}

/// Wait up to `limit` for `done`, polling every 20 ms; return whether it came true.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}

/// Stop a server the bench started: SIGTERM to its master, SIGKILL after `grace`, then SIGKILL to
/// any of the master's descendants (listed before the signal) that outlived it.
pub fn stop_tree(child: &mut Child, grace: Duration) {
    let Ok(master_pid) = i32::try_from(child.id()) else {
        return;
    };
    let tree = descendants(master_pid);
    if let Some(master) = lookup(master_pid) {
        signal(&master, Signal::SIGTERM);
    }
    if !wait_until(grace, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
    }
    if !wait_until(grace, || !tree.iter().any(alive)) {
        tree.iter().for_each(|p| signal(p, Signal::SIGKILL));
        wait_until(grace, || !tree.iter().any(alive));
    }
}
